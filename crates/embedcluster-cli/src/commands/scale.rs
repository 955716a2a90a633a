//! `embedcluster scale`: standardize a file into Parquet.

use crate::args::ScaleArgs;
use crate::render::{runtime, write_json, Bars};
use embedcluster::io::AtomicFile;
use embedcluster::memory::format_mib;

pub fn run(a: ScaleArgs) -> anyhow::Result<()> {
    let bars = Bars::new();
    let rt = runtime(None, &bars);
    if let Some(p) = &a.report {
        drop(AtomicFile::create(p)?);
    }
    let r = embedcluster::jobs::scale::scale_file(
        &a.inputs,
        &a.column,
        &a.output,
        a.batch_rows,
        !a.no_mean,
        !a.no_std,
        &rt,
    )?;
    write_json(&a.report, &r)?;
    let secs: f64 = r.stages.iter().map(|s| s.seconds).sum();
    eprintln!(
        "standardized {} rows x {} features into {} in {:.2} s, peak RSS {}",
        r.n_samples,
        r.n_features,
        a.output.display(),
        secs,
        format_mib(r.peak_rss_bytes)
    );
    Ok(())
}
