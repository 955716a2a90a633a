"""Estimators against scikit-learn and NumPy as oracles."""

import pickle

import numpy as np
import pytest
import sklearn.cluster
import sklearn.decomposition
import sklearn.preprocessing
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

import embedcluster as ec


def _expected_failed_checks(estimator):
    # as scikit-learn's own KMeans (its PER_ESTIMATOR_XFAIL_CHECKS): k-means++ draws rows by
    # index, so a row repeated w times is not drawn as a row of weight w is; from the same
    # init the weighted fit is the repeated one (scikit-learn's test_weighted_vs_repeated,
    # run by tests/test_sklearn_parity.py)
    if isinstance(estimator, ec.KMeans):
        return {"check_sample_weight_equivalence_on_dense_data":
                "the seeding's draws differ for repeated rows (as scikit-learn's KMeans)"}
    return {}


@parametrize_with_checks([ec.KMeans(n_clusters=3, random_state=0), ec.PCA(), ec.StandardScaler()],
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kmeans_matches_sklearn_lloyd_from_same_centres(blobs, dtype):
    X, _ = blobs
    X = X.astype(dtype)
    rng = np.random.default_rng(1)
    init = X[rng.choice(len(X), 7, replace=False)].astype(np.float64)
    ours = ec.KMeans(7, init=init, max_iter=300, tol=0).fit(X)
    ref = sklearn.cluster.KMeans(7, init=init.astype(dtype), n_init=1, max_iter=300, tol=0, algorithm="lloyd").fit(X)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-5, atol=1e-5 * np.abs(X).max())
    assert ours.cluster_centers_.dtype == dtype
    assert ours.labels_.dtype == np.int32
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-5)


def test_kmeans_overlapping_data_same_labels_as_sklearn():
    # overlapping blobs: many Lloyd iterations, still the same fixed point from the same start
    rng = np.random.default_rng(2)
    X = rng.normal(size=(4000, 8)) + rng.normal(scale=2.0, size=(20, 8))[rng.integers(0, 20, 4000)]
    init = X[:20].copy()
    ours = ec.KMeans(20, init=init, tol=0, max_iter=1000).fit(X)
    ref = sklearn.cluster.KMeans(20, init=init, n_init=1, tol=0, max_iter=1000, algorithm="lloyd").fit(X)
    assert ours.n_iter_ > 5
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-5, atol=1e-9)


def test_kmeans_predict_transform_score_against_numpy(blobs):
    X, y = blobs
    km = ec.KMeans(7, n_init=3, random_state=0).fit(X)
    assert adjusted_rand_score(y, km.labels_) == pytest.approx(1.0)
    d = np.sqrt(((X[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1))
    np.testing.assert_allclose(km.transform(X), d, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(km.predict(X), d.argmin(1))
    assert km.score(X) == pytest.approx(-(d.min(1) ** 2).sum(), rel=1e-6)
    labels, scores = km.predict_with_scores(X)
    assert labels.dtype == np.int32 and scores.dtype == np.float32
    np.testing.assert_allclose(scores, d.min(1) ** 2, rtol=1e-4)


def test_spherical_kmeans_centres_are_unit_and_labels_are_argmax_cosine(blobs):
    X, _ = blobs
    km = ec.KMeans(5, metric="cosine", random_state=3).fit(X)
    np.testing.assert_allclose(np.linalg.norm(km.cluster_centers_, axis=1), 1.0, rtol=1e-6)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    np.testing.assert_array_equal(km.labels_, (Xn @ km.cluster_centers_.T).argmax(1))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pca_exact_matches_sklearn_full_svd(dtype):
    rng = np.random.default_rng(4)
    A = rng.normal(size=(30, 30)) * (0.8 ** np.arange(30))
    X = (rng.normal(size=(2000, 30)) @ A.T + 50.0).astype(dtype)  # mean far from zero
    ours = ec.PCA(10).fit(X)
    ref = sklearn.decomposition.PCA(10, svd_solver="full").fit(X.astype(np.float64))
    signs = np.sign((ours.components_ * ref.components_).sum(1))
    tol = 1e-5 if dtype == np.float64 else 1e-3
    np.testing.assert_allclose(ours.components_ * signs[:, None], ref.components_, atol=tol)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-5 if dtype == np.float64 else 1e-4)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-5 if dtype == np.float64 else 1e-4)
    # attributes in X's dtype (scikit-learn's rule), orthonormal to that precision
    assert ours.components_.dtype == dtype and ours.explained_variance_.dtype == dtype
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(ours.components_ @ ours.components_.T, np.eye(10), atol=100 * eps)
    Z = ours.transform(X)
    assert Z.dtype == dtype
    np.testing.assert_allclose(Z * signs, ref.transform(X.astype(np.float64)), rtol=tol, atol=tol * 100)
    # chunked transform equals one-shot; inverse_transform maps back into the span
    np.testing.assert_array_equal(ours.transform(X, chunk_size=333), Z)
    back = ours.inverse_transform(Z)
    assert back.dtype == dtype and back.shape == X.shape


def test_pca_partial_fit_equals_fit_and_randomized_is_close():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3000, 20)) * np.linspace(5, 0.1, 20)
    full = ec.PCA(5).fit(X)
    part = ec.PCA(5)
    for lo, hi in [(0, 7), (7, 1000), (1000, 1001), (1001, 2500), (2500, 3000)]:
        part.partial_fit(X[lo:hi])
    assert part.n_samples_seen_ == 3000
    np.testing.assert_allclose(part.explained_variance_, full.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(np.abs((part.components_ * full.components_).sum(1)), 1.0, atol=1e-10)
    rnd = ec.PCA(5, fit_method="randomized", random_state=0).fit(X)
    np.testing.assert_allclose(rnd.explained_variance_, full.explained_variance_, rtol=1e-3)


def test_standard_scaler_partial_fit_uneven_batches_matches_sklearn():
    rng = np.random.default_rng(6)
    X = rng.normal(loc=1e4, scale=3.0, size=(5000, 9))
    ours = ec.StandardScaler()
    for lo, hi in [(0, 1), (1, 13), (13, 2000), (2000, 2001), (2001, 5000)]:
        ours.partial_fit(X[lo:hi])
    ref = sklearn.preprocessing.StandardScaler().fit(X)
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-6)
    np.testing.assert_allclose(ours.var_, ref.var_, rtol=1e-6)
    np.testing.assert_allclose(ours.scale_, ref.scale_, rtol=1e-6)
    assert ours.n_samples_seen_ == 5000
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), rtol=1e-6, atol=1e-6)
    X32 = X.astype(np.float32)
    assert ours.transform(X32).dtype == np.float32


def test_pickle_and_save_load_round_trips_predict_identically(blobs, tmp_path):
    X, _ = blobs
    X = X.astype(np.float32)
    km = ec.KMeans(7, random_state=0).fit(X)
    again = pickle.loads(pickle.dumps(km))
    np.testing.assert_array_equal(again.predict(X), km.predict(X))
    km.save(tmp_path / "m")
    loaded = ec.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(X), km.predict(X))
    assert loaded.kmeans.cluster_centers_.dtype == np.float32
    pca = ec.PCA(4).fit(X)
    assert np.array_equal(pickle.loads(pickle.dumps(pca)).transform(X), pca.transform(X))


def test_no_upcast_and_no_copy_for_c_contiguous_float32():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(500, 16)).astype(np.float32)
    pca = ec.PCA(4).fit(X)
    assert pca.transform(X).dtype == np.float32
    km = ec.KMeans(3, random_state=0).fit(X)
    assert km.cluster_centers_.dtype == np.float32
    # Fortran order and int input are accepted (one documented copy / conversion)
    assert ec.KMeans(3, random_state=0).fit(np.asfortranarray(X)).labels_.tolist() == km.labels_.tolist()
    assert ec.KMeans(3, random_state=0).fit((X * 10).astype(np.int64)).cluster_centers_.dtype == np.float64


def test_errors_map_to_python_exceptions(tmp_path):
    X = np.ones((10, 3))
    X[4, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ec.KMeans(2).fit(X)
    with pytest.raises(ValueError, match=r"n_samples=10 should be >= n_clusters=11\."):
        ec.KMeans(11).fit(np.random.rand(10, 3))
    with pytest.raises(ec.NotFittedError):
        ec.KMeans(2).predict(np.ones((3, 3)))
    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        ec.cluster_embeddings(str(tmp_path / "nope.parquet"), 3)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([[1.0, 2.0], [np.inf, 0.0], [3.0, 1.0]], dtype=np.float32))
    with pytest.raises(ec.EmbedclusterError, match=r"row 1, column `npy`\[0\]: value is inf"):
        ec.cluster_embeddings(str(bad), 2, reduce="none")
    assert issubclass(ec.EmbedclusterError, ValueError)
    with pytest.raises(ValueError):
        ec.load(tmp_path)  # no manifest


def test_standard_scaler_constant_features_match_sklearn():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 4))
    X[:, 1] = 1e6  # constant far from zero: float noise must not become a tiny scale
    X[:, 2] = 0.0
    ours = ec.StandardScaler().fit(X)
    ref = sklearn.preprocessing.StandardScaler().fit(X)
    np.testing.assert_array_equal(ours.scale_[1:3], [1.0, 1.0])
    np.testing.assert_allclose(ours.scale_, ref.scale_, rtol=1e-12)
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), atol=1e-9)
