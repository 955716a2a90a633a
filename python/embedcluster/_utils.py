"""Shared helpers of the estimators: input validation, seeds, stage timing."""

from __future__ import annotations

import json
import time

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from . import _core
from ._io import is_arrow, to_numpy

_FLOATS = [np.float64, np.float32]


class _Stage:
    """Measures one stage: wall and CPU seconds, and the process's peak RSS during it.

    The peak is sampled every millisecond by a thread (``_core.RssSampler``), leaving the
    kernel's high-water mark alone, unless ``embedcluster.set_stage_peaks("reset")`` (or
    ``EMBEDCLUSTER_STAGE_PEAKS=reset``) asked for per-stage resets of that mark.
    """

    def __init__(self, report, name, rows=0):
        self.report, self.name, self.rows = report, name, rows

    def __enter__(self):
        self.sampler = None
        if _core.stage_peaks() == "reset":
            _core.reset_peak_rss()
        else:
            self.sampler = _core.RssSampler(0.001)
        self.t0, self.c0 = time.perf_counter(), _core.cpu_seconds()
        return self

    def __exit__(self, *exc):
        peak = self.sampler.stop() if self.sampler is not None else _core.peak_rss_bytes()
        if exc[0] is None:
            stage = {
                "name": self.name,
                "seconds": time.perf_counter() - self.t0,
                "cpu_seconds": _core.cpu_seconds() - self.c0,
                "rows": int(self.rows),
                "peak_rss_bytes": int(peak),
            }
            self.report.setdefault("stages", []).append(stage)
            self.report["stage_peaks"] = json.loads(_core.stage_peaks_info())
            whole = max(s["peak_rss_bytes"] for s in self.report["stages"])
            if self.sampler is not None:
                whole = max(whole, int(_core.peak_rss_bytes()))
            self.report["peak_rss_bytes"] = whole
        return False


def _validate(est, X, reset):
    if is_arrow(X):
        X = to_numpy(X)
    return validate_data(est, X, reset=reset, dtype=_FLOATS, order="C")


def _seed(random_state):
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


