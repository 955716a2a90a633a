#![allow(clippy::needless_range_loop, clippy::type_complexity)]
//! k-means invariants against naive loops.

mod common;
use common::*;
use embedcluster::cluster::{fit, Init, KMeansParams, Metric};
use embedcluster::metrics::adjusted_rand_score;

fn sqdist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn params(k: usize, metric: Metric) -> KMeansParams {
    KMeansParams {
        n_clusters: k,
        metric,
        ..Default::default()
    }
}

/// Naive nearest centroid: (label, squared distance or cosine similarity).
fn naive_assign(x: &[f64], c: &[f64], d: usize, metric: Metric) -> Vec<(usize, f64)> {
    x.chunks(d)
        .map(|r| {
            let k = c.len() / d;
            match metric {
                Metric::Euclidean => (0..k)
                    .map(|j| (j, sqdist(r, &c[j * d..(j + 1) * d])))
                    .fold((0, f64::MAX), |b, v| if v.1 < b.1 { v } else { b }),
                _ => (0..k)
                    .map(|j| {
                        (
                            j,
                            r.iter()
                                .zip(&c[j * d..(j + 1) * d])
                                .map(|(a, b)| a * b)
                                .sum(),
                        )
                    })
                    .fold((0, f64::MIN), |b, v| if v.1 > b.1 { v } else { b }),
            }
        })
        .collect()
}

fn data(
    metric: Metric,
    n: usize,
    d: usize,
    k: usize,
    spread: f64,
    seed: u64,
) -> (Vec<f64>, Vec<i64>) {
    let (mut x, y) = blobs(n, d, k, spread, seed);
    if metric == Metric::Cosine {
        normalize_rows(&mut x, d);
    }
    (x, y)
}

#[test]
fn labels_are_the_argmin_over_returned_centroids() {
    for metric in [Metric::Euclidean, Metric::Cosine] {
        let (n, d, k) = (3001, 6, 9);
        let (x, _) = data(metric, n, d, k, 4.0, 1);
        let m = fit(&params(k, metric), &x, d).unwrap();
        let naive = naive_assign(&x, &m.cluster_centers(), d, metric);
        for i in 0..n {
            assert_eq!(m.labels()[i] as usize, naive[i].0, "{metric:?} row {i}");
            assert!((m.scores()[i] as f64 - naive[i].1).abs() < 1e-6 * (1.0 + naive[i].1.abs()));
        }
        let obj: f64 = naive
            .iter()
            .map(|&(_, v)| if metric == Metric::Cosine { 1.0 - v } else { v })
            .sum();
        assert!(
            (m.inertia() - obj).abs() < 1e-8 * obj,
            "{metric:?}: objective {} vs {obj}",
            m.inertia()
        );
    }
}

#[test]
fn converged_centroids_are_the_means_of_their_members() {
    for metric in [Metric::Euclidean, Metric::Cosine] {
        let (n, d, k) = (2000, 4, 6);
        let (x, _) = data(metric, n, d, k, 3.0, 2);
        let p = KMeansParams {
            tol: 0.0,
            max_iter: 10_000,
            ..params(k, metric)
        };
        let m = fit(&p, &x, d).unwrap();
        assert!(m.converged());
        for j in 0..k {
            let members: Vec<&[f64]> = x
                .chunks(d)
                .zip(m.labels())
                .filter(|(_, &l)| l as usize == j)
                .map(|(r, _)| r)
                .collect();
            assert_eq!(members.len() as u64, m.counts()[j]);
            let mut mean = vec![0.0; d];
            for r in &members {
                for f in 0..d {
                    mean[f] += r[f];
                }
            }
            let scale = match metric {
                Metric::Cosine => mean.iter().map(|v| v * v).sum::<f64>().sqrt(),
                _ => members.len() as f64,
            };
            for f in 0..d {
                let c = m.cluster_centers()[j * d + f];
                assert!(
                    (c - mean[f] / scale).abs() < 1e-12,
                    "{metric:?} cluster {j}"
                );
            }
        }
    }
}

#[test]
fn objective_never_increases() {
    for metric in [Metric::Euclidean, Metric::Cosine] {
        // heavily overlapping blobs: many iterations
        let (x, _) = data(metric, 5000, 8, 20, 12.0, 3);
        // one start on all rows (the screened default would start at a converged sample fit)
        let p = KMeansParams {
            tol: 0.0,
            max_iter: 500,
            init_trials: 1,
            ..params(20, metric)
        };
        let m = fit(&p, &x, 8).unwrap();
        assert!(
            m.objective_history().len() > 5,
            "{}",
            m.objective_history().len()
        );
        for w in m.objective_history().windows(2) {
            assert!(
                w[1] <= w[0] * (1.0 + 1e-12),
                "{metric:?}: {} then {}",
                w[0],
                w[1]
            );
        }
    }
}

#[test]
fn one_and_two_threads_give_identical_labels_and_centroids() {
    for metric in [Metric::Euclidean, Metric::Cosine] {
        let (x, _) = data(metric, 20_000, 16, 12, 8.0, 4);
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let p = KMeansParams {
            n_init: 2,
            ..params(12, metric)
        };
        let run = |t| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap();
            pool.install(|| fit(&p, &x32, 16).unwrap())
        };
        let (a, b) = (run(1), run(2));
        assert_eq!(a.labels(), b.labels());
        assert_eq!(a.cluster_centers(), b.cluster_centers());
        assert_eq!(a.inertia().to_bits(), b.inertia().to_bits());
        assert_eq!(a.objective_history(), b.objective_history());
    }
}

#[test]
fn gemm_assignment_equals_naive_loop() {
    let (n, d, k) = (1037, 37, 13); // not a multiple of the tile
    let mut rng = Rng::new(5);
    let x: Vec<f64> = (0..n * d).map(|_| rng.normal()).collect();
    let c: Vec<f64> = (0..k * d).map(|_| rng.normal()).collect();
    for metric in [Metric::Euclidean, Metric::Cosine] {
        let (mut xs, mut cs) = (x.clone(), c.clone());
        if metric == Metric::Cosine {
            normalize_rows(&mut xs, d);
            normalize_rows(&mut cs, d);
        }
        let p = KMeansParams {
            init: Init::Centroids(cs.clone()),
            max_iter: 1,
            ..params(k, metric)
        };
        let model = fit(&p, &xs, d).unwrap();
        // predict with the model's centroids in f64 and f32
        let naive = naive_assign(&xs, &model.cluster_centers(), d, metric);
        let (labels, scores) = model.predict(&xs).unwrap();
        for i in 0..n {
            assert_eq!(labels[i] as usize, naive[i].0);
            assert!((scores[i] as f64 - naive[i].1).abs() < 1e-5 * (1.0 + naive[i].1.abs()));
        }
        let x32: Vec<f32> = xs.iter().map(|&v| v as f32).collect();
        let p32 = KMeansParams {
            init: Init::Centroids(model.cluster_centers().to_vec()),
            max_iter: 1,
            ..params(k, metric)
        };
        let m32 = fit(&p32, &x32, d).unwrap();
        let (l32, _) = m32.predict(&x32).unwrap();
        let naive32 = naive_assign(
            &x32.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            &m32.cluster_centers()
                .iter()
                .map(|&v| v as f64)
                .collect::<Vec<_>>(),
            d,
            metric,
        );
        let agree = l32
            .iter()
            .zip(&naive32)
            .filter(|(a, b)| **a as usize == b.0)
            .count();
        assert!(
            agree >= n - 2,
            "f32 kernel vs naive: {agree}/{n} (only near-ties may differ)"
        );
    }
}

#[test]
fn recovers_separated_blobs_in_f32_and_f64() {
    let (x, y) = data(Metric::Euclidean, 4000, 10, 8, 0.5, 6);
    let p = KMeansParams {
        n_init: 3,
        ..params(8, Metric::Euclidean)
    };
    let m64 = fit(&p, &x, 10).unwrap();
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let m32 = fit(&p, &x32, 10).unwrap();
    let l64: Vec<i64> = m64.labels().iter().map(|&l| l as i64).collect();
    let l32: Vec<i64> = m32.labels().iter().map(|&l| l as i64).collect();
    assert_eq!(adjusted_rand_score(&y, &l64).unwrap(), 1.0);
    assert_eq!(adjusted_rand_score(&l64, &l32).unwrap(), 1.0, "f32 ~ f64");
}

#[test]
fn more_restarts_never_worse() {
    let (x, _) = data(Metric::Euclidean, 3000, 5, 15, 6.0, 7);
    let one = fit(&params(15, Metric::Euclidean), &x, 5).unwrap();
    let five = fit(
        &KMeansParams {
            n_init: 5,
            ..params(15, Metric::Euclidean)
        },
        &x,
        5,
    )
    .unwrap();
    assert!(five.inertia() <= one.inertia());
}

#[test]
fn duplicates_and_more_clusters_than_distinct_points_terminate() {
    // 60 rows but only 3 distinct points, k = 5: some clusters must stay empty or be
    // re-seeded; the fit ends and every label is valid.
    let pts = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]];
    let x: Vec<f64> = (0..60).flat_map(|i| pts[i % 3]).collect();
    let m = fit(
        &KMeansParams {
            max_iter: 50,
            ..params(5, Metric::Euclidean)
        },
        &x,
        2,
    )
    .unwrap();
    assert!(m.labels().iter().all(|&l| (0..5).contains(&l)));
    assert!(m.n_iter() <= 50);
    assert!(
        m.inertia().abs() < 1e-12,
        "every row sits on a centroid: {}",
        m.inertia()
    );
    // all rows identical
    let same = vec![1.0f32; 40];
    let m = fit(&params(4, Metric::Euclidean), &same, 2).unwrap();
    assert_eq!(m.inertia(), 0.0);
}

#[test]
fn bad_parameters_are_rejected_before_work() {
    let x = vec![0.0f64; 20];
    let err = |p: KMeansParams| fit(&p, &x, 2).unwrap_err().to_string();
    assert!(err(params(0, Metric::Euclidean)).contains("n_clusters = 0 must be at least 1"));
    // structured: which parameter, its value, the constraint; front ends spell the name
    match fit(&params(0, Metric::Euclidean), &x, 2).unwrap_err() {
        embedcluster::Error::Parameter(p) => {
            assert_eq!(p.name, "n_clusters");
            assert_eq!(p.value.as_deref(), Some("0"));
            assert_eq!(p.constraint, "must be at least 1");
            let cli = |n: &str| format!("--{}", n.replace('_', "-"));
            assert_eq!(p.render(&cli), "--n-clusters 0 must be at least 1");
        }
        other => panic!("expected a parameter error, got {other:?}"),
    }
    assert!(err(params(2, Metric::InnerProduct)).contains("metric"));
    assert!(err(params(11, Metric::Euclidean))
        .contains("n_clusters = 11 is larger than n_samples = 10"));
    assert!(err(KMeansParams {
        n_init: 0,
        ..params(2, Metric::Euclidean)
    })
    .contains("n_init"));
    assert!(err(KMeansParams {
        max_iter: 0,
        ..params(2, Metric::Euclidean)
    })
    .contains("max_iter"));
    assert!(err(KMeansParams {
        tol: -1.0,
        ..params(2, Metric::Euclidean)
    })
    .contains("tol"));
    assert!(err(KMeansParams {
        init: Init::Centroids(vec![0.0; 3]),
        ..params(2, Metric::Euclidean)
    })
    .contains("init centroids"));
    assert!(fit(&params(2, Metric::Euclidean), &x, 3)
        .unwrap_err()
        .to_string()
        .contains("not a multiple"));
}

/// Weighted Lloyd (scikit-learn's `sample_weight`): integer weights give the fit of the rows
/// repeated, from the same centroids (labels, centroids, objective); equal weights give the
/// unweighted fit exactly; bad weights are rejected naming `sample_weight`.
#[test]
fn weighted_fit_equals_repeated_rows_and_equal_weights_are_no_weights() {
    use embedcluster::cluster::fit_weighted;
    use embedcluster::runtime::Cancel;
    let (d, k) = (5, 4);
    let (x, _) = data(Metric::Euclidean, 600, d, k, 4.0, 11);
    let mut rng = Rng::new(3);
    let w: Vec<f64> = (0..600).map(|_| (1 + rng.next_u64() % 3) as f64).collect();
    let mut rep = Vec::new();
    let mut rep_of = Vec::new();
    for (i, &wi) in w.iter().enumerate() {
        for _ in 0..wi as usize {
            rep.extend_from_slice(&x[i * d..(i + 1) * d]);
            rep_of.push(i);
        }
    }
    for metric in [Metric::Euclidean, Metric::Cosine] {
        let (xm, rm) = if metric == Metric::Cosine {
            let (mut a, mut b) = (x.clone(), rep.clone());
            normalize_rows(&mut a, d);
            normalize_rows(&mut b, d);
            (a, b)
        } else {
            (x.clone(), rep.clone())
        };
        let p = KMeansParams {
            init: Init::Centroids(xm[..k * d].to_vec()),
            ..params(k, metric)
        };
        let a = fit_weighted(&p, &xm, d, Some(&w), Cancel::never()).unwrap();
        let b = fit(&p, &rm, d).unwrap();
        let expanded: Vec<i32> = rep_of.iter().map(|&i| a.labels()[i]).collect();
        assert_eq!(expanded, b.labels());
        for (u, v) in a.cluster_centers().iter().zip(b.cluster_centers()) {
            assert!((u - v).abs() < 1e-9, "{u} vs {v}");
        }
        assert!((a.inertia() - b.inertia()).abs() <= 1e-9 * b.inertia().max(1.0));
        // the centroids are the weighted means (Euclidean) of their members: a naive loop
        if metric == Metric::Euclidean {
            for j in 0..k {
                let mut s = vec![0.0; d];
                let mut m = 0.0;
                for i in 0..600 {
                    if a.labels()[i] == j as i32 {
                        m += w[i];
                        for f in 0..d {
                            s[f] += w[i] * xm[i * d + f];
                        }
                    }
                }
                for f in 0..d {
                    assert!((a.cluster_centers()[j * d + f] - s[f] / m).abs() < 1e-9);
                }
            }
        }
    }
    // equal weights: the unweighted fit, objective scaled, for every seeding that takes weights
    for init in [Init::KMeansPlusPlus, Init::Random] {
        let p = KMeansParams {
            init: init.clone(),
            seed: 5,
            ..params(k, Metric::Euclidean)
        };
        let u = fit(&p, &x, d).unwrap();
        let e = fit_weighted(&p, &x, d, Some(&vec![2.5; 600]), Cancel::never()).unwrap();
        assert_eq!(u.labels(), e.labels());
        assert_eq!(u.cluster_centers(), e.cluster_centers());
        assert_eq!((u.inertia() * 2.5).to_bits(), e.inertia().to_bits());
    }
    let p = params(k, Metric::Euclidean);
    for bad in [vec![1.0; 599], vec![0.0; 600], {
        let mut v = vec![1.0; 600];
        v[7] = -1.0;
        v
    }] {
        let e = fit_weighted(&p, &x, d, Some(&bad), Cancel::never()).unwrap_err();
        assert!(e.to_string().contains("sample_weight"), "{e}");
    }
}
