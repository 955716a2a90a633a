//! The `embedcluster` binary: the command line of [`embedcluster_cli::main_from`].

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(embedcluster_cli::main_from(std::env::args_os()))
}
