//! Row normalization and mergeable per-feature moments.

use crate::real::Real;

/// Scales each row of `data` (`rows x d`, row-major) to unit L2 norm, in place.
///
/// Norms are accumulated in f64. Peak memory: none beyond the input.
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

    /// Moments of one block (`rows x d`), two passes over the block (mean, then M2).
    pub fn partial<T: Real>(block: &[T], d: usize) -> Self {
        let rows = block.len() / d;
        let mut m = Moments::new(d);
        if rows == 0 {
            return m;
        }
        m.n = rows as u64;
        for row in block.chunks_exact(d) {
            for (s, &x) in m.mean.iter_mut().zip(row) {
                *s += x.to_f64();
            }
        }
        m.mean.iter_mut().for_each(|s| *s /= rows as f64);
        for row in block.chunks_exact(d) {
            for ((q, &x), mu) in m.m2.iter_mut().zip(row).zip(&m.mean) {
                let dx = x.to_f64() - mu;
                *q += dx * dx;
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
