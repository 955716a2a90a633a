"""Clustering scores with scikit-learn's names, definitions and edge cases.

External scores compare two labelings (any integer or string labels) through a sparse
contingency table: ``O(distinct pairs)`` memory. Internal scores take data ``X``
(n_samples, n_features), float32/float64 used in place, and labels:

* :func:`silhouette_score` / :func:`silhouette_samples` are exact in ``O(n^2 d)`` time but
  hold only tiles: ``12 n`` bytes + about 1.5 MiB per thread, never ``n x n`` blocks
  (scikit-learn's chunked version holds up to ``working_memory`` and an ``n x n_labels``
  table). ``sample_size`` with ``random_state`` draws exactly scikit-learn's sample.
* :func:`davies_bouldin_score` and :func:`calinski_harabasz_score`: two passes, ``k d``
  float64 of state.

Errors: ``ValueError`` (``EmbedclusterError``) for labelings of different lengths and for
fewer than 2 or more than ``n_samples - 1`` labels, as scikit-learn.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils import check_random_state

from . import _core
from ._io import is_vector_table, to_numpy
from ._typing import Data


def _codes(labels, name):
    a = np.asarray(labels)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype.kind in "iu" and a.dtype != np.uint64:
        return np.ascontiguousarray(a, dtype=np.int64)
    _, inv = np.unique(a, return_inverse=True)
    return np.ascontiguousarray(inv.reshape(-1), dtype=np.int64)


def _ext(labels_true, labels_pred, name):
    t, p = _codes(labels_true, "labels_true"), _codes(labels_pred, "labels_pred")
    return _core.external_scores(t, p, [name])


def adjusted_rand_score(labels_true: ArrayLike, labels_pred: ArrayLike) -> float:
    """Adjusted Rand index (Hubert and Arabie 1985), as ``sklearn.metrics``."""
    return _ext(labels_true, labels_pred, "adjusted_rand_score")["adjusted_rand_score"]


def mutual_info_score(labels_true: ArrayLike, labels_pred: ArrayLike) -> float:
    """Mutual information in nats, as ``sklearn.metrics.mutual_info_score``."""
    return _ext(labels_true, labels_pred, "mutual_info_score")["mutual_info_score"]


def normalized_mutual_info_score(labels_true: ArrayLike, labels_pred: ArrayLike) -> float:
    """NMI with the arithmetic mean of the entropies (scikit-learn's default)."""
    r = _ext(labels_true, labels_pred, "normalized_mutual_info_score")
    return r["normalized_mutual_info_score"]


def adjusted_mutual_info_score(labels_true: ArrayLike, labels_pred: ArrayLike) -> float:
    """AMI (Vinh, Epps and Bailey 2010), arithmetic normalization, as scikit-learn."""
    r = _ext(labels_true, labels_pred, "adjusted_mutual_info_score")
    return r["adjusted_mutual_info_score"]


def homogeneity_completeness_v_measure(labels_true: ArrayLike,
                                       labels_pred: ArrayLike) -> tuple[float, float, float]:
    """``(homogeneity, completeness, v_measure)`` (Rosenberg and Hirschberg 2007), beta 1."""
    r = _ext(labels_true, labels_pred, "v_measure")
    return r["homogeneity"], r["completeness"], r["v_measure"]


def _xy(X, labels):
    if is_vector_table(X):
        X = to_numpy(X)
    X = np.asarray(X)
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    X = np.ascontiguousarray(X, dtype=dtype)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}")
    return X, _codes(labels, "labels")


_METRICS = ("euclidean", "sqeuclidean", "cosine")


def silhouette_samples(X: Data, labels: ArrayLike, *, metric: str = "euclidean",
                       n_threads: Optional[int] = None) -> NDArray[np.float64]:
    """Silhouette coefficient of each row (Rousseeuw 1987), float64 (n_samples,)."""
    if metric not in _METRICS:
        raise ValueError(f"metric={metric!r}: expected one of {_METRICS}")
    X, labels = _xy(X, labels)
    return _core.internal_score(X, labels, "silhouette_samples", metric, n_threads)


def silhouette_score(X: Data, labels: ArrayLike, *, metric: str = "euclidean",
                     sample_size: Optional[int] = None, random_state: Any = None,
                     n_threads: Optional[int] = None) -> float:
    """Mean silhouette coefficient, as ``sklearn.metrics.silhouette_score``.

    With ``sample_size``, scores the rows ``check_random_state(random_state)
    .permutation(n)[:sample_size]``: the same sample scikit-learn draws.
    """
    X, labels = _xy(X, labels)
    if sample_size is not None:
        idx = check_random_state(random_state).permutation(X.shape[0])[:sample_size]
        X, labels = np.ascontiguousarray(X[idx]), labels[idx]
    return float(np.mean(silhouette_samples(X, labels, metric=metric, n_threads=n_threads)))


def davies_bouldin_score(X: Data, labels: ArrayLike, *, n_threads: Optional[int] = None) -> float:
    """Davies-Bouldin index (Davies and Bouldin 1979), as scikit-learn; lower is better."""
    X, labels = _xy(X, labels)
    return _core.internal_score(X, labels, "davies_bouldin", "euclidean", n_threads)


def calinski_harabasz_score(X: Data, labels: ArrayLike, *,
                            n_threads: Optional[int] = None) -> float:
    """Calinski-Harabasz index (variance ratio, 1974), as scikit-learn; higher is better."""
    X, labels = _xy(X, labels)
    return _core.internal_score(X, labels, "calinski_harabasz", "euclidean", n_threads)
