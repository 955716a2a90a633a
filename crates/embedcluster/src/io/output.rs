//! Outputs that are never half written: a temporary file in the target directory,
//! fsync, then rename over the target. Dropping an uncommitted [`AtomicFile`] (an error
//! path, a panic unwinding) removes the temporary file.

use crate::error::{Error, Result};
use arrow_array::{Array, ArrayRef, Float32Array, Int32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file written under a temporary name and renamed into place by [`AtomicFile::commit`].
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    /// Creates the temporary file next to `target`.
    ///
    /// # Errors
    /// [`Error::Io`] naming `target` if its directory is missing or not writable.
    pub fn create(target: impl AsRef<Path>) -> Result<Self> {
        let target = target.as_ref().to_path_buf();
        let name = target
            .file_name()
            .ok_or_else(|| Error::param("output", target.display(), "is not a file path"))?
            .to_string_lossy()
            .into_owned();
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(Error::io(
                &target,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("directory {} does not exist", dir.display()),
                ),
            ));
        }
        let temp = dir.join(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::create(&temp).map_err(|e| Error::io(&target, e))?;
        Ok(AtomicFile {
            target,
            temp,
            file: Some(file),
        })
    }

    /// The file to write into.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("file is open until commit")
    }

    /// A second handle on the temporary file (for writers that take ownership).
    pub fn try_clone(&self) -> Result<File> {
        self.file
            .as_ref()
            .expect("file is open until commit")
            .try_clone()
            .map_err(|e| Error::io(&self.target, e))
    }

    /// The final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// fsyncs the data and renames the temporary file over the target.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("commit once");
        file.sync_all().map_err(|e| Error::io(&self.target, e))?;
        drop(file);
        std::fs::rename(&self.temp, &self.target).map_err(|e| Error::io(&self.target, e))?;
        if let Some(dir) = self.target.parent() {
            if let Ok(d) = File::open(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            }) {
                let _ = d.sync_all();
            }
        }
        self.temp = PathBuf::new();
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            self.file.take();
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Writes the clustering output Parquet: the input's other columns, then `cluster`
/// (int32) and `score` (float32), block by block, atomically.
pub struct OutputWriter {
    atomic: AtomicFile,
    writer: ArrowWriter<File>,
    schema: SchemaRef,
}

impl OutputWriter {
    /// Starts an output with the given schema of other columns (if any).
    pub fn create(path: impl AsRef<Path>, others: Option<SchemaRef>) -> Result<Self> {
        Self::create_with(path, others, false)
    }

    /// Like [`create`](Self::create), with a `confidence` (float32) column when asked.
    pub fn create_with(
        path: impl AsRef<Path>,
        others: Option<SchemaRef>,
        confidence: bool,
    ) -> Result<Self> {
        let mut fields: Vec<Arc<Field>> = others
            .map(|s| s.fields().iter().cloned().collect())
            .unwrap_or_default();
        for name in ["cluster", "score", "confidence"] {
            if fields.iter().any(|f| f.name() == name) {
                return Err(Error::param_msg(
                    "output",
                    format!("the input already has a column named `{name}`; rename it first"),
                ));
            }
        }
        fields.push(Arc::new(Field::new("cluster", DataType::Int32, false)));
        fields.push(Arc::new(Field::new("score", DataType::Float32, false)));
        if confidence {
            fields.push(Arc::new(Field::new("confidence", DataType::Float32, false)));
        }
        let schema = Arc::new(Schema::new(fields));
        let atomic = AtomicFile::create(path)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(65536))
            .build();
        let writer = ArrowWriter::try_new(atomic.try_clone()?, schema.clone(), Some(props))
            .map_err(|e| Error::write(atomic.target(), e))?;
        Ok(OutputWriter {
            atomic,
            writer,
            schema,
        })
    }

    /// Appends rows: `others` (same row count) plus the cluster and score columns.
    pub fn write(
        &mut self,
        others: Option<&RecordBatch>,
        cluster: &[i32],
        score: &[f32],
    ) -> Result<()> {
        self.write_with(others, cluster, score, None)
    }

    /// [`write`](Self::write) with the `confidence` column of outputs created with it.
    pub fn write_with(
        &mut self,
        others: Option<&RecordBatch>,
        cluster: &[i32],
        score: &[f32],
        confidence: Option<&[f32]>,
    ) -> Result<()> {
        assert_eq!(cluster.len(), score.len());
        let mut columns: Vec<ArrayRef> = match others {
            Some(b) => {
                assert_eq!(b.num_rows(), cluster.len());
                b.columns().to_vec()
            }
            None => Vec::new(),
        };
        columns.push(Arc::new(Int32Array::from(cluster.to_vec())));
        columns.push(Arc::new(Float32Array::from(score.to_vec())));
        if let Some(c) = confidence {
            columns.push(Arc::new(Float32Array::from(c.to_vec())));
        }
        debug_assert!(columns.iter().all(|c| c.len() == cluster.len()));
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| Error::write(self.atomic.target(), e))?;
        self.writer
            .write(&batch)
            .map_err(|e| Error::write(self.atomic.target(), e))
    }

    /// Finishes the Parquet footer, fsyncs and renames into place.
    pub fn finish(self) -> Result<()> {
        let OutputWriter { atomic, writer, .. } = self;
        writer
            .close()
            .map_err(|e| Error::write(atomic.target(), e))?;
        atomic.commit()
    }
}

/// A Parquet writer that encodes and compresses row groups on `W` threads and writes them
/// in order: the single-threaded `ArrowWriter` spent most of a streaming standardization's
/// second pass in zstd. Batches are gathered into row groups of `group_rows` rows; a full
/// group goes to a worker (arrow-rs's `ArrowColumnWriter`s for that row group), and the
/// oldest finished group is appended to the file whenever `W` are in flight. The file is
/// the same as `ArrowWriter`'s with the same properties, row group for row group.
///
/// Memory: at most `W + 1` row groups of input batches plus their encoded pages.
pub(crate) struct RowGroupEncoder<W: std::io::Write + Send> {
    file: parquet::file::writer::SerializedFileWriter<W>,
    factory: Arc<parquet::arrow::arrow_writer::ArrowRowGroupWriterFactory>,
    schema: SchemaRef,
    group_rows: usize,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    inflight: std::collections::VecDeque<std::thread::JoinHandle<EncodedGroup>>,
    next_index: usize,
    workers: usize,
    path: PathBuf,
}

type EncodedGroup = parquet::errors::Result<Vec<parquet::arrow::arrow_writer::ArrowColumnChunk>>;

impl<W: std::io::Write + Send> RowGroupEncoder<W> {
    /// `workers` encoding threads (at least 1); `path` names the output in errors.
    pub(crate) fn new(
        out: W,
        schema: SchemaRef,
        props: WriterProperties,
        group_rows: usize,
        workers: usize,
        path: &Path,
    ) -> Result<Self> {
        let (file, factory) = ArrowWriter::try_new(out, schema.clone(), Some(props))
            .and_then(|w| w.into_serialized_writer())
            .map_err(|e| Error::write(path, e))?;
        Ok(RowGroupEncoder {
            file,
            factory: Arc::new(factory),
            schema,
            group_rows: group_rows.max(1),
            pending: Vec::new(),
            pending_rows: 0,
            inflight: Default::default(),
            next_index: 0,
            workers: workers.max(1),
            path: path.to_path_buf(),
        })
    }

    /// Adds a batch (split across row groups at `group_rows`).
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut at = 0;
        while at < batch.num_rows() {
            let take = (self.group_rows - self.pending_rows).min(batch.num_rows() - at);
            self.pending.push(batch.slice(at, take));
            self.pending_rows += take;
            at += take;
            if self.pending_rows == self.group_rows {
                self.dispatch()?;
            }
        }
        Ok(())
    }

    fn dispatch(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        while self.inflight.len() >= self.workers {
            self.append_oldest()?;
        }
        let batches = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        let (factory, schema, index) = (self.factory.clone(), self.schema.clone(), self.next_index);
        self.next_index += 1;
        self.inflight.push_back(std::thread::spawn(move || {
            use parquet::arrow::arrow_writer::compute_leaves;
            let mut writers = factory.create_column_writers(index)?;
            for b in &batches {
                let mut w = writers.iter_mut();
                for (array, field) in b.columns().iter().zip(schema.fields()) {
                    for leaf in compute_leaves(field, array)? {
                        w.next().expect("a writer per leaf").write(&leaf)?;
                    }
                }
            }
            drop(batches);
            writers.into_iter().map(|w| w.close()).collect()
        }));
        Ok(())
    }

    fn append_oldest(&mut self) -> Result<()> {
        let Some(h) = self.inflight.pop_front() else {
            return Ok(());
        };
        let chunks = h
            .join()
            .map_err(|_| Error::format(&self.path, "a Parquet encoder thread panicked"))?
            .map_err(|e| Error::write(&self.path, e))?;
        let mut rg = self
            .file
            .next_row_group()
            .map_err(|e| Error::write(&self.path, e))?;
        for c in chunks {
            c.append_to_row_group(&mut rg)
                .map_err(|e| Error::write(&self.path, e))?;
        }
        rg.close().map_err(|e| Error::write(&self.path, e))?;
        Ok(())
    }

    /// Encodes what is left and writes the footer.
    pub(crate) fn close(mut self) -> Result<()> {
        self.dispatch()?;
        while !self.inflight.is_empty() {
            self.append_oldest()?;
        }
        self.file.close().map_err(|e| Error::write(&self.path, e))?;
        Ok(())
    }
}
