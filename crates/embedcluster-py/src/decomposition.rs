//! `embedcluster.decomposition`: the streaming covariance state, PCA from it or by
//! randomized SVD, and the projection.

use crate::arrays::{arr, slice, vec1, vec2, vec_f64, Arr};
use crate::errors::{to_py, value_error};
use crate::preprocessing::moments_in;
use crate::runtime::compute;
use embedcluster::decomposition::{randomized_pca, CovarianceState, Pca, RandomizedOptions};
use embedcluster::Real;
use numpy::{
    Element, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Covariance state `(n, mean, comoment)` of a block (streaming PCA's `partial`).
#[pyfunction]
#[pyo3(signature = (x, n_threads=None))]
pub fn cov_partial<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    n_threads: Option<usize>,
) -> PyResult<(u64, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>)> {
    let st = match arr(x, "X")? {
        Arr::F32(a) => {
            let (s, _, d) = slice(&a)?;
            compute(py, n_threads, |_| Ok(CovarianceState::partial(s, d)))?
        }
        Arr::F64(a) => {
            let (s, _, d) = slice(&a)?;
            compute(py, n_threads, |_| Ok(CovarianceState::partial(s, d)))?
        }
    };
    state_out(py, st)
}

pub fn state_out<'py>(
    py: Python<'py>,
    st: CovarianceState,
) -> PyResult<(u64, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>)> {
    let d = st.n_features;
    Ok((st.n, vec1(py, st.mean), vec2(py, st.comoment, d, d)?))
}

pub fn state_in(
    n: u64,
    mean: PyReadonlyArray1<'_, f64>,
    comoment: PyReadonlyArray2<'_, f64>,
) -> PyResult<CovarianceState> {
    let mean: Vec<f64> = mean.as_array().iter().copied().collect();
    let d = mean.len();
    let comoment: Vec<f64> = comoment.as_array().iter().copied().collect();
    if d == 0 || comoment.len() != d * d {
        return Err(value_error(format!(
            "inconsistent covariance state: {d} means and {} co-moment values",
            comoment.len()
        )));
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
pub fn cov_merge<'py>(
    py: Python<'py>,
    a: (u64, PyReadonlyArray1<'py, f64>, PyReadonlyArray2<'py, f64>),
    b: (u64, PyReadonlyArray1<'py, f64>, PyReadonlyArray2<'py, f64>),
) -> PyResult<(u64, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>)> {
    let mut sa = state_in(a.0, a.1, a.2)?;
    let sb = state_in(b.0, b.1, b.2)?;
    if sa.n_features != sb.n_features {
        return Err(value_error(format!(
            "X has {} features, but the state has {}",
            sb.n_features, sa.n_features
        )));
    }
    sa.merge(&sb);
    state_out(py, sa)
}

pub fn pca_out<'py>(py: Python<'py>, p: Pca) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item(
        "components",
        vec2(
            py,
            p.components().to_vec(),
            p.n_components(),
            p.n_features(),
        )?,
    )?;
    out.set_item("mean", vec1(py, p.mean().to_vec()))?;
    out.set_item(
        "explained_variance",
        vec1(py, p.explained_variance().to_vec()),
    )?;
    out.set_item(
        "explained_variance_ratio",
        vec1(py, p.explained_variance_ratio().to_vec()),
    )?;
    out.set_item("n_samples_seen", p.n_samples_seen())?;
    Ok(out)
}

/// PCA from a covariance state: dict of `components` (D, d), `mean`, `explained_variance`,
/// `explained_variance_ratio`, `n_samples_seen`.
#[pyfunction]
pub fn cov_finish<'py>(
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

/// Randomized PCA (Halko et al.) of `sample`, centered with the full data's moments.
#[pyfunction]
#[pyo3(signature = (sample, moments, n_components, n_oversamples=10, n_iter=None, seed=0, n_threads=None))]
pub fn pca_randomized<'py>(
    py: Python<'py>,
    sample: &Bound<'py, PyAny>,
    moments: (u64, PyReadonlyArray1<'py, f64>, PyReadonlyArray1<'py, f64>),
    n_components: usize,
    n_oversamples: usize,
    n_iter: Option<usize>,
    seed: u64,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let m = moments_in(moments)?;
    let opts = RandomizedOptions {
        n_oversamples,
        n_iter,
        seed,
    };
    let p = match arr(sample, "X")? {
        Arr::F32(a) => {
            let (s, _, d) = slice(&a)?;
            compute(py, n_threads, |_| {
                randomized_pca(s, d, &m, n_components, &opts)
            })?
        }
        Arr::F64(a) => {
            let (s, _, d) = slice(&a)?;
            compute(py, n_threads, |_| {
                randomized_pca(s, d, &m, n_components, &opts)
            })?
        }
    };
    pca_out(py, p)
}

/// A fitted PCA from arrays set by hand or loaded (`mean_` (d,), `components_` (D, d)),
/// checked: a wrong length raises `EmbedclusterError` naming the attribute.
pub fn pca_from(
    mean: &PyReadonlyArray1<'_, f64>,
    components: &PyReadonlyArray2<'_, f64>,
) -> PyResult<Pca> {
    let mean = vec_f64(mean, "mean_", None)?;
    let shape = components.shape();
    let comps: Vec<f64> = components.as_array().iter().copied().collect();
    if shape[1] != mean.len() {
        return Err(value_error(format!(
            "components_ has {} columns but mean_ has {} values",
            shape[1],
            mean.len()
        )));
    }
    Pca::from_parts(mean, comps, shape[0], vec![], vec![], 0).map_err(to_py)
}

/// `(X - mean) components^T` computed as `X W^T - mean W^T`; output keeps X's dtype.
#[pyfunction]
#[pyo3(signature = (x, mean, components, n_threads=None))]
pub fn pca_transform<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    mean: PyReadonlyArray1<'py, f64>,
    components: PyReadonlyArray2<'py, f64>,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let p = pca_from(&mean, &components)?;
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        a: &PyReadonlyArray2<'py, T>,
        p: &Pca,
        n_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (x, n, d) = slice(a)?;
        if d != p.n_features() {
            return Err(value_error(format!(
                "X has {d} features, but PCA is expecting {} features as input",
                p.n_features()
            )));
        }
        let k = p.n_components();
        let t = p.transformer::<T>();
        let out = compute(py, n_threads, |_| {
            let mut out = vec![T::ZERO; n * k];
            t.transform(x, &mut out)?;
            Ok(out)
        })?;
        Ok(vec2(py, out, n, k)?.into_any())
    }
    match arr(x, "X")? {
        Arr::F32(a) => go(py, &a, &p, n_threads),
        Arr::F64(a) => go(py, &a, &p, n_threads),
    }
}
