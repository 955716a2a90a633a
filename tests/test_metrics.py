"""Every score against scikit-learn within 1e-6, including degenerate labelings."""

import numpy as np
import pytest
from sklearn import metrics as skm

import embedcluster as ec
from embedcluster import metrics as ecm

EXTERNAL = [
    "adjusted_rand_score",
    "mutual_info_score",
    "normalized_mutual_info_score",
    "adjusted_mutual_info_score",
]


def labelings():
    rng = np.random.default_rng(7)
    n = 500
    yield "random", rng.integers(0, 8, n), rng.integers(0, 5, n)
    yield "correlated", (t := rng.integers(0, 10, n)), np.where(rng.random(n) < 0.7, t,
                                                                  rng.integers(0, 10, n))
    yield "one_cluster_pred", rng.integers(0, 4, n), np.zeros(n, int)
    yield "both_one_cluster", np.zeros(n, int), np.full(n, 3)
    yield "all_singletons", np.arange(n), np.arange(n)[::-1]
    yield "singletons_vs_random", np.arange(n), rng.integers(0, 6, n)
    yield "identical_permuted", (t := rng.integers(0, 6, n)), (t * 7 + 3) % 11
    yield "strings", rng.choice(["a", "b", "c"], n), rng.choice(["x", "y"], n)
    yield "tiny", np.array([0, 1]), np.array([1, 1])
    yield "many_small", rng.integers(0, 200, n), rng.integers(0, 150, n)


@pytest.mark.parametrize("case", list(labelings()), ids=lambda c: c[0])
def test_external_scores_match_sklearn(case):
    _, t, p = case
    for name in EXTERNAL:
        got, want = getattr(ecm, name)(t, p), getattr(skm, name)(t, p)
        assert abs(got - want) <= 1e-6, (name, got, want)
    got = ecm.homogeneity_completeness_v_measure(t, p)
    want = skm.homogeneity_completeness_v_measure(t, p)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_external_length_mismatch():
    with pytest.raises(ValueError, match="different lengths: 3 and 2"):
        ecm.adjusted_rand_score([0, 1, 1], [0, 1])


def blobs(n=600, d=12, k=5, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)) * 3
    y = rng.integers(0, k, n)
    return (centers[y] + rng.standard_normal((n, d))).astype(dtype), y


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_silhouette_matches_sklearn(metric):
    X, y = blobs()
    np.testing.assert_allclose(
        ecm.silhouette_samples(X, y, metric=metric),
        skm.silhouette_samples(X, y, metric=metric), atol=1e-9)
    assert abs(ecm.silhouette_score(X, y, metric=metric)
               - skm.silhouette_score(X, y, metric=metric)) <= 1e-6
    # the same sample as scikit-learn for the same random_state
    a = ecm.silhouette_score(X, y, metric=metric, sample_size=200, random_state=5)
    b = skm.silhouette_score(X, y, metric=metric, sample_size=200, random_state=5)
    assert abs(a - b) <= 1e-6


def test_silhouette_degenerate_and_float32():
    X, y = blobs(n=300)
    y = y.copy()
    y[:3] = 17  # a cluster of three
    y[10] = 99  # a singleton: silhouette 0
    np.testing.assert_allclose(ecm.silhouette_samples(X, y), skm.silhouette_samples(X, y),
                               atol=1e-9)
    dup = np.repeat(X[:4], 5, axis=0)  # duplicate rows: a = b = 0 for some
    ydup = np.repeat([0, 0, 1, 1], 5)
    assert abs(ecm.silhouette_score(dup, ydup) - skm.silhouette_score(dup, ydup)) <= 1e-6
    X32 = X.astype(np.float32)
    assert abs(ecm.silhouette_score(X32, y) - skm.silhouette_score(X, y)) <= 1e-5
    with pytest.raises(ValueError, match="number of labels is 1"):
        ecm.silhouette_score(X, np.zeros(len(X), int))
    with pytest.raises(ValueError, match="number of labels is 300"):
        ecm.silhouette_score(X, np.arange(300))


@pytest.mark.parametrize("name", ["davies_bouldin_score", "calinski_harabasz_score"])
def test_dispersion_scores_match_sklearn(name):
    for seed in range(3):
        X, y = blobs(seed=seed)
        got, want = getattr(ecm, name)(X, y), getattr(skm, name)(X, y)
        assert abs(got - want) <= 1e-6 * max(1.0, abs(want)), (got, want)
    # degenerate: every cluster is one repeated point (zero intra dispersion)
    X = np.repeat(np.eye(3), 4, axis=0)
    y = np.repeat([0, 1, 2], 4)
    assert getattr(ecm, name)(X, y) == pytest.approx(getattr(skm, name)(X, y), abs=1e-9)
    with pytest.raises(ValueError):
        getattr(ecm, name)(X, np.zeros(len(X), int))
