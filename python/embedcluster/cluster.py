"""Clustering (scikit-learn's ``sklearn.cluster``): :class:`KMeans` over the Rust core."""

from __future__ import annotations

from typing import Any, Optional, Union

import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from . import _core
from ._persist import save_model
from ._engine import Report
from ._utils import _Stage, _seed, _validate
from .preprocessing import _unit_rows
from ._typing import Data, Floats, Labels, PathArg

__all__ = ["KMeans", "MiniBatchKMeans"]


class KMeans(ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin, BaseEstimator):
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
    init : {"k-means++", "k-means||", "random"}, callable or ndarray (n_clusters, n_features), default="k-means++"
        ``"k-means||"``: ``init_rounds`` passes of oversampled D^2 sampling
        (``oversampling_factor * n_clusters`` expected rows per pass), then weighted
        k-means++ and weighted Lloyd on the candidates (the weights kept, unlike dask-ml).
        A callable is called as ``init(X, n_clusters, random_state)`` (a ``RandomState``)
        once per restart and must return the ``(n_clusters, n_features)`` centroids.
    n_init : "auto" or int, default="auto"
        Restarts (each seeded as ``init`` and ``init_trials`` say); the lowest objective
        wins. ``"auto"``: 1 for ``"k-means++"``, ``"k-means||"`` and an array, 10 for
        ``"random"`` and a callable (scikit-learn's rule). An array ``init`` runs once (with
        a ``RuntimeWarning`` when ``n_init`` asks for more).
    max_iter : int, default=300
    tol : float, default=1e-4
        Stop when the squared centroid shift is at most ``tol * mean(var(X, axis=0))``
        (scikit-learn's definition).
    verbose : int, default=0
        With ``verbose > 0`` the fit prints "Initialization complete", then one line per
        Lloyd iteration ("Iteration i, inertia v.") and how it stopped, after the core's fit.
    random_state : int, RandomState or None, default=None
    copy_x : bool, default=True
        Accepted for scikit-learn compatibility: ``X`` is never modified (nor centered), so
        both values behave the same.
    algorithm : {"lloyd", "elkan"}, default="lloyd"
        Both run the same exact Lloyd iterations (Elkan's bounds give Lloyd's iterates,
        so the result is the same); kept so that scikit-learn code runs unchanged.
    metric : {"euclidean", "cosine"}, default="euclidean"
        ``"cosine"`` runs spherical k-means: rows and centroids are unit vectors. Rows that
        are not unit-norm are normalized in one copy of ``X``.
    n_threads : int or None, default=None
        Worker threads (default: all cores). Results do not depend on it.
    init_trials : int, default=16
        Seedings screened per restart on the sample; ``1`` seeds once on all rows.
    init_size : int or None, default=None
        Rows of that sample (``None``: ``max(10_000, 400 * n_clusters)``, at most
        ``n_samples``).
    oversampling_factor : float, default=2.0
        k-means||: expected candidates per round, as a multiple of ``n_clusters``.
    init_rounds : int, default=5
        k-means||: sampling rounds.
    pruning : "auto", "off" or int, default="auto"
        Lloyd's assignment by a lower bound on a prefix subspace (dimension pruning, as
        SuperKMeans): every row gets partial distances to all centroids on the top ``p``
        principal directions (one GEMM of depth ``p``), then exact distances only to the
        centroids that can still win, with the fused kernel's arithmetic, so labels,
        centroids and ``inertia_`` are bit for bit those of ``"off"``; only the time
        differs. ``"auto"``: float32 data with ``n_clusters >= 256`` and ``n_features >=
        32``, ``p = n_features // 8`` (16 to 128); an int forces that ``p``. Memory:
        ``n_samples * (p + 2) * 4`` bytes for the projected rows.

    Attributes
    ----------
    cluster_centers_ : ndarray (n_clusters, n_features), dtype of X
    labels_ : ndarray (n_samples,), int32
    inertia_ : float
        Sum of (weighted) squared distances (euclidean) or of ``1 - cos`` (cosine) to the
        centroids.
    n_iter_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when X has column names (a pandas, polars or
        pyarrow table of numeric columns)
    fit_report_ : dict
        ``stages`` (name, seconds, cpu_seconds, rows, peak_rss_bytes) and ``peak_rss_bytes``.
    pruning_ : dict or None
        What the pruned assignment did in the final Lloyd run (``prefix_dims``, ``passes``,
        ``keys_per_row``: exact distances per row and pass, against ``n_clusters`` without
        it, ``fallback_rows``, ``bytes``), or None when it did not run.

    Memory: ``X`` (not copied when C-contiguous float32/float64) + ``n_samples * (4 + 2 *
    itemsize)`` bytes (labels, distances, norms) + ``16 * n_clusters * n_features * 8`` +
    the seeding: screened, ``init_size * (n_features + 6 + ln k) * itemsize`` (the sample and
    its k-means++); one k-means++ on all rows, ``(2 + ln k) * n_samples * itemsize``;
    k-means||, ``n_samples * (itemsize + 12)`` + the candidates. ``sample_weight``:
    ``n_samples * 8`` bytes (float64).

    Raises
    ------
    ValueError (``EmbedclusterError``) for bad parameters or data (NaN, infinity, more
    clusters than samples, with scikit-learn's messages where it has one); ``TypeError``
    for sparse input (not offered); ``KeyboardInterrupt`` on Ctrl-C.
    """

    cluster_centers_: Floats
    labels_: Labels
    inertia_: float
    n_iter_: int
    n_features_in_: int
    fit_report_: dict[str, Any]

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "k-means++",
        n_init: Union[int, str] = "auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        verbose: int = 0,
        random_state: Any = None,
        copy_x: bool = True,
        algorithm: str = "lloyd",
        metric: str = "euclidean",
        n_threads: Optional[int] = None,
        init_trials: int = 16,
        init_size: Optional[int] = None,
        oversampling_factor: float = 2.0,
        init_rounds: int = 5,
        pruning: Union[str, int] = "auto",
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm
        self.metric = metric
        self.n_threads = n_threads
        self.init_trials = init_trials
        self.init_size = init_size
        self.oversampling_factor = oversampling_factor
        self.init_rounds = init_rounds
        self.pruning = pruning

    def _check_params(self):
        if self.metric not in ("euclidean", "cosine"):
            raise ValueError(f"metric must be 'euclidean' or 'cosine', got {self.metric!r}")
        if self.algorithm not in ("lloyd", "elkan"):
            raise ValueError(f"algorithm must be 'lloyd' or 'elkan', got {self.algorithm!r}")
        names = ["n_clusters", "max_iter", "init_trials", "init_rounds"]
        if self.n_init != "auto":
            names.append("n_init")
        for name in names:
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if not (isinstance(self.tol, (int, float)) and self.tol >= 0):
            raise ValueError(f"tol must be a float >= 0, got {self.tol!r}")
        if self.init_size is not None and (
            not isinstance(self.init_size, (int, np.integer)) or self.init_size < 1
        ):
            raise ValueError(f"init_size must be None or an integer >= 1, got {self.init_size!r}")
        pr = self.pruning
        if not (pr in ("auto", "off") or (isinstance(pr, (int, np.integer))
                                          and not isinstance(pr, bool) and pr >= 1)):
            raise ValueError(f"pruning must be 'auto', 'off' or an integer >= 1, got {pr!r}")
        f = self.oversampling_factor
        if not (isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0):
            raise ValueError(f"oversampling_factor must be a float > 0, got {f!r}")
        if isinstance(self.init, str):
            if self.init not in ("k-means++", "k-means||", "random"):
                raise ValueError(
                    f"init must be 'k-means++', 'k-means||', 'random', a callable or an array, "
                    f"got {self.init!r}"
                )
        if self.algorithm == "elkan" and self.n_clusters == 1:
            warnings.warn("algorithm='elkan' doesn't make sense for a single cluster. Using "
                          "'lloyd' instead.", RuntimeWarning, stacklevel=3)

    def _resolve_n_init(self):
        """``_n_init``: the restarts ``n_init`` means for this ``init`` (scikit-learn's rule
        for ``"auto"``; 1, with a warning, for an explicit array)."""
        init = self.init
        array = not isinstance(init, str) and not callable(init)
        if self.n_init == "auto":
            self._n_init = 10 if (callable(init) or (isinstance(init, str) and init == "random")) else 1
        else:
            self._n_init = int(self.n_init)
        if array and self._n_init != 1:
            warnings.warn(
                "Explicit initial center position passed: performing only one init in "
                f"{type(self).__name__} instead of n_init={self._n_init}.",
                RuntimeWarning, stacklevel=3)
            self._n_init = 1

    def _check_centers(self, centers, X):
        centers = np.asarray(centers)
        if centers.ndim != 2 or centers.shape[0] != self.n_clusters:
            raise ValueError(f"The shape of the initial centers {centers.shape} does not match "
                             f"the number of clusters {self.n_clusters}.")
        if centers.shape[1] != X.shape[1]:
            raise ValueError(f"The shape of the initial centers {centers.shape} does not match "
                             f"the number of features of the data {X.shape[1]}.")
        return np.ascontiguousarray(centers, dtype=np.float64)

    def _init_kwargs(self):
        """The seeding arguments of the core's fits."""
        return dict(
            init_name=self.init if isinstance(self.init, str) else "k-means++",
            init_trials=int(self.init_trials),
            init_size=int(self.init_size or 0),
            oversampling_factor=float(self.oversampling_factor),
            init_rounds=int(self.init_rounds),
            pruning=str(self.pruning),
        )

    def _prepare(self, X):
        return _unit_rows(X) if self.metric == "cosine" else X

    def fit(self, X: Data, y: Any = None, sample_weight: Optional[ArrayLike] = None) -> KMeans:
        """Compute the clustering of X (n_samples, n_features); returns self.

        ``sample_weight`` (n_samples,): each row counts that many times in the centroid
        means, the objective and the k-means++ / random seeding (Lloyd's update with
        weights, as scikit-learn); a callable or array ``init`` does not use them, and
        ``init="k-means||"`` does not take them (a ``ValueError``: not offered). Weights all
        equal give exactly the unweighted fit (its objective scaled).
        """
        self._check_params()
        report = Report()
        X = _validate(self, X, reset=True)
        if X.shape[0] < self.n_clusters:
            raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={self.n_clusters}.")
        sw = None
        if sample_weight is not None:
            sw = np.ascontiguousarray(
                _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True))
        self._resolve_n_init()
        with _Stage(report, "fit", rows=X.shape[0]):
            Xp = self._prepare(X)
            common = dict(max_iter=int(self.max_iter), tol=float(self.tol),
                          n_threads=self.n_threads, sample_weight=sw, **self._init_kwargs())
            if callable(self.init):
                rs = check_random_state(self.random_state)
                r = None
                for _ in range(self._n_init):
                    init = self._check_centers(self.init(X, self.n_clusters, rs), X)
                    run = _core.kmeans_fit(Xp, int(self.n_clusters), self.metric, init=init,
                                           n_init=1, seed=0, **common)
                    if r is None or run["inertia"] < r["inertia"]:
                        r = run
            else:
                init = None if isinstance(self.init, str) else self._check_centers(self.init, X)
                r = _core.kmeans_fit(Xp, int(self.n_clusters), self.metric, init=init,
                                     n_init=self._n_init, seed=_seed(self.random_state),
                                     **common)
        if r.get("warning"):
            warnings.warn(r["warning"], ConvergenceWarning, stacklevel=2)
        self.cluster_centers_ = r["cluster_centers"]
        self.labels_ = r["labels"]
        self.inertia_ = float(r["inertia"])
        self.n_iter_ = int(r["n_iter"])
        self.objective_history_ = list(r["objective_history"])
        self.pruning_ = r.get("pruning")
        self._n_features_out = self.cluster_centers_.shape[0]
        self.fit_report_ = report
        if self.verbose:
            self._print_progress(Xp, r)
        return self

    def _print_progress(self, Xp, r):
        """scikit-learn's verbose lines, from the fit's objective history: after the
        screened seeding, one line per assignment pass, then the stopping reason (the
        tolerance is the core's rule on the rows it clustered, ``Xp``)."""
        print("Initialization complete")
        hist = r["objective_history"]
        for i, v in enumerate(hist[: self.n_iter_]):
            print(f"Iteration {i}, inertia {v}.")
        if not r["converged"]:
            return
        if len(hist) == self.n_iter_:  # stopped on stable labels: no final pass
            print(f"Converged at iteration {self.n_iter_ - 1}: strict convergence.")
        else:
            tol = _core.lloyd_tol(_core.moments_partial(Xp), float(self.tol))
            print(f"Converged at iteration {self.n_iter_ - 1}: center shift is within "
                  f"tolerance {tol}.")

    def fit_predict(self, X: Data, y: Any = None,
                    sample_weight: Optional[ArrayLike] = None) -> Labels:
        """Fit, then the labels of X (``labels_``)."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def fit_transform(self, X: Data, y: Any = None,
                      sample_weight: Optional[ArrayLike] = None) -> Floats:
        """Fit, then the distances of X to the centroids (see :meth:`transform`)."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def _predict_with_scores(self, X):
        check_is_fitted(self)
        X = _validate(self, X, reset=False)
        centers = np.ascontiguousarray(self.cluster_centers_, dtype=X.dtype)
        return _core.kmeans_predict(self._prepare(X), centers, self.metric, self.n_threads)

    def predict(self, X: Data) -> Labels:
        """Index (int32) of the nearest centroid of each row of X."""
        return self._predict_with_scores(X)[0]

    def predict_with_scores(self, X: Data) -> tuple[Labels, NDArray[np.float32]]:
        """``(labels int32, scores float32)``: scores are cosine similarities (cosine) or
        squared distances (euclidean) to the assigned centroid."""
        return self._predict_with_scores(X)

    def predict_dask(self, data: Any, *, column: str = "embedding", cluster_column: str = "cluster",
                     score_column: str = "score") -> Any:
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

    def transform(self, X: Data) -> Floats:
        """Distances (n_samples, n_clusters) to every centroid, X's dtype: Euclidean
        distance, or ``1 - cos`` for the cosine metric. This output is itself
        n_samples x n_clusters. Pairs whose ``|x|^2 - 2 x.c + |c|^2`` loses its digits to
        cancellation (under ``1e-4`` of ``|x|^2 + |c|^2``) are recomputed directly, so a
        point's distance to itself is exactly 0."""
        check_is_fitted(self)
        X = self._prepare(_validate(self, X, reset=False))
        C = self.cluster_centers_.astype(X.dtype, copy=False)
        dots = X @ C.T
        if self.metric == "cosine":
            return (1.0 - dots).astype(X.dtype, copy=False)
        xn = np.einsum("ij,ij->i", X, X)
        cn = np.einsum("ij,ij->i", C, C)
        sq = dots
        sq *= -2
        sq += xn[:, None]
        sq += cn[None, :]
        for s in range(0, len(X), 4096):  # the few near pairs, exactly, 4096 rows at a time
            blk = sq[s:s + 4096]
            r, c = np.nonzero(blk <= 1e-4 * (xn[s:s + 4096, None] + cn[None, :]))
            diff = X[s + r] - C[c]
            blk[r, c] = np.einsum("ij,ij->i", diff, diff)
        return np.sqrt(np.maximum(sq, 0, out=sq), out=sq)

    def score(self, X: Data, y: Any = None, sample_weight: Optional[ArrayLike] = None) -> float:
        """Opposite of the (weighted) objective of X on the fitted centroids (higher is
        better): ``-sum_i w_i d_i``, ``d_i`` the squared distance (euclidean) or ``1 - cos``
        (cosine)."""
        _, scores = self._predict_with_scores(X)
        s = scores.astype(np.float64)
        d = (1.0 - s) if self.metric == "cosine" else s
        if sample_weight is not None:
            n = len(scores)
            w = _check_sample_weight(sample_weight, np.empty((n, 0)), dtype=np.float64)
            d *= w
        return float(-d.sum())

    def save(self, path: PathArg) -> None:
        """Save as a model directory (safetensors + manifest.json, the CLI's format)."""
        check_is_fitted(self)
        save_model(path, self)




class MiniBatchKMeans(KMeans):
    """Mini-batch k-means (Sculley 2010) and its spherical variant (``metric="cosine"``).

    Each step draws ``batch_size`` rows uniformly (with replacement), assigns them with the
    fused GEMM + argmin kernel and moves each centroid towards its members' mean with a
    per-centroid learning rate (``1 / weight received so far``); centroids with less than
    ``reassignment_ratio`` of the largest weight are moved onto far batch rows every
    ``10 + min count`` steps (scikit-learn's rule, the farthest rows rather than a random
    draw). Stops after ``max_iter`` epochs, when the smoothed batch objective has not
    improved for ``max_no_improvement`` steps, or (``tol > 0``) when a step's squared
    centroid shift is at most ``tol * mean(var(X, axis=0))``; then ``labels_`` and
    ``inertia_`` come from one full assignment pass. An approximation of :class:`KMeans`
    for very large ``n_samples``; the same seed gives the same result for any thread count.

    Parameters
    ----------
    n_clusters : int, default=8
    init : {"k-means++", "k-means||", "random"} or ndarray (n_clusters, n_features), default="k-means++"
        Seeding on a uniform sample of ``init_size`` rows.
    max_iter : int, default=100
        Epochs (passes' worth of steps: ``max_iter * n_samples / batch_size`` steps).
    batch_size : int, default=1024
    verbose : int, default=0
        Accepted for scikit-learn compatibility (no per-step output).
    compute_labels : bool, default=True
        Compute ``labels_`` and ``inertia_`` on all rows after ``fit`` (always done).
    random_state : int, RandomState or None, default=None
    tol : float, default=0.0
    max_no_improvement : int or None, default=10
        ``None`` (or 0) disables this stopping rule.
    init_size : int or None, default=None
        Rows of the seeding sample (default ``max(3 * batch_size, 3 * n_clusters)``).
    n_init : "auto" or int, default="auto"
        Seedings screened on one uniform sample (each refined there by Lloyd; the one with
        the lowest objective on the sample starts the mini-batch steps), scikit-learn's
        ``n_init`` made robust to the seed: ``"auto"`` is 16 (KMeans's ``init_trials``); 1
        seeds once on ``init_size`` rows. ``partial_fit`` seeds once on its first batch.
    reassignment_ratio : float, default=0.01
    metric : {"euclidean", "cosine"}, default="euclidean"
    n_threads : int or None, default=None

    Attributes
    ----------
    cluster_centers_ : ndarray (n_clusters, n_features), X's dtype (float64 after ``partial_fit``)
    labels_ : ndarray (n_samples,) int32 (``fit`` only)
    inertia_ : float (``fit`` only)
    n_iter_ : int, epochs run
    n_steps_ : int, mini-batch steps run

    Peak memory: the data, ``n_samples * (4 + itemsize)`` for the final labels and
    distances, ``batch_size * (n_features + 2) * itemsize`` for a batch and ``n_clusters *
    n_features * 24`` bytes for the centroids and a step's sums; never an n x k matrix.
    ``partial_fit`` holds only its batch and the state (``n_clusters * (n_features + 1)``
    float64).
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "k-means++",
        max_iter: int = 100,
        batch_size: int = 1024,
        verbose: int = 0,
        compute_labels: bool = True,
        random_state: Any = None,
        tol: float = 0.0,
        max_no_improvement: Optional[int] = 10,
        init_size: Optional[int] = None,
        n_init: Union[int, str] = "auto",
        reassignment_ratio: float = 0.01,
        metric: str = "euclidean",
        n_threads: Optional[int] = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.verbose = verbose
        self.compute_labels = compute_labels
        self.random_state = random_state
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.init_size = init_size
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio
        self.metric = metric
        self.n_threads = n_threads

    def _check_params(self):
        if self.metric not in ("euclidean", "cosine"):
            raise ValueError(f"metric must be 'euclidean' or 'cosine', got {self.metric!r}")
        names = ["n_clusters", "max_iter", "batch_size"] + ([] if self.n_init == "auto" else ["n_init"])
        for name in names:
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if not (isinstance(self.tol, (int, float)) and self.tol >= 0):
            raise ValueError(f"tol must be a float >= 0, got {self.tol!r}")
        m = self.max_no_improvement
        if m is not None and (not isinstance(m, (int, np.integer)) or m < 0):
            raise ValueError(f"max_no_improvement must be None or an integer >= 0, got {m!r}")
        r = self.reassignment_ratio
        if not (isinstance(r, (int, float)) and r >= 0):
            raise ValueError(f"reassignment_ratio must be a float >= 0, got {r!r}")
        if self.init_size is not None and (
            not isinstance(self.init_size, (int, np.integer)) or self.init_size < 1
        ):
            raise ValueError(f"init_size must be None or an integer >= 1, got {self.init_size!r}")
        if isinstance(self.init, str) and self.init not in ("k-means++", "k-means||", "random"):
            raise ValueError(f"init must be 'k-means++', 'k-means||', 'random' or an array, "
                             f"got {self.init!r}")
        if callable(self.init):
            raise ValueError("MiniBatchKMeans takes init as a name or an array, not a callable")

    def fit(self, X: Data, y: Any = None, sample_weight: Optional[ArrayLike] = None) -> MiniBatchKMeans:
        """Compute the clustering of X (n_samples, n_features); returns self.

        ``sample_weight`` (n_samples,), non-negative: batches are still drawn uniformly (as
        scikit-learn's), and each drawn row counts that many times in its centroid's update
        and learning rate, in the seeding and in ``inertia_``. Raises ValueError for a
        wrong length, negative weights, all-zero weights or ``init="k-means||"``."""
        self._check_params()
        report = Report()
        X = _validate(self, X, reset=True)
        if X.shape[0] < self.n_clusters:
            raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={self.n_clusters}.")
        sw = None
        if sample_weight is not None:
            sw = np.ascontiguousarray(
                _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True))
        with _Stage(report, "fit", rows=X.shape[0]):
            Xp = self._prepare(X)
            init = None if isinstance(self.init, str) else self._check_centers(self.init, X)
            r = _core.minibatch_fit(
                Xp, int(self.n_clusters), self.metric, init=init, max_iter=int(self.max_iter),
                batch_size=int(self.batch_size), tol=float(self.tol),
                max_no_improvement=int(self.max_no_improvement or 0),
                reassignment_ratio=float(self.reassignment_ratio),
                init_size=int(self.init_size or 0), seed=_seed(self.random_state),
                n_threads=self.n_threads,
                init_name=self.init if isinstance(self.init, str) else "k-means++",
                init_trials=16 if self.n_init == "auto" else int(self.n_init),
                sample_weight=sw)
        if r.get("warning"):
            warnings.warn(r["warning"], ConvergenceWarning, stacklevel=2)
        self.cluster_centers_ = r["cluster_centers"]
        self.labels_ = r["labels"]
        self.inertia_ = float(r["inertia"])
        self.n_iter_ = int(r["n_iter"])
        self.n_steps_ = int(r["n_steps"])
        self.objective_history_ = list(r["objective_history"])
        self._counts = np.asarray(r["counts"], dtype=np.float64)
        self._n_features_out = self.cluster_centers_.shape[0]
        self.fit_report_ = report
        return self

    def partial_fit(self, X: Data, y: Any = None,
                    sample_weight: Optional[ArrayLike] = None) -> MiniBatchKMeans:
        """One mini-batch step on X (all its rows are the batch); returns self. The first
        call seeds the centroids on X as ``init`` says (X must have at least ``n_clusters``
        rows). Memory: X, and the state of ``n_clusters * (n_features + 1)`` float64."""
        first = not hasattr(self, "cluster_centers_")
        if first:
            self._check_params()
        X = _validate(self, X, reset=first)
        sw = None
        if sample_weight is not None:
            sw = np.ascontiguousarray(
                _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True))
        Xp = self._prepare(X)
        if first:
            if X.shape[0] < self.n_clusters:
                raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={self.n_clusters}.")
            if isinstance(self.init, str):
                centers = _core.kmeans_init(Xp, int(self.n_clusters), self.metric,
                                            seed=_seed(self.random_state), init_name=self.init,
                                            init_trials=1, n_threads=self.n_threads)
            else:
                centers = self._check_centers(self.init, X)
            self._mb_state = (np.ascontiguousarray(centers, dtype=np.float64),
                              np.zeros(int(self.n_clusters)), 0)
            self.n_steps_ = 0
        centers, counts, steps = self._mb_state
        centers, counts, steps, _ = _core.minibatch_step(
            Xp, centers, counts, steps, self.metric,
            reassignment_ratio=float(self.reassignment_ratio), sample_weight=sw,
            n_threads=self.n_threads)
        self._mb_state = (centers, counts, steps)
        self.cluster_centers_ = centers
        self.n_steps_ = int(steps)
        self._counts = counts
        self._n_features_out = centers.shape[0]
        return self
