"""The canonical workload through Dask (issue 21), embedcluster.dask beside dask-ml on the
same LocalCluster shape and the same Parquet directory.

    .venv/bin/python -m pip install dask-ml      # the peer (not a test dependency)
    .venv/bin/python bench/dask_canonical.py [--repeat 2] [--parts 16]

Data: 312,000 x 1536 float32 (`embedcluster generate --n-clusters 50 --seed 0`, the
canonical set) written as a directory of `--parts` Parquet files (bench/data/canonical_parts/,
generated when missing), read with `dd.read_parquet(..., dtype_backend="pyarrow")`.

Each library runs in its own Python process (so the client's peak RSS is its own), with its
own `LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="9GiB")`:

- embedcluster: `fit_pca(ddf, 128)`, `transform_dask` (persisted: the reduced vectors,
  312,000 x 128), `fit_kmeans(reduced, 50, column="pca", metric="cosine")` (k-means||),
  `ClusterModel.predict_dask(ddf)` on the raw vectors;
- dask-ml: the list column as a dask array (one numpy block per partition, row counts from
  the Parquet footers), `PCA(128)` (its default solver, randomized here), `transform`, rows
  normalized (cosine k-means as users run it with dask-ml), persisted, `KMeans(50)` (its
  default k-means||), `predict` of the normalized projection of the raw vectors.

Per step: seconds, and the largest worker peak RSS while the step ran, from a thread on
each worker sampling its RSS every 5 ms (`_core.RssSampler`: no counter is reset); at the
end, the client process's VmHWM. ARI against the generator's labels. Prints one JSON line
per run and a table of the medians with the ratios ours / dask-ml.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
MiB = 1 << 20


def data_dir(parts):
    d = HERE / "data" / f"canonical_parts{parts}"
    if not any(d.glob("*.parquet")):
        d.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(ROOT / "target" / "release" / "embedcluster"), "generate",
                        "--n-samples", "312000", "--n-features", "1536", "--n-clusters", "50",
                        "--seed", "0", "--parts", str(parts), "--output", str(d) + "/"], check=True)
    return d


# --- on the workers: a sampler of the worker process's RSS ---------------------------------


def _sampler_start(dask_worker=None):
    from embedcluster import _core

    dask_worker._ec_sampler = _core.RssSampler(0.005)
    return True


def _sampler_take(dask_worker=None):
    """The peak since the last call, and a new sampler from now."""
    from embedcluster import _core

    peak = dask_worker._ec_sampler.stop()
    dask_worker._ec_sampler = _core.RssSampler(0.005)
    return peak


class Steps:
    def __init__(self, client):
        self.client, self.out = client, {}
        client.run(_sampler_start)

    def __call__(self, name, fn):
        self.client.run(_sampler_take)
        t0 = time.perf_counter()
        r = fn()
        secs = time.perf_counter() - t0
        peaks = self.client.run(_sampler_take)
        self.out[name] = {"seconds": secs, "worker_peak_rss_bytes": max(peaks.values())}
        return r


def status_hwm():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def cluster():
    from distributed import Client, LocalCluster

    c = LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="9GiB",
                     dashboard_address=None, silence_logs=40)
    return c, Client(c)


def run_ours(path):
    import dask
    import dask.dataframe as dd
    import numpy as np
    from distributed import wait

    import embedcluster as ec
    from embedcluster import dask as ecd
    from embedcluster import metrics

    c, client = cluster()
    st = Steps(client)
    ddf = dd.read_parquet(str(path), dtype_backend="pyarrow", columns=["label", "embedding"])
    pca = st("fit_pca", lambda: ecd.fit_pca(ddf, 128))

    def transform():
        r = pca.transform_dask(ddf)[["label", "pca"]].persist()
        wait(r)
        return r

    reduced = st("transform_persist", transform)
    km = st("fit_kmeans", lambda: ecd.fit_kmeans(reduced, 50, column="pca", metric="cosine",
                                                 random_state=0))
    model = ec.ClusterModel(kmeans=km, pca=pca, steps=["pca:128", "normalize"])
    out = st("predict", lambda: model.predict_dask(ddf)[["label", "cluster"]].compute())
    ari = metrics.adjusted_rand_score(out["label"].to_numpy(), out["cluster"].to_numpy())
    tasks = km.fit_report_["tasks"]
    for name, est in (("pca", pca), ("kmeans", km)):  # where the fits' time went
        t = est.fit_report_["tasks"]
        print(f"{name}: " + ", ".join(f"{s['name']} {s['seconds']:.2f}s" for s in est.fit_report_["stages"][:6])
              + f" ... ({len(est.fit_report_['stages'])} passes); task seconds: sum "
              f"{t['seconds'].sum():.1f}, mean {t['seconds'].mean():.3f}", file=sys.stderr)
    res = {"steps": st.out, "ari": ari, "n_iter": km.n_iter_,
           "task_peak_rss_bytes_max": int(max(pca.fit_report_["tasks"]["peak_rss_bytes"].max(),
                                              tasks["peak_rss_bytes"].max())),
           "pca_task_peak_rss_bytes_max": int(pca.fit_report_["tasks"]["peak_rss_bytes"].max()),
           "kmeans_tasks": len(tasks)}
    client.close()
    c.close()
    dask.config.refresh()
    return res


def run_daskml(path):
    import dask
    import dask.array as da
    import dask.dataframe as dd
    import numpy as np
    import pyarrow.parquet as pq
    from dask_ml.cluster import KMeans
    from dask_ml.decomposition import PCA
    from distributed import wait

    from embedcluster import metrics

    c, client = cluster()
    st = Steps(client)
    files = sorted(pathlib.Path(path).glob("*.parquet"))
    lengths = [pq.ParquetFile(f).metadata.num_rows for f in files]
    ddf = dd.read_parquet(str(path), dtype_backend="pyarrow", columns=["label", "embedding"])

    def vectors(pdf):
        import pyarrow as pa

        col = pa.chunked_array(pdf["embedding"].array._pa_array).combine_chunks()
        return col.flatten().to_numpy().reshape(len(pdf), -1)

    parts = ddf.to_delayed()
    X = da.concatenate([da.from_delayed(dask.delayed(vectors)(p), shape=(n, 1536), dtype=np.float32)
                        for p, n in zip(parts, lengths)])
    pca = st("fit_pca", lambda: PCA(n_components=128, random_state=0).fit(X))

    def normalize(Y):
        return Y / da.linalg.norm(Y, axis=1, keepdims=True)

    def transform():
        r = normalize(pca.transform(X)).persist()
        wait(r)
        return r

    reduced = st("transform_persist", transform)
    km = st("fit_kmeans", lambda: KMeans(n_clusters=50, random_state=0).fit(reduced))

    def predict():
        labels = km.predict(normalize(pca.transform(X))).compute()
        y = ddf["label"].compute().to_numpy()
        return y, labels

    y, labels = st("predict", predict)
    ari = metrics.adjusted_rand_score(y, labels)
    res = {"steps": st.out, "ari": ari, "n_iter": int(getattr(km, "n_iter_", -1))}
    client.close()
    c.close()
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--parts", type=int, default=16)
    ap.add_argument("--only", choices=["ours", "daskml"])
    ap.add_argument("--path")
    args = ap.parse_args()
    if args.only:
        t0 = time.perf_counter()
        res = (run_ours if args.only == "ours" else run_daskml)(args.path)
        res["total_seconds"] = time.perf_counter() - t0
        res["client_peak_rss_bytes"] = status_hwm()
        print("RESULT " + json.dumps(res))
        return
    path = data_dir(args.parts)
    runs = {"ours": [], "daskml": []}
    for r in range(args.repeat):
        for lib in ("ours", "daskml"):
            p = subprocess.run([sys.executable, __file__, "--only", lib, "--path", str(path)],
                               capture_output=True, text=True)
            line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
            if p.returncode != 0 or not line:
                print(f"{lib} run {r} failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
                continue
            res = json.loads(line[0][7:])
            runs[lib].append(res)
            print(json.dumps({"lib": lib, "run": r, **res}))
    med = lambda xs: statistics.median(xs) if xs else float("nan")  # noqa: E731
    spread = lambda xs: f"{min(xs):.1f}-{max(xs):.1f}" if xs else "-"  # noqa: E731
    print(f"\n{'step':20s} {'ours s':>12s} {'dask-ml s':>12s} {'ratio':>6s}  "
          f"{'ours worker MiB':>16s} {'dask-ml worker MiB':>18s} {'ratio':>6s}")
    for step in ("fit_pca", "transform_persist", "fit_kmeans", "predict"):
        a = [r["steps"][step]["seconds"] for r in runs["ours"]]
        b = [r["steps"][step]["seconds"] for r in runs["daskml"]]
        ma = [r["steps"][step]["worker_peak_rss_bytes"] / MiB for r in runs["ours"]]
        mb = [r["steps"][step]["worker_peak_rss_bytes"] / MiB for r in runs["daskml"]]
        print(f"{step:20s} {med(a):7.1f} ({spread(a)}) {med(b):7.1f} ({spread(b)}) {med(a) / med(b):6.2f}  "
              f"{med(ma):16.0f} {med(mb):18.0f} {med(ma) / med(mb):6.2f}")
    for key in ("total_seconds",):
        a = [r[key] for r in runs["ours"]]
        b = [r[key] for r in runs["daskml"]]
        print(f"{'total':20s} {med(a):7.1f} ({spread(a)}) {med(b):7.1f} ({spread(b)}) {med(a) / med(b):6.2f}")
    wa = [max(s["worker_peak_rss_bytes"] for s in r["steps"].values()) / MiB for r in runs["ours"]]
    wb = [max(s["worker_peak_rss_bytes"] for s in r["steps"].values()) / MiB for r in runs["daskml"]]
    ca = [r["client_peak_rss_bytes"] / MiB for r in runs["ours"]]
    cb = [r["client_peak_rss_bytes"] / MiB for r in runs["daskml"]]
    print(f"largest worker peak MiB: ours {med(wa):.0f}, dask-ml {med(wb):.0f} (ratio {med(wa) / med(wb):.2f})")
    print(f"client peak MiB: ours {med(ca):.0f} (target < 500), dask-ml {med(cb):.0f}")
    print(f"ARI: ours {[round(r['ari'], 3) for r in runs['ours']]}, "
          f"dask-ml {[round(r['ari'], 3) for r in runs['daskml']]}")


if __name__ == "__main__":
    main()
