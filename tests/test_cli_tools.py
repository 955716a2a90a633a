"""The CLI's streaming tools against scikit-learn (needs the release binary that
`cargo test --release` builds; skipped without it)."""

import json
import pathlib
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sklearn.preprocessing
from sklearn import metrics as skm

from conftest import ROOT, SHARED

BIN = ROOT / "target" / "release" / "embedcluster"
pytestmark = pytest.mark.skipif(not BIN.exists(), reason="build with cargo build --release")


def cli(*args, cwd):
    r = subprocess.run([str(BIN), *map(str, args)], cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


def write_vectors(path, X, **others):
    emb = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), X.shape[1])
    pq.write_table(pa.table({**others, "embedding": emb}), path, row_group_size=4096)


def read_vectors(path, column="embedding"):
    t = pq.read_table(path)
    col = t.column(column).combine_chunks()
    return t, col.values.to_numpy().reshape(len(t), -1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scale_matches_sklearn_standard_scaler(tmp_path, dtype):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(20000, 32)) * rng.uniform(0.1, 50, 32) + rng.uniform(-1e3, 1e3, 32))
    X = X.astype(dtype)
    write_vectors(tmp_path / "in.parquet", X, id=np.arange(len(X)), tag=[f"r{i}" for i in range(len(X))])
    cli("scale", "in.parquet", "--output", "out.parquet", "--batch-rows", "3000", "--report", "r.json",
        cwd=tmp_path)
    t, Y = read_vectors(tmp_path / "out.parquet")
    assert t.column_names == ["id", "tag", "embedding"]
    assert Y.dtype == dtype
    np.testing.assert_array_equal(t.column("id").to_numpy(), np.arange(len(X)))
    # The reference is scikit-learn in float64 on the same (float32-stored) values: we compute
    # (x - mean_) / scale_ in float64 and round once, so for float32 we are within half an
    # ulp of it, while scikit-learn's own float32 transform subtracts in float32 (off by up to
    # 7e-5 here, where offsets reach 1e3).
    ref = sklearn.preprocessing.StandardScaler().fit(X.astype(np.float64))
    np.testing.assert_allclose(Y, ref.transform(X.astype(np.float64)), atol=1e-5)
    report = json.loads((tmp_path / "r.json").read_text())
    np.testing.assert_allclose(report["scaler"]["mean"], ref.mean_, rtol=1e-6)
    np.testing.assert_allclose(report["scaler"]["scale"], ref.scale_, rtol=1e-6)


def test_evaluate_matches_sklearn(tmp_path):
    rng = np.random.default_rng(1)
    centers = rng.normal(scale=4, size=(6, 10))
    y = rng.integers(0, 6, 3000)
    X = (centers[y] + rng.normal(size=(3000, 10))).astype(np.float32)
    write_vectors(tmp_path / "x.parquet", X, label=[f"c{v}" for v in y])
    cli("run", "x.parquet", "--n-clusters", "5", "--reduce", "none", "--metric", "euclidean",
        "--output", "c.parquet", cwd=tmp_path)
    cli("evaluate", "c.parquet", "--labels", "label", "--embeddings", "x.parquet",
        "--output", "e.json", cwd=tmp_path)
    e = json.loads((tmp_path / "e.json").read_text())
    pred = pq.read_table(tmp_path / "c.parquet").column("cluster").to_numpy()
    ext, inn = e["external"], e["internal"]
    assert abs(ext["adjusted_rand_score"] - skm.adjusted_rand_score(y, pred)) < 1e-9
    assert abs(ext["adjusted_mutual_info_score"] - skm.adjusted_mutual_info_score(y, pred)) < 1e-9
    assert abs(ext["v_measure"] - skm.v_measure_score(y, pred)) < 1e-9
    assert abs(inn["silhouette_score"] - skm.silhouette_score(X.astype(np.float64), pred)) < 1e-5
    assert abs(inn["davies_bouldin_score"] - skm.davies_bouldin_score(X, pred)) < 1e-5
    ch = skm.calinski_harabasz_score(X.astype(np.float64), pred)
    assert abs(inn["calinski_harabasz_score"] - ch) < 1e-6 * ch


def test_neighbors_cli_matches_bruteforce(tmp_path):
    rng = np.random.default_rng(2)
    base = rng.normal(size=(3000, 20)).astype(np.float32)
    np.save(tmp_path / "q.npy", base[:100])
    write_vectors(tmp_path / "b.parquet", base)
    cli("neighbors", "--base", "b.parquet", "--queries", "q.npy", "-k", "10", "--exclude-self",
        "--output", "nn.parquet", cwd=tmp_path)
    t = pq.read_table(tmp_path / "nn.parquet")
    ids = np.stack(t.column("neighbor_ids").to_numpy(zero_copy_only=False))
    b64 = base.astype(np.float64)
    d2 = ((b64[:100, None, :] - b64[None, :, :]) ** 2).sum(-1)
    d2[np.arange(100), np.arange(100)] = np.inf
    want = np.argsort(d2, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(ids, want)


@pytest.mark.skipif(not SHARED.exists(), reason="needs ../shared/data")
def test_sweep_on_the_debian_set(tmp_path):
    cli("sweep", SHARED, "--n-clusters", "10:30:10", "--reduce", "pca:64", "--metric", "cosine",
        "--silhouette-sample", "3000", "--output", "sw", cwd=tmp_path)
    rows = json.loads((tmp_path / "sw.json").read_text())["rows"]
    assert [r["k"] for r in rows] == [10, 20, 30]
    assert rows[0]["objective"] > rows[1]["objective"] > rows[2]["objective"]
    assert all(-1 <= r["silhouette"] <= 1 and r["davies_bouldin"] > 0 for r in rows)
    assert (tmp_path / "sw.svg").read_text().startswith("<svg")


@pytest.mark.parametrize("command", ["evaluate", "sweep"])
def test_a_closed_stdout_ends_quietly_with_exit_0(tmp_path, command):
    """`embedcluster evaluate ... | head -n 0`: the reader is gone before the first line;
    the command stops quietly with exit code 0 (as ripgrep), no "Broken pipe" error."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 8)).astype(np.float32)
    write_vectors(tmp_path / "x.parquet", X, label=np.repeat(np.arange(3), 200))
    cli("run", "x.parquet", "--n-clusters", "3", "--reduce", "none", "--output", "c.parquet",
        cwd=tmp_path)
    if command == "evaluate":
        args = f"evaluate c.parquet --labels label --embeddings x.parquet"
    else:
        args = f"sweep x.parquet --n-clusters 2:4 --output sw --silhouette-sample 100"
    r = subprocess.run(f"set -o pipefail; '{BIN}' {args} | head -n 0", shell=True, cwd=tmp_path,
                       capture_output=True, text=True, executable="/bin/bash")
    assert r.returncode == 0, r.stderr
    assert "Broken pipe" not in r.stderr and "internal error" not in r.stderr, r.stderr
