import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "debian_descriptions_minilm384.parquet"
SAMPLE = ROOT / "data" / "debian_sample.parquet"


def local_spark(master, app, batch_rows):
    """A SparkSession on `master` (e.g. ``local[2]``) whose Python workers run this
    interpreter (they must import embedcluster), Arrow batches of `batch_rows`, 4 shuffle
    partitions, no UI. The caller stops it."""
    import os
    import sys

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    s = (SparkSession.builder.master(master).appName(app)
         .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows))
         .config("spark.sql.shuffle.partitions", "4")
         .config("spark.ui.enabled", "false")
         .getOrCreate())
    s.sparkContext.setLogLevel("ERROR")
    return s


@pytest.fixture
def blobs():
    """Well-separated Gaussian blobs, float64: (X, y)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=6.0, size=(7, 12))
    y = rng.integers(0, 7, size=1500)
    X = centers[y] + rng.normal(size=(1500, 12))
    return X, y
