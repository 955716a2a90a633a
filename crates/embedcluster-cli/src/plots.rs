//! Pictures and pages drawn by the core ([`embedcluster::report`]), written atomically.

use embedcluster::io::AtomicFile;
use embedcluster::jobs::run::RunOutput;
use embedcluster::jobs::sweep::SweepReport;
use embedcluster::report;
use std::io::Write;
use std::path::Path;

/// Writes `text` to `path` (a temporary file, then a rename).
pub fn save(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.file().write_all(text.as_bytes())?;
    f.commit()?;
    Ok(())
}

/// The sweep: objective (elbow), silhouette and Davies-Bouldin per k.
pub fn sweep_svg(path: &Path, r: &SweepReport) -> anyhow::Result<()> {
    save(path, &report::sweep_svg(r)?)
}

/// The run's `--plot`: cluster sizes and per-stage seconds and peak RSS.
pub fn run_svg(path: &Path, out: &RunOutput) -> anyhow::Result<()> {
    save(path, &report::run_svg(&report::RunView::of(&out.report)?)?)
}

/// The run's `--html` page.
pub fn run_html(path: &Path, out: &RunOutput) -> anyhow::Result<()> {
    let dim = out.report.n_components;
    let map = report::centroid_map(&out.cluster_centers, dim);
    let html = report::run_html(
        &report::RunView::of(&out.report)?,
        out.summary.as_deref(),
        &map,
    )?;
    save(path, &html)
}
