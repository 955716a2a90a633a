"""The canonical workload on Spark local[2]: embedcluster.spark beside Spark MLlib on the same
DataFrame (issue 21).

    .venv/bin/python bench/spark_mllib.py [--repeat 1] [--path DIR_OR_FILE]

Data: the canonical 312,000 x 1536 float32 Parquet directory (bench/data/canonical_parts16,
as for bench/dask_canonical.py; generated when missing). Each system runs in its own Python
process with its own SparkSession (local[2]):

- embedcluster: `fit_pca(df, "embedding", 128)`, `transform_spark` + `cache()` of the 128-d
  vectors, `fit_kmeans(50, metric="cosine")` (k-means||), `predict_spark` of the pipeline
  model on the raw vectors, `toArrow()` of label and cluster; driver memory 2 GiB.
- MLlib: `array_to_vector`, `PCA(k=128)`, `Normalizer`, `cache()`, `KMeans(k=50,
  distanceMeasure="cosine", seed=0)` (its default k-means||, maxIter 20), the fitted
  models' `transform` on the raw vectors; driver memory 12 GiB and 256-row Parquet reader
  batches (with 6 GiB it died of heap exhaustion in the vectorized reader).

Per step: seconds; peaks (VmHWM, sampled every 0.2 s from /proc, as bench/spark_canonical.py)
of the driver Python process, the JVM and the largest Python worker; ARI against the
generator's labels. Prints one JSON line per run and the medians side by side.
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
sys.path.insert(0, str(HERE))
MiB = 1 << 20


def run(lib, path):
    from spark_canonical import Monitor, status  # the /proc sampler of the Spark bench

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    from embedcluster import metrics

    mon = Monitor()
    mon.start()
    t, t0 = {}, time.perf_counter()
    b = SparkSession.builder.master("local[2]").appName(f"canonical-{lib}").config("spark.ui.enabled", "false")
    if lib == "ours":
        b = b.config("spark.driver.memory", "2g").config("spark.sql.execution.arrow.maxRecordsPerBatch", "2048")
    else:
        b = b.config("spark.driver.memory", "12g").config("spark.sql.parquet.columnarReaderBatchSize", "256")
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    t["start_spark"] = time.perf_counter() - t0
    df = spark.read.parquet(str(path)).select("label", "embedding")

    def step(name, fn):
        s = time.perf_counter()
        r = fn()
        t[name] = time.perf_counter() - s
        return r

    if lib == "ours":
        import embedcluster as ec
        from embedcluster import spark as ecs

        pca = step("fit_pca", lambda: ecs.fit_pca(df, "embedding", 128))

        def transform():
            r = ecs.transform_spark(pca, df, "embedding").select("label", "pca").cache()
            r.count()
            return r

        reduced = step("transform_cache", transform)
        km = step("fit_kmeans", lambda: ecs.fit_kmeans(reduced, "pca", 50, metric="cosine", random_state=0))
        model = ec.ClusterModel(kmeans=km, pca=pca, steps=["pca:128", "normalize"])
        tbl = step("predict", lambda: ecs.predict_spark(model, df, "embedding").select("label", "cluster").toArrow())
        y, labels = tbl.column("label").to_numpy(), tbl.column("cluster").to_numpy()
        extra = {"n_iter": km.n_iter_,
                 "largest_task_peak_rss_bytes": int(max(pca.fit_report_["tasks"]["peak_rss_bytes"].max(),
                                                        km.fit_report_["tasks"]["peak_rss_bytes"].max()))}
    else:
        from pyspark.ml.clustering import KMeans
        from pyspark.ml.feature import PCA, Normalizer
        from pyspark.ml.functions import array_to_vector

        vec = df.select("label", array_to_vector("embedding").alias("features"))
        pca = step("fit_pca", lambda: PCA(k=128, inputCol="features", outputCol="pca").fit(vec))
        norm = Normalizer(inputCol="pca", outputCol="unit")

        def transform():
            r = norm.transform(pca.transform(vec)).select("label", "unit").cache()
            r.count()
            return r

        reduced = step("transform_cache", transform)
        km = step("fit_kmeans", lambda: KMeans(k=50, featuresCol="unit", distanceMeasure="cosine",
                                               seed=0).fit(reduced))
        out = step("predict", lambda: km.transform(norm.transform(pca.transform(vec)))
                   .select("label", "prediction").toArrow())
        y, labels = out.column("label").to_numpy(), out.column("prediction").to_numpy()
        extra = {"n_iter": km.summary.numIter}
    ari = metrics.adjusted_rand_score(y, labels)
    t["total"] = time.perf_counter() - t0
    driver = status(os.getpid(), "VmHWM")
    time.sleep(0.5)
    mon.stop = True
    mon.join()
    spark.stop()
    return {"seconds": t, "ari": ari, "driver_python_peak_rss_bytes": driver,
            "jvm_peak_rss_bytes": mon.jvm, "python_worker_peak_rss_bytes": mon.workers, **extra}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--path")
    ap.add_argument("--only", choices=["ours", "mllib"])
    args = ap.parse_args()
    if args.only:
        print("RESULT " + json.dumps(run(args.only, args.path)))
        return
    path = args.path
    if path is None:
        from dask_canonical import data_dir

        path = data_dir(16)
    runs = {"ours": [], "mllib": []}
    for r in range(args.repeat):
        for lib in ("ours", "mllib"):
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
    print(f"\n{'step':16s} {'ours s':>8s} {'MLlib s':>8s} {'ratio':>6s}")
    for step in ("start_spark", "fit_pca", "transform_cache", "fit_kmeans", "predict", "total"):
        a = med([x["seconds"][step] for x in runs["ours"]])
        b = med([x["seconds"][step] for x in runs["mllib"]])
        print(f"{step:16s} {a:8.1f} {b:8.1f} {a / b:6.2f}")
    for key in ("driver_python_peak_rss_bytes", "jvm_peak_rss_bytes", "python_worker_peak_rss_bytes"):
        a = med([x[key] / MiB for x in runs["ours"]])
        b = med([x[key] / MiB for x in runs["mllib"]])
        print(f"{key:32s} ours {a:7.0f} MiB  MLlib {b:7.0f} MiB")
    print("ARI: ours", [round(x["ari"], 3) for x in runs["ours"]], "MLlib", [round(x["ari"], 3) for x in runs["mllib"]])


if __name__ == "__main__":
    main()
