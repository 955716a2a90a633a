//! What a computation is given, explicitly, by its caller: the threads it may use, a cancel
//! token it polls, and a progress sink it reports to (as faer passes `Par` to its kernels).
//!
//! Nothing here is global state read by a kernel: a job ([`crate::jobs`]) takes a
//! [`Runtime`] argument and runs on the thread pool it asks for; a fit takes a [`Cancel`]
//! token. The one process-wide setting is the choice of SIMD kernels ([`set_kernels`]),
//! which a front end makes once (the CLI reads it from its environment); kernels never
//! read environment variables.
//!
//! # Example
//! ```
//! use embedcluster::runtime::{Cancel, NoProgress, Runtime};
//! use std::sync::atomic::{AtomicBool, Ordering};
//!
//! let flag = AtomicBool::new(false);
//! let rt = Runtime { threads: Some(1), cancel: Cancel::new(&flag), progress: &NoProgress };
//! assert!(rt.cancel.check().is_ok());
//! flag.store(true, Ordering::Relaxed);
//! assert!(matches!(rt.cancel.check(), Err(embedcluster::Error::Interrupted)));
//! let sum = rt.install(|| Ok((1..=4).sum::<i32>())).unwrap();
//! assert_eq!(sum, 10);
//! ```

use crate::error::{Error, Result};
use crate::memory::MemoryPlan;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// A cancel token: a borrowed flag that a computation polls between blocks and iterations
/// (a signal handler or another thread sets it). Copying it is free.
#[derive(Debug, Clone, Copy)]
pub struct Cancel<'a>(&'a AtomicBool);

static NEVER: AtomicBool = AtomicBool::new(false);

impl<'a> Cancel<'a> {
    /// A token that is cancelled once `flag` is true.
    pub fn new(flag: &'a AtomicBool) -> Self {
        Cancel(flag)
    }
    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    /// `Err(Error::Interrupted)` once cancellation was requested.
    ///
    /// # Errors
    /// [`Error::Interrupted`].
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }
}

impl Cancel<'static> {
    /// A token that is never cancelled.
    pub fn never() -> Self {
        Cancel(&NEVER)
    }
}

impl Default for Cancel<'static> {
    fn default() -> Self {
        Cancel::never()
    }
}

/// Progress of long stages (the CLI draws it with indicatif; Python ignores it).
pub trait Progress: Sync {
    /// A stage starts; `total` rows if known.
    fn begin(&self, _stage: &str, _total: Option<u64>) {}
    /// `rows` more rows are done.
    fn advance(&self, _rows: u64) {}
    /// The stage ended.
    fn end(&self) {}
    /// The memory plan, made before any data is read.
    fn plan(&self, _plan: &MemoryPlan) {}
}

/// No progress display.
pub struct NoProgress;
impl Progress for NoProgress {}

/// The explicit arguments of a job: threads, cancel token, progress sink.
#[derive(Clone, Copy)]
pub struct Runtime<'a> {
    /// Worker threads; `None` runs on the caller's current rayon pool (the global one
    /// unless the caller installed another). Results never depend on it.
    pub threads: Option<usize>,
    pub cancel: Cancel<'a>,
    pub progress: &'a dyn Progress,
}

impl Default for Runtime<'static> {
    fn default() -> Self {
        Runtime {
            threads: None,
            cancel: Cancel::never(),
            progress: &NoProgress,
        }
    }
}

impl Runtime<'_> {
    /// Runs `f` on a pool of `threads` workers (or on the current pool when `threads` is
    /// `None`).
    ///
    /// # Errors
    /// [`Error::Parameter`] when `threads` is 0; [`Error::Numerical`] when the threads
    /// cannot be started; any error of `f`.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> Result<R> + Send) -> Result<R> {
        match self.threads {
            None => f(),
            Some(0) => Err(Error::param("threads", 0, "must be at least 1")),
            Some(t) => rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .map_err(|e| Error::Numerical(format!("cannot start {t} threads: {e}")))?
                .install(f),
        }
    }
}

/// Which SIMD kernels may run (all by default). Results of the fused float32 kernels equal
/// those of the portable GEMM path bit for bit where their tests say so; the switches exist
/// to compare them and to rule them out when debugging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernels {
    /// The fused float32 assignment kernel (AVX2/AVX-512); off: tiled GEMM + argmin.
    pub fused: bool,
    /// AVX-512 where the CPU has it; off: AVX2.
    pub avx512: bool,
    /// The rows-in-lanes kernel for `d <= 16`.
    pub small_d: bool,
}

impl Default for Kernels {
    fn default() -> Self {
        Kernels {
            fused: true,
            avx512: true,
            small_d: true,
        }
    }
}

static KERNELS: AtomicU8 = AtomicU8::new(0b111);

/// Chooses the SIMD kernels for this process (a front end does it once, at start-up).
pub fn set_kernels(k: Kernels) {
    let bits = k.fused as u8 | (k.avx512 as u8) << 1 | (k.small_d as u8) << 2;
    KERNELS.store(bits, Ordering::Relaxed);
}

/// The SIMD kernels this process may use.
pub fn kernels() -> Kernels {
    let b = KERNELS.load(Ordering::Relaxed);
    Kernels {
        fused: b & 1 != 0,
        avx512: b & 2 != 0,
        small_d: b & 4 != 0,
    }
}

/// The front ends' process-wide settings, from their environment: `lookup(name)` returns a
/// variable's value (the CLI and Python pass `std::env::var_os`; the core never reads the
/// environment itself). `EMBEDCLUSTER_NO_FUSED`, `EMBEDCLUSTER_NO_AVX512` and
/// `EMBEDCLUSTER_NO_SMALL_D` turn kernels off ([`set_kernels`]); `EMBEDCLUSTER_STAGE_PEAKS=reset`
/// opts in to per-stage resets of the peak-RSS mark ([`crate::memory::set_stage_peaks`]; the
/// default, and any other value, samples).
pub fn apply_settings(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) {
    let off = |name: &str| lookup(name).is_some();
    set_kernels(Kernels {
        fused: !off("EMBEDCLUSTER_NO_FUSED"),
        avx512: !off("EMBEDCLUSTER_NO_AVX512"),
        small_d: !off("EMBEDCLUSTER_NO_SMALL_D"),
    });
    let method = lookup("EMBEDCLUSTER_STAGE_PEAKS")
        .and_then(|v| crate::memory::StagePeaks::parse(&v.to_string_lossy()).ok())
        .unwrap_or(crate::memory::StagePeaks::Sampled);
    crate::memory::set_stage_peaks(method);
}
