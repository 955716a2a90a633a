"""What the engines (:mod:`embedcluster.spark`, :mod:`embedcluster.dask`) share: the work of
one block of rows, its mergeable state, and a measure of each task.

Every distributed fit is ``partial(block) -> state``, ``merge(state, state)``, then the
core's own finish or driver on the merged state; the engine only decides where blocks
live and in which tree states are merged. States are dicts of NumPy arrays and numbers:

=============  ==================================================  ============================
state          fields                                              algorithm
=============  ==================================================  ============================
moments        ``n``, ``mean`` (d), ``m2`` (d), ``dtype``           Chan, Golub and LeVeque 1979
covariance     ``n``, ``mean`` (d), ``comoment`` (d*d), ``dtype``   the same, for co-moments
Lloyd step     ``n``, ``sums`` (k*d), ``counts`` (k),               Lloyd 1982; Dhillon and
               ``objective``, ``fingerprint`` (1, wrapping sum)     Modha 2001 (cosine)
=============  ==================================================  ============================

This module also holds the lazy apply of fitted models over Dask collections (the
estimators' ``transform_dask`` / ``predict_dask`` methods), which needs ``dask`` only
when called: the engines' own modules are leaves that nothing in the package imports.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from . import _core
from ._core import EmbedclusterError

# --- states of one block -------------------------------------------------------------------


def task_threads():
    """Threads for the kernels inside one engine task: ``OMP_NUM_THREADS`` when it is set
    (Dask's nannies set it to 1 in every worker, PySpark to ``spark.task.cpus`` in its Python
    workers: the engine already runs one task per core), else all cores (None)."""
    v = os.environ.get("OMP_NUM_THREADS", "")
    return int(v) if v.isdigit() and int(v) > 0 else None


def aligned(x, dtype=None):
    """``x`` as a C-contiguous, aligned array (of ``dtype``): arrays that crossed a process
    boundary can arrive as unaligned views into a message buffer, which the kernels cannot
    read in place."""
    return np.require(x, dtype=dtype, requirements=["C", "A"])


def unit_rows(X, where="", inplace=False):
    """``X`` itself when its rows are unit vectors (within 1e-4), else a normalized copy (the
    core's normalization, norms in float64), or ``X`` normalized in place with ``inplace``
    (a C-contiguous float array the caller owns). A zero row is an error naming the row,
    prefixed with ``where`` (the chunk or partition)."""
    sq = np.einsum("ij,ij->i", X, X, dtype=np.float64)
    if np.all(np.abs(sq - 1.0) <= 1e-4):
        return X
    if inplace and X.dtype in (np.float32, np.float64) and X.flags.c_contiguous and X.flags.writeable:
        Y = X
    else:
        Y = np.array(X, dtype=X.dtype if X.dtype in (np.float32, np.float64) else np.float64,
                     order="C", copy=True)
    try:
        _core.normalize_rows(Y)
    except ValueError as e:
        if not where:
            raise
        raise EmbedclusterError(f"{where}{e}") from None
    return Y


def moments_partial(X, unit=False):
    X = unit_rows(X) if unit else X
    n, mean, m2 = _core.moments_partial(X)
    return {"n": n, "mean": mean, "m2": m2, "dtype": str(X.dtype)}


def moments_merge(a, b):
    n, mean, m2 = _core.moments_merge((a["n"], a["mean"], a["m2"]), (b["n"], b["mean"], b["m2"]))
    return {"n": n, "mean": mean, "m2": m2, "dtype": a["dtype"]}


def projection_ss_partial(X, mean, components, n_threads=None):
    """Per-component sum of squares of ``(X - mean) components^T`` over the rows of X: a
    block's share of the randomized PCA's measured variance (merge by adding)."""
    out = _core.pca_transform(X, mean, components, n_threads or task_threads())
    return {"n": len(X), "ss": np.einsum("ij,ij->j", out, out, dtype=np.float64)}


def projection_ss_merge(a, b):
    return {"n": a["n"] + b["n"], "ss": a["ss"] + b["ss"]}


def cov_partial(X):
    n, mean, comoment = _core.cov_partial(X, task_threads())
    return {"n": n, "mean": mean, "comoment": comoment.reshape(-1), "dtype": str(X.dtype)}


def cov_merge(a, b):
    d = len(a["mean"])
    n, mean, comoment = _core.cov_merge(
        (a["n"], a["mean"], np.reshape(a["comoment"], (d, d))),
        (b["n"], b["mean"], np.reshape(b["comoment"], (d, d))))
    return {"n": n, "mean": mean, "comoment": comoment.reshape(-1), "dtype": a["dtype"]}


def lloyd_partial(X, centers, metric, first_id):
    """One Lloyd pass over a block (rows already normalized for the cosine metric): sums,
    counts, objective and the labels' fingerprint, with row ids from ``first_id``."""
    sums, counts, objective, fp = _core.lloyd_partial(X, aligned(centers, X.dtype), metric,
                                                      first_id, task_threads())
    return {"n": len(X), "sums": sums.reshape(-1), "counts": counts, "objective": objective,
            "fingerprint": np.array([fp], dtype=np.uint64)}


def lloyd_merge(a, b):
    return {"n": a["n"] + b["n"], "sums": a["sums"] + b["sums"],
            "counts": a["counts"] + b["counts"], "objective": a["objective"] + b["objective"],
            # wrapping sum, as the core's fingerprints
            "fingerprint": a["fingerprint"] + b["fingerprint"]}


def farthest_partial(X, centers, metric, m, first_id):
    """The block's ``m`` rows farthest from their centroids: ``(ids, dists, labels, rows)``."""
    return _core.lloyd_farthest(X, aligned(centers, X.dtype), metric, m, first_id, task_threads())


def farthest_merge(parts, d, m):
    """The ``m`` farthest of several blocks' farthest rows (the core's order)."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return (np.empty(0, np.uint64), np.empty(0), np.empty(0, np.int32), np.empty((0, d)))
    return _core.lloyd_merge_farthest(
        aligned(np.concatenate([p[0] for p in parts]), np.uint64),
        aligned(np.concatenate([p[1] for p in parts]), np.float64),
        aligned(np.concatenate([p[2] for p in parts]), np.int32),
        aligned(np.concatenate([np.reshape(p[3], (-1, d)) for p in parts]), np.float64), m)


def parallel_partial(X, groups, kind, l=0.0, psi=0, seed=0, rnd=0):
    """A block's share of one k-means|| pass (Bahmani et al. 2012) against the candidate
    ``groups``: ``kind="first"`` or ``"draw"``: ``(ids, rows)``; ``"cost"``: an int;
    ``"weights"``: a uint64 count per candidate."""
    G = [aligned(g, X.dtype) for g in groups]
    return _core.kmeans_parallel_block(X, G, kind, l, psi, seed, rnd, task_threads())


def pick_first(ids, rows):
    """The first k-means|| centre among the blocks' candidates: smallest rank, then
    smallest values (the core's order)."""
    if len(ids) == 0:
        return ids, rows
    order = np.lexsort(tuple(rows.T.astype(np.float64)[::-1]) + (ids,))
    i = order[0]
    return ids[i:i + 1].copy(), rows[i:i + 1].copy()


def initial_centers(km, d, dtype, sample, report):
    """The initial centroids of the distributed fit of ``km`` (an unfitted
    :class:`~embedcluster.KMeans`) when its ``init`` is not k-means||: for ``"k-means++"``
    the core's default seeding on ``sample(size)`` rows (``size = max(10_000, 400 *
    n_clusters)``, a uniform sample gathered on the client); else the array ``init``
    (``n_clusters x d``)."""
    from ._utils import _seed

    init, k = km.init, km.n_clusters
    if isinstance(init, str):
        if init != "k-means++":
            raise ValueError(f"init must be 'k-means||', 'k-means++' or an array, got {init!r}")
        X = sample(max(10_000, 400 * k))
        t0 = time.perf_counter()
        seed_km = type(km)(n_clusters=k, metric=km.metric, max_iter=km.max_iter, tol=km.tol,
                           random_state=_seed(km.random_state)).fit(X)
        report.client("kmeans++", time.perf_counter() - t0, len(X))
        return seed_km.cluster_centers_.astype(dtype)
    centers = np.ascontiguousarray(init, dtype=dtype)
    if centers.shape != (k, d):
        raise ValueError(f"init has shape {centers.shape}, expected ({k}, {d})")
    return centers


def lloyd_fit(km, centers, d, tol_abs, step, farthest, report):
    """Runs the core's Lloyd driver (``_core.lloyd_drive``) from ``centers`` with an engine's
    ``step`` and ``farthest`` passes and sets the fitted attributes of ``km``; warns (as
    scikit-learn) when it did not converge in ``km.max_iter`` iterations."""
    import warnings

    r = _core.lloyd_drive(np.ascontiguousarray(centers), km.metric, int(km.max_iter),
                          float(tol_abs), step, farthest)
    if not r["converged"]:
        warnings.warn(f"k-means did not converge in {km.max_iter} iterations", stacklevel=3)
    km.cluster_centers_ = r["cluster_centers"]
    km.n_features_in_ = d
    km.inertia_ = float(r["objective_history"][-1])
    km.n_iter_ = int(r["n_iter"])
    km.objective_history_ = list(r["objective_history"])
    km.fit_report_ = report.finish()
    return km


def sample_rows(n, size, random_state):
    """The sorted global row indices of a uniform sample without replacement (the draw
    :class:`~embedcluster.PCA` makes in memory, so the same rows give the same sample)."""
    from sklearn.utils import check_random_state

    if size >= n:
        return np.arange(n, dtype=np.int64)
    rng = check_random_state(random_state)
    return np.sort(rng.choice(n, size=int(size), replace=False)).astype(np.int64)


# --- what each task held -------------------------------------------------------------------


class TaskMeter:
    """Measures one task: wall seconds and the peak RSS of the process while it ran, from a
    thread sampling ``/proc/self/statm`` every millisecond (``_core.RssSampler``), which
    does not reset the kernel's high-water mark (``VmHWM``, ``getrusage`` and
    ``/usr/bin/time`` keep the true whole-process peak). The peak is the worker
    *process's*: exact for the task with one thread per worker; with several threads it is
    shared by the tasks running at once. A rise and fall shorter than a millisecond may be
    missed."""

    def __init__(self, key, stage, index):
        self.info = {"key": key, "stage": stage, "index": int(index), "rows": 0}

    def __enter__(self):
        self._sampler = _core.RssSampler(0.001)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.info["seconds"] = time.perf_counter() - self._t0
        self.info["peak_rss_bytes"] = int(self._sampler.stop())
        self.info["worker"], self.info["pid"] = _worker(), os.getpid()
        return False


class Report(dict):
    """A fit report (``fit_report_``, ``ClusterResult.report``): a plain ``dict`` of the
    core's figures that Jupyter renders as the stage table with measured and predicted
    peak memory as bars (``_repr_html_``, drawn by the core's ``report`` module)."""

    def _repr_html_(self) -> str:
        stages = [
            {"name": s.get("name", ""), "seconds": float(s.get("seconds", 0.0)),
             "cpu_seconds": float(s.get("cpu_seconds", 0.0)), "rows": int(s.get("rows", 0)),
             "peak_rss_bytes": int(s.get("peak_rss_bytes", 0)),
             "predicted_peak_rss_bytes": s.get("predicted_peak_rss_bytes")}
            for s in self.get("stages", [])
        ]
        title = self.get("title") or "embedcluster fit report"
        return _core.render_stages_html(str(title), json.dumps(stages),
                                        int(self.get("peak_rss_bytes", 0)))


class FitReport:
    """``fit_report_`` of a distributed fit: one stage per pass (name, seconds, tasks, rows,
    the largest task peak), one row per task (a ``pandas.DataFrame``: key, stage, index,
    rows, seconds, peak_rss_bytes, worker, pid), and the client's (driver's) peak RSS."""

    def __init__(self):
        self.stages, self.tasks = [], []

    def add(self, stage, seconds, tasks):
        self.tasks.extend(tasks)
        self.stages.append({"name": stage, "seconds": seconds, "tasks": len(tasks),
                            "rows": int(sum(t["rows"] for t in tasks)),
                            "peak_rss_bytes": int(max((t["peak_rss_bytes"] for t in tasks), default=0))})

    def client(self, stage, seconds, rows):
        """A step run on the client (driver), with no task."""
        self.stages.append({"name": f"{stage} (client)", "seconds": seconds, "tasks": 0,
                            "rows": int(rows), "peak_rss_bytes": 0})

    def finish(self):
        import pandas as pd

        cols = ["key", "stage", "index", "rows", "seconds", "peak_rss_bytes", "worker", "pid"]
        return Report({"stages": self.stages,
                       "tasks": pd.DataFrame(self.tasks, columns=cols),
                       "peak_rss_bytes": int(max((s["peak_rss_bytes"] for s in self.stages),
                                                 default=0)),
                       "client_peak_rss_bytes": int(_core.peak_rss_bytes())})


def _worker():
    try:
        from distributed import get_worker

        return get_worker().address
    except Exception:
        return None


# --- lazy apply over Dask collections ------------------------------------------------------


def _arrow_of(pdf, column):
    """The vector column of a pandas partition as a pyarrow Table (zero-copy for a column
    read with ``dtype_backend="pyarrow"``)."""
    import pyarrow as pa

    if column not in pdf.columns:
        raise EmbedclusterError(f"column `{column}` not found (columns: {list(pdf.columns)})")
    return pa.Table.from_pandas(pdf[[column]], preserve_index=False)


def partition_blocks(pdf, column, where):
    """The vectors of one pandas partition as a list of ``n_i x d`` blocks (the column's
    float type; empty for an empty partition). Errors are prefixed with ``where``.

    A column of float lists with no null and every list of the same length (what Parquet
    writers and :func:`apply_dask` produce) is read straight from its Arrow values
    buffers: one zero-copy view per Arrow chunk, checked for NaN and infinity. Anything else
    (nulls, ragged lists, another type) and every malformed value goes through the core's
    Arrow reader, whose message names the row and column (``row 5, column `embedding`: the
    vector is null``). No Python object per value either way."""
    if len(pdf) == 0:
        return []
    tbl = _arrow_of(pdf, column)
    blocks = _flat_vectors(tbl.column(0))
    if blocks is not None and all(_all_finite(b) for b in blocks):
        return blocks
    try:
        return list(_core.ArrowVectorReader(tbl, column))
    except EmbedclusterError as e:
        raise EmbedclusterError(f"{where}{e}") from None


def _flat_vectors(col):
    """One ``n_i x d`` float32/float64 view per chunk of a ChunkedArray of lists without
    nulls, all of length ``d``; None when the column is not that (the core's reader then
    decides)."""
    import pyarrow as pa

    t = col.type
    if not (pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)):
        return None
    if t.value_type not in (pa.float32(), pa.float64()) or col.null_count:
        return None
    parts, d = [], None
    for chunk in col.chunks:
        if len(chunk) == 0:
            continue
        values = chunk.flatten()  # a zero-copy slice of the child for lists without nulls
        if values.null_count:
            return None
        if pa.types.is_fixed_size_list(t):
            width = t.list_size
        else:
            offsets = np.asarray(chunk.offsets)
            width = int(offsets[1] - offsets[0])
            if width == 0 or np.any(np.diff(offsets) != width):
                return None
        if d is None:
            d = width
        if width != d or width == 0:
            return None
        parts.append(aligned(values.to_numpy(zero_copy_only=True).reshape(len(chunk), d)))
    return parts if parts else None


def _all_finite(X):
    """No NaN or infinity in ``X``, checked 4M values at a time (no full-size mask)."""
    step = max(1, (1 << 22) // max(X.shape[1], 1))  # 4M values at a time
    return all(np.isfinite(X[at:at + step]).all() for at in range(0, len(X), step))


def check_block(X, where, first_row=None):
    """A Dask array chunk as a C-contiguous float32/float64 ``n x d`` array; NaN or
    infinity is an error naming the chunk, the row within it (and the global row when
    the chunk's offset is known) and the column."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise EmbedclusterError(f"{where}expected a 2-D array, got shape {X.shape}")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    # C-contiguous and aligned: a chunk sent between processes can arrive as an unaligned
    # view into the message's buffer, which the kernels cannot read in place
    X = aligned(X)
    if _all_finite(X):
        return X
    r, c = np.argwhere(~np.isfinite(X))[0]  # the error path only
    what = "NaN" if np.isnan(X[r, c]) else "infinite"
    glob = f" (row {first_row + r} of the array)" if first_row is not None else ""
    raise EmbedclusterError(f"{where}row {r}{glob}, column {c}: value is {what}")


def _list_series(Y, index):
    import pandas as pd
    import pyarrow as pa

    n, k = Y.shape
    offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32))
    arr = pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(Y).reshape(-1)))
    return pd.Series(pd.arrays.ArrowExtensionArray(arr), index=index)


def _list_dtype(dtype):
    import pandas as pd
    import pyarrow as pa

    return pd.ArrowDtype(pa.list_(pa.float32() if np.dtype(dtype) == np.float32 else pa.float64()))


def _column_dtype(data, column):
    """float32 or float64: the element type of a Dask DataFrame's vector column."""
    import pyarrow as pa

    t = data.dtypes[column]
    pa_type = getattr(t, "pyarrow_dtype", None)
    if pa_type is not None and (pa.types.is_list(pa_type) or pa.types.is_large_list(pa_type)
                                or pa.types.is_fixed_size_list(pa_type)):
        return np.float32 if pa_type.value_type == pa.float32() else np.float64
    return np.float64


def is_dask_array(data):
    return type(data).__module__.startswith("dask.array")


def is_dask_frame(data):
    mod = type(data).__module__
    return (mod.startswith("dask.dataframe") or mod.startswith("dask_expr")) and hasattr(
        data, "map_partitions")


def rows_only(data):
    """A 2-D Dask array chunked along rows only (a chunked second axis is joined)."""
    if data.ndim != 2:
        raise ValueError(f"expected a 2-D Dask array (n_samples, n_features), got {data.ndim} dimensions")
    return data.rechunk({1: -1}) if data.numblocks[1] > 1 else data


def apply_dask(data, column, fn, n_out, out_dtype, output_column):
    """``fn`` (``n x d`` block -> ``n x n_out`` block) lazily over a Dask array (one chunk
    of the result per chunk of rows) or DataFrame (``output_column`` appended as a list
    column)."""
    if is_dask_array(data):
        data = rows_only(data)

        def block(X, block_info=None):
            i = block_info[0]["chunk-location"][0] if block_info else 0
            return fn(check_block(X, f"chunk {i}: "))

        dt = out_dtype if out_dtype is not None else (
            data.dtype if data.dtype in (np.float32, np.float64) else np.float64)
        return data.map_blocks(block, dtype=dt, chunks=(data.chunks[0], (n_out,)))
    if is_dask_frame(data):
        dt = out_dtype if out_dtype is not None else _column_dtype(data, column)
        meta = data._meta.copy()
        meta[output_column] = _list_series(np.empty((0, n_out), dt), meta.index)

        def part(pdf, partition_info=None):
            i = partition_info["number"] if partition_info else 0
            Y, at = np.empty((len(pdf), n_out), dt), 0
            for X in partition_blocks(pdf, column, f"partition {i}: "):
                Y[at:at + len(X)] = fn(X)
                at += len(X)
            out = pdf.copy(deep=False)
            out[output_column] = _list_series(Y[:at], pdf.index)
            return out

        return data.map_partitions(part, meta=meta)
    raise TypeError(f"expected a dask.array.Array or dask.dataframe.DataFrame, got {type(data).__name__}")


def predict_dask(data, column, assign, cluster_column="cluster", score_column="score"):
    """``assign`` (block -> labels, scores) lazily: a Dask array of int32 labels for a Dask
    array; ``cluster`` (int32) and ``score`` (float32) columns appended to a DataFrame."""
    if is_dask_array(data):
        data = rows_only(data)

        def block(X, block_info=None):
            i = block_info[0]["chunk-location"][0] if block_info else 0
            return np.asarray(assign(check_block(X, f"chunk {i}: "))[0], dtype=np.int32)

        return data.map_blocks(block, dtype=np.int32, chunks=(data.chunks[0],), drop_axis=1)
    if is_dask_frame(data):
        import pandas as pd

        meta = data._meta.copy()
        meta[cluster_column] = pd.Series(np.empty(0, np.int32), index=meta.index)
        meta[score_column] = pd.Series(np.empty(0, np.float32), index=meta.index)

        def part(pdf, partition_info=None):
            i = partition_info["number"] if partition_info else 0
            got = [assign(X) for X in partition_blocks(pdf, column, f"partition {i}: ")]
            out = pdf.copy(deep=False)
            labels = np.concatenate([g[0] for g in got]) if got else np.empty(0, np.int32)
            scores = np.concatenate([g[1] for g in got]) if got else np.empty(0, np.float32)
            out[cluster_column] = np.asarray(labels, dtype=np.int32)
            out[score_column] = np.asarray(scores, dtype=np.float32)
            return out

        return data.map_partitions(part, meta=meta)
    raise TypeError(f"expected a dask.array.Array or dask.dataframe.DataFrame, got {type(data).__name__}")
