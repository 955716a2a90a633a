"""Types of the native module (the Rust core's bindings, built by maturin from
crates/embedcluster-py). Checked against the built module by ``python -m mypy.stubtest
embedcluster._core`` in CI. Arrays are NumPy arrays: ``_Float`` is float32 or float64 (the
input's), labels int32, ids int64."""

from collections.abc import Callable, Iterator, Sequence
from os import PathLike
from typing import Any, Optional, Union, final

import numpy as np
from numpy.typing import NDArray

_Float = NDArray[np.floating[Any]]
_F64 = NDArray[np.float64]
_Moments = tuple[int, _F64, _F64]
_CovState = tuple[int, _F64, _F64]
_PathArg = Union[str, PathLike[str]]

__all__ = [
    "EmbedclusterError",
    "MemoryLimitError",
    "kmeans_fit",
    "minibatch_fit",
    "minibatch_step",
    "kmeans_predict",
    "lloyd_partial",
    "lloyd_farthest",
    "lloyd_merge_farthest",
    "lloyd_drive",
    "lloyd_tol",
    "kmeans_parallel_block",
    "kmeans_parallel_drive",
    "restart_seed",
    "kmeans_init",
    "cov_partial",
    "cov_merge",
    "cov_finish",
    "pca_randomized",
    "pca_transform",
    "moments_partial",
    "moments_merge",
    "normalize_rows",
    "run_pipeline",
    "save_model",
    "load_model",
    "model_predict",
    "pipeline_apply",
    "knn_search",
    "external_scores",
    "internal_score",
    "peak_rss_bytes",
    "reset_peak_rss",
    "stage_peaks",
    "set_stage_peaks",
    "cpu_seconds",
    "ArrowVectorReader",
    "RssSampler",
    "StageRecorder",
    "SummaryBuilder",
    "render_run_html",
    "render_stages_html",
    "cli_main",
]

class EmbedclusterError(ValueError): ...
class MemoryLimitError(EmbedclusterError): ...

@final
class ArrowVectorReader:
    def __new__(cls, obj: Any, column: Optional[str] = None) -> ArrowVectorReader: ...
    @property
    def n_features(self) -> Optional[int]: ...
    @property
    def dtype(self) -> str: ...
    def __iter__(self) -> Iterator[_Float]: ...
    def __next__(self) -> _Float: ...

@final
class RssSampler:
    def __new__(cls, interval_seconds: float = 0.001) -> RssSampler: ...
    @property
    def peak_bytes(self) -> int: ...
    def stop(self) -> int: ...

@final
class StageRecorder:
    def __new__(cls) -> StageRecorder: ...
    def start(self, name: str) -> None: ...
    def finish(self, rows: int) -> str: ...

@final
class SummaryBuilder:
    def __new__(
        cls,
        labels: NDArray[np.int32],
        scores: NDArray[np.float32],
        n_clusters: int,
        higher_is_closer: bool = True,
        n_representatives: int = 5,
        n_keywords: int = 10,
        max_entries: int = 524288,
    ) -> SummaryBuilder: ...
    def push_texts(self, texts: Sequence[Optional[str]]) -> None: ...
    def finish(self) -> tuple[str, str]: ...

# reports
def render_run_html(report: str, summary: Optional[str], cluster_centers: _F64) -> str: ...
def render_stages_html(title: str, stages: str, peak_rss_bytes: int) -> str: ...

# memory and runtime
def peak_rss_bytes() -> int: ...
def reset_peak_rss() -> bool: ...
def stage_peaks() -> str: ...
def set_stage_peaks(method: str) -> None: ...
def cpu_seconds() -> float: ...

# the command line (the embedcluster console script)
def cli_main(argv: Sequence[str]) -> int: ...

# preprocessing
def moments_partial(x: _Float) -> _Moments: ...
def moments_merge(a: _Moments, b: _Moments) -> _Moments: ...
def normalize_rows(x: _Float) -> None: ...

# decomposition
def cov_partial(x: _Float, n_threads: Optional[int] = None) -> _CovState: ...
def cov_merge(a: _CovState, b: _CovState) -> _CovState: ...
def cov_finish(n: int, mean: _F64, comoment: _F64, n_components: int) -> dict[str, Any]: ...
def pca_randomized(
    sample: _Float,
    moments: _Moments,
    n_components: int,
    n_oversamples: int = 10,
    n_iter: Optional[int] = None,
    seed: int = 0,
    n_threads: Optional[int] = None,
) -> dict[str, Any]: ...
def pca_transform(x: _Float, mean: _F64, components: _F64, n_threads: Optional[int] = None) -> _Float: ...

# cluster
def kmeans_fit(
    x: _Float,
    n_clusters: int,
    metric_name: str,
    init: Optional[_F64] = None,
    n_init: int = 1,
    max_iter: int = 300,
    tol: float = 0.0001,
    seed: int = 0,
    n_threads: Optional[int] = None,
    init_name: str = "k-means++",
    init_trials: int = ...,
    init_size: int = 0,
    oversampling_factor: float = 2.0,
    init_rounds: int = 5,
    sample_weight: Optional[_F64] = None,
    pruning: str = "auto",
) -> dict[str, Any]: ...
def minibatch_fit(
    x: _Float,
    n_clusters: int,
    metric_name: str,
    init: Optional[_F64] = None,
    max_iter: int = 100,
    batch_size: int = 1024,
    tol: float = 0.0,
    max_no_improvement: int = 10,
    reassignment_ratio: float = 0.01,
    init_size: int = 0,
    seed: int = 0,
    n_threads: Optional[int] = None,
    init_name: str = "k-means++",
    init_trials: int = ...,
    sample_weight: Optional[_F64] = None,
) -> dict[str, Any]: ...
def minibatch_step(
    x: _Float,
    centers: _F64,
    counts: _F64,
    n_steps: int,
    metric_name: str,
    reassignment_ratio: float = 0.01,
    sample_weight: Optional[_F64] = None,
    n_threads: Optional[int] = None,
) -> tuple[_F64, _F64, int, float]: ...
def kmeans_init(
    x: _Float,
    n_clusters: int,
    metric_name: str,
    seed: int = 0,
    init_name: str = "k-means++",
    init_trials: int = ...,
    init_size: int = 0,
    oversampling_factor: float = 2.0,
    init_rounds: int = 5,
    n_threads: Optional[int] = None,
) -> _Float: ...
def kmeans_predict(
    x: _Float, centers: _Float, metric_name: str, n_threads: Optional[int] = None
) -> tuple[NDArray[np.int32], NDArray[np.float32]]: ...
def kmeans_parallel_block(
    x: _Float,
    groups: Sequence[_Float],
    kind: str,
    l: float = 0.0,
    psi: int = 0,
    seed: int = 0,
    round: int = 0,
    n_threads: Optional[int] = None,
) -> Any: ...
def kmeans_parallel_drive(
    n: int,
    d: int,
    n_clusters: int,
    metric_name: str,
    oversampling_factor: float,
    rounds: int,
    seed: int,
    dtype: str,
    first: Callable[..., Any],
    cost: Callable[..., Any],
    draw: Callable[..., Any],
    weights: Callable[..., Any],
) -> _Float: ...
def lloyd_partial(
    x: _Float, centers: _Float, metric_name: str, first_id: int = 0, n_threads: Optional[int] = None
) -> tuple[_F64, NDArray[np.uint64], float, int]: ...
def lloyd_farthest(
    x: _Float,
    centers: _Float,
    metric_name: str,
    m: int,
    first_id: int = 0,
    n_threads: Optional[int] = None,
) -> tuple[NDArray[np.uint64], _F64, NDArray[np.int32], _F64]: ...
def lloyd_merge_farthest(
    ids: NDArray[np.uint64], dists: _F64, labels: NDArray[np.int32], rows: _F64, m: int
) -> tuple[NDArray[np.uint64], _F64, NDArray[np.int32], _F64]: ...
def lloyd_drive(
    init: _Float,
    metric_name: str,
    max_iter: int,
    tol_abs: float,
    step: Callable[..., Any],
    farthest: Callable[..., Any],
) -> dict[str, Any]: ...
def lloyd_tol(moments: _Moments, tol: float) -> float: ...
def restart_seed(seed: int, r: int) -> int: ...

# neighbors and metrics
def knn_search(
    bases: Sequence[_Float],
    queries: _Float,
    k: int,
    metric_name: str = "l2",
    exclude_self: bool = False,
    n_threads: Optional[int] = None,
) -> tuple[_Float, NDArray[np.int64]]: ...
def external_scores(
    labels_true: NDArray[Any], labels_pred: NDArray[Any], which: Optional[Sequence[str]] = None
) -> dict[str, float]: ...
def internal_score(
    x: _Float,
    labels: NDArray[Any],
    kind: str,
    metric_name: str = "euclidean",
    n_threads: Optional[int] = None,
) -> Any: ...

# pipeline and models
def run_pipeline(
    source: Any,
    n_clusters: int,
    column: str = "embedding",
    reduce: str = "pca:128",
    pca_fit: str = "exact",
    metric_name: str = "cosine",
    n_init: int = 1,
    max_iter: int = 300,
    tol: float = 0.0001,
    seed: int = 0,
    batch_rows: Optional[int] = None,
    memory_limit: Any = None,
    output: Optional[_PathArg] = None,
    model: Optional[_PathArg] = None,
    labels_column: Optional[str] = None,
    on_invalid: str = "error",
    n_threads: Optional[int] = None,
    n_samples: Optional[int] = None,
    init_name: str = "k-means++",
    init_trials: int = ...,
    init_size: int = 0,
    oversampling_factor: float = 2.0,
    init_rounds: int = 5,
    spill: Any = None,
    summary: Optional[_PathArg] = None,
    summarize: bool = False,
    text_column: Optional[str] = None,
    n_representatives: int = 5,
    n_keywords: int = 10,
    keyword_entries: int = 524288,
    progress: Optional[Callable[..., Any]] = None,
    pruning: str = "auto",
    algorithm: str = "lloyd",
) -> dict[str, Any]: ...
def save_model(
    path: _PathArg,
    cluster_centers: _Float,
    metric_name: str,
    steps: Sequence[str],
    n_features: int,
    pca_mean: Optional[_F64] = None,
    pca_components: Optional[_F64] = None,
    explained_variance_ratio: Optional[_F64] = None,
    inertia: Optional[float] = None,
    n_iter: int = 0,
    n_samples_seen: int = 0,
    fit: Optional[str] = None,
) -> None: ...
def load_model(path: _PathArg) -> dict[str, Any]: ...
def model_predict(
    path: _PathArg,
    x: _Float,
    min_confidence: Optional[float] = None,
    adaptive: Optional[float] = None,
    batch_rows: int = 16384,
    n_threads: Optional[int] = None,
) -> tuple[NDArray[np.int32], NDArray[np.float32], NDArray[np.float32]]: ...
def pipeline_apply(
    x: _Float,
    cluster_centers: _Float,
    metric_name: str,
    steps: Sequence[str],
    n_features: int,
    pca_mean: Optional[_F64] = None,
    pca_components: Optional[_F64] = None,
    what: str = "assign",
    batch_rows: int = 16384,
    n_threads: Optional[int] = None,
) -> Any: ...
