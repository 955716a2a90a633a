//! One error type for the whole core crate.
//!
//! Every variant that comes from input data names the file and, where it applies, the
//! row (0-based, counted over the whole file) and the column, so that a user can find the
//! offending value. The CLI maps every variant to exit code 2; the Python bindings map them
//! to Python exceptions in one place.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in embedcluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused a read or a write.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a readable Parquet / `.npy` file (truncated, corrupt, wrong magic).
    #[error("{path}: cannot read file: {message}")]
    Format { path: PathBuf, message: String },
    /// The requested column is missing or has a type we cannot read.
    #[error("{path}: column `{column}`: {message}")]
    Column {
        path: PathBuf,
        column: String,
        message: String,
    },
    /// A value inside the embedding column is NaN or infinite.
    #[error("{path}: row {row}, column `{column}`[{index}]: value is {value} (embeddings must be finite)")]
    NonFinite {
        path: PathBuf,
        row: u64,
        column: String,
        index: usize,
        value: f64,
    },
    /// A row of the embedding column is null, or has a null element.
    #[error("{path}: row {row}, column `{column}`: {what} is null")]
    Null {
        path: PathBuf,
        row: u64,
        column: String,
        what: String,
    },
    /// A row of a `list<float>` column has a different length than the first row.
    #[error("{path}: row {row}, column `{column}`: vector has {found} values, expected {expected} (ragged rows)")]
    Ragged {
        path: PathBuf,
        row: u64,
        column: String,
        expected: usize,
        found: usize,
    },
    /// A row cannot be processed (for example an all-zero row under the cosine metric).
    #[error("{path}: row {row}, column `{column}`: {message}")]
    InvalidRow {
        path: PathBuf,
        row: u64,
        column: String,
        message: String,
    },
    /// The input holds no rows.
    #[error("{path}: file has no rows")]
    Empty { path: PathBuf },
    /// A parameter is out of range for the data (for example `n_clusters > n_samples`).
    #[error("invalid parameter: {0}")]
    Parameter(String),
    /// A numerical routine failed (for example the eigensolver did not converge).
    #[error("numerical error: {0}")]
    Numerical(String),
    /// The computation was cancelled (for example by Ctrl-C in Python).
    #[error("interrupted")]
    Interrupted,
    /// The run cannot stay within the memory limit it was given.
    #[error("{0}")]
    MemoryLimit(String),
    /// A saved model is missing, truncated or inconsistent.
    #[error("{path}: invalid model: {message}")]
    Model { path: PathBuf, message: String },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn format(path: impl Into<PathBuf>, message: impl ToString) -> Self {
        Error::Format {
            path: path.into(),
            message: message.to_string(),
        }
    }
    pub(crate) fn column(
        path: impl Into<PathBuf>,
        column: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Column {
            path: path.into(),
            column: column.into(),
            message: message.into(),
        }
    }
    /// A failure of a writer into `path` (Parquet/Arrow): an I/O error underneath (disk
    /// full, file too large, ...) becomes [`Error::Io`]; anything else is an I/O error of
    /// kind `Other` with the writer's message.
    pub(crate) fn write(path: impl Into<PathBuf>, e: impl std::error::Error + 'static) -> Self {
        let path = path.into();
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = cur {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                let kind = io.kind();
                let msg = match io.raw_os_error() {
                    Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
                    None => io.to_string(),
                };
                return Error::io(path, std::io::Error::new(kind, msg));
            }
            cur = err.source();
        }
        Error::io(path, std::io::Error::other(format!("cannot write: {e}")))
    }
    pub(crate) fn parameter(message: impl Into<String>) -> Self {
        Error::Parameter(message.into())
    }
}
