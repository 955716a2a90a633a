//! `embedcluster run`: the main job.

use crate::args::RunArgs;
use crate::plots;
use crate::render::{print_table, runtime, Bars};
use embedcluster::io::AtomicFile;
use embedcluster::jobs::run::{run_full, PcaFit, Reduce, RunConfig, Spill};
use embedcluster::linalg::Distance;
use embedcluster::summary::SummaryParams;
use std::io::Write;

pub fn run(a: RunArgs) -> anyhow::Result<()> {
    let bars = Bars::new();
    let rt = runtime(a.threads, &bars);
    let cfg = RunConfig {
        inputs: a.inputs,
        column: a.column,
        n_clusters: a.n_clusters,
        reduce: a.reduce.parse::<Reduce>()?,
        pca_fit: a.pca_fit.parse::<PcaFit>()?,
        metric: a.metric.parse::<Distance>()?,
        init: a.init.to_init()?,
        n_init: a.n_init,
        init_trials: a.init.init_trials,
        init_size: a.init.init_size,
        pruning: embedcluster::cluster::Pruning::from_name(&a.init.pruning)?,
        algorithm: a.algorithm.parse()?,
        max_iter: a.max_iter,
        tol: a.tol,
        seed: a.seed,
        batch_rows: match a.batch_rows {
            Some(0) => anyhow::bail!("--batch-rows must be at least 1"),
            Some(b) => b,
            None => 0,
        },
        memory_limit: a
            .memory_limit
            .as_deref()
            .map(embedcluster::jobs::plan::parse_bytes)
            .transpose()?,
        output: if a.no_output { None } else { Some(a.output) },
        model: a.model,
        labels_column: a.labels,
        on_invalid: a.on_invalid.parse()?,
        spill: match (a.spill, a.no_spill) {
            (Some(dir), _) => Spill::Always(dir),
            (None, true) => Spill::Never,
            (None, false) => Spill::Auto,
        },
        calibrate: false,
        summary: a.summary,
        // the HTML page shows the summaries too
        summarize: a.html.is_some(),
        text_column: a.text_column,
        summary_params: SummaryParams {
            n_representatives: a.representatives,
            n_keywords: a.keywords,
            max_entries: a.keyword_entries,
            ..SummaryParams::default()
        },
    };
    if let Some(p) = &a.report {
        // Fail before the work if the report cannot be written.
        drop(AtomicFile::create(p)?);
    }
    for p in [&a.plot, &a.html].into_iter().flatten() {
        drop(AtomicFile::create(p)?);
    }
    let out = run_full(&cfg, &rt)?;
    if let Some(p) = &a.plot {
        plots::run_svg(p, &out)?;
    }
    if let Some(p) = &a.html {
        plots::run_html(p, &out)?;
    }
    let report = out.report;
    if let Some(p) = &a.report {
        let mut f = AtomicFile::create(p)?;
        serde_json::to_writer_pretty(f.file(), &report)?;
        f.file().write_all(b"\n")?;
        f.commit()?;
    }
    if let Some(s) = &report.spill {
        eprintln!(
            "spilled the reduced matrix to {} ({}, removed)",
            s.path.display(),
            embedcluster::memory::format_bytes(s.bytes)
        );
    }
    print_table(&report);
    Ok(())
}
