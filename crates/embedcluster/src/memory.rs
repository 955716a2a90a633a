//! Per-stage time and memory accounting.
//!
//! A [`StageRecorder`] measures, for each named stage of a run: wall seconds, CPU seconds
//! (user + system, all threads, from `getrusage`), rows processed, and the process's peak
//! resident set size *during that stage* in bytes. How the stage peak is taken is a
//! process-wide choice ([`set_stage_peaks`]):
//!
//! - [`StagePeaks::Sampled`] (the default): a thread ([`RssSampler`]) reads the current RSS
//!   every [`SAMPLE_INTERVAL`] during the stage. No counter of the process is touched, so
//!   `VmHWM`, `getrusage`'s `ru_maxrss` and `/usr/bin/time -v` report the whole process's
//!   true peak, and the run's `peak_rss_bytes` is `VmHWM` itself. Precision: a rise and fall
//!   shorter than the interval can be missed, so a stage figure is a lower bound of its true
//!   peak, exact for what lives longer than a millisecond (blocks, batches, states).
//! - [`StagePeaks::Reset`] (opt in: `--stage-peaks reset`, `EMBEDCLUSTER_STAGE_PEAKS=reset`):
//!   the kernel's high-water mark is reset at the start of each stage by writing `5` to
//!   `/proc/self/clear_refs` and read back as `VmHWM` at its end: exact, but the reset also
//!   lowers what `getrusage` and outside tools report, so the run's peak is then the maximum
//!   over stages. Where `clear_refs` cannot be written the figures are the peak so far.

use crate::error::{Error, Result};
use std::time::Instant;

pub use crate::units::{format_bytes, MIB};

/// The measurements of one stage.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StageReport {
    /// Stage name (`read_fit`, `pca_fit`, `transform`, `kmeans`, `write`, ...).
    pub name: String,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// CPU seconds (user + system) of all threads of the process.
    pub cpu_seconds: f64,
    /// Rows processed by the stage.
    pub rows: u64,
    /// Peak resident set size of the process during the stage, in bytes.
    pub peak_rss_bytes: u64,
    /// The peak the memory plan predicted for this stage, in bytes (see `jobs::plan`).
    #[serde(default)]
    pub predicted_peak_rss_bytes: Option<u64>,
}

/// Current peak RSS (`VmHWM`) of this process in bytes, or 0 where unknown.
pub fn peak_rss_bytes() -> u64 {
    read_status_kib("VmHWM:").map(|k| k * 1024).unwrap_or(0)
}

/// Current RSS (`VmRSS`) of this process in bytes, or 0 where unknown.
pub fn current_rss_bytes() -> u64 {
    read_status_kib("VmRSS:").map(|k| k * 1024).unwrap_or(0)
}

fn read_status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Resident set size of this process in bytes from `/proc/self/statm` (resident pages times
/// the page size: a cheaper read than `/proc/self/status`), or 0 where unknown.
pub fn statm_rss_bytes() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = text
        .split_ascii_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * if page > 0 { page as u64 } else { 4096 }
}

/// Peak resident set size of this process over a span of time, measured by a background
/// thread that reads the current RSS ([`statm_rss_bytes`]) every `interval`, and once more
/// when stopped.
///
/// Unlike a reset of the kernel's high-water mark ([`reset_peak_rss`]), sampling disturbs
/// no counter of the process: `VmHWM`, `getrusage` and `/usr/bin/time -v` still report the
/// whole process's peak. Precision: a rise and fall shorter than `interval` between two
/// samples can be missed, so the figure is a lower bound of the true peak, exact for
/// allocations that live longer than the interval (a task's blocks and states do). It is the
/// peak of the *whole process*: with several threads running tasks at once it is shared by
/// them (exact per task with one task at a time, as dask-memusage states for itself).
///
/// Cost: one thread, one small `/proc` read per interval (about 10 microseconds).
#[derive(Debug)]
pub struct RssSampler {
    shared: std::sync::Arc<SamplerShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug)]
struct SamplerShared {
    stop: std::sync::atomic::AtomicBool,
    peak: std::sync::atomic::AtomicU64,
}

impl SamplerShared {
    fn sample(&self) {
        self.peak
            .fetch_max(statm_rss_bytes(), std::sync::atomic::Ordering::Relaxed);
    }
}

impl RssSampler {
    /// Starts sampling now (the first sample is taken before this returns).
    pub fn start(interval: std::time::Duration) -> Self {
        let shared = std::sync::Arc::new(SamplerShared {
            stop: std::sync::atomic::AtomicBool::new(false),
            peak: std::sync::atomic::AtomicU64::new(0),
        });
        shared.sample();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("embedcluster-rss".into())
            .spawn(move || {
                while !s.stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::park_timeout(interval);
                    s.sample();
                }
            })
            .ok();
        RssSampler { shared, thread }
    }

    /// The peak so far, in bytes.
    pub fn peak_bytes(&self) -> u64 {
        self.shared.peak.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops the thread (at once, not after the interval) and returns the peak in bytes,
    /// including one last sample. Calling it again returns the same peak.
    pub fn stop(&mut self) -> u64 {
        if let Some(t) = self.thread.take() {
            self.shared
                .stop
                .store(true, std::sync::atomic::Ordering::Relaxed);
            t.thread().unpark();
            let _ = t.join();
            self.shared.sample();
        }
        self.peak_bytes()
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How per-stage peaks are measured (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StagePeaks {
    /// A thread samples the current RSS every [`SAMPLE_INTERVAL`]; the process's counters
    /// are left alone (the default).
    Sampled,
    /// The kernel's high-water mark is reset at each stage start (`/proc/self/clear_refs`):
    /// exact per stage, but lowers what `getrusage` and `/usr/bin/time` report.
    Reset,
}

impl StagePeaks {
    /// `sampled` or `reset` (what [`StagePeaks::parse`] reads).
    pub fn name(self) -> &'static str {
        match self {
            StagePeaks::Sampled => "sampled",
            StagePeaks::Reset => "reset",
        }
    }

    /// Parses `sampled` or `reset`.
    ///
    /// # Errors
    /// [`Error::Parameter`] for anything else.
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim() {
            "sampled" => Ok(StagePeaks::Sampled),
            "reset" => Ok(StagePeaks::Reset),
            _ => Err(Error::param(
                "stage_peaks",
                format!("{text:?}"),
                "must be `sampled` or `reset`",
            )),
        }
    }
}

/// How often [`StagePeaks::Sampled`] reads the RSS (1 ms; each read costs about 10
/// microseconds of one core, about 1 %).
pub const SAMPLE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(1);

/// The method a report's stage peaks were measured with, and their precision.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StagePeaksInfo {
    pub method: StagePeaks,
    /// Seconds between samples (`sampled` only).
    pub interval_seconds: Option<f64>,
    /// What a stage figure means, in words.
    pub precision: String,
}

impl StagePeaksInfo {
    /// The description of the process's current method ([`stage_peaks`]).
    pub fn current() -> Self {
        Self::of(stage_peaks())
    }

    /// The description of `method` on this system.
    pub fn of(method: StagePeaks) -> Self {
        match method {
            StagePeaks::Sampled => StagePeaksInfo {
                method: StagePeaks::Sampled,
                interval_seconds: Some(SAMPLE_INTERVAL.as_secs_f64()),
                precision: "RSS sampled every millisecond during the stage: a lower bound of the \
                            stage's true peak, exact for memory held longer than the interval; \
                            the process's own counters (VmHWM, getrusage) are untouched and give \
                            peak_rss_bytes"
                    .into(),
            },
            StagePeaks::Reset if can_reset_peak_rss() => StagePeaksInfo {
                method: StagePeaks::Reset,
                interval_seconds: None,
                precision: "the kernel's high-water mark, reset at each stage start: exact per \
                            stage; getrusage and /usr/bin/time then report only the last \
                            stage's peak"
                    .into(),
            },
            StagePeaks::Reset => StagePeaksInfo {
                method: StagePeaks::Reset,
                interval_seconds: None,
                precision: "the high-water mark could not be reset here (/proc/self/clear_refs \
                            not writable): each stage figure is the process's peak so far"
                    .into(),
            },
        }
    }
}

static STAGE_PEAKS_RESET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Chooses how stage peaks are measured, for this process (a front end decides once: the
/// CLI from `--stage-peaks` or `EMBEDCLUSTER_STAGE_PEAKS`, Python from the environment at
/// import or [`set_stage_peaks`] through `embedcluster.set_stage_peaks`).
pub fn set_stage_peaks(method: StagePeaks) {
    STAGE_PEAKS_RESET.store(
        method == StagePeaks::Reset,
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// The process's current method of measuring stage peaks.
pub fn stage_peaks() -> StagePeaks {
    if STAGE_PEAKS_RESET.load(std::sync::atomic::Ordering::Relaxed) {
        StagePeaks::Reset
    } else {
        StagePeaks::Sampled
    }
}

/// Resets the kernel's peak-RSS high-water mark to the current RSS. Returns false where
/// that is not possible (non-Linux, or `/proc/self/clear_refs` not writable). It lowers what
/// `getrusage` and `/usr/bin/time -v` report: the stage recorder calls it only under
/// [`StagePeaks::Reset`].
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

fn can_reset_peak_rss() -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/clear_refs")
        .is_ok()
}

/// Makes every thread allocate from one malloc arena (glibc; a no-op elsewhere). Call it
/// at the start of a process, before any thread exists; the CLI does.
///
/// Why: glibc gives threads their own arenas, and `malloc_trim` returns the free space at
/// the top of the main arena only. The Parquet decoder threads ([`crate::io`]) free their
/// Arrow batches into their own arenas, where the free top stays resident after the pass
/// (measured: about 32 MiB after the transform pass on the Debian set), so the next stages
/// would start that much higher than planned. With one arena it is returned at the next
/// [`trim_heap`]. On the canonical run this was also no slower (6.5 s either way).
pub fn single_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Gives free heap memory back to the kernel (glibc `malloc_trim`; a no-op elsewhere).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// CPU seconds (user + system) used so far by all threads of this process.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass; no other invariants.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return 0.0;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
        tv(usage.ru_utime) + tv(usage.ru_stime)
    }
}

/// Records stages one after the other.
#[derive(Debug)]
pub struct StageRecorder {
    stages: Vec<StageReport>,
    /// Peak seen before the first stage started (process start-up, argument parsing).
    baseline_peak: u64,
    current: Option<(String, Instant, f64)>,
    /// The running stage's sampler ([`StagePeaks::Sampled`]).
    sampler: Option<RssSampler>,
    method: StagePeaks,
}

impl Default for StageRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl StageRecorder {
    /// Creates a recorder; remembers the peak RSS so far as the baseline.
    pub fn new() -> Self {
        StageRecorder {
            stages: Vec::new(),
            baseline_peak: peak_rss_bytes(),
            current: None,
            sampler: None,
            method: stage_peaks(),
        }
    }

    /// Starts a stage (ending the current one, with 0 rows, if any).
    pub fn start(&mut self, name: &str) {
        if self.current.is_some() {
            self.finish(0);
        }
        let before = peak_rss_bytes();
        self.baseline_peak = self.baseline_peak.max(before);
        trim_heap();
        match self.method {
            StagePeaks::Reset => {
                reset_peak_rss();
            }
            StagePeaks::Sampled => self.sampler = Some(RssSampler::start(SAMPLE_INTERVAL)),
        }
        self.current = Some((name.to_string(), Instant::now(), cpu_seconds()));
    }

    /// Ends the current stage, recording `rows`. Returns its report.
    pub fn finish(&mut self, rows: u64) -> Option<&StageReport> {
        let (name, t0, c0) = self.current.take()?;
        let seconds = t0.elapsed().as_secs_f64();
        let peak = match self.sampler.take() {
            Some(mut s) => s.stop(),
            None => peak_rss_bytes(),
        };
        self.stages.push(StageReport {
            name,
            seconds,
            cpu_seconds: (cpu_seconds() - c0).max(0.0),
            rows,
            peak_rss_bytes: peak,
            predicted_peak_rss_bytes: None,
        });
        self.stages.last()
    }

    /// Runs `f` as a stage named `name`; `f` returns its value and the rows it processed.
    pub fn stage<R, E>(
        &mut self,
        name: &str,
        f: impl FnOnce() -> Result<(R, u64), E>,
    ) -> Result<R, E> {
        self.start(name);
        match f() {
            Ok((value, rows)) => {
                self.finish(rows);
                Ok(value)
            }
            Err(e) => {
                self.current = None;
                self.sampler = None;
                Err(e)
            }
        }
    }

    /// The finished stages, in order.
    pub fn stages(&self) -> &[StageReport] {
        &self.stages
    }

    /// Puts the plan's prediction next to each measured stage of the same name.
    pub fn attach_plan(&mut self, plan: &MemoryPlan) {
        for s in &mut self.stages {
            s.predicted_peak_rss_bytes = plan.stage(&s.name).map(|p| p.peak_bytes);
        }
    }

    /// The whole run's peak RSS in bytes: the kernel's high-water mark (`VmHWM`, what
    /// `/usr/bin/time -v` reports) when stages are sampled, else the maximum over stages and
    /// the time before the first.
    pub fn peak_rss_bytes(&self) -> u64 {
        let stages = self
            .stages
            .iter()
            .map(|s| s.peak_rss_bytes)
            .fold(self.baseline_peak, u64::max);
        match self.method {
            StagePeaks::Sampled => stages.max(peak_rss_bytes()),
            StagePeaks::Reset => stages,
        }
    }

    /// How this recorder measured its stage peaks.
    pub fn stage_peaks(&self) -> StagePeaksInfo {
        StagePeaksInfo::of(self.method)
    }
}

/// Formats a byte count as MiB with one decimal.
pub fn format_mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// One stage's predicted peak: the sum of `terms` (name, bytes).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StagePlan {
    pub name: String,
    /// Predicted peak RSS of the process during the stage, bytes.
    pub peak_bytes: u64,
    /// What the stage holds: (what, bytes), largest first after the base.
    pub terms: Vec<(String, u64)>,
}

/// The plan of a run: block size and the predicted peak of every stage.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemoryPlan {
    /// Rows per block the passes will read.
    pub batch_rows: usize,
    /// Resident memory when planning (bytes), part of every stage's figure.
    pub base_bytes: u64,
    /// The limit planned for (bytes), if any.
    pub limit_bytes: Option<u64>,
    /// The budget the plan was fitted to (bytes): the limit, else the cgroup limit, else
    /// the available memory. Without a limit, a plan over the budget still runs.
    pub budget_bytes: Option<u64>,
    pub budget_source: Option<BudgetSource>,
    /// Set when the reduced matrix goes to a spill file.
    pub spill: Option<SpillPlan>,
    pub stages: Vec<StagePlan>,
}

/// The plan's choice to keep the reduced matrix in a spill file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SpillPlan {
    /// Directory of the spill file.
    pub dir: std::path::PathBuf,
    /// Its size, `n D s` bytes.
    pub bytes: u64,
    /// Why: asked for (`--spill DIR`), or the in-memory plan's peak against the budget.
    pub reason: String,
}

impl MemoryPlan {
    /// The largest predicted stage peak (bytes).
    pub fn peak_bytes(&self) -> u64 {
        self.stages.iter().map(|s| s.peak_bytes).max().unwrap_or(0)
    }
    /// The plan of stage `name`.
    pub fn stage(&self, name: &str) -> Option<&StagePlan> {
        self.stages.iter().find(|s| s.name == name)
    }
    /// One line per stage: `name  peak = term + term + ...`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for s in &self.stages {
            let terms: Vec<String> = s
                .terms
                .iter()
                .filter(|(_, b)| *b > 0)
                .map(|(w, b)| format!("{w} {}", format_bytes(*b)))
                .collect();
            out.push_str(&format!(
                "{:<11} {:>10} = {}\n",
                s.name,
                format_bytes(s.peak_bytes),
                terms.join(" + ")
            ));
        }
        out
    }
}

/// Parses a byte size: `1073741824`, `1GiB`, `512MiB`, `64KiB`, `1.5G` (binary) or
/// `2GB`, `500MB`, `10kB` (decimal).
///
/// # Example
/// ```
/// use embedcluster::memory::parse_bytes;
/// assert_eq!(parse_bytes("1GiB").unwrap(), 1 << 30);
/// assert_eq!(parse_bytes("500MB").unwrap(), 500_000_000);
/// assert!(parse_bytes("lots").is_err());
/// ```
///
/// # Errors
/// [`Error::Parameter`] for anything else, or a size of 0.
pub fn parse_bytes(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        Error::param(
            "memory_limit",
            format!("{text:?}"),
            "is not a size: expected a number with an optional unit (B, KiB, MiB, GiB, TiB, kB, MB, GB, TB), e.g. 1GiB",
        )
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match unit.trim() {
        "" | "B" | "b" => 1.0,
        "K" | "k" | "KiB" | "kiB" => 1024.0,
        "M" | "MiB" => 1024.0 * 1024.0,
        "G" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "TiB" => 1024.0f64.powi(4),
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => return Err(bad()),
    };
    let bytes = (v * mult).round();
    if !(1.0..1.8e19).contains(&bytes) {
        return Err(Error::param(
            "memory_limit",
            format!("{text:?}"),
            "must be positive",
        ));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests that reset or read the process's high-water mark, one at a time.
    static HWM: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    #[cfg(target_os = "linux")]
    fn the_sampler_sees_a_buffer_that_lived_longer_than_its_interval() {
        let mut s = RssSampler::start(std::time::Duration::from_millis(1));
        let base = s.peak_bytes();
        assert!(base > 0);
        let mut v = vec![0u8; 96 << 20];
        for p in v.iter_mut().step_by(4096) {
            *p = 1; // touch every page: resident
        }
        std::thread::sleep(std::time::Duration::from_millis(30));
        drop(std::hint::black_box(v));
        std::thread::sleep(std::time::Duration::from_millis(10));
        let peak = s.stop();
        assert!(peak >= base + (90 << 20), "peak {peak} base {base}");
        assert_eq!(s.stop(), peak, "stopping twice returns the same peak");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn sampled_stages_leave_the_kernels_high_water_mark_alone() {
        let _one = HWM.lock().unwrap_or_else(|e| e.into_inner());
        let mut rec = StageRecorder::new();
        assert_eq!(rec.stage_peaks().method, StagePeaks::Sampled);
        rec.start("alloc");
        let mut v = vec![0u8; 80 << 20];
        for p in v.iter_mut().step_by(4096) {
            *p = 1;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(std::hint::black_box(v));
        let big = rec.finish(1).unwrap().peak_rss_bytes;
        let hwm = peak_rss_bytes();
        assert!(big >= 80 << 20, "sampled peak {big} misses the buffer");
        // the kernel's mark still holds the first stage's buffer (it folds the threads' RSS
        // counters in lazily: within 1 %)
        assert!(
            hwm >= big - big / 100,
            "VmHWM {hwm} was lowered below the stage peak {big}"
        );
        assert!(rec.peak_rss_bytes() >= hwm);
    }

    #[test]
    fn stage_peaks_parse() {
        assert_eq!(StagePeaks::parse("reset").unwrap(), StagePeaks::Reset);
        assert_eq!(StagePeaks::parse("sampled").unwrap(), StagePeaks::Sampled);
        assert!(StagePeaks::parse("hwm").is_err());
    }

    #[test]
    fn peak_grows_with_allocation_and_resets() {
        let _one = HWM.lock().unwrap_or_else(|e| e.into_inner());
        let mut rec = StageRecorder::new();
        rec.method = StagePeaks::Reset;
        rec.start("alloc");
        let v = vec![1u8; 64 << 20];
        std::hint::black_box(&v);
        let big = rec.finish(1).unwrap().peak_rss_bytes;
        drop(v);
        rec.start("small");
        let small = rec.finish(1).unwrap().peak_rss_bytes;
        assert!(
            big >= 64 << 20,
            "peak {big} should include the 64 MiB buffer"
        );
        if reset_peak_rss() {
            assert!(
                small + (32 << 20) < big,
                "reset did not lower the mark: {small} vs {big}"
            );
        }
        assert_eq!(rec.peak_rss_bytes(), big.max(rec.baseline_peak));
    }
}

/// Where a default memory budget comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetSource {
    /// Given by the caller (`--memory-limit`, `memory_limit=`).
    Limit,
    /// The process's cgroup memory limit (v2 `memory.max`, v1 `memory.limit_in_bytes`):
    /// a Kubernetes pod's or a container's limit, as the JVM and the Go runtime read it.
    Cgroup,
    /// The machine's available memory (`MemAvailable` of `/proc/meminfo`).
    Available,
}

/// Limits at or above this mean "no limit" (cgroup v1 writes `2^63 - 4096`).
const NO_LIMIT: u64 = 1 << 60;

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The memory limit of this process's cgroup, in bytes, or `None` without one: the
/// smallest `memory.max` (cgroup v2) or `memory.limit_in_bytes` (v1) on the path from its
/// cgroup up to the root, as mounted under `/sys/fs/cgroup`.
pub fn cgroup_memory_limit() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut best: Option<u64> = None;
    let mut take = |v: Option<u64>| {
        if let Some(v) = v.filter(|&v| v < NO_LIMIT) {
            best = Some(best.map_or(v, |b| b.min(v)));
        }
    };
    for line in own.lines() {
        let mut f = line.splitn(3, ':');
        let (_, controllers, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let (root, file) = if controllers.is_empty() {
            ("/sys/fs/cgroup", "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")
        } else {
            continue;
        };
        // from the process's own cgroup up to the mount's root (inside a container the
        // mount is often the container's own cgroup: its root file is the limit)
        let mut p = std::path::PathBuf::from(path.trim_start_matches('/'));
        loop {
            let f = std::path::Path::new(root).join(&p).join(file);
            take(f.to_str().and_then(read_u64));
            if !p.pop() {
                break;
            }
        }
    }
    best
}

/// Available memory of the machine (`MemAvailable`), in bytes, where known.
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    line["MemAvailable:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()
        .map(|k| k * 1024)
}

/// The memory budget of a run without `--memory-limit`: the cgroup limit when the process
/// has one, else the machine's available memory; `None` where neither is known.
pub fn default_budget() -> Option<(u64, BudgetSource)> {
    if let Some(v) = cgroup_memory_limit() {
        return Some((v, BudgetSource::Cgroup));
    }
    available_memory().map(|v| (v, BudgetSource::Available))
}

/// Address ranges of the spill mappings ([`crate::io::ScratchMatrix`]) whose pages may
/// be released: `(start, end)`.
static MAPPED: std::sync::RwLock<Vec<(usize, usize)>> = std::sync::RwLock::new(Vec::new());

pub(crate) fn register_mapped(start: usize, len: usize) {
    MAPPED
        .write()
        .expect("not poisoned")
        .push((start, start + len));
}

pub(crate) fn unregister_mapped(start: usize) {
    MAPPED
        .write()
        .expect("not poisoned")
        .retain(|&(s, _)| s != start);
}

fn is_mapped(start: usize, end: usize) -> bool {
    MAPPED
        .read()
        .expect("not poisoned")
        .iter()
        .any(|&(s, e)| s <= start && end <= e)
}

/// Bytes a [`PageReleaser`] lets accumulate before releasing them.
pub const RELEASE_BYTES: usize = 4 << 20;

/// Releases the pages of a slice of a spill mapping as a pass moves through it, so that a
/// pass over a scratch file larger than memory keeps at most about [`RELEASE_BYTES`] of it
/// resident per thread: `madvise(MADV_DONTNEED)` on the whole pages already read. The
/// mapping is a shared file mapping, so released pages read back the same values (from
/// the page cache or the file). For any other slice (ordinary memory) it does nothing.
pub struct PageReleaser {
    start: usize,
    end: usize,
    /// Address up to which pages were released.
    done: usize,
    active: bool,
}

impl PageReleaser {
    /// A releaser for `x`; active only when `x` lies in a registered spill mapping.
    pub fn new<T>(x: &[T]) -> Self {
        let start = x.as_ptr() as usize;
        let end = start + std::mem::size_of_val(x);
        PageReleaser {
            start,
            end,
            done: start,
            active: !x.is_empty() && is_mapped(start, end),
        }
    }

    /// The first `elements` values of the slice have been read: releases them once at
    /// least [`RELEASE_BYTES`] are pending (all of them when `elements` reaches the end).
    #[inline]
    pub fn consumed<T>(&mut self, elements: usize) {
        if !self.active {
            return;
        }
        let upto = (self.start + elements * std::mem::size_of::<T>()).min(self.end);
        if upto - self.done >= RELEASE_BYTES || (upto == self.end && upto > self.done) {
            self.release_to(upto);
        }
    }

    fn release_to(&mut self, upto: usize) {
        let page = page_size();
        // whole pages only: the first page may be shared with the previous slice
        let from = self.done.next_multiple_of(page);
        let to = upto / page * page;
        if to > from {
            #[cfg(unix)]
            // SAFETY: [from, to) lies inside a registered shared file mapping that outlives
            // the slice; MADV_DONTNEED on a shared file mapping drops the page-table entries
            // only, and later reads fault the same contents back in.
            unsafe {
                libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_DONTNEED);
            }
        }
        self.done = upto;
    }
}

/// Releases every page of `x` if it lies in a spill mapping (see [`PageReleaser`]).
pub fn release_mapped<T>(x: &[T]) {
    let mut r = PageReleaser::new(x);
    r.consumed::<T>(x.len());
}

fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        #[cfg(unix)]
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        #[cfg(not(unix))]
        let p = 4096;
        if p > 0 {
            p as usize
        } else {
            4096
        }
    })
}
