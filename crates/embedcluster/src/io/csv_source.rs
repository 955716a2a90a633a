//! CSV files of numeric columns (the classic "load a CSV, fit k-means" input), streamed.
//!
//! The first line is a header when any of its fields is not a number. Features are every
//! column whose first data row parses as a number (others, such as a string label, are
//! skipped), or the columns named by a comma-separated `column` argument. Values are read
//! as float64. Opening scans the file once to count the rows; each pass re-reads it.

use crate::dtype::Real;
use crate::error::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub(crate) struct CsvInfo {
    path: PathBuf,
    has_header: bool,
    /// Field indices of the feature columns, and their names.
    fields: Vec<usize>,
    names: Vec<String>,
    pub(crate) n_samples: usize,
}

fn reader(path: &Path) -> Result<csv::Reader<File>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_reader(f))
}

fn csv_err(path: &Path, e: csv::Error) -> Error {
    match e.kind() {
        csv::ErrorKind::Io(_) => match e.into_kind() {
            csv::ErrorKind::Io(io) => Error::io(path, io),
            _ => unreachable!(),
        },
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => Error::Format {
            path: path.to_path_buf(),
            message: format!(
                "line {}: {len} fields, expected {expected_len}",
                pos.as_ref().map(|p| p.line()).unwrap_or(0)
            ),
        },
        _ => Error::format(path, e),
    }
}

impl CsvInfo {
    pub(crate) fn open(path: &Path, column: &str) -> Result<Self> {
        let mut r = reader(path)?;
        let mut records = r.records();
        let first = match records.next() {
            None => {
                return Err(Error::Empty {
                    path: path.to_path_buf(),
                })
            }
            Some(rec) => rec.map_err(|e| csv_err(path, e))?,
        };
        let numeric = |s: &str| s.parse::<f64>().is_ok();
        let has_header = first.iter().any(|f| !numeric(f));
        let header: Vec<String> = if has_header {
            first.iter().map(|s| s.to_string()).collect()
        } else {
            (0..first.len()).map(|i| format!("column_{i}")).collect()
        };
        let data0 = if has_header {
            match records.next() {
                None => {
                    return Err(Error::Empty {
                        path: path.to_path_buf(),
                    })
                }
                Some(rec) => rec.map_err(|e| csv_err(path, e))?,
            }
        } else {
            first
        };
        let fields: Vec<usize> = if column == "embedding" || column.is_empty() {
            (0..data0.len()).filter(|&i| numeric(&data0[i])).collect()
        } else {
            column
                .split(',')
                .map(|name| {
                    header.iter().position(|h| h == name.trim()).ok_or_else(|| {
                        Error::column(
                            path,
                            name.trim(),
                            format!("no such column (columns: {})", header.join(", ")),
                        )
                    })
                })
                .collect::<Result<_>>()?
        };
        if fields.is_empty() {
            return Err(Error::column(path, column, "no numeric columns"));
        }
        let mut n = 1usize;
        for rec in records {
            rec.map_err(|e| csv_err(path, e))?;
            n += 1;
        }
        Ok(CsvInfo {
            path: path.to_path_buf(),
            has_header,
            names: fields.iter().map(|&i| header[i].clone()).collect(),
            fields,
            n_samples: n,
        })
    }

    pub(crate) fn n_features(&self) -> usize {
        self.fields.len()
    }

    pub(crate) fn blocks(&self) -> Result<CsvBlocks<'_>> {
        let mut r = reader(&self.path)?;
        let mut rec = csv::StringRecord::new();
        if self.has_header {
            r.read_record(&mut rec)
                .map_err(|e| csv_err(&self.path, e))?;
        }
        Ok(CsvBlocks {
            info: self,
            reader: r,
            rec,
        })
    }
}

pub(crate) struct CsvBlocks<'a> {
    info: &'a CsvInfo,
    reader: csv::Reader<File>,
    rec: csv::StringRecord,
}

impl CsvBlocks<'_> {
    /// Appends up to `max_rows` rows to `buf`; `start_row` is the index of the first.
    pub(crate) fn fill<T: Real>(
        &mut self,
        buf: &mut Vec<T>,
        max_rows: usize,
        start_row: u64,
        mut skip: Option<&mut Vec<u64>>,
    ) -> Result<usize> {
        let info = self.info;
        let mut rows = 0;
        while rows < max_rows {
            let more = self
                .reader
                .read_record(&mut self.rec)
                .map_err(|e| csv_err(&info.path, e))?;
            if !more {
                break;
            }
            let row = start_row + rows as u64;
            let at = buf.len();
            for (j, &f) in info.fields.iter().enumerate() {
                let s = self.rec.get(f).unwrap_or("");
                let v: f64 = s.parse().map_err(|_| Error::InvalidRow {
                    path: info.path.clone(),
                    row,
                    column: info.names[j].clone(),
                    message: format!("{s:?} is not a number"),
                })?;
                buf.push(T::from_f64(v));
            }
            if let Err(e) = super::check_finite(&info.path, "csv", row, &buf[at..]) {
                if let Some(s) = skip.as_deref_mut() {
                    buf.truncate(at);
                    s.push(row);
                    rows += 1;
                    continue;
                }
                if let Error::NonFinite { index, value, .. } = e {
                    return Err(Error::InvalidRow {
                        path: info.path.clone(),
                        row,
                        column: info.names[index].clone(),
                        message: format!("value is {value} (must be finite)"),
                    });
                }
                return Err(e);
            }
            rows += 1;
        }
        Ok(rows)
    }
}
