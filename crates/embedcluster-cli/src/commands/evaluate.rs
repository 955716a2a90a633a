//! `embedcluster evaluate`: external and internal clustering scores.

use crate::args::EvaluateArgs;
use crate::render::{runtime, write_json, Bars};
use embedcluster::io::AtomicFile;
use std::io::Write;

pub fn run(a: EvaluateArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let bars = Bars::new();
    let rt = runtime(a.threads, &bars);
    let cfg = embedcluster::jobs::evaluate::EvaluateConfig {
        clusters: a.clusters,
        cluster_column: a.cluster_column,
        labels_column: a.labels,
        embeddings: a.embeddings,
        column: a.column,
        metric: a.metric.parse()?,
        sample_size: a.sample_size,
        seed: a.seed,
        batch_rows: a.batch_rows,
    };
    for p in [&a.output, &a.html].into_iter().flatten() {
        drop(AtomicFile::create(p)?);
    }
    if let Some(seeds) = &a.seeds {
        let seeds = embedcluster::jobs::sweep::parse_seeds(seeds)?;
        let r = embedcluster::jobs::evaluate::evaluate_seeds(&cfg, &seeds, &rt)?;
        write_json(&a.output, &r)?;
        writeln!(out, "{} seeds: {:?}", r.seeds.len(), r.seeds)?;
        writeln!(
            out,
            "{:<30} {:>10} {:>10} {:>10}",
            "score", "min", "median", "max"
        )?;
        for (name, s) in &r.spread {
            writeln!(
                out,
                "{name:<30} {:>10.6} {:>10.6} {:>10.6}",
                s.min, s.median, s.max
            )?;
        }
        return Ok(());
    }
    let r = embedcluster::jobs::evaluate::evaluate(&cfg, &rt)?;
    write_json(&a.output, &r)?;
    if let Some(p) = &a.html {
        crate::plots::save(p, &embedcluster::report::evaluate_html(&r))?;
    }
    writeln!(out, "rows {}  clusters {}", r.n_samples, r.n_clusters)?;
    if let Some(e) = &r.external {
        writeln!(
            out,
            "adjusted_rand_score           {:.6}",
            e.adjusted_rand_score
        )?;
        writeln!(
            out,
            "normalized_mutual_info_score  {:.6}",
            e.normalized_mutual_info_score
        )?;
        writeln!(
            out,
            "adjusted_mutual_info_score    {:.6}",
            e.adjusted_mutual_info_score
        )?;
        writeln!(out, "homogeneity                   {:.6}", e.homogeneity)?;
        writeln!(out, "completeness                  {:.6}", e.completeness)?;
        writeln!(out, "v_measure                     {:.6}", e.v_measure)?;
    }
    if let Some(i) = &r.internal {
        writeln!(
            out,
            "silhouette_score              {:.6}  ({:?}, {} rows)",
            i.silhouette_score, i.silhouette_metric, i.silhouette_sample_size
        )?;
        writeln!(
            out,
            "davies_bouldin_score          {:.6}",
            i.davies_bouldin_score
        )?;
        writeln!(
            out,
            "calinski_harabasz_score       {:.6}",
            i.calinski_harabasz_score
        )?;
    }
    Ok(())
}
