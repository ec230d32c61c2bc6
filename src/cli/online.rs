//! Evidence from outside this machine, asked only when the user configured it: a remote store (`--remote`,
//! `$FILEREP_REMOTE`, `remote.url` in the config file) and the opt-in providers (`--provider`,
//! `providers.enabled`).
//!
//! With none of them configured nothing here builds an HTTP client, and no connection is opened.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;

use crate::config::Config;
use crate::remote::{Remote, RemoteOptions};
use crate::report::Report;
use crate::reputation::{External, RemoteAnswer};
use crate::store::sqlite::SqliteStore;

/// The global options that reach outside this machine.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OnlineArgs {
    /// Also ask this `filerep serve` instance (default: $FILEREP_REMOTE, else remote.url in the config file).
    #[arg(long, value_name = "URL", global = true)]
    pub remote: Option<String>,
    /// Ask only the remote store, not the local one (implies --require-remote).
    #[arg(long, global = true)]
    pub remote_only: bool,
    /// Fail (exit 2) when the remote store cannot answer, instead of a warning.
    #[arg(long, global = true)]
    pub require_remote: bool,
    /// Send the analysis reports of `check` and `scan` to the remote store (needs its write token in
    /// $FILEREP_REMOTE_TOKEN or remote.token_file).
    #[arg(long, global = true)]
    pub submit: bool,
    /// Also ask these public services about each hash (only the hash is sent): virustotal, malwarebazaar,
    /// hashlookup; comma-separated. Keys come from the environment or the config file.
    #[arg(long, value_name = "NAMES", value_delimiter = ',', global = true)]
    pub provider: Vec<String>,
}

/// What a run asks outside this machine.
#[derive(Debug, Default)]
pub struct Online {
    /// The remote store.
    pub remote: Option<Remote>,
    /// Ask only the remote store.
    pub remote_only: bool,
    /// A remote failure is an error, not a warning.
    pub remote_required: bool,
    /// Send reports to the remote.
    pub submit: bool,
    warned: AtomicBool,
}

impl Online {
    /// Resolve the options, the environment and the config file. Builds no client unless something is
    /// configured.
    pub fn resolve(args: &OnlineArgs) -> Result<Online> {
        let env_remote = std::env::var("FILEREP_REMOTE").ok().filter(|v| !v.trim().is_empty());
        // The config file is read only when an option could come from it.
        let config = crate::config::load()?;
        if let Some(path) = config.path.as_deref().filter(|p| config.has_keys() && crate::config::readable_by_others(p))
        {
            super::warn_line(&format!(
                "config {} holds API keys and other users can read it; chmod 600 it",
                path.display()
            ));
        }
        let url = args.remote.clone().or(env_remote).or_else(|| config.remote.url.clone());
        let remote_required = args.remote_only || args.require_remote || config.remote.required;
        if url.is_none() {
            if args.remote_only || args.require_remote || args.submit {
                let which = if args.remote_only {
                    "--remote-only"
                } else if args.require_remote {
                    "--require-remote"
                } else {
                    "--submit"
                };
                anyhow::bail!(
                    "{which} needs a remote store: --remote URL, $FILEREP_REMOTE, or remote.url in the config file"
                );
            }
            return Ok(Online::default());
        }
        let url = url.unwrap_or_default();
        let token = if args.submit { remote_token(&config)? } else { None };
        let mut opts = RemoteOptions { token, ..RemoteOptions::default() };
        if let Some(secs) = config.remote.timeout_secs {
            opts.timeout = std::time::Duration::from_secs(secs.max(1));
        }
        let remote = Remote::new(&url, opts)?;
        Ok(Online {
            remote: Some(remote),
            remote_only: args.remote_only,
            remote_required,
            submit: args.submit,
            warned: AtomicBool::new(false),
        })
    }

    /// True when nothing outside this machine is asked.
    pub fn is_offline(&self) -> bool {
        self.remote.is_none()
    }

    /// Ask the remote about many files at once (batched); one [`External`] per report, in order. A remote
    /// failure is an error when the remote is required, else a warning (once) and an `error` in the report.
    pub fn external_for(&self, _store: Option<&SqliteStore>, reports: &[&Report]) -> Result<Vec<External>> {
        let mut out: Vec<External> = reports.iter().map(|_| External::default()).collect();
        if let Some(remote) = &self.remote {
            let per_file: Vec<Vec<String>> = reports
                .iter()
                .map(|r| if r.error.is_none() { crate::reputation::remote_queries(r) } else { Vec::new() })
                .collect();
            let all: Vec<String> = per_file.iter().flatten().cloned().collect();
            let answers = if all.is_empty() { Ok(Vec::new()) } else { remote.lookup(&all) };
            match answers {
                Ok(answers) => {
                    let mut it = answers.into_iter();
                    for (ext, queries) in out.iter_mut().zip(&per_file) {
                        let mine: Vec<_> = it.by_ref().take(queries.len()).collect();
                        ext.remote = Some(RemoteAnswer { url: remote.url().to_string(), result: Ok(mine) });
                    }
                }
                Err(e) => {
                    if self.remote_required {
                        return Err(e.into());
                    }
                    self.warn_once(&format!("{e}; answering from the local store only"));
                    for ext in &mut out {
                        ext.remote = Some(RemoteAnswer { url: remote.url().to_string(), result: Err(e.to_string()) });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Ask the remote about hash queries (`lookup`): one answer per query, in order.
    pub fn external_for_queries(&self, queries: &[String]) -> Result<Vec<External>> {
        let mut out: Vec<External> = queries.iter().map(|_| External::default()).collect();
        if let Some(remote) = &self.remote {
            match remote.lookup(queries) {
                Ok(answers) => {
                    for (ext, a) in out.iter_mut().zip(answers) {
                        ext.remote = Some(RemoteAnswer { url: remote.url().to_string(), result: Ok(vec![a]) });
                    }
                }
                Err(e) => {
                    if self.remote_required {
                        return Err(e.into());
                    }
                    self.warn_once(&format!("{e}; answering from the local store only"));
                    for ext in &mut out {
                        ext.remote = Some(RemoteAnswer { url: remote.url().to_string(), result: Err(e.to_string()) });
                    }
                }
            }
        }
        Ok(out)
    }

    /// `--submit`: send the reports (those of files that could be read) to the remote store.
    pub fn submit(&self, reports: &[&Report]) -> Result<()> {
        let (Some(remote), true) = (&self.remote, self.submit) else { return Ok(()) };
        let values: Vec<serde_json::Value> = reports
            .iter()
            .filter(|r| r.error.is_none() && r.hashes.sha256.is_some())
            .filter_map(|r| serde_json::to_value(r).ok())
            .collect();
        if values.is_empty() {
            return Ok(());
        }
        remote.submit_reports(&values)?;
        Ok(())
    }

    fn warn_once(&self, msg: &str) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            super::warn_line(msg);
        }
    }
}

/// The write token for `--submit`: `$FILEREP_REMOTE_TOKEN`, else the file `remote.token_file` names.
fn remote_token(config: &Config) -> Result<Option<String>> {
    if let Some(t) = std::env::var("FILEREP_REMOTE_TOKEN").ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
    {
        return Ok(Some(t));
    }
    let Some(path) = &config.remote.token_file else { return Ok(None) };
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("remote.token_file {}: {e}", path.display()))?;
    let t = text.trim();
    if t.is_empty() {
        anyhow::bail!("remote.token_file {}: empty", path.display());
    }
    Ok(Some(t.to_string()))
}
