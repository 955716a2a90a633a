"""The memory plan against the kernel's figures, and the canonical run under a hard cap.

Needs the release binary that `cargo test --release` builds. The per-stage figures need a
kernel that can reset the peak-RSS mark (`/proc/self/clear_refs`); elsewhere the stage
figures are cumulative and the comparison is skipped.
"""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import ROOT, SHARED

BIN = ROOT / "target" / "release" / "embedcluster"
pytestmark = pytest.mark.skipif(not BIN.exists(), reason="build with cargo build --release")


def can_reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@pytest.mark.skipif(not SHARED.exists(), reason="needs ../shared/data")
@pytest.mark.skipif(not can_reset_peak(), reason="per-stage peaks need /proc/self/clear_refs")
@pytest.mark.parametrize("fit", ["exact", "sample:10000"])
def test_predicted_peaks_are_within_25_percent_on_the_debian_set(tmp_path, fit):
    r = subprocess.run([str(BIN), "run", str(SHARED), "--n-clusters", "53", "--pca-fit", fit,
                        "--labels", "label", "--output", "out.parquet", "--report", "r.json"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "memory plan (" in r.stderr  # printed before any data is read
    rep = json.loads((tmp_path / "r.json").read_text())
    plan = {s["name"]: s["peak_bytes"] for s in rep["memory_plan"]["stages"]}
    stages = rep["stages"]
    assert [s["name"] for s in stages] == list(plan)
    for s in stages:
        pred, meas = s["predicted_peak_rss_bytes"], s["peak_rss_bytes"]
        assert pred == plan[s["name"]]
        assert abs(pred - meas) <= 0.25 * meas, (s["name"], pred / 2**20, meas / 2**20)


def test_a_memory_limit_shrinks_the_blocks_and_is_kept(tmp_path):
    """A limit just above what the reduced data needs: the plan halves the block until
    every stage fits, and the run's whole-process peak stays under it."""
    src = tmp_path / "x.parquet"
    r = subprocess.run([str(BIN), "generate", "--n-samples", "60000", "--n-features", "768",
                        "--n-clusters", "10", "--output", src], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    free = subprocess.run([str(BIN), "run", src, "--n-clusters", "10", "--no-output",
                           "--report", tmp_path / "free.json"], capture_output=True, text=True)
    assert free.returncode == 0, free.stderr
    fr = json.loads((tmp_path / "free.json").read_text())
    need = max(s["peak_bytes"] for s in fr["memory_plan"]["stages"])
    limit = need - (12 << 20)
    env = dict(os.environ, EMBEDCLUSTER_RSS_RESET="0")  # whole-process peak, never reset
    r = subprocess.run([str(BIN), "run", src, "--n-clusters", "10", "--no-output", "--memory-limit",
                        str(limit), "--report", tmp_path / "cap.json"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stderr
    cap = json.loads((tmp_path / "cap.json").read_text())
    assert cap["memory_plan"]["batch_rows"] < fr["memory_plan"]["batch_rows"]
    assert max(s["peak_bytes"] for s in cap["memory_plan"]["stages"]) <= limit
    assert cap["peak_rss_bytes"] <= limit
    # same clustering whatever the block size
    assert cap["objective"] == fr["objective"] and cap["cluster_sizes"] == fr["cluster_sizes"]


def writable_memory_cgroup():
    if os.geteuid() != 0:
        return False
    v2 = pathlib.Path("/sys/fs/cgroup/cgroup.subtree_control")
    return (v2.exists() and os.access(v2, os.W_OK)) or pathlib.Path("/sys/fs/cgroup/memory").is_dir()


@pytest.mark.skipif(not writable_memory_cgroup(), reason="needs a writable memory cgroup (root)")
def test_canonical_run_completes_under_a_1gib_cgroup(tmp_path):
    """312,000 x 1536 float32 Parquet (1.9 GB, generated) -> PCA 128 -> k = 50, exact and
    sampled fit, inside a memory cgroup capped at 1 GiB (scripts/memory_cap.sh)."""
    if shutil.disk_usage(tmp_path).free < 6 << 30:
        pytest.skip("needs 6 GB of free disk for the generated canonical file")
    r = subprocess.run(["bash", str(ROOT / "scripts" / "memory_cap.sh"), "1G", str(tmp_path)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "cap: cgroup" in r.stdout
    for fit in ["exact", "sample:50000"]:
        assert f"== --pca-fit {fit}: exit 0," in r.stdout, r.stdout
        rep = json.loads((tmp_path / f"report_{fit}.json").read_text())
        assert rep["n_samples"] == 312000 and rep["ari"] > 0.75
