//! Per-stage time and memory accounting.
//!
//! A [`StageRecorder`] measures, for each named stage of a run: wall seconds, CPU seconds
//! (user + system, all threads, from `getrusage`), rows processed, and the process's peak
//! resident set size *during that stage* in bytes. On Linux the kernel's high-water mark is
//! reset at the start of each stage by writing `5` to `/proc/self/clear_refs`, and read back
//! as `VmHWM` from `/proc/self/status` at its end. Because the reset also lowers what
//! `getrusage` reports as `ru_maxrss`, the whole run's peak is the maximum over stages
//! (and over the time before the first stage).
//!
//! On other systems, where `clear_refs` cannot be written, or with
//! `EMBEDCLUSTER_RSS_RESET=0`, the figures are the process's peak so far (monotone),
//! which is still an upper bound per stage.

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

static PEAK_RESETS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Turns the per-stage resets of the peak-RSS high-water mark on (the default) or off, for
/// this process (a front end decides once: the CLI and Python read
/// `EMBEDCLUSTER_RSS_RESET=0` from their environment). Off, an outside tool such as
/// `/usr/bin/time -v`, which reads the same mark, sees the whole run's peak, and per-stage
/// figures are the peak so far.
pub fn set_peak_resets(on: bool) {
    PEAK_RESETS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Resets the kernel's peak-RSS high-water mark to the current RSS. Returns false where
/// that is not possible (non-Linux, or `/proc/self/clear_refs` not writable), or when
/// resets are turned off ([`set_peak_resets`]).
pub fn reset_peak_rss() -> bool {
    if !PEAK_RESETS.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
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
        reset_peak_rss();
        self.current = Some((name.to_string(), Instant::now(), cpu_seconds()));
    }

    /// Ends the current stage, recording `rows`. Returns its report.
    pub fn finish(&mut self, rows: u64) -> Option<&StageReport> {
        let (name, t0, c0) = self.current.take()?;
        self.stages.push(StageReport {
            name,
            seconds: t0.elapsed().as_secs_f64(),
            cpu_seconds: (cpu_seconds() - c0).max(0.0),
            rows,
            peak_rss_bytes: peak_rss_bytes(),
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

    /// The whole run's peak RSS in bytes: the maximum over stages and the baseline.
    pub fn peak_rss_bytes(&self) -> u64 {
        self.stages
            .iter()
            .map(|s| s.peak_rss_bytes)
            .fold(self.baseline_peak, u64::max)
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
    pub stages: Vec<StagePlan>,
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

    #[test]
    fn peak_grows_with_allocation_and_resets() {
        let mut rec = StageRecorder::new();
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
