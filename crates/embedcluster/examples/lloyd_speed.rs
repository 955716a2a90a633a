//! Times Lloyd iterations from given initial centroids (the W6 cell, one system):
//! `cargo run --release --example lloyd_speed -- DATA.npy INIT.npy ITERS PRUNING THREADS`
//! (float32 `.npy` files, `PRUNING` = `auto`, `off` or a prefix size). Prints seconds,
//! objective and what the pruned assignment did. A benchmark helper, not a test.

use embedcluster::cluster::{fit, Init, KMeansParams, Metric, Pruning};
use std::time::Instant;

fn load(path: &str) -> (Vec<f32>, usize) {
    let bytes = std::fs::read(path).expect("read");
    let h = embedcluster::io::NpyHeader::parse(&bytes).expect("npy header");
    let d = h.shape.1;
    let v = bytes[h.data_offset..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (v, d)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (x, d) = load(&a[1]);
    let (c, _) = load(&a[2]);
    let iters: usize = a[3].parse().unwrap();
    let pruning = Pruning::from_name(&a[4]).unwrap();
    let threads: usize = a[5].parse().unwrap();
    let k = c.len() / d;
    let params = KMeansParams {
        n_clusters: k,
        metric: Metric::Euclidean,
        init: Init::Centroids(c.iter().map(|&v| v as f64).collect()),
        max_iter: iters,
        tol: 0.0,
        pruning,
        ..Default::default()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let t = Instant::now();
    let m = pool.install(|| fit(&params, &x, d)).unwrap();
    println!(
        "n={} d={d} k={k} iters={} seconds={:.2} objective={:.4} pruning={:?}",
        x.len() / d,
        m.n_iter(),
        t.elapsed().as_secs_f64(),
        m.inertia(),
        m.pruning()
            .map(|p| (p.prefix_dims, p.keys_per_row(k), p.counts.fallback_rows))
    );
}
