//! The command-line edge: clap definitions, error reporting on one line, and the exit-status policy.
//!
//! Exit status, decided once at the end of a run:
//! * 0: ran, and no file reached `--fail-on`;
//! * 1: at least one file at or above `--fail-on` (this wins over errors);
//! * 2: an error (bad usage, an unreadable file);
//! * 130: interrupted.

pub mod check;
pub mod db;
pub mod lookup;
pub mod observe;
pub mod online;
pub mod scan;
pub mod serve;

use std::ffi::OsString;
use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::term::ColorChoice;

/// Exit status: nothing reached `--fail-on`.
pub const EXIT_OK: u8 = 0;
/// Exit status: at least one file at or above `--fail-on`.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit status: an error (usage, unreadable file).
pub const EXIT_ERROR: u8 = 2;
/// Exit status: interrupted (SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

const EXIT_HELP: &str = "\
Exit status:
  0    ran, and no file reached --fail-on
  1    at least one file is at or above --fail-on (wins over errors)
  2    an error: bad usage, or a file that could not be read
  130  interrupted";

/// File reputation from the command line: hashes, PE/ELF/Mach-O analysis and a verdict, offline.
#[derive(Debug, Parser)]
#[command(name = "filerep", version, about, after_help = EXIT_HELP, max_term_width = 100)]
pub struct Cli {
    /// When to colour the output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    /// The reputation store (default: $FILEREP_DB, else $XDG_DATA_HOME/filerep/store.sqlite); created on
    /// first use.
    #[arg(long, value_name = "PATH", global = true)]
    pub db: Option<std::path::PathBuf>,
    /// Remote store and providers.
    #[command(flatten)]
    pub online: online::OnlineArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Hash and analyse files and show a verdict card for each (`-` reads standard input).
    #[command(after_help = EXIT_HELP)]
    Check(check::Args),
    /// Look hashes up in the reputation store, without a file (`-` reads them from standard input).
    #[command(after_help = EXIT_HELP)]
    Lookup(lookup::Args),
    /// Check every executable under directories, for CI: findings, a policy, SARIF, and an exit status.
    #[command(after_help = EXIT_HELP)]
    Scan(scan::Args),
    /// Manage the reputation store: import feeds, show, add, remove, verify.
    Db {
        /// What to do.
        #[command(subcommand)]
        command: db::DbCommand,
    },
    /// Serve the reputation store over HTTP (JSON API and HTML card pages) until SIGTERM.
    Serve(serve::Args),
    /// Sample the running processes of this machine and record which executables run, and how heavily, in
    /// the local store (nothing leaves the machine).
    Observe(observe::Args),
}

/// Run the program with these arguments and return the exit status.
pub fn main_with_args(args: Vec<OsString>) -> ExitCode {
    crate::analysis::install_quiet_panic_hook();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
            // clap prints help/version to stdout and errors to stderr.
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    exit_130_on_sigint();
    let color = cli.color.resolve_for_stdout();
    let online = || online::Online::resolve(&cli.online, cli.db.as_deref());
    let result = match cli.command {
        Command::Check(args) => online().and_then(|o| check::run(&args, cli.db.as_deref(), color, &o)),
        Command::Lookup(args) => online().and_then(|o| lookup::run(&args, cli.db.as_deref(), color, &o)),
        Command::Scan(args) => online().and_then(|o| scan::run(&args, cli.db.as_deref(), color, &o)),
        Command::Db { command } => cli.online.only_for_checks().and_then(|()| db::run(&command, cli.db.as_deref())),
        Command::Serve(args) => cli.online.only_for_checks().and_then(|()| serve::run(&args, cli.db.as_deref())),
        Command::Observe(args) => {
            cli.online.only_for_observe().and_then(|()| observe::run(&args, cli.db.as_deref(), &cli.online))
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::from(EXIT_OK),
        Err(e) => {
            error_line(&format!("{e:#}"));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Ctrl-C: stop at once with the conventional status 130; partial output is not worth finishing.
///
/// A plain signal handler that calls `_exit` (async-signal-safe) instead of a handler thread: starting a
/// thread at every run cost more than a tenth of a millisecond of start-up. Nothing is flushed: the main
/// thread may hold the stdout lock, and output cut by an interrupt is expected.
#[cfg(unix)]
fn exit_130_on_sigint() {
    extern "C" fn on_sigint(_: libc::c_int) {
        // SAFETY: _exit is async-signal-safe and takes no pointers.
        unsafe { libc::_exit(i32::from(EXIT_INTERRUPTED)) }
    }
    // SAFETY: installs a handler for SIGINT whose body only calls _exit; no Rust state is touched.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t);
    }
}

#[cfg(not(unix))]
fn exit_130_on_sigint() {}

/// Worker threads: `-j N`, else the number of CPUs; at most 64, and no more than there is work.
pub fn jobs(requested: Option<usize>, work: usize) -> usize {
    requested
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
        .clamp(1, 64)
        .min(work.max(1))
}

/// A closed stdout (`filerep check … | head -1`) is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe))
}

/// Print one warning line to stderr: `filerep: warning: …`.
pub fn warn_line(msg: &str) {
    let msg = crate::term::sanitize(msg);
    #[allow(clippy::print_stderr)]
    {
        eprintln!("filerep: warning: {msg}");
    }
}

/// Print one diagnostic line to stderr: `filerep: error: …`.
pub fn error_line(msg: &str) {
    let msg = crate::term::sanitize(msg);
    #[allow(clippy::print_stderr)]
    {
        eprintln!("filerep: error: {msg}");
    }
}
