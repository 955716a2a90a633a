"""embedcluster.spark over Spark Connect (a local Connect server, local[2]): the same fits and
the same labels as the core, through the DataFrame API only.

Needs pyspark[connect]>=4 (grpcio) and Java 17; skipped where they are missing.
"""

import os
import shutil
import sys

import numpy as np
import pytest

pytest.importorskip("pyspark")
pytest.importorskip("grpc")
pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

import embedcluster as ec  # noqa: E402
from embedcluster import spark as ecs  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("java") is None and not os.environ.get("JAVA_HOME"),
                                reason="Spark needs Java 17")


@pytest.fixture(scope="module")
def connect():
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    s = SparkSession.builder.remote("local[2]").getOrCreate()
    assert type(s).__module__.startswith("pyspark.sql.connect")
    yield s
    s.stop()


def test_fits_and_labels_over_spark_connect(connect, tmp_path):
    rng = np.random.default_rng(1)
    # distinct variances per feature: well-separated principal axes
    X = (rng.normal(size=(1500, 12)) * np.linspace(0.5, 6.0, 12) + 2.0).astype(np.float32)
    n, d = X.shape
    vec = pa.ListArray.from_arrays(pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32)),
                                   pa.array(X.reshape(-1)))
    pq.write_table(pa.table({"id": np.arange(n, dtype=np.int64), "embedding": vec}),
                   tmp_path / "x.parquet", row_group_size=400)
    df = connect.read.parquet(str(tmp_path / "x.parquet"))
    sc = ecs.fit_scaler(df, "embedding")
    ref = ec.StandardScaler().fit(X)
    np.testing.assert_allclose(sc.var_, ref.var_, rtol=1e-6)
    p = ecs.fit_pca(df, "embedding", 3)
    ref_c = ec.PCA(3).fit(X).components_
    assert np.abs(p.components_ - ref_c).max() <= 1e-6 * np.abs(ref_c).max()
    init = X[[0, 300, 600, 900]].astype(np.float64)
    km = ecs.fit_kmeans(df, "embedding", 4, metric="euclidean", init=init, tol=0.0)
    kr = ec.KMeans(4, init=init, tol=0.0).fit(X)
    got = ecs.to_numpy(ecs.predict_spark(km, df, "embedding"), "embedding", ["id", "cluster"])[1]
    order = np.argsort(got["id"])
    np.testing.assert_array_equal(got["cluster"][order], kr.labels_)
