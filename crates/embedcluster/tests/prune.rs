#![allow(clippy::needless_range_loop)]
//! The pruned assignment (`cluster::Pruning`) against the full kernel: the same labels,
//! centroids and objectives, bit for bit, on data where the bound prunes well, on data
//! where it cannot (isotropic noise, rows inside the prefix subspace), for both metrics and
//! any thread count.

mod common;
use common::*;
use embedcluster::cluster::{fit, Init, KMeans, KMeansParams, Metric, Pruning};

/// Topics along a few dominant directions plus noise with a decaying spectrum (the shape
/// of embeddings), float32, rotated by a random orthonormal-ish mix so no axis is special.
fn embedding_like(n: usize, d: usize, topics: usize, decay: f64, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let centres: Vec<f64> = (0..topics * d)
        .map(|i| rng.normal() * 2.0 / (1.0 + (i % d) as f64).powf(1.0))
        .collect();
    let mix: Vec<f64> = (0..d * d)
        .map(|_| rng.normal() / (d as f64).sqrt())
        .collect();
    let mut x = Vec::with_capacity(n * d);
    for i in 0..n {
        let t = i % topics;
        let z: Vec<f64> = (0..d)
            .map(|j| centres[t * d + j] + rng.normal() / (1.0 + j as f64).powf(decay))
            .collect();
        for a in 0..d {
            let v: f64 = (0..d).map(|j| mix[a * d + j] * z[j]).sum();
            x.push(v as f32);
        }
    }
    x
}

fn unit_rows(x: &mut [f32], d: usize) {
    for r in x.chunks_mut(d) {
        let n = r.iter().map(|v| v * v).sum::<f32>().sqrt();
        r.iter_mut().for_each(|v| *v /= n);
    }
}

fn fit_with(x: &[f32], d: usize, k: usize, metric: Metric, pruning: Pruning) -> KMeans<f32> {
    let init: Vec<f64> = (0..k)
        .flat_map(|j| x[(j * 7 % (x.len() / d)) * d..][..d].to_vec())
        .map(|v| v as f64)
        .collect();
    let p = KMeansParams {
        n_clusters: k,
        metric,
        init: Init::Centroids(init),
        max_iter: 12,
        tol: 0.0,
        pruning,
        ..Default::default()
    };
    fit(&p, x, d).unwrap()
}

fn assert_same(a: &KMeans<f32>, b: &KMeans<f32>) {
    assert_eq!(a.labels(), b.labels());
    let (ca, cb) = (a.cluster_centers(), b.cluster_centers());
    assert!(ca.iter().zip(cb).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert_eq!(a.objective_history(), b.objective_history());
    assert_eq!(a.scores(), b.scores());
    assert_eq!(a.n_iter(), b.n_iter());
}

fn check(x: &[f32], d: usize, k: usize, metric: Metric, p: usize) -> KMeans<f32> {
    let full = fit_with(x, d, k, metric, Pruning::Off);
    assert!(full.pruning().is_none());
    let pruned = fit_with(x, d, k, metric, Pruning::Prefix(p));
    assert_same(&full, &pruned);
    pruned
}

fn pruning_runs() -> bool {
    // the pruned path needs the fused float32 kernel (AVX2 + FMA or AVX-512)
    let x = embedding_like(600, 16, 4, 1.0, 1);
    fit_with(&x, 16, 40, Metric::Euclidean, Pruning::Prefix(4))
        .pruning()
        .is_some()
}

#[test]
fn pruned_lloyd_equals_full_lloyd_on_embedding_like_data() {
    if !pruning_runs() {
        eprintln!("no fused kernel here: the pruned path is not used");
        return;
    }
    let (n, d, k) = (6000, 64, 300);
    let x = embedding_like(n, d, 12, 1.0, 7);
    let km = check(&x, d, k, Metric::Euclidean, 8);
    let s = km.pruning().unwrap();
    assert_eq!(s.prefix_dims, 8);
    assert!(s.passes >= 1);
    // the bound must actually prune here: far fewer exact keys than k per row
    let kpr = s.keys_per_row(k);
    assert!(kpr < k as f64 / 4.0, "{kpr} keys per row of {k}");
    let mut u = x.clone();
    unit_rows(&mut u, d);
    check(&u, d, k, Metric::Cosine, 8);
    check(&u, d, k, Metric::Euclidean, 16);
}

#[test]
fn pruned_lloyd_equals_full_lloyd_where_the_bound_is_useless() {
    if !pruning_runs() {
        return;
    }
    // isotropic noise: the prefix carries p/d of every distance, most rows fall back
    let mut rng = Rng::new(3);
    let (n, d, k) = (3000, 48, 256);
    let x: Vec<f32> = (0..n * d).map(|_| rng.normal() as f32).collect();
    let km = check(&x, d, k, Metric::Euclidean, 8);
    assert!(km.pruning().unwrap().counts.fallback_rows > 0);
    // rows inside a 4-dimensional subspace, prefix wider than it: tails are rounding noise
    let basis: Vec<f32> = (0..4 * d).map(|_| rng.normal() as f32).collect();
    let mut low = vec![0.0f32; n * d];
    for i in 0..n {
        let z: Vec<f32> = (0..4).map(|_| rng.normal() as f32).collect();
        for a in 0..d {
            low[i * d + a] = (0..4).map(|j| z[j] * basis[j * d + a]).sum();
        }
    }
    check(&low, d, k, Metric::Euclidean, 8);
    let mut u = low.clone();
    unit_rows(&mut u, d);
    check(&u, d, k, Metric::Cosine, 8);
    // duplicated rows and centroids (exact ties go to the smaller index in both paths)
    let dup: Vec<f32> = x[..(n / 2) * d].repeat(2);
    check(&dup, d, k, Metric::Euclidean, 8);
}

#[test]
fn pruned_lloyd_is_the_same_for_any_thread_count() {
    if !pruning_runs() {
        return;
    }
    let (n, d, k) = (5000, 32, 260);
    let x = embedding_like(n, d, 10, 1.0, 11);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| fit_with(&x, d, k, Metric::Euclidean, Pruning::Prefix(8)));
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap()
        .install(|| fit_with(&x, d, k, Metric::Euclidean, Pruning::Off));
    assert_same(&one, &three);
}

#[test]
fn auto_pruning_only_for_large_k_and_float32() {
    assert_eq!(Pruning::Auto.prefix_dims(100_000, 768, 4096), Some(96));
    assert_eq!(Pruning::Auto.prefix_dims(100_000, 128, 4096), Some(16));
    assert_eq!(Pruning::Auto.prefix_dims(100_000, 768, 50), None);
    assert_eq!(Pruning::Auto.prefix_dims(100_000, 16, 4096), None);
    assert_eq!(Pruning::Off.prefix_dims(100_000, 768, 4096), None);
    assert_eq!(Pruning::from_name("off").unwrap(), Pruning::Off);
    assert_eq!(Pruning::from_name("32").unwrap(), Pruning::Prefix(32));
    assert!(Pruning::from_name("0").is_err());
    // float64 data never prunes (the fused kernel is float32)
    let x: Vec<f64> = embedding_like(2000, 32, 4, 1.0, 2)
        .iter()
        .map(|&v| v as f64)
        .collect();
    let p = KMeansParams {
        n_clusters: 300,
        init: Init::Random,
        max_iter: 2,
        pruning: Pruning::Prefix(8),
        ..Default::default()
    };
    assert!(fit(&p, &x, 32).unwrap().pruning().is_none());
}
