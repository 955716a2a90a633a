//! Fit once, assign forever: saved models applied to new rows, with confidence and drift.
//!
//! [`Model::load`] reads a model directory ([`crate::persist`]) and checks it;
//! [`predict_file`] streams a Parquet/`.npy` file through the saved preprocessing (normalize,
//! PCA, normalize) and the centroids, one block at a time (peak memory: one block
//! `b d s`, its reduced rows `b D s`, the model), writing `cluster`, `score` and
//! `confidence` next to the input's other columns; [`drift`] compares the assignment of new
//! rows with the training calibration.

use crate::cluster::{Assignment, KMeans, Metric};
use crate::decomposition::{Pca, PcaTransform};
use crate::error::{Error, Result};
use crate::io::{EmbeddingSource, OutputWriter};
use crate::memory::{StageRecorder, StageReport};
use crate::pipeline::Progress;
use crate::preprocessing::l2_normalize_rows;
use crate::real::{DType, Real};
use arrow_array::RecordBatch;
use std::path::{Path, PathBuf};

/// Quantiles stored per cluster.
pub const QUANTILES: [(&str, f64); 4] = [("p5", 0.05), ("p10", 0.10), ("p25", 0.25), ("p50", 0.50)];

/// Training statistics of one cluster.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClusterCalibration {
    pub size: u64,
    pub score_mean: f64,
    /// Score quantiles p5, p10, p25, p50.
    pub score_quantiles: [f64; 4],
    pub confidence_mean: f64,
    /// Confidence (normalized top-2 margin) quantiles p5, p10, p25, p50.
    pub confidence_quantiles: [f64; 4],
}

fn quantiles(v: &mut [f32]) -> [f64; 4] {
    if v.is_empty() {
        return [f64::NAN; 4];
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    QUANTILES.map(|(_, q)| {
        // linear interpolation, as numpy's default
        let pos = q * (v.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        v[lo] as f64 + (v[hi] as f64 - v[lo] as f64) * (pos - lo as f64)
    })
}

/// Per-cluster calibration from the training assignment.
pub fn calibrate(a: &Assignment, n_clusters: usize) -> Vec<ClusterCalibration> {
    let mut scores: Vec<Vec<f32>> = vec![Vec::new(); n_clusters];
    let mut conf: Vec<Vec<f32>> = vec![Vec::new(); n_clusters];
    for ((&l, &s), &c) in a.labels.iter().zip(&a.scores).zip(&a.confidence) {
        scores[l as usize].push(s);
        conf[l as usize].push(c);
    }
    scores
        .into_iter()
        .zip(conf)
        .map(|(mut s, mut c)| {
            let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64;
            ClusterCalibration {
                size: s.len() as u64,
                score_mean: mean(&s),
                confidence_mean: mean(&c),
                score_quantiles: quantiles(&mut s),
                confidence_quantiles: quantiles(&mut c),
            }
        })
        .collect()
}

/// When to reject an assignment (label -1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rejection {
    None,
    /// Reject rows whose confidence is below this global threshold.
    MinConfidence(f32),
    /// Reject rows whose confidence is below their cluster's training quantile
    /// (index into [`QUANTILES`]): about that share of in-distribution rows is rejected.
    Adaptive(usize),
}

impl std::str::FromStr for Rejection {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        QUANTILES
            .iter()
            .position(|(name, _)| *name == s)
            .map(Rejection::Adaptive)
            .ok_or_else(|| {
                Error::parameter(format!("--adaptive {s:?}: expected p5, p10, p25 or p50"))
            })
    }
}

/// A loaded model, in the dtype of the data it will assign.
pub struct Model<T> {
    pub steps: Vec<String>,
    pub n_features: usize,
    pca: Option<PcaTransform<T>>,
    pub kmeans: KMeans<T>,
    pub calibration: Vec<ClusterCalibration>,
}

impl<T: Real> Model<T> {
    /// Loads and checks a model directory written by `embedcluster run --model`.
    ///
    /// # Errors
    /// [`Error::Model`] when a file is missing, truncated, of another format version, or
    /// inconsistent (shapes, steps, calibration).
    pub fn load(dir: &Path) -> Result<Self> {
        Self::from_loaded(dir, crate::persist::load_model(dir)?)
    }

    /// Checks a loaded model's manifest against its tensors; `dir` names it in errors.
    ///
    /// # Errors
    /// [`Error::Model`], as [`load`](Self::load).
    pub fn from_loaded(dir: &Path, m: crate::persist::LoadedModel) -> Result<Self> {
        let bad = |msg: String| Error::Model {
            path: dir.to_path_buf(),
            message: msg,
        };
        let steps: Vec<String> =
            serde_json::from_value(m.manifest.get("steps").cloned().unwrap_or_default())
                .map_err(|e| bad(format!("manifest steps: {e}")))?;
        let metric: Metric =
            serde_json::from_value(m.manifest.get("metric").cloned().unwrap_or_default())
                .map_err(|e| bad(format!("manifest metric: {e}")))?;
        let (centers, k, dim) = m.cluster_centers;
        let pca = match (m.pca_mean, m.pca_components) {
            (Some(mean), Some((components, nc, nf))) => Some(Pca {
                n_features: nf,
                n_components: nc,
                mean,
                components,
                explained_variance: vec![],
                explained_variance_ratio: vec![],
                n_samples_seen: 0,
                fit_method: String::new(),
            }),
            _ => None,
        };
        let matryoshka = steps.iter().any(|s| s.starts_with("matryoshka:"));
        let n_features = match (&pca, matryoshka) {
            (Some(p), _) => p.n_features,
            (None, true) => m
                .manifest
                .get("n_features")
                .and_then(|v| v.as_u64())
                .ok_or_else(|| bad("manifest has no n_features".into()))?
                as usize,
            (None, false) => dim,
        };
        if n_features == 0 || (matryoshka && n_features < dim) {
            return Err(bad(format!(
                "n_features = {n_features} cannot feed {dim}-dimensional centroids"
            )));
        }
        // the order `run` writes: [normalize] [pca:D | matryoshka:D] [normalize]
        let reductions = steps.iter().filter(|s| *s != "normalize").count();
        let shape_ok = reductions <= 1
            && steps.len() <= 3
            && steps.windows(2).all(|w| w[0] != w[1])
            && (steps.len() < 3 || (steps[0] == "normalize" && steps[2] == "normalize"));
        if !shape_ok || (reductions == 0 && (pca.is_some() || matryoshka)) {
            return Err(bad(format!(
                "steps {steps:?} are not [normalize] [pca:D | matryoshka:D] [normalize]"
            )));
        }
        if pca.is_some() && reductions == 0 {
            return Err(bad("pca tensors without a pca step".into()));
        }
        for s in &steps {
            let ok = s == "normalize"
                || (pca.is_some()
                    && s.strip_prefix("pca:").and_then(|k| k.parse::<usize>().ok()) == Some(dim))
                || (pca.is_none()
                    && s.strip_prefix("matryoshka:")
                        .and_then(|k| k.parse::<usize>().ok())
                        == Some(dim));
            if !ok {
                return Err(bad(format!("unsupported preprocessing step {s:?}")));
            }
        }
        let calibration: Vec<ClusterCalibration> = match m.manifest.get("calibration") {
            Some(c) => {
                serde_json::from_value(c.clone()).map_err(|e| bad(format!("calibration: {e}")))?
            }
            None => Vec::new(),
        };
        if !calibration.is_empty() && calibration.len() != k {
            return Err(bad(format!(
                "calibration has {} clusters, centroids {k}",
                calibration.len()
            )));
        }
        Ok(Model {
            steps,
            n_features,
            pca: pca.as_ref().map(|p| p.transformer::<T>()),
            kmeans: KMeans::from_centers(
                centers.iter().map(|&v| T::from_f64(v)).collect(),
                k,
                metric,
            ),
            calibration,
        })
    }

    /// Applies the steps to a block (normalized in place) and assigns it. `first_row` is for
    /// error messages.
    /// `origin` (path, column) names the data in errors.
    pub fn assign_block(
        &self,
        block: &mut [T],
        origin: (&Path, &str),
        first_row: u64,
    ) -> Result<Assignment> {
        let d = self.n_features;
        let rows = block.len() / d;
        let mut reduced: Option<Vec<T>> = None;
        for step in &self.steps {
            let (data, dim) = match reduced.as_mut() {
                Some(r) => (&mut r[..], self.kmeans.n_features),
                None => (&mut block[..], d),
            };
            if step == "normalize" {
                if let Err(i) = l2_normalize_rows(data, dim) {
                    return Err(Error::InvalidRow {
                        path: origin.0.to_path_buf(),
                        row: first_row + i as u64,
                        column: origin.1.to_string(),
                        message: "all zeros after preprocessing; cannot be normalized for the cosine metric".into(),
                    });
                }
            } else if step.starts_with("matryoshka:") {
                let k = self.kmeans.n_features;
                let mut out = vec![T::ZERO; rows * k];
                if let Err(i) = crate::decomposition::matryoshka(data, dim, k, &mut out) {
                    return Err(Error::InvalidRow {
                        path: origin.0.to_path_buf(),
                        row: first_row + i as u64,
                        column: origin.1.to_string(),
                        message: "the truncated vector is all zeros".into(),
                    });
                }
                reduced = Some(out);
            } else {
                let t = self.pca.as_ref().expect("checked at load");
                let mut out = vec![T::ZERO; rows * t.n_components];
                t.transform(data, &mut out);
                reduced = Some(out);
            }
        }
        let x: &[T] = reduced.as_deref().unwrap_or(block);
        Ok(self.kmeans.predict_with_confidence(x))
    }

    /// Applies `rule` to an assignment (rejected rows get label -1); returns how many.
    pub fn reject(&self, a: &mut Assignment, rule: Rejection) -> Result<u64> {
        let threshold = |l: i32| -> f32 {
            match rule {
                Rejection::None => f32::NEG_INFINITY,
                Rejection::MinConfidence(c) => c,
                Rejection::Adaptive(q) => {
                    self.calibration[l as usize].confidence_quantiles[q] as f32
                }
            }
        };
        if matches!(rule, Rejection::Adaptive(_)) && self.calibration.is_empty() {
            return Err(Error::parameter(
                "this model has no calibration statistics (refit it with this version)",
            ));
        }
        let mut n = 0;
        for (l, c) in a.labels.iter_mut().zip(&a.confidence) {
            if *c < threshold(*l) {
                *l = -1;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// What `embedcluster predict` / `drift` take.
#[derive(Debug, Clone)]
pub struct PredictConfig {
    pub model: PathBuf,
    pub input: PathBuf,
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
}

/// Streams `cfg.input` through the model; writes the output when asked.
pub fn predict_file(cfg: &PredictConfig, progress: &dyn Progress) -> Result<PredictReport> {
    let source = EmbeddingSource::open(&cfg.input, &cfg.column)?;
    match source.dtype() {
        DType::Float32 => predict_typed::<f32>(cfg, &source, progress),
        DType::Float64 => predict_typed::<f64>(cfg, &source, progress),
    }
}

fn predict_typed<T: Real>(
    cfg: &PredictConfig,
    source: &EmbeddingSource,
    progress: &dyn Progress,
) -> Result<PredictReport> {
    let mut rec = StageRecorder::new();
    let model = Model::<T>::load(&cfg.model)?;
    if source.n_features() != model.n_features {
        return Err(Error::column(
            source.path(),
            source.column(),
            format!(
                "vectors have {} features but the model expects {}",
                source.n_features(),
                model.n_features
            ),
        ));
    }
    if let Some(out) = &cfg.output {
        drop(crate::io::AtomicFile::create(out)?);
    }
    let k = model.kmeans.n_clusters;
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
        Some(p) => Some(OutputWriter::create_with(
            p,
            others.as_ref().map(|o| o.schema()),
            true,
        )?),
        None => None,
    };
    let mut pending: Option<RecordBatch> = None;
    progress.begin("predict", Some(source.n_samples() as u64));
    let mut reader = source.blocks::<T>(cfg.batch_rows)?;
    while let Some(block) = reader.next_block()? {
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
    input: &Path,
    column: &str,
    batch_rows: usize,
    progress: &dyn Progress,
) -> Result<DriftReport> {
    let cfg = PredictConfig {
        model: model_dir.to_path_buf(),
        input: input.to_path_buf(),
        column: column.to_string(),
        output: None,
        batch_rows,
        rejection: Rejection::Adaptive(1),
    };
    let p = predict_file(&cfg, progress)?;
    let cal = Model::<f64>::load(model_dir)?.calibration;
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
