//! Opt-in public providers (VirusTotal, MalwareBazaar, CIRCL hashlookup): what their answers mean.
//!
//! Each provider module turns one HTTP answer (status and body) into [`ProviderEvidence`] or a
//! [`ProviderError`]. "Not found" is an answer, not an error: MalwareBazaar says `hash_not_found` with status
//! 200, hashlookup and VirusTotal answer 404. The parsers open no connection; [`client`] (the HTTP client,
//! with the request budget, backoff and cache) builds on them.
//!
//! Provider text is hostile input like any file string: it is kept as data and sanitised only where it is
//! printed; error messages quote at most a short, sanitised excerpt of a body and never a request header
//! (so never an API key).

pub mod client;
pub mod hashlookup;
pub mod malwarebazaar;
pub mod virustotal;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::verdict::Level;

/// Responses larger than this are not read (a provider answer for one hash is a few kilobytes; VirusTotal's
/// largest file objects are a few hundred).
pub const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// What one provider said about one hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderEvidence {
    /// `virustotal`, `malwarebazaar` or `hashlookup`.
    pub provider: String,
    /// The provider knows the hash.
    pub found: bool,
    /// One line for the card: "VirusTotal: 64/70 engines, first seen 2014-09-11".
    pub summary: String,
    /// The verdict level this answer supports on its own (null when it says nothing either way).
    pub level: Option<Level>,
    /// Engines that flag the file (VirusTotal).
    pub detections: Option<u32>,
    /// Engines that gave a verdict (VirusTotal: malicious + suspicious + undetected + harmless).
    pub engines: Option<u32>,
    /// First seen by the provider, RFC 3339 or a date.
    pub first_seen: Option<String>,
    /// Names the provider knows the file by.
    pub names: Vec<String>,
    /// Threat labels, signatures and tags.
    pub labels: Vec<String>,
    /// hashlookup's trust score (0-100; 50 means no information).
    pub trust: Option<u32>,
    /// Where the provider's knowledge comes from (hashlookup: `nsrl_legacy`, a package source, …).
    pub origin: Option<String>,
}

impl ProviderEvidence {
    fn new(provider: &str, found: bool, summary: String) -> ProviderEvidence {
        ProviderEvidence {
            provider: provider.to_string(),
            found,
            summary,
            level: None,
            detections: None,
            engines: None,
            first_seen: None,
            names: Vec::new(),
            labels: Vec::new(),
            trust: None,
            origin: None,
        }
    }
}

/// Why a provider's answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The key is missing, wrong or blocked.
    #[error("{provider}: authentication refused ({detail})")]
    Auth {
        /// Provider name.
        provider: &'static str,
        /// The provider's reason.
        detail: String,
    },
    /// Too many requests; retry after this many seconds when the provider said.
    #[error("{provider}: rate limited{}", retry_after.map(|s| format!(" (retry after {s} s)")).unwrap_or_default())]
    RateLimited {
        /// Provider name.
        provider: &'static str,
        /// `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
    /// The provider refused the query as malformed.
    #[error("{provider}: bad request ({detail})")]
    BadRequest {
        /// Provider name.
        provider: &'static str,
        /// The provider's reason.
        detail: String,
    },
    /// A server error (5xx) or another status the provider does not document for this call.
    #[error("{provider}: HTTP status {status}")]
    Status {
        /// Provider name.
        provider: &'static str,
        /// The status.
        status: u16,
    },
    /// Not the documented answer (truncated JSON, an HTML error page, a missing field).
    #[error("{provider}: unexpected answer ({detail})")]
    Malformed {
        /// Provider name.
        provider: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The provider needs an API key and none was given.
    #[error("{provider}: no API key (set {env} or put the key in the config file)")]
    MissingKey {
        /// Provider name.
        provider: &'static str,
        /// The environment variable to set.
        env: &'static str,
    },
    /// A setting that cannot work (an unknown provider, a base URL that is not one, a key an HTTP header
    /// cannot carry).
    #[error("{provider}: {detail}")]
    Config {
        /// Provider name (or `providers` when it is the name that is wrong).
        provider: &'static str,
        /// What is wrong (never the key).
        detail: String,
    },
    /// The provider could not be reached, or the connection broke.
    #[error("{provider}: network error ({detail})")]
    Network {
        /// Provider name.
        provider: &'static str,
        /// A short cause: "connection refused to 127.0.0.1:443", "connection reset", …
        detail: String,
    },
    /// No complete answer within the time allowed for one request.
    #[error("{provider}: no answer within {}", seconds(*millis))]
    Timeout {
        /// Provider name.
        provider: &'static str,
        /// The time allowed, in milliseconds.
        millis: u64,
    },
    /// The request budget is spent and the next slot is further away than the lookup may wait.
    #[error("{provider}: request budget of {limit}/min spent; next request possible in {wait_secs} s")]
    Budget {
        /// Provider name.
        provider: &'static str,
        /// Requests allowed a minute.
        limit: u32,
        /// Seconds until a request may go.
        wait_secs: u64,
    },
    /// The provider answered with a redirect, which is never followed (the key must not go elsewhere).
    #[error("{provider}: redirect to {target} refused (a key is never sent to another address)")]
    Redirect {
        /// Provider name.
        provider: &'static str,
        /// `host:port` of the redirect's target (or `an invalid address`).
        target: String,
    },
    /// The file has no digest this provider can be asked about.
    #[error("{provider}: no MD5, SHA-1 or SHA-256 to ask about")]
    NoDigest {
        /// Provider name.
        provider: &'static str,
    },
}

impl ProviderError {
    /// The provider the error is about.
    pub fn provider(&self) -> &'static str {
        match self {
            ProviderError::Auth { provider, .. }
            | ProviderError::RateLimited { provider, .. }
            | ProviderError::BadRequest { provider, .. }
            | ProviderError::Status { provider, .. }
            | ProviderError::Malformed { provider, .. }
            | ProviderError::MissingKey { provider, .. }
            | ProviderError::Config { provider, .. }
            | ProviderError::Network { provider, .. }
            | ProviderError::Timeout { provider, .. }
            | ProviderError::Budget { provider, .. }
            | ProviderError::Redirect { provider, .. }
            | ProviderError::NoDigest { provider } => provider,
        }
    }
}

/// "20 s", "0.5 s".
fn seconds(millis: u64) -> String {
    if millis % 1000 == 0 { format!("{} s", millis / 1000) } else { format!("{:.1} s", millis as f64 / 1000.0) }
}

/// A short, printable excerpt of text that came from a provider (for error messages).
fn excerpt(text: &str) -> String {
    let mut s: String = text.chars().take(120).collect();
    if text.chars().nth(120).is_some() {
        s.push('…');
    }
    crate::term::sanitize(&s).into_owned()
}

/// Parse a JSON body, or say briefly what it was instead.
fn json_body(provider: &'static str, body: &[u8]) -> Result<serde_json::Value, ProviderError> {
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(ProviderError::Malformed {
            provider,
            detail: format!("larger than {} MiB", MAX_RESPONSE_BYTES >> 20),
        });
    }
    serde_json::from_slice(body).map_err(|e| {
        let start = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        let what =
            if start.trim_start().starts_with('<') { "an HTML page, not JSON".to_string() } else { e.to_string() };
        ProviderError::Malformed { provider, detail: format!("{what}: {}", excerpt(&start)) }
    })
}

/// A string field, trimmed, when present and not empty.
fn text(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key).and_then(|x| x.as_str()).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// A date from seconds since the epoch.
fn date_of(secs: i64) -> String {
    crate::analysis::pe::rfc3339(secs)[..10].to_string()
}

#[cfg(test)]
pub(crate) fn sample(rel: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/feeds").join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_that_are_not_json_say_what_they_are() {
        let e = json_body("virustotal", b"<html><body>502 Bad Gateway</body></html>").unwrap_err();
        assert!(e.to_string().contains("an HTML page, not JSON"), "{e}");
        let e = json_body("virustotal", b"{\"data\": {\"attri").unwrap_err();
        assert!(e.to_string().contains("EOF"), "{e}");
        let e = json_body("virustotal", b"\x1b[31m{").unwrap_err();
        assert!(!e.to_string().contains('\x1b'), "escapes are sanitised: {e}");
        let big = vec![b' '; MAX_RESPONSE_BYTES + 1];
        assert!(json_body("virustotal", &big).unwrap_err().to_string().contains("larger than 4 MiB"));
    }
}
