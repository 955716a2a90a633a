"""Peak RSS of PCA(128) -> KMeans(50, metric="cosine") on a float32 array in memory.

Usage (after `pip install .`):
    embedcluster generate --n-samples 312000 --n-features 1536 --n-clusters 50 --output w1.npy
    python bench/python_memory.py w1.npy [embedcluster|sklearn]

Each system runs in its own process. Peak RSS is the kernel's high-water mark (VmHWM from
/proc/self/status), which embedcluster leaves alone (its stage peaks are sampled),
so the figure covers the whole process. The array is loaded
with np.load (1.8 GiB for 312,000 x 1536 float32); "above the array" is the peak minus the
array's bytes.
"""

import os
import sys
import time

import numpy as np


def vm_hwm():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def main(path, system):
    from sklearn.metrics import adjusted_rand_score

    X = np.load(path)
    labels_path = os.path.splitext(path)[0] + ".labels.txt"
    y = np.loadtxt(labels_path, dtype=np.int64) if os.path.exists(labels_path) else None
    after_load = vm_hwm()
    t0 = time.perf_counter()
    if system == "embedcluster":
        import embedcluster as ec

        Z = ec.PCA(128).fit(X).transform(X)
        ec.normalize(Z, copy=False)  # in place: the reduced rows are ours
        pred = ec.KMeans(50, metric="cosine", random_state=0).fit(Z).labels_
    else:
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import normalize

        Z = PCA(128, random_state=0).fit_transform(X)
        Z = normalize(Z)
        pred = KMeans(50, n_init=1, random_state=0).fit(Z).labels_
    seconds = time.perf_counter() - t0
    peak = vm_hwm()
    gib = 1024**3
    print(
        f"{system}: X {X.shape} {X.dtype} = {X.nbytes / gib:.2f} GiB; after load {after_load / gib:.2f} GiB; "
        f"peak {peak / gib:.2f} GiB = array + {(peak - X.nbytes) / 2**20:.0f} MiB; "
        f"{seconds:.1f} s; ARI {adjusted_rand_score(y, pred) if y is not None else float('nan'):.3f}"
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "embedcluster")
