//! Rendering: progress bars, the stage table, JSON reports, and core errors spelled with
//! this CLI's flag names.

use embedcluster::jobs::run::RunReport;
use embedcluster::memory::format_mib;
use embedcluster::runtime::{Cancel, Progress, Runtime};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

/// Set by the SIGINT handler; every job polls it through its [`Cancel`] token.
pub static CANCEL: AtomicBool = AtomicBool::new(false);

/// The runtime of a command: its threads, the Ctrl-C token, its progress bars.
pub fn runtime(threads: Option<usize>, progress: &dyn Progress) -> Runtime<'_> {
    Runtime {
        threads,
        cancel: Cancel::new(&CANCEL),
        progress,
    }
}

/// A core parameter's name as this CLI spells it (`n_clusters` -> `--n-clusters`); names
/// that are not flags (data, model attributes) are shown as they are.
pub fn flag(name: &str) -> String {
    let f = match name {
        "labels_column" => "--labels",
        "n_neighbors" => "--k",
        "threads" => "--threads",
        "n_clusters"
        | "reduce"
        | "pca_fit"
        | "metric"
        | "n_init"
        | "max_iter"
        | "tol"
        | "seed"
        | "batch_rows"
        | "memory_limit"
        | "on_invalid"
        | "output"
        | "adaptive"
        | "exclude_self"
        | "sample_size"
        | "cluster_column"
        | "embeddings"
        | "init"
        | "init_trials"
        | "init_size"
        | "oversampling_factor"
        | "init_rounds"
        | "pruning"
        | "seeds" => return format!("--{}", name.replace('_', "-")),
        other => return other.to_string(),
    };
    f.to_string()
}

/// The one-line message of a core error, with flag names.
pub fn message(e: &embedcluster::Error) -> String {
    e.render(&flag)
}

/// indicatif bars on stderr (hidden when stderr is not a terminal).
pub struct Bars(Mutex<Option<ProgressBar>>);

impl Bars {
    pub fn new() -> Self {
        Bars(Mutex::new(None))
    }
}

impl Progress for Bars {
    fn begin(&self, stage: &str, total: Option<u64>) {
        let bar = match total {
            Some(t) => {
                let b = ProgressBar::new(t);
                b.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>10} [{bar:30}] {pos}/{len} rows {per_sec} eta {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                b
            }
            None => {
                let b = ProgressBar::new_spinner();
                b.enable_steady_tick(std::time::Duration::from_millis(200));
                b
            }
        };
        bar.set_prefix(stage.to_string());
        *self.0.lock().expect("not poisoned") = Some(bar);
    }
    fn advance(&self, rows: u64) {
        if let Some(b) = self.0.lock().expect("not poisoned").as_ref() {
            b.inc(rows);
        }
    }
    fn end(&self) {
        if let Some(b) = self.0.lock().expect("not poisoned").take() {
            b.finish_and_clear();
        }
    }
    fn plan(&self, plan: &embedcluster::memory::MemoryPlan) {
        let limit = plan
            .limit_bytes
            .map(|l| format!(", limit {}", embedcluster::memory::format_bytes(l)))
            .unwrap_or_default();
        eprint!(
            "memory plan ({} rows per block{limit}), predicted peak per stage:\n{}",
            plan.batch_rows,
            plan.describe()
        );
        if let Some(s) = &plan.spill {
            eprintln!(
                "spilling the reduced matrix ({}) to a scratch file in {}: {}",
                embedcluster::memory::format_bytes(s.bytes),
                s.dir.display(),
                s.reason
            );
        }
    }
}

pub fn write_json(path: &Option<PathBuf>, value: &impl serde::Serialize) -> anyhow::Result<()> {
    if let Some(p) = path {
        let mut f = embedcluster::io::AtomicFile::create(p)?;
        serde_json::to_writer_pretty(f.file(), value)?;
        f.file().write_all(b"\n")?;
        f.commit()?;
    }
    Ok(())
}

pub fn with_ext(prefix: &std::path::Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

pub fn print_table(r: &RunReport) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(
        e,
        "{:<12} {:>9} {:>9} {:>10} {:>12} {:>12}",
        "stage", "seconds", "cpu_s", "rows", "peak_rss", "predicted"
    );
    for s in &r.stages {
        let _ = writeln!(
            e,
            "{:<12} {:>9.3} {:>9.3} {:>10} {:>12} {:>12}",
            s.name,
            s.seconds,
            s.cpu_seconds,
            s.rows,
            format_mib(s.peak_rss_bytes),
            s.predicted_peak_rss_bytes
                .map(format_mib)
                .unwrap_or_else(|| "-".into())
        );
    }
    let total: f64 = r.stages.iter().map(|s| s.seconds).sum();
    let cpu: f64 = r.stages.iter().map(|s| s.cpu_seconds).sum();
    let _ = writeln!(
        e,
        "{:<12} {:>9.3} {:>9.3} {:>10} {:>12}",
        "total",
        total,
        cpu,
        r.n_samples,
        format_mib(r.peak_rss_bytes)
    );
    let _ = writeln!(
        e,
        "{} x {} {} -> {} ({}{}), k = {}, metric {:?}: {} iterations{}, objective {:.6}",
        r.n_samples,
        r.n_features,
        r.dtype.name(),
        r.n_components,
        r.reduce,
        r.pca_fit
            .as_ref()
            .map(|f| format!(", {f}"))
            .unwrap_or_default(),
        r.n_clusters,
        r.metric,
        r.n_iter,
        if r.converged { " (converged)" } else { "" },
        r.objective
    );
    if let Some(ev) = r.explained_variance_ratio_sum {
        let _ = writeln!(e, "explained variance ratio (sum): {ev:.4}");
    }
    if let (Some(ari), Some(nmi)) = (r.ari, r.nmi) {
        let _ = writeln!(e, "against labels: ARI {ari:.4}  NMI {nmi:.4}");
    }
    if r.skipped_rows > 0 {
        let _ = writeln!(
            e,
            "skipped {} invalid rows (cluster -1 in the output), first: {:?}",
            r.skipped_rows, r.skipped_examples
        );
    }
    for w in &r.warnings {
        let _ = writeln!(e, "warning: {w}");
    }
}
