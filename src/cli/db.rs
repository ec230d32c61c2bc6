//! `filerep db …`: import feeds into the store, inspect it, edit single hashes, verify it.
//!
//! Progress goes to stderr (a bar only when stderr is a terminal), the summary to stdout. Every store error
//! is one line naming the store; exit status 2.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::store::feeds::{DEFAULT_MAX_EXPANDED, FeedFormat, ParseOptions};
use crate::store::sqlite::{ImportRequest, Mode, SqliteStore};
use crate::store::{Class, Digest, DigestKind, Meta};

use super::EXIT_OK;
use super::check::parse_size;

/// `filerep db` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DbCommand {
    /// Import a feed file as a new version of its source (the old version stays visible until the import
    /// is complete).
    Import(ImportArgs),
    /// Show the store: its sources, their data set versions and dates, counts and size.
    Info {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add one hash to a source of your own, with a class.
    Add(AddArgs),
    /// Remove one hash (from one source, or from all).
    Remove {
        /// The hash (hex; 32/40/64 characters for MD5/SHA-1/SHA-256, or with --kind).
        hash: String,
        /// Only from this source.
        #[arg(long)]
        source: Option<String>,
        /// The digest kind, for an authentihash or an imphash.
        #[arg(long, value_parser = parse_kind)]
        kind: Option<DigestKind>,
    },
    /// Remove a source and all its data.
    RemoveFeed {
        /// The source name (see `db info`).
        source: String,
    },
    /// Check the store's integrity; exit 2 with the problems when it is damaged.
    Verify,
}

/// Arguments of `db import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The feed's format.
    #[arg(long, value_enum)]
    pub format: FeedFormat,
    /// The feed file (gzip, and the first entry of a zip archive, are read as they come).
    pub path: PathBuf,
    /// The source name (default: by format, e.g. loldrivers, nsrl; required for hashlist).
    #[arg(long)]
    pub source: Option<String>,
    /// The class of every record (required for hashlist; overrides the feed's own).
    #[arg(long, value_parser = parse_class)]
    pub class: Option<Class>,
    /// The digest kind of a hash list (default: told by each line's length).
    #[arg(long, value_parser = parse_kind)]
    pub kind: Option<DigestKind>,
    /// The data set version to record (default: what the feed says, if anything).
    #[arg(long = "set-version", value_name = "VERSION")]
    pub set_version: Option<String>,
    /// The data set date to record (default: what the feed says, if anything).
    #[arg(long = "set-date", value_name = "DATE")]
    pub set_date: Option<String>,
    /// Abort on the first bad line (the store is left unchanged).
    #[arg(long)]
    pub strict: bool,
    /// Refuse a compressed feed that expands beyond this size (suffixes K, M, G).
    #[arg(long, value_name = "SIZE", default_value = "64G", value_parser = parse_size)]
    pub max_expanded: u64,
    /// `--format catalog`: also trust these certificates (PEM or DER) when verifying the catalogs.
    #[arg(long, value_name = "FILE.pem")]
    pub trust: Vec<PathBuf>,
}

/// Arguments of `db add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The hash (hex; 32/40/64 characters for MD5/SHA-1/SHA-256, or with --kind).
    pub hash: String,
    /// Its class.
    #[arg(long, value_parser = parse_class)]
    pub class: Class,
    /// The source to add it to (a source of your own, created on first use).
    #[arg(long, default_value = "local")]
    pub source: String,
    /// The digest kind, for an authentihash or an imphash.
    #[arg(long, value_parser = parse_kind)]
    pub kind: Option<DigestKind>,
    /// A file name to record with it.
    #[arg(long)]
    pub name: Option<String>,
    /// A note (shown as its description).
    #[arg(long)]
    pub note: Option<String>,
}

fn parse_class(s: &str) -> Result<Class, String> {
    s.parse()
}

fn parse_kind(s: &str) -> Result<DigestKind, String> {
    s.parse()
}

/// Parse a hash strictly, as `kind` or by length.
pub fn parse_digest(s: &str, kind: Option<DigestKind>) -> Result<Digest> {
    let parsed = match kind {
        Some(k) => Digest::parse_hex(k, s),
        None => Digest::parse_file_hash(s),
    };
    parsed.map_err(|e| {
        anyhow::anyhow!(
            "invalid hash '{}': {e}; accepted: ASCII hex only, 32 (MD5), 40 (SHA-1) or 64 (SHA-256) characters, \
             or --kind for an authentihash or imphash",
            crate::term::sanitize(&s.chars().take(80).collect::<String>())
        )
    })
}

/// Run `db`.
pub fn run(cmd: &DbCommand, db: Option<&std::path::Path>) -> Result<u8> {
    let path = crate::store::sqlite::resolve_path(db)?;
    let mode = match cmd {
        DbCommand::Info { .. } | DbCommand::Verify => Mode::Read,
        _ => Mode::Write,
    };
    let mut store = SqliteStore::open(&path, mode)?;
    let mut out = io::stdout().lock();
    match cmd {
        DbCommand::Import(a) => import(&mut store, a, &mut out),
        DbCommand::Info { json } => info(&store, *json, &mut out),
        DbCommand::Add(a) => {
            let digest = parse_digest(&a.hash, a.kind)?;
            let meta = Meta { file_name: a.name.clone(), description: a.note.clone(), ..Default::default() };
            let new = store.add(&a.source, a.class, &digest, &meta)?;
            writeln!(
                out,
                "{} {} {} as {} in source {}",
                if new { "added" } else { "updated" },
                digest.kind(),
                digest.hex(),
                a.class,
                a.source
            )?;
            Ok(EXIT_OK)
        }
        DbCommand::Remove { hash, source, kind } => {
            let digest = parse_digest(hash, *kind)?;
            let from = store.remove(&digest, source.as_deref())?;
            if from.is_empty() {
                writeln!(out, "{} {} was not in the store", digest.kind(), digest.hex())?;
            } else {
                writeln!(out, "removed {} {} from {}", digest.kind(), digest.hex(), from.join(", "))?;
            }
            Ok(EXIT_OK)
        }
        DbCommand::RemoveFeed { source } => {
            if store.remove_feed(source)? {
                writeln!(out, "removed source {source}")?;
                Ok(EXIT_OK)
            } else {
                bail!("no source named {source} in the store {}", path.display())
            }
        }
        DbCommand::Verify => {
            let problems = store.verify()?;
            if problems.is_empty() {
                writeln!(out, "{}: ok ({} sources, integrity check passed)", path.display(), store.source_count())?;
                Ok(EXIT_OK)
            } else {
                for p in &problems {
                    super::error_line(&format!("{}: {p}", path.display()));
                }
                bail!(
                    "store {} is damaged ({} problem{}): remove it and import the feeds again",
                    path.display(),
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                )
            }
        }
    }
}

fn import(store: &mut SqliteStore, a: &ImportArgs, out: &mut impl Write) -> Result<u8> {
    let source = match (&a.source, a.format.default_source()) {
        (Some(s), _) => s.clone(),
        (None, Some(d)) => d.to_string(),
        (None, None) => bail!("--source is required for --format {}", a.format.as_str()),
    };
    if source.is_empty() || source.len() > 64 || !source.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        bail!("invalid source name '{}': use 1-64 letters, digits, '-', '_' or '.'", crate::term::sanitize(&source));
    }
    if a.format == FeedFormat::Hashlist && a.class.is_none() {
        bail!("--class is required for --format hashlist (known-good, known-file, vulnerable or malicious)");
    }
    let meta = std::fs::metadata(&a.path).with_context(|| format!("{}", a.path.display()))?;
    // Catalogs may come as a directory (Windows' CatRoot); every other feed is one file.
    let catalog_dir = a.format == FeedFormat::Catalog && meta.is_dir();
    if !meta.is_file() && !catalog_dir {
        bail!("{}: not a regular file", a.path.display());
    }
    let total = meta.len();
    let req = ImportRequest {
        format: a.format,
        path: a.path.clone(),
        source,
        version: a.set_version.clone(),
        date: a.set_date.clone(),
        options: ParseOptions { class: a.class, kind: a.kind, trust: a.trust.clone() },
        strict: a.strict,
        max_expanded: if a.max_expanded == 0 { DEFAULT_MAX_EXPANDED } else { a.max_expanded },
    };
    let bar = if io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(format!("importing {}", a.format.as_str()));
        Some(bar)
    } else {
        None
    };
    let progress = |bytes: u64| {
        if let Some(b) = &bar {
            b.set_position(bytes);
        }
    };
    let result = store.import(&req, &progress);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let s = result.with_context(|| format!("{}: import as {} failed", a.path.display(), a.format.as_str()))?;
    for (line, why) in &s.skipped_examples {
        super::warn_line(&format!("{}: line {line}: {why} (skipped)", a.path.display()));
    }
    let label = match (&s.version, &s.date) {
        (Some(v), _) => format!(" {v}"),
        (None, Some(d)) => format!(" {d}"),
        _ => String::new(),
    };
    if s.unchanged {
        writeln!(out, "{}{label}: unchanged (the same data is already imported); {} digests", s.source, s.digests)?;
    } else {
        writeln!(
            out,
            "{}{label}: imported {} records, {} distinct digests, {} bad lines skipped, in {:.1} s ({:.0} records/s){}",
            s.source,
            s.records,
            s.digests,
            s.skipped,
            s.seconds,
            if s.seconds > 0.0 { s.records as f64 / s.seconds } else { 0.0 },
            s.replaced.as_ref().map(|r| format!("; replaced version {r}")).unwrap_or_default()
        )?;
    }
    // (--strict stops at the first bad line, so an import that got here under it had none.)
    Ok(EXIT_OK)
}

fn info(store: &SqliteStore, json: bool, out: &mut impl Write) -> Result<u8> {
    let info = store.info()?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &info)?;
        writeln!(out)?;
        return Ok(EXIT_OK);
    }
    writeln!(out, "store    {}", info.path)?;
    writeln!(
        out,
        "size     {} bytes (schema version {})",
        crate::report::card::thousands(info.size),
        info.schema_version
    )?;
    if info.sightings > 0 {
        writeln!(
            out,
            "observed {} sightings (filerep observe)",
            crate::report::card::thousands(info.sightings as u64)
        )?;
    }
    if info.feeds.is_empty() {
        writeln!(out, "sources  none yet: import one with `filerep db import --format FORMAT PATH`")?;
        return Ok(EXIT_OK);
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<18} {:<18} {:<22} {:>12} {:>12} {:>8}  imported",
        "source", "format", "version/date", "records", "digests", "skipped"
    )?;
    for f in &info.feeds {
        let ver = f.version.as_ref().or(f.date.as_ref()).cloned().unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "{:<18} {:<18} {:<24} {:>12} {:>12} {:>8}  {}",
            f.source,
            f.format,
            ver,
            crate::report::card::thousands(f.records as u64),
            crate::report::card::thousands(f.digests as u64),
            f.skipped,
            f.imported_at
        )?;
    }
    Ok(EXIT_OK)
}
