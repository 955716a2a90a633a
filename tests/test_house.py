"""One pipeline for every front end, and no panic across the boundary.

* Arrays, Arrow tables and files run the core's one job: the same rows give the same labels,
  bit for bit, whichever way they come in.
* A model saved from Python has the CLI's manifest, key for key (with calibration and the
  training row count).
* Every array Python hands the core is checked first: fitted attributes set by hand, init
  arrays, models assembled from parts raise a ``ValueError`` subclass naming the attribute,
  never ``pyo3_runtime.PanicException`` (a ``BaseException``).
"""

import json
import subprocess

import numpy as np
import pyarrow as pa
import pytest

import embedcluster as ec
from embedcluster import _core
from conftest import ROOT

BIN = ROOT / "target" / "release" / "embedcluster"


def blobs(n=3000, d=16, k=5, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(k, d)) * 4
    return (c[rng.integers(0, k, n)] + rng.normal(size=(n, d))).astype(dtype)


@pytest.mark.parametrize("reduce", ["pca:8", "none", "matryoshka:8"])
def test_array_arrow_and_file_give_the_same_labels(tmp_path, reduce):
    X = blobs()
    np.save(tmp_path / "x.npy", X)
    table = pa.table({"embedding": pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), X.shape[1])})
    kw = dict(reduce=reduce, random_state=3, batch_rows=700)
    f = ec.cluster_embeddings(tmp_path / "x.npy", 5, **kw)
    a = ec.cluster_embeddings(X, 5, **kw)
    t = ec.cluster_embeddings(table, 5, **kw)
    for r in (a, t):
        assert np.array_equal(r.labels, f.labels)
        assert np.array_equal(r.scores.view(np.uint32), f.scores.view(np.uint32))
        assert np.array_equal(r.model.kmeans.cluster_centers_, f.model.kmeans.cluster_centers_)
    assert a.report["stages"][0]["name"] == "open" and a.report["memory_plan"]["stages"]
    # the in-memory model applies the same steps through the core
    assert np.array_equal(a.model.predict(X), f.labels)


@pytest.mark.skipif(not BIN.exists(), reason="build with cargo build --release")
def test_a_model_saved_from_python_has_the_cli_manifest(tmp_path):
    X = blobs()
    np.save(tmp_path / "x.npy", X)
    subprocess.run([str(BIN), "run", "x.npy", "--n-clusters", "5", "--reduce", "pca:8", "--seed", "3",
                    "--no-output", "--model", "cli_model"], cwd=tmp_path, check=True, capture_output=True)
    r = ec.cluster_embeddings(tmp_path / "x.npy", 5, reduce="pca:8", random_state=3)
    r.model.save(tmp_path / "py_model")
    cli = json.loads((tmp_path / "cli_model" / "manifest.json").read_text())
    py = json.loads((tmp_path / "py_model" / "manifest.json").read_text())
    assert list(cli) == list(py)  # the same keys, in the same order
    for key in ["steps", "metric", "n_features", "n_components", "n_clusters", "dtype",
                "n_samples_seen", "calibration", "tensors", "files", "n_iter", "params"]:
        assert cli[key] == py[key], key
    assert len(py["calibration"]) == 5 and py["n_samples_seen"] == len(X)
    assert (tmp_path / "cli_model" / "model.safetensors").read_bytes() == \
        (tmp_path / "py_model" / "model.safetensors").read_bytes()
    # an estimator saved on its own: the same keys, what it knows filled in
    km = ec.KMeans(4, random_state=0).fit(X)
    km.save(tmp_path / "km")
    alone = json.loads((tmp_path / "km" / "manifest.json").read_text())
    assert list(alone) == list(cli) and alone["n_samples_seen"] == len(X)


def fitted_pca(X):
    return ec.PCA(n_components=4).fit(X)


BAD = [
    ("pca mean_ too short", lambda X: setattr_then(fitted_pca(X), "mean_", np.zeros(3)).transform(X), "mean_"),
    ("pca components_ width", lambda X: setattr_then(fitted_pca(X), "components_", np.zeros((4, 5))).transform(X), "components_"),
    ("pca components_ not finite", lambda X: setattr_then(fitted_pca(X), "components_", np.full((4, 16), np.nan)).transform(X), "components_"),
    ("kmeans centers empty", lambda X: _core.kmeans_predict(X, np.zeros((0, 16), np.float32), "euclidean"), "cluster_centers_"),
    ("kmeans centers not finite", lambda X: _core.kmeans_predict(X, np.full((2, 16), np.inf, np.float32), "euclidean"), "cluster_centers_"),
    ("kmeans init shape", lambda X: ec.KMeans(3, init=np.zeros((2, 16))).fit(X), "init"),
    ("model steps vs pca", lambda X: ec.ClusterModel(ec.KMeans(3).fit(X), fitted_pca(X), ["normalize"]).predict(X), "pca"),
    ("model pca width", lambda X: ec.ClusterModel(ec.KMeans(3).fit(X[:, :4]), setattr_then(fitted_pca(X), "mean_", np.zeros(9)), ["pca:4"]).predict(X), "mean_"),
    ("model save bad pca", lambda X: ec.ClusterModel(ec.KMeans(3).fit(X[:, :4]), setattr_then(fitted_pca(X), "components_", np.zeros((4, 3))), ["pca:4"]).save("/tmp/never-written"), "components_"),
    ("moments state", lambda X: _core.moments_merge((2, np.zeros(3), np.zeros(2)), (2, np.zeros(3), np.zeros(3))), "moment"),
    ("covariance state", lambda X: _core.cov_finish(5, np.zeros(3), np.zeros((2, 2)), 1), "covariance"),
    ("randomized pca moments", lambda X: _core.pca_randomized(X, (len(X), np.zeros(3), np.zeros(3)), 2), "moments"),
    ("lloyd state shape", lambda X: _core.lloyd_partial(X, np.zeros((2, 5), np.float32), "euclidean"), "features"),
    ("unknown step", lambda X: ec.ClusterModel(ec.KMeans(3).fit(X), None, ["whiten"]).predict(X), "steps"),
]


def setattr_then(obj, name, value):
    setattr(obj, name, value)
    return obj


@pytest.mark.parametrize("name, call, attribute", BAD, ids=[b[0] for b in BAD])
def test_bad_parts_raise_a_value_error_naming_them(name, call, attribute):
    X = blobs(n=400)
    try:
        call(X)
    except ValueError as e:  # EmbedclusterError is a ValueError
        assert attribute in str(e), str(e)
        assert "--" not in str(e)
    except BaseException as e:  # PanicException is a BaseException, not an Exception
        pytest.fail(f"{name}: {type(e).__module__}.{type(e).__name__}: {e}")
    else:
        pytest.fail(f"{name}: no error")


def test_lloyd_driver_over_python_passes_equals_the_core_fit():
    """The core's Lloyd driver run over passes given as Python callables (what Spark does)
    gives the in-memory fit's labels, including a cluster that empties (a duplicated initial
    centroid) and is re-seeded by the core's relocation."""
    X = blobs(n=2000, d=8, k=4, seed=5)
    init = X[[0, 1, 2, 3, 3]].astype(np.float64)  # centroid 4 duplicates 3: it starts empty
    ref = ec.KMeans(5, init=init, tol=0.0).fit(X)
    assert np.bincount(ref.labels_, minlength=5).min() > 0  # relocated, not left empty
    parts = np.array_split(np.arange(len(X)), 3)
    calls = {"step": 0, "farthest": 0}

    def step(c):
        calls["step"] += 1
        st = None
        for p in parts:
            s = _core.lloyd_partial(np.ascontiguousarray(X[p]), c, "euclidean", int(p[0]))
            st = s if st is None else (st[0] + s[0], st[1] + s[1], st[2] + s[2], (st[3] + s[3]) % 2**64)
        return st

    def farthest(c, m):
        calls["farthest"] += 1
        got = [_core.lloyd_farthest(np.ascontiguousarray(X[p]), c, "euclidean", m, int(p[0])) for p in parts]
        return _core.lloyd_merge_farthest(*(np.concatenate([g[i] for g in got]) for i in range(4)), m)

    tol_abs = _core.lloyd_tol(_core.moments_partial(X), 0.0)
    r = _core.lloyd_drive(init.astype(np.float32), "euclidean", 300, tol_abs, step, farthest)
    assert calls["farthest"] >= 1
    assert r["n_iter"] == ref.n_iter_
    np.testing.assert_allclose(r["cluster_centers"], ref.cluster_centers_, rtol=1e-5, atol=1e-5)
    labels = ec.KMeans(5).fit(X[:10])  # any fitted estimator to predict with the centres
    labels.cluster_centers_ = r["cluster_centers"]
    assert np.array_equal(labels.predict(X), ref.labels_)


def test_a_failing_pass_raises_its_own_exception():
    X = blobs(n=300, d=4, k=2)

    def step(c):
        raise KeyError("the engine lost an executor")

    with pytest.raises(KeyError, match="lost an executor"):
        _core.lloyd_drive(X[:2].copy(), "euclidean", 10, 0.0, step, step)
