//! `embedcluster._core`: the PyO3 bindings of the embedcluster core, one file per core
//! module (`cluster`, `decomposition`, `preprocessing`, `neighbors`, `metrics`,
//! `pipeline`), plus `errors` (the one mapping to Python exceptions), `runtime` (the pool,
//! the GIL, Ctrl-C), `arrays` (NumPy in and out) and `arrow` (Arrow C-stream input).
//!
//! Stateless functions over NumPy arrays; the scikit-learn style estimators live in the
//! Python package (`python/embedcluster`). Conventions:
//!
//! * Arrays are 2-D, C-contiguous, float32 or float64, and are used in place (no copy);
//!   results keep the input dtype. The Python layer makes the one documented copy for
//!   other layouts.
//! * Every array Python hands over is checked before the core uses it (a wrong length
//!   raises `EmbedclusterError`, a `ValueError`, naming the attribute); fitted models are
//!   rebuilt through the core's validated constructors.
//! * Computation runs on a rayon pool owned by this process (re-created after `fork`), with
//!   the GIL released; the calling thread polls for signals, so Ctrl-C stops a k-means fit
//!   between iterations with `KeyboardInterrupt`. A panic becomes `RuntimeError`.

// #[pyfunction] signatures mirror Python keyword arguments.
#![allow(clippy::too_many_arguments, clippy::type_complexity)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod arrays;
mod arrow;
mod cli;
mod cluster;
mod decomposition;
mod errors;
mod memory;
mod metrics;
mod neighbors;
mod pipeline;
mod preprocessing;
mod report;
mod runtime;
mod summary;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    runtime::settings_from_env();
    m.add(
        "EmbedclusterError",
        m.py().get_type::<errors::EmbedclusterError>(),
    )?;
    m.add(
        "MemoryLimitError",
        m.py().get_type::<errors::MemoryLimitError>(),
    )?;
    m.add_function(wrap_pyfunction!(cluster::kmeans_fit, m)?)?;
    m.add_function(wrap_pyfunction!(cluster::minibatch_fit, m)?)?;
    m.add_function(wrap_pyfunction!(cluster::minibatch_step, m)?)?;
    m.add_function(wrap_pyfunction!(cluster::kmeans_predict, m)?)?;
    m.add_function(wrap_pyfunction!(cluster::lloyd_partial, m)?)?;
    m.add_function(wrap_pyfunction!(cluster::lloyd_farthest, m)?)?;
    m.add_function(wrap_pyfunction!(cluster::lloyd_merge_farthest, m)?)?;
    m.add_function(wrap_pyfunction!(cluster::lloyd_drive, m)?)?;
    m.add_function(wrap_pyfunction!(cluster::lloyd_tol, m)?)?;
    m.add_function(wrap_pyfunction!(cluster::kmeans_parallel_block, m)?)?;
    m.add_function(wrap_pyfunction!(cluster::kmeans_parallel_drive, m)?)?;
    m.add_function(wrap_pyfunction!(cluster::restart_seed, m)?)?;
    m.add_function(wrap_pyfunction!(cluster::kmeans_init, m)?)?;
    m.add_function(wrap_pyfunction!(decomposition::cov_partial, m)?)?;
    m.add_function(wrap_pyfunction!(decomposition::cov_merge, m)?)?;
    m.add_function(wrap_pyfunction!(decomposition::cov_finish, m)?)?;
    m.add_function(wrap_pyfunction!(decomposition::pca_randomized, m)?)?;
    m.add_function(wrap_pyfunction!(decomposition::pca_transform, m)?)?;
    m.add_function(wrap_pyfunction!(preprocessing::moments_partial, m)?)?;
    m.add_function(wrap_pyfunction!(preprocessing::moments_merge, m)?)?;
    m.add_function(wrap_pyfunction!(preprocessing::normalize_rows, m)?)?;
    m.add_function(wrap_pyfunction!(pipeline::run_pipeline, m)?)?;
    m.add_function(wrap_pyfunction!(report::render_run_html, m)?)?;
    m.add_function(wrap_pyfunction!(report::render_stages_html, m)?)?;
    m.add_class::<summary::SummaryBuilder>()?;
    m.add_function(wrap_pyfunction!(pipeline::save_model, m)?)?;
    m.add_function(wrap_pyfunction!(pipeline::load_model, m)?)?;
    m.add_function(wrap_pyfunction!(pipeline::model_predict, m)?)?;
    m.add_function(wrap_pyfunction!(pipeline::pipeline_apply, m)?)?;
    m.add_function(wrap_pyfunction!(neighbors::knn_search, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::external_scores, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::internal_score, m)?)?;
    m.add_function(wrap_pyfunction!(memory::peak_rss_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(memory::reset_peak_rss, m)?)?;
    m.add_function(wrap_pyfunction!(memory::stage_peaks, m)?)?;
    m.add_function(wrap_pyfunction!(memory::set_stage_peaks, m)?)?;
    m.add_function(wrap_pyfunction!(memory::cpu_seconds, m)?)?;
    m.add_function(wrap_pyfunction!(cli::cli_main, m)?)?;
    m.add_class::<arrow::ArrowVectorReader>()?;
    m.add_class::<memory::RssSampler>()?;
    m.add_class::<memory::StageRecorder>()?;
    Ok(())
}
