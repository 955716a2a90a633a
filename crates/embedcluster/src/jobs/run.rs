//! The main job, end to end: stream a file, fit the reduction, project, cluster, write.
//!
//! Stages and their peak memory (`n` rows, `d` features, `D` components, `k` clusters,
//! `b` = `batch_rows`, `s` = bytes per element of the input dtype):
//!
//! | stage | holds |
//! |---|---|
//! | `pca_fit` (pass 1, exact) | block `b d s` + Arrow batch + covariance state (`2 d^2 8 + d^2 s`) |
//! | `pca_fit` (pass 1, sample:N) | block `b d s` + sample `N d s` + moments `2 d 8` |
//! | `pca_solve` | covariance + eigensolver workspace (`~5 d^2 8`), or the randomized SVD's `2 N l s` |
//! | `transform` (pass 2) | block `b d s` + reduced data `n D s` |
//! | `kmeans` | reduced data + labels, distances, norms (`n (4 + 2 s)`) + `16 k D 8` |
//! | `write` (pass 3) | reduced data + one batch of the other columns |
//!
//! So the whole run holds the reduced data and one block, never the `n x d` input.
//!
//! Every front end drives this job: the CLI (`embedcluster run`), Python's
//! `cluster_embeddings` for paths, and (stage by stage) the Spark and Python in-memory
//! paths, which call the same steps ([`crate::pipeline`]) and the same k-means driver
//! ([`crate::cluster`]).

use crate::cluster::{self, Init, KMeansParams, Metric};
use crate::decomposition::{
    randomized_pca, CovarianceAccumulator, Pca, RandomizedOptions, ReservoirSampler,
};
use crate::dtype::{DType, Real};
use crate::error::{Error, Result};
pub use crate::io::OnInvalid;
use crate::io::{EmbeddingSource, OutputWriter};
use crate::memory::{StageRecorder, StageReport};
use crate::metrics::{adjusted_rand_score, normalized_mutual_info_score};
use crate::persist::FitParams;
use crate::pipeline::{calibrate, steps_for, ClusterCalibration, FittedPipeline};
pub use crate::pipeline::{PcaFit, Reduce};
use crate::preprocessing::{l2_normalize_rows, MomentsAccumulator};
use crate::runtime::{Cancel, Progress, Runtime};
use crate::summary::{ClusterSummary, SummaryBuilder, SummaryInfo, SummaryParams};
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The spill file of a run: created in `dir`, unlinked at once (nothing is left behind
/// on any exit), `bytes` long.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SpillReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub reason: String,
}

/// Where the reduced matrix (`n x D`) is kept during k-means.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Spill {
    /// In memory, unless the memory plan finds that it does not fit the budget (the
    /// memory limit, else the cgroup limit, else the available memory): then in a spill
    /// file in the system's temporary directory (`TMPDIR`).
    #[default]
    Auto,
    /// Always in a spill file in this directory (`--spill DIR`).
    Always(PathBuf),
    /// Always in memory (`--no-spill`).
    Never,
}

/// The k-means algorithm of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// Lloyd's iterations on all rows (exact; the default).
    #[default]
    Lloyd,
    /// Mini-batch k-means (Sculley 2010; [`cluster::fit_minibatch`]) with `batch_size` rows
    /// per step: an approximation, for speed at very large `n`.
    MiniBatch { batch_size: usize },
}

impl std::str::FromStr for Algorithm {
    type Err = Error;
    /// `lloyd` or `minibatch` (`minibatch:B` for `B` rows per step; default 1024).
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::param(
                "algorithm",
                s,
                "expected lloyd, minibatch or minibatch:BATCH_SIZE",
            )
        };
        match s.split_once(':') {
            None if s == "lloyd" => Ok(Algorithm::Lloyd),
            None if s == "minibatch" => Ok(Algorithm::MiniBatch {
                batch_size: cluster::DEFAULT_BATCH_SIZE,
            }),
            Some(("minibatch", b)) => match b.parse::<usize>() {
                Ok(b) if b > 0 => Ok(Algorithm::MiniBatch { batch_size: b }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

impl Algorithm {
    /// The name as parsed (`lloyd`, `minibatch:1024`).
    pub fn name(&self) -> String {
        match self {
            Algorithm::Lloyd => "lloyd".into(),
            Algorithm::MiniBatch { batch_size } => format!("minibatch:{batch_size}"),
        }
    }
}

/// Everything `embedcluster run` takes.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The input: one file, or one or more files, directories and globs read as one
    /// table (see [`crate::io::dataset`]).
    pub inputs: Vec<PathBuf>,
    pub column: String,
    pub n_clusters: usize,
    pub reduce: Reduce,
    pub pca_fit: PcaFit,
    pub metric: Metric,
    /// Seeding: k-means++ (default), k-means|| or random (never given centroids here).
    pub init: Init,
    pub n_init: usize,
    /// Seedings screened on a sample per restart (see [`KMeansParams::init_trials`]).
    pub init_trials: usize,
    /// Rows of that sample; 0: automatic (see [`KMeansParams::init_size`]).
    pub init_size: usize,
    /// Lloyd's pruned assignment ([`cluster::Pruning`]; same labels either way).
    pub pruning: cluster::Pruning,
    /// Lloyd (default) or mini-batch k-means; for mini-batch, `max_iter` counts epochs and
    /// `n_init`, `init_trials` and `pruning` are not used.
    pub algorithm: Algorithm,
    pub max_iter: usize,
    pub tol: f64,
    pub seed: u64,
    /// Rows per block read from the file; 0 lets the memory plan choose (about 32 MiB,
    /// smaller under `memory_limit`). Results do not depend on it.
    pub batch_rows: usize,
    /// Peak RSS the run must stay within (bytes): the plan shrinks the block to fit, or
    /// the run stops before reading any data with [`Error::MemoryLimit`].
    pub memory_limit: Option<u64>,
    pub output: Option<PathBuf>,
    pub model: Option<PathBuf>,
    /// A column of true labels to score the clustering against (ARI, NMI).
    pub labels_column: Option<String>,
    /// Invalid rows: fail (default) or skip.
    pub on_invalid: OnInvalid,
    /// Where the reduced matrix lives: in memory, or in a spill file when it does not fit
    /// the budget ([`Spill::Auto`], the default), or always in a spill file in a directory.
    pub spill: Spill,
    /// Compute the training calibration (per-cluster score and confidence quantiles) even
    /// without `model`: one more assignment pass over the reduced rows. Python sets it so
    /// that a `ClusterModel` it returns saves the same manifest as the CLI.
    pub calibrate: bool,
    /// Write the cluster summaries ([`crate::summary`]) here: `.json` (a list of objects)
    /// or `.parquet` (one row per cluster).
    pub summary: Option<PathBuf>,
    /// Compute the summaries even without `summary` ([`RunOutput::summary`]).
    pub summarize: bool,
    /// The text column of the summaries; `None`: the only string column other than the
    /// labels column, if there is exactly one (else no texts: no keywords).
    pub text_column: Option<String>,
    /// Representatives, keywords and the keyword table's cap (`higher_is_closer` is set
    /// from the metric).
    pub summary_params: SummaryParams,
}

impl RunConfig {
    /// A configuration with the CLI's defaults.
    pub fn new(input: impl Into<PathBuf>, n_clusters: usize) -> Self {
        RunConfig {
            inputs: vec![input.into()],
            column: "embedding".into(),
            n_clusters,
            reduce: Reduce::Pca(128),
            pca_fit: PcaFit::Exact,
            metric: Metric::Cosine,
            init: Init::KMeansPlusPlus,
            n_init: 1,
            init_trials: cluster::DEFAULT_INIT_TRIALS,
            init_size: 0,
            pruning: cluster::Pruning::Auto,
            algorithm: Algorithm::Lloyd,
            max_iter: 300,
            tol: 1e-4,
            seed: 0,
            batch_rows: 0,
            memory_limit: None,
            output: None,
            model: None,
            labels_column: None,
            on_invalid: OnInvalid::Error,
            spill: Spill::Auto,
            calibrate: false,
            summary: None,
            summarize: false,
            text_column: None,
            summary_params: SummaryParams::default(),
        }
    }

    /// Whether the run computes cluster summaries.
    pub fn wants_summary(&self) -> bool {
        self.summary.is_some() || self.summarize
    }

    /// The k-means parameters of this run.
    pub fn kmeans_params(&self) -> KMeansParams {
        KMeansParams {
            n_clusters: self.n_clusters,
            metric: self.metric,
            init: self.init.clone(),
            n_init: self.n_init,
            max_iter: self.max_iter,
            tol: self.tol,
            seed: self.seed,
            init_trials: self.init_trials,
            init_size: self.init_size,
            pruning: self.pruning,
        }
    }

    /// The parameters recorded in a saved model's manifest.
    pub fn fit_params(&self) -> FitParams {
        FitParams {
            column: Some(self.column.clone()),
            reduce: Some(self.reduce.name()),
            pca_fit: Some(self.pca_fit.name()),
            init: Some(self.init.name().to_string()),
            n_init: Some(self.n_init),
            init_trials: Some(self.init_trials),
            init_size: Some(self.init_size),
            max_iter: Some(self.max_iter),
            tol: Some(self.tol),
            seed: Some(self.seed),
            batch_rows: Some(self.batch_rows),
        }
    }
}

/// What a run did, as written to the report JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    pub input: String,
    pub dtype: DType,
    pub n_samples: usize,
    pub n_features: usize,
    pub n_components: usize,
    pub n_clusters: usize,
    pub metric: Metric,
    pub reduce: String,
    pub pca_fit: Option<String>,
    pub n_init: usize,
    pub n_iter: usize,
    pub converged: bool,
    pub objective: f64,
    pub objective_history: Vec<f64>,
    pub explained_variance_ratio_sum: Option<f64>,
    pub cluster_sizes: Vec<u64>,
    pub ari: Option<f64>,
    pub nmi: Option<f64>,
    pub threads: usize,
    pub seed: u64,
    pub batch_rows: usize,
    /// Rows left out as invalid (`--on-invalid skip`), and the first of them (up to 20).
    pub skipped_rows: usize,
    pub skipped_examples: Vec<u64>,
    /// Conditions worth a look that did not stop the run (e.g. fewer distinct points than
    /// clusters: some clusters are empty).
    pub warnings: Vec<String>,
    /// The predicted peak of every stage (see [`crate::jobs::plan`]); each stage of `stages`
    /// also carries its prediction next to the measured figure.
    pub memory_plan: crate::jobs::plan::MemoryPlan,
    /// Where the reduced matrix was spilled, when it was (see [`Spill`]).
    pub spill: Option<SpillReport>,
    pub stages: Vec<StageReport>,
    pub peak_rss_bytes: u64,
    /// How the stage peaks were measured, and what they mean ([`crate::memory::StagePeaksInfo`]).
    pub stage_peaks: crate::memory::StagePeaksInfo,
    /// The text column the summaries read, when they were computed with texts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_column: Option<String>,
    /// The keyword counts of the summaries, when computed ([`SummaryInfo`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_info: Option<SummaryInfo>,
}

/// Everything a run produces, for callers that keep the results in memory (Python).
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub report: RunReport,
    /// Cluster of each row, in file order (-1 for rows skipped as invalid).
    pub labels: Vec<i32>,
    /// Cosine similarity (cosine) or squared distance (Euclidean) to the row's centroid.
    pub scores: Vec<f32>,
    /// The fitted PCA, for `--reduce pca:D`.
    pub pca: Option<Pca>,
    /// `n_clusters x n_components` centroids (as f64, whatever the data dtype).
    pub cluster_centers: Vec<f64>,
    /// The training calibration (with `model` or `calibrate`; else empty).
    pub calibration: Vec<ClusterCalibration>,
    /// Valid rows the model was fitted on.
    pub n_samples_seen: u64,
    /// The fit's parameters, as a saved model records them.
    pub fit_params: FitParams,
    /// One summary per cluster (with `summary` or `summarize`).
    pub summary: Option<Vec<ClusterSummary>>,
}

/// Runs the job described by `cfg`. See the module docs for stages and memory.
///
/// # Example
/// ```
/// use embedcluster::jobs::generate::{generate, GenerateParams};
/// use embedcluster::jobs::run::{run, Reduce, RunConfig};
/// use embedcluster::runtime::Runtime;
///
/// let dir = std::env::temp_dir().join(format!("ec-run-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let input = dir.join("x.npy");
/// let params = GenerateParams { n_samples: 600, n_features: 16, n_clusters: 3, seed: 1, noise: None };
/// generate(params, &input, &|_| {}).unwrap();
/// let mut cfg = RunConfig::new(&input, 3);
/// cfg.reduce = Reduce::Pca(8);
/// let report = run(&cfg, &Runtime::default()).unwrap();
/// assert_eq!(report.n_samples, 600);
/// assert_eq!(report.cluster_sizes.iter().sum::<u64>(), 600);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
///
/// # Errors
/// Any [`Error`] from reading (with file, row and column), bad parameters (checked before
/// any data is read), or writing; [`Error::Interrupted`] once `rt.cancel` is set. No output
/// file is left behind on error.
pub fn run(cfg: &RunConfig, rt: &Runtime) -> Result<RunReport> {
    run_full(cfg, rt).map(|o| o.report)
}

/// [`run`], returning labels, scores and the model too.
///
/// # Errors
/// As [`run`].
pub fn run_full(cfg: &RunConfig, rt: &Runtime) -> Result<RunOutput> {
    rt.install(|| run_on_pool(cfg, rt.progress, rt.cancel))
}

/// [`run_full`] on rows that are already open: a file, or rows a front end holds in memory
/// ([`EmbeddingSource::from_matrix`], [`EmbeddingSource::from_batches`]); `cfg.inputs` and
/// `cfg.column` are then only names. The same stages, plan and model as for a file:
/// Python's `cluster_embeddings` runs arrays and Arrow tables through it.
///
/// # Errors
/// As [`run`].
pub fn run_source(
    cfg: &RunConfig,
    source: &EmbeddingSource<'_>,
    rt: &Runtime,
) -> Result<RunOutput> {
    rt.install(|| {
        let mut rec = StageRecorder::new();
        rec.stage("open", || Ok::<_, Error>(((), source.n_samples() as u64)))?;
        run_opened(cfg, source, rec, rt.progress, rt.cancel)
    })
}

fn run_on_pool(cfg: &RunConfig, progress: &dyn Progress, cancel: Cancel<'_>) -> Result<RunOutput> {
    let mut rec = StageRecorder::new();
    let source = rec.stage("open", || {
        let s = EmbeddingSource::open_inputs(&cfg.inputs, &cfg.column)?;
        let n = s.n_samples() as u64;
        Ok::<_, Error>((s, n))
    })?;
    run_opened(cfg, &source, rec, progress, cancel)
}

fn run_opened(
    cfg: &RunConfig,
    source: &EmbeddingSource<'_>,
    rec: StageRecorder,
    progress: &dyn Progress,
    cancel: Cancel<'_>,
) -> Result<RunOutput> {
    check_config(cfg, source)?;
    // Fail before the work, not after it, when an output cannot be written.
    if let Some(out) = &cfg.output {
        crate::io::OutputTarget::for_source(out, source)?.check()?;
    }
    if let Some(p) = &cfg.summary {
        drop(crate::io::AtomicFile::create(p)?);
    }
    if let Spill::Always(dir) = &cfg.spill {
        if !dir.is_dir() {
            return Err(Error::Io {
                path: dir.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the spill directory does not exist",
                ),
            });
        }
    }
    if let Some(dir) = cfg.model.as_ref().filter(|d| crate::io::is_url(d)) {
        return Err(Error::param(
            "model",
            dir.display(),
            "a model is a local directory (copy it to object storage after the run)",
        ));
    }
    if let Some(dir) = &cfg.model {
        match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() && !parent.is_dir() => {
                return Err(Error::Io {
                    path: dir.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("directory {} does not exist", parent.display()),
                    ),
                })
            }
            _ => {}
        }
    }
    let plan = crate::jobs::plan::plan_run(
        cfg,
        &crate::jobs::plan::PlanInput::of(source),
        cfg.memory_limit,
    )?;
    progress.plan(&plan);
    let cfg = &RunConfig {
        batch_rows: plan.batch_rows,
        spill: match &plan.spill {
            Some(s) => Spill::Always(s.dir.clone()),
            None => Spill::Never,
        },
        ..cfg.clone()
    };
    match source.dtype() {
        DType::Float32 => run_typed::<f32>(cfg, source, rec, plan, progress, cancel),
        DType::Float64 => run_typed::<f64>(cfg, source, rec, plan, progress, cancel),
    }
}

pub(crate) fn check_config(cfg: &RunConfig, source: &EmbeddingSource) -> Result<()> {
    let (n, d) = (source.n_samples(), source.n_features());
    match cfg.reduce {
        Reduce::Pca(k) | Reduce::Matryoshka(k) if k == 0 || k > d => {
            return Err(Error::param(
                "reduce",
                cfg.reduce.name(),
                format!("cannot reduce to {k} components: must be between 1 and n_features = {d}"),
            ))
        }
        _ => {}
    }
    let dim = match cfg.reduce {
        Reduce::None => d,
        Reduce::Pca(k) | Reduce::Matryoshka(k) => k,
    };
    cfg.kmeans_params().check(n, dim)?;
    if let (Reduce::Pca(_), PcaFit::Exact) = (cfg.reduce, cfg.pca_fit) {
        if n < 2 {
            return Err(Error::param(
                "n_samples",
                n,
                "is too few: PCA needs at least 2 rows",
            ));
        }
    }
    Ok(())
}

/// `cfg.batch_rows`, or the plan's default when it is 0.
pub(crate) fn batch_rows_of(cfg: &RunConfig, source: &EmbeddingSource) -> usize {
    match cfg.batch_rows {
        0 => crate::jobs::plan::default_batch_rows(source.n_features(), source.dtype().size()),
        b => b,
    }
}

fn zero_row(source: &EmbeddingSource, row: u64, what: &str) -> Error {
    let (path, row) = source.locate(row);
    Error::InvalidRow {
        path: path.to_path_buf(),
        row,
        column: source.column().to_string(),
        message: format!("{what} is all zeros and cannot be normalized for the cosine metric"),
    }
}

/// Where a block's rows come from: `valid_start` is the index of its first row among the
/// valid rows of the file; `file_rows[i]` is the file row of its row `i`.
pub(crate) struct BlockRows<'a> {
    pub valid_start: usize,
    pub file_rows: &'a [u64],
}

/// What a pass saw.
pub(crate) struct PassStats {
    /// Rows of the file read.
    pub rows_read: u64,
    /// File rows left out (`--on-invalid skip`), ascending.
    pub skipped: Vec<u64>,
}

/// Reads every block, normalizing rows for the cosine metric, and hands the valid rows to
/// `f`. With [`OnInvalid::Skip`], rows with NaN, infinity or nulls, and (cosine) all-zero
/// rows are left out and listed in the returned stats.
fn pass<T: Real>(
    cfg: &RunConfig,
    source: &EmbeddingSource,
    progress: &dyn Progress,
    cancel: Cancel<'_>,
    stage: &str,
    mut f: impl FnMut(&BlockRows<'_>, &mut [T]) -> Result<()>,
) -> Result<PassStats> {
    let d = source.n_features();
    let skip = cfg.on_invalid == OnInvalid::Skip;
    progress.begin(stage, Some(source.n_samples() as u64));
    let mut reader = source.blocks::<T>(batch_rows_of(cfg, source))?;
    if skip {
        reader = reader.skip_invalid();
    }
    let mut skipped: Vec<u64> = Vec::new();
    let mut valid = 0usize;
    let mut file_rows: Vec<u64> = Vec::new();
    while let Some(block) = reader.next_block()? {
        cancel.check()?;
        // file row of each row in the block
        file_rows.clear();
        let mut sk = block.skipped.iter().peekable();
        let mut r = block.start_row;
        while file_rows.len() < block.rows {
            if sk.peek() == Some(&&r) {
                sk.next();
            } else {
                file_rows.push(r);
            }
            r += 1;
        }
        let mut block_skipped: Vec<u64> = block.skipped.to_vec();
        let mut rows = block.rows;
        if cfg.metric == Metric::Cosine {
            let mut i = 0;
            let mut w = 0;
            while i < rows {
                let zero = l2_normalize_rows(&mut block.data[i * d..(i + 1) * d], d).is_err();
                if zero {
                    if !skip {
                        return Err(zero_row(source, file_rows[i], "the vector"));
                    }
                    block_skipped.push(file_rows[i]);
                } else {
                    if w != i {
                        block.data.copy_within(i * d..(i + 1) * d, w * d);
                        file_rows[w] = file_rows[i];
                    }
                    w += 1;
                }
                i += 1;
            }
            rows = w;
            file_rows.truncate(rows);
            block_skipped.sort_unstable();
        }
        f(
            &BlockRows {
                valid_start: valid,
                file_rows: &file_rows,
            },
            &mut block.data[..rows * d],
        )?;
        valid += rows;
        skipped.extend_from_slice(&block_skipped);
        progress.advance(block.span as u64);
    }
    progress.end();
    Ok(PassStats {
        rows_read: reader.rows_read(),
        skipped,
    })
}

/// Stages `pca_fit`, `pca_solve` and `transform`: fits the reduction (if any) and returns it
/// with the reduced matrix (`n x dim`, input dtype, rows unit-norm for the cosine metric).
pub(crate) fn reduce_source<T: Real>(
    cfg: &RunConfig,
    source: &EmbeddingSource,
    rec: &mut StageRecorder,
    progress: &dyn Progress,
    cancel: Cancel<'_>,
) -> Result<Reduced<T>> {
    let (n, d) = (source.n_samples(), source.n_features());
    // 1. Fit the reduction.
    let pca: Option<Pca> = match cfg.reduce {
        Reduce::Pca(k) => Some(match cfg.pca_fit {
            PcaFit::Exact => {
                let state = rec.stage("pca_fit", || {
                    let mut acc = CovarianceAccumulator::<T>::new(d);
                    let rows = pass::<T>(cfg, source, progress, cancel, "pca_fit", |_, b| {
                        acc.push(b);
                        Ok(())
                    })?
                    .rows_read;
                    Ok::<_, Error>((acc.finish(), rows))
                })?;
                rec.stage("pca_solve", || Ok::<_, Error>((state.finish(k)?, 0)))?
            }
            PcaFit::Sample(size) => {
                let (sample, moments) = rec.stage("pca_fit", || {
                    let mut sampler = ReservoirSampler::<T>::new(size, d, cfg.seed);
                    let mut moments = MomentsAccumulator::<T>::new(d);
                    let rows = pass::<T>(cfg, source, progress, cancel, "pca_fit", |_, b| {
                        sampler.push(b);
                        moments.push(b);
                        Ok(())
                    })?
                    .rows_read;
                    Ok::<_, Error>(((sampler.into_sample(), moments.finish()), rows))
                })?;
                let opts = RandomizedOptions {
                    seed: cfg.seed,
                    ..Default::default()
                };
                rec.stage("pca_solve", || {
                    let rows = (sample.len() / d) as u64;
                    Ok::<_, Error>((randomized_pca(&sample, d, &moments, k, &opts)?, rows))
                })?
            }
        }),
        _ => None,
    };
    if let Some(p) = &pca {
        if p.explained_variance().iter().all(|&v| v <= 0.0) {
            return Err(Error::InvalidRow {
                path: source.path().to_path_buf(),
                row: 0,
                column: source.column().to_string(),
                message: "every row is the same vector (zero variance): PCA has no direction to keep; do not reduce (reduce none)".into(),
            });
        }
    }
    let dim = match cfg.reduce {
        Reduce::None => d,
        Reduce::Pca(k) | Reduce::Matryoshka(k) => k,
    };
    // 2. Project every row into the reduced matrix (n x dim, input dtype).
    let reduced = rec.stage("transform", || {
        let mut reduced = match &cfg.spill {
            Spill::Always(dir) => {
                ReducedData::Spilled(crate::io::ScratchMatrix::create(dir, n * dim)?)
            }
            _ => ReducedData::Heap(vec![T::ZERO; n * dim]),
        };
        let transform = pca.as_ref().map(|p| p.transformer::<T>());
        let stats = pass::<T>(cfg, source, progress, cancel, "transform", |at, b| {
            let rows = b.len() / d;
            let s = at.valid_start;
            if s + rows > n {
                return Err(Error::format(
                    source.path(),
                    "file has more rows than its metadata says",
                ));
            }
            let out = &mut reduced.as_mut_slice()[s * dim..(s + rows) * dim];
            match (cfg.reduce, &transform) {
                (Reduce::Pca(_), Some(t)) => {
                    t.transform(b, out)?;
                    if cfg.metric == Metric::Cosine {
                        if let Err(i) = l2_normalize_rows(out, dim) {
                            return Err(zero_row(source, at.file_rows[i], "the PCA projection"));
                        }
                    }
                }
                (Reduce::Matryoshka(k), _) => {
                    if let Err(i) = crate::decomposition::matryoshka(b, d, k, out) {
                        return Err(zero_row(source, at.file_rows[i], "the truncated vector"));
                    }
                }
                _ => out.copy_from_slice(b),
            }
            // a spilled block goes to the page cache and the file, not the process
            crate::memory::release_mapped(out);
            Ok(())
        })?;
        let rows = stats.rows_read;
        if rows as usize != n {
            return Err(Error::format(
                source.path(),
                format!("file has {rows} rows but its metadata says {n}"),
            ));
        }
        let n_valid = n - stats.skipped.len();
        reduced.truncate(n_valid * dim);
        Ok(((reduced, stats.skipped), rows))
    })?;
    let (reduced, skipped) = reduced;
    Ok(Reduced {
        pca,
        data: reduced,
        dim,
        skipped,
    })
}

/// The reduced matrix: on the heap, or in a spill file ([`Spill`]).
pub(crate) enum ReducedData<T> {
    Heap(Vec<T>),
    Spilled(crate::io::ScratchMatrix<T>),
}

impl<T: Real> ReducedData<T> {
    fn as_mut_slice(&mut self) -> &mut [T] {
        match self {
            ReducedData::Heap(v) => v,
            ReducedData::Spilled(m) => m.as_mut_slice(),
        }
    }
    fn truncate(&mut self, len: usize) {
        match self {
            ReducedData::Heap(v) => {
                v.truncate(len);
                v.shrink_to_fit();
            }
            ReducedData::Spilled(m) => m.truncate(len),
        }
    }
    /// Where the spill file was and its size (bytes), when spilled.
    pub(crate) fn spill_file(&self) -> Option<(PathBuf, u64)> {
        match self {
            ReducedData::Heap(_) => None,
            ReducedData::Spilled(m) => Some((m.path().to_path_buf(), m.bytes())),
        }
    }
}

impl<T: Real> std::ops::Deref for ReducedData<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            ReducedData::Heap(v) => v,
            ReducedData::Spilled(m) => m.as_slice(),
        }
    }
}

/// The output of [`reduce_source`].
pub(crate) struct Reduced<T> {
    pub pca: Option<Pca>,
    /// `n_valid x dim`, the valid rows in file order.
    pub data: ReducedData<T>,
    pub dim: usize,
    /// File rows left out (`--on-invalid skip`), ascending.
    pub skipped: Vec<u64>,
}

fn run_typed<T: Real>(
    cfg: &RunConfig,
    source: &EmbeddingSource,
    mut rec: StageRecorder,
    plan: crate::jobs::plan::MemoryPlan,
    progress: &dyn Progress,
    cancel: Cancel<'_>,
) -> Result<RunOutput> {
    let (n, d) = (source.n_samples(), source.n_features());
    let text_column = match cfg.wants_summary() {
        true => resolve_text_column(cfg, source)?,
        false => None,
    };
    let Reduced {
        pca,
        data: reduced,
        dim,
        skipped,
    } = reduce_source::<T>(cfg, source, &mut rec, progress, cancel)?;
    let n_valid = n - skipped.len();
    if cfg.n_clusters > n_valid {
        return Err(Error::param(
            "n_clusters",
            cfg.n_clusters,
            format!(
                "is larger than the {n_valid} valid rows ({} skipped as invalid)",
                skipped.len()
            ),
        ));
    }
    // 3. Cluster.
    let params = cfg.kmeans_params();
    progress.begin("kmeans", None);
    let mut km = rec.stage("kmeans", || {
        let km = match cfg.algorithm {
            Algorithm::Lloyd => cluster::fit_cancellable(&params, &reduced, dim, cancel)?,
            Algorithm::MiniBatch { batch_size } => {
                let mb = cluster::MiniBatchParams {
                    kmeans: params.clone(),
                    batch_size,
                    ..Default::default()
                };
                cluster::fit_minibatch(&mb, &reduced, dim, cancel)?
            }
        };
        Ok::<_, Error>((km, n_valid as u64))
    })?;
    progress.end();
    // Calibration of the saved model: the training rows' scores and top-2 margins.
    let calibration = if cfg.model.is_some() || cfg.calibrate {
        calibrate(&km.predict_with_confidence(&reduced)?, km.n_clusters())
    } else {
        Vec::new()
    };
    let spill = reduced.spill_file().map(|(path, bytes)| SpillReport {
        path,
        bytes,
        reason: plan
            .spill
            .as_ref()
            .map(|s| s.reason.clone())
            .unwrap_or_default(),
    });
    drop(reduced);
    // Keep row alignment: skipped rows get cluster -1 and a NaN score.
    let (labels, scores) = if skipped.is_empty() {
        km.take_labels_and_scores()
    } else {
        let (mut labels, mut scores) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let mut next = 0usize;
        let mut sk = skipped.iter().peekable();
        for r in 0..n as u64 {
            if sk.peek() == Some(&&r) {
                sk.next();
                labels.push(-1);
                scores.push(f32::NAN);
            } else {
                labels.push(km.labels()[next]);
                scores.push(km.scores()[next]);
                next += 1;
            }
        }
        (labels, scores)
    };
    // 4. Write the output, summarize, and score against true labels.
    let mut truth: Option<Vec<i64>> = None;
    let mut summary: Option<(Vec<ClusterSummary>, SummaryInfo)> = None;
    if cfg.output.is_some() || cfg.labels_column.is_some() || cfg.wants_summary() {
        let (t, s) = rec.stage("write", || {
            let mut builder = match cfg.wants_summary() {
                true => Some(SummaryBuilder::new(
                    &labels,
                    &scores,
                    cfg.n_clusters,
                    SummaryParams {
                        higher_is_closer: cfg.metric == Metric::Cosine,
                        ..cfg.summary_params
                    },
                )?),
                false => None,
            };
            let t = write_output(
                cfg,
                source,
                &labels,
                &scores,
                builder.as_mut().map(|b| (b, text_column.as_deref())),
                progress,
                cancel,
            )?;
            let s = builder.map(SummaryBuilder::finish);
            if let (Some(path), Some((s, _))) = (&cfg.summary, &s) {
                write_summary(path, s)?;
            }
            Ok::<_, Error>(((t, s), n as u64))
        })?;
        truth = t;
        summary = s;
    }
    if let Some(dir) = &cfg.model {
        rec.stage("save_model", || {
            let fitted = FittedPipeline::new(
                steps_for(cfg.metric, cfg.reduce),
                d,
                pca.clone(),
                km.without_training_rows(),
                calibration.clone(),
            )?;
            crate::persist::save_pipeline(dir, &fitted, n_valid as u64, &cfg.fit_params())?;
            Ok::<_, Error>(((), 0))
        })?;
    }
    // Skipped rows (label -1) take no part in the scores.
    let pred: Vec<i64> = labels
        .iter()
        .filter(|&&l| l >= 0)
        .map(|&l| l as i64)
        .collect();
    let truth: Option<Vec<i64>> = truth.map(|t| {
        if skipped.is_empty() {
            return t;
        }
        t.into_iter()
            .zip(&labels)
            .filter(|(_, &l)| l >= 0)
            .map(|(v, _)| v)
            .collect()
    });
    let (ari, nmi) = match &truth {
        Some(t) => (
            Some(adjusted_rand_score(t, &pred)?),
            Some(normalized_mutual_info_score(t, &pred)?),
        ),
        None => (None, None),
    };
    let report = RunReport {
        input: crate::io::dataset::display(&cfg.inputs),
        dtype: T::DTYPE,
        n_samples: n,
        n_features: d,
        n_components: dim,
        n_clusters: cfg.n_clusters,
        metric: cfg.metric,
        reduce: match cfg.reduce {
            Reduce::None => "none".into(),
            Reduce::Pca(k) => format!("pca:{k}"),
            Reduce::Matryoshka(k) => format!("matryoshka:{k}"),
        },
        pca_fit: pca.as_ref().map(|_| match cfg.pca_fit {
            PcaFit::Exact => "exact".to_string(),
            PcaFit::Sample(s) => format!("sample:{s}"),
        }),
        n_init: cfg.n_init,
        n_iter: km.n_iter(),
        converged: km.converged(),
        objective: km.inertia(),
        objective_history: km.objective_history().to_vec(),
        explained_variance_ratio_sum: pca
            .as_ref()
            .map(|p| p.explained_variance_ratio().iter().sum()),
        cluster_sizes: km.counts().to_vec(),
        ari,
        nmi,
        threads: rayon::current_num_threads(),
        seed: cfg.seed,
        batch_rows: cfg.batch_rows,
        warnings: km.distinct_clusters_warning().into_iter().collect(),
        skipped_rows: skipped.len(),
        skipped_examples: skipped.iter().take(20).copied().collect(),
        peak_rss_bytes: rec.peak_rss_bytes(),
        stage_peaks: rec.stage_peaks(),
        stages: {
            rec.attach_plan(&plan);
            rec.stages().to_vec()
        },
        memory_plan: plan,
        spill,
        text_column: text_column.clone(),
        summary_info: summary.as_ref().map(|s| s.1.clone()),
    };
    Ok(RunOutput {
        report,
        cluster_centers: km.cluster_centers().iter().map(|v| v.to_f64()).collect(),
        calibration,
        n_samples_seen: n_valid as u64,
        fit_params: cfg.fit_params(),
        labels,
        scores,
        pca,
        summary: summary.map(|s| s.0),
    })
}

/// The text column of the summaries: `cfg.text_column` (an error if the input has no such
/// string column), else the only string column other than the labels column, if exactly
/// one (else none).
pub(crate) fn resolve_text_column(
    cfg: &RunConfig,
    source: &EmbeddingSource,
) -> Result<Option<String>> {
    let schema = source.other_columns(1)?.map(|o| o.schema());
    let is_text =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    match &cfg.text_column {
        Some(col) => {
            let field = schema
                .as_ref()
                .and_then(|s| s.field_with_name(col).ok().cloned());
            match field {
                Some(f) if is_text(f.data_type()) => Ok(Some(col.clone())),
                Some(f) => Err(Error::Column {
                    path: source.path().to_path_buf(),
                    column: col.clone(),
                    message: format!("the text column must hold strings, found {}", f.data_type()),
                }),
                None => Err(Error::param(
                    "text_column",
                    format!("`{col}`"),
                    format!("is not a column of {}", source.path().display()),
                )),
            }
        }
        None => {
            let Some(schema) = schema else {
                return Ok(None);
            };
            let texts: Vec<&str> = schema
                .fields()
                .iter()
                .filter(|f| is_text(f.data_type()) && Some(f.name()) != cfg.labels_column.as_ref())
                .map(|f| f.name().as_str())
                .collect();
            Ok(match texts.as_slice() {
                [one] => Some(one.to_string()),
                _ => None,
            })
        }
    }
}

/// Pass 3: streams the other columns into the output and collects the true labels.
pub(crate) fn write_output(
    cfg: &RunConfig,
    source: &EmbeddingSource,
    labels: &[i32],
    scores: &[f32],
    mut summary: Option<(&mut SummaryBuilder, Option<&str>)>,
    progress: &dyn Progress,
    cancel: Cancel<'_>,
) -> Result<Option<Vec<i64>>> {
    let n = labels.len();
    let others = source.other_columns(batch_rows_of(cfg, source))?;
    if let Some(col) = &cfg.labels_column {
        let has = others
            .as_ref()
            .map(|o| o.schema().index_of(col).is_ok())
            .unwrap_or(false);
        if !has {
            return Err(Error::param(
                "labels_column",
                format!("`{col}`"),
                format!("is not a column of {}", source.path().display()),
            ));
        }
    }
    let mut writer = match &cfg.output {
        Some(p) => Some(OutputWriter::to_target(
            &crate::io::OutputTarget::for_source(p, source)?,
            others.as_ref().map(|o| o.schema()),
            false,
            &source.partition_keys(),
        )?),
        None => None,
    };
    let mut truth = cfg.labels_column.as_ref().map(|_| Vec::with_capacity(n));
    let mut ids: HashMap<String, i64> = HashMap::new();
    progress.begin("write", Some(n as u64));
    match others {
        Some(batches) => {
            let mut at = 0usize;
            for batch in batches {
                cancel.check()?;
                let batch = batch?;
                let rows = batch.num_rows();
                if at + rows > n {
                    return Err(Error::format(
                        source.path(),
                        "other columns have more rows than the embedding column",
                    ));
                }
                if let (Some(t), Some(col)) = (truth.as_mut(), &cfg.labels_column) {
                    collect_labels(source.path(), &batch, col, at, t, &mut ids)?;
                }
                if let Some((b, Some(col))) = summary.as_mut() {
                    push_texts(source.path(), &batch, col, &labels[at..at + rows], b)?;
                }
                if let Some(w) = writer.as_mut() {
                    w.write(Some(&batch), &labels[at..at + rows], &scores[at..at + rows])?;
                }
                at += rows;
                progress.advance(rows as u64);
            }
            if at != n {
                return Err(Error::format(
                    source.path(),
                    "other columns have fewer rows than the embedding column",
                ));
            }
        }
        None => {
            if let Some(w) = writer.as_mut() {
                for (l, s) in labels.chunks(65536).zip(scores.chunks(65536)) {
                    w.write(None, l, s)?;
                    progress.advance(l.len() as u64);
                }
            }
        }
    }
    progress.end();
    if let Some(w) = writer {
        w.finish()?;
    }
    Ok(truth)
}

/// Writes the summaries to `path`: Parquet for `.parquet`, else a JSON list of objects;
/// atomically (a temporary file, then a rename).
///
/// # Errors
/// [`Error::Io`] when the file cannot be written.
pub fn write_summary(path: &Path, summaries: &[ClusterSummary]) -> Result<()> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
    {
        return crate::io::write_batch(path, &crate::summary::to_record_batch(summaries)?);
    }
    let mut f = crate::io::AtomicFile::create(path)?;
    let json = serde_json::to_vec_pretty(summaries)
        .map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    use std::io::Write;
    f.file().write_all(&json).map_err(|e| Error::io(path, e))?;
    f.file().write_all(b"\n").map_err(|e| Error::io(path, e))?;
    f.commit()
}

/// Hands the text column `col` of `batch` to the summaries.
fn push_texts(
    path: &Path,
    batch: &RecordBatch,
    col: &str,
    labels: &[i32],
    b: &mut SummaryBuilder,
) -> Result<()> {
    let Ok(i) = batch.schema().index_of(col) else {
        return Err(Error::Column {
            path: path.to_path_buf(),
            column: col.to_string(),
            message: "the text column is missing from a part".into(),
        });
    };
    let a = batch.column(i);
    match a.data_type() {
        DataType::Utf8 => b.push_texts(labels, a.as_string::<i32>().iter()),
        DataType::LargeUtf8 => b.push_texts(labels, a.as_string::<i64>().iter()),
        DataType::Utf8View => b.push_texts(labels, a.as_string_view().iter()),
        other => Err(Error::Column {
            path: path.to_path_buf(),
            column: col.to_string(),
            message: format!("the text column must hold strings, found {other}"),
        }),
    }
}

/// Appends the label column of `batch` as integer ids (strings get dense ids by first
/// appearance; nulls get id -1).
pub(crate) fn collect_labels(
    path: &Path,
    batch: &RecordBatch,
    col: &str,
    first_row: usize,
    out: &mut Vec<i64>,
    ids: &mut HashMap<String, i64>,
) -> Result<()> {
    let a = batch.column(batch.schema().index_of(col).expect("checked"));
    let mut by_str = |s: Option<&str>| match s {
        None => -1,
        Some(s) => {
            let next = ids.len() as i64;
            *ids.entry(s.to_string()).or_insert(next)
        }
    };
    macro_rules! ints {
        ($t:ty) => {{
            let p = a.as_primitive::<$t>();
            out.extend((0..p.len()).map(|i| if p.is_null(i) { -1 } else { p.value(i) as i64 }));
        }};
    }
    match a.data_type() {
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        DataType::Utf8 => out.extend(a.as_string::<i32>().iter().map(&mut by_str)),
        DataType::LargeUtf8 => out.extend(a.as_string::<i64>().iter().map(&mut by_str)),
        DataType::Utf8View => out.extend(a.as_string_view().iter().map(&mut by_str)),
        other => {
            return Err(Error::Column {
                path: path.to_path_buf(),
                column: col.to_string(),
                message: format!(
                    "labels must be integers or strings, found {other} (row {first_row})"
                ),
            })
        }
    }
    Ok(())
}
