//! The client against local servers replaying the providers' real answers (tests/data/feeds), including the
//! bad days: 429 with `Retry-After`, 5xx, truncated JSON, HTML pages, a slow drip, an endless body, a
//! redirect to another port, a refused connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::*;
use crate::providers::sample;
use crate::store::sqlite::Mode;

const CANARY: &str = "CANARY-KEY-5f3a9c1e7b2d4068";

// ---------------------------------------------------------------------------------------------------------
// A scripted HTTP/1.1 server that records every request.

#[derive(Clone)]
enum Body {
    /// A complete body with its Content-Length.
    Full(Vec<u8>),
    /// Headers announcing a large body, then one byte every 200 ms, forever.
    Drip,
    /// No Content-Length, bytes until the client goes away.
    Endless,
}

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

impl Reply {
    fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply { status, headers: vec![("Content-Type", "application/json".into())], body: Body::Full(body.into()) }
    }
    fn sample(status: u16, rel: &str) -> Reply {
        Reply::new(status, sample(rel))
    }
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
    fn body(mut self, body: Body) -> Reply {
        self.body = body;
        self
    }
}

/// A request as the server received it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    /// Names in lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
    /// Everything that went out, as text.
    fn raw(&self) -> String {
        let headers: Vec<String> = self.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
        format!("{} {}\n{}\n{}", self.method, self.path, headers.join("\n"), String::from_utf8_lossy(&self.body))
    }
}

type Handler = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
}

impl Server {
    /// A server answering with `handler(request, index of the request)`.
    fn start(handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s, c) = (seen.clone(), connections.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let (s, h) = (s.clone(), handler.clone());
                thread::spawn(move || serve_connection(stream, &s, &*h));
            }
        });
        Server { addr, seen, connections }
    }

    /// A server giving these replies in order (the last one again and again).
    fn script(replies: Vec<Reply>) -> Server {
        Server::start(move |_, i| replies[i.min(replies.len() - 1)].clone())
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One request per connection (every reply says `Connection: close`).
fn serve_connection(mut stream: TcpStream, seen: &Mutex<Vec<Seen>>, handler: &Handler) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p + 4;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, path) = (first.next().unwrap_or("").to_string(), first.next().unwrap_or("").to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let request = Seen { method, path, headers, body };
    let index = {
        let mut s = seen.lock().unwrap();
        s.push(request.clone());
        s.len() - 1
    };
    let reply = handler(&request, index);
    let mut out = format!("HTTP/1.1 {} Scripted\r\nConnection: close\r\n", reply.status);
    for (n, v) in &reply.headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    match reply.body {
        Body::Full(b) => {
            out.push_str(&format!("Content-Length: {}\r\n\r\n", b.len()));
            let _ = stream.write_all(out.as_bytes()).and_then(|_| stream.write_all(&b));
        }
        Body::Drip => {
            if !reply.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-length")) {
                out.push_str("Content-Length: 100000\r\n");
            }
            out.push_str("\r\n");
            if stream.write_all(out.as_bytes()).is_err() {
                return;
            }
            while stream.write_all(b" ").and_then(|_| stream.flush()).is_ok() {
                thread::sleep(Duration::from_millis(200));
            }
        }
        Body::Endless => {
            out.push_str("\r\n");
            let block = vec![b'['; 64 << 10];
            let _ = stream.write_all(out.as_bytes());
            while stream.write_all(&block).is_ok() {}
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Helpers.

fn fast() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        cache_ttl: Duration::from_secs(3600),
        max_wait: Duration::from_secs(3),
        retries: 3,
        backoff_base: Duration::from_millis(10),
        budget_window: Duration::from_secs(60),
        bulk_chunk: 100,
        system_proxy: false,
    }
}

fn settings(kind: ProviderKind, server: &Server) -> ProviderSettings {
    ProviderSettings {
        kind,
        base_url: server.url(),
        key: kind.needs_key().then(|| ApiKey::new(CANARY)),
        requests_per_minute: None,
    }
}

fn providers(kind: ProviderKind, server: &Server, opts: ClientOptions) -> Providers {
    Providers::new(vec![settings(kind, server)], opts).unwrap()
}

fn md5(hex: &str) -> Digest {
    Digest::parse_hex(DigestKind::Md5, hex).unwrap()
}
fn sha1(hex: &str) -> Digest {
    Digest::parse_hex(DigestKind::Sha1, hex).unwrap()
}
fn sha256(hex: &str) -> Digest {
    Digest::parse_hex(DigestKind::Sha256, hex).unwrap()
}

/// The three digests of a made-up file `n`.
fn file(n: u8) -> Vec<Digest> {
    let h = |len: usize| format!("{n:02x}").repeat(len);
    vec![md5(&h(16)), sha1(&h(20)), sha256(&h(32))]
}

/// The one outcome of a one-provider lookup.
fn one(p: &Providers, store: Option<&SqliteStore>, digests: &[Digest]) -> ProviderOutcome {
    let mut v = p.lookup(store, digests);
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn err(o: &ProviderOutcome) -> ProviderError {
    o.result.clone().expect_err("an error")
}

/// The canary key appears nowhere a user or a log could see it.
fn no_canary(o: &ProviderOutcome) {
    let texts = [format!("{o:?}"), o.result.as_ref().err().map(|e| e.to_string()).unwrap_or_default()];
    for t in texts {
        assert!(!t.contains(CANARY) && !t.contains(&CANARY[..10]), "the key leaked: {t}");
    }
}

fn temp_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.sqlite"), Mode::Read).unwrap();
    (dir, store)
}

fn mb_found_body() -> Vec<u8> {
    let records = String::from_utf8(sample("malwarebazaar/api_records_2026_newer_fields.ndjson")).unwrap();
    format!("{{\"query_status\": \"ok\", \"data\": [{}]}}", records.lines().next().unwrap()).into_bytes()
}

// ---------------------------------------------------------------------------------------------------------
// Settings, names, keys.

#[test]
fn names_and_parsing() {
    for k in ProviderKind::ALL {
        assert_eq!(k.name().parse::<ProviderKind>().unwrap(), k);
        assert_eq!(k.to_string(), k.name());
        assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", k.name()));
    }
    assert_eq!("VT".parse::<ProviderKind>().unwrap(), ProviderKind::VirusTotal);
    assert_eq!(
        ProviderKind::parse_list("virustotal, hashlookup,virustotal").unwrap(),
        [ProviderKind::VirusTotal, ProviderKind::Hashlookup]
    );
    let e = ProviderKind::parse_list("virustotal,shodan").unwrap_err();
    assert_eq!(e.to_string(), "providers: unknown provider \"shodan\" (known: virustotal, malwarebazaar, hashlookup)");
    assert_eq!(ProviderKind::VirusTotal.display_name(), "VirusTotal");
}

#[test]
fn settings_from_the_environment() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    };
    let s = ProviderSettings::from_vars(ProviderKind::VirusTotal, env(&[("VT_API_KEY", "vt-key\n")]));
    assert_eq!(s.key.as_ref().map(ApiKey::expose), Some("vt-key"), "VT_API_KEY, trimmed");
    assert_eq!((s.base_url.as_str(), s.requests_per_minute), ("https://www.virustotal.com", Some(4)));
    let s = ProviderSettings::from_vars(
        ProviderKind::VirusTotal,
        env(&[
            ("VT_API_KEY", "old"),
            ("FILEREP_VIRUSTOTAL_KEY", "new"),
            ("FILEREP_VIRUSTOTAL_URL", "http://127.0.0.1:9/"),
        ]),
    );
    assert_eq!(s.key.as_ref().map(ApiKey::expose), Some("new"), "FILEREP_VIRUSTOTAL_KEY comes first");
    assert_eq!(s.base_url, "http://127.0.0.1:9/");
    let s = ProviderSettings::from_vars(
        ProviderKind::VirusTotal,
        env(&[("FILEREP_VIRUSTOTAL_KEY", " "), ("VT_API_KEY", "b")]),
    );
    assert_eq!(s.key.as_ref().map(ApiKey::expose), Some("b"), "an empty variable counts as unset");
    let s = ProviderSettings::from_vars(ProviderKind::MalwareBazaar, env(&[("FILEREP_MALWAREBAZAAR_KEY", "mb")]));
    assert_eq!((s.key.as_ref().map(ApiKey::expose), s.requests_per_minute), (Some("mb"), None));
    let s =
        ProviderSettings::from_vars(ProviderKind::Hashlookup, env(&[("FILEREP_HASHLOOKUP_URL", "https://h.example")]));
    assert_eq!((s.base_url.as_str(), s.key), ("https://h.example", None));
}

#[test]
fn keys_never_print() {
    let k = ApiKey::new(CANARY);
    assert_eq!((format!("{k}"), format!("{k:?}")), ("<redacted>".to_string(), "<redacted>".to_string()));
    let mut s = ProviderSettings::new(ProviderKind::VirusTotal);
    s.key = Some(k);
    assert!(!format!("{s:?}").contains(CANARY));
    let p = Providers::new(vec![s], ClientOptions::default()).unwrap();
    assert!(!format!("{p:?}").contains(CANARY));
}

#[test]
fn missing_keys_and_bad_settings_are_named() {
    let e =
        Providers::new(vec![ProviderSettings::new(ProviderKind::VirusTotal)], ClientOptions::default()).unwrap_err();
    assert_eq!(e, ProviderError::MissingKey { provider: "virustotal", env: "FILEREP_VIRUSTOTAL_KEY" });
    assert_eq!(e.to_string(), "virustotal: no API key (set FILEREP_VIRUSTOTAL_KEY or put the key in the config file)");
    let mut mb = ProviderSettings::new(ProviderKind::MalwareBazaar);
    mb.key = Some(ApiKey::new("  "));
    let e = Providers::new(vec![mb], ClientOptions::default()).unwrap_err();
    assert!(e.to_string().contains("FILEREP_MALWAREBAZAAR_KEY"), "{e}");
    // hashlookup needs no key.
    assert!(Providers::new(vec![ProviderSettings::new(ProviderKind::Hashlookup)], ClientOptions::default()).is_ok());

    let with = |url: &str, key: &str| {
        let mut s = ProviderSettings::new(ProviderKind::VirusTotal);
        s.base_url = url.into();
        s.key = Some(ApiKey::new(key));
        Providers::new(vec![s], ClientOptions::default()).map(|_| ()).map_err(|e| e.to_string())
    };
    assert!(with("http://vt.example.com", CANARY).unwrap_err().contains("clear text to vt.example.com:80"));
    assert!(with("http://localhost:8080", CANARY).is_ok() && with("http://[::1]:8080/", CANARY).is_ok());
    assert!(with("ftp://vt.example.com", CANARY).unwrap_err().contains("not an http(s) URL"));
    assert!(with("https://user:pw@vt.example.com", CANARY).unwrap_err().contains("credentials"));
    assert!(with("not a url", CANARY).unwrap_err().contains("not a URL"));
    let e = with("https://vt.example.com", &format!("{CANARY}\u{7}")).unwrap_err();
    assert!(e.contains("cannot carry") && !e.contains(CANARY), "{e}");
}

#[test]
fn no_client_is_built_when_nothing_is_asked() {
    let p = Providers::new(vec![], ClientOptions::default()).unwrap();
    assert!(p.is_empty() && p.lookup(None, &file(1)).is_empty());
    assert_eq!(p.lookup_many(None, &[file(1), file(2)]), vec![Vec::<ProviderOutcome>::new(); 2]);
    assert!(!p.client_built());
    // A file without a digest the provider takes: nothing is sent.
    let server = Server::script(vec![Reply::new(500, "")]);
    let p = providers(ProviderKind::VirusTotal, &server, fast());
    let imphash = Digest::parse_hex(DigestKind::Imphash, &"ab".repeat(16)).unwrap();
    let o = one(&p, None, &[imphash]);
    assert_eq!((o.digest, err(&o)), (None, ProviderError::NoDigest { provider: "virustotal" }));
    assert!(!p.client_built() && server.count() == 0);
}

// ---------------------------------------------------------------------------------------------------------
// What goes out, and the answers.

#[test]
fn virustotal_found_sends_only_the_sha256_in_the_path_and_the_key_in_a_header() {
    let server = Server::script(vec![Reply::sample(200, "virustotal/GET_files_id_200_75186675.json")]);
    let p = providers(ProviderKind::VirusTotal, &server, fast());
    let f = file(7);
    let o = one(&p, None, &f);
    let e = o.result.as_ref().unwrap();
    assert_eq!(e.summary, "VirusTotal: 64/70 engines, first seen 2014-09-11");
    assert_eq!((o.provider, o.digest, o.cached), (ProviderKind::VirusTotal, Some(f[2]), false));
    assert!(o.fetched_at.is_some());
    no_canary(&o);
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!((r.method.as_str(), r.path.clone()), ("GET", format!("/api/v3/files/{}", f[2].hex())));
    assert_eq!(r.header("x-apikey"), Some(CANARY));
    assert_eq!(r.header("user-agent"), Some(concat!("filerep/", env!("CARGO_PKG_VERSION"))));
    assert!(r.body.is_empty());
    assert_eq!(r.raw().matches(CANARY).count(), 1, "the key is in that header only");
    assert!(r.header("auth-key").is_none());
}

#[test]
fn virustotal_not_found_is_an_answer() {
    let server = Server::script(vec![Reply::sample(404, "virustotal/error_404_NotFoundError_docs_example.json")]);
    let p = providers(ProviderKind::VirusTotal, &server, fast());
    let o = one(&p, None, &file(1)[..2]);
    let e = o.result.unwrap();
    assert!(!e.found && e.summary == "VirusTotal: not found (never submitted)");
    assert_eq!(o.digest, Some(file(1)[1]), "SHA-1 when there is no SHA-256");
}

#[test]
fn malwarebazaar_posts_the_hash_as_a_form() {
    let server = Server::script(vec![
        Reply::new(200, mb_found_body()),
        Reply::new(200, "{\"query_status\": \"hash_not_found\"}"),
    ]);
    let p = providers(ProviderKind::MalwareBazaar, &server, fast());
    let f = file(3);
    let o = one(&p, None, &f);
    assert_eq!(o.result.unwrap().summary, "MalwareBazaar: listed as Vidar (first seen 2026-07-15)");
    let o = one(&p, None, &f[..1]);
    assert_eq!(o.result.unwrap().summary, "MalwareBazaar: not listed");
    let seen = server.requests();
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("POST", "/api/v1/"));
    assert_eq!(seen[0].header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(seen[0].body, format!("query=get_info&hash={}", f[2].hex()).into_bytes());
    assert_eq!(seen[1].body, format!("query=get_info&hash={}", f[0].hex()).into_bytes());
    assert_eq!(seen[0].header("auth-key"), Some(CANARY));
    assert!(seen[0].header("x-apikey").is_none());
}

#[test]
fn hashlookup_asks_by_sha1_without_a_key() {
    let server = Server::start(|r, _| {
        if r.path.contains("/sha1/") {
            Reply::sample(200, "circl_hashlookup/lookup_sha1_200_nsrl_legacy_format.json")
        } else {
            Reply::sample(404, "circl_hashlookup/error_404_not_found_sha256.json")
        }
    });
    let p = providers(ProviderKind::Hashlookup, &server, fast());
    let f = file(0xab);
    let o = one(&p, None, &f);
    assert_eq!(o.result.unwrap().summary, "hashlookup: known file (BlackArch Linux)");
    let o = one(&p, None, &f[2..]);
    assert!(!o.result.unwrap().found, "404: not known, no error");
    let seen = server.requests();
    assert_eq!(seen[0].path, format!("/lookup/sha1/{}", f[1].hex().to_ascii_uppercase()));
    assert_eq!(seen[1].path, format!("/lookup/sha256/{}", f[2].hex().to_ascii_uppercase()));
    assert!(seen.iter().all(|r| r.header("x-apikey").is_none() && r.header("auth-key").is_none()));
}

// ---------------------------------------------------------------------------------------------------------
// Backoff.

#[test]
fn a_429_with_retry_after_is_waited_for() {
    let server = Server::script(vec![
        Reply::new(429, "{\"error\": {\"code\": \"QuotaExceededError\"}}").header("Retry-After", "1"),
        Reply::sample(200, "virustotal/GET_files_id_200_75186675.json"),
    ]);
    let p = providers(ProviderKind::VirusTotal, &server, fast());
    let t = Instant::now();
    let o = one(&p, None, &file(1));
    assert!(o.result.unwrap().found);
    assert!(t.elapsed() >= Duration::from_secs(1), "waited {:?}", t.elapsed());
    assert_eq!(server.count(), 2);
}

#[test]
fn a_retry_after_longer_than_the_wait_allowed_is_not_waited_for() {
    let server = Server::script(vec![Reply::new(429, "").header("Retry-After", "3600")]);
    let p = providers(ProviderKind::VirusTotal, &server, fast());
    let t = Instant::now();
    let o = one(&p, None, &file(1));
    assert_eq!(err(&o), ProviderError::RateLimited { provider: "virustotal", retry_after: Some(3600) });
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(server.count(), 1);
}

#[test]
fn server_errors_are_retried_then_reported() {
    let server = Server::script(vec![
        Reply::new(500, "<html>oops</html>"),
        Reply::sample(200, "virustotal/GET_files_id_200_75186675.json"),
    ]);
    let p = providers(ProviderKind::VirusTotal, &server, fast());
    assert!(one(&p, None, &file(1)).result.unwrap().found);
    assert_eq!(server.count(), 2);

    let server = Server::script(vec![Reply::new(503, "")]);
    let p = providers(ProviderKind::MalwareBazaar, &server, fast());
    let o = one(&p, None, &file(1));
    assert_eq!(err(&o), ProviderError::Status { provider: "malwarebazaar", status: 503 });
    assert_eq!(server.count(), 4, "the request and 3 retries");
    // A 429 without Retry-After is retried with backoff too.
    let server = Server::script(vec![Reply::new(429, "")]);
    let p = providers(ProviderKind::Hashlookup, &server, ClientOptions { retries: 1, ..fast() });
    assert!(matches!(err(&one(&p, None, &file(1))), ProviderError::RateLimited { retry_after: None, .. }));
    assert_eq!(server.count(), 2);
}

#[test]
fn a_refused_connection_is_a_network_error() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut s = ProviderSettings::new(ProviderKind::VirusTotal);
    s.base_url = format!("http://127.0.0.1:{port}");
    s.key = Some(ApiKey::new(CANARY));
    let p = Providers::new(vec![s], fast()).unwrap();
    let t = Instant::now();
    let o = one(&p, None, &file(1));
    let e = err(&o);
    assert_eq!(
        e.to_string(),
        format!("virustotal: network error (cannot connect to 127.0.0.1:{port}: connection refused)")
    );
    assert!(t.elapsed() < Duration::from_secs(2));
    no_canary(&o);
}

// ---------------------------------------------------------------------------------------------------------
// Hostile or broken answers.

#[test]
fn truncated_json_and_html_pages_are_malformed() {
    let full = sample("virustotal/GET_files_id_200_75186675.json");
    let server = Server::script(vec![
        Reply::new(200, full[..5000].to_vec()),
        Reply::new(200, "<!DOCTYPE html><html><body>Cloudflare: checking your browser</body></html>")
            .header("Content-Type", "text/html"),
    ]);
    let p = providers(ProviderKind::VirusTotal, &server, fast());
    let e = err(&one(&p, None, &file(1)));
    assert!(matches!(e, ProviderError::Malformed { .. }) && e.to_string().contains("EOF"), "{e}");
    let e = err(&one(&p, None, &file(2)));
    assert!(e.to_string().contains("an HTML page, not JSON"), "{e}");
    assert_eq!(server.count(), 2, "not retried");
}

#[test]
fn a_slow_drip_ends_at_the_timeout() {
    let server = Server::script(vec![Reply::new(200, "").body(Body::Drip)]);
    let p =
        providers(ProviderKind::VirusTotal, &server, ClientOptions { timeout: Duration::from_millis(800), ..fast() });
    let t = Instant::now();
    let e = err(&one(&p, None, &file(1)));
    assert_eq!(e, ProviderError::Timeout { provider: "virustotal", millis: 800 });
    assert_eq!(e.to_string(), "virustotal: no answer within 0.8 s");
    assert!(t.elapsed() < Duration::from_millis(1800), "{:?}", t.elapsed());
    assert_eq!(server.count(), 1, "a timeout is not retried");
}

#[test]
fn an_endless_body_ends_at_the_size_cap() {
    let server = Server::script(vec![Reply::new(200, "").body(Body::Endless)]);
    let p = providers(ProviderKind::Hashlookup, &server, ClientOptions { timeout: Duration::from_secs(10), ..fast() });
    let t = Instant::now();
    let e = err(&one(&p, None, &file(1)));
    assert_eq!(e.to_string(), "hashlookup: unexpected answer (larger than 4 MiB)");
    assert!(t.elapsed() < Duration::from_secs(5));
    // A body announced too large is not read at all.
    let server = Server::script(vec![Reply::new(200, "").header("Content-Length", "999999999").body(Body::Drip)]);
    let p = providers(ProviderKind::Hashlookup, &server, fast());
    let t = Instant::now();
    assert!(err(&one(&p, None, &file(1))).to_string().contains("larger than 4 MiB"));
    assert!(t.elapsed() < Duration::from_millis(500));
}

#[test]
fn a_redirect_is_refused_and_its_target_gets_nothing() {
    let elsewhere = Server::script(vec![Reply::sample(200, "virustotal/GET_files_id_200_75186675.json")]);
    let target = format!("{}/api/v3/files/x", elsewhere.url());
    let server = Server::script(vec![Reply::new(302, "").header("Location", target)]);
    for kind in [ProviderKind::VirusTotal, ProviderKind::MalwareBazaar] {
        let p = providers(kind, &server, fast());
        let o = one(&p, None, &file(1));
        let e = err(&o);
        assert_eq!(
            e.to_string(),
            format!("{kind}: redirect to {} refused (a key is never sent to another address)", elsewhere.addr)
        );
        no_canary(&o);
    }
    // A relative redirect names the server's own address.
    let server2 = Server::script(vec![Reply::new(301, "").header("Location", "/elsewhere")]);
    let e = err(&one(&providers(ProviderKind::Hashlookup, &server2, fast()), None, &file(1)));
    assert!(e.to_string().contains(&format!("redirect to {} refused", server2.addr)), "{e}");
    thread::sleep(Duration::from_millis(100));
    assert_eq!(server.count(), 2, "no retry");
    assert_eq!(elsewhere.connections.load(Ordering::SeqCst), 0, "the redirect target was never contacted");
}

#[test]
fn a_server_echoing_the_key_does_not_get_it_into_errors() {
    let echo = format!("{{\"error\": {{\"code\": \"WrongCredentialsError\", \"message\": \"Wrong key {CANARY}\"}}}}");
    let server = Server::script(vec![Reply::new(401, echo)]);
    let o = one(&providers(ProviderKind::VirusTotal, &server, fast()), None, &file(1));
    assert!(matches!(err(&o), ProviderError::Auth { .. }));
    assert!(err(&o).to_string().contains("Wrong key <redacted>"), "{}", err(&o));
    no_canary(&o);
    // Cut short by the excerpt: the start of the key is scrubbed too.
    let long = format!("{{\"query_status\": \"{}{}\"}}", "x".repeat(110), CANARY);
    let server = Server::script(vec![Reply::new(200, long)]);
    let o = one(&providers(ProviderKind::MalwareBazaar, &server, fast()), None, &file(1));
    assert!(matches!(err(&o), ProviderError::Malformed { .. }));
    no_canary(&o);
}

// ---------------------------------------------------------------------------------------------------------
// Budget and cache.

#[test]
fn the_budget_refuses_a_request_it_cannot_wait_for() {
    let server = Server::script(vec![Reply::sample(404, "virustotal/error_404_NotFoundError_docs_example.json")]);
    let (_dir, store) = temp_store();
    let mut s = settings(ProviderKind::VirusTotal, &server);
    s.requests_per_minute = Some(2);
    let opts = ClientOptions { max_wait: Duration::from_millis(100), ..fast() };
    for store in [Some(&store), None] {
        let before = server.count();
        let p = Providers::new(vec![s.clone()], opts.clone()).unwrap();
        assert!(one(&p, store, &file(1)).result.is_ok());
        assert!(one(&p, store, &file(2)).result.is_ok());
        let o = one(&p, store, &file(3));
        let e = err(&o);
        assert!(matches!(e, ProviderError::Budget { limit: 2, wait_secs: 59 | 60, .. }), "{e:?}");
        assert!(e.to_string().starts_with("virustotal: request budget of 2/min spent; next request possible in "));
        assert_eq!(server.count(), before + 2, "the third request was not sent");
    }
    // The store's budget is shared: another client on the same store finds it spent.
    let p = Providers::new(vec![s], opts).unwrap();
    assert!(matches!(err(&one(&p, Some(&store), &file(4))), ProviderError::Budget { .. }));
}

#[test]
fn the_budget_waits_when_it_can() {
    let server = Server::script(vec![Reply::sample(404, "virustotal/error_404_NotFoundError_docs_example.json")]);
    let mut s = settings(ProviderKind::VirusTotal, &server);
    s.requests_per_minute = Some(1);
    let (_dir, store) = temp_store();
    let opts = ClientOptions { budget_window: Duration::from_millis(400), max_wait: Duration::from_secs(2), ..fast() };
    let p = Providers::new(vec![s], opts).unwrap();
    let t = Instant::now();
    assert!(one(&p, Some(&store), &file(1)).result.is_ok());
    assert!(one(&p, Some(&store), &file(2)).result.is_ok());
    assert!(t.elapsed() >= Duration::from_millis(350), "{:?}", t.elapsed());
    assert_eq!(server.count(), 2);
}

#[test]
fn answers_are_cached_errors_are_not() {
    let server = Server::script(vec![
        Reply::sample(200, "virustotal/GET_files_id_200_75186675.json"),
        Reply::sample(404, "virustotal/error_404_NotFoundError_docs_example.json"),
        Reply::new(500, ""),
    ]);
    let (_dir, store) = temp_store();
    let p = providers(ProviderKind::VirusTotal, &server, ClientOptions { retries: 0, ..fast() });
    let first = one(&p, Some(&store), &file(1));
    assert!(!first.cached && first.result.as_ref().unwrap().found);
    let again = one(&p, Some(&store), &file(1));
    assert!(again.cached, "served from the cache");
    assert_eq!((again.result, again.digest), (first.result, first.digest));
    assert_eq!(server.count(), 1, "no request for a cached answer");
    // Not found is an answer, cached too.
    assert!(!one(&p, Some(&store), &file(2)).result.unwrap().found);
    let o = one(&p, Some(&store), &file(2));
    assert!(o.cached && !o.result.unwrap().found);
    assert_eq!(server.count(), 2);
    // Errors are not cached.
    assert!(err(&one(&p, Some(&store), &file(3))).to_string().contains("500"));
    assert!(err(&one(&p, Some(&store), &file(3))).to_string().contains("500"));
    assert_eq!(server.count(), 4);
    // Another client on the store (another run) makes no request either, and builds no HTTP client.
    let p2 = providers(ProviderKind::VirusTotal, &server, fast());
    assert!(one(&p2, Some(&store), &file(1)).cached && !p2.client_built());
    // The cache is per provider.
    let hl = Server::script(vec![Reply::sample(404, "circl_hashlookup/error_404_not_found_sha256.json")]);
    let o = one(&providers(ProviderKind::Hashlookup, &hl, fast()), Some(&store), &file(1));
    assert!(!o.cached && hl.count() == 1);
}

#[test]
fn an_expired_answer_is_asked_again() {
    let server = Server::script(vec![Reply::sample(404, "virustotal/error_404_NotFoundError_docs_example.json")]);
    let (_dir, store) = temp_store();
    let p = providers(ProviderKind::VirusTotal, &server, ClientOptions { cache_ttl: Duration::ZERO, ..fast() });
    assert!(!one(&p, Some(&store), &file(1)).cached);
    // The store keeps whole seconds: once the second is over, a zero TTL has expired.
    thread::sleep(Duration::from_millis(1100));
    assert!(!one(&p, Some(&store), &file(1)).cached);
    assert_eq!(server.count(), 2);
}

// ---------------------------------------------------------------------------------------------------------
// Many files.

#[test]
fn hashlookup_asks_many_files_in_bulk() {
    // The real bulk answers list three SHA-1 and three MD5 records.
    let sha1s = ["00000903319A8CE18A03DFA22C07C6CA43602061", "FFFFFDAC1B1B4C513896C805C2C698D9688BE69F"];
    let known_sha1 = ["FFFFFDAC1B1B4C513896C805C2C698D9688BE69F", "FFFFFF4DB8282D002893A9BAF00E9E9D4BA45E65"];
    let md5s = ["6E2F8616A01725DCB37BED0A2495AEB2", "8ED4B4ED952526D89899E723F3488DE4"];
    let server = Server::start(|r, _| match r.path.as_str() {
        "/bulk/sha1" => Reply::sample(200, "circl_hashlookup/bulk_sha1_200.json"),
        "/bulk/md5" => Reply::sample(200, "circl_hashlookup/bulk_md5_200.json"),
        _ => Reply::sample(404, "circl_hashlookup/error_404_not_found_sha256.json"),
    });
    let files: Vec<Vec<Digest>> = vec![
        vec![md5(&"11".repeat(16)), sha1(known_sha1[0])],
        vec![sha1(sha1s[0])], // not in the SHA-1 answer
        vec![md5(md5s[0])],
        vec![sha1(known_sha1[1]), sha256(&"22".repeat(32))],
        vec![md5(md5s[1])],
        vec![sha256(&"33".repeat(32))], // SHA-256 only: a single lookup
        vec![sha1(known_sha1[0])],      // a duplicate: asked once
        vec![],
    ];
    let (_dir, store) = temp_store();
    let p = providers(ProviderKind::Hashlookup, &server, fast());
    let out = p.lookup_many(Some(&store), &files);
    assert_eq!(out.len(), files.len());
    let found: Vec<Option<bool>> = out.iter().map(|o| o[0].result.as_ref().ok().map(|e| e.found)).collect();
    assert_eq!(found, [Some(true), Some(false), Some(true), Some(true), Some(true), Some(false), Some(true), None]);
    assert_eq!(out[0][0].result.as_ref().unwrap().names, [".rela.dyn"]);
    assert_eq!(out[0][0].digest, Some(files[0][1]));
    assert_eq!(
        out[4][0].result.as_ref().unwrap().names[0],
        "wow64_microsoft-windows-i..timezones.resources_31bf3856ad364e35_10.0.16299.579_de-de_f24979c73226184d.manifest"
    );
    assert_eq!(err(&out[7][0]), ProviderError::NoDigest { provider: "hashlookup" });

    let seen = server.requests();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let bulk_sha1 = seen.iter().find(|r| r.path == "/bulk/sha1").unwrap();
    assert_eq!(bulk_sha1.method, "POST");
    assert_eq!(bulk_sha1.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&bulk_sha1.body).unwrap();
    assert_eq!(body, serde_json::json!({"hashes": [known_sha1[0], sha1s[0], known_sha1[1]]}));
    let bulk_md5 = seen.iter().find(|r| r.path == "/bulk/md5").unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&bulk_md5.body).unwrap(),
        serde_json::json!({"hashes": md5s})
    );
    assert!(seen.iter().any(|r| r.path == format!("/lookup/sha256/{}", "33".repeat(32))));

    // A second scan is answered by the cache.
    let again = p.lookup_many(Some(&store), &files);
    assert_eq!(server.count(), 3);
    assert!(again.iter().take(7).all(|o| o[0].cached));
    let strip = |v: &Vec<Vec<ProviderOutcome>>| -> Vec<_> { v.iter().map(|o| o[0].result.clone()).collect() };
    assert_eq!(strip(&again), strip(&out));

    // Chunks.
    let server = Server::start(|r, _| match r.path.as_str() {
        "/bulk/sha1" => Reply::new(200, "[]"),
        _ => Reply::sample(404, "circl_hashlookup/error_404_not_found_sha256.json"),
    });
    let p = providers(ProviderKind::Hashlookup, &server, ClientOptions { bulk_chunk: 2, ..fast() });
    let files: Vec<Vec<Digest>> = (1..=5).map(|n| vec![file(n)[1]]).collect();
    assert!(p.lookup_many(None, &files).iter().all(|o| o[0].result.as_ref().is_ok_and(|e| !e.found)));
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths.iter().filter(|p| *p == "/bulk/sha1").count(), 2);
    assert_eq!(paths.len(), 3, "two chunks of two and a single lookup: {paths:?}");
}

#[test]
fn a_failed_bulk_request_fails_its_files_only() {
    let server = Server::script(vec![Reply::new(502, "<html>Bad Gateway</html>")]);
    let p = providers(ProviderKind::Hashlookup, &server, ClientOptions { retries: 0, ..fast() });
    let out = p.lookup_many(None, &[vec![file(1)[1]], vec![file(2)[1]]]);
    assert!(out.iter().all(|o| o[0].result == Err(ProviderError::Status { provider: "hashlookup", status: 502 })));
    assert_eq!(server.count(), 1);
}

#[test]
fn many_files_one_request_each_and_no_more_after_an_auth_error() {
    let server = Server::script(vec![Reply::sample(200, "virustotal/GET_files_id_200_75186675.json")]);
    let mb = Server::script(vec![Reply::new(200, "{\"query_status\": \"illegal_auth_key\"}")]);
    let p = Providers::new(
        vec![settings(ProviderKind::VirusTotal, &server), settings(ProviderKind::MalwareBazaar, &mb)],
        fast(),
    )
    .unwrap();
    let files = vec![file(1), file(2), file(1), file(3)];
    let out = p.lookup_many(None, &files);
    assert_eq!(out.len(), 4);
    assert!(out.iter().all(|o| o.len() == 2 && o[0].provider == ProviderKind::VirusTotal));
    assert!(out.iter().all(|o| o[0].result.as_ref().is_ok_and(|e| e.found)));
    assert_eq!(server.count(), 3, "the duplicate file is asked once");
    assert!(out.iter().all(|o| matches!(o[1].result, Err(ProviderError::Auth { .. }))));
    assert_eq!(mb.count(), 1, "a refused key is not tried again in the batch");
    out.iter().flatten().for_each(no_canary);
    // lookup() gives the same outcomes, one per provider.
    let single = p.lookup(None, &file(5));
    assert_eq!(
        single.iter().map(|o| o.provider).collect::<Vec<_>>(),
        [ProviderKind::VirusTotal, ProviderKind::MalwareBazaar]
    );
}
