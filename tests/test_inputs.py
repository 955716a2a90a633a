"""Arrow (pyarrow, polars) and NumPy inputs, the pipeline, threads, fork and Ctrl-C."""

import json
import multiprocessing
import os
import signal
import subprocess
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import polars as pl
import pytest

import embedcluster as ec
from conftest import ROOT, SAMPLE, SHARED


def _emb(n=2000, d=24, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32) + rng.normal(scale=3, size=(6, d)).astype(np.float32)[rng.integers(0, 6, n)]
    return X


def test_pyarrow_polars_and_numpy_inputs_give_identical_results():
    X = _emb()
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), X.shape[1])
    table = pa.table({"id": np.arange(len(X)), "embedding": fixed}).combine_chunks()
    # several batches, as a real stream
    table = pa.Table.from_batches(table.to_batches(max_chunksize=300))
    lists = pa.table({"vec": pa.array(list(X))})  # list<float>
    polars_df = pl.DataFrame({"embedding": X})  # Array(Float32, d)
    np.testing.assert_array_equal(ec.to_numpy(table), X)
    np.testing.assert_array_equal(ec.to_numpy(lists, column="vec"), X)
    np.testing.assert_array_equal(ec.to_numpy(polars_df), X)
    assert ec.to_numpy(table).dtype == np.float32
    ref = ec.KMeans(6, random_state=0).fit(X).labels_
    for src in (table, polars_df):
        np.testing.assert_array_equal(ec.KMeans(6, random_state=0).fit(src).labels_, ref)
    pca = ec.PCA(5).fit(X)
    for src in (table, polars_df):
        p = ec.PCA(5).fit(src)  # streamed: partial fits per batch
        np.testing.assert_allclose(p.components_, pca.components_, atol=1e-5)
        np.testing.assert_allclose(p.transform(src), pca.transform(X), atol=1e-4)
    a = ec.cluster_embeddings(X, 6, reduce="pca:8")
    b = ec.cluster_embeddings(table, 6, reduce="pca:8")
    c = ec.cluster_embeddings(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()), 6, reduce="pca:8")
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.labels, c.labels)
    scaler = ec.StandardScaler().fit(table)
    np.testing.assert_allclose(scaler.mean_, X.astype(np.float64).mean(0), rtol=1e-6)


def test_arrow_bad_rows_name_row_and_column():
    rows = [[1.0, 2.0], [3.0, 4.0], None, [5.0, 6.0]]
    with pytest.raises(ec.EmbedclusterError, match="row 2, column `embedding`: the vector is null"):
        ec.to_numpy(pa.table({"embedding": pa.array(rows, pa.list_(pa.float32()))}))
    with pytest.raises(ec.EmbedclusterError, match="row 1, column `embedding`: vector has 3 values, expected 2"):
        ec.to_numpy(pa.table({"embedding": pa.array([[1.0, 2.0], [1.0, 2.0, 3.0]], pa.list_(pa.float64()))}))
    with pytest.raises(ec.EmbedclusterError, match="not a list of float"):
        ec.to_numpy(pa.table({"embedding": pa.array(["a", "b"])}))


def test_cluster_embeddings_on_a_file_returns_model_and_report(tmp_path):
    r = ec.cluster_embeddings(str(SAMPLE), 53, labels_column="label", random_state=0)
    assert r.labels.dtype == np.int32 and r.scores.dtype == np.float32 and len(r.labels) == 4000
    assert r.report["ari"] > 0.15 and [s["name"] for s in r.report["stages"]][:2] == ["open", "pca_fit"]
    X = ec.to_numpy(pq.read_table(SAMPLE))
    # the returned model assigns the training rows to the same clusters
    assert (r.model.predict(X) == r.labels).mean() > 0.999
    r.model.save(tmp_path / "m")
    np.testing.assert_array_equal(ec.load(tmp_path / "m").predict(X), r.model.predict(X))


def _cli():
    exe = ROOT / "target" / "release" / "embedcluster"
    if not exe.exists():
        subprocess.run(["cargo", "build", "--release", "-p", "embedcluster-cli"], cwd=ROOT, check=True)
    return str(exe)


@pytest.mark.skipif(not SHARED.exists(), reason="../shared data not present")
def test_pipeline_equals_cli_on_shared_debian_set(tmp_path):
    out = tmp_path / "clusters.parquet"
    subprocess.run(
        [_cli(), "run", str(SHARED), "--n-clusters", "53", "--seed", "7", "--output", str(out), "--model", str(tmp_path / "cli_model")],
        check=True, capture_output=True,
    )
    cli_labels = pq.read_table(out, columns=["cluster"]).column(0).to_numpy()
    r = ec.cluster_embeddings(str(SHARED), 53, random_state=7)
    np.testing.assert_array_equal(r.labels, cli_labels)
    # a model saved by the CLI loads in Python and predicts the CLI's labels
    model = ec.load(tmp_path / "cli_model")
    X = ec.to_numpy(pq.read_table(SHARED, columns=["embedding"]))
    np.testing.assert_array_equal(model.predict(X), cli_labels)  # bit for bit, through the Rust path
    labels, scores, confidence = model.predict_with_scores(X, adaptive="p10")
    assert 0.08 <= (labels == -1).mean() <= 0.12
    assert scores.dtype == np.float32 and confidence.dtype == np.float32


def test_threads_do_not_change_results():
    X = _emb(20000, 16)
    a = ec.KMeans(12, random_state=1, n_threads=1).fit(X)
    b = ec.KMeans(12, random_state=1, n_threads=2).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)


def _child_fit(q):
    X = _emb(3000, 8, seed=2)
    q.put(ec.KMeans(4, random_state=0).fit(X).labels_.tolist())


def test_forked_child_does_not_deadlock():
    X = _emb(3000, 8, seed=2)
    parent = ec.KMeans(4, random_state=0).fit(X).labels_.tolist()  # starts the pool
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_fit, args=(q,))
    p.start()
    p.join(60)
    alive = p.is_alive()
    if alive:
        p.kill()
    assert not alive, "forked child deadlocked"
    assert q.get(timeout=5) == parent


def test_ctrl_c_interrupts_a_long_fit():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200_000, 32)).astype(np.float32)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            ec.KMeans(256, tol=0, max_iter=100_000, random_state=0).fit(X)
    finally:
        timer.cancel()


def _write_vectors(path, X):
    pq.write_table(pa.table({"embedding": pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), X.shape[1])}), path)


def test_drift_flags_other_distributions_but_not_a_fresh_sample(tmp_path):
    cli = _cli()
    gen = lambda seed, n, out: subprocess.run(
        [cli, "generate", "--n-samples", str(n), "--n-features", "64", "--n-clusters", "10", "--seed", str(seed), "--output", str(out)],
        check=True, capture_output=True)
    gen(0, 40000, tmp_path / "g0.parquet")
    gen(1, 20000, tmp_path / "g1.parquet")
    t = pq.read_table(tmp_path / "g0.parquet")
    odd = pa.compute.equal(pa.compute.bit_wise_and(t["id"], 1), 1)
    pq.write_table(t.filter(pa.compute.invert(odd)), tmp_path / "train.parquet")
    fresh = t.filter(odd)
    pq.write_table(fresh, tmp_path / "fresh.parquet")
    X = ec.to_numpy(fresh)
    shift = np.random.default_rng(5).normal(size=64).astype(np.float32)
    _write_vectors(tmp_path / "shifted.parquet", X + 0.6 * shift / np.linalg.norm(shift))
    subprocess.run([cli, "run", str(tmp_path / "train.parquet"), "--n-clusters", "10", "--reduce", "pca:16", "--no-output", "--model", str(tmp_path / "m")], check=True, capture_output=True)

    def drift(name):
        report = tmp_path / f"{name}.json"
        out = subprocess.run([cli, "drift", str(tmp_path / f"{name}.parquet"), "--model", str(tmp_path / "m"), "--report", str(report)], check=True, capture_output=True, text=True)
        return json.loads(report.read_text()), out.stdout

    r, text = drift("fresh")
    assert not r["drift"] and text.startswith("no drift"), text
    assert abs(r["rejection_rate_p10"] - 0.10) < 0.03
    for name in ("g1", "shifted"):
        r, text = drift(name)
        assert r["drift"] and text.startswith("DRIFT"), (name, text)


def test_a_partitioned_dataset_and_a_list_of_paths_equal_one_file(tmp_path):
    X = _emb(3000)
    lang = np.where(np.arange(len(X)) % 3 == 0, "de", "en")
    table = pa.table({"id": np.arange(len(X)),
                      "embedding": pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), X.shape[1]),
                      "lang": lang})
    # pyarrow's Hive layout: lang=de/..., lang=en/...; rows of lang=de come first
    pq.write_to_dataset(table, tmp_path / "ds", partition_cols=["lang"])
    ordered = pq.ParquetDataset(tmp_path / "ds").read()
    assert ordered.column("lang").to_pylist()[0] == "de"
    one = tmp_path / "one.parquet"
    pq.write_table(ordered.drop(["lang"]), one)
    kw = dict(reduce="pca:8", random_state=1)
    a = ec.cluster_embeddings(tmp_path / "ds", 6, labels_column="lang", **kw)
    b = ec.cluster_embeddings(str(one), 6, **kw)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.report["ari"] is not None
    halves = tmp_path / "halves"
    halves.mkdir()
    pq.write_table(ordered.slice(0, 1000).drop(["lang"]), halves / "b.parquet")
    pq.write_table(ordered.slice(1000).drop(["lang"]), halves / "a.parquet")
    # a list keeps the order given (b first), a glob sorts (a first)
    c = ec.cluster_embeddings([halves / "b.parquet", str(halves / "a.parquet")], 6, **kw)
    np.testing.assert_array_equal(c.labels, b.labels)
    g = ec.cluster_embeddings(str(halves / "*.parquet"), 6, **kw)
    assert g.report["n_samples"] == len(X)
    with pytest.raises(ec.EmbedclusterError, match="holds no Parquet files"):
        (tmp_path / "nothing").mkdir()
        ec.cluster_embeddings(tmp_path / "nothing", 6)


def test_a_spilled_run_equals_the_in_memory_run(tmp_path):
    X = _emb(5000, 32)
    path = tmp_path / "x.parquet"
    _write_vectors(path, X)
    kw = dict(reduce="pca:8", random_state=3)
    mem = ec.cluster_embeddings(path, 6, spill=False, **kw)
    sp = ec.cluster_embeddings(path, 6, spill=tmp_path, **kw)
    assert mem.report["spill"] is None
    assert sp.report["spill"]["bytes"] == 5000 * 8 * 4
    np.testing.assert_array_equal(mem.labels, sp.labels)
    np.testing.assert_array_equal(mem.scores, sp.scores)
    np.testing.assert_array_equal(mem.model.kmeans.cluster_centers_, sp.model.kmeans.cluster_centers_)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]
    with pytest.raises(ValueError, match="spill"):
        ec.cluster_embeddings(path, 6, spill=3.5, **kw)
