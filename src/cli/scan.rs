//! `filerep scan PATH...`: every executable under the paths, checked in parallel, with findings for CI.
//!
//! The walk (the `ignore` crate, in parallel, without gitignore rules: build outputs are usually ignored
//! by git and are exactly what a scan is for) collects the paths and sorts them, so every output is in a
//! stable order. Workers select executables by their first bytes, run the pipeline, consult the store
//! (one connection per worker), and turn the report into findings. This thread alone writes: the output in
//! path order as soon as the next file is ready, error lines and the progress bar on stderr.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use anyhow::{Context, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;

use crate::pipeline::{self, Options};
use crate::report::Report;
use crate::scan::baseline::Baseline;
use crate::scan::csv::CsvWriter;
use crate::scan::policy::{self, Mode, Policy};
use crate::scan::sarif::SarifWriter;
use crate::scan::{Rules, ScanEntry, Summary};
use crate::store::sqlite::SqliteStore;
use crate::verdict::Level;

use super::check::{StorePath, parse_size, store_path, verifier};
use super::{EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, error_line, warn_line};

/// Output formats of `scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanFormat {
    /// Files with findings or errors, then counts per level (the default on a terminal).
    Table,
    /// One JSON document: `{"files": [...], "summary": {...}}` (the default otherwise).
    Json,
    /// One `{"type": "file"}` line per file, then one `{"type": "summary"}` line.
    Jsonl,
    /// sigcheck-like columns, one row per file.
    Csv,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
}

/// Arguments of `filerep scan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files and directories to scan (directories recursively).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output format (default: `table` on a terminal, `json` otherwise).
    #[arg(long, value_enum)]
    pub format: Option<ScanFormat>,
    /// Write the output to this file instead of standard output (written whole, then renamed into place).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Fail (exit 1) when a file's verdict is at or above this level (default: the policy's `fail_on`, else
    /// malicious).
    #[arg(long, value_name = "LEVEL", value_parser = super::check::parse_level)]
    pub fail_on: Option<Level>,
    /// The policy file (default: `filerep.toml` in the scanned directory or a parent, up to the repository
    /// root).
    #[arg(long, value_name = "FILE", conflicts_with = "no_policy")]
    pub policy: Option<PathBuf>,
    /// Do not look for a `filerep.toml`.
    #[arg(long)]
    pub no_policy: bool,
    /// Require these hardening checks (comma-separated ids, or `all`): a failure fails the run.
    #[arg(long, value_name = "CHECKS", value_delimiter = ',')]
    pub require: Vec<String>,
    /// Report these hardening checks without failing the run (comma-separated ids, or `all`).
    #[arg(long, value_name = "CHECKS", value_delimiter = ',')]
    pub warn: Vec<String>,
    /// A previous `--format json` (or `jsonl`) result: report only findings that are new since.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Check every file, not only those whose first bytes are an executable's (MZ, ELF, Mach-O).
    #[arg(long)]
    pub all_files: bool,
    /// Only files matching this glob (a glob with `/` matches the path under the root, one without matches
    /// the file name); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Skip files and directories matching this glob (same matching as `--include`); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Follow symbolic links (they are skipped by default).
    #[arg(long)]
    pub follow: bool,
    /// Read at most this many bytes of a file into memory (suffixes K, M, G); larger files get only their
    /// digests.
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_size)]
    pub max_size: u64,
    /// Files checked at once (default: the number of CPUs).
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Also compute the fuzzy hashes (TLSH, ssdeep), as `check` does. They take about two thirds of the
    /// hashing time and no verdict or store lookup uses them, so a scan leaves them out (null in JSON).
    #[arg(long)]
    pub fuzzy: bool,
    /// Judge from the files alone: do not open the reputation store.
    #[arg(long)]
    pub no_store: bool,
    /// Also trust these certificates (PEM or DER) as Authenticode anchors; repeatable.
    #[arg(long, value_name = "FILE.pem")]
    pub trust: Vec<PathBuf>,
    /// Trust only the `--trust` certificates, not the bundled Microsoft anchors.
    #[arg(long, requires = "trust")]
    pub trust_only: bool,
    /// Windows catalog files (.cat) to verify files against; repeatable.
    #[arg(long, value_name = "FILE.cat")]
    pub catalog: Vec<PathBuf>,
    /// No progress bar and no summary line on standard error.
    #[arg(short, long)]
    pub quiet: bool,
}

/// One path to check, with the root it was found under.
struct Item {
    path: PathBuf,
    root: usize,
    relative: String,
    /// A walk error for this path (an unreadable directory, a symlink loop).
    walk_error: Option<String>,
}

/// Run `scan`; returns the exit status.
pub fn run(args: &Args, db: Option<&Path>, color: bool, online: &super::online::Online) -> Result<u8> {
    let format = args.format.unwrap_or(if io::stdout().is_terminal() && args.output.is_none() {
        ScanFormat::Table
    } else {
        ScanFormat::Json
    });
    for p in &args.paths {
        std::fs::symlink_metadata(p).with_context(|| format!("{}: cannot scan", p.display()))?;
    }
    let rules = Arc::new(rules(args)?);
    let baseline = args
        .baseline
        .as_deref()
        .map(|p| Baseline::load(p).map_err(|e| anyhow::anyhow!("--baseline {e}")))
        .transpose()?
        .map(Arc::new);
    let opts = Options {
        max_size: args.max_size,
        verifier: Arc::new(verifier(&args.trust, args.trust_only, &args.catalog)?),
        fuzzy: args.fuzzy,
        // One file per core already; a lone scan thread (-j 1, or one CPU) still splits large files.
        threads_per_file: super::jobs(args.jobs, usize::MAX) <= 1,
    };
    let store = store_path(args.no_store || online.remote_only, db);
    if let StorePath::Exists(path) = &store {
        // Open once here so that a broken store is one clear error before any work.
        SqliteStore::open_existing(path)?;
    }
    let filters = Filters::new(&args.include, &args.exclude)?;
    let (items, skipped_links) = walk(&args.paths, &filters, args.follow, super::jobs(args.jobs, usize::MAX));

    let mut out = Output::open(args.output.as_deref())?;
    let roots: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
    let mut writer = Writer::begin(format, &mut out, &args.paths, &roots, color)?;
    let show_progress = !args.quiet && io::stderr().is_terminal();
    let bar = show_progress.then(|| progress_bar(items.len() as u64));

    let mut summary = Summary {
        fail_on: rules.fail_on,
        policy: rules.policy.path.as_ref().map(|p| p.display().to_string()),
        files_seen: skipped_links,
        ..Default::default()
    };
    let mut failed = false;
    let mut errors = false;
    let mut expired_warned = std::collections::HashSet::new();

    let mut emit = |item: &Item, entry: Option<ScanEntry>, out: &mut Output| -> Result<()> {
        summary.files_seen += 1;
        if let Some(b) = &bar {
            b.inc(1);
        }
        let Some(entry) = entry else {
            summary.skipped_not_executable += 1;
            return Ok(());
        };
        if let Some(err) = &entry.report.error {
            errors = true;
            summary.errors += 1;
            let line = format!("{}: {err}", item.path.display());
            match &bar {
                Some(b) => b.suspend(|| error_line(&line)),
                None => error_line(&line),
            }
        } else {
            summary.files_checked += 1;
            summary.levels.add(entry.report.verdict.level);
        }
        for f in &entry.findings {
            if let Some(s) = f.suppression.as_ref().filter(|s| s.expired) {
                summary.expired_suppressions += 1;
                if expired_warned.insert(s.matched_by.clone()) {
                    let line = format!(
                        "suppression '{}' expired on {} and no longer suppresses ({}: {})",
                        s.matched_by,
                        s.expires.as_deref().unwrap_or("?"),
                        entry.relative_path,
                        f.rule
                    );
                    match &bar {
                        Some(b) => b.suspend(|| warn_line(&line)),
                        None => warn_line(&line),
                    }
                }
            }
            if f.baseline == Some(crate::scan::BaselineState::Unchanged) {
                summary.unchanged += 1;
            } else if f.is_suppressed() {
                summary.suppressed += 1;
            } else {
                summary.findings += 1;
                if f.counts() {
                    summary.failing += 1;
                }
            }
        }
        failed |= entry.fails();
        writer.entry(out, item.root, &entry)
    };

    let n_jobs = super::jobs(args.jobs, items.len());
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::sync_channel::<(usize, Option<ScanEntry>)>(n_jobs * 64);
    let store_failure: Mutex<Option<String>> = Mutex::new(None);
    let result = std::thread::scope(|s| -> Result<()> {
        for _ in 0..n_jobs {
            let tx = tx.clone();
            let (next, items, opts, rules, baseline, store, store_failure, roots) =
                (&next, &items, &opts, &rules, &baseline, &store, &store_failure, &roots);
            let all_files = args.all_files;
            s.spawn(move || {
                let mut conn = match store {
                    StorePath::Exists(path) => match SqliteStore::open_existing(path) {
                        Ok(c) => c,
                        Err(e) => {
                            *store_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                            next.store(usize::MAX / 2, Ordering::Relaxed);
                            return;
                        }
                    },
                    _ => None,
                };
                let missing = match store {
                    StorePath::Missing(p) => Some(p.display().to_string()),
                    _ => None,
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let root_name = roots.get(item.root).map_or("", String::as_str);
                    let entry = check_item(
                        item,
                        opts,
                        all_files,
                        conn.as_mut(),
                        missing.as_deref(),
                        rules,
                        baseline,
                        root_name,
                    );
                    if tx.send((i, entry)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut want = 0;
        // Entries ready in path order wait here while the remote store and providers are asked about them
        // in one batch; offline, each is written as soon as it is ready.
        let mut batch: Vec<(usize, Option<ScanEntry>)> = Vec::new();
        let mut flush = |batch: &mut Vec<(usize, Option<ScanEntry>)>, out: &mut Output| -> Result<()> {
            if !online.is_offline() {
                enrich(online, batch, &rules, &baseline)?;
            }
            for (i, e) in batch.drain(..) {
                emit(&items[i], e, out)?;
            }
            Ok(())
        };
        let result = (|| -> Result<()> {
            loop {
                let got = if batch.is_empty() {
                    rx.recv().ok()
                } else {
                    match rx.try_recv() {
                        Ok(x) => Some(x),
                        Err(mpsc::TryRecvError::Empty) => {
                            flush(&mut batch, &mut out)?;
                            continue;
                        }
                        Err(mpsc::TryRecvError::Disconnected) => None,
                    }
                };
                let Some((i, entry)) = got else { break };
                pending.insert(i, entry);
                while let Some(e) = pending.remove(&want) {
                    batch.push((want, e));
                    want += 1;
                }
                if online.is_offline() || batch.len() >= REMOTE_BATCH_FILES {
                    flush(&mut batch, &mut out)?;
                }
            }
            flush(&mut batch, &mut out)
        })();
        if result.is_err() {
            next.store(usize::MAX / 2, Ordering::Relaxed);
        }
        result
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    result?;
    if let Some(e) = store_failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        anyhow::bail!("{e}");
    }
    let code = if failed {
        EXIT_FINDINGS
    } else if errors {
        EXIT_ERROR
    } else {
        EXIT_OK
    };
    summary.exit_status = code;
    writer.finish(&mut out, &summary)?;
    out.commit()?;
    if !args.quiet {
        summary_line(&summary, baseline.is_some());
    }
    Ok(code)
}

/// Files asked about in one batch when a remote store or providers are configured (a file has up to six
/// digests; the remote takes 1,000 hashes a request).
const REMOTE_BATCH_FILES: usize = 150;

/// Ask the remote store and the providers about a batch of entries, add their evidence, and judge the
/// findings again; `--submit` sends the reports.
fn enrich(
    online: &super::online::Online,
    batch: &mut [(usize, Option<ScanEntry>)],
    rules: &Rules,
    baseline: &Option<Arc<Baseline>>,
) -> Result<()> {
    let mut entries: Vec<&mut ScanEntry> =
        batch.iter_mut().filter_map(|(_, e)| e.as_mut()).filter(|e| e.report.error.is_none()).collect();
    if entries.is_empty() {
        return Ok(());
    }
    let external = {
        let reports: Vec<&Report> = entries.iter().map(|e| &e.report).collect();
        online.external_for(&reports)?
    };
    for (entry, ext) in entries.iter_mut().zip(&external) {
        crate::reputation::add_external(&mut entry.report, ext);
        entry.findings = rules.findings(&entry.report, &entry.relative_path);
        if let Some(b) = baseline {
            b.mark(&entry.relative_path, &mut entry.findings);
        }
    }
    let reports: Vec<&Report> = entries.iter().map(|e| &e.report).collect();
    online.submit(&reports)
}

/// The policy, `--fail-on`, `--require`/`--warn`, and today's date.
fn rules(args: &Args) -> Result<Rules> {
    let policy_path = if args.no_policy {
        None
    } else if let Some(p) = &args.policy {
        Some(p.clone())
    } else {
        args.paths.iter().find_map(|p| policy::discover(p))
    };
    let mut policy = match &policy_path {
        Some(p) => Policy::load(p).map_err(|e| anyhow::anyhow!("policy {e}"))?,
        None => Policy::default(),
    };
    for (ids, mode) in [(&args.warn, Mode::Warn), (&args.require, Mode::Require)] {
        for id in ids.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            if id == "all" {
                for c in crate::hardening::CHECKS {
                    policy.checks.insert(c.id.to_string(), mode);
                }
            } else if crate::hardening::info(id).is_some() {
                policy.checks.insert(id.to_string(), mode);
            } else {
                let known: Vec<&str> = crate::hardening::CHECKS.iter().map(|c| c.id).collect();
                anyhow::bail!("unknown hardening check '{id}' (known: all, {})", known.join(", "));
            }
        }
    }
    let fail_on = args.fail_on.or(policy.fail_on).unwrap_or(Level::Malicious);
    Ok(Rules { policy, fail_on, today: policy::today() })
}

#[allow(clippy::too_many_arguments)]
fn check_item(
    item: &Item,
    opts: &Options,
    all_files: bool,
    store: Option<&mut SqliteStore>,
    missing_store: Option<&str>,
    rules: &Rules,
    baseline: &Option<Arc<Baseline>>,
    root_name: &str,
) -> Option<ScanEntry> {
    let mut report = match &item.walk_error {
        Some(e) => Report { path: item.path.display().to_string(), error: Some(e.clone()), ..Default::default() },
        None => pipeline::check_if_executable(&item.path, opts, all_files)?,
    };
    if report.error.is_none() {
        if let Some(store) = store {
            if let Err(e) = crate::reputation::consult(store, &mut report) {
                report.error = Some(format!("reputation store: {e}"));
            }
        } else if let Some(path) = missing_store {
            report.reputation = Some(crate::report::Reputation { store: path.to_string(), ..Default::default() });
        }
    }
    let mut findings = rules.findings(&report, &item.relative);
    if let Some(b) = baseline {
        b.mark(&item.relative, &mut findings);
    }
    Some(ScanEntry { relative_path: item.relative.clone(), root: root_name.to_string(), report, findings })
}

// ------------------------------------------------------------------------------------------------ walk

/// `--include` / `--exclude` globs: with a `/` they match the path under the root, without one the name.
#[derive(Debug)]
struct Filters {
    include_path: GlobSet,
    include_name: GlobSet,
    exclude_path: GlobSet,
    exclude_name: GlobSet,
    has_include: bool,
}

impl Filters {
    fn new(include: &[String], exclude: &[String]) -> Result<Filters> {
        fn sets(globs: &[String], flag: &str) -> Result<(GlobSet, GlobSet)> {
            let (mut by_path, mut by_name) = (GlobSetBuilder::new(), GlobSetBuilder::new());
            for g in globs {
                let glob = GlobBuilder::new(g.trim_start_matches("./"))
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| anyhow::anyhow!("{flag} '{g}': {}", e.kind()))?;
                if g.contains('/') {
                    by_path.add(glob);
                } else {
                    by_name.add(glob);
                }
            }
            Ok((by_path.build()?, by_name.build()?))
        }
        let (include_path, include_name) = sets(include, "--include")?;
        let (exclude_path, exclude_name) = sets(exclude, "--exclude")?;
        Ok(Filters { include_path, include_name, exclude_path, exclude_name, has_include: !include.is_empty() })
    }

    fn excluded(&self, relative: &str, name: &str) -> bool {
        self.exclude_path.is_match(relative) || self.exclude_name.is_match(name)
    }

    fn included(&self, relative: &str, name: &str) -> bool {
        !self.has_include || self.include_path.is_match(relative) || self.include_name.is_match(name)
    }
}

/// The path under its root, with `/` separators (lossy for a non-UTF-8 name).
fn relative_of(path: &Path, root: &Path) -> String {
    let rel = match path.strip_prefix(root) {
        Ok(r) if !r.as_os_str().is_empty() => r.to_path_buf(),
        _ => PathBuf::from(path.file_name().unwrap_or(path.as_os_str())),
    };
    let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    parts.join("/")
}

/// Walk every root in parallel; returns the sorted files (and walk errors) and the number of symbolic links
/// skipped.
fn walk(roots: &[PathBuf], filters: &Filters, follow: bool, threads: usize) -> (Vec<Item>, u64) {
    let mut items = Vec::new();
    let mut links = 0u64;
    for (ri, root) in roots.iter().enumerate() {
        let found: Mutex<Vec<Item>> = Mutex::new(Vec::new());
        let skipped = AtomicUsize::new(0);
        let walker = ignore::WalkBuilder::new(root)
            .standard_filters(false)
            .follow_links(follow)
            .threads(threads)
            .filter_entry({
                let root = root.clone();
                let excl = (filters.exclude_path.clone(), filters.exclude_name.clone());
                move |e| {
                    if e.depth() == 0 {
                        return true;
                    }
                    let rel = relative_of(e.path(), &root);
                    let name = e.file_name().to_string_lossy();
                    !(excl.0.is_match(&rel) || excl.1.is_match(name.as_ref()))
                }
            })
            .build_parallel();
        walker.run(|| {
            let found = &found;
            let skipped = &skipped;
            Box::new(move |entry| {
                match entry {
                    Ok(e) => {
                        let Some(ft) = e.file_type() else { return ignore::WalkState::Continue };
                        if ft.is_dir() {
                            return ignore::WalkState::Continue;
                        }
                        if ft.is_symlink() {
                            // Not followed (without --follow): a link is neither read nor reported.
                            skipped.fetch_add(1, Ordering::Relaxed);
                            return ignore::WalkState::Continue;
                        }
                        let rel = relative_of(e.path(), root);
                        let name = e.file_name().to_string_lossy();
                        if !filters.included(&rel, name.as_ref()) || filters.excluded(&rel, name.as_ref()) {
                            return ignore::WalkState::Continue;
                        }
                        let item = Item { path: e.into_path(), root: ri, relative: rel, walk_error: None };
                        found.lock().unwrap_or_else(|p| p.into_inner()).push(item);
                    }
                    Err(err) => {
                        let path = walk_error_path(&err).unwrap_or_else(|| root.clone());
                        let rel = relative_of(&path, root);
                        let item = Item { path, root: ri, relative: rel, walk_error: Some(walk_error_text(&err)) };
                        found.lock().unwrap_or_else(|p| p.into_inner()).push(item);
                    }
                }
                ignore::WalkState::Continue
            })
        });
        let mut found = found.into_inner().unwrap_or_else(|p| p.into_inner());
        found.sort_by(|a, b| a.relative.cmp(&b.relative).then_with(|| a.path.cmp(&b.path)));
        items.extend(found);
        links += skipped.into_inner() as u64;
    }
    (items, links)
}

fn walk_error_path(err: &ignore::Error) -> Option<PathBuf> {
    match err {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } => walk_error_path(err),
        ignore::Error::WithLineNumber { err, .. } => walk_error_path(err),
        ignore::Error::Loop { child, .. } => Some(child.clone()),
        _ => None,
    }
}

fn walk_error_text(err: &ignore::Error) -> String {
    match err {
        ignore::Error::WithPath { err, .. } | ignore::Error::WithDepth { err, .. } => walk_error_text(err),
        ignore::Error::Loop { ancestor, .. } => {
            format!("symbolic link loop (back to {})", ancestor.display())
        }
        ignore::Error::Io(e) => crate::sample::Error::from(io::Error::new(e.kind(), e.to_string())).to_string(),
        other => other.to_string(),
    }
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("scanning [{bar:40}] {pos}/{len} files {per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// `filerep: scan: …` on stderr: counts per level, errors, findings, the exit status.
fn summary_line(s: &Summary, with_baseline: bool) {
    let l = &s.levels;
    let mut line = format!(
        "scanned {} files ({} checked, {} not executables): {} malicious, {} vulnerable, {} suspicious, {} unknown, {} good; {} errors; {} findings ({} failing at --fail-on {} or required",
        s.files_seen,
        s.files_checked,
        s.skipped_not_executable,
        l.malicious,
        l.vulnerable,
        l.suspicious,
        l.unknown,
        l.good,
        s.errors,
        s.findings,
        s.failing,
        s.fail_on
    );
    line.push_str(&format!(", {} suppressed", s.suppressed));
    if with_baseline {
        line.push_str(&format!(", {} unchanged since the baseline", s.unchanged));
    }
    line.push_str(&format!("); exit {}", s.exit_status));
    #[allow(clippy::print_stderr)]
    {
        eprintln!("filerep: {}", crate::term::sanitize(&line));
    }
}

// ---------------------------------------------------------------------------------------------- output

/// Standard output, or a file written beside its final name and renamed into place at the end (a failed
/// scan never leaves a half-written SARIF file for the next CI step to upload). Something that is not a
/// regular file (`/dev/null`, a FIFO) is written in place: renaming over it would replace it.
enum Output {
    Stdout(io::BufWriter<io::StdoutLock<'static>>),
    Special(io::BufWriter<std::fs::File>),
    File { file: io::BufWriter<std::fs::File>, tmp: PathBuf, dest: PathBuf, committed: bool },
}

impl Output {
    fn open(path: Option<&Path>) -> Result<Output> {
        match path {
            None => Ok(Output::Stdout(io::BufWriter::with_capacity(64 * 1024, io::stdout().lock()))),
            Some(dest) if std::fs::metadata(dest).is_ok_and(|m| !m.is_file()) => {
                if std::fs::metadata(dest).is_ok_and(|m| m.is_dir()) {
                    anyhow::bail!("--output {}: is a directory", dest.display());
                }
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(dest)
                    .with_context(|| format!("--output {}: cannot open", dest.display()))?;
                Ok(Output::Special(io::BufWriter::new(file)))
            }
            Some(dest) => {
                let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let tmp = dest.with_file_name(format!(".{name}.filerep-{}.tmp", std::process::id()));
                let file = std::fs::File::create(&tmp)
                    .with_context(|| format!("--output {}: cannot create", dest.display()))?;
                Ok(Output::File { file: io::BufWriter::new(file), tmp, dest: dest.to_path_buf(), committed: false })
            }
        }
    }

    fn commit(&mut self) -> Result<()> {
        match self {
            Output::Stdout(w) => Ok(w.flush()?),
            Output::Special(w) => Ok(w.flush()?),
            Output::File { file, tmp, dest, committed } => {
                file.flush().with_context(|| format!("--output {}", dest.display()))?;
                file.get_ref().sync_all().ok();
                std::fs::rename(&*tmp, &*dest).with_context(|| format!("--output {}", dest.display()))?;
                *committed = true;
                Ok(())
            }
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Output::File { tmp, committed: false, .. } = self {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::Special(w) => w.write(buf),
            Output::File { file, .. } => file.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::Special(w) => w.flush(),
            Output::File { file, .. } => file.flush(),
        }
    }
}

#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    value: &'a T,
}

enum Writer {
    Table(Table),
    Json { first: bool },
    Jsonl,
    Csv(CsvWriter),
    Sarif(SarifWriter),
}

impl Writer {
    fn begin(format: ScanFormat, out: &mut Output, roots: &[PathBuf], names: &[String], color: bool) -> Result<Writer> {
        Ok(match format {
            ScanFormat::Table => Writer::Table(Table { color, rows: 0 }),
            ScanFormat::Json => {
                write!(
                    out,
                    "{{\n\"schema_version\": {},\n\"filerep_version\": {},\n\"roots\": {},\n\"files\": [",
                    crate::report::SCHEMA_VERSION,
                    serde_json::to_string(env!("CARGO_PKG_VERSION"))?,
                    serde_json::to_string(names)?
                )?;
                Writer::Json { first: true }
            }
            ScanFormat::Jsonl => Writer::Jsonl,
            ScanFormat::Csv => Writer::Csv(CsvWriter::begin(out)?),
            ScanFormat::Sarif => Writer::Sarif(SarifWriter::begin(out, roots)?),
        })
    }

    fn entry(&mut self, out: &mut Output, root: usize, entry: &ScanEntry) -> Result<()> {
        match self {
            Writer::Table(t) => t.entry(out, entry)?,
            Writer::Json { first } => {
                out.write_all(if *first { b"\n" } else { b",\n" })?;
                *first = false;
                serde_json::to_writer(&mut *out, entry)?;
            }
            Writer::Jsonl => {
                serde_json::to_writer(&mut *out, &Line { kind: "file", value: entry })?;
                out.write_all(b"\n")?;
            }
            Writer::Csv(w) => w.entry(out, entry)?,
            Writer::Sarif(w) => w.entry(out, root, entry)?,
        }
        Ok(())
    }

    fn finish(self, out: &mut Output, summary: &Summary) -> Result<()> {
        match self {
            Writer::Table(t) => t.finish(out, summary)?,
            Writer::Json { .. } => {
                write!(out, "\n],\n\"summary\": ")?;
                serde_json::to_writer(&mut *out, summary)?;
                out.write_all(b"\n}\n")?;
            }
            Writer::Jsonl => {
                serde_json::to_writer(&mut *out, &Line { kind: "summary", value: summary })?;
                out.write_all(b"\n")?;
            }
            Writer::Csv(_) => {}
            Writer::Sarif(w) => w.finish(out, summary)?,
        }
        Ok(())
    }
}

/// The terminal table: one row per file with something to say (findings or an error), then counts.
struct Table {
    color: bool,
    rows: usize,
}

impl Table {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }

    fn level_colour(level: Level) -> &'static str {
        match level {
            Level::Malicious => "1;31",
            Level::Vulnerable => "31",
            Level::Suspicious => "33",
            Level::Unknown => "2",
            Level::Good => "32",
        }
    }

    fn entry(&mut self, out: &mut Output, e: &ScanEntry) -> io::Result<()> {
        let shown: Vec<String> = e
            .findings
            .iter()
            .filter(|f| f.baseline != Some(crate::scan::BaselineState::Unchanged))
            .map(|f| {
                let mut s = f.rule.clone();
                if f.is_suppressed() {
                    s.push_str(" (suppressed)");
                } else if f.counts() {
                    s.push_str(" (fails)");
                }
                s
            })
            .collect();
        let (label, colour, what) = match &e.report.error {
            Some(err) => ("error".to_string(), "1;31", err.clone()),
            None if shown.is_empty() => return Ok(()),
            None => {
                let l = e.report.verdict.level;
                (l.to_string(), Self::level_colour(l), shown.join(", "))
            }
        };
        if self.rows == 0 {
            writeln!(out, "{:<11} {:<48} FILE", "VERDICT", "FINDINGS")?;
        }
        self.rows += 1;
        let label = self.paint(colour, &format!("{label:<11}"));
        let what = crate::term::sanitize(&what);
        let path = crate::term::sanitize(&e.report.path);
        writeln!(out, "{label} {what:<48} {path}")
    }

    fn finish(self, out: &mut Output, s: &Summary) -> io::Result<()> {
        if self.rows == 0 {
            writeln!(out, "No findings.")?;
        }
        writeln!(out)?;
        let l = &s.levels;
        for (level, n) in [
            (Level::Malicious, l.malicious),
            (Level::Vulnerable, l.vulnerable),
            (Level::Suspicious, l.suspicious),
            (Level::Unknown, l.unknown),
            (Level::Good, l.good),
        ] {
            let name = self.paint(Self::level_colour(level), &format!("{:<11}", level.as_str()));
            writeln!(out, "{name} {n:>8}")?;
        }
        writeln!(out, "{:<11} {:>8}", "errors", s.errors)?;
        writeln!(out, "{:<11} {:>8}", "skipped", s.skipped_not_executable)?;
        writeln!(out, "{:<11} {:>8}  ({} failing, {} suppressed)", "findings", s.findings, s.failing, s.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_use_slashes_and_fall_back_to_the_name() {
        assert_eq!(relative_of(Path::new("dist/a/b.exe"), Path::new("dist")), "a/b.exe");
        assert_eq!(relative_of(Path::new("dist/b.exe"), Path::new("dist/b.exe")), "b.exe");
        assert_eq!(relative_of(Path::new("./x/y"), Path::new("./x")), "y");
    }

    #[test]
    fn filters_match_names_and_paths() {
        let f = Filters::new(&["*.exe".into(), "bin/**".into()], &["*.pdb".into(), "vendor/**".into()]).unwrap();
        assert!(f.included("a/b.exe", "b.exe"));
        assert!(f.included("bin/x/tool", "tool"));
        assert!(!f.included("lib/tool", "tool"));
        assert!(f.excluded("vendor/a.exe", "a.exe"));
        assert!(f.excluded("x/y.pdb", "y.pdb"));
        assert!(!f.excluded("x/vendor.exe", "vendor.exe"));
        assert!(Filters::new(&["a[".into()], &[]).unwrap_err().to_string().contains("--include 'a['"));
    }
}
