//! The pipeline every front end drives: typed preprocessing steps (normalize, PCA,
//! Matryoshka) and k-means, fitted once, then applied block by block.
//!
//! A [`FittedPipeline`] is what `embedcluster run --model DIR` saves, what
//! `embedcluster predict` and Python's `ClusterModel` load ([`crate::persist`]), and what
//! assigns new rows: [`FittedPipeline::assign_block`] normalizes, projects and assigns one
//! block (peak memory: the block, its reduced rows `b D s`, and the model). Its fields are
//! private; [`FittedPipeline::new`] checks every shape, so a pipeline that exists can
//! assign without panicking.
//!
//! # Example
//! ```
//! use embedcluster::cluster::{KMeans, Metric};
//! use embedcluster::pipeline::{FittedPipeline, Step};
//!
//! // two unit centroids in 2-D, rows normalized before assignment
//! let km = KMeans::from_centers(vec![1.0f32, 0.0, 0.0, 1.0], 2, Metric::Cosine).unwrap();
//! let p = FittedPipeline::new(vec![Step::Normalize], 2, None, km, vec![]).unwrap();
//! let mut block = vec![3.0f32, 0.1, 0.2, 5.0];
//! let a = p.assign_block(&mut block, (std::path::Path::new("<array>"), "X"), 0).unwrap();
//! assert_eq!(a.labels, vec![0, 1]);
//! ```

use crate::cluster::{Assignment, KMeans, Metric};
use crate::decomposition::{Pca, PcaTransform};
use crate::dtype::Real;
use crate::error::{Error, Result};
use crate::preprocessing::l2_normalize_rows;
use std::path::Path;

/// How to reduce the dimension before clustering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Reduce {
    None,
    /// PCA to this many components.
    Pca(usize),
    /// First this many columns, then L2 renormalization.
    Matryoshka(usize),
}

impl std::str::FromStr for Reduce {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::param(
                "reduce",
                format!("{s:?}"),
                "is not valid: expected none, pca:D or matryoshka:D",
            )
        };
        if s == "none" {
            return Ok(Reduce::None);
        }
        let (kind, n) = s.split_once(':').ok_or_else(bad)?;
        let n: usize = n.parse().map_err(|_| bad())?;
        match kind {
            "pca" => Ok(Reduce::Pca(n)),
            "matryoshka" => Ok(Reduce::Matryoshka(n)),
            _ => Err(bad()),
        }
    }
}

/// How PCA is fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum PcaFit {
    /// Streaming covariance over all rows, then an eigendecomposition.
    Exact,
    /// Randomized SVD on a uniform sample of this many rows.
    Sample(usize),
}

impl std::str::FromStr for PcaFit {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s == "exact" {
            return Ok(PcaFit::Exact);
        }
        match s.split_once(':') {
            Some(("sample", n)) => n
                .parse()
                .ok()
                .filter(|&n: &usize| n >= 2)
                .map(PcaFit::Sample)
                .ok_or_else(|| {
                    Error::param("pca_fit", format!("{s:?}"), "N must be an integer >= 2")
                }),
            _ => Err(Error::param(
                "pca_fit",
                format!("{s:?}"),
                "is not valid: expected exact or sample:N",
            )),
        }
    }
}

impl Reduce {
    /// `none`, `pca:D` or `matryoshka:D` (what [`FromStr`](std::str::FromStr) parses).
    pub fn name(&self) -> String {
        match self {
            Reduce::None => "none".into(),
            Reduce::Pca(k) => format!("pca:{k}"),
            Reduce::Matryoshka(k) => format!("matryoshka:{k}"),
        }
    }
    /// Columns after the reduction of `n_features` columns.
    pub fn dim(&self, n_features: usize) -> usize {
        match self {
            Reduce::None => n_features,
            Reduce::Pca(k) | Reduce::Matryoshka(k) => *k,
        }
    }
}

impl PcaFit {
    /// `exact` or `sample:N`.
    pub fn name(&self) -> String {
        match self {
            PcaFit::Exact => "exact".into(),
            PcaFit::Sample(s) => format!("sample:{s}"),
        }
    }
}

/// One preprocessing step, in the order a pipeline applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// L2-normalize each row (an all-zero row is an error).
    Normalize,
    /// Project onto the fitted PCA's `D` components.
    Pca(usize),
    /// Keep the first `D` columns, then L2-normalize (Matryoshka embeddings).
    Matryoshka(usize),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Normalize => f.write_str("normalize"),
            Step::Pca(k) => write!(f, "pca:{k}"),
            Step::Matryoshka(k) => write!(f, "matryoshka:{k}"),
        }
    }
}

impl std::str::FromStr for Step {
    type Err = Error;
    /// `normalize`, `pca:D` or `matryoshka:D`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::param(
                "steps",
                format!("{s:?}"),
                "is not valid: expected normalize, pca:D or matryoshka:D",
            )
        };
        if s == "normalize" {
            return Ok(Step::Normalize);
        }
        let (kind, n) = s.split_once(':').ok_or_else(bad)?;
        let n: usize = n.parse().map_err(|_| bad())?;
        match kind {
            "pca" => Ok(Step::Pca(n)),
            "matryoshka" => Ok(Step::Matryoshka(n)),
            _ => Err(bad()),
        }
    }
}

impl serde::Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The steps `run` fits for `metric` and `reduce`: `[normalize] [pca:D | matryoshka:D]
/// [normalize]` (cosine normalizes before the reduction and after PCA; Matryoshka
/// renormalizes itself).
pub fn steps_for(metric: Metric, reduce: Reduce) -> Vec<Step> {
    let mut s = Vec::new();
    if metric == Metric::Cosine {
        s.push(Step::Normalize);
    }
    match reduce {
        Reduce::Pca(k) => s.push(Step::Pca(k)),
        Reduce::Matryoshka(k) => s.push(Step::Matryoshka(k)),
        Reduce::None => {}
    }
    if metric == Metric::Cosine && matches!(reduce, Reduce::Pca(_)) {
        s.push(Step::Normalize);
    }
    s
}

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
                Error::param(
                    "adaptive",
                    format!("{s:?}"),
                    "is not valid: expected p5, p10, p25 or p50",
                )
            })
    }
}

/// A fitted pipeline in the dtype of the data it assigns: steps, PCA (for a `pca:D` step),
/// k-means, and the training calibration (per-cluster score and confidence quantiles; empty
/// when the fit did not compute it).
#[derive(Debug, Clone)]
pub struct FittedPipeline<T> {
    steps: Vec<Step>,
    n_features: usize,
    pca: Option<Pca>,
    transform: Option<PcaTransform<T>>,
    kmeans: KMeans<T>,
    calibration: Vec<ClusterCalibration>,
}

impl<T: Real> FittedPipeline<T> {
    /// A pipeline from its parts, checked: the steps are `[normalize] [pca:D |
    /// matryoshka:D] [normalize]`; `pca` is given exactly when there is a `pca:D` step, with
    /// `n_features` inputs and `D` = the centroids' dimension; Matryoshka keeps at most
    /// `n_features` columns; the calibration is empty or has one entry per cluster.
    ///
    /// # Errors
    /// [`Error::Parameter`] naming what is inconsistent.
    pub fn new(
        steps: Vec<Step>,
        n_features: usize,
        pca: Option<Pca>,
        kmeans: KMeans<T>,
        calibration: Vec<ClusterCalibration>,
    ) -> Result<Self> {
        let dim = kmeans.n_features();
        let k = kmeans.n_clusters();
        let reductions: Vec<&Step> = steps.iter().filter(|s| **s != Step::Normalize).collect();
        let shape_ok = reductions.len() <= 1
            && steps.len() <= 3
            && steps.windows(2).all(|w| w[0] != w[1])
            && (steps.len() < 3 || (steps[0] == Step::Normalize && steps[2] == Step::Normalize));
        let bad_steps = || {
            let names: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
            Error::param(
                "steps",
                format!("{names:?}"),
                "must be [normalize] [pca:D | matryoshka:D] [normalize]",
            )
        };
        if !shape_ok {
            return Err(bad_steps());
        }
        match reductions.first() {
            None => {
                if pca.is_some() {
                    return Err(Error::param_msg("pca", "PCA tensors without a pca step"));
                }
                if n_features != dim {
                    return Err(Error::param(
                        "n_features",
                        n_features,
                        format!("must equal the centroids' dimension {dim} without a reduction"),
                    ));
                }
            }
            Some(Step::Pca(c)) => {
                let Some(p) = &pca else {
                    return Err(Error::param_msg("pca", "a pca step needs the fitted PCA"));
                };
                if *c != dim || p.n_components() != dim || p.n_features() != n_features {
                    return Err(Error::param_msg(
                        "pca",
                        format!(
                            "step pca:{c} with a PCA of {} x {} components, {n_features} features and {dim}-dimensional centroids",
                            p.n_components(),
                            p.n_features()
                        ),
                    ));
                }
            }
            Some(Step::Matryoshka(c)) => {
                if pca.is_some() {
                    return Err(bad_steps());
                }
                if *c != dim || n_features < dim {
                    return Err(Error::param_msg(
                        "steps",
                        format!(
                            "matryoshka:{c} cannot feed {dim}-dimensional centroids from {n_features} features"
                        ),
                    ));
                }
            }
            Some(Step::Normalize) => unreachable!("filtered out"),
        }
        if n_features == 0 {
            return Err(Error::param("n_features", 0, "must be at least 1"));
        }
        if !calibration.is_empty() && calibration.len() != k {
            return Err(Error::param_msg(
                "calibration",
                format!("has {} clusters, the centroids {k}", calibration.len()),
            ));
        }
        let transform = pca.as_ref().map(|p| p.transformer::<T>());
        Ok(FittedPipeline {
            steps,
            n_features,
            pca,
            transform,
            kmeans,
            calibration,
        })
    }

    /// The preprocessing steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
    /// Columns of the rows it assigns.
    pub fn n_features(&self) -> usize {
        self.n_features
    }
    /// The fitted PCA, for a `pca:D` step.
    pub fn pca(&self) -> Option<&Pca> {
        self.pca.as_ref()
    }
    /// The fitted k-means.
    pub fn kmeans(&self) -> &KMeans<T> {
        &self.kmeans
    }
    /// Per-cluster training statistics (empty when not computed).
    pub fn calibration(&self) -> &[ClusterCalibration] {
        &self.calibration
    }

    /// Applies the steps to a block (`rows x n_features`; normalized in place): the rows as
    /// k-means sees them (`rows x D`), or `None` when there is no reduction (then `block`
    /// itself holds them). `origin` (path, column) and `first_row` name the data in errors.
    ///
    /// # Errors
    /// [`Error::Parameter`] when the block is not a whole number of rows;
    /// [`Error::InvalidRow`] for a row that cannot be normalized.
    pub fn preprocess(
        &self,
        block: &mut [T],
        origin: (&Path, &str),
        first_row: u64,
    ) -> Result<Option<Vec<T>>> {
        let d = self.n_features;
        if !block.len().is_multiple_of(d) {
            return Err(Error::param_msg(
                "X",
                format!("{} values are not whole rows of {d} features", block.len()),
            ));
        }
        let rows = block.len() / d;
        let zero = |i: usize, message: &str| Error::InvalidRow {
            path: origin.0.to_path_buf(),
            row: first_row + i as u64,
            column: origin.1.to_string(),
            message: message.into(),
        };
        let mut reduced: Option<Vec<T>> = None;
        for step in &self.steps {
            let (data, dim) = match reduced.as_mut() {
                Some(r) => (&mut r[..], self.kmeans.n_features()),
                None => (&mut block[..], d),
            };
            match step {
                Step::Normalize => {
                    if let Err(i) = l2_normalize_rows(data, dim) {
                        return Err(zero(i, "all zeros after preprocessing; cannot be normalized for the cosine metric"));
                    }
                }
                Step::Matryoshka(k) => {
                    let mut out = vec![T::ZERO; rows * k];
                    if let Err(i) = crate::decomposition::matryoshka(data, dim, *k, &mut out) {
                        return Err(zero(i, "the truncated vector is all zeros"));
                    }
                    reduced = Some(out);
                }
                Step::Pca(_) => {
                    let t = self.transform.as_ref().ok_or_else(|| {
                        Error::param_msg("pca", "a pca step needs the fitted PCA")
                    })?;
                    let mut out = vec![T::ZERO; rows * t.n_components];
                    t.transform(data, &mut out)?;
                    reduced = Some(out);
                }
            }
        }
        Ok(reduced)
    }

    /// [`preprocess`](Self::preprocess), then the nearest centroid of each row, its score
    /// and confidence.
    ///
    /// # Errors
    /// As [`preprocess`](Self::preprocess).
    pub fn assign_block(
        &self,
        block: &mut [T],
        origin: (&Path, &str),
        first_row: u64,
    ) -> Result<Assignment> {
        let reduced = self.preprocess(block, origin, first_row)?;
        let x: &[T] = reduced.as_deref().unwrap_or(block);
        self.kmeans.predict_with_confidence(x)
    }

    /// Applies `rule` to an assignment (rejected rows get label -1); returns how many.
    ///
    /// # Errors
    /// [`Error::Parameter`] for an adaptive rule on a pipeline without calibration.
    pub fn reject(&self, a: &mut Assignment, rule: Rejection) -> Result<u64> {
        if matches!(rule, Rejection::Adaptive(_)) && self.calibration.is_empty() {
            return Err(Error::param_msg(
                "adaptive",
                "this model has no calibration statistics (refit it with this version)",
            ));
        }
        let threshold = |l: i32| -> f32 {
            match rule {
                Rejection::None => f32::NEG_INFINITY,
                Rejection::MinConfidence(c) => c,
                Rejection::Adaptive(q) => self
                    .calibration
                    .get(l as usize)
                    .map(|c| c.confidence_quantiles[q.min(QUANTILES.len() - 1)] as f32)
                    .unwrap_or(f32::NEG_INFINITY),
            }
        };
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
