//! # embedcluster
//!
//! Reduce and cluster millions of embedding vectors in bounded memory.
//!
//! The crate has four floors; a module imports only modules on floors below it (a test,
//! `tests/architecture.rs`, checks it):
//!
//! 1. **foundations**: [`dtype`] (`f32`/`f64`), [`error`], [`memory`] (stage recorder, RSS,
//!    memory plans), [`runtime`] (threads, cancel token, progress sink as arguments);
//! 2. **readers**: [`io`] (streaming Parquet, memory-mapped `.npy`, CSV, atomic writers);
//! 3. **algorithms**: [`linalg`] (GEMM wrappers, the [`linalg::Distance`] enum, the SIMD
//!    kernels), [`preprocessing`], [`metrics`], [`decomposition`], [`cluster`], [`neighbors`];
//!    then [`pipeline`] (typed steps and the fitted pipeline) and [`persist`] (the versioned
//!    model [`persist::Manifest`], the only reader and writer of model files);
//! 4. **jobs**: [`jobs`] (`run`, `predict`, `drift`, `sweep`, `evaluate`, `scale`,
//!    `neighbors`, `generate`: the only code that opens data files).
//!
//! Every fit that streams is `partial(block) -> state`, `merge(state, state)`,
//! `finish(state)`; results do not depend on the number of threads or the block size.
//!
//! # Example
//! ```
//! use embedcluster::cluster::{fit, KMeansParams, Metric};
//! // 4 points in 2 clusters
//! let x = [0.0f32, 0.0, 0.1, 0.0, 5.0, 5.0, 5.1, 5.0];
//! let params = KMeansParams { n_clusters: 2, metric: Metric::Euclidean, ..Default::default() };
//! let km = fit(&params, &x, 2).unwrap();
//! assert_eq!(km.labels()[0], km.labels()[1]);
//! assert_ne!(km.labels()[0], km.labels()[2]);
//! ```

// Index loops and BLAS-style argument lists are the clearest form for numeric kernels.
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod dtype;
pub mod error;
pub mod memory;
pub mod runtime;
pub mod units;

pub mod io;

pub mod cluster;
pub mod decomposition;
pub mod linalg;
pub mod metrics;
pub mod neighbors;
pub mod persist;
pub mod pipeline;
pub mod preprocessing;
pub mod summary;

pub mod jobs;
pub mod report;

/// Helpers for the fuzz targets (feature `fuzzing`; not public API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use dtype::{DType, Real};
pub use error::{Error, Result};
