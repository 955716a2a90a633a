"""The one-call pipeline and saved models."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from . import _core
from ._estimators import PCA, KMeans, _seed, _Stage, _unit_rows, normalize
from ._io import is_arrow, is_one_shot, iter_batches, num_rows, to_numpy


class ClusterModel:
    """A fitted embedding clusterer: the preprocessing steps, in order, then k-means.

    ``steps`` is a list of ``"normalize"`` and ``"pca:D"`` entries (as the CLI's
    ``manifest.json``); ``pca`` and ``kmeans`` are fitted estimators.
    """

    def __init__(self, kmeans, pca=None, steps=None, path=None):
        self.kmeans = kmeans
        self.pca = pca
        self.steps = list(steps if steps is not None else [])
        self.path = path
        """The model directory this model was loaded from, if any."""

    @property
    def metric(self):
        return self.kmeans.metric

    def transform(self, X):
        """Apply the preprocessing steps to X (a new array; X is not modified)."""
        X = np.asarray(X)
        owned = False
        for step in self.steps:
            if step == "normalize":
                X = normalize(X, copy=not owned)
                owned = True
            elif step.startswith("pca:"):
                X = self.pca.transform(X)
                owned = True
            else:
                raise ValueError(f"unknown preprocessing step {step!r}")
        return X

    def predict(self, X):
        """Cluster (int32) of each row of X (n_samples, n_features).

        A model loaded from a directory runs the Rust path of ``embedcluster predict``, so its
        labels are bit for bit the CLI's.
        """
        if self.path is not None:
            return self.predict_with_scores(X)[0]
        return self.kmeans.predict(self.transform(X))

    def predict_spark(self, df, column, **kwargs):
        """Add ``cluster`` and ``score`` columns for the raw vectors of ``df[column]`` (the
        model's steps run first), lazily, on the executors; see
        :func:`embedcluster.spark.predict_spark`."""
        from .spark import predict_spark

        return predict_spark(self, df, column, **kwargs)

    def predict_with_scores(self, X, *, min_confidence=None, adaptive=None):
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
        return self.kmeans.predict_with_scores(self.transform(X))

    def save(self, path):
        """Write a model directory: ``model.safetensors`` + ``manifest.json`` (the CLI's format)."""
        k = self.kmeans
        centers = np.ascontiguousarray(k.cluster_centers_)
        n_features = self.pca.n_features_in_ if self.pca is not None else k.n_features_in_
        manifest = {
            "steps": self.steps,
            "metric": k.metric,
            "n_features": int(n_features),
            "n_components": int(centers.shape[1]),
            "n_clusters": int(centers.shape[0]),
            "dtype": str(centers.dtype),
            "inertia": float(k.inertia_),
            "n_iter": int(k.n_iter_),
            "params": {"n_init": k.n_init, "max_iter": k.max_iter, "tol": k.tol},
        }
        pca_mean = pca_components = None
        if self.pca is not None:
            pca_mean = np.ascontiguousarray(self.pca.mean_, dtype=np.float64)
            pca_components = np.ascontiguousarray(self.pca.components_, dtype=np.float64)
            manifest["explained_variance_ratio"] = [float(v) for v in self.pca.explained_variance_ratio_]
        _core.save_model(os.fspath(path), centers, json.dumps(manifest), pca_mean, pca_components)

    def __repr__(self):
        return f"ClusterModel(steps={self.steps}, n_clusters={self.kmeans.n_clusters}, metric={self.metric!r})"


def load(path) -> ClusterModel:
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
    km.inertia_ = float(manifest.get("inertia", float("nan")))
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
    return ClusterModel(kmeans=km, pca=pca, steps=manifest.get("steps", []), path=os.fspath(path))


@dataclass
class ClusterResult:
    """What :func:`cluster_embeddings` returns."""

    labels: np.ndarray
    """Cluster of each row, int32 (n_samples,)."""
    scores: np.ndarray
    """Cosine similarity (cosine) or squared distance (euclidean) to the centroid, float32."""
    model: ClusterModel
    """The fitted preprocessing and k-means, ready for ``predict`` and ``save``."""
    report: dict = field(default_factory=dict)
    """Per-stage seconds, CPU seconds, rows and peak RSS bytes (``stages``), and totals."""

    @property
    def fit_report_(self):
        return self.report


def cluster_embeddings(
    source,
    n_clusters,
    *,
    reduce="pca:128",
    metric="cosine",
    pca_fit="exact",
    column="embedding",
    n_init=1,
    max_iter=300,
    tol=1e-4,
    random_state=0,
    batch_rows=None,
    memory_limit=None,
    on_invalid="error",
    output=None,
    labels_column=None,
    n_threads=None,
) -> ClusterResult:
    """Reduce and cluster embeddings in one call: the same job as ``embedcluster run``.

    Parameters
    ----------
    source : path (Parquet or ``.npy``), ndarray (n_samples, n_features), or Arrow stream
        A path is streamed by the Rust readers (never resident: peak memory is the reduced
        data plus one block, as the CLI). An array is used in place. An Arrow object is
        streamed twice (fit, then transform) when it can be read twice (pyarrow Table,
        polars DataFrame); a one-shot reader is first collected into one array.
    n_clusters : int
    reduce : "pca:D", "matryoshka:D" or "none"
    metric : "cosine" (spherical k-means on unit rows) or "euclidean"
    pca_fit : "exact" (streaming covariance) or "sample:N" (randomized SVD on N rows)
    random_state : int
        The seed; with a path, the same seed gives the same labels as ``embedcluster run
        --seed``.
    output, labels_column : path sources only: write the CLI's output Parquet; score against
        a label column (``report["ari"]``, ``report["nmi"]``).
    batch_rows : int or None
        Path sources: rows per block (default: planned, about 32 MiB). Results do not
        depend on it.
    memory_limit : int (bytes), str ("1GiB", "512MiB") or None
        Path sources: the peak RSS the run must stay within. Before any data is read the
        run predicts each stage's peak (``report["memory_plan"]``) and shrinks its blocks
        to fit; if it cannot, it raises :class:`MemoryLimitError` naming the stage and what
        to change. Each stage of ``report["stages"]`` has ``peak_rss_bytes`` (measured)
        and ``predicted_peak_rss_bytes``.
    on_invalid : "error" or "skip"
        Path sources: rows with NaN, infinity, nulls or (cosine) all zeros raise
        :class:`EmbedclusterError` naming file, row and column ("error"), or are left out
        of the fit and get label -1 and a NaN score ("skip"; counted in
        ``report["skipped_rows"]``).

    Raises
    ------
    EmbedclusterError (a ValueError)
        Bad data (with file, row and column) or bad parameters.
    MemoryLimitError (an EmbedclusterError)
        ``memory_limit`` cannot be met.
    FileNotFoundError, OSError
        The input cannot be read or an output cannot be written (no partial file is left).

    Returns
    -------
    ClusterResult with ``labels`` (int32), ``scores`` (float32), ``model`` and ``report``.
    """
    if isinstance(source, (str, os.PathLike)):
        r = _core.run_pipeline(
            os.fspath(source),
            int(n_clusters),
            column=column,
            reduce=reduce,
            pca_fit=pca_fit,
            metric_name=metric,
            n_init=int(n_init),
            max_iter=int(max_iter),
            tol=float(tol),
            seed=int(random_state),
            batch_rows=None if batch_rows is None else int(batch_rows),
            memory_limit=memory_limit,
            on_invalid=on_invalid,
            output=None if output is None else os.fspath(output),
            labels_column=labels_column,
            n_threads=n_threads,
        )
        report = json.loads(r["report"])
        for w in report.get("warnings", []):
            warnings.warn(w, ConvergenceWarning, stacklevel=2)
        steps = _steps(reduce, metric)
        pca = None
        if r["pca"] is not None:
            p = r["pca"]
            pca = PCA(n_components=int(p["components"].shape[0]))
            pca._finish(p)
            pca.n_features_in_ = int(p["components"].shape[1])
        dtype = np.dtype(report.get("dtype", "float32"))
        km = KMeans(n_clusters=int(n_clusters), metric=metric, n_init=n_init, max_iter=max_iter, tol=tol, random_state=random_state)
        km.cluster_centers_ = np.ascontiguousarray(r["cluster_centers"], dtype=dtype)
        km.labels_ = r["labels"]
        km.inertia_ = float(report["objective"])
        km.n_iter_ = int(report["n_iter"])
        km.n_features_in_ = int(km.cluster_centers_.shape[1])
        return ClusterResult(r["labels"], r["scores"], ClusterModel(km, pca, steps), report)
    return _cluster_in_memory(
        source, n_clusters, reduce=reduce, metric=metric, pca_fit=pca_fit, column=column,
        n_init=n_init, max_iter=max_iter, tol=tol, random_state=random_state, n_threads=n_threads,
    )


def _steps(reduce, metric):
    steps = []
    if metric == "cosine":
        steps.append("normalize")
    if reduce.startswith("pca:"):
        steps.append(reduce)
    elif reduce.startswith("matryoshka:"):
        raise ValueError("matryoshka models are not supported in Python yet; use reduce='pca:D' or 'none'")
    if metric == "cosine" and reduce != "none":
        steps.append("normalize")
    return steps


def _cluster_in_memory(source, n_clusters, *, reduce, metric, pca_fit, column, n_init, max_iter, tol, random_state, n_threads):
    report = {}
    steps = _steps(reduce, metric)
    pca = None
    if reduce.startswith("pca:"):
        k = int(reduce.split(":", 1)[1])
        method, sample = ("exact", None)
        if pca_fit.startswith("sample:"):
            method, sample = "randomized", int(pca_fit.split(":", 1)[1])
        pca = PCA(n_components=k, fit_method=method, sample_size=sample, random_state=random_state, n_threads=n_threads)
    if is_arrow(source) and is_one_shot(source):
        source = to_numpy(source, column)
    if is_arrow(source):
        n = num_rows(source)
        if pca is not None and pca.fit_method == "exact":
            with _Stage(report, "pca_fit") as st:
                for block in iter_batches(source, column):
                    if metric == "cosine":
                        normalize(block, copy=False)
                    pca.partial_fit(block)
                    st.rows += len(block)
            with _Stage(report, "transform", rows=n or 0):
                reduced = None
                at = 0
                for block in iter_batches(source, column):
                    if metric == "cosine":
                        normalize(block, copy=False)
                    z = pca.transform(block)
                    if reduced is None:
                        reduced = np.empty((n if n is not None else 0, z.shape[1]), dtype=z.dtype)
                    if n is None:
                        reduced = np.concatenate([reduced, z])
                    else:
                        reduced[at : at + len(z)] = z
                    at += len(z)
                if metric == "cosine":
                    normalize(reduced, copy=False)
        else:
            source = to_numpy(source, column)
    if not is_arrow(source):
        X = np.asarray(source)
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        X = np.ascontiguousarray(X)
        if pca is not None:
            with _Stage(report, "pca_fit", rows=len(X)):
                Xn = _unit_rows(X) if metric == "cosine" else X
                pca.fit(Xn)
            with _Stage(report, "transform", rows=len(X)):
                reduced = pca.transform(Xn)
                del Xn
                if metric == "cosine":
                    normalize(reduced, copy=False)
        else:
            reduced = X
    km = KMeans(n_clusters=n_clusters, metric=metric, n_init=n_init, max_iter=max_iter, tol=tol, random_state=random_state, n_threads=n_threads)
    with _Stage(report, "kmeans", rows=len(reduced)):
        labels, scores = km.fit(reduced).predict_with_scores(reduced)
    report.update(
        n_samples=int(len(reduced)),
        n_clusters=int(n_clusters),
        n_iter=km.n_iter_,
        objective=km.inertia_,
        explained_variance_ratio_sum=None if pca is None else float(np.sum(pca.explained_variance_ratio_)),
    )
    return ClusterResult(labels, scores, ClusterModel(km, pca, steps), report)
