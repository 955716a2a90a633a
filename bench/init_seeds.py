"""Seed spread of the k-means seedings (issue 16), side by side in one run.

Each data set is reduced once as `embedcluster run` does for `--metric cosine --reduce
pca:128` (unit rows, exact PCA, unit rows again); then on the same reduced matrix, for run
seeds 0..S-1, every configuration is fitted and scored against the true labels:

  default   KMeans(metric="cosine")            16 k-means++ seedings screened on a sample
  kpp1      init_trials=1                      one k-means++ start on all rows (the old default)
  par1      init="k-means||", init_trials=1    one k-means|| start on all rows
  n10       n_init=10, init_trials=1           ten full restarts (seed 0 only)
  sklearn   sklearn KMeans(n_init=10)          on the same unit rows (seed 0 only)

Usage (the files from `embedcluster generate ... --seed G --output gG.parquet`):

    python bench/init_seeds.py --seeds 8 --configs default,kpp1,par1,n10,sklearn \\
        ../shared/data/debian_descriptions_minilm384.parquet:53 g1.parquet:50 ...

Prints one line per data set and configuration: min / median / max ARI and objective
(sum of 1 - cos) across seeds, and the median fit time. Timing is of the k-means fit only
(the reduction is shared).
"""

import argparse
import time

import numpy as np
import pyarrow.parquet as pq
from sklearn.metrics import adjusted_rand_score

from embedcluster.cluster import KMeans
from embedcluster.decomposition import PCA
from embedcluster.preprocessing import normalize


def reduce(path):
    pf = pq.ParquetFile(path)
    X, labels, i = None, [], 0
    for b in pf.iter_batches(batch_size=32768, columns=["embedding", "label"]):
        v = b.column(0).values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        d = len(v) // len(b)
        if X is None:
            X = np.empty((pf.metadata.num_rows, d), np.float32)
        X[i:i + len(b)] = v.reshape(-1, d)
        i += len(b)
        labels.extend(b.column(1).to_pylist())
    Y = PCA(n_components=128).fit_transform(normalize(X, copy=False))
    del X
    _, y = np.unique(np.array(labels, dtype=object).astype(str), return_inverse=True)
    return normalize(np.ascontiguousarray(Y, np.float32)), y


CONFIGS = {
    "default": {},
    "kpp1": {"init_trials": 1},
    "par1": {"init": "k-means||", "init_trials": 1},
    "n10": {"n_init": 10, "init_trials": 1},
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sets", nargs="+", help="PATH:K")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--configs", default="default,kpp1,par1,n10,sklearn")
    a = ap.parse_args()
    for spec in a.sets:
        path, k = spec.rsplit(":", 1)
        k = int(k)
        X, y = reduce(path)
        for c in a.configs.split(","):
            seeds = [0] if c in ("n10", "sklearn") else range(a.seeds)
            rows = []
            for s in seeds:
                t = time.perf_counter()
                if c == "sklearn":
                    from sklearn.cluster import KMeans as SK

                    m = SK(k, n_init=10, random_state=s).fit(X)
                    obj = m.inertia_ / 2  # on unit rows |x - c|^2 / 2 ~ 1 - cos
                else:
                    m = KMeans(k, metric="cosine", random_state=s, **CONFIGS[c]).fit(X)
                    obj = m.inertia_
                rows.append((adjusted_rand_score(y, m.labels_), obj, time.perf_counter() - t))
            r = np.array(rows)
            print(f"{path.rsplit('/', 1)[-1]:42s} {c:8s} seeds {len(rows)}  ARI min {r[:, 0].min():.3f} "
                  f"med {np.median(r[:, 0]):.3f} max {r[:, 0].max():.3f}  objective min "
                  f"{r[:, 1].min():.1f} med {np.median(r[:, 1]):.1f} max {r[:, 1].max():.1f}  "
                  f"fit s med {np.median(r[:, 2]):.2f}", flush=True)


if __name__ == "__main__":
    main()
