//! `embedcluster evaluate`: scores of a clustering output against true labels (external
//! scores) and against the embeddings (internal scores), streamed.
//!
//! Memory: the label columns (`8 n` bytes each); Davies-Bouldin and Calinski-Harabasz
//! stream the embeddings twice with `k d 8` bytes of state; the silhouette holds the rows it
//! scores (all `n d s`, or `sample_size d s`) and its tiles (see [`crate::metrics`]).

use crate::dtype::{DType, Real};
use crate::error::{Error, Result};
use crate::io::EmbeddingSource;
use crate::linalg::Distance;
use crate::memory::{StageRecorder, StageReport};
use crate::metrics::{self, CentroidState, DispersionState};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Reads one integer or string column of a Parquet file, or of the parts of a directory
/// or glob in order, as `i64` ids (strings get dense ids
/// by first appearance, nulls -1).
///
/// # Errors
/// [`Error::Column`] if the column is missing or of another type; reader errors.
pub fn read_label_column(path: &Path, column: &str) -> Result<Vec<i64>> {
    // a file, or a directory / glob of parts (the output of `run --output DIR/`)
    let parts = crate::io::dataset::resolve(&[path.to_path_buf()])?.parts;
    let mut out = Vec::new();
    let mut ids = HashMap::new();
    for part in &parts {
        let path = part.path.as_path();
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let b =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::format(path, e))?;
        let idx = b.schema().index_of(column).map_err(|_| {
            let names: Vec<&str> = b
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            Error::column(
                path,
                column,
                format!("no such column (columns: {})", names.join(", ")),
            )
        })?;
        let mask = ProjectionMask::roots(b.parquet_schema(), [idx]);
        let reader = b
            .with_projection(mask)
            .with_batch_size(65536)
            .build()
            .map_err(|e| Error::format(path, e))?;
        for batch in reader {
            let batch = batch.map_err(|e| Error::format(path, e))?;
            let at = out.len();
            crate::jobs::run::collect_labels(path, &batch, column, at, &mut out, &mut ids)?;
        }
    }
    Ok(out)
}

/// Everything `embedcluster evaluate` takes.
#[derive(Debug, Clone)]
pub struct EvaluateConfig {
    /// A Parquet file with a cluster column (the output of `run` or `predict`).
    pub clusters: PathBuf,
    pub cluster_column: String,
    /// A column of true labels in `clusters`: external scores.
    pub labels_column: Option<String>,
    /// The embeddings the clusters were computed from (same rows, same order): internal scores.
    pub embeddings: Option<PathBuf>,
    pub column: String,
    pub metric: Distance,
    /// Silhouette on this many sampled rows (`None`: all rows, exact).
    pub sample_size: Option<usize>,
    pub seed: u64,
    pub batch_rows: usize,
}

/// Scores against true labels.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExternalScores {
    pub adjusted_rand_score: f64,
    pub normalized_mutual_info_score: f64,
    pub adjusted_mutual_info_score: f64,
    pub mutual_info_score: f64,
    pub homogeneity: f64,
    pub completeness: f64,
    pub v_measure: f64,
}

/// Scores against the embeddings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InternalScores {
    pub silhouette_score: f64,
    pub silhouette_metric: Distance,
    pub silhouette_sample_size: usize,
    pub davies_bouldin_score: f64,
    pub calinski_harabasz_score: f64,
}

/// What `evaluate` printed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvaluateReport {
    pub clusters: String,
    pub n_samples: usize,
    pub n_clusters: usize,
    pub labels_column: Option<String>,
    pub external: Option<ExternalScores>,
    pub embeddings: Option<String>,
    pub internal: Option<InternalScores>,
    pub stages: Vec<StageReport>,
    pub peak_rss_bytes: u64,
    /// How the stage peaks were measured, and what they mean ([`crate::memory::StagePeaksInfo`]).
    pub stage_peaks: crate::memory::StagePeaksInfo,
}

/// `evaluate` of one clustering run at several seeds (`--seeds`): each seed's report and,
/// per score, its min / median / max across the seeds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SeedsReport {
    pub seeds: Vec<u64>,
    pub runs: Vec<EvaluateReport>,
    /// Score name (`adjusted_rand_score`, `silhouette_score`, ...) to its spread.
    pub spread: std::collections::BTreeMap<String, metrics::Spread>,
}

/// Evaluates `cfg.clusters` with `{seed}` replaced by each of `seeds` (the outputs of
/// `run --seed S --output clusters_S.parquet`), then the spread of every score.
///
/// # Errors
/// [`Error::Parameter`] when the path has no `{seed}` or `seeds` is empty; whatever
/// [`evaluate`] raises for any of the files (naming it).
pub fn evaluate_seeds(
    cfg: &EvaluateConfig,
    seeds: &[u64],
    rt: &crate::runtime::Runtime,
) -> Result<SeedsReport> {
    let pattern = cfg.clusters.to_string_lossy().to_string();
    if !pattern.contains("{seed}") || seeds.is_empty() {
        return Err(Error::param(
            "seeds",
            format!("{pattern:?}"),
            "needs a {seed} placeholder in the clusters path (e.g. clusters_{seed}.parquet) and at least one seed",
        ));
    }
    let mut runs = Vec::with_capacity(seeds.len());
    for s in seeds {
        let c = EvaluateConfig {
            clusters: PathBuf::from(pattern.replace("{seed}", &s.to_string())),
            ..cfg.clone()
        };
        runs.push(evaluate(&c, rt)?);
    }
    let mut values: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for r in &runs {
        let mut put = |k: &str, v: f64| values.entry(k.to_string()).or_default().push(v);
        if let Some(e) = &r.external {
            put("adjusted_rand_score", e.adjusted_rand_score);
            put(
                "normalized_mutual_info_score",
                e.normalized_mutual_info_score,
            );
            put("adjusted_mutual_info_score", e.adjusted_mutual_info_score);
            put("v_measure", e.v_measure);
        }
        if let Some(i) = &r.internal {
            put("silhouette_score", i.silhouette_score);
            put("davies_bouldin_score", i.davies_bouldin_score);
            put("calinski_harabasz_score", i.calinski_harabasz_score);
        }
    }
    let spread = values
        .into_iter()
        .filter_map(|(k, v)| metrics::Spread::of(&v).map(|s| (k, s)))
        .collect();
    Ok(SeedsReport {
        seeds: seeds.to_vec(),
        runs,
        spread,
    })
}

/// Computes the scores. See the module docs for memory.
///
/// # Errors
/// Reader errors; [`Error::Parameter`] when the files have different row counts, neither
/// labels nor embeddings are given, or the number of clusters is outside `2..n - 1` for
/// the internal scores.
pub fn evaluate(cfg: &EvaluateConfig, rt: &crate::runtime::Runtime) -> Result<EvaluateReport> {
    rt.install(|| evaluate_on_pool(cfg))
}

fn evaluate_on_pool(cfg: &EvaluateConfig) -> Result<EvaluateReport> {
    if cfg.labels_column.is_none() && cfg.embeddings.is_none() {
        return Err(Error::param_msg(
            "labels_column",
            "nothing to evaluate: give labels and/or embeddings",
        ));
    }
    let mut rec = StageRecorder::new();
    let pred = rec.stage("read_labels", || {
        let p = read_label_column(&cfg.clusters, &cfg.cluster_column)?;
        let n = p.len() as u64;
        Ok::<_, Error>((p, n))
    })?;
    let n = pred.len();
    let n_clusters = metrics::encode_labels(&pred).1;
    let external = match &cfg.labels_column {
        Some(col) => Some(rec.stage("external", || {
            let t = read_label_column(&cfg.clusters, col)?;
            let (h, c, v) = metrics::homogeneity_completeness_v_measure(&t, &pred)?;
            Ok::<_, Error>((
                ExternalScores {
                    adjusted_rand_score: metrics::adjusted_rand_score(&t, &pred)?,
                    normalized_mutual_info_score: metrics::normalized_mutual_info_score(&t, &pred)?,
                    adjusted_mutual_info_score: metrics::adjusted_mutual_info_score(&t, &pred)?,
                    mutual_info_score: metrics::mutual_info_score(&t, &pred)?,
                    homogeneity: h,
                    completeness: c,
                    v_measure: v,
                },
                n as u64,
            ))
        })?),
        None => None,
    };
    let internal = match &cfg.embeddings {
        Some(path) => {
            let src = EmbeddingSource::open(path, &cfg.column)?;
            if src.n_samples() != n {
                return Err(Error::param_msg(
                    "embeddings",
                    format!(
                        "{} has {} rows but {} has {n} labels",
                        path.display(),
                        src.n_samples(),
                        cfg.clusters.display()
                    ),
                ));
            }
            Some(match src.dtype() {
                DType::Float32 => internal_typed::<f32>(cfg, &src, &pred, &mut rec)?,
                DType::Float64 => internal_typed::<f64>(cfg, &src, &pred, &mut rec)?,
            })
        }
        None => None,
    };
    Ok(EvaluateReport {
        clusters: cfg.clusters.display().to_string(),
        n_samples: n,
        n_clusters,
        labels_column: cfg.labels_column.clone(),
        external,
        embeddings: cfg.embeddings.as_ref().map(|p| p.display().to_string()),
        internal,
        peak_rss_bytes: rec.peak_rss_bytes(),
        stage_peaks: rec.stage_peaks(),
        stages: rec.stages().to_vec(),
    })
}

fn internal_typed<T: Real>(
    cfg: &EvaluateConfig,
    src: &EmbeddingSource,
    pred: &[i64],
    rec: &mut StageRecorder,
) -> Result<InternalScores> {
    let (n, d) = (src.n_samples(), src.n_features());
    let (codes, k) = metrics::encode_labels(pred);
    if !(k > 1 && k < n) {
        return Err(Error::param_msg(
            "cluster_column",
            format!(
                "number of clusters is {k}; internal scores need 2 to n_samples - 1 ({})",
                n - 1
            ),
        ));
    }
    // Pass 1: centroids, and the silhouette rows.
    let m = cfg.sample_size.unwrap_or(n).min(n);
    let keep: Option<Vec<bool>> = if m < n {
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
        let mut mask = vec![false; n];
        for i in rand::seq::index::sample(&mut rng, n, m) {
            mask[i] = true;
        }
        Some(mask)
    } else {
        None
    };
    let (cent, rows, row_labels) = rec.stage("pass1", || {
        let mut cent = CentroidState::new(k, d);
        let mut rows: Vec<T> = Vec::with_capacity(m * d);
        let mut row_labels: Vec<i64> = Vec::with_capacity(m);
        let mut r = src.blocks::<T>(cfg.batch_rows)?;
        while let Some(b) = r.next_block()? {
            let s = b.start_row as usize;
            cent.partial(b.data, &codes[s..s + b.rows]);
            for i in 0..b.rows {
                if keep.as_ref().is_none_or(|mk| mk[s + i]) {
                    rows.extend_from_slice(&b.data[i * d..(i + 1) * d]);
                    row_labels.push(pred[s + i]);
                }
            }
        }
        Ok::<_, Error>(((cent, rows, row_labels), n as u64))
    })?;
    let centroids = cent.centroids();
    let disp = rec.stage("pass2", || {
        let mut disp = DispersionState::new(k);
        let mut r = src.blocks::<T>(cfg.batch_rows)?;
        while let Some(b) = r.next_block()? {
            let s = b.start_row as usize;
            disp.partial(b.data, &codes[s..s + b.rows], &centroids);
        }
        Ok::<_, Error>((disp, n as u64))
    })?;
    let sil = rec.stage("silhouette", || {
        let v = metrics::silhouette_score(&rows, d, &row_labels, cfg.metric, None, 0)?;
        Ok::<_, Error>((v, row_labels.len() as u64))
    })?;
    Ok(InternalScores {
        silhouette_score: sil,
        silhouette_metric: cfg.metric,
        silhouette_sample_size: row_labels.len(),
        davies_bouldin_score: metrics::davies_bouldin_from(&cent, &disp),
        calinski_harabasz_score: metrics::calinski_harabasz_from(&cent, &disp),
    })
}
