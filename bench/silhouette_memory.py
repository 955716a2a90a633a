"""Exact silhouette on a large array: time and peak RSS above the data (issue 4's check).

Usage (after `pip install .`):  python bench/silhouette_memory.py [n_samples] [n_features] [k]
Data: seeded Gaussian blobs, float32. Peak RSS is VmHWM; "extra" is peak minus the RSS
after the data and labels exist, with the high-water mark reset there.
"""

import os
import sys
import time


import numpy as np

import embedcluster as ec


def vm(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
d = int(sys.argv[2]) if len(sys.argv) > 2 else 128
k = int(sys.argv[3]) if len(sys.argv) > 3 else 50
rng = np.random.default_rng(0)
centers = rng.standard_normal((k, d)).astype(np.float32) * 2
y = rng.integers(0, k, n)
X = centers[y] + rng.standard_normal((n, d), dtype=np.float32)
del centers
ec._core.reset_peak_rss()  # forget the temporaries of the data generation
base = vm("VmRSS:")
t0 = time.perf_counter()
s = ec.metrics.silhouette_score(X, y)
secs = time.perf_counter() - t0
print(f"silhouette_score exact on {n} x {d} float32 ({X.nbytes / 2**20:.0f} MiB), k = {k}: "
      f"{s:.6f} in {secs:.1f} s; peak {vm('VmHWM:') / 2**20:.0f} MiB, "
      f"extra {(vm('VmHWM:') - base) / 2**20:.1f} MiB")
