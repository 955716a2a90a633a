"""Peak RSS above the base of exact top-k search on arrays in memory (issue 4's check).

Usage (after `pip install .`; files from `embedcluster generate ... --output X.npy`):
    python bench/neighbors_memory.py base.npy queries.npy [embedcluster|sklearn|numpy] [k]

One system per process. Peak RSS is the kernel's high-water mark (VmHWM); "above base" is
the peak minus the RSS after loading base and queries. `numpy` is the naive full distance
matrix (what users write by hand); `sklearn` is NearestNeighbors(algorithm="brute").
"""

import os
import sys
import time

import numpy as np


def vm(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def main(base_path, q_path, system, k):
    # Libraries are imported before the baseline: their code is not the search's memory.
    if system == "embedcluster":
        import embedcluster  # noqa: F401
    elif system == "sklearn":
        import sklearn.neighbors  # noqa: F401
    base = np.load(base_path)
    queries = np.load(q_path)
    loaded = vm("VmRSS:")
    t0 = time.perf_counter()
    if system == "embedcluster":
        import embedcluster as ec

        index = ec.IndexFlatL2(base.shape[1])
        index.add(base)
        D, I = index.search(queries, k)
    elif system == "sklearn":
        from sklearn.neighbors import NearestNeighbors

        D, I = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(base).kneighbors(queries)
    else:
        d2 = ((queries**2).sum(1)[:, None] + (base**2).sum(1)[None, :] - 2 * queries @ base.T)
        I = np.argsort(d2, axis=1)[:, :k]
        D = np.take_along_axis(d2, I, axis=1)
    secs = time.perf_counter() - t0
    peak = vm("VmHWM:")
    print(f"{system:>12}: {base.shape[0]} x {base.shape[1]} base ({base.nbytes / 2**20:.0f} MiB), "
          f"{queries.shape[0]} queries, top {k}: {secs:.2f} s, peak {peak / 2**20:.0f} MiB, "
          f"above base+queries {(peak - loaded) / 2**20:.1f} MiB")
    np.save(f"/tmp/nn_ids_{system}.npy", I)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "embedcluster",
         int(sys.argv[4]) if len(sys.argv) > 4 else 100)
