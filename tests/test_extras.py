"""Each optional extra installs what it needs: the built wheel with ``[spark]`` or
``[dask]`` goes into its own new virtual environment (nothing else installed), and one fit
runs there.

Needs the wheel ``.ci/run`` builds into ``target/wheels`` (or ``EMBEDCLUSTER_WHEEL``) and
access to the package index; skipped without the wheel. Spark also needs Java 17.
"""

import glob
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import embedcluster

ROOT = Path(__file__).resolve().parent.parent


def wheel():
    w = os.environ.get("EMBEDCLUSTER_WHEEL")
    if w:
        return w
    found = sorted(glob.glob(str(ROOT / "target" / "wheels" / f"embedcluster-{embedcluster.__version__}-*.whl")),
                   key=os.path.getmtime)
    return found[-1] if found else None


SCRIPTS = {
    "dask": """
        import numpy as np, pyarrow as pa, pyarrow.parquet as pq, os, sys
        import dask.dataframe as dd
        from distributed import Client, LocalCluster
        from embedcluster import dask as ecd
        X = np.random.default_rng(0).normal(size=(600, 8)).astype(np.float32)
        os.makedirs("ds")
        for p in range(3):
            part = X[p * 200:(p + 1) * 200]
            vec = pa.FixedSizeListArray.from_arrays(pa.array(part.reshape(-1)), 8)
            pq.write_table(pa.table({"embedding": vec}), f"ds/part-{p}.parquet")
        with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as c, Client(c):
            ddf = dd.read_parquet("ds", dtype_backend="pyarrow")
            pca = ecd.fit_pca(ddf, 3)
            km = ecd.fit_kmeans(pca.transform_dask(ddf), 4, column="pca")
            out = km.predict_dask(pca.transform_dask(ddf), column="pca").compute()
        assert pca.components_.shape == (3, 8) and len(out) == 600, out
        print("ok", len(pca.fit_report_["tasks"]))
    """,
    "spark": """
        import numpy as np, pyarrow as pa, pyarrow.parquet as pq, os, sys
        os.environ["PYSPARK_PYTHON"] = sys.executable
        from pyspark.sql import SparkSession
        from embedcluster import spark as ecs
        X = np.random.default_rng(0).normal(size=(600, 8)).astype(np.float32)
        offsets = pa.array(np.arange(0, 601 * 8, 8, dtype=np.int32))
        pq.write_table(pa.table({"embedding": pa.ListArray.from_arrays(offsets, pa.array(X.reshape(-1)))}),
                       "x.parquet")
        s = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
             .getOrCreate())
        pca = ecs.fit_pca(s.read.parquet("x.parquet"), "embedding", 3)
        s.stop()
        assert pca.components_.shape == (3, 8)
        print("ok")
    """,
}


@pytest.mark.parametrize("extra", ["dask", "spark"])
def test_an_extra_alone_in_a_fresh_venv_runs_a_fit(extra, tmp_path):
    whl = wheel()
    if whl is None:
        pytest.skip("no built wheel in target/wheels (.ci/run builds one)")
    if extra == "spark" and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java 17")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    r = subprocess.run([py, "-m", "pip", "install", "-q", f"{whl}[{extra}]"],
                       capture_output=True, text=True)
    if r.returncode != 0 and "No matching distribution" in r.stderr + r.stdout:
        pytest.skip(f"the package index is not reachable: {r.stderr[-500:]}")
    assert r.returncode == 0, r.stderr[-3000:]
    # only what the extra brings: the other engine is absent
    other = {"dask": "pyspark", "spark": "dask"}[extra]
    assert subprocess.run([py, "-c", f"import {other}"], capture_output=True).returncode != 0
    r = subprocess.run([py, "-c", textwrap.dedent(SCRIPTS[extra])], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-4000:])
    assert r.stdout.strip().splitlines()[-1].startswith("ok")


def test_pip_install_gives_the_embedcluster_command(tmp_path):
    """``pip install`` (the wheel, nothing else) puts the Rust CLI on PATH as
    ``embedcluster``: the README's first command works and gives the cargo binary's labels."""
    whl = wheel()
    if whl is None:
        pytest.skip("no built wheel in target/wheels (.ci/run builds one)")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", whl],
                       capture_output=True, text=True)
    if r.returncode != 0 and "No matching distribution" in r.stderr + r.stdout:
        pytest.skip(f"the package index is not reachable: {r.stderr[-500:]}")
    assert r.returncode == 0, r.stderr[-3000:]
    exe = venv / "bin" / "embedcluster"
    assert exe.exists()
    data = ROOT / "data" / "debian_sample.parquet"
    args = ["run", str(data), "--n-clusters", "53", "--labels", "label"]
    r = subprocess.run([str(exe), *args, "--output", "pip.parquet"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ARI" in r.stdout + r.stderr or "adjusted_rand" in r.stdout + r.stderr, r.stdout[-2000:]
    cargo_bin = ROOT / "target" / "release" / "embedcluster"
    if cargo_bin.exists():
        r2 = subprocess.run([str(cargo_bin), *args, "--output", "cargo.parquet"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
        assert r2.returncode == 0, r2.stderr[-3000:]
        import pyarrow.parquet as pq

        a, b = pq.read_table(tmp_path / "pip.parquet"), pq.read_table(tmp_path / "cargo.parquet")
        assert a.column("cluster").equals(b.column("cluster"))
    # errors and exit codes are the CLI's
    r = subprocess.run([str(exe), "run", "missing.parquet", "--n-clusters", "3"], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "missing.parquet" in r.stderr, r.stderr
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "run" in r.stdout
