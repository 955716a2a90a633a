"""Parquet decoding, ours against pyarrow, on the same files in the same run (issue 15).

Writes 200,000 x 768 float32 rows (deterministic) as four files: `list<float>` and
`fixed_size_list<float>[768]`, snappy and zstd, 16,384-row row groups (pyarrow's writer).
Then, for 1 and 2 threads, interleaved, REPEATS times each, from the page cache:
- pyarrow: `ParquetFile(path).iter_batches(batch_size=16384, columns=["embedding"],
  use_threads=threads > 1)` with `pyarrow.set_cpu_count(threads)`, each batch made a numpy
  (rows, 768) float32 view of the list values (what a user needs; no copy where possible);
- ours: `examples/decode_speed` (the streaming reader of every pass: decode, the
  finiteness check of every value, the copy into a float32 block), pool and decoder threads.
Prints rows/s median (min-max) and ours / pyarrow, and writes JSON.

    python bench/decode.py [--repeats 3] [--out bench/results/decode.json]
"""

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
N, D = 200_000, 768


def make_files(dirpath):
    dirpath.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, D), dtype=np.float32)
    values = pa.array(X.ravel())
    fixed = pa.FixedSizeListArray.from_arrays(values, D)
    offsets = pa.array(np.arange(0, N * D + 1, D, dtype=np.int32))
    lists = pa.ListArray.from_arrays(offsets, values)
    out = {}
    for layout, arr in (("list", lists), ("fixed_size_list", fixed)):
        for codec in ("snappy", "zstd"):
            p = dirpath / f"{layout}_{codec}.parquet"
            if not p.exists():
                pq.write_table(pa.table({"embedding": arr}), p, compression=codec,
                               row_group_size=16384)
            out[(layout, codec)] = p
    return out


def pyarrow_pass(path, threads):
    pa.set_cpu_count(threads)
    t = time.perf_counter()
    n = 0
    f = pq.ParquetFile(path)
    for b in f.iter_batches(batch_size=16384, columns=["embedding"], use_threads=threads > 1):
        col = b.column(0)
        v = np.asarray(col.flatten() if pa.types.is_list(col.type) else col.values).reshape(-1, D)
        n += v.shape[0]
    return n, time.perf_counter() - t


def ours_pass(exe, path, threads):
    out = subprocess.run([str(exe), str(path), str(threads)], capture_output=True, text=True,
                         check=True).stdout.split()
    return int(out[0]), float(out[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "decode.json"))
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-p", "embedcluster", "--example", "decode_speed"],
                   cwd=ROOT, check=True)
    exe = ROOT / "target" / "release" / "examples" / "decode_speed"
    files = make_files(ROOT / "bench" / "data" / "decode")
    rows = []
    for (layout, codec), path in files.items():
        for threads in (1, 2):
            times = {"pyarrow": [], "embedcluster": []}
            for _ in range(a.repeats):
                for name, fn in (("pyarrow", lambda: pyarrow_pass(path, threads)),
                                 ("embedcluster", lambda: ours_pass(exe, path, threads))):
                    n, s = fn()
                    assert n == N, (name, n)
                    times[name].append(s)
            r = {"layout": layout, "codec": codec, "threads": threads,
                 "bytes": os.path.getsize(path)}
            for name, ts in times.items():
                r[name] = {"rows_per_s": [N / s for s in ts]}
            rows.append(r)
            med = {k: statistics.median(r[k]["rows_per_s"]) for k in times}
            print(f"{layout:16s} {codec:6s} {threads} thr  " + "  ".join(
                f"{k} {med[k] / 1e3:8.1f} k rows/s ({min(r[k]['rows_per_s']) / 1e3:.1f}-"
                f"{max(r[k]['rows_per_s']) / 1e3:.1f})" for k in times)
                + f"  ours/pyarrow {med['embedcluster'] / med['pyarrow']:.2f}", flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
