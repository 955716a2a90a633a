//! The assignment step: rows to their nearest centroid over fixed row chunks (the fused
//! float32 kernel of [`crate::linalg::kernels`], or tiled GEMM + argmin), with the Lloyd
//! update fused into the same pass.

use super::prune::{Prefix, PruneCounts, PruneScratch, PrunedCenters, Pruning};
use super::Metric;
use crate::dtype::Real;
use crate::linalg::gemm_nt;
use faer::Par;
use rayon::prelude::*;

/// Rows assigned at a time before their sums are accumulated (they stay in L1/L2).
const UPDATE_ROWS: usize = 240;

/// Rows per GEMM tile in the assignment kernel.
pub const TILE_ROWS: usize = 256;
/// Upper bound on the number of row chunks reduced in a fixed order.
pub const MAX_CHUNKS: usize = 16;
/// Smallest chunk (rows) worth a task of its own.
const MIN_CHUNK_ROWS: usize = 1024;

/// Shape-checked view of a data matrix with its squared row norms.
pub(crate) struct Data<'a, T> {
    pub(crate) x: &'a [T],
    pub(crate) n: usize,
    pub(crate) d: usize,
    pub(crate) norms: Vec<T>,
    pub(crate) chunk_rows: usize,
    /// Per-row weights (`sample_weight`, `n` values), or `None` for unit weights.
    pub(crate) weights: Option<&'a [f64]>,
    /// Projected rows for the pruned assignment ([`super::prune`]), or `None`.
    pub(crate) prefix: Option<Prefix>,
}

impl<'a, T: Real> Data<'a, T> {
    pub(crate) fn new(x: &'a [T], d: usize) -> Self {
        let n = x.len() / d;
        let mut norms = Vec::new();
        crate::linalg::row_sq_norms(x, d, &mut norms);
        Data {
            x,
            n,
            d,
            norms,
            chunk_rows: chunk_rows(n),
            weights: None,
            prefix: None,
        }
    }

    /// Prepares the pruned assignment as `pruning` says for `k` clusters (float32 data on
    /// a CPU with the fused kernel only; a no-op otherwise). Returns the bytes it holds.
    pub(crate) fn with_pruning(&mut self, pruning: Pruning, k: usize) -> usize {
        self.prefix = None;
        if !crate::runtime::kernels().fused {
            return 0;
        }
        let (Some(x), Some(p)) = (as_f32(self.x), pruning.prefix_dims(self.n, self.d, k)) else {
            return 0;
        };
        self.prefix = Prefix::new(x, self.d, p);
        self.prefix.as_ref().map_or(0, |pf| pf.bytes())
    }

    /// [`Data::new`] with per-row weights (`weights.len()` must be the row count).
    pub(crate) fn weighted(x: &'a [T], d: usize, weights: Option<&'a [f64]>) -> Self {
        let mut data = Data::new(x, d);
        data.weights = weights;
        data
    }

    /// Weight of row `i` (1 without weights).
    pub(crate) fn weight(&self, i: usize) -> f64 {
        self.weights.map_or(1.0, |w| w[i])
    }
}

/// Rows per chunk: a function of `n` only (never of the thread count). Several chunks are
/// rounded up to a multiple of 4, so that 2 or 4 threads get equal shares (3 chunks on 2
/// threads ran at 2/3 of the speed at n = 10,000).
pub(crate) fn chunk_rows(n: usize) -> usize {
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
pub(crate) fn assign_rows<T: Real>(
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
                _ => c_norms[j] - two * dots[j],
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
                _ => {
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
    Fused(crate::linalg::kernels::Packed),
    Gemm { centers: &'a [T], c_norms: Vec<T> },
}

/// `s` as `&[f32]` when `T` is `f32`.
pub(crate) fn as_f32<T: Real>(s: &[T]) -> Option<&[f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        // SAFETY: T is f32, so the slice has the same layout.
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len()) })
}

pub(crate) fn as_f32_mut<T: Real>(s: &mut [T]) -> Option<&mut [f32]> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
        // SAFETY: T is f32, so the slice has the same layout.
        Some(unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut f32, s.len()) })
    } else {
        None
    }
}

impl<'a, T: Real> Prepared<'a, T> {
    pub(crate) fn new(centers: &'a [T], k: usize, d: usize, metric: Metric) -> Self {
        if crate::runtime::kernels().fused {
            if let Some(c) = as_f32(centers) {
                if let Some(p) = crate::linalg::kernels::Packed::new(c, k, d, metric) {
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
    mass: Option<Vec<f64>>,
    objective: f64,
    changed: u64,
    fingerprint: u64,
    pruned: PruneCounts,
}

/// Order-free hash of one row's assignment: the wrapping sum of it over rows is the
/// fingerprint of a labelling, mergeable across blocks and partitions, so a distributed
/// Lloyd loop can tell that no label changed without keeping the labels
/// ([`super::LloydState::fingerprint`]).
pub fn label_hash(row_id: u64, label: i32) -> u64 {
    let mut z = row_id
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(label as u32 as u64)
        .wrapping_add(0x632B_E59B_D9B4_E019);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What one assignment step over all rows found (see [`lloyd_step`]).
pub(crate) struct StepStats {
    /// `k x d` member sums (weighted by the rows' weights where the data has them).
    pub(crate) sums: Vec<f64>,
    /// Members per cluster.
    pub(crate) counts: Vec<u64>,
    /// Weight per cluster, where the data has weights.
    pub(crate) mass: Option<Vec<f64>>,
    /// Sum of (weighted) distances to the nearest centroid.
    pub(crate) objective: f64,
    /// Labels that changed.
    pub(crate) changed: u64,
    /// The labelling's fingerprint (0 without `first_id`).
    pub(crate) fingerprint: u64,
    /// What the pruned assignment did (zeros without it).
    pub(crate) pruned: PruneCounts,
}

/// One assignment step over all rows with the chunk-parallel kernel; labels and dists are
/// updated in place. Returns the centroid sums and counts (f64, reduced in chunk order),
/// with weights each row's values and distance multiplied by its weight and the weight per
/// cluster, the objective, the number of labels that changed and, with `first_id` (the id
/// of row 0), the labelling's fingerprint ([`label_hash`]; 0 without).
pub(crate) fn lloyd_step<T: Real>(
    data: &Data<'_, T>,
    centers: &[T],
    k: usize,
    metric: Metric,
    labels: &mut [i32],
    dists: &mut [T],
    first_id: Option<u64>,
) -> StepStats {
    let d = data.d;
    let prepared = Prepared::new(centers, k, d, metric);
    let pruned = match (&data.prefix, &prepared, as_f32(centers)) {
        (Some(pf), Prepared::Fused(packed), Some(c)) => {
            Some((pf, PrunedCenters::new(pf, c, k, metric, packed)))
        }
        _ => None,
    };
    let cr = data.chunk_rows;
    // Chunks run in waves of one chunk per thread, and each wave's results are added in
    // chunk order before the next wave starts: the same sums as reducing all chunks in
    // order, with `threads` (not `MAX_CHUNKS`) accumulators of `k d 8` bytes alive.
    let mut parts: Vec<(usize, &mut [i32], &mut [T])> = labels
        .chunks_mut(cr)
        .zip(dists.chunks_mut(cr))
        .enumerate()
        .map(|(ci, (l, d))| (ci, l, d))
        .collect();
    let wave = rayon::current_num_threads().max(1);
    let mut out: Option<StepStats> = None;
    for group in parts.chunks_mut(wave) {
        let stats: Vec<ChunkStats> = group
            .par_iter_mut()
            .map(|(ci, lab, dis)| {
                let (ci, lab, dis) = (*ci, &mut **lab, &mut **dis);
                let start = ci * cr;
                let rows = lab.len();
                let x = &data.x[start * d..(start + rows) * d];
                // a spilled matrix's pages are let go as the chunk is read (no-op in memory)
                let mut release = crate::memory::PageReleaser::new(x);
                let mut tile = Vec::new();
                let mut sums = vec![0.0f64; k * d];
                let mut counts = vec![0u64; k];
                let mut mass = data.weights.map(|_| vec![0.0f64; k]);
                let mut objective = 0.0;
                let mut changed = 0;
                let mut fingerprint = 0u64;
                let mut pcounts = PruneCounts::default();
                let mut pscratch = PruneScratch::default();
                let mut old = [0i32; UPDATE_ROWS];
                // Assign a few rows, then add them to the sums while they are still in cache
                // (one pass over the data per iteration, not two); sums stay in row order.
                let mut b = 0;
                while b < rows {
                    let m = UPDATE_ROWS.min(rows - b);
                    old[..m].copy_from_slice(&lab[b..b + m]);
                    match &pruned {
                        Some((pf, pc)) => pf.assign(
                            pc,
                            start + b,
                            as_f32(&x[b * d..(b + m) * d]).expect("f32"),
                            as_f32(&data.norms[start + b..start + b + m]).expect("f32"),
                            &mut lab[b..b + m],
                            as_f32_mut(&mut dis[b..b + m]).expect("f32"),
                            &mut pscratch,
                            &mut pcounts,
                        ),
                        None => prepared.assign(
                            &x[b * d..(b + m) * d],
                            &data.norms[start + b..start + b + m],
                            k,
                            d,
                            metric,
                            &mut lab[b..b + m],
                            &mut dis[b..b + m],
                            None,
                            &mut tile,
                        ),
                    }
                    for r in b..b + m {
                        let j = lab[r] as usize;
                        counts[j] += 1;
                        changed += (lab[r] != old[r - b]) as u64;
                        if let Some(id0) = first_id {
                            fingerprint = fingerprint
                                .wrapping_add(label_hash(id0 + (start + r) as u64, lab[r]));
                        }
                        let s = &mut sums[j * d..(j + 1) * d];
                        let row = &x[r * d..(r + 1) * d];
                        match data.weights {
                            None => {
                                objective += dis[r].to_f64();
                                for (acc, &v) in s.iter_mut().zip(row) {
                                    *acc += v.to_f64();
                                }
                            }
                            Some(w) => {
                                let w = w[start + r];
                                objective += dis[r].to_f64() * w;
                                if let Some(ms) = mass.as_mut() {
                                    ms[j] += w;
                                }
                                for (acc, &v) in s.iter_mut().zip(row) {
                                    *acc += v.to_f64() * w;
                                }
                            }
                        }
                    }
                    b += m;
                    release.consumed::<T>(b * d);
                }
                ChunkStats {
                    sums,
                    counts,
                    mass,
                    objective,
                    changed,
                    fingerprint,
                    pruned: pcounts,
                }
            })
            .collect();
        for f in stats {
            match out.as_mut() {
                None => {
                    out = Some(StepStats {
                        sums: f.sums,
                        counts: f.counts,
                        mass: f.mass,
                        objective: f.objective,
                        changed: f.changed,
                        fingerprint: f.fingerprint,
                        pruned: f.pruned,
                    })
                }
                Some(o) => {
                    o.sums.iter_mut().zip(&f.sums).for_each(|(a, b)| *a += b);
                    o.counts
                        .iter_mut()
                        .zip(&f.counts)
                        .for_each(|(a, b)| *a += b);
                    if let (Some(a), Some(b)) = (o.mass.as_mut(), f.mass.as_ref()) {
                        a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                    }
                    o.objective += f.objective;
                    o.changed += f.changed;
                    o.fingerprint = o.fingerprint.wrapping_add(f.fingerprint);
                    o.pruned.add(&f.pruned);
                }
            }
        }
    }
    out.unwrap_or_else(|| StepStats {
        sums: vec![0.0; k * d],
        counts: vec![0; k],
        mass: data.weights.map(|_| vec![0.0; k]),
        objective: 0.0,
        changed: 0,
        fingerprint: 0,
        pruned: PruneCounts::default(),
    })
}
