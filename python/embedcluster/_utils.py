"""Shared helpers of the estimators: input validation, seeds, stage timing."""

from __future__ import annotations

import json

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from . import _core
from ._io import is_vector_table, to_numpy

_FLOATS = [np.float64, np.float32]


class _Stage:
    """Measures one stage with the core's stage recorder (``_core.StageRecorder``, the CLI's
    own): wall and CPU seconds, and the process's peak RSS during it, sampled every
    millisecond unless ``embedcluster.set_stage_peaks("reset")`` (or
    ``EMBEDCLUSTER_STAGE_PEAKS=reset``) asked for per-stage resets of the high-water mark.
    """

    def __init__(self, report, name, rows=0):
        self.report, self.name, self.rows = report, name, rows

    def __enter__(self):
        self.recorder = _core.StageRecorder()
        self.recorder.start(self.name)
        return self

    def __exit__(self, *exc):
        done = json.loads(self.recorder.finish(int(self.rows)))
        if exc[0] is None:
            stage = {k: done["stage"][k]
                     for k in ("name", "seconds", "cpu_seconds", "rows", "peak_rss_bytes")}
            self.report.setdefault("stages", []).append(stage)
            self.report["stage_peaks"] = done["stage_peaks"]
            self.report["peak_rss_bytes"] = max(self.report.get("peak_rss_bytes", 0),
                                                done["peak_rss_bytes"])
        return False


def _validate(est, X, reset, accept_sparse=False, dtype=_FLOATS):
    """X as scikit-learn validates it (float32/float64, C order, the estimator's
    ``n_features_in_`` and ``feature_names_in_``); a table of vectors is read into one array
    first. Sparse input raises scikit-learn's ``TypeError`` unless ``accept_sparse``."""
    if is_vector_table(X):
        X = to_numpy(X)
    return validate_data(est, X, reset=reset, dtype=dtype, order="C",
                         accept_sparse=accept_sparse)


def _seed(random_state):
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


