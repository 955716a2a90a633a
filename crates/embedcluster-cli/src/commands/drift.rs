//! `embedcluster drift`: compare new rows with a model's training distribution.

use crate::args::DriftArgs;
use crate::render::{runtime, write_json, Bars};
use embedcluster::jobs::predict::drift;
use std::io::Write;

pub fn run(a: DriftArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let bars = Bars::new();
    let rt = runtime(a.threads, &bars);
    let r = drift(&a.model, &a.inputs, &a.column, a.batch_rows, &rt)?;
    write_json(&a.report, &r)?;
    writeln!(out, "{}", r.verdict)?;
    Ok(())
}
