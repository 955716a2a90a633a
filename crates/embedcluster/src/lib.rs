//! # embedcluster
//!
//! Reduce and cluster millions of embedding vectors in bounded memory.
//!
//! * [`io`]: streaming Parquet and memory-mapped `.npy` readers, atomic writers.
//! * [`preprocessing`]: row L2 normalization, mergeable per-feature moments.
//! * [`decomposition`]: PCA by streaming covariance or randomized SVD; Matryoshka.
//! * [`cluster`]: k-means and spherical k-means over blocked GEMM with fused argmin.
//! * [`metrics`]: ARI and NMI.
//! * [`memory`]: per-stage wall/CPU time and peak RSS.
//! * [`persist`]: safetensors + JSON models.
//! * [`datasets`]: the synthetic benchmark generator.
//! * [`pipeline`]: the main job (`embedcluster run`).
//! * [`plan`]: its predicted peak memory per stage, and a memory limit.
//!
//! Every fit that streams is `partial(block) -> state`, `merge(state, state)`,
//! `finish(state)`; results do not depend on the number of threads.

// Index loops and BLAS-style argument lists are the clearest form for numeric kernels.
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]

pub(crate) mod assign;
pub mod cluster;
pub mod datasets;
pub mod decomposition;
pub mod error;
pub mod evaluate;
#[doc(hidden)]
pub mod fuzzing;
pub mod io;
pub mod linalg;
pub mod memory;
pub mod metrics;
pub mod neighbors;
pub mod persist;
pub mod pipeline;
pub mod plan;
pub mod predict;
pub mod preprocessing;
pub mod real;
pub mod sweep;

pub use error::{Error, Result};
pub use real::{DType, Real};
