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

/// The inputs kept for `target` (crashes found) and its fuzz seeds (`fuzz/seeds/`): the
/// properties hold on both, so the new targets run in `cargo test` before any crash.
fn inputs_and_seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = Vec::new();
    for dir in [
        root.join("tests/fuzz_regressions").join(target),
        root.join("../../fuzz/seeds").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for p in entries.map(|e| e.unwrap().path()) {
            v.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    v.sort();
    assert!(!v.is_empty(), "no inputs for {target}");
    v
}

#[test]
fn csv_reader_regressions() {
    let dir = tempfile::tempdir().unwrap();
    for (name, data) in inputs_and_seeds("csv_reader") {
        let path = dir.path().join("x.csv");
        let r = std::panic::catch_unwind(|| embedcluster::fuzzing::csv_reader(&data, &path));
        assert!(r.is_ok(), "{name}");
    }
}

#[test]
fn arrow_ffi_import_regressions() {
    for (name, data) in inputs_and_seeds("arrow_ffi_import") {
        let r = std::panic::catch_unwind(|| embedcluster::fuzzing::arrow_ffi_import(&data));
        assert!(r.is_ok(), "{name}");
    }
}

#[test]
fn model_pair_regressions() {
    for (name, data) in inputs_and_seeds("model_pair") {
        let r = std::panic::catch_unwind(|| embedcluster::fuzzing::model_pair(&data));
        assert!(r.is_ok(), "{name}");
    }
}

/// A foreign batch whose list offsets run past the values, or whose fixed-size list's
/// child is too short (found by the `arrow_ffi_import` target: arrow-rs's stream reader
/// panicked building it), is an error naming the stream (`io::import_batch`).
#[test]
fn foreign_batches_with_inconsistent_lengths_are_errors() {
    use arrow_array::ffi::FFI_ArrowArray;
    use arrow_buffer::Buffer;
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;
    let item = Arc::new(Field::new("item", DataType::Float32, true));
    let values = || {
        let v = arrow_data::ArrayDataBuilder::new(DataType::Float32)
            .len(4)
            .add_buffer(Buffer::from_vec(vec![1.0f32, 2.0, 3.0, 4.0]));
        unsafe { v.build_unchecked() }
    };
    let cases = [
        (
            DataType::List(item.clone()),
            Some(Buffer::from_vec(vec![0i32, 2, 40])),
        ),
        (DataType::FixedSizeList(item, 3), None),
    ];
    for (dt, offsets) in cases {
        let mut list = arrow_data::ArrayDataBuilder::new(dt.clone())
            .len(2)
            .add_child_data(values());
        if let Some(o) = offsets {
            list = list.add_buffer(o);
        }
        // SAFETY: the buffers are as long as the declared lengths need; only offsets or the
        // child's length are wrong
        let list = unsafe { list.build_unchecked() };
        let schema = Arc::new(Schema::new(vec![Field::new("embedding", dt, true)]));
        let batch = arrow_data::ArrayDataBuilder::new(DataType::Struct(schema.fields().clone()))
            .len(2)
            .add_child_data(list);
        let batch = unsafe { batch.build_unchecked() };
        let r = unsafe {
            embedcluster::io::import_batch(
                FFI_ArrowArray::new(&batch),
                &schema,
                Path::new("<arrow stream>"),
            )
        };
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("<arrow stream>") && e.contains("inconsistent Arrow batch"),
            "{e}"
        );
    }
}
