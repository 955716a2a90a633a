"""embedcluster.dask on a distributed LocalCluster started by the tests: models fitted on the
workers equal the core's on the same rows for 1, 2 and 7 chunks per worker and 1 and 2
workers, apply lazily, report what each task held, and a malformed row fails with our
message naming the chunk or partition.

Needs dask[array,dataframe] and distributed (``.ci/run`` installs them); skipped where
missing.
"""

import numpy as np
import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
pa = pytest.importorskip("pyarrow")
import dask.array as da  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import embedcluster as ec  # noqa: E402
from embedcluster import _core  # noqa: E402
from embedcluster import dask as ecd  # noqa: E402


@pytest.fixture(scope="module", params=[1, 2], ids=["1worker", "2workers"])
def client(request):
    cluster = distributed.LocalCluster(n_workers=request.param, threads_per_worker=1,
                                       memory_limit="2GiB", processes=True,
                                       dashboard_address=None, silence_logs=40)
    c = distributed.Client(cluster)
    c.n_workers = request.param
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=4.0, size=(6, 24))
    y = rng.integers(0, 6, size=2400)
    return (centers[y] + rng.normal(size=(2400, 24)) + 3.0).astype(np.float32)


def chunked(X, client, per_worker):
    n_chunks = per_worker * client.n_workers
    size = -(-len(X) // n_chunks)
    return da.from_array(X, chunks=(size, X.shape[1]))


def vectors(X):
    n, d = X.shape
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(X.reshape(-1)))


def dataset(tmp_path, X, parts):
    """A Parquet directory of `parts` files (ids and vectors), read back in path order."""
    root = tmp_path / "ds"
    root.mkdir(exist_ok=True)
    bounds = np.linspace(0, len(X), parts + 1).astype(int)
    for p in range(parts):
        a, b = bounds[p], bounds[p + 1]
        pq.write_table(pa.table({"id": pa.array(np.arange(a, b, dtype=np.int64)),
                                 "embedding": vectors(X[a:b])}), root / f"part-{p:05d}.parquet",
                       row_group_size=150)  # several Arrow chunks per partition
    return str(root)


def rel(a, b):
    return float(np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))) /
                 max(np.max(np.abs(np.asarray(b, float))), 1e-300))


@pytest.mark.parametrize("per_worker", [1, 2, 7])
def test_scaler_and_exact_pca_equal_the_core_for_any_chunking(client, X, per_worker):
    data = chunked(X, client, per_worker)
    sc = ecd.fit_scaler(data)
    ref = ec.StandardScaler().fit(X)
    assert sc.n_samples_seen_ == len(X)
    assert rel(sc.mean_, ref.mean_) <= 1e-6 and rel(sc.var_, ref.var_) <= 1e-6
    np.testing.assert_allclose(sc.transform_dask(data).compute(), ref.transform(X), rtol=1e-5, atol=1e-5)

    p = ecd.fit_pca(data, 5)
    ref = ec.PCA(n_components=5).fit(X)
    assert rel(p.mean_, ref.mean_) <= 1e-6
    assert rel(p.explained_variance_, ref.explained_variance_) <= 1e-6
    assert rel(p.components_, ref.components_) <= 1e-6
    red = p.transform_dask(data)
    assert isinstance(red, da.Array) and red.dtype == np.float32
    np.testing.assert_allclose(red.compute(), ref.transform(X), rtol=1e-4, atol=1e-4)


def test_randomized_pca_draws_the_in_memory_sample(client, X):
    """The sample is drawn by global row index as PCA draws it in memory: the same rows,
    so the same subspace however the array is chunked."""
    ref = ec.PCA(n_components=5, fit_method="randomized", sample_size=1500, random_state=4).fit(X)
    for per_worker in (1, 7):
        p = ecd.fit_pca(chunked(X, client, per_worker), 5, fit_method="randomized",
                        sample_size=1500, random_state=4)
        assert rel(p.explained_variance_, ref.explained_variance_) <= 1e-5
        assert rel(p.components_, ref.components_) <= 1e-4


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("per_worker", [1, 2, 7])
def test_kmeans_from_the_same_centres_gives_the_core_labels(client, X, metric, per_worker):
    init = X[[0, 400, 800, 1200, 1600, 2000]].astype(np.float64)
    if metric == "cosine":
        init /= np.linalg.norm(init, axis=1, keepdims=True)
    data = chunked(X, client, per_worker)
    km = ecd.fit_kmeans(data, 6, metric=metric, init=init, tol=0.0)
    ref = ec.KMeans(6, metric=metric, init=init, tol=0.0).fit(X)
    assert km.n_iter_ == ref.n_iter_
    assert rel(km.cluster_centers_, ref.cluster_centers_) <= 1e-5
    assert abs(km.inertia_ - ref.inertia_) <= 1e-5 * abs(ref.inertia_)
    labels = km.predict_dask(data)
    assert isinstance(labels, da.Array) and labels.dtype == np.int32
    np.testing.assert_array_equal(labels.compute(), ref.labels_)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_a_cluster_that_empties_is_relocated_as_in_the_core(client, X, metric):
    init = X[[0, 400, 800, 1200, 1600, 1600]].astype(np.float64)
    if metric == "cosine":
        init /= np.linalg.norm(init, axis=1, keepdims=True)
    ref = ec.KMeans(6, metric=metric, init=init).fit(X)
    assert np.bincount(ref.labels_, minlength=6).min() > 0
    km = ecd.fit_kmeans(chunked(X, client, 3), 6, metric=metric, init=init)
    assert km.n_iter_ == ref.n_iter_
    assert rel(km.cluster_centers_, ref.cluster_centers_) <= 1e-5
    assert any(s["name"].startswith("farthest") for s in km.fit_report_["stages"])


@pytest.mark.parametrize("per_worker", [1, 7])
def test_kmeans_parallel_gives_the_core_seeding_and_labels(client, X, per_worker):
    """k-means|| over chunks (fixed-point costs, draws hashed from the rows' values, the
    candidates' weights kept) is the core's seeding, so the fit is the core's."""
    km = ecd.fit_kmeans(chunked(X, client, per_worker), 6, metric="cosine", random_state=5)
    ref = ec.KMeans(6, metric="cosine", init="k-means||", init_trials=1, random_state=5).fit(X)
    assert rel(km.cluster_centers_, ref.cluster_centers_) <= 1e-5
    np.testing.assert_array_equal(km.predict(X), ref.labels_)
    names = [s["name"] for s in km.fit_report_["stages"]]
    assert names[:2] == ["load", "moments"] and "kmeans||-weights" in names and names[-1].startswith("lloyd[")


def test_a_parquet_dataset_fits_predicts_and_keeps_its_columns(client, X, tmp_path):
    """dd.read_parquet(dtype_backend="pyarrow"): the list column is decoded by the core's
    Arrow reader; transform and predict append columns beside the others."""
    root = dataset(tmp_path, X, 5)
    ddf = dd.read_parquet(root, dtype_backend="pyarrow")
    p = ecd.fit_pca(ddf, 5)  # the 5 directions the 6 centres span (the rest are noise)
    ref = ec.PCA(n_components=5).fit(X)
    assert rel(p.components_, ref.components_) <= 1e-6
    reduced = p.transform_dask(ddf).persist()
    got = reduced.compute()
    assert list(got.columns) == ["id", "embedding", "pca"]
    np.testing.assert_array_equal(got["id"].to_numpy(), np.arange(len(X)))
    np.testing.assert_allclose(np.stack(got["pca"].to_numpy()), ref.transform(X), rtol=1e-4, atol=1e-4)
    assert got["pca"].dtype.pyarrow_dtype == pa.list_(pa.float32())

    km = ecd.fit_kmeans(reduced, 6, column="pca", metric="cosine", random_state=0)
    Y = np.stack(got["pca"].to_numpy())
    kref = ec.KMeans(6, metric="cosine", init="k-means||", init_trials=1, random_state=0).fit(Y)
    out = km.predict_dask(reduced, column="pca").compute()
    assert list(out.columns) == ["id", "embedding", "pca", "cluster", "score"]
    assert out["cluster"].dtype == np.int32 and out["score"].dtype == np.float32
    # the same reduced rows: the core's seeding and labels
    assert rel(km.cluster_centers_, kref.cluster_centers_) <= 1e-5
    np.testing.assert_array_equal(out["cluster"].to_numpy(), kref.labels_)

    # the pipeline model assigns raw vectors as in memory
    model = ec.ClusterModel(kmeans=km, pca=p, steps=["pca:5", "normalize"])
    got = model.predict_dask(ddf).compute()
    np.testing.assert_array_equal(got["cluster"].to_numpy(), model.predict(X))


def test_the_fit_report_has_one_row_per_task_with_its_peak(client):
    """Chunks of 16 MiB: every task's peak is at least its chunk (the worker holds it while
    the task runs), and the sampling does not reset the worker's high-water mark."""
    data = da.random.RandomState(1).normal(size=(32768, 256), chunks=(16384, 256)).astype(np.float32)
    p = ecd.fit_pca(data, 4)
    tasks = p.fit_report_["tasks"]
    assert list(tasks.columns) == ["key", "stage", "index", "rows", "seconds", "peak_rss_bytes",
                                   "worker", "pid"]
    assert sorted(tasks["index"]) == [0, 1] and tasks["rows"].sum() == 32768
    assert (tasks["peak_rss_bytes"] >= 16384 * 256 * 4).all()
    assert tasks["key"].is_unique and (tasks["seconds"] > 0).all()
    assert set(tasks["worker"]) <= set(client.scheduler_info()["workers"])
    hwm = client.run(_core.peak_rss_bytes)  # VmHWM per worker, never lowered by the sampler
    for _, t in tasks.iterrows():
        assert hwm[t["worker"]] >= t["peak_rss_bytes"] - (1 << 20)
    st = p.fit_report_["stages"]
    assert st[0]["name"] == "covariance" and st[0]["tasks"] == 2
    assert p.fit_report_["client_peak_rss_bytes"] > 0


def test_save_load_and_a_loaded_model_predicts_on_the_workers(client, X, tmp_path):
    data = chunked(X, client, 2)
    km = ecd.fit_kmeans(data, 6, metric="euclidean", init="k-means++", init_sample_size=1000,
                        random_state=3)
    h = km.objective_history_
    assert all(b <= a * (1 + 1e-9) for a, b in zip(h, h[1:]))
    km.save(tmp_path / "m")
    loaded = ec.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict_dask(data).compute(), km.predict(X))


def test_a_nan_in_a_chunk_names_the_chunk_and_row(client, X):
    bad = X.copy()
    bad[1234, 5] = np.nan
    data = da.from_array(bad, chunks=(500, 24))
    with pytest.raises(ValueError) as e:
        ecd.fit_scaler(data)
    assert "chunk 2: row 234 (row 1234 of the array), column 5: value is NaN" in str(e.value)
    with pytest.raises(ValueError) as e:
        ecd.fit_kmeans(data, 3)
    assert "chunk 2: row 234" in str(e.value)


@pytest.mark.parametrize("bad, message", [
    ("nan", "row 5, column `embedding`[2]: value is NaN"),
    ("null", "row 5, column `embedding`: the vector is null"),
    ("ragged", "row 5, column `embedding`: vector has 3 values, expected 4 (ragged rows)"),
])
def test_a_malformed_row_in_a_partition_names_it(client, tmp_path, bad, message):
    rows = [list(np.full(4, float(i + 1), dtype=np.float32)) for i in range(20)]
    if bad == "nan":
        rows[5][2] = float("nan")
    elif bad == "null":
        rows[5] = None
    else:
        rows[5] = rows[5][:3]
    root = tmp_path / "bad"
    root.mkdir()
    good = [list(np.full(4, 1.0, dtype=np.float32))] * 10
    pq.write_table(pa.table({"embedding": pa.array(good, type=pa.list_(pa.float32()))}),
                   root / "part-0.parquet")
    pq.write_table(pa.table({"embedding": pa.array(rows, type=pa.list_(pa.float32()))}),
                   root / "part-1.parquet", row_group_size=4)  # row 5 is in the 2nd chunk
    ddf = dd.read_parquet(str(root), dtype_backend="pyarrow")
    for fit in (lambda: ecd.fit_pca(ddf, 2), lambda: ecd.fit_scaler(ddf)):
        with pytest.raises(ValueError) as e:
            fit()
        assert message in str(e.value) and "partition 1: " in str(e.value), str(e.value)


def test_a_zero_row_under_the_cosine_metric_names_its_chunk(client, X):
    bad = X.copy()
    bad[1234] = 0.0
    with pytest.raises(ValueError) as e:
        ecd.fit_kmeans(da.from_array(bad, chunks=(500, 24)), 3, metric="cosine")
    assert "chunk 2: " in str(e.value) and "234" in str(e.value), str(e.value)


def test_wrong_inputs_are_clear_errors(client, X):
    with pytest.raises(TypeError, match="dask.array.Array or dask.dataframe.DataFrame"):
        ecd.fit_scaler(X)
    with pytest.raises(ValueError, match="2-D"):
        ecd.fit_scaler(da.from_array(X[:, 0], chunks=100))
    ddf = dd.from_pandas(__import__("pandas").DataFrame({"a": [1.0, 2.0]}), npartitions=1)
    with pytest.raises(ValueError, match="column `embedding` not found"):
        ecd.fit_scaler(ddf)
    # a chunked second axis is joined, not refused
    sc = ecd.fit_scaler(da.from_array(X, chunks=(600, 10)))
    assert rel(sc.mean_, X.mean(axis=0, dtype=np.float64)) <= 1e-6


@pytest.mark.parametrize("kind", ["list", "large_list", "fixed", "float64", "sliced"])
def test_the_zero_copy_read_of_a_partition_equals_the_core_reader(kind):
    """Lists without nulls, all of one length, are read from the Arrow values buffers (one
    view per chunk); the rows equal the core reader's, chunk boundaries and slices included."""
    import pandas as pd

    from embedcluster import _engine

    X = np.random.default_rng(2).normal(size=(50, 6)).astype(np.float64 if kind == "float64" else np.float32)
    flat = pa.array(X.reshape(-1))
    if kind == "fixed":
        arr = pa.FixedSizeListArray.from_arrays(flat, 6)
    elif kind == "large_list":
        arr = pa.LargeListArray.from_arrays(pa.array(np.arange(0, 51 * 6, 6, dtype=np.int64)), flat)
    else:
        arr = pa.ListArray.from_arrays(pa.array(np.arange(0, 51 * 6, 6, dtype=np.int32)), flat)
    chunks = [arr.slice(0, 20), arr.slice(20, 30)]
    if kind == "sliced":
        chunks = [arr.slice(3, 17), arr.slice(20, 30)]
    tbl = pa.table({"embedding": pa.chunked_array(chunks)})
    pdf = tbl.to_pandas(types_mapper=pd.ArrowDtype)
    got = _engine.partition_blocks(pdf, "embedding", "partition 0: ")
    want = np.concatenate(list(_core.ArrowVectorReader(tbl, "embedding")))
    assert len(got) == 2 and got[0].dtype == X.dtype
    np.testing.assert_array_equal(np.concatenate(got), want)
