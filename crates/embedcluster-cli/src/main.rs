//! `embedcluster`: a thin command line over the embedcluster core crate.
//!
//! Exit codes: 0 success, 2 any error (bad input, bad parameters, I/O), with one line on
//! stderr naming the file, row and column where they apply.

use anyhow::Context;
use clap::{Parser, Subcommand};
use embedcluster::cluster::Metric;
use embedcluster::datasets::{generate, GenerateParams};
use embedcluster::io::AtomicFile;
use embedcluster::memory::format_mib;
use embedcluster::pipeline::{self, PcaFit, Progress, Reduce, RunConfig, RunReport};
use embedcluster::predict::{drift, predict_file, PredictConfig, Rejection};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;

mod plots;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

#[derive(Parser)]
#[command(
    name = "embedcluster",
    version,
    about = "Reduce and cluster millions of embeddings in bounded memory"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stream a Parquet or .npy file, reduce (PCA / Matryoshka), cluster, write labels and a report.
    Run(RunArgs),
    /// Write a synthetic, labelled embedding-like set (the benchmark workload).
    Generate(GenerateArgs),
    /// Assign new rows with a saved model (`run --model DIR`): cluster, score, confidence.
    Predict(PredictArgs),
    /// Compare new rows with a saved model's training distribution.
    Drift(DriftArgs),
    /// Exact top-k neighbours of every query row among the base rows (blocked GEMM, bounded heaps).
    Neighbors(NeighborsArgs),
    /// Score a clustering output: against true labels (ARI, NMI, AMI, V-measure) and/or the embeddings (silhouette, Davies-Bouldin, Calinski-Harabasz).
    Evaluate(EvaluateArgs),
    /// Reduce once, fit k-means for each k, and tabulate and plot objective, silhouette and Davies-Bouldin.
    Sweep(SweepArgs),
    /// Standardize features (StandardScaler): fit mean and variance in pass 1, write standardized rows in pass 2.
    Scale(ScaleArgs),
}

#[derive(clap::Args)]
struct EvaluateArgs {
    /// Parquet file with a cluster column (output of `run` or `predict`).
    clusters: PathBuf,
    /// A column of true labels in CLUSTERS (integers or strings): external scores.
    #[arg(long)]
    labels: Option<String>,
    /// The embeddings the clusters came from (same rows, same order): internal scores.
    #[arg(long)]
    embeddings: Option<PathBuf>,
    /// Cluster column in CLUSTERS.
    #[arg(long, default_value = "cluster")]
    cluster_column: String,
    /// Embedding column of EMBEDDINGS (Parquet).
    #[arg(long, default_value = "embedding")]
    column: String,
    /// Silhouette distance: euclidean, sqeuclidean or cosine.
    #[arg(long, default_value = "euclidean")]
    metric: String,
    /// Silhouette on this many sampled rows (default: all rows, exact: O(n^2 d) time).
    #[arg(long)]
    sample_size: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 16384)]
    batch_rows: usize,
    #[arg(long)]
    threads: Option<usize>,
    /// Write the scores as JSON.
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SweepArgs {
    /// Input file: .parquet, .npy or .csv (numeric columns).
    input: PathBuf,
    /// Values of k: START:STOP[:STEP] (STOP included) or K1,K2,...
    #[arg(long)]
    n_clusters: String,
    /// Embedding column (Parquet); for CSV, comma-separated feature columns (default: every numeric column).
    #[arg(long, default_value = "embedding")]
    column: String,
    /// Reduction: pca:D, matryoshka:D or none.
    #[arg(long, default_value = "none")]
    reduce: String,
    #[arg(long, default_value = "exact")]
    pca_fit: String,
    /// cosine (spherical k-means) or euclidean.
    #[arg(long, default_value = "euclidean")]
    metric: String,
    #[arg(long, default_value_t = 1)]
    n_init: usize,
    #[arg(long, default_value_t = 300)]
    max_iter: usize,
    #[arg(long, default_value_t = 1e-4)]
    tol: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Rows the silhouette is computed on for each k (the same sample for every k; 0 skips it).
    #[arg(long, default_value_t = 10000)]
    silhouette_sample: usize,
    /// A column of true labels: add ARI per k.
    #[arg(long)]
    labels: Option<String>,
    #[arg(long, default_value_t = 16384)]
    batch_rows: usize,
    #[arg(long)]
    threads: Option<usize>,
    /// Output prefix: writes PREFIX.csv, PREFIX.json and PREFIX.svg.
    #[arg(long, default_value = "sweep")]
    output: PathBuf,
}

#[derive(clap::Args)]
struct ScaleArgs {
    /// Input file (.parquet, .npy or .csv).
    input: PathBuf,
    /// Output Parquet: the other columns kept, the embedding column standardized (fixed_size_list).
    #[arg(long)]
    output: PathBuf,
    #[arg(long, default_value = "embedding")]
    column: String,
    /// Do not subtract the mean.
    #[arg(long)]
    no_mean: bool,
    /// Do not divide by the standard deviation.
    #[arg(long)]
    no_std: bool,
    #[arg(long, default_value_t = 16384)]
    batch_rows: usize,
    /// Write the report (mean_, var_, scale_, stages) as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
}

fn cmd_evaluate(a: EvaluateArgs) -> anyhow::Result<()> {
    set_threads(a.threads)?;
    let cfg = embedcluster::evaluate::EvaluateConfig {
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
    if let Some(p) = &a.output {
        drop(AtomicFile::create(p)?);
    }
    let r = embedcluster::evaluate::evaluate(&cfg)?;
    write_json(&a.output, &r)?;
    println!("rows {}  clusters {}", r.n_samples, r.n_clusters);
    if let Some(e) = &r.external {
        println!("adjusted_rand_score           {:.6}", e.adjusted_rand_score);
        println!(
            "normalized_mutual_info_score  {:.6}",
            e.normalized_mutual_info_score
        );
        println!(
            "adjusted_mutual_info_score    {:.6}",
            e.adjusted_mutual_info_score
        );
        println!("homogeneity                   {:.6}", e.homogeneity);
        println!("completeness                  {:.6}", e.completeness);
        println!("v_measure                     {:.6}", e.v_measure);
    }
    if let Some(i) = &r.internal {
        println!(
            "silhouette_score              {:.6}  ({:?}, {} rows)",
            i.silhouette_score, i.silhouette_metric, i.silhouette_sample_size
        );
        println!(
            "davies_bouldin_score          {:.6}",
            i.davies_bouldin_score
        );
        println!(
            "calinski_harabasz_score       {:.6}",
            i.calinski_harabasz_score
        );
    }
    Ok(())
}

fn with_ext(prefix: &std::path::Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn cmd_sweep(a: SweepArgs) -> anyhow::Result<()> {
    set_threads(a.threads)?;
    let mut run = RunConfig::new(&a.input, 1);
    run.column = a.column;
    run.reduce = a.reduce.parse::<Reduce>()?;
    run.pca_fit = a.pca_fit.parse::<PcaFit>()?;
    run.metric = a.metric.parse::<Metric>()?;
    run.n_init = a.n_init;
    run.max_iter = a.max_iter;
    run.tol = a.tol;
    run.seed = a.seed;
    run.batch_rows = a.batch_rows;
    run.labels_column = a.labels;
    let cfg = embedcluster::sweep::SweepConfig {
        run,
        ks: embedcluster::sweep::parse_ks(&a.n_clusters)?,
        silhouette_sample: a.silhouette_sample,
    };
    let (csv, json, svg) = (
        with_ext(&a.output, "csv"),
        with_ext(&a.output, "json"),
        with_ext(&a.output, "svg"),
    );
    for p in [&csv, &json, &svg] {
        drop(AtomicFile::create(p)?);
    }
    let r = embedcluster::sweep::sweep(&cfg, &Bars(Mutex::new(None)))?;
    let mut f = AtomicFile::create(&csv)?;
    f.file()
        .write_all(embedcluster::sweep::to_csv(&r).as_bytes())?;
    f.commit()?;
    write_json(&Some(json.clone()), &r)?;
    plots::sweep_svg(&svg, &r)?;
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into());
    println!(
        "{:>5} {:>14} {:>6} {:>10} {:>8} {:>8} {:>9} {:>10}",
        "k", "objective", "iter", "silhouette", "db", "ari", "seconds", "peak_rss"
    );
    for row in &r.rows {
        println!(
            "{:>5} {:>14.4} {:>6} {:>10} {:>8} {:>8} {:>9.3} {:>10}",
            row.k,
            row.objective,
            row.n_iter,
            opt(row.silhouette),
            opt(row.davies_bouldin),
            opt(row.ari),
            row.seconds,
            format_mib(row.peak_rss_bytes)
        );
    }
    eprintln!(
        "wrote {}, {} and {}",
        csv.display(),
        json.display(),
        svg.display()
    );
    Ok(())
}

fn cmd_scale(a: ScaleArgs) -> anyhow::Result<()> {
    if let Some(p) = &a.report {
        drop(AtomicFile::create(p)?);
    }
    let r = embedcluster::preprocessing::scale_file(
        &a.input,
        &a.column,
        &a.output,
        a.batch_rows,
        !a.no_mean,
        !a.no_std,
        &Bars(Mutex::new(None)),
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

#[derive(clap::Args)]
struct NeighborsArgs {
    /// Base file (.parquet or .npy), streamed block by block.
    #[arg(long)]
    base: PathBuf,
    /// Query file (.parquet or .npy), held in memory; same number of features as the base.
    #[arg(long)]
    queries: PathBuf,
    /// Neighbours per query.
    #[arg(short = 'k', long = "k")]
    k: usize,
    /// l2 (squared Euclidean), ip (inner product, largest first) or cosine (1 - cos).
    #[arg(long, default_value = "l2")]
    metric: String,
    /// Query i skips base row i (queries are the first rows of the base, e.g. the same file).
    #[arg(long)]
    exclude_self: bool,
    /// Output Parquet: query_id (int64), neighbor_ids (list<int64>), distances (list<float32>).
    #[arg(long)]
    output: PathBuf,
    /// Embedding column of both files (Parquet).
    #[arg(long, default_value = "embedding")]
    column: String,
    /// Base rows per block (default: as many as fit in 16 MiB).
    #[arg(long)]
    batch_rows: Option<usize>,
    #[arg(long)]
    threads: Option<usize>,
    /// Write the report (time, peak memory per stage) as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
}

fn cmd_neighbors(a: NeighborsArgs) -> anyhow::Result<()> {
    set_threads(a.threads)?;
    let cfg = embedcluster::neighbors::NeighborsConfig {
        base: a.base,
        queries: a.queries,
        column: a.column,
        k: a.k,
        metric: a.metric.parse()?,
        exclude_self: a.exclude_self,
        batch_rows: a.batch_rows,
        output: Some(a.output),
    };
    let r = embedcluster::neighbors::search_files(&cfg, &Bars(Mutex::new(None)))?;
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

#[derive(clap::Args)]
struct PredictArgs {
    /// Input file (.parquet or .npy), with the model's number of features.
    input: PathBuf,
    /// Model directory written by `embedcluster run --model DIR`.
    #[arg(long)]
    model: PathBuf,
    /// Output Parquet: the input's other columns plus cluster (int32, -1 = rejected), score, confidence.
    #[arg(long)]
    output: PathBuf,
    /// Reject rows whose confidence (normalized top-2 margin, 0..1) is below this.
    #[arg(long, conflicts_with = "adaptive")]
    min_confidence: Option<f32>,
    /// Reject rows whose confidence is below their cluster's training quantile: p5, p10, p25 or p50.
    #[arg(long)]
    adaptive: Option<String>,
    #[arg(long, default_value = "embedding")]
    column: String,
    #[arg(long, default_value_t = 16384)]
    batch_rows: usize,
    #[arg(long)]
    threads: Option<usize>,
    /// Write the prediction report (rows/s, rejection rate, per-cluster counts) as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
}

#[derive(clap::Args)]
struct DriftArgs {
    /// New rows (.parquet or .npy).
    input: PathBuf,
    /// Model directory written by `embedcluster run --model DIR`.
    #[arg(long)]
    model: PathBuf,
    #[arg(long, default_value = "embedding")]
    column: String,
    #[arg(long, default_value_t = 16384)]
    batch_rows: usize,
    #[arg(long)]
    threads: Option<usize>,
    /// Write the drift report as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
}

fn write_json(path: &Option<PathBuf>, value: &impl serde::Serialize) -> anyhow::Result<()> {
    if let Some(p) = path {
        let mut f = AtomicFile::create(p)?;
        serde_json::to_writer_pretty(f.file(), value)?;
        f.file().write_all(b"\n")?;
        f.commit()?;
    }
    Ok(())
}

fn cmd_predict(a: PredictArgs) -> anyhow::Result<()> {
    set_threads(a.threads)?;
    let rejection = match (a.min_confidence, a.adaptive.as_deref()) {
        (Some(c), _) => Rejection::MinConfidence(c),
        (None, Some(q)) => q.parse::<Rejection>()?,
        (None, None) => Rejection::None,
    };
    let cfg = PredictConfig {
        model: a.model,
        input: a.input,
        column: a.column,
        output: Some(a.output),
        batch_rows: a.batch_rows,
        rejection,
    };
    let r = predict_file(&cfg, &Bars(Mutex::new(None)))?;
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

fn cmd_drift(a: DriftArgs) -> anyhow::Result<()> {
    set_threads(a.threads)?;
    let r = drift(
        &a.model,
        &a.input,
        &a.column,
        a.batch_rows,
        &Bars(Mutex::new(None)),
    )?;
    write_json(&a.report, &r)?;
    println!("{}", r.verdict);
    Ok(())
}

#[derive(clap::Args)]
struct RunArgs {
    /// Input file: .parquet (embedding column of list/large_list/fixed_size_list of float32/float64) or .npy (2-D float32/float64).
    input: PathBuf,
    /// Number of clusters k.
    #[arg(long)]
    n_clusters: usize,
    /// Embedding column (Parquet).
    #[arg(long, default_value = "embedding")]
    column: String,
    /// Reduction: pca:D, matryoshka:D or none.
    #[arg(long, default_value = "pca:128")]
    reduce: String,
    /// PCA fit: exact (streaming covariance over all rows) or sample:N (randomized SVD on N sampled rows).
    #[arg(long, default_value = "exact")]
    pca_fit: String,
    /// cosine (spherical k-means on unit vectors) or euclidean.
    #[arg(long, default_value = "cosine")]
    metric: String,
    /// k-means++ restarts; the lowest objective wins.
    #[arg(long, default_value_t = 1)]
    n_init: usize,
    /// Maximum Lloyd iterations per restart.
    #[arg(long, default_value_t = 300)]
    max_iter: usize,
    /// Relative tolerance on the centroid shift (scikit-learn's definition).
    #[arg(long, default_value_t = 1e-4)]
    tol: f64,
    /// Random seed (k-means++, PCA sampling).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Rows per block read from the file (default: planned, about 32 MiB per block).
    /// Results do not depend on it.
    #[arg(long)]
    batch_rows: Option<usize>,
    /// Peak memory the run must stay within, e.g. 1GiB or 512MiB: the plan (printed before
    /// any data is read) shrinks the blocks to fit, or the run stops at once naming the
    /// stage that cannot fit and what to change.
    #[arg(long)]
    memory_limit: Option<String>,
    /// Output Parquet: the input's other columns plus `cluster` (int32) and `score` (float32).
    #[arg(long, default_value = "clusters.parquet")]
    output: PathBuf,
    /// Do not write the output Parquet.
    #[arg(long, conflicts_with = "output")]
    no_output: bool,
    /// Save the model (safetensors + manifest.json) into this directory.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Write the run report (stages, time, memory, objective) as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
    /// A column of true labels: report ARI and NMI against it.
    #[arg(long)]
    labels: Option<String>,
    /// Draw cluster sizes and per-stage time and memory into this SVG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Rows with NaN, infinity, nulls or (cosine) all zeros: `error` stops the run naming the
    /// row; `skip` leaves them out of the fit, writes them with cluster -1 and counts them.
    #[arg(long, default_value = "error")]
    on_invalid: String,
}

#[derive(clap::Args)]
struct GenerateArgs {
    #[arg(long)]
    n_samples: usize,
    #[arg(long)]
    n_features: usize,
    #[arg(long)]
    n_clusters: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output file, .parquet (columns id, label, embedding) or .npy (labels in <stem>.labels.txt).
    #[arg(long)]
    output: PathBuf,
    /// Noise scale; default: calibrated so that true-centre assignment has ARI about 0.92.
    #[arg(long)]
    noise: Option<f64>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// indicatif bars on stderr (hidden when stderr is not a terminal).
struct Bars(Mutex<Option<ProgressBar>>);

impl Progress for Bars {
    fn begin(&self, stage: &str, total: Option<u64>) {
        let bar = match total {
            Some(t) => {
                let b = ProgressBar::new(t);
                b.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>10} [{bar:30}] {pos}/{len} rows {per_sec} eta {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                b
            }
            None => {
                let b = ProgressBar::new_spinner();
                b.enable_steady_tick(std::time::Duration::from_millis(200));
                b
            }
        };
        bar.set_prefix(stage.to_string());
        *self.0.lock().expect("not poisoned") = Some(bar);
    }
    fn advance(&self, rows: u64) {
        if let Some(b) = self.0.lock().expect("not poisoned").as_ref() {
            b.inc(rows);
        }
    }
    fn end(&self) {
        if let Some(b) = self.0.lock().expect("not poisoned").take() {
            b.finish_and_clear();
        }
    }
    fn plan(&self, plan: &embedcluster::plan::MemoryPlan) {
        let limit = plan
            .limit_bytes
            .map(|l| format!(", limit {}", embedcluster::plan::format_bytes(l)))
            .unwrap_or_default();
        eprint!(
            "memory plan ({} rows per block{limit}), predicted peak per stage:\n{}",
            plan.batch_rows,
            plan.describe()
        );
    }
}

fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
    if let Some(t) = threads {
        anyhow::ensure!(t >= 1, "--threads must be at least 1");
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .context("cannot start the thread pool")?;
    }
    Ok(())
}

fn print_table(r: &RunReport) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(
        e,
        "{:<12} {:>9} {:>9} {:>10} {:>12} {:>12}",
        "stage", "seconds", "cpu_s", "rows", "peak_rss", "predicted"
    );
    for s in &r.stages {
        let _ = writeln!(
            e,
            "{:<12} {:>9.3} {:>9.3} {:>10} {:>12} {:>12}",
            s.name,
            s.seconds,
            s.cpu_seconds,
            s.rows,
            format_mib(s.peak_rss_bytes),
            s.predicted_peak_rss_bytes
                .map(format_mib)
                .unwrap_or_else(|| "-".into())
        );
    }
    let total: f64 = r.stages.iter().map(|s| s.seconds).sum();
    let cpu: f64 = r.stages.iter().map(|s| s.cpu_seconds).sum();
    let _ = writeln!(
        e,
        "{:<12} {:>9.3} {:>9.3} {:>10} {:>12}",
        "total",
        total,
        cpu,
        r.n_samples,
        format_mib(r.peak_rss_bytes)
    );
    let _ = writeln!(
        e,
        "{} x {} {} -> {} ({}{}), k = {}, metric {:?}: {} iterations{}, objective {:.6}",
        r.n_samples,
        r.n_features,
        r.dtype.name(),
        r.n_components,
        r.reduce,
        r.pca_fit
            .as_ref()
            .map(|f| format!(", {f}"))
            .unwrap_or_default(),
        r.n_clusters,
        r.metric,
        r.n_iter,
        if r.converged { " (converged)" } else { "" },
        r.objective
    );
    if let Some(ev) = r.explained_variance_ratio_sum {
        let _ = writeln!(e, "explained variance ratio (sum): {ev:.4}");
    }
    if let (Some(ari), Some(nmi)) = (r.ari, r.nmi) {
        let _ = writeln!(e, "against labels: ARI {ari:.4}  NMI {nmi:.4}");
    }
    if r.skipped_rows > 0 {
        let _ = writeln!(
            e,
            "skipped {} invalid rows (cluster -1 in the output), first: {:?}",
            r.skipped_rows, r.skipped_examples
        );
    }
    for w in &r.warnings {
        let _ = writeln!(e, "warning: {w}");
    }
}

fn cmd_run(a: RunArgs) -> anyhow::Result<()> {
    set_threads(a.threads)?;
    let cfg = RunConfig {
        input: a.input,
        column: a.column,
        n_clusters: a.n_clusters,
        reduce: a.reduce.parse::<Reduce>()?,
        pca_fit: a.pca_fit.parse::<PcaFit>()?,
        metric: a.metric.parse::<Metric>()?,
        n_init: a.n_init,
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
            .map(embedcluster::plan::parse_bytes)
            .transpose()?,
        output: if a.no_output { None } else { Some(a.output) },
        model: a.model,
        labels_column: a.labels,
        on_invalid: a.on_invalid.parse()?,
    };
    if let Some(p) = &a.report {
        // Fail before the work if the report cannot be written.
        drop(AtomicFile::create(p)?);
    }
    if let Some(p) = &a.plot {
        drop(AtomicFile::create(p)?);
    }
    let report = pipeline::run(&cfg, &Bars(Mutex::new(None)))?;
    if let Some(p) = &a.plot {
        plots::run_svg(p, &report)?;
    }
    if let Some(p) = &a.report {
        let mut f = AtomicFile::create(p)?;
        serde_json::to_writer_pretty(f.file(), &report)?;
        f.file().write_all(b"\n")?;
        f.commit()?;
    }
    print_table(&report);
    Ok(())
}

fn cmd_generate(a: GenerateArgs) -> anyhow::Result<()> {
    set_threads(a.threads)?;
    let bars = Bars(Mutex::new(None));
    let start = std::time::Instant::now();
    bars.begin("generate", Some(a.n_samples as u64));
    let done = std::sync::atomic::AtomicU64::new(0);
    let sigma = generate(
        GenerateParams {
            n_samples: a.n_samples,
            n_features: a.n_features,
            n_clusters: a.n_clusters,
            seed: a.seed,
            noise: a.noise,
        },
        &a.output,
        &|rows| {
            let before = done.swap(rows, std::sync::atomic::Ordering::Relaxed);
            bars.advance(rows - before);
        },
    )?;
    bars.end();
    eprintln!(
        "wrote {} rows x {} features, {} clusters (noise sigma {sigma:.4}) to {} in {:.1} s",
        a.n_samples,
        a.n_features,
        a.n_clusters,
        a.output.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

extern "C" fn on_sigint(_: libc::c_int) {
    // async-signal-safe: one atomic store, then the default action for a second Ctrl-C
    embedcluster::io::request_cancel();
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

/// The last panic's message and location, for the one-line internal error (the default
/// hook would print a backtrace hint even for panics the core catches and reports).
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn main() -> ExitCode {
    // before any thread exists: the decoder threads' freed batches must go back to the OS
    embedcluster::memory::single_malloc_arena();
    let cli = Cli::parse();
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(format!("{msg}{at}"));
        }
    }));
    // Ctrl-C stops the job at its next block or iteration; temporary outputs are removed
    // on the way out (exit code 130).
    // A file-size limit (ulimit -f) makes writes fail with EFBIG, reported like any other
    // write error, instead of killing the process with SIGXFSZ mid-write.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let result = std::panic::catch_unwind(move || match cli.command {
        Command::Run(a) => cmd_run(a),
        Command::Generate(a) => cmd_generate(a),
        Command::Predict(a) => cmd_predict(a),
        Command::Drift(a) => cmd_drift(a),
        Command::Neighbors(a) => cmd_neighbors(a),
        Command::Evaluate(a) => cmd_evaluate(a),
        Command::Sweep(a) => cmd_sweep(a),
        Command::Scale(a) => cmd_scale(a),
    });
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            if matches!(
                e.downcast_ref::<embedcluster::Error>(),
                Some(embedcluster::Error::Interrupted)
            ) {
                eprintln!("interrupted: no output was written");
                return ExitCode::from(130);
            }
            // The core's messages already name the file and the OS error; anyhow's chain
            // would repeat the latter.
            match e.downcast_ref::<embedcluster::Error>() {
                Some(core) => eprintln!("error: {core}"),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::from(2)
        }
        Err(_) => {
            let what = LAST_PANIC
                .lock()
                .ok()
                .and_then(|l| l.clone())
                .unwrap_or_default();
            eprintln!("error: internal error (a bug in embedcluster; please report it with the command line): {what}");
            ExitCode::from(2)
        }
    }
}
