//! Thin wrappers over faer's GEMM for row-major slices.
//!
//! All matrices in this crate are row-major `&[T]` with explicit shapes; these helpers view
//! them as faer matrices without copying.

use crate::real::Real;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// Parallelism for a GEMM issued from the calling thread: all threads of the current rayon
/// pool, or sequential when the pool has one thread.
pub fn par() -> Par {
    let n = rayon::current_num_threads();
    if n > 1 {
        Par::rayon(n)
    } else {
        Par::Seq
    }
}

fn accum(accumulate: bool) -> Accum {
    if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    }
}

/// `C (m x n) [+]= alpha * A (m x k) * B^T`, with `B` given as `n x k` (row-major).
pub fn gemm_nt<T: Real>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    accumulate: bool,
    par: Par,
) {
    debug_assert_eq!(c.len(), m * n);
    let cm = MatMut::from_row_major_slice_mut(c, m, n);
    let am = MatRef::from_row_major_slice(a, m, k);
    let bm = MatRef::from_row_major_slice(b, n, k).transpose();
    matmul(cm, accum(accumulate), am, bm, alpha, par);
}

/// `C (m x n) [+]= alpha * A (m x k) * B (k x n)`, all row-major.
pub fn gemm_nn<T: Real>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    accumulate: bool,
    par: Par,
) {
    let cm = MatMut::from_row_major_slice_mut(c, m, n);
    let am = MatRef::from_row_major_slice(a, m, k);
    let bm = MatRef::from_row_major_slice(b, k, n);
    matmul(cm, accum(accumulate), am, bm, alpha, par);
}

/// `C (m x n) [+]= alpha * A^T * B`, with `A` given as `k x m` and `B` as `k x n` (row-major).
pub fn gemm_tn<T: Real>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    accumulate: bool,
    par: Par,
) {
    let cm = MatMut::from_row_major_slice_mut(c, m, n);
    let am = MatRef::from_row_major_slice(a, k, m).transpose();
    let bm = MatRef::from_row_major_slice(b, k, n);
    matmul(cm, accum(accumulate), am, bm, alpha, par);
}

/// Lower triangle (with diagonal) of `C (m x m) = alpha * A^T A`, with `A` given as `k x m`
/// row-major (a symmetric rank-k update: half the flops of [`gemm_tn`]). The strict upper
/// triangle of `c` is left untouched; read it from the lower one.
pub fn syrk_lower_tn<T: Real>(c: &mut [T], a: &[T], m: usize, k: usize, alpha: T, par: Par) {
    use faer::linalg::matmul::triangular::{matmul as tri, BlockStructure};
    let cm = MatMut::from_row_major_slice_mut(c, m, m);
    let at = MatRef::from_row_major_slice(a, k, m).transpose();
    let am = MatRef::from_row_major_slice(a, k, m);
    tri(
        cm,
        BlockStructure::TriangularLower,
        Accum::Replace,
        at,
        BlockStructure::Rectangular,
        am,
        BlockStructure::Rectangular,
        alpha,
        par,
    );
}

/// Squared L2 norm of each row of `a` (`rows x d`), accumulated in f64.
pub fn row_sq_norms<T: Real>(a: &[T], d: usize, out: &mut Vec<T>) {
    out.clear();
    out.extend(
        a.chunks_exact(d)
            .map(|r| T::from_f64(r.iter().map(|&x| x.to_f64() * x.to_f64()).sum::<f64>())),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, n: usize, k: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn gemm_variants_match_naive() {
        let (m, n, k) = (7, 5, 11);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.91).cos()).collect();
        let want = naive(&a, &b, m, n, k);
        let mut c = vec![0.0; m * n];
        gemm_nn(&mut c, &a, &b, m, n, k, 1.0, false, Par::Seq);
        assert!(c.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-12));
        // B^T given as n x k
        let bt: Vec<f64> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        gemm_nt(&mut c, &a, &bt, m, n, k, 1.0, false, Par::Seq);
        assert!(c.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-12));
        // A^T given as k x m
        let at: Vec<f64> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        gemm_tn(&mut c, &at, &b, m, n, k, 2.0, false, Par::Seq);
        assert!(c
            .iter()
            .zip(&want)
            .all(|(x, y)| (x - 2.0 * y).abs() < 1e-12));
    }
}
