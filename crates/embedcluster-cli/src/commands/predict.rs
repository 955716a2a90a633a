//! `embedcluster predict`: assign new rows with a saved model.

use crate::args::PredictArgs;
use crate::render::{runtime, write_json, Bars};
use embedcluster::jobs::predict::{predict_file, PredictConfig, Rejection};
use embedcluster::memory::format_mib;

pub fn run(a: PredictArgs) -> anyhow::Result<()> {
    let bars = Bars::new();
    let rt = runtime(a.threads, &bars);
    let rejection = match (a.min_confidence, a.adaptive.as_deref()) {
        (Some(c), _) => Rejection::MinConfidence(c),
        (None, Some(q)) => q.parse::<Rejection>()?,
        (None, None) => Rejection::None,
    };
    let cfg = PredictConfig {
        model: a.model,
        inputs: a.inputs,
        column: a.column,
        output: Some(a.output),
        batch_rows: a.batch_rows,
        rejection,
    };
    let r = predict_file(&cfg, &rt)?;
    write_json(&a.report, &r)?;
    eprintln!(
        "{} rows in {:.2} s ({:.0} rows/s), rejected {} ({:.2} %), peak RSS {}",
        r.n_samples,
        r.n_samples as f64 / r.rows_per_second.max(1e-9),
        r.rows_per_second,
        r.rejected,
        100.0 * r.rejection_rate,
        format_mib(r.peak_rss_bytes)
    );
    Ok(())
}
