"""k-means|| against k-means++ on Spark local[2] (issue 16): the same reduced rows as
`bench/init_seeds.py` (unit rows of PCA 128), written once as Parquet, then
`embedcluster.spark.fit_kmeans(init="k-means||")` (all rows, 2 jobs per round) and
`fit_kmeans(init="k-means++")` (the core's screened seeding on a driver sample), each
followed by the same Lloyd jobs; and the core in memory with the same seedings. Prints
objective, ARI and seconds per configuration.

    python bench/spark_init.py REDUCED.npy LABELS.npy K
"""

import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.metrics import adjusted_rand_score

import embedcluster as ec
from embedcluster import spark as ecs


def main():
    X = np.load(sys.argv[1]).astype(np.float32)
    y = np.load(sys.argv[2])
    k = int(sys.argv[3])
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]")
             .config("spark.driver.memory", "4g").getOrCreate())
    with tempfile.TemporaryDirectory() as tmp:
        n, d = X.shape
        emb = pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), d)
        pq.write_table(pa.table({"id": pa.array(np.arange(n)), "embedding": emb}),
                       f"{tmp}/x.parquet", row_group_size=20000)
        df = spark.read.parquet(f"{tmp}/x.parquet").cache()
        df.count()
        for init in ["k-means||", "k-means++"]:
            t = time.perf_counter()
            km = ecs.fit_kmeans(df, "embedding", k, metric="cosine", init=init, random_state=0)
            secs = time.perf_counter() - t
            lab = km.predict(X)
            print(f"spark {init:10s} objective {km.inertia_:.1f} ARI "
                  f"{adjusted_rand_score(y, lab):.3f} {secs:.1f} s ({km.n_iter_} iterations)",
                  flush=True)
        for init, trials in [("k-means||", 1), ("k-means++", 1), ("k-means++", 16)]:
            t = time.perf_counter()
            km = ec.KMeans(k, metric="cosine", init=init, init_trials=trials, random_state=0).fit(X)
            secs = time.perf_counter() - t
            print(f"core  {init:10s} trials {trials:2d} objective {km.inertia_:.1f} ARI "
                  f"{adjusted_rand_score(y, km.labels_):.3f} {secs:.1f} s "
                  f"({km.n_iter_} iterations)", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
