"""embedcluster: reduce and cluster millions of embeddings in bounded memory.

scikit-learn style estimators (:class:`KMeans`, :class:`PCA`, :class:`StandardScaler`) and a
one-call pipeline (:func:`cluster_embeddings`) over a Rust core that streams its input,
keeps float32 as float32, never builds an ``n_samples x n_clusters`` distance matrix, and
reports the time and peak memory of every stage (``fit_report_``).

Modules follow scikit-learn's: :mod:`embedcluster.cluster`, :mod:`embedcluster.decomposition`,
:mod:`embedcluster.preprocessing`, :mod:`embedcluster.pipeline`, :mod:`embedcluster.neighbors`,
:mod:`embedcluster.metrics`; the engines are leaves that nothing here imports
(:mod:`embedcluster.spark`, :mod:`embedcluster.dask`).

Stage peaks (``fit_report_["stages"][i]["peak_rss_bytes"]``) are sampled every millisecond
by default, leaving the kernel's counters alone so that ``getrusage``, ``ps`` and
``/usr/bin/time -v`` report the process's true peak; ``set_stage_peaks("reset")`` (or
``EMBEDCLUSTER_STAGE_PEAKS=reset``) opts in to exact per-stage resets of the high-water mark,
which lower what those tools report. ``stage_peaks()`` returns the current method.
"""

from typing import TYPE_CHECKING, Any

from ._core import EmbedclusterError, MemoryLimitError, set_stage_peaks, stage_peaks
from ._io import iter_batches, to_numpy

if TYPE_CHECKING:  # what the lazy names below are, for type checkers
    from sklearn.exceptions import NotFittedError

    from . import metrics
    from .cluster import KMeans, MiniBatchKMeans
    from .decomposition import PCA
    from .neighbors import IndexFlatIP, IndexFlatL2, NearestNeighbors
    from .pipeline import ClusterModel, ClusterResult, cluster_embeddings, load
    from .preprocessing import StandardScaler, normalize
    from ._summary import summarize

# The estimators (and scikit-learn under them, about 3 s to import on a small machine) load
# on first use, so that a Spark or Dask worker importing embedcluster.spark / .dask to run a
# kernel on its partition does not pay for them (PEP 562 module __getattr__).
_LAZY = {
    "KMeans": "cluster",
    "MiniBatchKMeans": "cluster",
    "PCA": "decomposition",
    "IndexFlatIP": "neighbors",
    "IndexFlatL2": "neighbors",
    "NearestNeighbors": "neighbors",
    "ClusterModel": "pipeline",
    "ClusterResult": "pipeline",
    "cluster_embeddings": "pipeline",
    "load": "pipeline",
    "StandardScaler": "preprocessing",
    "normalize": "preprocessing",
    "summarize": "_summary",
}
_SUBMODULES = {"cluster", "decomposition", "metrics", "neighbors", "pipeline", "preprocessing"}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    elif name == "NotFittedError":
        from sklearn.exceptions import NotFittedError as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "ClusterModel",
    "ClusterResult",
    "EmbedclusterError",
    "IndexFlatIP",
    "IndexFlatL2",
    "KMeans",
    "MiniBatchKMeans",
    "MemoryLimitError",
    "NearestNeighbors",
    "NotFittedError",
    "PCA",
    "StandardScaler",
    "cluster_embeddings",
    "iter_batches",
    "load",
    "metrics",
    "normalize",
    "set_stage_peaks",
    "stage_peaks",
    "summarize",
    "to_numpy",
]
__version__ = "0.1.0"
