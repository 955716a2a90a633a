"""embedcluster.spark on local[2]: models fitted on the executors equal the core's on the same
rows, do not depend on the partitioning, and a malformed row fails the job with our message.

Needs pyspark>=4 and Java 17 (``.ci/run`` installs both); skipped where they are missing.
"""

import os
import shutil

import numpy as np
import pytest

pyspark = pytest.importorskip("pyspark")
pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

import embedcluster as ec  # noqa: E402
from conftest import local_spark  # noqa: E402
from embedcluster import spark as ecs  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("java") is None and not os.environ.get("JAVA_HOME"),
                                reason="Spark needs Java 17")


@pytest.fixture(scope="module")
def spark():
    s = local_spark("local[2]", "embedcluster-tests", 300)
    yield s
    s.stop()


def vectors(X):
    n, d = X.shape
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(X.reshape(-1)))


def write(path, X, extra=None):
    cols = {"id": pa.array(np.arange(len(X), dtype=np.int64)), "embedding": vectors(X)}
    cols.update(extra or {})
    pq.write_table(pa.table(cols), path, row_group_size=500)
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=4.0, size=(6, 24))
    y = rng.integers(0, 6, size=2400)
    X = (centers[y] + rng.normal(size=(2400, 24)) + 3.0).astype(np.float32)
    path = write(tmp_path_factory.mktemp("spark") / "x.parquet", X)
    return X, path


def frame(spark, path, partitions):
    # a fixed row order whatever the partitioning: sort within the partitions of a range
    df = spark.read.parquet(path)
    return df.repartitionByRange(partitions, "id").sortWithinPartitions("id")


def rel(a, b):
    return float(np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))) /
                 max(np.max(np.abs(np.asarray(b, float))), 1e-300))


def test_to_numpy_fills_the_rows_in_order_with_other_columns(spark, data):
    X, path = data
    df = frame(spark, path, 3)
    got, other = ecs.to_numpy(df, "embedding", ["id"])
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(other["id"], np.arange(len(X)))
    np.testing.assert_array_equal(got, X)


@pytest.mark.parametrize("partitions", [1, 3, 7])
def test_scaler_equals_the_core_for_any_partitioning(spark, data, partitions):
    X, path = data
    sc = ecs.fit_scaler(frame(spark, path, partitions), "embedding")
    ref = ec.StandardScaler().fit(X)
    assert sc.n_samples_seen_ == len(X)
    assert rel(sc.mean_, ref.mean_) <= 1e-6
    assert rel(sc.var_, ref.var_) <= 1e-6
    out = ecs.to_numpy(ecs.transform_spark(sc, frame(spark, path, partitions), "embedding"), "scaled")
    np.testing.assert_allclose(out, ref.transform(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("partitions", [1, 3, 7])
def test_exact_pca_equals_the_core_for_any_partitioning(spark, data, partitions):
    X, path = data
    p = ecs.fit_pca(frame(spark, path, partitions), "embedding", 5)
    ref = ec.PCA(n_components=5).fit(X)
    assert rel(p.mean_, ref.mean_) <= 1e-6
    assert rel(p.explained_variance_, ref.explained_variance_) <= 1e-6
    # the same deterministic sign, so the components compare directly
    assert rel(p.components_, ref.components_) <= 1e-6
    np.testing.assert_allclose(p.components_ @ p.components_.T, np.eye(5), atol=1e-10)
    red = ecs.to_numpy(ecs.transform_spark(p, frame(spark, path, partitions), "embedding"), "pca")
    assert red.dtype == np.float32
    np.testing.assert_allclose(red, ref.transform(X), rtol=1e-4, atol=1e-4)


def test_randomized_pca_on_a_sample_spans_the_exact_subspace(spark, data):
    X, path = data
    p = ecs.fit_pca(frame(spark, path, 3), "embedding", 5, fit_method="randomized",
                    sample_size=1500)
    ref = ec.PCA(n_components=5).fit(X)
    # the leading principal subspace agrees (cosines of principal angles close to 1)
    s = np.linalg.svd(p.components_ @ ref.components_.T, compute_uv=False)
    assert s.min() > 0.99
    assert rel(p.mean_, ref.mean_) <= 1e-6  # centered with the mean of all rows


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("partitions", [1, 4])
def test_kmeans_from_the_same_centres_gives_the_core_labels(spark, data, metric, partitions):
    X, path = data
    init = X[[0, 400, 800, 1200, 1600, 2000]].astype(np.float64)
    if metric == "cosine":
        init /= np.linalg.norm(init, axis=1, keepdims=True)
    km = ecs.fit_kmeans(frame(spark, path, partitions), "embedding", 6, metric=metric, init=init,
                        tol=0.0)
    ref = ec.KMeans(6, metric=metric, init=init, tol=0.0).fit(X)
    assert rel(km.cluster_centers_, ref.cluster_centers_) <= 1e-5
    out = ecs.predict_spark(km, frame(spark, path, partitions), "embedding")
    labels = ecs.to_numpy(out, "embedding", ["cluster", "score"])[1]
    np.testing.assert_array_equal(labels["cluster"], ref.labels_)
    np.testing.assert_array_equal(labels["cluster"], ref.predict(X))
    assert abs(km.inertia_ - ref.inertia_) <= 1e-5 * abs(ref.inertia_)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_kmeans_with_a_cluster_that_empties_runs_the_core_driver(spark, data, metric):
    """Centre 6 duplicates centre 5, so it starts empty: the core's relocation (the row
    farthest from its centroid, collected from the partitions) re-seeds it, and the stopping
    rule (stable labels, from the partitions' label fingerprints) ends the loop, as in the
    core: the same labels, centres and iterations."""
    X, path = data
    init = X[[0, 400, 800, 1200, 1600, 1600]].astype(np.float64)
    if metric == "cosine":
        init /= np.linalg.norm(init, axis=1, keepdims=True)
    ref = ec.KMeans(6, metric=metric, init=init).fit(X)
    assert np.bincount(ref.labels_, minlength=6).min() > 0
    km = ecs.fit_kmeans(frame(spark, path, 3), "embedding", 6, metric=metric, init=init)
    assert km.n_iter_ == ref.n_iter_
    assert rel(km.cluster_centers_, ref.cluster_centers_) <= 1e-5
    out = ecs.predict_spark(km, frame(spark, path, 3), "embedding")
    labels = ecs.to_numpy(out, "embedding", ["cluster"])[1]["cluster"]
    np.testing.assert_array_equal(labels, ref.labels_)


def test_kmeans_plusplus_on_a_sample_and_save_load(spark, data, tmp_path):
    X, path = data
    km = ecs.fit_kmeans(frame(spark, path, 3), "embedding", 6, metric="cosine",
                        init="k-means++", init_sample_size=1000, random_state=3)
    assert km.cluster_centers_.shape == (6, 24) and km.cluster_centers_.dtype == np.float32
    # every Lloyd pass lowers the objective
    h = km.objective_history_
    assert all(b <= a * (1 + 1e-9) for a, b in zip(h, h[1:]))
    km.save(tmp_path / "m")
    loaded = ec.load(tmp_path / "m")
    out = ecs.predict_spark(loaded, frame(spark, path, 2), "embedding")
    got = ecs.to_numpy(out, "embedding", ["cluster"])[1]["cluster"]
    np.testing.assert_array_equal(got, km.predict(X))


@pytest.mark.parametrize("partitions", [1, 3])
def test_kmeans_parallel_on_spark_gives_the_core_centres(spark, data, partitions):
    """k-means|| over partitions (fixed-point costs, draws hashed from the rows' values)
    gives the core's seeding bit for bit, and the fit the core's labels."""
    from embedcluster import _core
    from embedcluster.preprocessing import _unit_rows

    X, path = data
    want = _core.kmeans_init(_unit_rows(X), 6, "cosine", seed=5, init_name="k-means||",
                             init_trials=1)
    got = ecs._kmeans_parallel(frame(spark, path, partitions), "embedding", 6, "cosine", 24,
                               len(X), np.float32, seed=_core.restart_seed(5, 0))
    np.testing.assert_array_equal(got, want)
    km = ecs.fit_kmeans(frame(spark, path, partitions), "embedding", 6, metric="cosine",
                        random_state=5)
    ref = ec.KMeans(6, metric="cosine", init="k-means||", init_trials=1, random_state=5).fit(X)
    assert rel(km.cluster_centers_, ref.cluster_centers_) <= 1e-5
    np.testing.assert_array_equal(km.predict(X), ref.labels_)


def test_the_pipeline_model_predicts_raw_vectors(spark, data):
    X, path = data
    p = ecs.fit_pca(frame(spark, path, 2), "embedding", 8)
    reduced = ecs.transform_spark(p, frame(spark, path, 2), "embedding").cache()
    km = ecs.fit_kmeans(reduced, "pca", 6, metric="cosine", random_state=0)
    model = ec.ClusterModel(kmeans=km, pca=p, steps=["pca:8", "normalize"])
    got = ecs.to_numpy(ecs.predict_spark(model, frame(spark, path, 2), "embedding"), "embedding",
                       ["cluster"])[1]["cluster"]
    np.testing.assert_array_equal(got, model.predict(X))
    reduced.unpersist()


@pytest.mark.parametrize("bad, message", [
    ("nan", "row 5, column `embedding`[2]: value is NaN"),
    ("null", "row 5, column `embedding`: the vector is null"),
    ("ragged", "row 5, column `embedding`: vector has 3 values, expected 4 (ragged rows)"),
])
def test_a_malformed_row_fails_the_job_with_our_message(spark, tmp_path, bad, message):
    rows = [list(np.full(4, float(i + 1), dtype=np.float32)) for i in range(20)]
    if bad == "nan":
        rows[5][2] = float("nan")
    elif bad == "null":
        rows[5] = None
    else:
        rows[5] = rows[5][:3]
    tbl = pa.table({"id": pa.array(np.arange(20, dtype=np.int64)),
                    "embedding": pa.array(rows, type=pa.list_(pa.float32()))})
    pq.write_table(tbl, tmp_path / "bad.parquet")
    df = spark.read.parquet(str(tmp_path / "bad.parquet")).coalesce(1)
    for fit in (lambda: ecs.fit_pca(df, "embedding", 2), lambda: ecs.fit_scaler(df, "embedding")):
        with pytest.raises(Exception) as e:
            fit()
        assert message in str(e.value), str(e.value)[-2000:]
        assert "partition 0: <arrow stream>" in str(e.value)


def test_a_column_of_another_type_is_refused(spark, tmp_path):
    tbl = pa.table({"embedding": pa.array([[1, 2], [3, 4]], type=pa.list_(pa.int32()))})
    pq.write_table(tbl, tmp_path / "int.parquet")
    df = spark.read.parquet(str(tmp_path / "int.parquet"))
    with pytest.raises(Exception) as e:
        ecs.fit_scaler(df, "embedding")
    assert "list<Int32>" in str(e.value) or "Int32" in str(e.value)


def test_a_directory_written_by_spark_clusters_like_one_file_of_its_rows(spark, data, tmp_path):
    # df.write.parquet: part-*.snappy.parquet files, _SUCCESS and .crc files beside them
    out = str(tmp_path / "spark_out")
    frame(spark, data[1], 3).write.parquet(out)
    names = sorted(os.listdir(out))
    assert "_SUCCESS" in names and any(n.endswith(".crc") for n in names)
    parts = sorted(n for n in names if n.endswith(".parquet"))
    # the same rows, in the same order, in one file (pyarrow reads the parts in path order)
    one = str(tmp_path / "one.parquet")
    pq.write_table(pq.ParquetDataset(out).read(), one)
    kw = dict(reduce="pca:8", metric="euclidean", random_state=0)
    a = ec.cluster_embeddings(out, 6, **kw)
    b = ec.cluster_embeddings(one, 6, **kw)
    c = ec.cluster_embeddings([os.path.join(out, p) for p in parts], 6, **kw)
    assert a.report["n_samples"] == len(data[0])
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.labels, c.labels)
    np.testing.assert_array_equal(a.scores, b.scores)
    # a per-part output mirrors Spark's part names
    ec.cluster_embeddings(out, 6, output=str(tmp_path / "clusters") + "/", **kw)
    assert sorted(os.listdir(tmp_path / "clusters")) == parts


def test_every_fit_reports_each_partitions_task(spark, data):
    """fit_report_ has one row per partition and job, with its rows and its Python worker's
    peak RSS (at least the partition's vectors, which the worker held)."""
    X, path = data
    km = ecs.fit_kmeans(frame(spark, path, 3), "embedding", 6, metric="euclidean",
                        init=X[[0, 400, 800, 1200, 1600, 2000]], max_iter=3, tol=0.0)
    tasks = km.fit_report_["tasks"]
    stages = [s["name"] for s in km.fit_report_["stages"]]
    assert stages[0] == "moments" and len(stages) >= 4
    assert stages[1:] == [f"lloyd[{i}]" for i in range(1, len(stages))]
    for stage in stages:
        t = tasks[tasks["stage"] == stage]
        assert sorted(t["index"]) == [0, 1, 2] and t["rows"].sum() == len(X)
    assert (tasks["peak_rss_bytes"] > X[:800].nbytes).all() and tasks["key"].is_unique
    p = ecs.fit_pca(frame(spark, path, 2), "embedding", 3)
    assert p.fit_report_["stages"][0]["name"] == "covariance"
    assert p.fit_report_["stages"][0]["tasks"] == 2
