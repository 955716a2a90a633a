//! One file per command: each turns its arguments into the core's configuration, runs the
//! core's job, and renders what it returns.

pub mod drift;
pub mod evaluate;
pub mod generate;
pub mod neighbors;
pub mod predict;
pub mod run;
pub mod scale;
pub mod sweep;
