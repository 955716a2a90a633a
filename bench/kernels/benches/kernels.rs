//! Micro-benchmarks of embedcluster's kernels, each next to faer's float32 GEMM of the same
//! shape run in the same process (the machine's matrix-multiply rate, our roofline).
//! Throughput is reported as elements/s where one element is one flop, so criterion's
//! "Gelem/s" reads as GFLOP/s.
//!
//!   cargo bench --manifest-path bench/kernels/Cargo.toml [-- FILTER]
//!
//! Threads: `RAYON_NUM_THREADS` (default: all cores).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use embedcluster::cluster::{fit, Init, KMeans, KMeansParams, Metric};
use embedcluster::decomposition::CovarianceAccumulator;
use embedcluster::linalg::Distance;
use embedcluster::neighbors::knn;
use faer::{Accum, MatMut, MatRef, Par};
use std::hint::black_box;
use std::time::Duration;

/// Deterministic data in [-1, 1) (a 64-bit LCG), with a few cluster offsets so that the
/// assignment is not degenerate.
fn data(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let offsets: Vec<f32> = (0..16 * d).map(|_| 3.0 * next()).collect();
    let mut x = Vec::with_capacity(n * d);
    for i in 0..n {
        let o = &offsets[(i % 16) * d..(i % 16 + 1) * d];
        x.extend(o.iter().map(|&c| c + next()));
    }
    x
}

/// faer's GEMM `C (m x n) = A (m x k) B^T (k x n)`, the reference rate.
fn gemm(c: &mut [f32], a: &[f32], b: &[f32], m: usize, n: usize, k: usize) {
    let cm = MatMut::from_row_major_slice_mut(c, m, n);
    let am = MatRef::from_row_major_slice(a, m, k);
    let bm = MatRef::from_row_major_slice(b, n, k).transpose();
    faer::linalg::matmul::matmul(cm, Accum::Replace, am, bm, 1.0f32, Par::rayon(0));
}

fn assignment(c: &mut Criterion) {
    let mut g = c.benchmark_group("assign");
    g.measurement_time(Duration::from_secs(5)).sample_size(10);
    for &(n, d, k) in &[(100_000, 128, 256), (100_000, 32, 64), (100_000, 2, 8), (100_000, 16, 64)] {
        let x = data(n, d, 1);
        let centers: Vec<f32> = x[..k * d].to_vec();
        let model = KMeans::from_centers(centers.clone(), k, Metric::Euclidean);
        g.throughput(Throughput::Elements((2 * n * k * d) as u64));
        let shape = format!("n{n}_d{d}_k{k}");
        g.bench_with_input(BenchmarkId::new("embedcluster_argmin", &shape), &x, |bch, x| {
            bch.iter(|| black_box(model.predict(x)))
        });
        // the distance GEMM alone, writing the n x k matrix we never build (the roofline)
        let mut out = vec![0.0f32; n * k];
        g.bench_with_input(BenchmarkId::new("faer_gemm_n_x_k", &shape), &x, |bch, x| {
            bch.iter(|| gemm(&mut out, x, &centers, n, k, d))
        });
    }
    g.finish();
}

fn lloyd(c: &mut Criterion) {
    let mut g = c.benchmark_group("lloyd");
    g.measurement_time(Duration::from_secs(8)).sample_size(10);
    for &(n, d, k) in &[(100_000, 128, 256), (100_000, 32, 64), (100_000, 2, 8), (10_000, 2, 8), (10_000, 32, 64)] {
        let x = data(n, d, 2);
        let init: Vec<f64> = x[..k * d].iter().map(|&v| v as f64).collect();
        let iters = 5;
        let params = KMeansParams {
            n_clusters: k,
            metric: Metric::Euclidean,
            init: Init::Centroids(init),
            n_init: 1,
            max_iter: iters,
            tol: 0.0,
            seed: 0,
        };
        // at most `iters` assignment passes plus the final one
        g.throughput(Throughput::Elements((2 * n * k * d * (iters + 1)) as u64));
        g.bench_with_input(BenchmarkId::new("embedcluster", format!("n{n}_d{d}_k{k}")), &x, |bch, x| {
            bch.iter(|| black_box(fit(&params, x, d).unwrap().inertia))
        });
    }
    g.finish();
}

fn neighbours(c: &mut Criterion) {
    let mut g = c.benchmark_group("knn");
    g.measurement_time(Duration::from_secs(8)).sample_size(10);
    let (nb, nq, d, k) = (20_000, 1_000, 768, 100);
    let base = data(nb, d, 3);
    let queries = data(nq, d, 4);
    g.throughput(Throughput::Elements((2 * nb * nq * d) as u64));
    g.bench_function("embedcluster_top100_l2", |bch| {
        bch.iter(|| black_box(knn(&base, &queries, d, k, Distance::SqEuclidean, false).unwrap()))
    });
    let mut out = vec![0.0f32; nq * nb];
    g.bench_function("faer_gemm_q_x_base", |bch| bch.iter(|| gemm(&mut out, &queries, &base, nq, nb, d)));
    g.finish();
}

fn covariance(c: &mut Criterion) {
    let mut g = c.benchmark_group("covariance");
    g.measurement_time(Duration::from_secs(8)).sample_size(10);
    let (n, d) = (16_384, 1536);
    let x = data(n, d, 5);
    // the lower half of X^T X: n d^2 flops
    g.throughput(Throughput::Elements((n * d * d) as u64));
    g.bench_function("embedcluster_streaming_exact", |bch| {
        bch.iter(|| {
            let mut acc = CovarianceAccumulator::<f32>::new(d);
            acc.push(&x);
            black_box(acc.finish())
        })
    });
    let mut out = vec![0.0f32; d * d];
    g.throughput(Throughput::Elements((2 * n * d * d) as u64));
    g.bench_function("faer_gemm_full_xtx", |bch| {
        bch.iter(|| {
            let cm = MatMut::from_row_major_slice_mut(&mut out, d, d);
            let xm = MatRef::from_row_major_slice(&x, n, d);
            faer::linalg::matmul::matmul(cm, Accum::Replace, xm.transpose(), xm, 1.0f32, Par::rayon(0));
        })
    });
    g.finish();
}

criterion_group!(kernels, assignment, lloyd, neighbours, covariance);
criterion_main!(kernels);
