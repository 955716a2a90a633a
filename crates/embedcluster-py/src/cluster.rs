//! `embedcluster.cluster`: k-means fits and assignment, the mergeable Lloyd state for
//! engines (Spark), and the core's Lloyd driver run over an engine's passes.

use crate::arrays::{arr, slice, vec1, vec2, Arr};
use crate::errors::{to_py, value_error};
use crate::runtime::compute;
use embedcluster::cluster::{self, Candidate, Init, KMeansParams, LloydData, LloydState, Metric};
use embedcluster::runtime::Cancel;
use embedcluster::{Error, Real};
use numpy::{Element, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

pub fn metric(s: &str) -> PyResult<Metric> {
    s.parse::<Metric>()
        .and_then(|m| m.check_in(&[Metric::Euclidean, Metric::Cosine]))
        .map_err(to_py)
}

/// k-means / spherical k-means on a C-contiguous float32/float64 array.
///
/// Returns a dict: `cluster_centers` (k, d) same dtype, `labels` int32 (n,), `scores`
/// float32 (n,), `inertia`, `n_iter`, `objective_history`, `converged`, `counts`.
#[pyfunction]
#[pyo3(signature = (x, n_clusters, metric_name, init=None, n_init=1, max_iter=300, tol=1e-4, seed=0, n_threads=None))]
pub fn kmeans_fit<'py>(
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
    let (x, _, d) = slice(a)?;
    let mut m = compute(py, n_threads, |cancel| {
        cluster::fit_cancellable(params, x, d, cancel)
    })?;
    let out = PyDict::new(py);
    out.set_item("warning", m.distinct_clusters_warning())?;
    let (labels, scores) = m.take_labels_and_scores();
    out.set_item(
        "cluster_centers",
        vec2(py, m.cluster_centers().to_vec(), m.n_clusters(), d)?,
    )?;
    out.set_item("labels", vec1(py, labels))?;
    out.set_item("scores", vec1(py, scores))?;
    out.set_item("inertia", m.inertia())?;
    out.set_item("n_iter", m.n_iter())?;
    out.set_item("objective_history", m.objective_history().to_vec())?;
    out.set_item("converged", m.converged())?;
    out.set_item("counts", m.counts().to_vec())?;
    Ok(out)
}

/// Nearest centroid of each row: `(labels int32, scores float32)`.
#[pyfunction]
#[pyo3(signature = (x, centers, metric_name, n_threads=None))]
pub fn kmeans_predict<'py>(
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
        let (x, _, d) = slice(a)?;
        let (centers, k, dc) = slice(c)?;
        if d != dc {
            return Err(value_error(format!(
                "X has {d} features, but the model expects {dc}"
            )));
        }
        let model = cluster::KMeans::from_centers(centers.to_vec(), k, metric).map_err(to_py)?;
        let (labels, scores) = compute(py, n_threads, |_| model.predict(x))?;
        Ok((vec1(py, labels), vec1(py, scores)))
    }
    match (arr(x, "X")?, arr(centers, "cluster_centers_")?) {
        (Arr::F32(a), Arr::F32(c)) => go(py, &a, &c, metric, n_threads),
        (Arr::F64(a), Arr::F64(c)) => go(py, &a, &c, metric, n_threads),
        _ => Err(value_error(
            "X and cluster_centers_ must have the same dtype",
        )),
    }
}

fn centers_pair<'py, T: Real + Element>(
    a: &'py PyReadonlyArray2<'py, T>,
    c: &'py PyReadonlyArray2<'py, T>,
) -> PyResult<(&'py [T], usize, &'py [T], usize)> {
    let (x, _, d) = slice(a)?;
    let (centers, k, dc) = slice(c)?;
    if d != dc {
        return Err(value_error(format!(
            "X has {d} features, but the centroids have {dc}"
        )));
    }
    Ok((x, d, centers, k))
}

/// One Lloyd pass's state of a block against fixed centroids (an engine's partition):
/// `(sums float64 (k, d), counts uint64 (k,), objective, fingerprint)`. Rows have ids
/// `first_id, first_id + 1, ...` (the fingerprint, an order-free hash of the labels, tells
/// the driver whether any label changed). X and centers share a dtype; rows must be unit
/// vectors for the cosine metric.
#[pyfunction]
#[pyo3(signature = (x, centers, metric_name, first_id=0, n_threads=None))]
pub fn lloyd_partial<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    centers: &Bound<'py, PyAny>,
    metric_name: &str,
    first_id: u64,
    n_threads: Option<usize>,
) -> PyResult<(
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray1<u64>>,
    f64,
    u64,
)> {
    let metric = metric(metric_name)?;
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        a: &PyReadonlyArray2<'py, T>,
        c: &PyReadonlyArray2<'py, T>,
        metric: Metric,
        first_id: u64,
        n_threads: Option<usize>,
    ) -> PyResult<LloydState> {
        let (x, d, centers, k) = centers_pair(a, c)?;
        compute(py, n_threads, |_| {
            LloydState::partial(x, d, centers, k, metric, first_id)
        })
    }
    let st = match (arr(x, "X")?, arr(centers, "cluster_centers")?) {
        (Arr::F32(a), Arr::F32(c)) => go(py, &a, &c, metric, first_id, n_threads)?,
        (Arr::F64(a), Arr::F64(c)) => go(py, &a, &c, metric, first_id, n_threads)?,
        _ => {
            return Err(value_error(
                "X and cluster_centers must have the same dtype",
            ))
        }
    };
    Ok((
        vec2(py, st.sums().to_vec(), st.n_clusters(), st.n_features())?,
        vec1(py, st.counts().to_vec()),
        st.objective(),
        st.fingerprint(),
    ))
}

/// The `m` rows of a block farthest from their nearest centroid (by decreasing distance,
/// then increasing id), for empty-cluster relocation: `(ids uint64, dists float64,
/// labels int32, rows float64 (m, d))`. Ids are `first_id + row`.
#[pyfunction]
#[pyo3(signature = (x, centers, metric_name, m, first_id=0, n_threads=None))]
pub fn lloyd_farthest<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    centers: &Bound<'py, PyAny>,
    metric_name: &str,
    m: usize,
    first_id: u64,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let metric = metric(metric_name)?;
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        a: &PyReadonlyArray2<'py, T>,
        c: &PyReadonlyArray2<'py, T>,
        metric: Metric,
        m: usize,
        first_id: u64,
        n_threads: Option<usize>,
    ) -> PyResult<(Vec<Candidate>, usize)> {
        let (x, d, centers, k) = centers_pair(a, c)?;
        let c = compute(py, n_threads, |_| {
            cluster::farthest_rows(x, d, centers, k, metric, first_id, m)
        })?;
        Ok((c, d))
    }
    let (cands, d) = match (arr(x, "X")?, arr(centers, "cluster_centers")?) {
        (Arr::F32(a), Arr::F32(c)) => go(py, &a, &c, metric, m, first_id, n_threads)?,
        (Arr::F64(a), Arr::F64(c)) => go(py, &a, &c, metric, m, first_id, n_threads)?,
        _ => {
            return Err(value_error(
                "X and cluster_centers must have the same dtype",
            ))
        }
    };
    candidates_out(py, cands, d)
}

fn candidates_out<'py>(
    py: Python<'py>,
    c: Vec<Candidate>,
    d: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let n = c.len();
    let ids: Vec<u64> = c.iter().map(|c| c.id).collect();
    let dists: Vec<f64> = c.iter().map(|c| c.dist).collect();
    let labels: Vec<i32> = c.iter().map(|c| c.label).collect();
    let rows: Vec<f64> = c.into_iter().flat_map(|c| c.row).collect();
    let t = (
        vec1(py, ids),
        vec1(py, dists),
        vec1(py, labels),
        vec2(py, rows, n, d)?,
    );
    Ok(t.into_pyobject(py)?.into_any())
}

/// An engine's passes as the core's [`LloydData`]: `step(centers)` and
/// `farthest(centers, m)` are Python callables (each runs a job on the engine).
struct PyPasses<'py> {
    py: Python<'py>,
    step: Bound<'py, PyAny>,
    farthest: Bound<'py, PyAny>,
    k: usize,
    d: usize,
    /// The first Python exception a callback raised (returned instead of the core error).
    failed: Option<PyErr>,
}

impl PyPasses<'_> {
    fn fail(&mut self, e: PyErr) -> Error {
        let msg = e.to_string();
        self.failed.get_or_insert(e);
        Error::Numerical(format!("a Lloyd pass failed: {msg}"))
    }
}

impl<T: Real + Element> LloydData<T> for PyPasses<'_> {
    fn step(&mut self, centers: &[T]) -> Result<LloydState, Error> {
        let r = (|| -> PyResult<LloydState> {
            let c = vec2(self.py, centers.to_vec(), self.k, self.d)?;
            let out = self.step.call1((c,))?;
            let (sums, counts, objective, fingerprint): (
                PyReadonlyArray2<'_, f64>,
                PyReadonlyArray1<'_, u64>,
                f64,
                u64,
            ) = out.extract()?;
            LloydState::from_parts(
                self.k,
                self.d,
                sums.as_array().iter().copied().collect(),
                counts.as_array().iter().copied().collect(),
                objective,
                fingerprint,
            )
            .map_err(to_py)
        })();
        r.map_err(|e| self.fail(e))
    }

    fn farthest(&mut self, centers: &[T], m: usize) -> Result<Vec<Candidate>, Error> {
        let r = (|| -> PyResult<Vec<Candidate>> {
            let c = vec2(self.py, centers.to_vec(), self.k, self.d)?;
            let out = self.farthest.call1((c, m))?;
            let (ids, dists, labels, rows): (
                PyReadonlyArray1<'_, u64>,
                PyReadonlyArray1<'_, f64>,
                PyReadonlyArray1<'_, i32>,
                PyReadonlyArray2<'_, f64>,
            ) = out.extract()?;
            let (ids, dists, labels) = (ids.as_array(), dists.as_array(), labels.as_array());
            let rows = rows.as_array();
            let n = ids.len();
            if dists.len() != n || labels.len() != n || rows.shape() != [n, self.d] {
                return Err(value_error(format!(
                    "farthest returned {n} ids, {} distances, {} labels and rows of shape {:?} (expected ({n}, {}))",
                    dists.len(),
                    labels.len(),
                    rows.shape(),
                    self.d
                )));
            }
            Ok((0..n)
                .map(|i| Candidate {
                    id: ids[i],
                    dist: dists[i],
                    label: labels[i],
                    row: rows.row(i).to_vec(),
                })
                .collect())
        })();
        r.map_err(|e| self.fail(e))
    }
}

/// The core's Lloyd driver (`cluster::lloyd_drive`) over an engine's passes: from `init`
/// (k, d) float32/float64, `step(centers) -> (sums, counts, objective, fingerprint)` runs
/// one merged assignment pass and `farthest(centers, m) -> (ids, dists, labels, rows)` the
/// `m` farthest rows (for empty clusters). The stopping rule (stable labels, `tol_abs`,
/// `max_iter`) and the relocation are the core's. Returns a dict with `cluster_centers`
/// (init's dtype), `n_iter`, `objective_history`, `converged`, `counts`.
#[pyfunction]
pub fn lloyd_drive<'py>(
    py: Python<'py>,
    init: &Bound<'py, PyAny>,
    metric_name: &str,
    max_iter: usize,
    tol_abs: f64,
    step: Bound<'py, PyAny>,
    farthest: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let metric = metric(metric_name)?;
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        a: &PyReadonlyArray2<'py, T>,
        metric: Metric,
        max_iter: usize,
        tol_abs: f64,
        step: Bound<'py, PyAny>,
        farthest: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (init, k, d) = slice(a)?;
        if k == 0 || d == 0 || max_iter == 0 || !(tol_abs >= 0.0) {
            return Err(value_error(format!(
                "lloyd_drive: init is {k} x {d}, max_iter = {max_iter}, tol_abs = {tol_abs}"
            )));
        }
        let mut passes = PyPasses {
            py,
            step,
            farthest,
            k,
            d,
            failed: None,
        };
        let r = cluster::lloyd_drive::<T>(
            &mut passes,
            init.to_vec(),
            metric,
            max_iter,
            tol_abs,
            Cancel::never(),
        );
        if let Some(e) = passes.failed.take() {
            return Err(e);
        }
        let out = r.map_err(to_py)?;
        let dict = PyDict::new(py);
        dict.set_item("cluster_centers", vec2(py, out.centers, k, d)?)?;
        dict.set_item("n_iter", out.n_iter)?;
        dict.set_item("objective_history", out.objective_history)?;
        dict.set_item("converged", out.converged)?;
        dict.set_item("counts", out.counts)?;
        Ok(dict)
    }
    match arr(init, "init")? {
        Arr::F32(a) => go(py, &a, metric, max_iter, tol_abs, step, farthest),
        Arr::F64(a) => go(py, &a, metric, max_iter, tol_abs, step, farthest),
    }
}

/// Merges candidate lists of several partitions into the `m` farthest overall:
/// `(ids, dists, labels, rows)` concatenated in, the same four arrays out.
#[pyfunction]
pub fn lloyd_merge_farthest<'py>(
    py: Python<'py>,
    ids: PyReadonlyArray1<'py, u64>,
    dists: PyReadonlyArray1<'py, f64>,
    labels: PyReadonlyArray1<'py, i32>,
    rows: PyReadonlyArray2<'py, f64>,
    m: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let (ids, dists, labels, rows) = (
        ids.as_array(),
        dists.as_array(),
        labels.as_array(),
        rows.as_array(),
    );
    let n = ids.len();
    let d = rows.shape()[1];
    if dists.len() != n || labels.len() != n || rows.shape()[0] != n {
        return Err(value_error("candidate arrays have different lengths"));
    }
    let c: Vec<Candidate> = (0..n)
        .map(|i| Candidate {
            id: ids[i],
            dist: dists[i],
            label: labels[i],
            row: rows.row(i).to_vec(),
        })
        .collect();
    candidates_out(py, cluster::merge_farthest(c, m), d)
}

/// The absolute tolerance of the Lloyd driver from merged moments `(n, mean, m2)`:
/// `tol * mean(var(X, axis=0))` (`cluster::tol_from_moments`, the rule of every fit).
#[pyfunction]
pub fn lloyd_tol(
    moments: (u64, PyReadonlyArray1<'_, f64>, PyReadonlyArray1<'_, f64>),
    tol: f64,
) -> PyResult<f64> {
    let m = crate::preprocessing::moments_in(moments)?;
    Ok(cluster::tol_from_moments(tol, &m))
}
