//! Rows a front end holds in memory, read like a file: a row-major matrix (a NumPy array)
//! or Arrow data that can be streamed more than once (a pyarrow Table, a polars DataFrame).
//! They make an [`EmbeddingSource`](super::EmbeddingSource), so the jobs run the same
//! passes on them as on a Parquet or `.npy` file: each pass copies one block at a time
//! (`batch_rows x d`), checking every value, and the caller's data is never modified.

use super::arrow_column::VectorColumn;
use super::check_finite;
use crate::dtype::Real;
use crate::error::{Error, Result};
use arrow_array::{Array, ArrayRef};
use std::path::Path;

/// Where in-memory rows are named in errors.
pub const ARRAY_ORIGIN: &str = "<array>";
/// Where Arrow rows are named in errors.
pub const ARROW_ORIGIN: &str = "<arrow stream>";

/// A borrowed row-major matrix.
#[derive(Debug, Clone, Copy)]
pub enum MatrixRef<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

impl MatrixRef<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            MatrixRef::F32(x) => x.len(),
            MatrixRef::F64(x) => x.len(),
        }
    }
}

/// Arrow data that a front end can stream again for each pass.
pub trait BatchSource: Send + Sync {
    /// A new pass over the vector column: one Arrow array per record batch, in row order.
    ///
    /// # Errors
    /// Whatever opening the stream raises.
    fn open_pass(&self) -> Result<Box<dyn Iterator<Item = Result<ArrayRef>> + Send + '_>>;
}

/// One pass over a [`MatrixRef`].
pub(crate) fn fill_matrix<T: Real>(
    m: MatrixRef<'_>,
    d: usize,
    next: &mut usize,
    buf: &mut Vec<T>,
    max_rows: usize,
    mut skip: Option<&mut Vec<u64>>,
) -> Result<usize> {
    let n = m.len() / d;
    let rows = max_rows.min(n - *next);
    buf.reserve(rows * d);
    for r in *next..*next + rows {
        let before = buf.len();
        match m {
            MatrixRef::F32(x) => buf.extend(x[r * d..(r + 1) * d].iter().map(|&v| T::from_f32(v))),
            MatrixRef::F64(x) => buf.extend(x[r * d..(r + 1) * d].iter().map(|&v| T::from_f64(v))),
        }
        if let Err(e) = check_finite(Path::new(ARRAY_ORIGIN), "X", r as u64, &buf[before..]) {
            match skip.as_deref_mut() {
                Some(s) => {
                    buf.truncate(before);
                    s.push(r as u64);
                }
                None => return Err(e),
            }
        }
    }
    *next += rows;
    Ok(rows)
}

/// One pass over a [`BatchSource`].
pub(crate) struct BatchPass<'a> {
    pub(crate) arrays: Box<dyn Iterator<Item = Result<ArrayRef>> + Send + 'a>,
    pub(crate) pending: Option<(ArrayRef, usize)>,
    pub(crate) column: &'a VectorColumn,
    pub(crate) n_samples: usize,
}

impl BatchPass<'_> {
    pub(crate) fn fill<T: Real>(
        &mut self,
        buf: &mut Vec<T>,
        max_rows: usize,
        start_row: u64,
        mut skip: Option<&mut Vec<u64>>,
    ) -> Result<usize> {
        let mut done = 0;
        while done < max_rows {
            let (array, offset) = match self.pending.take() {
                Some(p) => p,
                None => match self.arrays.next() {
                    None => break,
                    Some(a) => (a?, 0),
                },
            };
            if array.data_type() != &self.column.data_type() {
                return Err(Error::column(
                    ARROW_ORIGIN,
                    self.column.name(),
                    format!(
                        "a batch has type {}, the first had {}",
                        array.data_type(),
                        self.column.data_type()
                    ),
                ));
            }
            let take = (array.len() - offset).min(max_rows - done);
            self.column.append_rows_skipping(
                &array,
                offset,
                take,
                start_row + done as u64,
                buf,
                skip.as_deref_mut(),
            )?;
            done += take;
            if offset + take < array.len() {
                self.pending = Some((array, offset + take));
            }
        }
        if done == 0 && start_row < self.n_samples as u64 {
            return Err(Error::format(
                ARROW_ORIGIN,
                format!(
                    "stream ended after {start_row} rows but it was said to hold {}",
                    self.n_samples
                ),
            ));
        }
        Ok(done)
    }
}
