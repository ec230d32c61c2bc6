//! Evidence from outside this machine, asked only when the user configured it: a remote store (`--remote`,
//! `$FILEREP_REMOTE`, `remote.url` in the config file) and the opt-in providers (`--provider`,
//! `providers.enabled`).
//!
//! With none of them configured nothing here builds an HTTP client, and no connection is opened.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;

use std::sync::Mutex;
use std::time::Duration;

use crate::config::Config;
use crate::providers::client::{ClientOptions, ProviderKind, ProviderOutcome, ProviderSettings, Providers};
use crate::remote::{Remote, RemoteOptions};
use crate::report::{ProviderAnswer, Report};
use crate::reputation::{External, RemoteAnswer};
use crate::store::Digest;
use crate::store::sqlite::{Mode, SqliteStore};

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

impl OnlineArgs {
    /// `db` and `serve` ask nobody: an online option given to them is a mistake worth saying.
    pub fn only_for_checks(&self) -> Result<()> {
        let given = [
            (self.remote.is_some(), "--remote"),
            (self.remote_only, "--remote-only"),
            (self.require_remote, "--require-remote"),
            (self.submit, "--submit"),
            (!self.provider.is_empty(), "--provider"),
        ];
        if let Some((_, name)) = given.iter().find(|(set, _)| *set) {
            anyhow::bail!("{name} applies to check, lookup and scan only");
        }
        Ok(())
    }

    /// `observe` sends its observation to the remote store with `--submit` (and `--remote URL`), nothing else.
    pub fn only_for_observe(&self) -> Result<()> {
        let given = [
            (self.remote_only, "--remote-only"),
            (self.require_remote, "--require-remote"),
            (!self.provider.is_empty(), "--provider"),
        ];
        if let Some((_, name)) = given.iter().find(|(set, _)| *set) {
            anyhow::bail!("{name} applies to check, lookup and scan only (observe takes --submit and --remote)");
        }
        if self.remote.is_some() && !self.submit {
            anyhow::bail!("observe sends nothing without --submit: add --submit to send this observation to --remote");
        }
        Ok(())
    }
}

/// What a run asks outside this machine.
#[derive(Default)]
pub struct Online {
    /// The remote store.
    pub remote: Option<Remote>,
    /// Ask only the remote store.
    pub remote_only: bool,
    /// A remote failure is an error, not a warning.
    pub remote_required: bool,
    /// Send reports to the remote.
    pub submit: bool,
    /// The providers asked (none unless named).
    pub providers: Option<Providers>,
    /// The local store that caches the providers' answers and keeps their request budget.
    provider_store: Option<Mutex<SqliteStore>>,
    warned: AtomicBool,
    warned_providers: Mutex<Vec<ProviderKind>>,
}

impl Online {
    /// Resolve the options, the environment and the config file. Builds no client unless something is
    /// configured.
    pub fn resolve(args: &OnlineArgs, db: Option<&std::path::Path>) -> Result<Online> {
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
        let (providers, provider_store) = resolve_providers(args, &config, db)?;
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
            return Ok(Online { providers, provider_store, ..Online::default() });
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
            providers,
            provider_store,
            warned: AtomicBool::new(false),
            warned_providers: Mutex::new(Vec::new()),
        })
    }

    /// True when nothing outside this machine is asked.
    pub fn is_offline(&self) -> bool {
        self.remote.is_none() && self.providers.is_none()
    }

    /// Ask the providers about each file's digests (batched where a provider can); one list per file.
    fn ask_providers(&self, files: &[Vec<Digest>]) -> Vec<Vec<ProviderAnswer>> {
        let Some(providers) = &self.providers else { return files.iter().map(|_| Vec::new()).collect() };
        let guard = self.provider_store.as_ref().map(|m| m.lock().unwrap_or_else(|p| p.into_inner()));
        let outcomes = providers.lookup_many(guard.as_deref(), files);
        drop(guard);
        outcomes.into_iter().map(|o| o.into_iter().map(|o| self.answer(o)).collect()).collect()
    }

    /// One outcome as the report shows it; the first error of each provider is also one warning line.
    fn answer(&self, o: ProviderOutcome) -> ProviderAnswer {
        let (evidence, error) = match o.result {
            Ok(e) => (Some(e), None),
            Err(e) => {
                let mut warned = self.warned_providers.lock().unwrap_or_else(|p| p.into_inner());
                if !warned.contains(&o.provider) {
                    warned.push(o.provider);
                    super::warn_line(&e.to_string());
                }
                (None, Some(e.to_string()))
            }
        };
        ProviderAnswer {
            provider: o.provider.name().to_string(),
            query: o.digest.map(|d| d.hex()),
            cached: o.cached,
            evidence,
            error,
        }
    }

    /// Ask the remote about many files at once (batched); one [`External`] per report, in order. A remote
    /// failure is an error when the remote is required, else a warning (once) and an `error` in the report.
    pub fn external_for(&self, reports: &[&Report]) -> Result<Vec<External>> {
        let mut out: Vec<External> = reports.iter().map(|_| External::default()).collect();
        if self.providers.is_some() {
            let files: Vec<Vec<Digest>> = reports
                .iter()
                .map(|r| if r.error.is_none() { crate::reputation::digests_of(r) } else { Vec::new() })
                .collect();
            for (ext, answers) in out.iter_mut().zip(self.ask_providers(&files)) {
                ext.providers = answers;
            }
        }
        let per_file: Vec<Vec<String>> = reports
            .iter()
            .map(|r| if r.error.is_none() { crate::reputation::remote_queries(r) } else { Vec::new() })
            .collect();
        self.ask_remote(&per_file, &mut out)?;
        Ok(out)
    }

    /// Ask the remote and the providers about hashes (`lookup`): one answer per hash, in order.
    pub fn external_for_digests(&self, digests: &[Digest]) -> Result<Vec<External>> {
        let mut out: Vec<External> = digests.iter().map(|_| External::default()).collect();
        if self.providers.is_some() {
            let files: Vec<Vec<Digest>> = digests.iter().map(|d| vec![*d]).collect();
            for (ext, answers) in out.iter_mut().zip(self.ask_providers(&files)) {
                ext.providers = answers;
            }
        }
        let queries: Vec<Vec<String>> = digests.iter().map(|d| vec![format!("{}:{}", d.kind(), d.hex())]).collect();
        self.ask_remote(&queries, &mut out)?;
        Ok(out)
    }

    /// Ask the remote store about groups of queries (a file's digests, or one hash) in one batched lookup,
    /// and give each group's answers to its [`External`]. A failure is an error when the remote is required,
    /// else one warning and the error in every answer.
    fn ask_remote(&self, groups: &[Vec<String>], out: &mut [External]) -> Result<()> {
        let Some(remote) = &self.remote else { return Ok(()) };
        let all: Vec<String> = groups.iter().flatten().cloned().collect();
        let url = remote.url().to_string();
        match if all.is_empty() { Ok(Vec::new()) } else { remote.lookup(&all) } {
            Ok(answers) => {
                let mut it = answers.into_iter();
                for (ext, group) in out.iter_mut().zip(groups) {
                    let mine: Vec<_> = it.by_ref().take(group.len()).collect();
                    ext.remote = Some(RemoteAnswer { url: url.clone(), result: Ok(mine) });
                }
            }
            Err(e) => {
                if self.remote_required {
                    return Err(e.into());
                }
                self.warn_once(&format!("{e}; answering from the local store only"));
                for ext in out.iter_mut() {
                    ext.remote = Some(RemoteAnswer { url: url.clone(), result: Err(e.to_string()) });
                }
            }
        }
        Ok(())
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

impl std::fmt::Debug for Online {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Online")
            .field("remote", &self.remote)
            .field("remote_only", &self.remote_only)
            .field("remote_required", &self.remote_required)
            .field("submit", &self.submit)
            .field("providers", &self.providers.as_ref().map(Providers::kinds))
            .finish()
    }
}

/// The providers named with `--provider` (else `providers.enabled`), with keys and URLs from the environment
/// (first) and the config file, and the local store for their cache and budget (created if need be: asking a
/// provider is opting in to keeping its answers).
fn resolve_providers(
    args: &OnlineArgs,
    config: &Config,
    db: Option<&std::path::Path>,
) -> Result<(Option<Providers>, Option<Mutex<SqliteStore>>)> {
    let names: Vec<String> = if args.provider.is_empty() {
        config.providers.enabled.clone()
    } else {
        args.provider.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    };
    if names.is_empty() {
        return Ok((None, None));
    }
    let mut settings = Vec::new();
    for name in &names {
        let kind: ProviderKind = name.parse().map_err(|e| anyhow::anyhow!("--provider: {e}"))?;
        let mut s = ProviderSettings::from_env(kind);
        if let Some(c) = config.provider(kind.name()) {
            if s.key.is_none() {
                s.key = c.key.clone().map(crate::providers::client::ApiKey::new).filter(|k| !k.is_empty());
            }
            if std::env::var(kind.url_env()).map(|v| v.trim().is_empty()).unwrap_or(true) {
                if let Some(url) = &c.url {
                    s.base_url = url.clone();
                }
            }
            if c.requests_per_minute.is_some() {
                s.requests_per_minute = c.requests_per_minute;
            }
        }
        settings.push(s);
    }
    let mut opts = ClientOptions::default();
    if let Some(h) = config.providers.cache_ttl_hours {
        opts.cache_ttl = Duration::from_secs(h.saturating_mul(3600));
    }
    if let Some(w) = config.providers.max_wait_secs {
        opts.max_wait = Duration::from_secs(w);
    }
    let providers = Providers::new(settings, opts)?;
    let store = match crate::store::sqlite::resolve_path(db) {
        Ok(path) => Some(Mutex::new(SqliteStore::open(&path, Mode::Read)?)),
        Err(e) => {
            super::warn_line(&format!("{e}; provider answers are not cached"));
            None
        }
    };
    Ok((Some(providers), store))
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
