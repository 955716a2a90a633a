//! k-means|| (Bahmani, Moseley, Vattani, Kumar and Vassilvitskii 2012, "Scalable K-Means++"):
//! seeding in a few passes with a mergeable state, so that data in blocks, streams or engine
//! partitions is seeded by the same code as rows in memory.
//!
//! # Algorithm
//! 1. The first centre is the row of smallest `h(seed, row)`, a hash of its values.
//! 2. Each round (`rounds`, default 5): with `psi` the cost `sum_i d_i^2` (squared Euclidean
//!    distance of row `i` to its nearest centre so far), every row is drawn independently
//!    with probability `min(1, l * d_i^2 / psi)`, `l = oversampling_factor * k` (default
//!    `2k`), so about `l` rows join the candidates per round.
//! 3. Each candidate is weighted by the number of rows nearest to it (the paper's step 7;
//!    dask-ml drops the weights, we keep them).
//! 4. The candidates are reclustered to `k` centres: weighted greedy k-means++ (potential
//!    `sum_c w_c min_j d(c, j)^2`), then weighted Lloyd on the candidates until their labels
//!    are stable (at most 100 iterations), as Spark MLlib's `LocalKMeans`.
//!
//! # Determinism
//! Row `i` is drawn when `u(seed, round, x_i) < l d_i^2 / psi`, with `u` a hash of the seed,
//! the round and the row's values (SplitMix64 over their bits), not a stream of random
//! numbers and not a row id, so the draw depends neither on how rows are split nor on their
//! order (an engine's partitions need not be stable between jobs). Drawn rows are ordered by
//! their hash (then their values). `psi` is summed in fixed point (units of
//! `2^-40`, an `i128`), exact in any order. Distances to the candidates of one round are
//! computed by one GEMM tile kernel whatever the block; nearest-candidate ties go to the
//! earlier candidate. So the same rows (same ids) give the same centres, bit for bit, for any
//! thread count, block size or partitioning.
//!
//! # Cost and memory
//! `2 * rounds + 2` passes when distributed (cost and draw per round, the first row, the
//! weights); in memory `rounds + 1` passes, keeping each row's nearest distance, candidate
//! and value hash (`n * (s + 12)` bytes). Per block: one `TILE_ROWS x m` tile per thread for a
//! round of `m` candidates. Candidates: about `1 + rounds * l` rows (`(1 + rounds * l) * d *
//! s` bytes on the driver).

#![allow(clippy::neg_cmp_op_on_partial_ord)] // `!(v > 0)` also catches NaN

use super::assign::{assign_rows, Data, TILE_ROWS};
use super::init::{kmeans_plusplus, restart_seed};
use super::lloyd::centers_from_mass;
use super::params::ParallelInit;
use super::Metric;
use crate::dtype::Real;
use crate::error::{Error, Result};
use crate::linalg::gemm_nt;
use crate::runtime::Cancel;
use faer::Par;
use rand::SeedableRng;
use rayon::prelude::*;

/// Units of [`Cost`]: `2^40` per unit of squared distance.
pub const COST_SCALE: f64 = (1u64 << 40) as f64;

/// A sum of squared distances in fixed point (`value * 2^40`, rounded): exact, so partial
/// costs merge to the same total in any order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cost(pub i128);

impl Cost {
    /// One distance in fixed point.
    pub fn of(v: f64) -> Cost {
        Cost((v * COST_SCALE).round() as i128)
    }
    /// The sum, in units of squared distance.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / COST_SCALE
    }
}

impl std::ops::Add for Cost {
    type Output = Cost;
    /// Saturating sum.
    fn add(self, other: Cost) -> Cost {
        Cost(self.0.saturating_add(other.0))
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of a row's values (their f64 bits).
pub fn row_key<T: Real>(row: &[T]) -> u64 {
    row.iter().fold(0x243F_6A88_85A3_08D3u64, |h, v| {
        splitmix(h ^ v.to_f64().to_bits())
    })
}

/// [`row_key`] of every row of `x` (`rows x d`).
fn row_keys<T: Real>(x: &[T], d: usize) -> Vec<u64> {
    x.par_chunks(d).map(row_key).collect()
}

/// The uniform number in `[0, 1)` of a row of key `key` in `round`.
fn uniform(seed: u64, round: u32, key: u64) -> f64 {
    let h = splitmix(splitmix(seed ^ (u64::from(round) << 48)) ^ key);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The first centre's rank of a row of key `key`: the row of smallest rank is the first
/// centre.
fn first_rank(seed: u64, key: u64) -> u64 {
    splitmix(splitmix(seed ^ 0x6B6D_6561_6E73_7C7C) ^ key)
}

/// Order of candidates: by hash, then by value (a total order on the rows).
fn by_rank<T: Real>(a: (u64, &[T]), b: (u64, &[T])) -> std::cmp::Ordering {
    a.0.cmp(&b.0).then_with(|| {
        a.1.iter()
            .zip(b.1)
            .map(|(x, y)| x.to_f64().total_cmp(&y.to_f64()))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    })
}

/// [`by_rank`] of two drawn `(hash, row)` pairs.
fn by_rank_owned<T: Real>(a: &(u64, Vec<T>), b: &(u64, Vec<T>)) -> std::cmp::Ordering {
    by_rank((a.0, &a.1), (b.0, &b.1))
}

/// A block's candidate for the first centre: `(rank, row)` of its row of smallest rank
/// (merge blocks by keeping the smallest by rank, then values).
///
/// # Errors
/// [`Error::Parameter`] when the shapes disagree.
pub fn parallel_first<T: Real>(x: &[T], d: usize, seed: u64) -> Result<Option<(u64, Vec<T>)>> {
    check_block(x, d, &[])?;
    Ok(first_of(x, d, &row_keys(x, d), seed))
}

/// The row of smallest rank among rows `x` with keys `keys`.
fn first_of<T: Real>(x: &[T], d: usize, keys: &[u64], seed: u64) -> Option<(u64, Vec<T>)> {
    x.chunks(d)
        .zip(keys)
        .map(|(r, &k)| (first_rank(seed, k), r))
        .min_by(|a, b| by_rank(*a, *b))
        .map(|(rank, r)| (rank, r.to_vec()))
}

/// Nearest-candidate state of rows: squared distance and index over the groups seen.
struct Nearest<T> {
    closest: Vec<T>,
    nearest: Vec<u32>,
    /// Candidates seen so far (the index of the next group's first).
    seen: u32,
}

impl<T: Real> Nearest<T> {
    fn new(n: usize) -> Self {
        Nearest {
            closest: vec![T::from_f64(f64::INFINITY); n],
            nearest: vec![0; n],
            seen: 0,
        }
    }

    /// Takes `group` (`m x d`) into the rows' nearest distances: one GEMM tile of
    /// `TILE_ROWS x m` at a time per chunk; a strictly smaller distance wins, so ties keep
    /// the earlier candidate.
    fn add(&mut self, data: &Data<'_, T>, group: &[T]) {
        let d = data.d;
        let m = group.len() / d;
        if m == 0 || data.n == 0 {
            return;
        }
        let mut gn = Vec::new();
        crate::linalg::row_sq_norms(group, d, &mut gn);
        let cr = data.chunk_rows;
        let offset = self.seen;
        let two = T::from_f64(2.0);
        self.closest
            .par_chunks_mut(cr)
            .zip(self.nearest.par_chunks_mut(cr))
            .enumerate()
            .for_each(|(ci, (cl, nr))| {
                let a = ci * cr;
                let mut tile = vec![T::ZERO; TILE_ROWS.min(cl.len()) * m];
                let mut s = 0;
                while s < cl.len() {
                    let t = TILE_ROWS.min(cl.len() - s);
                    let buf = &mut tile[..t * m];
                    gemm_nt(
                        buf,
                        &data.x[(a + s) * d..(a + s + t) * d],
                        group,
                        t,
                        m,
                        d,
                        T::ONE,
                        false,
                        Par::Seq,
                    );
                    for r in 0..t {
                        let xn = data.norms[a + s + r];
                        for j in 0..m {
                            let mut v = xn - two * buf[r * m + j] + gn[j];
                            if !(v > T::ZERO) {
                                v = T::ZERO;
                            }
                            if v < cl[s + r] {
                                cl[s + r] = v;
                                nr[s + r] = offset + j as u32;
                            }
                        }
                    }
                    s += t;
                }
            });
        self.seen += m as u32;
    }

    fn cost(&self) -> Cost {
        self.closest
            .par_iter()
            .map(|v| Cost::of(v.to_f64()))
            .reduce(Cost::default, |a, b| a + b)
    }

    /// The rows drawn in `round`; `keys` are the rows' [`row_key`]s.
    fn draw(
        &self,
        data: &Data<'_, T>,
        keys: &[u64],
        l: f64,
        psi: Cost,
        seed: u64,
        round: u32,
    ) -> Vec<(u64, Vec<T>)> {
        let psi = psi.to_f64();
        if !(psi > 0.0) {
            return Vec::new();
        }
        let d = data.d;
        let mut out: Vec<(u64, Vec<T>)> = self
            .closest
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let key = keys[i];
                (uniform(seed, round, key) < l * v.to_f64() / psi)
                    .then(|| (key, data.x[i * d..(i + 1) * d].to_vec()))
            })
            .collect();
        out.sort_by(by_rank_owned);
        out
    }

    fn weights(&self) -> Vec<u64> {
        let mut w = vec![0u64; self.seen as usize];
        for &j in &self.nearest {
            w[j as usize] += 1;
        }
        w
    }
}

fn check_block<T: Real>(x: &[T], d: usize, groups: &[&[T]]) -> Result<()> {
    if d == 0 || !x.len().is_multiple_of(d) || groups.iter().any(|g| !g.len().is_multiple_of(d)) {
        return Err(Error::param_msg(
            "k-means||",
            format!(
                "a block of {} values or a candidate group is not a multiple of n_features = {d}",
                x.len()
            ),
        ));
    }
    Ok(())
}

fn nearest_over<T: Real>(data: &Data<'_, T>, groups: &[&[T]]) -> Nearest<T> {
    let mut near = Nearest::new(data.n);
    for g in groups {
        near.add(data, g);
    }
    near
}

/// A block's share of k-means||'s cost: `sum_i d_i^2` over its rows (`x`, `rows x d`) to
/// their nearest candidate in `groups` (the rounds' candidates, in order), in fixed point.
///
/// # Errors
/// [`Error::Parameter`] when the shapes disagree.
pub fn parallel_cost<T: Real>(x: &[T], d: usize, groups: &[&[T]]) -> Result<Cost> {
    check_block(x, d, groups)?;
    let data = Data::new(x, d);
    Ok(nearest_over(&data, groups).cost())
}

/// A block's rows drawn in `round`: each row with probability `min(1, l d_i^2 / psi)`,
/// decided by a hash of `(seed, round, row values)`; as `(row hash, row)` in candidate order
/// (merge blocks by concatenating; the driver sorts).
///
/// # Errors
/// [`Error::Parameter`] when the shapes disagree.
pub fn parallel_draw<T: Real>(
    x: &[T],
    d: usize,
    groups: &[&[T]],
    l: f64,
    psi: Cost,
    seed: u64,
    round: u32,
) -> Result<Vec<(u64, Vec<T>)>> {
    check_block(x, d, groups)?;
    let data = Data::new(x, d);
    Ok(nearest_over(&data, groups).draw(&data, &row_keys(x, d), l, psi, seed, round))
}

/// A block's rows nearest to each candidate of `groups` (concatenated; ties: the earlier).
///
/// # Errors
/// [`Error::Parameter`] when the shapes disagree.
pub fn parallel_weights<T: Real>(x: &[T], d: usize, groups: &[&[T]]) -> Result<Vec<u64>> {
    check_block(x, d, groups)?;
    let data = Data::new(x, d);
    let near = nearest_over(&data, groups);
    let mut w = near.weights();
    w.resize(groups.iter().map(|g| g.len() / d).sum(), 0);
    Ok(w)
}

/// What [`kmeans_parallel_drive`] needs of the data: passes over all rows (an engine runs
/// each as a job over its partitions and merges with `+`).
pub trait ParallelData<T: Real> {
    /// Rows `n`.
    fn n_samples(&self) -> u64;
    /// Features `d`.
    fn n_features(&self) -> usize;
    /// The first centre (see [`parallel_first`]): the row of smallest rank, merged over
    /// blocks.
    ///
    /// # Errors
    /// Whatever reading the data raises.
    fn first(&mut self, seed: u64) -> Result<Option<(u64, Vec<T>)>>;
    /// The cost (see [`parallel_cost`]) against `groups`.
    ///
    /// # Errors
    /// Whatever reading the data raises.
    fn cost(&mut self, groups: &[Vec<T>]) -> Result<Cost>;
    /// The rows drawn in `round` (see [`parallel_draw`]), any order.
    ///
    /// # Errors
    /// Whatever reading the data raises.
    fn draw(
        &mut self,
        groups: &[Vec<T>],
        l: f64,
        psi: Cost,
        seed: u64,
        round: u32,
    ) -> Result<Vec<(u64, Vec<T>)>>;
    /// Rows nearest to each candidate (see [`parallel_weights`]).
    ///
    /// # Errors
    /// Whatever reading the data raises.
    fn weights(&mut self, groups: &[Vec<T>]) -> Result<Vec<u64>>;
}

/// Rows in memory: each row's nearest candidate kept between rounds, so a round costs one
/// pass over the new candidates only (the same values as recomputing, bit for bit), and
/// each row's [`row_key`] hashed once for the first centre and every round's draw.
pub(crate) struct InMemoryParallel<'a, 'b, T> {
    data: &'b Data<'a, T>,
    near: Nearest<T>,
    keys: Vec<u64>,
    groups_seen: usize,
}

impl<'a, 'b, T: Real> InMemoryParallel<'a, 'b, T> {
    pub(crate) fn new(data: &'b Data<'a, T>) -> Self {
        InMemoryParallel {
            data,
            near: Nearest::new(data.n),
            keys: row_keys(data.x, data.d),
            groups_seen: 0,
        }
    }

    fn catch_up(&mut self, groups: &[Vec<T>]) {
        for g in &groups[self.groups_seen..] {
            self.near.add(self.data, g);
        }
        self.groups_seen = groups.len();
    }
}

impl<T: Real> ParallelData<T> for InMemoryParallel<'_, '_, T> {
    fn n_samples(&self) -> u64 {
        self.data.n as u64
    }
    fn n_features(&self) -> usize {
        self.data.d
    }
    fn first(&mut self, seed: u64) -> Result<Option<(u64, Vec<T>)>> {
        Ok(first_of(self.data.x, self.data.d, &self.keys, seed))
    }
    fn cost(&mut self, groups: &[Vec<T>]) -> Result<Cost> {
        self.catch_up(groups);
        Ok(self.near.cost())
    }
    fn draw(
        &mut self,
        groups: &[Vec<T>],
        l: f64,
        psi: Cost,
        seed: u64,
        round: u32,
    ) -> Result<Vec<(u64, Vec<T>)>> {
        self.catch_up(groups);
        Ok(self.near.draw(self.data, &self.keys, l, psi, seed, round))
    }
    fn weights(&mut self, groups: &[Vec<T>]) -> Result<Vec<u64>> {
        self.catch_up(groups);
        Ok(self.near.weights())
    }
}

/// The k-means|| seeding of `k` centres over `data` (see the module docs). For the cosine
/// metric rows must be unit vectors; the centres then are too.
///
/// # Errors
/// [`Error::Interrupted`] once `cancel` is set (checked before each round); anything `data`
/// raises; [`Error::Parameter`] for `k = 0`, no rows, or parameters out of range.
pub fn kmeans_parallel_drive<T: Real>(
    data: &mut dyn ParallelData<T>,
    k: usize,
    metric: Metric,
    p: ParallelInit,
    seed: u64,
    cancel: Cancel<'_>,
) -> Result<Vec<T>> {
    let (n, d) = (data.n_samples(), data.n_features());
    if k == 0 || n == 0 || d == 0 {
        return Err(Error::param_msg(
            "k-means||",
            format!("needs rows and clusters: n_samples = {n}, n_clusters = {k}"),
        ));
    }
    if !(p.oversampling_factor > 0.0 && p.oversampling_factor.is_finite()) || p.rounds == 0 {
        return Err(Error::param_msg(
            "k-means||",
            "oversampling_factor must be > 0 and rounds at least 1",
        ));
    }
    let l = p.oversampling_factor * k as f64;
    let Some((_, first)) = data.first(seed)? else {
        return Err(Error::param_msg("k-means||", "no rows"));
    };
    if first.len() != d {
        return Err(Error::param_msg(
            "k-means||",
            "the first row has the wrong length",
        ));
    }
    let mut groups = vec![first];
    let mut psi = data.cost(&groups)?;
    let mut total = 1usize;
    // Extra rounds only while there are fewer candidates than clusters (tiny data).
    let max_rounds = p.rounds + 16;
    let mut round = 0usize;
    while round < p.rounds || (total < k && round < max_rounds) {
        cancel.check()?;
        if psi.0 <= 0 {
            break; // every row sits on a candidate
        }
        let mut drawn = data.draw(&groups, l, psi, seed, round as u32)?;
        drawn.sort_by(by_rank_owned);
        round += 1;
        if drawn.is_empty() {
            continue;
        }
        if drawn.iter().any(|(_, r)| r.len() != d) {
            return Err(Error::param_msg(
                "k-means||",
                "a drawn row has the wrong length",
            ));
        }
        total += drawn.len();
        groups.push(drawn.into_iter().flat_map(|(_, r)| r).collect());
        psi = data.cost(&groups)?;
    }
    let w = data.weights(&groups)?;
    let cands: Vec<T> = groups.concat();
    if w.len() != cands.len() / d {
        return Err(Error::param_msg(
            "k-means||",
            format!("{} weights for {} candidates", w.len(), cands.len() / d),
        ));
    }
    let w: Vec<f64> = w.iter().map(|&c| c as f64).collect();
    recluster(&cands, &w, k, d, metric, seed, cancel)
}

/// Weighted k-means++ then weighted Lloyd on the candidates (`m x d`, weights `w`).
fn recluster<T: Real>(
    cands: &[T],
    w: &[f64],
    k: usize,
    d: usize,
    metric: Metric,
    seed: u64,
    cancel: Cancel<'_>,
) -> Result<Vec<T>> {
    let data = Data::weighted(cands, d, Some(w));
    let mut rng = rand::rngs::StdRng::seed_from_u64(restart_seed(seed, 0x7C7C));
    let mut centers = kmeans_plusplus(&data, k, &mut rng, cancel)?;
    let m = data.n;
    let mut labels = vec![-1i32; m];
    let mut prev = vec![-2i32; m];
    let mut dists = vec![T::ZERO; m];
    let mut tile = Vec::new();
    for _ in 0..100 {
        cancel.check()?;
        let mut c_norms = Vec::new();
        crate::linalg::row_sq_norms(&centers, d, &mut c_norms);
        assign_rows(
            data.x,
            &data.norms,
            &centers,
            &c_norms,
            k,
            d,
            metric,
            &mut labels,
            &mut dists,
            None,
            &mut tile,
        );
        if labels == prev {
            break;
        }
        let mut sums = vec![0.0f64; k * d];
        let mut mass = vec![0.0f64; k];
        for (i, &lab) in labels.iter().enumerate() {
            let j = lab as usize;
            mass[j] += w[i];
            for (s, v) in sums[j * d..(j + 1) * d]
                .iter_mut()
                .zip(&data.x[i * d..(i + 1) * d])
            {
                *s += w[i] * v.to_f64();
            }
        }
        centers = centers_from_mass(&sums, &mass, &centers, d, metric);
        std::mem::swap(&mut prev, &mut labels);
    }
    Ok(centers)
}
