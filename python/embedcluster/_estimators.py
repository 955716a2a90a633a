"""scikit-learn style estimators over the Rust core.

Inputs: NumPy arrays (float32 stays float32, float64 stays float64; any other numeric
dtype is converted to float64; C-contiguous arrays are used without a copy, others take
one copy in C order) or Arrow streams (see :mod:`embedcluster._io`). Work runs in Rust
with the GIL released; Ctrl-C stops a k-means fit between iterations with
``KeyboardInterrupt``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    OneToOneFeatureMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _core
from ._io import is_arrow, iter_batches, to_numpy

_FLOATS = [np.float64, np.float32]


class _Stage:
    """Measures one stage: wall and CPU seconds, peak RSS (kernel's high-water mark)."""

    def __init__(self, report, name, rows=0):
        self.report, self.name, self.rows = report, name, rows

    def __enter__(self):
        _core.reset_peak_rss()
        self.t0, self.c0 = time.perf_counter(), _core.cpu_seconds()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            stage = {
                "name": self.name,
                "seconds": time.perf_counter() - self.t0,
                "cpu_seconds": _core.cpu_seconds() - self.c0,
                "rows": int(self.rows),
                "peak_rss_bytes": int(_core.peak_rss_bytes()),
            }
            self.report.setdefault("stages", []).append(stage)
            self.report["peak_rss_bytes"] = max(
                s["peak_rss_bytes"] for s in self.report["stages"]
            )
        return False


def _validate(est, X, reset):
    if is_arrow(X):
        X = to_numpy(X)
    return validate_data(est, X, reset=reset, dtype=_FLOATS, order="C")


def _seed(random_state):
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def normalize(X, *, copy=True):
    """Scale the rows of ``X`` (n_samples, n_features), float32/float64, to unit L2 norm.

    With ``copy=False`` a C-contiguous float array is normalized in place (no memory).
    All-zero rows raise ``ValueError`` naming the row.
    """
    X = np.array(X, dtype=X.dtype if X.dtype in (np.float32, np.float64) else np.float64,
                 order="C", copy=copy)
    norms = np.sqrt(np.einsum("ij,ij->i", X, X, dtype=np.float64))
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise ValueError(f"row {zero[0]} is all zeros and cannot be normalized")
    X /= norms[:, None].astype(X.dtype)
    return X


def _unit_rows(X):
    """X itself when its rows are unit vectors (within 1e-4), else a normalized copy."""
    sq = np.einsum("ij,ij->i", X, X, dtype=np.float64)
    if np.all(np.abs(sq - 1.0) <= 1e-4):
        return X
    return normalize(X, copy=True)


class KMeans(ClusterMixin, TransformerMixin, BaseEstimator):
    """k-means (Lloyd 1982) or spherical k-means (Dhillon and Modha 2001).

    Greedy k-means++ initialization (Arthur and Vassilvitskii 2007; ``2 + ln k`` local
    trials as scikit-learn), Lloyd iterations whose assignment step is a tiled GEMM with the
    argmin fused in: never an ``n_samples x n_clusters`` matrix.

    Parameters
    ----------
    n_clusters : int, default=8
    metric : {"euclidean", "cosine"}, default="euclidean"
        ``"cosine"`` runs spherical k-means: rows and centroids are unit vectors. Rows that
        are not unit-norm are normalized in one copy of ``X``.
    init : "k-means++" or ndarray of shape (n_clusters, n_features), default="k-means++"
    n_init : int, default=1
        Restarts of k-means++; the lowest objective wins. Ignored for an array ``init``.
    max_iter : int, default=300
    tol : float, default=1e-4
        Stop when the squared centroid shift is at most ``tol * mean(var(X, axis=0))``
        (scikit-learn's definition).
    random_state : int, RandomState or None, default=None
    n_threads : int or None, default=None
        Worker threads (default: all cores). Results do not depend on it.

    Attributes
    ----------
    cluster_centers_ : ndarray (n_clusters, n_features), dtype of X
    labels_ : ndarray (n_samples,), int32
    inertia_ : float
        Sum of squared distances (euclidean) or of ``1 - cos`` (cosine) to the centroids.
    n_iter_ : int
    n_features_in_ : int
    fit_report_ : dict
        ``stages`` (name, seconds, cpu_seconds, rows, peak_rss_bytes) and ``peak_rss_bytes``.

    Memory: ``X`` (not copied when C-contiguous float32/float64) + ``n_samples * (4 + 2 *
    itemsize)`` bytes (labels, distances, norms) + ``16 * n_clusters * n_features * 8`` +
    k-means++'s ``(2 + ln k) * n_samples * itemsize``.

    Raises
    ------
    ValueError (``EmbedclusterError``) for bad parameters or data (NaN, infinity, more
    clusters than samples); ``KeyboardInterrupt`` on Ctrl-C.
    """

    def __init__(
        self,
        n_clusters=8,
        *,
        metric="euclidean",
        init="k-means++",
        n_init=1,
        max_iter=300,
        tol=1e-4,
        random_state=None,
        n_threads=None,
    ):
        self.n_clusters = n_clusters
        self.metric = metric
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_threads = n_threads

    def _check_params(self):
        if self.metric not in ("euclidean", "cosine"):
            raise ValueError(f"metric must be 'euclidean' or 'cosine', got {self.metric!r}")
        for name in ("n_clusters", "n_init", "max_iter"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if not (isinstance(self.tol, (int, float)) and self.tol >= 0):
            raise ValueError(f"tol must be a float >= 0, got {self.tol!r}")

    def _prepare(self, X):
        return _unit_rows(X) if self.metric == "cosine" else X

    def fit(self, X, y=None):
        """Compute the clustering of X (n_samples, n_features); returns self."""
        self._check_params()
        report = {}
        X = _validate(self, X, reset=True)
        with _Stage(report, "fit", rows=X.shape[0]):
            Xp = self._prepare(X)
            init = None
            if isinstance(self.init, str):
                if self.init != "k-means++":
                    raise ValueError(f"init must be 'k-means++' or an array, got {self.init!r}")
            else:
                init = np.ascontiguousarray(self.init, dtype=np.float64)
                if init.shape != (self.n_clusters, X.shape[1]):
                    raise ValueError(
                        f"init has shape {init.shape}, expected ({self.n_clusters}, {X.shape[1]})"
                    )
            r = _core.kmeans_fit(
                Xp,
                int(self.n_clusters),
                self.metric,
                init=init,
                n_init=int(self.n_init),
                max_iter=int(self.max_iter),
                tol=float(self.tol),
                seed=_seed(self.random_state),
                n_threads=self.n_threads,
            )
        if r.get("warning"):
            warnings.warn(r["warning"], ConvergenceWarning, stacklevel=2)
        self.cluster_centers_ = r["cluster_centers"]
        self.labels_ = r["labels"]
        self.inertia_ = float(r["inertia"])
        self.n_iter_ = int(r["n_iter"])
        self.objective_history_ = list(r["objective_history"])
        self.fit_report_ = report
        return self

    def _predict_with_scores(self, X):
        check_is_fitted(self)
        X = _validate(self, X, reset=False)
        centers = np.ascontiguousarray(self.cluster_centers_, dtype=X.dtype)
        return _core.kmeans_predict(self._prepare(X), centers, self.metric, self.n_threads)

    def predict(self, X):
        """Index (int32) of the nearest centroid of each row of X."""
        return self._predict_with_scores(X)[0]

    def predict_with_scores(self, X):
        """``(labels int32, scores float32)``: scores are cosine similarities (cosine) or
        squared distances (euclidean) to the assigned centroid."""
        return self._predict_with_scores(X)

    def transform(self, X):
        """Distances (n_samples, n_clusters) to every centroid: Euclidean distance, or
        ``1 - cos`` for the cosine metric. This output is itself n_samples x n_clusters."""
        check_is_fitted(self)
        X = self._prepare(_validate(self, X, reset=False))
        C = self.cluster_centers_.astype(X.dtype, copy=False)
        dots = X @ C.T
        if self.metric == "cosine":
            return (1.0 - dots).astype(X.dtype, copy=False)
        sq = np.einsum("ij,ij->i", X, X)[:, None] - 2 * dots + np.einsum("ij,ij->i", C, C)[None, :]
        return np.sqrt(np.maximum(sq, 0, out=sq), out=sq)

    def score(self, X, y=None):
        """Opposite of the objective of X on the fitted centroids (higher is better)."""
        _, scores = self._predict_with_scores(X)
        s = scores.astype(np.float64)
        return float(-(1.0 - s).sum() if self.metric == "cosine" else -s.sum())

    def predict_spark(self, df, column, **kwargs):
        """Add ``cluster`` and ``score`` columns to a Spark DataFrame, lazily, on the
        executors; see :func:`embedcluster.spark.predict_spark`."""
        from .spark import predict_spark

        return predict_spark(self, df, column, **kwargs)

    def save(self, path):
        """Save as a model directory (safetensors + manifest.json, the CLI's format)."""
        from ._pipeline import ClusterModel

        ClusterModel(kmeans=self, pca=None, steps=[]).save(path)


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
                    rng = check_random_state(self.random_state)
                    rows = np.sort(rng.choice(n, size=int(self.sample_size), replace=False))
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

    def transform_spark(self, df, column, output_column="pca"):
        """Add the reduced vectors as ``output_column`` to a Spark DataFrame, lazily, on the
        executors; see :func:`embedcluster.spark.transform_spark`."""
        from .spark import transform_spark

        return transform_spark(self, df, column, output_column)

    def fit_transform(self, X, y=None):
        return self.fit(X).transform(X)

    def inverse_transform(self, X):
        """Map reduced rows back to the input space: ``X components_ + mean_``."""
        check_is_fitted(self)
        X = np.asarray(X)
        dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        return (X @ self.components_.astype(dtype) + self.mean_.astype(dtype)).astype(dtype)


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

    def transform_spark(self, df, column, output_column="scaled"):
        """Add the standardized vectors as ``output_column`` to a Spark DataFrame, lazily,
        on the executors; see :func:`embedcluster.spark.transform_spark`."""
        from .spark import transform_spark

        return transform_spark(self, df, column, output_column)

    def inverse_transform(self, X, copy=None):
        check_is_fitted(self)
        copy = self.copy if copy is None else copy
        X = np.array(X, dtype=X.dtype if X.dtype in (np.float32, np.float64) else np.float64, copy=copy)
        if self.with_std:
            X *= self.scale_.astype(X.dtype)
        if self.with_mean:
            X += self.mean_.astype(X.dtype)
        return X
