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

/// An advisory lock on a directory (`flock(2)` on the directory itself, so nothing is
/// added to it), held until dropped. Writers of several files that must match (a model's
/// tensors and manifest; the parts of a `--output DIR/` written into an existing directory)
/// take it exclusively, readers shared: two saves into one directory, from two threads or
/// two processes, then leave one save's complete set, and a load never pairs files of two
/// saves. Best effort: where the directory cannot be opened or the file system does not
/// lock (some network file systems), it is a no-op, and the checksums still refuse a mixed
/// pair on load.
#[derive(Debug)]
pub struct DirLock {
    _dir: Option<File>,
}

impl DirLock {
    /// Waits for and takes the exclusive lock on `dir`.
    pub fn exclusive(dir: &Path) -> DirLock {
        Self::take(dir, true)
    }

    /// Waits for and takes a shared lock on `dir`.
    pub fn shared(dir: &Path) -> DirLock {
        Self::take(dir, false)
    }

    fn take(dir: &Path, exclusive: bool) -> DirLock {
        let Ok(f) = File::open(dir) else {
            return DirLock { _dir: None };
        };
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            let op = if exclusive {
                libc::LOCK_EX
            } else {
                libc::LOCK_SH
            };
            loop {
                // SAFETY: flock on a file descriptor we own; released when it is closed.
                let r = unsafe { libc::flock(f.as_raw_fd(), op) };
                if r == 0 {
                    break;
                }
                if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                    return DirLock { _dir: None };
                }
            }
        }
        #[cfg(not(unix))]
        let _ = exclusive;
        DirLock { _dir: Some(f) }
    }
}

/// The file name of an output `target` and its directory, which must exist (`not_a_path`
/// is the message when `target` has no file name).
fn name_and_parent(target: &Path, not_a_path: &str) -> Result<(String, PathBuf)> {
    let name = target
        .file_name()
        .ok_or_else(|| Error::param("output", target.display(), not_a_path))?
        .to_string_lossy()
        .into_owned();
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::io(
            target,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("directory {} does not exist", dir.display()),
            ),
        ));
    }
    Ok((name, dir))
}

/// A local temporary path for an output bound for object storage (in `$TMPDIR`).
fn local_staging(target: &Path) -> PathBuf {
    let name = target
        .to_string_lossy()
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("output")
        .to_string();
    std::env::temp_dir().join(format!(
        ".embedcluster-upload-{}-{}-{name}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A file written under a temporary name and renamed into place by [`AtomicFile::commit`].
/// For an object-store target, the temporary file is local and `commit` uploads it.
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
        if super::remote::is_url(&target) {
            super::remote::probe(&target)?;
            let temp = local_staging(&target);
            let file = File::create(&temp).map_err(|e| Error::io(&temp, e))?;
            return Ok(AtomicFile {
                target,
                temp,
                file: Some(file),
            });
        }
        let (name, dir) = name_and_parent(&target, "is not a file path")?;
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
        if super::remote::is_url(&self.target) {
            // the object appears when its upload completes; the local copy goes (Drop)
            return super::remote::upload(&self.temp, &self.target);
        }
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

/// Where an output goes: one Parquet file, or a directory with one part per input part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    /// One file, written atomically.
    File(PathBuf),
    /// A directory: part `name` holds the rows of the input part of that name (its path
    /// below the input directory: `key=value` folders are kept), `rows` of them, in input
    /// order. The parts appear together, only on success.
    Parts {
        dir: PathBuf,
        parts: Vec<(PathBuf, u64)>,
    },
}

impl OutputTarget {
    /// A path ending in `/` (or an existing directory) is a directory of parts named as
    /// the input's ([`EmbeddingSource::parts`]; a `.npy`/CSV input's part is named after it
    /// with a `.parquet` extension); anything else is one file.
    ///
    /// # Errors
    /// [`Error::Parameter`] when two input parts have the same name (several inputs with
    /// the same file names): write one file instead.
    pub fn for_source(path: &Path, source: &crate::io::EmbeddingSource) -> Result<Self> {
        let as_dir = path.as_os_str().to_string_lossy().ends_with('/') || path.is_dir();
        if !as_dir {
            return Ok(OutputTarget::File(path.to_path_buf()));
        }
        let mut parts: Vec<(PathBuf, u64)> = Vec::new();
        for p in source.parts() {
            let mut name = p.name.clone();
            let is_parquet = matches!(
                name.extension()
                    .and_then(|e| e.to_str())
                    .map(|e| e.to_ascii_lowercase())
                    .as_deref(),
                Some("parquet") | Some("pq")
            );
            if !is_parquet {
                name.set_extension("parquet");
            }
            if parts.iter().any(|(n, _)| *n == name) {
                return Err(Error::param_msg(
                    "output",
                    format!(
                        "two input parts are named {}: a directory output needs distinct part names (write one file instead)",
                        name.display()
                    ),
                ));
            }
            parts.push((name, p.n_samples));
        }
        Ok(OutputTarget::Parts {
            dir: path.to_path_buf(),
            parts,
        })
    }

    /// Fails now, before any work, when the output cannot be written.
    pub fn check(&self) -> Result<()> {
        match self {
            OutputTarget::File(p) => AtomicFile::create(p).map(drop),
            OutputTarget::Parts { dir, .. } => StagedDir::create(dir).map(drop),
        }
    }

    /// Its name in reports.
    pub fn path(&self) -> &Path {
        match self {
            OutputTarget::File(p) => p,
            OutputTarget::Parts { dir, .. } => dir,
        }
    }
}

/// A directory output staged under a temporary name: parts are written below it and
/// moved into place by [`StagedDir::commit`] (one rename when the directory is new);
/// dropping it uncommitted removes everything it wrote.
#[derive(Debug)]
pub struct StagedDir {
    target: PathBuf,
    staging: PathBuf,
    existed: bool,
}

impl StagedDir {
    /// Creates the staging directory: beside `target` when it does not exist yet, inside
    /// it when it does.
    ///
    /// # Errors
    /// [`Error::Io`] naming `target` when its parent is missing or not writable.
    pub fn create(target: &Path) -> Result<Self> {
        let target = PathBuf::from(target.as_os_str().to_string_lossy().trim_end_matches('/'));
        let target = if target.as_os_str().is_empty() {
            PathBuf::from("/")
        } else {
            target
        };
        if super::remote::is_url(&target) {
            super::remote::probe(&target)?;
            let staging = local_staging(&target);
            std::fs::create_dir(&staging).map_err(|e| Error::io(&staging, e))?;
            return Ok(StagedDir {
                target,
                staging,
                existed: false,
            });
        }
        let existed = target.is_dir();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let staging = if existed {
            target.join(format!(".embedcluster-tmp-{}-{n}", std::process::id()))
        } else {
            let (name, parent) = name_and_parent(&target, "is not a directory path")?;
            parent.join(format!(".{name}.tmp-{}-{n}", std::process::id()))
        };
        std::fs::create_dir(&staging).map_err(|e| Error::io(&target, e))?;
        Ok(StagedDir {
            target,
            staging,
            existed,
        })
    }

    /// Creates the file `name` (a relative path) in the staging directory.
    pub fn create_file(&self, name: &Path) -> Result<File> {
        let path = self.staging.join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(self.target.join(name), e))?;
        }
        File::create(&path).map_err(|e| Error::io(self.target.join(name), e))
    }

    /// Where `name` will be once committed.
    pub fn target_of(&self, name: &Path) -> PathBuf {
        self.target.join(name)
    }

    /// Moves the parts `names` into place (files already fsynced by their writers).
    pub fn commit(mut self, names: &[PathBuf]) -> Result<()> {
        if super::remote::is_url(&self.target) {
            // each part appears when its upload completes, in order; the staging goes (Drop)
            for name in names {
                let to = PathBuf::from(format!(
                    "{}/{}",
                    self.target.display(),
                    name.to_string_lossy()
                ));
                super::remote::upload(&self.staging.join(name), &to)?;
            }
            return Ok(());
        }
        let staging = std::mem::take(&mut self.staging);
        // one committer at a time moves its parts in: no mix of two runs' parts
        let _lock = self.existed.then(|| DirLock::exclusive(&self.target));
        if !self.existed {
            std::fs::rename(&staging, &self.target).map_err(|e| Error::io(&self.target, e))?;
        } else {
            for name in names {
                let to = self.target.join(name);
                if let Some(dir) = to.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| Error::io(&to, e))?;
                }
                std::fs::rename(staging.join(name), &to).map_err(|e| Error::io(&to, e))?;
            }
            let _ = std::fs::remove_dir_all(&staging);
        }
        if let Ok(d) = File::open(&self.target) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.staging.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Writes one batch as a Parquet file at `path`, atomically (a temporary file, then a
/// rename); zstd, as the main output.
///
/// # Errors
/// [`Error::Io`] when the file cannot be written.
pub fn write_batch(path: &Path, batch: &RecordBatch) -> Result<()> {
    let atomic = AtomicFile::create(path)?;
    let file = atomic.try_clone()?;
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(output_props()))
        .map_err(|e| Error::write(path, e))?;
    w.write(batch).map_err(|e| Error::write(path, e))?;
    w.close().map_err(|e| Error::write(path, e))?;
    atomic.commit()
}

fn output_props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(65536))
        .build()
}

enum Sink {
    File {
        atomic: AtomicFile,
        writer: ArrowWriter<File>,
    },
    Parts {
        staged: StagedDir,
        parts: Vec<(PathBuf, u64)>,
        /// Indices of the full schema's columns written into parts (partition keys dropped:
        /// the folder names hold them).
        keep: Vec<usize>,
        part_schema: SchemaRef,
        /// The part being written and the rows it still needs.
        current: usize,
        left: u64,
        writer: Option<ArrowWriter<File>>,
    },
}

/// Writes the clustering output Parquet: the input's other columns, then `cluster`
/// (int32) and `score` (float32), block by block, atomically; into one file or, for an
/// [`OutputTarget::Parts`], one file per input part.
pub struct OutputWriter {
    sink: Sink,
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
        Self::to_target(
            &OutputTarget::File(path.as_ref().to_path_buf()),
            others,
            confidence,
            &[],
        )
    }

    /// An output to `target`; in a directory of parts the `partition_keys` columns of
    /// `others` are left out of the files (their folders keep them, as Spark and pyarrow
    /// write partitioned datasets).
    ///
    /// # Errors
    /// [`Error::Parameter`] when the input already has a `cluster`, `score` or
    /// `confidence` column; [`Error::Io`] when the output cannot be created.
    pub fn to_target(
        target: &OutputTarget,
        others: Option<SchemaRef>,
        confidence: bool,
        partition_keys: &[String],
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
        let sink = match target {
            OutputTarget::File(path) => {
                let atomic = AtomicFile::create(path)?;
                let writer =
                    ArrowWriter::try_new(atomic.try_clone()?, schema.clone(), Some(output_props()))
                        .map_err(|e| Error::write(atomic.target(), e))?;
                Sink::File { atomic, writer }
            }
            OutputTarget::Parts { dir, parts } => {
                let keep: Vec<usize> = (0..schema.fields().len())
                    .filter(|&i| !partition_keys.contains(schema.field(i).name()))
                    .collect();
                let part_schema =
                    Arc::new(schema.project(&keep).map_err(|e| Error::write(dir, e))?);
                Sink::Parts {
                    staged: StagedDir::create(dir)?,
                    parts: parts.clone(),
                    keep,
                    part_schema,
                    current: 0,
                    left: parts.first().map_or(0, |p| p.1),
                    writer: None,
                }
            }
        };
        Ok(OutputWriter { sink, schema })
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
        let name = self.target().to_path_buf();
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| Error::write(&name, e))?;
        match &mut self.sink {
            Sink::File { atomic, writer } => writer
                .write(&batch)
                .map_err(|e| Error::write(atomic.target(), e)),
            Sink::Parts { .. } => self.write_parts(&batch),
        }
    }

    fn write_parts(&mut self, batch: &RecordBatch) -> Result<()> {
        let Sink::Parts {
            staged,
            parts,
            keep,
            part_schema,
            current,
            left,
            writer,
        } = &mut self.sink
        else {
            unreachable!("parts sink")
        };
        let mut at = 0;
        while at < batch.num_rows() {
            while *left == 0 {
                // the current part is complete (or empty): close it, go to the next
                close_part(staged, parts, part_schema, *current, writer)?;
                *current += 1;
                match parts.get(*current) {
                    Some(p) => *left = p.1,
                    None => {
                        return Err(Error::io(
                            &staged.target,
                            std::io::Error::other("more rows than the input parts hold"),
                        ))
                    }
                }
            }
            let take = (*left).min((batch.num_rows() - at) as u64) as usize;
            let name = &parts[*current].0;
            if writer.is_none() {
                let file = staged.create_file(name)?;
                *writer = Some(
                    ArrowWriter::try_new(file, part_schema.clone(), Some(output_props()))
                        .map_err(|e| Error::write(staged.target_of(name), e))?,
                );
            }
            let slice = batch
                .slice(at, take)
                .project(keep)
                .map_err(|e| Error::write(staged.target_of(name), e))?;
            writer
                .as_mut()
                .expect("opened")
                .write(&slice)
                .map_err(|e| Error::write(staged.target_of(name), e))?;
            at += take;
            *left -= take as u64;
        }
        Ok(())
    }

    fn target(&self) -> &Path {
        match &self.sink {
            Sink::File { atomic, .. } => atomic.target(),
            Sink::Parts { staged, .. } => &staged.target,
        }
    }

    /// Finishes the Parquet footer(s), fsyncs and renames into place.
    ///
    /// # Errors
    /// [`Error::Io`] when a directory output got fewer rows than its parts hold.
    pub fn finish(self) -> Result<()> {
        match self.sink {
            Sink::File { atomic, writer } => {
                writer
                    .close()
                    .map_err(|e| Error::write(atomic.target(), e))?;
                atomic.commit()
            }
            Sink::Parts {
                staged,
                parts,
                part_schema,
                mut current,
                left,
                mut writer,
                ..
            } => {
                if left > 0 || parts.iter().skip(current + 1).any(|p| p.1 > 0) {
                    return Err(Error::io(
                        &staged.target,
                        std::io::Error::other("fewer rows were written than the input parts hold"),
                    ));
                }
                while current < parts.len() {
                    close_part(&staged, &parts, &part_schema, current, &mut writer)?;
                    current += 1;
                }
                let names: Vec<PathBuf> = parts.iter().map(|p| p.0.clone()).collect();
                staged.commit(&names)
            }
        }
    }
}

/// Finishes part `i` (creating it when it got no rows), fsynced.
fn close_part(
    staged: &StagedDir,
    parts: &[(PathBuf, u64)],
    schema: &SchemaRef,
    i: usize,
    writer: &mut Option<ArrowWriter<File>>,
) -> Result<()> {
    let name = &parts[i].0;
    let w = match writer.take() {
        Some(w) => w,
        None => ArrowWriter::try_new(
            staged.create_file(name)?,
            schema.clone(),
            Some(output_props()),
        )
        .map_err(|e| Error::write(staged.target_of(name), e))?,
    };
    let file = w
        .into_inner()
        .map_err(|e| Error::write(staged.target_of(name), e))?;
    file.sync_all()
        .map_err(|e| Error::io(staged.target_of(name), e))
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
