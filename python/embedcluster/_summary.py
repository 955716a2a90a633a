"""Cluster summaries and progress display for the pipeline.

:func:`summarize` gives, per cluster, its size, the mean and p5/p25/p50/p75/p95 of the
rows' scores, the ``n_representatives`` rows closest to the centroid with their text, and
the top ``n_keywords`` terms by class-based TF-IDF (Grootendorst 2022): the core's
``summary`` module, the code ``embedcluster run --summary`` runs. Tokenizer: Unicode words
(UAX #29), lowercased, at least 2 characters with a letter, an English stop-word list left
out. The keyword table is capped at ``max_entries`` (term, cluster) entries, about 140 bytes
each at most; texts are passed to the core 65,536 at a time.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Optional

import numpy as np

from . import _core

__all__ = ["summarize"]

_CHUNK = 65536


def summary_table(summary_json: str) -> Any:
    """The summaries (JSON text of the core's list) as a pyarrow Table, one row per cluster:
    ``cluster`` int32, ``size`` int64, ``score_mean`` float64, ``score_quantiles``
    list<float64>, ``representatives`` list<struct<id int64, text string, score float32>>,
    ``keywords`` list<string>, ``keyword_weights`` list<float64>."""
    import pyarrow as pa

    rows = json.loads(summary_json)
    for r in rows:  # JSON null is a NaN of an empty cluster
        r["score_mean"] = float("nan") if r["score_mean"] is None else r["score_mean"]
        r["score_quantiles"] = [float("nan") if q is None else q for q in r["score_quantiles"]]
    rep = pa.struct([("id", pa.int64()), ("text", pa.string()), ("score", pa.float32())])
    schema = pa.schema([("cluster", pa.int32()), ("size", pa.int64()),
                        ("score_mean", pa.float64()), ("score_quantiles", pa.list_(pa.float64())),
                        ("representatives", pa.list_(rep)), ("keywords", pa.list_(pa.string())),
                        ("keyword_weights", pa.list_(pa.float64()))])
    return pa.Table.from_pylist(rows, schema=schema)


def _text_chunks(texts: Any) -> Iterable[list]:
    """Texts in lists of at most 65,536: from a pyarrow Array/ChunkedArray, a pandas or
    polars Series, a numpy array or any sequence of str/None."""
    if hasattr(texts, "to_pylist") and hasattr(texts, "slice"):  # pyarrow
        n = len(texts)
        for i in range(0, n, _CHUNK):
            yield texts.slice(i, _CHUNK).to_pylist()
        return
    if hasattr(texts, "to_list"):  # pandas / polars Series
        texts = texts.to_list()
    texts = list(texts)
    for i in range(0, len(texts), _CHUNK):
        yield [None if t is None or (isinstance(t, float) and t != t) else str(t)
               for t in texts[i:i + _CHUNK]]


def summarize_scores(texts: Any, labels: Any, scores: Any, n_clusters: int, *,
                     higher_is_closer: bool = True, n_representatives: int = 5,
                     n_keywords: int = 10, max_entries: int = 524288) -> tuple[str, dict]:
    """Summaries from labels and scores already computed: (JSON text, info dict)."""
    b = _core.SummaryBuilder(np.ascontiguousarray(labels, dtype=np.int32),
                             np.ascontiguousarray(scores, dtype=np.float32), int(n_clusters),
                             higher_is_closer=bool(higher_is_closer),
                             n_representatives=int(n_representatives),
                             n_keywords=int(n_keywords), max_entries=int(max_entries))
    if texts is not None:
        for chunk in _text_chunks(texts):
            b.push_texts(chunk)
    s, info = b.finish()
    return s, json.loads(info)


def summarize(texts: Any, labels: Any, embeddings: Any, *, metric: str = "cosine",
              n_representatives: int = 5, n_keywords: int = 10,
              max_entries: int = 524288) -> Any:
    """Summaries of a clustering held in memory, as a pyarrow Table (one row per cluster).

    Parameters
    ----------
    texts : sequence of str or None (n_samples,), pyarrow/pandas/polars string column, or None
    labels : int array (n_samples,), clusters 0..k-1; -1 leaves a row out
    embeddings : float array (n_samples, n_features): the rows the labels cluster
    metric : "cosine" (score: cosine similarity to the normalized mean of the cluster's
        unit rows; higher is closer) or "euclidean" (squared distance to the cluster mean)

    Returns the table described in :func:`summary_table`; its representatives are exactly
    the highest-scoring (cosine) or lowest (euclidean) rows of each cluster, ties by row.

    Raises ValueError when the lengths differ or a label is out of range.

    Memory: centroids ``k d 8`` bytes, scores ``4 n``, the embeddings read in blocks of
    65,536 rows (one float64 block at a time), the keyword table (module docs).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    X = np.asarray(embeddings)
    if X.ndim != 2 or X.shape[0] != labels.shape[0]:
        raise ValueError(f"embeddings must be (n_samples={labels.shape[0]}, n_features), "
                         f"got shape {X.shape}")
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    if labels.size and (labels.min() < -1):
        raise ValueError("labels must be cluster numbers 0..k-1 or -1")
    k = int(labels.max()) + 1 if labels.size else 0
    cos = metric == "cosine"

    def rows(i):
        b = np.asarray(X[i:i + _CHUNK], dtype=np.float64)
        if cos:
            norms = np.linalg.norm(b, axis=1, keepdims=True)
            b = b / np.where(norms > 0, norms, 1.0)
        return b

    sums = np.zeros((k, X.shape[1]))
    counts = np.zeros(k)
    for i in range(0, X.shape[0], _CHUNK):
        lab = labels[i:i + _CHUNK]
        keep = lab >= 0
        np.add.at(sums, lab[keep], rows(i)[keep])
        counts += np.bincount(lab[keep], minlength=k)
    centers = sums / np.maximum(counts, 1)[:, None]
    if cos:
        n = np.linalg.norm(centers, axis=1, keepdims=True)
        centers = centers / np.where(n > 0, n, 1.0)
    scores = np.full(labels.shape[0], np.nan, dtype=np.float32)
    for i in range(0, X.shape[0], _CHUNK):
        lab = labels[i:i + _CHUNK]
        keep = lab >= 0
        b, c = rows(i)[keep], centers[lab[keep]]
        s = np.einsum("ij,ij->i", b, c) if cos else ((b - c) ** 2).sum(axis=1)
        out = scores[i:i + _CHUNK]
        out[keep] = s
    js, _ = summarize_scores(texts, labels, scores, k, higher_is_closer=cos,
                             n_representatives=n_representatives, n_keywords=n_keywords,
                             max_entries=max_entries)
    return summary_table(js)


class Progress:
    """The progress callback of a long fit (``verbose=``): a tqdm bar per stage when tqdm is
    installed, else one plain line per stage start and about every 10 % of its rows, on
    stderr."""

    def __init__(self, use_tqdm: Optional[bool] = None, file: Any = None):
        if use_tqdm is None:
            import importlib.util

            use_tqdm = importlib.util.find_spec("tqdm") is not None
        self.use_tqdm, self.file = use_tqdm, file
        self.bar: Any = None
        self.stage, self.total, self.done, self.next_line = "", None, 0, 0

    def _out(self):
        return self.file if self.file is not None else sys.stderr

    def __call__(self, event: str, *args: Any) -> None:
        if event == "begin":
            self.stage, self.total = str(args[0]), args[1]
            self.done = 0
            self.next_line = 0 if self.total is None else max(1, self.total // 10)
            if self.use_tqdm:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=self.total, desc=self.stage, unit="rows",
                                file=self._out(), leave=True)
            else:
                total = "" if self.total is None else f" ({self.total} rows)"
                print(f"embedcluster: {self.stage}{total}", file=self._out(), flush=True)
        elif event == "advance":
            rows = int(args[0])
            self.done += rows
            if self.bar is not None:
                self.bar.update(rows)
            elif self.total and self.done >= self.next_line:
                print(f"embedcluster: {self.stage} {self.done}/{self.total} rows",
                      file=self._out(), flush=True)
                self.next_line = self.done + max(1, self.total // 10)
        elif event == "end":
            if self.bar is not None:
                self.bar.close()
                self.bar = None
