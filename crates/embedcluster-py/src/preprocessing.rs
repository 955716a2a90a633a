//! `embedcluster.preprocessing`: mergeable per-feature moments (StandardScaler).

use crate::arrays::{arr, slice, vec1, Arr};
use crate::errors::value_error;
use embedcluster::preprocessing::Moments;
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

/// Per-feature moments `(n, mean, m2)` of a block.
#[pyfunction]
pub fn moments_partial<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
) -> PyResult<(u64, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>)> {
    let m = match arr(x, "X")? {
        Arr::F32(a) => {
            let (s, _, d) = slice(&a)?;
            py.detach(|| Moments::partial(s, d))
        }
        Arr::F64(a) => {
            let (s, _, d) = slice(&a)?;
            py.detach(|| Moments::partial(s, d))
        }
    };
    Ok((m.n, vec1(py, m.mean), vec1(py, m.m2)))
}

/// A moment state from Python, checked (one mean and one M2 per feature).
pub fn moments_in(
    m: (u64, PyReadonlyArray1<'_, f64>, PyReadonlyArray1<'_, f64>),
) -> PyResult<Moments> {
    let mean: Vec<f64> = m.1.as_array().iter().copied().collect();
    let m2: Vec<f64> = m.2.as_array().iter().copied().collect();
    if mean.len() != m2.len() || mean.is_empty() {
        return Err(value_error(format!(
            "inconsistent moment state: {} means and {} second moments",
            mean.len(),
            m2.len()
        )));
    }
    Ok(Moments { n: m.0, mean, m2 })
}

/// Merges two moment states (Chan, Golub and LeVeque).
#[pyfunction]
pub fn moments_merge<'py>(
    py: Python<'py>,
    a: (u64, PyReadonlyArray1<'py, f64>, PyReadonlyArray1<'py, f64>),
    b: (u64, PyReadonlyArray1<'py, f64>, PyReadonlyArray1<'py, f64>),
) -> PyResult<(u64, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>)> {
    let mut ma = moments_in(a)?;
    let mb = moments_in(b)?;
    if ma.mean.len() != mb.mean.len() {
        return Err(value_error("moment states have different n_features"));
    }
    ma.merge(&mb);
    Ok((ma.n, vec1(py, ma.mean), vec1(py, ma.m2)))
}

/// Scales the rows of a C-contiguous float32/float64 array to unit L2 norm, in place (the
/// core's `l2_normalize_rows`, the normalization every front end applies; norms in f64).
/// An all-zero row raises `EmbedclusterError` naming it.
#[pyfunction]
pub fn normalize_rows(py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
    use embedcluster::preprocessing::l2_normalize_rows;
    use numpy::{PyReadwriteArray2, PyUntypedArrayMethods};
    fn go<T: embedcluster::Real + numpy::Element>(
        py: Python<'_>,
        mut a: PyReadwriteArray2<'_, T>,
    ) -> PyResult<()> {
        let d = a.shape()[1];
        let s = a
            .as_slice_mut()
            .map_err(|_| value_error("X must be C-contiguous"))?;
        if d == 0 {
            return Ok(());
        }
        py.detach(|| l2_normalize_rows(s, d))
            .map_err(|i| value_error(format!("row {i} is all zeros and cannot be normalized")))
    }
    if let Ok(a) = x.extract::<PyReadwriteArray2<'_, f32>>() {
        go(py, a)
    } else if let Ok(a) = x.extract::<PyReadwriteArray2<'_, f64>>() {
        go(py, a)
    } else {
        Err(value_error(
            "X must be a writable 2-D float32 or float64 array",
        ))
    }
}
