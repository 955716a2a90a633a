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
    /// A parameter is out of range for the data (for example `n_clusters > n_samples`):
    /// which parameter, its value, and the constraint it breaks. Front ends render the
    /// parameter with their own spelling ([`ParamError::render`]): `--n-clusters` in the CLI,
    /// `n_clusters=` in Python.
    #[error("invalid parameter: {0}")]
    Parameter(ParamError),
    /// A numerical routine failed (for example the eigensolver did not converge).
    #[error("numerical error: {0}")]
    Numerical(String),
    /// The computation was cancelled (for example by Ctrl-C in Python).
    #[error("interrupted")]
    Interrupted,
    /// The run cannot stay within the memory limit it was given.
    #[error("{0}")]
    MemoryLimit(MemoryLimitError),
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
    /// [`Error::Format`]: `path` cannot be read as what it should be.
    pub fn format(path: impl Into<PathBuf>, message: impl ToString) -> Self {
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
    /// [`Error::Parameter`]: parameter `name` (the core's, scikit-learn's spelling) has
    /// `value`, which breaks `constraint` (a phrase such as "must be at least 1").
    pub fn param(
        name: &'static str,
        value: impl std::fmt::Display,
        constraint: impl Into<String>,
    ) -> Self {
        Error::Parameter(ParamError {
            name,
            value: Some(value.to_string()),
            constraint: constraint.into(),
        })
    }
    /// [`Error::Parameter`] about parameter `name` with no single value to show (for
    /// example a shape mismatch between two arrays).
    pub fn param_msg(name: &'static str, constraint: impl Into<String>) -> Self {
        Error::Parameter(ParamError {
            name,
            value: None,
            constraint: constraint.into(),
        })
    }

    /// The message with parameter names spelled by a front end: `spell("n_clusters")` gives
    /// `"--n-clusters"` in the CLI; other variants are their [`Display`](std::fmt::Display).
    ///
    /// # Example
    /// ```
    /// use embedcluster::Error;
    /// let e = Error::param("n_clusters", 0, "must be at least 1");
    /// assert_eq!(e.to_string(), "invalid parameter: n_clusters = 0 must be at least 1");
    /// let flag = |n: &str| format!("--{}", n.replace('_', "-"));
    /// assert_eq!(e.render(&flag), "invalid parameter: --n-clusters 0 must be at least 1");
    /// ```
    pub fn render(&self, spell: &dyn Fn(&str) -> String) -> String {
        match self {
            Error::Parameter(p) => format!("invalid parameter: {}", p.render(spell)),
            Error::MemoryLimit(m) => m.render(spell),
            other => other.to_string(),
        }
    }
}

/// Which parameter is wrong, its value, and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// The parameter, spelled as the core and scikit-learn spell it (`n_clusters`,
    /// `reduce`, `batch_rows`, `X`).
    pub name: &'static str,
    /// Its value as given, when there is one to show.
    pub value: Option<String>,
    /// The constraint it breaks, a phrase that follows the value ("must be at least 1",
    /// "is larger than n_samples = 10").
    pub constraint: String,
}

impl ParamError {
    /// The message with the parameter spelled by `spell` (the CLI's flag or Python's name).
    pub fn render(&self, spell: &dyn Fn(&str) -> String) -> String {
        let name = spell(self.name);
        // `--n-clusters 11 is larger ...` in the CLI, `n_clusters = 11 is larger ...` elsewhere
        let eq = if name.starts_with('-') { " " } else { " = " };
        match &self.value {
            Some(v) => format!("{name}{eq}{v} {}", self.constraint),
            None => format!("{name}: {}", self.constraint),
        }
    }
}

impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(&|n| n.to_string()))
    }
}

/// A run that cannot fit its memory limit: the stage, what it holds, and what to change.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryLimitError {
    /// The limit, bytes.
    pub limit_bytes: u64,
    /// The stage that does not fit.
    pub stage: String,
    /// Its predicted peak at the smallest block, bytes.
    pub needs_bytes: u64,
    /// The stage's terms, already formatted ("base 6.6 MiB + ...").
    pub holds: String,
    /// What would make it fit.
    pub advice: Vec<Advice>,
}

/// A change that makes a run fit its memory limit.
#[derive(Debug, Clone, PartialEq)]
pub enum Advice {
    /// A smaller block than the `now` rows given (or none, to let the plan choose).
    SmallerBatch { now: usize },
    /// Fit PCA on a sample: the exact fit holds `d x d` matrices.
    SampleFit { n_features: usize },
    /// A smaller PCA sample.
    SmallerSample { to: usize },
    /// Fewer components, `to` instead of `from`.
    FewerComponents { from: usize, to: usize },
    /// Fewer rows: the reduced matrix alone does not fit.
    FewerRows,
    /// A larger limit.
    LargerLimit,
}

impl MemoryLimitError {
    /// The message with parameters spelled by `spell`.
    pub fn render(&self, spell: &dyn Fn(&str) -> String) -> String {
        let advice: Vec<String> = self
            .advice
            .iter()
            .map(|a| match a {
                Advice::SmallerBatch { now } => format!(
                    "a smaller {} (or leave it out to let the plan choose; now {now})",
                    spell("batch_rows")
                ),
                Advice::SampleFit { n_features } => format!(
                    "{} sample:N (the exact fit holds d x d matrices: d = {n_features})",
                    spell("pca_fit")
                ),
                Advice::SmallerSample { to } => {
                    format!("a smaller sample: {} sample:{to}", spell("pca_fit"))
                }
                Advice::FewerComponents { from, to } => format!(
                    "fewer components: {} pca:{to} (or matryoshka:{to}) instead of {from}",
                    spell("reduce")
                ),
                Advice::FewerRows => "fewer rows (the reduced matrix alone does not fit)".into(),
                Advice::LargerLimit => format!("a larger {}", spell("memory_limit")),
            })
            .collect();
        format!(
            "memory limit {} cannot be met: stage `{}` needs about {} ({}); use {}",
            crate::units::format_bytes(self.limit_bytes),
            self.stage,
            crate::units::format_bytes(self.needs_bytes),
            self.holds,
            advice.join(", or ")
        )
    }
}

impl std::fmt::Display for MemoryLimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(&|n| n.to_string()))
    }
}
