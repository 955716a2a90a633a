//! Mini-batch k-means (Sculley 2010, "Web-scale k-means clustering") and its spherical
//! variant, for users who trade a little quality for speed at very large `n`.
//!
//! # Algorithm
//! Seeding as [`super::fit`]'s: by default `init_trials` greedy k-means++ seedings screened
//! on one uniform sample (each refined there by Lloyd; the best kept: scikit-learn's
//! `n_init` evaluated on its `init_size` sample, made robust to the seed); with
//! `init_trials = 1` one seeding on a sample of `init_size` rows (default
//! `max(3 batch_size, 3 k)`, as scikit-learn). Then each step
//! draws `batch_size` rows uniformly with replacement, assigns them to the current
//! centroids with the fused GEMM + argmin kernel, and moves every centroid `j` that
//! received members towards their mean with a per-centroid learning rate: with `N_j` the
//! total weight it has received so far and `m_j`, `s_j` this batch's weight and weighted sum,
//! `N_j += m_j; c_j = c_j + (s_j - m_j c_j) / N_j` (Sculley's update, in scikit-learn's
//! batch form). For the cosine metric the centroid is then normalized (spherical k-means on
//! the unit sphere). As scikit-learn, centroids whose weight is below `reassignment_ratio`
//! times the largest are moved, every `10 + min N_j` steps, onto the batch rows farthest
//! from their centroid (here the farthest, not a random draw, so no random numbers are used
//! after the batches), and given the smallest weight of the others.
//!
//! # Stopping
//! After `max_iter` epochs (`max_iter * n / batch_size` steps), or when the exponentially
//! weighted average of the batch objective (scikit-learn's EWA, `alpha = 2 batch_size /
//! (n + 1)`) has not improved for `max_no_improvement` steps (0: never), or when `tol > 0`
//! and the squared centroid shift of a step is at most `tol` times the data's mean variance.
//! Labels, scores and the objective are then computed by one full assignment pass.
//!
//! # Determinism
//! The batches come from one seeded generator; each batch is assigned row by row (rows are
//! independent, so the thread count does not matter) and the update adds the members in
//! batch order: the same seed gives the same centroids, bit for bit, for any thread count.
//!
//! # Peak memory
//! Data (`n d s`, the caller's) + the final labels and distances (`n (4 + s)`) + centroids
//! (`k d (8 + s)`) + one batch (`batch_size (d s + 4 + s)`) + the batch sums (`k d 8`) +
//! the seeding sample (`init_size d s`). No `n x k` matrix.

use super::assign::{lloyd_step, Data, Prepared};
use super::init::restart_seed;
use super::lloyd::seed_once;
use super::model::scores_from_distances;
use super::{Init, KMeans, KMeansParams, Metric};
use crate::dtype::Real;
use crate::error::{Error, Result};
use crate::runtime::Cancel;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// scikit-learn's default `batch_size`.
pub const DEFAULT_BATCH_SIZE: usize = 1024;
/// scikit-learn's default `max_no_improvement`.
pub const DEFAULT_MAX_NO_IMPROVEMENT: usize = 10;
/// scikit-learn's default `reassignment_ratio`.
pub const DEFAULT_REASSIGNMENT_RATIO: f64 = 0.01;

/// Parameters of [`fit_minibatch`]: `kmeans` gives `n_clusters`, `metric`, `init`
/// (`k-means++`, `random`, `k-means||` on the sample, or centroids), `init_trials` and
/// `init_size` (the seeding, as above), `max_iter` (epochs), `tol` (relative, 0 disables)
/// and `seed`. `n_init` and `pruning` are not used.
#[derive(Debug, Clone)]
pub struct MiniBatchParams {
    pub kmeans: KMeansParams,
    /// Rows per step.
    pub batch_size: usize,
    /// Steps without improvement of the smoothed batch objective before stopping; 0: off.
    pub max_no_improvement: usize,
    /// Centroids with less than this fraction of the largest weight are reassigned.
    pub reassignment_ratio: f64,
}

impl Default for MiniBatchParams {
    fn default() -> Self {
        MiniBatchParams {
            kmeans: KMeansParams {
                max_iter: 100,
                tol: 0.0,
                ..Default::default()
            },
            batch_size: DEFAULT_BATCH_SIZE,
            max_no_improvement: DEFAULT_MAX_NO_IMPROVEMENT,
            reassignment_ratio: DEFAULT_REASSIGNMENT_RATIO,
        }
    }
}

/// The state of a mini-batch fit: the centroids (f64) and the weight each has received.
/// [`MiniBatchState::partial_fit`] is one step; a front end's `partial_fit` keeps this.
#[derive(Debug, Clone)]
pub struct MiniBatchState {
    k: usize,
    d: usize,
    metric: Metric,
    /// `k x d`, row-major.
    centers: Vec<f64>,
    /// Weight received per centroid (scikit-learn's `_counts`).
    counts: Vec<f64>,
    /// Steps taken.
    n_steps: u64,
    reassignment_ratio: f64,
}

impl MiniBatchState {
    /// A state starting from `centers` (`k x d`, unit rows for the cosine metric), with no
    /// weight received yet.
    ///
    /// # Errors
    /// [`Error::Parameter`] for a shape that is not `k x d`, non-finite values, `k = 0`.
    pub fn new(centers: Vec<f64>, k: usize, d: usize, metric: Metric) -> Result<Self> {
        metric.check_in(&[Metric::Euclidean, Metric::Cosine])?;
        if k == 0 || d == 0 || centers.len() != k * d {
            return Err(Error::param_msg(
                "init",
                format!("{} values are not {k} x {d} centroids", centers.len()),
            ));
        }
        if centers.iter().any(|v| !v.is_finite()) {
            return Err(Error::param_msg("init", "centroids must be finite"));
        }
        Ok(MiniBatchState {
            k,
            d,
            metric,
            centers,
            counts: vec![0.0; k],
            n_steps: 0,
            reassignment_ratio: DEFAULT_REASSIGNMENT_RATIO,
        })
    }

    /// A state with its received weights and step count (a front end restoring one).
    ///
    /// # Errors
    /// As [`MiniBatchState::new`]; [`Error::Parameter`] for `counts` not of length `k`
    /// or negative.
    pub fn from_parts(
        centers: Vec<f64>,
        counts: Vec<f64>,
        n_steps: u64,
        k: usize,
        d: usize,
        metric: Metric,
        reassignment_ratio: f64,
    ) -> Result<Self> {
        let mut s = Self::new(centers, k, d, metric)?;
        if counts.len() != k || counts.iter().any(|c| !(c.is_finite() && *c >= 0.0)) {
            return Err(Error::param_msg(
                "counts",
                format!("expected {k} finite weights >= 0"),
            ));
        }
        s.counts = counts;
        s.n_steps = n_steps;
        s.reassignment_ratio = reassignment_ratio;
        Ok(s)
    }

    /// `k x d` centroids.
    pub fn centers(&self) -> &[f64] {
        &self.centers
    }
    /// Weight received per centroid.
    pub fn counts(&self) -> &[f64] {
        &self.counts
    }
    /// Steps taken.
    pub fn n_steps(&self) -> u64 {
        self.n_steps
    }

    /// The centroids in the data's type.
    pub fn centers_as<T: Real>(&self) -> Vec<T> {
        self.centers.iter().map(|&v| T::from_f64(v)).collect()
    }

    /// One step on `batch` (`rows x d`, unit rows for the cosine metric) with optional
    /// per-row weights: assign, update (see the module docs), maybe reassign. Returns the
    /// batch's objective per unit of weight (the mean distance before the update).
    ///
    /// Memory: `rows (4 + 2 s) + k d 8` bytes besides the batch.
    ///
    /// # Errors
    /// [`Error::Parameter`] for a batch that is not whole rows, wrong weights, or no rows.
    pub fn partial_fit<T: Real>(&mut self, batch: &[T], weights: Option<&[f64]>) -> Result<f64> {
        let (k, d) = (self.k, self.d);
        if batch.is_empty() || !batch.len().is_multiple_of(d) {
            return Err(Error::param_msg(
                "X",
                format!("a batch of {} values is not whole rows of {d}", batch.len()),
            ));
        }
        let rows = batch.len() / d;
        if let Some(w) = weights {
            if w.len() != rows || w.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(Error::param_msg(
                    "sample_weight",
                    format!("expected {rows} finite weights >= 0"),
                ));
            }
        }
        let centers: Vec<T> = self.centers_as();
        let (labels, dists) = assign(batch, d, &centers, k, self.metric);
        let wt = |i: usize| weights.map_or(1.0, |w| w[i]);
        let mut sums = vec![0.0f64; k * d];
        let mut mass = vec![0.0f64; k];
        let mut objective = 0.0;
        let mut total = 0.0;
        for i in 0..rows {
            let (j, w) = (labels[i] as usize, wt(i));
            mass[j] += w;
            objective += w * dists[i].to_f64();
            total += w;
            let row = &batch[i * d..(i + 1) * d];
            for (s, v) in sums[j * d..(j + 1) * d].iter_mut().zip(row) {
                *s += w * v.to_f64();
            }
        }
        for j in 0..k {
            if mass[j] <= 0.0 {
                continue;
            }
            self.counts[j] += mass[j];
            let inv = 1.0 / self.counts[j];
            let c = &mut self.centers[j * d..(j + 1) * d];
            for (cv, s) in c.iter_mut().zip(&sums[j * d..(j + 1) * d]) {
                *cv += (s - mass[j] * *cv) * inv;
            }
            if self.metric == Metric::Cosine {
                normalize(c);
            }
        }
        self.n_steps += 1;
        self.reassign(batch, &dists, rows);
        Ok(if total > 0.0 { objective / total } else { 0.0 })
    }

    /// scikit-learn's rule: every `10 + min count` steps, centroids whose weight is below
    /// `reassignment_ratio * max` go to the batch rows farthest from their centroid.
    fn reassign<T: Real>(&mut self, batch: &[T], dists: &[T], rows: usize) {
        let d = self.d;
        if self.reassignment_ratio <= 0.0 {
            return;
        }
        let min = self.counts.iter().cloned().fold(f64::INFINITY, f64::min);
        let period = 10 + min.min(1e12) as u64;
        if !(self.n_steps + 1).is_multiple_of(period) {
            return;
        }
        let max = self.counts.iter().cloned().fold(0.0, f64::max);
        let mut low: Vec<usize> = (0..self.k)
            .filter(|&j| self.counts[j] < self.reassignment_ratio * max)
            .collect();
        low.truncate(rows / 2);
        if low.is_empty() {
            return;
        }
        let mut far: Vec<usize> = (0..rows).collect();
        far.sort_by(|&a, &b| {
            dists[b]
                .to_f64()
                .total_cmp(&dists[a].to_f64())
                .then(a.cmp(&b))
        });
        let kept_min = (0..self.k)
            .filter(|j| !low.contains(j))
            .map(|j| self.counts[j])
            .fold(f64::INFINITY, f64::min);
        for (&j, &i) in low.iter().zip(&far) {
            for (c, v) in self.centers[j * d..(j + 1) * d]
                .iter_mut()
                .zip(&batch[i * d..(i + 1) * d])
            {
                *c = v.to_f64();
            }
            self.counts[j] = if kept_min.is_finite() { kept_min } else { 0.0 };
        }
    }
}

fn normalize(c: &mut [f64]) {
    let n = c.iter().map(|v| v * v).sum::<f64>().sqrt();
    if n > 0.0 {
        c.iter_mut().for_each(|v| *v /= n);
    }
}

/// Labels and distances of `x` against `centers` with the fused kernel, in parallel over
/// 256-row pieces (each row's result does not depend on the split).
fn assign<T: Real>(
    x: &[T],
    d: usize,
    centers: &[T],
    k: usize,
    metric: Metric,
) -> (Vec<i32>, Vec<T>) {
    const PIECE: usize = 256;
    let rows = x.len() / d;
    let mut labels = vec![0i32; rows];
    let mut dists = vec![T::ZERO; rows];
    let prepared = Prepared::new(centers, k, d, metric);
    x.par_chunks(PIECE * d)
        .zip(labels.par_chunks_mut(PIECE))
        .zip(dists.par_chunks_mut(PIECE))
        .for_each(|((xs, l), ds)| {
            let mut norms = Vec::new();
            crate::linalg::row_sq_norms(xs, d, &mut norms);
            let mut tile = Vec::new();
            prepared.assign(xs, &norms, k, d, metric, l, ds, None, &mut tile);
        });
    (labels, dists)
}

/// Fits mini-batch k-means on `x` (`n_samples x n_features`, row-major; unit rows for the
/// cosine metric). Returns the same model as [`super::fit`]: `n_iter` counts epochs
/// (steps times `batch_size / n`, rounded up), `objective_history` the smoothed batch
/// objective at the end of each epoch, `converged` whether it stopped early.
///
/// # Errors
/// [`Error::Parameter`] from [`KMeansParams::check`], for `batch_size = 0` or a negative
/// `reassignment_ratio`; [`Error::Interrupted`] when `cancel` becomes true (checked every
/// step).
pub fn fit_minibatch<T: Real>(
    params: &MiniBatchParams,
    x: &[T],
    n_features: usize,
    cancel: Cancel<'_>,
) -> Result<KMeans<T>> {
    fit_minibatch_weighted(params, x, n_features, None, cancel)
}

/// [`fit_minibatch`] with per-row weights (scikit-learn's `sample_weight`, `n_samples`
/// finite values >= 0, not all 0): batches are still drawn uniformly (as scikit-learn), and
/// each drawn row counts `w_i` times in its centroid's update and learning rate, in the
/// seeding (as [`super::fit_weighted`]) and in the objective. Memory: the weights are
/// borrowed, plus `batch_size` weights of the current batch.
///
/// # Errors
/// As [`fit_minibatch`]; [`Error::Parameter`] naming `sample_weight` for a wrong length,
/// a negative or non-finite weight, all-zero weights or `init = "k-means||"`.
pub fn fit_minibatch_weighted<T: Real>(
    params: &MiniBatchParams,
    x: &[T],
    n_features: usize,
    weights: Option<&[f64]>,
    cancel: Cancel<'_>,
) -> Result<KMeans<T>> {
    let p = &params.kmeans;
    let d = n_features;
    super::lloyd::check_shape(x.len(), d)?;
    let n = x.len() / d;
    p.check(n, d)?;
    if params.batch_size == 0 {
        return Err(Error::param("batch_size", 0, "must be at least 1"));
    }
    if !(params.reassignment_ratio >= 0.0) {
        return Err(Error::param(
            "reassignment_ratio",
            params.reassignment_ratio,
            "must be >= 0",
        ));
    }
    if let Some(w) = weights {
        super::lloyd::check_weights(w, n, &p.init)?;
        // Equal weights: the unweighted fit with the objective scaled (as `fit_weighted`),
        // so `sample_weight = ones` is exactly no weights. The history is per unit of
        // weight, so it stays.
        if w.iter().all(|&v| v == w[0]) {
            let mut m = fit_minibatch_weighted(params, x, d, None, cancel)?;
            m.inertia *= w[0];
            return Ok(m);
        }
    }
    let k = p.n_clusters;
    let data = Data::weighted(x, d, weights);
    // the seeding, on a uniform sample
    let mut rng = rand::rngs::StdRng::seed_from_u64(p.seed);
    let init_size = if p.init_size == 0 {
        (3 * params.batch_size).max(3 * k)
    } else {
        p.init_size
    }
    .clamp(k, n);
    let centers: Vec<T> = match &p.init {
        Init::Centroids(c) => c.iter().map(|&v| T::from_f64(v)).collect(),
        // the screened seeding of `fit` (seedings refined by Lloyd on one sample, the best
        // kept), Lloyd's tolerance there at least scikit-learn's default 1e-4
        _ if p.init_trials > 1 => {
            let tol = super::lloyd::tol_of(&data, p.tol.max(1e-4));
            super::lloyd::initial_centers(&data, p, restart_seed(p.seed, 0), tol, cancel)?
        }
        _ => {
            let (xs, ws) = super::init::sample_rows(&data, init_size, &mut rng);
            let sample = Data::weighted(&xs, d, ws.as_deref());
            seed_once(&sample, p, restart_seed(p.seed, 0), cancel)?
        }
    };
    let mut state = MiniBatchState::from_parts(
        centers.iter().map(|v| v.to_f64()).collect(),
        vec![0.0; k],
        0,
        k,
        d,
        p.metric,
        params.reassignment_ratio,
    )?;
    let b = params.batch_size.min(n);
    let steps_per_epoch = n.div_ceil(b);
    let max_steps = p.max_iter.saturating_mul(steps_per_epoch);
    let tol_abs = super::lloyd::tol_of(&data, p.tol);
    let alpha = (2.0 * b as f64 / (n as f64 + 1.0)).min(1.0);
    let (mut ewa, mut best) = (None::<f64>, f64::INFINITY);
    let mut no_improvement = 0usize;
    let mut history = Vec::new();
    let mut converged = false;
    let mut batch: Vec<T> = Vec::with_capacity(b * d);
    let mut batch_w: Vec<f64> = Vec::with_capacity(if weights.is_some() { b } else { 0 });
    let mut step = 0usize;
    while step < max_steps {
        cancel.check()?;
        batch.clear();
        batch_w.clear();
        for _ in 0..b {
            let i = rng.random_range(0..n);
            batch.extend_from_slice(&x[i * d..(i + 1) * d]);
            if let Some(w) = weights {
                batch_w.push(w[i]);
            }
        }
        let before = (tol_abs > 0.0).then(|| state.centers.clone());
        let obj = state.partial_fit(&batch, weights.map(|_| batch_w.as_slice()))?;
        step += 1;
        // the first step's objective comes from the seeding alone: not counted (as sklearn)
        if step > 1 {
            let e = match ewa {
                None => obj,
                Some(e) => e * (1.0 - alpha) + obj * alpha,
            };
            ewa = Some(e);
            if e < best {
                best = e;
                no_improvement = 0;
            } else {
                no_improvement += 1;
            }
        }
        if step.is_multiple_of(steps_per_epoch) {
            history.push(ewa.unwrap_or(obj));
        }
        if let Some(before) = before {
            let shift: f64 = before
                .iter()
                .zip(&state.centers)
                .map(|(a, c)| (a - c) * (a - c))
                .sum();
            if shift <= tol_abs {
                converged = true;
                break;
            }
        }
        if params.max_no_improvement > 0 && no_improvement >= params.max_no_improvement {
            converged = true;
            break;
        }
    }
    if history.len() < step.div_ceil(steps_per_epoch) {
        history.push(ewa.unwrap_or(f64::NAN));
    }
    // labels, scores and the objective of all rows, by one full pass
    let centers: Vec<T> = state.centers_as();
    let mut labels = vec![-1i32; n];
    let mut dists = vec![T::ZERO; n];
    let stats = lloyd_step(&data, &centers, k, p.metric, &mut labels, &mut dists, None);
    let scores = scores_from_distances(p.metric, &dists);
    Ok(KMeans {
        n_clusters: k,
        n_features: d,
        metric: p.metric,
        cluster_centers: centers,
        labels,
        scores,
        inertia: stats.objective,
        n_iter: step.div_ceil(steps_per_epoch),
        objective_history: history,
        converged,
        counts: stats.counts,
        pruning: None,
        n_steps: step as u64,
    })
}
