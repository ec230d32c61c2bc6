//! `filerep check FILE...`: run the pipeline on each file, in parallel, and print the results in argument order.
//!
//! Workers run the pipeline; this thread alone writes to stdout, in argument order, as soon as the next
//! report is ready. A file that cannot be read prints one line on stderr (naming it once) and still gets a
//! report with `error` set in JSON output.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use std::sync::Arc;

use anyhow::Result;

use crate::authenticode::Verifier;
use crate::authenticode::trust::TrustStore;

use crate::pipeline::{self, Options};
use crate::report::{Report, card, json};
use crate::sample::Input;
use crate::verdict::Level;

use super::{EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, error_line};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// The verdict card, for people.
    Card,
    /// One JSON document with every report.
    Json,
    /// One JSON report per line.
    Jsonl,
}

/// Arguments of `filerep check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files to check; `-` reads one file from standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<OsString>,
    /// Print one JSON document (`{"schema_version": 1, "reports": [...]}`); same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Card)]
    pub format: OutputFormat,
    /// List every imported function on the card (not just the libraries).
    #[arg(long)]
    pub all: bool,
    /// Exit with status 1 when a file's verdict is at or above this level.
    #[arg(long, value_name = "LEVEL", default_value = "malicious", value_parser = parse_level)]
    pub fail_on: Level,
    /// Read at most this many bytes into memory (suffixes K, M, G); larger files get only their digests.
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_size)]
    pub max_size: u64,
    /// Files checked at once (default: the number of CPUs).
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Judge from the file alone: do not open the reputation store.
    #[arg(long)]
    pub no_store: bool,
    /// Also trust these certificates (PEM or DER) as Authenticode anchors, for every purpose; repeatable.
    #[arg(long, value_name = "FILE.pem")]
    pub trust: Vec<std::path::PathBuf>,
    /// Trust only the `--trust` certificates, not the bundled Microsoft anchors.
    #[arg(long, requires = "trust")]
    pub trust_only: bool,
    /// Windows catalog files (.cat) to verify files against (catalog-signed files have no embedded
    /// signature); repeatable.
    #[arg(long, value_name = "FILE.cat")]
    pub catalog: Vec<std::path::PathBuf>,
}

/// The Authenticode verifier for `--trust`, `--trust-only` and `--catalog` (shared by `check` and `scan`).
pub fn verifier(trust_files: &[PathBuf], trust_only: bool, catalogs: &[PathBuf]) -> Result<Verifier> {
    let mut trust = if trust_only { TrustStore::empty() } else { TrustStore::bundled() };
    for file in trust_files {
        trust.add_file(file).map_err(|e| anyhow::anyhow!("--trust {e}"))?;
    }
    let mut verifier = Verifier::new(Arc::new(trust));
    for file in catalogs {
        let cat = crate::authenticode::catalog::load(file, &verifier).map_err(|e| anyhow::anyhow!("--catalog {e}"))?;
        verifier.catalogs.push(Arc::new(cat));
    }
    Ok(verifier)
}

/// Where the reputation store is, for a run that reads it.
pub enum StorePath {
    /// An existing store.
    Exists(PathBuf),
    /// No store there yet (`check` and `scan` do not create one): reports say it is empty.
    Missing(PathBuf),
    /// `--no-store`, or no place for a store (a warning was printed).
    None,
}

/// Resolve the store for `check` and `scan` (`--db`, `$FILEREP_DB`, the data directory).
pub fn store_path(no_store: bool, db: Option<&std::path::Path>) -> StorePath {
    if no_store {
        return StorePath::None;
    }
    match crate::store::sqlite::resolve_path(db) {
        Ok(path) if path.exists() => StorePath::Exists(path),
        Ok(path) => StorePath::Missing(path),
        // No HOME and no FILEREP_DB: still answer from the file, and say why the store is missing.
        Err(e) => {
            super::warn_line(&format!("{e}; judging from the files alone"));
            StorePath::None
        }
    }
}

pub fn parse_level(s: &str) -> Result<Level, String> {
    s.parse()
}

/// Parse a size: a number of bytes with an optional K, M or G suffix (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (t, 1u64),
        Some((i, _)) => {
            let mult = match t[i..].to_ascii_lowercase().as_str() {
                "k" | "kb" | "kib" => 1 << 10,
                "m" | "mb" | "mib" => 1 << 20,
                "g" | "gb" | "gib" => 1 << 30,
                "b" => 1,
                _ => return Err(format!("invalid size '{s}': use a number of bytes, optionally with K, M or G")),
            };
            (&t[..i], mult)
        }
    };
    let n: u64 =
        num.parse().map_err(|_| format!("invalid size '{s}': use a number of bytes, optionally with K, M or G"))?;
    n.checked_mul(mult).ok_or_else(|| format!("size '{s}' is too large"))
}

/// Run `check`; returns the exit status.
pub fn run(args: &Args, db: Option<&std::path::Path>, color: bool, online: &super::online::Online) -> Result<u8> {
    let format = if args.json { OutputFormat::Json } else { args.format };
    let inputs: Vec<Input> = args.files.iter().map(|f| Input::from_arg(f)).collect();
    if inputs.iter().filter(|i| **i == Input::Stdin).count() > 1 {
        anyhow::bail!("`-` (standard input) can be given only once");
    }
    let opts = Options {
        max_size: args.max_size,
        verifier: Arc::new(verifier(&args.trust, args.trust_only, &args.catalog)?),
        fuzzy: true,
        threads_per_file: true,
    };
    // One input needs no worker threads (and no look at the CPU count, which reads cgroup files).
    let jobs = if inputs.len() <= 1 { 1 } else { super::jobs(args.jobs, inputs.len()) };

    // The store is opened once, on this thread, which also prints: lookups take microseconds. A store that
    // does not exist yet is not created by `check` (that is for `db import`): the report says it is empty.
    let (store, missing_store) = match store_path(args.no_store || online.remote_only, db) {
        StorePath::Exists(path) => (crate::store::sqlite::SqliteStore::open_existing(&path)?, None),
        StorePath::Missing(path) => (None, Some(path.display().to_string())),
        StorePath::None => (None, None),
    };
    let mut stdout = io::stdout().lock();
    let mut worst_hit = false;
    let mut errors = false;
    let mut all_reports = Vec::new();
    let card_opts = card::Options { color, all_imports: args.all };

    let mut emit = |mut report: Report, out: &mut io::StdoutLock<'_>| -> Result<()> {
        if let Some(store) = &store {
            crate::reputation::consult(store, &mut report)?;
        } else if let Some(path) = &missing_store {
            if report.error.is_none() {
                report.reputation = Some(crate::report::Reputation { store: path.clone(), ..Default::default() });
            }
        }
        if !online.is_offline() && report.error.is_none() {
            let external = online.external_for(&[&report])?;
            if let Some(ext) = external.first() {
                crate::reputation::add_external(&mut report, ext);
            }
            online.submit(&[&report])?;
        }
        if let Some(err) = &report.error {
            errors = true;
            error_line(&format!("{}: {err}", report.path));
        }
        if report.verdict.level >= args.fail_on && report.error.is_none() {
            worst_hit = true;
        }
        match format {
            OutputFormat::Card => {
                if report.error.is_none() {
                    out.write_all(card::render(&report, &card_opts).as_bytes())?;
                }
            }
            OutputFormat::Jsonl => out.write_all(json::render_line(&report).as_bytes())?,
            OutputFormat::Json => all_reports.push(report),
        }
        Ok(())
    };

    if jobs <= 1 {
        for input in &inputs {
            let report = pipeline::check(input, &opts);
            emit(report, &mut stdout)?;
        }
    } else {
        let next = AtomicUsize::new(0);
        let (tx, rx) = mpsc::channel::<(usize, Report)>();
        std::thread::scope(|s| -> Result<()> {
            for _ in 0..jobs {
                let tx = tx.clone();
                let (next, inputs, opts) = (&next, &inputs, &opts);
                s.spawn(move || {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(input) = inputs.get(i) else { break };
                        if tx.send((i, pipeline::check(input, opts))).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            // Print in argument order as soon as the next report is ready.
            let mut pending = BTreeMap::new();
            let mut want = 0;
            for (i, report) in rx {
                pending.insert(i, report);
                while let Some(r) = pending.remove(&want) {
                    if let Err(e) = emit(r, &mut stdout) {
                        // Stop the workers from starting new files, then report the error.
                        next.store(usize::MAX / 2, Ordering::Relaxed);
                        return Err(e);
                    }
                    want += 1;
                }
            }
            Ok(())
        })?;
    }
    if format == OutputFormat::Json {
        let doc = json::document(all_reports);
        stdout.write_all(json::render_document(&doc).as_bytes())?;
    }
    stdout.flush()?;
    Ok(if worst_hit {
        EXIT_FINDINGS
    } else if errors {
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("-1").is_err());
        assert!(parse_size("1T").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
        assert_eq!(crate::sample::DEFAULT_MAX_SIZE, parse_size("256M").unwrap());
    }
}
