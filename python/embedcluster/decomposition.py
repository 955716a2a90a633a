"""Matrix decomposition (scikit-learn's ``sklearn.decomposition``): :class:`PCA` by
streaming covariance or randomized SVD."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse import issparse
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
from sklearn.utils.validation import check_is_fitted

from . import _core, _engine
from ._io import is_vector_table, iter_batches
from ._engine import Report
from ._utils import _Stage, _seed, _validate
from ._typing import Data, Floats

__all__ = ["PCA"]


class PCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Principal component analysis by streaming covariance or randomized SVD.

    Exact (``svd_solver`` ``"full"``, ``"covariance_eigh"``, ``"arpack"``, or ``"auto"``):
    the covariance is accumulated block by block (count, mean, co-moment in float64, merged
    with Chan, Golub and LeVeque's update), then eigendecomposed; ``partial_fit`` adds
    blocks. This is scikit-learn's ``"covariance_eigh"``; ``"full"`` and ``"arpack"`` give
    the same subspace (the same figures up to rounding), so they run it too.
    ``"randomized"``: randomized SVD (Halko, Martinsson and Tropp 2011) on ``sample_size``
    rows drawn uniformly (all rows if None), centered with the mean of all rows; with a
    sample, ``explained_variance_`` is then measured on all rows (one more pass), so it is
    the variance of the output. ``transform`` computes ``X W^T - mu W^T``: never a centered
    copy of X; the output keeps X's dtype.

    Parameters
    ----------
    n_components : int, float, "mle" or None, default=None
        None keeps ``min(n_samples, n_features)``; an int ``0 <= k <= min(n_samples,
        n_features)`` (randomized: ``>= 1``; arpack: ``< min``); a float in (0, 1) the
        fewest components whose explained variance ratio exceeds it; ``"mle"`` Minka's
        (2000) maximum-likelihood dimension (needs ``n_samples >= n_features``). Floats and
        ``"mle"`` need an exact solver.
    copy : bool, default=True
        Accepted for scikit-learn compatibility: X is never modified or centered in place.
    whiten : bool, default=False
        Divide the outputs by ``sqrt(explained_variance_)`` (unit variance per component).
    svd_solver : {"auto", "full", "covariance_eigh", "arpack", "randomized"}, default="auto"
        ``"auto"`` is exact (the streaming covariance: ``2 d^2 * 8`` bytes, any n).
    tol : float, default=0.0
        Accepted (scikit-learn's arpack tolerance); the exact solver needs none.
    iterated_power : int or "auto", default="auto"
        Randomized: power iterations (``"auto"``: 7 when ``n_components < 0.1 min(n, d)``,
        else 4, scikit-learn's rule). Each is orthonormalized by QR.
    n_oversamples : int, default=10
        Randomized: extra random directions.
    power_iteration_normalizer : {"auto", "QR", "LU", "none"}, default="auto"
        Accepted; every power iteration is orthonormalized by QR (the most accurate).
    random_state : int, RandomState or None, default=None
    fit_method : {"exact", "randomized"} or None, default=None
        Our name for the solver; when given it overrides ``svd_solver``.
    sample_size : int or None, default=None
        Randomized: rows of the uniform sample (None: all rows).
    n_threads : int or None, default=None

    Attributes
    ----------
    components_ : ndarray (n_components, n_features), X's dtype, orthonormal rows
    mean_ : ndarray (n_features,), X's dtype
    explained_variance_, explained_variance_ratio_, singular_values_ : ndarray (n_components,)
    noise_variance_ : float
        Mean of the discarded eigenvalues (probabilistic PCA, Tipping and Bishop 1999).
    n_components_, n_samples_, n_samples_seen_, n_features_in_ : int
    feature_names_in_ : ndarray of str, when X has column names
    fit_report_ : dict

    Memory (fit, exact): ``2 * n_features^2 * 8`` bytes + ``2 * 1024 * n_features * itemsize``
    scratch; X is not copied. Randomized: the sample (``sample_size * n_features *
    itemsize``) + ``2 * sample_size * (n_components + 10) * itemsize``. ``score_samples``:
    ``n_features^2 * 8`` (the precision) + blocks of ``4096 * n_features * 8``.

    Raises
    ------
    ValueError for bad parameters (scikit-learn's messages), data (NaN, infinity) or too few
    samples; ``TypeError`` for sparse input (not offered).
    """

    components_: Floats
    mean_: Floats
    explained_variance_: Floats
    explained_variance_ratio_: Floats
    singular_values_: Floats
    noise_variance_: float
    n_components_: int
    n_samples_: int
    n_samples_seen_: int
    n_features_in_: int
    fit_report_: dict[str, Any]

    def __init__(
        self,
        n_components: Union[int, float, str, None] = None,
        *,
        copy: bool = True,
        whiten: bool = False,
        svd_solver: str = "auto",
        tol: float = 0.0,
        iterated_power: Union[int, str] = "auto",
        n_oversamples: int = 10,
        power_iteration_normalizer: str = "auto",
        random_state: Any = None,
        fit_method: Optional[str] = None,
        sample_size: Optional[int] = None,
        n_threads: Optional[int] = None,
    ) -> None:
        self.n_components = n_components
        self.copy = copy
        self.whiten = whiten
        self.svd_solver = svd_solver
        self.tol = tol
        self.iterated_power = iterated_power
        self.n_oversamples = n_oversamples
        self.power_iteration_normalizer = power_iteration_normalizer
        self.random_state = random_state
        self.fit_method = fit_method
        self.sample_size = sample_size
        self.n_threads = n_threads

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = True  # the exact solvers take CSR/CSC in dense blocks
        return tags

    def _solver(self, shape=None, sparse=False):
        """``(method, solver name)``: the core's method ("exact" or "randomized") and the
        scikit-learn solver it stands for (``_fit_svd_solver``, used in messages).
        ``"auto"`` decides as scikit-learn does from the data's ``shape``: tall and narrow
        (``d <= 1000``, ``n >= 10 d``) covariance, small or ``"mle"`` full, a few components
        (``1 <= k < 0.8 min(n, d)``) randomized on all rows, else full; sparse: arpack."""
        if self.fit_method is not None:
            if self.fit_method not in ("exact", "randomized"):
                raise ValueError(
                    f"fit_method must be 'exact' or 'randomized', got {self.fit_method!r}")
            name = "covariance_eigh" if self.fit_method == "exact" else "randomized"
            return self.fit_method, name
        solvers = ("auto", "full", "covariance_eigh", "arpack", "randomized")
        if self.svd_solver not in solvers:
            raise ValueError(f"The 'svd_solver' parameter of PCA must be a str among "
                             f"{set(solvers)}. Got {self.svd_solver!r} instead.")
        name = self.svd_solver
        if sparse and name not in ("auto", "arpack", "covariance_eigh"):
            raise TypeError('PCA only support sparse inputs with the "arpack" and '
                            f'"covariance_eigh" solvers, while "{name}" was passed. See '
                            "TruncatedSVD for a possible alternative.")
        if name == "auto":
            if sparse:
                name = "arpack"
            elif shape is None:
                name = "covariance_eigh"  # a stream: the streaming covariance
            else:
                n, d = shape
                k = self.n_components if self.n_components is not None else min(n, d)
                if d <= 1000 and n >= 10 * d:
                    name = "covariance_eigh"
                elif max(n, d) <= 500 or k == "mle":
                    name = "full"
                elif not isinstance(k, str) and 1 <= k < 0.8 * min(n, d):
                    name = "randomized"
                else:
                    name = "full"
        return ("randomized" if name == "randomized" else "exact"), name

    def _check_n_components(self, n, d, solver):
        """The number of components asked for, checked against ``min(n_samples,
        n_features)`` (scikit-learn's messages); floats and "mle" return as they are."""
        k, m = self.n_components, min(n, d)
        if k is None:
            return m - 1 if solver == "arpack" else m
        if isinstance(k, str):
            if k != "mle":
                raise ValueError(f"n_components={k!r} must be an int, a float in (0, 1), 'mle' "
                                 "or None")
            if solver in ("arpack", "randomized"):
                raise ValueError(f"n_components={k!r} cannot be a string with "
                                 f"svd_solver='{solver}'")
            if n < d:
                raise ValueError("n_components='mle' is only supported if n_samples >= n_features")
            return k
        if isinstance(k, (float, np.floating)):
            if not 0 < k < 1:
                raise ValueError(f"n_components={k!r} must be an int >= 0, a float in (0, 1), "
                                 "'mle' or None")
            if solver in ("arpack", "randomized"):
                raise ValueError(f"n_components={k!r} must be an integer with "
                                 f"svd_solver='{solver}'")
            return float(k)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ValueError(f"n_components={k!r} must be an int >= 0, a float in (0, 1), "
                             "'mle' or None")
        k = int(k)
        if solver in ("arpack", "randomized"):
            if not 1 <= k <= m:
                raise ValueError(f"n_components={k!r} must be between 1 and min(n_samples, "
                                 f"n_features)={m!r} with svd_solver='{solver}'")
            if solver == "arpack" and k == m:
                raise ValueError(f"n_components={k!r} must be strictly less than min(n_samples, "
                                 f"n_features)={m!r} with svd_solver='{solver}'")
        elif not 0 <= k <= m:
            raise ValueError(f"n_components={k} must be between 0 and min(n_samples, "
                             f"n_features)={m} with svd_solver={solver!r}")
        return k

    def _finish(self, pca, n, dtype, k=None):
        """Fitted attributes from the core's result: every component it returned (the full
        spectrum for exact fits), cut to ``k`` (an int, a float ratio, "mle")."""
        comps = np.asarray(pca["components"], dtype=np.float64)
        ev = np.asarray(pca["explained_variance"], dtype=np.float64)
        evr = np.asarray(pca["explained_variance_ratio"], dtype=np.float64)
        d = comps.shape[1]
        total = float(pca.get("total_variance", 0.0)) or (
            float(ev.sum() / evr.sum()) if evr.sum() > 0 else 0.0)
        if k is None:
            k = len(ev)
        elif k == "mle":
            k = _mle_dimension(ev, n)
        elif isinstance(k, float):
            k = int(np.searchsorted(np.cumsum(evr), k, side="right")) + 1
            k = min(k, len(ev))
        m = min(n, d)
        if pca.get("method") == "randomized" or len(ev) == k:
            rest = total - float(ev[:k].sum())
            noise = rest / (m - k) if m > k else 0.0
        else:
            noise = float(ev[k:m].mean()) if m > k else 0.0
        self._fitted64 = (np.asarray(pca["mean"], dtype=np.float64), comps[:k].copy(), ev[:k].copy())
        self.n_components_ = int(k)
        self.n_samples_ = int(n)
        self.n_samples_seen_ = int(pca["n_samples_seen"])
        self.components_ = comps[:k].astype(dtype)
        self.mean_ = self._fitted64[0].astype(dtype)
        self.explained_variance_ = ev[:k].astype(dtype)
        self.explained_variance_ratio_ = evr[:k].astype(dtype)
        self.singular_values_ = np.sqrt(ev[:k] * max(n - 1, 1)).astype(dtype)
        self.noise_variance_ = float(max(noise, 0.0))
        # the attributes the float64 values stand for (set by hand, they are used instead)
        self._fitted_public = (self.mean_, self.components_)
        self._n_features_out = self.n_components_

    def _reset(self):
        for attr in ("_state", "_fitted64", "_fitted_public"):
            if hasattr(self, attr):
                delattr(self, attr)

    def fit(self, X: Data, y: Any = None) -> PCA:
        """Fit on X (n_samples, n_features) or an Arrow stream of vectors (streamed, exact
        only); returns self."""
        self._reset()
        report = Report()
        if is_vector_table(X) and self._solver()[0] == "exact":
            self._fit_svd_solver = self._solver()[1]
            with _Stage(report, "fit") as st:
                for block in iter_batches(X):  # merged batch by batch, solved once
                    self._merge_block(block)
                    st.rows += len(block)
                if not hasattr(self, "_state"):
                    raise ValueError("Found array with 0 sample(s) (the Arrow stream is empty)")
                self._finish_exact(self._state[0], block.shape[1], block.dtype)
            self.fit_report_ = report
            return self
        X = _validate(self, X, reset=True, accept_sparse=("csr", "csc"))
        n, d = X.shape
        method, solver = self._solver(X.shape, issparse(X))
        self._fit_svd_solver = solver
        if n < 2:
            raise ValueError(f"n_samples = {n}: PCA needs at least 2 samples")
        k = self._check_n_components(n, d, solver)
        with _Stage(report, "fit", rows=n):
            if method == "exact":
                state = None
                for block in _dense_blocks(X):
                    part = _core.cov_partial(block, self.n_threads)
                    state = part if state is None else _core.cov_merge(state, part)
                self._state = state
                self._finish(_core.cov_finish(*self._state, min(n, d)), n, X.dtype, k)
            else:
                self._fit_randomized(X, k)
        self.fit_report_ = report
        return self

    def _fit_randomized(self, X, k):
        if self.power_iteration_normalizer not in ("auto", "QR", "LU", "none"):
            raise ValueError("power_iteration_normalizer must be 'auto', 'QR', 'LU' or 'none', "
                             f"got {self.power_iteration_normalizer!r}")
        power = self.iterated_power
        if not (power == "auto" or (isinstance(power, (int, np.integer)) and power >= 0)):
            raise ValueError(f"iterated_power must be 'auto' or an int >= 0, got {power!r}")
        n, d = X.shape
        moments = _core.moments_partial(X)
        sample = X
        if self.sample_size is not None and self.sample_size < n:
            rows = _engine.sample_rows(n, int(self.sample_size), self.random_state)
            sample = np.ascontiguousarray(X[rows])
        pca = _core.pca_randomized(
            sample, moments, k, n_oversamples=int(self.n_oversamples),
            n_iter=None if power == "auto" else int(power),
            seed=_seed(self.random_state), n_threads=self.n_threads)
        pca = _randomized_result(pca, n, moments[2])
        # the sketch's singular values are lower bounds of the components' variance (and
        # describe only the sample when there is one): measure it on all rows, in blocks
        st = None
        mean = np.asarray(pca["mean"], dtype=np.float64)
        comps = np.asarray(pca["components"], dtype=np.float64)
        for s in range(0, n, 65536):
            part = _engine.projection_ss_partial(X[s:s + 65536], mean, comps, self.n_threads)
            st = part if st is None else _engine.projection_ss_merge(st, part)
        pca = _measured_variance(pca, st["ss"], n)
        self._finish(pca, n, X.dtype, k)

    def partial_fit(self, X: Data, y: Any = None) -> PCA:
        """Add a block of rows to the covariance (exact fit) and refresh the components."""
        X = self._merge_block(X)
        if self._state[0] >= 2:
            self._finish_exact(self._state[0], X.shape[1], X.dtype)
        return self

    def _merge_block(self, X):
        """Merges the covariance state of the block X (validated; returned)."""
        first = not hasattr(self, "_state")
        X = _validate(self, X, reset=first)
        state = _core.cov_partial(X, self.n_threads)
        self._state = state if first else _core.cov_merge(self._state, state)
        return X

    def _finish_exact(self, n, d, dtype):
        """The fitted attributes from the merged covariance state (one eigendecomposition)."""
        k = self._check_n_components(n, d, "covariance_eigh")
        self._finish(_core.cov_finish(*self._state, min(n, d)), n, dtype, k)

    def _fitted(self):
        """``(mean, components, explained_variance)`` in float64: the fit's own values, or
        the attributes once ``mean_`` or ``components_`` was set by hand (so that the core
        checks what the user set)."""
        f = getattr(self, "_fitted64", None)
        public = getattr(self, "_fitted_public", (None, None))
        if f is not None and public[0] is self.mean_ and public[1] is self.components_:
            return f
        comps = np.asarray(self.components_, dtype=np.float64)
        ev = np.asarray(getattr(self, "explained_variance_", np.ones(len(comps))), np.float64)
        return np.asarray(self.mean_, dtype=np.float64), comps, ev

    def _projection(self):
        """``(mean, components)`` in float64 that ``transform`` applies (:meth:`_fitted`),
        the components divided by ``sqrt(explained_variance_)`` when whitening."""
        mean, comps, ev = self._fitted()
        if self.whiten:
            comps = comps / np.maximum(np.sqrt(ev), np.finfo(np.float64).eps)[:, None]
        return np.ascontiguousarray(mean), np.ascontiguousarray(comps)

    def transform(self, X: Data, chunk_size: Optional[int] = None) -> Floats:
        """Project X onto the components: (n_samples, n_components), X's dtype.

        ``chunk_size`` rows at a time when given (the output is allocated once); an Arrow
        stream of vectors is projected batch by batch.
        """
        check_is_fitted(self)
        if is_vector_table(X):
            blocks = [self.transform(b) for b in iter_batches(X)]
            return np.concatenate(blocks) if blocks else np.empty((0, self.n_components_))
        X = _validate(self, X, reset=False, accept_sparse=("csr", "csc"))
        mean, comps = self._projection()
        if issparse(X):  # dense blocks of rows, one output
            chunk_size = chunk_size or _SPARSE_BLOCK_ROWS
            out = np.empty((X.shape[0], self.n_components_), dtype=X.dtype)
            for s, block in zip(range(0, X.shape[0], chunk_size), _dense_blocks(X, chunk_size)):
                out[s : s + len(block)] = _core.pca_transform(block, mean, comps, self.n_threads)
            return out
        if chunk_size is None or chunk_size >= len(X):
            return _core.pca_transform(X, mean, comps, self.n_threads)
        out = np.empty((len(X), self.n_components_), dtype=X.dtype)
        for s in range(0, len(X), int(chunk_size)):
            out[s : s + chunk_size] = _core.pca_transform(
                X[s : s + chunk_size], mean, comps, self.n_threads
            )
        return out

    def fit_transform(self, X: Data, y: Any = None) -> Floats:
        return self.fit(X).transform(X)

    def get_covariance(self) -> NDArray[np.float64]:
        """Covariance of the probabilistic PCA model (Tipping and Bishop 1999), (n_features,
        n_features) float64: ``W^T diag(ev - noise) W + noise I`` with ``W`` =
        ``components_`` (scaled by ``sqrt(explained_variance_)`` when whitening, as
        scikit-learn). Memory: ``n_features^2 * 8`` bytes."""
        check_is_fitted(self)
        W, ev, noise = self._model_parts()
        cov = (W.T * np.where(ev > noise, ev - noise, 0.0)) @ W
        cov.flat[:: cov.shape[0] + 1] += noise
        return cov

    def get_precision(self) -> NDArray[np.float64]:
        """Inverse of :meth:`get_covariance` by the matrix inversion lemma (Woodbury): a
        ``n_components`` square inverse instead of ``n_features``; float64."""
        check_is_fitted(self)
        W, ev, noise = self._model_parts()
        d = W.shape[1]
        if len(ev) == 0:
            return np.eye(d) / noise
        if noise == 0.0 or len(ev) == d:
            return np.linalg.inv(self.get_covariance())
        diff = np.where(ev > noise, ev - noise, 0.0)
        inner = W @ W.T / noise
        inner.flat[:: len(ev) + 1] += 1.0 / diff
        prec = W.T @ np.linalg.inv(inner) @ W
        prec /= -(noise**2)
        prec.flat[:: d + 1] += 1.0 / noise
        return prec

    def _model_parts(self):
        W = np.asarray(self.components_, dtype=np.float64)
        ev = np.asarray(self.explained_variance_, dtype=np.float64)
        if self.whiten:
            W = W * np.sqrt(ev)[:, None]
        return W, ev, float(self.noise_variance_)

    def score_samples(self, X: Data) -> NDArray[np.float64]:
        """Log-likelihood of each row of X under the probabilistic PCA model, (n_samples,)
        float64; rows are centered 4096 at a time (no centered copy of X)."""
        check_is_fitted(self)
        X = _validate(self, X, reset=False, accept_sparse=("csr", "csc"))
        prec = self.get_precision()
        d = X.shape[1]
        mean = self._fitted()[0]
        _, logdet = np.linalg.slogdet(prec)
        out = np.empty(X.shape[0])
        for s, block in zip(range(0, X.shape[0], 4096), _dense_blocks(X, 4096)):
            xc = block.astype(np.float64) - mean
            out[s:s + len(xc)] = -0.5 * np.einsum("ij,ij->i", xc, xc @ prec)
        out -= 0.5 * (d * np.log(2.0 * np.pi) - logdet)
        return out

    def score(self, X: Data, y: Any = None) -> float:
        """Mean log-likelihood of the rows of X (:meth:`score_samples`)."""
        return float(np.mean(self.score_samples(X)))

    def transform_dask(self, data: Any, *, column: str = "embedding",
                       output_column: str = "pca") -> Any:
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
        (mean, comps), threads = self._projection(), self.n_threads

        def fn(X):
            return _core.pca_transform(X, mean, comps, threads or _engine.task_threads())

        return _engine.apply_dask(data, column, fn, self.n_components_, None, output_column)

    def inverse_transform(self, X: ArrayLike) -> Floats:
        """Map reduced rows (n_samples, n_components) back to the input space: ``X
        components_ + mean_`` (``X sqrt(ev) components_ + mean_`` when whitening), in X's
        float dtype."""
        check_is_fitted(self)
        X = np.asarray(X)
        dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        mean, comps, ev = self._fitted()
        if self.whiten:
            comps = comps * np.sqrt(ev)[:, None]
        return (X @ comps.astype(dtype) + mean.astype(dtype)).astype(dtype, copy=False)


_SPARSE_BLOCK_ROWS = 1024


def _dense_blocks(X, rows=_SPARSE_BLOCK_ROWS):
    """X itself (dense), or a sparse X (CSR/CSC) as C-contiguous dense blocks of ``rows``
    rows: sparse input costs ``rows * n_features * itemsize`` bytes at a time."""
    if not issparse(X):
        yield X
        return
    X = X.tocsr()
    for s in range(0, X.shape[0], rows):
        yield np.ascontiguousarray(X[s : s + rows].toarray())


def projection(pca: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(mean, components)`` float64, C-contiguous, that project like ``pca.transform``:
    ours (whitening folded into the components) or any object with ``mean_`` and
    ``components_`` (scikit-learn's PCA, a loaded model)."""
    if isinstance(pca, PCA):
        return pca._projection()
    return (np.ascontiguousarray(pca.mean_, dtype=np.float64),
            np.ascontiguousarray(pca.components_, dtype=np.float64))


def _randomized_result(result, n, m2):
    """The core's randomized result marked as such, with the total variance of all ``n``
    rows (``sum(m2) / (n - 1)``: the ratios' denominator and the noise variance's)."""
    return dict(result, method="randomized", total_variance=float(np.sum(m2) / max(n - 1, 1)))


def _measured_variance(result, ss, n):
    """A randomized result whose ``explained_variance_`` is the components' variance over
    all ``n`` rows (``ss``: their per-component sums of squares of the projections, one more
    pass), so it is the variance of the output; components kept in decreasing order.
    In memory, on Dask and on Spark alike."""
    ev = np.asarray(ss, dtype=np.float64) / max(n - 1, 1)
    order = np.argsort(-ev, kind="stable")
    comps = np.asarray(result["components"], dtype=np.float64)
    return dict(result, components=np.ascontiguousarray(comps[order]),
                explained_variance=ev[order],
                explained_variance_ratio=ev[order] / result["total_variance"])


def _mle_dimension(spectrum, n_samples):
    """Minka's (2000) maximum-likelihood number of components: the rank ``k`` in
    ``1..len(spectrum)-1`` that maximizes the Laplace-approximated evidence of probabilistic
    PCA given the covariance's eigenvalues ``spectrum`` (decreasing) and ``n_samples``."""
    from scipy.special import gammaln

    spec = np.asarray(spectrum, dtype=np.float64)
    d, n = len(spec), float(n_samples)
    best, best_ll = 1, -np.inf
    for k in range(1, d):
        if spec[k - 1] < 1e-15:
            break  # the rest of the spectrum is zero: no larger rank has support
        i = np.arange(1, k + 1)
        log_pu = -k * np.log(2.0) + np.sum(gammaln((d - i + 1) / 2.0) - np.log(np.pi) * (d - i + 1) / 2.0)
        log_pl = -n / 2.0 * np.sum(np.log(spec[:k]))
        v = max(1e-15, spec[k:].sum() / (d - k))
        log_pv = -n * (d - k) / 2.0 * np.log(v)
        m = d * k - k * (k + 1.0) / 2.0
        log_pp = np.log(2.0 * np.pi) * (m + k) / 2.0
        inv = 1.0 / np.concatenate([spec[:k], np.full(d - k, v)])
        lam = spec[:k]
        # sum over i < k, j > i of log((l_i - l_j)(1/l~_j - 1/l~_i)) + log n
        log_pa = 0.0
        for a in range(k):
            j = np.arange(a + 1, d)
            log_pa += np.sum(np.log((lam[a] - spec[j]) * (inv[j] - inv[a])) + np.log(n))
        ll = log_pu + log_pl + log_pv + log_pp - log_pa / 2.0 - k * np.log(n) / 2.0
        if ll > best_ll:
            best, best_ll = k, ll
    return best
