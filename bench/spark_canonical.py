"""The canonical workload on Spark local[2] (issue 6): fit_pca(128) + fit_kmeans(50, cosine)
+ predict_spark on a generated 312,000 x 1536 float32 Parquet file read by Spark.

    .venv/bin/python bench/spark_canonical.py [PATH.parquet]

Reports time per step and the peak resident memory of the three kinds of process
separately: this driver Python process (its own VmHWM), the JVM (driver and executors in
local mode) and the executors' Python workers (the largest VmHWM of any of them), sampled
from /proc every 0.2 s while the job runs. Generates the file with `embedcluster generate`
when missing (bench/data/canonical_312000x1536.parquet, about 1.9 GB).
"""

import json
import os
import pathlib
import subprocess
import sys
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
MiB = 1 << 20


def status(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = []
        try:  # children of every thread (the JVM starts the Python daemon from another thread)
            for t in os.listdir(f"/proc/{p}/task"):
                try:
                    kids += open(f"/proc/{p}/task/{t}/children").read().split()
                except OSError:
                    pass
        except OSError:
            pass
        for k in map(int, kids):
            out.append(k)
            todo.append(k)
    return out


class Monitor(threading.Thread):
    """Largest VmHWM seen of the JVM and of any Python worker below this process."""

    def __init__(self):
        super().__init__(daemon=True)
        self.jvm = 0
        self.workers = 0
        self.n_workers = set()
        self.stop = False

    def run(self):
        me = os.getpid()
        while not self.stop:
            for p in descendants(me):
                hwm = status(p, "VmHWM") or 0
                c = cmdline(p)
                if "java" in c.split(" ")[0]:
                    self.jvm = max(self.jvm, hwm)
                elif "python" in c:  # pyspark.daemon and the workers it forks
                    self.workers = max(self.workers, hwm)
                    self.n_workers.add(p)
            time.sleep(0.2)


def main():
    path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "data" / "canonical_312000x1536.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(ROOT / "target" / "release" / "embedcluster"), "generate", "--n-samples",
                        "312000", "--n-features", "1536", "--n-clusters", "50", "--seed", "0",
                        "--output", str(path)], check=True)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    import embedcluster as ec
    from embedcluster import spark as ecs
    from embedcluster import metrics

    mon = Monitor()
    mon.start()
    t = {}
    t0 = time.perf_counter()
    spark = (SparkSession.builder.master("local[2]").appName("embedcluster-canonical")
             .config("spark.driver.memory", "2g")
             .config("spark.sql.execution.arrow.maxRecordsPerBatch", "2048")
             .config("spark.ui.enabled", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    t["start_spark"] = time.perf_counter() - t0
    df = spark.read.parquet(str(path))
    s = time.perf_counter()
    pca = ecs.fit_pca(df, "embedding", 128)
    t["fit_pca"] = time.perf_counter() - s
    s = time.perf_counter()
    reduced = ecs.transform_spark(pca, df.select("id", "label", "embedding"), "embedding").select(
        "id", "label", "pca").cache()
    n = reduced.count()
    t["transform_spark_and_cache"] = time.perf_counter() - s
    s = time.perf_counter()
    km = ecs.fit_kmeans(reduced, "pca", 50, metric="cosine", random_state=0)
    t["fit_kmeans"] = time.perf_counter() - s
    s = time.perf_counter()
    model = ec.ClusterModel(kmeans=km, pca=pca, steps=["pca:128", "normalize"])
    pred = ecs.predict_spark(model, df.select("id", "label", "embedding"), "embedding").select(
        "id", "label", "cluster")
    tbl = pred.toArrow()  # three scalar columns: 312,000 x 16 bytes
    t["predict_spark"] = time.perf_counter() - s
    ari = metrics.adjusted_rand_score(tbl.column("label").to_numpy(), tbl.column("cluster").to_numpy())
    t["total"] = time.perf_counter() - t0
    driver = status(os.getpid(), "VmHWM")
    time.sleep(0.5)
    mon.stop = True
    mon.join()
    spark.stop()
    out = {"rows": n, "seconds": t, "ari": ari, "n_iter": km.n_iter_,
           "driver_python_peak_rss_bytes": driver, "jvm_peak_rss_bytes": mon.jvm,
           "python_worker_peak_rss_bytes": mon.workers, "python_workers_seen": len(mon.n_workers)}
    print(json.dumps(out, indent=1))
    print(f"driver Python peak {driver / MiB:.0f} MiB (target < 500), JVM {mon.jvm / MiB:.0f} MiB, "
          f"largest Python worker {mon.workers / MiB:.0f} MiB; total {t['total']:.0f} s, ARI {ari:.3f}")


if __name__ == "__main__":
    main()
