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

from ._core import EmbedclusterError, MemoryLimitError, set_stage_peaks, stage_peaks
from ._io import iter_batches, to_numpy
from . import metrics
from .cluster import KMeans
from .decomposition import PCA
from .neighbors import IndexFlatIP, IndexFlatL2, NearestNeighbors
from .pipeline import ClusterModel, ClusterResult, cluster_embeddings, load
from .preprocessing import StandardScaler, normalize
from sklearn.exceptions import NotFittedError

__all__ = [
    "ClusterModel",
    "ClusterResult",
    "EmbedclusterError",
    "IndexFlatIP",
    "IndexFlatL2",
    "KMeans",
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
    "to_numpy",
]
__version__ = "0.1.0"
