//! Arrow input: any object with `__arrow_c_stream__` (pyarrow, polars, DuckDB, ...),
//! decoded by the core's reader ([`VectorColumn`]) without Python objects per value:
//! block by block for Python ([`ArrowVectorReader`]), or as a re-readable source of the
//! core's jobs ([`PyBatches`], one new stream per pass).

use crate::arrays::vec2;
use crate::errors::{to_py, value_error};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{Array, ArrayRef};
use arrow_schema::SchemaRef;
use embedcluster::io::{BatchSource, ForeignStream, VectorColumn, ARROW_ORIGIN};
use embedcluster::Error;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods};
use std::path::Path;

/// A new stream from `obj.__arrow_c_stream__()`, its batches validated in full as they are
/// imported (`embedcluster::io::ForeignStream`: a producer's inconsistent offsets or
/// lengths are an error, not a panic).
pub fn open_stream(obj: &Bound<'_, PyAny>) -> PyResult<ForeignStream> {
    if !obj.hasattr("__arrow_c_stream__")? {
        return Err(value_error(
            "object has no __arrow_c_stream__ (not an Arrow stream)",
        ));
    }
    let capsule = obj.call_method0("__arrow_c_stream__")?;
    let capsule = capsule
        .cast::<PyCapsule>()
        .map_err(|_| value_error("__arrow_c_stream__ did not return a capsule"))?;
    let ptr = capsule.pointer_checked(Some(c"arrow_array_stream"))?;
    // SAFETY: the capsule holds an FFI_ArrowArrayStream (checked by its name just above,
    // and `pointer_checked` refuses a null pointer); from_raw moves the stream out and
    // leaves a released one for the capsule's destructor.
    unsafe {
        ForeignStream::from_raw(
            ptr.as_ptr() as *mut FFI_ArrowArrayStream,
            Path::new(ARROW_ORIGIN),
        )
    }
    .map_err(to_py)
}

/// The vector column of `schema`: `column`, or the only list column of floats, or the one
/// named `embedding`.
pub fn pick_column(schema: &SchemaRef, column: Option<&str>) -> PyResult<(usize, VectorColumn)> {
    let src = Path::new(ARROW_ORIGIN);
    let index = match column {
        Some(c) => schema.index_of(c).map_err(|_| {
            to_py(Error::Column {
                path: src.into(),
                column: c.to_string(),
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
                    return Err(value_error(format!(
                        "{ARROW_ORIGIN}: cannot tell which column holds the vectors ({} list columns of floats); pass column=",
                        lists.len()
                    )))
                }
            }
        }
    };
    let name = schema.field(index).name().clone();
    let column = VectorColumn::new(schema.field(index).data_type(), src, &name).map_err(to_py)?;
    Ok((index, column))
}

/// A Python Arrow object that can be streamed again (a pyarrow Table, a polars DataFrame):
/// each pass of a core job calls `__arrow_c_stream__` (with the GIL) and reads the batches
/// (without it).
pub struct PyBatches {
    pub obj: Py<PyAny>,
    pub index: usize,
}

impl BatchSource for PyBatches {
    fn open_pass(
        &self,
    ) -> Result<Box<dyn Iterator<Item = Result<ArrayRef, Error>> + Send + '_>, Error> {
        let reader =
            Python::attach(|py| open_stream(self.obj.bind(py))).map_err(|e| Error::Format {
                path: ARROW_ORIGIN.into(),
                message: e.to_string(),
            })?;
        let index = self.index;
        Ok(Box::new(reader.filter_map(move |b| match b {
            Ok(b) if b.num_rows() == 0 => None,
            Ok(b) if index < b.num_columns() => Some(Ok(b.column(index).clone())),
            Ok(_) => Some(Err(Error::format(
                ARROW_ORIGIN,
                "a batch lacks the vector column",
            ))),
            Err(e) => Some(Err(e)),
        })))
    }
}

/// The vector column of `obj` with its dimension learned from the first row (one batch is
/// read), for a job over [`PyBatches`].
pub fn batches_of(
    obj: &Bound<'_, PyAny>,
    column: Option<&str>,
) -> PyResult<(PyBatches, VectorColumn)> {
    let mut reader = open_stream(obj)?;
    let (index, mut col) = pick_column(&reader.schema(), column)?;
    if col.n_features.is_none() {
        let first = loop {
            match reader.next() {
                None => {
                    return Err(to_py(Error::Empty {
                        path: ARROW_ORIGIN.into(),
                    }))
                }
                Some(b) => {
                    let b = b.map_err(to_py)?;
                    if b.num_rows() > 0 {
                        break b.column(index).clone();
                    }
                }
            }
        };
        col.learn_dimension(&first).map_err(to_py)?;
    }
    Ok((
        PyBatches {
            obj: obj.clone().unbind(),
            index,
        },
        col,
    ))
}

/// Streams the float-vector column of any object with `__arrow_c_stream__` (pyarrow
/// Table/RecordBatchReader, polars DataFrame, DuckDB results, ...) as NumPy blocks, one per
/// Arrow batch, without Python objects per value. `column=None` picks the only list column
/// of floats, or the one named `embedding`.
#[pyclass(unsendable, module = "embedcluster._core")]
pub struct ArrowVectorReader {
    reader: ForeignStream,
    index: usize,
    column: VectorColumn,
    rows: u64,
}

#[pymethods]
impl ArrowVectorReader {
    #[new]
    #[pyo3(signature = (obj, column=None))]
    fn new(obj: &Bound<'_, PyAny>, column: Option<String>) -> PyResult<Self> {
        let reader = open_stream(obj)?;
        let (index, column) = pick_column(&reader.schema(), column.as_deref())?;
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
                Some(b) => b.map_err(to_py)?,
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
