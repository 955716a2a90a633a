//! Dense linear algebra for row-major slices: thin wrappers over faer's GEMM, the
//! [`Distance`] enum every algorithm shares, and the SIMD micro-kernels
//! ([`kernels`]: fused float32 assignment with argmin / top-2 in registers).
//!
//! All matrices in this crate are row-major `&[T]` with explicit shapes; these helpers view
//! them as faer matrices without copying.

pub mod distance;
pub(crate) mod kernels;

pub use distance::Distance;

use crate::dtype::Real;
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

/// `sum v^2` in float64 with eight partial sums over the values in a fixed order (the
/// same bits on every machine and thread count; eight chains, where one would wait on the
/// add latency).
pub fn sq_norm_f64<T: Real>(v: &[T]) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            let x = c[l].to_f64();
            acc[l] += x * x;
        }
    }
    let mut t = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for &x in chunks.remainder() {
        t += x.to_f64() * x.to_f64();
    }
    t
}

/// Squared L2 norm of each row of `a` (`rows x d`), accumulated in f64 ([`sq_norm_f64`]).
pub fn row_sq_norms<T: Real>(a: &[T], d: usize, out: &mut Vec<T>) {
    out.clear();
    let mut release = crate::memory::PageReleaser::new(a);
    for (i, r) in a.chunks_exact(d).enumerate() {
        out.push(T::from_f64(sq_norm_f64(r)));
        if i % 1024 == 1023 {
            release.consumed::<T>((i + 1) * d);
        }
    }
    release.consumed::<T>(a.len());
}

/// Replaces the columns of `a` (`rows x cols`, row-major, `rows >= cols`) by an orthonormal
/// basis of their span: the thin `Q` of a Householder QR (faer), computed sequentially.
/// faer's parallel Householder updates reduce in an order that depends on the thread count,
/// and our results must not. Memory: one `rows x cols` matrix besides `a`.
pub fn orthonormalize<T: Real>(a: &mut [T], rows: usize, cols: usize) {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::householder::{
        apply_block_householder_sequence_on_the_left_in_place_scratch,
        apply_block_householder_sequence_on_the_left_in_place_with_conj,
    };
    use faer::linalg::qr::no_pivoting::factor;
    debug_assert!(rows >= cols && a.len() == rows * cols);
    let mut qr = faer::Mat::<T>::from_fn(rows, cols, |i, j| a[i * cols + j]);
    let bs = factor::recommended_block_size::<T>(rows, cols);
    let mut coeff = faer::Mat::<T>::zeros(bs, cols);
    factor::qr_in_place(
        qr.as_mut(),
        coeff.as_mut(),
        Par::Seq,
        MemStack::new(&mut MemBuffer::new(factor::qr_in_place_scratch::<T>(
            rows,
            cols,
            bs,
            Par::Seq,
            Default::default(),
        ))),
        Default::default(),
    );
    // the Householder basis: the strictly lower part, with a unit diagonal
    for j in 0..cols {
        for i in 0..j {
            qr[(i, j)] = T::ZERO;
        }
        qr[(j, j)] = T::ONE;
    }
    // Q is formed in `a`'s own storage (column-major), then the factor's storage, no
    // longer needed, turns it back into row-major: one `rows x cols` matrix besides `a`.
    a.fill(T::ZERO);
    {
        let mut q = MatMut::from_column_major_slice_mut(a, rows, cols);
        for j in 0..cols {
            q[(j, j)] = T::ONE;
        }
        apply_block_householder_sequence_on_the_left_in_place_with_conj(
            qr.as_ref(),
            coeff.as_ref(),
            faer::Conj::No,
            q,
            Par::Seq,
            MemStack::new(&mut MemBuffer::new(
                apply_block_householder_sequence_on_the_left_in_place_scratch::<T>(rows, bs, cols),
            )),
        );
    }
    let mut t = qr;
    t.as_mut()
        .copy_from(MatRef::from_column_major_slice(a, rows, cols));
    for i in 0..rows {
        for j in 0..cols {
            a[i * cols + j] = t[(i, j)];
        }
    }
}

/// `(U, S, V)` of [`thin_svd`].
pub type ThinSvd = (faer::Mat<f64>, Vec<f64>, faer::Mat<f64>);

/// Thin SVD of a small dense `m x n` f64 matrix, sequentially (see [`orthonormalize`]):
/// returns `(U (m x min), S (min), V (n x min))`, S nonincreasing.
///
/// # Errors
/// The message of faer's error when the SVD does not converge.
pub fn thin_svd(a: faer::MatRef<'_, f64>) -> Result<ThinSvd, String> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::svd::{svd, svd_scratch, ComputeSvdVectors};
    let (m, n) = a.shape();
    let size = m.min(n);
    let mut u = faer::Mat::<f64>::zeros(m, size);
    let mut v = faer::Mat::<f64>::zeros(n, size);
    let mut s = faer::diag::Diag::<f64>::zeros(size);
    svd(
        a,
        s.as_mut(),
        Some(u.as_mut()),
        Some(v.as_mut()),
        Par::Seq,
        MemStack::new(&mut MemBuffer::new(svd_scratch::<f64>(
            m,
            n,
            ComputeSvdVectors::Thin,
            ComputeSvdVectors::Thin,
            Par::Seq,
            Default::default(),
        ))),
        Default::default(),
    )
    .map_err(|e| format!("{e:?}"))?;
    let s = (0..size).map(|i| s[i]).collect();
    Ok((u, s, v))
}

/// Rows per task of the deterministic parallel GEMMs below: a constant, so that the
/// order of every floating-point sum depends only on the shapes, never on the threads.
pub const ROW_CHUNK: usize = 4096;

/// `C (m x n) = A (m x k) B (k x n)`, all row-major, parallel over fixed chunks of
/// [`ROW_CHUNK`] rows of `A` and `C` (each a sequential GEMM): the same bits for any
/// number of threads.
pub fn gemm_nn_rows<T: Real>(c: &mut [T], a: &[T], b: &[T], m: usize, n: usize, k: usize) {
    use rayon::prelude::*;
    debug_assert_eq!(c.len(), m * n);
    c.par_chunks_mut(ROW_CHUNK * n.max(1))
        .zip(a.par_chunks(ROW_CHUNK * k.max(1)))
        .for_each(|(cc, aa)| {
            let rows = cc.len() / n.max(1);
            gemm_nn(cc, aa, b, rows, n, k, T::ONE, false, Par::Seq);
        });
}

/// `C (m x n) = A^T B` with `A` given as `k x m` and `B` as `k x n` (row-major): the depth
/// `k` is split into fixed chunks of [`ROW_CHUNK`] rows, each a sequential GEMM in
/// parallel, and the partial products are added in chunk order: the same bits for any
/// number of threads. Memory: `ceil(k / ROW_CHUNK) * m * n` values.
pub fn gemm_tn_rows<T: Real>(c: &mut [T], a: &[T], b: &[T], m: usize, n: usize, _k: usize) {
    use rayon::prelude::*;
    debug_assert_eq!(c.len(), m * n);
    let partial: Vec<Vec<T>> = a
        .par_chunks(ROW_CHUNK * m.max(1))
        .zip(b.par_chunks(ROW_CHUNK * n.max(1)))
        .map(|(aa, bb)| {
            let rows = aa.len() / m.max(1);
            let mut p = vec![T::ZERO; m * n];
            gemm_tn(&mut p, aa, bb, m, n, rows, T::ONE, false, Par::Seq);
            p
        })
        .collect();
    c.iter_mut().for_each(|v| *v = T::ZERO);
    for p in partial {
        c.iter_mut().zip(&p).for_each(|(x, &y)| *x += y);
    }
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
