//! Fit once, assign forever: saved models applied to new rows, with confidence and drift.
//!
//! [`crate::persist::load_pipeline`] reads a model directory and checks it;
//! [`predict_file`] streams a Parquet/`.npy` file through the saved preprocessing (normalize,
//! PCA, normalize) and the centroids, one block at a time (peak memory: one block
//! `b d s`, its reduced rows `b D s`, the model), writing `cluster`, `score` and
//! `confidence` next to the input's other columns; [`drift`] compares the assignment of new
//! rows with the training calibration.

use crate::cluster::Assignment;
use crate::dtype::{DType, Real};
use crate::error::{Error, Result};
use crate::io::{EmbeddingSource, OutputWriter};
use crate::memory::{StageRecorder, StageReport};
use crate::persist::load_pipeline;
pub use crate::pipeline::Rejection;
use crate::runtime::Runtime;
use arrow_array::RecordBatch;
use std::path::{Path, PathBuf};

/// What `embedcluster predict` / `drift` take.
#[derive(Debug, Clone)]
pub struct PredictConfig {
    pub model: PathBuf,
    /// Files, directories or globs read as one table (see [`crate::io::dataset`]).
    pub inputs: Vec<PathBuf>,
    pub column: String,
    pub output: Option<PathBuf>,
    pub batch_rows: usize,
    pub rejection: Rejection,
}

/// Per-cluster figures of a prediction run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PredictReport {
    pub n_samples: u64,
    pub rows_per_second: f64,
    pub rejected: u64,
    pub rejection_rate: f64,
    /// Rows assigned to each cluster (before rejection).
    pub cluster_counts: Vec<u64>,
    /// Mean score per cluster (before rejection).
    pub cluster_score_mean: Vec<f64>,
    pub stages: Vec<StageReport>,
    pub peak_rss_bytes: u64,
    /// How the stage peaks were measured, and what they mean ([`crate::memory::StagePeaksInfo`]).
    pub stage_peaks: crate::memory::StagePeaksInfo,
}

/// Streams `cfg.inputs` through the model; writes the output when asked.
///
/// # Errors
/// Reader errors (file, row, column), [`Error::Model`] for a bad model directory,
/// [`Error::Interrupted`] once `rt.cancel` is set; no output is left behind on error.
pub fn predict_file(cfg: &PredictConfig, rt: &Runtime) -> Result<PredictReport> {
    rt.install(|| {
        let source = EmbeddingSource::open_inputs(&cfg.inputs, &cfg.column)?;
        match source.dtype() {
            DType::Float32 => predict_typed::<f32>(cfg, &source, rt),
            DType::Float64 => predict_typed::<f64>(cfg, &source, rt),
        }
    })
}

fn predict_typed<T: Real>(
    cfg: &PredictConfig,
    source: &EmbeddingSource,
    rt: &Runtime,
) -> Result<PredictReport> {
    let progress = rt.progress;
    let mut rec = StageRecorder::new();
    let model = load_pipeline::<T>(&cfg.model)?;
    if source.n_features() != model.n_features() {
        return Err(Error::column(
            source.path(),
            source.column(),
            format!(
                "vectors have {} features but the model expects {}",
                source.n_features(),
                model.n_features()
            ),
        ));
    }
    if let Some(out) = &cfg.output {
        crate::io::OutputTarget::for_source(out, source)?.check()?;
    }
    let k = model.kmeans().n_clusters();
    let mut counts = vec![0u64; k];
    let mut score_sum = vec![0.0f64; k];
    let mut rejected = 0u64;
    rec.start("predict");
    let t0 = std::time::Instant::now();
    let mut others = match &cfg.output {
        Some(_) => source.other_columns(cfg.batch_rows)?,
        None => None,
    };
    let mut writer = match &cfg.output {
        Some(p) => Some(OutputWriter::to_target(
            &crate::io::OutputTarget::for_source(p, source)?,
            others.as_ref().map(|o| o.schema()),
            true,
            &source.partition_keys(),
        )?),
        None => None,
    };
    let mut pending: Option<RecordBatch> = None;
    progress.begin("predict", Some(source.n_samples() as u64));
    let mut reader = source.blocks::<T>(cfg.batch_rows)?;
    while let Some(block) = reader.next_block()? {
        rt.cancel.check()?;
        let mut a = model.assign_block(
            block.data,
            (source.path(), source.column()),
            block.start_row,
        )?;
        for (&l, &s) in a.labels.iter().zip(&a.scores) {
            counts[l as usize] += 1;
            score_sum[l as usize] += s as f64;
        }
        rejected += model.reject(&mut a, cfg.rejection)?;
        if let Some(w) = writer.as_mut() {
            write_aligned(w, others.as_mut(), &mut pending, &a, source)?;
        }
        progress.advance(block.rows as u64);
    }
    progress.end();
    let n = reader.rows_read();
    if let Some(w) = writer {
        w.finish()?;
    }
    let seconds = t0.elapsed().as_secs_f64();
    rec.finish(n);
    Ok(PredictReport {
        n_samples: n,
        rows_per_second: n as f64 / seconds.max(1e-9),
        rejected,
        rejection_rate: rejected as f64 / n.max(1) as f64,
        cluster_score_mean: score_sum
            .iter()
            .zip(&counts)
            .map(|(s, &c)| if c > 0 { s / c as f64 } else { f64::NAN })
            .collect(),
        cluster_counts: counts,
        peak_rss_bytes: rec.peak_rss_bytes(),
        stage_peaks: rec.stage_peaks(),
        stages: rec.stages().to_vec(),
    })
}

/// Writes one block's results with the matching rows of the other columns.
fn write_aligned(
    w: &mut OutputWriter,
    others: Option<&mut crate::io::OtherColumns>,
    pending: &mut Option<RecordBatch>,
    a: &Assignment,
    source: &EmbeddingSource,
) -> Result<()> {
    let rows = a.labels.len();
    let Some(others) = others else {
        return w.write_with(None, &a.labels, &a.scores, Some(&a.confidence));
    };
    let mut at = 0;
    while at < rows {
        let batch = match pending.take() {
            Some(b) => b,
            None => others.next().ok_or_else(|| {
                Error::format(
                    source.path(),
                    "other columns have fewer rows than the embedding column",
                )
            })??,
        };
        let take = (rows - at).min(batch.num_rows());
        if take < batch.num_rows() {
            *pending = Some(batch.slice(take, batch.num_rows() - take));
        }
        let part = batch.slice(0, take);
        w.write_with(
            Some(&part),
            &a.labels[at..at + take],
            &a.scores[at..at + take],
            Some(&a.confidence[at..at + take]),
        )?;
        at += take;
    }
    Ok(())
}

/// Drift of new rows against the training calibration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DriftReport {
    /// Training share of each cluster.
    pub train_share: Vec<f64>,
    /// Share of the new rows assigned to each cluster.
    pub new_share: Vec<f64>,
    /// Total variation distance between the two: `0.5 * sum |new - train|`.
    pub share_distance: f64,
    /// Mean score of new rows minus training mean, per cluster (NaN where no new rows).
    pub score_shift: Vec<f64>,
    /// Row-weighted mean score shift.
    pub mean_score_shift: f64,
    /// Rejection rate at the adaptive p10 threshold (about 0.10 without drift).
    pub rejection_rate_p10: f64,
    pub drift: bool,
    pub verdict: String,
    pub predict: PredictReport,
}

/// Thresholds of the verdict: share distance above this, or p10 rejection above twice 10 %.
pub const DRIFT_SHARE_DISTANCE: f64 = 0.10;
pub const DRIFT_REJECTION_RATE: f64 = 0.20;

/// Assigns `input` with the model and compares with the training calibration.
pub fn drift(
    model_dir: &Path,
    inputs: &[PathBuf],
    column: &str,
    batch_rows: usize,
    rt: &Runtime,
) -> Result<DriftReport> {
    let cfg = PredictConfig {
        model: model_dir.to_path_buf(),
        inputs: inputs.to_vec(),
        column: column.to_string(),
        output: None,
        batch_rows,
        rejection: Rejection::Adaptive(1),
    };
    let p = predict_file(&cfg, rt)?;
    let cal = load_pipeline::<f64>(model_dir)?.calibration().to_vec();
    let total_train: u64 = cal.iter().map(|c| c.size).sum();
    let train_share: Vec<f64> = cal
        .iter()
        .map(|c| c.size as f64 / total_train.max(1) as f64)
        .collect();
    let new_share: Vec<f64> = p
        .cluster_counts
        .iter()
        .map(|&c| c as f64 / p.n_samples.max(1) as f64)
        .collect();
    let share_distance = 0.5
        * train_share
            .iter()
            .zip(&new_share)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>();
    let score_shift: Vec<f64> = cal
        .iter()
        .zip(&p.cluster_score_mean)
        .map(|(c, &m)| m - c.score_mean)
        .collect();
    let mean_score_shift = score_shift
        .iter()
        .zip(&p.cluster_counts)
        .filter(|(s, _)| s.is_finite())
        .map(|(s, &c)| s * c as f64)
        .sum::<f64>()
        / p.n_samples.max(1) as f64;
    let drift = share_distance > DRIFT_SHARE_DISTANCE || p.rejection_rate > DRIFT_REJECTION_RATE;
    let verdict = format!(
        "{}: cluster shares differ by {:.3} (total variation; threshold {DRIFT_SHARE_DISTANCE}), {:.1} % of rows fall below their cluster's training p10 confidence (about 10 % expected; threshold {:.0} %), mean score shift {:+.4}",
        if drift { "DRIFT" } else { "no drift" },
        share_distance,
        100.0 * p.rejection_rate,
        100.0 * DRIFT_REJECTION_RATE,
        mean_score_shift
    );
    Ok(DriftReport {
        train_share,
        new_share,
        share_distance,
        score_shift,
        mean_score_shift,
        rejection_rate_p10: p.rejection_rate,
        drift,
        verdict,
        predict: p,
    })
}
