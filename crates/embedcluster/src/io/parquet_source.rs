//! Parquet embedding columns, streamed in row blocks with arrow-rs.

use super::arrow_column::VectorColumn;
use super::ARROW_BATCH_ROWS;
use crate::error::{Error, Result};
use crate::real::{DType, Real};
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchReader};
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use std::fs::File;
use std::path::{Path, PathBuf};

/// What we learned about the file when opening it.
#[derive(Debug)]
pub(crate) struct ParquetInfo {
    path: PathBuf,
    column_index: usize,
    vectors: VectorColumn,
    schema: SchemaRef,
    pub(crate) n_samples: usize,
    pub(crate) n_features: usize,
    pub(crate) dtype: DType,
    /// Uncompressed bytes per row of the other columns (from the row-group metadata).
    pub(crate) other_bytes_per_row: u64,
}

fn open_builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    guard(path, || {
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::format(path, e))
    })
}

/// Runs a call into the Parquet decoder, turning a panic inside it (the parquet crate
/// asserts on some malformed files instead of returning an error; our fuzzing found
/// "column start and length should not be negative") into [`Error::Format`], so that a
/// corrupt file is an error naming it, never a crash of the CLI or the Python process.
pub(crate) fn guard<R>(path: &Path, f: impl FnOnce() -> Result<R>) -> Result<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown failure".into());
            Err(Error::format(
                path,
                format!("corrupt Parquet file (the decoder failed: {msg})"),
            ))
        }
    }
}

impl ParquetInfo {
    pub(crate) fn open(path: &Path, column: &str) -> Result<Self> {
        let builder = open_builder(path)?;
        let schema = builder.schema().clone();
        let column_index = schema.index_of(column).map_err(|_| {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            Error::column(
                path,
                column,
                format!("no such column (columns: {})", names.join(", ")),
            )
        })?;
        let vectors = VectorColumn::new(schema.field(column_index).data_type(), path, column)?;
        let dtype = vectors.dtype;
        let n_samples = builder.metadata().file_metadata().num_rows().max(0) as usize;
        let other_bytes: i64 = builder
            .metadata()
            .row_groups()
            .iter()
            .flat_map(|rg| rg.columns())
            .filter(|c| c.column_path().parts().first().map(String::as_str) != Some(column))
            .map(|c| c.uncompressed_size().max(0))
            .sum();
        let other_bytes_per_row = other_bytes as u64 / n_samples.max(1) as u64;
        if n_samples == 0 {
            return Err(Error::Empty {
                path: path.to_path_buf(),
            });
        }
        let mut info = ParquetInfo {
            path: path.to_path_buf(),
            column_index,
            vectors,
            schema,
            n_samples,
            n_features: 0,
            dtype,
            other_bytes_per_row,
        };
        // The dimension of a variable-length list column is that of its first row.
        let first = match info.vectors.n_features {
            Some(_) => None,
            None => {
                let mut reader = info.arrow_reader(1)?;
                let batch = guard(path, || Ok(reader.next()))?
                    .ok_or_else(|| Error::Empty {
                        path: path.to_path_buf(),
                    })?
                    .map_err(|e| Error::format(path, e))?;
                Some(batch.column(0).clone())
            }
        };
        info.n_features = match first {
            Some(col) => info.vectors.learn_dimension(&col)?,
            None => info.vectors.n_features.expect("fixed size"),
        };
        Ok(info)
    }

    fn arrow_reader(&self, batch_size: usize) -> Result<ParquetRecordBatchReader> {
        let builder = open_builder(&self.path)?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), [self.column_index]);
        guard(&self.path, || {
            builder
                .with_projection(mask)
                .with_batch_size(batch_size)
                .build()
                .map_err(|e| Error::format(&self.path, e))
        })
    }

    pub(crate) fn reader(&self, batch_rows: usize) -> Result<ParquetBlocks<'_>> {
        Ok(ParquetBlocks {
            info: self,
            reader: self.arrow_reader(batch_rows.min(self.arrow_rows()))?,
            pending: None,
        })
    }

    /// Rows per decoded Arrow batch of the embedding column.
    pub(crate) fn arrow_rows(&self) -> usize {
        super::arrow_batch_rows(self.n_features * self.dtype.size())
    }

    pub(crate) fn column_index(&self) -> usize {
        self.column_index
    }

    pub(crate) fn other_columns(&self, batch_rows: usize) -> Result<Option<OtherColumns>> {
        let others: Vec<usize> = (0..self.schema.fields().len())
            .filter(|&i| i != self.column_index)
            .collect();
        if others.is_empty() {
            return Ok(None);
        }
        let builder = open_builder(&self.path)?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), others);
        let reader = guard(&self.path, || {
            builder
                .with_projection(mask)
                .with_batch_size(batch_rows.clamp(1, ARROW_BATCH_ROWS))
                .build()
                .map_err(|e| Error::format(&self.path, e))
        })?;
        Ok(Some(OtherColumns {
            schema: reader.schema(),
            reader,
            path: self.path.clone(),
        }))
    }
}

/// The non-embedding columns of a Parquet file, batch by batch.
pub struct OtherColumns {
    schema: SchemaRef,
    reader: ParquetRecordBatchReader,
    path: PathBuf,
}

impl OtherColumns {
    /// Arrow schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Iterator for OtherColumns {
    type Item = Result<RecordBatch>;
    fn next(&mut self) -> Option<Self::Item> {
        let path = self.path.clone();
        match guard(&path, || Ok(self.reader.next())) {
            Ok(next) => next.map(|r| r.map_err(|e| Error::format(&path, e))),
            Err(e) => Some(Err(e)),
        }
    }
}

/// One pass over the embedding column.
pub(crate) struct ParquetBlocks<'a> {
    info: &'a ParquetInfo,
    reader: ParquetRecordBatchReader,
    /// A decoded column not yet fully consumed, and the next row in it.
    pending: Option<(ArrayRef, usize)>,
}

impl ParquetBlocks<'_> {
    /// Appends up to `max_rows` rows to `buf`; returns how many rows of the file were
    /// consumed (fewer are appended when `skip` collects invalid ones). `start_row` is the
    /// file row of the first one (for error messages).
    pub(crate) fn fill<T: Real>(
        &mut self,
        buf: &mut Vec<T>,
        max_rows: usize,
        start_row: u64,
        mut skip: Option<&mut Vec<u64>>,
    ) -> Result<usize> {
        let mut done = 0;
        while done < max_rows {
            let (array, offset) = match self.pending.take() {
                Some(p) => p,
                None => match guard(&self.info.path, || Ok(self.reader.next()))? {
                    None => break,
                    Some(batch) => {
                        let batch = batch.map_err(|e| Error::format(&self.info.path, e))?;
                        (batch.column(0).clone(), 0)
                    }
                },
            };
            let take = (array.len() - offset).min(max_rows - done);
            self.info.vectors.append_rows_skipping(
                &array,
                offset,
                take,
                start_row + done as u64,
                buf,
                skip.as_deref_mut(),
            )?;
            done += take;
            if offset + take < array.len() {
                self.pending = Some((array, offset + take));
            }
        }
        if done == 0 && start_row < self.info.n_samples as u64 {
            return Err(Error::format(
                &self.info.path,
                format!(
                    "file ended after {start_row} rows but its metadata says {}",
                    self.info.n_samples
                ),
            ));
        }
        Ok(done)
    }
}
