"""Matrix decomposition (scikit-learn's ``sklearn.decomposition``): :class:`PCA` by
streaming covariance or randomized SVD."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
from sklearn.utils.validation import check_is_fitted

from . import _core, _engine
from ._io import is_arrow, iter_batches
from ._utils import _Stage, _seed, _validate

__all__ = ["PCA"]


class PCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Principal component analysis by streaming covariance or randomized SVD.

    ``fit_method="exact"``: the covariance is accumulated block by block (count, mean,
    co-moment in float64, merged with Chan, Golub and LeVeque's update), then
    eigendecomposed; ``partial_fit`` adds blocks. ``fit_method="randomized"``: randomized
    SVD (Halko, Martinsson and Tropp 2011) on ``sample_size`` rows drawn uniformly (all rows
    if None), centered with the mean of all rows. ``transform`` computes ``X W^T - mu W^T``:
    never a centered copy of X; the output keeps X's dtype.

    Parameters
    ----------
    n_components : int or None, default=None
        None keeps ``min(n_samples, n_features)``.
    fit_method : {"exact", "randomized"}, default="exact"
    sample_size : int or None, default=None
    random_state : int, RandomState or None, default=None
    n_threads : int or None, default=None

    Attributes
    ----------
    components_ : ndarray (n_components, n_features), float64, orthonormal rows
    mean_ : ndarray (n_features,), float64
    explained_variance_, explained_variance_ratio_ : ndarray (n_components,), float64
    n_samples_seen_ : int
    n_features_in_ : int
    fit_report_ : dict

    Memory (fit, exact): ``2 * n_features^2 * 8`` bytes + ``2 * 1024 * n_features * itemsize``
    scratch; X is not copied. Randomized: the sample (``sample_size * n_features *
    itemsize``) + ``2 * sample_size * (n_components + 10) * itemsize``.
    """

    def __init__(
        self,
        n_components=None,
        *,
        fit_method="exact",
        sample_size=None,
        random_state=None,
        n_threads=None,
    ):
        self.n_components = n_components
        self.fit_method = fit_method
        self.sample_size = sample_size
        self.random_state = random_state
        self.n_threads = n_threads

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _k(self, n, d):
        k = self.n_components
        if k is None:
            return min(n, d)
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= d:
            raise ValueError(f"n_components={k!r} must be between 1 and n_features={d}")
        if self.fit_method == "randomized" and k > n:
            raise ValueError(f"n_components={k!r} must be at most n_samples={n}")
        return int(k)

    def _finish(self, pca):
        self.components_ = pca["components"]
        self.mean_ = pca["mean"]
        self.explained_variance_ = pca["explained_variance"]
        self.explained_variance_ratio_ = pca["explained_variance_ratio"]
        self.n_samples_seen_ = int(pca["n_samples_seen"])
        self.n_components_ = self.components_.shape[0]
        self._n_features_out = self.n_components_

    def fit(self, X, y=None):
        """Fit on X (n_samples, n_features) or an Arrow stream (streamed, exact only)."""
        if self.fit_method not in ("exact", "randomized"):
            raise ValueError(f"fit_method must be 'exact' or 'randomized', got {self.fit_method!r}")
        for attr in ("_state",):
            if hasattr(self, attr):
                delattr(self, attr)
        report = {}
        if is_arrow(X) and self.fit_method == "exact":
            with _Stage(report, "fit") as st:
                for block in iter_batches(X):
                    self.partial_fit(block)
                    st.rows += len(block)
            if not hasattr(self, "_state"):
                raise ValueError("Found array with 0 sample(s) (the Arrow stream is empty)")
            self.fit_report_ = report
            return self
        X = _validate(self, X, reset=True)
        n, d = X.shape
        if n < 2:
            raise ValueError(f"n_samples = {n}: PCA needs at least 2 samples")
        k = self._k(n, d)
        with _Stage(report, "fit", rows=n):
            if self.fit_method == "exact":
                self._state = _core.cov_partial(X, self.n_threads)
                self._finish(_core.cov_finish(*self._state, k))
            else:
                moments = _core.moments_partial(X)
                sample = X
                if self.sample_size is not None and self.sample_size < n:
                    rows = _engine.sample_rows(n, int(self.sample_size), self.random_state)
                    sample = np.ascontiguousarray(X[rows])
                self._finish(
                    _core.pca_randomized(
                        sample, moments, k, seed=_seed(self.random_state), n_threads=self.n_threads
                    )
                )
        self.fit_report_ = report
        return self

    def partial_fit(self, X, y=None):
        """Add a block of rows to the covariance (exact fit) and refresh the components."""
        first = not hasattr(self, "_state")
        X = _validate(self, X, reset=first)
        state = _core.cov_partial(X, self.n_threads)
        self._state = state if first else _core.cov_merge(self._state, state)
        n, d = self._state[0], X.shape[1]
        if n >= 2:
            self._finish(_core.cov_finish(*self._state, self._k(n, d)))
        return self

    def transform(self, X, chunk_size=None):
        """Project X onto the components: (n_samples, n_components), X's dtype.

        ``chunk_size`` rows at a time when given (the output is allocated once); an Arrow
        stream is projected batch by batch.
        """
        check_is_fitted(self)
        if is_arrow(X):
            blocks = [self.transform(b) for b in iter_batches(X)]
            return np.concatenate(blocks) if blocks else np.empty((0, self.n_components_))
        X = _validate(self, X, reset=False)
        if chunk_size is None or chunk_size >= len(X):
            return _core.pca_transform(X, self.mean_, self.components_, self.n_threads)
        out = np.empty((len(X), self.n_components_), dtype=X.dtype)
        for s in range(0, len(X), int(chunk_size)):
            out[s : s + chunk_size] = _core.pca_transform(
                X[s : s + chunk_size], self.mean_, self.components_, self.n_threads
            )
        return out

    def fit_transform(self, X, y=None):
        return self.fit(X).transform(X)

    def transform_dask(self, data, *, column="embedding", output_column="pca"):
        """Project a Dask collection lazily, chunk by chunk (needs ``dask``).

        ``data``: a ``dask.array.Array`` (n_samples, n_features) chunked along rows (a chunked
        second axis is joined first), giving an array (n_samples, n_components) of the
        input's float dtype; or a ``dask.dataframe.DataFrame`` whose ``column`` is a list of
        floats, giving the same frame with ``output_column`` (a list of the column's float
        type) appended. Memory per task: the chunk, its validated copy where it is not
        C-contiguous float, and ``n_rows * n_components * itemsize`` for the output.
        A NaN or infinity fails the computation naming the chunk (or partition) and row.
        """
        check_is_fitted(self)
        mean, comps, threads = self.mean_, self.components_, self.n_threads

        def fn(X):
            return _core.pca_transform(X, mean, comps, threads or _engine.task_threads())

        return _engine.apply_dask(data, column, fn, self.n_components_, None, output_column)

    def inverse_transform(self, X):
        """Map reduced rows back to the input space: ``X components_ + mean_``."""
        check_is_fitted(self)
        X = np.asarray(X)
        dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        return (X @ self.components_.astype(dtype) + self.mean_.astype(dtype)).astype(dtype)


