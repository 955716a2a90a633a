"""Preprocessing (scikit-learn's ``sklearn.preprocessing``): row normalization and a
streaming :class:`StandardScaler`."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _core, _engine
from ._io import is_arrow, iter_batches
from ._utils import _FLOATS, _validate

__all__ = ["StandardScaler", "normalize"]


def normalize(X, *, copy=True):
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


class StandardScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Standardize features with mean and variance merged block by block.

    ``partial_fit`` merges per-feature count, mean and M2 in float64 with Chan, Golub and
    LeVeque's (1979) update, so uneven batches give scikit-learn's figures. ``fit`` on an
    Arrow stream streams it. Memory: ``2 * n_features * 8`` bytes of state.

    Attributes: ``mean_``, ``var_`` (population variance), ``scale_`` (1 for features that
    are constant up to rounding, scikit-learn's rule), ``n_samples_seen_``, ``n_features_in_``.

    The CLI's ``embedcluster scale`` applies the same statistics to a whole file in two
    streamed passes (Chan, Golub and LeVeque 1979 for the merge).
    """

    def __init__(self, *, with_mean=True, with_std=True, copy=True):
        self.with_mean = with_mean
        self.with_std = with_std
        self.copy = copy

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = False
        return tags

    def _reset(self):
        for a in ("_moments", "mean_", "var_", "scale_", "n_samples_seen_"):
            if hasattr(self, a):
                delattr(self, a)

    def fit(self, X, y=None):
        self._reset()
        if is_arrow(X):
            for block in iter_batches(X):
                self.partial_fit(block)
            if not hasattr(self, "_moments"):
                raise ValueError("Found array with 0 sample(s) (the Arrow stream is empty)")
            return self
        return self.partial_fit(X)

    def partial_fit(self, X, y=None):
        first = not hasattr(self, "_moments")
        X = _validate(self, X, reset=first)
        m = _core.moments_partial(X)
        return self._set_moments(m if first else _core.moments_merge(self._moments, m))

    def _set_moments(self, moments):
        """Fitted attributes from merged moments ``(n, mean, m2)`` (also used by
        :func:`embedcluster.spark.fit_scaler`)."""
        self._moments = moments
        n, mean, m2 = moments
        self.n_samples_seen_ = int(n)
        self.mean_ = mean
        self.var_ = m2 / max(n, 1)
        # scikit-learn's _is_constant_feature: constant up to rounding -> scale 1
        eps = np.finfo(np.float64).eps
        constant = self.var_ <= n * eps * self.var_ + (n * self.mean_ * eps) ** 2
        scale = np.sqrt(self.var_)
        scale[constant] = 1.0
        self.scale_ = scale
        return self

    def transform(self, X, copy=None):
        check_is_fitted(self)
        copy = self.copy if copy is None else copy
        X = validate_data(self, X, reset=False, dtype=_FLOATS, copy=copy)
        if self.with_mean:
            X -= self.mean_.astype(X.dtype)
        if self.with_std:
            X /= self.scale_.astype(X.dtype)
        return X

    def transform_dask(self, data, *, column="embedding", output_column="scaled"):
        """Scale a Dask collection lazily, chunk by chunk (needs ``dask``): a Dask array
        gives an array of the same shape and float dtype; a Dask DataFrame whose ``column``
        is a list of floats gets ``output_column`` appended. Memory per task: the chunk and
        its scaled copy. A NaN or infinity fails the computation naming the chunk (or
        partition) and row."""
        check_is_fitted(self)
        return _engine.apply_dask(data, column, lambda X: self.transform(X, copy=True),
                                  self.n_features_in_, None, output_column)

    def inverse_transform(self, X, copy=None):
        check_is_fitted(self)
        copy = self.copy if copy is None else copy
        X = np.array(X, dtype=X.dtype if X.dtype in (np.float32, np.float64) else np.float64, copy=copy)
        if self.with_std:
            X *= self.scale_.astype(X.dtype)
        if self.with_mean:
            X += self.mean_.astype(X.dtype)
        return X
