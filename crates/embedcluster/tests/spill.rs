//! The spilled reduced matrix (`--spill DIR`, or chosen by the plan): the same labels,
//! centroids and scores as in memory, bit for bit; nothing left in the spill directory;
//! and the plan spills exactly when the in-memory matrix does not fit the budget.

use embedcluster::cluster::Init;
use embedcluster::cluster::Metric;
use embedcluster::jobs::generate::{generate, GenerateParams};
use embedcluster::jobs::plan::{plan_with_budget, PlanInput};
use embedcluster::jobs::run::{run_full, OnInvalid, PcaFit, Reduce, RunConfig, Spill};
use embedcluster::memory::BudgetSource;
use embedcluster::runtime::Runtime;

fn data(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("x.parquet");
    let params = GenerateParams {
        n_samples: 60_000,
        n_features: 40,
        n_clusters: 8,
        seed: 5,
        noise: None,
    };
    generate(params, &p, &|_| {}).unwrap();
    p
}

#[test]
fn spilled_runs_equal_in_memory_runs_bit_for_bit() {
    let d = tempfile::tempdir().unwrap();
    let input = data(d.path());
    let spill_dir = d.path().join("spill");
    std::fs::create_dir(&spill_dir).unwrap();
    let cases: Vec<(Reduce, Metric, Init, usize)> = vec![
        (Reduce::Pca(16), Metric::Cosine, Init::KMeansPlusPlus, 16),
        (Reduce::None, Metric::Euclidean, Init::KMeansPlusPlus, 1),
        (
            Reduce::Matryoshka(20),
            Metric::Cosine,
            Init::from_name("k-means||", Default::default()).unwrap(),
            1,
        ),
    ];
    for (reduce, metric, init, trials) in cases {
        let mut cfg = RunConfig::new(&input, 8);
        cfg.reduce = reduce;
        cfg.pca_fit = PcaFit::Exact;
        cfg.metric = metric;
        cfg.init = init.clone();
        cfg.init_trials = trials;
        cfg.labels_column = Some("label".into());
        cfg.on_invalid = OnInvalid::Skip;
        cfg.calibrate = true;
        cfg.spill = Spill::Never;
        let rt = Runtime {
            threads: Some(2),
            ..Default::default()
        };
        let mem = run_full(&cfg, &rt).unwrap();
        assert!(mem.report.spill.is_none());
        cfg.spill = Spill::Always(spill_dir.clone());
        let sp = run_full(&cfg, &rt).unwrap();
        let what = format!("{reduce:?} {metric:?} {}", init.name());
        let s = sp.report.spill.as_ref().expect("spilled");
        assert!(s.path.starts_with(&spill_dir), "{what}");
        assert_eq!(
            s.bytes,
            60_000 * sp.report.n_components as u64 * 4,
            "{what}"
        );
        assert_eq!(mem.labels, sp.labels, "{what}");
        assert_eq!(mem.scores, sp.scores, "{what}");
        assert_eq!(mem.cluster_centers, sp.cluster_centers, "{what}");
        assert_eq!(mem.report.objective, sp.report.objective, "{what}");
        assert_eq!(mem.report.n_iter, sp.report.n_iter, "{what}");
        assert_eq!(mem.calibration.len(), sp.calibration.len(), "{what}");
        assert!(mem.report.ari.unwrap() > 0.5, "{what}");
        assert_eq!(
            std::fs::read_dir(&spill_dir).unwrap().count(),
            0,
            "the spill file is gone"
        );
    }
    // a spill directory that does not exist is an error naming it, before any output
    let mut cfg = RunConfig::new(&input, 8);
    cfg.reduce = Reduce::None;
    cfg.spill = Spill::Always(d.path().join("nope"));
    cfg.output = Some(d.path().join("out.parquet"));
    let e = run_full(&cfg, &Runtime::default()).unwrap_err().to_string();
    assert!(e.contains("nope"), "{e}");
    assert!(!d.path().join("out.parquet").exists());
}

fn plan_input(n: usize, d: usize) -> PlanInput {
    PlanInput {
        n_samples: n,
        n_features: d,
        value_bytes: 4,
        format: embedcluster::io::Format::Parquet,
        other_bytes_per_row: 16,
        base_bytes: 10 << 20,
        threads: 2,
        decoder_threads: 1,
        remote: false,
    }
}

#[test]
fn the_plan_spills_only_when_the_reduced_matrix_does_not_fit() {
    let mut cfg = RunConfig::new("x.parquet", 100);
    cfg.reduce = Reduce::Pca(128);
    // 10M x 768 reduced to 128: 4.8 GiB in memory
    let input = plan_input(10_000_000, 768);
    let gib = 1u64 << 30;
    let roomy = plan_with_budget(
        &cfg,
        &input,
        None,
        Some((64 * gib, BudgetSource::Available)),
    )
    .unwrap();
    assert!(roomy.spill.is_none());
    assert!(roomy.stage("kmeans").unwrap().peak_bytes > 4 * gib);
    // a 1 GiB pod: the plan spills, and every stage fits
    let pod = plan_with_budget(&cfg, &input, None, Some((gib, BudgetSource::Cgroup))).unwrap();
    let s = pod.spill.as_ref().expect("spills");
    assert_eq!(s.bytes, 10_000_000 * 128 * 4);
    assert!(s.reason.contains("cgroup"), "{}", s.reason);
    assert!(pod.peak_bytes() < gib, "{}", pod.describe());
    assert_eq!(pod.budget_source, Some(BudgetSource::Cgroup));
    assert_eq!(pod.limit_bytes, None);
    // --no-spill: over a default budget it runs in memory; under a limit it fails
    cfg.spill = Spill::Never;
    let p = plan_with_budget(&cfg, &input, None, Some((gib, BudgetSource::Cgroup))).unwrap();
    assert!(p.spill.is_none());
    let e = plan_with_budget(&cfg, &input, Some(gib), Some((gib, BudgetSource::Limit)));
    assert!(e.is_err());
    // too small even spilled (the per-row arrays alone are 200 MB): a limit fails
    cfg.spill = Spill::Auto;
    let e = plan_with_budget(
        &cfg,
        &input,
        Some(100 << 20),
        Some((100 << 20, BudgetSource::Limit)),
    );
    assert!(e.is_err());
}
