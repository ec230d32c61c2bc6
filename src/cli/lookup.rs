//! `filerep lookup HASH...`: what the store knows about hashes, without a file.
//!
//! Hashes are validated strictly before anything is looked up (ASCII hex of the right length and nothing
//! else); one bad hash is an error (exit 2) that names it and says what is accepted. The verdict comes from
//! the store's evidence alone, with the same levels, reasons and `--fail-on` as `check`.

use std::io::{self, Write};

use anyhow::{Result, bail};

use crate::report::{LookupDocument, SCHEMA_VERSION, card};
use crate::store::DigestKind;
use crate::store::feeds::{Line, Lines};
use crate::store::sqlite::{Mode, SqliteStore};
use crate::verdict::Level;

use super::check::OutputFormat;
use super::db::parse_digest;
use super::{EXIT_FINDINGS, EXIT_OK};

/// Most hashes read from standard input in one run.
pub const MAX_STDIN_HASHES: usize = 1_000_000;

/// Arguments of `filerep lookup`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Hashes to look up (MD5, SHA-1 or SHA-256 by length); `-` reads one hash a line from standard input.
    #[arg(required = true, value_name = "HASH")]
    pub hashes: Vec<String>,
    /// Look the hashes up as this kind of digest (for an authentihash or an imphash).
    #[arg(long, value_parser = |s: &str| s.parse::<DigestKind>())]
    pub kind: Option<DigestKind>,
    /// Print one JSON document; same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Card)]
    pub format: OutputFormat,
    /// Exit with status 1 when a hash's verdict is at or above this level.
    #[arg(long, value_name = "LEVEL", default_value = "malicious", value_parser = |s: &str| s.parse::<Level>())]
    pub fail_on: Level,
}

/// Run `lookup`.
pub fn run(args: &Args, db: Option<&std::path::Path>, color: bool, online: &super::online::Online) -> Result<u8> {
    let format = if args.json { OutputFormat::Json } else { args.format };
    let mut queries = Vec::new();
    for h in &args.hashes {
        if h == "-" {
            // Line length is capped (a hostile stream without newlines cannot fill memory).
            let mut lines = Lines::new(io::stdin().lock());
            while let Some(line) = lines.next().map_err(|e| anyhow::anyhow!("standard input: {e}"))? {
                let (no, t) = match line {
                    Line::Text(no, t) => (no, t.trim()),
                    Line::Bad(no, why) => bail!("standard input line {no}: {why}; expected one hash a line"),
                };
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                if queries.len() >= MAX_STDIN_HASHES {
                    bail!("standard input: more than {MAX_STDIN_HASHES} hashes; split the list");
                }
                let d = parse_digest(t, args.kind).map_err(|e| anyhow::anyhow!("standard input line {no}: {e:#}"))?;
                queries.push(d);
            }
        } else {
            queries.push(parse_digest(h, args.kind)?);
        }
    }
    let store = if online.remote_only {
        None
    } else {
        let path = crate::store::sqlite::resolve_path(db)?;
        Some(SqliteStore::open(&path, Mode::Read)?)
    };
    // Every hash to the remote and the providers at once (batched).
    let external = online.external_for_digests(&queries)?;
    let mut out = io::stdout().lock();
    let mut hit = false;
    let mut all = Vec::new();
    let opts = card::Options { color, all_imports: false };
    for (d, ext) in queries.iter().zip(&external) {
        let report = crate::reputation::lookup_report_with(store.as_ref(), &d.hex(), std::slice::from_ref(d), ext)?;
        if report.verdict.level >= args.fail_on {
            hit = true;
        }
        match format {
            OutputFormat::Card => out.write_all(card::render_lookup(&report, &opts).as_bytes())?,
            OutputFormat::Jsonl => {
                serde_json::to_writer(&mut out, &report)?;
                out.write_all(b"\n")?;
            }
            OutputFormat::Json => all.push(report),
        }
    }
    if format == OutputFormat::Json {
        let doc = LookupDocument {
            schema_version: SCHEMA_VERSION,
            filerep_version: env!("CARGO_PKG_VERSION").to_string(),
            lookups: all,
        };
        serde_json::to_writer_pretty(&mut out, &doc)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(if hit { EXIT_FINDINGS } else { EXIT_OK })
}
