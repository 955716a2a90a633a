//! Streaming readers and atomic writers.
//!
//! [`EmbeddingSource`] opens a Parquet file (an embedding column of `list<float32>`,
//! `large_list<float32>`, `fixed_size_list<float32>[d]` or the float64 variants) or a
//! `.npy` file (float32/float64, C order, 2-D, memory-mapped), or a CSV file of numeric
//! columns (float64; see `csv_source`). Neither is ever resident:
//! [`EmbeddingSource::blocks`] yields row blocks of at most `batch_rows` rows copied into
//! one reusable buffer, and may be called again for a second pass.
//!
//! Peak memory of a pass: `batch_rows * n_features * size_of::<T>()` for the block, plus
//! for Parquet one Arrow batch of at most [`ARROW_BATCH_ROWS`] rows and the pages being
//! decoded; for `.npy` the pages of the mapping the kernel keeps (reclaimable cache).
//!
//! Every value is checked as it is copied: NaN or infinity, null rows, null elements and
//! ragged rows are reported with file, row (0-based over the file) and column.

mod arrow_column;
mod arrow_stream;
mod csv_source;
pub mod dataset;
mod in_memory;
mod npy;
mod output;
mod parquet_source;
mod remote;
mod scratch;

pub use arrow_column::VectorColumn;
pub use arrow_stream::{import_batch, ForeignStream};
pub use in_memory::{BatchSource, MatrixRef, ARRAY_ORIGIN, ARROW_ORIGIN};
pub use npy::{write_npy_header, NpyHeader};
pub(crate) use output::RowGroupEncoder;
pub use output::{write_batch, AtomicFile, DirLock, OutputTarget, OutputWriter, StagedDir};
pub use remote::{
    is_url, set_storage_settings, storage_variables, StorageSettings,
    WINDOW_BYTES as REMOTE_WINDOW_BYTES,
};
pub use scratch::ScratchMatrix;

use crate::dtype::{DType, Real};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Most rows per Arrow batch decoded from Parquet; blocks are assembled from these batches
/// so that the Arrow side of a pass stays small whatever `batch_rows` is.
pub const ARROW_BATCH_ROWS: usize = 2048;

/// Bytes of vector values per decoded Arrow batch that [`arrow_batch_rows`] aims at.
pub const ARROW_BATCH_BYTES: usize = 2 << 20;

/// Rows per Arrow batch for vectors of `row_bytes` bytes: about [`ARROW_BATCH_BYTES`] of
/// values, between 64 and [`ARROW_BATCH_ROWS`] rows. The decoder holds a few times this
/// (values, definition and repetition levels, the batch being handed over), so small
/// batches keep it small; on the 312,000 x 1536 workload 512-row batches were also faster
/// than 2,048-row ones (they stay in L2/L3 cache): pass 1 4.3 s vs 5.3 s, 55 MiB less.
pub fn arrow_batch_rows(row_bytes: usize) -> usize {
    (ARROW_BATCH_BYTES / row_bytes.max(1)).clamp(64, ARROW_BATCH_ROWS)
}

/// The on-disk format of an [`EmbeddingSource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Npy,
    /// Numeric columns of a CSV file (read as float64).
    Csv,
    /// A matrix in the caller's memory (read block by block like `.npy`).
    Array,
    /// Arrow record batches from the caller (a pyarrow Table, a polars DataFrame).
    Arrow,
}

impl Format {
    /// Guesses the format from the file extension (`.parquet`/`.pq`, `.npy`).
    pub fn from_path(path: &Path) -> Result<Format> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref()
        {
            Some("parquet") | Some("pq") => Ok(Format::Parquet),
            Some("npy") => Ok(Format::Npy),
            Some("csv") => Ok(Format::Csv),
            _ => Err(Error::format(
                path,
                "unknown file type (expected .parquet, .npy or .csv)",
            )),
        }
    }
}

/// A re-iterable, streamed matrix of embeddings: a file on disk, or rows a front end holds
/// in memory (`'a` borrows them).
pub struct EmbeddingSource<'a> {
    path: PathBuf,
    column: String,
    n_samples: usize,
    n_features: usize,
    dtype: DType,
    inner: Inner<'a>,
}

impl std::fmt::Debug for EmbeddingSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingSource")
            .field("path", &self.path)
            .field("column", &self.column)
            .field("n_samples", &self.n_samples)
            .field("n_features", &self.n_features)
            .field("dtype", &self.dtype)
            .field("format", &self.format())
            .finish()
    }
}

enum Inner<'a> {
    Parquet(parquet_source::ParquetDataset),
    Npy(npy::NpyFile),
    Csv(csv_source::CsvInfo),
    Matrix(MatrixRef<'a>),
    Batches(Box<dyn BatchSource + 'a>, VectorColumn),
}

impl<'a> EmbeddingSource<'a> {
    /// Rows in the caller's memory: `x` row-major with `n_features` columns. Named
    /// `<array>`, column `X`, in errors.
    ///
    /// # Example
    /// ```
    /// use embedcluster::io::{EmbeddingSource, MatrixRef};
    /// let x = [1.0f32, 2.0, f32::NAN, 4.0];
    /// let src = EmbeddingSource::from_matrix(MatrixRef::F32(&x), 2).unwrap();
    /// let mut blocks = src.blocks::<f32>(1).unwrap();
    /// assert_eq!(blocks.next_block().unwrap().unwrap().data, &[1.0, 2.0]);
    /// let e = blocks.next_block().err().unwrap(); // every value is checked
    /// assert!(e.to_string().contains("<array>: row 1, column `X`[0]: value is NaN"));
    /// ```
    ///
    /// # Errors
    /// [`Error::Parameter`] when `x` is not whole rows; [`Error::Empty`] when it has none.
    pub fn from_matrix(x: MatrixRef<'a>, n_features: usize) -> Result<Self> {
        if n_features == 0 || !x.len().is_multiple_of(n_features) {
            return Err(Error::param_msg(
                "X",
                format!(
                    "{} values are not whole rows of {n_features} features",
                    x.len()
                ),
            ));
        }
        if x.len() == 0 {
            return Err(Error::Empty {
                path: ARRAY_ORIGIN.into(),
            });
        }
        Ok(EmbeddingSource {
            path: ARRAY_ORIGIN.into(),
            column: "X".into(),
            n_samples: x.len() / n_features,
            n_features,
            dtype: match x {
                MatrixRef::F32(_) => DType::Float32,
                MatrixRef::F64(_) => DType::Float64,
            },
            inner: Inner::Matrix(x),
        })
    }

    /// Arrow data from the caller, `n_samples` rows whose vector column has the layout
    /// `column` (its dimension known). Named `<arrow stream>` in errors.
    ///
    /// # Errors
    /// [`Error::Empty`] for no rows; [`Error::Column`] when the dimension is not known.
    pub fn from_batches(
        batches: Box<dyn BatchSource + 'a>,
        column: VectorColumn,
        n_samples: usize,
    ) -> Result<Self> {
        let Some(d) = column.n_features else {
            return Err(Error::column(
                ARROW_ORIGIN,
                column.name(),
                "the vector length is not known",
            ));
        };
        if n_samples == 0 {
            return Err(Error::Empty {
                path: ARROW_ORIGIN.into(),
            });
        }
        Ok(EmbeddingSource {
            path: ARROW_ORIGIN.into(),
            column: column.name().to_string(),
            n_samples,
            n_features: d,
            dtype: column.dtype,
            inner: Inner::Batches(batches, column),
        })
    }

    /// Opens `path`: a file (Parquet, `.npy`, CSV), a directory of Parquet part files, or
    /// a glob (see [`dataset`]); for Parquet, `column` names the embedding column (ignored
    /// for `.npy`).
    ///
    /// Reads only metadata (and, for `list` columns, the first row of each part to learn
    /// the dimension).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be opened, [`Error::Format`] if it is not a valid
    /// Parquet/`.npy` file, [`Error::Column`] if the column is missing or not a list of
    /// floats, [`Error::Empty`] if it has no rows, [`Error::Null`] if the first row is null;
    /// for a dataset, also the errors of [`EmbeddingSource::open_inputs`].
    pub fn open(path: impl AsRef<Path>, column: &str) -> Result<Self> {
        Self::open_inputs(&[path.as_ref().to_path_buf()], column)
    }

    /// Opens one or more inputs (files, directories, globs) as one table: Parquet parts in
    /// the order [`dataset::resolve`] gives, row ids counted over all of them. A single
    /// file given by its path may be of any supported format; a dataset is Parquet only.
    ///
    /// Memory: each part's footer (a few KiB) stays open; nothing else until a pass.
    ///
    /// # Errors
    /// Those of [`dataset::resolve`]; [`Error::Format`] naming a part that is not a
    /// Parquet file; [`Error::Column`] naming the first part whose embedding column differs
    /// in type or dimension from the first part's; [`Error::Format`] naming a part whose
    /// other columns differ, or a partition key that is also a column of the files;
    /// [`Error::Empty`] when no part has rows.
    pub fn open_inputs(inputs: &[PathBuf], column: &str) -> Result<Self> {
        let resolved = dataset::resolve(inputs)?;
        if resolved.single_file {
            let path = resolved.parts[0].path.clone();
            let format = Format::from_path(&path)?;
            let len = if remote::is_url(&path) {
                if format != Format::Parquet {
                    return Err(Error::format(
                        &path,
                        "only Parquet files are read from object storage (copy .npy and CSV files to a local disk)",
                    ));
                }
                remote::size(&path)?
            } else {
                std::fs::metadata(&path)
                    .map_err(|e| Error::io(&path, e))?
                    .len()
            };
            if len == 0 {
                return Err(Error::format(&path, "file is empty (0 bytes)"));
            }
            if format != Format::Parquet {
                return Self::open_file(path, format, column);
            }
        } else if let Some(p) = resolved
            .parts
            .iter()
            .find(|p| Format::from_path(&p.path).ok() != Some(Format::Parquet))
        {
            return Err(Error::format(
                &p.path,
                "a dataset of several files is read from Parquet files only (*.parquet, *.pq)",
            ));
        }
        let set = parquet_source::ParquetDataset::open(&resolved, column)?;
        Ok(EmbeddingSource {
            n_samples: set.n_samples,
            n_features: set.n_features,
            dtype: set.dtype,
            column: column.to_string(),
            path: resolved.display.clone(),
            inner: Inner::Parquet(set),
        })
    }

    fn open_file(path: PathBuf, format: Format, column: &str) -> Result<Self> {
        match format {
            Format::Parquet => unreachable!("Parquet files open as datasets"),
            Format::Npy => {
                let file = npy::NpyFile::open(&path)?;
                Ok(EmbeddingSource {
                    n_samples: file.header.shape.0,
                    n_features: file.header.shape.1,
                    dtype: file.header.dtype,
                    column: "npy".to_string(),
                    path,
                    inner: Inner::Npy(file),
                })
            }
            Format::Array | Format::Arrow => Err(Error::format(
                &path,
                "in-memory rows are not a file (use from_matrix or from_batches)",
            )),
            Format::Csv => {
                let info = csv_source::CsvInfo::open(&path, column)?;
                Ok(EmbeddingSource {
                    n_samples: info.n_samples,
                    n_features: info.n_features(),
                    dtype: DType::Float64,
                    column: column.to_string(),
                    path,
                    inner: Inner::Csv(info),
                })
            }
        }
    }

    /// Path of the file; for a dataset, the input as given (several joined by spaces).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where row `row` (0-based over the whole input) lives: the file and the row within
    /// it. For a single file, that file and `row`.
    pub fn locate(&self, row: u64) -> (&Path, u64) {
        match &self.inner {
            Inner::Parquet(set) => set.locate(row),
            _ => (&self.path, row),
        }
    }

    /// The input's files with their names relative to the input (a directory's parts: the
    /// path below it) and their row counts, in row order. A single file is one part; rows
    /// in memory are one part named after the origin.
    pub fn parts(&self) -> Vec<SourcePart> {
        match &self.inner {
            Inner::Parquet(set) => set
                .parts
                .iter()
                .map(|p| SourcePart {
                    path: p.info_path().to_path_buf(),
                    name: p.name.clone(),
                    n_samples: p.info.n_samples as u64,
                })
                .collect(),
            _ => vec![SourcePart {
                path: self.path.clone(),
                name: self
                    .path
                    .file_name()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| self.path.clone()),
                n_samples: self.n_samples as u64,
            }],
        }
    }

    /// Hive partition keys of a dataset (`key=value` folders): the last columns of
    /// [`other_columns`](Self::other_columns), in this order. Empty otherwise.
    pub fn partition_keys(&self) -> Vec<String> {
        match &self.inner {
            Inner::Parquet(set) => set.partition_keys(),
            _ => Vec::new(),
        }
    }
    /// Name of the embedding column (`npy` for `.npy` files).
    pub fn column(&self) -> &str {
        &self.column
    }
    /// Number of rows, from the file's metadata.
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }
    /// Dimension of the vectors.
    pub fn n_features(&self) -> usize {
        self.n_features
    }
    /// Element type of the stored vectors.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// The file's format.
    pub fn format(&self) -> Format {
        match self.inner {
            Inner::Parquet(_) => Format::Parquet,
            Inner::Npy(_) => Format::Npy,
            Inner::Csv(_) => Format::Csv,
            Inner::Matrix(_) => Format::Array,
            Inner::Batches(..) => Format::Arrow,
        }
    }

    /// Uncompressed bytes per row of the file's other columns (Parquet; 0 otherwise), for
    /// planning the writer's memory.
    pub fn other_bytes_per_row(&self) -> u64 {
        match &self.inner {
            Inner::Parquet(set) => set.other_bytes_per_row,
            _ => 0,
        }
    }

    /// True when the input is read from object storage (`s3://`, ...).
    pub fn is_remote(&self) -> bool {
        match &self.inner {
            Inner::Parquet(set) => set.parts.iter().any(|p| remote::is_url(p.info_path())),
            _ => false,
        }
    }

    /// Threads that decode the file ahead of the computation in a pass: for a Parquet file
    /// with several row groups and at least 256 MiB of vectors, one per thread of the pool
    /// (at most one per row group); 1 (a serial read) otherwise.
    pub fn decoder_threads(&self) -> usize {
        match &self.inner {
            Inner::Parquet(set) => set.decoder_threads(),
            _ => 1,
        }
    }

    /// Sets the decoder threads of later passes over Parquet input (at most one per row
    /// group; 1 is a serial read) instead of the automatic choice: for tests and
    /// benchmarks. The rows are the same either way. No effect on other formats.
    pub fn set_decoder_threads(&mut self, threads: usize) {
        if let Inner::Parquet(set) = &mut self.inner {
            set.decoders = Some(threads);
        }
    }

    /// Starts a pass over the rows in blocks of at most `batch_rows` rows, converted to `T`.
    pub fn blocks<T: Real>(&self, batch_rows: usize) -> Result<BlockReader<'_, 'a, T>> {
        if batch_rows == 0 {
            return Err(Error::param("batch_rows", 0, "must be at least 1"));
        }
        let inner = match &self.inner {
            Inner::Parquet(set) => ReaderInner::Parquet(set.reader(batch_rows)?),
            Inner::Npy(f) => ReaderInner::Npy { file: f, next: 0 },
            Inner::Csv(c) => ReaderInner::Csv(c.blocks()?),
            Inner::Matrix(m) => ReaderInner::Matrix { m: *m, next: 0 },
            Inner::Batches(b, column) => ReaderInner::Batches(in_memory::BatchPass {
                arrays: b.open_pass()?,
                pending: None,
                column,
                n_samples: self.n_samples,
            }),
        };
        Ok(BlockReader {
            source: self,
            inner,
            buf: Vec::new(),
            batch_rows,
            next_row: 0,
            skip_invalid: false,
            skipped: Vec::new(),
        })
    }

    /// Position of the embedding column among the file's columns (Parquet), for writers
    /// that keep the column order; `None` for `.npy` and CSV.
    pub fn column_index(&self) -> Option<usize> {
        match &self.inner {
            Inner::Parquet(set) => Some(set.column_index()),
            _ => None,
        }
    }

    /// Streams the columns other than the embedding column, for the output file (Parquet
    /// only; `None` for `.npy` or when there are no other columns); a dataset's partition
    /// keys come last. A batch never spans two parts.
    pub fn other_columns(&self, batch_rows: usize) -> Result<Option<parquet_source::OtherColumns>> {
        match &self.inner {
            Inner::Parquet(set) => set.other_columns(batch_rows),
            _ => Ok(None),
        }
    }
}

pub use parquet_source::{OtherColumns, PREFETCH_BATCHES};

/// One file of an input: see [`EmbeddingSource::parts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePart {
    /// Where it is read from.
    pub path: PathBuf,
    /// Its name relative to the input (reused by per-part outputs).
    pub name: PathBuf,
    /// Its rows.
    pub n_samples: u64,
}

enum ReaderInner<'a> {
    Parquet(parquet_source::ParquetBlocks<'a>),
    Npy { file: &'a npy::NpyFile, next: usize },
    Csv(csv_source::CsvBlocks<'a>),
    Matrix { m: MatrixRef<'a>, next: usize },
    Batches(in_memory::BatchPass<'a>),
}

/// One pass over an [`EmbeddingSource`]; see [`EmbeddingSource::blocks`].
pub struct BlockReader<'a, 'b, T> {
    source: &'a EmbeddingSource<'b>,
    inner: ReaderInner<'a>,
    buf: Vec<T>,
    batch_rows: usize,
    next_row: u64,
    skip_invalid: bool,
    skipped: Vec<u64>,
}

/// A block of rows: `data` is row-major, `rows x n_features`.
pub struct Block<'b, T> {
    /// Index of the block's first row within the file.
    pub start_row: u64,
    /// Number of rows in `data`.
    pub rows: usize,
    /// Rows of the file this block covers (`rows` plus the skipped ones).
    pub span: usize,
    /// File rows of this span left out as invalid (only with
    /// [`BlockReader::skip_invalid`]), ascending.
    pub skipped: &'b [u64],
    /// Row-major values, `rows * n_features` long. Mutable so that in-place
    /// preprocessing (normalization) needs no second buffer.
    pub data: &'b mut [T],
}

impl<T: Real> BlockReader<'_, '_, T> {
    /// Leaves out rows with a null vector, a null element, NaN or infinity instead of
    /// failing (`--on-invalid skip`); each block lists the file rows it skipped.
    pub fn skip_invalid(mut self) -> Self {
        self.skip_invalid = true;
        self
    }

    /// Reads the next block, or `None` at the end of the file.
    pub fn next_block(&mut self) -> Result<Option<Block<'_, T>>> {
        let d = self.source.n_features;
        let start_row = self.next_row;
        self.buf.clear();
        self.skipped.clear();
        let skip = if self.skip_invalid {
            Some(&mut self.skipped)
        } else {
            None
        };
        let span = match &mut self.inner {
            ReaderInner::Parquet(p) => p.fill(&mut self.buf, self.batch_rows, start_row, skip)?,
            ReaderInner::Csv(c) => c.fill(&mut self.buf, self.batch_rows, start_row, skip)?,
            ReaderInner::Matrix { m, next } => {
                in_memory::fill_matrix(*m, d, next, &mut self.buf, self.batch_rows, skip)?
            }
            ReaderInner::Batches(b) => b.fill(&mut self.buf, self.batch_rows, start_row, skip)?,
            ReaderInner::Npy { file, next } => {
                let rows = self.batch_rows.min(file.header.shape.0 - *next);
                file.read_rows(*next, rows, &mut self.buf, skip)?;
                *next += rows;
                rows
            }
        };
        if span == 0 {
            return Ok(None);
        }
        let rows = self.buf.len() / d;
        debug_assert_eq!(rows + self.skipped.len(), span);
        self.next_row += span as u64;
        Ok(Some(Block {
            start_row,
            rows,
            span,
            skipped: &self.skipped,
            data: &mut self.buf[..],
        }))
    }

    /// Rows read so far in this pass.
    pub fn rows_read(&self) -> u64 {
        self.next_row
    }
}

/// What to do with a row holding NaN, infinity, a null vector or element, or (cosine) an
/// all-zero vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnInvalid {
    /// Stop with an error naming file, row and column (the default).
    #[default]
    Error,
    /// Leave the row out of every fit; the output keeps it, with `cluster = -1` and a
    /// NaN score, so rows stay aligned with the input. The report counts them.
    Skip,
}

impl std::str::FromStr for OnInvalid {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "error" => Ok(OnInvalid::Error),
            "skip" => Ok(OnInvalid::Skip),
            _ => Err(Error::param(
                "on_invalid",
                format!("{s:?}"),
                "is not valid: expected error or skip",
            )),
        }
    }
}

/// Checks that every value of `row` is finite; reports the first that is not.
#[inline]
pub(crate) fn check_finite<T: Real>(
    path: &Path,
    column: &str,
    row: u64,
    values: &[T],
) -> Result<()> {
    if values.iter().all(|v| v.is_finite()) {
        return Ok(());
    }
    let (index, v) = values
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
        .expect("a non-finite value exists");
    Err(Error::NonFinite {
        path: path.to_path_buf(),
        row,
        column: column.to_string(),
        index,
        value: v.to_f64(),
    })
}
