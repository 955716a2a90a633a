//! Parquet embedding columns, streamed in row blocks with arrow-rs.

use super::{check_finite, ARROW_BATCH_ROWS};
use crate::error::{Error, Result};
use crate::real::{DType, Real};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type};
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchReader};
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use std::fs::File;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    List,
    LargeList,
    FixedSize,
}

/// What we learned about the file when opening it.
#[derive(Debug)]
pub(crate) struct ParquetInfo {
    path: PathBuf,
    column: String,
    column_index: usize,
    list_kind: ListKind,
    schema: SchemaRef,
    pub(crate) n_samples: usize,
    pub(crate) n_features: usize,
    pub(crate) dtype: DType,
}

fn open_builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::format(path, e))
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
        let field = schema.field(column_index);
        let not_floats = || {
            Error::column(
                path,
                column,
                format!(
                    "type {} is not a list of float32/float64",
                    field.data_type()
                ),
            )
        };
        let (list_kind, item_type, fixed) = match field.data_type() {
            DataType::List(f) => (ListKind::List, f.data_type().clone(), None),
            DataType::LargeList(f) => (ListKind::LargeList, f.data_type().clone(), None),
            DataType::FixedSizeList(f, n) => (
                ListKind::FixedSize,
                f.data_type().clone(),
                Some(*n as usize),
            ),
            _ => return Err(not_floats()),
        };
        let dtype = match item_type {
            DataType::Float32 => DType::Float32,
            DataType::Float64 => DType::Float64,
            _ => return Err(not_floats()),
        };
        let n_samples = builder.metadata().file_metadata().num_rows().max(0) as usize;
        if n_samples == 0 {
            return Err(Error::Empty {
                path: path.to_path_buf(),
            });
        }
        let mut info = ParquetInfo {
            path: path.to_path_buf(),
            column: column.to_string(),
            column_index,
            list_kind,
            schema,
            n_samples,
            n_features: fixed.unwrap_or(0),
            dtype,
        };
        if fixed.is_none() {
            // The dimension of a variable-length list column is that of its first row.
            let mut reader = info.arrow_reader(1)?;
            let batch = reader
                .next()
                .ok_or_else(|| Error::Empty {
                    path: path.to_path_buf(),
                })?
                .map_err(|e| Error::format(path, e))?;
            let col = batch.column(0);
            if col.is_null(0) {
                return Err(info.null(0, "the vector"));
            }
            info.n_features = match list_kind {
                ListKind::List => col.as_list::<i32>().value_length(0) as usize,
                _ => col.as_list::<i64>().value_length(0) as usize,
            };
        }
        if info.n_features == 0 {
            return Err(Error::InvalidRow {
                path: path.to_path_buf(),
                row: 0,
                column: column.to_string(),
                message: "zero-length vector".into(),
            });
        }
        Ok(info)
    }

    fn null(&self, row: u64, what: &str) -> Error {
        Error::Null {
            path: self.path.clone(),
            row,
            column: self.column.clone(),
            what: what.to_string(),
        }
    }

    fn arrow_reader(&self, batch_size: usize) -> Result<ParquetRecordBatchReader> {
        let builder = open_builder(&self.path)?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), [self.column_index]);
        builder
            .with_projection(mask)
            .with_batch_size(batch_size)
            .build()
            .map_err(|e| Error::format(&self.path, e))
    }

    pub(crate) fn reader(&self, batch_rows: usize) -> Result<ParquetBlocks<'_>> {
        Ok(ParquetBlocks {
            info: self,
            reader: self.arrow_reader(batch_rows.min(ARROW_BATCH_ROWS))?,
            pending: None,
        })
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
        let reader = builder
            .with_projection(mask)
            .with_batch_size(batch_rows.clamp(1, ARROW_BATCH_ROWS))
            .build()
            .map_err(|e| Error::format(&self.path, e))?;
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
        self.reader
            .next()
            .map(|r| r.map_err(|e| Error::format(&self.path, e)))
    }
}

/// `(start, len)` of row `i` in the child values array.
type RowSpans<'a> = Box<dyn Fn(usize) -> (usize, usize) + 'a>;

/// One pass over the embedding column.
pub(crate) struct ParquetBlocks<'a> {
    info: &'a ParquetInfo,
    reader: ParquetRecordBatchReader,
    /// A decoded column not yet fully consumed, and the next row in it.
    pending: Option<(ArrayRef, usize)>,
}

impl ParquetBlocks<'_> {
    /// Appends up to `max_rows` rows to `buf`; returns how many. `start_row` is the file
    /// row of the first one (for error messages).
    pub(crate) fn fill<T: Real>(
        &mut self,
        buf: &mut Vec<T>,
        max_rows: usize,
        start_row: u64,
    ) -> Result<usize> {
        let mut done = 0;
        while done < max_rows {
            let (array, offset) = match self.pending.take() {
                Some(p) => p,
                None => match self.reader.next() {
                    None => break,
                    Some(batch) => {
                        let batch = batch.map_err(|e| Error::format(&self.info.path, e))?;
                        (batch.column(0).clone(), 0)
                    }
                },
            };
            let take = (array.len() - offset).min(max_rows - done);
            self.decode(&array, offset, take, start_row + done as u64, buf)?;
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

    fn decode<T: Real>(
        &self,
        array: &ArrayRef,
        offset: usize,
        take: usize,
        first_row: u64,
        buf: &mut Vec<T>,
    ) -> Result<()> {
        let info = self.info;
        let d = info.n_features;
        // (start, len) of each row in the child values array.
        let (values, spans): (&ArrayRef, RowSpans<'_>) = match info.list_kind {
            ListKind::FixedSize => {
                let a = array.as_fixed_size_list();
                let n = a.value_length() as usize;
                (a.values(), Box::new(move |i| (i * n, n)))
            }
            ListKind::List => {
                let a = array.as_list::<i32>();
                let offs = a.value_offsets();
                (
                    a.values(),
                    Box::new(move |i| (offs[i] as usize, (offs[i + 1] - offs[i]) as usize)),
                )
            }
            ListKind::LargeList => {
                let a = array.as_list::<i64>();
                let offs = a.value_offsets();
                (
                    a.values(),
                    Box::new(move |i| (offs[i] as usize, (offs[i + 1] - offs[i]) as usize)),
                )
            }
        };
        let has_null_rows = array.null_count() > 0;
        let has_null_values = values.null_count() > 0;
        for i in offset..offset + take {
            let row = first_row + (i - offset) as u64;
            if has_null_rows && array.is_null(i) {
                return Err(info.null(row, "the vector"));
            }
            let (start, len) = spans(i);
            if len != d {
                if len == 0 {
                    return Err(Error::InvalidRow {
                        path: info.path.clone(),
                        row,
                        column: info.column.clone(),
                        message: "zero-length vector".into(),
                    });
                }
                return Err(Error::Ragged {
                    path: info.path.clone(),
                    row,
                    column: info.column.clone(),
                    expected: d,
                    found: len,
                });
            }
            if has_null_values {
                if let Some(j) = (start..start + len).find(|&j| values.is_null(j)) {
                    return Err(info.null(row, &format!("element {}", j - start)));
                }
            }
            let before = buf.len();
            match info.dtype {
                DType::Float32 => {
                    let v = &values.as_primitive::<Float32Type>().values()[start..start + len];
                    buf.extend(v.iter().map(|&x| T::from_f32(x)));
                }
                DType::Float64 => {
                    let v = &values.as_primitive::<Float64Type>().values()[start..start + len];
                    buf.extend(v.iter().map(|&x| T::from_f64(x)));
                }
            }
            check_finite(&info.path, &info.column, row, &buf[before..])?;
        }
        Ok(())
    }
}
