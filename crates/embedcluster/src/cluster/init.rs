//! Initial centroids: greedy k-means++ (Arthur and Vassilvitskii 2007) and the seeds of
//! restarts.

use super::assign::{as_f32, as_f32_mut, Data};
use super::Metric;
use crate::dtype::Real;
use crate::error::Result;
use crate::linalg::gemm_nt;
use crate::runtime::Cancel;
use faer::Par;
use rand::Rng;
use rayon::prelude::*;

/// Greedy k-means++ (Arthur and Vassilvitskii 2007; scikit-learn's variant with
/// `2 + floor(ln k)` local trials per step, keeping the candidate that lowers the potential
/// most). Distances are squared Euclidean (on unit vectors for the cosine metric). Where
/// the data has weights (`sample_weight`, or k-means||'s candidates) rows are drawn with
/// probability proportional to `w_i d_i^2` and the potential is `sum_i w_i d_i^2`.
pub(crate) fn kmeans_plusplus<T: Real>(
    data: &Data<'_, T>,
    k: usize,
    rng: &mut rand::rngs::StdRng,
    cancel: Cancel<'_>,
) -> Result<Vec<T>> {
    let (n, d, weights) = (data.n, data.d, data.weights);
    let trials = 2 + (k as f64).ln().floor() as usize;
    let mut centers: Vec<T> = Vec::with_capacity(k * d);
    let wt = |i: usize| weights.map_or(1.0, |w| w[i]);
    let first = match weights {
        None => rng.random_range(0..n),
        Some(w) => {
            let total: f64 = w.iter().sum();
            let r = rng.random::<f64>() * total;
            let mut acc = 0.0;
            w.iter()
                .position(|&v| {
                    acc += v;
                    acc > r
                })
                .unwrap_or(n - 1)
        }
    };
    centers.extend_from_slice(&data.x[first * d..(first + 1) * d]);
    let mut closest = vec![T::ZERO; n];
    candidate_distances(data, &centers, 1, &mut closest);
    let mut cand_d = vec![T::ZERO; n * trials];
    let mut cumsum = vec![0.0f64; n];
    for _ in 1..k {
        cancel.check()?;
        let mut acc = 0.0;
        for (i, (c, &v)) in cumsum.iter_mut().zip(&closest).enumerate() {
            acc += v.to_f64() * wt(i);
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
            .enumerate()
            .map(|(ci, (cl, cd))| {
                let mut p = vec![0.0f64; trials];
                for (i, &c) in cl.iter().enumerate() {
                    let w = wt(ci * cr + i);
                    for t in 0..trials {
                        let v = cd[i * trials + t];
                        p[t] += if v < c { v } else { c }.to_f64() * w;
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
pub(crate) fn candidate_distances<T: Real>(
    data: &Data<'_, T>,
    cand: &[T],
    m: usize,
    out: &mut [T],
) {
    let d = data.d;
    let mut c_norms = Vec::new();
    crate::linalg::row_sq_norms(cand, d, &mut c_norms);
    let cr = data.chunk_rows;
    // float32 with at most 16 candidates: the register-blocked dot kernel
    let packed =
        as_f32(cand).and_then(|c| crate::linalg::kernels::Packed::new(c, m, d, Metric::Cosine));
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

/// `k` distinct rows drawn uniformly (scikit-learn's `init="random"`), or with probability
/// proportional to the rows' weights, without replacement, where the data has weights
/// (rows of weight 0 only once the others are drawn).
pub(crate) fn random_rows<T: Real>(
    data: &Data<'_, T>,
    k: usize,
    rng: &mut rand::rngs::StdRng,
) -> Vec<T> {
    let d = data.d;
    let k = k.min(data.n);
    let idx: Vec<usize> = match data.weights {
        None => rand::seq::index::sample(rng, data.n, k).into_vec(),
        Some(w) => {
            let positive = w.iter().filter(|&&v| v > 0.0).count();
            let mut idx = rand::seq::index::sample_weighted(rng, data.n, |i| w[i], k.min(positive))
                .map(|s| s.into_vec())
                .unwrap_or_default();
            // fewer positive weights than clusters: the zero-weight rows in order
            idx.extend((0..data.n).filter(|&i| w[i] <= 0.0).take(k - idx.len()));
            idx
        }
    };
    idx.into_iter()
        .flat_map(|i| data.x[i * d..(i + 1) * d].iter().copied())
        .collect()
}

/// A uniform sample of `s` rows (ascending row order), copied, with their weights where
/// the data has them: the screening's data.
pub(crate) fn sample_rows<T: Real>(
    data: &Data<'_, T>,
    s: usize,
    rng: &mut rand::rngs::StdRng,
) -> (Vec<T>, Option<Vec<f64>>) {
    let d = data.d;
    let mut idx = rand::seq::index::sample(rng, data.n, s.min(data.n)).into_vec();
    idx.sort_unstable();
    let mut out = Vec::with_capacity(idx.len() * d);
    let weights = data.weights.map(|w| idx.iter().map(|&i| w[i]).collect());
    // rows in file order, so that a spilled matrix's pages are let go behind the reads
    let mut release = crate::memory::PageReleaser::new(data.x);
    for i in idx {
        out.extend_from_slice(&data.x[i * d..(i + 1) * d]);
        release.consumed::<T>(i * d);
    }
    release.consumed::<T>(data.x.len());
    (out, weights)
}

/// Seed of restart `r` (SplitMix64 of the user seed and the restart index).
pub fn restart_seed(seed: u64, r: usize) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(r as u64 + 1));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
