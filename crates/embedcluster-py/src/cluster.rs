//! `embedcluster.cluster`: k-means fits and assignment, the mergeable Lloyd state for
//! engines (Spark), and the core's Lloyd driver run over an engine's passes.

use crate::arrays::{arr, slice, vec1, vec2, Arr};
use crate::errors::{to_py, value_error};
use crate::runtime::compute;
use embedcluster::cluster::{
    self, Candidate, Cost, Init, KMeansParams, LloydData, LloydState, Metric, ParallelData,
    ParallelInit,
};
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

/// The core's seeding from its name (`k-means++`, `k-means||`, `random`) and k-means||'s
/// parameters.
pub fn init_of(name: &str, oversampling_factor: f64, rounds: usize) -> PyResult<Init> {
    let parallel = ParallelInit {
        oversampling_factor,
        rounds,
    };
    Init::from_name(name, parallel).map_err(to_py)
}

/// k-means / spherical k-means on a C-contiguous float32/float64 array. `init` (k, d)
/// float64 gives the centroids; else `init_name` seeds (`k-means++`, `k-means||`,
/// `random`), `init_trials` seedings screened on an `init_size`-row sample (0: automatic).
///
/// `sample_weight` (n,) float64, C-contiguous: per-row weights (`cluster::fit_weighted`).
///
/// Returns a dict: `cluster_centers` (k, d) same dtype, `labels` int32 (n,), `scores`
/// float32 (n,), `inertia`, `n_iter`, `objective_history`, `converged`, `counts`.
#[pyfunction]
#[pyo3(signature = (x, n_clusters, metric_name, init=None, n_init=1, max_iter=300, tol=1e-4, seed=0, n_threads=None, init_name="k-means++", init_trials=cluster::DEFAULT_INIT_TRIALS, init_size=0, oversampling_factor=2.0, init_rounds=5, sample_weight=None, pruning="auto"))]
#[allow(clippy::too_many_arguments)]
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
    init_name: &str,
    init_trials: usize,
    init_size: usize,
    oversampling_factor: f64,
    init_rounds: usize,
    sample_weight: Option<PyReadonlyArray1<'py, f64>>,
    pruning: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let weights = weights_of(&sample_weight)?;
    let params = KMeansParams {
        n_clusters,
        metric: metric(metric_name)?,
        init: match &init {
            Some(c) => Init::Centroids(c.as_array().iter().copied().collect()),
            None => init_of(init_name, oversampling_factor, init_rounds)?,
        },
        n_init,
        max_iter,
        tol,
        seed,
        init_trials,
        init_size,
        pruning: cluster::Pruning::from_name(pruning).map_err(to_py)?,
    };
    match arr(x, "X")? {
        Arr::F32(a) => kmeans_out(py, &a, &params, weights, n_threads),
        Arr::F64(a) => kmeans_out(py, &a, &params, weights, n_threads),
    }
}

fn kmeans_out<'py, T: Real + Element>(
    py: Python<'py>,
    a: &PyReadonlyArray2<'py, T>,
    params: &KMeansParams,
    weights: Option<&[f64]>,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let (x, _, d) = slice(a)?;
    let m = compute(py, n_threads, |cancel| {
        cluster::fit_weighted(params, x, d, weights, cancel)
    })?;
    model_dict(py, m, d)
}

/// A fitted model as the dict `kmeans_fit` returns.
fn model_dict<'py, T: Real + Element>(
    py: Python<'py>,
    mut m: cluster::KMeans<T>,
    d: usize,
) -> PyResult<Bound<'py, PyDict>> {
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
    out.set_item("n_steps", m.n_steps())?;
    out.set_item("objective_history", m.objective_history().to_vec())?;
    out.set_item("converged", m.converged())?;
    out.set_item("counts", m.counts().to_vec())?;
    if let Some(s) = m.pruning() {
        let p = PyDict::new(py);
        p.set_item("prefix_dims", s.prefix_dims)?;
        p.set_item("passes", s.passes)?;
        p.set_item("keys_per_row", s.keys_per_row(m.n_clusters()))?;
        p.set_item("fallback_rows", s.counts.fallback_rows)?;
        p.set_item("bytes", s.bytes)?;
        out.set_item("pruning", p)?;
    } else {
        out.set_item("pruning", py.None())?;
    }
    Ok(out)
}

/// Mini-batch k-means (Sculley 2010; `cluster::fit_minibatch`) on a C-contiguous
/// float32/float64 array: `max_iter` epochs of `batch_size`-row steps; `init` (k, d) float64
/// gives the centroids, else `init_name` seeds on an `init_size`-row sample (0: automatic).
/// `sample_weight` (n,) float64, C-contiguous: per-row weights
/// (`cluster::fit_minibatch_weighted`). Returns the dict of `kmeans_fit` (`n_iter` in
/// epochs).
#[pyfunction]
#[pyo3(signature = (x, n_clusters, metric_name, init=None, max_iter=100, batch_size=1024, tol=0.0, max_no_improvement=10, reassignment_ratio=0.01, init_size=0, seed=0, n_threads=None, init_name="k-means++", init_trials=cluster::DEFAULT_INIT_TRIALS, sample_weight=None))]
#[allow(clippy::too_many_arguments)]
pub fn minibatch_fit<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    n_clusters: usize,
    metric_name: &str,
    init: Option<PyReadonlyArray2<'py, f64>>,
    max_iter: usize,
    batch_size: usize,
    tol: f64,
    max_no_improvement: usize,
    reassignment_ratio: f64,
    init_size: usize,
    seed: u64,
    n_threads: Option<usize>,
    init_name: &str,
    init_trials: usize,
    sample_weight: Option<PyReadonlyArray1<'py, f64>>,
) -> PyResult<Bound<'py, PyDict>> {
    let weights = weights_of(&sample_weight)?;
    let params = cluster::MiniBatchParams {
        kmeans: KMeansParams {
            n_clusters,
            metric: metric(metric_name)?,
            init: match &init {
                Some(c) => Init::Centroids(c.as_array().iter().copied().collect()),
                None => init_of(init_name, 2.0, 5)?,
            },
            n_init: 1,
            max_iter,
            tol,
            seed,
            init_trials,
            init_size,
            pruning: cluster::Pruning::Off,
        },
        batch_size,
        max_no_improvement,
        reassignment_ratio,
    };
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        a: &PyReadonlyArray2<'py, T>,
        params: &cluster::MiniBatchParams,
        weights: Option<&[f64]>,
        n_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (x, _, d) = slice(a)?;
        let m = compute(py, n_threads, |cancel| {
            cluster::fit_minibatch_weighted(params, x, d, weights, cancel)
        })?;
        model_dict(py, m, d)
    }
    match arr(x, "X")? {
        Arr::F32(a) => go(py, &a, &params, weights, n_threads),
        Arr::F64(a) => go(py, &a, &params, weights, n_threads),
    }
}

/// One mini-batch step (`cluster::MiniBatchState::partial_fit`) from the state
/// `(centers (k, d) float64, counts (k,) float64, n_steps)` on the rows `x`; returns the new
/// `(centers, counts, n_steps, batch_objective)`. The state is the caller's (small: `k d`).
#[pyfunction]
#[pyo3(signature = (x, centers, counts, n_steps, metric_name, reassignment_ratio=0.01, sample_weight=None, n_threads=None))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn minibatch_step<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    centers: PyReadonlyArray2<'py, f64>,
    counts: PyReadonlyArray1<'py, f64>,
    n_steps: u64,
    metric_name: &str,
    reassignment_ratio: f64,
    sample_weight: Option<PyReadonlyArray1<'py, f64>>,
    n_threads: Option<usize>,
) -> PyResult<(
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray1<f64>>,
    u64,
    f64,
)> {
    let (k, d) = centers.as_array().dim();
    let mut state = cluster::MiniBatchState::from_parts(
        centers.as_array().iter().copied().collect(),
        counts.as_array().iter().copied().collect(),
        n_steps,
        k,
        d,
        metric(metric_name)?,
        reassignment_ratio,
    )
    .map_err(to_py)?;
    let weights = weights_of(&sample_weight)?;
    let objective = match arr(x, "X")? {
        Arr::F32(a) => {
            let (x, _, xd) = slice(&a)?;
            check_d(xd, d)?;
            compute(py, n_threads, |_| state.partial_fit(x, weights))?
        }
        Arr::F64(a) => {
            let (x, _, xd) = slice(&a)?;
            check_d(xd, d)?;
            compute(py, n_threads, |_| state.partial_fit(x, weights))?
        }
    };
    Ok((
        vec2(py, state.centers().to_vec(), k, d)?,
        vec1(py, state.counts().to_vec()),
        state.n_steps(),
        objective,
    ))
}

fn check_d(got: usize, want: usize) -> PyResult<()> {
    if got != want {
        return Err(value_error(format!(
            "X has {got} features, but the model was fitted with {want}"
        )));
    }
    Ok(())
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

/// Keeps the first Python exception of an engine's callback (raised to the caller instead
/// of the core's error) and gives the core an error naming the pass.
fn remember(failed: &mut Option<PyErr>, e: PyErr, pass: &str) -> Error {
    let msg = e.to_string();
    failed.get_or_insert(e);
    Error::Numerical(format!("a {pass} pass failed: {msg}"))
}

impl PyPasses<'_> {
    fn fail(&mut self, e: PyErr) -> Error {
        remember(&mut self.failed, e, "Lloyd")
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
                    weight: 1.0,
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
            weight: 1.0,
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

fn groups_of<'py, T: Real + Element>(
    groups: &'py [PyReadonlyArray2<'py, T>],
) -> PyResult<Vec<&'py [T]>> {
    groups
        .iter()
        .map(|g| {
            g.as_slice()
                .map_err(|_| value_error("k-means|| candidates must be C-contiguous"))
        })
        .collect()
}

/// One block's share of a k-means|| pass (Bahmani et al. 2012) against the candidate
/// `groups` (a list of (m_r, d) arrays, X's dtype, in round order): `kind="first"` returns
/// the block's candidate for the first centre `(rank uint64 (1,), row (1, d))` (empty when
/// the block is), `"cost"` the fixed-point cost (an int, units of 2^-40), `"draw"` the rows
/// drawn in `round` with probability `min(1, l d^2 / psi)` as `(hashes uint64, rows (m, d))`,
/// `"weights"` the rows nearest to each candidate (uint64). Draws hash the rows' values, so
/// the same rows give the same result however they are split or ordered.
#[pyfunction]
#[pyo3(signature = (x, groups, kind, l=0.0, psi=0, seed=0, round=0, n_threads=None))]
#[allow(clippy::too_many_arguments)]
pub fn kmeans_parallel_block<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    groups: Vec<Bound<'py, PyAny>>,
    kind: &str,
    l: f64,
    psi: i128,
    seed: u64,
    round: u32,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    #[allow(clippy::too_many_arguments)]
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        a: &PyReadonlyArray2<'py, T>,
        groups: &[Bound<'py, PyAny>],
        kind: &str,
        l: f64,
        psi: i128,
        seed: u64,
        round: u32,
        n_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (x, _, d) = slice(a)?;
        let gs: Vec<PyReadonlyArray2<'py, T>> = groups
            .iter()
            .map(|g| g.extract())
            .collect::<PyResult<_>>()
            .map_err(|_| value_error("k-means|| candidates must be 2-D arrays of X's dtype"))?;
        let g = groups_of(&gs)?;
        let pairs = |py: Python<'py>, v: Vec<(u64, Vec<T>)>| -> PyResult<Bound<'py, PyAny>> {
            let m = v.len();
            let ids: Vec<u64> = v.iter().map(|(i, _)| *i).collect();
            let rows: Vec<T> = v.into_iter().flat_map(|(_, r)| r).collect();
            Ok((vec1(py, ids), vec2(py, rows, m, d)?)
                .into_pyobject(py)?
                .into_any())
        };
        match kind {
            "first" => {
                let f = compute(py, n_threads, |_| cluster::parallel_first(x, d, seed))?;
                pairs(py, f.into_iter().collect())
            }
            "cost" => {
                let c = compute(py, n_threads, |_| cluster::parallel_cost(x, d, &g))?;
                Ok(c.0.into_pyobject(py)?.into_any())
            }
            "draw" => {
                let drawn = compute(py, n_threads, |_| {
                    cluster::parallel_draw(x, d, &g, l, Cost(psi), seed, round)
                })?;
                pairs(py, drawn)
            }
            "weights" => {
                let w = compute(py, n_threads, |_| cluster::parallel_weights(x, d, &g))?;
                Ok(vec1(py, w).into_any())
            }
            _ => Err(value_error(format!(
                "kind must be 'first', 'cost', 'draw' or 'weights', got {kind:?}"
            ))),
        }
    }
    match arr(x, "X")? {
        Arr::F32(a) => go(py, &a, &groups, kind, l, psi, seed, round, n_threads),
        Arr::F64(a) => go(py, &a, &groups, kind, l, psi, seed, round, n_threads),
    }
}

/// An engine's passes as the core's k-means|| data (each callback runs one job).
struct PyParallel<'py> {
    py: Python<'py>,
    n: u64,
    d: usize,
    first: Bound<'py, PyAny>,
    cost: Bound<'py, PyAny>,
    draw: Bound<'py, PyAny>,
    weights: Bound<'py, PyAny>,
    failed: Option<PyErr>,
}

impl PyParallel<'_> {
    fn fail(&mut self, e: PyErr) -> Error {
        remember(&mut self.failed, e, "k-means||")
    }

    fn groups<'py, T: Real + Element>(
        py: Python<'py>,
        groups: &[Vec<T>],
        d: usize,
    ) -> PyResult<Vec<Bound<'py, PyArray2<T>>>> {
        groups
            .iter()
            .map(|g| vec2(py, g.clone(), g.len() / d, d))
            .collect()
    }
}

impl<T: Real + Element> ParallelData<T> for PyParallel<'_> {
    fn n_samples(&self) -> u64 {
        self.n
    }
    fn n_features(&self) -> usize {
        self.d
    }
    fn first(&mut self, seed: u64) -> Result<Option<(u64, Vec<T>)>, Error> {
        let r = (|| -> PyResult<Option<(u64, Vec<T>)>> {
            let out = self.first.call1((seed,))?;
            let (ids, rows): (PyReadonlyArray1<'_, u64>, PyReadonlyArray2<'_, T>) =
                out.extract()?;
            let (ids, rows) = (ids.as_array(), rows.as_array());
            Ok(match ids.len() {
                0 => None,
                _ if rows.shape() == [1, self.d] => Some((ids[0], rows.row(0).to_vec())),
                _ => return Err(value_error("first returned rows of the wrong shape")),
            })
        })();
        r.map_err(|e| self.fail(e))
    }
    fn cost(&mut self, groups: &[Vec<T>]) -> Result<Cost, Error> {
        let r = (|| -> PyResult<Cost> {
            let g = Self::groups(self.py, groups, self.d)?;
            Ok(Cost(self.cost.call1((g,))?.extract::<i128>()?))
        })();
        r.map_err(|e| self.fail(e))
    }
    fn draw(
        &mut self,
        groups: &[Vec<T>],
        l: f64,
        psi: Cost,
        seed: u64,
        round: u32,
    ) -> Result<Vec<(u64, Vec<T>)>, Error> {
        let r = (|| -> PyResult<Vec<(u64, Vec<T>)>> {
            let g = Self::groups(self.py, groups, self.d)?;
            let out = self.draw.call1((g, l, psi.0, seed, round))?;
            let (ids, rows): (PyReadonlyArray1<'_, u64>, PyReadonlyArray2<'_, T>) =
                out.extract()?;
            let (ids, rows) = (ids.as_array(), rows.as_array());
            if rows.shape() != [ids.len(), self.d] {
                return Err(value_error("draw returned rows of the wrong shape"));
            }
            Ok((0..ids.len())
                .map(|i| (ids[i], rows.row(i).to_vec()))
                .collect())
        })();
        r.map_err(|e| self.fail(e))
    }
    fn weights(&mut self, groups: &[Vec<T>]) -> Result<Vec<u64>, Error> {
        let r = (|| -> PyResult<Vec<u64>> {
            let g = Self::groups(self.py, groups, self.d)?;
            let w: PyReadonlyArray1<'_, u64> = self.weights.call1((g,))?.extract()?;
            Ok(w.as_array().to_vec())
        })();
        r.map_err(|e| self.fail(e))
    }
}

/// The core's k-means|| driver (`cluster::kmeans_parallel_drive`) over an engine's passes
/// of `n` rows of `d` features (`dtype` "float32" or "float64"): `row(id)` returns one row,
/// `cost(groups)` the merged fixed-point cost, `draw(groups, l, psi, seed, round)` the
/// merged drawn `(ids, rows)` in id order, `weights(groups)` the merged counts. Returns the
/// (k, d) initial centroids.
#[pyfunction]
#[pyo3(signature = (n, d, n_clusters, metric_name, oversampling_factor, rounds, seed, dtype, first, cost, draw, weights))]
#[allow(clippy::too_many_arguments)]
pub fn kmeans_parallel_drive<'py>(
    py: Python<'py>,
    n: u64,
    d: usize,
    n_clusters: usize,
    metric_name: &str,
    oversampling_factor: f64,
    rounds: usize,
    seed: u64,
    dtype: &str,
    first: Bound<'py, PyAny>,
    cost: Bound<'py, PyAny>,
    draw: Bound<'py, PyAny>,
    weights: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let metric = metric(metric_name)?;
    let p = ParallelInit {
        oversampling_factor,
        rounds,
    };
    let mut data = PyParallel {
        py,
        n,
        d,
        first,
        cost,
        draw,
        weights,
        failed: None,
    };
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        data: &mut PyParallel<'py>,
        k: usize,
        metric: Metric,
        p: ParallelInit,
        seed: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = cluster::kmeans_parallel_drive::<T>(data, k, metric, p, seed, Cancel::never());
        if let Some(e) = data.failed.take() {
            return Err(e);
        }
        let c = r.map_err(to_py)?;
        Ok(vec2(py, c, k, data.d)?.into_any())
    }
    match dtype {
        "float32" => go::<f32>(py, &mut data, n_clusters, metric, p, seed),
        "float64" => go::<f64>(py, &mut data, n_clusters, metric, p, seed),
        _ => Err(value_error(format!(
            "dtype must be float32 or float64, got {dtype:?}"
        ))),
    }
}

/// Seed of restart `r` of a fit with `seed` (what k-means|| on an engine is given).
#[pyfunction]
pub fn restart_seed(seed: u64, r: usize) -> u64 {
    cluster::restart_seed(seed, r)
}

/// The initial centroids (k, d), X's dtype, that restart 0 of `kmeans_fit` with the same
/// arguments starts Lloyd from.
#[pyfunction]
#[pyo3(signature = (x, n_clusters, metric_name, seed=0, init_name="k-means++", init_trials=cluster::DEFAULT_INIT_TRIALS, init_size=0, oversampling_factor=2.0, init_rounds=5, n_threads=None))]
#[allow(clippy::too_many_arguments)]
pub fn kmeans_init<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    n_clusters: usize,
    metric_name: &str,
    seed: u64,
    init_name: &str,
    init_trials: usize,
    init_size: usize,
    oversampling_factor: f64,
    init_rounds: usize,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let params = KMeansParams {
        n_clusters,
        metric: metric(metric_name)?,
        init: init_of(init_name, oversampling_factor, init_rounds)?,
        seed,
        init_trials,
        init_size,
        ..Default::default()
    };
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        a: &PyReadonlyArray2<'py, T>,
        params: &KMeansParams,
        n_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (x, _, d) = slice(a)?;
        let c = compute(py, n_threads, |_| {
            cluster::initial_centroids(params, x, d, 0)
        })?;
        Ok(vec2(py, c, params.n_clusters, d)?.into_any())
    }
    match arr(x, "X")? {
        Arr::F32(a) => go(py, &a, &params, n_threads),
        Arr::F64(a) => go(py, &a, &params, n_threads),
    }
}

/// The `sample_weight` argument as a slice (it must be C-contiguous float64).
fn weights_of<'a>(w: &'a Option<PyReadonlyArray1<'_, f64>>) -> PyResult<Option<&'a [f64]>> {
    w.as_ref()
        .map(|w| {
            w.as_slice()
                .map_err(|_| value_error("sample_weight must be C-contiguous float64"))
        })
        .transpose()
}
