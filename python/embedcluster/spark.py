"""Spark: fit on the executors, apply lazily, and extract to NumPy without Python lists.

Our users' embeddings live in Spark tables. Pulling them to the driver with ``toPandas()``
builds a Python list per row (several times the data) and the driver runs out of memory;
Spark MLlib's ``KMeans`` and ``PCA`` compute in float64 on the JVM and collect the
covariance on the driver. Here the executors run embedcluster's Rust kernels over Arrow
batches (``DataFrame.mapInArrow``), each partition returns one small partial state, and the
states are merged (on one executor first when they are large, so the driver receives one):

====================  ===================================  ==================================
function              per-partition state                  algorithm
====================  ===================================  ==================================
:func:`fit_scaler`    count, mean, M2 (``2 d`` float64)     Chan, Golub and LeVeque (1979)
:func:`fit_pca`       count, mean, co-moment (``d^2``)      streaming covariance + eigh;
                                                           or randomized SVD on a sample
                                                           (Halko, Martinsson, Tropp 2011)
:func:`fit_kmeans`    per-cluster sums, counts, objective   Lloyd (1982) / spherical k-means
                      (``k d`` float64)                     (Dhillon and Modha 2001), seeded
                                                           by k-means|| (Bahmani et al.
                                                           2012) over all rows
====================  ===================================  ==================================

They return the package's own estimators (:class:`~embedcluster.PCA`,
:class:`~embedcluster.KMeans`, :class:`~embedcluster.StandardScaler`), which ``save`` and
``load`` like any other. :func:`transform_spark` and :func:`predict_spark` (also methods of
those estimators and of :class:`~embedcluster.ClusterModel`) add columns lazily, partition
by partition. :func:`to_numpy` fills one preallocated float32 array on the driver from
Arrow batches, for data that does fit there.

Only the DataFrame API is used (no ``sparkContext``, RDD or broadcast), so everything works
with classic Spark and with Spark Connect. Needs ``pyspark>=4`` (``DataFrame.toArrow``) and
``pyarrow``; the executors' Python must import ``embedcluster`` (see the README, "Spark").

Memory (driver): one merged state (``d^2 * 8`` bytes for PCA, ``k d * 8`` for k-means) plus
the fitted model; the embeddings never reach it. Memory (each Python worker): one Arrow
batch (``spark.sql.execution.arrow.maxRecordsPerBatch`` rows, 10,000 by default), its
validated float copy, and the partition's state.

Every fit sets ``fit_report_`` (as :mod:`embedcluster.dask` does): ``stages`` (one per
Spark job: name, seconds, tasks, rows, largest task peak) and ``tasks``, a
``pandas.DataFrame`` with one row per partition and job: ``key``, ``stage``, ``index`` (the
partition), ``rows``, ``seconds``, ``peak_rss_bytes`` (the Python worker's peak RSS while
it ran, sampled every millisecond without resetting its counters; a Python worker runs one
task at a time), ``worker`` (None) and ``pid``; ``client_peak_rss_bytes`` is the driver's.

Errors: a null vector, a null element, NaN or infinity, a vector of the wrong length or a
column of another type fails the Spark job with embedcluster's message, prefixed by the
partition (``partition 3: <arrow stream>: row 17, column `embedding`[5]: value is NaN``);
the row is counted within that partition.
"""

from __future__ import annotations

import itertools
import json
import time

import numpy as np

from . import _core, _engine
from ._core import EmbedclusterError

__all__ = [
    "fit_kmeans",
    "fit_pca",
    "fit_scaler",
    "predict_spark",
    "to_numpy",
    "transform_spark",
]


# --- executor side -------------------------------------------------------------------------


def _partition_id():
    try:
        from pyspark import TaskContext

        tc = TaskContext.get()
        return tc.partitionId() if tc is not None else None
    except Exception:  # pragma: no cover - outside Spark
        return None


def _with_partition(e):
    pid = _partition_id()
    return EmbedclusterError(f"partition {pid}: {e}" if pid is not None else str(e))


def _blocks(batches, column):
    """The vectors of an iterator of Arrow record batches, as 2-D float arrays (one per
    non-empty batch), validated by the Rust reader (null, ragged, NaN and infinity errors
    name the row within the partition)."""
    import pyarrow as pa

    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        return
    reader = pa.RecordBatchReader.from_batches(first.schema, itertools.chain([first], batches))
    try:
        for block in _core.ArrowVectorReader(reader, column):
            yield block
    except EmbedclusterError as e:
        raise _with_partition(e) from None


def _one_block(batch, column):
    """The vectors of one record batch (n_rows, n_features)."""
    import pyarrow as pa

    if batch.num_rows == 0:
        return None
    try:
        blocks = list(_core.ArrowVectorReader(pa.Table.from_batches([batch]), column))
    except EmbedclusterError as e:
        raise _with_partition(e) from None
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def _unit(X):
    pid = _partition_id()
    return _engine.unit_rows(X, f"partition {pid}: " if pid is not None else "")


# A partial state travels as one Arrow row: each field is a count (`long`), a float64 or
# uint64 array as raw bytes (`f8`, `u8`; flat), a float (`double`) or a `string`.
# `tasks` is a JSON list of what each partition's task held (rows, seconds, peak RSS).
_MOMENTS = [("part", "long"), ("n", "long"), ("mean", "f8"), ("m2", "f8"), ("dtype", "string"),
            ("tasks", "string")]
_COV = [("part", "long"), ("n", "long"), ("mean", "f8"), ("comoment", "f8"), ("dtype", "string"),
        ("tasks", "string")]
_LLOYD = [("part", "long"), ("n", "long"), ("sums", "f8"), ("counts", "u8"), ("objective", "double"),
          ("fingerprint", "u8"), ("tasks", "string")]
_FARTHEST = [("part", "long"), ("n", "long"), ("ids", "u8"), ("dists", "f8"), ("labels", "f8"), ("rows", "f8"),
             ("tasks", "string")]
_PARALLEL = [("part", "long"), ("n", "long"), ("cost", "string"), ("ids", "u8"), ("rows", "f8"),
             ("w", "u8"), ("tasks", "string")]
_SS = [("part", "long"), ("n", "long"), ("ss", "f8"), ("tasks", "string")]
_SPARK_TYPES = {"long": "long", "f8": "binary", "u8": "binary", "double": "double",
                "string": "string"}


def _schema(fields):
    return ", ".join(f"{name} {_SPARK_TYPES[kind]}" for name, kind in fields)


def _encode(fields, state):
    import pyarrow as pa

    types = {"long": pa.int64(), "f8": pa.binary(), "u8": pa.binary(), "double": pa.float64(),
             "string": pa.string()}
    cols = {}
    for name, kind in fields:
        v = state[name]
        if kind == "f8":
            v = np.ascontiguousarray(v, dtype=np.float64).tobytes()
        elif kind == "u8":
            v = np.ascontiguousarray(v, dtype=np.uint64).tobytes()
        elif kind == "long":
            v = int(v)
        elif kind == "double":
            v = float(v)
        cols[name] = [v]
    return pa.RecordBatch.from_pydict(cols, schema=pa.schema([(n, types[k]) for n, k in fields]))


def _decode(fields, batch, i):
    state = {}
    for name, kind in fields:
        v = batch.column(name)[i].as_py()
        if kind == "f8":
            v = np.frombuffer(v, dtype=np.float64)
        elif kind == "u8":
            v = np.frombuffer(v, dtype=np.uint64)
        state[name] = v
    return state


def _metered(stage, fields, compute):
    """Executor side, per partition: ``compute(batches) -> state`` (or None) measured by
    :class:`~embedcluster._engine.TaskMeter` (seconds, the Python worker's peak RSS while it
    ran), encoded as one row tagged with the partition's index and its task record."""
    def f(batches):
        pid = _partition_id() or 0
        with _engine.TaskMeter(f"{stage}-partition-{pid}", stage, pid) as m:
            st = compute(batches)
            m.info["rows"] = int(st["n"]) if st is not None else 0
        if st is not None:
            yield _encode(fields, {**st, "part": pid, "tasks": json.dumps([m.info])})

    return f


def _fold_blocks(column, fields, partial, merge, stage):
    """Executor side, per partition: `partial` of each block, merged into one state row."""
    def compute(batches):
        st = None
        for X in _blocks(batches, column):
            s = partial(X)
            st = s if st is None else merge(st, s)
        return st

    return _metered(stage, fields, compute)


def _fold_rows(fields, merge):
    """Executor side, after `repartition(1)`: every partition's state row merged into one,
    in partition order (the shuffle delivers them in any order; floating-point sums must
    not depend on it)."""
    def f(batches):
        rows = [_decode(fields, b, i) for b in batches for i in range(b.num_rows)]
        rows.sort(key=lambda s: s["part"])
        st = None
        for s in rows:
            st = s if st is None else merge(st, s)
        if st is not None:
            tasks = [t for s in rows for t in json.loads(s["tasks"])]
            yield _encode(fields, {**st, "part": 0, "tasks": json.dumps(tasks)})

    return f


def _moments_partial(unit):
    return lambda X: _engine.moments_partial(_unit(X) if unit else X)


_moments_merge = _engine.moments_merge
_cov_partial = _engine.cov_partial
_cov_merge = _engine.cov_merge
_lloyd_merge = _engine.lloyd_merge


# Row ids of the Lloyd passes: partition index in the high bits, row within the partition
# below; the same rows in the same partitions get the same ids in every pass and retry.
_ROW_BITS = 40


def _lloyd_fold(column, centers, metric, kind, m=0):
    """Executor side, per partition: one Lloyd pass's state of the partition's rows
    (`kind="step"`: sums, counts, objective, label fingerprint) or its `m` farthest rows
    (`kind="farthest"`), against `centers`."""
    def compute(batches):
        pid = _partition_id() or 0
        first = pid << _ROW_BITS
        st = None
        for X in _blocks(batches, column):
            if metric == "cosine":
                X = _unit(X)
            if kind == "step":
                s = _engine.lloyd_partial(X, centers, metric, first)
                st = s if st is None else _lloyd_merge(st, s)
            else:
                s = _engine.farthest_partial(X, centers, metric, m, first)
                st = s if st is None else _engine.farthest_merge([st, s], X.shape[1], m)
            first += len(X)
        if st is None or kind == "step":
            return st
        ids, dists, labels, rows = st
        return {"n": len(ids), "ids": ids, "dists": dists, "labels": labels.astype(np.float64),
                "rows": rows.reshape(-1)}

    return _metered("lloyd" if kind == "step" else "farthest", _LLOYD if kind == "step" else _FARTHEST,
                    compute)


def _parallel_fold(column, metric, groups, kind, l=0.0, psi=0, seed=0, rnd=0):
    """Executor side, per partition: its share of one k-means|| pass (Bahmani et al. 2012)
    against the candidate `groups`: its candidate for the first centre (`kind="first"`),
    the fixed-point cost, the rows drawn in round `rnd`, or the rows nearest to each
    candidate. Draws hash the rows' values (no row ids), so partitions need not hold the
    same rows in every job."""
    def compute(batches):
        cost, ids, rows, w, n = 0, [], [], None, 0
        for X in _blocks(batches, column):
            if metric == "cosine":
                X = _unit(X)
            r = _engine.parallel_partial(X, groups, kind, l, psi, seed, rnd)
            if kind == "cost":
                cost += int(r)
            elif kind in ("draw", "first"):
                ids.append(r[0])
                rows.append(r[1].astype(np.float64).reshape(-1))
            else:
                w = r if w is None else w + r
            n += len(X)
        cat = lambda v, t: np.concatenate(v).astype(t) if v else np.empty(0, t)  # noqa: E731
        return {"n": n, "cost": str(cost), "ids": cat(ids, np.uint64), "rows": cat(rows, np.float64),
                "w": w if w is not None else np.empty(0, np.uint64)}

    return _metered(f"kmeans||-{kind}", _PARALLEL, compute)


def _kmeans_parallel(df, column, n_clusters, metric, d, n, dtype, *, oversampling_factor=2.0,
                     init_rounds=5, seed=0, report=None):
    """k-means|| seeding over the DataFrame's `n` rows by the core's driver
    (``_core.kmeans_parallel_drive``): ``2 * init_rounds + 2`` jobs (the first centre, a
    cost and a draw per round, the weights), each returning one small row per partition.
    The same rows give the core's k-means|| centres, bit for bit
    (``KMeans(init="k-means||", init_trials=1)``), however they are partitioned."""

    def job(groups, kind, **kw):
        fold = _parallel_fold(column, metric, groups, kind, **kw)
        t0 = time.perf_counter()
        tbl = df.select(column).mapInArrow(fold, _schema(_PARALLEL)).toArrow()
        parts = [_decode(_PARALLEL, b, i) for b in tbl.to_batches() for i in range(b.num_rows)]
        _record(report, f"kmeans||-{kind}", t0, parts)
        return parts

    def pairs(parts):
        ids = np.concatenate([p["ids"] for p in parts]) if parts else np.empty(0, np.uint64)
        rows = (np.concatenate([p["rows"] for p in parts]) if parts else np.empty(0)).reshape(-1, d)
        return np.ascontiguousarray(ids, dtype=np.uint64), np.ascontiguousarray(rows, dtype=dtype)

    def first(sd):
        return _engine.pick_first(*pairs(job([], "first", seed=sd)))

    def cost(groups):
        return sum(int(p["cost"]) for p in job(groups, "cost"))

    def draw(groups, l, psi, sd, rnd):
        return pairs(job(groups, "draw", l=l, psi=psi, seed=sd, rnd=rnd))

    def weights(groups):
        w = np.zeros(sum(len(g) for g in groups), np.uint64)
        for p in job(groups, "weights"):
            if len(p["w"]):
                w += p["w"]
        return w

    return _core.kmeans_parallel_drive(int(n), d, int(n_clusters), metric,
                                       float(oversampling_factor), int(init_rounds), int(seed),
                                       np.dtype(dtype).name, first, cost, draw, weights)


# --- driver side ---------------------------------------------------------------------------


def _record(report, stage, t0, rows):
    """The task records of a job's state rows into ``report`` (a ``FitReport``)."""
    if report is not None:
        tasks = [t for r in rows for t in json.loads(r["tasks"])]
        for t in tasks:  # the job's name, which the executors do not know
            t["stage"], t["key"] = stage, f"{stage}-partition-{t['index']}"
        report.add(stage, time.perf_counter() - t0, tasks)


def _reduce(df, column, fields, partial, merge, fold=None, stage="", report=None):
    """Partial states per partition (`fold`, or `partial` of each block), merged on one
    executor, then the one state to the driver as Arrow (never Python lists of floats)."""
    schema = _schema(fields)
    fold = fold or _fold_blocks(column, fields, partial, merge, stage)
    t0 = time.perf_counter()
    tbl = (df.select(column).mapInArrow(fold, schema)
           .repartition(1).mapInArrow(_fold_rows(fields, merge), schema).toArrow())
    if tbl.num_rows == 0:
        raise ValueError("Found array with 0 sample(s) (the DataFrame is empty)")
    st = _decode(fields, tbl.slice(0, 1).to_batches()[0], 0)
    _record(report, stage, t0, [st])
    return st


def _moments(df, column, unit=False, report=None):
    st = _reduce(df, column, _MOMENTS, _moments_partial(unit), _moments_merge, stage="moments",
                 report=report)
    return (st["n"], st["mean"], st["m2"]), st["dtype"]


def _sample(df, column, size, n, seed):
    """About `size` rows drawn uniformly (Spark's Bernoulli sampling), as one array."""
    frac = min(1.0, 1.1 * size / max(n, 1))
    part = df.select(column)
    if frac < 1.0:
        part = part.sample(withReplacement=False, fraction=frac, seed=int(seed))
    X = to_numpy(part, column)  # one job: the sample is drawn once
    return X[:size]


def fit_scaler(df, column, *, with_mean=True, with_std=True):
    """Fit a :class:`~embedcluster.StandardScaler` on the vectors of ``df[column]``.

    ``column`` holds ``array<float>`` or ``array<double>`` (all rows the same length).
    One Spark job: per-partition count, mean and M2 (float64), merged with Chan, Golub and
    LeVeque's update; the driver receives ``2 * n_features * 8`` bytes.

    Raises ``EmbedclusterError`` (a ``ValueError``) for a malformed row (the Spark job fails
    with our message) or an empty DataFrame.
    """
    from .preprocessing import StandardScaler

    report = _engine.FitReport()
    moments, _ = _moments(df, column, report=report)
    sc = StandardScaler(with_mean=with_mean, with_std=with_std)
    sc.n_features_in_ = len(moments[1])
    sc._set_moments(moments)
    sc.fit_report_ = report.finish()
    return sc


def fit_pca(df, column, n_components, *, fit_method="exact", sample_size=50_000,
            random_state=0):
    """Fit a :class:`~embedcluster.PCA` with ``n_components`` on the vectors of ``df[column]``.

    ``fit_method="exact"``: one Spark job; each partition accumulates the co-moment of its
    rows (count, mean, ``d x d`` float64), the states are merged on one executor
    (``repartition(1)``, Chan, Golub and LeVeque's update) and the driver eigendecomposes
    the merged covariance. Driver memory: about ``4 d^2 * 8`` bytes (the state and the
    eigensolver's). Each worker: ``3 d^2 * 8`` bytes besides its batch.

    ``fit_method="randomized"``: one job for the mean and variance, then a uniform sample of
    about ``sample_size`` rows is brought to the driver (``sample_size * d * itemsize``
    bytes, filled in place by :func:`to_numpy`) for randomized SVD (Halko, Martinsson and
    Tropp 2011), centered with the mean of all rows.
    """
    from ._utils import _seed
    from .decomposition import PCA, _measured_variance, _randomized_result

    pca = PCA(n_components=n_components, fit_method=fit_method, random_state=random_state)
    report = _engine.FitReport()
    if fit_method == "exact":
        st = _reduce(df, column, _COV, _cov_partial, _cov_merge, stage="covariance", report=report)
        n, mean = st["n"], st["mean"]
        d = len(mean)
        comoment = st.pop("comoment").reshape(d, d)
        k = pca._check_n_components(n, d, "covariance_eigh")
        pca._finish(_core.cov_finish(n, mean, comoment, min(n, d)), n, np.float64, k)
        del comoment
    elif fit_method == "randomized":
        moments, _ = _moments(df, column, report=report)
        n, d = moments[0], len(moments[1])
        k = pca._check_n_components(n, d, "randomized")
        sample = _sample(df, column, int(sample_size), n, random_state)
        r = _randomized_result(_core.pca_randomized(sample, moments, k, seed=_seed(random_state)),
                               n, moments[2])
        mean, comps = r["mean"], r["components"]
        ss = _reduce(df, column, _SS, lambda X: _engine.projection_ss_partial(X, mean, comps),
                     _engine.projection_ss_merge, stage="variance", report=report)
        pca._finish(_measured_variance(r, ss["ss"], n), n, np.float64, k)
        del sample
    else:
        raise ValueError(f"fit_method must be 'exact' or 'randomized', got {fit_method!r}")
    pca.n_features_in_ = d
    pca.fit_report_ = report.finish()
    return pca


def fit_kmeans(df, column, n_clusters, *, metric="cosine", init="k-means||", max_iter=300,
               tol=1e-4, random_state=0, init_sample_size=None, oversampling_factor=2.0,
               init_rounds=5):
    """Fit a :class:`~embedcluster.KMeans` on the vectors of ``df[column]`` on the executors.

    Lloyd iterations (Lloyd 1982; spherical for ``metric="cosine"``, Dhillon and Modha
    2001): each is one Spark job in which every partition assigns its rows with the fused
    GEMM + argmin kernel and returns per-cluster sums, counts and its objective
    (``k d * 8`` bytes) and a fingerprint of its labels, merged on one executor. The loop
    is the core's own Lloyd driver (``_core.lloyd_drive``, the code every in-memory fit
    runs): it stops when no label changed (the fingerprints agree), when the squared
    centroid shift is at most ``tol * mean(var(X))`` (scikit-learn's rule), or after
    ``max_iter`` iterations; a cluster that loses all its rows takes the row farthest from
    its centroid (scikit-learn's relocation; one more job collects each partition's
    farthest rows). From the same initial centroids and the same rows, the labels are the
    core's.

    ``init="k-means||"`` (default, as Spark MLlib and dask-ml): k-means|| (Bahmani et al.
    2012) over all rows by the core's driver, ``init_rounds`` rounds of oversampled D^2
    sampling (``oversampling_factor * n_clusters`` rows expected per round), two jobs per
    round, then weighted k-means++ and weighted Lloyd on the candidates; the same rows in
    the same order give the core's ``KMeans(init="k-means||", init_trials=1)`` centres.
    ``init="k-means++"``: the core's default seeding (16 k-means++ seedings screened by
    Lloyd) on a uniform sample of ``init_sample_size`` rows (default
    ``max(10_000, 400 * n_clusters)``) on the driver; or an array
    ``(n_clusters, n_features)`` of initial centroids. Rows are normalized per batch for the cosine metric; the data's
    dtype is kept.

    The first job computes the row count and variance (for ``tol``). The cache of ``df`` is
    the caller's choice: without it every iteration reads the source again (cache the
    reduced vectors, not the raw ones).

    Returns a fitted :class:`~embedcluster.KMeans` (``cluster_centers_``, ``inertia_``: the
    objective of the last assignment pass, ``n_iter_``, ``objective_history_``); it has no
    ``labels_`` (use :func:`predict_spark`).
    """
    from ._utils import _seed
    from .cluster import KMeans

    km = KMeans(n_clusters=n_clusters, metric=metric, init=init, max_iter=max_iter, tol=tol,
                random_state=random_state)
    km._check_params()
    report = _engine.FitReport()
    moments, dtype = _moments(df, column, unit=(metric == "cosine"), report=report)
    n, d = moments[0], len(moments[1])
    if n_clusters > n:
        raise ValueError(f"n_samples={n} should be >= n_clusters={n_clusters}")
    tol_abs = _core.lloyd_tol(moments, float(tol))
    dtype = np.dtype(dtype)
    if isinstance(init, str) and init == "k-means||":
        centers = _kmeans_parallel(df, column, n_clusters, metric, d, n, dtype,
                                   oversampling_factor=oversampling_factor,
                                   init_rounds=init_rounds,
                                   seed=_core.restart_seed(_seed(random_state), 0), report=report)
    else:
        def sample(size):
            X = _sample(df, column, int(init_sample_size or size), n, random_state)
            return X if len(X) >= n_clusters else to_numpy(df.select(column), column)

        centers = _engine.initial_centers(km, d, dtype, sample, report)

    it = [0]

    def step(c):
        it[0] += 1
        st = _reduce(df, column, _LLOYD, None, _lloyd_merge,
                     fold=_lloyd_fold(column, c, metric, "step"), stage=f"lloyd[{it[0]}]",
                     report=report)
        return (st["sums"].reshape(n_clusters, d), np.ascontiguousarray(st["counts"]),
                float(st["objective"]), int(st["fingerprint"][0]))

    def farthest(c, m):
        t0 = time.perf_counter()
        tbl = df.select(column).mapInArrow(_lloyd_fold(column, c, metric, "farthest", m),
                                           _schema(_FARTHEST)).toArrow()
        parts = sorted((_decode(_FARTHEST, b, i) for b in tbl.to_batches() for i in range(b.num_rows)),
                       key=lambda p: p["part"])
        _record(report, f"farthest[{it[0]}]", t0, parts)
        return _engine.farthest_merge(
            [(p["ids"], p["dists"], p["labels"], p["rows"]) for p in parts], d, m)

    return _engine.lloyd_fit(km, centers, d, tol_abs, step, farthest, report)


# --- apply on the executors ----------------------------------------------------------------


def _append_schema(df, fields):
    from pyspark.sql.types import StructType

    schema = StructType(list(df.schema.fields))
    for f in fields:
        schema = schema.add(f)
    return schema


def _list_array(Y):
    import pyarrow as pa

    n, k = Y.shape
    offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(Y.reshape(-1)))


def transform_spark(model, df, column, output_column=None):
    """Add the reduced vector of ``df[column]`` as ``output_column`` (``array<float>`` for
    float32 input, ``array<double>`` for float64), lazily, partition by partition.

    ``model`` is a fitted :class:`~embedcluster.PCA` (``output_column`` defaults to
    ``"pca"``) or :class:`~embedcluster.StandardScaler` (default ``"scaled"``). Memory per
    worker: one batch and its output.
    """
    from pyspark.sql.types import ArrayType, StructField

    from .decomposition import PCA, projection
    from .preprocessing import StandardScaler

    if isinstance(model, PCA):
        output_column = output_column or "pca"
        mean, comps = projection(model)

        def apply(X):
            return _core.pca_transform(X, mean, comps)
    elif isinstance(model, StandardScaler):
        output_column = output_column or "scaled"

        def apply(X):
            return model.transform(X, copy=True)
    else:
        raise TypeError(f"transform_spark needs a fitted PCA or StandardScaler, got {type(model).__name__}")
    elem = _column_element(df, column)
    schema = _append_schema(df, [StructField(output_column, ArrayType(elem(), False), True)])

    def f(batches):
        for batch in batches:
            X = _one_block(batch, column)
            if X is None:
                continue
            Y = apply(X)
            yield batch.append_column(output_column, _list_array(np.ascontiguousarray(Y)))

    return df.mapInArrow(f, schema)


def _column_element(df, column):
    from pyspark.sql.types import ArrayType, DoubleType, FloatType

    t = df.schema[column].dataType
    if not isinstance(t, ArrayType):
        raise EmbedclusterError(f"column `{column}`: expected array<float> or array<double>, got {t.simpleString()}")
    return DoubleType if isinstance(t.elementType, DoubleType) else FloatType


def predict_spark(model, df, column, *, cluster_column="cluster", score_column="score"):
    """Add ``cluster`` (int, nearest centroid) and ``score`` (float: cosine similarity, or
    squared distance for the euclidean metric) columns for the vectors of ``df[column]``,
    lazily, partition by partition (the fused GEMM + argmin kernel; no ``n x k`` matrix).

    ``model`` is a fitted :class:`~embedcluster.KMeans` (rows of ``column`` have its
    ``n_features_in_``) or a :class:`~embedcluster.ClusterModel` (raw vectors; its PCA and
    normalization steps run first).
    """
    from pyspark.sql.types import FloatType, IntegerType, StructField

    from .cluster import KMeans
    from .pipeline import ClusterModel

    if isinstance(model, KMeans):
        centers = np.ascontiguousarray(model.cluster_centers_)
        metric = model.metric

        def assign(X):
            Xp = _unit(X) if metric == "cosine" else X
            return _core.kmeans_predict(Xp, centers.astype(X.dtype, copy=False), metric)
    elif isinstance(model, ClusterModel):
        # in memory (also for a loaded model: its directory need not exist on executors)
        def assign(X):
            return model.kmeans.predict_with_scores(model.transform(X))
    else:
        raise TypeError(f"predict_spark needs a fitted KMeans or ClusterModel, got {type(model).__name__}")
    _column_element(df, column)
    schema = _append_schema(df, [StructField(cluster_column, IntegerType(), False),
                                 StructField(score_column, FloatType(), False)])

    def f(batches):
        import pyarrow as pa

        for batch in batches:
            X = _one_block(batch, column)
            if X is None:
                continue
            labels, scores = assign(X)
            out = batch.append_column(cluster_column, pa.array(np.asarray(labels, dtype=np.int32)))
            yield out.append_column(score_column, pa.array(np.asarray(scores, dtype=np.float32)))

    return df.mapInArrow(f, schema)


# --- extraction to the driver --------------------------------------------------------------


def to_numpy(df, column, other_columns=None):
    """Bring ``df[column]`` to the driver as one C-contiguous ``(n_samples, n_features)``
    array (float32 for ``array<float>``), filled in place from Arrow batches (``toArrow``,
    never Python lists of floats).

    ``other_columns``: names of scalar columns to return too, as NumPy arrays, in the same
    row order: ``to_numpy(df, "embedding", ["id"])`` returns ``(X, {"id": ids})``.

    Memory: the array (``n_samples * n_features * itemsize`` bytes, allocated once: the
    Arrow result knows its row count) plus the Arrow batches not yet copied; each is
    released as soon as it is copied, so the peak is about one copy of the data plus one
    batch, never a Python object per value.

    When to use which: ``to_numpy`` when the array fits comfortably on the driver (then use
    the in-memory estimators; e.g. 1M x 384 float32 = 1.5 GB); the ``fit_*`` functions and
    ``predict_spark`` when it does not, or when the result should stay a Spark table.
    """
    cols = [column] + list(other_columns or [])
    n_rows, batches = _local_arrow_batches(df.select(*cols))
    X = None
    others = {c: [] for c in (other_columns or [])}
    at = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        block = _one_block(batch.select([column]), column)
        if X is None:
            X = np.empty((n_rows, block.shape[1]), dtype=block.dtype)
        X[at : at + len(block)] = block
        at += len(block)
        for c in others:
            others[c].append(batch.column(c).to_numpy(zero_copy_only=False))
        del batch, block
    if X is None:
        raise ValueError("Found array with 0 sample(s) (the DataFrame is empty)")
    assert at == n_rows
    if other_columns:
        return X, {c: (np.concatenate(v) if v else np.empty(0)) for c, v in others.items()}
    return X


def _local_arrow_batches(df):
    """``(n_rows, batches)``: the Arrow record batches of ``df`` on the driver, each released
    once consumed.

    ``toArrow()`` (pyspark >= 4, classic and Connect) brings the result as Arrow, never as
    Python rows; we take its batches out of the table and drop each after the caller has
    copied it, so the Arrow data and the array being filled add up to about one copy.
    """
    import pyarrow as pa

    try:  # return freed Arrow memory to the OS at once (pyarrow's jemalloc pool)
        pa.jemalloc_set_decay_ms(0)
    except Exception:
        pass
    tbl = df.toArrow()
    n_rows = tbl.num_rows
    batches = tbl.to_batches()
    del tbl
    batches.reverse()

    def gen():
        while batches:
            yield batches.pop()

    return n_rows, gen()
