//! The fused assignment kernel for float32: distances from rows to every centroid and the
//! argmin (and the second-best distance, for confidences), computed in registers, without
//! a `rows x k` distance tile.
//!
//! Centroids are packed once per Lloyd iteration into panels of `NR` centroids
//! (one SIMD vector when `k` fits in it, else two: up to 32 with AVX-512, 16 with AVX2), feature-major inside a panel, with a
//! bias per centroid (`|c|^2` for the Euclidean metric, 0 for cosine, `+inf` for padding).
//! For a group of [`MR`] rows, each panel is one register-blocked GEMM micro-kernel
//! (`MR x NR` accumulators, one FMA per row, centroid vector and feature), after which the
//! keys `bias - 2 x.c` update a running per-lane minimum, its index and the per-lane second
//! minimum; the lanes are reduced once per row at the end. Each row's dot products are
//! accumulated over the features in order, whatever the rows around it, so a row's label
//! does not depend on the block, the chunk or the thread that computes it.
//!
//! Ties go to the smallest centroid index, as in a scalar `argmin`. Peak memory: the packed
//! centroids, `ceil(k / NR) * NR * (d + 1) * 4` bytes, nothing per row.
//!
//! Speed: the inner loop is `2 MR` FMAs for `2 + MR` loads, so it runs at the FMA units'
//! rate while a panel stays in L1/L2 (`d * NR * 4` bytes). Machines without AVX2/FMA (and
//! float64 data) use the tiled GEMM path of `cluster`.

use super::Distance as Metric;

/// Rows per register block.
pub(crate) const MR: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

fn detect() -> Option<Isa> {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::runtime::kernels().avx512 && std::arch::is_x86_feature_detected!("avx512f") {
            return Some(Isa::Avx512);
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Some(Isa::Avx2);
        }
    }
    None
}

/// Centroids packed for the kernel.
#[derive(Debug, Clone)]
pub(crate) struct Packed {
    pub k: usize,
    pub d: usize,
    nr: usize,
    n_panels: usize,
    /// `n_panels x d x nr`
    data: Vec<f32>,
    /// `n_panels x nr`
    bias: Vec<f32>,
    /// Row-major `k x d` copy of the centroids and their biases, for the small-`d` kernel
    /// (empty when it is not used).
    rows: Vec<f32>,
    row_bias: Vec<f32>,
    metric: Metric,
    isa: Isa,
}

/// Widest `d` for the rows-in-lanes kernel ([`small`]).
pub(crate) const SMALL_D: usize = 16;
/// Most centroids for the rows-in-lanes kernel: beyond, the panel kernel's reuse of each row
/// across a register block of centroids wins (W2, 100,000 x 2, 1 thread: k = 8 went from 3.6
/// to 4.8 GFLOP/s with this kernel, k = 64 from 29.3 down to 24.9).
pub(crate) const SMALL_K: usize = 16;

impl Packed {
    /// Packs `centers` (`k x d`, row-major); `None` where the CPU has neither AVX-512 nor
    /// AVX2 with FMA.
    pub(crate) fn new(centers: &[f32], k: usize, d: usize, metric: Metric) -> Option<Packed> {
        let isa = detect()?;
        let lanes = match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => 16,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => 8,
        };
        // one vector of centroids per panel when they fit in it, else two
        let nr = if k <= lanes { lanes } else { 2 * lanes };
        let n_panels = k.div_ceil(nr);
        let mut data = vec![0.0f32; n_panels * d * nr];
        let mut bias = vec![f32::INFINITY; n_panels * nr];
        for c in 0..k {
            let (p, lane) = (c / nr, c % nr);
            let row = &centers[c * d..(c + 1) * d];
            for (j, &v) in row.iter().enumerate() {
                data[(p * d + j) * nr + lane] = v;
            }
            bias[p * nr + lane] = match metric {
                Metric::Cosine => 0.0,
                _ => row.iter().map(|&v| v * v).sum(),
            };
        }
        let small = cfg!(target_arch = "x86_64")
            && matches!(isa, Isa::Avx512)
            && (1..=SMALL_D).contains(&d)
            && k <= SMALL_K
            && crate::runtime::kernels().small_d;
        let (rows, row_bias) = if small {
            let rb = (0..k).map(|c| bias[(c / nr) * nr + c % nr]).collect();
            (centers[..k * d].to_vec(), rb)
        } else {
            (Vec::new(), Vec::new())
        };
        Some(Packed {
            k,
            d,
            nr,
            n_panels,
            data,
            bias,
            rows,
            row_bias,
            metric,
            isa,
        })
    }

    /// Whether [`Packed::dots`] runs here (AVX-512 and at most 16 centroids).
    pub(crate) fn has_dots(&self) -> bool {
        cfg!(target_arch = "x86_64")
            && matches!(self.isa, Isa::Avx512)
            && self.n_panels == 1
            && self.nr == 16
    }

    /// Dot products of every row of `x` (`rows x d`) with every centroid, into `out`
    /// (`rows x k`, row-major), when `k` fits in one vector of an AVX-512 machine (k-means++
    /// candidates); returns false (nothing written) otherwise. Each product is an FMA chain
    /// over the features in order, so it does not depend on the rows around it.
    pub(crate) fn dots(&self, x: &[f32], out: &mut [f32]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if self.has_dots() {
            // SAFETY: AVX-512 was detected; `dots` checks the slice sizes.
            unsafe { avx512_dots::run(self, x, out) };
            return true;
        }
        let _ = (x, out);
        false
    }

    /// Assigns rows `x` (`rows x d`): writes the nearest centroid, its distance (squared
    /// Euclidean, clamped at 0, or `1 - cos`), and with `second` the second-best distance
    /// (the best one again when `k == 1`). `x_norms` are the rows' squared norms (Euclidean).
    pub(crate) fn assign(
        &self,
        x: &[f32],
        x_norms: &[f32],
        labels: &mut [i32],
        dists: &mut [f32],
        second: Option<&mut [f32]>,
    ) {
        let rows = labels.len();
        debug_assert_eq!(x.len(), rows * self.d);
        let mut keys = vec![0.0f32; rows];
        let mut seconds = if second.is_some() {
            vec![0.0f32; rows]
        } else {
            Vec::new()
        };
        let one = self.nr <= 16 && matches!(self.isa, Isa::Avx512) || self.nr <= 8;
        // SAFETY: `detect` confirmed the instruction set; slices have the sizes asserted.
        unsafe {
            match (self.isa, one, second.is_some()) {
                #[cfg(target_arch = "x86_64")]
                (Isa::Avx512, _, false) if !self.rows.is_empty() => {
                    small::run(self, x, &mut keys, labels)
                }
                #[cfg(target_arch = "x86_64")]
                (Isa::Avx512, false, false) => {
                    avx512::run::<2, false>(self, x, &mut keys, labels, &mut [])
                }
                #[cfg(target_arch = "x86_64")]
                (Isa::Avx512, false, true) => {
                    avx512::run::<2, true>(self, x, &mut keys, labels, &mut seconds)
                }
                #[cfg(target_arch = "x86_64")]
                (Isa::Avx512, true, false) => {
                    avx512::run::<1, false>(self, x, &mut keys, labels, &mut [])
                }
                #[cfg(target_arch = "x86_64")]
                (Isa::Avx512, true, true) => {
                    avx512::run::<1, true>(self, x, &mut keys, labels, &mut seconds)
                }
                #[cfg(target_arch = "x86_64")]
                (Isa::Avx2, false, false) => {
                    avx2::run::<2, false>(self, x, &mut keys, labels, &mut [])
                }
                #[cfg(target_arch = "x86_64")]
                (Isa::Avx2, false, true) => {
                    avx2::run::<2, true>(self, x, &mut keys, labels, &mut seconds)
                }
                #[cfg(target_arch = "x86_64")]
                (Isa::Avx2, true, false) => {
                    avx2::run::<1, false>(self, x, &mut keys, labels, &mut [])
                }
                #[cfg(target_arch = "x86_64")]
                (Isa::Avx2, true, true) => {
                    avx2::run::<1, true>(self, x, &mut keys, labels, &mut seconds)
                }
            }
        }
        let to_dist = |key: f32, r: usize| match self.metric {
            Metric::Cosine => 1.0 + 0.5 * key,
            _ => (x_norms[r] + key).max(0.0),
        };
        for r in 0..rows {
            dists[r] = to_dist(keys[r], r);
        }
        if let Some(s) = second {
            for r in 0..rows {
                s[r] = if self.k < 2 {
                    dists[r]
                } else {
                    to_dist(seconds[r], r)
                };
            }
        }
    }
}

/// One kernel per instruction set, generated from the same body: `$v` is the vector type,
/// `$lanes` its width, and the operations are that module's `#[target_feature]` helpers
/// (inlined into the kernel, which has the same features).
macro_rules! kernel {
    ($feat:literal, $v:ty, $lanes:expr) => {
        /// `M` rows against every panel of `NV` vectors: per-lane best key, index and second
        /// key, then reduced across lanes (smallest index among equal keys).
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn block<const M: usize, const NV: usize, const TOP2: bool>(
            p: &super::Packed,
            x: *const f32,
            best_out: &mut [f32],
            idx_out: &mut [i32],
            sec_out: &mut [f32],
        ) {
            let d = p.d;
            let nr = p.nr;
            let inf = splat(f32::INFINITY);
            let mut best = [inf; M];
            let mut bidx = [splat(0.0); M];
            let mut sec = [inf; M];
            let lane_iota = iota();
            let minus_two = splat(-2.0);
            for panel in 0..p.n_panels {
                let pp = p.data.as_ptr().add(panel * d * nr);
                let mut acc = [[splat(0.0); NV]; M];
                for j in 0..d {
                    let mut c = [splat(0.0); NV];
                    for v in 0..NV {
                        c[v] = load(pp.add(j * nr + v * $lanes));
                    }
                    for r in 0..M {
                        let xv = splat(*x.add(r * d + j));
                        for v in 0..NV {
                            acc[r][v] = fmadd(xv, c[v], acc[r][v]);
                        }
                    }
                }
                let bp = p.bias.as_ptr().add(panel * nr);
                for v in 0..NV {
                    let b = load(bp.add(v * $lanes));
                    let iv = add(lane_iota, splat((panel * nr + v * $lanes) as f32));
                    for r in 0..M {
                        let key = fmadd(minus_two, acc[r][v], b);
                        update::<TOP2>(&mut best[r], &mut bidx[r], &mut sec[r], key, iv);
                    }
                }
            }
            for r in 0..M {
                let bmin = hmin(best[r]);
                let imin = hmin(select(eq(best[r], splat(bmin)), bidx[r], inf));
                best_out[r] = bmin;
                idx_out[r] = imin as i32;
                if TOP2 {
                    // the other lanes' bests, and every lane's second
                    let others = select(eq(bidx[r], splat(imin)), inf, best[r]);
                    sec_out[r] = hmin(min(sec[r], others));
                }
            }
        }

        /// Every row of `x`, in blocks of `MR` rows, then one by one.
        #[target_feature(enable = $feat)]
        pub(super) unsafe fn run<const NV: usize, const TOP2: bool>(
            p: &super::Packed,
            x: &[f32],
            keys: &mut [f32],
            labels: &mut [i32],
            seconds: &mut [f32],
        ) {
            let d = p.d;
            let rows = labels.len();
            let mut r = 0;
            let mut none: [f32; 0] = [];
            while r + super::MR <= rows {
                let sec: &mut [f32] = if TOP2 {
                    &mut seconds[r..r + super::MR]
                } else {
                    &mut none
                };
                block::<{ super::MR }, NV, TOP2>(
                    p,
                    x.as_ptr().add(r * d),
                    &mut keys[r..r + super::MR],
                    &mut labels[r..r + super::MR],
                    sec,
                );
                r += super::MR;
            }
            while r < rows {
                let sec: &mut [f32] = if TOP2 {
                    &mut seconds[r..r + 1]
                } else {
                    &mut none
                };
                block::<1, NV, TOP2>(
                    p,
                    x.as_ptr().add(r * d),
                    &mut keys[r..r + 1],
                    &mut labels[r..r + 1],
                    sec,
                );
                r += 1;
            }
        }

        /// Running per-lane minimum (strict `<`: the earlier index keeps a tie), its index,
        /// and the second minimum.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn update<const TOP2: bool>(
            best: &mut $v,
            idx: &mut $v,
            sec: &mut $v,
            key: $v,
            kidx: $v,
        ) {
            let m = lt(key, *best);
            if TOP2 {
                *sec = select(m, *best, min(*sec, key));
            }
            *idx = select(m, kidx, *idx);
            *best = select(m, key, *best);
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn splat(v: f32) -> __m512 {
        _mm512_set1_ps(v)
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn load(p: *const f32) -> __m512 {
        _mm512_loadu_ps(p)
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn eq(a: __m512, b: __m512) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b)
    }
    /// The smallest lane.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn hmin(v: __m512) -> f32 {
        _mm512_reduce_min_ps(v)
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn fmadd(a: __m512, b: __m512, c: __m512) -> __m512 {
        _mm512_fmadd_ps(a, b, c)
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        _mm512_add_ps(a, b)
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn min(a: __m512, b: __m512) -> __m512 {
        _mm512_min_ps(a, b)
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn lt(a: __m512, b: __m512) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b)
    }
    /// `m ? a : b`, lane by lane.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn select(m: __mmask16, a: __m512, b: __m512) -> __m512 {
        _mm512_mask_blend_ps(m, b, a)
    }
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn iota() -> __m512 {
        _mm512_setr_ps(
            0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
        )
    }

    kernel!("avx512f", __m512, 16);
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn splat(v: f32) -> __m256 {
        _mm256_set1_ps(v)
    }
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn load(p: *const f32) -> __m256 {
        _mm256_loadu_ps(p)
    }
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn eq(a: __m256, b: __m256) -> __m256 {
        _mm256_cmp_ps::<_CMP_EQ_OQ>(a, b)
    }
    /// The smallest lane.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn hmin(v: __m256) -> f32 {
        let m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let m = _mm_min_ps(m, _mm_movehl_ps(m, m));
        let m = _mm_min_ss(m, _mm_shuffle_ps::<1>(m, m));
        _mm_cvtss_f32(m)
    }
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn fmadd(a: __m256, b: __m256, c: __m256) -> __m256 {
        _mm256_fmadd_ps(a, b, c)
    }
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        _mm256_add_ps(a, b)
    }
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn min(a: __m256, b: __m256) -> __m256 {
        _mm256_min_ps(a, b)
    }
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn lt(a: __m256, b: __m256) -> __m256 {
        _mm256_cmp_ps::<_CMP_LT_OQ>(a, b)
    }
    /// `m ? a : b`, lane by lane.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn select(m: __m256, a: __m256, b: __m256) -> __m256 {
        _mm256_blendv_ps(b, a, m)
    }
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn iota() -> __m256 {
        _mm256_setr_ps(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)
    }

    kernel!("avx2,fma", __m256, 8);
}

/// Row-by-centroid dot products for up to 16 centroids (one panel): `MR` rows at a time,
/// one FMA per row and feature, the lanes stored with a mask.
#[cfg(target_arch = "x86_64")]
mod avx512_dots {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn run(p: &super::Packed, x: &[f32], out: &mut [f32]) {
        let (d, k) = (p.d, p.k);
        let rows = x.len() / d;
        assert!(out.len() == rows * k && p.data.len() >= d * 16);
        let mask: __mmask16 = if k >= 16 {
            0xFFFF
        } else {
            ((1u32 << k) - 1) as u16
        };
        let c = p.data.as_ptr();
        let mut r = 0;
        while r + super::MR <= rows {
            block::<{ super::MR }>(
                c,
                x.as_ptr().add(r * d),
                d,
                out.as_mut_ptr().add(r * k),
                k,
                mask,
            );
            r += super::MR;
        }
        while r < rows {
            block::<1>(
                c,
                x.as_ptr().add(r * d),
                d,
                out.as_mut_ptr().add(r * k),
                k,
                mask,
            );
            r += 1;
        }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn block<const M: usize>(
        c: *const f32,
        x: *const f32,
        d: usize,
        out: *mut f32,
        k: usize,
        mask: __mmask16,
    ) {
        let mut acc = [_mm512_setzero_ps(); M];
        for j in 0..d {
            let cv = _mm512_loadu_ps(c.add(j * 16));
            for (r, a) in acc.iter_mut().enumerate() {
                *a = _mm512_fmadd_ps(_mm512_set1_ps(*x.add(r * d + j)), cv, *a);
            }
        }
        for (r, a) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(out.add(r * k), mask, *a);
        }
    }
}

/// Small `d` (1 to [`SMALL_D`]) and few centroids: rows in the lanes instead of centroids.
/// Sixteen rows are gathered into `d` vectors (feature-major), then every centroid is one
/// broadcast FMA chain over the features and a compare-and-blend into the running minimum:
/// `k (d + 3)` instructions per 16 rows, where the panel kernel spends a horizontal
/// reduction per row that dwarfs `d` FMAs when `d` is tiny (the GEMM does not pay).
///
/// The arithmetic is the panel kernel's, operation for operation (`acc = fma(x_j, c_j, acc)`
/// over the features in order from 0, `key = fma(-2, acc, bias)`, strict `<` in index
/// order), so both give the same keys and labels bit for bit.
#[cfg(target_arch = "x86_64")]
mod small {
    use std::arch::x86_64::*;

    /// Every row of `x`; the best key and its centroid.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn run(p: &super::Packed, x: &[f32], keys: &mut [f32], labels: &mut [i32]) {
        macro_rules! dispatch {
            ($($d:literal)*) => {
                match p.d {
                    $($d => rows::<$d>(p, x, keys, labels),)*
                    _ => unreachable!("small kernel for d <= SMALL_D"),
                }
            };
        }
        dispatch!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn rows<const D: usize>(
        p: &super::Packed,
        x: &[f32],
        keys: &mut [f32],
        labels: &mut [i32],
    ) {
        let n = labels.len();
        let k = p.k;
        debug_assert!(x.len() == n * D && keys.len() == n);
        let offsets = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(D as i32),
        );
        let minus_two = _mm512_set1_ps(-2.0);
        let c = p.rows.as_ptr();
        let mut r = 0;
        while r < n {
            let m = (n - r).min(16);
            let mask: __mmask16 = if m == 16 {
                0xFFFF
            } else {
                ((1u32 << m) - 1) as u16
            };
            let base = x.as_ptr().add(r * D);
            let mut xv = [_mm512_setzero_ps(); D];
            for (f, v) in xv.iter_mut().enumerate() {
                *v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, offsets, base.add(f));
            }
            let mut best = _mm512_set1_ps(f32::INFINITY);
            let mut bidx = _mm512_setzero_si512();
            for j in 0..k {
                let cj = c.add(j * D);
                let mut acc = _mm512_setzero_ps();
                for (f, v) in xv.iter().enumerate() {
                    acc = _mm512_fmadd_ps(*v, _mm512_set1_ps(*cj.add(f)), acc);
                }
                let key =
                    _mm512_fmadd_ps(minus_two, acc, _mm512_set1_ps(*p.row_bias.get_unchecked(j)));
                let lt = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(key, best);
                best = _mm512_mask_blend_ps(lt, best, key);
                bidx = _mm512_mask_blend_epi32(lt, bidx, _mm512_set1_epi32(j as i32));
            }
            _mm512_mask_storeu_ps(keys.as_mut_ptr().add(r), mask, best);
            _mm512_mask_storeu_epi32(labels.as_mut_ptr().add(r), mask, bidx);
            r += m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel against a naive double loop: labels (ties to the smaller index), distances
    /// and second-best distances, for every remainder of rows and centroids.
    #[test]
    fn kernel_equals_a_naive_argmin() {
        let Some(_) = detect() else { return };
        let mut s = 7u64;
        let mut rnd = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for (rows, k, d) in [
            (1, 1, 1),
            (13, 5, 3),
            (40, 33, 17),
            (7, 64, 128),
            (100, 3, 2),
        ] {
            let x: Vec<f32> = (0..rows * d).map(|_| (rnd() * 8.0).round() / 8.0).collect();
            let mut c: Vec<f32> = (0..k * d).map(|_| (rnd() * 8.0).round() / 8.0).collect();
            if k > 2 {
                // a duplicate centroid: ties must go to the smaller index
                let (a, b) = c.split_at_mut(2 * d);
                b[..d].copy_from_slice(&a[..d]);
            }
            for metric in [Metric::Euclidean, Metric::Cosine] {
                let p = Packed::new(&c, k, d, metric).unwrap();
                let norms: Vec<f32> = x.chunks(d).map(|r| r.iter().map(|v| v * v).sum()).collect();
                let (mut l, mut dist, mut sec) = (vec![0; rows], vec![0.0; rows], vec![0.0; rows]);
                p.assign(&x, &norms, &mut l, &mut dist, Some(&mut sec));
                for r in 0..rows {
                    let xr = &x[r * d..(r + 1) * d];
                    let mut all: Vec<(f64, usize)> = (0..k)
                        .map(|j| {
                            let cj = &c[j * d..(j + 1) * d];
                            let dot: f64 = xr.iter().zip(cj).map(|(a, b)| (a * b) as f64).sum();
                            let v = match metric {
                                Metric::Cosine => 1.0 - dot,
                                _ => xr
                                    .iter()
                                    .zip(cj)
                                    .map(|(a, b)| ((a - b) * (a - b)) as f64)
                                    .sum(),
                            };
                            (v, j)
                        })
                        .collect();
                    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
                    assert_eq!(l[r] as usize, all[0].1, "{rows} {k} {d} {metric:?} row {r}");
                    assert!(
                        (dist[r] as f64 - all[0].0).abs() < 1e-4,
                        "{} {}",
                        dist[r],
                        all[0].0
                    );
                    let want2 = if k > 1 { all[1].0 } else { all[0].0 };
                    assert!((sec[r] as f64 - want2).abs() < 1e-4, "{} {want2}", sec[r]);
                }
            }
        }
    }

    /// The small-`d` kernel gives the panel kernel's keys and labels bit for bit.
    #[test]
    fn small_d_kernel_equals_the_panel_kernel_bitwise() {
        let Some(Isa::Avx512) = detect() else { return };
        let mut s = 11u64;
        let mut rnd = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for d in 1..=SMALL_D {
            for (rows, k) in [(1, 1), (15, 3), (16, 8), (37, 11), (100, 16)] {
                let x: Vec<f32> = (0..rows * d).map(|_| rnd() * 3.0).collect();
                let mut c: Vec<f32> = (0..k * d).map(|_| rnd() * 3.0).collect();
                if k > 2 {
                    let (a, b) = c.split_at_mut(2 * d);
                    b[..d].copy_from_slice(&a[..d]); // a tie: the smaller index wins
                }
                for metric in [Metric::Euclidean, Metric::Cosine] {
                    let p = Packed::new(&c, k, d, metric).unwrap();
                    assert!(!p.rows.is_empty());
                    let (mut k1, mut l1) = (vec![0.0; rows], vec![0; rows]);
                    let (mut k2, mut l2) = (vec![0.0; rows], vec![0; rows]);
                    let nv1 = p.nr <= 16;
                    unsafe {
                        small::run(&p, &x, &mut k1, &mut l1);
                        if nv1 {
                            avx512::run::<1, false>(&p, &x, &mut k2, &mut l2, &mut []);
                        } else {
                            avx512::run::<2, false>(&p, &x, &mut k2, &mut l2, &mut []);
                        }
                    }
                    assert_eq!(l1, l2, "d {d} k {k} {metric:?}");
                    let (b1, b2): (Vec<u32>, Vec<u32>) = (
                        k1.iter().map(|v| v.to_bits()).collect(),
                        k2.iter().map(|v| v.to_bits()).collect(),
                    );
                    assert_eq!(b1, b2, "d {d} k {k} {metric:?}");
                }
            }
        }
    }

    /// The dot kernel against a naive loop, bit for bit (an FMA chain in feature order).
    #[test]
    fn dot_kernel_equals_an_fma_chain() {
        let Some(Isa::Avx512) = detect() else { return };
        let mut s = 5u64;
        let mut rnd = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for (rows, k, d) in [(1, 1, 1), (13, 5, 128), (40, 16, 3), (7, 9, 33)] {
            let x: Vec<f32> = (0..rows * d).map(|_| rnd()).collect();
            let c: Vec<f32> = (0..k * d).map(|_| rnd()).collect();
            let p = Packed::new(&c, k, d, Metric::Cosine).unwrap();
            let mut out = vec![0.0f32; rows * k];
            assert!(p.dots(&x, &mut out));
            for r in 0..rows {
                for j in 0..k {
                    let want = (0..d).fold(0.0f32, |a, f| x[r * d + f].mul_add(c[j * d + f], a));
                    assert_eq!(out[r * k + j].to_bits(), want.to_bits(), "{rows} {k} {d}");
                }
            }
        }
    }
}
