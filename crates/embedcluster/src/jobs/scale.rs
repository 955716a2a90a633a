//! `embedcluster scale`: standardize a file into a new Parquet file, in two streaming passes.

use crate::dtype::Real;
use crate::preprocessing::{MomentsAccumulator, StandardScaler};

/// What `embedcluster scale` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScaleReport {
    pub input: String,
    pub output: String,
    pub n_samples: usize,
    pub n_features: usize,
    pub dtype: crate::dtype::DType,
    pub scaler: StandardScaler,
    pub stages: Vec<crate::memory::StageReport>,
    pub peak_rss_bytes: u64,
    /// How the stage peaks were measured, and what they mean ([`crate::memory::StagePeaksInfo`]).
    pub stage_peaks: crate::memory::StagePeaksInfo,
}

/// Standardizes a file in two passes: pass 1 merges per-block [`Moments`] (Chan, Golub and
/// LeVeque 1979), pass 2 writes `(x - mean_) / scale_` block by block into a new Parquet
/// file, atomically. The other columns of a Parquet input are kept, in their order; the
/// embedding column becomes `fixed_size_list<float32|float64>[d]` of the input dtype.
///
/// Peak memory: one block (`batch_rows d s`) + one Arrow batch of the other columns + the
/// row groups being encoded (about 8 MiB each, one per thread plus the one being filled,
/// with their compressed pages) + `3 d 8` of statistics.
///
/// # Errors
/// Reader errors (file, row, column); [`Error::Parameter`] if `batch_rows` is 0 or the
/// input already has the output's name. No output file is left behind on error.
pub fn scale_file(
    inputs: &[std::path::PathBuf],
    column: &str,
    output: &std::path::Path,
    batch_rows: usize,
    with_mean: bool,
    with_std: bool,
    rt: &crate::runtime::Runtime,
) -> crate::error::Result<ScaleReport> {
    use crate::error::Error;
    let progress = rt.progress;
    use crate::io::EmbeddingSource;
    if batch_rows == 0 {
        return Err(Error::param("batch_rows", 0, "must be at least 1"));
    }
    let mut rec = crate::memory::StageRecorder::new();
    let source = rec.stage("open", || {
        let s = EmbeddingSource::open_inputs(inputs, column)?;
        let n = s.n_samples() as u64;
        Ok::<_, Error>((s, n))
    })?;
    drop(crate::io::AtomicFile::create(output)?);
    rt.install(|| match source.dtype() {
        crate::dtype::DType::Float32 => scale_typed::<f32>(
            &source, output, batch_rows, with_mean, with_std, rec, progress,
        ),
        crate::dtype::DType::Float64 => scale_typed::<f64>(
            &source, output, batch_rows, with_mean, with_std, rec, progress,
        ),
    })
}

fn scale_typed<T: Real>(
    source: &crate::io::EmbeddingSource,
    output: &std::path::Path,
    batch_rows: usize,
    with_mean: bool,
    with_std: bool,
    mut rec: crate::memory::StageRecorder,
    progress: &dyn crate::runtime::Progress,
) -> crate::error::Result<ScaleReport> {
    use crate::error::Error;
    use arrow_array::{ArrayRef, FixedSizeListArray, PrimitiveArray, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;
    let (n, d) = (source.n_samples(), source.n_features());
    let moments = rec.stage("fit", || {
        progress.begin("fit", Some(n as u64));
        let mut m = MomentsAccumulator::new(d);
        let mut r = source.blocks::<T>(batch_rows)?;
        while let Some(b) = r.next_block()? {
            m.push(b.data);
            progress.advance(b.rows as u64);
        }
        progress.end();
        let rows = r.rows_read();
        Ok::<_, Error>((m.finish(), rows))
    })?;
    let scaler = StandardScaler::from_moments(&moments, with_mean, with_std);
    rec.stage("transform_write", || {
        let others = source.other_columns(crate::io::ARROW_BATCH_ROWS)?;
        let item = Arc::new(Field::new("item", T::arrow_type(), false));
        let vec_field = Field::new(
            source.column(),
            DataType::FixedSizeList(item.clone(), d as i32),
            false,
        );
        let at = source.column_index().unwrap_or(0);
        let mut fields: Vec<Arc<Field>> = others
            .as_ref()
            .map(|o| o.schema().fields().iter().cloned().collect())
            .unwrap_or_default();
        let at = at.min(fields.len());
        fields.insert(at, Arc::new(vec_field));
        let schema = Arc::new(Schema::new(fields));
        let atomic = crate::io::AtomicFile::create(output)?;
        // row groups of about 8 MiB of vectors, encoded and compressed on the pool's
        // threads while this one reads and standardizes the next rows
        let group_rows = ((8usize << 20) / (d * std::mem::size_of::<T>())).clamp(1024, 65536);
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .set_max_row_group_row_count(Some(group_rows))
            .build();
        let mut w = crate::io::RowGroupEncoder::new(
            atomic.try_clone()?,
            schema.clone(),
            props,
            group_rows,
            rayon::current_num_threads(),
            output,
        )?;
        progress.begin("transform", Some(n as u64));
        let mut reader = source.blocks::<T>(batch_rows)?;
        // Rows read but not yet written, and where they start.
        let mut pending: Vec<T> = Vec::new();
        let mut pend_at = 0usize;
        let mut written = 0usize;
        let write = |w: &mut crate::io::RowGroupEncoder<std::fs::File>,
                     vals: Vec<T>,
                     other: Option<&RecordBatch>|
         -> crate::error::Result<()> {
            let rows = vals.len() / d;
            let values: PrimitiveArray<T::ArrowType> = PrimitiveArray::from_iter_values(vals);
            let list: ArrayRef = Arc::new(FixedSizeListArray::new(
                item.clone(),
                d as i32,
                Arc::new(values),
                None,
            ));
            let mut cols: Vec<ArrayRef> = other.map(|b| b.columns().to_vec()).unwrap_or_default();
            cols.insert(at, list);
            let batch =
                RecordBatch::try_new(schema.clone(), cols).map_err(|e| Error::write(output, e))?;
            w.write(&batch)?;
            progress.advance(rows as u64);
            Ok(())
        };
        // Takes `rows` standardized rows from the reader.
        let mut take = |rows: usize| -> crate::error::Result<Vec<T>> {
            let mut out = Vec::with_capacity(rows * d);
            while out.len() < rows * d {
                if pend_at * d >= pending.len() {
                    pending.clear();
                    pend_at = 0;
                    match reader.next_block()? {
                        Some(b) => {
                            scaler.transform_in_place(b.data);
                            pending.extend_from_slice(b.data);
                        }
                        None => {
                            return Err(Error::format(
                                source.path(),
                                "other columns have more rows than the embedding column",
                            ))
                        }
                    }
                }
                let avail = pending.len() / d - pend_at;
                let m = avail.min(rows - out.len() / d);
                out.extend_from_slice(&pending[pend_at * d..(pend_at + m) * d]);
                pend_at += m;
            }
            Ok(out)
        };
        match others {
            Some(batches) => {
                for b in batches {
                    let b = b?;
                    let vals = take(b.num_rows())?;
                    written += b.num_rows();
                    write(&mut w, vals, Some(&b))?;
                }
            }
            None => {
                while written < n {
                    let m = crate::io::ARROW_BATCH_ROWS.min(n - written);
                    let vals = take(m)?;
                    written += m;
                    write(&mut w, vals, None)?;
                }
            }
        }
        if written != n {
            return Err(Error::format(
                source.path(),
                format!("wrote {written} rows but the file has {n}"),
            ));
        }
        progress.end();
        w.close()?;
        atomic.commit()?;
        Ok::<_, Error>(((), n as u64))
    })?;
    Ok(ScaleReport {
        input: source.path().display().to_string(),
        output: output.display().to_string(),
        n_samples: n,
        n_features: d,
        dtype: T::DTYPE,
        scaler,
        peak_rss_bytes: rec.peak_rss_bytes(),
        stage_peaks: rec.stage_peaks(),
        stages: rec.stages().to_vec(),
    })
}
