//! k-means (Euclidean; Lloyd 1982) and spherical k-means (cosine; Dhillon and Modha 2001)
//! with greedy k-means++ initialization (Arthur and Vassilvitskii 2007).
//!
//! # Assignment
//! Rows are split into at most [`MAX_CHUNKS`] chunks whose boundaries depend only on
//! `n_samples`; chunks run in parallel (rayon) and each walks its rows in tiles of
//! [`TILE_ROWS`]: one GEMM `X_tile C^T` (faer, sequential inside the task) into a
//! `TILE_ROWS x k` buffer, then a fused argmin over that buffer, never an `n x k` matrix.
//! Squared distances are `|x|^2 - 2 x.c + |c|^2` (clamped at 0); for the cosine metric rows
//! and centroids are unit vectors and the best centroid maximizes `x.c`.
//!
//! # Update
//! Each chunk accumulates its members' sums in f64 and its counts, in row order; chunk
//! results are reduced in chunk order. Since neither the chunks nor the tiles depend on the
//! number of threads, the same seed gives the same labels and centroids, bit for bit, with
//! any thread count. Empty clusters are re-seeded from the points farthest from their
//! centroid (as scikit-learn). Euclidean centroids are member means; spherical centroids are
//! the normalized member sums.
//!
//! # Stopping
//! After `max_iter` Lloyd iterations, when no label changes, or when the squared centroid
//! shift `sum_j |c_j' - c_j|^2` is at most `tol * mean(var(X, axis=0))` (scikit-learn's
//! definition of a relative tolerance); in the last case a final assignment makes the labels
//! consistent with the returned centroids. `n_init` restarts keep the lowest objective.
//!
//! # Objective
//! Euclidean: inertia `sum_i |x_i - c_{l_i}|^2`. Cosine: `sum_i (1 - cos(x_i, c_{l_i}))`,
//! i.e. half the inertia on the unit sphere. Both decrease at every Lloyd iteration.
//!
//! # Peak memory
//! Data (`n * d * s`, caller's) + labels (`4 n`) + distances (`s n`) + row norms (`s n`) +
//! centroids (`2 * k * d * s`) + chunk accumulators (`MAX_CHUNKS * k * (d + 1) * 8`) +
//! per-thread tiles (`TILE_ROWS * k * s`); k-means++ adds `(2 + ln k) * n * s + 8 n`.

use crate::error::{Error, Result};
use crate::linalg::gemm_nt;
use crate::preprocessing::Moments;
use crate::real::Real;
use faer::Par;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// Rows assigned at a time before their sums are accumulated (they stay in L1/L2).
const UPDATE_ROWS: usize = 240;

/// Rows per GEMM tile in the assignment kernel.
pub const TILE_ROWS: usize = 256;
/// Upper bound on the number of row chunks reduced in a fixed order.
pub const MAX_CHUNKS: usize = 16;
/// Smallest chunk (rows) worth a task of its own.
const MIN_CHUNK_ROWS: usize = 1024;

/// The dissimilarity k-means minimizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Squared Euclidean distance (classic k-means).
    Euclidean,
    /// Cosine dissimilarity on unit vectors (spherical k-means). Rows must be unit-norm.
    Cosine,
}

impl std::str::FromStr for Metric {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "euclidean" | "l2" => Ok(Metric::Euclidean),
            "cosine" => Ok(Metric::Cosine),
            _ => Err(Error::parameter(format!(
                "unknown metric {s:?} (expected euclidean or cosine)"
            ))),
        }
    }
}

/// How initial centroids are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    /// Greedy k-means++ with `2 + ln k` local trials per centroid (as scikit-learn).
    KMeansPlusPlus,
    /// Given centroids, `n_clusters x n_features` row-major (f64). Forces `n_init = 1`.
    Centroids(Vec<f64>),
}

/// Parameters of a k-means fit (names as scikit-learn's `KMeans`).
#[derive(Debug, Clone)]
pub struct KMeansParams {
    pub n_clusters: usize,
    pub metric: Metric,
    pub init: Init,
    pub n_init: usize,
    pub max_iter: usize,
    pub tol: f64,
    pub seed: u64,
}

impl Default for KMeansParams {
    fn default() -> Self {
        KMeansParams {
            n_clusters: 8,
            metric: Metric::Euclidean,
            init: Init::KMeansPlusPlus,
            n_init: 1,
            max_iter: 300,
            tol: 1e-4,
            seed: 0,
        }
    }
}

impl KMeansParams {
    /// Checks the parameters against the data shape.
    ///
    /// # Errors
    /// [`Error::Parameter`] when `n_clusters` is 0 or above `n_samples`, `n_init` or
    /// `max_iter` is 0, `tol` is negative or not finite, or given centroids have the wrong
    /// shape or are not finite.
    pub fn check(&self, n_samples: usize, n_features: usize) -> Result<()> {
        if self.n_clusters < 1 {
            return Err(Error::parameter("n_clusters must be at least 1"));
        }
        if self.n_clusters > n_samples {
            return Err(Error::parameter(format!(
                "n_clusters = {} is larger than n_samples = {n_samples}",
                self.n_clusters
            )));
        }
        if self.n_init < 1 {
            return Err(Error::parameter("n_init must be at least 1"));
        }
        if self.max_iter < 1 {
            return Err(Error::parameter("max_iter must be at least 1"));
        }
        if !(self.tol >= 0.0 && self.tol.is_finite()) {
            return Err(Error::parameter(format!("tol = {} must be >= 0", self.tol)));
        }
        if let Init::Centroids(c) = &self.init {
            if c.len() != self.n_clusters * n_features {
                return Err(Error::parameter(format!(
                    "init centroids have {} values, expected n_clusters x n_features = {} x {n_features}",
                    c.len(),
                    self.n_clusters
                )));
            }
            if c.iter().any(|v| !v.is_finite()) {
                return Err(Error::parameter("init centroids must be finite"));
            }
        }
        Ok(())
    }
}

/// A fitted k-means model.
#[derive(Debug, Clone)]
pub struct KMeans<T> {
    pub n_clusters: usize,
    pub n_features: usize,
    pub metric: Metric,
    /// `n_clusters x n_features`, row-major.
    pub cluster_centers: Vec<T>,
    /// Cluster of each training row.
    pub labels: Vec<i32>,
    /// Per training row: cosine similarity (cosine) or squared distance (Euclidean) to its
    /// centroid.
    pub scores: Vec<f32>,
    /// Objective of the returned labels and centroids (see module docs).
    pub inertia: f64,
    /// Lloyd iterations run by the best restart.
    pub n_iter: usize,
    /// Objective after each assignment step of the best restart.
    pub objective_history: Vec<f64>,
    /// Whether the best restart stopped on `tol` or stable labels rather than `max_iter`.
    pub converged: bool,
    /// Rows per cluster.
    pub counts: Vec<u64>,
}

impl<T> KMeans<T> {
    /// Clusters left without members (only when the data has fewer distinct points
    /// than `n_clusters`, e.g. duplicate rows: every other empty cluster is re-seeded).
    pub fn n_empty_clusters(&self) -> usize {
        self.counts.iter().filter(|&&c| c == 0).count()
    }

    /// A warning when some clusters are empty (scikit-learn's "Number of distinct clusters
    /// found smaller than n_clusters"), else `None`.
    pub fn distinct_clusters_warning(&self) -> Option<String> {
        let empty = self.n_empty_clusters();
        (empty > 0 && !self.counts.is_empty()).then(|| {
            format!(
                "number of distinct clusters ({}) found smaller than n_clusters ({}): the data has fewer distinct points than clusters (duplicate rows?); {} clusters are empty",
                self.n_clusters - empty,
                self.n_clusters,
                empty
            )
        })
    }
}

/// Shape-checked view of a data matrix with its squared row norms.
struct Data<'a, T> {
    x: &'a [T],
    n: usize,
    d: usize,
    norms: Vec<T>,
    chunk_rows: usize,
}

impl<'a, T: Real> Data<'a, T> {
    fn new(x: &'a [T], d: usize) -> Self {
        let n = x.len() / d;
        let mut norms = Vec::new();
        crate::linalg::row_sq_norms(x, d, &mut norms);
        Data {
            x,
            n,
            d,
            norms,
            chunk_rows: chunk_rows(n),
        }
    }
}

/// Rows per chunk: a function of `n` only (never of the thread count). Several chunks are
/// rounded up to a multiple of 4, so that 2 or 4 threads get equal shares (3 chunks on 2
/// threads ran at 2/3 of the speed at n = 10,000).
fn chunk_rows(n: usize) -> usize {
    let mut chunks = n.div_ceil(MIN_CHUNK_ROWS).clamp(1, MAX_CHUNKS);
    if chunks > 1 {
        chunks = chunks.next_multiple_of(4).min(MAX_CHUNKS);
    }
    n.div_ceil(chunks).max(1)
}

/// Assigns rows `x` (`rows x d`) to their nearest centroid: writes labels and the distance
/// (squared Euclidean, or `1 - cos` for the cosine metric), using `tile` as scratch.
/// This is the fused GEMM + argmin kernel; it never holds more than `TILE_ROWS x k` values.
#[allow(clippy::too_many_arguments)]
fn assign_rows<T: Real>(
    x: &[T],
    x_norms: &[T],
    centers: &[T],
    c_norms: &[T],
    k: usize,
    d: usize,
    metric: Metric,
    labels: &mut [i32],
    dists: &mut [T],
    mut second: Option<&mut [T]>,
    tile: &mut Vec<T>,
) {
    let rows = x.len() / d;
    tile.resize(TILE_ROWS * k, T::ZERO);
    let two = T::from_f64(2.0);
    let mut start = 0;
    while start < rows {
        let m = TILE_ROWS.min(rows - start);
        let t = &mut tile[..m * k];
        gemm_nt(
            t,
            &x[start * d..(start + m) * d],
            centers,
            m,
            k,
            d,
            T::ONE,
            false,
            Par::Seq,
        );
        for r in 0..m {
            let dots = &t[r * k..(r + 1) * k];
            // key to minimize: -x.c (cosine) or |c|^2 - 2 x.c (Euclidean)
            let key = |j: usize| match metric {
                Metric::Cosine => -dots[j],
                Metric::Euclidean => c_norms[j] - two * dots[j],
            };
            let mut best = 0;
            let mut bv = key(0);
            let mut sv: Option<T> = None;
            for j in 1..k {
                let v = key(j);
                if v < bv {
                    sv = Some(bv);
                    bv = v;
                    best = j;
                } else if sv.is_none_or(|s| v < s) {
                    sv = Some(v);
                }
            }
            let to_dist = |v: T| match metric {
                Metric::Cosine => T::ONE + v,
                Metric::Euclidean => {
                    let dist = x_norms[start + r] + v;
                    if dist > T::ZERO {
                        dist
                    } else {
                        T::ZERO
                    }
                }
            };
            labels[start + r] = best as i32;
            dists[start + r] = to_dist(bv);
            if let Some(sec) = second.as_deref_mut() {
                sec[start + r] = sv.map(to_dist).unwrap_or(dists[start + r]);
            }
        }
        start += m;
    }
}

/// Centroids prepared for one assignment pass: packed for the fused float32 kernel
/// ([`crate::assign`]) where the CPU has AVX2/AVX-512, else kept for the tiled GEMM.
pub(crate) enum Prepared<'a, T> {
    Fused(crate::assign::Packed),
    Gemm { centers: &'a [T], c_norms: Vec<T> },
}

/// `s` as `&[f32]` when `T` is `f32`.
fn as_f32<T: Real>(s: &[T]) -> Option<&[f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        // SAFETY: T is f32, so the slice has the same layout.
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len()) })
}

fn as_f32_mut<T: Real>(s: &mut [T]) -> Option<&mut [f32]> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
        // SAFETY: T is f32, so the slice has the same layout.
        Some(unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut f32, s.len()) })
    } else {
        None
    }
}

impl<'a, T: Real> Prepared<'a, T> {
    pub(crate) fn new(centers: &'a [T], k: usize, d: usize, metric: Metric) -> Self {
        if std::env::var_os("EMBEDCLUSTER_NO_FUSED").is_none() {
            if let Some(c) = as_f32(centers) {
                if let Some(p) = crate::assign::Packed::new(c, k, d, metric) {
                    return Prepared::Fused(p);
                }
            }
        }
        let mut c_norms = Vec::new();
        crate::linalg::row_sq_norms(centers, d, &mut c_norms);
        Prepared::Gemm { centers, c_norms }
    }

    /// Assigns rows `x` (see [`assign_rows`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assign(
        &self,
        x: &[T],
        x_norms: &[T],
        k: usize,
        d: usize,
        metric: Metric,
        labels: &mut [i32],
        dists: &mut [T],
        second: Option<&mut [T]>,
        tile: &mut Vec<T>,
    ) {
        match self {
            Prepared::Fused(p) => {
                let (x, n, di) = (
                    as_f32(x).expect("f32"),
                    as_f32(x_norms).expect("f32"),
                    as_f32_mut(dists).expect("f32"),
                );
                let sec = second.map(|s| as_f32_mut(s).expect("f32"));
                p.assign(x, n, labels, di, sec);
            }
            Prepared::Gemm { centers, c_norms } => assign_rows(
                x, x_norms, centers, c_norms, k, d, metric, labels, dists, second, tile,
            ),
        }
    }
}

/// Per-chunk result of a Lloyd step.
struct ChunkStats {
    sums: Vec<f64>,
    counts: Vec<u64>,
    objective: f64,
    changed: u64,
}

/// One assignment step over all rows with the chunk-parallel kernel; labels and dists are
/// updated in place. Returns the centroid sums and counts (f64, reduced in chunk order),
/// the objective and the number of labels that changed.
fn lloyd_step<T: Real>(
    data: &Data<'_, T>,
    centers: &[T],
    k: usize,
    metric: Metric,
    labels: &mut [i32],
    dists: &mut [T],
) -> (Vec<f64>, Vec<u64>, f64, u64) {
    let d = data.d;
    let prepared = Prepared::new(centers, k, d, metric);
    let cr = data.chunk_rows;
    let stats: Vec<ChunkStats> = labels
        .par_chunks_mut(cr)
        .zip(dists.par_chunks_mut(cr))
        .enumerate()
        .map(|(ci, (lab, dis))| {
            let start = ci * cr;
            let rows = lab.len();
            let x = &data.x[start * d..(start + rows) * d];
            let mut tile = Vec::new();
            let mut sums = vec![0.0f64; k * d];
            let mut counts = vec![0u64; k];
            let mut objective = 0.0;
            let mut changed = 0;
            let mut old = [0i32; UPDATE_ROWS];
            // Assign a few rows, then add them to the sums while they are still in cache
            // (one pass over the data per iteration, not two); sums stay in row order.
            let mut b = 0;
            while b < rows {
                let m = UPDATE_ROWS.min(rows - b);
                old[..m].copy_from_slice(&lab[b..b + m]);
                prepared.assign(
                    &x[b * d..(b + m) * d],
                    &data.norms[start + b..start + b + m],
                    k,
                    d,
                    metric,
                    &mut lab[b..b + m],
                    &mut dis[b..b + m],
                    None,
                    &mut tile,
                );
                for r in b..b + m {
                    let j = lab[r] as usize;
                    counts[j] += 1;
                    objective += dis[r].to_f64();
                    changed += (lab[r] != old[r - b]) as u64;
                    let s = &mut sums[j * d..(j + 1) * d];
                    for (acc, &v) in s.iter_mut().zip(&x[r * d..(r + 1) * d]) {
                        *acc += v.to_f64();
                    }
                }
                b += m;
            }
            ChunkStats {
                sums,
                counts,
                objective,
                changed,
            }
        })
        .collect();
    let mut it = stats.into_iter();
    let first = it.next().expect("at least one chunk");
    let (mut sums, mut counts, mut objective, mut changed) =
        (first.sums, first.counts, first.objective, first.changed);
    for s in it {
        sums.iter_mut().zip(&s.sums).for_each(|(a, b)| *a += b);
        counts.iter_mut().zip(&s.counts).for_each(|(a, b)| *a += b);
        objective += s.objective;
        changed += s.changed;
    }
    (sums, counts, objective, changed)
}

/// Moves the farthest points into empty clusters (scikit-learn's relocation): each empty
/// cluster takes the next point, by decreasing distance to its centroid, whose own cluster
/// keeps at least one member.
fn relocate_empty<T: Real>(
    data: &Data<'_, T>,
    labels: &mut [i32],
    dists: &mut [T],
    sums: &mut [f64],
    counts: &mut [u64],
) {
    let empty: Vec<usize> = (0..counts.len()).filter(|&j| counts[j] == 0).collect();
    if empty.is_empty() {
        return;
    }
    let d = data.d;
    let mut order: Vec<usize> = (0..data.n).collect();
    order.sort_by(|&a, &b| {
        dists[b]
            .partial_cmp(&dists[a])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    let mut next = 0;
    for j in empty {
        while next < order.len() && counts[labels[order[next]] as usize] <= 1 {
            next += 1;
        }
        if next == order.len() {
            break; // fewer distinct movable points than clusters: leave it empty
        }
        let i = order[next];
        next += 1;
        let old = labels[i] as usize;
        let row = &data.x[i * d..(i + 1) * d];
        for (f, &v) in row.iter().enumerate() {
            sums[old * d + f] -= v.to_f64();
            sums[j * d + f] = v.to_f64();
        }
        counts[old] -= 1;
        counts[j] = 1;
        labels[i] = j as i32;
        dists[i] = T::ZERO;
    }
}

/// New centroids from sums and counts; an empty cluster keeps its previous centroid.
fn centers_from_sums<T: Real>(
    sums: &[f64],
    counts: &[u64],
    prev: &[T],
    d: usize,
    metric: Metric,
) -> Vec<T> {
    let mut out = prev.to_vec();
    for (j, c) in counts.iter().enumerate() {
        let s = &sums[j * d..(j + 1) * d];
        let dst = &mut out[j * d..(j + 1) * d];
        if *c == 0 {
            continue;
        }
        let scale = match metric {
            Metric::Euclidean => 1.0 / *c as f64,
            Metric::Cosine => {
                let norm = s.iter().map(|v| v * v).sum::<f64>().sqrt();
                if norm == 0.0 {
                    continue;
                }
                1.0 / norm
            }
        };
        for (o, &v) in dst.iter_mut().zip(s) {
            *o = T::from_f64(v * scale);
        }
    }
    out
}

/// Greedy k-means++ (Arthur and Vassilvitskii 2007; scikit-learn's variant with
/// `2 + floor(ln k)` local trials per step, keeping the candidate that lowers the potential
/// most). Distances are squared Euclidean (on unit vectors for the cosine metric).
fn kmeans_plusplus<T: Real>(
    data: &Data<'_, T>,
    k: usize,
    rng: &mut rand::rngs::StdRng,
    cancel: &AtomicBool,
) -> Result<Vec<T>> {
    let (n, d) = (data.n, data.d);
    let trials = 2 + (k as f64).ln().floor() as usize;
    let mut centers: Vec<T> = Vec::with_capacity(k * d);
    let first = rng.random_range(0..n);
    centers.extend_from_slice(&data.x[first * d..(first + 1) * d]);
    let mut closest = vec![T::ZERO; n];
    candidate_distances(data, &centers, 1, &mut closest);
    let mut cand_d = vec![T::ZERO; n * trials];
    let mut cumsum = vec![0.0f64; n];
    for _ in 1..k {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let mut acc = 0.0;
        for (c, &v) in cumsum.iter_mut().zip(&closest) {
            acc += v.to_f64();
            *c = acc;
        }
        let pot = acc;
        let mut cand_rows = Vec::with_capacity(trials * d);
        for _ in 0..trials {
            let r = rng.random::<f64>() * pot;
            let idx = cumsum.partition_point(|&c| c < r).min(n - 1);
            cand_rows.extend_from_slice(&data.x[idx * d..(idx + 1) * d]);
        }
        candidate_distances(data, &cand_rows, trials, &mut cand_d);
        // potential of each candidate, summed per fixed chunk then in chunk order
        let cr = data.chunk_rows;
        let partial: Vec<Vec<f64>> = closest
            .par_chunks(cr)
            .zip(cand_d.par_chunks(cr * trials))
            .map(|(cl, cd)| {
                let mut p = vec![0.0f64; trials];
                for (i, &c) in cl.iter().enumerate() {
                    for t in 0..trials {
                        let v = cd[i * trials + t];
                        p[t] += if v < c { v } else { c }.to_f64();
                    }
                }
                p
            })
            .collect();
        let mut pots = vec![0.0f64; trials];
        for p in partial {
            pots.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        let best = (0..trials).fold(0, |b, t| if pots[t] < pots[b] { t } else { b });
        centers.extend_from_slice(&cand_rows[best * d..(best + 1) * d]);
        for (i, c) in closest.iter_mut().enumerate() {
            let v = cand_d[i * trials + best];
            if v < *c {
                *c = v;
            }
        }
    }
    Ok(centers)
}

/// Squared distances of every row to `m` candidate rows: `out[i * m + t]`.
fn candidate_distances<T: Real>(data: &Data<'_, T>, cand: &[T], m: usize, out: &mut [T]) {
    let d = data.d;
    let mut c_norms = Vec::new();
    crate::linalg::row_sq_norms(cand, d, &mut c_norms);
    let cr = data.chunk_rows;
    // float32 with at most 16 candidates: the register-blocked dot kernel
    let packed = as_f32(cand).and_then(|c| crate::assign::Packed::new(c, m, d, Metric::Cosine));
    if let (Some(p), Some(x)) = (&packed, as_f32(data.x)) {
        if p.has_dots() {
            out.par_chunks_mut(cr * m).enumerate().for_each(|(ci, o)| {
                let a = ci * cr;
                let rows = o.len() / m;
                let of = as_f32_mut(o).expect("f32");
                p.dots(&x[a * d..(a + rows) * d], of);
                for r in 0..rows {
                    for j in 0..m {
                        let v = data.norms[a + r] - T::from_f64(2.0) * o[r * m + j] + c_norms[j];
                        o[r * m + j] = if v > T::ZERO { v } else { T::ZERO };
                    }
                }
            });
            return;
        }
    }
    // One GEMM per chunk (`rows x m`, m = a few candidates): per-tile calls of a GEMM this
    // skinny cost more in call overhead than in flops (k-means++ at 312,000 x 128, k = 50:
    // 0.75 s with 256-row tiles).
    out.par_chunks_mut(cr * m).enumerate().for_each(|(ci, o)| {
        let a = ci * cr;
        let rows = o.len() / m;
        gemm_nt(
            o,
            &data.x[a * d..(a + rows) * d],
            cand,
            rows,
            m,
            d,
            T::ONE,
            false,
            Par::Seq,
        );
        for r in 0..rows {
            for j in 0..m {
                let v = data.norms[a + r] - T::from_f64(2.0) * o[r * m + j] + c_norms[j];
                o[r * m + j] = if v > T::ZERO { v } else { T::ZERO };
            }
        }
    });
}

/// Per-row scores from distances: cosine similarity (`1 - d`) or the squared distance.
fn scores_from_distances<T: Real>(metric: Metric, dists: &[T]) -> Vec<f32> {
    dists
        .iter()
        .map(|&v| match metric {
            Metric::Cosine => (1.0 - v.to_f64()) as f32,
            Metric::Euclidean => v.to_f64() as f32,
        })
        .collect()
}

/// Seed of restart `r` (SplitMix64 of the user seed and the restart index).
fn restart_seed(seed: u64, r: usize) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(r as u64 + 1));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fits k-means on `x` (`n_samples x n_features` row-major, in memory). For
/// [`Metric::Cosine`] the rows must already be unit vectors.
///
/// # Errors
/// [`Error::Parameter`] from [`KMeansParams::check`] or if `x.len()` is not a multiple
/// of `n_features`.
pub fn fit<T: Real>(params: &KMeansParams, x: &[T], n_features: usize) -> Result<KMeans<T>> {
    fit_cancellable(params, x, n_features, &AtomicBool::new(false))
}

/// [`fit`] that stops with [`Error::Interrupted`] at the next k-means++ step or Lloyd
/// iteration after `cancel` becomes true.
pub fn fit_cancellable<T: Real>(
    params: &KMeansParams,
    x: &[T],
    n_features: usize,
    cancel: &AtomicBool,
) -> Result<KMeans<T>> {
    if n_features == 0 || !x.len().is_multiple_of(n_features) {
        return Err(Error::parameter(format!(
            "data of {} values is not a multiple of n_features = {n_features}",
            x.len()
        )));
    }
    let n = x.len() / n_features;
    params.check(n, n_features)?;
    let data = Data::new(x, n_features);
    let tol_abs = {
        let mut m = Moments::new(n_features);
        for chunk in x.chunks(data.chunk_rows * n_features) {
            m.merge(&Moments::partial(chunk, n_features));
        }
        params.tol * m.var().iter().sum::<f64>() / n_features as f64
    };
    let n_init = match params.init {
        Init::Centroids(_) => 1,
        Init::KMeansPlusPlus => params.n_init,
    };
    let mut best: Option<KMeans<T>> = None;
    for r in 0..n_init {
        let mut rng = rand::rngs::StdRng::seed_from_u64(restart_seed(params.seed, r));
        let init = match &params.init {
            Init::Centroids(c) => c.iter().map(|&v| T::from_f64(v)).collect(),
            Init::KMeansPlusPlus => kmeans_plusplus(&data, params.n_clusters, &mut rng, cancel)?,
        };
        let run = lloyd(&data, init, params, tol_abs, cancel)?;
        if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
            best = Some(run);
        }
    }
    Ok(best.expect("n_init >= 1"))
}

fn lloyd<T: Real>(
    data: &Data<'_, T>,
    mut centers: Vec<T>,
    p: &KMeansParams,
    tol_abs: f64,
    cancel: &AtomicBool,
) -> Result<KMeans<T>> {
    let (n, d, k) = (data.n, data.d, p.n_clusters);
    let mut labels = vec![-1i32; n];
    let mut dists = vec![T::ZERO; n];
    let mut history = Vec::new();
    let mut converged = false;
    let mut needs_final = true;
    let mut counts = vec![0u64; k];
    let mut n_iter = 0;
    for it in 0..p.max_iter {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let (mut sums, mut cnt, objective, changed) =
            lloyd_step(data, &centers, k, p.metric, &mut labels, &mut dists);
        history.push(objective);
        n_iter = it + 1;
        counts = cnt.clone();
        if it > 0 && changed == 0 {
            // Labels are stable, so the centroids already are their members' means.
            converged = true;
            needs_final = false;
            break;
        }
        relocate_empty(data, &mut labels, &mut dists, &mut sums, &mut cnt);
        let new = centers_from_sums(&sums, &cnt, &centers, d, p.metric);
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
            break;
        }
    }
    if needs_final {
        let (_, cnt, objective, _) =
            lloyd_step(data, &centers, k, p.metric, &mut labels, &mut dists);
        counts = cnt;
        history.push(objective);
    }
    let inertia = *history.last().expect("at least one step");
    let scores = scores_from_distances(p.metric, &dists);
    Ok(KMeans {
        n_clusters: k,
        n_features: d,
        metric: p.metric,
        cluster_centers: centers,
        labels,
        scores,
        inertia,
        n_iter,
        objective_history: history,
        converged,
        counts,
    })
}

/// Mergeable state of one Lloyd step (Lloyd 1982) over rows seen in any number of blocks,
/// for k-means whose data never sit in one place (Spark partitions, streams): per-cluster
/// sums (f64), counts and the objective, against fixed `centers`. `partial` / `merge`, then
/// [`LloydState::centers`] gives the next centroids.
///
/// Memory: `k * d * 8` bytes of sums plus, during `partial`, `n * (4 + 2 s)` bytes for the
/// block's labels, distances and norms. Rows must be unit vectors for the cosine metric.
#[derive(Debug, Clone, PartialEq)]
pub struct LloydState {
    pub n_clusters: usize,
    pub n_features: usize,
    /// `n_clusters x n_features`, row-major: the sum of each cluster's rows.
    pub sums: Vec<f64>,
    pub counts: Vec<u64>,
    /// Sum of squared distances (Euclidean) or of `1 - cos` (cosine) to the nearest centroid.
    pub objective: f64,
}

impl LloydState {
    /// The empty state.
    pub fn new(n_clusters: usize, n_features: usize) -> Self {
        LloydState {
            n_clusters,
            n_features,
            sums: vec![0.0; n_clusters * n_features],
            counts: vec![0; n_clusters],
            objective: 0.0,
        }
    }

    /// The state of the rows `x` (`rows x d`, row-major) against `centers` (`k x d`).
    ///
    /// # Errors
    /// [`Error::Parameter`] when the shapes disagree or `k` is 0.
    pub fn partial<T: Real>(
        x: &[T],
        d: usize,
        centers: &[T],
        k: usize,
        metric: Metric,
    ) -> Result<Self> {
        if k == 0 || d == 0 || centers.len() != k * d || !x.len().is_multiple_of(d) {
            return Err(Error::parameter(format!(
                "Lloyd step: {} centroid values for k = {k}, d = {d}, and {} data values",
                centers.len(),
                x.len()
            )));
        }
        let data = Data::new(x, d);
        if data.n == 0 {
            return Ok(LloydState::new(k, d));
        }
        let mut labels = vec![-1i32; data.n];
        let mut dists = vec![T::ZERO; data.n];
        let (sums, counts, objective, _) =
            lloyd_step(&data, centers, k, metric, &mut labels, &mut dists);
        Ok(LloydState {
            n_clusters: k,
            n_features: d,
            sums,
            counts,
            objective,
        })
    }

    /// Adds `other` (same shape) into `self`.
    pub fn merge(&mut self, other: &LloydState) {
        self.sums
            .iter_mut()
            .zip(&other.sums)
            .for_each(|(a, b)| *a += b);
        self.counts
            .iter_mut()
            .zip(&other.counts)
            .for_each(|(a, b)| *a += b);
        self.objective += other.objective;
    }

    /// The next centroids: the mean of each cluster's rows (Euclidean) or its normalized sum
    /// (cosine); an empty cluster keeps its previous centroid `prev` (as Spark MLlib).
    pub fn centers<T: Real>(&self, prev: &[T], metric: Metric) -> Vec<T> {
        centers_from_sums(&self.sums, &self.counts, prev, self.n_features, metric)
    }
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
    pub fn from_centers(cluster_centers: Vec<T>, n_clusters: usize, metric: Metric) -> Self {
        KMeans {
            n_clusters,
            n_features: cluster_centers.len() / n_clusters.max(1),
            metric,
            cluster_centers,
            labels: vec![],
            scores: vec![],
            inertia: 0.0,
            n_iter: 0,
            objective_history: vec![],
            converged: true,
            counts: vec![],
        }
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
                prepared.assign(
                    &x[start * d..(start + rows) * d],
                    &data.norms[start..start + rows],
                    self.n_clusters,
                    d,
                    self.metric,
                    lab,
                    dis,
                    sec,
                    &mut tile,
                );
            });
        (labels, dists, if top2 { Some(second) } else { None })
    }

    /// Assigns rows `x` (`rows x n_features`) to the nearest centroid; returns labels and
    /// scores (cosine similarity, or squared distance).
    pub fn predict(&self, x: &[T]) -> (Vec<i32>, Vec<f32>) {
        let (labels, dists, _) = self.assign(x, false);
        (labels, scores_from_distances(self.metric, &dists))
    }

    /// [`predict`](Self::predict) plus the normalized top-2 margin of each row.
    pub fn predict_with_confidence(&self, x: &[T]) -> Assignment {
        let (labels, dists, second) = self.assign(x, true);
        let second = second.expect("top2");
        let confidence = if self.n_clusters < 2 {
            vec![1.0 - f32::EPSILON; labels.len()]
        } else {
            dists
                .iter()
                .zip(&second)
                .map(|(&a, &b)| confidence_from_distances(a.to_f64(), b.to_f64()))
                .collect()
        };
        Assignment {
            labels,
            scores: scores_from_distances(self.metric, &dists),
            confidence,
        }
    }
}
