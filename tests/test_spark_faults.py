"""Spark task retries: a task that raises, or whose Python worker dies mid-task, is retried
by Spark (``local[2,3]``: up to 3 attempts per task), and the fitted scaler, PCA and k-means
are bit for bit those of an undisturbed job; ``predict_spark`` gives every row exactly once.

Faults are injected upstream of our code, in a pass-through ``mapInArrow`` over the input
frame that fails the first attempt of two partitions (one raises, one kills its worker) in
every other pass over the input (moments, co-moments, k-means|| rounds, Lloyd iterations,
the prediction), starting with each fit's first, so each fit and the prediction meet both
kinds of retried task. Needs pyspark>=4 and Java 17 (``.ci/run``).
"""

import os
import pathlib
import shutil

import numpy as np
import pytest

pyspark = pytest.importorskip("pyspark")
pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

from conftest import local_spark  # noqa: E402
from embedcluster import spark as ecs  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("java") is None and not os.environ.get("JAVA_HOME"),
                                reason="Spark needs Java 17")

RAISE, KILL = 1, 2  # the partitions whose first attempts raise / kill their Python worker


@pytest.fixture(scope="module")
def spark():
    s = local_spark("local[2,3]", "embedcluster-faults", 250)  # up to 3 attempts per task
    s.sparkContext.setLogLevel("OFF")  # the injected faults' stack traces
    yield s
    s.stop()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(3)
    centers = rng.normal(scale=3.0, size=(5, 16))
    y = rng.integers(0, 5, size=2000)
    X = (centers[y] + rng.normal(size=(2000, 16)) + 1.0).astype(np.float32)
    n, d = X.shape
    emb = pa.ListArray.from_arrays(pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32)),
                                   pa.array(X.reshape(-1)))
    path = tmp_path_factory.mktemp("faults") / "x.parquet"
    pq.write_table(pa.table({"id": pa.array(np.arange(n, dtype=np.int64)), "embedding": emb}),
                   path, row_group_size=400)
    return X, str(path)


def frame(spark, path, faults_dir=None):
    # a partitioning that is the same in every job (hash of the id; a range partitioning's
    # bounds come from a sample that changes between jobs, and with it the partial sums)
    df = spark.read.parquet(path).repartition(4, "id").sortWithinPartitions("id")
    if faults_dir is None:
        return df
    where = pathlib.Path(faults_dir)

    def flaky(batches):
        from pyspark import TaskContext

        tc = TaskContext.get()
        pid = tc.partitionId()
        if tc.attemptNumber() == 0 and pid in (RAISE, KILL):
            # every other pass over the input (the first of each fit among them) fails once
            (where / f"visit-{pid}-{tc.stageId()}").write_text("")
            if len(list(where.glob(f"visit-{pid}-*"))) % 2 == 1:
                (where / f"fault-{pid}-{tc.stageId()}").write_text("")
                if pid == KILL:
                    os._exit(1)  # the Python worker dies mid-task
                raise RuntimeError("injected fault")
        yield from batches

    return df.mapInArrow(flaky, df.schema)


def test_retried_tasks_give_the_undisturbed_fits_and_rows_exactly_once(spark, data, tmp_path):
    X, path = data
    clean = frame(spark, path)
    want = {
        "scaler": ecs.fit_scaler(clean, "embedding"),
        "pca": ecs.fit_pca(clean, "embedding", 4, fit_method="exact"),
        "kmeans": ecs.fit_kmeans(clean, "embedding", 5, metric="euclidean", init="k-means||",
                                 max_iter=3, random_state=0),
    }
    fits = {
        "scaler": lambda df: ecs.fit_scaler(df, "embedding"),
        "pca": lambda df: ecs.fit_pca(df, "embedding", 4, fit_method="exact"),
        "kmeans": lambda df: ecs.fit_kmeans(df, "embedding", 5, metric="euclidean",
                                            init="k-means||", max_iter=3, random_state=0),
    }
    got, faults = {}, {}
    for name, fit in fits.items():
        d = tmp_path / name
        d.mkdir()
        got[name] = fit(frame(spark, path, d))
        faults[name] = sorted(p.name for p in d.glob("fault-*"))
        # both kinds of fault hit this fit
        assert {t.split("-")[1] for t in faults[name]} == {str(RAISE), str(KILL)}, faults
    a, b = want["scaler"], got["scaler"]
    pairs = [(a.mean_, b.mean_), (a.var_, b.var_), (a.scale_, b.scale_)]
    a, b = want["pca"], got["pca"]
    pairs += [(a.components_, b.components_), (a.mean_, b.mean_),
              (a.explained_variance_, b.explained_variance_)]
    a, b = want["kmeans"], got["kmeans"]
    pairs += [(a.cluster_centers_, b.cluster_centers_)]
    for x, y in pairs:
        assert np.array_equal(x, y)  # bit for bit
    assert a.inertia_ == b.inertia_ and a.n_iter_ == b.n_iter_

    d = tmp_path / "predict"
    d.mkdir()
    out = ecs.predict_spark(a, frame(spark, path, d), "embedding").select("id", "cluster").toArrow()
    assert {p.name.split("-")[1] for p in d.glob("fault-*")} == {str(RAISE), str(KILL)}
    ids = out.column("id").to_numpy()
    assert len(ids) == len(X) and len(np.unique(ids)) == len(X)  # every row exactly once
    order = np.argsort(ids)
    assert np.array_equal(out.column("cluster").to_numpy()[order], a.predict(X))
    print({k: len(v) for k, v in faults.items()})
