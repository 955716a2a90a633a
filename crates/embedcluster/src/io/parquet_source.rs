//! Parquet embedding columns, streamed in row blocks with arrow-rs.

use super::arrow_column::VectorColumn;
use super::ARROW_BATCH_ROWS;
use crate::dtype::{DType, Real};
use crate::error::{Error, Result};
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchReader};
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

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
    row_groups: usize,
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

/// A reader of column `column` alone, `batch_size` rows per batch, over one row group or all.
fn column_reader(
    builder: ParquetRecordBatchReaderBuilder<File>,
    path: &Path,
    column: usize,
    batch_size: usize,
    group: Option<usize>,
) -> Result<ParquetRecordBatchReader> {
    let mask = ProjectionMask::roots(builder.parquet_schema(), [column]);
    guard(path, || {
        let builder = builder.with_projection(mask).with_batch_size(batch_size);
        let builder = match group {
            Some(g) => builder.with_row_groups(vec![g]),
            None => builder,
        };
        builder.build().map_err(|e| Error::format(path, e))
    })
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
        let row_groups = builder.metadata().num_row_groups();
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
            row_groups,
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
        column_reader(builder, &self.path, self.column_index, batch_size, None)
    }

    pub(crate) fn reader(&self, batch_rows: usize) -> Result<ParquetBlocks<'_>> {
        let batch_size = batch_rows.min(self.arrow_rows());
        let workers = decoder_threads(self.row_groups, self.vector_bytes());
        let reader = if workers > 1 {
            let file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
            let meta = guard(&self.path, || {
                ArrowReaderMetadata::load(&file, Default::default())
                    .map_err(|e| Error::format(&self.path, e))
            })?;
            Decoder::Parallel(Prefetch::start(self, meta, batch_size, workers))
        } else {
            Decoder::Serial(self.arrow_reader(batch_size)?)
        };
        Ok(ParquetBlocks {
            info: self,
            reader,
            pending: None,
        })
    }

    /// Row groups in the file.
    pub(crate) fn row_groups(&self) -> usize {
        self.row_groups
    }

    /// Bytes of the decoded vectors, `n_samples x n_features x` the dtype's size.
    pub(crate) fn vector_bytes(&self) -> u64 {
        (self.n_samples * self.n_features * self.dtype.size()) as u64
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
    reader: Decoder,
    /// A decoded column not yet fully consumed, and the next row in it.
    pending: Option<(ArrayRef, usize)>,
}

/// Where the decoded Arrow batches of a pass come from.
enum Decoder {
    /// Decoded on the calling thread, as they are needed.
    Serial(ParquetRecordBatchReader),
    /// Decoded ahead by worker threads, row group by row group; see [`Prefetch`].
    Parallel(Prefetch),
}

impl Decoder {
    fn next_array(&mut self, path: &Path) -> Result<Option<ArrayRef>> {
        match self {
            Decoder::Serial(reader) => match guard(path, || Ok(reader.next()))? {
                None => Ok(None),
                Some(batch) => {
                    let batch = batch.map_err(|e| Error::format(path, e))?;
                    Ok(Some(batch.column(0).clone()))
                }
            },
            Decoder::Parallel(p) => p.next_array(path),
        }
    }
}

enum Msg {
    Batch(ArrayRef),
    EndOfGroup,
}

/// Parallel decoding that overlaps the computation: `W` worker threads decode the row
/// groups (worker `w` takes groups `w, w + W, ...`), each handing its Arrow batches over a
/// channel of [`PREFETCH_BATCHES`] slots; the consumer takes them group by group in file
/// order, so the rows arrive exactly as a serial read gives them (results stay bitwise
/// identical). Memory: each worker holds its decoder's buffers and at most
/// `PREFETCH_BATCHES + 1` batches of `a` rows; measured, `W (7 a d s + 2 MiB)` in all
/// (`crate::plan`). Dropping it (end of pass, error, Ctrl-C) closes the channels; each
/// worker stops at its next batch and is joined.
struct Prefetch {
    receivers: Vec<Receiver<Result<Msg>>>,
    workers: Vec<JoinHandle<()>>,
    next_group: usize,
    n_groups: usize,
}

/// Decoded batches each worker may have ready ahead of the consumer.
pub const PREFETCH_BATCHES: usize = 2;

/// Files whose vectors decode to less than this are read serially: their pass is short, and
/// a serial reader's memory is steadier (the memory plan's figures for it vary less).
pub const PARALLEL_DECODE_MIN_BYTES: u64 = 256 << 20;

/// Decoder threads for a pass over a Parquet file of `row_groups` row groups whose vectors
/// decode to `bytes`: one per thread of the pool (the computation's), at most one per row
/// group, and 1 (a serial read) below [`PARALLEL_DECODE_MIN_BYTES`].
pub(crate) fn decoder_threads(row_groups: usize, bytes: u64) -> usize {
    if bytes < PARALLEL_DECODE_MIN_BYTES {
        return 1;
    }
    rayon::current_num_threads().min(row_groups).max(1)
}

impl Prefetch {
    fn start(
        info: &ParquetInfo,
        meta: ArrowReaderMetadata,
        batch_size: usize,
        workers: usize,
    ) -> Self {
        let n_groups = meta.metadata().num_row_groups();
        let mut receivers = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = sync_channel::<Result<Msg>>(PREFETCH_BATCHES);
            let meta = meta.clone();
            let path = info.path.clone();
            let column = info.column_index;
            handles.push(std::thread::spawn(move || {
                for group in (w..n_groups).step_by(workers) {
                    let sent = decode_group(&path, &meta, column, group, batch_size, &tx);
                    if !sent {
                        return;
                    }
                }
            }));
            receivers.push(rx);
        }
        Prefetch {
            receivers,
            workers: handles,
            next_group: 0,
            n_groups,
        }
    }

    fn next_array(&mut self, path: &Path) -> Result<Option<ArrayRef>> {
        while self.next_group < self.n_groups {
            let w = self.next_group % self.receivers.len();
            match self.receivers[w].recv() {
                Ok(Ok(Msg::Batch(array))) => return Ok(Some(array)),
                Ok(Ok(Msg::EndOfGroup)) => self.next_group += 1,
                Ok(Err(e)) => {
                    // nothing further from this pass: the error ends it
                    self.next_group = self.n_groups;
                    return Err(e);
                }
                Err(_) => {
                    self.next_group = self.n_groups;
                    return Err(Error::format(path, "a Parquet decoder thread stopped"));
                }
            }
        }
        Ok(None)
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // closing the channels makes every worker's next send fail, so it returns
        self.receivers.clear();
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

/// Decodes row group `group` into batches sent on `tx`, then [`Msg::EndOfGroup`]; an error
/// is sent as such. Returns false when the pass is over (the receiver is gone, or after an
/// error).
fn decode_group(
    path: &Path,
    meta: &ArrowReaderMetadata,
    column: usize,
    group: usize,
    batch_size: usize,
    tx: &SyncSender<Result<Msg>>,
) -> bool {
    let reader = File::open(path)
        .map_err(|e| Error::io(path, e))
        .and_then(|file| {
            let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone());
            column_reader(builder, path, column, batch_size, Some(group))
        });
    let mut reader = match reader {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(Err(e));
            return false;
        }
    };
    loop {
        let next = guard(path, || Ok(reader.next())).and_then(|b| match b {
            None => Ok(None),
            Some(batch) => batch
                .map(|b| Some(b.column(0).clone()))
                .map_err(|e| Error::format(path, e)),
        });
        match next {
            Ok(Some(array)) => {
                if tx.send(Ok(Msg::Batch(array))).is_err() {
                    return false;
                }
            }
            Ok(None) => return tx.send(Ok(Msg::EndOfGroup)).is_ok(),
            Err(e) => {
                let _ = tx.send(Err(e));
                return false;
            }
        }
    }
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
                None => match self.reader.next_array(&self.info.path)? {
                    None => break,
                    Some(array) => (array, 0),
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
