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
        r.n_queries, r.n_base, r.n_features, r.k, secs, format_mib(r.peak_rss_bytes)
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
    /// Rows per block read from the file.
    #[arg(long, default_value_t = 16384)]
    batch_rows: usize,
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
        "{:<12} {:>9} {:>9} {:>10} {:>12}",
        "stage", "seconds", "cpu_s", "rows", "peak_rss"
    );
    for s in &r.stages {
        let _ = writeln!(
            e,
            "{:<12} {:>9.3} {:>9.3} {:>10} {:>12}",
            s.name,
            s.seconds,
            s.cpu_seconds,
            s.rows,
            format_mib(s.peak_rss_bytes)
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
        batch_rows: a.batch_rows,
        output: if a.no_output { None } else { Some(a.output) },
        model: a.model,
        labels_column: a.labels,
    };
    if let Some(p) = &a.report {
        // Fail before the work if the report cannot be written.
        drop(AtomicFile::create(p)?);
    }
    let report = pipeline::run(&cfg, &Bars(Mutex::new(None)))?;
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = std::panic::catch_unwind(move || match cli.command {
        Command::Run(a) => cmd_run(a),
        Command::Generate(a) => cmd_generate(a),
        Command::Predict(a) => cmd_predict(a),
        Command::Drift(a) => cmd_drift(a),
        Command::Neighbors(a) => cmd_neighbors(a),
    });
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(_) => {
            eprintln!("error: internal error (a bug in embedcluster; please report it with the command line)");
            ExitCode::from(2)
        }
    }
}
