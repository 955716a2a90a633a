//! The command line: every flag name lives here (and in the error rendering's table of
//! core parameter names, `render::flag`).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "embedcluster",
    version,
    about = "Reduce and cluster millions of embeddings in bounded memory"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// How the report measures each stage's peak RSS: `sampled` (default: RSS read every
    /// millisecond; /usr/bin/time and getrusage keep the true whole-run peak) or `reset`
    /// (the kernel's high-water mark reset per stage: exact per stage, but outside tools then
    /// see only the last stage's peak). Also `EMBEDCLUSTER_STAGE_PEAKS`
    #[arg(long, global = true, value_parser = ["sampled", "reset"])]
    pub stage_peaks: Option<String>,
}

#[derive(Subcommand)]
pub enum Command {
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
pub struct EvaluateArgs {
    /// Parquet file with a cluster column (output of `run` or `predict`).
    pub clusters: PathBuf,
    /// A column of true labels in CLUSTERS (integers or strings): external scores.
    #[arg(long)]
    pub labels: Option<String>,
    /// The embeddings the clusters came from (same rows, same order): internal scores.
    #[arg(long)]
    pub embeddings: Option<PathBuf>,
    /// Cluster column in CLUSTERS.
    #[arg(long, default_value = "cluster")]
    pub cluster_column: String,
    /// Embedding column of EMBEDDINGS (Parquet).
    #[arg(long, default_value = "embedding")]
    pub column: String,
    /// Silhouette distance: euclidean, sqeuclidean or cosine.
    #[arg(long, default_value = "euclidean")]
    pub metric: String,
    /// Silhouette on this many sampled rows (default: all rows, exact: O(n^2 d) time).
    #[arg(long)]
    pub sample_size: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 16384)]
    pub batch_rows: usize,
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write the scores as JSON.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Seeds START:STOP (inclusive) or a list: CLUSTERS holds `{seed}` (e.g.
    /// clusters_{seed}.parquet, the outputs of `run --seed S`); prints each score's
    /// min / median / max across them.
    #[arg(long)]
    pub seeds: Option<String>,
    /// Also write a self-contained HTML report of the scores and stages.
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    pub html: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct SweepArgs {
    /// Inputs: .parquet files, directories of Parquet part files (Spark/pyarrow datasets,
    /// key=value partition folders become columns), globs ('data/*.parquet'), and the same on object storage (s3://, gs://, az://, http(s)://;
    /// credentials and endpoint from the AWS_*/GOOGLE_*/AZURE_* environment); several are
    /// read as one table in the order given. A single .npy or .csv file also works.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Values of k: START:STOP[:STEP] (STOP included) or K1,K2,...
    #[arg(long)]
    pub n_clusters: String,
    /// Embedding column (Parquet); for CSV, comma-separated feature columns (default: every numeric column).
    #[arg(long, default_value = "embedding")]
    pub column: String,
    /// Reduction: pca:D, matryoshka:D or none.
    #[arg(long, default_value = "none")]
    pub reduce: String,
    #[arg(long, default_value = "exact")]
    pub pca_fit: String,
    /// cosine (spherical k-means) or euclidean.
    #[arg(long, default_value = "euclidean")]
    pub metric: String,
    #[arg(long, default_value_t = 1)]
    pub n_init: usize,
    #[command(flatten)]
    pub init: InitArgs,
    /// More run seeds per k, START:STOP (inclusive) or a list: the table and JSON add the
    /// min / median / max of the objective and ARI across them.
    #[arg(long)]
    pub seeds: Option<String>,
    #[arg(long, default_value_t = 300)]
    pub max_iter: usize,
    #[arg(long, default_value_t = 1e-4)]
    pub tol: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Rows the silhouette is computed on for each k (the same sample for every k; 0 skips it).
    #[arg(long, default_value_t = 10000)]
    pub silhouette_sample: usize,
    /// A column of true labels: add ARI per k.
    #[arg(long)]
    pub labels: Option<String>,
    #[arg(long, default_value_t = 16384)]
    pub batch_rows: usize,
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output prefix: writes PREFIX.csv, PREFIX.json and PREFIX.svg.
    #[arg(long, default_value = "sweep")]
    pub output: PathBuf,
    /// Also write a self-contained HTML report (table, elbow and silhouette curves, stages).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ScaleArgs {
    /// Inputs: .parquet files, directories of Parquet part files (Spark/pyarrow datasets,
    /// key=value partition folders become columns), globs ('data/*.parquet'), and the same on object storage (s3://, gs://, az://, http(s)://;
    /// credentials and endpoint from the AWS_*/GOOGLE_*/AZURE_* environment); several are
    /// read as one table in the order given. A single .npy or .csv file also works.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Output Parquet: the other columns kept, the embedding column standardized (fixed_size_list).
    #[arg(long)]
    pub output: PathBuf,
    #[arg(long, default_value = "embedding")]
    pub column: String,
    /// Do not subtract the mean.
    #[arg(long)]
    pub no_mean: bool,
    /// Do not divide by the standard deviation.
    #[arg(long)]
    pub no_std: bool,
    #[arg(long, default_value_t = 16384)]
    pub batch_rows: usize,
    /// Write the report (mean_, var_, scale_, stages) as JSON.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct NeighborsArgs {
    /// Base file (.parquet or .npy), streamed block by block.
    #[arg(long)]
    pub base: PathBuf,
    /// Query file (.parquet or .npy), held in memory; same number of features as the base.
    #[arg(long)]
    pub queries: PathBuf,
    /// Neighbours per query.
    #[arg(short = 'k', long = "k")]
    pub k: usize,
    /// l2 (squared Euclidean), ip (inner product, largest first) or cosine (1 - cos).
    #[arg(long, default_value = "l2")]
    pub metric: String,
    /// Query i skips base row i (queries are the first rows of the base, e.g. the same file).
    #[arg(long)]
    pub exclude_self: bool,
    /// Output Parquet: query_id (int64), neighbor_ids (list<int64>), distances (list<float32>).
    #[arg(long)]
    pub output: PathBuf,
    /// Embedding column of both files (Parquet).
    #[arg(long, default_value = "embedding")]
    pub column: String,
    /// Base rows per block (default: as many as fit in 16 MiB).
    #[arg(long)]
    pub batch_rows: Option<usize>,
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write the report (time, peak memory per stage) as JSON.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct PredictArgs {
    /// Inputs: .parquet files, directories of Parquet part files (Spark/pyarrow datasets,
    /// key=value partition folders become columns), globs ('data/*.parquet'), and the same on object storage (s3://, gs://, az://, http(s)://;
    /// credentials and endpoint from the AWS_*/GOOGLE_*/AZURE_* environment); several are
    /// read as one table in the order given. A single .npy or .csv file also works.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Model directory written by `embedcluster run --model DIR`.
    #[arg(long)]
    pub model: PathBuf,
    /// Output Parquet: the input's other columns plus cluster (int32, -1 = rejected), score,
    /// confidence. A path ending in / writes one part per input part, with the same names.
    #[arg(long)]
    pub output: PathBuf,
    /// Reject rows whose confidence (normalized top-2 margin, 0..1) is below this.
    #[arg(long, conflicts_with = "adaptive")]
    pub min_confidence: Option<f32>,
    /// Reject rows whose confidence is below their cluster's training quantile: p5, p10, p25 or p50.
    #[arg(long)]
    pub adaptive: Option<String>,
    #[arg(long, default_value = "embedding")]
    pub column: String,
    #[arg(long, default_value_t = 16384)]
    pub batch_rows: usize,
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write the prediction report (rows/s, rejection rate, per-cluster counts) as JSON.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct DriftArgs {
    /// Inputs: .parquet files, directories of Parquet part files (Spark/pyarrow datasets,
    /// key=value partition folders become columns), globs ('data/*.parquet'), and the same on object storage (s3://, gs://, az://, http(s)://;
    /// credentials and endpoint from the AWS_*/GOOGLE_*/AZURE_* environment); several are
    /// read as one table in the order given. A single .npy or .csv file also works.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Model directory written by `embedcluster run --model DIR`.
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, default_value = "embedding")]
    pub column: String,
    #[arg(long, default_value_t = 16384)]
    pub batch_rows: usize,
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write the drift report as JSON.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// Inputs: .parquet files, directories of Parquet part files (Spark/pyarrow datasets,
    /// key=value partition folders become columns), globs ('data/*.parquet'), and the same on object storage (s3://, gs://, az://, http(s)://;
    /// credentials and endpoint from the AWS_*/GOOGLE_*/AZURE_* environment); several are
    /// read as one table in the order given. A single .npy or .csv file also works.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Number of clusters k.
    #[arg(long)]
    pub n_clusters: usize,
    /// Embedding column (Parquet).
    #[arg(long, default_value = "embedding")]
    pub column: String,
    /// Reduction: pca:D, matryoshka:D or none.
    #[arg(long, default_value = "pca:128")]
    pub reduce: String,
    /// PCA fit: exact (streaming covariance over all rows) or sample:N (randomized SVD on N sampled rows).
    #[arg(long, default_value = "exact")]
    pub pca_fit: String,
    /// cosine (spherical k-means on unit vectors) or euclidean.
    #[arg(long, default_value = "cosine")]
    pub metric: String,
    /// Restarts (each seeded as --init and --init-trials say); the lowest objective wins.
    #[arg(long, default_value_t = 1)]
    pub n_init: usize,
    #[command(flatten)]
    pub init: InitArgs,
    /// k-means algorithm: lloyd (exact, all rows every iteration) or minibatch[:B]
    /// (Sculley 2010: steps of B = 1024 sampled rows, an approximation for very large n;
    /// --max-iter then counts epochs, and stops earlier when the smoothed batch objective
    /// stops improving).
    #[arg(long, default_value = "lloyd")]
    pub algorithm: String,
    /// Maximum Lloyd iterations per restart.
    #[arg(long, default_value_t = 300)]
    pub max_iter: usize,
    /// Relative tolerance on the centroid shift (scikit-learn's definition).
    #[arg(long, default_value_t = 1e-4)]
    pub tol: f64,
    /// Random seed (k-means++, PCA sampling).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Rows per block read from the file (default: planned, about 32 MiB per block).
    /// Results do not depend on it.
    #[arg(long)]
    pub batch_rows: Option<usize>,
    /// Peak memory the run must stay within, e.g. 1GiB or 512MiB: the plan (printed before
    /// any data is read) shrinks the blocks to fit, spills the reduced matrix to a scratch
    /// file if it does not fit, or the run stops at once naming the stage that cannot fit
    /// and what to change. Default budget: the cgroup's memory limit, else the available
    /// memory (a plan over it spills, but is not refused).
    #[arg(long)]
    pub memory_limit: Option<String>,
    /// Keep the reduced matrix in a memory-mapped scratch file in DIR (streamed block by
    /// block in every k-means pass; same labels as in memory), whatever the budget.
    #[arg(long, value_name = "DIR", conflicts_with = "no_spill")]
    pub spill: Option<PathBuf>,
    /// Keep the reduced matrix in memory even when it exceeds the budget.
    #[arg(long)]
    pub no_spill: bool,
    /// Output Parquet: the input's other columns plus `cluster` (int32) and `score` (float32).
    /// A path ending in / writes one part per input part, with the same names. An s3://,
    /// gs:// or az:// URL is uploaded when the run succeeds (nothing appears otherwise).
    #[arg(long, default_value = "clusters.parquet")]
    pub output: PathBuf,
    /// Do not write the output Parquet.
    #[arg(long, conflicts_with = "output")]
    pub no_output: bool,
    /// Save the model (safetensors + manifest.json) into this directory.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Write the run report (stages, time, memory, objective) as JSON.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// A column of true labels: report ARI and NMI against it.
    #[arg(long)]
    pub labels: Option<String>,
    /// Draw cluster sizes and per-stage time and memory into this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Rows with NaN, infinity, nulls or (cosine) all zeros: `error` stops the run naming the
    /// row; `skip` leaves them out of the fit, writes them with cluster -1 and counts them.
    #[arg(long, default_value = "error")]
    pub on_invalid: String,
    /// Write cluster summaries (size, score mean and quantiles, representatives, c-TF-IDF
    /// keywords) here: FILE.json (a list of objects) or FILE.parquet (one row per cluster).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// The text column of the summaries (default: the only string column other than
    /// --labels, if there is exactly one).
    #[arg(long, value_name = "COL")]
    pub text_column: Option<String>,
    /// Representatives per cluster in the summaries: the rows closest to the centroid.
    #[arg(long, default_value_t = 5)]
    pub representatives: usize,
    /// Keywords per cluster in the summaries.
    #[arg(long, default_value_t = 10)]
    pub keywords: usize,
    /// Cap of the keyword count table, in (term, cluster) entries (about 140 bytes each at most).
    #[arg(long, default_value_t = 1 << 19)]
    pub keyword_entries: usize,
    /// Write a self-contained HTML report (stages and memory, cluster sizes, centroid map,
    /// summaries) into this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct GenerateArgs {
    #[arg(long)]
    pub n_samples: usize,
    #[arg(long)]
    pub n_features: usize,
    #[arg(long)]
    pub n_clusters: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output file, .parquet (columns id, label, embedding) or .npy (labels in <stem>.labels.txt);
    /// a path ending in / (or with --parts) is a directory of Parquet parts.
    #[arg(long)]
    pub output: PathBuf,
    /// Parts of a directory output (part-00000.parquet, ...; default 16): together, the
    /// same rows in the same order as the single file, whatever the thread count.
    #[arg(long)]
    pub parts: Option<usize>,
    /// Noise scale; default: calibrated so that true-centre assignment has ARI about 0.92.
    #[arg(long)]
    pub noise: Option<f64>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// How k-means is seeded (shared by `run` and `sweep`).
#[derive(clap::Args)]
pub struct InitArgs {
    /// Seeding: k-means++ (greedy, Arthur and Vassilvitskii 2007), k-means|| (Bahmani et al.
    /// 2012) or random.
    #[arg(long, default_value = "k-means++")]
    pub init: String,
    /// Seedings screened per restart on a uniform sample, each refined there by Lloyd; the
    /// best starts Lloyd on all rows. 1: one seeding on all rows.
    #[arg(long, default_value_t = embedcluster::cluster::DEFAULT_INIT_TRIALS)]
    pub init_trials: usize,
    /// Rows of that sample (default: max(10000, 400 k), at most all rows).
    #[arg(long, default_value_t = 0)]
    pub init_size: usize,
    /// k-means||: expected candidates per round, times k.
    #[arg(long, default_value_t = 2.0)]
    pub oversampling_factor: f64,
    /// k-means||: sampling rounds (passes over the data).
    #[arg(long, default_value_t = 5)]
    pub init_rounds: usize,
    /// Lloyd's assignment by a bound on a prefix subspace: auto (k >= 256), off, or the
    /// prefix's dimensions. The labels are the same either way; only the time differs.
    #[arg(long, default_value = "auto")]
    pub pruning: String,
}

impl InitArgs {
    /// The core's seeding.
    pub fn to_init(&self) -> embedcluster::Result<embedcluster::cluster::Init> {
        use embedcluster::cluster::{Init, ParallelInit};
        let parallel = ParallelInit {
            oversampling_factor: self.oversampling_factor,
            rounds: self.init_rounds,
        };
        Init::from_name(&self.init, parallel)
    }
}
