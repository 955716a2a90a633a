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
    file_blocks::<f32>(data, path, 7);
}

/// `data` written to `path` as a CSV file: as [`parquet_column`], read as float64.
pub fn csv_reader(data: &[u8], path: &Path) {
    file_blocks::<f64>(data, path, 5);
}

/// The property of [`parquet_column`] and [`csv_reader`]: `data` as the file `path`, read
/// in blocks of `rows` rows, with and without skipping invalid rows; no more rows than the
/// source counts.
fn file_blocks<T: crate::dtype::Real>(data: &[u8], path: &Path, rows: usize) {
    std::fs::write(path, data).expect("write the temporary file");
    let Ok(src) = EmbeddingSource::open(path, "embedding") else {
        return;
    };
    let d = src.n_features();
    assert!(d > 0);
    for skip in [false, true] {
        let Ok(mut r) = src.blocks::<T>(rows) else {
            return;
        };
        if skip {
            r = r.skip_invalid();
        }
        let mut seen = 0;
        while let Ok(Some(b)) = r.next_block() {
            assert_eq!(b.data.len(), b.rows * d);
            assert!(b.data.iter().all(|v| v.to_f64().is_finite()));
            assert_eq!(b.rows + b.skipped.len(), b.span);
            seen += b.span;
        }
        assert!(seen <= src.n_samples());
    }
}

/// Little-endian reader over the fuzz bytes (zeros once they run out).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
}

/// A batch as a foreign producer may send it through the Arrow C data interface: one
/// column, any list / large_list / fixed_size_list of float32/float64, with lengths,
/// offsets, child length and null bitmaps taken from `data` (buffers as long as the
/// declared lengths need, their contents arbitrary, so offsets may be out of order or past
/// the values and a child may be too short), exported with `FFI_ArrowArray` and imported by
/// [`import_batch`], as the Python bindings import a stream's batches. The property: the
/// import fails with an error, or decoding the column never panics and gives `d` finite
/// values per row kept.
///
/// [`import_batch`]: crate::io::import_batch
pub fn arrow_ffi_import(data: &[u8]) {
    use arrow_array::ffi::FFI_ArrowArray;
    use arrow_buffer::Buffer;
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    let mut b = Bytes(data);
    let sel = b.u8();
    let item = if sel & 1 == 0 {
        DataType::Float32
    } else {
        DataType::Float64
    };
    let item_size = if sel & 1 == 0 { 4 } else { 8 };
    let field = Arc::new(Field::new("item", item.clone(), sel & 8 != 0));
    let len = (b.u8() % 17) as usize;
    let offset = (b.u8() % 5) as usize;
    let child_len = (b.u8() as usize) % 64;
    let bitmap = |b: &mut Bytes, n: usize| {
        Buffer::from_vec((0..n.div_ceil(8)).map(|_| b.u8()).collect::<Vec<u8>>())
    };
    let values: Vec<u8> = (0..child_len * item_size).map(|_| b.u8()).collect();
    let mut child = arrow_data::ArrayDataBuilder::new(item)
        .len(child_len)
        .add_buffer(Buffer::from_vec(values));
    if sel & 32 != 0 {
        child = child.null_bit_buffer(Some(bitmap(&mut b, child_len)));
    }
    // SAFETY: the child's buffers are as long as its declared length needs.
    let child = unsafe { child.build_unchecked() };
    let (data_type, offsets) = match (sel >> 1) % 3 {
        0 => {
            let o: Vec<i32> = (0..len + offset + 1)
                .map(|_| (b.u32() % 80) as i32)
                .collect();
            (DataType::List(field), Some(Buffer::from_vec(o)))
        }
        1 => {
            let o: Vec<i64> = (0..len + offset + 1)
                .map(|_| (b.u32() % 80) as i64)
                .collect();
            (DataType::LargeList(field), Some(Buffer::from_vec(o)))
        }
        _ => (
            DataType::FixedSizeList(field, 1 + (b.u8() % 6) as i32),
            None,
        ),
    };
    let mut list = arrow_data::ArrayDataBuilder::new(data_type.clone())
        .len(len)
        .offset(offset)
        .add_child_data(child);
    if let Some(o) = offsets {
        list = list.add_buffer(o);
    }
    if sel & 16 != 0 {
        list = list.null_bit_buffer(Some(bitmap(&mut b, len + offset)));
    }
    // SAFETY: every buffer is as long as the declared length and offset need (what the C
    // interface's importer reads); only their contents are inconsistent.
    let list = unsafe { list.build_unchecked() };
    let schema = Arc::new(Schema::new(vec![Field::new(
        "embedding",
        data_type.clone(),
        true,
    )]));
    let batch = arrow_data::ArrayDataBuilder::new(DataType::Struct(schema.fields().clone()))
        .len(len.saturating_sub((b.u8() % 2) as usize)) // sometimes shorter than its column
        .add_child_data(list);
    // SAFETY: a struct has no buffers of its own.
    let batch = unsafe { batch.build_unchecked() };
    let exported = FFI_ArrowArray::new(&batch);
    let src = Path::new(crate::io::ARROW_ORIGIN);
    // SAFETY: `exported` was just made by arrow-rs for a struct of `schema`'s fields.
    let Ok(batch) = (unsafe { crate::io::import_batch(exported, &schema, src) }) else {
        return;
    };
    let array = batch.column(0).clone();
    let Ok(mut col) = crate::io::VectorColumn::new(&data_type, src, "embedding") else {
        return;
    };
    if arrow_array::Array::is_empty(&array) {
        return;
    }
    let Ok(d) = col.learn_dimension(&array) else {
        return;
    };
    for skip in [false, true] {
        let mut buf: Vec<f64> = Vec::new();
        let mut skipped = Vec::new();
        let n = arrow_array::Array::len(&array);
        let r = col.append_rows_skipping(&array, 0, n, 0, &mut buf, skip.then_some(&mut skipped));
        if r.is_ok() {
            assert_eq!(buf.len(), (n - skipped.len()) * d);
            assert!(buf.iter().all(|v| v.is_finite()));
        }
    }
}

/// A model directory's two files where the manifest's record of `model.safetensors`
/// (length and checksum) always matches the tensor bytes: the first two bytes give the
/// length of `manifest.json`, the rest is `model.safetensors` (as [`model_loader`]), and a
/// manifest that parses as a JSON object gets `files."model.safetensors"` rewritten for the
/// bytes, so mutated tensors are not all stopped by the checksum and reach the tensor and
/// shape checks. Loading never panics; a model it accepts assigns rows of its width.
pub fn model_pair(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let len = u16::from_le_bytes([data[0], data[1]]) as usize;
    let rest = &data[2..];
    let (manifest, tensors) = rest.split_at(len.min(rest.len()));
    let Ok(serde_json::Value::Object(mut m)) = serde_json::from_slice(manifest) else {
        return model_loader(data);
    };
    let files = m
        .entry("files")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    if let serde_json::Value::Object(f) = files {
        f.insert(
            "model.safetensors".into(),
            serde_json::json!({
                "bytes": tensors.len(),
                "fnv1a64": format!("{:016x}", crate::persist::fnv1a64(tensors)),
            }),
        );
    }
    let fixed = serde_json::to_vec(&serde_json::Value::Object(m)).expect("serialize JSON");
    if fixed.len() > u16::MAX as usize {
        return;
    }
    let mut again = (fixed.len() as u16).to_le_bytes().to_vec();
    again.extend_from_slice(&fixed);
    again.extend_from_slice(tensors);
    model_loader(&again);
}
