//! Where the bindings compute: a rayon pool owned by this process (re-created after
//! `fork`), with the GIL released, and a cancel token per call that the calling thread sets
//! on Ctrl-C. No global state is shared between calls, so threads calling in parallel
//! cancel only their own work.

use crate::errors::to_py;
use embedcluster::runtime::Cancel;
use embedcluster::Error;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// This process's pool: rebuilt when the thread count changes or after a fork (a forked
/// child inherits the pool's memory but not its threads, and would wait forever).
pub fn pool(n_threads: Option<usize>) -> PyResult<Arc<rayon::ThreadPool>> {
    static POOL: Mutex<Option<(u32, usize, Arc<rayon::ThreadPool>)>> = Mutex::new(None);
    let n = n_threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1);
    let pid = std::process::id();
    let mut guard = POOL.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((p, k, pool)) = guard.as_ref() {
        if *p == pid && *k == n {
            return Ok(pool.clone());
        }
    }
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start threads: {e}")))?,
    );
    *guard = Some((pid, n, pool.clone()));
    Ok(pool)
}

/// Runs `f` on the pool without the GIL; the calling thread checks for signals every 50 ms
/// and cancels `f` (its token) on Ctrl-C. A panic inside becomes `RuntimeError`.
pub fn compute<R: Send>(
    py: Python<'_>,
    n_threads: Option<usize>,
    f: impl FnOnce(Cancel<'_>) -> Result<R, Error> + Send,
) -> PyResult<R> {
    let pool = pool(n_threads)?;
    let flag = AtomicBool::new(false);
    let (result, signal) = py.detach(|| {
        std::thread::scope(|s| {
            let (tx, rx) = mpsc::channel();
            let flag = &flag;
            let pool = &pool;
            s.spawn(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    pool.install(|| f(Cancel::new(flag)))
                }));
                let _ = tx.send(r);
            });
            let mut signal: Option<PyErr> = None;
            loop {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(r) => return (r, signal),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if signal.is_none() {
                            if let Err(e) = Python::attach(|py| py.check_signals()) {
                                signal = Some(e);
                                flag.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        return (
                            Err(Box::new("worker vanished") as Box<dyn std::any::Any + Send>),
                            signal,
                        )
                    }
                }
            }
        })
    });
    if let Some(e) = signal {
        return Err(e);
    }
    match result {
        Ok(r) => r.map_err(to_py),
        Err(_) => Err(PyRuntimeError::new_err(
            "internal error in embedcluster (a bug: please report it with a small example)",
        )),
    }
}

/// The process-wide choices the core leaves to its front ends, read once from the
/// environment at import: SIMD kernels (`EMBEDCLUSTER_NO_FUSED`, `EMBEDCLUSTER_NO_AVX512`,
/// `EMBEDCLUSTER_NO_SMALL_D`) and how stage peaks are measured (`EMBEDCLUSTER_STAGE_PEAKS=reset` opts in to resets).
pub fn settings_from_env() {
    embedcluster::runtime::apply_settings(|name| std::env::var_os(name));
    // object-storage settings, read when a store is first built
    embedcluster::io::set_storage_settings(
        || embedcluster::io::storage_variables(std::env::vars()),
    );
}

/// A progress sink that calls a Python callable: `callback("begin", stage, total)` (total
/// rows or None), `callback("advance", rows)`, `callback("end")`. Called from the worker
/// thread, taking the GIL for the call; an exception in the callback is printed and
/// otherwise ignored (progress never stops a fit).
pub struct PyProgress {
    pub callback: Py<PyAny>,
}

impl PyProgress {
    fn call(
        &self,
        args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyTuple>>,
    ) {
        Python::attach(|py| {
            let r = args(py).and_then(|a| self.callback.call1(py, a));
            if let Err(e) = r {
                e.print(py);
            }
        });
    }
}

impl embedcluster::runtime::Progress for PyProgress {
    fn begin(&self, stage: &str, total: Option<u64>) {
        self.call(|py| ("begin", stage, total).into_pyobject(py));
    }
    fn advance(&self, rows: u64) {
        self.call(|py| ("advance", rows).into_pyobject(py));
    }
    fn end(&self) {
        self.call(|py| ("end",).into_pyobject(py));
    }
}
