//! The client of a remote store: a `filerep serve` instance asked with `--remote URL`.
//!
//! Lookups are batched (`POST /v1/lookup`, at most [`MAX_BATCH`] hashes a request); answers are bounded in
//! size; connect and whole-request timeouts apply; redirects are never followed (a write token must not reach
//! another address). Only hashes are sent, and analysis reports with `--submit`. The HTTP client is built only
//! when a remote is configured: a run without one opens no connection.

use std::io::Read;
use std::time::Duration;

use crate::report::LookupReport;

/// Hashes per `POST /v1/lookup` (the server's limit).
pub const MAX_BATCH: usize = 1000;
/// Largest answer read (1,000 lookups with their records and other versions).
pub const MAX_ANSWER_BYTES: u64 = 64 << 20;
/// Submitted reports per request are grouped up to about this many bytes of JSON.
pub const SUBMIT_CHUNK_BYTES: usize = 512 << 10;

/// Why the remote store could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// The URL is not an http(s) URL.
    #[error("remote {url}: not a usable URL ({why}); expected http://HOST:PORT or https://HOST")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// No connection (refused, unreachable, DNS, TLS).
    #[error("remote {url}: cannot connect ({why})")]
    Connect {
        /// The base URL.
        url: String,
        /// The cause, short.
        why: String,
    },
    /// The connect or whole-request timeout passed.
    #[error("remote {url}: no answer within {secs} s")]
    Timeout {
        /// The base URL.
        url: String,
        /// The timeout that passed.
        secs: u64,
    },
    /// The server refused the request.
    #[error("remote {url}: HTTP {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Status {
        /// The base URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's `error` text, if any.
        message: String,
    },
    /// The answer is not what a `filerep serve` sends.
    #[error("remote {url}: not a filerep serve answer ({why})")]
    Malformed {
        /// The base URL.
        url: String,
        /// What was wrong.
        why: String,
    },
    /// `--submit` without a token.
    #[error("remote {url}: --submit needs the server's write token in $FILEREP_REMOTE_TOKEN or remote.token_file")]
    NoToken {
        /// The base URL.
        url: String,
    },
}

/// Connection settings.
#[derive(Clone)]
pub struct RemoteOptions {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for a whole request and its answer.
    pub timeout: Duration,
    /// The write token for `--submit` (never printed).
    pub token: Option<String>,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions { connect_timeout: Duration::from_secs(3), timeout: Duration::from_secs(30), token: None }
    }
}

impl std::fmt::Debug for RemoteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A remote store.
pub struct Remote {
    url: String,
    client: reqwest::blocking::Client,
    opts: RemoteOptions,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("url", &self.url).field("opts", &self.opts).finish()
    }
}

/// Check a base URL: http or https, a host, no credentials, query or fragment. Returns it without a trailing
/// slash.
pub fn normalise_url(url: &str) -> Result<String, RemoteError> {
    let bad = |why: &str| RemoteError::Url { url: crate::term::sanitize(url).into_owned(), why: why.to_string() };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("only http and https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("credentials in the URL; use the token file"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("a query or fragment"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// Make sure rustls has its crypto provider (ring) before a client is built.
pub(crate) fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Remote {
    /// A client for the store at `url` (nothing is sent yet).
    pub fn new(url: &str, opts: RemoteOptions) -> Result<Remote, RemoteError> {
        let url = normalise_url(url)?;
        install_tls_provider();
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("filerep/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RemoteError::Connect { url: url.clone(), why: short_cause(&e) })?;
        Ok(Remote { url, client, opts })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether writes (`--submit`) have a token to send.
    pub fn has_token(&self) -> bool {
        self.opts.token.is_some()
    }

    /// Look hashes up (`HEX` or `KIND:HEX`, see [`crate::reputation::parse_query`]), in batches; one answer per
    /// query, in order.
    pub fn lookup(&self, queries: &[String]) -> Result<Vec<LookupReport>, RemoteError> {
        let mut out = Vec::with_capacity(queries.len());
        for chunk in queries.chunks(MAX_BATCH) {
            let body = serde_json::to_vec(&serde_json::json!({ "hashes": chunk }))
                .map_err(|e| self.malformed(&e.to_string()))?;
            let answer: LookupAnswer = self.post_json("/v1/lookup", body, None)?;
            if answer.results.len() != chunk.len() {
                return Err(self.malformed(&format!("{} answers to {} hashes", answer.results.len(), chunk.len())));
            }
            out.extend(answer.results);
        }
        Ok(out)
    }

    /// Send analysis reports (`check --json` report objects) with the write token; returns how many the server
    /// stored.
    pub fn submit_reports(&self, reports: &[serde_json::Value]) -> Result<usize, RemoteError> {
        let token = self.opts.token.clone().ok_or_else(|| RemoteError::NoToken { url: self.url.clone() })?;
        let mut stored = 0;
        let mut batch: Vec<&serde_json::Value> = Vec::new();
        let mut size = 0;
        let mut flush = |batch: &mut Vec<&serde_json::Value>| -> Result<(), RemoteError> {
            if batch.is_empty() {
                return Ok(());
            }
            let body = serde_json::to_vec(&serde_json::json!({ "schema_version": 1, "reports": batch }))
                .map_err(|e| self.malformed(&e.to_string()))?;
            let answer: SubmitAnswer = self.post_json("/v1/reports", body, Some(&token))?;
            stored += answer.stored;
            batch.clear();
            Ok(())
        };
        for r in reports {
            let len = serde_json::to_vec(r).map(|v| v.len()).unwrap_or(0);
            if !batch.is_empty() && (size + len > SUBMIT_CHUNK_BYTES || batch.len() >= MAX_BATCH) {
                flush(&mut batch)?;
                size = 0;
            }
            batch.push(r);
            size += len;
        }
        flush(&mut batch)?;
        Ok(stored)
    }

    /// Send one `filerep observe` run (`POST /v1/sightings`, with the token). Returns the files the server
    /// recorded (0 when it had recorded this run before).
    pub fn submit_sightings(&self, observation: &crate::observe::Observation) -> Result<usize, RemoteError> {
        let token = self.opts.token.clone().ok_or_else(|| RemoteError::NoToken { url: self.url.clone() })?;
        let body = serde_json::to_vec(observation).map_err(|e| self.malformed(&e.to_string()))?;
        let answer: SightingsAnswer = self.post_json("/v1/sightings", body, Some(&token))?;
        Ok(answer.recorded)
    }

    fn malformed(&self, why: &str) -> RemoteError {
        RemoteError::Malformed { url: self.url.clone(), why: crate::term::sanitize(why).into_owned() }
    }

    fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
        token: Option<&str>,
    ) -> Result<T, RemoteError> {
        let mut req = self
            .client
            .post(format!("{}{path}", self.url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().map_err(|e| self.transport(&e))?;
        let status = resp.status().as_u16();
        let mut buf = Vec::new();
        resp.take(MAX_ANSWER_BYTES + 1).read_to_end(&mut buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::TimedOut || e.to_string().contains("timed out") {
                RemoteError::Timeout { url: self.url.clone(), secs: self.opts.timeout.as_secs() }
            } else {
                self.malformed(&format!("reading the answer: {e}"))
            }
        })?;
        if buf.len() as u64 > MAX_ANSWER_BYTES {
            return Err(self.malformed(&format!("an answer larger than {} MiB", MAX_ANSWER_BYTES >> 20)));
        }
        if !(200..300).contains(&status) {
            let message = serde_json::from_slice::<serde_json::Value>(&buf)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .map(|m| crate::term::sanitize(&m.chars().take(200).collect::<String>()).into_owned())
                .unwrap_or_default();
            return Err(RemoteError::Status { url: self.url.clone(), status, message });
        }
        serde_json::from_slice(&buf).map_err(|e| {
            if buf.trim_ascii_start().starts_with(b"<") {
                self.malformed("an HTML page, not JSON")
            } else {
                self.malformed(&e.to_string())
            }
        })
    }

    fn transport(&self, e: &reqwest::Error) -> RemoteError {
        if e.is_timeout() {
            let secs = if e.is_connect() { self.opts.connect_timeout.as_secs() } else { self.opts.timeout.as_secs() };
            return RemoteError::Timeout { url: self.url.clone(), secs };
        }
        RemoteError::Connect { url: self.url.clone(), why: short_cause(e) }
    }
}

/// The innermost cause of a reqwest error, short ("Connection refused (os error 111)"), without the URL.
pub(crate) fn short_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        last = c.to_string();
        cur = c.source();
    }
    let last: String = last.chars().take(160).collect();
    crate::term::sanitize(&last).into_owned()
}

#[derive(serde::Deserialize)]
struct LookupAnswer {
    results: Vec<LookupReport>,
}

#[derive(serde::Deserialize)]
struct SubmitAnswer {
    stored: usize,
}

#[derive(serde::Deserialize)]
struct SightingsAnswer {
    recorded: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn urls_are_checked() {
        assert_eq!(normalise_url("http://127.0.0.1:7878/").unwrap(), "http://127.0.0.1:7878");
        assert_eq!(normalise_url("https://rep.example/base/").unwrap(), "https://rep.example/base");
        for bad in ["ftp://x", "127.0.0.1:7878", "http://", "http://u:p@host", "http://h/?q=1", "\u{1b}[31m"] {
            let e = normalise_url(bad).unwrap_err().to_string();
            assert!(e.contains("not a usable URL") && !e.contains('\u{1b}'), "{bad}: {e}");
        }
    }

    /// One connection, one canned answer; returns the request it read.
    fn serve_once(answer: &'static [u8]) -> (String, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 65536];
            // Read the head and the body announced by Content-Length.
            loop {
                let n = s.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if req.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            s.write_all(answer).unwrap();
            String::from_utf8_lossy(&req).to_string()
        });
        (url, h)
    }

    #[test]
    fn errors_say_what_answered() {
        let (url, h) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n<html>proxy</html>\r\n");
        let r = Remote::new(&url, RemoteOptions::default()).unwrap();
        let e = r.lookup(&["d41d8cd98f00b204e9800998ecf8427e".into()]).unwrap_err().to_string();
        assert!(e.contains("an HTML page"), "{e}");
        let req = h.join().unwrap();
        assert!(req.starts_with("POST /v1/lookup HTTP/1.1"), "{req}");
        assert!(req.ends_with("{\"hashes\":[\"d41d8cd98f00b204e9800998ecf8427e\"]}"), "{req}");

        let (url, h) = serve_once(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 28\r\n\r\n{\"error\":\"invalid hash 'x'\"}",
        );
        let e = Remote::new(&url, RemoteOptions::default()).unwrap().lookup(&["x".into()]).unwrap_err();
        assert_eq!(e, RemoteError::Status { url: url.clone(), status: 400, message: "invalid hash 'x'".into() });
        h.join().unwrap();

        // A redirect is not followed (and is not an answer).
        let (url, h) = serve_once(
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:9/\r\nContent-Length: 0\r\n\r\n",
        );
        let opts = RemoteOptions { token: Some("TOKEN-CANARY".into()), ..Default::default() };
        let e = Remote::new(&url, opts).unwrap().submit_reports(&[serde_json::json!({"a": 1})]).unwrap_err();
        assert!(matches!(e, RemoteError::Status { status: 307, .. }), "{e}");
        assert!(!e.to_string().contains("TOKEN-CANARY"));
        let req = h.join().unwrap();
        assert!(req.contains("authorization: Bearer TOKEN-CANARY"), "the token goes to the remote itself: {req}");

        // Nobody listening.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = Remote::new(&format!("http://127.0.0.1:{port}"), RemoteOptions::default())
            .unwrap()
            .lookup(&["d41d8cd98f00b204e9800998ecf8427e".into()])
            .unwrap_err();
        assert!(matches!(e, RemoteError::Connect { .. }), "{e}");
        assert!(e.to_string().to_lowercase().contains("refused"), "{e}");
    }

    #[test]
    fn a_short_answer_is_malformed_not_a_panic() {
        let (url, h) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n{\"results\":[]}");
        let e = Remote::new(&url, RemoteOptions::default()).unwrap().lookup(&["a".repeat(32)]).unwrap_err();
        assert!(e.to_string().contains("0 answers to 1 hashes"), "{e}");
        h.join().unwrap();
        let opts = RemoteOptions::default();
        assert!(!format!("{:?}", RemoteOptions { token: Some("SECRET".into()), ..opts }).contains("SECRET"));
    }
}
