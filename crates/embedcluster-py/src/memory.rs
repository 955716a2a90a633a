//! Memory and time figures of this process, for Python's stage reports.

use pyo3::prelude::*;

/// Peak RSS of this process in bytes (`VmHWM`).
#[pyfunction]
pub fn peak_rss_bytes() -> u64 {
    embedcluster::memory::peak_rss_bytes()
}

/// Resets the peak-RSS high-water mark; False where not possible. It also lowers what
/// `getrusage` and `/usr/bin/time -v` report: stage reports call it only when
/// `stage_peaks() == "reset"`.
#[pyfunction]
pub fn reset_peak_rss() -> bool {
    embedcluster::memory::reset_peak_rss()
}

/// How stage peaks are measured in this process: `"sampled"` (default) or `"reset"`.
#[pyfunction]
pub fn stage_peaks() -> &'static str {
    embedcluster::memory::stage_peaks().name()
}

/// Sets how stage peaks are measured: `"sampled"` or `"reset"` (ValueError otherwise).
#[pyfunction]
pub fn set_stage_peaks(method: &str) -> PyResult<()> {
    let m = embedcluster::memory::StagePeaks::parse(method)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    embedcluster::memory::set_stage_peaks(m);
    Ok(())
}

/// The core's stage recorder (`embedcluster::memory::StageRecorder`) for the estimators'
/// `fit_report_`: the same measurement as the CLI's reports, by the process's method.
#[pyclass(module = "embedcluster._core")]
pub struct StageRecorder {
    inner: std::sync::Mutex<embedcluster::memory::StageRecorder>,
}

#[pymethods]
impl StageRecorder {
    #[new]
    fn new() -> Self {
        StageRecorder {
            inner: std::sync::Mutex::new(embedcluster::memory::StageRecorder::new()),
        }
    }

    /// Starts stage `name`.
    fn start(&self, name: &str) {
        if let Ok(mut r) = self.inner.lock() {
            r.start(name);
        }
    }

    /// Ends the stage with `rows`; returns JSON `{stage, peak_rss_bytes, stage_peaks}`: the
    /// stage's report (name, seconds, cpu_seconds, rows, peak_rss_bytes), the whole peak so
    /// far and the method's description.
    fn finish(&self, py: Python<'_>, rows: u64) -> String {
        py.detach(|| {
            let Ok(mut r) = self.inner.lock() else {
                return String::new();
            };
            let stage = r.finish(rows).cloned();
            serde_json::json!({
                "stage": stage,
                "peak_rss_bytes": r.peak_rss_bytes(),
                "stage_peaks": r.stage_peaks(),
            })
            .to_string()
        })
    }
}

/// CPU seconds used so far by this process (all threads).
#[pyfunction]
pub fn cpu_seconds() -> f64 {
    embedcluster::memory::cpu_seconds()
}

/// Peak RSS of this process over a span, sampled by a background thread without touching
/// the kernel's counters (`embedcluster::memory::RssSampler`). Starts when created.
///
/// `interval_seconds`: time between samples (default 0.001); a rise and fall shorter than
/// that can be missed. The peak is the whole process's.
#[pyclass(module = "embedcluster._core")]
pub struct RssSampler {
    inner: std::sync::Mutex<embedcluster::memory::RssSampler>,
}

#[pymethods]
impl RssSampler {
    #[new]
    #[pyo3(signature = (interval_seconds=0.001))]
    fn new(interval_seconds: f64) -> PyResult<Self> {
        if !(interval_seconds > 0.0 && interval_seconds <= 60.0) {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "interval_seconds must be in (0, 60], got {interval_seconds}"
            )));
        }
        Ok(RssSampler {
            inner: std::sync::Mutex::new(embedcluster::memory::RssSampler::start(
                std::time::Duration::from_secs_f64(interval_seconds),
            )),
        })
    }

    /// The peak so far, in bytes.
    #[getter]
    fn peak_bytes(&self) -> u64 {
        self.inner.lock().map(|s| s.peak_bytes()).unwrap_or(0)
    }

    /// Stops sampling; returns the peak in bytes (the same on every later call).
    fn stop(&self, py: Python<'_>) -> u64 {
        py.detach(|| self.inner.lock().map(|mut s| s.stop()).unwrap_or(0))
    }
}
