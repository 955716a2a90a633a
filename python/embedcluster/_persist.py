"""Saving fitted estimators as model directories through the core's one manifest type
(the same keys as ``embedcluster run --model DIR``)."""

from __future__ import annotations

import os

import numpy as np

from . import _core


def save_model(path, kmeans, pca=None, steps=(), fit=None):
    """Write ``path`` (``model.safetensors`` + ``manifest.json``) for a fitted ``kmeans``,
    an optional fitted ``pca`` and the preprocessing ``steps``. ``fit`` is what the core's
    run returned about the fit (calibration, training rows, parameters), when known.

    Raises ``EmbedclusterError`` (a ``ValueError``) naming the attribute whose shape is
    wrong, ``OSError`` when a file cannot be written (no partial file is left)."""
    from .decomposition import projection

    centers = np.ascontiguousarray(kmeans.cluster_centers_)
    if centers.dtype not in (np.float32, np.float64):
        centers = centers.astype(np.float64)
    n_features = pca.n_features_in_ if pca is not None else centers.shape[1]
    if any(s.startswith("matryoshka:") for s in steps):
        n_features = int(getattr(kmeans, "_n_features_raw", n_features))
    labels = getattr(kmeans, "labels_", None)
    _core.save_model(
        os.fspath(path),
        centers,
        kmeans.metric,
        [str(s) for s in steps],
        int(n_features),
        pca_mean=None if pca is None else projection(pca)[0],
        pca_components=None if pca is None else projection(pca)[1],
        explained_variance_ratio=None if pca is None else np.ascontiguousarray(
            getattr(pca, "explained_variance_ratio_", np.empty(0)), dtype=np.float64),
        inertia=float(getattr(kmeans, "inertia_", float("nan"))),
        n_iter=int(getattr(kmeans, "n_iter_", 0)),
        n_samples_seen=int(0 if labels is None else len(labels)),
        fit=fit,
    )
