//! `embedcluster` reports: the core's HTML pages ([`embedcluster::report`]) for results
//! Python holds.

use crate::errors::{to_py, value_error};
use embedcluster::report::{centroid_map, run_html, stages_fragment, RunView};
use embedcluster::summary::ClusterSummary;
use numpy::{PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// The run page of a run report (JSON text), its summaries (JSON text of the list, or None)
/// and its centroids (float64, k x D), as `embedcluster run --html` writes it.
#[pyfunction]
#[pyo3(signature = (report, summary, cluster_centers))]
pub fn render_run_html(
    report: &str,
    summary: Option<&str>,
    cluster_centers: PyReadonlyArray2<'_, f64>,
) -> PyResult<String> {
    let view = RunView::from_json(report).map_err(to_py)?;
    let summary: Option<Vec<ClusterSummary>> = match summary {
        Some(s) => Some(serde_json::from_str(s).map_err(|e| value_error(format!("summary: {e}")))?),
        None => None,
    };
    let dim = cluster_centers.shape()[1];
    let centers: Vec<f64> = cluster_centers.as_array().iter().copied().collect();
    run_html(&view, summary.as_deref(), &centroid_map(&centers, dim)).map_err(to_py)
}

/// A notebook's view of a fit report: a title, the stages (JSON list of stage objects with
/// `name`, `seconds`, `cpu_seconds`, `rows`, `peak_rss_bytes`, `predicted_peak_rss_bytes`)
/// and the peak RSS (bytes).
#[pyfunction]
pub fn render_stages_html(title: &str, stages: &str, peak_rss_bytes: u64) -> PyResult<String> {
    let stages: Vec<embedcluster::memory::StageReport> =
        serde_json::from_str(stages).map_err(|e| value_error(format!("stages: {e}")))?;
    Ok(stages_fragment(title, &stages, peak_rss_bytes))
}
