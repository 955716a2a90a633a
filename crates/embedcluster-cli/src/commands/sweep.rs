//! `embedcluster sweep`: k-means for several k, with a table, JSON and an SVG plot.

use crate::args::SweepArgs;
use crate::plots;
use crate::render::{runtime, with_ext, write_json, Bars};
use embedcluster::io::AtomicFile;
use embedcluster::jobs::run::{PcaFit, Reduce, RunConfig};
use embedcluster::linalg::Distance;
use embedcluster::memory::format_mib;
use std::io::Write;

pub fn run(a: SweepArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let bars = Bars::new();
    let rt = runtime(a.threads, &bars);
    let mut run = RunConfig::new(std::path::PathBuf::new(), 1);
    run.inputs = a.inputs.clone();
    run.column = a.column;
    run.reduce = a.reduce.parse::<Reduce>()?;
    run.pca_fit = a.pca_fit.parse::<PcaFit>()?;
    run.metric = a.metric.parse::<Distance>()?;
    run.n_init = a.n_init;
    run.init = a.init.to_init()?;
    run.init_trials = a.init.init_trials;
    run.init_size = a.init.init_size;
    run.pruning = embedcluster::cluster::Pruning::from_name(&a.init.pruning)?;
    run.max_iter = a.max_iter;
    run.tol = a.tol;
    run.seed = a.seed;
    run.batch_rows = a.batch_rows;
    run.labels_column = a.labels;
    let cfg = embedcluster::jobs::sweep::SweepConfig {
        run,
        ks: embedcluster::jobs::sweep::parse_ks(&a.n_clusters)?,
        silhouette_sample: a.silhouette_sample,
        seeds: match &a.seeds {
            Some(s) => embedcluster::jobs::sweep::parse_seeds(s)?,
            None => Vec::new(),
        },
    };
    let (csv, json, svg) = (
        with_ext(&a.output, "csv"),
        with_ext(&a.output, "json"),
        with_ext(&a.output, "svg"),
    );
    for p in [Some(&csv), Some(&json), Some(&svg), a.html.as_ref()]
        .into_iter()
        .flatten()
    {
        drop(AtomicFile::create(p)?);
    }
    let r = embedcluster::jobs::sweep::sweep(&cfg, &rt)?;
    let mut f = AtomicFile::create(&csv)?;
    f.file()
        .write_all(embedcluster::jobs::sweep::to_csv(&r).as_bytes())?;
    f.commit()?;
    write_json(&Some(json.clone()), &r)?;
    plots::sweep_svg(&svg, &r)?;
    if let Some(p) = &a.html {
        plots::save(p, &embedcluster::report::sweep_html(&r)?)?;
    }
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into());
    writeln!(
        out,
        "{:>5} {:>14} {:>6} {:>10} {:>8} {:>8} {:>9} {:>10}",
        "k", "objective", "iter", "silhouette", "db", "ari", "seconds", "peak_rss"
    )?;
    for row in &r.rows {
        writeln!(
            out,
            "{:>5} {:>14.4} {:>6} {:>10} {:>8} {:>8} {:>9.3} {:>10}",
            row.k,
            row.objective,
            row.n_iter,
            opt(row.silhouette),
            opt(row.davies_bouldin),
            opt(row.ari),
            row.seconds,
            format_mib(row.peak_rss_bytes)
        )?;
    }
    if r.rows.iter().any(|row| row.seed_spread.is_some()) {
        writeln!(
            out,
            "\nacross seeds:\n{:>5} {:>6} {:>38} {:>23} {:>9}",
            "k", "seeds", "objective min / median / max", "ari min / median / max", "fit s med"
        )?;
        for row in &r.rows {
            if let Some(sp) = &row.seed_spread {
                let o = sp.objective;
                let a = sp
                    .ari
                    .map(|a| format!("{:.4} / {:.4} / {:.4}", a.min, a.median, a.max))
                    .unwrap_or_else(|| "-".into());
                writeln!(
                    out,
                    "{:>5} {:>6} {:>38} {:>23} {:>9.3}",
                    row.k,
                    sp.seeds.len(),
                    format!("{:.4} / {:.4} / {:.4}", o.min, o.median, o.max),
                    a,
                    sp.fit_seconds.median
                )?;
            }
        }
    }
    eprintln!(
        "wrote {}, {} and {}",
        csv.display(),
        json.display(),
        svg.display()
    );
    Ok(())
}
