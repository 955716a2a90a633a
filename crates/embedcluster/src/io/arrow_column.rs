//! Decoding an Arrow column of float vectors (`list`, `large_list`, `fixed_size_list` of
//! float32/float64) into row-major blocks, with every check the readers promise (null rows,
//! null elements, ragged and zero-length rows, NaN and infinity), reporting the row and
//! column. Shared by the Parquet reader and Arrow C-stream readers (pyarrow, polars, ...).

use super::check_finite;
use crate::dtype::{DType, Real};
use crate::error::{Error, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use std::path::{Path, PathBuf};

/// A list type as users write it, without the item field's name (`list<Float32>`,
/// `fixed_size_list<Float32>[384]`), for messages and for comparing the parts of a dataset.
pub(crate) fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::List(f) => format!("list<{}>", f.data_type()),
        DataType::LargeList(f) => format!("large_list<{}>", f.data_type()),
        DataType::FixedSizeList(f, n) => format!("fixed_size_list<{}>[{n}]", f.data_type()),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    List,
    LargeList,
    FixedSize,
}

/// `(start, len)` of row `i` in the child values array.
type RowSpans<'a> = Box<dyn Fn(usize) -> (usize, usize) + 'a>;

/// The layout of an embedding column, and where it comes from (for error messages).
#[derive(Debug, Clone)]
pub struct VectorColumn {
    kind: ListKind,
    /// Element type of the vectors.
    pub dtype: DType,
    /// Vector length: fixed by the type for `fixed_size_list`, else learned from the first row.
    pub n_features: Option<usize>,
    data_type: DataType,
    path: PathBuf,
    column: String,
}

impl VectorColumn {
    /// Checks that `data_type` is a list of float32/float64. `path` and `column` name the
    /// source in errors (a file path, or e.g. `<arrow stream>`).
    pub fn new(data_type: &DataType, path: &Path, column: &str) -> Result<Self> {
        let shown = type_name(data_type);
        let not_floats = || {
            Error::column(
                path,
                column,
                format!("type {shown} is not a list of float32/float64"),
            )
        };
        let (kind, item, fixed) = match data_type {
            DataType::List(f) => (ListKind::List, f.data_type(), None),
            DataType::LargeList(f) => (ListKind::LargeList, f.data_type(), None),
            DataType::FixedSizeList(f, n) => {
                (ListKind::FixedSize, f.data_type(), Some(*n as usize))
            }
            _ => return Err(not_floats()),
        };
        let dtype = match item {
            DataType::Float32 => DType::Float32,
            DataType::Float64 => DType::Float64,
            _ => return Err(not_floats()),
        };
        if fixed == Some(0) {
            return Err(Error::InvalidRow {
                path: path.to_path_buf(),
                row: 0,
                column: column.to_string(),
                message: "zero-length vector".into(),
            });
        }
        Ok(VectorColumn {
            kind,
            dtype,
            n_features: fixed,
            data_type: data_type.clone(),
            path: path.to_path_buf(),
            column: column.to_string(),
        })
    }

    /// The column's Arrow type.
    pub fn data_type(&self) -> DataType {
        self.data_type.clone()
    }

    /// The column's name.
    pub fn name(&self) -> &str {
        &self.column
    }

    pub(crate) fn null(&self, row: u64, what: &str) -> Error {
        Error::Null {
            path: self.path.clone(),
            row,
            column: self.column.clone(),
            what: what.to_string(),
        }
    }

    /// Learns the dimension from row 0 of `array` (the first row of the source) if the type
    /// does not fix it.
    pub fn learn_dimension(&mut self, array: &ArrayRef) -> Result<usize> {
        if let Some(d) = self.n_features {
            return Ok(d);
        }
        if array.is_empty() {
            return Err(Error::Empty {
                path: self.path.clone(),
            });
        }
        if array.is_null(0) {
            return Err(self.null(0, "the vector"));
        }
        let d = match self.kind {
            ListKind::List => array.as_list::<i32>().value_length(0) as usize,
            _ => array.as_list::<i64>().value_length(0) as usize,
        };
        if d == 0 {
            return Err(Error::InvalidRow {
                path: self.path.clone(),
                row: 0,
                column: self.column.clone(),
                message: "zero-length vector".into(),
            });
        }
        self.n_features = Some(d);
        Ok(d)
    }

    /// Appends rows `offset..offset + take` of `array` to `buf` (row-major, converted to
    /// `T`), checking each. `first_row` is the source row of `array[offset]`.
    pub fn append_rows<T: Real>(
        &self,
        array: &ArrayRef,
        offset: usize,
        take: usize,
        first_row: u64,
        buf: &mut Vec<T>,
    ) -> Result<()> {
        self.append_rows_skipping(array, offset, take, first_row, buf, None)
    }

    /// [`append_rows`](Self::append_rows); with `skip`, rows with a null vector, a null
    /// element or a non-finite value are left out and their source rows pushed to `skip`
    /// (ragged and zero-length rows are still errors).
    pub fn append_rows_skipping<T: Real>(
        &self,
        array: &ArrayRef,
        offset: usize,
        take: usize,
        first_row: u64,
        buf: &mut Vec<T>,
        mut skip: Option<&mut Vec<u64>>,
    ) -> Result<()> {
        let Some(d) = self.n_features else {
            return Err(Error::column(
                &self.path,
                &self.column,
                "the vector length is not known before the first row",
            ));
        };
        let (values, spans): (&ArrayRef, RowSpans<'_>) = match self.kind {
            ListKind::FixedSize => {
                let a = array.as_fixed_size_list();
                let n = a.value_length() as usize;
                (a.values(), Box::new(move |i| (i * n, n)))
            }
            ListKind::List => {
                let a = array.as_list::<i32>();
                let offs = a.value_offsets();
                (
                    a.values(),
                    Box::new(move |i| (offs[i] as usize, (offs[i + 1] - offs[i]) as usize)),
                )
            }
            ListKind::LargeList => {
                let a = array.as_list::<i64>();
                let offs = a.value_offsets();
                (
                    a.values(),
                    Box::new(move |i| (offs[i] as usize, (offs[i + 1] - offs[i]) as usize)),
                )
            }
        };
        let has_null_rows = array.null_count() > 0;
        let has_null_values = values.null_count() > 0;
        buf.reserve(take * d);
        for i in offset..offset + take {
            let row = first_row + (i - offset) as u64;
            if has_null_rows && array.is_null(i) {
                if let Some(s) = skip.as_deref_mut() {
                    s.push(row);
                    continue;
                }
                return Err(self.null(row, "the vector"));
            }
            let (start, len) = spans(i);
            if len != d {
                if len == 0 {
                    return Err(Error::InvalidRow {
                        path: self.path.clone(),
                        row,
                        column: self.column.clone(),
                        message: "zero-length vector".into(),
                    });
                }
                return Err(Error::Ragged {
                    path: self.path.clone(),
                    row,
                    column: self.column.clone(),
                    expected: d,
                    found: len,
                });
            }
            if has_null_values {
                if let Some(j) = (start..start + len).find(|&j| values.is_null(j)) {
                    if let Some(s) = skip.as_deref_mut() {
                        s.push(row);
                        continue;
                    }
                    return Err(self.null(row, &format!("element {}", j - start)));
                }
            }
            let before = buf.len();
            match self.dtype {
                DType::Float32 => {
                    let v = &values.as_primitive::<Float32Type>().values()[start..start + len];
                    buf.extend(v.iter().map(|&x| T::from_f32(x)));
                }
                DType::Float64 => {
                    let v = &values.as_primitive::<Float64Type>().values()[start..start + len];
                    buf.extend(v.iter().map(|&x| T::from_f64(x)));
                }
            }
            if let Err(e) = check_finite(&self.path, &self.column, row, &buf[before..]) {
                match skip.as_deref_mut() {
                    Some(s) => {
                        buf.truncate(before);
                        s.push(row);
                    }
                    None => return Err(e),
                }
            }
        }
        Ok(())
    }
}
