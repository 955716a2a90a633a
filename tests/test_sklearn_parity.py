"""scikit-learn parity (issue 17): scikit-learn's own test files with our classes swapped in
(scripts/sklearn_parity.py, failures only where docs/sklearn-parity.md says why), the inputs
scikit-learn takes, and the parameters and attributes it defines, against oracles."""

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import sklearn.cluster
import sklearn.decomposition
from scipy import sparse
from scipy.stats import multivariate_normal
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

import embedcluster as ec

ROOT = Path(__file__).resolve().parent.parent


def test_scikit_learns_own_tests_fail_only_where_documented():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "sklearn_parity.py")],
                       capture_output=True, text=True, timeout=900)
    print(r.stdout[-6000:], r.stderr[-2000:])
    assert r.returncode == 0, r.stdout[-6000:]
    lines = r.stdout.splitlines()
    # every suite ran (a collection error would give a handful of items)
    for suite, at_least in (("kmeans", 250), ("pca", 500), ("scaler", 600)):
        line = next(s for s in lines if s.startswith(f"{suite}:"))
        assert int(line.split()[1]) >= at_least, line


def _frame(X):
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])


@pytest.mark.parametrize("make", ["pandas", "polars", "pyarrow"])
def test_a_table_of_numeric_columns_is_a_feature_matrix(make):
    X, _ = make_blobs(300, n_features=4, centers=3, random_state=0)
    names = [f"f{i}" for i in range(4)]
    if make == "pandas":
        T = _frame(X)
    elif make == "polars":
        pl = pytest.importorskip("polars")
        T = pl.DataFrame({n: X[:, i] for i, n in enumerate(names)})
    else:
        pa = pytest.importorskip("pyarrow")
        T = pa.table({n: X[:, i] for i, n in enumerate(names)})
    for est in (ec.KMeans(3, random_state=0), ec.PCA(2), ec.StandardScaler()):
        a = est.fit(T)
        b = type(est)(**est.get_params()).fit(X)
        assert list(a.feature_names_in_) == names
        np.testing.assert_array_equal(a.transform(T), b.transform(X))
    # a table with one list column still holds vectors (one per row)
    if make == "pyarrow":
        import pyarrow as pa

        V = pa.table({"embedding": pa.array(list(X.astype(np.float32)),
                                            type=pa.list_(pa.float32()))})
        km = ec.KMeans(3, random_state=0).fit(V)
        assert km.n_features_in_ == 4 and not hasattr(km, "feature_names_in_")


def test_a_pandas_column_of_arrays_is_read_as_vectors():
    pd = pytest.importorskip("pandas")
    X, _ = make_blobs(200, n_features=5, centers=3, random_state=1)
    df = pd.DataFrame({"id": np.arange(200), "embedding": list(X)})
    km = ec.KMeans(3, random_state=0).fit(df)
    ref = ec.KMeans(3, random_state=0).fit(X)
    np.testing.assert_array_equal(km.labels_, ref.labels_)


def test_grid_search_over_n_clusters_in_a_pipeline_on_a_dataframe():
    X, _ = make_blobs(600, n_features=8, centers=4, random_state=2)
    df = _frame(X)
    pipe = Pipeline([("scale", ec.StandardScaler()), ("pca", ec.PCA(4)),
                     ("kmeans", ec.KMeans(random_state=0))])
    gs = GridSearchCV(pipe, {"kmeans__n_clusters": [2, 4, 8]}, cv=3).fit(df)
    # the score is minus the inertia: more clusters always score higher on held-out rows
    scores = gs.cv_results_["mean_test_score"]
    assert list(np.argsort(scores)) == [0, 1, 2]
    assert gs.best_params_ == {"kmeans__n_clusters": 8}
    assert list(gs.best_estimator_[:-1].get_feature_names_out()) == [f"pca{i}" for i in range(4)]
    assert gs.predict(df).shape == (600,)


def test_weighted_kmeans_equals_repeated_rows_and_threads_do_not_matter():
    X, _ = make_blobs(400, n_features=6, centers=5, random_state=3)
    w = np.random.default_rng(0).integers(1, 4, size=400)
    init = X[:5]
    a = ec.KMeans(5, init=init).fit(X, sample_weight=w)
    b = ec.KMeans(5, init=init).fit(np.repeat(X, w, axis=0))
    np.testing.assert_array_equal(np.repeat(a.labels_, w), b.labels_)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-12)
    np.testing.assert_allclose(a.inertia_, b.inertia_, rtol=1e-12)
    # the weighted centroids are the weighted means of their members (numpy oracle)
    for j in range(5):
        m = a.labels_ == j
        np.testing.assert_allclose(a.cluster_centers_[j], np.average(X[m], axis=0, weights=w[m]))
    # k-means++ and random seeding with weights: the same on 1 and 2 threads
    for init in ("k-means++", "random"):
        r1 = ec.KMeans(5, init=init, random_state=7, n_threads=1).fit(X, sample_weight=w)
        r2 = ec.KMeans(5, init=init, random_state=7, n_threads=2).fit(X, sample_weight=w)
        np.testing.assert_array_equal(r1.cluster_centers_, r2.cluster_centers_)
    # score is minus the weighted objective
    np.testing.assert_allclose(-a.score(X, sample_weight=w), a.inertia_, rtol=1e-6)


def test_zero_weight_rows_are_never_seeds():
    X, _ = make_blobs(300, n_features=3, centers=4, random_state=4)
    w = np.zeros(300)
    keep = np.arange(0, 300, 3)
    w[keep] = 1.0
    for init in ("k-means++", "random"):
        for seed in range(5):
            km = ec.KMeans(4, init=init, init_trials=1, max_iter=1, random_state=seed)
            # one Lloyd step from the seeds: every centroid is a mean of kept rows, so it lies
            # in their convex hull; seeds from zero-weight rows would show as empty clusters
            km.fit(X, sample_weight=w)
            counts = np.bincount(km.labels_[keep], minlength=4)
            assert (counts > 0).all(), (init, seed, counts)


def test_kmeans_errors_and_warnings_are_scikit_learns():
    X, _ = make_blobs(50, n_features=2, centers=3, random_state=5)
    with pytest.raises(ValueError, match=r"n_samples=50 should be >= n_clusters=51\."):
        ec.KMeans(51).fit(X)
    with pytest.raises(ValueError, match="does not match the number of clusters"):
        ec.KMeans(3, init=X[:2]).fit(X)
    with pytest.warns(RuntimeWarning, match="Explicit initial center position passed"):
        ec.KMeans(3, init=X[:3], n_init=5).fit(X)
    with pytest.raises(ValueError, match="k-means"):
        ec.KMeans(3, init="k-means||").fit(X, sample_weight=np.ones(50) + np.arange(50))
    with pytest.raises(TypeError, match="Sparse data was passed"):
        ec.KMeans(3).fit(sparse.csr_matrix(X))
    # a callable init is called once per restart with a RandomState
    calls = []

    def init(X_, k, random_state):
        calls.append(type(random_state).__name__)
        return X_[random_state.choice(len(X_), k, replace=False)]

    km = ec.KMeans(3, init=init, random_state=0).fit(X)
    assert km._n_init == 10 and calls == ["RandomState"] * 10
    # a point's distance to itself is exactly 0, the rest as numpy computes them
    D = km.transform(km.cluster_centers_)
    np.testing.assert_array_equal(np.diag(D), 0.0)
    ref = np.sqrt(((X[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1))
    np.testing.assert_allclose(km.transform(X), ref, rtol=1e-10)


def test_kmeans_verbose_lines(capsys):
    X, _ = make_blobs(500, n_features=3, centers=3, random_state=6)
    km = ec.KMeans(3, random_state=0, verbose=1, init="random", init_trials=1, tol=0).fit(X)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Initialization complete"
    assert sum(s.startswith("Iteration ") for s in out) == km.n_iter_
    assert out[-1].startswith(f"Converged at iteration {km.n_iter_ - 1}: strict convergence")


def test_pca_probabilistic_model_against_scipy_and_scikit_learn():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6)) + 3.0
    ours = ec.PCA(3).fit(X)
    ref = sklearn.decomposition.PCA(3, svd_solver="full").fit(X)
    np.testing.assert_allclose(ours.singular_values_, ref.singular_values_, rtol=1e-10)
    np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=1e-10)
    cov = ours.get_covariance()
    np.testing.assert_allclose(cov, ref.get_covariance(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.get_precision() @ cov, np.eye(6), atol=1e-9)
    # the log-likelihood is a Gaussian's with that covariance (scipy as the oracle)
    np.testing.assert_allclose(ours.score_samples(X),
                               multivariate_normal(ours.mean_, cov).logpdf(X), rtol=1e-10)
    np.testing.assert_allclose(ours.score(X), ref.score(X), rtol=1e-10)
    # whitening: unit variance outputs, and back
    w = ec.PCA(3, whiten=True).fit(X)
    Z = w.transform(X)
    np.testing.assert_allclose(Z.var(axis=0, ddof=1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(w.inverse_transform(Z), ours.inverse_transform(ours.transform(X)))


def test_pca_n_components_as_a_ratio_or_mle_picks_scikit_learns_number():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(800, 3)) @ rng.normal(size=(3, 10)) + 0.05 * rng.normal(size=(800, 10))
    for k in (0.5, 0.9, 0.999, "mle"):
        ours = ec.PCA(k).fit(X)
        ref = sklearn.decomposition.PCA(k, svd_solver="full").fit(X)
        assert ours.n_components_ == ref.n_components_, k
        np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=1e-8)
    assert ec.PCA("mle").fit(X).n_components_ == 3
    with pytest.raises(ValueError, match=r"must be between 0 and min\(n_samples, n_features\)=10"):
        ec.PCA(11, svd_solver="full").fit(X)


def test_randomized_pca_reports_the_variance_of_its_output():
    rng = np.random.default_rng(9)
    X = (rng.normal(size=(3000, 40)) * np.linspace(5, 0.1, 40)).astype(np.float32)
    for sample_size in (None, 500):
        p = ec.PCA(5, svd_solver="randomized", sample_size=sample_size, random_state=0).fit(X)
        Z = p.transform(X)
        np.testing.assert_allclose(p.explained_variance_, Z.astype(np.float64).var(axis=0, ddof=1),
                                   rtol=1e-4)
        assert (np.diff(p.explained_variance_) <= 0).all()
        assert p.components_.dtype == np.float32 and Z.dtype == np.float32


def test_pca_on_sparse_input_equals_dense():
    rng = np.random.default_rng(10)
    D = rng.normal(size=(2500, 12)) * (rng.random((2500, 12)) < 0.3)
    S = sparse.csr_matrix(D)
    a, b = ec.PCA(4).fit(S), ec.PCA(4).fit(D)
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.transform(S), b.transform(D), rtol=1e-10, atol=1e-12)
    with pytest.raises(TypeError, match="PCA only support sparse inputs"):
        ec.PCA(4, svd_solver="randomized").fit(S)


def test_standard_scaler_weights_float16_constants_and_sparse():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(300, 4)) * [1, 10, 100, 0] + [0, 1, 2, 7.1]
    w = rng.random(300)
    sc = ec.StandardScaler().fit(X, sample_weight=w)
    mean = np.average(X, axis=0, weights=w)
    np.testing.assert_allclose(sc.mean_, mean, rtol=1e-12)
    # (column 3 is constant: numpy's two-pass variance leaves a rounding residue there)
    np.testing.assert_allclose(sc.var_[:3], np.average((X - mean) ** 2, axis=0, weights=w)[:3],
                               rtol=1e-10)
    np.testing.assert_allclose(sc.n_samples_seen_, w.sum())
    # weighted partial fits in uneven blocks = one fit
    inc = ec.StandardScaler()
    for s, e in ((0, 7), (7, 150), (150, 300)):
        inc.partial_fit(X[s:e], sample_weight=w[s:e])
    np.testing.assert_allclose(inc.var_, sc.var_, rtol=1e-10)
    # an exactly constant column has variance exactly 0 and scale 1
    assert sc.var_[3] == 0.0 and sc.scale_[3] == 1.0
    assert ec.StandardScaler().fit(X).var_[3] == 0.0
    # no std: var_ and scale_ are None; float16 stays float16
    assert ec.StandardScaler(with_std=False).fit(X).scale_ is None
    H = X.astype(np.float16)
    assert ec.StandardScaler().fit(H).transform(H).dtype == np.float16
    # sparse without centering: the stored values are scaled, the moments are the dense ones
    S = sparse.csr_matrix(X * (rng.random(X.shape) < 0.5))
    ss = ec.StandardScaler(with_mean=False).fit(S)
    np.testing.assert_allclose(ss.var_, S.toarray().var(axis=0), rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(ss.transform(S).toarray(), S.toarray() / ss.scale_)
    with pytest.raises(ValueError, match="Cannot center sparse matrices"):
        ec.StandardScaler().fit(S)
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        sc.inverse_transform(X[:, 0])


def test_elkan_is_lloyd():
    X, _ = make_blobs(1000, n_features=5, centers=6, random_state=12)
    a = ec.KMeans(6, random_state=0, algorithm="lloyd").fit(X)
    b = ec.KMeans(6, random_state=0, algorithm="elkan").fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    # and both give scikit-learn's Lloyd from the same centres
    ref = sklearn.cluster.KMeans(6, init=a.cluster_centers_, n_init=1).fit(X)
    np.testing.assert_array_equal(ref.labels_, a.labels_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ec.KMeans(6, random_state=0, copy_x=False).fit(X)
