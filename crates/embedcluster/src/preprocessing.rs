//! Row normalization and mergeable per-feature moments.

use crate::dtype::Real;

/// Scales each row of `data` (`rows x d`, row-major) to unit L2 norm, in place.
///
/// Norms are accumulated in f64. Peak memory: none beyond the input.
///
/// # Example
/// ```
/// use embedcluster::preprocessing::l2_normalize_rows;
/// let mut x = [3.0f32, 4.0, 0.0, 2.0];
/// l2_normalize_rows(&mut x, 2).unwrap();
/// assert_eq!(x, [0.6, 0.8, 0.0, 1.0]);
/// assert_eq!(l2_normalize_rows(&mut [1.0f32, 0.0, 0.0, 0.0], 2), Err(1)); // row 1 is zero
/// ```
///
/// # Errors
/// Returns the index (within `data`) of the first all-zero row, which has no direction;
/// rows before it have been normalized.
pub fn l2_normalize_rows<T: Real>(data: &mut [T], d: usize) -> Result<(), usize> {
    for (i, row) in data.chunks_exact_mut(d).enumerate() {
        let sq: f64 = row.iter().map(|&x| x.to_f64() * x.to_f64()).sum();
        if sq <= 0.0 || !sq.is_finite() {
            return Err(i);
        }
        let inv = T::from_f64(1.0 / sq.sqrt());
        for x in row.iter_mut() {
            *x *= inv;
        }
    }
    Ok(())
}

/// Per-feature count, mean and sum of squared deviations (M2), in f64, mergeable with
/// Chan, Golub and LeVeque's (1979) pairwise update, so that any split of the rows into
/// blocks gives the same moments up to rounding. Memory: `2 * d` f64.
#[derive(Debug, Clone, PartialEq)]
pub struct Moments {
    pub n: u64,
    pub mean: Vec<f64>,
    pub m2: Vec<f64>,
}

impl Moments {
    /// Empty moments for `d` features.
    pub fn new(d: usize) -> Self {
        Moments {
            n: 0,
            mean: vec![0.0; d],
            m2: vec![0.0; d],
        }
    }

    /// Moments of one block (`rows x d`), two passes over the block (mean, then M2). The
    /// mean is taken of the values shifted by the block's first row, so a column whose
    /// values are all equal has exactly that mean and `m2 = 0` (and keeps them through
    /// [`Moments::merge`]): scikit-learn's `var_ == 0` for constant features.
    pub fn partial<T: Real>(block: &[T], d: usize) -> Self {
        let rows = block.len() / d;
        let mut m = Moments::new(d);
        if rows == 0 {
            return m;
        }
        m.n = rows as u64;
        let first: Vec<f64> = block[..d].iter().map(|v| v.to_f64()).collect();
        // a spilled matrix's pages are let go as they are read (no-op in memory)
        let mut release = crate::memory::PageReleaser::new(block);
        for (i, row) in block.chunks_exact(d).enumerate() {
            for ((s, &x), x0) in m.mean.iter_mut().zip(row).zip(&first) {
                *s += x.to_f64() - x0;
            }
            if i % 1024 == 1023 {
                release.consumed::<T>((i + 1) * d);
            }
        }
        release.consumed::<T>(block.len());
        for (s, x0) in m.mean.iter_mut().zip(&first) {
            *s = x0 + *s / rows as f64;
        }
        let mut release = crate::memory::PageReleaser::new(block);
        for (i, row) in block.chunks_exact(d).enumerate() {
            for ((q, &x), mu) in m.m2.iter_mut().zip(row).zip(&m.mean) {
                let dx = x.to_f64() - mu;
                *q += dx * dx;
            }
            if i % 1024 == 1023 {
                release.consumed::<T>((i + 1) * d);
            }
        }
        release.consumed::<T>(block.len());
        m
    }

    /// Folds `other` into `self` (Chan, Golub and LeVeque 1979).
    pub fn merge(&mut self, other: &Moments) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = other.clone();
            return;
        }
        let (na, nb) = (self.n as f64, other.n as f64);
        let n = na + nb;
        for j in 0..self.mean.len() {
            let delta = other.mean[j] - self.mean[j];
            self.mean[j] += delta * nb / n;
            self.m2[j] += other.m2[j] + delta * delta * na * nb / n;
        }
        self.n += other.n;
    }

    /// Population variance per feature (`ddof = 0`, as scikit-learn's `StandardScaler.var_`).
    pub fn var(&self) -> Vec<f64> {
        let n = self.n.max(1) as f64;
        self.m2.iter().map(|q| q / n).collect()
    }

    /// Sample variance per feature (`ddof = 1`).
    pub fn sample_var(&self) -> Vec<f64> {
        let n = (self.n.max(2) - 1) as f64;
        self.m2.iter().map(|q| q / n).collect()
    }
}

/// Streams rows into [`Moments`] in chunks of [`MOMENT_CHUNK_ROWS`] rows aligned to the
/// rows' position in the stream, so the result is the same bit for bit whatever the block
/// sizes are (each chunk's moments are computed whole, then merged in order).
/// Memory: one pending chunk, `MOMENT_CHUNK_ROWS * d` values.
pub struct MomentsAccumulator<T> {
    d: usize,
    state: Moments,
    pending: Vec<T>,
}

/// Rows per chunk of [`MomentsAccumulator`].
pub const MOMENT_CHUNK_ROWS: usize = 1024;

impl<T: Real> MomentsAccumulator<T> {
    /// An accumulator for `d` features.
    pub fn new(d: usize) -> Self {
        MomentsAccumulator {
            d,
            state: Moments::new(d),
            pending: Vec::new(),
        }
    }

    /// Adds rows (`rows x d`, row-major).
    pub fn push(&mut self, mut block: &[T]) {
        let chunk = MOMENT_CHUNK_ROWS * self.d;
        if !self.pending.is_empty() {
            let take = (chunk - self.pending.len()).min(block.len());
            self.pending.extend_from_slice(&block[..take]);
            block = &block[take..];
            if self.pending.len() == chunk {
                self.state.merge(&Moments::partial(&self.pending, self.d));
                self.pending.clear();
            }
        }
        while block.len() >= chunk {
            self.state.merge(&Moments::partial(&block[..chunk], self.d));
            block = &block[chunk..];
        }
        self.pending.extend_from_slice(block);
    }

    /// Merges the last partial chunk and returns the moments.
    pub fn finish(mut self) -> Moments {
        if !self.pending.is_empty() {
            self.state.merge(&Moments::partial(&self.pending, self.d));
        }
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_are_the_same_bits_for_any_block_split() {
        let d = 3;
        let x: Vec<f32> = (0..5000 * d)
            .map(|i| ((i * 7919) % 1013) as f32 * 0.37 + 1e4)
            .collect();
        let run = |b: usize| {
            let mut acc = MomentsAccumulator::new(d);
            for block in x.chunks(b * d) {
                acc.push(block);
            }
            acc.finish()
        };
        let one = run(5000);
        for b in [1, 7, 1000, 1024, 3333] {
            assert_eq!(run(b), one, "block {b}");
        }
        let naive_mean: f64 = x.iter().step_by(d).map(|&v| v as f64).sum::<f64>() / 5000.0;
        assert!((one.mean[0] - naive_mean).abs() < 1e-9);
    }

    #[test]
    fn normalize_gives_unit_rows_and_reports_zero_rows() {
        let mut a = vec![3.0f32, 4.0, 0.0, 1.0, 1.0, 1.0];
        l2_normalize_rows(&mut a, 3).unwrap();
        for r in a.chunks(3) {
            let n: f32 = r.iter().map(|x| x * x).sum();
            assert!((n - 1.0).abs() < 1e-6);
        }
        assert!((a[0] - 0.6).abs() < 1e-7);
        let mut z = vec![1.0f64, 0.0, 0.0, 0.0];
        assert_eq!(l2_normalize_rows(&mut z, 2), Err(1));
    }

    #[test]
    fn moments_merge_equals_one_shot_far_from_zero() {
        // Mean 1e6 and unit spread: the naive sum-of-squares formula loses everything here.
        let d = 3;
        let data: Vec<f64> = (0..300)
            .map(|i| 1e6 + ((i * 7919) % 101) as f64 / 10.0)
            .collect();
        let one = Moments::partial(&data, d);
        for split in [1, 7, 50, 99] {
            let mut m = Moments::new(d);
            for chunk in data.chunks(split * d) {
                m.merge(&Moments::partial(chunk, d));
            }
            assert_eq!(m.n, one.n);
            for j in 0..d {
                assert!((m.mean[j] - one.mean[j]).abs() < 1e-7);
                assert!(
                    (m.m2[j] - one.m2[j]).abs() / one.m2[j] < 1e-9,
                    "split {split}"
                );
            }
        }
        // against the textbook two-pass formula
        for j in 0..d {
            let col: Vec<f64> = data.iter().skip(j).step_by(d).copied().collect();
            let mu = col.iter().sum::<f64>() / col.len() as f64;
            let m2: f64 = col.iter().map(|x| (x - mu) * (x - mu)).sum();
            assert!((one.m2[j] - m2).abs() / m2 < 1e-9);
        }
    }
}

/// scikit-learn's `StandardScaler` statistics from merged [`Moments`]: `mean_`, `var_`
/// (population) and `scale_ = sqrt(var_)`, with 1 for features that are constant up to
/// rounding (`var <= n eps var + (n mean eps)^2`, scikit-learn's `_is_constant_feature`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StandardScaler {
    pub n_samples_seen: u64,
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
    pub scale: Vec<f64>,
    pub with_mean: bool,
    pub with_std: bool,
}

impl StandardScaler {
    /// Finishes a fit from merged moments.
    pub fn from_moments(m: &Moments, with_mean: bool, with_std: bool) -> Self {
        let var = m.var();
        let n = m.n as f64;
        let eps = f64::EPSILON;
        let scale = var
            .iter()
            .zip(&m.mean)
            .map(|(&v, &mu)| {
                let bound = n * eps * v + (n * mu * eps).powi(2);
                if v <= bound {
                    1.0
                } else {
                    v.sqrt()
                }
            })
            .collect();
        StandardScaler {
            n_samples_seen: m.n,
            mean: m.mean.clone(),
            var,
            scale,
            with_mean,
            with_std,
        }
    }

    /// Standardizes rows in place: `(x - mean) / scale`, each value computed in f64 and
    /// rounded once (as numpy does for a float32 array and float64 statistics).
    pub fn transform_in_place<T: Real>(&self, block: &mut [T]) {
        let d = self.mean.len();
        let inv: Vec<f64> = self
            .scale
            .iter()
            .map(|s| if self.with_std { 1.0 / s } else { 1.0 })
            .collect();
        for row in block.chunks_exact_mut(d) {
            for ((x, mu), iv) in row.iter_mut().zip(&self.mean).zip(&inv) {
                let c = if self.with_mean {
                    x.to_f64() - mu
                } else {
                    x.to_f64()
                };
                *x = T::from_f64(if self.with_std { c * iv } else { c });
            }
        }
    }
}
