"""Compare two runs of `embedcluster run` bit for bit: labels and scores of the output
Parquet files, and the tensors (centroids, PCA) of the saved models.

    python scripts/compare_runs.py OLD_DIR NEW_DIR NAME [NAME ...]

For each NAME, OLD_DIR/NAME.parquet and NEW_DIR/NAME.parquet must have identical `cluster`
(int32) and `score` (float32, compared as raw bits) columns, and OLD_DIR/NAME_model and
NEW_DIR/NAME_model identical tensors in model.safetensors (raw bytes of each tensor). Exits
1 on the first difference, printing where it is.
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq


def tensors(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    return {
        k: (v["dtype"], v["shape"], data[v["data_offsets"][0] : v["data_offsets"][1]])
        for k, v in header.items()
        if k != "__metadata__"
    }


def main():
    old, new, names = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    ok = True
    for name in names:
        a = pq.read_table(old / f"{name}.parquet", columns=["cluster", "score"])
        b = pq.read_table(new / f"{name}.parquet", columns=["cluster", "score"])
        la, lb = a["cluster"].to_numpy(), b["cluster"].to_numpy()
        sa = a["score"].to_numpy().view(np.uint32)
        sb = b["score"].to_numpy().view(np.uint32)
        same_labels = la.shape == lb.shape and np.array_equal(la, lb)
        same_scores = sa.shape == sb.shape and np.array_equal(sa, sb)
        ta, tb = tensors(old / f"{name}_model" / "model.safetensors"), tensors(new / f"{name}_model" / "model.safetensors")
        same_tensors = ta.keys() == tb.keys() and all(ta[k] == tb[k] for k in ta)
        print(f"{name}: {len(la)} rows; labels identical: {same_labels}; scores identical (bits): "
              f"{same_scores}; tensors identical ({', '.join(sorted(ta))}): {same_tensors}")
        if not same_labels:
            i = int(np.flatnonzero(la != lb)[0]) if la.shape == lb.shape else -1
            print(f"  first differing label at row {i}")
        ok &= same_labels and same_scores and same_tensors
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
