//! `embedcluster neighbors`: exact top-k neighbours.

use crate::args::NeighborsArgs;
use crate::render::{runtime, write_json, Bars};
use embedcluster::memory::format_mib;

pub fn run(a: NeighborsArgs) -> anyhow::Result<()> {
    let bars = Bars::new();
    let rt = runtime(a.threads, &bars);
    let cfg = embedcluster::jobs::neighbors::NeighborsConfig {
        base: a.base,
        queries: a.queries,
        column: a.column,
        k: a.k,
        metric: a.metric.parse()?,
        exclude_self: a.exclude_self,
        batch_rows: a.batch_rows,
        output: Some(a.output),
    };
    let r = embedcluster::jobs::neighbors::search_files(&cfg, &rt)?;
    write_json(&a.report, &r)?;
    let secs: f64 = r.stages.iter().map(|s| s.seconds).sum();
    eprintln!(
        "{} queries x {} base rows x {} features, top {}: {:.2} s, peak RSS {}",
        r.n_queries,
        r.n_base,
        r.n_features,
        r.k,
        secs,
        format_mib(r.peak_rss_bytes)
    );
    Ok(())
}
