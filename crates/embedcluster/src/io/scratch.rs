//! The spill file: a matrix too large for the memory budget, kept in a memory-mapped
//! scratch file instead of the heap (`run --spill DIR`, or chosen by the memory plan).
//!
//! The file is created in the spill directory with its whole size reserved up front
//! (`posix_fallocate`: a full disk is an error naming the directory now, not a `SIGBUS`
//! later), mapped shared, and unlinked at once, so that no exit (success, error, Ctrl-C,
//! even `kill -9`) leaves it behind; its space returns to the file system when the mapping
//! is dropped. Passes over it release the pages they have read ([`crate::memory::PageReleaser`]),
//! so the process keeps only a few MiB of it resident per thread; the kernel reads it back
//! from the page cache or the disk. Values are the same as in memory, bit for bit.

use crate::dtype::Real;
use crate::error::{Error, Result};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A row-major matrix of `T` in an unlinked, memory-mapped scratch file.
pub struct ScratchMatrix<T> {
    map: memmap2::MmapMut,
    len: usize,
    path: PathBuf,
    _t: PhantomData<T>,
}

impl<T> std::fmt::Debug for ScratchMatrix<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScratchMatrix")
            .field("path", &self.path)
            .field("len", &self.len)
            .finish()
    }
}

impl<T: Real> ScratchMatrix<T> {
    /// A zeroed matrix of `len` values in a new file in `dir`.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file when `dir` is missing or not writable, or when it has
    /// not `len * size_of::<T>()` bytes free.
    pub fn create(dir: &Path, len: usize) -> Result<Self> {
        let bytes = (len.max(1) * std::mem::size_of::<T>()) as u64;
        let path = dir.join(format!(
            "embedcluster-spill-{}-{}.bin",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let cleanup = |e: std::io::Error| {
            let _ = std::fs::remove_file(&path);
            Error::io(&path, e)
        };
        reserve(&file, bytes).map_err(|e| {
            cleanup(std::io::Error::new(
                e.kind(),
                format!(
                    "cannot reserve {} for the spill file: {e}",
                    crate::units::format_bytes(bytes)
                ),
            ))
        })?;
        // SAFETY: the file is ours alone (created with create_new, unlinked below) and is
        // only accessed through this mapping.
        let map = unsafe { memmap2::MmapMut::map_mut(&file) }.map_err(cleanup)?;
        std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        crate::memory::register_mapped(map.as_ptr() as usize, map.len());
        Ok(ScratchMatrix {
            map,
            len,
            path,
            _t: PhantomData,
        })
    }

    /// Where the file was created (it is unlinked at once: see the module docs).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the file in bytes.
    pub fn bytes(&self) -> u64 {
        self.map.len() as u64
    }

    /// Keeps the first `len` values (the file keeps its size).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// The values.
    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the mapping is page-aligned (so aligned for T), at least `len` values
        // long, and zero-initialized by the file system; T is f32 or f64, valid for any bits.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr() as *const T, self.len) }
    }

    /// The values, writable.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as in `as_slice`; `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr() as *mut T, self.len) }
    }
}

impl<T> Drop for ScratchMatrix<T> {
    fn drop(&mut self) {
        crate::memory::unregister_mapped(self.map.as_ptr() as usize);
    }
}

/// Reserves `bytes` of disk for `file` (so that writes through the mapping cannot fail).
fn reserve(file: &std::fs::File, bytes: u64) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: a valid open descriptor; posix_fallocate returns an errno value.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, bytes as libc::off_t) };
        if rc == 0 {
            return Ok(());
        }
        if rc != libc::EOPNOTSUPP && rc != libc::EINVAL {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
    }
    file.set_len(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_matrix_keeps_its_values_through_page_releases_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let n = 3 << 20; // 12 MiB of f32
        let mut m = ScratchMatrix::<f32>::create(dir.path(), n).unwrap();
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
        for (i, v) in m.as_mut_slice().iter_mut().enumerate() {
            *v = i as f32;
        }
        crate::memory::release_mapped(m.as_slice());
        let mut r = crate::memory::PageReleaser::new(m.as_slice());
        let mut sum = 0.0f64;
        for (i, &v) in m.as_slice().iter().enumerate() {
            assert_eq!(v, i as f32);
            sum += v as f64;
            if i % 65536 == 0 {
                r.consumed::<f32>(i);
            }
        }
        assert!(sum > 0.0);
        assert_eq!(m.bytes(), (n * 4) as u64);
        let e = ScratchMatrix::<f32>::create(&dir.path().join("missing"), 10).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    /// Resident bytes of the mapping that starts at `addr` (its `/proc/self/smaps` entry):
    /// unlike the process's RSS, other tests' threads do not move it.
    fn mapping_rss(addr: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut lines = smaps.lines();
        while let Some(l) = lines.next() {
            let start = l
                .split('-')
                .next()
                .and_then(|h| usize::from_str_radix(h, 16).ok());
            if start == Some(addr) {
                for l in lines.by_ref() {
                    if let Some(v) = l.strip_prefix("Rss:") {
                        let kb: u64 = v.trim().trim_end_matches("kB").trim().parse().unwrap();
                        return kb * 1024;
                    }
                }
            }
        }
        panic!("no mapping at {addr:x}")
    }

    #[test]
    fn released_pages_leave_the_resident_set() {
        let dir = tempfile::tempdir().unwrap();
        let n = 64 << 20; // 256 MiB of f32
        let mut m = ScratchMatrix::<f32>::create(dir.path(), n).unwrap();
        let addr = m.as_slice().as_ptr() as usize;
        m.as_mut_slice().iter_mut().for_each(|v| *v = 1.0);
        let written = mapping_rss(addr);
        crate::memory::release_mapped(m.as_slice());
        let released = mapping_rss(addr);
        let mut r = crate::memory::PageReleaser::new(m.as_slice());
        let mut sum = 0.0f64;
        let mut most = 0;
        for (i, &v) in m.as_slice().iter().enumerate() {
            sum += v as f64;
            if i % 4096 == 4095 {
                r.consumed::<f32>(i + 1);
                if i % (1 << 22) == 4095 {
                    most = most.max(mapping_rss(addr));
                }
            }
        }
        assert_eq!(sum, n as f64);
        assert!(written > 200 << 20, "{written}");
        assert_eq!(released, 0);
        // at most the release step and the kernel's fault-around window
        assert!(
            most <= (crate::memory::RELEASE_BYTES + (1 << 20)) as u64,
            "{most}"
        );
    }

    #[test]
    fn a_releaser_never_touches_ordinary_memory() {
        let v = vec![1.5f64; 1 << 20];
        crate::memory::release_mapped(&v);
        assert!(v.iter().all(|&x| x == 1.5));
    }
}
