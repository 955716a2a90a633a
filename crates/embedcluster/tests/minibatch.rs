//! Mini-batch k-means (`cluster::fit_minibatch`, `MiniBatchState`): Sculley's update against
//! a naive loop, thread-count independence, and quality against full Lloyd.

mod common;
use common::*;
use embedcluster::cluster::{
    fit, fit_minibatch, Init, KMeansParams, Metric, MiniBatchParams, MiniBatchState,
};
use embedcluster::metrics::adjusted_rand_score;
use embedcluster::runtime::Cancel;

#[test]
fn one_step_equals_a_naive_update() {
    let (x, _) = blobs(300, 5, 3, 0.5, 1);
    let (k, d) = (3, 5);
    let c0: Vec<f64> = x[..k * d].to_vec();
    let counts0 = vec![2.0, 0.0, 5.0];
    let mut s =
        MiniBatchState::from_parts(c0.clone(), counts0.clone(), 7, k, d, Metric::Euclidean, 0.0)
            .unwrap();
    let batch = &x[30 * d..130 * d];
    let w: Vec<f64> = (0..100).map(|i| 0.5 + (i % 3) as f64).collect();
    let obj = s.partial_fit(batch, Some(&w)).unwrap();
    // naive: nearest centre, then c_j <- (N_j c_j + sum_j) / (N_j + m_j)
    let mut sums = vec![0.0; k * d];
    let mut mass = vec![0.0; k];
    let mut o = 0.0;
    for (i, row) in batch.chunks(d).enumerate() {
        let dist = |j: usize| -> f64 { (0..d).map(|t| (row[t] - c0[j * d + t]).powi(2)).sum() };
        let j = (0..k).min_by(|&a, &b| dist(a).total_cmp(&dist(b))).unwrap();
        mass[j] += w[i];
        o += w[i] * dist(j);
        for t in 0..d {
            sums[j * d + t] += w[i] * row[t];
        }
    }
    for j in 0..k {
        let n = counts0[j] + mass[j];
        assert!((s.counts()[j] - n).abs() < 1e-12);
        for t in 0..d {
            let want = if mass[j] > 0.0 {
                (counts0[j] * c0[j * d + t] + sums[j * d + t]) / n
            } else {
                c0[j * d + t]
            };
            assert!(
                (s.centers()[j * d + t] - want).abs() < 1e-9,
                "centre {j}[{t}]"
            );
        }
    }
    assert!((obj - o / w.iter().sum::<f64>()).abs() < 1e-6 * o.max(1.0));
    assert_eq!(s.n_steps(), 8);
}

#[test]
fn spherical_steps_keep_unit_centroids() {
    let (mut x, _) = blobs(400, 6, 4, 0.3, 2);
    normalize_rows(&mut x, 6);
    let mut s = MiniBatchState::new(x[..4 * 6].to_vec(), 4, 6, Metric::Cosine).unwrap();
    for b in x.chunks(50 * 6) {
        s.partial_fit(b, None).unwrap();
    }
    for c in s.centers().chunks(6) {
        let n: f64 = c.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((n - 1.0).abs() < 1e-12);
    }
}

fn params(k: usize, metric: Metric) -> MiniBatchParams {
    MiniBatchParams {
        kmeans: KMeansParams {
            n_clusters: k,
            metric,
            init: Init::KMeansPlusPlus,
            max_iter: 20,
            tol: 0.0,
            seed: 5,
            ..Default::default()
        },
        batch_size: 256,
        ..Default::default()
    }
}

#[test]
fn any_thread_count_gives_the_same_fit_and_quality_is_near_lloyd() {
    let (x, y) = blobs(20_000, 16, 10, 1.5, 3);
    let x: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let p = params(10, Metric::Euclidean);
    let in_pool = |t: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap()
            .install(|| fit_minibatch(&p, &x, 16, Cancel::never()).unwrap())
    };
    let a = in_pool(1);
    let b = in_pool(3);
    assert_eq!(a.labels(), b.labels());
    assert_eq!(a.cluster_centers(), b.cluster_centers());
    assert_eq!(a.inertia(), b.inertia());
    // the full fit from k-means++ as reference: the approximation costs little here
    let full = fit(
        &KMeansParams {
            n_clusters: 10,
            seed: 5,
            ..Default::default()
        },
        &x,
        16,
    )
    .unwrap();
    let lab = |m: &[i32]| m.iter().map(|&v| v as i64).collect::<Vec<_>>();
    let ari = adjusted_rand_score(&y, &lab(a.labels())).unwrap();
    assert!(ari > 0.95, "ARI {ari}");
    assert!(
        a.inertia() < 1.05 * full.inertia(),
        "mini-batch {} vs Lloyd {}",
        a.inertia(),
        full.inertia()
    );
    assert!(a.n_iter() >= 1 && a.n_iter() <= 20);
    // steps are counted exactly: within the epochs run, at most max_iter epochs
    let per_epoch = 20_000u64.div_ceil(256);
    assert!(
        a.n_steps() > (a.n_iter() as u64 - 1) * per_epoch
            && a.n_steps() <= a.n_iter() as u64 * per_epoch
    );
    assert_eq!(a.counts().iter().sum::<u64>(), 20_000);
}

#[test]
fn bad_parameters_are_errors() {
    let (x, _) = blobs(100, 3, 2, 1.0, 4);
    let mut p = params(2, Metric::Euclidean);
    p.batch_size = 0;
    assert!(fit_minibatch(&p, &x, 3, Cancel::never()).is_err());
    let mut p = params(200, Metric::Euclidean);
    p.batch_size = 10;
    assert!(fit_minibatch(&p, &x, 3, Cancel::never()).is_err());
    let mut s = MiniBatchState::new(vec![0.0; 6], 2, 3, Metric::Euclidean).unwrap();
    assert!(s.partial_fit(&x[..4], None).is_err());
    assert!(MiniBatchState::new(vec![0.0; 5], 2, 3, Metric::Euclidean).is_err());
}
