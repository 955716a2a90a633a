"""MiniBatchKMeans (Sculley 2010) against scikit-learn's and a numpy oracle of the update;
`run --algorithm minibatch` in the CLI."""

import subprocess

import numpy as np
import pytest
from sklearn.cluster import MiniBatchKMeans as SkMiniBatchKMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

import embedcluster as ec
from conftest import ROOT, SAMPLE


def _blobs(n=20000, d=16, k=10, seed=0):
    X, y = make_blobs(n_samples=n, n_features=d, centers=k, cluster_std=1.5, random_state=seed)
    return X.astype(np.float32), y


def test_fit_is_as_good_as_scikit_learns_and_deterministic():
    X, y = _blobs()
    ours = ec.MiniBatchKMeans(10, batch_size=512, random_state=0).fit(X)
    sk = SkMiniBatchKMeans(10, batch_size=512, random_state=0, n_init=1).fit(X)
    assert ours.labels_.shape == (20000,) and ours.cluster_centers_.shape == (10, 16)
    assert ours.cluster_centers_.dtype == np.float32
    assert adjusted_rand_score(y, ours.labels_) > 0.95
    # both approximate full k-means; ours is no worse than scikit-learn's by more than 2 %
    assert ours.inertia_ <= 1.02 * sk.inertia_, (ours.inertia_, sk.inertia_)
    # labels_ and inertia_ belong to the returned centroids
    np.testing.assert_array_equal(ours.predict(X), ours.labels_)
    assert ours.inertia_ == pytest.approx(-ours.score(X), rel=1e-5)
    again = ec.MiniBatchKMeans(10, batch_size=512, random_state=0, n_threads=1).fit(X)
    np.testing.assert_array_equal(again.cluster_centers_, ours.cluster_centers_)
    assert 1 <= ours.n_iter_ <= 100 and ours.n_steps_ >= 1


def test_partial_fit_follows_sculleys_update():
    X, _ = _blobs(3000, 8, 4, seed=1)
    X = X.astype(np.float64)
    init = X[:4].copy()
    m = ec.MiniBatchKMeans(4, init=init, reassignment_ratio=0.0)
    C, N = init.copy(), np.zeros(4)
    for b in range(0, 3000, 500):
        batch = X[b:b + 500]
        m.partial_fit(batch)
        # numpy oracle: nearest centre, then c_j <- (N_j c_j + sum_j) / (N_j + m_j)
        lab = ((batch[:, None, :] - C[None]) ** 2).sum(-1).argmin(1)
        for j in range(4):
            mj = (lab == j).sum()
            if mj:
                C[j] = (N[j] * C[j] + batch[lab == j].sum(0)) / (N[j] + mj)
                N[j] += mj
        np.testing.assert_allclose(m.cluster_centers_, C, rtol=1e-10, atol=1e-10)
    assert m.n_steps_ == 6
    np.testing.assert_array_equal(m.predict(X), ((X[:, None] - C[None]) ** 2).sum(-1).argmin(1))


def test_fit_with_sample_weight():
    X, y = _blobs(20000, 16, 10, seed=3)
    rng = np.random.default_rng(0)
    w = rng.choice([0.0, 1.0, 3.0], size=len(X))
    ours = ec.MiniBatchKMeans(10, batch_size=512, random_state=0).fit(X, sample_weight=w)
    # inertia_ is the weighted objective of the returned centroids (numpy oracle)
    C = ours.cluster_centers_.astype(np.float64)
    d2 = ((X[:, None, :].astype(np.float64) - C[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(ours.labels_, d2.argmin(1))
    assert ours.inertia_ == pytest.approx((w * d2.min(1)).sum(), rel=1e-4)
    sk = SkMiniBatchKMeans(10, batch_size=512, random_state=0, n_init=1).fit(X, sample_weight=w)
    assert ours.inertia_ <= 1.02 * sk.inertia_, (ours.inertia_, sk.inertia_)
    assert adjusted_rand_score(y, ours.labels_) > 0.95
    # weights that are all 2: the unweighted centroids, twice the objective
    plain = ec.MiniBatchKMeans(10, batch_size=512, random_state=0).fit(X)
    two = ec.MiniBatchKMeans(10, batch_size=512, random_state=0).fit(X, sample_weight=np.full(len(X), 2.0))
    np.testing.assert_allclose(two.cluster_centers_, plain.cluster_centers_, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(two.labels_, plain.labels_)
    assert two.inertia_ == pytest.approx(2 * plain.inertia_, rel=1e-5)


def test_cluster_embeddings_minibatch_equals_the_cli(tmp_path):
    exe = ROOT / "target" / "release" / "embedcluster"
    if not exe.exists():
        subprocess.run(["cargo", "build", "--release", "-p", "embedcluster-cli"], cwd=ROOT, check=True)
    out = tmp_path / "o.parquet"
    p = subprocess.run([str(exe), "run", str(SAMPLE), "--n-clusters", "12", "--seed", "3",
                        "--algorithm", "minibatch:256", "--output", str(out)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    import pyarrow.parquet as pq
    cli = pq.read_table(out).column("cluster").to_numpy()
    r = ec.cluster_embeddings(str(SAMPLE), 12, random_state=3, algorithm="minibatch:256")
    np.testing.assert_array_equal(r.labels, cli)
    lloyd = ec.cluster_embeddings(str(SAMPLE), 12, random_state=3)
    assert not np.array_equal(lloyd.labels, r.labels)  # the parameter reached the core
    with pytest.raises(ValueError, match="algorithm"):
        ec.cluster_embeddings(str(SAMPLE), 12, algorithm="elkan")


def test_cosine_and_bad_parameters():
    X, y = _blobs(5000, 12, 5, seed=2)
    m = ec.MiniBatchKMeans(5, metric="cosine", random_state=1).fit(X)
    np.testing.assert_allclose(np.linalg.norm(m.cluster_centers_, axis=1), 1, rtol=1e-5)
    with pytest.raises(ValueError, match="batch_size"):
        ec.MiniBatchKMeans(5, batch_size=0).fit(X)
    with pytest.raises(ValueError, match="sample_weight"):
        ec.MiniBatchKMeans(5).fit(X, sample_weight=-np.ones(len(X)))
    with pytest.raises(ValueError, match="(?i)sample.weight"):
        ec.MiniBatchKMeans(5).fit(X, sample_weight=np.zeros(len(X)))
    with pytest.raises(ValueError, match="features"):
        ec.MiniBatchKMeans(5).partial_fit(X).partial_fit(X[:, :3])


def test_cli_run_minibatch(tmp_path):
    exe = ROOT / "target" / "release" / "embedcluster"
    if not exe.exists():
        subprocess.run(["cargo", "build", "--release", "-p", "embedcluster-cli"], cwd=ROOT, check=True)
    out = tmp_path / "o.parquet"
    rep = tmp_path / "r.json"
    p = subprocess.run([str(exe), "run", str(SAMPLE), "--n-clusters", "20", "--labels", "label",
                        "--algorithm", "minibatch:256", "--output", str(out), "--report", str(rep)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    import json
    r = json.loads(rep.read_text())
    assert r["ari"] > 0.1
    bad = subprocess.run([str(exe), "run", str(SAMPLE), "--n-clusters", "20", "--algorithm", "minibatch:0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "algorithm" in bad.stderr
