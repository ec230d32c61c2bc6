//! `filerep observe`: sample the running processes of this machine and record what runs in the local store.
//!
//! A table (or `--json`) to stdout, one progress line to stderr; errors are one line, exit status 2.

use std::io::{self, Write};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::observe::{self, Observation, Options};

use super::EXIT_OK;

/// Arguments of `observe`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long to observe (500ms, 30s, 1m, 2h; at most 24h).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = observe::parse_duration)]
    pub duration: Duration,
    /// Time between samples (at least 100ms).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = observe::parse_duration)]
    pub interval: Duration,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `observe`; with `--submit`, send the observation to the remote store after recording it here.
pub fn run(args: &Args, db: Option<&std::path::Path>, online: &super::online::OnlineArgs) -> Result<u8> {
    let config = crate::config::load()?;
    // `FILEREP_OBSERVE_BACKEND`: checked before anything else, so that a typo costs no wait.
    let backend = observe::BackendKind::from_env()?;
    // Resolved (URL and token checked) before observing, so that a mistake costs no wait.
    let remote = if online.submit {
        let o = super::online::Online::resolve(online, db)?;
        let remote = o.remote.ok_or_else(|| anyhow::anyhow!("--submit needs a remote store"))?;
        if !remote.has_token() {
            anyhow::bail!("{}", crate::remote::RemoteError::NoToken { url: remote.url().to_string() });
        }
        Some(remote)
    } else {
        None
    };
    let opts =
        Options { duration: args.duration, interval: args.interval, country: config.observe.country.clone(), backend };
    opts.validate().map_err(anyhow::Error::msg)?;
    let path = crate::store::sqlite::resolve_path(db)?;
    let mut progress = |line: &str| {
        let mut err = io::stderr().lock();
        let _ = writeln!(err, "filerep: {line}");
    };
    let obs = observe::run(&path, &opts, &mut progress).context("observe")?;
    progress(&format!(
        "recorded {} executables in {} ({} hashed, {} from the cache)",
        obs.files.len(),
        path.display(),
        obs.hashed,
        obs.cached
    ));
    if let Some(remote) = &remote {
        let recorded = remote.submit_sightings(&obs).with_context(|| {
            format!("observe --submit (the observation is kept in {}; run again to send a new one)", path.display())
        })?;
        progress(&format!("submitted {recorded} executables to {}", remote.url()));
    }
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &obs)?;
        writeln!(out)?;
    } else {
        table(&obs, &mut out)?;
    }
    out.flush()?;
    Ok(EXIT_OK)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn table(obs: &Observation, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<16} {:>5} {:>6} {:>11} {:>7} {:>5}  {:<12} path",
        "sha256", "procs", "cpu %", "working set", "threads", "fds", "owner"
    )?;
    for f in &obs.files {
        let cpu = f.cpu_percent.map_or_else(|| "-".to_string(), |c| format!("{c:.1}"));
        writeln!(
            out,
            "{:<16} {:>5} {:>6} {:>11} {:>7} {:>5}  {:<12} {}",
            &f.sha256[..16.min(f.sha256.len())],
            f.processes,
            cpu,
            mib(f.working_set.max),
            f.threads.max,
            f.handles.max,
            crate::term::sanitize(f.owner.as_deref().unwrap_or("-")),
            crate::term::sanitize(&f.path),
        )?;
    }
    let s = &obs.skipped;
    writeln!(
        out,
        "\n{} executable{}, {} sample{} over {:.1} s; not observed: kernel threads {}, processes of other users \
         {} (permission denied), vanished {}, unhashable executables {}{}",
        obs.files.len(),
        if obs.files.len() == 1 { "" } else { "s" },
        obs.samples,
        if obs.samples == 1 { "" } else { "s" },
        obs.duration_secs,
        s.kernel_threads,
        s.permission_denied,
        s.vanished,
        s.unhashable,
        if s.same_printed_path > 0 {
            format!(", paths that read as another's once escaped {}", s.same_printed_path)
        } else {
            String::new()
        }
    )
}
