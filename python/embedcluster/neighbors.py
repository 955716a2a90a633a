"""Exact nearest neighbours: scikit-learn's ``NearestNeighbors`` and FAISS-style flat indexes.

Search is a blocked GEMM over query and base tiles with a bounded heap per query (Rust core,
GIL released): never an ``n_queries x n_base`` distance matrix. Peak memory above the
inputs: ``n_queries * k * (itemsize + 8)`` bytes for the heaps plus 1 MiB per thread (f32).
The base arrays are referenced, not copied, when they are C-contiguous float32/float64.

Ties (equal distances) are broken by the smaller base id, so results do not depend on the
number of threads or on how the base was added.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _core
from ._io import is_vector_table, to_numpy
from ._typing import Data, Floats

_FLOATS = [np.float64, np.float32]


def _as_float_c(X, dtype=None):
    if is_vector_table(X):
        X = to_numpy(X)
    X = np.asarray(X)
    if dtype is None:
        dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {X.shape}")
    return np.ascontiguousarray(X, dtype=dtype)


class NearestNeighbors(BaseEstimator):
    """Exact k nearest neighbours, as ``sklearn.neighbors.NearestNeighbors(algorithm="brute")``.

    Parameters
    ----------
    n_neighbors : int, default=5
    metric : {"euclidean", "sqeuclidean", "cosine"}, default="euclidean"
        Distances returned: Euclidean, squared Euclidean, or cosine distance ``1 - cos``.
    n_threads : int or None, default=None

    Attributes
    ----------
    n_samples_fit_ : int
    n_features_in_ : int

    Notes
    -----
    ``fit`` keeps a reference to ``X`` (no copy for C-contiguous float input). ``kneighbors``
    holds ``n_queries * n_neighbors * (itemsize + 8)`` bytes of heaps plus one 1 MiB tile
    per thread. Raises ``ValueError`` when ``n_neighbors`` exceeds the fitted rows (minus
    one when the queries are the fitted rows), or the feature counts differ.
    """

    def __init__(self, n_neighbors: int = 5, *, metric: str = "euclidean",
                 n_threads: Optional[int] = None) -> None:
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.n_threads = n_threads

    def _core_metric(self):
        m = {"euclidean": "l2", "sqeuclidean": "l2", "cosine": "cosine"}.get(self.metric)
        if m is None:
            raise ValueError(
                f"metric={self.metric!r}: expected 'euclidean', 'sqeuclidean' or 'cosine'"
            )
        return m

    def fit(self, X: Data, y: Any = None) -> NearestNeighbors:
        """Index ``X`` (n_samples, n_features), float32/float64 kept as is."""
        self._core_metric()
        if is_vector_table(X):
            X = to_numpy(X)
        self._fit_X = validate_data(self, X, dtype=_FLOATS, order="C")
        self.n_samples_fit_ = self._fit_X.shape[0]
        return self

    @overload
    def kneighbors(self, X: Data = ..., n_neighbors: Optional[int] = ...,
                   return_distance: Literal[True] = ...) -> tuple[Floats, NDArray[np.int64]]: ...
    @overload
    def kneighbors(self, X: Data, n_neighbors: Optional[int],
                   return_distance: Literal[False]) -> NDArray[np.int64]: ...
    @overload
    def kneighbors(self, X: Data = ..., n_neighbors: Optional[int] = ..., *,
                   return_distance: Literal[False]) -> NDArray[np.int64]: ...

    def kneighbors(self, X: Data = None, n_neighbors: Optional[int] = None,
                   return_distance: bool = True) -> Any:
        """Neighbours of each row of ``X`` (or of each fitted row, excluding itself).

        Returns ``(distances, indices)``: float arrays of the fitted dtype and int64 indices,
        both (n_queries, n_neighbors), nearest first.
        """
        check_is_fitted(self, "_fit_X")
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        if k <= 0:
            raise ValueError(f"Expected n_neighbors > 0. Got {k}")
        exclude = X is None
        if exclude:
            Q = self._fit_X
        else:
            Q = validate_data(self, _as_float_c(X, self._fit_X.dtype), reset=False,
                              dtype=self._fit_X.dtype, order="C")
        limit = self.n_samples_fit_ - int(exclude)
        if k > limit:
            raise ValueError(
                f"Expected n_neighbors <= n_samples_fit{' - 1' if exclude else ''}, "
                f"but n_neighbors = {k}, n_samples_fit = {self.n_samples_fit_}"
            )
        dist, ind = _core.knn_search(
            [self._fit_X], Q, k, self._core_metric(), exclude, self.n_threads
        )
        if not return_distance:
            return ind
        if self.metric == "euclidean":
            np.sqrt(dist, out=dist)
        return dist, ind


class _IndexFlat:
    _metric = "l2"

    def __init__(self, d: int) -> None:
        if int(d) <= 0:
            raise ValueError(f"d must be positive, got {d}")
        self.d = int(d)
        self._parts = []
        self.ntotal = 0

    def add(self, x: ArrayLike) -> None:
        """Append rows ``x`` (n, d), stored as float32 like FAISS; ids continue from
        ``ntotal``. A C-contiguous float32
        array is referenced, not copied (FAISS copies); do not modify it afterwards."""
        x = _as_float_c(x, np.float32)
        if x.shape[1] != self.d:
            raise ValueError(f"vectors have {x.shape[1]} features, the index has d = {self.d}")
        if x.shape[0]:
            self._parts.append(x)
            self.ntotal += x.shape[0]

    def reset(self) -> None:
        self._parts, self.ntotal = [], 0

    def search(self, x: ArrayLike, k: int,
               n_threads: Optional[int] = None) -> tuple[Floats, NDArray[np.int64]]:
        """``(D, I)`` for queries ``x`` (nq, d): float32 distances and int64 ids (nq, k),
        best first. ``IndexFlatL2``: squared L2 distances; ``IndexFlatIP``: inner products,
        largest first. Raises ``ValueError`` when ``k`` exceeds ``ntotal`` (FAISS pads
        with -1)."""
        q = _as_float_c(x, np.float32)
        if q.shape[1] != self.d:
            raise ValueError(f"queries have {q.shape[1]} features, the index has d = {self.d}")
        if not 0 < k <= self.ntotal:
            raise ValueError(f"k = {k} must be between 1 and ntotal = {self.ntotal}")
        return _core.knn_search(self._parts, q, int(k), self._metric, False, n_threads)


class IndexFlatL2(_IndexFlat):
    """Exact search by squared L2 distance, with FAISS's ``IndexFlatL2`` interface
    (``add``, ``search``, ``ntotal``, ``reset``)."""

    _metric = "l2"


class IndexFlatIP(_IndexFlat):
    """Exact search by inner product (largest first), with FAISS's ``IndexFlatIP``
    interface."""

    _metric = "ip"
