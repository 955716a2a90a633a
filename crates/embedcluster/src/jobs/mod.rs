//! The jobs: the only code that opens data files. Each takes a configuration and a
//! [`Runtime`](crate::runtime::Runtime) (threads, cancel token, progress) and returns a
//! report; the CLI and the Python bindings are thin front ends over them.
//!
//! | job | command | module |
//! |---|---|---|
//! | reduce and cluster a file | `embedcluster run` | [`run`] (with its memory [`plan`]) |
//! | assign new rows with a saved model | `embedcluster predict` | [`predict`] |
//! | compare new rows with the training calibration | `embedcluster drift` | [`predict::drift`] |
//! | k-means for several k | `embedcluster sweep` | [`sweep`] |
//! | score a clustering | `embedcluster evaluate` | [`evaluate`] |
//! | standardize a file | `embedcluster scale` | [`scale`] |
//! | exact top-k neighbours | `embedcluster neighbors` | [`neighbors`] |
//! | synthetic labelled data | `embedcluster generate` | [`generate`] |

pub mod evaluate;
pub mod generate;
pub mod neighbors;
pub mod plan;
pub mod predict;
pub mod run;
pub mod scale;
pub mod sweep;
