"""Dask: fit on the workers, merge small states in a tree, apply lazily, and say what each
task held.

dask-ml's ``KMeans`` and ``PCA`` compute in float64 through scikit-learn per block, drop
the weights of k-means|| candidates, and ``init="k-means++"`` loads all data into memory.
Here every task runs embedcluster's Rust kernels on its chunk (GIL released, so threaded
workers run in parallel) and returns the core's partial state; states are merged on the
workers in a tree (``split_every`` at a time, in chunk order) and the client receives only
the merged state, from which the core's own finish or driver continues:

====================  ====================================  =================================
function              per-task state                        algorithm
====================  ====================================  =================================
:func:`fit_scaler`    count, mean, M2 (``2 d`` float64)      Chan, Golub and LeVeque (1979)
:func:`fit_pca`       count, mean, co-moment (``d^2``)       streaming covariance + eigh; or
                                                            randomized SVD on a sample
                                                            (Halko, Martinsson, Tropp 2011)
:func:`fit_kmeans`    per-cluster sums, counts, objective    Lloyd (1982) / spherical k-means
                      (``k d`` float64), labels' fingerprint (Dhillon and Modha 2001) by the
                                                            core's Lloyd driver, seeded by
                                                            k-means|| (Bahmani et al. 2012)
====================  ====================================  =================================

``data`` is a ``dask.array.Array`` of shape ``(n_samples, n_features)``, float32 or float64
(other numbers are read as float64), chunked along rows (any chunk sizes; a chunked second
axis is joined first), or a ``dask.dataframe.DataFrame`` whose ``column`` holds a list or
fixed-size list of floats, e.g. from ``dd.read_parquet(path, dtype_backend="pyarrow")``
(decoded by the core's Arrow reader: no Python object per value). The same rows in the same
order give the core's scaler and exact PCA (within rounding of the merge order) and the
core's k-means labels from the same initial centres, for any chunking and any number of
workers: row ids are global (from the first pass's row counts), and samples are drawn by
global row index, as the in-memory estimators draw them.

The functions return the package's own :class:`~embedcluster.StandardScaler`,
:class:`~embedcluster.PCA` and :class:`~embedcluster.KMeans` (``save``/``load`` like any
other), with ``fit_report_``: ``stages`` (one per pass: name, seconds, tasks, rows,
largest task peak) and ``tasks``, a ``pandas.DataFrame`` with one row per task: ``key``,
``stage``, ``index`` (chunk or partition), ``rows``, ``seconds``, ``peak_rss_bytes`` (the
worker process's peak RSS while the task ran, sampled every millisecond without resetting
the kernel's counters: exact for the task with ``threads_per_worker=1``, shared by the
tasks running at once otherwise), ``worker`` and ``pid``. ``client_peak_rss_bytes`` is the
client process's peak RSS (``VmHWM``) at the end of the fit.

Memory per task (size workers with it): the chunk as Dask holds it (``rows * d *
itemsize``), its validated or normalized copy where one is needed (same size: a chunk that
is not C-contiguous float32/float64, or the cosine metric's unit rows), and the state:
``2 d * 8`` bytes (scaler), ``d^2 * 8`` (PCA, plus ``d^2 * 8`` while merging), ``k d * 8 +
rows * 4`` (a Lloyd pass). A DataFrame partition adds its decoded vectors (``rows * d *
itemsize``). Memory on the client: the merged state and the fitted model; for
``fit_method="randomized"`` or ``init="k-means++"`` also the sample (``sample_size * d *
itemsize``).

:func:`fit_kmeans` decodes ``data`` once and keeps the checked (and, for cosine,
normalized) blocks in the workers' memory while it iterates (``persist=False`` to read
``data`` again in every pass instead): fit it on the reduced vectors, not the raw ones.

Errors: NaN, infinity, a null or a vector of the wrong length fails the computation with
embedcluster's message naming the chunk (or partition) and the row within it, e.g.
``chunk 3: row 17 (row 317 of the array), column 5: value is NaN``.
"""

from __future__ import annotations

import time
import uuid

import numpy as np

from . import _core, _engine
from ._core import EmbedclusterError

__all__ = [
    "fit_kmeans",
    "fit_pca",
    "fit_scaler",
    "predict_dask",
    "transform_dask",
]

_SPLIT_EVERY = 8


# --- the blocks of a collection ------------------------------------------------------------


class _Blocks:
    """The chunks (Dask array) or partitions (Dask DataFrame) of ``data`` as delayed
    objects, with the vectors of each decoded inside the task that uses it."""

    def __init__(self, data, column):
        self.column = column
        self.offsets = None  # global first row of each block, once known
        if _engine.is_dask_array(data):
            data = _engine.rows_only(data)
            self.kind = "chunk"
            self.parts = list(data.to_delayed(optimize_graph=True).ravel())
            sizes = np.asarray(data.chunks[0], dtype=float)
            if not np.isnan(sizes).any():  # known chunk sizes: errors name the global row too
                self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        elif _engine.is_dask_frame(data):
            if column not in data.columns:
                raise EmbedclusterError(f"column `{column}` not found (columns: {list(data.columns)})")
            self.kind = "partition"
            self.parts = list(data[[column]].to_delayed(optimize_graph=True))
        else:
            raise TypeError(
                f"expected a dask.array.Array or dask.dataframe.DataFrame, got {type(data).__name__}")

    def spec(self, i):
        """What a task needs to decode block ``i``: small and picklable."""
        return (self.kind, self.column, i, None if self.offsets is None else int(self.offsets[i]))

    def load(self, unit, report, stage="load"):
        """Decode and check every block once (rows normalized when ``unit``) and keep the
        arrays in the workers' memory (``dask.persist``; Dask's memory manager spills them
        to disk when a worker runs short), so that later passes read NumPy blocks: no
        Parquet, no Arrow decoding, no validation and no normalizing copy per pass.

        Consecutive blocks are joined into ``2 x`` (the cluster's threads) arrays at most
        (one array per block when there are fewer): each pass then has a few large tasks,
        whose fixed cost (scheduling, one small state each) is paid fewer times. Row ids
        stay global, so results do not depend on the grouping."""
        import dask

        name = f"embedcluster-{stage}-{uuid.uuid4().hex[:8]}"
        groups = np.array_split(np.arange(len(self.parts)), min(len(self.parts), 2 * _threads()))
        loaded = [dask.delayed(_load, pure=False)([self.spec(i) for i in g],
                                                  [self.parts[i] for i in g], unit,
                                                  f"{name}-{j}", j, dask_key_name=f"{name}-{j}")
                  for j, g in enumerate(groups) if len(g)]
        t0 = time.perf_counter()
        loaded = list(dask.persist(*loaded))
        tasks, = dask.compute([dask.delayed(lambda b: b[1])(b) for b in loaded])
        report.add(stage, time.perf_counter() - t0, tasks)
        self.parts, self.kind = loaded, "loaded"

    def reduce(self, stage, partial, merge, split_every=None, report=None, args=()):
        """``partial(X, i, r0, *args)`` of every non-empty block (or of each piece of it,
        ``r0`` rows into it), merged in chunk order in a tree of ``split_every`` on the
        workers; returns the merged state (None when every block is empty) and records each
        task in ``report``."""
        import dask

        delayed = dask.delayed
        s = int(split_every or _SPLIT_EVERY)
        if s < 2:
            raise ValueError(f"split_every must be at least 2, got {split_every}")
        name = f"embedcluster-{stage}-{uuid.uuid4().hex[:8]}"
        args = [delayed(a) if isinstance(a, np.ndarray) else a for a in args]
        level = [delayed(_task, pure=False)(self.spec(i), stage, partial, merge, part, f"{name}-{i}", *args,
                                            dask_key_name=f"{name}-{i}")
                 for i, part in enumerate(self.parts)]
        depth = 0
        while len(level) > 1:
            level = [delayed(_merge_task, pure=False)(merge, *level[j:j + s],
                                                      dask_key_name=f"{name}-merge{depth}-{j // s}")
                     for j in range(0, len(level), s)]
            depth += 1
        t0 = time.perf_counter()
        (state, tasks), = dask.compute(level[0])
        if report is not None:
            report.add(stage, time.perf_counter() - t0, tasks)
        return state, tasks


def _vectors(spec, part):
    """Inside a task: the block's vectors as a list of ``n_i x d`` arrays (consecutive rows;
    empty when the block is)."""
    kind, column, i, first_row = spec
    if kind == "loaded":  # aligned again when it came from another worker
        return [] if part[0] is None else [_engine.aligned(part[0])]
    where = f"{kind} {i}: "
    if kind == "chunk":
        X = _engine.check_block(part, where, first_row)
        return [X] if len(X) else []
    return _engine.partition_blocks(part, column, where)


def _threads():
    """Threads of the cluster the computation runs on (the distributed client's workers),
    else of this machine."""
    try:
        from distributed import get_client

        return max(1, sum(get_client().nthreads().values()))
    except Exception:
        import os

        return os.cpu_count() or 1


def _load(specs, parts, unit, key, index):
    """Consecutive blocks decoded, checked and joined into one array (normalized when
    ``unit``, part by part so that an error names the part and its row), with the task's
    record. Peak: the parts, the joined array and one decoded part; a single part that needs
    no copy is kept as it is (normalized into a copy when it is Dask's own)."""
    kind = specs[0][0]
    with _engine.TaskMeter(key, "load", index) as m:
        first = _vectors(specs[0], parts[0])
        if len(parts) == 1 and len(first) <= 1:
            X = first[0] if first else None
            if unit and X is not None:
                # a copy made while checking a chunk is ours to normalize in place; a chunk
                # held by Dask or a view of a partition's Arrow buffers is not
                own = kind == "chunk" and X is not parts[0]
                X = _engine.unit_rows(X, f"{kind} {specs[0][2]}: ", inplace=own)
        else:
            X, at = None, 0
            for j, (spec, part) in enumerate(zip(specs, parts)):
                start = at
                for B in first if j == 0 else _vectors(spec, part):
                    if X is None:
                        X = np.empty((sum(len(p) for p in parts), B.shape[1]), dtype=B.dtype)
                    X[at:at + len(B)] = B
                    at += len(B)
                first = None
                if unit and at > start:
                    _engine.unit_rows(X[start:at], f"{kind} {spec[2]}: ", inplace=True)
            X = X[:at] if X is not None else None
        del parts
        m.info["rows"] = 0 if X is None else len(X)
    return X, m.info


def _task(spec, stage, partial, merge, part, key, *args):
    """``partial(X, i, r0, *args)`` of each piece of block ``i`` (``r0``: the rows of the
    block before it), merged in order."""
    i = spec[2]
    with _engine.TaskMeter(key, stage, i) as m:
        pieces = _vectors(spec, part)
        del part
        state, r0 = None, 0
        for X in pieces:
            s = partial(X, i, r0, *args)
            state = s if state is None else merge(state, s)
            r0 += len(X)
        m.info["rows"] = r0
        del pieces
    return state, [m.info]


def _merge_task(merge, *items):
    state, tasks = None, []
    for st, t in items:
        tasks.extend(t)
        if st is not None:
            state = st if state is None else merge(state, st)
    return state, tasks


def _count(blocks, moments_state, tasks):
    """Global row offsets of the blocks from a first pass's per-task row counts."""
    rows = np.zeros(len(blocks.parts), dtype=np.int64)
    for t in tasks:
        rows[t["index"]] = t["rows"]
    blocks.offsets = np.concatenate([[0], np.cumsum(rows)[:-1]])
    if moments_state is None:
        raise ValueError("Found array with 0 sample(s) (every chunk is empty)")
    return int(moments_state["n"])


def _moments(blocks, unit, split_every, report, stage="moments"):
    st, tasks = blocks.reduce(stage, lambda X, i, r0: _engine.moments_partial(X, unit),
                              _engine.moments_merge, split_every, report)
    _count(blocks, st, tasks)
    st["mean"], st["m2"] = _engine.aligned(st["mean"]), _engine.aligned(st["m2"])
    return st


def _sample(blocks, rows, split_every, report, unit=False, stage="sample"):
    """The rows with global indices ``rows`` (sorted), as one array on the client."""
    offsets = blocks.offsets

    def take(X, i, r0, wanted):
        lo = offsets[i] + r0
        hi = lo + len(X)
        a, b = np.searchsorted(wanted, [lo, hi])
        sel = np.ascontiguousarray(X[wanted[a:b] - lo])
        return [_engine.unit_rows(sel) if unit else sel]

    parts, _ = blocks.reduce(stage, take, lambda a, b: a + b, split_every, report, args=(rows,))
    parts = [p for p in parts if len(p)]
    return _engine.aligned(np.concatenate(parts) if len(parts) > 1 else parts[0])


# --- fits ----------------------------------------------------------------------------------


def fit_scaler(data, *, column="embedding", with_mean=True, with_std=True, split_every=None):
    """Fit a :class:`~embedcluster.StandardScaler` on a Dask array or DataFrame column.

    One pass: each task's count, mean and M2 (float64, ``2 d * 8`` bytes), merged with Chan,
    Golub and LeVeque's update in a tree on the workers. Raises ``EmbedclusterError`` (a
    ``ValueError``) for a malformed row, ``ValueError`` for empty data.
    """
    from .preprocessing import StandardScaler

    report = _engine.FitReport()
    blocks = _Blocks(data, column)
    st = _moments(blocks, False, split_every, report)
    sc = StandardScaler(with_mean=with_mean, with_std=with_std)
    sc.n_features_in_ = len(st["mean"])
    sc._set_moments((st["n"], st["mean"], st["m2"]))
    sc.fit_report_ = report.finish()
    return sc


def fit_pca(data, n_components, *, column="embedding", fit_method="exact", sample_size=50_000,
            random_state=0, split_every=None):
    """Fit a :class:`~embedcluster.PCA` with ``n_components`` on a Dask array or DataFrame
    column.

    ``fit_method="exact"``: one pass; each task accumulates the co-moment of its rows
    (count, mean, ``d x d`` float64), merged in a tree on the workers; the client
    eigendecomposes the merged covariance (about ``4 d^2 * 8`` bytes). Equals
    ``PCA(fit_method="exact").fit`` on the same rows within rounding (1e-6 relative).

    ``fit_method="randomized"``: one pass for the count, mean and variance, then the
    uniform sample of ``sample_size`` rows that :class:`~embedcluster.PCA` would draw in
    memory (by global row index, ``random_state``) is gathered on the client
    (``sample_size * d * itemsize`` bytes) for randomized SVD (Halko, Martinsson and Tropp
    2011), centered with the mean of all rows: the in-memory result on the same rows.
    """
    from ._utils import _seed
    from .decomposition import PCA, _measured_variance, _randomized_result

    if fit_method not in ("exact", "randomized"):
        raise ValueError(f"fit_method must be 'exact' or 'randomized', got {fit_method!r}")
    pca = PCA(n_components=n_components, fit_method=fit_method, sample_size=sample_size,
              random_state=random_state)
    report = _engine.FitReport()
    blocks = _Blocks(data, column)
    if fit_method == "exact":
        st, tasks = blocks.reduce("covariance", lambda X, i, r0: _engine.cov_partial(X),
                                  _engine.cov_merge, split_every, report)
        n = _count(blocks, st, tasks)
        d = len(st["mean"])
        if n < 2:
            raise ValueError(f"n_samples = {n}: PCA needs at least 2 samples")
        comoment = _engine.aligned(st.pop("comoment").reshape(d, d))
        k = pca._check_n_components(n, d, "covariance_eigh")
        pca._finish(_core.cov_finish(n, _engine.aligned(st["mean"]), comoment, min(n, d)), n,
                    np.float64, k)
        del comoment
    else:
        st = _moments(blocks, False, split_every, report)
        n, d = int(st["n"]), len(st["mean"])
        if n < 2:
            raise ValueError(f"n_samples = {n}: PCA needs at least 2 samples")
        k = pca._check_n_components(n, d, "randomized")
        rows = _engine.sample_rows(n, n if sample_size is None else int(sample_size), random_state)
        sample = _sample(blocks, rows, split_every, report)
        t0 = time.perf_counter()
        r = _randomized_result(_core.pca_randomized(sample, (st["n"], st["mean"], st["m2"]), k,
                                                    seed=_seed(random_state)), n, st["m2"])
        mean, comps = _engine.aligned(r["mean"]), _engine.aligned(r["components"])
        ss, _ = blocks.reduce("variance", lambda X, i, r0, m, c: _engine.projection_ss_partial(X, m, c),
                              _engine.projection_ss_merge, split_every, report, args=(mean, comps))
        pca._finish(_measured_variance(r, ss["ss"], n), n, np.float64, k)
        report.client("randomized_svd", time.perf_counter() - t0, len(sample))
        del sample
    pca.n_features_in_ = d
    pca.fit_report_ = report.finish()
    return pca


def fit_kmeans(data, n_clusters, *, column="embedding", metric="cosine", init="k-means||",
               max_iter=300, tol=1e-4, random_state=0, init_sample_size=None,
               oversampling_factor=2.0, init_rounds=5, split_every=None, persist=True):
    """Fit a :class:`~embedcluster.KMeans` on a Dask array or DataFrame column, on the
    workers.

    Lloyd iterations (Lloyd 1982; spherical for ``metric="cosine"``, Dhillon and Modha
    2001) run by the core's own Lloyd driver (``_core.lloyd_drive``, the loop every
    in-memory fit runs): each iteration is one Dask computation in which every task assigns
    its rows with the fused GEMM + argmin kernel (no ``n x k`` matrix) and returns
    per-cluster sums, counts, its objective (``k d * 8`` bytes) and a fingerprint of its
    labels, merged in a tree on the workers. It stops when no label changed, when the
    squared centroid shift is at most ``tol * mean(var(X))`` (scikit-learn's rule), or after
    ``max_iter`` iterations; a cluster that loses all its rows takes the row farthest from
    its centroid (scikit-learn's relocation; one more computation gathers each task's
    farthest rows). From the same initial centroids and the same rows in the same order,
    the labels are the core's, whatever the chunking.

    ``init="k-means||"`` (default, as dask-ml and Spark MLlib): k-means|| (Bahmani et al.
    2012) over all rows by the core's driver (``init_rounds`` rounds of oversampled D^2
    sampling, ``oversampling_factor * n_clusters`` rows expected per round, two passes per
    round, then *weighted* k-means++ and weighted Lloyd on the candidates); the same rows
    give the core's ``KMeans(init="k-means||", init_trials=1)`` centres. ``init="k-means++"``:
    the core's default seeding (screened k-means++ starts) on the uniform sample of
    ``init_sample_size`` rows (default ``max(10_000, 400 * n_clusters)``) gathered on the
    client; or an array ``(n_clusters, n_features)`` of initial centroids. Rows are
    normalized per chunk for the cosine metric; the data's dtype is kept.

    ``persist=True`` (default): the first pass decodes and checks every block once (rows
    normalized for the cosine metric) and keeps the arrays in the workers' memory for the
    fit (``n_samples * n_features * itemsize`` bytes over all workers, released at the end;
    Dask's memory manager spills them to disk when a worker runs short), so an iteration
    is a GEMM pass over NumPy blocks: a ``data`` read from Parquet is read once. With
    ``persist=False`` every pass computes ``data`` again (persist it yourself, or accept the
    re-reads when the workers cannot hold it).

    Returns a fitted :class:`~embedcluster.KMeans` (``cluster_centers_``, ``inertia_``: the
    objective of the last assignment pass, ``n_iter_``, ``objective_history_``,
    ``fit_report_``); it has no ``labels_`` (use :meth:`KMeans.predict_dask`).
    """
    from ._utils import _seed
    from .cluster import KMeans

    km = KMeans(n_clusters=n_clusters, metric=metric, init=init, max_iter=max_iter, tol=tol,
                random_state=random_state)
    km._check_params()
    unit = metric == "cosine"
    report = _engine.FitReport()
    blocks = _Blocks(data, column)
    if persist:
        blocks.load(unit, report)
        unit_pass = False  # the loaded rows are already unit rows
    else:
        unit_pass = unit
    st = _moments(blocks, unit_pass, split_every, report)
    n, d = int(st["n"]), len(st["mean"])
    if n_clusters > n:
        raise ValueError(f"n_samples={n} should be >= n_clusters={n_clusters}")
    tol_abs = _core.lloyd_tol((st["n"], st["mean"], st["m2"]), float(tol))
    dtype = np.dtype(st["dtype"])

    def prep(X):
        return _engine.unit_rows(X) if unit_pass else X

    if isinstance(init, str) and init == "k-means||":
        centers = _kmeans_parallel(blocks, n_clusters, metric, n, d, dtype, prep, split_every,
                                   report, oversampling_factor, init_rounds,
                                   _core.restart_seed(_seed(random_state), 0))
    else:
        def sample(size):
            rows = _engine.sample_rows(n, int(init_sample_size or size), random_state)
            return _sample(blocks, rows, split_every, report, unit=unit_pass, stage="init_sample")

        centers = _engine.initial_centers(km, d, dtype, sample, report)

    it = [0]

    def step(c):
        it[0] += 1
        first = blocks.offsets
        st, _ = blocks.reduce(
            f"lloyd[{it[0]}]",
            lambda X, i, r0, C: _engine.lloyd_partial(prep(X), C, metric, int(first[i]) + r0),
            _engine.lloyd_merge, split_every, report, args=(np.ascontiguousarray(c),))
        return (_engine.aligned(st["sums"].reshape(n_clusters, d)), _engine.aligned(st["counts"]),
                float(st["objective"]), int(st["fingerprint"][0]))

    def farthest(c, m):
        first = blocks.offsets
        st, _ = blocks.reduce(
            f"farthest[{it[0]}]",
            lambda X, i, r0, C: _engine.farthest_partial(prep(X), C, metric, m, int(first[i]) + r0),
            lambda a, b: _engine.farthest_merge([a, b], d, m), split_every, report,
            args=(np.ascontiguousarray(c),))
        return _engine.farthest_merge([st], d, m)

    return _engine.lloyd_fit(km, centers, d, tol_abs, step, farthest, report)


def _kmeans_parallel(blocks, n_clusters, metric, n, d, dtype, prep, split_every, report,
                     oversampling_factor, init_rounds, seed):
    """k-means|| seeding by the core's driver (``_core.kmeans_parallel_drive``): ``2 *
    init_rounds + 2`` passes (the first centre, a cost and a draw per round, the weights),
    each a Dask computation whose tasks return small states merged on the workers."""
    def job(kind, groups, merge, out=lambda r: r, **kw):
        """One pass against the candidate ``groups`` (sent once per pass as task args)."""
        def partial(X, i, r0, *G):
            return out(_engine.parallel_partial(prep(X), list(G), kind, **kw))

        st, _ = blocks.reduce(f"kmeans||-{kind}", partial, merge, split_every, report,
                              args=tuple(np.ascontiguousarray(g) for g in groups))
        return st

    def pairs(kind, groups, **kw):
        st = job(kind, groups,
                 lambda a, b: (np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])),
                 lambda r: (np.asarray(r[0], np.uint64), np.asarray(r[1]).reshape(-1, d)), **kw)
        if st is None:
            return np.empty(0, np.uint64), np.empty((0, d), dtype)
        return _engine.aligned(st[0], np.uint64), _engine.aligned(st[1], dtype)

    def first(sd):
        return _engine.pick_first(*pairs("first", [], seed=sd))

    def cost(groups):
        return int(job("cost", groups, lambda a, b: a + b, int) or 0)

    def draw(groups, l, psi, sd, rnd):
        return pairs("draw", groups, l=l, psi=psi, seed=sd, rnd=rnd)

    def weights(groups):
        st = job("weights", groups, lambda a, b: a + b, lambda r: np.asarray(r, dtype=np.uint64))
        return _engine.aligned(st) if st is not None else np.zeros(sum(len(g) for g in groups), np.uint64)

    return _core.kmeans_parallel_drive(int(n), d, int(n_clusters), metric,
                                       float(oversampling_factor), int(init_rounds), int(seed),
                                       dtype.name, first, cost, draw, weights)


# --- apply lazily --------------------------------------------------------------------------


def transform_dask(model, data, *, column="embedding", output_column=None):
    """``model.transform_dask(data, ...)`` for a fitted :class:`~embedcluster.PCA`
    (``output_column`` default ``"pca"``) or :class:`~embedcluster.StandardScaler`
    (default ``"scaled"``)."""
    from .decomposition import PCA
    from .preprocessing import StandardScaler

    if isinstance(model, PCA):
        return model.transform_dask(data, column=column, output_column=output_column or "pca")
    if isinstance(model, StandardScaler):
        return model.transform_dask(data, column=column, output_column=output_column or "scaled")
    raise TypeError(f"transform_dask needs a fitted PCA or StandardScaler, got {type(model).__name__}")


def predict_dask(model, data, *, column="embedding", cluster_column="cluster", score_column="score"):
    """``model.predict_dask(data, ...)`` for a fitted :class:`~embedcluster.KMeans` or
    :class:`~embedcluster.ClusterModel`."""
    from .cluster import KMeans
    from .pipeline import ClusterModel

    if not isinstance(model, (KMeans, ClusterModel)):
        raise TypeError(f"predict_dask needs a fitted KMeans or ClusterModel, got {type(model).__name__}")
    return model.predict_dask(data, column=column, cluster_column=cluster_column,
                              score_column=score_column)
