//! `embedcluster`: a thin command line over the embedcluster core crate. [`main_from`] is
//! the whole program: the binary (`src/main.rs`) calls it with the process's arguments, and
//! the Python package's console script calls it through the native module, so `pip
//! install` gives the same command.
//!
//! `args` holds every flag, `commands/` one file per command, `render` the progress bars,
//! tables and error messages (core parameter names spelled as flags).
//!
//! Exit codes: 0 success (also when stdout is closed early, as in `... | head -1`), 2 any
//! error (bad input, bad parameters, I/O), with one line on stderr naming the file, row and
//! column where they apply; 130 when interrupted by Ctrl-C.

mod args;
mod commands;
mod plots;
mod render;

use args::{Cli, Command};
use clap::Parser;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

extern "C" fn on_sigint(_: libc::c_int) {
    // async-signal-safe: one atomic store, then the default action for a second Ctrl-C
    render::CANCEL.store(true, Ordering::SeqCst);
    // SAFETY: signal() is async-signal-safe; SIGINT and SIG_DFL are valid arguments.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

/// The last panic's message and location, for the one-line internal error (the default
/// hook would print a backtrace hint even for panics the core catches and reports).
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Whether `e` is a write to a closed pipe (the reader, e.g. `head`, is done).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || matches!(
                c.downcast_ref::<embedcluster::Error>(),
                Some(embedcluster::Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::BrokenPipe
            )
    })
}

/// The front end's process-wide choices, made once from the environment (the core never
/// reads it): SIMD kernels and how stage peaks are measured (`EMBEDCLUSTER_STAGE_PEAKS`).
fn settings_from_env() {
    embedcluster::runtime::apply_settings(|name| std::env::var_os(name));
    // object-storage settings, read when a store is first built
    embedcluster::io::set_storage_settings(
        || embedcluster::io::storage_variables(std::env::vars()),
    );
}

/// Runs the command line `args` (the program name first) and returns the exit code: 0,
/// 2 for any error (one line on stderr), 130 when interrupted. `--help`, `--version` and
/// argument errors print and exit the process as clap does.
pub fn main_from<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    // before any thread of ours exists: the decoder threads' freed batches must go back to
    // the OS
    embedcluster::memory::single_malloc_arena();
    settings_from_env();
    let cli = Cli::parse_from(args);
    // clap has already refused any value but `sampled` and `reset`
    if let Some(m) = cli
        .stage_peaks
        .as_deref()
        .and_then(|m| embedcluster::memory::StagePeaks::parse(m).ok())
    {
        embedcluster::memory::set_stage_peaks(m);
    }
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(format!("{msg}{at}"));
        }
    }));
    // Ctrl-C stops the job at its next block or iteration; temporary outputs are removed
    // on the way out (exit code 130).
    // A file-size limit (ulimit -f) makes writes fail with EFBIG, reported like any other
    // write error, instead of killing the process with SIGXFSZ mid-write.
    // SAFETY: installing handlers with valid signal numbers; `on_sigint` only does an
    // atomic store and calls signal(), both async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let result = std::panic::catch_unwind(move || match cli.command {
        Command::Run(a) => commands::run::run(a),
        Command::Generate(a) => commands::generate::run(a),
        Command::Predict(a) => commands::predict::run(a),
        Command::Drift(a) => commands::drift::run(a),
        Command::Neighbors(a) => commands::neighbors::run(a),
        Command::Evaluate(a) => commands::evaluate::run(a),
        Command::Sweep(a) => commands::sweep::run(a),
        Command::Scale(a) => commands::scale::run(a),
    });
    match result {
        Ok(Ok(())) => 0,
        Ok(Err(e)) if is_broken_pipe(&e) => 0,
        Ok(Err(e)) => {
            if matches!(
                e.downcast_ref::<embedcluster::Error>(),
                Some(embedcluster::Error::Interrupted)
            ) {
                eprintln!("interrupted: no output was written");
                return 130;
            }
            // The core's messages already name the file and the OS error; anyhow's chain
            // would repeat the latter.
            match e.downcast_ref::<embedcluster::Error>() {
                Some(core) => eprintln!("error: {}", render::message(core)),
                None => eprintln!("error: {e:#}"),
            }
            2
        }
        Err(_) => {
            let what = LAST_PANIC
                .lock()
                .ok()
                .and_then(|l| l.clone())
                .unwrap_or_default();
            eprintln!("error: internal error (a bug in embedcluster; please report it with the command line): {what}");
            2
        }
    }
}
