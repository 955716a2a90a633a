#!/usr/bin/env python3
"""Run scikit-learn's own test files against our estimators (issue 17).

Copies, at run time, three test files of the *installed* scikit-learn into a temporary
directory (scikit-learn's code is never committed here), swaps one class in each for ours,
runs them with pytest (scikit-learn's conftest loaded as a plugin, for its fixtures), and
compares the failing items with the table in ``docs/sklearn-parity.md``: every row there is
a test-id pattern (fnmatch) and the reason, a feature we document as not offered.

    python scripts/sklearn_parity.py              # run all three, print the comparison
    python scripts/sklearn_parity.py --only pca   # one file
    python scripts/sklearn_parity.py --json out.json

Exit status: 0 when every failing item is in the table, 1 when one is not (it is printed
with its error), 2 on a usage or setup error. Items of the table that now pass are listed
(they can be removed from it).
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "sklearn-parity.md"

# name -> (test file inside sklearn, the line that swaps the class for ours)
SUITES = {
    "kmeans": ("cluster/tests/test_k_means.py", "from embedcluster.cluster import KMeans"),
    "pca": ("decomposition/tests/test_pca.py", "from embedcluster.decomposition import PCA"),
    "scaler": (
        "preprocessing/tests/test_data.py",
        "from embedcluster.preprocessing import StandardScaler",
    ),
}


def swapped_source(src: str, swap: str) -> str:
    """The test module with ``swap`` inserted after its last top-level import, so that every
    use of the class below (decorators included) names ours."""
    tree = ast.parse(src)
    last = max(n.end_lineno for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))
    lines = src.splitlines(keepends=True)
    return "".join(lines[:last]) + f"{swap}  # embedcluster: swapped in\n" + "".join(lines[last:])


def load_table(path: Path = TABLE) -> list[tuple[str, str, str]]:
    """Rows ``(suite, pattern, reason)`` of the markdown table (lines ``| suite | `pattern` |
    reason |``) in the parity document's section "What differs"."""
    rows, inside = [], False
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            inside = line.startswith("## What differs")
        m = inside and re.match(r"^\|\s*(kmeans|pca|scaler)\s*\|\s*`([^`]+)`\s*\|\s*(.+?)\s*\|\s*$", line)
        if m:
            rows.append((m.group(1), m.group(2), m.group(3)))
    return rows


def run_suite(name: str, workdir: Path, extra: list[str]) -> list[dict]:
    """Runs one swapped file; returns one dict per test item: id, outcome, message."""
    import sklearn

    rel, swap = SUITES[name]
    src = Path(sklearn.__file__).parent / rel
    dst = workdir / f"test_{name}_swapped.py"
    dst.write_text(swapped_source(src.read_text(), swap))
    junit = workdir / f"{name}.xml"
    env = dict(os.environ)
    # one BLAS/OpenMP thread per library as scikit-learn's CI does; ours use their own pool
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("SKLEARN_WARNINGS_AS_ERRORS", "0")
    cmd = [sys.executable, "-m", "pytest", str(dst), "-p", "sklearn.conftest", "-q",
           "-p", "no:cacheprovider", "-o", "addopts=", "--rootdir", str(workdir),
           f"--junitxml={junit}", *extra]
    subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    if not junit.exists():
        raise SystemExit(f"pytest wrote no report for {name} ({' '.join(cmd)})")
    items = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        tid = case.get("name", "")
        outcome, message = "passed", ""
        for tag in ("failure", "error"):
            el = case.find(tag)
            if el is not None:
                outcome = "failed"
                message = (el.get("message") or el.text or "").strip().splitlines()
                message = message[0][:300] if message else ""
        if case.find("skipped") is not None:
            outcome = "skipped"
        items.append({"suite": name, "id": tid, "outcome": outcome, "message": message})
    return items


def classify(items: list[dict], table: list[tuple[str, str, str]]):
    """Splits failures into documented (with the table's reason) and unexpected; returns
    also the table rows that matched no failure."""
    documented, unexpected, used = [], [], set()
    for it in items:
        if it["outcome"] != "failed":
            continue
        for i, (suite, pattern, reason) in enumerate(table):
            if suite == it["suite"] and fnmatch.fnmatchcase(it["id"], pattern):
                documented.append({**it, "reason": reason})
                used.add(i)
                break
        else:
            unexpected.append(it)
    stale = [row for i, row in enumerate(table) if i not in used]
    return documented, unexpected, stale


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=sorted(SUITES), action="append")
    ap.add_argument("--json", help="write every item's outcome here")
    ap.add_argument("pytest_args", nargs="*", help="passed on to pytest (after --)")
    a = ap.parse_args(argv)
    table = load_table()
    names = a.only or list(SUITES)
    work = Path(tempfile.mkdtemp(prefix="sklearn-parity-"))
    try:
        items = [it for n in names for it in run_suite(n, work, a.pytest_args)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    documented, unexpected, stale = classify(items, table)
    stale = [r for r in stale if r[0] in names]
    for n in names:
        mine = [it for it in items if it["suite"] == n]
        counts = {o: sum(it["outcome"] == o for it in mine) for o in ("passed", "failed", "skipped")}
        print(f"{n}: {len(mine)} items, {counts['passed']} passed, {counts['failed']} failed "
              f"({sum(d['suite'] == n for d in documented)} documented), {counts['skipped']} skipped")
    for d in documented:
        print(f"  documented  {d['suite']}::{d['id']}  ({d['reason']})")
    for r in stale:
        print(f"  no longer failing (remove from the table): {r[0]} `{r[1]}`")
    for u in unexpected:
        print(f"  UNEXPECTED  {u['suite']}::{u['id']}: {u['message']}")
    if a.json:
        Path(a.json).write_text(json.dumps({"items": items, "unexpected": unexpected}, indent=1))
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
