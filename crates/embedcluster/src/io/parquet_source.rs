//! Parquet embedding columns of a file or a dataset of part files, streamed in row blocks
//! with arrow-rs.

use super::arrow_column::VectorColumn;
use super::ARROW_BATCH_ROWS;
use crate::dtype::{DType, Real};
use crate::error::{Error, Result};
use arrow_array::{Array, ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use parquet::file::reader::{ChunkReader, Length};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// What we learned about one Parquet file when opening it.
#[derive(Debug)]
pub(crate) struct ParquetInfo {
    path: PathBuf,
    column_index: usize,
    vectors: VectorColumn,
    schema: SchemaRef,
    /// The footer, read once: later readers of the file start from it.
    meta: ArrowReaderMetadata,
    pub(crate) n_samples: usize,
    /// 0 for a file with no rows and a `list` column (nothing to learn it from).
    pub(crate) n_features: usize,
    pub(crate) dtype: DType,
    /// Uncompressed bytes of the other columns (from the row-group metadata).
    other_bytes: u64,
    row_groups: usize,
}

/// A Parquet file to read: local, or an object in object storage ([`super::remote`]).
#[derive(Debug)]
pub(crate) enum Source {
    Local(File),
    Remote(super::remote::RemoteFile),
}

impl Source {
    /// Opens `path` (a local path or an object-store URL).
    pub(crate) fn open(path: &Path) -> Result<Self> {
        if super::remote::is_url(path) {
            super::remote::RemoteFile::open(path).map(Source::Remote)
        } else {
            File::open(path)
                .map(Source::Local)
                .map_err(|e| Error::io(path, e))
        }
    }
}

impl Length for Source {
    fn len(&self) -> u64 {
        match self {
            Source::Local(f) => f.len(),
            Source::Remote(r) => r.len(),
        }
    }
}

/// The [`Read`](std::io::Read) of a [`Source`] from an offset.
pub(crate) enum SourceRead {
    Local(<File as ChunkReader>::T),
    Remote(super::remote::RemoteRead),
}

impl std::io::Read for SourceRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            SourceRead::Local(r) => r.read(buf),
            SourceRead::Remote(r) => r.read(buf),
        }
    }
}

impl ChunkReader for Source {
    type T = SourceRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<SourceRead> {
        match self {
            Source::Local(f) => f.get_read(start).map(SourceRead::Local),
            Source::Remote(r) => r.get_read(start).map(SourceRead::Remote),
        }
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        match self {
            Source::Local(f) => f.get_bytes(start, length),
            Source::Remote(r) => r.get_bytes(start, length),
        }
    }
}

fn open_file(path: &Path) -> Result<(Source, ArrowReaderMetadata)> {
    let file = Source::open(path)?;
    let meta = guard(path, || {
        ArrowReaderMetadata::load(&file, Default::default()).map_err(|e| Error::format(path, e))
    })?;
    Ok((file, meta))
}

/// A reader of column `column` alone, `batch_size` rows per batch, over one row group or all.
fn column_reader(
    builder: ParquetRecordBatchReaderBuilder<Source>,
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
    /// Opens one file: its footer, the embedding column's type and (for `list` columns)
    /// the dimension from the first row. A file with no rows is an error unless
    /// `allow_empty` (a part of a dataset: Spark writes empty parts).
    pub(crate) fn open(path: &Path, column: &str, allow_empty: bool) -> Result<Self> {
        let (_, meta) = open_file(path)?;
        let schema = meta.schema().clone();
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
        let n_samples = meta.metadata().file_metadata().num_rows().max(0) as usize;
        let row_groups = meta.metadata().num_row_groups();
        let other_bytes: i64 = meta
            .metadata()
            .row_groups()
            .iter()
            .flat_map(|rg| rg.columns())
            .filter(|c| c.column_path().parts().first().map(String::as_str) != Some(column))
            .map(|c| c.uncompressed_size().max(0))
            .sum();
        if n_samples == 0 && !allow_empty {
            return Err(Error::Empty {
                path: path.to_path_buf(),
            });
        }
        let mut info = ParquetInfo {
            path: path.to_path_buf(),
            column_index,
            vectors,
            schema,
            meta,
            n_samples,
            n_features: 0,
            dtype,
            other_bytes: other_bytes as u64,
            row_groups,
        };
        // The dimension of a variable-length list column is that of its first row.
        let first = match info.vectors.n_features {
            Some(_) => None,
            None if n_samples == 0 => None,
            None => {
                let mut reader = info.arrow_reader(1, None)?;
                let batch = guard(path, || Ok(reader.next()))?
                    .ok_or_else(|| Error::Empty {
                        path: path.to_path_buf(),
                    })?
                    .map_err(|e| Error::format(path, e))?;
                Some(batch.column(0).clone())
            }
        };
        info.n_features = match (first, info.vectors.n_features) {
            (Some(col), _) => info.vectors.learn_dimension(&col)?,
            (None, Some(d)) => d,
            (None, None) => 0,
        };
        Ok(info)
    }

    /// A reader of the embedding column alone, over one row group or all.
    fn arrow_reader(
        &self,
        batch_size: usize,
        group: Option<usize>,
    ) -> Result<ParquetRecordBatchReader> {
        let file = Source::open(&self.path)?;
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.meta.clone());
        column_reader(builder, &self.path, self.column_index, batch_size, group)
    }

    /// The embedding column's type without field names (`list<float>` whatever the
    /// writer called the item), to compare the parts of a dataset.
    fn vector_type(&self) -> String {
        super::arrow_column::type_name(self.schema.field(self.column_index).data_type())
    }

    /// The other columns' `(name, type)`, in order.
    fn other_fields(&self) -> Vec<(String, DataType)> {
        self.schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.column_index)
            .map(|(_, f)| (f.name().clone(), f.data_type().clone()))
            .collect()
    }
}

/// One file of a [`ParquetDataset`].
#[derive(Debug)]
pub(crate) struct Part {
    pub(crate) info: ParquetInfo,
    /// Global row id of its first row.
    pub(crate) start_row: u64,
    /// Its name relative to the input (for per-part outputs).
    pub(crate) name: PathBuf,
    /// Its Hive partition values, one per key.
    values: Vec<Option<String>>,
}

impl Part {
    pub(crate) fn info_path(&self) -> &Path {
        &self.info.path
    }
}

/// A table of one or more Parquet files with the same embedding column (type and
/// dimension) and the same other columns, read in order; a single file is a dataset of
/// one part. Hive partition keys become columns after the files' own.
#[derive(Debug)]
pub(crate) struct ParquetDataset {
    root: PathBuf,
    pub(crate) parts: Vec<Part>,
    keys: Vec<(String, DataType)>,
    pub(crate) n_samples: usize,
    pub(crate) n_features: usize,
    pub(crate) dtype: DType,
    /// Uncompressed bytes per row of the other columns (from the row-group metadata).
    pub(crate) other_bytes_per_row: u64,
    /// Decoder threads chosen by the caller instead of [`decoder_threads`].
    pub(crate) decoders: Option<usize>,
}

/// The Arrow type of a partition key: `int32` when every value is one (pyarrow's and
/// Spark's inference), else `int64` when every value is one, else `string`.
fn key_type(values: impl Iterator<Item = Option<String>> + Clone) -> DataType {
    let all = |ok: &dyn Fn(&str) -> bool| values.clone().flatten().all(|v| ok(&v));
    if values.clone().flatten().next().is_none() {
        return DataType::Utf8;
    }
    if all(&|v| v.parse::<i32>().is_ok()) {
        DataType::Int32
    } else if all(&|v| v.parse::<i64>().is_ok()) {
        DataType::Int64
    } else {
        DataType::Utf8
    }
}

impl ParquetDataset {
    /// Opens every part's footer and checks that the parts agree.
    ///
    /// # Errors
    /// Those of [`ParquetInfo::open`] for each part; [`Error::Column`] naming the first
    /// part whose embedding column differs in type or dimension from the first part's;
    /// [`Error::Format`] naming a part whose other columns differ, or when a partition key
    /// is also a column of the files; [`Error::Empty`] when no part has rows.
    pub(crate) fn open(resolved: &super::dataset::Resolved, column: &str) -> Result<Self> {
        let single = resolved.parts.len() == 1 && resolved.keys.is_empty();
        let mut parts: Vec<Part> = Vec::with_capacity(resolved.parts.len());
        let mut start = 0u64;
        for pf in &resolved.parts {
            let info = ParquetInfo::open(&pf.path, column, !single)?;
            if let Some(first) = parts.first() {
                check_same(&first.info, &info, column)?;
            }
            let n = info.n_samples as u64;
            parts.push(Part {
                info,
                start_row: start,
                name: pf.name.clone(),
                values: pf.partition.clone(),
            });
            start += n;
        }
        // a list column's dimension comes from the first part with rows
        let with_rows = parts.iter().find(|p| p.info.n_samples > 0);
        let Some(with_rows) = with_rows else {
            return Err(Error::Empty {
                path: resolved.display.clone(),
            });
        };
        let d = with_rows.info.n_features;
        for p in &parts {
            if p.info.n_samples > 0 && p.info.n_features != d {
                return Err(Error::column(
                    &p.info.path,
                    column,
                    format!(
                        "vectors have {} features but {} has {d}: every part must have the same dimension",
                        p.info.n_features,
                        with_rows.info.path.display()
                    ),
                ));
            }
        }
        for p in &mut parts {
            if p.info.n_features == 0 {
                p.info.n_features = d;
                p.info.vectors.n_features = Some(d);
            }
        }
        let first = &parts[0].info;
        let mut keys = Vec::new();
        for (i, k) in resolved.keys.iter().enumerate() {
            if first.schema.index_of(k).is_ok() {
                return Err(Error::format(
                    &first.path,
                    format!(
                        "partition key `{k}` (from the folder names) is also a column of the files"
                    ),
                ));
            }
            let t = key_type(parts.iter().map(move |p| p.values[i].clone()));
            keys.push((k.clone(), t));
        }
        let n_samples = start as usize;
        let other: u64 = parts.iter().map(|p| p.info.other_bytes).sum();
        Ok(ParquetDataset {
            root: resolved.display.clone(),
            n_features: d,
            dtype: first.dtype,
            other_bytes_per_row: other / n_samples.max(1) as u64,
            n_samples,
            keys,
            parts,
            decoders: None,
        })
    }

    /// Where global row `row` lives: the part's path and the row within it.
    pub(crate) fn locate(&self, row: u64) -> (&Path, u64) {
        let i = self
            .parts
            .partition_point(|p| p.start_row <= row)
            .saturating_sub(1);
        // parts with no rows share their start with the next part
        let i = (i..self.parts.len())
            .find(|&j| row < self.parts[j].start_row + self.parts[j].info.n_samples as u64)
            .unwrap_or(i);
        let p = &self.parts[i];
        (&p.info.path, row - p.start_row)
    }

    /// The Hive partition keys (columns added after the files' own).
    pub(crate) fn partition_keys(&self) -> Vec<String> {
        self.keys.iter().map(|(k, _)| k.clone()).collect()
    }

    fn row_groups(&self) -> usize {
        self.parts.iter().map(|p| p.info.row_groups).sum()
    }

    /// Bytes of the decoded vectors, `n_samples x n_features x` the dtype's size.
    pub(crate) fn vector_bytes(&self) -> u64 {
        (self.n_samples * self.n_features * self.dtype.size()) as u64
    }

    /// Threads that decode ahead in a pass (see [`decoder_threads`]).
    pub(crate) fn decoder_threads(&self) -> usize {
        match self.decoders {
            Some(w) => w.clamp(1, self.row_groups().max(1)),
            None => decoder_threads(self.row_groups(), self.vector_bytes()),
        }
    }

    /// Rows per decoded Arrow batch of the embedding column.
    pub(crate) fn arrow_rows(&self) -> usize {
        super::arrow_batch_rows(self.n_features * self.dtype.size())
    }

    pub(crate) fn column_index(&self) -> usize {
        self.parts[0].info.column_index
    }

    pub(crate) fn reader(&self, batch_rows: usize) -> Result<ParquetBlocks<'_>> {
        let batch_size = batch_rows.min(self.arrow_rows());
        let workers = self.decoder_threads();
        let decoder = if workers > 1 {
            Decoder::Parallel(Prefetch::start(self, batch_size, workers))
        } else {
            Decoder::Serial {
                next_part: 0,
                reader: None,
                batch_size,
            }
        };
        Ok(ParquetBlocks {
            set: self,
            decoder,
            part: 0,
            part_rows: 0,
            pending: None,
        })
    }

    /// The columns other than the embedding column, then the partition keys.
    pub(crate) fn other_columns(&self, batch_rows: usize) -> Result<Option<OtherColumns>> {
        let first = &self.parts[0].info;
        let n_others = first.schema.fields().len() - 1;
        if n_others == 0 && self.keys.is_empty() {
            return Ok(None);
        }
        let mut fields: Vec<Arc<Field>> = first
            .schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != first.column_index)
            .map(|(_, f)| f.clone())
            .collect();
        for (k, t) in &self.keys {
            fields.push(Arc::new(Field::new(k, t.clone(), true)));
        }
        Ok(Some(OtherColumns {
            schema: Arc::new(Schema::new(fields)),
            parts: self
                .parts
                .iter()
                .filter(|p| p.info.n_samples > 0)
                .map(|p| OtherPart {
                    path: p.info.path.clone(),
                    meta: p.info.meta.clone(),
                    column_index: p.info.column_index,
                    n_columns: p.info.schema.fields().len(),
                    values: p.values.clone(),
                })
                .collect(),
            keys: self.keys.clone(),
            batch_rows: batch_rows.clamp(1, ARROW_BATCH_ROWS),
            next_part: 0,
            current: None,
        }))
    }
}

/// An error unless `b` has the same embedding column type and other columns as `a`.
fn check_same(a: &ParquetInfo, b: &ParquetInfo, column: &str) -> Result<()> {
    if a.vector_type() != b.vector_type() {
        return Err(Error::column(
            &b.path,
            column,
            format!(
                "type {} differs from {}'s {}: every part must have the same type",
                b.vector_type(),
                a.path.display(),
                a.vector_type()
            ),
        ));
    }
    if a.column_index != b.column_index || a.other_fields() != b.other_fields() {
        let show = |i: &ParquetInfo| {
            i.schema
                .fields()
                .iter()
                .map(|f| format!("{}: {}", f.name(), f.data_type()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Error::format(
            &b.path,
            format!(
                "its columns ({}) differ from those of {} ({}): every part must have the same schema",
                show(b),
                a.path.display(),
                show(a)
            ),
        ));
    }
    Ok(())
}

struct OtherPart {
    path: PathBuf,
    meta: ArrowReaderMetadata,
    column_index: usize,
    n_columns: usize,
    values: Vec<Option<String>>,
}

/// The non-embedding columns of a Parquet file or dataset, batch by batch (a batch never
/// spans two parts), with the dataset's partition keys as the last columns.
pub struct OtherColumns {
    schema: SchemaRef,
    parts: Vec<OtherPart>,
    keys: Vec<(String, DataType)>,
    batch_rows: usize,
    next_part: usize,
    current: Option<(usize, ParquetRecordBatchReader)>,
}

impl OtherColumns {
    /// Arrow schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn open_next(&mut self) -> Result<bool> {
        let Some(p) = self.parts.get(self.next_part) else {
            return Ok(false);
        };
        let others: Vec<usize> = (0..p.n_columns).filter(|&i| i != p.column_index).collect();
        let file = Source::open(&p.path)?;
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, p.meta.clone());
        let mask = ProjectionMask::roots(builder.parquet_schema(), others);
        let reader = guard(&p.path, || {
            builder
                .with_projection(mask)
                .with_batch_size(self.batch_rows)
                .build()
                .map_err(|e| Error::format(&p.path, e))
        })?;
        self.current = Some((self.next_part, reader));
        self.next_part += 1;
        Ok(true)
    }

    fn with_keys(&self, part: usize, batch: RecordBatch) -> Result<RecordBatch> {
        if self.keys.is_empty() {
            return Ok(batch);
        }
        let p = &self.parts[part];
        let n = batch.num_rows();
        let mut cols = batch.columns().to_vec();
        for ((_, t), v) in self.keys.iter().zip(&p.values) {
            let col: ArrayRef = match (t, v) {
                (DataType::Int32, Some(v)) => {
                    Arc::new(Int32Array::from(vec![v.parse::<i32>().expect("typed"); n]))
                }
                (DataType::Int64, Some(v)) => {
                    Arc::new(Int64Array::from(vec![v.parse::<i64>().expect("typed"); n]))
                }
                (_, Some(v)) => Arc::new(StringArray::from(vec![v.as_str(); n])),
                (t, None) => arrow_array::new_null_array(t, n),
            };
            cols.push(col);
        }
        RecordBatch::try_new(self.schema.clone(), cols).map_err(|e| Error::format(&p.path, e))
    }
}

impl Iterator for OtherColumns {
    type Item = Result<RecordBatch>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.current.is_none() {
                match self.open_next() {
                    Ok(true) => {}
                    Ok(false) => return None,
                    Err(e) => return Some(Err(e)),
                }
            }
            let (part, reader) = self.current.as_mut().expect("opened");
            let part = *part;
            let path = self.parts[part].path.clone();
            match guard(&path, || Ok(reader.next())) {
                Ok(Some(Ok(batch))) => return Some(self.with_keys(part, batch)),
                Ok(Some(Err(e))) => return Some(Err(Error::format(&path, e))),
                Ok(None) => self.current = None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// One pass over the embedding column of a dataset.
pub(crate) struct ParquetBlocks<'a> {
    set: &'a ParquetDataset,
    decoder: Decoder,
    /// The part of the last array taken, and how many of its rows were taken.
    part: usize,
    part_rows: u64,
    /// A decoded column not yet fully consumed: its part, the array, the next row in it.
    pending: Option<(usize, ArrayRef, usize)>,
}

/// Where the decoded Arrow batches of a pass come from.
enum Decoder {
    /// Decoded on the calling thread, part after part, as they are needed.
    Serial {
        next_part: usize,
        reader: Option<(usize, ParquetRecordBatchReader)>,
        batch_size: usize,
    },
    /// Decoded ahead by worker threads, row group by row group; see [`Prefetch`].
    Parallel(Prefetch),
}

impl Decoder {
    /// The next decoded batch and the index of its part.
    fn next_array(&mut self, set: &ParquetDataset) -> Result<Option<(usize, ArrayRef)>> {
        match self {
            Decoder::Serial {
                next_part,
                reader,
                batch_size,
            } => loop {
                if reader.is_none() {
                    while *next_part < set.parts.len() && set.parts[*next_part].info.n_samples == 0
                    {
                        *next_part += 1;
                    }
                    let Some(p) = set.parts.get(*next_part) else {
                        return Ok(None);
                    };
                    *reader = Some((*next_part, p.info.arrow_reader(*batch_size, None)?));
                    *next_part += 1;
                }
                let (part, r) = reader.as_mut().expect("opened");
                let part = *part;
                let path = &set.parts[part].info.path;
                match guard(path, || Ok(r.next()))? {
                    None => *reader = None,
                    Some(batch) => {
                        let batch = batch.map_err(|e| Error::format(path, e))?;
                        return Ok(Some((part, batch.column(0).clone())));
                    }
                }
            },
            Decoder::Parallel(p) => p.next_array(&set.root),
        }
    }
}

enum Msg {
    Batch(ArrayRef),
    EndOfGroup,
}

/// Parallel decoding that overlaps the computation: the row groups of all parts, in row
/// order, are the units; `W` worker threads decode them (worker `w` takes units `w, w + W,
/// ...`), each handing its Arrow batches over a channel of [`PREFETCH_BATCHES`] slots; the
/// consumer takes them unit by unit in order, so the rows arrive exactly as a serial read
/// gives them (results stay bitwise identical). Memory: each worker holds its decoder's
/// buffers and at most `PREFETCH_BATCHES + 1` batches of `a` rows; measured,
/// `W (7 a d s + 2 MiB)` in all (`crate::plan`). Dropping it (end of pass, error, Ctrl-C)
/// closes the channels; each worker stops at its next batch and is joined.
struct Prefetch {
    receivers: Vec<Receiver<Result<Msg>>>,
    workers: Vec<JoinHandle<()>>,
    /// `(part, row group)` in row order.
    units: Vec<(usize, usize)>,
    next_unit: usize,
}

/// Decoded batches each worker may have ready ahead of the consumer.
pub const PREFETCH_BATCHES: usize = 2;

/// Inputs whose vectors decode to less than this are read serially: their pass is short,
/// and a serial reader's memory is steadier (the memory plan's figures for it vary less).
pub const PARALLEL_DECODE_MIN_BYTES: u64 = 256 << 20;

/// Decoder threads for a pass over Parquet input of `row_groups` row groups (all parts
/// together) whose vectors decode to `bytes`: one per thread of the pool (the
/// computation's), at most one per row group, and 1 (a serial read) below
/// [`PARALLEL_DECODE_MIN_BYTES`].
pub(crate) fn decoder_threads(row_groups: usize, bytes: u64) -> usize {
    if bytes < PARALLEL_DECODE_MIN_BYTES {
        return 1;
    }
    rayon::current_num_threads().min(row_groups).max(1)
}

struct Unit {
    path: PathBuf,
    meta: ArrowReaderMetadata,
    column: usize,
    group: usize,
}

impl Prefetch {
    fn start(set: &ParquetDataset, batch_size: usize, workers: usize) -> Self {
        let mut units = Vec::new();
        let mut work: Vec<Unit> = Vec::new();
        for (i, p) in set.parts.iter().enumerate() {
            for g in 0..p.info.row_groups {
                units.push((i, g));
                work.push(Unit {
                    path: p.info.path.clone(),
                    meta: p.info.meta.clone(),
                    column: p.info.column_index,
                    group: g,
                });
            }
        }
        let work = Arc::new(work);
        let mut receivers = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = sync_channel::<Result<Msg>>(PREFETCH_BATCHES);
            let work = work.clone();
            handles.push(std::thread::spawn(move || {
                for u in work.iter().skip(w).step_by(workers) {
                    if !decode_group(u, batch_size, &tx) {
                        return;
                    }
                }
            }));
            receivers.push(rx);
        }
        Prefetch {
            receivers,
            workers: handles,
            units,
            next_unit: 0,
        }
    }

    fn next_array(&mut self, root: &Path) -> Result<Option<(usize, ArrayRef)>> {
        while self.next_unit < self.units.len() {
            let w = self.next_unit % self.receivers.len();
            match self.receivers[w].recv() {
                Ok(Ok(Msg::Batch(array))) => {
                    return Ok(Some((self.units[self.next_unit].0, array)))
                }
                Ok(Ok(Msg::EndOfGroup)) => self.next_unit += 1,
                Ok(Err(e)) => {
                    // nothing further from this pass: the error ends it
                    self.next_unit = self.units.len();
                    return Err(e);
                }
                Err(_) => {
                    self.next_unit = self.units.len();
                    return Err(Error::format(root, "a Parquet decoder thread stopped"));
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

/// Decodes one row group into batches sent on `tx`, then [`Msg::EndOfGroup`]; an error
/// is sent as such. Returns false when the pass is over (the receiver is gone, or after an
/// error).
fn decode_group(u: &Unit, batch_size: usize, tx: &SyncSender<Result<Msg>>) -> bool {
    let path = &u.path;
    let reader = Source::open(path).and_then(|file| {
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, u.meta.clone());
        column_reader(builder, path, u.column, batch_size, Some(u.group))
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
    /// The first part in `parts` that has not given all its rows (the current one counts
    /// what it gave; the others gave none).
    fn short_part(&self, parts: std::ops::Range<usize>) -> Option<usize> {
        parts.into_iter().find(|&q| {
            let rows = self.set.parts[q].info.n_samples as u64;
            if q == self.part {
                self.part_rows != rows
            } else {
                rows != 0
            }
        })
    }

    fn ended_early(&self, part: usize) -> Error {
        let p = &self.set.parts[part];
        let seen = if part == self.part { self.part_rows } else { 0 };
        Error::format(
            &p.info.path,
            format!(
                "file ended after {seen} rows but its metadata says {}",
                p.info.n_samples
            ),
        )
    }

    /// Appends up to `max_rows` rows to `buf`; returns how many rows of the dataset were
    /// consumed (fewer are appended when `skip` collects invalid ones; their global row ids
    /// are pushed to it). `start_row` is the global row of the first one. Errors name the
    /// part file and the row within it.
    pub(crate) fn fill<T: Real>(
        &mut self,
        buf: &mut Vec<T>,
        max_rows: usize,
        start_row: u64,
        mut skip: Option<&mut Vec<u64>>,
    ) -> Result<usize> {
        let mut done = 0;
        while done < max_rows {
            let (part, array, offset) = match self.pending.take() {
                Some(p) => p,
                None => match self.decoder.next_array(self.set)? {
                    None => break,
                    Some((part, array)) => (part, array, 0),
                },
            };
            if part != self.part {
                // every part before this one must have given all its rows
                if let Some(q) = self.short_part(self.part..part) {
                    return Err(self.ended_early(q));
                }
                self.part = part;
                self.part_rows = 0;
            }
            let p = &self.set.parts[part];
            let take = (array.len() - offset).min(max_rows - done);
            if self.part_rows + take as u64 > p.info.n_samples as u64 {
                return Err(Error::format(
                    &p.info.path,
                    format!(
                        "file has more rows than its metadata says ({})",
                        p.info.n_samples
                    ),
                ));
            }
            let before = skip.as_ref().map_or(0, |s| s.len());
            p.info.vectors.append_rows_skipping(
                &array,
                offset,
                take,
                self.part_rows,
                buf,
                skip.as_deref_mut(),
            )?;
            if let Some(s) = skip.as_deref_mut() {
                for r in &mut s[before..] {
                    *r += p.start_row;
                }
            }
            done += take;
            self.part_rows += take as u64;
            if offset + take < array.len() {
                self.pending = Some((part, array, offset + take));
            }
        }
        if done == 0 && start_row < self.set.n_samples as u64 {
            let missing = self.short_part(self.part..self.set.parts.len());
            return Err(self.ended_early(missing.unwrap_or(self.part)));
        }
        Ok(done)
    }
}
