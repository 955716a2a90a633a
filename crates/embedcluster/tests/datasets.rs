//! Datasets: a directory of Parquet parts, a glob or several paths read as one table must
//! give exactly what one file holding the same rows gives (rows, labels, outputs), and
//! every bad dataset is an error naming the file at fault, with no output left behind.

mod common;

use common::{write_parquet, Layout, Rng};
use embedcluster::io::EmbeddingSource;
use embedcluster::jobs::generate::{generate, generate_parts, GenerateParams};
use embedcluster::jobs::run::{run_full, Reduce, RunConfig};
use embedcluster::runtime::Runtime;
use embedcluster::DType;
use std::path::{Path, PathBuf};

fn rows(n: usize, d: usize, seed: u64) -> Vec<Option<Vec<f64>>> {
    let mut r = Rng::new(seed);
    (0..n)
        .map(|i| Some((0..d).map(|j| r.normal() + (i % 3 * j) as f64).collect()))
        .collect()
}

fn read(src: &EmbeddingSource, batch_rows: usize) -> (Vec<f32>, Vec<u64>) {
    let mut out = Vec::new();
    let mut starts = Vec::new();
    let mut r = src.blocks::<f32>(batch_rows).unwrap();
    while let Some(b) = r.next_block().unwrap() {
        starts.push(b.start_row);
        out.extend_from_slice(b.data);
    }
    (out, starts)
}

fn params(n: usize) -> GenerateParams {
    GenerateParams {
        n_samples: n,
        n_features: 24,
        n_clusters: 6,
        seed: 3,
        noise: None,
    }
}

fn run_cfg(inputs: Vec<PathBuf>) -> RunConfig {
    let mut cfg = RunConfig::new("", 6);
    cfg.inputs = inputs;
    cfg.reduce = Reduce::Pca(8);
    cfg.labels_column = Some("label".into());
    cfg
}

#[test]
fn a_directory_reads_as_its_parts_in_order_with_blocks_across_parts() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("ds");
    std::fs::create_dir(&dir).unwrap();
    let all = rows(103, 5, 1);
    // parts of different sizes and layouts, row groups that do not line up with blocks
    write_parquet(
        &dir.join("part-0.parquet"),
        &all[..40],
        Layout::List,
        DType::Float32,
        7,
    );
    write_parquet(
        &dir.join("part-1.parquet"),
        &all[40..41],
        Layout::List,
        DType::Float32,
        7,
    );
    write_parquet(
        &dir.join("part-2.parquet"),
        &all[41..],
        Layout::List,
        DType::Float32,
        16,
    );
    std::fs::write(dir.join("_SUCCESS"), b"").unwrap();
    std::fs::write(dir.join(".part-0.parquet.crc"), b"junk").unwrap();
    let one = d.path().join("one.parquet");
    write_parquet(&one, &all, Layout::List, DType::Float32, 64);
    let file = EmbeddingSource::open(&one, "embedding").unwrap();
    let (want, _) = read(&file, 1000);
    let mut set = EmbeddingSource::open(&dir, "embedding").unwrap();
    assert_eq!((set.n_samples(), set.n_features()), (103, 5));
    for decoders in [1, 2, 3] {
        set.set_decoder_threads(decoders);
        for batch in [1, 9, 40, 41, 1000] {
            let (got, starts) = read(&set, batch);
            assert_eq!(got, want, "batch {batch}, {decoders} decoders");
            let expect: Vec<u64> = (0..103u64).step_by(batch).collect();
            assert_eq!(starts, expect);
        }
    }
    // row 45 of the dataset is row 4 of the third part
    assert_eq!(set.locate(45), (dir.join("part-2.parquet").as_path(), 4));
    let names: Vec<_> = set
        .parts()
        .into_iter()
        .map(|p| (p.name, p.n_samples))
        .collect();
    assert_eq!(
        names,
        [
            (PathBuf::from("part-0.parquet"), 40),
            (PathBuf::from("part-1.parquet"), 1),
            (PathBuf::from("part-2.parquet"), 62)
        ]
    );
    // a glob and a list of paths give the same rows
    let glob = EmbeddingSource::open(dir.join("part-*.parquet"), "embedding").unwrap();
    assert_eq!(read(&glob, 10).0, want);
    let list: Vec<PathBuf> = (0..3)
        .map(|i| dir.join(format!("part-{i}.parquet")))
        .collect();
    let listed = EmbeddingSource::open_inputs(&list, "embedding").unwrap();
    assert_eq!(read(&listed, 10).0, want);
}

#[test]
fn generated_parts_are_the_single_file_and_cluster_the_same() {
    let d = tempfile::tempdir().unwrap();
    let one = d.path().join("one.parquet");
    let dir = d.path().join("parts");
    generate(params(30_000), &one, &|_| {}).unwrap();
    let pool1 = Runtime {
        threads: Some(1),
        ..Default::default()
    };
    let pool2 = Runtime {
        threads: Some(2),
        ..Default::default()
    };
    pool2
        .install(|| generate_parts(params(30_000), &dir, 3, &|_| {}))
        .unwrap();
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let file = EmbeddingSource::open(&one, "embedding").unwrap();
    let set = EmbeddingSource::open(&dir, "embedding").unwrap();
    assert_eq!(read(&file, 4096).0, read(&set, 4096).0);
    // the run: same labels, centroids and scores from the file and from the directory,
    // and the per-part output holds the file output's rows, part by part
    let mut a = run_cfg(vec![one.clone()]);
    a.output = Some(d.path().join("one.out.parquet"));
    let mut b = run_cfg(vec![dir.clone()]);
    let out_dir = d.path().join("out/");
    b.output = Some(out_dir.clone());
    let ra = run_full(&a, &pool1).unwrap();
    let rb = run_full(&b, &pool2).unwrap();
    assert_eq!(ra.labels, rb.labels);
    assert_eq!(ra.scores, rb.scores);
    assert_eq!(ra.cluster_centers, rb.cluster_centers);
    assert_eq!(ra.report.ari, rb.report.ari);
    assert!(ra.report.ari.unwrap() > 0.5);
    let whole = embedcluster::jobs::evaluate::read_label_column(
        &d.path().join("one.out.parquet"),
        "cluster",
    )
    .unwrap();
    let parts = embedcluster::jobs::evaluate::read_label_column(&out_dir, "cluster").unwrap();
    assert_eq!(whole, parts);
    let mut out_names: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    out_names.sort();
    let mut in_names = names.clone();
    in_names.sort();
    assert_eq!(out_names, in_names);
}

fn write_hive(root: &Path, layout: Layout) -> Vec<Option<Vec<f64>>> {
    let all = rows(60, 4, 7);
    for (i, (lang, year)) in [("de", "2023"), ("en", "2023"), ("en", "2024")]
        .iter()
        .enumerate()
    {
        let dir = root.join(format!("lang={lang}/year={year}"));
        std::fs::create_dir_all(&dir).unwrap();
        write_parquet(
            &dir.join("p.parquet"),
            &all[i * 20..(i + 1) * 20],
            layout,
            DType::Float32,
            8,
        );
    }
    all
}

#[test]
fn hive_partition_folders_become_typed_columns_and_stay_folders_in_part_outputs() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("hive");
    write_hive(&root, Layout::FixedSize);
    let src = EmbeddingSource::open(&root, "embedding").unwrap();
    assert_eq!(src.partition_keys(), ["lang", "year"]);
    let others: Vec<_> = src
        .other_columns(7)
        .unwrap()
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    let schema = others[0].schema();
    let names: Vec<_> = schema.fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["id", "name", "lang", "year"]);
    assert_eq!(schema.field(3).data_type(), &arrow_schema::DataType::Int32);
    assert_eq!(others.iter().map(|b| b.num_rows()).sum::<usize>(), 60);
    use arrow_array::cast::AsArray;
    let langs: Vec<String> = others
        .iter()
        .flat_map(|b| {
            b.column(2)
                .as_string::<i32>()
                .iter()
                .map(|s| s.unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(&langs[18..22], ["de", "de", "en", "en"]);
    // a label column from the folders; a per-part output keeps the folders, not the columns
    let mut cfg = RunConfig::new("", 3);
    cfg.inputs = vec![root.clone()];
    cfg.reduce = Reduce::None;
    cfg.labels_column = Some("lang".into());
    let out = d.path().join("out/");
    cfg.output = Some(out.clone());
    let r = run_full(&cfg, &Runtime::default()).unwrap();
    assert!(r.report.ari.is_some());
    let part = out.join("lang=en/year=2024/p.parquet");
    let file = std::fs::File::open(&part).unwrap();
    let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let names: Vec<_> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["id", "name", "cluster", "score"]);
    assert_eq!(b.metadata().file_metadata().num_rows(), 20);
}

#[test]
fn an_empty_part_is_skipped_and_kept_empty_in_part_outputs() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("ds");
    std::fs::create_dir(&dir).unwrap();
    let all = rows(30, 3, 2);
    write_parquet(
        &dir.join("a.parquet"),
        &all[..10],
        Layout::List,
        DType::Float32,
        8,
    );
    write_parquet(&dir.join("b.parquet"), &[], Layout::List, DType::Float32, 8);
    write_parquet(
        &dir.join("c.parquet"),
        &all[10..],
        Layout::List,
        DType::Float32,
        8,
    );
    let src = EmbeddingSource::open(&dir, "embedding").unwrap();
    assert_eq!((src.n_samples(), src.n_features()), (30, 3));
    let one = d.path().join("one.parquet");
    write_parquet(&one, &all, Layout::List, DType::Float32, 8);
    assert_eq!(
        read(&src, 4).0,
        read(&EmbeddingSource::open(&one, "embedding").unwrap(), 4).0
    );
    let mut cfg = RunConfig::new("", 2);
    cfg.inputs = vec![dir.clone()];
    cfg.reduce = Reduce::None;
    let out = d.path().join("out/");
    cfg.output = Some(out.clone());
    run_full(&cfg, &Runtime::default()).unwrap();
    let rows_of = |p: &Path| {
        let f = std::fs::File::open(p).unwrap();
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .metadata()
            .file_metadata()
            .num_rows()
    };
    assert_eq!(rows_of(&out.join("a.parquet")), 10);
    assert_eq!(rows_of(&out.join("b.parquet")), 0);
    assert_eq!(rows_of(&out.join("c.parquet")), 20);
}

#[test]
fn invalid_rows_are_named_by_part_and_skipped_rows_are_global() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("ds");
    std::fs::create_dir(&dir).unwrap();
    let mut all = rows(30, 3, 4);
    all[13] = Some(vec![1.0, f64::NAN, 0.0]);
    all[25] = None;
    write_parquet(
        &dir.join("a.parquet"),
        &all[..10],
        Layout::List,
        DType::Float32,
        4,
    );
    write_parquet(
        &dir.join("b.parquet"),
        &all[10..],
        Layout::List,
        DType::Float32,
        4,
    );
    let src = EmbeddingSource::open(&dir, "embedding").unwrap();
    let mut r = src.blocks::<f32>(8).unwrap();
    let e = loop {
        match r.next_block() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(
        e.contains("b.parquet: row 3, column `embedding`[1]: value is NaN"),
        "{e}"
    );
    let mut r = src.blocks::<f32>(8).unwrap().skip_invalid();
    let mut skipped = Vec::new();
    while let Some(b) = r.next_block().unwrap() {
        skipped.extend_from_slice(b.skipped);
    }
    assert_eq!(skipped, [13, 25]);
}

fn err(inputs: &[PathBuf]) -> String {
    EmbeddingSource::open_inputs(inputs, "embedding")
        .unwrap_err()
        .to_string()
}

#[test]
fn parts_that_disagree_are_errors_naming_the_part() {
    let d = tempfile::tempdir().unwrap();
    let mk = |name: &str| {
        let p = d.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    // another dimension
    let dim = mk("dim");
    write_parquet(
        &dim.join("a.parquet"),
        &rows(5, 4, 1),
        Layout::List,
        DType::Float32,
        8,
    );
    write_parquet(
        &dim.join("b.parquet"),
        &rows(5, 3, 1),
        Layout::List,
        DType::Float32,
        8,
    );
    let e = err(&[dim]);
    assert!(
        e.contains("b.parquet") && e.contains("3 features") && e.contains("same dimension"),
        "{e}"
    );
    // another element type
    let ty = mk("type");
    write_parquet(
        &ty.join("a.parquet"),
        &rows(5, 4, 1),
        Layout::List,
        DType::Float32,
        8,
    );
    write_parquet(
        &ty.join("b.parquet"),
        &rows(5, 4, 1),
        Layout::List,
        DType::Float64,
        8,
    );
    let e = err(&[ty]);
    assert!(e.contains("b.parquet") && e.contains("same type"), "{e}");
    // another layout
    let fx = mk("layout");
    write_parquet(
        &fx.join("a.parquet"),
        &rows(5, 4, 1),
        Layout::List,
        DType::Float32,
        8,
    );
    write_parquet(
        &fx.join("b.parquet"),
        &rows(5, 4, 1),
        Layout::FixedSize,
        DType::Float32,
        8,
    );
    let e = err(&[fx]);
    assert!(
        e.contains("b.parquet") && e.contains("fixed_size_list"),
        "{e}"
    );
    // other columns
    let sc = mk("schema");
    write_parquet(
        &sc.join("a.parquet"),
        &rows(5, 4, 1),
        Layout::List,
        DType::Float32,
        8,
    );
    common::write_npy(&sc.join("b.npy"), &[0.0; 8], 4, DType::Float32);
    let npy = err(&[sc.join("a.parquet"), sc.join("b.npy")]);
    assert!(
        npy.contains("b.npy") && npy.contains("Parquet files only"),
        "{npy}"
    );
    // a partition key that is also a column
    let hv = mk("hive/id=1");
    write_parquet(
        &hv.join("a.parquet"),
        &rows(5, 4, 1),
        Layout::List,
        DType::Float32,
        8,
    );
    let e = err(&[d.path().join("hive")]);
    assert!(
        e.contains("partition key `id`") && e.contains("also a column"),
        "{e}"
    );
    // nothing to read
    let empty = mk("empty");
    std::fs::write(empty.join("_SUCCESS"), b"").unwrap();
    let e = err(&[empty]);
    assert!(e.contains("holds no Parquet files"), "{e}");
    let only_empty = mk("only_empty");
    write_parquet(
        &only_empty.join("a.parquet"),
        &[],
        Layout::List,
        DType::Float32,
        8,
    );
    let e = err(&[only_empty.clone()]);
    assert!(e.contains("only_empty") && e.contains("no rows"), "{e}");
}

#[test]
fn a_failing_run_leaves_no_part_output() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("ds");
    std::fs::create_dir(&dir).unwrap();
    let mut all = rows(40, 3, 5);
    all[35] = Some(vec![0.0, 0.0, 0.0]); // cannot be normalized for cosine
    write_parquet(
        &dir.join("a.parquet"),
        &all[..20],
        Layout::List,
        DType::Float32,
        8,
    );
    write_parquet(
        &dir.join("b.parquet"),
        &all[20..],
        Layout::List,
        DType::Float32,
        8,
    );
    let mut cfg = RunConfig::new("", 2);
    cfg.inputs = vec![dir.clone()];
    cfg.reduce = Reduce::None;
    cfg.output = Some(d.path().join("out/"));
    let e = run_full(&cfg, &Runtime::default()).unwrap_err().to_string();
    assert!(e.contains("b.parquet: row 15"), "{e}");
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["ds"], "nothing but the input is left");
}
