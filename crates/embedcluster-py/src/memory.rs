//! Memory and time figures of this process, for Python's stage reports.

use pyo3::prelude::*;

/// Peak RSS of this process in bytes (`VmHWM`).
#[pyfunction]
pub fn peak_rss_bytes() -> u64 {
    embedcluster::memory::peak_rss_bytes()
}

/// Resets the peak-RSS high-water mark; False where not possible.
#[pyfunction]
pub fn reset_peak_rss() -> bool {
    embedcluster::memory::reset_peak_rss()
}

/// CPU seconds used so far by this process (all threads).
#[pyfunction]
pub fn cpu_seconds() -> f64 {
    embedcluster::memory::cpu_seconds()
}
