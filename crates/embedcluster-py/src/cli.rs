//! The command line for the Python package's `embedcluster` console script
//! (`embedcluster._cli`): the CLI crate's whole program, run with the GIL released.

use pyo3::prelude::*;
use std::ffi::OsString;

/// Runs `embedcluster` with `argv` (the program name first) and returns its exit code (0,
/// 2 for an error, 130 when interrupted). It installs the CLI's own Ctrl-C handler, and
/// `--help` or an argument error exits the process as the binary does: call it only as a
/// program's entry point.
#[pyfunction]
pub fn cli_main(py: Python<'_>, argv: Vec<OsString>) -> u8 {
    py.detach(|| embedcluster_cli::main_from(argv))
}
