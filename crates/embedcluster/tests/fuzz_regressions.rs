//! Every input our fuzzers found crashing (`fuzz/`, kept under `tests/fuzz_regressions/`)
//! runs again through the same property functions: a crash that comes back fails here.
use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(target);
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn model_loader_regressions() {
    let found = inputs("model_loader");
    assert!(!found.is_empty());
    for (name, data) in found {
        // a model with two `pca:` steps used to reach an assertion in the projection
        let r = std::panic::catch_unwind(|| embedcluster::fuzzing::model_loader(&data));
        assert!(r.is_ok(), "{name}");
    }
}

#[test]
fn parquet_column_regressions() {
    let dir = tempfile::tempdir().unwrap();
    let found = inputs("parquet_column");
    assert!(!found.is_empty());
    for (name, data) in found {
        // a column chunk with a negative start offset panicked inside the parquet crate;
        // the reader now reports it as a corrupt file
        let path = dir.path().join("x.parquet");
        let r = std::panic::catch_unwind(|| embedcluster::fuzzing::parquet_column(&data, &path));
        assert!(r.is_ok(), "{name}");
        if let Err(e) = embedcluster::io::EmbeddingSource::open(&path, "embedding") {
            assert!(e.to_string().contains("x.parquet: cannot read file"), "{e}");
        }
    }
}

#[test]
fn npy_header_regressions() {
    for (name, data) in inputs("npy_header") {
        let r = std::panic::catch_unwind(|| embedcluster::fuzzing::npy_header(&data));
        assert!(r.is_ok(), "{name}");
    }
}
