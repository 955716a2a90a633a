"""The one-call pipeline and saved models (scikit-learn's ``sklearn.pipeline`` place).

:func:`cluster_embeddings` runs the core's main job (``embedcluster run``) on a path, an
array or an Arrow table: the same stages, memory plan, k-means and report in every case.
:class:`ClusterModel` applies the fitted steps through the core's ``FittedPipeline`` (the
code ``embedcluster predict`` runs) and saves the CLI's model format.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

import json
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.exceptions import ConvergenceWarning

from . import _core
from ._io import is_arrow, is_one_shot, num_rows, to_numpy
from ._persist import save_model
from .cluster import KMeans
from .decomposition import PCA, projection
from ._summary import Progress, summarize_scores, summary_table
from ._typing import Floats, Labels, PathArg
from ._engine import Report

__all__ = ["ClusterModel", "ClusterResult", "cluster_embeddings", "load"]


class ClusterModel:
    """A fitted embedding clusterer: the preprocessing steps, in order, then k-means.

    ``steps`` is a list of ``"normalize"``, ``"pca:D"`` and ``"matryoshka:D"`` entries (as
    the CLI's ``manifest.json``); ``pca`` and ``kmeans`` are fitted estimators. Every call
    runs the core's fitted pipeline, which checks the parts first: a ``mean_`` or
    ``cluster_centers_`` of the wrong shape raises ``EmbedclusterError`` (a ``ValueError``)
    naming it.
    """

    def __init__(self, kmeans: Any, pca: Any = None, steps: Optional[Sequence[str]] = None,
                 path: Optional[PathArg] = None, n_features: Optional[int] = None,
                 fit: Any = None) -> None:
        self.kmeans = kmeans
        self.pca = pca
        self.steps = list(steps if steps is not None else [])
        self.path = path
        """The model directory this model was loaded from, if any."""
        self._n_features = n_features
        self._fit = fit

    @property
    def metric(self) -> str:
        return self.kmeans.metric

    @property
    def n_features_in_(self) -> int:
        """Columns of the rows the model takes (before the reduction)."""
        if self._n_features is not None:
            return int(self._n_features)
        if self.pca is not None:
            return int(self.pca.n_features_in_)
        return int(np.shape(self.kmeans.cluster_centers_)[1])

    def _apply(self, X, what, n_threads=None):
        X = np.ascontiguousarray(X)
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        centers = np.ascontiguousarray(self.kmeans.cluster_centers_, dtype=X.dtype)
        pca = self.pca
        return _core.pipeline_apply(
            X, centers, self.metric, self.steps, self.n_features_in_,
            pca_mean=None if pca is None else projection(pca)[0],
            pca_components=None if pca is None else projection(pca)[1],
            what=what, n_threads=n_threads or getattr(self.kmeans, "n_threads", None),
        )

    def transform(self, X: ArrayLike) -> Floats:
        """Apply the preprocessing steps to X (a new array; X is not modified)."""
        return self._apply(X, "transform")

    def predict(self, X: ArrayLike) -> Labels:
        """Cluster (int32) of each row of X (n_samples, n_features)."""
        return self.predict_with_scores(X)[0]

    def predict_with_scores(self, X: ArrayLike, *, min_confidence: Optional[float] = None,
                            adaptive: Optional[str] = None) -> tuple[Any, ...]:
        """Labels (int32; -1 for rejected rows), scores (float32) and, for a model loaded
        from a directory, confidence (float32, the normalized top-2 margin in [0, 1)).

        ``min_confidence`` rejects rows below a global confidence; ``adaptive="p10"`` rejects
        rows below their cluster's training p10 confidence (about 10 % of in-distribution rows).
        Returns ``(labels, scores)`` for an in-memory model, ``(labels, scores, confidence)``
        for a loaded one.
        """
        if self.path is not None:
            X = np.ascontiguousarray(X)
            if X.dtype not in (np.float32, np.float64):
                X = X.astype(np.float64)
            return _core.model_predict(os.fspath(self.path), X, min_confidence, adaptive)
        if min_confidence is not None or adaptive is not None:
            raise ValueError("rejection needs a saved model: save() it and load() it back")
        labels, scores, _ = self._apply(X, "assign")
        return labels, scores

    def predict_dask(self, data: Any, *, column: str = "embedding", cluster_column: str = "cluster",
                     score_column: str = "score") -> Any:
        """Assign raw vectors of a Dask collection lazily (the model's preprocessing steps,
        then the nearest centroid), as :meth:`KMeans.predict_dask` does; needs ``dask``.
        The model travels to the workers in memory (a loaded model's directory need not
        exist there)."""
        from . import _engine

        kmeans, pca, steps, n_features = self.kmeans, self.pca, self.steps, self.n_features_in_
        model = ClusterModel(kmeans, pca=pca, steps=steps, n_features=n_features)
        return _engine.predict_dask(
            data, column, lambda X: model._apply(X, "assign", _engine.task_threads())[:2],
            cluster_column, score_column)

    def save(self, path: PathArg) -> None:
        """Write a model directory: ``model.safetensors`` + ``manifest.json`` (the CLI's
        format and keys; with the training calibration when the model came from
        :func:`cluster_embeddings`)."""
        save_model(path, self.kmeans, self.pca, self.steps, self._fit)

    def __repr__(self) -> str:
        return f"ClusterModel(steps={self.steps}, n_clusters={self.kmeans.n_clusters}, metric={self.metric!r})"


def load(path: PathArg) -> ClusterModel:
    """Load a model directory written by ``embedcluster run --model DIR`` or ``save``.

    Raises ``EmbedclusterError`` (a ``ValueError``) when a file is missing, truncated, of
    another format version, or inconsistent. No pickle: safe for untrusted files.
    """
    m = _core.load_model(os.fspath(path))
    manifest = json.loads(m["manifest"])
    dtype = np.dtype(manifest.get("dtype", "float64"))
    centers = np.ascontiguousarray(m["cluster_centers"], dtype=dtype)
    k, dim = centers.shape
    km = KMeans(n_clusters=int(k), metric=manifest.get("metric", "euclidean"))
    km.cluster_centers_ = centers
    km.n_features_in_ = int(dim)
    inertia = manifest.get("inertia")
    km.inertia_ = float("nan") if inertia is None else float(inertia)
    km.n_iter_ = int(manifest.get("n_iter", 0))
    km.labels_ = np.empty(0, dtype=np.int32)
    pca = None
    if m["pca_components"] is not None:
        comps = m["pca_components"]
        pca = PCA(n_components=int(comps.shape[0]))
        pca.components_ = comps
        pca.mean_ = m["pca_mean"]
        pca.n_components_ = comps.shape[0]
        pca.n_features_in_ = comps.shape[1]
        pca._n_features_out = comps.shape[0]
        evr = manifest.get("explained_variance_ratio")
        pca.explained_variance_ratio_ = np.asarray(evr if evr is not None else [], dtype=np.float64)
        pca.n_samples_seen_ = int(manifest.get("n_samples_seen", 0))
    return ClusterModel(kmeans=km, pca=pca, steps=manifest.get("steps", []), path=os.fspath(path),
                        n_features=manifest.get("n_features"))


@dataclass
class ClusterResult:
    """What :func:`cluster_embeddings` returns."""

    labels: Labels
    """Cluster of each row, int32 (n_samples,)."""
    scores: NDArray[np.float32]
    """Cosine similarity (cosine) or squared distance (euclidean) to the centroid, float32."""
    model: ClusterModel
    """The fitted preprocessing and k-means, ready for ``predict`` and ``save``."""
    report: dict[str, Any] = field(default_factory=dict)
    """The core's run report: per-stage seconds, CPU seconds, rows, peak RSS bytes and their
    predictions (``stages``, ``memory_plan``), and the fit's figures."""
    summary: Any = None
    """The cluster summaries (with ``text_column`` or ``summary``), a pyarrow Table with one
    row per cluster: ``cluster``, ``size``, ``score_mean``, ``score_quantiles`` (p5, p25,
    p50, p75, p95), ``representatives`` (list of ``{id, text, score}``: the rows closest to
    the centroid), ``keywords`` and ``keyword_weights`` (class-based TF-IDF); else None."""
    _summary_json: Optional[str] = field(default=None, repr=False)

    @property
    def fit_report_(self) -> dict[str, Any]:
        return self.report

    def to_html(self, path: Optional[PathArg] = None) -> str:
        """The self-contained HTML report of this run (the page ``embedcluster run --html``
        writes: overview, stages with measured and predicted memory as bars, cluster sizes,
        the centroid map, the summaries, warnings; inline SVG and CSS, no JavaScript, no
        network). Written to ``path`` too when given (a temporary file, then a rename)."""
        centers = np.ascontiguousarray(self.model.kmeans.cluster_centers_, dtype=np.float64)
        html = _core.render_run_html(json.dumps(dict(self.report)), self._summary_json, centers)
        if path is not None:
            path = os.fspath(path)
            tmp = f"{path}.tmp-{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(html)
            os.replace(tmp, path)
        return html

    def _repr_html_(self) -> str:
        r = self.report
        title = (f"cluster_embeddings: {r.get('n_samples')} rows, k = {r.get('n_clusters')}, "
                 f"objective {float(r.get('objective', float('nan'))):.6g}")
        return Report(r, title=title)._repr_html_()


def _seed(random_state):
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state)
    from ._utils import _seed as draw

    return draw(random_state)


def _spill(spill):
    if spill is None or isinstance(spill, bool):
        return spill
    if isinstance(spill, (str, os.PathLike)):
        return os.fspath(spill)
    raise ValueError(f"spill must be None (automatic), a directory, True or False; got {spill!r}")


def cluster_embeddings(
    source: Any,
    n_clusters: int,
    *,
    reduce: str = "pca:128",
    metric: str = "cosine",
    pca_fit: str = "exact",
    column: str = "embedding",
    n_init: int = 1,
    max_iter: int = 300,
    tol: float = 1e-4,
    random_state: Any = 0,
    init: str = "k-means++",
    init_trials: int = 16,
    init_size: Optional[int] = None,
    algorithm: str = "lloyd",
    batch_rows: Optional[int] = None,
    memory_limit: Union[int, str, None] = None,
    on_invalid: str = "error",
    output: Optional[PathArg] = None,
    labels_column: Optional[str] = None,
    n_threads: Optional[int] = None,
    spill: Union[bool, PathArg, None] = None,
    text_column: Optional[str] = None,
    summary: Optional[PathArg] = None,
    n_representatives: int = 5,
    n_keywords: int = 10,
    verbose: int = 0,
) -> ClusterResult:
    """Reduce and cluster embeddings in one call: the core's ``embedcluster run`` job.

    Parameters
    ----------
    source : path, list of paths, ndarray (n_samples, n_features), or Arrow data
        A path is a Parquet, ``.npy`` or CSV file, a directory of Parquet part files (as
        Spark, pyarrow and Dask write them; ``key=value`` partition folders become
        columns; ``_SUCCESS``, ``.crc``, hidden and ``_`` files are ignored) or a glob
        (``"data/*.parquet"``); any of these may be an object-storage URL (``s3://``,
        ``gs://``, ``az://``, ``http(s)://``; credentials from the standard ``AWS_*`` /
        ``GOOGLE_*`` / ``AZURE_*`` environment, read by range requests, 16 MiB per
        decoder thread); a list of paths is read as one table, in order. Paths are
        streamed by the Rust readers (never resident: peak memory is the reduced data plus
        one block). An array is read block by block in place (never copied
        whole; other dtypes than float32/float64 are first converted to float64, one
        copy). An Arrow object that can be read twice (pyarrow Table, polars DataFrame) is
        streamed once per pass; a one-shot reader is first collected into one array.
    n_clusters : int
    reduce : "pca:D", "matryoshka:D" or "none"
    metric : "cosine" (spherical k-means on unit rows) or "euclidean"
    pca_fit : "exact" (streaming covariance) or "sample:N" (randomized SVD on N rows)
    random_state : int
        The seed: the same seed gives the same labels as ``embedcluster run --seed``, for
        a path and for the same rows as an array.
    init, init_trials, init_size, n_init, max_iter, tol
        k-means, as :class:`~embedcluster.KMeans` (``init`` a name: ``"k-means++"``,
        ``"k-means||"`` or ``"random"``).
    algorithm : "lloyd" (default) or "minibatch" / "minibatch:B"
        ``"lloyd"``: exact Lloyd iterations over all rows (Lloyd 1982). ``"minibatch"``:
        mini-batch k-means (Sculley 2010; spherical for ``metric="cosine"``) with batches
        of ``B`` rows (default 1024), as :class:`~embedcluster.MiniBatchKMeans` and the
        CLI's ``--algorithm``: an approximation that costs ``max_iter`` epochs of batch
        steps, for very large ``n_samples``.
    output, labels_column : path sources only: write the CLI's output Parquet (a path
        ending in ``/``: one part per input part, with the same names); score against a
        label column (``report["ari"]``, ``report["nmi"]``).
    batch_rows : int or None
        Rows per block (default: planned, about 32 MiB). Results do not depend on it.
    memory_limit : int (bytes), str ("1GiB", "512MiB") or None
        The peak RSS the run must stay within. Before any data is read the run predicts
        each stage's peak (``report["memory_plan"]``) and shrinks its blocks to fit; if it
        cannot, it raises :class:`MemoryLimitError` naming the stage and what to change.
        Each stage of ``report["stages"]`` has ``peak_rss_bytes`` (measured) and
        ``predicted_peak_rss_bytes``.
    spill : None, path, True or False
        Where the reduced matrix (``n_samples x D``) lives during k-means. ``None``
        (default): in memory unless the plan finds it does not fit the budget
        (``memory_limit``, else the cgroup's memory limit, else the available memory),
        then in a memory-mapped scratch file in the temporary directory; a directory or
        ``True``: always in a scratch file there (or in the temporary directory);
        ``False``: always in memory. Spilled or not, the labels are the same, bit for bit.
        The scratch file is unlinked as soon as it is mapped (never left behind);
        ``report["spill"]`` says where it was and its size.
    text_column, summary, n_representatives, n_keywords
        Cluster summaries (``result.summary``, a pyarrow Table; see
        :class:`ClusterResult`): computed when ``text_column`` or ``summary`` is given. A
        path source streams the text column in the output pass (``text_column=None`` with
        ``summary``: the only string column other than ``labels_column``); ``summary`` also
        writes them (``.json`` or ``.parquet``). A pyarrow Table or polars DataFrame source
        reads ``text_column`` from the table. Memory: see :func:`embedcluster.summarize`.
    verbose : int, default=0
        With ``verbose > 0``, progress of each stage: a tqdm bar if tqdm is installed,
        else plain lines on stderr.
    on_invalid : "error" or "skip"
        Rows with NaN, infinity, nulls or (cosine) all zeros raise
        :class:`EmbedclusterError` naming file (or ``<array>``), row and column ("error"),
        or are left out of the fit and get label -1 and a NaN score ("skip"; counted in
        ``report["skipped_rows"]``).

    Raises
    ------
    EmbedclusterError (a ValueError)
        Bad data (with file, row and column) or bad parameters (named as here).
    MemoryLimitError (an EmbedclusterError)
        ``memory_limit`` cannot be met.
    FileNotFoundError, OSError
        The input cannot be read or an output cannot be written (no partial file is left).

    Returns
    -------
    ClusterResult with ``labels`` (int32), ``scores`` (float32), ``model`` and ``report``.

    Memory: the core's plan (``report["memory_plan"]``): the reduced data ``n D s`` plus one
    block, plus for an array or Arrow table the caller's data itself.
    """
    n_samples = None
    table = None
    if isinstance(source, (str, os.PathLike)):
        src = os.fspath(source)
    elif isinstance(source, (list, tuple)) and source and all(
        isinstance(p, (str, os.PathLike)) for p in source
    ):
        src = [os.fspath(p) for p in source]
    elif is_arrow(source):
        table = source
        n_samples = num_rows(source)
        src = source
        if is_one_shot(source) or n_samples is None:
            src, n_samples, table = to_numpy(source, column), None, None
    else:
        src = source
    if not isinstance(src, (str, os.PathLike, list)) and not is_arrow(src):
        src = np.asarray(src)
        if src.dtype not in (np.float32, np.float64):
            src = src.astype(np.float64)
        src = np.ascontiguousarray(src)
    path_source = isinstance(src, (str, os.PathLike, list))
    if not path_source and (text_column is not None or summary is not None) and table is None:
        raise ValueError("text_column and summary need a path or a table source; for arrays "
                         "use embedcluster.summarize(texts, labels, embeddings)")
    r = _core.run_pipeline(
        src,
        int(n_clusters),
        column=column,
        reduce=reduce,
        pca_fit=pca_fit,
        metric_name=metric,
        n_init=int(n_init),
        max_iter=int(max_iter),
        tol=float(tol),
        seed=_seed(random_state),
        batch_rows=None if batch_rows is None else int(batch_rows),
        memory_limit=memory_limit,
        on_invalid=on_invalid,
        output=None if output is None else os.fspath(output),
        labels_column=labels_column,
        n_threads=n_threads,
        n_samples=n_samples,
        init_name=init,
        init_trials=int(init_trials),
        init_size=int(init_size or 0),
        spill=_spill(spill),
        summary=None if summary is None or not path_source else os.fspath(summary),
        summarize=path_source and text_column is not None,
        text_column=text_column if path_source else None,
        n_representatives=int(n_representatives),
        n_keywords=int(n_keywords),
        progress=Progress() if verbose else None,
        algorithm=algorithm,
    )
    report = json.loads(r["report"])
    for w in report.get("warnings", []):
        warnings.warn(w, ConvergenceWarning, stacklevel=2)
    pca = None
    dtype = np.dtype(report.get("dtype", "float32"))
    if r["pca"] is not None:
        p = r["pca"]
        pca = PCA(n_components=int(p["components"].shape[0]))
        pca._finish(p, int(p["n_samples_seen"]), dtype)
        pca.n_features_in_ = int(p["components"].shape[1])
    km = KMeans(n_clusters=int(n_clusters), metric=metric, init=init, n_init=n_init,
                max_iter=max_iter, tol=tol, random_state=random_state, n_threads=n_threads,
                init_trials=init_trials, init_size=init_size)
    km.cluster_centers_ = np.ascontiguousarray(r["cluster_centers"], dtype=dtype)
    km.labels_ = r["labels"]
    km.inertia_ = float(report["objective"])
    km.n_iter_ = int(report["n_iter"])
    km.n_features_in_ = int(km.cluster_centers_.shape[1])
    model = ClusterModel(km, pca, r["steps"], n_features=int(report["n_features"]), fit=r["fit"])
    summary_json = r["summary"]
    if not path_source and (text_column is not None or summary is not None):
        texts = None
        if text_column is not None:
            texts = _column(table, text_column)
        summary_json, report["summary_info"] = summarize_scores(
            texts, r["labels"], r["scores"], int(n_clusters), higher_is_closer=metric == "cosine",
            n_representatives=n_representatives, n_keywords=n_keywords)
        report["text_column"] = text_column
        if summary is not None:
            _write_summary(os.fspath(summary), summary_json)
    report = Report(report)
    table_out = None if summary_json is None else summary_table(summary_json)
    return ClusterResult(r["labels"], r["scores"], model, report, table_out, summary_json)


def _column(table: Any, name: str) -> Any:
    """Column ``name`` of a pyarrow Table or polars DataFrame (a ValueError if missing)."""
    try:
        if hasattr(table, "column") and hasattr(table, "schema") and hasattr(table, "num_rows"):
            return table.column(name)
        return table[name]
    except (KeyError, Exception) as e:
        raise ValueError(f"text_column {name!r} is not a column of the table") from e


def _write_summary(path: str, summary_json: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    if path.lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        pq.write_table(summary_table(summary_json), tmp)
    else:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(summary_json)
    os.replace(tmp, path)
