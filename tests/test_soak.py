"""No leaks: long loops in one Python process, many CLI runs, and the CLI under valgrind's
memcheck (issue 18).

- 1,000 ``predict`` calls and 200 ``fit`` calls (k-means, PCA, scaler, the one-call pipeline)
  in one fresh process: its RSS after the loop is within 10 MiB of its RSS after a warm-up of
  the same calls;
- 200 ``embedcluster predict`` runs: the last runs' peak RSS is within 10 MiB of the first
  runs', and no temporary file is left;
- ``run``, ``predict``, ``neighbors`` and ``evaluate`` under ``valgrind --leak-check=full``:
  no definitely or indirectly lost bytes.
"""

import json
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

BIN = ROOT / "target" / "release" / "embedcluster"
MIB = 1 << 20

SOAK = r"""
import gc, json, sys
import numpy as np
import embedcluster as ec

rng = np.random.default_rng(0)
X = rng.standard_normal((3000, 32)).astype(np.float32)
Q = rng.standard_normal((400, 32)).astype(np.float32)
km = ec.KMeans(n_clusters=8, random_state=0).fit(X)
model = ec.cluster_embeddings(X, n_clusters=6, reduce="pca:8", random_state=0).model

def predicts(n):
    for i in range(n):
        km.predict(Q)
        if i % 4 == 0:
            km.transform(Q)
            model.predict(Q)

def fits(n):
    for i in range(n):
        [lambda: ec.KMeans(n_clusters=8, random_state=i, max_iter=20).fit(X),
         lambda: ec.PCA(8).fit(X),
         lambda: ec.StandardScaler().fit(X),
         lambda: ec.cluster_embeddings(X, n_clusters=6, reduce="pca:8", random_state=i),
         ][i % 4]()

import ctypes, os
libc = ctypes.CDLL("libc.so.6")

def rss():
    gc.collect()
    libc.malloc_trim(0)  # free heap back to the kernel: what remains is held
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

predicts(int(sys.argv[1]) // 10)
fits(int(sys.argv[2]) // 10)
warm = rss()
predicts(int(sys.argv[1]))
fits(int(sys.argv[2]))
print(json.dumps({"warm": warm, "after": rss()}))
"""


def test_a_thousand_predicts_and_two_hundred_fits_do_not_grow_the_process():
    r = subprocess.run([sys.executable, "-c", SOAK, "1000", "200"], capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    growth = out["after"] - out["warm"]
    assert growth < 10 * MIB, f"RSS grew {growth / MIB:.1f} MiB after warm-up ({out})"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    if not BIN.exists():
        pytest.skip("build with cargo build --release")
    d = tmp_path_factory.mktemp("soak")
    src = d / "x.parquet"
    r = subprocess.run([str(BIN), "generate", "--n-samples", "3000", "--n-features", "32",
                        "--n-clusters", "5", "--output", src], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(BIN), "run", src, "--n-clusters", "5", "--reduce", "pca:8",
                        "--labels", "label", "--output", d / "out.parquet", "--model", d / "model"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return d, src


def test_two_hundred_cli_runs_keep_their_peak_and_leave_nothing(small):
    d, src = small
    work = d / "runs"
    work.mkdir()
    peaks = []
    for i in range(200):
        # the report's peak is the run's VmHWM (a wait4 of our own would also count the
        # RSS of this pytest process, which the child's high-water mark starts from)
        r = subprocess.run([str(BIN), "predict", str(src), "--model", str(d / "model"),
                            "--output", str(work / "pred.parquet"), "--report",
                            str(work / "report.json")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        peaks.append(json.loads((work / "report.json").read_text())["peak_rss_bytes"])
    first, last = sorted(peaks[:20])[10], sorted(peaks[-20:])[10]  # medians of 20
    assert last - first < 10 * MIB, (first / MIB, last / MIB)
    assert sorted(p.name for p in work.iterdir()) == ["pred.parquet", "report.json"]


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_the_cli_has_no_definite_leaks_under_memcheck(small, tmp_path):
    d, src = small
    cmds = {
        "run": ["run", src, "--n-clusters", "5", "--reduce", "pca:8", "--threads", "2",
                "--output", tmp_path / "o.parquet", "--report", tmp_path / "r.json"],
        "predict": ["predict", src, "--model", d / "model", "--output", tmp_path / "p.parquet"],
        "neighbors": ["neighbors", "--base", src, "--queries", src, "--k", "5", "--output", tmp_path / "n.parquet"],
        "evaluate": ["evaluate", d / "out.parquet", "--labels", "label"],
    }
    for name, args in cmds.items():
        log = tmp_path / f"{name}.valgrind"
        r = subprocess.run(["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                            "--error-exitcode=99", f"--log-file={log}", str(BIN), *map(str, args)],
                           capture_output=True, text=True, timeout=900)
        text = log.read_text()
        assert r.returncode == 0, (name, r.returncode, r.stderr[-2000:], text[-3000:])
        assert "ERROR SUMMARY: 0 errors" in text, (name, text[-3000:])
        summary = [l for l in text.splitlines() if "definitely lost:" in l or "indirectly lost:" in l]
        for line in summary:
            assert " 0 bytes in 0 blocks" in line, (name, line)
