//! The HTTP client of the opt-in providers: VirusTotal v3, MalwareBazaar and CIRCL hashlookup.
//!
//! Only digests leave the machine: a VirusTotal or hashlookup lookup puts the hex digest in the path, a
//! MalwareBazaar lookup sends `query=get_info&hash=<hex>`, a hashlookup bulk lookup sends `{"hashes": [...]}`.
//! Keys go in a request header only (`x-apikey`, `Auth-Key`), never in a URL, and never in an error message
//! (error texts are scrubbed of the key even when a server echoes it back).
//!
//! Each lookup goes: the store's cache (answers found and not found are kept for [`ClientOptions::cache_ttl`]),
//! then the provider's request budget (shared by every process using the store; VirusTotal's free tier is 4
//! requests a minute), then HTTP, with backoff on 429, 5xx and failed connections (honouring `Retry-After`).
//! Redirects are never followed (the key must not reach another address), bodies are read up to
//! [`MAX_RESPONSE_BYTES`] and within [`ClientOptions::timeout`] (a slow drip ends at the timeout).
//!
//! The HTTP client is built on first use: a run that asks no provider (or is answered from the cache) opens
//! no connection and starts no thread. It is a blocking client: do not create, use or drop [`Providers`]
//! inside an async runtime's worker (use `spawn_blocking`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::Url;
use reqwest::blocking::Client;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{MAX_RESPONSE_BYTES, ProviderError, ProviderEvidence, excerpt, hashlookup, malwarebazaar, virustotal};
use crate::store::sqlite::SqliteStore;
use crate::store::{Digest, DigestKind};

/// One of the opt-in providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// VirusTotal API v3 (key required).
    VirusTotal,
    /// abuse.ch MalwareBazaar (key required).
    MalwareBazaar,
    /// CIRCL hashlookup (no key).
    Hashlookup,
}

impl ProviderKind {
    /// Every provider, in the order their answers are listed.
    pub const ALL: [ProviderKind; 3] =
        [ProviderKind::VirusTotal, ProviderKind::MalwareBazaar, ProviderKind::Hashlookup];

    /// The name used on the command line, in the config file, in the cache and in evidence.
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::VirusTotal => "virustotal",
            ProviderKind::MalwareBazaar => "malwarebazaar",
            ProviderKind::Hashlookup => "hashlookup",
        }
    }

    /// The name for people.
    pub fn display_name(self) -> &'static str {
        match self {
            ProviderKind::VirusTotal => "VirusTotal",
            ProviderKind::MalwareBazaar => "MalwareBazaar",
            ProviderKind::Hashlookup => "CIRCL hashlookup",
        }
    }

    /// The public service's base URL.
    pub fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::VirusTotal => "https://www.virustotal.com",
            ProviderKind::MalwareBazaar => "https://mb-api.abuse.ch",
            ProviderKind::Hashlookup => "https://hashlookup.circl.lu",
        }
    }

    /// The environment variables a key is read from, in order of precedence (empty: no key needed).
    pub fn key_env(self) -> &'static [&'static str] {
        match self {
            ProviderKind::VirusTotal => &["FILEREP_VIRUSTOTAL_KEY", "VT_API_KEY"],
            ProviderKind::MalwareBazaar => &["FILEREP_MALWAREBAZAAR_KEY"],
            ProviderKind::Hashlookup => &[],
        }
    }

    /// The environment variable that overrides the base URL.
    pub fn url_env(self) -> &'static str {
        match self {
            ProviderKind::VirusTotal => "FILEREP_VIRUSTOTAL_URL",
            ProviderKind::MalwareBazaar => "FILEREP_MALWAREBAZAAR_URL",
            ProviderKind::Hashlookup => "FILEREP_HASHLOOKUP_URL",
        }
    }

    /// The provider refuses requests without a key.
    pub fn needs_key(self) -> bool {
        !self.key_env().is_empty()
    }

    /// The default request budget a minute (VirusTotal's public API allows 4).
    pub fn default_requests_per_minute(self) -> Option<u32> {
        match self {
            ProviderKind::VirusTotal => Some(4),
            ProviderKind::MalwareBazaar | ProviderKind::Hashlookup => None,
        }
    }

    /// The digests the provider is asked about, best first.
    pub fn digest_preference(self) -> &'static [DigestKind] {
        match self {
            ProviderKind::VirusTotal | ProviderKind::MalwareBazaar => {
                &[DigestKind::Sha256, DigestKind::Sha1, DigestKind::Md5]
            }
            // hashlookup's bulk endpoints take SHA-1 and MD5 only, and NSRL is keyed by SHA-1.
            ProviderKind::Hashlookup => &[DigestKind::Sha1, DigestKind::Md5, DigestKind::Sha256],
        }
    }

    /// The digest of a file to ask this provider about, if it has one the provider supports.
    pub fn pick_digest(self, digests: &[Digest]) -> Option<Digest> {
        self.digest_preference().iter().find_map(|k| digests.iter().find(|d| d.kind() == *k)).copied()
    }

    /// A comma-separated list ("virustotal,hashlookup"), each named once, in the order given.
    pub fn parse_list(s: &str) -> Result<Vec<ProviderKind>, ProviderError> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let k: ProviderKind = part.parse()?;
            if !out.contains(&k) {
                out.push(k);
            }
        }
        Ok(out)
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ProviderKind {
    type Err = ProviderError;

    /// The name (any case), or `vt`, `mb`, `bazaar`, `circl`.
    fn from_str(s: &str) -> Result<ProviderKind, ProviderError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "virustotal" | "vt" => Ok(ProviderKind::VirusTotal),
            "malwarebazaar" | "mb" | "bazaar" => Ok(ProviderKind::MalwareBazaar),
            "hashlookup" | "circl" => Ok(ProviderKind::Hashlookup),
            _ => Err(ProviderError::Config {
                provider: "providers",
                detail: format!(
                    "unknown provider \"{}\" (known: virustotal, malwarebazaar, hashlookup)",
                    excerpt(s.trim())
                ),
            }),
        }
    }
}

/// An API key. It prints as `<redacted>` (Debug and Display), is not serialisable, and is only read to put
/// it in a request header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// A key (surrounding white space, such as the newline of a key file, is dropped).
    pub fn new(key: impl Into<String>) -> ApiKey {
        let key = key.into();
        let trimmed = key.trim();
        if trimmed.len() == key.len() { ApiKey(key) } else { ApiKey(trimmed.to_string()) }
    }

    /// The key is empty (as good as none).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The key itself: for the request header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> ApiKey {
        ApiKey::new(key)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How to reach one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSettings {
    /// Which provider.
    pub kind: ProviderKind,
    /// Base URL without the API path (`https://www.virustotal.com`); a self-hosted hashlookup, a test server.
    pub base_url: String,
    /// The API key (VirusTotal and MalwareBazaar need one; hashlookup is never sent one).
    pub key: Option<ApiKey>,
    /// The request budget a minute, shared by every process using the store; `None` or `Some(0)`: no limit.
    pub requests_per_minute: Option<u32>,
}

impl ProviderSettings {
    /// The defaults: the public service, no key, the provider's default budget.
    pub fn new(kind: ProviderKind) -> ProviderSettings {
        ProviderSettings {
            kind,
            base_url: kind.default_base_url().to_string(),
            key: None,
            requests_per_minute: kind.default_requests_per_minute(),
        }
    }

    /// The defaults with the environment applied: the key from `FILEREP_VIRUSTOTAL_KEY` (else `VT_API_KEY`)
    /// or `FILEREP_MALWAREBAZAAR_KEY`, the base URL from `FILEREP_{VIRUSTOTAL,MALWAREBAZAAR,HASHLOOKUP}_URL`.
    pub fn from_env(kind: ProviderKind) -> ProviderSettings {
        ProviderSettings::from_vars(kind, |name| std::env::var(name).ok())
    }

    /// [`ProviderSettings::from_env`] with the variables read by `var` (empty values count as unset).
    pub fn from_vars(kind: ProviderKind, var: impl Fn(&str) -> Option<String>) -> ProviderSettings {
        let mut s = ProviderSettings::new(kind);
        s.key = kind.key_env().iter().filter_map(|name| var(name)).map(ApiKey::new).find(|k| !k.is_empty());
        if let Some(url) = var(kind.url_env()).map(|u| u.trim().to_string()).filter(|u| !u.is_empty()) {
            s.base_url = url;
        }
        s
    }
}

/// Timeouts, waits and the cache's lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest time for one request, from connecting to the last byte of the answer.
    pub timeout: Duration,
    /// How long an answer (found or not) is reused from the store (whole seconds).
    pub cache_ttl: Duration,
    /// Longest time one lookup (one provider, one digest or one bulk request) waits for the budget or
    /// between retries; a longer wait is not made and the lookup says why.
    pub max_wait: Duration,
    /// Retries after a 429, a 5xx or a failed connection.
    pub retries: u32,
    /// First backoff delay when the provider gives no `Retry-After` (doubled at each retry, plus jitter).
    pub backoff_base: Duration,
    /// The window the request budget counts in (a minute; shorter only in tests).
    pub budget_window: Duration,
    /// Hashes per hashlookup bulk request.
    pub bulk_chunk: usize,
    /// Use the proxy named by `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` (and `NO_PROXY`).
    pub system_proxy: bool,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(20),
            cache_ttl: Duration::from_secs(24 * 3600),
            max_wait: Duration::from_secs(70),
            retries: 3,
            backoff_base: Duration::from_secs(1),
            budget_window: Duration::from_secs(60),
            bulk_chunk: 100,
            system_proxy: true,
        }
    }
}

/// What asking one provider about one file gave.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderOutcome {
    /// The provider.
    pub provider: ProviderKind,
    /// The digest it was asked about (`None` when the file has none it supports).
    pub digest: Option<Digest>,
    /// The answer came from the store's cache (no request was made).
    pub cached: bool,
    /// When the answer was fetched, in seconds since the epoch (`None` for errors).
    pub fetched_at: Option<i64>,
    /// The evidence (found or not found), or why there is none.
    pub result: Result<ProviderEvidence, ProviderError>,
}

/// One provider, checked and ready.
struct Prepared {
    kind: ProviderKind,
    /// Base URL without a trailing slash.
    base: String,
    /// `host:port` of the base URL, for messages.
    host: String,
    /// The key header (marked sensitive), for the providers that take one.
    auth: Option<(HeaderName, HeaderValue)>,
    key: Option<ApiKey>,
    limit: Option<u32>,
}

/// The opt-in providers, ready to be asked.
pub struct Providers {
    providers: Vec<Prepared>,
    opts: ClientOptions,
    client: OnceLock<Result<Client, String>>,
    /// Requests sent in the budget window, per provider, when there is no store to share them through.
    local_budget: Mutex<HashMap<ProviderKind, VecDeque<Instant>>>,
}

impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Providers")
            .field("providers", &self.kinds())
            .field("opts", &self.opts)
            .field("client_built", &self.client.get().is_some())
            .finish()
    }
}

/// An HTTP exchange to make.
enum Call {
    Get(String),
    Post { url: String, content_type: &'static str, body: Vec<u8> },
}

/// A complete answer.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Vec<u8>,
}

/// Why an exchange failed, and whether trying again may help.
struct Failure {
    error: ProviderError,
    retryable: bool,
}

impl Providers {
    /// Check the settings. A provider that needs a key and has none is an error naming the variable to set;
    /// so is a base URL that is not an `http(s)` URL, or a key sent in clear text to another machine. A
    /// provider named twice is asked once (the first settings count). Opens no connection.
    pub fn new(settings: Vec<ProviderSettings>, opts: ClientOptions) -> Result<Providers, ProviderError> {
        let mut providers: Vec<Prepared> = Vec::new();
        for s in settings {
            if providers.iter().any(|p| p.kind == s.kind) {
                continue;
            }
            providers.push(prepare(s)?);
        }
        Ok(Providers { providers, opts, client: OnceLock::new(), local_budget: Mutex::new(HashMap::new()) })
    }

    /// The providers that will be asked, in order.
    pub fn kinds(&self) -> Vec<ProviderKind> {
        self.providers.iter().map(|p| p.kind).collect()
    }

    /// No provider is configured.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// The options.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// One file: each provider asked once, about the best digest it supports (VirusTotal and MalwareBazaar:
    /// SHA-256, SHA-1, MD5; hashlookup: SHA-1, MD5, SHA-256). The store's cache first, then the budget,
    /// then HTTP with backoff. Answers (found and not found) are cached; errors are not. One outcome per
    /// provider, in order.
    pub fn lookup(&self, store: Option<&SqliteStore>, digests: &[Digest]) -> Vec<ProviderOutcome> {
        self.providers
            .iter()
            .map(|p| match p.kind.pick_digest(digests) {
                Some(d) => self.lookup_one(store, p, d),
                None => no_digest(p.kind),
            })
            .collect()
    }

    /// Many files (a scan): the same outcomes as [`Providers::lookup`] for each file, but every cache is
    /// consulted first, a digest shared by several files is asked once, hashlookup is asked with its bulk
    /// endpoints (`POST /bulk/sha1`, `/bulk/md5`, [`ClientOptions::bulk_chunk`] hashes a request), and
    /// VirusTotal and MalwareBazaar get one request per file within the budget. After an authentication
    /// error or a refused redirect a provider is not asked again in the batch (the same error is given).
    pub fn lookup_many(&self, store: Option<&SqliteStore>, files: &[Vec<Digest>]) -> Vec<Vec<ProviderOutcome>> {
        let mut out: Vec<Vec<ProviderOutcome>> =
            files.iter().map(|_| Vec::with_capacity(self.providers.len())).collect();
        for p in &self.providers {
            let outcomes = match p.kind {
                ProviderKind::Hashlookup => self.hashlookup_many(store, p, files),
                _ => self.one_by_one(store, p, files),
            };
            for (o, v) in out.iter_mut().zip(outcomes) {
                o.push(v);
            }
        }
        out
    }

    fn one_by_one(&self, store: Option<&SqliteStore>, p: &Prepared, files: &[Vec<Digest>]) -> Vec<ProviderOutcome> {
        let mut seen: HashMap<Digest, ProviderOutcome> = HashMap::new();
        let mut stop: Option<ProviderError> = None;
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            let Some(d) = p.kind.pick_digest(f) else {
                out.push(no_digest(p.kind));
                continue;
            };
            if let Some(o) = seen.get(&d) {
                out.push(o.clone());
                continue;
            }
            let o = match (&stop, self.cached(store, p.kind, &d)) {
                (_, Some(o)) => o,
                (Some(e), None) => failed(p.kind, d, e.clone()),
                (None, None) => self.fetch_one(store, p, d),
            };
            if matches!(o.result, Err(ProviderError::Auth { .. } | ProviderError::Redirect { .. })) {
                stop = o.result.clone().err();
            }
            seen.insert(d, o.clone());
            out.push(o);
        }
        out
    }

    fn hashlookup_many(
        &self,
        store: Option<&SqliteStore>,
        p: &Prepared,
        files: &[Vec<Digest>],
    ) -> Vec<ProviderOutcome> {
        let mut answers: HashMap<Digest, ProviderOutcome> = HashMap::new();
        // Digests to ask in bulk, by kind, each once, in the order first met.
        let mut bulk: [(DigestKind, Vec<Digest>); 2] = [(DigestKind::Sha1, Vec::new()), (DigestKind::Md5, Vec::new())];
        let mut queued: HashSet<Digest> = HashSet::new();
        for d in files.iter().filter_map(|f| p.kind.pick_digest(f)) {
            if answers.contains_key(&d) || !queued.insert(d) {
                continue;
            }
            if let Some(o) = self.cached(store, p.kind, &d) {
                answers.insert(d, o);
            } else if let Some((_, group)) = bulk.iter_mut().find(|(k, _)| *k == d.kind()) {
                group.push(d);
            } else {
                // SHA-256 only: no bulk endpoint.
                answers.insert(d, self.fetch_one(store, p, d));
            }
        }
        for (kind, group) in &bulk {
            for chunk in group.chunks(self.opts.bulk_chunk.max(1)) {
                if let [d] = chunk {
                    answers.insert(*d, self.fetch_one(store, p, *d));
                    continue;
                }
                let hashes: Vec<String> = chunk.iter().map(|d| d.hex().to_ascii_uppercase()).collect();
                let call = Call::Post {
                    url: format!("{}/bulk/{}", p.base, kind.as_str()),
                    content_type: "application/json",
                    body: serde_json::to_vec(&serde_json::json!({ "hashes": hashes })).unwrap_or_default(),
                };
                let wait_until = Instant::now() + self.opts.max_wait;
                let result = self
                    .exchange(store, p, &call, wait_until)
                    .and_then(|a| hashlookup::parse_bulk(a.status, &a.body, a.retry_after, chunk));
                match result {
                    Ok(evidence) => {
                        let now = unix_now();
                        for (d, e) in chunk.iter().zip(evidence) {
                            self.remember(store, p.kind, d, &e);
                            answers.insert(
                                *d,
                                ProviderOutcome {
                                    provider: p.kind,
                                    digest: Some(*d),
                                    cached: false,
                                    fetched_at: Some(now),
                                    result: Ok(e),
                                },
                            );
                        }
                    }
                    Err(e) => {
                        let e = scrub(e, p.key.as_ref());
                        for d in chunk {
                            answers.insert(*d, failed(p.kind, *d, e.clone()));
                        }
                    }
                }
            }
        }
        files
            .iter()
            .map(|f| match p.kind.pick_digest(f) {
                Some(d) => answers.get(&d).cloned().unwrap_or_else(|| {
                    failed(p.kind, d, ProviderError::Malformed { provider: p.kind.name(), detail: "no answer".into() })
                }),
                None => no_digest(p.kind),
            })
            .collect()
    }

    fn lookup_one(&self, store: Option<&SqliteStore>, p: &Prepared, d: Digest) -> ProviderOutcome {
        self.cached(store, p.kind, &d).unwrap_or_else(|| self.fetch_one(store, p, d))
    }

    /// Ask over HTTP (no cache read), cache an answer.
    fn fetch_one(&self, store: Option<&SqliteStore>, p: &Prepared, d: Digest) -> ProviderOutcome {
        let hex = d.hex();
        let call = match p.kind {
            ProviderKind::VirusTotal => Call::Get(format!("{}/api/v3/files/{hex}", p.base)),
            ProviderKind::MalwareBazaar => Call::Post {
                url: format!("{}/api/v1/", p.base),
                content_type: "application/x-www-form-urlencoded",
                body: format!("query=get_info&hash={hex}").into_bytes(),
            },
            ProviderKind::Hashlookup => {
                Call::Get(format!("{}/lookup/{}/{}", p.base, d.kind().as_str(), hex.to_ascii_uppercase()))
            }
        };
        let wait_until = Instant::now() + self.opts.max_wait;
        let parse = match p.kind {
            ProviderKind::VirusTotal => virustotal::parse,
            ProviderKind::MalwareBazaar => malwarebazaar::parse,
            ProviderKind::Hashlookup => hashlookup::parse,
        };
        let result = self.exchange(store, p, &call, wait_until).and_then(|a| parse(a.status, &a.body, a.retry_after));
        match result {
            Ok(e) => {
                self.remember(store, p.kind, &d, &e);
                ProviderOutcome {
                    provider: p.kind,
                    digest: Some(d),
                    cached: false,
                    fetched_at: Some(unix_now()),
                    result: Ok(e),
                }
            }
            Err(e) => failed(p.kind, d, scrub(e, p.key.as_ref())),
        }
    }

    /// A cached answer, if the store has a fresh one (a store error or an unreadable entry is a miss).
    fn cached(&self, store: Option<&SqliteStore>, kind: ProviderKind, d: &Digest) -> Option<ProviderOutcome> {
        let (at, json) = store?.provider_cache_get(kind.name(), d, self.opts.cache_ttl).ok()??;
        let e: ProviderEvidence = serde_json::from_str(&json).ok()?;
        (e.provider == kind.name()).then_some(ProviderOutcome {
            provider: kind,
            digest: Some(*d),
            cached: true,
            fetched_at: Some(at),
            result: Ok(e),
        })
    }

    /// Cache an answer (a store error only costs a request next time).
    fn remember(&self, store: Option<&SqliteStore>, kind: ProviderKind, d: &Digest, e: &ProviderEvidence) {
        if let (Some(s), Ok(json)) = (store, serde_json::to_string(e)) {
            let _ = s.provider_cache_put(kind.name(), d, &json);
        }
    }

    /// Send `call` until it gives an answer that is not a 429 or a 5xx, the retries are spent, or the next
    /// wait would end after `wait_until`. Each attempt takes a budget slot.
    fn exchange(
        &self,
        store: Option<&SqliteStore>,
        p: &Prepared,
        call: &Call,
        wait_until: Instant,
    ) -> Result<Answer, ProviderError> {
        let mut attempt = 0u32;
        loop {
            self.take_budget(store, p, wait_until)?;
            let (retry_after, last) = match self.send(p, call) {
                Ok(a) if a.status == 429 || (500..600).contains(&a.status) => (a.retry_after, Ok(a)),
                Ok(a) => return Ok(a),
                Err(Failure { error, retryable: false }) => return Err(error),
                Err(Failure { error, retryable: true }) => (None, Err(error)),
            };
            if attempt >= self.opts.retries {
                return last;
            }
            let delay = match retry_after {
                Some(secs) => Duration::from_secs(secs),
                None => backoff(self.opts.backoff_base, attempt),
            };
            if Instant::now() + delay > wait_until {
                return last;
            }
            std::thread::sleep(delay);
            attempt += 1;
        }
    }

    /// Take a slot of the provider's budget, waiting for one when the wait ends before `wait_until`.
    fn take_budget(&self, store: Option<&SqliteStore>, p: &Prepared, wait_until: Instant) -> Result<(), ProviderError> {
        let Some(limit) = p.limit else { return Ok(()) };
        let window = self.opts.budget_window;
        loop {
            let wait = match store.map(|s| s.provider_budget_take(p.kind.name(), limit, window)) {
                Some(Ok(w)) => w,
                // No store, or it failed: count in this process.
                _ => self.local_take(p.kind, limit, window),
            };
            let Some(wait) = wait else { return Ok(()) };
            if Instant::now() + wait > wait_until {
                return Err(ProviderError::Budget {
                    provider: p.kind.name(),
                    limit,
                    wait_secs: wait.as_millis().div_ceil(1000) as u64,
                });
            }
            std::thread::sleep(wait);
        }
    }

    fn local_take(&self, kind: ProviderKind, limit: u32, window: Duration) -> Option<Duration> {
        let mut all = self.local_budget.lock().unwrap_or_else(|e| e.into_inner());
        let sent = all.entry(kind).or_default();
        let now = Instant::now();
        while sent.front().is_some_and(|t| now.duration_since(*t) >= window) {
            sent.pop_front();
        }
        if sent.len() < limit as usize {
            sent.push_back(now);
            return None;
        }
        sent.front().map(|oldest| (*oldest + window).saturating_duration_since(now).max(Duration::from_millis(1)))
    }

    fn client(&self, provider: &'static str) -> Result<&Client, ProviderError> {
        self.client
            .get_or_init(|| build_client(&self.opts))
            .as_ref()
            .map_err(|detail| ProviderError::Config { provider, detail: detail.clone() })
    }

    /// One HTTP exchange: the answer's status and body (at most `MAX_RESPONSE_BYTES + 1` bytes, read within
    /// the timeout).
    fn send(&self, p: &Prepared, call: &Call) -> Result<Answer, Failure> {
        let name = p.kind.name();
        let fatal = |error| Failure { error, retryable: false };
        let client = self.client(name).map_err(fatal)?;
        let request = match call {
            Call::Get(url) => client.get(url),
            Call::Post { url, content_type, body } => {
                client.post(url).header(CONTENT_TYPE, *content_type).body(body.clone())
            }
        };
        let mut request = request.header(ACCEPT, "application/json").timeout(self.opts.timeout);
        if let Some((header, value)) = &p.auth {
            request = request.header(header.clone(), value.clone());
        }
        let started = Instant::now();
        let response = request.send().map_err(|e| self.transport_failure(p, e))?;
        let status = response.status();
        if status.is_redirection() {
            let target = redirect_target(&p.base, response.headers().get(LOCATION));
            return Err(fatal(ProviderError::Redirect { provider: name, target }));
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok());
        let too_large = || ProviderError::Malformed {
            provider: name,
            detail: format!("larger than {} MiB", MAX_RESPONSE_BYTES >> 20),
        };
        if response.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
            return Err(fatal(too_large()));
        }
        let deadline = started + self.opts.timeout;
        let timeout = ProviderError::Timeout { provider: name, millis: millis(self.opts.timeout) };
        let mut body = Vec::new();
        let mut reader = response.take(MAX_RESPONSE_BYTES as u64 + 1);
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => body.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => return Err(fatal(timeout)),
                Err(e) => {
                    return Err(Failure {
                        error: ProviderError::Network {
                            provider: name,
                            detail: format!("answer cut short: {}", short_cause(&e)),
                        },
                        retryable: false,
                    });
                }
            }
            if Instant::now() >= deadline {
                return Err(fatal(timeout));
            }
        }
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(fatal(too_large()));
        }
        Ok(Answer { status: status.as_u16(), retry_after, body })
    }

    /// A request that got no answer: a timeout, a failed connection (worth retrying) or another failure.
    fn transport_failure(&self, p: &Prepared, e: reqwest::Error) -> Failure {
        let name = p.kind.name();
        let e = e.without_url();
        if e.is_timeout() {
            return Failure {
                error: ProviderError::Timeout { provider: name, millis: millis(self.opts.timeout) },
                retryable: false,
            };
        }
        let cause = short_cause(&e);
        if e.is_connect() {
            return Failure {
                error: ProviderError::Network {
                    provider: name,
                    detail: format!("cannot connect to {}: {cause}", p.host),
                },
                retryable: true,
            };
        }
        Failure {
            error: ProviderError::Network { provider: name, detail: format!("{}: {cause}", p.host) },
            retryable: false,
        }
    }

    #[cfg(test)]
    fn client_built(&self) -> bool {
        self.client.get().is_some()
    }
}

/// The seconds since the epoch.
fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn no_digest(kind: ProviderKind) -> ProviderOutcome {
    ProviderOutcome {
        provider: kind,
        digest: None,
        cached: false,
        fetched_at: None,
        result: Err(ProviderError::NoDigest { provider: kind.name() }),
    }
}

fn failed(kind: ProviderKind, d: Digest, error: ProviderError) -> ProviderOutcome {
    ProviderOutcome { provider: kind, digest: Some(d), cached: false, fetched_at: None, result: Err(error) }
}

/// Check one provider's settings.
fn prepare(s: ProviderSettings) -> Result<Prepared, ProviderError> {
    let name = s.kind.name();
    let config = |detail: String| ProviderError::Config { provider: name, detail };
    let base = s.base_url.trim().trim_end_matches('/').to_string();
    let url = Url::parse(&base).map_err(|e| config(format!("base URL \"{}\" is not a URL ({e})", excerpt(&base))))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(config(format!("base URL \"{}\" is not an http(s) URL", excerpt(&base))));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err(config("the base URL must not carry credentials, a query or a fragment".into()));
    }
    let host = host_port(&url);
    let key = s.key.filter(|k| !k.is_empty());
    let auth = match (s.kind, &key) {
        (ProviderKind::Hashlookup, _) => None,
        (kind, None) => return Err(ProviderError::MissingKey { provider: name, env: kind.key_env()[0] }),
        (kind, Some(k)) => {
            let h = url.host_str().unwrap_or("");
            let loopback = h.eq_ignore_ascii_case("localhost")
                || h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|a| a.is_loopback());
            if url.scheme() == "http" && !loopback {
                return Err(config(format!("refusing to send the API key in clear text to {host} (use https)")));
            }
            let mut value = HeaderValue::from_str(k.expose())
                .map_err(|_| config("the API key has characters an HTTP header cannot carry".into()))?;
            value.set_sensitive(true);
            let header = match kind {
                ProviderKind::VirusTotal => HeaderName::from_static("x-apikey"),
                _ => HeaderName::from_static("auth-key"),
            };
            Some((header, value))
        }
    };
    Ok(Prepared {
        kind: s.kind,
        base,
        host,
        auth,
        // hashlookup is never sent a key, so it never needs scrubbing of one.
        key: if s.kind == ProviderKind::Hashlookup { None } else { key },
        limit: s.requests_per_minute.filter(|n| *n > 0),
    })
}

fn host_port(url: &Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => "an unknown address".into(),
    }
}

/// `host:port` a redirect points at, resolved against the base URL.
fn redirect_target(base: &str, location: Option<&HeaderValue>) -> String {
    location
        .and_then(|v| v.to_str().ok())
        .and_then(|l| Url::parse(&format!("{base}/")).ok()?.join(l.trim()).ok())
        .filter(|u| u.host_str().is_some())
        .map(|u| excerpt(&host_port(&u)))
        .unwrap_or_else(|| "an address not given".into())
}

/// Build the blocking client: no redirects, the user agent, timeouts, ring as rustls' provider.
fn build_client(opts: &ClientOptions) -> Result<Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never())
        .user_agent(concat!("filerep/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(opts.connect_timeout)
        .timeout(opts.timeout);
    if !opts.system_proxy {
        builder = builder.no_proxy();
    }
    builder.build().map_err(|e| format!("cannot set up the HTTP client ({})", short_cause(&e.without_url())))
}

/// Exponential backoff with up to a quarter of jitter: base, 2 × base, 4 × base, … (at most a minute).
fn backoff(base: Duration, attempt: u32) -> Duration {
    let d = base.saturating_mul(1 << attempt.min(16)).min(Duration::from_secs(60));
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |t| t.subsec_nanos());
    let quarter = millis(d) / 4;
    d + Duration::from_millis(if quarter == 0 { 0 } else { u64::from(nanos) % quarter })
}

/// The next error in a chain; an `io::Error` wrapping another error leads to that error (its `source()`
/// would skip it).
fn next_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a (dyn std::error::Error + 'static)> {
    match e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
        Some(inner) => Some(inner),
        None => e.source(),
    }
}

/// A read error that is a timeout (reqwest's, or the socket's).
fn is_timeout(e: &io::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::TimedOut {
                return true;
            }
        }
        if c.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_timeout) {
            return true;
        }
        cur = next_cause(c);
    }
    false
}

/// The cause of a transport error in a few words: "connection refused", "connection reset", or the innermost
/// error's message (short and sanitised), never reqwest's whole chain.
fn short_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = e;
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            let known = match io.kind() {
                io::ErrorKind::ConnectionRefused => Some("connection refused"),
                io::ErrorKind::ConnectionReset => Some("connection reset"),
                io::ErrorKind::ConnectionAborted => Some("connection aborted"),
                io::ErrorKind::TimedOut => Some("timed out"),
                io::ErrorKind::UnexpectedEof => Some("connection closed early"),
                _ => None,
            };
            if let Some(k) = known {
                return k.to_string();
            }
        }
        innermost = c;
        cur = next_cause(c);
    }
    excerpt(&innermost.to_string())
}

/// Remove the key, whole or cut short (an excerpt may end inside it), from a text that may quote a server.
fn scrub_text(text: &mut String, key: &str) {
    const MIN: usize = 6;
    if key.len() < MIN {
        if !key.is_empty() && text.contains(key) {
            *text = text.replace(key, "<redacted>");
        }
        return;
    }
    let probe = &key[..MIN];
    let mut from = 0;
    while let Some(at) = text[from..].find(probe).map(|i| i + from) {
        let mut common = text[at..].bytes().zip(key.bytes()).take_while(|(a, b)| a == b).count();
        while !text.is_char_boundary(at + common) {
            common -= 1;
        }
        text.replace_range(at..at + common, "<redacted>");
        from = at + "<redacted>".len();
    }
}

/// The error with every text a server could have filled scrubbed of the key.
fn scrub(mut e: ProviderError, key: Option<&ApiKey>) -> ProviderError {
    let Some(key) = key.map(ApiKey::expose).filter(|k| !k.is_empty()) else { return e };
    match &mut e {
        ProviderError::Auth { detail, .. }
        | ProviderError::BadRequest { detail, .. }
        | ProviderError::Malformed { detail, .. }
        | ProviderError::Config { detail, .. }
        | ProviderError::Network { detail, .. } => scrub_text(detail, key),
        ProviderError::Redirect { target, .. } => scrub_text(target, key),
        ProviderError::RateLimited { .. }
        | ProviderError::Status { .. }
        | ProviderError::MissingKey { .. }
        | ProviderError::Timeout { .. }
        | ProviderError::Budget { .. }
        | ProviderError::NoDigest { .. } => {}
    }
    e
}

#[cfg(test)]
mod tests;
