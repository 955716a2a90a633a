//! PCA fitted by a streaming covariance (exact, one pass) or by randomized SVD on a
//! reservoir sample, plus Matryoshka truncation.
//!
//! # Exact: streaming covariance
//! [`CovarianceAccumulator`] consumes blocks of any size. Rows are grouped into chunks of
//! [`cov_chunk_rows`]`(d)` rows *by their global row index*, so the result is the same bit for
//! bit whatever block size the reader uses. Each chunk is centered by its own mean into a
//! scratch buffer in the data's dtype and its Gram matrix is one symmetric rank-k update (faer's triangular GEMM, lower half); chunk states
//! `(count, mean, co-moment)` are merged into f64 accumulators with the pairwise update of
//! Chan, Golub and LeVeque (1979), which stays accurate when the mean is far from zero.
//! [`CovarianceState`] is the mergeable state (`partial` / `merge` / `finish`).
//! The eigendecomposition of the `d x d` covariance is faer's self-adjoint solver.
//!
//! Peak memory (fit): `2 * d^2 * 8` bytes (co-moment and covariance, f64) + `d^2 * s`
//! (chunk Gram, `s = size_of::<T>()`) + `2 * cov_chunk_rows(d) * d * s` (pending rows and
//! centered scratch) + the eigensolver's workspace (about `3 * d^2 * 8`).
//!
//! # Randomized: sample + randomized SVD
//! [`ReservoirSampler`] draws a uniform sample of `N` rows in one pass (Vitter's
//! algorithm R, one draw per row, so the sample does not depend on the block size), and
//! [`randomized_pca`] runs the randomized range finder with oversampling and power
//! iterations of Halko, Martinsson and Tropp (2011) on the implicitly centered sample.
//! Peak memory (fit): `N * d * s` (sample) + `2 * N * l * s` (range basis, `l =
//! n_components + n_oversamples`) + `d * l * (s + 8)`.
//!
//! # Transform
//! [`PcaTransform::transform`] computes `X W^T - (mu W^T)` for a block: one GEMM and a
//! row offset, never materializing `X - mu`. Output keeps the input dtype.

use crate::dtype::Real;
use crate::error::{Error, Result};
use crate::linalg::{gemm_nn, gemm_nn_rows, gemm_tn_rows, orthonormalize, par, syrk_lower_tn};
use crate::preprocessing::Moments;
use faer::{Mat, Side};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// Rows per chunk of the streaming covariance (aligned to global row indices).
pub const COV_CHUNK_ROWS: usize = 1024;

/// Rows per covariance chunk for `d` features: about 16 MiB of float32 rows, a power of
/// two between [`COV_CHUNK_ROWS`] and 8192 (4096 at `d = 1536`). It depends only on `d`,
/// never on the block size or the thread count, so results stay bitwise reproducible.
/// Deeper chunks make the Gram update a better-shaped GEMM: at 312,000 x 1536 the fit
/// took 6.9 s with 1,024-row chunks and 4.0 s with 4,096 (2 threads).
pub fn cov_chunk_rows(d: usize) -> usize {
    ((16usize << 20) / (4 * d.max(1)))
        .next_power_of_two()
        .clamp(COV_CHUNK_ROWS, 8192)
}

/// Mergeable covariance state: count, mean and co-moment `sum (x - mean)(x - mean)^T`,
/// all f64. The co-moment is stored as a full symmetric `d x d` row-major matrix.
///
/// # Example
/// ```
/// use embedcluster::decomposition::CovarianceState;
/// let x = [1.0f64, 0.0, 2.0, 1.0, 3.0, 0.0, 4.0, 1.0]; // 4 rows of 2
/// // two blocks merged give the state of all rows (Chan, Golub and LeVeque 1979)
/// let mut s = CovarianceState::partial(&x[..4], 2);
/// s.merge(&CovarianceState::partial(&x[4..], 2));
/// let all = CovarianceState::partial(&x, 2);
/// assert_eq!(s.n, 4);
/// for (a, b) in s.comoment.iter().zip(&all.comoment) {
///     assert!((a - b).abs() < 1e-12);
/// }
/// let pca = s.finish(1).unwrap();
/// assert_eq!(pca.components().len(), 2);
/// assert!(pca.explained_variance_ratio()[0] > 0.85); // the data vary mostly along x (0.873)
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CovarianceState {
    pub n_features: usize,
    pub n: u64,
    pub mean: Vec<f64>,
    pub comoment: Vec<f64>,
}

impl CovarianceState {
    /// The empty state.
    pub fn new(n_features: usize) -> Self {
        CovarianceState {
            n_features,
            n: 0,
            mean: vec![0.0; n_features],
            comoment: vec![0.0; n_features * n_features],
        }
    }

    /// The state of one block (`rows x d`, row-major).
    pub fn partial<T: Real>(block: &[T], d: usize) -> Self {
        let mut acc = CovarianceAccumulator::<T>::new(d);
        acc.push(block);
        acc.finish()
    }

    /// Folds `other` into `self` (Chan, Golub and LeVeque 1979):
    /// `M = Ma + Mb + delta delta^T * na nb / n`, `delta = mean_b - mean_a`.
    pub fn merge(&mut self, other: &CovarianceState) {
        assert_eq!(self.n_features, other.n_features);
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = other.clone();
            return;
        }
        let d = self.n_features;
        let (na, nb) = (self.n as f64, other.n as f64);
        let n = na + nb;
        let delta: Vec<f64> = (0..d).map(|j| other.mean[j] - self.mean[j]).collect();
        let w = na * nb / n;
        for i in 0..d {
            let row = &mut self.comoment[i * d..(i + 1) * d];
            let orow = &other.comoment[i * d..(i + 1) * d];
            let di = delta[i] * w;
            for j in 0..d {
                row[j] += orow[j] + di * delta[j];
            }
        }
        for j in 0..d {
            self.mean[j] += delta[j] * nb / n;
        }
        self.n += other.n;
    }

    /// Sample covariance (`ddof = 1`, as scikit-learn's PCA), `d x d` row-major.
    pub fn covariance(&self) -> Vec<f64> {
        let denom = (self.n.max(2) - 1) as f64;
        self.comoment.iter().map(|c| c / denom).collect()
    }

    /// Top `n_components` principal axes of the covariance.
    ///
    /// # Errors
    /// [`Error::Parameter`] if `n_components` is 0 or exceeds `n_features`, or fewer than 2
    /// rows were seen; [`Error::Numerical`] if the eigensolver fails.
    pub fn finish(&self, n_components: usize) -> Result<Pca> {
        let d = self.n_features;
        check_components(n_components, d)?;
        if self.n < 2 {
            return Err(Error::param(
                "n_samples",
                self.n,
                "is too few: PCA needs at least 2 rows",
            ));
        }
        let cov = self.covariance();
        let total_var: f64 = (0..d).map(|i| cov[i * d + i]).sum();
        let m = Mat::<f64>::from_fn(d, d, |i, j| cov[i * d + j]);
        let evd = m
            .self_adjoint_eigen(Side::Lower)
            .map_err(|e| Error::Numerical(format!("eigendecomposition failed: {e:?}")))?;
        let u = evd.U();
        let s = evd.S();
        let mut components = vec![0.0; n_components * d];
        let mut explained_variance = Vec::with_capacity(n_components);
        for c in 0..n_components {
            let col = d - 1 - c; // eigenvalues are in nondecreasing order
            explained_variance.push(s[col].max(0.0));
            for j in 0..d {
                components[c * d + j] = u[(j, col)];
            }
        }
        Ok(Pca::new(
            self.mean.clone(),
            components,
            explained_variance,
            total_var,
            self.n,
            "exact",
        ))
    }
}

fn check_components(n_components: usize, d: usize) -> Result<()> {
    if n_components == 0 || n_components > d {
        return Err(Error::param(
            "n_components",
            n_components,
            format!("must be between 1 and n_features = {d}"),
        ));
    }
    Ok(())
}

/// Streams rows into a [`CovarianceState`] in chunks aligned to global row indices.
pub struct CovarianceAccumulator<T> {
    state: CovarianceState,
    pending: Vec<T>,
    centered: Vec<T>,
    gram: Vec<T>,
}

impl<T: Real> CovarianceAccumulator<T> {
    /// An accumulator for `d` features.
    pub fn new(d: usize) -> Self {
        CovarianceAccumulator {
            state: CovarianceState::new(d),
            pending: Vec::new(),
            centered: Vec::new(),
            gram: vec![T::ZERO; d * d],
        }
    }

    /// Adds a block of rows (`rows x d`, row-major).
    pub fn push(&mut self, mut block: &[T]) {
        let d = self.state.n_features;
        let chunk = cov_chunk_rows(d) * d;
        if !self.pending.is_empty() {
            let take = (chunk - self.pending.len()).min(block.len());
            self.pending.extend_from_slice(&block[..take]);
            block = &block[take..];
            if self.pending.len() == chunk {
                let pending = std::mem::take(&mut self.pending);
                self.add_chunk(&pending);
                self.pending = pending;
                self.pending.clear();
            }
        }
        while block.len() >= chunk {
            self.add_chunk(&block[..chunk]);
            block = &block[chunk..];
        }
        self.pending.extend_from_slice(block);
    }

    fn add_chunk(&mut self, rows: &[T]) {
        let d = self.state.n_features;
        let m = rows.len() / d;
        if m == 0 {
            return;
        }
        let mut mean = vec![0.0f64; d];
        for r in rows.chunks_exact(d) {
            for (s, &x) in mean.iter_mut().zip(r) {
                *s += x.to_f64();
            }
        }
        mean.iter_mut().for_each(|s| *s /= m as f64);
        let mean_t: Vec<T> = mean.iter().map(|&x| T::from_f64(x)).collect();
        self.centered.clear();
        for r in rows.chunks_exact(d) {
            self.centered
                .extend(r.iter().zip(&mean_t).map(|(&x, &mu)| x - mu));
        }
        syrk_lower_tn(&mut self.gram, &self.centered, d, m, T::ONE, par());
        // Chan et al.'s merge of (m, mean, gram) into the state, on the lower triangle only
        // (the upper one is filled in by `finish`).
        let st = &mut self.state;
        let (na, nb) = (st.n as f64, m as f64);
        let n = na + nb;
        let w = na * nb / n;
        let delta: Vec<f64> = (0..d).map(|j| mean[j] - st.mean[j]).collect();
        for i in 0..d {
            let row = &mut st.comoment[i * d..i * d + i + 1];
            let g = &self.gram[i * d..i * d + i + 1];
            let di = delta[i] * w;
            for j in 0..=i {
                row[j] += g[j].to_f64() + di * delta[j];
            }
        }
        for j in 0..d {
            st.mean[j] += delta[j] * nb / n;
        }
        st.n += m as u64;
    }

    /// Rows seen so far.
    pub fn n_seen(&self) -> u64 {
        self.state.n + (self.pending.len() / self.state.n_features) as u64
    }

    /// Flushes the last partial chunk and returns the state.
    pub fn finish(mut self) -> CovarianceState {
        let pending = std::mem::take(&mut self.pending);
        self.add_chunk(&pending);
        let d = self.state.n_features;
        let c = &mut self.state.comoment;
        for i in 0..d {
            for j in i + 1..d {
                c[i * d + j] = c[j * d + i];
            }
        }
        self.state
    }
}

/// A fitted PCA: `components` is `n_components x n_features` row-major, rows orthonormal,
/// ordered by decreasing explained variance, each with its largest-magnitude entry
/// positive (a deterministic sign, like scikit-learn's `svd_flip`). Fields are private:
/// a fit makes one, and [`Pca::from_parts`] checks given arrays, so every `Pca` can
/// transform without panicking.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Pca {
    n_features: usize,
    n_components: usize,
    mean: Vec<f64>,
    components: Vec<f64>,
    explained_variance: Vec<f64>,
    explained_variance_ratio: Vec<f64>,
    n_samples_seen: u64,
    /// `exact` or `randomized`.
    fit_method: String,
}

impl Pca {
    /// A PCA from given arrays (a saved model, or attributes set by hand in Python):
    /// `mean_` (`n_features`), `components_` (`n_components x n_features`, row-major),
    /// and optionally `explained_variance_` and `explained_variance_ratio_`
    /// (`n_components` each, or empty).
    ///
    /// # Errors
    /// [`Error::Parameter`] naming the attribute whose length disagrees or that holds a
    /// value that is not finite.
    pub fn from_parts(
        mean: Vec<f64>,
        components: Vec<f64>,
        n_components: usize,
        explained_variance: Vec<f64>,
        explained_variance_ratio: Vec<f64>,
        n_samples_seen: u64,
    ) -> Result<Pca> {
        let d = mean.len();
        if d == 0 {
            return Err(Error::param_msg("mean_", "is empty"));
        }
        if n_components == 0 || components.len() != n_components * d {
            return Err(Error::param_msg(
                "components_",
                format!(
                    "has {} values, expected n_components x n_features = {n_components} x {d} (mean_ has {d})",
                    components.len()
                ),
            ));
        }
        for (name, v, want) in [
            ("explained_variance_", &explained_variance, n_components),
            (
                "explained_variance_ratio_",
                &explained_variance_ratio,
                n_components,
            ),
        ] {
            if !v.is_empty() && v.len() != want {
                return Err(Error::param_msg(
                    name,
                    format!("has {} values, expected n_components = {want}", v.len()),
                ));
            }
        }
        if mean.iter().any(|v| !v.is_finite()) {
            return Err(Error::param_msg("mean_", "must be finite"));
        }
        if components.iter().any(|v| !v.is_finite()) {
            return Err(Error::param_msg("components_", "must be finite"));
        }
        Ok(Pca {
            n_features: d,
            n_components,
            mean,
            components,
            explained_variance,
            explained_variance_ratio,
            n_samples_seen,
            fit_method: String::new(),
        })
    }

    /// Input columns `d`.
    pub fn n_features(&self) -> usize {
        self.n_features
    }
    /// Components `D`.
    pub fn n_components(&self) -> usize {
        self.n_components
    }
    /// Per-feature mean (`d`).
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }
    /// `D x d` components, row-major.
    pub fn components(&self) -> &[f64] {
        &self.components
    }
    /// Variance along each component (`D`).
    pub fn explained_variance(&self) -> &[f64] {
        &self.explained_variance
    }
    /// Share of the total variance along each component (`D`).
    pub fn explained_variance_ratio(&self) -> &[f64] {
        &self.explained_variance_ratio
    }
    /// Rows the fit saw.
    pub fn n_samples_seen(&self) -> u64 {
        self.n_samples_seen
    }
    /// `exact`, `randomized`, or empty for a PCA made from parts.
    pub fn fit_method(&self) -> &str {
        &self.fit_method
    }

    fn new(
        mean: Vec<f64>,
        mut components: Vec<f64>,
        explained_variance: Vec<f64>,
        total_var: f64,
        n_samples_seen: u64,
        fit_method: &str,
    ) -> Pca {
        let d = mean.len();
        let k = explained_variance.len();
        for c in components.chunks_exact_mut(d) {
            let (imax, _) = c.iter().enumerate().fold((0, 0.0f64), |acc, (i, &v)| {
                if v.abs() > acc.1 {
                    (i, v.abs())
                } else {
                    acc
                }
            });
            if c[imax] < 0.0 {
                c.iter_mut().for_each(|v| *v = -*v);
            }
        }
        let explained_variance_ratio = explained_variance
            .iter()
            .map(|v| if total_var > 0.0 { v / total_var } else { 0.0 })
            .collect();
        Pca {
            n_features: d,
            n_components: k,
            mean,
            components,
            explained_variance,
            explained_variance_ratio,
            n_samples_seen,
            fit_method: fit_method.to_string(),
        }
    }

    /// Prepares the transform in dtype `T`: `W^T` (`d x D`) and the offset `mu W^T`.
    pub fn transformer<T: Real>(&self) -> PcaTransform<T> {
        let (d, k) = (self.n_features, self.n_components);
        let mut wt = vec![T::ZERO; d * k];
        for c in 0..k {
            for j in 0..d {
                wt[j * k + c] = T::from_f64(self.components[c * d + j]);
            }
        }
        let offset = (0..k)
            .map(|c| {
                T::from_f64(
                    (0..d)
                        .map(|j| self.mean[j] * self.components[c * d + j])
                        .sum::<f64>(),
                )
            })
            .collect();
        PcaTransform {
            n_features: d,
            n_components: k,
            wt,
            offset,
        }
    }
}

/// The transform of a fitted [`Pca`] in dtype `T`. Memory: `d * D * s` bytes.
#[derive(Debug, Clone)]
pub struct PcaTransform<T> {
    pub n_features: usize,
    pub n_components: usize,
    wt: Vec<T>,
    offset: Vec<T>,
}

impl<T: Real> PcaTransform<T> {
    /// `out (rows x D) = block (rows x d) W^T - mu W^T`. No centered copy of `block`.
    ///
    /// # Errors
    /// [`Error::Parameter`] when `block` is not whole rows of `d` or `out` is not
    /// `rows x D`.
    pub fn transform(&self, block: &[T], out: &mut [T]) -> Result<()> {
        let (d, k) = (self.n_features, self.n_components);
        let rows = block.len() / d;
        if !block.len().is_multiple_of(d) || out.len() != rows * k {
            return Err(Error::param_msg(
                "X",
                format!(
                    "{} values are not whole rows of the PCA's n_features = {d} (or the output is not rows x {k})",
                    block.len()
                ),
            ));
        }
        gemm_nn(out, block, &self.wt, rows, k, d, T::ONE, false, par());
        for r in out.chunks_exact_mut(k) {
            for (x, &o) in r.iter_mut().zip(&self.offset) {
                *x -= o;
            }
        }
        Ok(())
    }
}

/// Matryoshka truncation: the first `n_components` columns of each row, then L2
/// renormalization. Returns the index of the first row whose prefix is all zero.
pub fn matryoshka<T: Real>(
    block: &[T],
    d: usize,
    n_components: usize,
    out: &mut [T],
) -> Result<(), usize> {
    for (src, dst) in block
        .chunks_exact(d)
        .zip(out.chunks_exact_mut(n_components))
    {
        dst.copy_from_slice(&src[..n_components]);
    }
    crate::preprocessing::l2_normalize_rows(out, n_components)
}

/// Uniform reservoir sample of `capacity` rows (Vitter's algorithm R), one random draw per
/// row from a seeded generator, so the sample depends only on the seed and the row order.
/// Memory: `capacity * d * s` bytes.
pub struct ReservoirSampler<T> {
    capacity: usize,
    d: usize,
    seen: u64,
    data: Vec<T>,
    rng: rand::rngs::StdRng,
}

impl<T: Real> ReservoirSampler<T> {
    /// A sampler keeping `capacity` rows of `d` features.
    pub fn new(capacity: usize, d: usize, seed: u64) -> Self {
        ReservoirSampler {
            capacity,
            d,
            seen: 0,
            data: Vec::new(),
            rng: rand::rngs::StdRng::seed_from_u64(seed ^ 0x5EED_5A3B_1E00_0001),
        }
    }

    /// Offers every row of `block`.
    pub fn push(&mut self, block: &[T]) {
        let d = self.d;
        for row in block.chunks_exact(d) {
            if (self.seen as usize) < self.capacity {
                if self.data.capacity() == 0 {
                    self.data.reserve_exact(self.capacity * d);
                }
                self.data.extend_from_slice(row);
            } else {
                let j = self.rng.random_range(0..=self.seen);
                if (j as usize) < self.capacity {
                    let j = j as usize;
                    self.data[j * d..(j + 1) * d].copy_from_slice(row);
                }
            }
            self.seen += 1;
        }
    }

    /// Rows offered so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The sample, `min(capacity, seen) x d` row-major.
    pub fn into_sample(self) -> Vec<T> {
        self.data
    }
}

/// Options of [`randomized_pca`], with scikit-learn's defaults.
#[derive(Debug, Clone)]
pub struct RandomizedOptions {
    /// Extra random directions beyond `n_components` (default 10).
    pub n_oversamples: usize,
    /// Power iterations; `None` = 7 if `n_components < 0.1 * min(n, d)`, else 4.
    pub n_iter: Option<usize>,
    pub seed: u64,
}

impl Default for RandomizedOptions {
    fn default() -> Self {
        RandomizedOptions {
            n_oversamples: 10,
            n_iter: None,
            seed: 0,
        }
    }
}

/// PCA of `sample` (`n x d` row-major) by randomized SVD (Halko, Martinsson and Tropp 2011,
/// algorithm 4.4 with QR re-orthonormalization between power iterations).
///
/// The sample is centered implicitly with `moments.mean` (the mean of *all* rows, from the
/// same pass): `A = S - 1 mu^T`, so `A Q = S Q - 1 (mu^T Q)` and `A^T Q = S^T Q - mu (1^T Q)`.
/// Explained variance is `sigma^2 / (n - 1)`; ratios are relative to the total variance of
/// all rows (`moments`). `n_samples_seen` is `moments.n`.
pub fn randomized_pca<T: Real>(
    sample: &[T],
    d: usize,
    moments: &Moments,
    n_components: usize,
    opts: &RandomizedOptions,
) -> Result<Pca> {
    check_components(n_components, d)?;
    if !sample.len().is_multiple_of(d) {
        return Err(Error::param_msg(
            "X",
            format!("{} values are not whole rows of {d} features", sample.len()),
        ));
    }
    if moments.mean.len() != d || moments.m2.len() != d {
        return Err(Error::param_msg(
            "moments",
            format!(
                "have {} means and {} second moments for {d} features",
                moments.mean.len(),
                moments.m2.len()
            ),
        ));
    }
    let n = sample.len() / d;
    if n < 2 {
        return Err(Error::param_msg(
            "X",
            "randomized PCA needs a sample of at least 2 rows",
        ));
    }
    let l = (n_components + opts.n_oversamples).min(d).min(n);
    if l < n_components {
        return Err(Error::param(
            "n_components",
            n_components,
            format!("is too many for a sample of {n} rows"),
        ));
    }
    let n_iter = opts
        .n_iter
        .unwrap_or(if (n_components as f64) < 0.1 * (n.min(d) as f64) {
            7
        } else {
            4
        });
    let mean_t: Vec<T> = moments.mean.iter().map(|&x| T::from_f64(x)).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed ^ 0x0DD5_EED5_0F5D_0002);
    // Omega: d x l standard normal.
    let mut omega: Vec<T> = (0..d * l)
        .map(|_| T::from_f64(rng.sample::<f64, _>(StandardNormal)))
        .collect();
    let mut y = vec![T::ZERO; n * l];
    // y = A omega (n x l) = S omega - 1 (mu^T omega)
    let apply_a = |x: &[T], y: &mut [T]| {
        gemm_nn_rows(y, sample, x, n, l, d);
        let shift: Vec<T> = (0..l)
            .map(|c| {
                T::from_f64(
                    (0..d)
                        .map(|j| mean_t[j].to_f64() * x[j * l + c].to_f64())
                        .sum(),
                )
            })
            .collect();
        for r in y.chunks_exact_mut(l) {
            for (v, &s) in r.iter_mut().zip(&shift) {
                *v -= s;
            }
        }
    };
    // z = A^T q (d x l) = S^T q - mu (1^T q)
    let apply_at = |q: &[T], z: &mut [T]| {
        gemm_tn_rows(z, sample, q, d, l, n);
        let colsum: Vec<f64> = (0..l)
            .map(|c| (0..n).map(|i| q[i * l + c].to_f64()).sum())
            .collect();
        for j in 0..d {
            for c in 0..l {
                z[j * l + c] -= T::from_f64(mean_t[j].to_f64() * colsum[c]);
            }
        }
    };
    apply_a(&omega, &mut y);
    orthonormalize(&mut y, n, l);
    for _ in 0..n_iter {
        apply_at(&y, &mut omega);
        orthonormalize(&mut omega, d, l);
        apply_a(&omega, &mut y);
        orthonormalize(&mut y, n, l);
    }
    // B^T = A^T Q (d x l); SVD of B = U S V^T, so B^T = V S U^T.
    apply_at(&y, &mut omega);
    drop(y);
    let bt = Mat::<f64>::from_fn(d, l, |i, j| omega[i * l + j].to_f64());
    let (u, s, _) = crate::linalg::thin_svd(bt.as_ref())
        .map_err(|e| Error::Numerical(format!("SVD failed: {e}")))?;
    // bt = U_bt S V_bt^T; the principal axes are the columns of U_bt (d x l).
    let mut order: Vec<usize> = (0..l).collect();
    order.sort_by(|&a, &b| s[b].partial_cmp(&s[a]).unwrap_or(std::cmp::Ordering::Equal));
    let mut components = vec![0.0; n_components * d];
    let mut explained_variance = Vec::with_capacity(n_components);
    for (c, &k) in order.iter().take(n_components).enumerate() {
        explained_variance.push(s[k] * s[k] / (n as f64 - 1.0));
        for j in 0..d {
            components[c * d + j] = u[(j, k)];
        }
    }
    let total_var: f64 = moments.sample_var().iter().sum();
    Ok(Pca::new(
        moments.mean.clone(),
        components,
        explained_variance,
        total_var,
        moments.n,
        "randomized",
    ))
}
