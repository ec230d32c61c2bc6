//! The `filerep` binary: parse arguments, run, map to an exit status.

fn main() -> std::process::ExitCode {
    filerep::cli::main_with_args(std::env::args_os().collect())
}
