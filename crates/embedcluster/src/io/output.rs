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
            .ok_or_else(|| Error::parameter(format!("{}: not a file path", target.display())))?
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
                return Err(Error::parameter(format!(
                    "the input already has a column named `{name}`; rename it first"
                )));
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
