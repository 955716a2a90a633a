#![allow(clippy::needless_range_loop, clippy::type_complexity)]
//! PCA against a naive covariance and a Jacobi eigendecomposition; streaming invariants.

mod common;
use common::*;
use embedcluster::decomposition::{
    matryoshka, randomized_pca, CovarianceAccumulator, CovarianceState, RandomizedOptions,
    ReservoirSampler,
};
use embedcluster::preprocessing::Moments;

fn naive_cov(x: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = x.len() / d;
    let mut mean = vec![0.0; d];
    for r in x.chunks(d) {
        for j in 0..d {
            mean[j] += r[j] / n as f64;
        }
    }
    let mut c = vec![0.0; d * d];
    for r in x.chunks(d) {
        for i in 0..d {
            for j in 0..d {
                c[i * d + j] += (r[i] - mean[i]) * (r[j] - mean[j]) / (n as f64 - 1.0);
            }
        }
    }
    (mean, c)
}

/// Cyclic Jacobi eigenvalue algorithm: (eigenvalues descending, eigenvectors as rows).
fn jacobi_eigen(a: &[f64], d: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; d * d];
    (0..d).for_each(|i| v[i * d + i] = 1.0);
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).map(move |j| (i, j)))
            .filter(|(i, j)| i != j)
            .map(|(i, j)| a[i * d + j].powi(2))
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut idx: Vec<usize> = (0..d).collect();
    idx.sort_by(|&i, &j| a[j * d + j].partial_cmp(&a[i * d + i]).unwrap());
    let vals = idx.iter().map(|&i| a[i * d + i]).collect();
    let vecs = idx
        .iter()
        .map(|&i| (0..d).map(|k| v[k * d + i]).collect())
        .collect();
    (vals, vecs)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn exact_pca_matches_naive_covariance_and_eigendecomposition() {
    let (n, d) = (2500, 9);
    // mean far from zero: 1e4 on every feature
    let x = anisotropic(n, d, 1e4, 1);
    let (mean, cov) = naive_cov(&x, d);
    let state = CovarianceState::partial(&x, d);
    let got = state.covariance();
    let scale = cov.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (a, b) in got.iter().zip(&cov) {
        assert!((a - b).abs() <= 1e-10 * scale, "{a} vs {b}");
    }
    for (a, b) in state.mean.iter().zip(&mean) {
        assert!((a - b).abs() < 1e-9);
    }
    let pca = state.finish(5).unwrap();
    let (vals, vecs) = jacobi_eigen(&cov, d);
    let total: f64 = vals.iter().sum();
    for c in 0..5 {
        assert!(
            (pca.explained_variance()[c] - vals[c]).abs() <= 1e-9 * vals[0],
            "eigenvalue {c}"
        );
        assert!((pca.explained_variance_ratio()[c] - vals[c] / total).abs() < 1e-10);
        let comp = &pca.components()[c * d..(c + 1) * d];
        assert!(
            (dot(comp, &vecs[c]).abs() - 1.0).abs() < 1e-8,
            "eigenvector {c}"
        );
    }
}

#[test]
fn streamed_covariance_is_identical_for_any_block_split() {
    let (n, d) = (3100, 6); // more than three covariance chunks
    let x = anisotropic(n, d, 50.0, 2);
    let one = CovarianceState::partial(&x, d);
    for split in [1, 3, 100, 1023, 1024, 1025, 2999, 5000] {
        let mut acc = CovarianceAccumulator::<f64>::new(d);
        for b in x.chunks(split * d) {
            acc.push(b);
        }
        assert_eq!(
            acc.finish(),
            one,
            "split {split}: streaming must not depend on block size"
        );
    }
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let one32 = CovarianceState::partial(&x32, d);
    for split in [7, 1500] {
        let mut acc = CovarianceAccumulator::<f32>::new(d);
        for b in x32.chunks(split * d) {
            acc.push(b);
        }
        assert_eq!(acc.finish(), one32);
    }
    // merging states of disjoint parts (as threads or Spark partitions do) agrees to rounding
    for cut in [1, 999, 1600] {
        let mut a = CovarianceState::partial(&x[..cut * d], d);
        a.merge(&CovarianceState::partial(&x[cut * d..], d));
        assert_eq!(a.n, one.n);
        let scale = one.comoment.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (p, q) in a.comoment.iter().zip(&one.comoment) {
            assert!((p - q).abs() < 1e-11 * scale);
        }
    }
}

#[test]
fn float32_covariance_stays_accurate_far_from_zero() {
    let (n, d) = (4000, 5);
    let x = anisotropic(n, d, 3e4, 3);
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let x_back: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
    let (_, cov) = naive_cov(&x_back, d);
    let got = CovarianceState::partial(&x32, d).covariance();
    let scale = cov.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (a, b) in got.iter().zip(&cov) {
        assert!((a - b).abs() <= 1e-4 * scale, "{a} vs {b}");
    }
}

fn assert_orthonormal(c: &[f64], k: usize, d: usize, tol: f64) {
    for i in 0..k {
        for j in 0..k {
            let v = dot(&c[i * d..(i + 1) * d], &c[j * d..(j + 1) * d]);
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((v - want).abs() < tol, "<c{i}, c{j}> = {v}");
        }
    }
}

#[test]
fn components_are_orthonormal_and_transform_is_centered_projection() {
    let (n, d, k) = (1200, 12, 7);
    let x = anisotropic(n, d, -20.0, 4);
    let pca = CovarianceState::partial(&x, d).finish(k).unwrap();
    assert_orthonormal(&pca.components(), k, d, 1e-10);
    // the largest-magnitude entry of each component is positive (deterministic sign)
    for c in pca.components().chunks(d) {
        let m = c
            .iter()
            .fold(0.0f64, |m, v| if v.abs() > m.abs() { *v } else { m });
        assert!(m > 0.0);
    }
    let t = pca.transformer::<f64>();
    let mut out = vec![0.0; n * k];
    t.transform(&x, &mut out).unwrap();
    let t32 = pca.transformer::<f32>();
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let mut out32 = vec![0.0f32; n * k];
    t32.transform(&x32, &mut out32).unwrap();
    for i in 0..n {
        for c in 0..k {
            let want: f64 = (0..d)
                .map(|j| (x[i * d + j] - pca.mean()[j]) * pca.components()[c * d + j])
                .sum();
            assert!((out[i * k + c] - want).abs() < 1e-9 * (1.0 + want.abs()));
            assert!(
                (out32[i * k + c] as f64 - want).abs() < 1e-3 * (1.0 + want.abs()),
                "f32 ~ f64"
            );
        }
    }
}

#[test]
fn randomized_pca_on_all_rows_matches_exact() {
    let (n, d, k) = (3000, 40, 5);
    let x = anisotropic(n, d, 2.0, 5);
    let exact = CovarianceState::partial(&x, d).finish(k).unwrap();
    let mut moments = Moments::new(d);
    moments.merge(&Moments::partial(&x, d));
    let rand = randomized_pca(
        &x,
        d,
        &moments,
        k,
        &RandomizedOptions {
            seed: 3,
            ..Default::default()
        },
    )
    .unwrap();
    assert_orthonormal(&rand.components(), k, d, 1e-10);
    for c in 0..k {
        let rel = (rand.explained_variance()[c] - exact.explained_variance()[c]).abs()
            / exact.explained_variance()[c];
        assert!(rel < 1e-6, "component {c}: {rel}");
        let cos = dot(
            &rand.components()[c * d..(c + 1) * d],
            &exact.components()[c * d..(c + 1) * d],
        );
        assert!(cos > 1.0 - 1e-6, "component {c}: cos {cos}");
        assert!(
            (rand.explained_variance_ratio()[c] - exact.explained_variance_ratio()[c]).abs() < 1e-6
        );
    }
}

#[test]
fn pca_is_identical_with_one_and_two_threads() {
    let (n, d) = (5000, 64);
    let x: Vec<f32> = anisotropic(n, d, 1.0, 6)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let fit = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut acc = CovarianceAccumulator::<f32>::new(d);
            for b in x.chunks(777 * d) {
                acc.push(b);
            }
            acc.finish().finish(10).unwrap()
        })
    };
    assert_eq!(fit(1), fit(2));
}

#[test]
fn reservoir_sample_is_uniform_and_independent_of_blocks() {
    let d = 2;
    let x: Vec<f64> = (0..20000).flat_map(|i| [i as f64, 0.0]).collect();
    let sample = |split: usize| {
        let mut s = ReservoirSampler::<f64>::new(1000, d, 9);
        for b in x.chunks(split * d) {
            s.push(b);
        }
        s.into_sample()
    };
    let a = sample(1);
    assert_eq!(a, sample(333));
    assert_eq!(a.len(), 1000 * d);
    // uniform: the mean index is near 10000 and each quarter holds about 250 rows
    let idx: Vec<f64> = a.chunks(d).map(|r| r[0]).collect();
    let mean = idx.iter().sum::<f64>() / idx.len() as f64;
    assert!((mean - 10000.0).abs() < 600.0, "mean {mean}");
    for q in 0..4 {
        let c = idx
            .iter()
            .filter(|&&i| (i / 5000.0).floor() as usize == q)
            .count();
        assert!((180..320).contains(&c), "quarter {q}: {c}");
    }
    let mut sorted = idx.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    sorted.dedup();
    assert_eq!(sorted.len(), 1000, "no row sampled twice");
}

#[test]
fn matryoshka_truncates_then_renormalizes() {
    let x = vec![3.0f32, 4.0, 100.0, 0.0, 0.0, 1.0];
    let mut out = vec![0.0f32; 4];
    assert_eq!(
        matryoshka(&x, 3, 2, &mut out),
        Err(1),
        "second prefix is zero"
    );
    let x = vec![3.0f32, 4.0, 100.0, 0.0, 2.0, 1.0];
    matryoshka(&x, 3, 2, &mut out).unwrap();
    assert_eq!(out, vec![0.6, 0.8, 0.0, 1.0]);
}

#[test]
fn bad_component_counts_are_rejected() {
    let x = anisotropic(50, 4, 0.0, 7);
    let s = CovarianceState::partial(&x, 4);
    assert!(s
        .finish(0)
        .unwrap_err()
        .to_string()
        .contains("n_components = 0"));
    assert!(s
        .finish(5)
        .unwrap_err()
        .to_string()
        .contains("n_components = 5 must be between 1 and n_features = 4"));
}
