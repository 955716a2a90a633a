#!/usr/bin/env bash
# The benchmark against scikit-learn, FAISS and rustcluster (issue 5; not part of the tests).
#   bash bench/run.sh [bench.py options]     e.g. --workloads W2 --repeats 3 --quick
# Creates .venv-bench with the peers from PyPI, builds the CLI and the package, generates
# the data with `embedcluster generate` (seeded, into bench/data/, about 4 GB), and runs
# bench/bench.py: tables on the terminal, JSON in bench/results/bench.json.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p embedcluster-cli
if [ ! -x .venv-bench/bin/python ]; then
    python3 -m venv .venv-bench
fi
.venv-bench/bin/python -m pip install -q --upgrade pip
.venv-bench/bin/python -m pip install -q maturin numpy scikit-learn faiss-cpu rustcluster==0.7.0 pyarrow threadpoolctl
.venv-bench/bin/python -m pip install -q --force-reinstall --no-deps .
exec .venv-bench/bin/python bench/bench.py "$@"
