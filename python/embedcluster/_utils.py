"""Shared helpers of the estimators: input validation, seeds, stage timing."""

from __future__ import annotations

import time

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from . import _core
from ._io import is_arrow, to_numpy

_FLOATS = [np.float64, np.float32]


class _Stage:
    """Measures one stage: wall and CPU seconds, peak RSS (kernel's high-water mark)."""

    def __init__(self, report, name, rows=0):
        self.report, self.name, self.rows = report, name, rows

    def __enter__(self):
        _core.reset_peak_rss()
        self.t0, self.c0 = time.perf_counter(), _core.cpu_seconds()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            stage = {
                "name": self.name,
                "seconds": time.perf_counter() - self.t0,
                "cpu_seconds": _core.cpu_seconds() - self.c0,
                "rows": int(self.rows),
                "peak_rss_bytes": int(_core.peak_rss_bytes()),
            }
            self.report.setdefault("stages", []).append(stage)
            self.report["peak_rss_bytes"] = max(
                s["peak_rss_bytes"] for s in self.report["stages"]
            )
        return False


def _validate(est, X, reset):
    if is_arrow(X):
        X = to_numpy(X)
    return validate_data(est, X, reset=reset, dtype=_FLOATS, order="C")


def _seed(random_state):
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


