#![allow(clippy::needless_range_loop)]
//! `neighbors`, `scale`, `evaluate` and `sweep` end to end: results against naive loops,
//! kept columns, and bad inputs (exit code 2, the message, nothing left behind).

#[path = "../../embedcluster/tests/common/mod.rs"]
mod common;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type};
use common::*;
use embedcluster::DType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::Path;
use std::process::Command;

fn run(args: &[&str], dir: &Path) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_embedcluster"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn fails(dir: &Path, args: &[&str], want: &str) {
    let before = files_in(dir);
    let (code, _, err) = run(args, dir);
    assert_eq!(code, 2, "{args:?}: {err}");
    assert!(err.contains(want), "{args:?}: expected {want:?} in {err:?}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(files_in(dir), before, "{args:?} left files behind");
}

fn batches(path: &Path) -> Vec<arrow_array::RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

#[test]
fn neighbors_match_a_naive_loop() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let (n, d, k) = (900, 12, 15);
    let (x, _) = blobs(n, d, 4, 0.5, 5);
    // f32-exact values so that the naive f64 loop sees the same inputs
    let x: Vec<f64> = x.iter().map(|&v| v as f32 as f64).collect();
    let rows: Vec<Option<Vec<f64>>> = x.chunks(d).map(|r| Some(r.to_vec())).collect();
    write_parquet(
        &p.join("base.parquet"),
        &rows,
        Layout::FixedSize,
        DType::Float32,
        256,
    );
    write_npy(&p.join("q.npy"), &x[..40 * d], d, DType::Float32);
    for (metric, excl) in [
        ("l2", false),
        ("ip", false),
        ("cosine", false),
        ("l2", true),
    ] {
        let mut args = vec![
            "neighbors",
            "--base",
            "base.parquet",
            "--queries",
            "q.npy",
            "-k",
            "15",
            "--metric",
            metric,
            "--output",
            "nn.parquet",
            "--batch-rows",
            "100",
        ];
        if excl {
            args.push("--exclude-self");
        }
        let (code, _, err) = run(&args, p);
        assert_eq!(code, 0, "{err}");
        let b = batches(&p.join("nn.parquet"));
        let qid: Vec<i64> = b
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(qid, (0..40).collect::<Vec<i64>>());
        let mut got_ids = vec![];
        let mut got_d = vec![];
        for bb in &b {
            let l = bb.column(1).as_list::<i32>();
            got_ids.extend(
                l.values()
                    .as_primitive::<Int64Type>()
                    .values()
                    .iter()
                    .copied(),
            );
            let l = bb.column(2).as_list::<i32>();
            got_d.extend(
                l.values()
                    .as_primitive::<Float32Type>()
                    .values()
                    .iter()
                    .copied(),
            );
        }
        for qi in 0..40 {
            let q = &x[qi * d..(qi + 1) * d];
            let mut c: Vec<(f64, i64)> = (0..n)
                .filter(|&j| !(excl && j == qi))
                .map(|j| {
                    let b = &x[j * d..(j + 1) * d];
                    let dot: f64 = q.iter().zip(b).map(|(a, b)| a * b).sum();
                    let nq: f64 = q.iter().map(|a| a * a).sum::<f64>().sqrt();
                    let nb: f64 = b.iter().map(|a| a * a).sum::<f64>().sqrt();
                    let key = match metric {
                        "l2" => q.iter().zip(b).map(|(a, b)| (a - b) * (a - b)).sum(),
                        "ip" => -dot,
                        _ => 1.0 - dot / (nq * nb),
                    };
                    (key, j as i64)
                })
                .collect();
            c.sort_by(|a, b| a.partial_cmp(b).unwrap());
            for r in 0..k {
                assert_eq!(got_ids[qi * k + r], c[r].1, "{metric} query {qi} rank {r}");
                let want = if metric == "ip" { -c[r].0 } else { c[r].0 };
                assert!((got_d[qi * k + r] as f64 - want).abs() < 1e-3 * want.abs().max(1.0));
            }
        }
    }
    write_npy(&p.join("q5.npy"), &x[..5 * 6], 6, DType::Float32);
    let base = [
        "neighbors",
        "--base",
        "base.parquet",
        "--output",
        "bad.parquet",
    ];
    let with = |extra: &[&'static str]| [&base[..], extra].concat();
    fails(
        p,
        &with(&["--queries", "q5.npy", "-k", "3"]),
        "queries have 6 features (q5.npy) but the base has 12 (base.parquet)",
    );
    fails(
        p,
        &with(&["--queries", "q.npy", "-k", "901"]),
        "--k 901 must be between 1 and the base's 900 rows",
    );
    fails(
        p,
        &with(&["--queries", "q.npy", "-k", "900", "--exclude-self"]),
        "excluding the query itself",
    );
    fails(
        p,
        &with(&["--queries", "missing.npy", "-k", "3"]),
        "missing.npy",
    );
    fails(
        p,
        &with(&["--queries", "q.npy", "-k", "3", "--metric", "manhattan"]),
        "--metric \"manhattan\" is not valid",
    );
}

#[test]
fn scale_standardizes_and_keeps_columns() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let (n, d) = (1000, 7);
    let x = anisotropic(n, d, 1000.0, 3); // far from zero: a naive variance would lose digits
    let rows: Vec<Option<Vec<f64>>> = x.chunks(d).map(|r| Some(r.to_vec())).collect();
    write_parquet(
        &p.join("in.parquet"),
        &rows,
        Layout::List,
        DType::Float64,
        300,
    );
    let (code, _, err) = run(
        &[
            "scale",
            "in.parquet",
            "--output",
            "out.parquet",
            "--batch-rows",
            "77",
        ],
        p,
    );
    assert_eq!(code, 0, "{err}");
    let b = batches(&p.join("out.parquet"));
    let schema = b[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["id", "name", "embedding"]);
    let ids: Vec<i64> = b
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(ids, (0..n as i64).collect::<Vec<_>>());
    let got: Vec<f64> = b
        .iter()
        .flat_map(|b| {
            b.column(2)
                .as_fixed_size_list()
                .values()
                .as_primitive::<arrow_array::types::Float64Type>()
                .values()
                .to_vec()
        })
        .collect();
    for j in 0..d {
        let col: Vec<f64> = (0..n).map(|i| x[i * d + j]).collect();
        let mu = col.iter().sum::<f64>() / n as f64;
        let sd = (col.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / n as f64).sqrt();
        for i in 0..n {
            let want = (col[i] - mu) / sd;
            assert!((got[i * d + j] - want).abs() < 1e-9, "row {i} col {j}");
        }
    }
    // CSV input; a bad value names row and column, and nothing is written
    std::fs::write(p.join("a.csv"), "f1,f2,name\n1,2,a\n3,4,b\n5,6,c\n").unwrap();
    let (code, _, err) = run(&["scale", "a.csv", "--output", "a.parquet"], p);
    assert_eq!(code, 0, "{err}");
    std::fs::write(p.join("bad.csv"), "f1,f2,name\n1,2,a\n3,x,b\n").unwrap();
    fails(
        p,
        &["scale", "bad.csv", "--output", "b.parquet"],
        "bad.csv: row 1, column `f2`: \"x\" is not a number",
    );
    std::fs::write(p.join("ragged.csv"), "f1,f2\n1,2\n3\n").unwrap();
    fails(
        p,
        &["scale", "ragged.csv", "--output", "b.parquet"],
        "line 3: 1 fields, expected 2",
    );
    fails(
        p,
        &["scale", "in.parquet", "--output", "nodir/b.parquet"],
        "does not exist",
    );
}

#[test]
fn evaluate_and_sweep_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let (n, d) = (600, 5);
    let (x, y) = blobs(n, d, 4, 0.4, 9);
    let mut csv = String::from("label,a,b,c,d,e\n");
    for i in 0..n {
        csv.push_str(&format!("c{}", y[i]));
        for j in 0..d {
            csv.push_str(&format!(",{}", x[i * d + j]));
        }
        csv.push('\n');
    }
    std::fs::write(p.join("blobs.csv"), &csv).unwrap();
    let (code, stdout, err) = run(
        &[
            "sweep",
            "blobs.csv",
            "--n-clusters",
            "2:6:2",
            "--silhouette-sample",
            "200",
            "--output",
            "sw",
        ],
        p,
    );
    assert_eq!(code, 0, "{err}");
    let table = std::fs::read_to_string(p.join("sw.csv")).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("k,objective,"));
    let objective: Vec<f64> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(
        objective[0] > objective[1] && objective[1] > objective[2],
        "{objective:?}"
    );
    let svg = std::fs::read_to_string(p.join("sw.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("number of clusters k"));
    assert!(stdout.contains("silhouette"));
    // run, then evaluate its output against the labels and the embeddings
    let rows: Vec<Option<Vec<f64>>> = x.chunks(d).map(|r| Some(r.to_vec())).collect();
    write_parquet(
        &p.join("e.parquet"),
        &rows,
        Layout::FixedSize,
        DType::Float64,
        128,
    );
    let (code, _, err) = run(
        &[
            "run",
            "e.parquet",
            "--n-clusters",
            "4",
            "--reduce",
            "none",
            "--metric",
            "euclidean",
            "--output",
            "c.parquet",
        ],
        p,
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(
        &[
            "evaluate",
            "c.parquet",
            "--labels",
            "id",
            "--embeddings",
            "e.parquet",
            "--output",
            "ev.json",
        ],
        p,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("adjusted_rand_score"), "{out}");
    let ev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.join("ev.json")).unwrap()).unwrap();
    let b = batches(&p.join("c.parquet"));
    let pred: Vec<i64> = b
        .iter()
        .flat_map(|b| {
            let i = b.schema().index_of("cluster").unwrap();
            b.column(i)
                .as_primitive::<arrow_array::types::Int32Type>()
                .values()
                .iter()
                .map(|&v| v as i64)
                .collect::<Vec<_>>()
        })
        .collect();
    let ids: Vec<i64> = (0..n as i64).collect();
    use embedcluster::metrics as m;
    let close = |a: &serde_json::Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-12;
    assert!(close(
        &ev["external"]["adjusted_rand_score"],
        m::adjusted_rand_score(&ids, &pred).unwrap()
    ));
    assert!(close(
        &ev["internal"]["silhouette_score"],
        m::silhouette_score(
            &x,
            d,
            &pred,
            embedcluster::linalg::Distance::Euclidean,
            None,
            0
        )
        .unwrap()
    ));
    assert!(close(
        &ev["internal"]["davies_bouldin_score"],
        m::davies_bouldin_score(&x, d, &pred).unwrap()
    ));
    assert!(
        (ev["internal"]["calinski_harabasz_score"].as_f64().unwrap()
            - m::calinski_harabasz_score(&x, d, &pred).unwrap())
        .abs()
            < 1e-6
    );
    // bad inputs
    write_parquet(
        &p.join("short.parquet"),
        &rows[..500],
        Layout::FixedSize,
        DType::Float64,
        128,
    );
    fails(
        p,
        &[
            "evaluate",
            "c.parquet",
            "--embeddings",
            "short.parquet",
            "--output",
            "x.json",
        ],
        "short.parquet has 500 rows but c.parquet has 600 labels",
    );
    fails(
        p,
        &["evaluate", "c.parquet", "--output", "x.json"],
        "nothing to evaluate",
    );
    fails(
        p,
        &[
            "evaluate",
            "c.parquet",
            "--labels",
            "nope",
            "--output",
            "x.json",
        ],
        "column `nope`: no such column",
    );
    fails(
        p,
        &[
            "sweep",
            "blobs.csv",
            "--n-clusters",
            "2:700",
            "--output",
            "s2",
        ],
        "--n-clusters 700 is larger than n_samples = 600",
    );
    fails(
        p,
        &[
            "sweep",
            "blobs.csv",
            "--n-clusters",
            "5:2",
            "--output",
            "s2",
        ],
        "expected START:STOP[:STEP]",
    );
}
