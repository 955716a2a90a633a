//! Lloyd's algorithm (Lloyd 1982; spherical k-means, Dhillon and Modha 2001): one driver,
//! [`lloyd_drive`], over any data that can run an assignment pass ([`LloydData`]): rows in
//! memory ([`fit`]), or partitions on Spark executors (the Python bindings call it with
//! callbacks that run Spark jobs). So the stopping rule and empty-cluster relocation are
//! the same code everywhere.
//!
//! # The loop
//! Each iteration assigns every row to its nearest centroid and sums the members
//! ([`LloydState`], mergeable); if no label changed since the previous pass, it stops
//! (the centroids already are their members' means). Else every empty cluster takes the
//! next row, by decreasing distance to its centroid (ties: smaller row id), whose own
//! cluster keeps a member (scikit-learn's relocation; the driver asks the data for the
//! `e + k` farthest rows, enough for `e` empty clusters since at most one row per cluster
//! is passed over). The new centroids are the member means (Euclidean) or normalized sums
//! (cosine); the loop stops when their squared shift is at most `tol_abs`, with one more
//! assignment pass so that labels and objective belong to the returned centroids (none when
//! the centroids did not move at all and no row was relocated: that pass's labels already
//! are theirs), or after `max_iter` iterations (then too with that final pass). Rows may
//! carry weights ([`fit_weighted`]): sums, objective and masses are then weighted.
//!
//! "No label changed" is known exactly in memory; a distributed pass reports the
//! labelling's fingerprint (an order-free sum of [`label_hash`]) instead, which the driver
//! compares with the previous pass's, adjusted for relocated rows.

pub use super::assign::label_hash;
use super::assign::{lloyd_step, Data};
pub use super::init::restart_seed;
use super::init::{kmeans_plusplus, random_rows, sample_rows};
use super::model::{scores_from_distances, KMeans};
use super::parallel::{kmeans_parallel_drive, InMemoryParallel};
use super::params::{Init, KMeansParams};
use super::prune::{PruneCounts, PruningSummary};
use super::Metric;
use crate::dtype::Real;
use crate::error::{Error, Result};
use crate::preprocessing::Moments;
use crate::runtime::Cancel;
use rand::SeedableRng;

/// A row offered for an empty cluster: its id, distance to its centroid, label and values.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: u64,
    pub dist: f64,
    pub label: i32,
    /// The row's values (`n_features`, as f64).
    pub row: Vec<f64>,
    /// The row's weight (`sample_weight`; 1 without weights).
    pub weight: f64,
}

/// What [`lloyd_drive`] needs of the data.
pub trait LloydData<T: Real> {
    /// One assignment pass against `centers` (`k x d`): the merged [`LloydState`].
    ///
    /// # Errors
    /// Whatever reading the data raises.
    fn step(&mut self, centers: &[T]) -> Result<LloydState>;
    /// The `m` rows farthest from their nearest centroid in `centers` (the centroids of
    /// the last pass), by decreasing distance then increasing id, with their labels.
    ///
    /// # Errors
    /// Whatever reading the data raises.
    fn farthest(&mut self, centers: &[T], m: usize) -> Result<Vec<Candidate>>;
    /// Row `id` was moved into cluster `to` by the relocation (data that keeps labels
    /// updates them; distributed data need not).
    fn relocated(&mut self, _id: u64, _to: i32) {}
}

/// What [`lloyd_drive`] found: the centroids, the last pass's state, and the history.
#[derive(Debug, Clone)]
pub struct LloydOutcome<T> {
    /// `k x d` centroids; the labels of the last pass belong to them.
    pub centers: Vec<T>,
    /// Iterations run (assignment passes, not counting the final one).
    pub n_iter: usize,
    /// Objective after each assignment pass.
    pub objective_history: Vec<f64>,
    /// Whether it stopped on stable labels or `tol` rather than `max_iter`.
    pub converged: bool,
    /// Rows per cluster in the last pass.
    pub counts: Vec<u64>,
}

/// Runs Lloyd iterations from `init` (`k x d`) over `data` (see the module docs).
/// `tol_abs` is the absolute tolerance on the squared centroid shift (scikit-learn's
/// `tol * mean(var(X, axis=0))`).
///
/// Memory: the centroids (twice), one state (`k d 8` bytes) and `e + k` candidate rows when
/// `e` clusters are empty, plus what `data` holds.
///
/// # Errors
/// [`Error::Interrupted`] once `cancel` is set (checked before each pass); anything `data`
/// raises; [`Error::Parameter`] when a state has the wrong shape.
pub fn lloyd_drive<T: Real>(
    data: &mut dyn LloydData<T>,
    init: Vec<T>,
    metric: Metric,
    max_iter: usize,
    tol_abs: f64,
    cancel: Cancel<'_>,
) -> Result<LloydOutcome<T>> {
    if init.is_empty() {
        return Err(Error::param_msg("init", "no initial centroids"));
    }
    let mut centers = init;
    let mut history = Vec::new();
    let mut converged = false;
    let mut needs_final = true;
    let mut counts = Vec::new();
    let mut n_iter = 0;
    let mut expected_fp: Option<u64> = None;
    for it in 0..max_iter {
        cancel.check()?;
        let st = data.step(&centers)?;
        let (k, d) = (st.n_clusters, st.n_features);
        if k * d != centers.len() {
            return Err(Error::param_msg(
                "cluster_centers",
                format!(
                    "a pass returned a {k} x {d} state for {} centroid values",
                    centers.len()
                ),
            ));
        }
        history.push(st.objective);
        n_iter = it + 1;
        counts = st.counts.clone();
        let stable = match st.changed {
            Some(c) => c == 0,
            None => expected_fp == Some(st.fingerprint),
        };
        if it > 0 && stable {
            // Labels are stable, so the centroids already are their members' means.
            converged = true;
            needs_final = false;
            break;
        }
        let LloydState {
            mut sums,
            counts: mut cnt,
            mass,
            mut fingerprint,
            ..
        } = st;
        let mut mass: Vec<f64> = mass.unwrap_or_else(|| cnt.iter().map(|&c| c as f64).collect());
        let empty: Vec<usize> = (0..k).filter(|&j| cnt[j] == 0).collect();
        let mut moved = false;
        if !empty.is_empty() {
            let m = empty.len() + k;
            let cands = data.farthest(&centers, m)?;
            let mut next = 0;
            for j in empty {
                while next < cands.len()
                    && cnt.get(cands[next].label as usize).is_none_or(|&c| c <= 1)
                {
                    next += 1;
                }
                if next == cands.len() {
                    break; // fewer distinct movable points than clusters: leave it empty
                }
                let c = &cands[next];
                next += 1;
                if c.row.len() != d {
                    return Err(Error::param_msg(
                        "farthest",
                        format!("a candidate row has {} values, expected {d}", c.row.len()),
                    ));
                }
                let old = c.label as usize;
                for (f, &v) in c.row.iter().enumerate() {
                    sums[old * d + f] -= v * c.weight;
                    sums[j * d + f] = v * c.weight;
                }
                cnt[old] -= 1;
                cnt[j] = 1;
                mass[old] -= c.weight;
                mass[j] = c.weight;
                fingerprint = fingerprint
                    .wrapping_sub(label_hash(c.id, c.label))
                    .wrapping_add(label_hash(c.id, j as i32));
                data.relocated(c.id, j as i32);
                moved = true;
            }
        }
        expected_fp = Some(fingerprint);
        let new = centers_from_mass(&sums, &mass, &centers, d, metric);
        let shift: f64 = new
            .iter()
            .zip(&centers)
            .map(|(a, b)| {
                let x = a.to_f64() - b.to_f64();
                x * x
            })
            .sum();
        centers = new;
        if shift <= tol_abs {
            converged = true;
            // Unchanged centroids (and no row moved): a fixed point, so this pass's labels
            // already are the next pass's; no final pass (scikit-learn's "strict
            // convergence").
            needs_final = shift != 0.0 || moved;
            break;
        }
    }
    if needs_final {
        let st = data.step(&centers)?;
        counts = st.counts;
        history.push(st.objective);
    }
    Ok(LloydOutcome {
        centers,
        n_iter,
        objective_history: history,
        converged,
        counts,
    })
}

/// New centroids from (weighted) sums and each cluster's mass (member count or weight
/// sum): means (Euclidean) or normalized sums (cosine); a cluster of mass 0 keeps its
/// previous centroid.
pub(crate) fn centers_from_mass<T: Real>(
    sums: &[f64],
    mass: &[f64],
    prev: &[T],
    d: usize,
    metric: Metric,
) -> Vec<T> {
    let mut out = prev.to_vec();
    for (j, &m) in mass.iter().enumerate() {
        let s = &sums[j * d..(j + 1) * d];
        let dst = &mut out[j * d..(j + 1) * d];
        if m == 0.0 {
            continue;
        }
        let scale = match metric {
            Metric::Cosine => {
                let norm = s.iter().map(|v| v * v).sum::<f64>().sqrt();
                if norm == 0.0 {
                    continue;
                }
                1.0 / norm
            }
            _ => 1.0 / m,
        };
        for (o, &v) in dst.iter_mut().zip(s) {
            *o = T::from_f64(v * scale);
        }
    }
    out
}

/// Rows in memory: labels and distances kept between passes, so "labels changed" is
/// counted exactly and relocation moves labels in place.
struct InMemory<'a, 'b, T> {
    data: &'b Data<'a, T>,
    k: usize,
    metric: Metric,
    labels: Vec<i32>,
    dists: Vec<T>,
    pruned: PruneCounts,
    pruned_passes: u64,
}

impl<T: Real> LloydData<T> for InMemory<'_, '_, T> {
    fn step(&mut self, centers: &[T]) -> Result<LloydState> {
        let st = lloyd_step(
            self.data,
            centers,
            self.k,
            self.metric,
            &mut self.labels,
            &mut self.dists,
            None,
        );
        if self.data.prefix.is_some() {
            self.pruned.add(&st.pruned);
            self.pruned_passes += 1;
        }
        Ok(LloydState {
            n_clusters: self.k,
            n_features: self.data.d,
            sums: st.sums,
            counts: st.counts,
            mass: st.mass,
            objective: st.objective,
            changed: Some(st.changed),
            fingerprint: 0,
        })
    }

    fn farthest(&mut self, _centers: &[T], m: usize) -> Result<Vec<Candidate>> {
        let (d, dists) = (self.data.d, &self.dists);
        let mut order: Vec<usize> = (0..self.data.n).collect();
        order.sort_by(|&a, &b| {
            dists[b]
                .partial_cmp(&dists[a])
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.cmp(&b))
        });
        Ok(order
            .into_iter()
            .take(m)
            .map(|i| Candidate {
                id: i as u64,
                dist: dists[i].to_f64(),
                label: self.labels[i],
                row: self.data.x[i * d..(i + 1) * d]
                    .iter()
                    .map(|v| v.to_f64())
                    .collect(),
                weight: self.data.weight(i),
            })
            .collect())
    }

    fn relocated(&mut self, id: u64, to: i32) {
        self.labels[id as usize] = to;
        self.dists[id as usize] = T::ZERO;
    }
}

/// Fits k-means on `x` (`n_samples x n_features` row-major, in memory). For
/// [`Metric::Cosine`] the rows must already be unit vectors.
///
/// # Errors
/// [`Error::Parameter`] from [`KMeansParams::check`] or if `x.len()` is not a multiple
/// of `n_features`.
pub fn fit<T: Real>(params: &KMeansParams, x: &[T], n_features: usize) -> Result<KMeans<T>> {
    fit_cancellable(params, x, n_features, Cancel::never())
}

/// [`fit`] that stops with [`Error::Interrupted`] at the next k-means++ step or Lloyd
/// iteration after `cancel` becomes true.
pub fn fit_cancellable<T: Real>(
    params: &KMeansParams,
    x: &[T],
    n_features: usize,
    cancel: Cancel<'_>,
) -> Result<KMeans<T>> {
    fit_weighted(params, x, n_features, None, cancel)
}

/// [`fit_cancellable`] with per-row weights (scikit-learn's `sample_weight`, `n_samples`
/// non-negative finite values, not all 0): each row counts `w_i` times in the centroid
/// means (`sum_i w_i x_i / sum_i w_i`), the objective (`sum_i w_i d_i`), k-means++'s D^2
/// sampling (`w_i d_i^2`) and `init="random"`'s draw (probability proportional to `w_i`,
/// without replacement); `tol` stays relative to the unweighted variance, as in
/// scikit-learn. With integer weights the fit equals that of the rows repeated.
/// Memory: the weights are borrowed.
///
/// # Errors
/// As [`fit`]; [`Error::Parameter`] naming `sample_weight` for a wrong length, a negative
/// or non-finite weight, all-zero weights, or `init = "k-means||"` (not weighted).
pub fn fit_weighted<T: Real>(
    params: &KMeansParams,
    x: &[T],
    n_features: usize,
    weights: Option<&[f64]>,
    cancel: Cancel<'_>,
) -> Result<KMeans<T>> {
    check_shape(x.len(), n_features)?;
    let n = x.len() / n_features;
    params.check(n, n_features)?;
    if let Some(w) = weights {
        check_weights(w, n, &params.init)?;
        // Equal weights: the unweighted fit (the same draws and labels) with the objective
        // scaled, so `sample_weight = ones` is exactly no weights.
        if w.iter().all(|&v| v == w[0]) {
            let mut m = fit_weighted(params, x, n_features, None, cancel)?;
            m.scale_objective(w[0]);
            return Ok(m);
        }
    }
    let mut data = Data::weighted(x, n_features, weights);
    data.with_pruning(params.pruning, params.n_clusters);
    let tol_abs = tol_of(&data, params.tol);
    let n_init = match params.init {
        Init::Centroids(_) => 1,
        _ => params.n_init,
    };
    let mut best: Option<KMeans<T>> = None;
    for r in 0..n_init {
        let init = initial_centers(&data, params, restart_seed(params.seed, r), tol_abs, cancel)?;
        let run = lloyd(&data, init, params, tol_abs, cancel)?;
        if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
            best = Some(run);
        }
    }
    best.ok_or_else(|| Error::param("n_init", 0, "must be at least 1"))
}

/// Sample weights: `n` finite non-negative values, not all zero, and an init that uses them.
pub(crate) fn check_weights(w: &[f64], n: usize, init: &Init) -> Result<()> {
    if w.len() != n {
        return Err(Error::param_msg(
            "sample_weight",
            format!("{} weights for {n} samples", w.len()),
        ));
    }
    if let Some(i) = w.iter().position(|v| !v.is_finite() || *v < 0.0) {
        return Err(Error::param_msg(
            "sample_weight",
            format!("weight {} of row {i} is not a finite value >= 0", w[i]),
        ));
    }
    if !w.iter().any(|&v| v > 0.0) {
        return Err(Error::param_msg("sample_weight", "all weights are 0"));
    }
    if matches!(init, Init::KMeansParallel(_)) {
        return Err(Error::param_msg(
            "sample_weight",
            "init='k-means||' does not take sample weights; use 'k-means++' or 'random'",
        ));
    }
    Ok(())
}

/// `len` values must be whole rows of `n_features`.
pub(crate) fn check_shape(len: usize, n_features: usize) -> Result<()> {
    if n_features == 0 || !len.is_multiple_of(n_features) {
        return Err(Error::param_msg(
            "X",
            format!("data of {len} values is not a multiple of n_features = {n_features}"),
        ));
    }
    Ok(())
}

pub(crate) fn tol_of<T: Real>(data: &Data<'_, T>, tol: f64) -> f64 {
    use rayon::prelude::*;
    if tol == 0.0 {
        return 0.0;
    }
    let d = data.d;
    let mut m = Moments::new(d);
    // chunk states in parallel, merged in chunk order: the same bits for any thread count
    let parts: Vec<Moments> = data
        .x
        .par_chunks(data.chunk_rows * d)
        .map(|chunk| Moments::partial(chunk, d))
        .collect();
    for part in &parts {
        m.merge(part);
    }
    tol * m.var().iter().sum::<f64>() / d as f64
}

/// The centroids restart `restart` of [`fit`] starts Lloyd from (`k x d`): the seeding that
/// `params` describes, screened on a sample when `init_trials > 1`.
///
/// # Errors
/// As [`fit`].
pub fn initial_centroids<T: Real>(
    params: &KMeansParams,
    x: &[T],
    n_features: usize,
    restart: usize,
) -> Result<Vec<T>> {
    check_shape(x.len(), n_features)?;
    params.check(x.len() / n_features, n_features)?;
    let data = Data::new(x, n_features);
    let tol_abs = tol_of(&data, params.tol);
    initial_centers(
        &data,
        params,
        restart_seed(params.seed, restart),
        tol_abs,
        Cancel::never(),
    )
}

/// One seeding by `params.init` over `data`, from `seed` (k-means|| takes it as is, so an
/// engine that runs [`kmeans_parallel_drive`] with [`restart_seed`]`(seed, r)` gets restart
/// `r`'s centres).
pub(crate) fn seed_once<T: Real>(
    data: &Data<'_, T>,
    params: &KMeansParams,
    seed: u64,
    cancel: Cancel<'_>,
) -> Result<Vec<T>> {
    let k = params.n_clusters;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    match &params.init {
        Init::Centroids(c) => Ok(c.iter().map(|&v| T::from_f64(v)).collect()),
        Init::KMeansPlusPlus => kmeans_plusplus(data, k, &mut rng, cancel),
        Init::Random => Ok(random_rows(data, k, &mut rng)),
        Init::KMeansParallel(p) => kmeans_parallel_drive(
            &mut InMemoryParallel::new(data),
            k,
            params.metric,
            *p,
            seed,
            cancel,
        ),
    }
}

/// The initial centroids of one restart: with `init_trials > 1`, the best of that many
/// seedings, each refined by Lloyd to convergence on one uniform sample of
/// `init_sample_size(n)` rows (lowest objective there; ties: the earlier trial); else one
/// seeding on all rows.
pub(crate) fn initial_centers<T: Real>(
    data: &Data<'_, T>,
    params: &KMeansParams,
    seed: u64,
    tol_abs: f64,
    cancel: Cancel<'_>,
) -> Result<Vec<T>> {
    if params.init_trials <= 1 || matches!(params.init, Init::Centroids(_)) {
        return seed_once(data, params, seed, cancel);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let s = params.init_sample_size(data.n);
    let (xs, ws) = sample_rows(data, s, &mut rng);
    let mut sample = Data::weighted(&xs, data.d, ws.as_deref());
    sample.with_pruning(params.pruning, params.n_clusters);
    let mut best: Option<KMeans<T>> = None;
    for t in 0..params.init_trials {
        let c = seed_once(&sample, params, restart_seed(seed ^ 0x5C12_EE17, t), cancel)?;
        let run = lloyd(&sample, c, params, tol_abs, cancel)?;
        if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
            best = Some(run);
        }
    }
    best.map(|b| b.cluster_centers)
        .ok_or_else(|| Error::param("init_trials", 0, "must be at least 1"))
}

fn lloyd<T: Real>(
    data: &Data<'_, T>,
    centers: Vec<T>,
    p: &KMeansParams,
    tol_abs: f64,
    cancel: Cancel<'_>,
) -> Result<KMeans<T>> {
    let (n, d, k) = (data.n, data.d, p.n_clusters);
    let mut mem = InMemory {
        data,
        k,
        metric: p.metric,
        labels: vec![-1i32; n],
        dists: vec![T::ZERO; n],
        pruned: PruneCounts::default(),
        pruned_passes: 0,
    };
    let out = lloyd_drive(&mut mem, centers, p.metric, p.max_iter, tol_abs, cancel)?;
    let inertia = out.objective_history.last().copied().unwrap_or(0.0);
    let scores = scores_from_distances(p.metric, &mem.dists);
    Ok(KMeans {
        n_clusters: k,
        n_features: d,
        metric: p.metric,
        cluster_centers: out.centers,
        labels: mem.labels,
        scores,
        inertia,
        n_iter: out.n_iter,
        objective_history: out.objective_history,
        converged: out.converged,
        counts: out.counts,
        pruning: data.prefix.as_ref().map(|pf| PruningSummary {
            prefix_dims: pf.p,
            passes: mem.pruned_passes,
            counts: mem.pruned,
            bytes: pf.bytes(),
        }),
        n_steps: 0,
    })
}

/// Order of candidates: farther first, then the smaller id (a total order on finite
/// distances, so the result does not depend on how rows were split).
fn farther_first(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.dist
        .partial_cmp(&a.dist)
        .unwrap_or(std::cmp::Ordering::Equal)
        .then(a.id.cmp(&b.id))
}

/// The `m` rows of `x` (`rows x d`, ids `first_id..`) farthest from their nearest centroid
/// in `centers` (`k x d`), farthest first (ties: smaller id), with their labels: one
/// partition's share of [`LloydData::farthest`]. Distances are those of the assignment
/// pass, bit for bit.
///
/// # Errors
/// [`Error::Parameter`] when the shapes disagree.
pub fn farthest_rows<T: Real>(
    x: &[T],
    d: usize,
    centers: &[T],
    k: usize,
    metric: Metric,
    first_id: u64,
    m: usize,
) -> Result<Vec<Candidate>> {
    metric.check_in(&[Metric::Euclidean, Metric::Cosine])?;
    if k == 0 || d == 0 || centers.len() != k * d || !x.len().is_multiple_of(d) {
        return Err(Error::param_msg(
            "cluster_centers",
            format!("{} centroid values for k = {k}, d = {d}", centers.len()),
        ));
    }
    let data = Data::new(x, d);
    let mut mem = InMemory {
        data: &data,
        k,
        metric,
        labels: vec![-1i32; data.n],
        dists: vec![T::ZERO; data.n],
        pruned: PruneCounts::default(),
        pruned_passes: 0,
    };
    if data.n == 0 {
        return Ok(Vec::new());
    }
    mem.step(centers)?;
    let mut c = mem.farthest(centers, m)?;
    c.iter_mut().for_each(|c| c.id += first_id);
    Ok(c)
}

/// The `m` farthest of candidates gathered from several partitions (see
/// [`farthest_rows`]).
pub fn merge_farthest(mut candidates: Vec<Candidate>, m: usize) -> Vec<Candidate> {
    candidates.sort_by(farther_first);
    candidates.truncate(m);
    candidates
}

/// The absolute tolerance of [`lloyd_drive`] from the data's moments: `tol` times the mean
/// per-feature variance (scikit-learn's rule).
pub fn tol_from_moments(tol: f64, moments: &Moments) -> f64 {
    let d = moments.mean.len().max(1);
    tol * moments.var().iter().sum::<f64>() / d as f64
}

/// Mergeable state of one Lloyd pass over rows seen in any number of blocks (Spark
/// partitions, streams): per-cluster sums (f64), counts, the objective against fixed
/// centroids, and the labelling's fingerprint. `partial` / `merge`; [`lloyd_drive`] turns
/// merged states into the next centroids.
///
/// Memory: `k * d * 8` bytes of sums plus, during `partial`, `n * (4 + 2 s)` bytes for the
/// block's labels, distances and norms. Rows must be unit vectors for the cosine metric.
///
/// # Example
/// ```
/// use embedcluster::cluster::{LloydState, Metric};
/// let x = [0.0f32, 1.0, 9.0, 10.0]; // 4 rows of 1
/// let c = [0.0f32, 10.0];
/// // two partitions (ids 0.. and 2..) merge into the state of all rows
/// let mut s = LloydState::partial(&x[..2], 1, &c, 2, Metric::Euclidean, 0).unwrap();
/// s.merge(&LloydState::partial(&x[2..], 1, &c, 2, Metric::Euclidean, 2).unwrap()).unwrap();
/// let all = LloydState::partial(&x, 1, &c, 2, Metric::Euclidean, 0).unwrap();
/// assert_eq!(s.counts(), &[2, 2]);
/// assert_eq!(s.sums(), all.sums());
/// assert_eq!(s.fingerprint(), all.fingerprint());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LloydState {
    n_clusters: usize,
    n_features: usize,
    sums: Vec<f64>,
    counts: Vec<u64>,
    /// Weight per cluster where the rows are weighted (in memory only).
    mass: Option<Vec<f64>>,
    objective: f64,
    /// Labels changed since the previous pass, where the data keeps labels (in memory).
    changed: Option<u64>,
    /// Wrapping sum of [`label_hash`] over the rows.
    fingerprint: u64,
}

impl LloydState {
    /// The empty state.
    pub fn new(n_clusters: usize, n_features: usize) -> Self {
        LloydState {
            n_clusters,
            n_features,
            sums: vec![0.0; n_clusters * n_features],
            counts: vec![0; n_clusters],
            mass: None,
            objective: 0.0,
            changed: None,
            fingerprint: 0,
        }
    }

    /// A state from its parts (a merged state sent back from Spark executors).
    ///
    /// # Errors
    /// [`Error::Parameter`] when `sums` is not `n_clusters x n_features` or `counts` not
    /// `n_clusters` long.
    pub fn from_parts(
        n_clusters: usize,
        n_features: usize,
        sums: Vec<f64>,
        counts: Vec<u64>,
        objective: f64,
        fingerprint: u64,
    ) -> Result<Self> {
        if n_clusters == 0 || sums.len() != n_clusters * n_features || counts.len() != n_clusters {
            return Err(Error::param_msg(
                "state",
                format!(
                    "{} sums and {} counts for {n_clusters} clusters of {n_features} features",
                    sums.len(),
                    counts.len()
                ),
            ));
        }
        Ok(LloydState {
            n_clusters,
            n_features,
            sums,
            counts,
            mass: None,
            objective,
            changed: None,
            fingerprint,
        })
    }

    /// The state of the rows `x` (`rows x d`, row-major, ids `first_id..`) against
    /// `centers` (`k x d`).
    ///
    /// # Errors
    /// [`Error::Parameter`] when the shapes disagree or `k` is 0.
    pub fn partial<T: Real>(
        x: &[T],
        d: usize,
        centers: &[T],
        k: usize,
        metric: Metric,
        first_id: u64,
    ) -> Result<Self> {
        metric.check_in(&[Metric::Euclidean, Metric::Cosine])?;
        if k == 0 || d == 0 || centers.len() != k * d || !x.len().is_multiple_of(d) {
            return Err(Error::param_msg(
                "cluster_centers",
                format!(
                    "Lloyd step: {} centroid values for k = {k}, d = {d}, and {} data values",
                    centers.len(),
                    x.len()
                ),
            ));
        }
        let data = Data::new(x, d);
        if data.n == 0 {
            return Ok(LloydState::new(k, d));
        }
        let mut labels = vec![-1i32; data.n];
        let mut dists = vec![T::ZERO; data.n];
        let st = lloyd_step(
            &data,
            centers,
            k,
            metric,
            &mut labels,
            &mut dists,
            Some(first_id),
        );
        Ok(LloydState {
            n_clusters: k,
            n_features: d,
            sums: st.sums,
            counts: st.counts,
            mass: None,
            objective: st.objective,
            changed: None,
            fingerprint: st.fingerprint,
        })
    }

    /// Adds `other` into `self`.
    ///
    /// # Errors
    /// [`Error::Parameter`] when the shapes differ.
    pub fn merge(&mut self, other: &LloydState) -> Result<()> {
        if (self.n_clusters, self.n_features) != (other.n_clusters, other.n_features) {
            return Err(Error::param_msg(
                "state",
                format!(
                    "cannot merge a {} x {} state into a {} x {} one",
                    other.n_clusters, other.n_features, self.n_clusters, self.n_features
                ),
            ));
        }
        self.sums
            .iter_mut()
            .zip(&other.sums)
            .for_each(|(a, b)| *a += b);
        self.counts
            .iter_mut()
            .zip(&other.counts)
            .for_each(|(a, b)| *a += b);
        self.mass = match (self.mass.take(), &other.mass) {
            (Some(mut a), Some(b)) => {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                Some(a)
            }
            _ => None,
        };
        self.objective += other.objective;
        self.fingerprint = self.fingerprint.wrapping_add(other.fingerprint);
        self.changed = match (self.changed, other.changed) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        Ok(())
    }

    /// Clusters `k`.
    pub fn n_clusters(&self) -> usize {
        self.n_clusters
    }
    /// Features `d`.
    pub fn n_features(&self) -> usize {
        self.n_features
    }
    /// `k x d` per-cluster sums of the members, row-major.
    pub fn sums(&self) -> &[f64] {
        &self.sums
    }
    /// Members per cluster.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }
    /// Sum of squared distances (Euclidean) or of `1 - cos` (cosine) to the nearest
    /// centroid.
    pub fn objective(&self) -> f64 {
        self.objective
    }
    /// The labelling's fingerprint (wrapping sum of [`label_hash`]).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}
