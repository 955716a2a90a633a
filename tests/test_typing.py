"""Typed Python (issue 19): the native module's stubs match it (mypy's stubtest), and a
script using the public API passes ``mypy --strict`` against the installed package."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("mypy")


def _run(*args, cwd):
    r = subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True,
                       timeout=600)
    return r.returncode, r.stdout + r.stderr


def test_stubs_of_the_native_module_match_it(tmp_path):
    # run outside the checkout so that the installed package (with its built _core) is read
    rc, out = _run("mypy.stubtest", "embedcluster._core", cwd=tmp_path)
    assert rc == 0, out
    assert "Success" in out


def test_the_public_api_passes_mypy_strict(tmp_path):
    import embedcluster

    assert (Path(embedcluster.__file__).parent / "py.typed").exists()
    script = tmp_path / "typed_usage.py"
    script.write_text((ROOT / "examples" / "typed_usage.py").read_text())
    cache = ["--cache-dir", str(tmp_path / "cache")]
    rc, out = _run("mypy", "--strict", *cache, str(script), cwd=tmp_path)
    assert rc == 0, out
    # and a wrong use is caught: the annotations are real, not Any
    bad = tmp_path / "bad.py"
    bad.write_text("import embedcluster as ec\nx: str = ec.KMeans(3).fit([[0.0]]).inertia_\n")
    rc, out = _run("mypy", "--strict", *cache, str(bad), cwd=tmp_path)
    assert rc == 1 and 'Incompatible types in assignment (expression has type "float"' in out, out
