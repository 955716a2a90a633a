//! `embedcluster._core`: the PyO3 bindings of the embedcluster core.
//!
//! Stateless functions over NumPy arrays; the scikit-learn style estimators live in the
//! Python package (`python/embedcluster`). Conventions:
//!
//! * Arrays are 2-D, C-contiguous, float32 or float64, and are used in place (no copy);
//!   results keep the input dtype. The Python layer makes the one documented copy for
//!   other layouts.
//! * Computation runs on a rayon pool owned by this process (re-created after `fork`), with
//!   the GIL released; the calling thread polls for signals, so Ctrl-C stops a k-means fit
//!   between iterations with `KeyboardInterrupt`.
//! * Errors go through [`to_py`], the one mapping from core errors to Python exceptions;
//!   a panic becomes `RuntimeError`, never `PanicException`.

// #[pyfunction] signatures mirror Python keyword arguments.
#![allow(clippy::too_many_arguments, clippy::type_complexity)]

use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow_array::{Array, RecordBatchReader};
use embedcluster::cluster::{self, Init, KMeansParams, Metric};
use embedcluster::decomposition::{randomized_pca, CovarianceState, Pca, RandomizedOptions};
use embedcluster::io::VectorColumn;
use embedcluster::pipeline::{self, NoProgress, PcaFit, Reduce, RunConfig};
use embedcluster::predict::{Model, Rejection};
use embedcluster::preprocessing::Moments;
use embedcluster::{Error, Real};
use numpy::{
    Element, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::create_exception;
use pyo3::exceptions::{
    PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyPermissionError, PyRuntimeError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods, PyDict};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

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

/// The one mapping from core errors to Python exceptions.
fn to_py(e: Error) -> PyErr {
    match &e {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(e.to_string())
        }
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            PyPermissionError::new_err(e.to_string())
        }
        Error::Io { .. } => PyOSError::new_err(e.to_string()),
        Error::Interrupted => PyKeyboardInterrupt::new_err("interrupted"),
        Error::MemoryLimit(_) => MemoryLimitError::new_err(e.to_string()),
        _ => EmbedclusterError::new_err(e.to_string()),
    }
}

/// This process's pool: rebuilt when the thread count changes or after a fork (a forked
/// child inherits the pool's memory but not its threads, and would wait forever).
fn pool(n_threads: Option<usize>) -> PyResult<Arc<rayon::ThreadPool>> {
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
/// and sets the cancel flag on Ctrl-C.
fn compute<R: Send>(
    py: Python<'_>,
    n_threads: Option<usize>,
    f: impl FnOnce(&AtomicBool) -> Result<R, Error> + Send,
) -> PyResult<R> {
    let pool = pool(n_threads)?;
    let cancel = AtomicBool::new(false);
    let (result, signal) = py.detach(|| {
        std::thread::scope(|s| {
            let (tx, rx) = mpsc::channel();
            let cancel = &cancel;
            let pool = &pool;
            s.spawn(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    pool.install(|| f(cancel))
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
                                cancel.store(true, Ordering::Relaxed);
                                embedcluster::io::request_cancel();
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
    if signal.is_some() {
        embedcluster::io::reset_cancel();
    }
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

/// A 2-D float array borrowed from NumPy.
enum Arr<'py> {
    F32(PyReadonlyArray2<'py, f32>),
    F64(PyReadonlyArray2<'py, f64>),
}

fn arr<'py>(x: &Bound<'py, PyAny>, name: &str) -> PyResult<Arr<'py>> {
    let a = if let Ok(a) = x.extract::<PyReadonlyArray2<'py, f32>>() {
        Arr::F32(a)
    } else if let Ok(a) = x.extract::<PyReadonlyArray2<'py, f64>>() {
        Arr::F64(a)
    } else {
        return Err(EmbedclusterError::new_err(format!(
            "{name} must be a 2-D numpy array of float32 or float64"
        )));
    };
    let contiguous = match &a {
        Arr::F32(a) => a.is_c_contiguous(),
        Arr::F64(a) => a.is_c_contiguous(),
    };
    if !contiguous {
        return Err(EmbedclusterError::new_err(format!(
            "{name} must be C-contiguous"
        )));
    }
    Ok(a)
}

fn slice<'a, T: Element>(a: &'a PyReadonlyArray2<'_, T>) -> (&'a [T], usize, usize) {
    let shape = a.shape();
    (
        a.as_slice().expect("checked contiguous"),
        shape[0],
        shape[1],
    )
}

fn vec1<'py, T: Element>(py: Python<'py>, v: Vec<T>) -> Bound<'py, PyArray1<T>> {
    PyArray1::from_vec(py, v)
}

fn vec2<'py, T: Element>(
    py: Python<'py>,
    v: Vec<T>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    PyArray1::from_vec(py, v).reshape([rows, cols])
}

fn metric(s: &str) -> PyResult<Metric> {
    s.parse::<Metric>().map_err(to_py)
}

/// k-means / spherical k-means on a C-contiguous float32/float64 array.
///
/// Returns a dict: `cluster_centers` (k, d) same dtype, `labels` int32 (n,), `scores`
/// float32 (n,), `inertia`, `n_iter`, `objective_history`, `converged`, `counts`.
#[pyfunction]
#[pyo3(signature = (x, n_clusters, metric_name, init=None, n_init=1, max_iter=300, tol=1e-4, seed=0, n_threads=None))]
fn kmeans_fit<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    n_clusters: usize,
    metric_name: &str,
    init: Option<PyReadonlyArray2<'py, f64>>,
    n_init: usize,
    max_iter: usize,
    tol: f64,
    seed: u64,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let params = KMeansParams {
        n_clusters,
        metric: metric(metric_name)?,
        init: match &init {
            Some(c) => Init::Centroids(c.as_array().iter().copied().collect()),
            None => Init::KMeansPlusPlus,
        },
        n_init,
        max_iter,
        tol,
        seed,
    };
    match arr(x, "X")? {
        Arr::F32(a) => kmeans_out(py, &a, &params, n_threads),
        Arr::F64(a) => kmeans_out(py, &a, &params, n_threads),
    }
}

fn kmeans_out<'py, T: Real + Element>(
    py: Python<'py>,
    a: &PyReadonlyArray2<'py, T>,
    params: &KMeansParams,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let (x, _, d) = slice(a);
    let m = compute(py, n_threads, |cancel| {
        cluster::fit_cancellable(params, x, d, cancel)
    })?;
    let out = PyDict::new(py);
    out.set_item("warning", m.distinct_clusters_warning())?;
    out.set_item(
        "cluster_centers",
        vec2(py, m.cluster_centers, m.n_clusters, d)?,
    )?;
    out.set_item("labels", vec1(py, m.labels))?;
    out.set_item("scores", vec1(py, m.scores))?;
    out.set_item("inertia", m.inertia)?;
    out.set_item("n_iter", m.n_iter)?;
    out.set_item("objective_history", m.objective_history)?;
    out.set_item("converged", m.converged)?;
    out.set_item("counts", m.counts)?;
    Ok(out)
}

/// Nearest centroid of each row: `(labels int32, scores float32)`.
#[pyfunction]
#[pyo3(signature = (x, centers, metric_name, n_threads=None))]
fn kmeans_predict<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    centers: &Bound<'py, PyAny>,
    metric_name: &str,
    n_threads: Option<usize>,
) -> PyResult<(Bound<'py, PyArray1<i32>>, Bound<'py, PyArray1<f32>>)> {
    let metric = metric(metric_name)?;
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        a: &PyReadonlyArray2<'py, T>,
        c: &PyReadonlyArray2<'py, T>,
        metric: Metric,
        n_threads: Option<usize>,
    ) -> PyResult<(Bound<'py, PyArray1<i32>>, Bound<'py, PyArray1<f32>>)> {
        let (x, _, d) = slice(a);
        let (centers, k, dc) = slice(c);
        if d != dc {
            return Err(EmbedclusterError::new_err(format!(
                "X has {d} features, but the model expects {dc}"
            )));
        }
        let model = cluster::KMeans::from_centers(centers.to_vec(), k, metric);
        let (labels, scores) = compute(py, n_threads, |_| Ok(model.predict(x)))?;
        Ok((vec1(py, labels), vec1(py, scores)))
    }
    match (arr(x, "X")?, arr(centers, "cluster_centers")?) {
        (Arr::F32(a), Arr::F32(c)) => go(py, &a, &c, metric, n_threads),
        (Arr::F64(a), Arr::F64(c)) => go(py, &a, &c, metric, n_threads),
        _ => Err(EmbedclusterError::new_err(
            "X and cluster_centers must have the same dtype",
        )),
    }
}

/// One Lloyd step's state of a block against fixed centroids (distributed k-means):
/// `(sums float64 (k, d), counts uint64 (k,), objective)`. X and centers share a dtype;
/// rows must be unit vectors for the cosine metric.
#[pyfunction]
#[pyo3(signature = (x, centers, metric_name, n_threads=None))]
#[allow(clippy::type_complexity)]
fn lloyd_partial<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    centers: &Bound<'py, PyAny>,
    metric_name: &str,
    n_threads: Option<usize>,
) -> PyResult<(Bound<'py, PyArray2<f64>>, Bound<'py, PyArray1<u64>>, f64)> {
    let metric = metric(metric_name)?;
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        a: &PyReadonlyArray2<'py, T>,
        c: &PyReadonlyArray2<'py, T>,
        metric: Metric,
        n_threads: Option<usize>,
    ) -> PyResult<cluster::LloydState> {
        let (x, _, d) = slice(a);
        let (centers, k, dc) = slice(c);
        if d != dc {
            return Err(EmbedclusterError::new_err(format!(
                "X has {d} features, but the centroids have {dc}"
            )));
        }
        compute(py, n_threads, |_| {
            cluster::LloydState::partial(x, d, centers, k, metric)
        })
    }
    let st = match (arr(x, "X")?, arr(centers, "cluster_centers")?) {
        (Arr::F32(a), Arr::F32(c)) => go(py, &a, &c, metric, n_threads)?,
        (Arr::F64(a), Arr::F64(c)) => go(py, &a, &c, metric, n_threads)?,
        _ => {
            return Err(EmbedclusterError::new_err(
                "X and cluster_centers must have the same dtype",
            ))
        }
    };
    Ok((
        vec2(py, st.sums, st.n_clusters, st.n_features)?,
        vec1(py, st.counts),
        st.objective,
    ))
}

/// The next centroids from a merged Lloyd step (`LloydState::centers`): the mean of each
/// cluster (euclidean) or its normalized sum (cosine), in float64 then rounded to the dtype
/// of `prev` (k, d); an empty cluster keeps its row of `prev`.
#[pyfunction]
fn lloyd_centers<'py>(
    py: Python<'py>,
    sums: PyReadonlyArray2<'py, f64>,
    counts: PyReadonlyArray1<'py, u64>,
    prev: &Bound<'py, PyAny>,
    metric_name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let metric = metric(metric_name)?;
    let (k, d) = (sums.shape()[0], sums.shape()[1]);
    if counts.len() != k {
        return Err(EmbedclusterError::new_err(format!(
            "{} counts for {k} clusters",
            counts.len()
        )));
    }
    let st = cluster::LloydState {
        n_clusters: k,
        n_features: d,
        sums: sums.as_array().iter().copied().collect(),
        counts: counts.as_array().iter().copied().collect(),
        objective: 0.0,
    };
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        p: &PyReadonlyArray2<'py, T>,
        st: &cluster::LloydState,
        metric: Metric,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (prev, k, d) = slice(p);
        if (k, d) != (st.n_clusters, st.n_features) {
            return Err(EmbedclusterError::new_err(format!(
                "previous centroids are {k} x {d}, the sums {} x {}",
                st.n_clusters, st.n_features
            )));
        }
        Ok(vec2(py, st.centers(prev, metric), k, d)?.into_any())
    }
    match arr(prev, "cluster_centers")? {
        Arr::F32(p) => go(py, &p, &st, metric),
        Arr::F64(p) => go(py, &p, &st, metric),
    }
}

/// Covariance state `(n, mean, comoment)` of a block (streaming PCA's `partial`).
#[pyfunction]
#[pyo3(signature = (x, n_threads=None))]
fn cov_partial<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    n_threads: Option<usize>,
) -> PyResult<(u64, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>)> {
    let st = match arr(x, "X")? {
        Arr::F32(a) => {
            let (s, _, d) = slice(&a);
            compute(py, n_threads, |_| Ok(CovarianceState::partial(s, d)))?
        }
        Arr::F64(a) => {
            let (s, _, d) = slice(&a);
            compute(py, n_threads, |_| Ok(CovarianceState::partial(s, d)))?
        }
    };
    state_out(py, st)
}

fn state_out<'py>(
    py: Python<'py>,
    st: CovarianceState,
) -> PyResult<(u64, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>)> {
    let d = st.n_features;
    Ok((st.n, vec1(py, st.mean), vec2(py, st.comoment, d, d)?))
}

fn state_in(
    n: u64,
    mean: PyReadonlyArray1<'_, f64>,
    comoment: PyReadonlyArray2<'_, f64>,
) -> PyResult<CovarianceState> {
    let mean: Vec<f64> = mean.as_array().iter().copied().collect();
    let d = mean.len();
    let comoment: Vec<f64> = comoment.as_array().iter().copied().collect();
    if comoment.len() != d * d {
        return Err(EmbedclusterError::new_err("inconsistent covariance state"));
    }
    Ok(CovarianceState {
        n_features: d,
        n,
        mean,
        comoment,
    })
}

/// Merges two covariance states (Chan, Golub and LeVeque).
#[pyfunction]
fn cov_merge<'py>(
    py: Python<'py>,
    a: (u64, PyReadonlyArray1<'py, f64>, PyReadonlyArray2<'py, f64>),
    b: (u64, PyReadonlyArray1<'py, f64>, PyReadonlyArray2<'py, f64>),
) -> PyResult<(u64, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>)> {
    let mut sa = state_in(a.0, a.1, a.2)?;
    let sb = state_in(b.0, b.1, b.2)?;
    if sa.n_features != sb.n_features {
        return Err(EmbedclusterError::new_err(format!(
            "X has {} features, but the state has {}",
            sb.n_features, sa.n_features
        )));
    }
    sa.merge(&sb);
    state_out(py, sa)
}

fn pca_out<'py>(py: Python<'py>, p: Pca) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item(
        "components",
        vec2(py, p.components, p.n_components, p.n_features)?,
    )?;
    out.set_item("mean", vec1(py, p.mean))?;
    out.set_item("explained_variance", vec1(py, p.explained_variance))?;
    out.set_item(
        "explained_variance_ratio",
        vec1(py, p.explained_variance_ratio),
    )?;
    out.set_item("n_samples_seen", p.n_samples_seen)?;
    Ok(out)
}

/// PCA from a covariance state: dict of `components` (D, d), `mean`, `explained_variance`,
/// `explained_variance_ratio`, `n_samples_seen`.
#[pyfunction]
fn cov_finish<'py>(
    py: Python<'py>,
    n: u64,
    mean: PyReadonlyArray1<'py, f64>,
    comoment: PyReadonlyArray2<'py, f64>,
    n_components: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let st = state_in(n, mean, comoment)?;
    let p = compute(py, None, |_| st.finish(n_components))?;
    pca_out(py, p)
}

/// Per-feature moments `(n, mean, m2)` of a block.
#[pyfunction]
fn moments_partial<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
) -> PyResult<(u64, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>)> {
    let m = match arr(x, "X")? {
        Arr::F32(a) => {
            let (s, _, d) = slice(&a);
            py.detach(|| Moments::partial(s, d))
        }
        Arr::F64(a) => {
            let (s, _, d) = slice(&a);
            py.detach(|| Moments::partial(s, d))
        }
    };
    Ok((m.n, vec1(py, m.mean), vec1(py, m.m2)))
}

fn moments_in(m: (u64, PyReadonlyArray1<'_, f64>, PyReadonlyArray1<'_, f64>)) -> Moments {
    Moments {
        n: m.0,
        mean: m.1.as_array().iter().copied().collect(),
        m2: m.2.as_array().iter().copied().collect(),
    }
}

/// Merges two moment states (Chan, Golub and LeVeque).
#[pyfunction]
fn moments_merge<'py>(
    py: Python<'py>,
    a: (u64, PyReadonlyArray1<'py, f64>, PyReadonlyArray1<'py, f64>),
    b: (u64, PyReadonlyArray1<'py, f64>, PyReadonlyArray1<'py, f64>),
) -> PyResult<(u64, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>)> {
    let mut ma = moments_in(a);
    let mb = moments_in(b);
    if ma.mean.len() != mb.mean.len() {
        return Err(EmbedclusterError::new_err(
            "moment states have different n_features",
        ));
    }
    ma.merge(&mb);
    Ok((ma.n, vec1(py, ma.mean), vec1(py, ma.m2)))
}

/// Randomized PCA (Halko et al.) of `sample`, centered with the full data's moments.
#[pyfunction]
#[pyo3(signature = (sample, moments, n_components, n_oversamples=10, n_iter=None, seed=0, n_threads=None))]
fn pca_randomized<'py>(
    py: Python<'py>,
    sample: &Bound<'py, PyAny>,
    moments: (u64, PyReadonlyArray1<'py, f64>, PyReadonlyArray1<'py, f64>),
    n_components: usize,
    n_oversamples: usize,
    n_iter: Option<usize>,
    seed: u64,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let m = moments_in(moments);
    let opts = RandomizedOptions {
        n_oversamples,
        n_iter,
        seed,
    };
    let p = match arr(sample, "X")? {
        Arr::F32(a) => {
            let (s, _, d) = slice(&a);
            compute(py, n_threads, |_| {
                randomized_pca(s, d, &m, n_components, &opts)
            })?
        }
        Arr::F64(a) => {
            let (s, _, d) = slice(&a);
            compute(py, n_threads, |_| {
                randomized_pca(s, d, &m, n_components, &opts)
            })?
        }
    };
    pca_out(py, p)
}

fn pca_from(mean: &PyReadonlyArray1<'_, f64>, components: &PyReadonlyArray2<'_, f64>) -> Pca {
    let shape = components.shape();
    Pca {
        n_features: shape[1],
        n_components: shape[0],
        mean: mean.as_array().iter().copied().collect(),
        components: components.as_array().iter().copied().collect(),
        explained_variance: vec![],
        explained_variance_ratio: vec![],
        n_samples_seen: 0,
        fit_method: String::new(),
    }
}

/// `(X - mean) components^T` computed as `X W^T - mean W^T`; output keeps X's dtype.
#[pyfunction]
#[pyo3(signature = (x, mean, components, n_threads=None))]
fn pca_transform<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    mean: PyReadonlyArray1<'py, f64>,
    components: PyReadonlyArray2<'py, f64>,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let p = pca_from(&mean, &components);
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        a: &PyReadonlyArray2<'py, T>,
        p: &Pca,
        n_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (x, n, d) = slice(a);
        if d != p.n_features {
            return Err(EmbedclusterError::new_err(format!(
                "X has {d} features, but PCA is expecting {} features as input",
                p.n_features
            )));
        }
        let k = p.n_components;
        let t = p.transformer::<T>();
        let out = compute(py, n_threads, |_| {
            let mut out = vec![T::ZERO; n * k];
            t.transform(x, &mut out);
            Ok(out)
        })?;
        Ok(vec2(py, out, n, k)?.into_any())
    }
    match arr(x, "X")? {
        Arr::F32(a) => go(py, &a, &p, n_threads),
        Arr::F64(a) => go(py, &a, &p, n_threads),
    }
}

/// Streams the float-vector column of any object with `__arrow_c_stream__` (pyarrow
/// Table/RecordBatchReader, polars DataFrame, DuckDB results, ...) as NumPy blocks, one per
/// Arrow batch, without Python objects per value. `column=None` picks the only list column
/// of floats, or the one named `embedding`.
#[pyclass(unsendable, module = "embedcluster._core")]
struct ArrowVectorReader {
    reader: RecordBatchStreamReader,
    index: usize,
    column: VectorColumn,
    rows: u64,
}

#[pymethods]
impl ArrowVectorReader {
    #[new]
    #[pyo3(signature = (obj, column=None))]
    fn new(obj: &Bound<'_, PyAny>, column: Option<String>) -> PyResult<Self> {
        if !obj.hasattr("__arrow_c_stream__")? {
            return Err(EmbedclusterError::new_err(
                "object has no __arrow_c_stream__ (not an Arrow stream)",
            ));
        }
        let capsule = obj.call_method0("__arrow_c_stream__")?;
        let capsule = capsule.cast::<PyCapsule>().map_err(|_| {
            EmbedclusterError::new_err("__arrow_c_stream__ did not return a capsule")
        })?;
        let ptr = capsule.pointer_checked(Some(c"arrow_array_stream"))?;
        // SAFETY: the capsule holds an FFI_ArrowArrayStream (checked by name); from_raw moves
        // the stream out and leaves a released one for the capsule's destructor.
        let reader =
            unsafe { RecordBatchStreamReader::from_raw(ptr.as_ptr() as *mut FFI_ArrowArrayStream) }
                .map_err(|e| EmbedclusterError::new_err(format!("<arrow stream>: {e}")))?;
        let schema = reader.schema();
        let src = Path::new("<arrow stream>");
        let index = match &column {
            Some(c) => schema.index_of(c).map_err(|_| {
                to_py(Error::Column {
                    path: src.into(),
                    column: c.clone(),
                    message: "no such column".into(),
                })
            })?,
            None => {
                let lists: Vec<usize> = (0..schema.fields().len())
                    .filter(|&i| VectorColumn::new(schema.field(i).data_type(), src, "").is_ok())
                    .collect();
                match (lists.as_slice(), schema.index_of("embedding")) {
                    (_, Ok(i)) => i,
                    ([i], _) => *i,
                    _ => {
                        return Err(EmbedclusterError::new_err(format!(
                            "<arrow stream>: cannot tell which column holds the vectors ({} list columns of floats); pass column=",
                            lists.len()
                        )))
                    }
                }
            }
        };
        let name = schema.field(index).name().clone();
        let column =
            VectorColumn::new(schema.field(index).data_type(), src, &name).map_err(to_py)?;
        Ok(ArrowVectorReader {
            reader,
            index,
            column,
            rows: 0,
        })
    }

    /// Dimension, once known (`None` for a list column before the first batch).
    #[getter]
    fn n_features(&self) -> Option<usize> {
        self.column.n_features
    }

    /// `"float32"` or `"float64"`.
    #[getter]
    fn dtype(&self) -> &'static str {
        self.column.dtype.name()
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        loop {
            let batch = match self.reader.next() {
                None => return Ok(None),
                Some(b) => {
                    b.map_err(|e| EmbedclusterError::new_err(format!("<arrow stream>: {e}")))?
                }
            };
            if batch.num_rows() == 0 {
                continue;
            }
            let array = batch.column(self.index).clone();
            let d = self.column.learn_dimension(&array).map_err(to_py)?;
            let n = array.len();
            let first = self.rows;
            self.rows += n as u64;
            return match self.column.dtype {
                embedcluster::DType::Float32 => {
                    let mut buf = Vec::<f32>::new();
                    self.column
                        .append_rows(&array, 0, n, first, &mut buf)
                        .map_err(to_py)?;
                    Ok(Some(vec2(py, buf, n, d)?.into_any()))
                }
                embedcluster::DType::Float64 => {
                    let mut buf = Vec::<f64>::new();
                    self.column
                        .append_rows(&array, 0, n, first, &mut buf)
                        .map_err(to_py)?;
                    Ok(Some(vec2(py, buf, n, d)?.into_any()))
                }
            };
        }
    }
}

/// The main job on a file (`embedcluster run`). Returns a dict with `report` (JSON text),
/// `labels` int32, `scores` float32, `cluster_centers` float64 (k, D), and `pca` (dict or None).
#[pyfunction]
#[pyo3(signature = (path, n_clusters, column="embedding", reduce="pca:128", pca_fit="exact", metric_name="cosine", n_init=1, max_iter=300, tol=1e-4, seed=0, batch_rows=None, memory_limit=None, output=None, model=None, labels_column=None, on_invalid="error", n_threads=None))]
fn run_pipeline<'py>(
    py: Python<'py>,
    path: PathBuf,
    n_clusters: usize,
    column: &str,
    reduce: &str,
    pca_fit: &str,
    metric_name: &str,
    n_init: usize,
    max_iter: usize,
    tol: f64,
    seed: u64,
    batch_rows: Option<usize>,
    memory_limit: Option<&Bound<'py, PyAny>>,
    output: Option<PathBuf>,
    model: Option<PathBuf>,
    labels_column: Option<String>,
    on_invalid: &str,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let cfg = RunConfig {
        input: path,
        column: column.to_string(),
        n_clusters,
        reduce: reduce.parse::<Reduce>().map_err(to_py)?,
        pca_fit: pca_fit.parse::<PcaFit>().map_err(to_py)?,
        metric: metric(metric_name)?,
        n_init,
        max_iter,
        tol,
        seed,
        batch_rows: match batch_rows {
            Some(0) => return Err(EmbedclusterError::new_err("batch_rows must be at least 1")),
            Some(b) => b,
            None => 0,
        },
        memory_limit: match memory_limit {
            None => None,
            Some(v) => Some(match v.extract::<u64>() {
                Ok(b) if b > 0 => b,
                _ => match v.extract::<String>() {
                    Ok(t) => embedcluster::plan::parse_bytes(&t).map_err(to_py)?,
                    Err(_) => return Err(EmbedclusterError::new_err(
                        "memory_limit must be a positive number of bytes or a size such as '1GiB'",
                    )),
                },
            }),
        },
        output,
        model,
        labels_column,
        on_invalid: on_invalid.parse().map_err(to_py)?,
    };
    let o = compute(py, n_threads, |cancel| {
        pipeline::run_full(&cfg, &NoProgress, cancel)
    })?;
    let out = PyDict::new(py);
    let k = o.report.n_clusters;
    let dim = o.report.n_components;
    out.set_item(
        "report",
        serde_json::to_string(&o.report).expect("report serializes"),
    )?;
    out.set_item("labels", vec1(py, o.labels))?;
    out.set_item("scores", vec1(py, o.scores))?;
    out.set_item("cluster_centers", vec2(py, o.cluster_centers, k, dim)?)?;
    match o.pca {
        Some(p) => out.set_item("pca", pca_out(py, p)?)?,
        None => out.set_item("pca", py.None())?,
    }
    Ok(out)
}

/// Writes a model directory (the CLI's `--model` format).
#[pyfunction]
#[pyo3(signature = (path, cluster_centers, manifest_json, pca_mean=None, pca_components=None))]
fn save_model(
    py: Python<'_>,
    path: PathBuf,
    cluster_centers: &Bound<'_, PyAny>,
    manifest_json: &str,
    pca_mean: Option<PyReadonlyArray1<'_, f64>>,
    pca_components: Option<PyReadonlyArray2<'_, f64>>,
) -> PyResult<()> {
    let manifest: serde_json::Value = serde_json::from_str(manifest_json)
        .map_err(|e| EmbedclusterError::new_err(format!("manifest: {e}")))?;
    let pca = match (&pca_mean, &pca_components) {
        (Some(m), Some(c)) => Some(pca_from(m, c)),
        (None, None) => None,
        _ => {
            return Err(EmbedclusterError::new_err(
                "pca_mean and pca_components go together",
            ))
        }
    };
    let r = match arr(cluster_centers, "cluster_centers")? {
        Arr::F32(a) => {
            let (c, k, _) = slice(&a);
            py.detach(|| embedcluster::persist::save_model(&path, pca.as_ref(), c, k, manifest))
        }
        Arr::F64(a) => {
            let (c, k, _) = slice(&a);
            py.detach(|| embedcluster::persist::save_model(&path, pca.as_ref(), c, k, manifest))
        }
    };
    r.map_err(to_py)
}

/// Reads a model directory: dict with `manifest` (JSON text), `cluster_centers` float64
/// (k, D), and `pca_mean` / `pca_components` (or None).
#[pyfunction]
fn load_model<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let m = py
        .detach(|| embedcluster::persist::load_model(&path))
        .map_err(to_py)?;
    let out = PyDict::new(py);
    out.set_item("manifest", m.manifest.to_string())?;
    let (c, k, d) = m.cluster_centers;
    out.set_item("cluster_centers", vec2(py, c, k, d)?)?;
    match (m.pca_mean, m.pca_components) {
        (Some(mean), Some((comp, nc, nf))) => {
            out.set_item("pca_mean", vec1(py, mean))?;
            out.set_item("pca_components", vec2(py, comp, nc, nf)?)?;
        }
        _ => {
            out.set_item("pca_mean", py.None())?;
            out.set_item("pca_components", py.None())?;
        }
    }
    Ok(out)
}

/// Applies a saved model (directory) to rows of X, `batch_rows` at a time, exactly as
/// `embedcluster predict` does: `(labels int32 (-1 = rejected), scores float32,
/// confidence float32)`. X is not modified.
#[pyfunction]
#[pyo3(signature = (path, x, min_confidence=None, adaptive=None, batch_rows=16384, n_threads=None))]
fn model_predict<'py>(
    py: Python<'py>,
    path: PathBuf,
    x: &Bound<'py, PyAny>,
    min_confidence: Option<f32>,
    adaptive: Option<String>,
    batch_rows: usize,
    n_threads: Option<usize>,
) -> PyResult<(
    Bound<'py, PyArray1<i32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<f32>>,
)> {
    let rule = match (min_confidence, adaptive) {
        (Some(c), _) => Rejection::MinConfidence(c),
        (None, Some(q)) => q.parse::<Rejection>().map_err(to_py)?,
        (None, None) => Rejection::None,
    };
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        path: &Path,
        a: &PyReadonlyArray2<'py, T>,
        rule: Rejection,
        batch_rows: usize,
        n_threads: Option<usize>,
    ) -> PyResult<(Vec<i32>, Vec<f32>, Vec<f32>)> {
        let (x, _, d) = slice(a);
        compute(py, n_threads, |_| {
            let model = Model::<T>::load(path)?;
            if d != model.n_features {
                return Err(Error::Parameter(format!(
                    "X has {d} features, but the model expects {}",
                    model.n_features
                )));
            }
            let (mut l, mut s, mut c) = (Vec::new(), Vec::new(), Vec::new());
            let mut block = Vec::new();
            for (i, rows) in x.chunks(batch_rows.max(1) * d).enumerate() {
                block.clear();
                block.extend_from_slice(rows);
                let mut asg = model.assign_block(
                    &mut block,
                    (Path::new("<array>"), "X"),
                    (i * batch_rows) as u64,
                )?;
                model.reject(&mut asg, rule)?;
                l.extend(asg.labels);
                s.extend(asg.scores);
                c.extend(asg.confidence);
            }
            Ok((l, s, c))
        })
    }
    let (l, s, c) = match arr(x, "X")? {
        Arr::F32(a) => go(py, &path, &a, rule, batch_rows, n_threads)?,
        Arr::F64(a) => go(py, &path, &a, rule, batch_rows, n_threads)?,
    };
    Ok((vec1(py, l), vec1(py, s), vec1(py, c)))
}

/// Peak RSS of this process in bytes (`VmHWM`).
#[pyfunction]
fn peak_rss_bytes() -> u64 {
    embedcluster::memory::peak_rss_bytes()
}

/// Resets the peak-RSS high-water mark; False where not possible.
#[pyfunction]
fn reset_peak_rss() -> bool {
    embedcluster::memory::reset_peak_rss()
}

/// Exact top-k of `queries` against the concatenation of `bases` (a list of arrays of one
/// dtype, ids counted across them): `(distances (q, k) same dtype, ids int64 (q, k))`.
#[pyfunction]
#[pyo3(signature = (bases, queries, k, metric_name="l2", exclude_self=false, n_threads=None))]
fn knn_search<'py>(
    py: Python<'py>,
    bases: Vec<Bound<'py, PyAny>>,
    queries: &Bound<'py, PyAny>,
    k: usize,
    metric_name: &str,
    exclude_self: bool,
    n_threads: Option<usize>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyArray2<i64>>)> {
    let metric: embedcluster::neighbors::NeighborMetric = metric_name.parse().map_err(to_py)?;
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        bases: &[PyReadonlyArray2<'py, T>],
        q: &PyReadonlyArray2<'py, T>,
        k: usize,
        metric: embedcluster::neighbors::NeighborMetric,
        exclude_self: bool,
        n_threads: Option<usize>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyArray2<i64>>)> {
        let (qx, nq, d) = slice(q);
        let parts: Vec<(&[T], usize)> = bases
            .iter()
            .map(|b| {
                let (x, n, db) = slice(b);
                if db != d {
                    return Err(EmbedclusterError::new_err(format!(
                        "queries have {d} features but the index has {db}"
                    )));
                }
                Ok((x, n))
            })
            .collect::<PyResult<_>>()?;
        let top = compute(py, n_threads, |cancel| {
            let mut st = embedcluster::neighbors::KnnState::new(
                qx,
                d,
                k,
                metric,
                exclude_self.then_some(0),
            )?;
            let mut first = 0i64;
            for (x, n) in &parts {
                // in slices of 64 Ki rows so that Ctrl-C is honoured between them
                for (i, chunk) in x.chunks(65536 * d.max(1)).enumerate() {
                    if cancel.load(Ordering::Relaxed) {
                        return Err(Error::Interrupted);
                    }
                    st.push_base(chunk, first + (i * 65536) as i64)?;
                }
                first += *n as i64;
            }
            st.finish()
        })?;
        let dist = vec2(py, top.distances, nq, k)?.into_any();
        Ok((dist, vec2(py, top.ids, nq, k)?))
    }
    let q = arr(queries, "queries")?;
    let bs: Vec<Arr<'py>> = bases
        .iter()
        .map(|b| arr(b, "base"))
        .collect::<PyResult<_>>()?;
    match q {
        Arr::F32(q) => {
            let b: Vec<PyReadonlyArray2<'py, f32>> = bs
                .into_iter()
                .map(|b| match b {
                    Arr::F32(b) => Ok(b),
                    _ => Err(EmbedclusterError::new_err(
                        "queries and base must have the same dtype",
                    )),
                })
                .collect::<PyResult<_>>()?;
            go(py, &b, &q, k, metric, exclude_self, n_threads)
        }
        Arr::F64(q) => {
            let b: Vec<PyReadonlyArray2<'py, f64>> = bs
                .into_iter()
                .map(|b| match b {
                    Arr::F64(b) => Ok(b),
                    _ => Err(EmbedclusterError::new_err(
                        "queries and base must have the same dtype",
                    )),
                })
                .collect::<PyResult<_>>()?;
            go(py, &b, &q, k, metric, exclude_self, n_threads)
        }
    }
}

/// External clustering scores of two int64 labelings: a dict with `adjusted_rand_score`,
/// `mutual_info_score`, `normalized_mutual_info_score`, `adjusted_mutual_info_score`,
/// `homogeneity`, `completeness`, `v_measure` (only those named in `which`, or all).
#[pyfunction]
#[pyo3(signature = (labels_true, labels_pred, which=None))]
fn external_scores<'py>(
    py: Python<'py>,
    labels_true: PyReadonlyArray1<'py, i64>,
    labels_pred: PyReadonlyArray1<'py, i64>,
    which: Option<Vec<String>>,
) -> PyResult<Bound<'py, PyDict>> {
    use embedcluster::metrics as m;
    let a = labels_true.as_array().to_vec();
    let b = labels_pred.as_array().to_vec();
    let want = |name: &str| which.as_ref().is_none_or(|w| w.iter().any(|x| x == name));
    let out = PyDict::new(py);
    let r: Vec<(&str, f64)> = py
        .detach(|| -> Result<Vec<(&str, f64)>, Error> {
            let mut r = Vec::new();
            if want("adjusted_rand_score") {
                r.push(("adjusted_rand_score", m::adjusted_rand_score(&a, &b)?));
            }
            if want("mutual_info_score") {
                r.push(("mutual_info_score", m::mutual_info_score(&a, &b)?));
            }
            if want("normalized_mutual_info_score") {
                r.push((
                    "normalized_mutual_info_score",
                    m::normalized_mutual_info_score(&a, &b)?,
                ));
            }
            if want("adjusted_mutual_info_score") {
                r.push((
                    "adjusted_mutual_info_score",
                    m::adjusted_mutual_info_score(&a, &b)?,
                ));
            }
            if want("homogeneity") || want("completeness") || want("v_measure") {
                let (h, c, v) = m::homogeneity_completeness_v_measure(&a, &b)?;
                r.push(("homogeneity", h));
                r.push(("completeness", c));
                r.push(("v_measure", v));
            }
            Ok(r)
        })
        .map_err(to_py)?;
    for (k, v) in r {
        out.set_item(k, v)?;
    }
    Ok(out)
}

/// Internal scores of data `x` and int64 labels: `kind` is `silhouette_samples`
/// (returns a float64 array), `davies_bouldin` or `calinski_harabasz` (floats).
#[pyfunction]
#[pyo3(signature = (x, labels, kind, metric_name="euclidean", n_threads=None))]
fn internal_score<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    labels: PyReadonlyArray1<'py, i64>,
    kind: &str,
    metric_name: &str,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    use embedcluster::metrics as m;
    let metric: m::SilhouetteMetric = metric_name.parse().map_err(to_py)?;
    let labels = labels.as_slice()?;
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        a: &PyReadonlyArray2<'py, T>,
        labels: &[i64],
        kind: &str,
        metric: m::SilhouetteMetric,
        n_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (x, _, d) = slice(a);
        match kind {
            "silhouette_samples" => {
                let s = compute(py, n_threads, |_| {
                    m::silhouette_samples(x, d, labels, metric)
                })?;
                Ok(vec1(py, s).into_any())
            }
            "davies_bouldin" => {
                let v = compute(py, n_threads, |_| m::davies_bouldin_score(x, d, labels))?;
                Ok(v.into_pyobject(py)?.into_any())
            }
            "calinski_harabasz" => {
                let v = compute(py, n_threads, |_| m::calinski_harabasz_score(x, d, labels))?;
                Ok(v.into_pyobject(py)?.into_any())
            }
            _ => Err(EmbedclusterError::new_err(format!(
                "unknown score {kind:?}"
            ))),
        }
    }
    match arr(x, "X")? {
        Arr::F32(a) => go(py, &a, labels, kind, metric, n_threads),
        Arr::F64(a) => go(py, &a, labels, kind, metric, n_threads),
    }
}

/// CPU seconds used so far by this process (all threads).
#[pyfunction]
fn cpu_seconds() -> f64 {
    embedcluster::memory::cpu_seconds()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("EmbedclusterError", m.py().get_type::<EmbedclusterError>())?;
    m.add("MemoryLimitError", m.py().get_type::<MemoryLimitError>())?;
    m.add_function(wrap_pyfunction!(kmeans_fit, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_predict, m)?)?;
    m.add_function(wrap_pyfunction!(lloyd_partial, m)?)?;
    m.add_function(wrap_pyfunction!(lloyd_centers, m)?)?;
    m.add_function(wrap_pyfunction!(cov_partial, m)?)?;
    m.add_function(wrap_pyfunction!(cov_merge, m)?)?;
    m.add_function(wrap_pyfunction!(cov_finish, m)?)?;
    m.add_function(wrap_pyfunction!(moments_partial, m)?)?;
    m.add_function(wrap_pyfunction!(moments_merge, m)?)?;
    m.add_function(wrap_pyfunction!(pca_randomized, m)?)?;
    m.add_function(wrap_pyfunction!(pca_transform, m)?)?;
    m.add_function(wrap_pyfunction!(run_pipeline, m)?)?;
    m.add_function(wrap_pyfunction!(save_model, m)?)?;
    m.add_function(wrap_pyfunction!(load_model, m)?)?;
    m.add_function(wrap_pyfunction!(model_predict, m)?)?;
    m.add_function(wrap_pyfunction!(knn_search, m)?)?;
    m.add_function(wrap_pyfunction!(external_scores, m)?)?;
    m.add_function(wrap_pyfunction!(internal_score, m)?)?;
    m.add_function(wrap_pyfunction!(peak_rss_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(reset_peak_rss, m)?)?;
    m.add_function(wrap_pyfunction!(cpu_seconds, m)?)?;
    m.add_class::<ArrowVectorReader>()?;
    Ok(())
}
