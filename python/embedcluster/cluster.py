"""Clustering (scikit-learn's ``sklearn.cluster``): :class:`KMeans` over the Rust core."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from . import _core
from ._persist import save_model
from ._utils import _Stage, _seed, _validate
from .preprocessing import _unit_rows

__all__ = ["KMeans"]


class KMeans(ClusterMixin, TransformerMixin, BaseEstimator):
    """k-means (Lloyd 1982) or spherical k-means (Dhillon and Modha 2001).

    Seeding by greedy k-means++ (Arthur and Vassilvitskii 2007; ``2 + ln k`` local trials
    as scikit-learn), k-means|| (Bahmani et al. 2012) or random rows; by default each
    restart screens ``init_trials`` seedings on a uniform sample of ``init_size`` rows (each
    refined there by Lloyd; the best on the sample starts Lloyd on all rows), which makes
    the result far less dependent on the seed at about the cost of one start (BENCHMARKS.md,
    "Initialization"). Lloyd iterations whose assignment step is a tiled GEMM with the argmin
    fused in: never an ``n_samples x n_clusters`` matrix.

    Parameters
    ----------
    n_clusters : int, default=8
    metric : {"euclidean", "cosine"}, default="euclidean"
        ``"cosine"`` runs spherical k-means: rows and centroids are unit vectors. Rows that
        are not unit-norm are normalized in one copy of ``X``.
    init : {"k-means++", "k-means||", "random"} or ndarray (n_clusters, n_features), default="k-means++"
        ``"k-means||"``: ``init_rounds`` passes of oversampled D^2 sampling
        (``oversampling_factor * n_clusters`` expected rows per pass), then weighted
        k-means++ and weighted Lloyd on the candidates (the weights kept, unlike dask-ml).
    n_init : int, default=1
        Restarts (each seeded as ``init`` and ``init_trials`` say); the lowest objective
        wins. Ignored for an array ``init``.
    init_trials : int, default=16
        Seedings screened per restart on the sample; ``1`` seeds once on all rows.
    init_size : int or None, default=None
        Rows of that sample (``None``: ``max(10_000, 400 * n_clusters)``, at most
        ``n_samples``).
    oversampling_factor : float, default=2.0
        k-means||: expected candidates per round, as a multiple of ``n_clusters``.
    init_rounds : int, default=5
        k-means||: sampling rounds.
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
    the seeding: screened, ``init_size * (n_features + 6 + ln k) * itemsize`` (the sample and
    its k-means++); one k-means++ on all rows, ``(2 + ln k) * n_samples * itemsize``;
    k-means||, ``n_samples * (itemsize + 12)`` + the candidates.

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
        init_trials=16,
        init_size=None,
        oversampling_factor=2.0,
        init_rounds=5,
    ):
        self.n_clusters = n_clusters
        self.metric = metric
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_threads = n_threads
        self.init_trials = init_trials
        self.init_size = init_size
        self.oversampling_factor = oversampling_factor
        self.init_rounds = init_rounds

    def _check_params(self):
        if self.metric not in ("euclidean", "cosine"):
            raise ValueError(f"metric must be 'euclidean' or 'cosine', got {self.metric!r}")
        for name in ("n_clusters", "n_init", "max_iter", "init_trials", "init_rounds"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if not (isinstance(self.tol, (int, float)) and self.tol >= 0):
            raise ValueError(f"tol must be a float >= 0, got {self.tol!r}")
        if self.init_size is not None and (
            not isinstance(self.init_size, (int, np.integer)) or self.init_size < 1
        ):
            raise ValueError(f"init_size must be None or an integer >= 1, got {self.init_size!r}")
        f = self.oversampling_factor
        if not (isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0):
            raise ValueError(f"oversampling_factor must be a float > 0, got {f!r}")

    def _init_kwargs(self):
        """The seeding arguments of the core's fits."""
        return dict(
            init_name=self.init if isinstance(self.init, str) else "k-means++",
            init_trials=int(self.init_trials),
            init_size=int(self.init_size or 0),
            oversampling_factor=float(self.oversampling_factor),
            init_rounds=int(self.init_rounds),
        )

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
                if self.init not in ("k-means++", "k-means||", "random"):
                    raise ValueError(
                        f"init must be 'k-means++', 'k-means||', 'random' or an array, got {self.init!r}"
                    )
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
                **self._init_kwargs(),
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

    def predict_dask(self, data, *, column="embedding", cluster_column="cluster",
                     score_column="score"):
        """Assign a Dask collection lazily, chunk by chunk, with the fused GEMM + argmin
        kernel (needs ``dask``). A ``dask.array.Array`` (n_samples, n_features) gives a
        Dask array of int32 labels; a ``dask.dataframe.DataFrame`` whose ``column`` is a
        list of floats gets ``cluster_column`` (int32) and ``score_column`` (float32:
        cosine similarity, or squared distance for the euclidean metric) appended. Memory
        per task: the chunk, its normalized copy (cosine) and ``n_rows * 8`` bytes."""
        from . import _engine

        check_is_fitted(self)
        centers, metric, threads = np.ascontiguousarray(self.cluster_centers_), self.metric, self.n_threads

        def assign(X):
            Xp = _engine.unit_rows(X) if metric == "cosine" else X
            return _core.kmeans_predict(Xp, centers.astype(X.dtype, copy=False), metric,
                                        threads or _engine.task_threads())

        return _engine.predict_dask(data, column, assign, cluster_column, score_column)

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

    def save(self, path):
        """Save as a model directory (safetensors + manifest.json, the CLI's format)."""
        check_is_fitted(self)
        save_model(path, self)


