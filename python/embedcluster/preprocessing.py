"""Preprocessing (scikit-learn's ``sklearn.preprocessing``): row normalization and a
streaming :class:`StandardScaler`."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from scipy.sparse import issparse
from sklearn.utils import check_array
from sklearn.utils.sparsefuncs import inplace_column_scale
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import _core, _engine
from ._io import is_vector_table, iter_batches
from ._utils import _validate
from ._typing import Data, Floats

__all__ = ["StandardScaler", "normalize"]


def normalize(X: ArrayLike, *, copy: bool = True) -> Floats:
    """Scale the rows of ``X`` (n_samples, n_features), float32/float64, to unit L2 norm
    (the core's normalization, norms accumulated in float64: the same bits as the CLI).

    With ``copy=False`` a C-contiguous float array is normalized in place (no memory).
    All-zero rows raise ``ValueError`` naming the row.
    """
    X = np.array(X, dtype=X.dtype if X.dtype in (np.float32, np.float64) else np.float64,
                 order="C", copy=copy)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}")
    _core.normalize_rows(X)
    return X


def _unit_rows(X):
    """X itself when its rows are unit vectors (within 1e-4), else a normalized copy."""
    return _engine.unit_rows(X)


# scikit-learn's scalers keep float16 (its FLOAT_DTYPES); the estimators over the core's
# kernels take float32/float64 and convert the rest to float64, as scikit-learn's KMeans and PCA
_SCALER_FLOATS = (np.float64, np.float32, np.float16)


class StandardScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Standardize features with mean and variance merged block by block.

    ``partial_fit`` merges per-feature count, mean and M2 in float64 with Chan, Golub and
    LeVeque's (1979) update, so uneven batches give scikit-learn's figures. ``fit`` on an
    Arrow stream of vectors streams it. With ``sample_weight`` each row counts ``w_i``
    times (weighted mean and population variance, merged the same way with weight sums for
    counts). Sparse input (CSR/CSC) is accepted with ``with_mean=False`` (centering would
    densify it): the moments are taken on dense blocks of 1024 rows and ``transform``
    scales the stored values in place (or in a copy).

    Attributes
    ----------
    mean_ : ndarray (n_features,) float64, or None when ``with_mean=False`` and
        ``with_std=False``
    var_ : ndarray (n_features,) float64 (population variance), or None when
        ``with_std=False``; exactly 0 for a column whose values are all equal
    scale_ : ndarray (n_features,) float64, or None when ``with_std=False``
        ``sqrt(var_)``, 1 for features that are constant up to rounding (scikit-learn's
        rule)
    n_samples_seen_ : int, or float (the sum of the weights) with ``sample_weight``
    n_features_in_ : int; feature_names_in_ when X has column names

    Memory: ``4 * n_features * 8`` bytes of state; weighted or sparse input adds blocks of
    ``1024 * n_features * 8``. NaN is an error naming its row and column (missing values
    are not ignored, unlike scikit-learn's scaler).

    The CLI's ``embedcluster scale`` applies the same statistics to a whole file in two
    streamed passes (Chan, Golub and LeVeque 1979 for the merge).
    """

    mean_: Optional[NDArray[np.float64]]
    var_: Optional[NDArray[np.float64]]
    scale_: Optional[NDArray[np.float64]]
    n_samples_seen_: Union[int, float]
    n_features_in_: int

    def __init__(self, *, copy: bool = True, with_mean: bool = True, with_std: bool = True) -> None:
        self.copy = copy
        self.with_mean = with_mean
        self.with_std = with_std

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = not self.with_mean  # sparse data cannot be centered
        return tags

    def _reset(self):
        for a in ("_moments", "mean_", "var_", "scale_", "n_samples_seen_"):
            if hasattr(self, a):
                delattr(self, a)

    def fit(self, X: Data, y: Any = None,
            sample_weight: Optional[ArrayLike] = None) -> StandardScaler:
        """Compute the mean and variance of X (n_samples, n_features), or of an Arrow
        stream of vectors; returns self."""
        self._reset()
        if is_vector_table(X):
            if sample_weight is not None:
                raise ValueError("sample_weight cannot be given with an Arrow stream")
            for block in iter_batches(X):
                self.partial_fit(block)
            if not hasattr(self, "_moments"):
                raise ValueError("Found array with 0 sample(s) (the Arrow stream is empty)")
            return self
        return self.partial_fit(X, sample_weight=sample_weight)

    def partial_fit(self, X: Data, y: Any = None,
                    sample_weight: Optional[ArrayLike] = None) -> StandardScaler:
        """Merge the moments of the block X (and its ``sample_weight``) into the state."""
        first = not hasattr(self, "_moments")
        X = _validate(self, X, reset=first, accept_sparse=("csr", "csc"), dtype=_SCALER_FLOATS)
        if issparse(X) and self.with_mean:
            raise ValueError("Cannot center sparse matrices: pass `with_mean=False` instead. "
                             "See docstring for motivation and alternatives.")
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        native = X.dtype in (np.float32, np.float64) and not issparse(X)
        if sample_weight is None and native:
            m = _core.moments_partial(X)
        else:
            m = _weighted_moments(X, sample_weight)
        if not first:
            m = _merge_moments(self._moments, m)
        self._weighted = (not first and self._weighted) or sample_weight is not None
        return self._set_moments(m)

    def _set_moments(self, moments):
        """Fitted attributes from merged moments ``(n, mean, m2)`` (also used by
        :func:`embedcluster.spark.fit_scaler`); ``n`` is a count or a weight sum."""
        self._moments = moments
        n, mean, m2 = moments
        weighted = getattr(self, "_weighted", False)
        self.n_samples_seen_ = float(n) if weighted else int(n)
        var = m2 / n if n > 0 else np.zeros_like(m2)  # exactly 0 for a constant column
        # scikit-learn's _is_constant_feature: constant up to rounding -> scale 1
        eps = np.finfo(np.float64).eps
        constant = var <= n * eps * var + (n * mean * eps) ** 2
        scale = np.sqrt(var)
        scale[constant] = 1.0
        self.mean_ = mean if (self.with_mean or self.with_std) else None
        self.var_ = var if self.with_std else None
        self.scale_ = scale if self.with_std else None
        return self

    def transform(self, X: Data, copy: Optional[bool] = None) -> Any:
        """Center and scale X (n_samples, n_features), X's float dtype; a copy unless
        ``copy=False`` (then a C-contiguous float array is changed in place). Sparse X
        (``with_mean=False``) has its stored values scaled."""
        check_is_fitted(self)
        copy = self.copy if copy is None else copy
        X = validate_data(self, X, reset=False, dtype=_SCALER_FLOATS, copy=copy,
                          accept_sparse=("csr", "csc"))
        return self._apply(X, inverse=False)

    def _apply(self, X, inverse):
        if issparse(X):
            if self.with_mean:
                raise ValueError("Cannot center sparse matrices: pass `with_mean=False` "
                                 "instead. See docstring for motivation and alternatives.")
            if self.scale_ is not None:
                inplace_column_scale(X, self.scale_ if inverse else 1.0 / self.scale_)
            return X
        if inverse:
            if self.with_std:
                X *= self.scale_.astype(X.dtype)
            if self.with_mean:
                X += self.mean_.astype(X.dtype)
        else:
            if self.with_mean:
                X -= self.mean_.astype(X.dtype)
            if self.with_std:
                X /= self.scale_.astype(X.dtype)
        return X

    def transform_dask(self, data: Any, *, column: str = "embedding",
                       output_column: str = "scaled") -> Any:
        """Scale a Dask collection lazily, chunk by chunk (needs ``dask``): a Dask array
        gives an array of the same shape and float dtype; a Dask DataFrame whose ``column``
        is a list of floats gets ``output_column`` appended. Memory per task: the chunk and
        its scaled copy. A NaN or infinity fails the computation naming the chunk (or
        partition) and row."""
        check_is_fitted(self)
        return _engine.apply_dask(data, column, lambda X: self.transform(X, copy=True),
                                  self.n_features_in_, None, output_column)

    def inverse_transform(self, X: Data, copy: Optional[bool] = None) -> Any:
        """Undo :meth:`transform`: ``X * scale_ + mean_``; X is validated as in
        ``transform`` (2-D, finite, float), a copy unless ``copy=False``."""
        check_is_fitted(self)
        copy = self.copy if copy is None else copy
        X = check_array(X, accept_sparse=("csr", "csc"), copy=copy, dtype=_SCALER_FLOATS)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input.")
        return self._apply(X, inverse=True)


def _weighted_moments(X, w, rows=1024):
    """``(weight sum, mean, m2)`` of X (dense or sparse) with row weights ``w`` (None: 1),
    in float64, ``rows`` rows at a time (blocks merged as in :func:`_merge_moments`); as the
    core's, each block's mean is taken of the values shifted by its first row, so a constant
    column has exactly its value for mean and 0 for m2."""
    from .decomposition import _dense_blocks

    m = None
    for s, block in zip(range(0, X.shape[0], rows), _dense_blocks(X, rows)):
        b = block.astype(np.float64)
        wb = np.ones(len(b)) if w is None else w[s:s + len(b)]
        sw = len(b) if w is None else float(wb.sum())
        b0 = b[0].copy()
        b -= b0
        shift = (wb @ b) / sw if sw > 0 else np.zeros(b.shape[1])
        part = (sw, b0 + shift, wb @ (b - shift) ** 2)
        m = part if m is None else _merge_moments(m, part)
    if m is None:
        raise ValueError("Found array with 0 sample(s)")
    return m


def _merge_moments(a, b):
    """Chan, Golub and LeVeque's (1979) merge of ``(n, mean, m2)`` states whose ``n`` may
    be a weight sum: the core's merge for integer counts, the same update in float64
    otherwise."""
    if isinstance(a[0], (int, np.integer)) and isinstance(b[0], (int, np.integer)):
        return _core.moments_merge(a, b)
    na, nb = float(a[0]), float(b[0])
    n = na + nb
    if n == 0:
        return (0.0, a[1], a[2])
    delta = b[1] - a[1]
    return (n, a[1] + delta * (nb / n), a[2] + b[2] + delta**2 * (na * nb / n))
