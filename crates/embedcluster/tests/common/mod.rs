//! Helpers shared by the integration tests: deterministic data and small files.
#![allow(dead_code)]

use arrow_array::builder::{
    FixedSizeListBuilder, Float32Builder, Float64Builder, LargeListBuilder, ListBuilder,
};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use embedcluster::io::write_npy_header;
use embedcluster::DType;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// A small deterministic generator (SplitMix64) so tests need no RNG crate.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// `k` Gaussian blobs in `d` dimensions: returns (rows x d data, labels).
pub fn blobs(n: usize, d: usize, k: usize, spread: f64, seed: u64) -> (Vec<f64>, Vec<i64>) {
    let mut rng = Rng::new(seed);
    let centers: Vec<f64> = (0..k * d).map(|_| rng.normal() * 5.0).collect();
    let mut x = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % k;
        y.push(c as i64);
        for j in 0..d {
            x.push(centers[c * d + j] + spread * rng.normal());
        }
    }
    (x, y)
}

/// Anisotropic data with a mean far from zero: x = offset + A z.
pub fn anisotropic(n: usize, d: usize, offset: f64, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    let a: Vec<f64> = (0..d * d).map(|_| rng.normal()).collect();
    let mut x = Vec::with_capacity(n * d);
    for _ in 0..n {
        let z: Vec<f64> = (0..d).map(|j| rng.normal() / (1.0 + j as f64)).collect();
        for i in 0..d {
            x.push(offset + (0..d).map(|j| a[i * d + j] * z[j]).sum::<f64>());
        }
    }
    x
}

pub fn normalize_rows(x: &mut [f64], d: usize) {
    for r in x.chunks_exact_mut(d) {
        let n = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        r.iter_mut().for_each(|v| *v /= n);
    }
}

/// The column layouts a reader must accept.
#[derive(Clone, Copy, Debug)]
pub enum Layout {
    List,
    LargeList,
    FixedSize,
}

/// Writes rows (as f64, stored as `dtype`) to a Parquet file with columns `id` (int64),
/// `name` (utf8) and `embedding` in the given layout; `None` rows are null.
pub fn write_parquet(
    path: &Path,
    rows: &[Option<Vec<f64>>],
    layout: Layout,
    dtype: DType,
    row_group: usize,
) {
    let d = rows.iter().flatten().map(|r| r.len()).max().unwrap_or(0);
    let emb: ArrayRef = match dtype {
        DType::Float32 => build(rows, layout, d, Float32Builder::new(), |b, v| {
            b.append_value(v as f32)
        }),
        DType::Float64 => build(rows, layout, d, Float64Builder::new(), |b, v| {
            b.append_value(v)
        }),
    };
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows.len() as i64));
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..rows.len()).map(|i| format!("row{i}")),
    ));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", ids.data_type().clone(), false),
        Field::new("name", names.data_type().clone(), false),
        Field::new("embedding", emb.data_type().clone(), true),
    ]));
    let batch = RecordBatch::try_new(schema.clone(), vec![ids, names, emb]).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group))
        .build();
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn build<B, F>(rows: &[Option<Vec<f64>>], layout: Layout, d: usize, inner: B, push: F) -> ArrayRef
where
    B: arrow_array::builder::ArrayBuilder,
    F: Fn(&mut B, f64),
{
    macro_rules! fill {
        ($b:expr, $fixed:expr) => {{
            let mut b = $b;
            for r in rows {
                match r {
                    Some(v) => {
                        for &x in v {
                            if x.is_nan() && x.is_sign_negative() {
                                b.values().append_null_placeholder();
                            } else {
                                push(b.values(), x);
                            }
                        }
                        b.append(true);
                    }
                    None => {
                        if $fixed {
                            for _ in 0..d {
                                push(b.values(), 0.0);
                            }
                        }
                        b.append(false);
                    }
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    match layout {
        Layout::List => fill!(ListBuilder::new(inner), false),
        Layout::LargeList => fill!(LargeListBuilder::new(inner), false),
        Layout::FixedSize => fill!(FixedSizeListBuilder::new(inner, d as i32), true),
    }
}

/// Lets `build` write a null element where a row holds a negative NaN (test marker).
pub trait NullPlaceholder {
    fn append_null_placeholder(&mut self);
}
impl<B: arrow_array::builder::ArrayBuilder> NullPlaceholder for B {
    fn append_null_placeholder(&mut self) {
        if let Some(b) = self.as_any_mut().downcast_mut::<Float32Builder>() {
            b.append_null();
        } else if let Some(b) = self.as_any_mut().downcast_mut::<Float64Builder>() {
            b.append_null();
        }
    }
}

/// Writes a 2-D `.npy` file.
pub fn write_npy(path: &Path, x: &[f64], d: usize, dtype: DType) {
    let mut f = std::fs::File::create(path).unwrap();
    write_npy_header(&mut f, dtype, x.len() / d, d).unwrap();
    for &v in x {
        match dtype {
            DType::Float32 => f.write_all(&(v as f32).to_le_bytes()).unwrap(),
            DType::Float64 => f.write_all(&v.to_le_bytes()).unwrap(),
        }
    }
}

/// Reads all blocks of a source into one matrix.
pub fn read_all<T: embedcluster::Real>(
    src: &embedcluster::io::EmbeddingSource,
    batch_rows: usize,
) -> embedcluster::Result<Vec<T>> {
    let mut out = Vec::new();
    let mut r = src.blocks::<T>(batch_rows)?;
    while let Some(b) = r.next_block()? {
        assert!(b.rows <= batch_rows);
        out.extend_from_slice(b.data);
    }
    Ok(out)
}
