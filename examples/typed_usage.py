"""The public API as a typed codebase uses it; CI runs ``mypy --strict`` on this file
(tests/test_typing.py), so the package's annotations and its stubs are what users get."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

import embedcluster as ec


def cluster(X: NDArray[np.float32], k: int) -> tuple[NDArray[np.int32], float]:
    Z = ec.PCA(16, random_state=0).fit(X).transform(X)
    ec.normalize(Z, copy=False)
    km = ec.KMeans(k, metric="cosine", random_state=0).fit(Z)
    labels: NDArray[np.int32] = km.predict(Z)
    scores = km.predict_with_scores(Z)[1]
    assert scores.dtype == np.float32
    return labels, km.inertia_


def scale(X: NDArray[np.float64]) -> NDArray[np.float64]:
    sc = ec.StandardScaler().fit(X, sample_weight=np.ones(len(X)))
    out: NDArray[np.float64] = sc.transform(X)
    return out


def pipeline(path: str, k: int) -> dict[str, object]:
    res = ec.cluster_embeddings(path, k, reduce="pca:32")
    labels: NDArray[np.int32] = res.labels
    model = res.model
    model.save("model-dir")
    again = ec.load("model-dir")
    assert (again.predict(np.zeros((2, model.n_features_in_), np.float32)) >= 0).all()
    ari: float = ec.metrics.adjusted_rand_score(labels, labels)
    return {"ari": ari, "report": res.report}


def neighbours(X: NDArray[np.float32]) -> NDArray[np.int64]:
    nn = ec.NearestNeighbors(n_neighbors=3).fit(X)
    dist, idx = nn.kneighbors(X)
    assert dist.shape == idx.shape
    return idx


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 32)).astype(np.float32)
    print(cluster(X, 5)[1], scale(X.astype(np.float64)).shape, neighbours(X).shape)
