//! A fitted k-means model: centroids and what the fit saw, behind a validated constructor;
//! assigning new rows to it (labels, scores, top-2 confidence).

use super::assign::{Data, Prepared};
use super::Metric;
use crate::dtype::Real;
use crate::error::{Error, Result};
use rayon::prelude::*;

/// Rows per call of the assignment kernel in [`KMeans::predict`] and friends.
const ASSIGN_PIECE_ROWS: usize = 4096;

/// A fitted k-means model. Fields are private: [`fit`](super::fit) makes one, and
/// [`KMeans::from_centers`] checks given centroids, so every model can assign rows.
#[derive(Debug, Clone)]
pub struct KMeans<T> {
    pub(crate) n_clusters: usize,
    pub(crate) n_features: usize,
    pub(crate) metric: Metric,
    /// `n_clusters x n_features`, row-major.
    pub(crate) cluster_centers: Vec<T>,
    /// Cluster of each training row.
    pub(crate) labels: Vec<i32>,
    /// Per training row: cosine similarity (cosine) or squared distance (Euclidean) to its
    /// centroid.
    pub(crate) scores: Vec<f32>,
    /// Objective of the returned labels and centroids (see module docs).
    pub(crate) inertia: f64,
    /// Lloyd iterations run by the best restart.
    pub(crate) n_iter: usize,
    /// Objective after each assignment step of the best restart.
    pub(crate) objective_history: Vec<f64>,
    /// Whether the best restart stopped on `tol` or stable labels rather than `max_iter`.
    pub(crate) converged: bool,
    /// Rows per cluster.
    pub(crate) counts: Vec<u64>,
    /// What the pruned assignment did in the best restart's Lloyd passes (`None`: it did
    /// not run).
    pub(crate) pruning: Option<super::PruningSummary>,
    /// Mini-batch steps run ([`super::fit_minibatch`]; 0 for Lloyd).
    pub(crate) n_steps: u64,
}

impl<T> KMeans<T> {
    /// What the pruned assignment did (see [`super::Pruning`]), if it ran.
    pub fn pruning(&self) -> Option<&super::PruningSummary> {
        self.pruning.as_ref()
    }

    /// Number of clusters `k`.
    pub fn n_clusters(&self) -> usize {
        self.n_clusters
    }
    /// Columns of the rows it assigns (the centroids' dimension).
    pub fn n_features(&self) -> usize {
        self.n_features
    }
    /// [`Distance::Euclidean`](crate::linalg::Distance::Euclidean) or
    /// [`Distance::Cosine`](crate::linalg::Distance::Cosine).
    pub fn metric(&self) -> Metric {
        self.metric
    }
    /// `n_clusters x n_features` centroids, row-major.
    pub fn cluster_centers(&self) -> &[T] {
        &self.cluster_centers
    }
    /// Cluster of each training row (empty for a model made from centroids).
    pub fn labels(&self) -> &[i32] {
        &self.labels
    }
    /// Per training row: cosine similarity (cosine) or squared distance (Euclidean) to its
    /// centroid.
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }
    /// Objective of the returned labels and centroids.
    pub fn inertia(&self) -> f64 {
        self.inertia
    }
    /// Mini-batch steps run (0 for Lloyd's fits).
    pub fn n_steps(&self) -> u64 {
        self.n_steps
    }

    /// Lloyd iterations (epochs for mini-batch k-means) of the best restart.
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }
    /// Objective after each assignment step of the best restart.
    pub fn objective_history(&self) -> &[f64] {
        &self.objective_history
    }
    /// Whether the best restart stopped on `tol` or stable labels rather than `max_iter`.
    pub fn converged(&self) -> bool {
        self.converged
    }
    /// Training rows per cluster.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }
    /// A copy without the per-row training results (labels, scores): the model alone,
    /// `k d s` bytes plus its history.
    pub fn without_training_rows(&self) -> Self
    where
        T: Clone,
    {
        KMeans {
            n_clusters: self.n_clusters,
            n_features: self.n_features,
            metric: self.metric,
            cluster_centers: self.cluster_centers.clone(),
            labels: Vec::new(),
            scores: Vec::new(),
            inertia: self.inertia,
            n_iter: self.n_iter,
            objective_history: self.objective_history.clone(),
            converged: self.converged,
            counts: self.counts.clone(),
            pruning: self.pruning,
            n_steps: self.n_steps,
        }
    }

    /// Moves the training labels and scores out (they are left empty).
    pub fn take_labels_and_scores(&mut self) -> (Vec<i32>, Vec<f32>) {
        (
            std::mem::take(&mut self.labels),
            std::mem::take(&mut self.scores),
        )
    }

    /// Multiplies the inertia and objective history by `w` (a fit with equal weights `w`).
    pub(crate) fn scale_objective(&mut self, w: f64) {
        self.inertia *= w;
        self.objective_history.iter_mut().for_each(|v| *v *= w);
    }

    /// Clusters left without members (only when the data has fewer distinct points
    /// than `n_clusters`, e.g. duplicate rows: every other empty cluster is re-seeded).
    pub fn n_empty_clusters(&self) -> usize {
        self.counts.iter().filter(|&&c| c == 0).count()
    }

    /// A warning when some clusters are empty (scikit-learn's text, "Number of distinct
    /// clusters (c) found smaller than n_clusters (k). Possibly due to duplicate points in
    /// X.", which users match by regex, then the count of empty clusters), else `None`.
    pub fn distinct_clusters_warning(&self) -> Option<String> {
        let empty = self.n_empty_clusters();
        (empty > 0 && !self.counts.is_empty()).then(|| {
            format!(
                "Number of distinct clusters ({}) found smaller than n_clusters ({}). Possibly due to duplicate points in X ({} clusters are empty).",
                self.n_clusters - empty,
                self.n_clusters,
                empty
            )
        })
    }
}

/// Per-row scores from distances: cosine similarity (`1 - d`) or the squared distance.
pub(crate) fn scores_from_distances<T: Real>(metric: Metric, dists: &[T]) -> Vec<f32> {
    dists
        .iter()
        .map(|&v| match metric {
            Metric::Cosine => (1.0 - v.to_f64()) as f32,
            _ => v.to_f64() as f32,
        })
        .collect()
}

/// Per-row results of assigning new rows to fitted centroids.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// Nearest centroid.
    pub labels: Vec<i32>,
    /// Cosine similarity (cosine) or squared distance (Euclidean) to it.
    pub scores: Vec<f32>,
    /// Top-2 margin normalized to [0, 1): `(d2 - d1) / (d2 + d1)` with `d1 <= d2` the
    /// dissimilarities (`1 - cos`, or squared distance) to the best and second-best
    /// centroids. 0 is a tie; it tends to 1 as the row sits on its centroid.
    pub confidence: Vec<f32>,
}

/// Normalized top-2 margin; see [`Assignment::confidence`].
pub fn confidence_from_distances(d1: f64, d2: f64) -> f32 {
    let (d1, d2) = (d1.max(0.0), d2.max(0.0));
    ((d2 - d1).max(0.0) / (d2 + d1 + 1e-12)) as f32
}

impl<T: Real> KMeans<T> {
    /// A model from given centroids (`n_clusters x n_features`, row-major), for assigning
    /// new rows; the training fields are empty.
    ///
    /// # Errors
    /// [`Error::Parameter`] (`cluster_centers_`) when `n_clusters` is 0, the values are not
    /// `n_clusters` whole rows, or one is not finite; (`metric`) for a metric k-means does
    /// not take.
    pub fn from_centers(
        cluster_centers: Vec<T>,
        n_clusters: usize,
        metric: Metric,
    ) -> Result<Self> {
        metric.check_in(&[Metric::Euclidean, Metric::Cosine])?;
        if n_clusters == 0
            || cluster_centers.is_empty()
            || !cluster_centers.len().is_multiple_of(n_clusters)
        {
            return Err(Error::param_msg(
                "cluster_centers_",
                format!(
                    "{} values are not {n_clusters} non-empty rows",
                    cluster_centers.len()
                ),
            ));
        }
        if cluster_centers.iter().any(|v| !v.to_f64().is_finite()) {
            return Err(Error::param_msg("cluster_centers_", "must be finite"));
        }
        Ok(KMeans {
            n_clusters,
            n_features: cluster_centers.len() / n_clusters,
            metric,
            cluster_centers,
            labels: vec![],
            scores: vec![],
            inertia: 0.0,
            n_iter: 0,
            objective_history: vec![],
            converged: true,
            counts: vec![],
            pruning: None,
            n_steps: 0,
        })
    }

    /// The same model with a fit's summary (a model rebuilt from saved centroids):
    /// its objective and Lloyd iterations.
    pub fn with_fit_summary(mut self, inertia: f64, n_iter: usize) -> Self {
        self.inertia = inertia;
        self.n_iter = n_iter;
        self
    }

    fn check_rows(&self, x: &[T]) -> Result<()> {
        if !x.len().is_multiple_of(self.n_features) {
            return Err(Error::param_msg(
                "X",
                format!(
                    "{} values are not whole rows of {} features (the model's)",
                    x.len(),
                    self.n_features
                ),
            ));
        }
        Ok(())
    }

    /// Assigns rows `x` (`rows x n_features`): labels, distances and, with `top2`, the
    /// second-best distances. Parallel over fixed chunks; `TILE_ROWS x k` scratch per task.
    fn assign(&self, x: &[T], top2: bool) -> (Vec<i32>, Vec<T>, Option<Vec<T>>) {
        let d = self.n_features;
        let data = Data::new(x, d);
        let mut labels = vec![0i32; data.n];
        let mut dists = vec![T::ZERO; data.n];
        let mut second = if top2 {
            vec![T::ZERO; data.n]
        } else {
            Vec::new()
        };
        let prepared = Prepared::new(&self.cluster_centers, self.n_clusters, d, self.metric);
        let cr = data.chunk_rows;
        let sec_chunks: Vec<&mut [T]> = if top2 {
            second.chunks_mut(cr).collect()
        } else {
            Vec::new()
        };
        let mut sec_iter = sec_chunks.into_iter().map(Some).collect::<Vec<_>>();
        if !top2 {
            sec_iter = (0..data.n.div_ceil(cr).max(1)).map(|_| None).collect();
        }
        labels
            .par_chunks_mut(cr)
            .zip(dists.par_chunks_mut(cr))
            .zip(sec_iter.into_par_iter())
            .enumerate()
            .for_each(|(ci, ((lab, dis), sec))| {
                let start = ci * cr;
                let rows = lab.len();
                let mut tile = Vec::new();
                let xc = &x[start * d..(start + rows) * d];
                // in pieces, so that a spilled matrix's pages can be let go as they are read
                // (each row's result does not depend on the pieces)
                let mut release = crate::memory::PageReleaser::new(xc);
                let mut sec = sec;
                let mut b = 0;
                while b < rows {
                    let m = ASSIGN_PIECE_ROWS.min(rows - b);
                    prepared.assign(
                        &xc[b * d..(b + m) * d],
                        &data.norms[start + b..start + b + m],
                        self.n_clusters,
                        d,
                        self.metric,
                        &mut lab[b..b + m],
                        &mut dis[b..b + m],
                        sec.as_deref_mut().map(|s| &mut s[b..b + m]),
                        &mut tile,
                    );
                    b += m;
                    release.consumed::<T>(b * d);
                }
            });
        (labels, dists, if top2 { Some(second) } else { None })
    }

    /// Assigns rows `x` (`rows x n_features`) to the nearest centroid; returns labels and
    /// scores (cosine similarity, or squared distance).
    ///
    /// # Errors
    /// [`Error::Parameter`] when `x` is not whole rows of `n_features`.
    pub fn predict(&self, x: &[T]) -> Result<(Vec<i32>, Vec<f32>)> {
        self.check_rows(x)?;
        let (labels, dists, _) = self.assign(x, false);
        Ok((labels, scores_from_distances(self.metric, &dists)))
    }

    /// [`predict`](Self::predict) plus the normalized top-2 margin of each row.
    ///
    /// # Errors
    /// [`Error::Parameter`] when `x` is not whole rows of `n_features`.
    pub fn predict_with_confidence(&self, x: &[T]) -> Result<Assignment> {
        self.check_rows(x)?;
        let (labels, dists, second) = self.assign(x, true);
        let second = second.unwrap_or_default();
        let confidence = if self.n_clusters < 2 {
            vec![1.0 - f32::EPSILON; labels.len()]
        } else {
            dists
                .iter()
                .zip(&second)
                .map(|(&a, &b)| confidence_from_distances(a.to_f64(), b.to_f64()))
                .collect()
        };
        Ok(Assignment {
            labels,
            scores: scores_from_distances(self.metric, &dists),
            confidence,
        })
    }
}
