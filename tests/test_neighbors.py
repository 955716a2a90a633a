"""Exact neighbours against a brute-force numpy oracle (all ids, ties by smaller id)."""

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors as SkNN

import embedcluster as ec


def oracle(base, queries, k, metric, exclude_self=False):
    """Brute force in float64: full distance matrix, stable sort by (distance, id)."""
    b, q = base.astype(np.float64), queries.astype(np.float64)
    if metric == "l2":
        key = ((q[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    elif metric == "ip":
        key = -(q @ b.T)
    else:
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        bn = b / np.linalg.norm(b, axis=1, keepdims=True)
        key = 1.0 - qn @ bn.T
    if exclude_self:
        key[np.arange(len(q)), np.arange(len(q))] = np.inf
    ids = np.argsort(key, axis=1, kind="stable")[:, :k]
    d = np.take_along_axis(key, ids, axis=1)
    return (-d if metric == "ip" else d), ids


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_index_matches_bruteforce(metric, dtype):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((1500, 24)).astype(dtype)
    queries = rng.standard_normal((70, 24)).astype(dtype)
    want_d, want_i = oracle(base, queries, 25, metric)
    if metric == "cosine":
        nn = ec.NearestNeighbors(n_neighbors=25, metric="cosine").fit(base)
        got_d, got_i = nn.kneighbors(queries)
    else:
        index = (ec.IndexFlatL2 if metric == "l2" else ec.IndexFlatIP)(24)
        index.add(base[:600])  # added in two parts: ids continue
        index.add(base[600:])
        got_d, got_i = index.search(queries, 25)
    # FAISS-style indexes store float32 (as FAISS); NearestNeighbors keeps the dtype
    out = dtype if metric == "cosine" else np.float32
    assert got_i.dtype == np.int64 and got_d.dtype == out
    np.testing.assert_array_equal(got_i, want_i)
    tol = 1e-9 if out == np.float64 else 2e-3
    np.testing.assert_allclose(got_d, want_d, rtol=tol, atol=tol)


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_ties_are_broken_by_smaller_id(metric):
    # small integers: every distance is exact, many are equal
    rng = np.random.default_rng(0)
    base = rng.integers(-2, 3, size=(3000, 6)).astype(np.float32)
    queries = base[:50].copy()
    want_d, want_i = oracle(base, queries, 40, metric)
    index = (ec.IndexFlatL2 if metric == "l2" else ec.IndexFlatIP)(6)
    index.add(base)
    for threads in (1, 2):
        got_d, got_i = index.search(queries, 40, n_threads=threads)
        np.testing.assert_array_equal(got_i, want_i)
        np.testing.assert_array_equal(got_d, want_d.astype(np.float32))


def test_nearest_neighbors_matches_sklearn_and_excludes_self():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((800, 16))
    for metric in ["euclidean", "cosine"]:
        ours = ec.NearestNeighbors(n_neighbors=7, metric=metric).fit(X)
        ref = SkNN(n_neighbors=7, metric=metric, algorithm="brute").fit(X)
        d1, i1 = ours.kneighbors(X[:100])
        d2, i2 = ref.kneighbors(X[:100])
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_allclose(d1, d2, atol=1e-6)  # sklearn: 1e-7 for self-matches
        # X=None: each fitted row, itself excluded (scikit-learn's convention)
        d1, i1 = ours.kneighbors()
        d2, i2 = ref.kneighbors()
        np.testing.assert_array_equal(i1, i2)
        assert not np.any(i1 == np.arange(len(X))[:, None])


def test_bad_input():
    index = ec.IndexFlatL2(8)
    index.add(np.zeros((5, 8), np.float32))
    with pytest.raises(ValueError, match="k = 6 must be between 1 and ntotal = 5"):
        index.search(np.zeros((1, 8), np.float32), 6)
    with pytest.raises(ValueError, match="queries have 4 features, the index has d = 8"):
        index.search(np.zeros((1, 4), np.float32), 1)
    with pytest.raises(ValueError, match="vectors have 3 features"):
        index.add(np.zeros((2, 3), np.float32))
    nn = ec.NearestNeighbors(n_neighbors=5).fit(np.ones((5, 2)))
    with pytest.raises(ValueError, match="n_neighbors <= n_samples_fit - 1"):
        nn.kneighbors()
    with pytest.raises(ValueError, match="features"):
        nn.kneighbors(np.ones((2, 3)))
    cos = ec.NearestNeighbors(n_neighbors=1, metric="cosine").fit(np.ones((5, 2)))
    with pytest.raises(ValueError, match="query row 1 is all zeros"):
        cos.kneighbors(np.array([[1.0, 0.0], [0.0, 0.0]]))
