//! The properties our fuzz targets check (`fuzz/`, cargo-fuzz), as plain functions so that
//! the crashes they found run again as regression tests (`tests/fuzz_regressions.rs`).
//! Each function panics exactly when the property fails.

use crate::io::{EmbeddingSource, NpyHeader};
use crate::persist::{parse_model, pipeline_from_loaded};
use std::path::Path;

/// Any bytes give a header or an error; an accepted header describes an array whose byte
/// size fits in `usize` and whose data starts inside the bytes read.
pub fn npy_header(data: &[u8]) {
    if let Ok(h) = NpyHeader::parse(data) {
        let bytes = h.shape.0 as u128 * h.shape.1 as u128 * h.dtype.size() as u128;
        assert!(bytes + h.data_offset as u128 <= usize::MAX as u128);
        assert!(h.data_offset <= data.len());
    }
}

/// The first two bytes give the length of `manifest.json`, the rest is
/// `model.safetensors`: loading never panics, and a model it accepts assigns rows of its
/// width.
pub fn model_loader(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let len = u16::from_le_bytes([data[0], data[1]]) as usize;
    let rest = &data[2..];
    let (manifest, tensors) = rest.split_at(len.min(rest.len()));
    let dir = Path::new("fuzz-model");
    let Ok(loaded) = parse_model(dir, manifest, tensors) else {
        return;
    };
    let Ok(model) = pipeline_from_loaded::<f32>(dir, loaded) else {
        return;
    };
    if model.n_features() <= 4096 {
        let mut block: Vec<f32> = (0..3 * model.n_features())
            .map(|i| 1.0 + i as f32)
            .collect();
        if let Ok(a) = model.assign_block(&mut block, (dir, "embedding"), 0) {
            assert_eq!(a.labels.len(), 3);
        }
    }
}

/// `data` written to `path` as a Parquet file either fails to open or read (with an
/// error), or gives blocks of exactly `n_features` finite values per row; with invalid
/// rows skipped, each block's rows plus skipped rows are its span.
pub fn parquet_column(data: &[u8], path: &Path) {
    std::fs::write(path, data).expect("write the temporary file");
    let Ok(src) = EmbeddingSource::open(path, "embedding") else {
        return;
    };
    let d = src.n_features();
    assert!(d > 0);
    for skip in [false, true] {
        let Ok(mut r) = src.blocks::<f32>(7) else {
            return;
        };
        if skip {
            r = r.skip_invalid();
        }
        while let Ok(Some(b)) = r.next_block() {
            assert_eq!(b.data.len(), b.rows * d);
            assert!(b.data.iter().all(|v| v.is_finite()));
            assert_eq!(b.rows + b.skipped.len(), b.span);
        }
    }
}
