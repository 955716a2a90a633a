"""One measurement in its own process: `python worker.py '<json spec>'` prints one JSON line.

Started by bench.py with the thread count already fixed in the environment
(OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS, RAYON_NUM_THREADS) and set again
through each library's own knob. Times are wall seconds of the measured call only (the
orchestrator measures the whole process and its peak RSS with wait4).
"""

import json
import os
import sys
import time

import numpy as np


def vmhwm():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def vmrss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def limits(threads):
    from threadpoolctl import threadpool_limits

    return threadpool_limits(threads)


# --- W0: numpy's float32 GEMM, the peak every Lloyd cell is a fraction of ------------------


def gemm_peak(spec):
    n = spec.get("size", 4096)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    with limits(spec["threads"]):
        a @ b
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
    return {"seconds": best, "gflops": 2 * n**3 / best / 1e9}


# --- W2: Lloyd iterations from given initial centres ---------------------------------------


def lloyd(spec):
    X = np.load(spec["data"])
    C0 = np.load(spec["init"])
    k, it, t = C0.shape[0], spec["iters"], spec["threads"]
    system = spec["system"]
    extra = {}
    if system == "embedcluster":
        import embedcluster as ec

        km = ec.KMeans(k, init=C0, max_iter=it, tol=0.0, n_threads=t,
                       pruning=spec.get("pruning", "auto"))
        t0 = time.perf_counter()
        km.fit(X)
        dt = time.perf_counter() - t0
        assigns = len(km.objective_history_)  # it updates + the final assignment
        inertia = km.inertia_
        extra = {"pruning": km.pruning_}
        centers = km.cluster_centers_
    elif system == "sklearn":
        from sklearn.cluster import KMeans

        km = KMeans(k, init=C0, n_init=1, max_iter=it, tol=0.0, algorithm="lloyd")
        with limits(t):
            t0 = time.perf_counter()
            km.fit(X)
            dt = time.perf_counter() - t0
        assigns = km.n_iter_ + 1  # iterations + the final E-step
        inertia = km.inertia_
        centers = km.cluster_centers_
    elif system == "faiss":
        import faiss

        faiss.omp_set_num_threads(t)
        km = faiss.Kmeans(X.shape[1], k, niter=it, max_points_per_centroid=1 << 30,
                          min_points_per_centroid=1, seed=1, verbose=False)
        t0 = time.perf_counter()
        km.train(X, init_centroids=C0)
        dt = time.perf_counter() - t0
        assigns = it  # one search per iteration
        inertia = float(km.obj[-1]) if len(km.obj) else float("nan")
        centers = km.centroids
    elif system == "superkmeans":
        import faiss

        # FAISS's SuperKMeans (ADSampling + PDX pruning) takes no initial centres: its own
        # seeding is inside the time, so its objective is not from the same start
        faiss.omp_set_num_threads(t)
        km = faiss.SuperKmeans(X.shape[1], k, niter=it, max_points_per_centroid=1 << 30,
                               min_points_per_centroid=1, seed=1, verbose=False)
        t0 = time.perf_counter()
        km.train(X)
        dt = time.perf_counter() - t0
        assigns = it
        inertia = float(km.obj[-1]) if len(km.obj) else float("nan")
        centers = km.centroids
        extra = {"gemm_pruning_rates": [float(v) for v in km.gemm_pruning_rates]}
    elif system == "rustcluster":
        import rustcluster

        # no way to pass initial centres: its own k-means++ is inside the time
        km = rustcluster.KMeans(k, max_iter=it, tol=0.0, n_init=1, algorithm="lloyd", random_state=0)
        t0 = time.perf_counter()
        km.fit(X)
        dt = time.perf_counter() - t0
        assigns = int(km.n_iter_)
        inertia = float(km.inertia_)
        centers = km.cluster_centers_
    else:
        raise ValueError(system)
    n, d = X.shape
    out = {"seconds": dt, "assignments": assigns, "inertia": float(inertia),
           "gflops": 2.0 * n * k * d * assigns / dt / 1e9}
    if spec.get("final_objective"):
        # the same evaluator for every system: sum of squared distances of all rows to the
        # nearest returned centroid (float64 sums of the fused kernel's distances)
        import embedcluster as ec

        _, sq = ec._core.kmeans_predict(X, np.ascontiguousarray(centers, dtype=X.dtype),
                                        "euclidean", t)
        out["final_objective"] = float(np.sum(sq, dtype=np.float64))
    out.update(extra)
    return out


# --- W1: the canonical pipeline, from Parquet -----------------------------------------------


def load_parquet(path):
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["embedding", "label"])
    emb = t.column("embedding").combine_chunks()
    d = emb.type.list_size
    X = emb.values.to_numpy(zero_copy_only=True).reshape(-1, d)  # no copy of the floats
    y = t.column("label").to_numpy()
    return X, y


def pipeline(spec):
    from sklearn.metrics import adjusted_rand_score

    system, t = spec["system"], spec["threads"]
    times = {}
    t0 = time.perf_counter()
    X, y = load_parquet(spec["data"])
    times["load"] = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(X.shape[0], size=min(50000, X.shape[0]), replace=False))
    if system == "faiss":
        import faiss

        faiss.omp_set_num_threads(t)
        t0 = time.perf_counter()
        pca = faiss.PCAMatrix(X.shape[1], 128)
        pca.train(np.ascontiguousarray(X[sample]))
        times["fit"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        Z = pca.apply(X)
        faiss.normalize_L2(Z)
        times["transform"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        km = faiss.Kmeans(128, 50, niter=25, spherical=True, max_points_per_centroid=1 << 30,
                          seed=0, verbose=False)
        km.train(Z)
        _, labels = km.index.search(Z, 1)
        labels = labels.ravel()
        times["cluster"] = time.perf_counter() - t0
    else:
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import normalize

        with limits(t):
            t0 = time.perf_counter()
            pca = PCA(128, svd_solver="randomized", random_state=0).fit(X[sample])
            times["fit"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            Z = normalize(pca.transform(X))
            times["transform"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            if system == "sklearn":
                from sklearn.cluster import KMeans

                labels = KMeans(50, n_init=1, random_state=0).fit(Z).labels_
            elif system == "rustcluster":
                import rustcluster

                labels = rustcluster.KMeans(50, n_init=1, metric="cosine", random_state=0).fit(
                    np.ascontiguousarray(Z, dtype=np.float32)).labels_
            else:
                raise ValueError(system)
            times["cluster"] = time.perf_counter() - t0
    return {"stages": times, "ari": float(adjusted_rand_score(y, labels))}


# --- W3: exact top-k ------------------------------------------------------------------------


def knn(spec):
    base = np.load(spec["base"])
    queries = np.load(spec["queries"])
    k, metric, t, system = spec["k"], spec["metric"], spec["threads"], spec["system"]
    # import first: the baseline is the process with its libraries, base and queries loaded
    mod = {"embedcluster": "embedcluster", "faiss": "faiss", "rustcluster": "rustcluster",
           "sklearn": "sklearn.neighbors"}[system]
    __import__(mod)
    before = vmrss()
    can = reset_peak()
    if system == "embedcluster":
        import embedcluster as ec

        index = (ec.IndexFlatL2 if metric == "l2" else ec.IndexFlatIP)(base.shape[1])
        t0 = time.perf_counter()
        index.add(base)
        D, I = index.search(queries, k, n_threads=t)
        dt = time.perf_counter() - t0
    elif system == "faiss":
        import faiss

        faiss.omp_set_num_threads(t)
        index = (faiss.IndexFlatL2 if metric == "l2" else faiss.IndexFlatIP)(base.shape[1])
        t0 = time.perf_counter()
        index.add(base)
        D, I = index.search(queries, k)
        dt = time.perf_counter() - t0
    elif system == "sklearn":
        from sklearn.neighbors import NearestNeighbors

        if metric != "l2":
            return {"skipped": "scikit-learn has no inner-product metric"}
        with limits(t):
            t0 = time.perf_counter()
            nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="sqeuclidean",
                                  n_jobs=t).fit(base)
            D, I = nn.kneighbors(queries)
            dt = time.perf_counter() - t0
    elif system == "rustcluster":
        import rustcluster

        index = (rustcluster.IndexFlatL2 if metric == "l2" else rustcluster.IndexFlatIP)(base.shape[1])
        t0 = time.perf_counter()
        index.add(base)
        D, I = index.search(queries, k)
        dt = time.perf_counter() - t0
    else:
        raise ValueError(system)
    above = vmhwm() - before if can else None
    return {"seconds": dt, "above_base_bytes": above, "ids_head": np.asarray(I)[:20].tolist()}


# --- W4: streaming standardization, Parquet to Parquet --------------------------------------


def scale_sklearn(spec):
    """scikit-learn's streaming way: partial_fit over Arrow batches, then transform and
    write batch by batch."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.preprocessing import StandardScaler

    t = spec["threads"]
    src, out = spec["data"], spec["output"]
    sc = StandardScaler()
    with limits(t):
        t0 = time.perf_counter()
        f = pq.ParquetFile(src)
        for b in f.iter_batches(batch_size=65536, columns=["embedding"]):
            col = b.column(0)
            X = col.values.to_numpy(zero_copy_only=False).reshape(len(col), -1)
            sc.partial_fit(X)
        writer = None
        for b in f.iter_batches(batch_size=65536):
            emb = b.column(b.schema.get_field_index("embedding"))
            d = emb.type.list_size if hasattr(emb.type, "list_size") else None
            X = emb.values.to_numpy(zero_copy_only=False).reshape(len(emb), -1)
            Z = sc.transform(X).astype(np.float32, copy=False)
            arr = pa.FixedSizeListArray.from_arrays(pa.array(Z.ravel()), Z.shape[1])
            others = [c for c in b.schema.names if c != "embedding"]
            tbl = pa.table({**{c: b.column(c) for c in others}, "embedding": arr})
            if writer is None:
                writer = pq.ParquetWriter(out, tbl.schema, compression="zstd")
            writer.write_table(tbl)
        writer.close()
        dt = time.perf_counter() - t0
    return {"seconds": dt}


def versions(spec):
    import faiss
    import sklearn

    import embedcluster
    import rustcluster

    return {"versions": {"embedcluster": embedcluster.__version__, "scikit-learn": sklearn.__version__,
                         "faiss-cpu": faiss.__version__, "rustcluster": rustcluster.__version__,
                         "numpy": np.__version__}}


def pick_rows(spec):
    """Initial centres: `k` distinct rows drawn with a seeded generator."""
    X = np.load(spec["data"], mmap_mode="r")
    idx = np.sort(np.random.default_rng(spec["seed"]).choice(X.shape[0], size=spec["k"], replace=False))
    np.save(spec["output"], np.ascontiguousarray(X[idx]))
    return {}


def split(spec):
    X = np.load(spec["data"], mmap_mode="r")
    np.save(spec["first"], np.ascontiguousarray(X[: spec["at"]]))
    np.save(spec["second"], np.ascontiguousarray(X[spec["at"]:]))
    return {}


WORKLOADS = {"versions": versions, "pick_rows": pick_rows, "split": split, "gemm": gemm_peak, "lloyd": lloyd, "pipeline": pipeline, "knn": knn,
             "scale_sklearn": scale_sklearn}

if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    out = WORKLOADS[spec["workload"]](spec)
    out["worker_peak_rss_bytes"] = vmhwm()
    print("RESULT " + json.dumps(out))
