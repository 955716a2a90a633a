//! `.npy` files (NumPy format versions 1.0, 2.0, 3.0): 2-D float32/float64, C order,
//! little-endian, memory-mapped and copied out in row blocks.

use super::check_finite;
use crate::dtype::{DType, Real};
use crate::error::{Error, Result};
use memmap2::Mmap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8] = b"\x93NUMPY";
/// Largest header we accept (NumPy itself refuses more than 10,000 bytes by default).
const MAX_HEADER: usize = 1 << 20;

/// The parsed header of a `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    pub dtype: DType,
    /// (n_samples, n_features)
    pub shape: (usize, usize),
    /// Byte offset of the first element.
    pub data_offset: usize,
}

impl NpyHeader {
    /// Parses the header at the start of `bytes`. Only 2-D, C-order, little-endian
    /// float32/float64 arrays are accepted.
    pub fn parse(bytes: &[u8]) -> std::result::Result<NpyHeader, String> {
        if bytes.len() < 10 || &bytes[..6] != MAGIC {
            return Err("not a .npy file (bad magic)".into());
        }
        let major = bytes[6];
        let (len, start): (usize, usize) = match major {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            2 | 3 => {
                if bytes.len() < 12 {
                    return Err("truncated header".into());
                }
                (
                    u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                    12,
                )
            }
            v => return Err(format!("unsupported .npy format version {v}")),
        };
        if len > MAX_HEADER {
            return Err(format!("header length {len} is too large"));
        }
        let end = start
            .checked_add(len)
            .filter(|&e| e <= bytes.len())
            .ok_or("truncated header")?;
        let text = std::str::from_utf8(&bytes[start..end]).map_err(|_| "header is not text")?;
        let descr = dict_value(text, "descr").ok_or("header has no 'descr'")?;
        let dtype = match descr.trim_matches(|c| c == '\'' || c == '"') {
            "<f4" | "=f4" | "f4" => DType::Float32,
            "<f8" | "=f8" | "f8" => DType::Float64,
            other => {
                return Err(format!(
                    "dtype {other} is not supported (expected little-endian float32 '<f4' or float64 '<f8')"
                ))
            }
        };
        let fortran = dict_value(text, "fortran_order").ok_or("header has no 'fortran_order'")?;
        if fortran.trim() != "False" {
            return Err("Fortran-order arrays are not supported (save with C order)".into());
        }
        let shape = dict_value(text, "shape").ok_or("header has no 'shape'")?;
        let dims: Vec<&str> = shape
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if dims.len() != 2 {
            return Err(format!("shape {shape} is not 2-D (n_samples, n_features)"));
        }
        let parse = |s: &str| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| format!("bad dimension {s:?} in shape"))
        };
        let shape = (parse(dims[0])?, parse(dims[1])?);
        shape
            .0
            .checked_mul(shape.1)
            .and_then(|n| n.checked_mul(dtype.size()))
            .and_then(|n| n.checked_add(end))
            .ok_or_else(|| format!("shape {shape:?} is absurdly large"))?;
        Ok(NpyHeader {
            dtype,
            shape,
            data_offset: end,
        })
    }
}

/// Value text of `key` in a Python dict literal (`{'descr': '<f4', ...}`).
fn dict_value<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    let pat_single = format!("'{key}'");
    let pat_double = format!("\"{key}\"");
    let at = text.find(&pat_single).or_else(|| text.find(&pat_double))?;
    let rest = &text[at + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    if rest.starts_with('(') {
        let close = rest.find(')')?;
        Some(&rest[..=close])
    } else {
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(rest[..end].trim())
    }
}

/// Writes a version 1.0 header for a C-order 2-D array; the data must follow, little-endian.
pub fn write_npy_header(
    w: &mut impl Write,
    dtype: DType,
    n_samples: usize,
    n_features: usize,
) -> std::io::Result<()> {
    let descr = match dtype {
        DType::Float32 => "<f4",
        DType::Float64 => "<f8",
    };
    let mut dict = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({n_samples}, {n_features}), }}"
    );
    // Pad with spaces so that magic + version + length + dict + '\n' is a multiple of 64.
    let total = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - total % 64) % 64));
    dict.push('\n');
    w.write_all(MAGIC)?;
    w.write_all(&[1, 0])?;
    w.write_all(&(dict.len() as u16).to_le_bytes())?;
    w.write_all(dict.as_bytes())
}

#[derive(Debug)]
pub(crate) struct NpyFile {
    path: PathBuf,
    mmap: Mmap,
    pub(crate) header: NpyHeader,
}

impl NpyFile {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the mapping is read-only; if another process truncates the file while we
        // read it we may fault, which is the documented caveat of memory-mapped input.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let header = NpyHeader::parse(&mmap).map_err(|m| Error::format(path, m))?;
        let need = header.data_offset + header.shape.0 * header.shape.1 * header.dtype.size();
        if mmap.len() < need {
            return Err(Error::format(
                path,
                format!(
                    "truncated: header says {} x {} {} ({} bytes) but the file has {} bytes",
                    header.shape.0,
                    header.shape.1,
                    header.dtype.name(),
                    need,
                    mmap.len()
                ),
            ));
        }
        if header.shape.0 == 0 {
            return Err(Error::Empty {
                path: path.to_path_buf(),
            });
        }
        if header.shape.1 == 0 {
            return Err(Error::InvalidRow {
                path: path.to_path_buf(),
                row: 0,
                column: "npy".into(),
                message: "zero-length vector".into(),
            });
        }
        #[cfg(unix)]
        let _ = mmap.advise(memmap2::Advice::Sequential);
        Ok(NpyFile {
            path: path.to_path_buf(),
            mmap,
            header,
        })
    }

    /// Appends rows `[first, first + rows)` to `buf`, converted to `T` and checked; with
    /// `skip`, rows holding NaN or infinity are left out and their indices collected.
    pub(crate) fn read_rows<T: Real>(
        &self,
        first: usize,
        rows: usize,
        buf: &mut Vec<T>,
        mut skip: Option<&mut Vec<u64>>,
    ) -> Result<()> {
        let d = self.header.shape.1;
        let size = self.header.dtype.size();
        let start = self.header.data_offset + first * d * size;
        let bytes = &self.mmap[start..start + rows * d * size];
        buf.reserve(rows * d);
        for (r, row) in bytes.chunks_exact(d * size).enumerate() {
            let before = buf.len();
            match self.header.dtype {
                DType::Float32 => buf.extend(
                    row.chunks_exact(4)
                        .map(|b| T::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
                ),
                DType::Float64 => buf.extend(
                    row.chunks_exact(8)
                        .map(|b| T::from_f64(f64::from_le_bytes(b.try_into().expect("8 bytes")))),
                ),
            }
            if let Err(e) = check_finite(&self.path, "npy", (first + r) as u64, &buf[before..]) {
                match skip.as_deref_mut() {
                    Some(s) => {
                        buf.truncate(before);
                        s.push((first + r) as u64);
                    }
                    None => return Err(e),
                }
            }
        }
        self.release(start, rows * d * size);
        Ok(())
    }

    /// Drops the pages of `[start, start + len)` that were read from this process's
    /// mapping (`MADV_DONTNEED` on a read-only file mapping: the pages stay in the kernel's
    /// page cache, but no longer count in this process's RSS), so that a pass over a large
    /// `.npy` file holds one block, not the whole file, in its resident set. A later pass
    /// faults them back in from the cache.
    fn release(&self, start: usize, len: usize) {
        #[cfg(unix)]
        {
            const PAGE: usize = 4096;
            let lo = start.div_ceil(PAGE) * PAGE;
            let hi = (start + len) / PAGE * PAGE;
            if hi > lo {
                // SAFETY: the mapping is private and read-only; DONTNEED only drops our
                // view of file-backed pages, which refault with the same contents.
                let _ = unsafe {
                    self.mmap.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        lo,
                        hi - lo,
                    )
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip() {
        let mut v = Vec::new();
        write_npy_header(&mut v, DType::Float32, 12, 7).unwrap();
        assert_eq!(v.len() % 64, 0);
        let h = NpyHeader::parse(&v).unwrap();
        assert_eq!(h.shape, (12, 7));
        assert_eq!(h.dtype, DType::Float32);
        assert_eq!(h.data_offset, v.len());
    }

    #[test]
    fn header_rejects_bad_input() {
        let mk = |dict: &str| {
            let mut v = MAGIC.to_vec();
            v.extend([1, 0]);
            v.extend((dict.len() as u16).to_le_bytes());
            v.extend(dict.as_bytes());
            v
        };
        let ok = mk("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }");
        assert_eq!(NpyHeader::parse(&ok).unwrap().shape, (3, 2));
        for (dict, want) in [
            (
                "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 2), }",
                "dtype",
            ),
            (
                "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 2), }",
                "dtype",
            ),
            (
                "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }",
                "Fortran",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                "2-D",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 99), }",
                "absurd",
            ),
            ("{'descr': '<f4', 'fortran_order': False}", "shape"),
        ] {
            let err = NpyHeader::parse(&mk(dict)).unwrap_err();
            assert!(err.contains(want), "{dict}: {err}");
        }
        assert!(NpyHeader::parse(b"PK\x03\x04 not npy")
            .unwrap_err()
            .contains("magic"));
        let mut trunc = ok.clone();
        trunc.truncate(20);
        assert!(NpyHeader::parse(&trunc).unwrap_err().contains("truncated"));
    }
}
