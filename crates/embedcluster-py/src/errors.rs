//! The one mapping from core errors to Python exceptions. Core messages spell parameters
//! as the core (and scikit-learn, and this package) does: `n_clusters`, `reduce`,
//! `mean_`; never a CLI flag.

use embedcluster::Error;
use pyo3::create_exception;
use pyo3::exceptions::{
    PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyPermissionError, PyValueError,
};
use pyo3::prelude::*;

create_exception!(
    embedcluster,
    EmbedclusterError,
    PyValueError,
    "Bad input data or parameters (a ValueError)."
);
create_exception!(
    embedcluster,
    MemoryLimitError,
    EmbedclusterError,
    "The run cannot stay within `memory_limit` (raised before any data is read; the message names the stage, what it holds, and what to change)."
);

/// A parameter as Python spells it: the core's names are this package's keyword names.
fn python_name(name: &str) -> String {
    name.to_string()
}

/// The one mapping from core errors to Python exceptions.
pub fn to_py(e: Error) -> PyErr {
    let msg = e.render(&python_name);
    match &e {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(msg)
        }
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            PyPermissionError::new_err(msg)
        }
        Error::Io { .. } => PyOSError::new_err(msg),
        Error::Interrupted => PyKeyboardInterrupt::new_err("interrupted"),
        Error::MemoryLimit(_) => MemoryLimitError::new_err(msg),
        _ => EmbedclusterError::new_err(msg),
    }
}

/// An [`EmbedclusterError`] (a `ValueError`) with `msg`.
pub fn value_error(msg: impl Into<String>) -> PyErr {
    EmbedclusterError::new_err(msg.into())
}
