"""The hostile-input catalogue: every bad input, through the CLI (exit code 2, the exact
message naming file, row and column, no output left behind) and through the Python API
(the exception type, the same message, no output left behind).

The CLI half needs the release binary that `cargo test --release` builds (skipped without
it); the Python half runs on the installed package.
"""

import contextlib
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.exceptions import ConvergenceWarning

import embedcluster as ec
from conftest import ROOT

BIN = ROOT / "target" / "release" / "embedcluster"
needs_bin = pytest.mark.skipif(not BIN.exists(), reason="build with cargo build --release")

N, D = 300, 8


def good_rows(n=N, d=D, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=5.0, size=(3, d))
    return (centers[np.arange(n) % 3] + rng.normal(size=(n, d))).astype(np.float32)


def fixed(X):
    return pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), X.shape[1])


def lists(rows, value_type=pa.float32(), large=False):
    t = pa.large_list(value_type) if large else pa.list_(value_type)
    return pa.array([None if r is None else list(r) for r in rows], type=t)


def write(path, emb, n=None):
    n = len(emb) if n is None else n
    pq.write_table(pa.table({"id": pa.array(range(n), pa.int64()), "embedding": emb}), path,
                   row_group_size=100)
    return path


def with_value(row, col, value):
    X = good_rows().astype(np.float64)
    X[row, col] = value
    return lists(X, pa.float64(), large=True)


def ragged():
    rows = [list(r) for r in good_rows()]
    rows[7] = rows[7][:3]
    return lists(rows)


def null_vector():
    rows = [list(r) for r in good_rows()]
    rows[5] = None
    return lists(rows)


def null_element():
    rows = [list(map(float, r)) for r in good_rows()]
    rows[9][2] = None
    return lists(rows)


def zero_length_first():
    rows = [list(r) for r in good_rows()]
    rows[0] = []
    return lists(rows)


def zero_row():
    X = good_rows()
    X[11] = 0
    return fixed(X)


def typed(value_type):
    X = good_rows()
    if pa.types.is_string(value_type):
        return pa.array([[str(v) for v in r] for r in X], pa.list_(pa.string()))
    return pa.array([list(r.astype(value_type.to_pandas_dtype())) for r in X], pa.list_(value_type))


# (name, builder of the file in `tmp`, extra CLI args, expected message, Python exception)
CASES = [
    ("nan", lambda p: write(p, with_value(250, 3, np.nan)), [],
     "row 250, column `embedding`[3]: value is NaN (embeddings must be finite)", ec.EmbedclusterError),
    ("posinf", lambda p: write(p, with_value(7, 0, np.inf)), [],
     "row 7, column `embedding`[0]: value is inf (embeddings must be finite)", ec.EmbedclusterError),
    ("neginf", lambda p: write(p, with_value(299, 7, -np.inf)), [],
     "row 299, column `embedding`[7]: value is -inf (embeddings must be finite)", ec.EmbedclusterError),
    ("ragged", lambda p: write(p, ragged()), [],
     "row 7, column `embedding`: vector has 3 values, expected 8 (ragged rows)", ec.EmbedclusterError),
    ("null_vector", lambda p: write(p, null_vector()), [],
     "row 5, column `embedding`: the vector is null", ec.EmbedclusterError),
    ("null_element", lambda p: write(p, null_element()), [],
     "row 9, column `embedding`: element 2 is null", ec.EmbedclusterError),
    ("zero_length", lambda p: write(p, zero_length_first()), [],
     "row 0, column `embedding`: zero-length vector", ec.EmbedclusterError),
    ("zero_row_cosine", lambda p: write(p, zero_row()), [],
     "row 11, column `embedding`: the vector is all zeros and cannot be normalized for the cosine metric",
     ec.EmbedclusterError),
    ("int_column", lambda p: write(p, typed(pa.int32())), [],
     "column `embedding`: type list<Int32> is not a list of float32/float64", ec.EmbedclusterError),
    ("float16_column", lambda p: write(p, typed(pa.float16())), [],
     "column `embedding`: type list<Float16> is not a list of float32/float64", ec.EmbedclusterError),
    ("string_column", lambda p: write(p, typed(pa.string())), [],
     "column `embedding`: type list<Utf8> is not a list of float32/float64", ec.EmbedclusterError),
    ("empty_file", lambda p: p.write_bytes(b"") or p, [],
     "cannot read file: file is empty (0 bytes)", ec.EmbedclusterError),
    ("zero_rows", lambda p: write(p, fixed(np.zeros((0, D), np.float32)), n=0), [],
     "file has no rows", ec.EmbedclusterError),
    ("truncated", lambda p: truncated(p), [],
     "cannot read file", ec.EmbedclusterError),
    ("all_duplicates_pca", lambda p: write(p, fixed(np.tile(good_rows()[:1], (N, 1)))), [],
     "every row is the same vector (zero variance): PCA has no direction to keep; do not reduce",
     ec.EmbedclusterError),
    ("too_many_clusters", lambda p: write(p, fixed(good_rows())), ["--n-clusters", "301"],
     "301 is larger than n_samples = 300", ec.EmbedclusterError),
    ("npy_absurd_shape", lambda p: npy_with_header(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 99), }"),
     [], "shape (18446744073709551615, 99) is absurdly large", ec.EmbedclusterError),
    ("npy_huge_shape", lambda p: npy_with_header(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000), }"),
     [], "truncated: header says 1000000000 x 1000 float32", ec.EmbedclusterError),
    ("npy_int_dtype", lambda p: npy_save(p, np.arange(40, dtype=np.int32).reshape(10, 4)), [],
     "dtype <i4 is not supported (expected little-endian float32 '<f4' or float64 '<f8')",
     ec.EmbedclusterError),
    ("npy_big_endian", lambda p: npy_save(p, np.ones((10, 4), dtype=">f4")), [],
     "dtype >f4 is not supported", ec.EmbedclusterError),
]


def truncated(p):
    write(p, fixed(good_rows()))
    b = p.read_bytes()
    p.write_bytes(b[: len(b) // 2])
    return p


def npy_save(p, a):
    p = p.with_suffix(".npy")
    np.save(p, a)
    return p


def npy_with_header(p, dict_text):
    p = p.with_suffix(".npy")
    h = dict_text.encode()
    h += b" " * ((64 - (10 + len(h) + 1) % 64) % 64) + b"\n"
    p.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + b"\0" * 64)
    return p


def listing(d):
    return sorted(p.name for p in pathlib.Path(d).iterdir())


def cli(args, cwd):
    return subprocess.run([str(BIN), *map(str, args)], cwd=cwd, capture_output=True, text=True)


@needs_bin
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_cli_rejects_with_exit_2_and_leaves_nothing(tmp_path, case):
    name, make, extra, message, _ = case
    src = make(tmp_path / f"{name}.parquet")
    before = listing(tmp_path)
    args = ["run", src.name, "--reduce", "pca:4", "--output", "out.parquet", "--report",
            "report.json", "--model", "model"]
    args += extra if extra else ["--n-clusters", "3"]
    r = cli(args, tmp_path)
    assert r.returncode == 2, r.stderr
    assert f"error: {src.name}" in r.stderr or "invalid parameter" in r.stderr, r.stderr
    assert message in r.stderr, r.stderr
    assert "panicked" not in r.stderr
    assert listing(tmp_path) == before
    if name == "too_many_clusters":  # parameters are spelled as this front end's flags
        assert "invalid parameter: --n-clusters 301 is larger" in r.stderr, r.stderr


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_python_raises_the_documented_exception(tmp_path, case):
    name, make, extra, message, exc = case
    src = make(tmp_path / f"{name}.parquet")
    before = listing(tmp_path)
    k = int(extra[1]) if extra else 3
    with pytest.raises(exc) as info:
        ec.cluster_embeddings(src, k, reduce="pca:4", output=tmp_path / "out.parquet")
    assert message in str(info.value)
    assert "--" not in str(info.value)  # Python's parameter names, never CLI flags
    if name == "too_many_clusters":
        assert "invalid parameter: n_clusters = 301 is larger" in str(info.value)
    assert listing(tmp_path) == before


# --- conditions that are reported, not errors ----------------------------------------


def three_distinct_points(p):
    X = np.repeat(np.eye(D, dtype=np.float32)[:3] + 1, 100, axis=0)
    return write(p, fixed(X))


@needs_bin
def test_more_clusters_than_distinct_points_is_reported_and_ends(tmp_path):
    three_distinct_points(tmp_path / "dup.parquet")
    r = cli(["run", "dup.parquet", "--n-clusters", "5", "--reduce", "none", "--metric",
             "euclidean", "--report", "r.json", "--output", "out.parquet"], tmp_path)
    assert r.returncode == 0, r.stderr
    want = ("warning: Number of distinct clusters (3) found smaller than n_clusters (5). "
            "Possibly due to duplicate points in X (2 clusters are empty).")
    assert want in r.stderr
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["warnings"] == [want.removeprefix("warning: ")]
    assert sorted(rep["cluster_sizes"]) == [0, 0, 100, 100, 100]
    assert rep["n_iter"] <= 3


def test_python_warns_on_fewer_distinct_points_than_clusters(tmp_path):
    src = three_distinct_points(tmp_path / "dup.parquet")
    with pytest.warns(ConvergenceWarning, match=r"distinct clusters \(3\).*n_clusters \(5\)"):
        r = ec.cluster_embeddings(src, 5, reduce="none", metric="euclidean")
    assert len(np.unique(r.labels)) == 3
    X = np.repeat(np.eye(4)[:2], 50, axis=0)
    with pytest.warns(ConvergenceWarning, match=r"distinct clusters \(2\)"):
        ec.KMeans(4, random_state=0).fit(X)


@needs_bin
def test_duplicate_rows_only_without_reduction_cluster_into_one(tmp_path):
    write(tmp_path / "same.parquet", fixed(np.tile(good_rows()[:1], (N, 1))))
    r = cli(["run", "same.parquet", "--n-clusters", "1", "--reduce", "none", "--report",
             "r.json"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["cluster_sizes"] == [N]


# --- --on-invalid skip ----------------------------------------------------------------


def test_skip_invalid_rows_keeps_alignment_and_counts(tmp_path):
    X = good_rows().astype(np.float64)
    rows = [list(r) for r in X]
    rows[3][1] = np.nan
    rows[40] = None
    rows[41][0] = np.inf
    rows[299] = [0.0] * D
    src = write(tmp_path / "bad.parquet", lists(rows, pa.float64()))
    out = tmp_path / "out.parquet"
    r = ec.cluster_embeddings(src, 3, reduce="pca:4", on_invalid="skip", output=out)
    bad = [3, 40, 41, 299]
    assert r.report["skipped_rows"] == 4 and r.report["skipped_examples"] == bad
    assert len(r.labels) == N and list(np.flatnonzero(r.labels < 0)) == bad
    assert np.isnan(r.scores[bad]).all() and np.isfinite(np.delete(r.scores, bad)).all()
    t = pq.read_table(out)
    assert t.column("id").to_pylist() == list(range(N))
    assert np.array_equal(t.column("cluster").to_numpy(), r.labels)
    # the valid rows are clustered exactly as a file holding only them
    keep = np.delete(np.arange(N), bad)
    clean = write(tmp_path / "clean.parquet", lists(X[keep], pa.float64()))
    r2 = ec.cluster_embeddings(clean, 3, reduce="pca:4")
    assert np.array_equal(r2.labels, r.labels[keep])
    # the message names the parameter as Python spells it (never a CLI flag)
    with pytest.raises(ec.EmbedclusterError, match="on_invalid = \"ignore\" is not valid") as e:
        ec.cluster_embeddings(src, 3, on_invalid="ignore")
    assert "--" not in str(e.value)


# --- models ---------------------------------------------------------------------------


@pytest.fixture
def model_dir(tmp_path):
    src = write(tmp_path / "train.parquet", fixed(good_rows()))
    ec.cluster_embeddings(src, 3, reduce="pca:4").model.save(tmp_path / "model")
    return tmp_path / "model"


def broken_models(model_dir, base):
    m = (model_dir / "manifest.json").read_bytes()
    t = (model_dir / "model.safetensors").read_bytes()
    other = json.loads(m)
    other["format_version"] = 99
    cases = {
        "missing_manifest": (None, t, "invalid model: manifest.json: No such file or directory"),
        "missing_tensors": (m, None, "invalid model: model.safetensors: No such file or directory"),
        "truncated_manifest": (m[: len(m) // 2], t, "invalid model: manifest.json: EOF while parsing"),
        "truncated_tensors": (m, t[: len(t) // 2], "model.safetensors does not match manifest.json"),
        "other_version": (json.dumps(other).encode(), t,
                          "format_version Some(99) is not supported (this build reads 1)"),
        "not_json": (b"\x00\x01binary", t, "invalid model: manifest.json: expected value"),
    }
    for name, (mb, tb, msg) in cases.items():
        d = base / name
        d.mkdir()
        if mb is not None:
            (d / "manifest.json").write_bytes(mb)
        if tb is not None:
            (d / "model.safetensors").write_bytes(tb)
        yield name, d, msg


@needs_bin
def test_broken_models_are_refused_by_predict(tmp_path, model_dir):
    write(tmp_path / "new.parquet", fixed(good_rows(50, seed=3)))
    for name, d, msg in broken_models(model_dir, tmp_path):
        before = listing(tmp_path)
        r = cli(["predict", "new.parquet", "--model", d, "--output", "pred.parquet"], tmp_path)
        assert r.returncode == 2, (name, r.stderr)
        assert msg in r.stderr, (name, r.stderr)
        assert listing(tmp_path) == before, name


def test_broken_models_raise_on_load(tmp_path, model_dir):
    for name, d, msg in broken_models(model_dir, tmp_path):
        with pytest.raises(ec.EmbedclusterError) as info:
            ec.load(d)
        assert msg in str(info.value), name


# --- outputs that cannot be written ---------------------------------------------------


@contextlib.contextmanager
def mounted_tmpfs(path, options):
    """A tmpfs at `path` (root only); skips the test where mounting is not allowed."""
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


@contextlib.contextmanager
def readonly_dir(path):
    """A directory this process cannot write into: chmod for ordinary users, a read-only
    tmpfs for root (which ignores permission bits)."""
    if os.geteuid() != 0:
        path.mkdir()
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
    else:
        with mounted_tmpfs(path, "ro,size=1m") as p:
            yield p


@needs_bin
def test_unwritable_outputs_fail_before_the_work(tmp_path):
    src = write(tmp_path / "in.parquet", fixed(good_rows()))
    r = cli(["run", src, "--n-clusters", "3", "--reduce", "pca:4", "--output",
             tmp_path / "no/such/out.parquet"], tmp_path)
    assert r.returncode == 2 and "no/such/out.parquet: directory" in r.stderr
    assert "does not exist" in r.stderr and "kmeans " not in r.stderr
    with readonly_dir(tmp_path / "ro") as ro:
        r = cli(["run", src, "--n-clusters", "3", "--reduce", "pca:4", "--output",
                 ro / "out.parquet"], tmp_path)
        assert r.returncode == 2, r.stderr
        assert f"error: {ro / 'out.parquet'}: " in r.stderr
        assert ("Read-only file system" in r.stderr) or ("Permission denied" in r.stderr)
        assert listing(ro) == []
        with pytest.raises(OSError):
            ec.cluster_embeddings(src, 3, reduce="pca:4", output=ro / "out.parquet")
        assert listing(ro) == []
    with pytest.raises(FileNotFoundError):
        ec.cluster_embeddings(src, 3, reduce="pca:4", output=tmp_path / "no/such/out.parquet")


FULL_DISK_SCRIPT = textwrap.dedent("""
    import resource, sys
    import embedcluster as ec
    resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
    try:
        ec.cluster_embeddings(sys.argv[1], 3, reduce="pca:4", output=sys.argv[2])
    except OSError as e:
        print("OSError:", e)
""")


@needs_bin
def test_a_full_disk_fails_cleanly(tmp_path):
    """The output does not fit: a 64 KiB tmpfs where it can be mounted (ENOSPC), and always
    a 16 KiB file-size limit (EFBIG), through the CLI and Python."""
    X = np.random.default_rng(0).normal(size=(20000, 8)).astype(np.float32)
    src = write(tmp_path / "in.parquet", fixed(X))
    r = subprocess.run(["prlimit", "--fsize=16384", str(BIN), "run", str(src), "--n-clusters",
                        "3", "--reduce", "pca:4", "--output", "out.parquet"], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert "out.parquet" in r.stderr and "File too large" in r.stderr, r.stderr
    assert not list(tmp_path.glob("*out.parquet*"))
    p = subprocess.run([sys.executable, "-c", FULL_DISK_SCRIPT, str(src), str(tmp_path / "py.parquet")],
                       capture_output=True, text=True)
    assert "OSError:" in p.stdout and "File too large" in p.stdout, p.stdout + p.stderr
    assert not list(tmp_path.glob("*py.parquet*"))
    with mounted_tmpfs(tmp_path / "small", "size=64k") as small:
        r = cli(["run", src, "--n-clusters", "3", "--reduce", "pca:4", "--output",
                 small / "out.parquet"], tmp_path)
        assert r.returncode == 2, r.stderr
        assert "No space left on device" in r.stderr, r.stderr
        assert listing(small) == []


# --- memory limits --------------------------------------------------------------------


@needs_bin
def test_a_memory_limit_that_cannot_be_met_stops_before_reading(tmp_path):
    src = write(tmp_path / "in.parquet", fixed(good_rows()))
    r = cli(["run", src, "--n-clusters", "3", "--reduce", "pca:4", "--memory-limit", "1MiB",
             "--output", "o.parquet"], tmp_path)
    assert r.returncode == 2
    assert "error: memory limit 1.0 MiB cannot be met: stage `open` needs about" in r.stderr
    assert not (tmp_path / "o.parquet").exists()
    with pytest.raises(ec.MemoryLimitError, match="memory limit 1.0 MiB cannot be met"):
        ec.cluster_embeddings(src, 3, reduce="pca:4", memory_limit="1MiB")
    with pytest.raises(ec.EmbedclusterError, match="memory_limit = \"lots\" is not a size"):
        ec.cluster_embeddings(src, 3, reduce="pca:4", memory_limit="lots")


# --- interruption ---------------------------------------------------------------------


@needs_bin
def test_ctrl_c_stops_the_run_and_leaves_the_old_output(tmp_path):
    import signal
    import time

    src = tmp_path / "big.parquet"
    r = cli(["generate", "--n-samples", "200000", "--n-features", "256", "--n-clusters", "20",
             "--output", src], tmp_path)
    assert r.returncode == 0, r.stderr
    (tmp_path / "out.parquet").write_bytes(b"previous output")
    (tmp_path / "report.json").write_text("{}")
    p = subprocess.Popen([str(BIN), "run", str(src), "--n-clusters", "20", "--batch-rows", "2000",
                          "--output", "out.parquet", "--report", "report.json", "--model", "m"],
                         cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    time.sleep(0.4)  # inside the first pass (it takes about a second)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted: no output was written" in err
    assert (tmp_path / "out.parquet").read_bytes() == b"previous output"
    assert (tmp_path / "report.json").read_text() == "{}"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["big.parquet", "out.parquet", "report.json"]
