//! `embedcluster.metrics`: external and internal clustering scores.

use crate::arrays::{arr, slice, vec1, Arr};
use crate::errors::{to_py, value_error};
use crate::runtime::compute;
use embedcluster::linalg::Distance;
use embedcluster::{Error, Real};
use numpy::{Element, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// External clustering scores of two int64 labelings: a dict with `adjusted_rand_score`,
/// `mutual_info_score`, `normalized_mutual_info_score`, `adjusted_mutual_info_score`,
/// `homogeneity`, `completeness`, `v_measure` (only those named in `which`, or all).
#[pyfunction]
#[pyo3(signature = (labels_true, labels_pred, which=None))]
pub fn external_scores<'py>(
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
pub fn internal_score<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    labels: PyReadonlyArray1<'py, i64>,
    kind: &str,
    metric_name: &str,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    use embedcluster::metrics as m;
    let metric: Distance = metric_name.parse().map_err(to_py)?;
    let labels = labels.as_slice()?;
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        a: &PyReadonlyArray2<'py, T>,
        labels: &[i64],
        kind: &str,
        metric: Distance,
        n_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (x, _, d) = slice(a)?;
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
            _ => Err(value_error(format!("unknown score {kind:?}"))),
        }
    }
    match arr(x, "X")? {
        Arr::F32(a) => go(py, &a, labels, kind, metric, n_threads),
        Arr::F64(a) => go(py, &a, labels, kind, metric, n_threads),
    }
}
