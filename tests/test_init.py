"""Seeding: the screened default, k-means|| (Bahmani et al. 2012) and random rows, from
Python and the CLI; determinism across threads; the seed spread of `sweep --seeds`."""

import json
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import adjusted_rand_score

import embedcluster as ec
from embedcluster import _core
from embedcluster.preprocessing import _unit_rows
from conftest import ROOT

BIN = ROOT / "target" / "release" / "embedcluster"


@pytest.fixture
def topics():
    rng = np.random.default_rng(4)
    centers = rng.normal(size=(12, 32))
    y = rng.integers(0, 12, size=6000)
    X = (centers[y] + 0.35 * rng.normal(size=(6000, 32))).astype(np.float32)
    return X, y


@pytest.mark.parametrize("init", ["k-means++", "k-means||", "random"])
@pytest.mark.parametrize("init_trials", [1, 16])
def test_every_seeding_is_deterministic_across_threads(topics, init, init_trials):
    X, _ = topics
    kw = dict(metric="cosine", init=init, init_trials=init_trials, init_size=2000, random_state=3)
    a = ec.KMeans(12, n_threads=1, **kw).fit(X)
    b = ec.KMeans(12, n_threads=2, **kw).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)


@pytest.mark.parametrize("init", ["k-means++", "k-means||"])
def test_seedings_recover_the_topics(topics, init):
    X, y = topics
    for seed in range(3):
        km = ec.KMeans(12, metric="cosine", init=init, random_state=seed).fit(X)
        assert adjusted_rand_score(y, km.labels_) > 0.99


def test_the_screened_start_is_the_best_sample_fit_and_starts_lloyd(topics):
    """The default's initial centroids are a converged Lloyd solution of the sample: one
    Lloyd pass on the sample from them changes nothing (up to rounding)."""
    X, _ = topics
    U = _unit_rows(X)
    from embedcluster._utils import _seed

    c = _core.kmeans_init(U, 12, "cosine", seed=_seed(1), init_size=3000)
    assert c.shape == (12, 32) and c.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1, atol=1e-5)
    one = _core.kmeans_init(U, 12, "cosine", seed=_seed(1), init_trials=1)
    assert not np.array_equal(c, one)  # the screen did something
    full = ec.KMeans(12, metric="cosine", random_state=1, init_size=3000).fit(X)
    from_c = ec.KMeans(12, metric="cosine", init=c.astype(np.float64)).fit(X)
    np.testing.assert_array_equal(full.labels_, from_c.labels_)


def test_kmeans_parallel_weights_matter_and_parameters_are_checked(topics):
    X, _ = topics
    U = _unit_rows(X)
    a = _core.kmeans_init(U, 12, "cosine", seed=2, init_name="k-means||", init_trials=1)
    b = _core.kmeans_init(U, 12, "cosine", seed=2, init_name="k-means||", init_trials=1,
                          oversampling_factor=4.0)
    assert a.shape == b.shape == (12, 32) and not np.array_equal(a, b)
    with pytest.raises(ValueError, match="oversampling_factor"):
        ec.KMeans(3, init="k-means||", oversampling_factor=0).fit(X)
    with pytest.raises(ValueError, match="init_trials"):
        ec.KMeans(3, init_trials=0).fit(X)
    with pytest.raises(ValueError, match="init must be"):
        ec.KMeans(3, init="kmeans").fit(X)


def test_cluster_embeddings_takes_the_seeding(topics):
    X, y = topics
    r = ec.cluster_embeddings(X, 12, reduce="none", init="k-means||", init_trials=1,
                              random_state=3)
    # an int seed is the CLI's --seed, given to the core as is
    ref = _core.kmeans_fit(_unit_rows(X), 12, "cosine", seed=3, init_name="k-means||",
                           init_trials=1)
    np.testing.assert_array_equal(r.labels, ref["labels"])
    assert r.model.kmeans.init == "k-means||"


@pytest.mark.skipif(not BIN.exists(), reason="build with cargo build --release")
def test_cli_init_flags_and_the_seed_spread_of_sweep(topics, tmp_path):
    X, y = topics
    emb = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), X.shape[1])
    pq.write_table(pa.table({"label": pa.array(y), "embedding": emb}), tmp_path / "x.parquet")

    def cli(*args):
        r = subprocess.run([str(BIN), *map(str, args)], cwd=tmp_path, capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout

    cli("run", "x.parquet", "--n-clusters", "12", "--reduce", "none", "--init", "k-means||",
        "--init-trials", "1", "--output", "o.parquet", "--report", "r.json", "--seed", "4")
    got = pq.read_table(tmp_path / "o.parquet").column("cluster").to_numpy()
    ref = _core.kmeans_fit(_unit_rows(X), 12, "cosine", seed=4, init_name="k-means||",
                           init_trials=1)
    np.testing.assert_array_equal(got, ref["labels"])
    out = cli("sweep", "x.parquet", "--n-clusters", "10,12", "--reduce", "none", "--metric",
              "cosine", "--labels", "label", "--seeds", "0:3", "--silhouette-sample", "0",
              "--output", "sw")
    assert "across seeds" in out
    rows = json.loads((tmp_path / "sw.json").read_text())["rows"]
    for row in rows:
        sp = row["seed_spread"]
        assert sp["seeds"] == [0, 1, 2, 3]
        o, a = sp["objective"], sp["ari"]
        assert o["min"] <= o["median"] <= o["max"] and a["min"] <= a["median"] <= a["max"]
        assert o["min"] <= row["objective"] <= o["max"]
    bad = subprocess.run([str(BIN), "run", "x.parquet", "--n-clusters", "3", "--init", "kmeans"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 2 and "--init" in bad.stderr


@pytest.mark.skipif(not BIN.exists(), reason="build with cargo build --release")
def test_evaluate_reports_the_spread_of_runs_at_several_seeds(topics, tmp_path):
    X, y = topics
    emb = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), X.shape[1])
    pq.write_table(pa.table({"label": pa.array(y), "embedding": emb}), tmp_path / "x.parquet")
    aris = []
    for s in range(3):
        r = subprocess.run([str(BIN), "run", "x.parquet", "--n-clusters", "9", "--reduce", "none",
                            "--init-trials", "1", "--seed", str(s), "--output", f"c_{s}.parquet"],
                           cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        got = pq.read_table(tmp_path / f"c_{s}.parquet").column("cluster").to_numpy()
        aris.append(adjusted_rand_score(y, got))
    r = subprocess.run([str(BIN), "evaluate", "c_{seed}.parquet", "--labels", "label", "--seeds",
                        "0:2", "--output", "e.json"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    sp = json.loads((tmp_path / "e.json").read_text())["spread"]["adjusted_rand_score"]
    assert sp["min"] == pytest.approx(min(aris), abs=1e-9)
    assert sp["median"] == pytest.approx(float(np.median(aris)), abs=1e-9)
    assert sp["max"] == pytest.approx(max(aris), abs=1e-9)
    bad = subprocess.run([str(BIN), "evaluate", "c_0.parquet", "--labels", "label", "--seeds", "0:2"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 2 and "{seed}" in bad.stderr
