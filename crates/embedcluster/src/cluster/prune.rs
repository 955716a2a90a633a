//! Exact pruned assignment for large `k`: partial distances on a prefix subspace, then
//! exact keys only for the centroids that can still win.
//!
//! # Idea (dimension pruning; as SuperKMeans, Kuffo et al., and ADSampling/PDX)
//! For an orthonormal `d x p` basis `V` of the data's top principal subspace (found once per
//! fit: a randomized range finder on a sample, Halko, Martinsson and Tropp 2011) every
//! squared distance has the lower bound
//! `|x - c|^2 >= |V^T x - V^T c|^2 + (|x_T| - |c_T|)^2`, where `x_T` is the part of `x`
//! outside the subspace (`|x_T|^2 = |x|^2 - |V^T x|^2`). The projected rows `V^T x`
//! (`n x p`) are computed once; each iteration projects the `k` centroids (`k d p` flops)
//! and, for every row, computes the bound to all `k` centroids with one GEMM of depth `p`
//! (`2 n k p` flops instead of `2 n k d`). A threshold is the exact distance to one or two
//! likely winners (the previous label and the centroid of smallest bound); only centroids
//! whose bound is below it get an exact key, and the row's label is the best of those.
//!
//! # Same result as the full kernel, bit for bit
//! Exact keys are computed with the fused kernel's own arithmetic ([`super::assign`]'s
//! `Prepared::Fused`: an FMA chain over the features in order from 0, then
//! `key = fma(-2, acc, |c|^2)`, ties to the smaller index), and the bound's test carries a
//! slack that covers every rounding error of the float32 bound and key (a multiple of
//! `(d + p) * eps * (|x|^2 + max |c|^2)`, see [`Prefix::assign`]). So a pruned centroid can
//! never be the kernel's argmin: labels, distances, sums, centroids and objectives equal
//! those of the unpruned Lloyd step exactly (`tests/kmeans.rs` compares them for
//! equality). A row with more than [`MAX_CANDIDATES_FRACTION`] of `k` candidates goes to the
//! full kernel, so the worst case costs the full GEMM plus the bound.
//!
//! # When it helps
//! When the data's variance is concentrated in a few directions (embeddings: after a PCA
//! rotation, the first `d / 8` directions of real and generated embeddings carry most of
//! the variance) and `k` is large. With few clusters the bound GEMM and the per-row scans
//! cost about what they save; [`Pruning::Auto`] prunes from [`AUTO_MIN_CLUSTERS`] clusters.
//!
//! # Peak memory
//! `n p 4 + 8 n` bytes for the projected rows and their norms (`p = d / 8` by default, so
//! an eighth of the float32 data), `k p 4 + 12 k` per iteration for the projected
//! centroids, and per thread a bound tile of at most [`TILE_VALUES`] floats (4 MiB).

use super::Metric;
use crate::linalg::kernels::Packed;
use crate::linalg::{gemm_nn_rows, gemm_nt, gemm_tn_rows, orthonormalize};
use faer::Par;
use rand::{Rng, SeedableRng};

/// Whether and how Lloyd's assignment prunes (see the module docs). Results are the same
/// in every case; only the time differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pruning {
    /// Prune float32 data with at least [`AUTO_MIN_CLUSTERS`] clusters and 32 features,
    /// on a prefix of `d / 8` dimensions (16 to 128).
    #[default]
    Auto,
    /// Never: every row against every centroid (the fused GEMM + argmin).
    Off,
    /// Always (float32 on a CPU with AVX2/AVX-512), on a prefix of this many dimensions.
    Prefix(usize),
}

impl Pruning {
    /// `auto`, `off` or a number of prefix dimensions.
    ///
    /// # Errors
    /// [`crate::Error::Parameter`] for anything else, or 0 dimensions.
    pub fn from_name(s: &str) -> crate::error::Result<Self> {
        match s {
            "auto" => Ok(Pruning::Auto),
            "off" | "none" => Ok(Pruning::Off),
            _ => match s.parse::<usize>() {
                Ok(p) if p > 0 => Ok(Pruning::Prefix(p)),
                _ => Err(crate::error::Error::param(
                    "pruning",
                    s,
                    "must be 'auto', 'off' or a positive number of dimensions",
                )),
            },
        }
    }

    /// The name [`Pruning::from_name`] reads.
    pub fn name(&self) -> String {
        match self {
            Pruning::Auto => "auto".into(),
            Pruning::Off => "off".into(),
            Pruning::Prefix(p) => p.to_string(),
        }
    }

    /// Prefix dimensions for `n` rows of `d` features and `k` clusters, or `None` for the
    /// full kernel.
    pub fn prefix_dims(&self, n: usize, d: usize, k: usize) -> Option<usize> {
        match *self {
            Pruning::Off => None,
            Pruning::Prefix(p) => (p < d && k > 1).then_some(p),
            Pruning::Auto => {
                (k >= AUTO_MIN_CLUSTERS && d >= 32 && n >= 4 * k).then(|| (d / 8).clamp(16, 128))
            }
        }
    }
}

/// Fewest clusters [`Pruning::Auto`] prunes for.
pub const AUTO_MIN_CLUSTERS: usize = 256;
/// Power iterations of the range finder that finds the prefix subspace.
const POWER_ITERATIONS: usize = 2;
/// Rows sampled to find the prefix subspace.
pub const BASIS_SAMPLE_ROWS: usize = 4096;
/// A row with more candidates than this fraction of `k` (and more than 64) is assigned by
/// the full kernel.
pub const MAX_CANDIDATES_FRACTION: f64 = 0.125;
/// Most floats of one bound tile (rows x k; 4 MiB). The bound GEMM packs the projected
/// centroids once per tile, so a tile must hold many rows: at `k = 4,096` a 16-row tile
/// (`1 << 16` values) spent as long packing as multiplying (W6: 33.4 s for 4 iterations
/// against 24.6 s with this size, the same labels).
pub const TILE_VALUES: usize = 1 << 20;

/// The projected rows of one data set: its prefix basis, `V^T x` and the norms.
pub(crate) struct Prefix {
    pub(crate) p: usize,
    d: usize,
    /// `d x p`, orthonormal columns.
    basis: Vec<f32>,
    /// `n x p`.
    xp: Vec<f32>,
    /// `|V^T x|^2`, `n`.
    xp_norms: Vec<f32>,
    /// `|x_T|` (tail norms), `n`.
    xt: Vec<f32>,
}

impl Prefix {
    /// Finds a `p`-dimensional basis of `x`'s top principal subspace (`x`: `n x d`, a
    /// strided sample of [`BASIS_SAMPLE_ROWS`] rows, centred, two power iterations from a
    /// seeded Gaussian start) and projects every row. Deterministic: depends only on `x`.
    pub(crate) fn new(x: &[f32], d: usize, p: usize) -> Option<Self> {
        let n = x.len() / d;
        if p == 0 || p >= d || n == 0 {
            return None;
        }
        let s = n.min(BASIS_SAMPLE_ROWS.max(2 * p));
        // centred sample, f64
        let mut sample = vec![0.0f64; s * d];
        for i in 0..s {
            let r = i * n / s;
            for (o, &v) in sample[i * d..(i + 1) * d]
                .iter_mut()
                .zip(&x[r * d..(r + 1) * d])
            {
                *o = v as f64;
            }
        }
        let mut mean = vec![0.0f64; d];
        for row in sample.chunks(d) {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= s as f64);
        for row in sample.chunks_mut(d) {
            row.iter_mut().zip(&mean).for_each(|(v, m)| *v -= m);
        }
        // range finder: Q = orth(S^T S ... Omega), Omega d x p Gaussian
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED_0F_BA515);
        let mut q: Vec<f64> = (0..d * p)
            .map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal))
            .collect();
        let mut y = vec![0.0f64; s * p];
        for _ in 0..POWER_ITERATIONS {
            orthonormalize(&mut q, d, p);
            gemm_nn_rows(&mut y, &sample, &q, s, p, d); // y = S q
            gemm_tn_rows(&mut q, &sample, &y, d, p, s); // q = S^T y
        }
        orthonormalize(&mut q, d, p);
        let basis: Vec<f32> = q.iter().map(|&v| v as f32).collect();
        let mut xp = vec![0.0f32; n * p];
        gemm_nn_rows(&mut xp, x, &basis, n, p, d);
        let mut xp_norms = vec![0.0f32; n];
        let mut xt = vec![0.0f32; n];
        {
            use rayon::prelude::*;
            const R: usize = 1024;
            xp_norms
                .par_chunks_mut(R)
                .zip(xt.par_chunks_mut(R))
                .enumerate()
                .for_each(|(c, (pn, tn))| {
                    for (o, (a_out, t_out)) in pn.iter_mut().zip(tn.iter_mut()).enumerate() {
                        let i = c * R + o;
                        let a: f64 = xp[i * p..(i + 1) * p]
                            .iter()
                            .map(|&v| (v as f64) * (v as f64))
                            .sum();
                        let b: f64 = x[i * d..(i + 1) * d]
                            .iter()
                            .map(|&v| (v as f64) * (v as f64))
                            .sum();
                        *a_out = a as f32;
                        *t_out = (b - a).max(0.0).sqrt() as f32;
                    }
                });
        }
        Some(Prefix {
            p,
            d,
            basis,
            xp,
            xp_norms,
            xt,
        })
    }

    /// Bytes held: `n p 4 + 8 n` plus the basis.
    pub(crate) fn bytes(&self) -> usize {
        (self.xp.len() + self.xp_norms.len() + self.xt.len() + self.basis.len()) * 4
    }
}

/// The centroids of one iteration prepared for [`Prefix::assign`].
pub(crate) struct PrunedCenters<'a> {
    k: usize,
    metric: Metric,
    centers: &'a [f32],
    /// `k x p`
    cp: Vec<f32>,
    cp_norms: Vec<f32>,
    ct: Vec<f32>,
    /// the kernel's bias: `|c|^2` in float32 summed in order (Euclidean), 0 (cosine)
    bias: Vec<f32>,
    /// tail-norm error allowance per centroid
    ct_tol: Vec<f32>,
    cmax2: f32,
    slack_rel: f32,
    fallback: &'a Packed,
}

/// Counts of one pass (for the fit's report).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PruneCounts {
    /// Rows assigned through the bound.
    pub rows: u64,
    /// Exact keys computed for them (candidates, thresholds included).
    pub keys: u64,
    /// Rows sent to the full kernel (too many candidates).
    pub fallback_rows: u64,
}

impl PruneCounts {
    pub(crate) fn add(&mut self, o: &PruneCounts) {
        self.rows += o.rows;
        self.keys += o.keys;
        self.fallback_rows += o.fallback_rows;
    }
}

/// What the pruned assignment did over a fit's Lloyd passes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PruningSummary {
    /// Dimensions of the prefix subspace.
    pub prefix_dims: usize,
    /// Assignment passes that pruned.
    pub passes: u64,
    /// Totals over those passes.
    pub counts: PruneCounts,
    /// Bytes of the projected rows.
    pub bytes: usize,
}

impl PruningSummary {
    /// Mean exact keys per row and pass (the full kernel computes `k`); fallback rows
    /// count `k`.
    pub fn keys_per_row(&self, k: usize) -> f64 {
        let rows = self.counts.rows + self.counts.fallback_rows;
        if rows == 0 {
            return 0.0;
        }
        (self.counts.keys as f64 + self.counts.fallback_rows as f64 * k as f64) / rows as f64
    }
}

/// Scratch of one task.
#[derive(Default)]
pub(crate) struct PruneScratch {
    tile: Vec<f32>,
    amin: Vec<usize>,
    hint: Vec<usize>,
    best: Vec<(usize, f32)>,
    cands: Vec<u32>,
    fb_rows: Vec<f32>,
    fb_norms: Vec<f32>,
    fb_idx: Vec<usize>,
    fb_labels: Vec<i32>,
    fb_dists: Vec<f32>,
}

impl<'a> PrunedCenters<'a> {
    pub(crate) fn new(
        pf: &Prefix,
        centers: &'a [f32],
        k: usize,
        metric: Metric,
        fallback: &'a Packed,
    ) -> Self {
        let (d, p) = (pf.d, pf.p);
        let mut cp = vec![0.0f32; k * p];
        gemm_nn_rows(&mut cp, centers, &pf.basis, k, p, d);
        let eps = f32::EPSILON as f64;
        let mut cp_norms = Vec::with_capacity(k);
        let mut ct = Vec::with_capacity(k);
        let mut ct_tol = Vec::with_capacity(k);
        let mut bias = Vec::with_capacity(k);
        let mut cmax2 = 0.0f64;
        for j in 0..k {
            let row = &centers[j * d..(j + 1) * d];
            let a: f64 = cp[j * p..(j + 1) * p]
                .iter()
                .map(|&v| (v as f64).powi(2))
                .sum();
            let b: f64 = row.iter().map(|&v| (v as f64).powi(2)).sum();
            cp_norms.push(a as f32);
            ct.push((b - a).max(0.0).sqrt() as f32);
            // |sqrt(a) - sqrt(b)| <= sqrt(|a - b|): the tail norm's error from the
            // projection's rounding, (d + p) eps |c|^2, bounded generously
            ct_tol.push((4.0 * (d + p) as f64 * eps * b).sqrt() as f32);
            cmax2 = cmax2.max(b);
            bias.push(match metric {
                Metric::Cosine => 0.0,
                _ => row.iter().map(|&v| v * v).sum(),
            });
        }
        PrunedCenters {
            k,
            metric,
            centers,
            cp,
            cp_norms,
            ct,
            bias,
            ct_tol,
            cmax2: cmax2 as f32,
            slack_rel: (4.0 * (d + p) as f64 * eps) as f32,
            fallback,
        }
    }
}

impl Prefix {
    /// Assigns rows `row0 .. row0 + rows` (`x`: their values, `x_norms`: the kernel's
    /// squared norms): `labels` holds a hint on entry (the previous label, or anything out
    /// of range), the label on exit; `dists` the kernel's distance. Equal, bit for bit, to
    /// the full kernel's labels and distances (see the module docs).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assign(
        &self,
        pc: &PrunedCenters<'_>,
        row0: usize,
        x: &[f32],
        x_norms: &[f32],
        labels: &mut [i32],
        dists: &mut [f32],
        sc: &mut PruneScratch,
        counts: &mut PruneCounts,
    ) {
        let (d, p, k) = (self.d, self.p, pc.k);
        let rows = labels.len();
        let rt = (TILE_VALUES / k).clamp(1, rows.max(1));
        let max_cands = ((k as f64 * MAX_CANDIDATES_FRACTION) as usize).max(64);
        sc.tile.resize(rt * k, 0.0);
        sc.fb_rows.clear();
        sc.fb_norms.clear();
        sc.fb_idx.clear();
        let eps = f32::EPSILON as f64;
        let x_tol_rel = (4.0 * (d + p) as f64 * eps).sqrt() as f32;
        sc.amin.resize(rt, 0);
        sc.hint.resize(rt, 0);
        sc.best.resize(rt, (0, 0.0));
        let mut s = 0;
        while s < rows {
            let m = rt.min(rows - s);
            let g0 = row0 + s;
            gemm_nt(
                &mut sc.tile[..m * k],
                &self.xp[g0 * p..(g0 + m) * p],
                &pc.cp,
                m,
                k,
                p,
                1.0,
                false,
                Par::Seq,
            );
            // the lower bounds, in place of the dot products, and each row's centroid of
            // smallest bound (a branch-free pass the compiler vectorizes, then a scan)
            for r in 0..m {
                let g = g0 + r;
                let xpn = self.xp_norms[g];
                let xt = self.xt[g];
                let xtol = x_tol_rel * x_norms[s + r].max(0.0).sqrt();
                let t = &mut sc.tile[r * k..(r + 1) * k];
                lower_bounds(t, xpn, xt, xtol, &pc.cp_norms, &pc.ct, &pc.ct_tol);
                let a = argmin(t);
                let hint = labels[s + r];
                sc.amin[r] = a;
                sc.hint[r] = if hint >= 0 && (hint as usize) < k && hint as usize != a {
                    hint as usize
                } else {
                    a
                };
            }
            // the thresholds' exact keys (the smallest bound's centroid and the hint), for
            // four rows at once: eight independent FMA chains, where one row's two chains
            // would wait on the FMA latency
            let mut r = 0;
            while r < m {
                let q = (m - r).min(4);
                let lane = |i: usize| r + i.min(q - 1);
                let xs: [&[f32]; 4] = std::array::from_fn(|i| {
                    let li = s + lane(i);
                    &x[li * d..(li + 1) * d]
                });
                let cs: [[&[f32]; 2]; 4] = std::array::from_fn(|i| {
                    let (a, h) = (sc.amin[lane(i)], sc.hint[lane(i)]);
                    [
                        &pc.centers[a * d..(a + 1) * d],
                        &pc.centers[h * d..(h + 1) * d],
                    ]
                });
                let mut acc = [[0.0f32; 2]; 4];
                pair_chains(xs, cs, &mut acc);
                for (i, acc) in acc.iter().enumerate().take(q) {
                    let (a, h) = (sc.amin[r + i], sc.hint[r + i]);
                    let mut best = (a, (-2.0f32).mul_add(acc[0], pc.bias[a]));
                    if h != a {
                        let kh = (-2.0f32).mul_add(acc[1], pc.bias[h]);
                        if kh < best.1 || (kh == best.1 && h < best.0) {
                            best = (h, kh);
                        }
                    }
                    sc.best[r + i] = best;
                }
                r += q;
            }
            for r in 0..m {
                let li = s + r;
                let lb = &sc.tile[r * k..(r + 1) * k];
                let (a, h) = (sc.amin[r], sc.hint[r]);
                let (mut best_j, mut best_key) = sc.best[r];
                let mut n_keys = 1 + u64::from(h != a);
                let xn = x_norms[li];
                let extra = match pc.metric {
                    Metric::Cosine => pc.cmax2,
                    _ => 0.0,
                };
                let thr = xn + best_key + extra + pc.slack_rel * (xn.max(0.0) + pc.cmax2);
                sc.cands.clear();
                at_most(lb, thr, &mut sc.cands);
                sc.cands.retain(|&j| j as usize != a && j as usize != h);
                let xrow = &x[li * d..(li + 1) * d];
                if sc.cands.len() > max_cands {
                    sc.fb_idx.push(li);
                    sc.fb_rows.extend_from_slice(xrow);
                    sc.fb_norms.push(xn);
                    counts.fallback_rows += 1;
                    continue;
                }
                n_keys += sc.cands.len() as u64;
                best_of(xrow, pc, &sc.cands, d, &mut best_j, &mut best_key);
                labels[li] = best_j as i32;
                dists[li] = to_dist(pc.metric, xn, best_key);
                counts.rows += 1;
                counts.keys += n_keys;
            }
            s += m;
        }
        if !sc.fb_idx.is_empty() {
            let f = sc.fb_idx.len();
            sc.fb_labels.resize(f, 0);
            sc.fb_dists.resize(f, 0.0);
            pc.fallback.assign(
                &sc.fb_rows,
                &sc.fb_norms,
                &mut sc.fb_labels,
                &mut sc.fb_dists,
                None,
            );
            for (q, &li) in sc.fb_idx.iter().enumerate() {
                labels[li] = sc.fb_labels[q];
                dists[li] = sc.fb_dists[q];
            }
        }
    }
}

/// The fused kernel's distance from its key.
fn to_dist(metric: Metric, x_norm: f32, key: f32) -> f32 {
    match metric {
        Metric::Cosine => 1.0 + 0.5 * key,
        _ => (x_norm + key).max(0.0),
    }
}

/// The best (smallest key, then smallest index) of `cands` and the current best.
fn best_of(
    x: &[f32],
    pc: &PrunedCenters<'_>,
    cands: &[u32],
    d: usize,
    best_j: &mut usize,
    best_key: &mut f32,
) {
    let mut consider = |j: usize, key: f32| {
        if key < *best_key || (key == *best_key && j < *best_j) {
            *best_key = key;
            *best_j = j;
        }
    };
    for g in cands.chunks(16) {
        // a short last group is padded with its first candidate: sixteen chains in two
        // vectors cost about what eight do (the FMA latency bounds a lone vector)
        let idx: [usize; 16] = std::array::from_fn(|l| g[l.min(g.len() - 1)] as usize);
        let cs: [&[f32]; 16] = std::array::from_fn(|l| &pc.centers[idx[l] * d..(idx[l] + 1) * d]);
        let mut acc = [0.0f32; 16];
        chains16(x, cs, &mut acc);
        for l in 0..g.len() {
            let j = idx[l];
            consider(j, (-2.0f32).mul_add(acc[l], pc.bias[j]));
        }
    }
}

/// Sixteen FMA chains from 0 (`acc[l] = sum_f fma(x[f], c[l][f], .)`, the features in
/// order: the fused kernel's arithmetic, lane by lane). With AVX2, eight features of eight
/// centroids are loaded and transposed in registers, so each vector FMA advances eight
/// chains by one feature: the same operations in the same order as the scalar chains.
#[inline]
fn chains16(x: &[f32], c: [&[f32]; 16], acc: &mut [f32; 16]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: AVX2 and FMA were detected; every `c[l]` has at least `x.len()` values.
        unsafe { chains16_avx2(x, c, acc) };
        return;
    }
    chains_plain::<16>(x, c, acc);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn chains16_avx2(x: &[f32], c: [&[f32]; 16], acc: &mut [f32; 16]) {
    use std::arch::x86_64::*;
    let d = x.len();
    for l in 0..16 {
        assert!(c[l].len() >= d);
    }
    #[inline(always)]
    unsafe fn transpose(r: [__m256; 8]) -> [__m256; 8] {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ]
    }
    let mut a0 = _mm256_loadu_ps(acc.as_ptr());
    let mut a1 = _mm256_loadu_ps(acc.as_ptr().add(8));
    let xp = x.as_ptr();
    let mut f = 0;
    while f + 8 <= d {
        let c0 = transpose(std::array::from_fn(|l| {
            _mm256_loadu_ps(c[l].as_ptr().add(f))
        }));
        let c1 = transpose(std::array::from_fn(|l| {
            _mm256_loadu_ps(c[8 + l].as_ptr().add(f))
        }));
        for q in 0..8 {
            let xv = _mm256_set1_ps(*xp.add(f + q));
            a0 = _mm256_fmadd_ps(xv, c0[q], a0);
            a1 = _mm256_fmadd_ps(xv, c1[q], a1);
        }
        f += 8;
    }
    while f < d {
        let xv = _mm256_set1_ps(*xp.add(f));
        let g0: [f32; 8] = std::array::from_fn(|l| *c[l].as_ptr().add(f));
        let g1: [f32; 8] = std::array::from_fn(|l| *c[8 + l].as_ptr().add(f));
        a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(g0.as_ptr()), a0);
        a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(g1.as_ptr()), a1);
        f += 1;
    }
    _mm256_storeu_ps(acc.as_mut_ptr(), a0);
    _mm256_storeu_ps(acc.as_mut_ptr().add(8), a1);
}

/// `L` independent FMA chains `acc[l] = sum_f fma(x[f], c[l][f], .)` over the features in
/// order (the fused kernel's arithmetic, lane by lane), without SIMD.
#[inline(always)]
fn chains_plain<const L: usize>(x: &[f32], c: [&[f32]; L], acc: &mut [f32; L]) {
    let d = x.len();
    let c: [&[f32]; L] = std::array::from_fn(|l| &c[l][..d]);
    for f in 0..d {
        let xv = x[f];
        for l in 0..L {
            acc[l] = xv.mul_add(c[l][f], acc[l]);
        }
    }
}

/// Appends to `out` every `j` with `v[j] <= thr`, in increasing order.
#[inline]
fn at_most(v: &[f32], thr: f32, out: &mut Vec<u32>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was detected.
        unsafe { at_most_avx2(v, thr, out) };
        return;
    }
    out.extend(
        v.iter()
            .enumerate()
            .filter(|(_, &l)| l <= thr)
            .map(|(j, _)| j as u32),
    );
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn at_most_avx2(v: &[f32], thr: f32, out: &mut Vec<u32>) {
    use std::arch::x86_64::*;
    let t = _mm256_set1_ps(thr);
    let mut chunks = v.chunks_exact(8);
    let mut base = 0u32;
    for c in &mut chunks {
        // `<=` ordered and quiet: false for NaN, as the scalar comparison
        let m = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(_mm256_loadu_ps(c.as_ptr()), t));
        let mut bits = m as u32;
        while bits != 0 {
            out.push(base + bits.trailing_zeros());
            bits &= bits - 1;
        }
        base += 8;
    }
    for (o, &l) in chunks.remainder().iter().enumerate() {
        if l <= thr {
            out.push(base + o as u32);
        }
    }
}

/// `t[j] <- max(0, xpn + cp_norms[j] - 2 t[j]) + max(0, |xt - ct[j]| - xtol - ct_tol[j])^2`:
/// the lower bound of every centroid from its prefix dot product `t[j]`.
#[inline]
fn lower_bounds(t: &mut [f32], xpn: f32, xt: f32, xtol: f32, cpn: &[f32], ct: &[f32], ctt: &[f32]) {
    let k = t.len();
    let (cpn, ct, ctt) = (&cpn[..k], &ct[..k], &ctt[..k]);
    for j in 0..k {
        let pd = (xpn + cpn[j] - 2.0 * t[j]).max(0.0);
        let tg = ((xt - ct[j]).abs() - xtol - ctt[j]).max(0.0);
        t[j] = pd + tg * tg;
    }
}

/// The first index of the smallest value (values are finite and non-negative).
#[inline]
fn argmin(v: &[f32]) -> usize {
    // lane-wise minima over chunks of 8 (vectorized), then the first index that equals it
    let mut m = [f32::INFINITY; 8];
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            m[l] = if c[l] < m[l] { c[l] } else { m[l] };
        }
    }
    let mut lmin = m
        .iter()
        .copied()
        .fold(f32::INFINITY, |a, b| if b < a { b } else { a });
    for &x in chunks.remainder() {
        if x < lmin {
            lmin = x;
        }
    }
    v.iter().position(|&x| x == lmin).unwrap_or(0)
}

/// Two FMA chains for each of four rows (`acc[i][l] = sum_f fma(x[i][f], c[i][l][f], .)`,
/// the features in order: the fused kernel's arithmetic).
#[inline]
fn pair_chains(x: [&[f32]; 4], c: [[&[f32]; 2]; 4], acc: &mut [[f32; 2]; 4]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: FMA was detected.
        unsafe { pair_chains_fma(x, c, acc) };
        return;
    }
    pair_chains_plain(x, c, acc);
}

#[inline(always)]
fn pair_chains_plain(x: [&[f32]; 4], c: [[&[f32]; 2]; 4], acc: &mut [[f32; 2]; 4]) {
    let d = x[0].len();
    let x: [&[f32]; 4] = std::array::from_fn(|i| &x[i][..d]);
    let c: [[&[f32]; 2]; 4] = std::array::from_fn(|i| [&c[i][0][..d], &c[i][1][..d]]);
    for f in 0..d {
        for i in 0..4 {
            let xv = x[i][f];
            acc[i][0] = xv.mul_add(c[i][0][f], acc[i][0]);
            acc[i][1] = xv.mul_add(c[i][1][f], acc[i][1]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn pair_chains_fma(x: [&[f32]; 4], c: [[&[f32]; 2]; 4], acc: &mut [[f32; 2]; 4]) {
    pair_chains_plain(x, c, acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
    }

    #[test]
    fn simd_chains_equal_the_scalar_chains_bitwise() {
        for d in [1usize, 7, 8, 9, 13, 64, 100, 768] {
            let x = values(d, d as u64);
            let c = values(16 * d, 1000 + d as u64);
            let rows: [&[f32]; 16] = std::array::from_fn(|l| &c[l * d..(l + 1) * d]);
            let mut fast = [0.0f32; 16];
            chains16(&x, rows, &mut fast);
            let mut plain = [0.0f32; 16];
            chains_plain::<16>(&x, rows, &mut plain);
            for l in 0..16 {
                assert_eq!(fast[l].to_bits(), plain[l].to_bits(), "d = {d}, lane {l}");
            }
        }
    }

    #[test]
    fn at_most_finds_every_value_below_the_threshold_in_order() {
        for n in [0usize, 5, 8, 17, 4096] {
            let v = values(n, 7 + n as u64);
            for thr in [-2.0f32, -0.5, 0.0, 0.25, 2.0] {
                let mut got = Vec::new();
                at_most(&v, thr, &mut got);
                let want: Vec<u32> = (0..n as u32).filter(|&j| v[j as usize] <= thr).collect();
                assert_eq!(got, want, "n = {n}, thr = {thr}");
            }
        }
    }
}
