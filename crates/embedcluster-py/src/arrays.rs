//! NumPy arrays in and out: 2-D C-contiguous float32/float64 arrays are borrowed without a
//! copy; every length is checked before the core sees it.

use crate::errors::value_error;
use numpy::{
    Element, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

/// A 2-D float array borrowed from NumPy.
pub enum Arr<'py> {
    F32(PyReadonlyArray2<'py, f32>),
    F64(PyReadonlyArray2<'py, f64>),
}

/// `x` as a 2-D C-contiguous float32/float64 array; `name` names it in errors.
pub fn arr<'py>(x: &Bound<'py, PyAny>, name: &str) -> PyResult<Arr<'py>> {
    let a = if let Ok(a) = x.extract::<PyReadonlyArray2<'py, f32>>() {
        Arr::F32(a)
    } else if let Ok(a) = x.extract::<PyReadonlyArray2<'py, f64>>() {
        Arr::F64(a)
    } else {
        return Err(value_error(format!(
            "{name} must be a 2-D numpy array of float32 or float64"
        )));
    };
    let contiguous = match &a {
        Arr::F32(a) => a.is_c_contiguous(),
        Arr::F64(a) => a.is_c_contiguous(),
    };
    if !contiguous {
        return Err(value_error(format!("{name} must be C-contiguous")));
    }
    Ok(a)
}

/// The values, rows and columns of a C-contiguous array (checked by [`arr`]).
pub fn slice<'a, T: Element>(a: &'a PyReadonlyArray2<'_, T>) -> PyResult<(&'a [T], usize, usize)> {
    let shape = a.shape();
    let s = a
        .as_slice()
        .map_err(|_| value_error("the array must be C-contiguous"))?;
    Ok((s, shape[0], shape[1]))
}

/// A 1-D float64 array as a vector, `name` in errors; `len` when given must match.
pub fn vec_f64(
    a: &PyReadonlyArray1<'_, f64>,
    name: &str,
    len: Option<usize>,
) -> PyResult<Vec<f64>> {
    let v: Vec<f64> = a.as_array().iter().copied().collect();
    if let Some(n) = len {
        if v.len() != n {
            return Err(value_error(format!(
                "{name} has {} values, expected {n}",
                v.len()
            )));
        }
    }
    Ok(v)
}

pub fn vec1<'py, T: Element>(py: Python<'py>, v: Vec<T>) -> Bound<'py, PyArray1<T>> {
    PyArray1::from_vec(py, v)
}

pub fn vec2<'py, T: Element>(
    py: Python<'py>,
    v: Vec<T>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    PyArray1::from_vec(py, v).reshape([rows, cols])
}
