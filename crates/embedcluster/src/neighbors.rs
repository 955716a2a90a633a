//! Exact top-k nearest neighbours by blocked GEMM with a bounded heap per query.
//!
//! The base is consumed block by block ([`KnnState::push_base`]), so it can be streamed from
//! a file, held in memory, or split across machines and merged ([`KnnState::merge`]). For
//! each `QUERY_TILE x BASE_TILE` pair of tiles one GEMM `Q B^T` fills a small buffer, and
//! every value is offered to the query's heap, which keeps the `k` best seen so far. No
//! `n_queries x n_base` matrix is ever built.
//!
//! # Order and ties
//! Candidates are ranked by `(key, id)` where the key is the squared L2 distance
//! (`|q|^2 + |b|^2 - 2 q.b`, clamped at 0), minus the inner product, or minus the cosine
//! similarity. Equal keys are ordered by the smaller base id. This is a total order, so the
//! result does not depend on the block size, the order of merges or the number of threads.
//!
//! # Distances returned
//! * [`Distance::SqEuclidean`]: squared Euclidean distance (as FAISS `IndexFlatL2`).
//! * [`Distance::InnerProduct`]: the inner product, best (largest) first (as FAISS
//!   `IndexFlatIP`).
//! * [`Distance::Cosine`]: cosine distance `1 - cos` (as scikit-learn's
//!   `NearestNeighbors(metric="cosine")`); rows are normalized internally and an all-zero
//!   row is an error.
//!
//! # Peak memory
//! Queries (`q d s`, one normalized copy for cosine) + heaps (`q k (s + 8)`) + one GEMM tile
//! per thread (`QUERY_TILE * BASE_TILE * s` = 1 MiB for f32) + the caller's base block.
//! Time: `2 q n d` flops of GEMM plus `q n` heap tests.

use crate::dtype::Real;
use crate::error::{Error, Result};
use crate::linalg::{gemm_nt, Distance};
use faer::Par;
use rayon::prelude::*;

/// Query rows per GEMM tile.
pub const QUERY_TILE: usize = 256;
/// Base rows per GEMM tile.
pub const BASE_TILE: usize = 1024;

/// Top-k result: for each query, `k` base ids and distances, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct TopK<T> {
    pub n_queries: usize,
    pub k: usize,
    /// `n_queries x k` base row ids (0-based over the whole base).
    pub ids: Vec<i64>,
    /// `n_queries x k` distances (see the module docs for their meaning per metric).
    pub distances: Vec<T>,
}

/// Mergeable state of an exact k-NN search: the queries and one bounded heap per query.
#[derive(Debug, Clone)]
pub struct KnnState<T> {
    d: usize,
    k: usize,
    metric: Distance,
    queries: Vec<T>,
    q_norms: Vec<T>,
    /// Base id that each query must skip (`exclude_self`), or -1.
    self_ids: Vec<i64>,
    /// Per query, a max-heap by `(key, id)` of at most `k` entries.
    keys: Vec<T>,
    ids: Vec<i64>,
    lens: Vec<usize>,
    n_base: u64,
}

/// `(key, id)` lexicographic "less than".
#[inline(always)]
fn better<T: Real>(ka: T, ia: i64, kb: T, ib: i64) -> bool {
    ka < kb || (ka == kb && ia < ib)
}

/// Inserts into a max-heap of capacity `cap` stored in `keys[..len]`, `ids[..len]`.
#[inline]
fn heap_offer<T: Real>(keys: &mut [T], ids: &mut [i64], len: &mut usize, key: T, id: i64) {
    let cap = keys.len();
    if *len < cap {
        // sift up
        let mut i = *len;
        *len += 1;
        while i > 0 {
            let p = (i - 1) / 2;
            if better(keys[p], ids[p], key, id) {
                keys[i] = keys[p];
                ids[i] = ids[p];
                i = p;
            } else {
                break;
            }
        }
        keys[i] = key;
        ids[i] = id;
        return;
    }
    if !better(key, id, keys[0], ids[0]) {
        return;
    }
    // replace the root (the worst) and sift down
    let n = *len;
    let mut i = 0;
    loop {
        let l = 2 * i + 1;
        if l >= n {
            break;
        }
        let r = l + 1;
        let c = if r < n && better(keys[l], ids[l], keys[r], ids[r]) {
            r
        } else {
            l
        };
        if better(key, id, keys[c], ids[c]) {
            keys[i] = keys[c];
            ids[i] = ids[c];
            i = c;
        } else {
            break;
        }
    }
    keys[i] = key;
    ids[i] = id;
}

impl<T: Real> KnnState<T> {
    /// Starts a search for `queries` (`n_queries x d`, row-major). With `exclude_self`,
    /// query `i` never returns base id `first_query_id + i` (for a base that contains the
    /// queries, as when computing ground truth of a set against itself).
    ///
    /// # Errors
    /// [`Error::Parameter`] if `d` or `k` is 0, the queries are not a multiple of `d`, or
    /// (cosine) a query row is all zeros.
    pub fn new(
        queries: &[T],
        d: usize,
        k: usize,
        metric: Distance,
        exclude_self: Option<i64>,
    ) -> Result<Self> {
        // FAISS's L2 index ranks by, and returns, the squared distance
        let metric = match metric {
            Distance::Euclidean => Distance::SqEuclidean,
            m => m,
        };
        if d == 0 || !queries.len().is_multiple_of(d) {
            return Err(Error::param_msg(
                "X",
                format!(
                    "queries of {} values are not a multiple of n_features = {d}",
                    queries.len()
                ),
            ));
        }
        if k == 0 {
            return Err(Error::param("n_neighbors", k, "must be at least 1"));
        }
        let q = queries.len() / d;
        let mut qs = queries.to_vec();
        if metric == Distance::Cosine {
            if let Err(i) = crate::preprocessing::l2_normalize_rows(&mut qs, d) {
                return Err(Error::param_msg(
                    "X",
                    format!("query row {i} is all zeros: its cosine distance is undefined"),
                ));
            }
        }
        let mut q_norms = Vec::new();
        crate::linalg::row_sq_norms(&qs, d, &mut q_norms);
        let self_ids = match exclude_self {
            Some(first) => (0..q as i64).map(|i| first + i).collect(),
            None => vec![-1; q],
        };
        Ok(KnnState {
            d,
            k,
            metric,
            queries: qs,
            q_norms,
            self_ids,
            keys: vec![T::ZERO; q * k],
            ids: vec![-1; q * k],
            lens: vec![0; q],
            n_base: 0,
        })
    }

    /// Number of queries.
    pub fn n_queries(&self) -> usize {
        self.lens.len()
    }

    /// Base rows offered so far.
    pub fn n_base(&self) -> u64 {
        self.n_base
    }

    /// Offers base rows `base` (`rows x d`) whose first row has id `first_id`.
    /// Parallel over query tiles (rayon); each task walks the base in `BASE_TILE` rows.
    ///
    /// # Errors
    /// [`Error::Parameter`] if `base` is not a multiple of `d`; [`Error::InvalidRow`]-like
    /// parameter error if (cosine) a base row is all zeros.
    pub fn push_base(&mut self, base: &[T], first_id: i64) -> Result<()> {
        let d = self.d;
        if !base.len().is_multiple_of(d) {
            return Err(Error::param_msg(
                "X",
                format!(
                    "base block of {} values is not a multiple of n_features = {d}",
                    base.len()
                ),
            ));
        }
        let rows = base.len() / d;
        if rows == 0 {
            return Ok(());
        }
        let metric = self.metric;
        let k = self.k;
        // Base norms: |b|^2 for L2; cosine needs unit base rows, scaled per tile.
        let mut b_norms = Vec::with_capacity(rows);
        crate::linalg::row_sq_norms(base, d, &mut b_norms);
        if metric == Distance::Cosine {
            if let Some(i) = b_norms.iter().position(|&v| v <= T::ZERO) {
                return Err(Error::param_msg(
                    "X",
                    format!(
                        "base row {} is all zeros: its cosine distance is undefined",
                        first_id + i as i64
                    ),
                ));
            }
            for v in b_norms.iter_mut() {
                *v = T::ONE / v.sqrt();
            }
        }
        let q = self.n_queries();
        let tasks = rayon::current_num_threads().max(1);
        // Query rows per task: whole tiles, at least 16 rows, at most QUERY_TILE.
        let qt = q.div_ceil(tasks).clamp(16, QUERY_TILE);
        let queries = &self.queries;
        let q_norms = &self.q_norms;
        let self_ids = &self.self_ids;
        self.keys
            .par_chunks_mut(qt * k)
            .zip(self.ids.par_chunks_mut(qt * k))
            .zip(self.lens.par_chunks_mut(qt))
            .enumerate()
            .for_each(|(ti, ((keys, ids), lens))| {
                let q0 = ti * qt;
                let m = lens.len();
                let qx = &queries[q0 * d..(q0 + m) * d];
                let mut tile = vec![T::ZERO; m * BASE_TILE];
                let two = T::from_f64(2.0);
                let mut b0 = 0;
                while b0 < rows {
                    let nb = BASE_TILE.min(rows - b0);
                    let t = &mut tile[..m * nb];
                    gemm_nt(
                        t,
                        qx,
                        &base[b0 * d..(b0 + nb) * d],
                        m,
                        nb,
                        d,
                        T::ONE,
                        false,
                        Par::Seq,
                    );
                    for r in 0..m {
                        let skip = self_ids[q0 + r];
                        let hk = &mut keys[r * k..(r + 1) * k];
                        let hi = &mut ids[r * k..(r + 1) * k];
                        let len = &mut lens[r];
                        let dots = &t[r * nb..(r + 1) * nb];
                        let qn = q_norms[q0 + r];
                        for (j, &dot) in dots.iter().enumerate() {
                            let bj = b0 + j;
                            let key = match metric {
                                Distance::SqEuclidean | Distance::Euclidean => {
                                    let v = qn + b_norms[bj] - two * dot;
                                    if v > T::ZERO {
                                        v
                                    } else {
                                        T::ZERO
                                    }
                                }
                                Distance::InnerProduct => -dot,
                                Distance::Cosine => -(dot * b_norms[bj]),
                            };
                            // Fast reject against the current worst of a full heap.
                            if *len == k && key > hk[0] {
                                continue;
                            }
                            let id = first_id + bj as i64;
                            if id == skip {
                                continue;
                            }
                            heap_offer(hk, hi, len, key, id);
                        }
                    }
                    b0 += nb;
                }
            });
        self.n_base += rows as u64;
        Ok(())
    }

    /// Folds the heaps of `other` (same queries, a disjoint part of the base) into `self`.
    ///
    /// # Errors
    /// [`Error::Parameter`] if the two states were made for different queries or k.
    pub fn merge(&mut self, other: &KnnState<T>) -> Result<()> {
        if other.d != self.d
            || other.k != self.k
            || other.metric != self.metric
            || other.lens.len() != self.lens.len()
        {
            return Err(Error::param_msg(
                "state",
                "cannot merge k-NN states of different queries, k or metric",
            ));
        }
        let k = self.k;
        for r in 0..self.lens.len() {
            let hk = &mut self.keys[r * k..(r + 1) * k];
            let hi = &mut self.ids[r * k..(r + 1) * k];
            for j in 0..other.lens[r] {
                heap_offer(
                    hk,
                    hi,
                    &mut self.lens[r],
                    other.keys[r * k + j],
                    other.ids[r * k + j],
                );
            }
        }
        self.n_base += other.n_base;
        Ok(())
    }

    /// Sorts each heap best first and converts keys to distances.
    ///
    /// # Errors
    /// [`Error::Parameter`] if the base had fewer than `k` eligible rows.
    pub fn finish(self) -> Result<TopK<T>> {
        let k = self.k;
        let q = self.lens.len();
        if let Some(short) = self.lens.iter().position(|&l| l < k) {
            let excl = if self.self_ids[short] >= 0 {
                " (excluding the query itself)"
            } else {
                ""
            };
            return Err(Error::param(
                "n_neighbors",
                k,
                format!("is larger than the base's {} rows{excl}", self.lens[short]),
            ));
        }
        let mut ids = self.ids;
        let mut keys = self.keys;
        let mut order: Vec<usize> = Vec::with_capacity(k);
        let mut tmp_k = vec![T::ZERO; k];
        let mut tmp_i = vec![0i64; k];
        for r in 0..q {
            let hk = &mut keys[r * k..(r + 1) * k];
            let hi = &mut ids[r * k..(r + 1) * k];
            order.clear();
            order.extend(0..k);
            order.sort_unstable_by(|&a, &b| {
                hk[a]
                    .partial_cmp(&hk[b])
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(hi[a].cmp(&hi[b]))
            });
            for (o, &src) in order.iter().enumerate() {
                tmp_k[o] = hk[src];
                tmp_i[o] = hi[src];
            }
            hk.copy_from_slice(&tmp_k);
            hi.copy_from_slice(&tmp_i);
        }
        let distances = keys
            .into_iter()
            .map(|key| match self.metric {
                Distance::SqEuclidean | Distance::Euclidean => key,
                Distance::InnerProduct => -key,
                Distance::Cosine => {
                    let v = T::ONE + key;
                    if v > T::ZERO {
                        v
                    } else {
                        T::ZERO
                    }
                }
            })
            .collect();
        Ok(TopK {
            n_queries: q,
            k,
            ids,
            distances,
        })
    }
}

/// Exact top-k of `queries` against an in-memory `base` (both row-major, `d` columns).
/// See [`KnnState`] for the order, ties and memory; the base is not copied.
///
/// # Example
/// ```
/// use embedcluster::linalg::Distance;
/// use embedcluster::neighbors::knn;
/// let base = [0.0f32, 0.0, 1.0, 0.0, 5.0, 5.0]; // 3 rows of 2
/// let top = knn(&base, &[0.9, 0.1], 2, 2, Distance::SqEuclidean, false).unwrap();
/// assert_eq!(top.ids, vec![1, 0]); // nearest first
/// assert!((top.distances[0] - 0.02).abs() < 1e-6);
/// ```
///
/// # Errors
/// As [`KnnState::new`], [`KnnState::push_base`] and [`KnnState::finish`] (k larger than
/// the base, mismatched shapes, zero rows under cosine).
pub fn knn<T: Real>(
    base: &[T],
    queries: &[T],
    d: usize,
    k: usize,
    metric: Distance,
    exclude_self: bool,
) -> Result<TopK<T>> {
    let mut st = KnnState::new(queries, d, k, metric, exclude_self.then_some(0))?;
    st.push_base(base, 0)?;
    st.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        base: &[f64],
        q: &[f64],
        d: usize,
        k: usize,
        metric: Distance,
        excl: bool,
    ) -> (Vec<i64>, Vec<f64>) {
        let n = base.len() / d;
        let mut ids = vec![];
        let mut dists = vec![];
        for (qi, qr) in q.chunks(d).enumerate() {
            let mut c: Vec<(f64, i64)> = base
                .chunks(d)
                .enumerate()
                .filter(|(j, _)| !(excl && *j == qi))
                .map(|(j, b)| {
                    let dot: f64 = qr.iter().zip(b).map(|(x, y)| x * y).sum();
                    let nq: f64 = qr.iter().map(|x| x * x).sum();
                    let nb: f64 = b.iter().map(|x| x * x).sum();
                    let key = match metric {
                        Distance::SqEuclidean | Distance::Euclidean => {
                            qr.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
                        }
                        Distance::InnerProduct => -dot,
                        Distance::Cosine => 1.0 - dot / (nq.sqrt() * nb.sqrt()),
                    };
                    (key, j as i64)
                })
                .collect();
            c.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let _ = n;
            for &(key, j) in &c[..k] {
                ids.push(j);
                dists.push(if metric == Distance::InnerProduct {
                    -key
                } else {
                    key
                });
            }
        }
        (ids, dists)
    }

    #[test]
    fn heap_keeps_k_best_with_id_ties() {
        let mut keys = vec![0.0f64; 3];
        let mut ids = vec![0i64; 3];
        let mut len = 0;
        for (k, i) in [(5.0, 0), (1.0, 1), (1.0, 2), (3.0, 3), (1.0, 4), (0.5, 5)] {
            heap_offer(&mut keys, &mut ids, &mut len, k, i);
        }
        let mut got: Vec<(f64, i64)> = keys.iter().copied().zip(ids.iter().copied()).collect();
        got.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(got, vec![(0.5, 5), (1.0, 1), (1.0, 2)]);
    }

    #[test]
    fn matches_naive_for_each_metric_and_any_split() {
        let (n, q, d, k) = (700, 37, 9, 10);
        // small integers: every product and sum is exact, so ties are real and must be
        // broken by id exactly as the naive sort does
        let base: Vec<f64> = (0..n * d)
            .map(|i| ((i * 7919 + 13) % 5) as f64 - 2.0)
            .collect();
        let queries: Vec<f64> = base[..q * d].to_vec();
        for metric in [Distance::SqEuclidean, Distance::InnerProduct] {
            for excl in [false, true] {
                let (want_i, want_d) = naive(&base, &queries, d, k, metric, excl);
                let got = knn(&base, &queries, d, k, metric, excl).unwrap();
                assert_eq!(got.ids, want_i, "{metric:?} excl={excl}");
                assert_eq!(got.distances, want_d);
                // streamed in uneven blocks, and merged from two halves
                let mut st = KnnState::new(&queries, d, k, metric, excl.then_some(0)).unwrap();
                let mut other = st.clone();
                let mut at = 0;
                for (bi, rows) in [1usize, 250, 99, 350].iter().enumerate() {
                    let target = if bi % 2 == 0 { &mut st } else { &mut other };
                    target
                        .push_base(&base[at * d..(at + rows) * d], at as i64)
                        .unwrap();
                    at += rows;
                }
                st.merge(&other).unwrap();
                assert_eq!(st.finish().unwrap(), got);
            }
        }
        // cosine on non-degenerate rows, against the naive loop in f64
        let base: Vec<f64> = (0..n * d)
            .map(|i| ((i as f64) * 0.731).sin() + 0.1)
            .collect();
        let queries = base[5 * d..(5 + q) * d].to_vec();
        let (want_i, want_d) = naive(&base, &queries, d, k, Distance::Cosine, false);
        let got = knn(&base, &queries, d, k, Distance::Cosine, false).unwrap();
        assert_eq!(got.ids, want_i);
        for (a, b) in got.distances.iter().zip(&want_d) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn errors() {
        let base = vec![1.0f32; 12];
        assert!(knn(&base, &base[..3], 3, 5, Distance::SqEuclidean, false)
            .unwrap_err()
            .to_string()
            .contains("n_neighbors = 5 is larger than the base's 4 rows"));
        assert!(knn(&base, &base[..3], 3, 4, Distance::SqEuclidean, true)
            .unwrap_err()
            .to_string()
            .contains("excluding the query itself"));
        let zero = vec![0.0f32; 3];
        assert!(knn(&base, &zero, 3, 1, Distance::Cosine, false).is_err());
        assert!(knn(&zero, &base[..3], 3, 1, Distance::Cosine, false).is_err());
    }
}
