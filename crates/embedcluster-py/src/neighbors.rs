//! `embedcluster.neighbors`: exact top-k by blocked GEMM and bounded heaps.

use crate::arrays::{arr, slice, vec2, Arr};
use crate::errors::{to_py, value_error};
use crate::runtime::compute;
use embedcluster::linalg::Distance;
use embedcluster::Real;
use numpy::{Element, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;

/// Exact top-k of `queries` against the concatenation of `bases` (a list of arrays of one
/// dtype, ids counted across them): `(distances (q, k) same dtype, ids int64 (q, k))`.
#[pyfunction]
#[pyo3(signature = (bases, queries, k, metric_name="l2", exclude_self=false, n_threads=None))]
pub fn knn_search<'py>(
    py: Python<'py>,
    bases: Vec<Bound<'py, PyAny>>,
    queries: &Bound<'py, PyAny>,
    k: usize,
    metric_name: &str,
    exclude_self: bool,
    n_threads: Option<usize>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyArray2<i64>>)> {
    let metric: Distance = metric_name.parse().map_err(to_py)?;
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        bases: &[PyReadonlyArray2<'py, T>],
        q: &PyReadonlyArray2<'py, T>,
        k: usize,
        metric: Distance,
        exclude_self: bool,
        n_threads: Option<usize>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyArray2<i64>>)> {
        let (qx, nq, d) = slice(q)?;
        let parts: Vec<(&[T], usize)> = bases
            .iter()
            .map(|b| {
                let (x, n, db) = slice(b)?;
                if db != d {
                    return Err(value_error(format!(
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
                    cancel.check()?;
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
                    _ => Err(value_error("queries and base must have the same dtype")),
                })
                .collect::<PyResult<_>>()?;
            go(py, &b, &q, k, metric, exclude_self, n_threads)
        }
        Arr::F64(q) => {
            let b: Vec<PyReadonlyArray2<'py, f64>> = bs
                .into_iter()
                .map(|b| match b {
                    Arr::F64(b) => Ok(b),
                    _ => Err(value_error("queries and base must have the same dtype")),
                })
                .collect::<PyResult<_>>()?;
            go(py, &b, &q, k, metric, exclude_self, n_threads)
        }
    }
}
