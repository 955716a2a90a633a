import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "debian_descriptions_minilm384.parquet"
SAMPLE = ROOT / "data" / "debian_sample.parquet"


@pytest.fixture
def blobs():
    """Well-separated Gaussian blobs, float64: (X, y)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=6.0, size=(7, 12))
    y = rng.integers(0, 7, size=1500)
    X = centers[y] + rng.normal(size=(1500, 12))
    return X, y
