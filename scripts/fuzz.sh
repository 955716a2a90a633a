#!/usr/bin/env bash
# Fuzzes the input parsers with libFuzzer (cargo-fuzz), each for SECONDS (default 600);
# TARGETS="a b" picks some:
#   npy_header        the .npy header parser
#   model_loader      manifest.json + model.safetensors -> a usable model
#   parquet_column    any bytes as a Parquet file -> embedding blocks
#   csv_reader        any bytes as a CSV file -> embedding blocks
#   arrow_ffi_import  a foreign producer's list arrays through the Arrow C data interface
#   model_pair        mutated tensors under a manifest whose checksum matches them
# Properties: embedcluster::fuzzing. A crash is written to fuzz/artifacts/TARGET/; copy it to
# crates/embedcluster/tests/fuzz_regressions/TARGET/ so that `cargo test` runs it again.
# cargo-fuzz needs nightly-only compiler flags (sanitizers); RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH=${1:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
export RUSTC_BOOTSTRAP=1
for t in ${TARGETS:-npy_header model_loader parquet_column csv_reader arrow_ffi_import model_pair}; do
    mkdir -p "corpus/$t"
    cargo fuzz run -O "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096
done
