"""Exact pruning for large k (issue 20) through the Python estimator: the same fit as
without it, bit for bit, and a report of what it did."""

import numpy as np
import pytest

from embedcluster.cluster import KMeans


def _topics(n=6000, d=64, topics=40, seed=3):
    # embeddings-like: a few strong directions, unit rows
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((topics, d)).astype(np.float32) * np.linspace(3, 0.2, d, dtype=np.float32)
    x = means[rng.integers(0, topics, n)] + rng.standard_normal((n, d)).astype(np.float32) * 0.5
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_pruned_fit_equals_the_full_kernel_bit_for_bit(metric):
    x = _topics()
    init = x[np.random.default_rng(0).choice(len(x), 300, replace=False)]
    fits = {}
    for pruning in ("auto", "off", 24):
        km = KMeans(n_clusters=300, init=init, n_init=1, max_iter=8, tol=0.0,
                    metric=metric, pruning=pruning).fit(x)
        fits[pruning] = km
    off = fits["off"]
    assert off.pruning_ is None
    for name in ("auto", 24):
        km = fits[name]
        np.testing.assert_array_equal(km.labels_, off.labels_)
        np.testing.assert_array_equal(km.cluster_centers_, off.cluster_centers_)
        assert km.inertia_ == off.inertia_
        assert km.n_iter_ == off.n_iter_
        pr = km.pruning_
        assert pr["passes"] >= 1 and pr["prefix_dims"] == (16 if name == "auto" else 24)
        # it computed fewer exact distances than the 300 the full kernel does per row
        assert 0 < pr["keys_per_row"] < 300


def test_pruning_is_validated():
    with pytest.raises(ValueError, match="pruning"):
        KMeans(n_clusters=3, pruning="sometimes").fit(_topics(n=200))
