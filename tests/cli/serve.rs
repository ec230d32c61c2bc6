//! `filerep serve` through the real binary on 127.0.0.1: every endpoint against `filerep lookup --json`, the
//! write token, imports while serving, the hardening limits (body size, slow headers, rate limit), graceful
//! shutdown on SIGTERM, escaping on the HTML page, and the page as headless Chromium renders it.
//!
//! HTTP is spoken by a tiny hand-written HTTP/1.1 client (one request per connection), so what is tested is
//! the bytes on the wire. Every server runs under a guard that kills it when the test ends, even on failure.

// The browser test says why it is skipped.
#![allow(clippy::print_stderr)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fixtures;
use crate::support::filerep;

/// A LOLDrivers vulnerable driver in drivers.subset.json (iQVW64.SYS by Intel).
const IQVW_SHA256: &str = "4429f32db1cc70567919d7d47b844a91cf1329a6cd116f582305f3b7b60cd60b";
/// A hash no feed has.
const MISSING_SHA256: &str = "0000000000000000000000000000000000000000000000000000000000000001";
/// The EICAR test file's MD5.
const EICAR_MD5: &str = "44d88612fea8a8f36de82e1278abb02f";
const HOSTILE: &str = "<script>alert(1)</script>";
const TOKEN: &str = "test-token-5b1c9e";

fn feed(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/feeds").join(rel)
}

/// A running `filerep serve`, killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    /// Start `filerep --db DB serve --listen 127.0.0.1:0 ARGS...` in `dir` and wait for its listening line.
    pub(crate) fn start(dir: &Path, db: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("filerep"));
        cmd.current_dir(dir)
            .env_clear()
            .env("NO_COLOR", "1")
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .arg("--db")
            .arg(db)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("filerep serve starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), stderr: rx };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = server.stderr.recv_timeout(left).unwrap_or_else(|_| panic!("filerep serve did not start"));
            if let Some(rest) = line.strip_prefix("filerep serve: listening on http://") {
                let addr = rest.split(' ').next().unwrap_or_default();
                server.addr = addr.parse().unwrap_or_else(|_| panic!("a listening address in {line:?}"));
                assert!(line.contains(&format!("(store {}", db.display())), "{line}");
                return server;
            }
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub(crate) fn get(&self, path: &str) -> Resp {
        http(self.addr, "GET", path, &[], b"")
    }

    pub(crate) fn get_json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"), "GET {path}");
        r.json()
    }

    pub(crate) fn post_json(&self, path: &str, body: &Value, token: Option<&str>) -> Resp {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        http(self.addr, "POST", path, &headers, body.to_string().as_bytes())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("JSON body ({e}): {}", self.text()))
    }

    /// An error answer: JSON with one `error` line; returns the message.
    pub(crate) fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.header("content-type"), Some("application/json"), "{}", self.text());
        let v = self.json();
        let msg = v["error"].as_str().unwrap_or_else(|| panic!("an error message: {v}")).to_string();
        assert!(!msg.contains('\n') && !msg.contains("panicked") && !msg.contains("src/"), "{msg}");
        msg
    }
}

/// Send one request (`Connection: close`) and read the whole answer.
pub(crate) fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // The server may answer (413) before the whole body is sent and close: that is not an error here.
    let _ = s.write_all(body);
    read_response(&mut s)
}

fn read_response(s: &mut TcpStream) -> Resp {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Resp {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| {
        panic!("no complete response head in {:?}", String::from_utf8_lossy(raw));
    });
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Resp { status, headers, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
    out
}

/// `filerep --db DB ARGS`, which must exit 0; its stdout.
fn run_ok(dir: &Path, db: &Path, args: &[&str]) -> String {
    let out = filerep(dir).arg("--db").arg(db).args(args).output().expect("filerep runs");
    assert!(out.status.success(), "filerep {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lookup_json(dir: &Path, db: &Path, hash: &str) -> Value {
    let out =
        filerep(dir).arg("--db").arg(db).args(["lookup", "--json", "--fail-on", "malicious", hash]).output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).expect("lookup --json prints JSON");
    doc["lookups"][0].clone()
}

/// A store with the LOLDrivers sample imported.
fn loldrivers_store(dir: &Path) -> PathBuf {
    let db = dir.join("store.sqlite");
    let p = feed("loldrivers/drivers.subset.json");
    run_ok(dir, &db, &["db", "import", "--format", "loldrivers-json", p.to_str().unwrap()]);
    db
}

#[test]
fn serve_answers_as_lookup_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = loldrivers_store(d);
    let server = Server::start(d, &db, &[], &[]);

    let r = server.get("/healthz");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/plain")));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));

    // A hit and a miss: the same JSON as `filerep lookup --json`'s entry.
    let hit = server.get_json(&format!("/v1/files/{IQVW_SHA256}"));
    assert_eq!(hit, lookup_json(d, &db, IQVW_SHA256));
    assert_eq!(hit["verdict"]["level"], "vulnerable", "{hit:#}");
    assert_eq!(hit["reputation"]["matches"][0]["source"], "loldrivers");
    let upper = server.get_json(&format!("/v1/files/{}", IQVW_SHA256.to_uppercase()));
    assert_eq!(upper, hit, "hex is case-insensitive; the query is lower-cased");
    let miss = server.get_json(&format!("/v1/files/{MISSING_SHA256}"));
    assert_eq!(miss, lookup_json(d, &db, MISSING_SHA256));
    assert_eq!(miss["verdict"]["level"], "unknown");
    assert_eq!(miss["reputation"]["matches"], json!([]));
    // /files/ without a browser's Accept is the same JSON.
    assert_eq!(server.get_json(&format!("/files/{IQVW_SHA256}")), hit);

    // A batch: one result per hash, in request order.
    let r = server.post_json("/v1/lookup", &json!({"hashes": [MISSING_SHA256, IQVW_SHA256]}), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let batch = r.json();
    assert_eq!(batch["schema_version"], 1);
    assert_eq!(batch["results"], json!([miss, hit]));
    let r = server.post_json("/v1/lookup", &json!({"hashes": []}), None);
    assert_eq!(r.json(), json!({"schema_version": 1, "results": []}));
    let many: Vec<&str> = vec![MISSING_SHA256; 1001];
    let msg = server.post_json("/v1/lookup", &json!({ "hashes": many }), None).error(413);
    assert!(msg.contains("1001") && msg.contains("1000"), "{msg}");
    let msg = server.post_json("/v1/lookup", &json!({"hashes": [IQVW_SHA256, "0x1234"]}), None).error(400);
    assert!(msg.contains("hashes[1]") && msg.contains("accepted: ASCII hex"), "{msg}");
    let msg = server.post_json("/v1/lookup", &json!({"hashes": [], "more": true}), None).error(400);
    assert!(msg.contains("unknown field"), "{msg}");
    let msg =
        http(server.addr, "POST", "/v1/lookup", &[("Content-Type", "application/json")], b"{\"hashes\": [").error(400);
    assert!(msg.contains("invalid JSON"), "{msg}");
    http(server.addr, "POST", "/v1/lookup", &[("Content-Type", "text/plain")], b"{\"hashes\": []}").error(415);
    http(server.addr, "POST", "/v1/lookup", &[("Content-Type", "application/json")], b"\xff\xfe\x00").error(400);

    // Strict hashes: 400 with the accepted format, for each trick.
    for bad in
        ["0x4429f32d", "%2B4429f32db1cc70567919d7d47b844a91cf1329a6cd116f582305f3b7b60cd60", "md4:00", "%E2%91%A0"]
    {
        let msg = server.get(&format!("/v1/files/{bad}")).error(400);
        assert!(msg.contains("accepted: ASCII hex"), "{bad}: {msg}");
    }

    // A path that is not UTF-8 once decoded is a JSON 400 too.
    assert!(server.get("/v1/files/%ff%fe").error(400).contains("invalid URL"));

    // The body limit: declared too large (413 at once), and a body that is larger than it says it is not.
    let big = vec![b' '; 2 << 20];
    http(server.addr, "POST", "/v1/lookup", &[("Content-Type", "application/json")], &big).error(413);

    // Info: feeds as `db info --json` lists them, and the limits.
    let info = server.get_json("/v1/info");
    let db_info: Value = serde_json::from_str(&run_ok(d, &db, &["db", "info", "--json"])).unwrap();
    assert_eq!(info["feeds"], db_info["feeds"]);
    assert_eq!(info["store_schema_version"], db_info["schema_version"]);
    assert_eq!(info["filerep_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["reports"], 0);
    assert_eq!(info["limits"]["max_lookup_hashes"], 1000);
    assert_eq!(info["limits"]["max_body_bytes"], 1 << 20);

    // Routes and methods.
    assert!(server.get("/v2/nothing").error(404).contains("no such route"));
    http(server.addr, "DELETE", "/v1/info", &[], b"").error(405);
    http(server.addr, "GET", "/v1/lookup", &[], b"").error(405);

    // Writes without a configured token are refused outright.
    let body = json!({"source": "mine", "records": [{"class": "malicious", "hash": EICAR_MD5}]});
    let msg = server.post_json("/v1/records", &body, Some("anything")).error(403);
    assert!(msg.contains("writes are disabled") && msg.contains("FILEREP_SERVE_TOKEN"), "{msg}");
}

#[test]
fn writes_need_the_token_and_show_up_in_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = loldrivers_store(d);
    let token_file = d.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let server = Server::start(d, &db, &["--token-file", token_file.to_str().unwrap()], &[]);

    let body = json!({"source": "mine", "records": [
        {"class": "malicious", "hash": EICAR_MD5, "meta": {"file_name": HOSTILE, "description": "\u{1b}[31mred"}},
        {"class": "known-good", "hash": format!("sha256:{MISSING_SHA256}")},
    ]});
    let r = server.post_json("/v1/records", &body, None);
    r.error(401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    server.post_json("/v1/records", &body, Some("wrong-token")).error(401);
    server.post_json("/v1/records", &body, Some(&format!("{TOKEN}x"))).error(401);
    let r = server.post_json("/v1/records", &body, Some(TOKEN));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"added": 2, "unchanged": 0}));
    let r = server.post_json("/v1/records", &body, Some(TOKEN));
    assert_eq!(r.json(), json!({"added": 0, "unchanged": 2}));
    let msg = server
        .post_json(
            "/v1/records",
            &json!({"source": "mine", "records": [{"class": "bad", "hash": EICAR_MD5}]}),
            Some(TOKEN),
        )
        .error(400);
    assert!(msg.contains("records[0].class"), "{msg}");

    // Visible to lookups, through the server and the CLI alike.
    let eicar = server.get_json(&format!("/v1/files/{EICAR_MD5}"));
    assert_eq!(eicar["verdict"]["level"], "malicious", "{eicar:#}");
    assert_eq!(eicar["reputation"]["matches"][0]["meta"]["file_name"], HOSTILE);
    assert_eq!(eicar, lookup_json(d, &db, EICAR_MD5));
    assert_eq!(server.get_json(&format!("/v1/files/{MISSING_SHA256}"))["verdict"]["level"], "good");

    // The HTML page escapes what the store says.
    let page = http(server.addr, "GET", &format!("/files/{EICAR_MD5}"), &[("Accept", "text/html,*/*;q=0.8")], b"");
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'none'") && csp.contains("style-src 'unsafe-inline'"), "{csp}");
    let html = page.text();
    assert!(!html.contains(HOSTILE) && !html.contains('\u{1b}'), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("Should I block it?") && html.contains("Malicious"));
    // A browser asking for a bad hash gets an HTML error page.
    let bad = http(server.addr, "GET", "/files/%3Cscript%3E", &[("Accept", "text/html")], b"");
    assert_eq!(bad.status, 400);
    assert!(bad.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    assert!(!bad.text().contains("<script>") && bad.text().contains("&lt;script&gt;"), "{}", bad.text());

    // An import over HTTP, then visible.
    let list = "# my list\n1111111111111111111111111111111111111111111111111111111111111111\n2222222222222222222222222222222222222222\n";
    let auth = format!("Bearer {TOKEN}");
    let r = http(
        server.addr,
        "POST",
        "/v1/feeds/hashlist?source=my-list&class=malicious&version=2026.01",
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        list.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let s = r.json();
    assert_eq!(
        (s["source"].as_str(), s["records"].as_u64(), s["version"].as_str()),
        (Some("my-list"), Some(2), Some("2026.01"))
    );
    let one = server.get_json("/v1/files/1111111111111111111111111111111111111111111111111111111111111111");
    assert_eq!(one["verdict"]["level"], "malicious", "{one:#}");
    assert_eq!(one["reputation"]["matches"][0]["source_version"], "2026.01");
    let r = http(server.addr, "POST", "/v1/feeds/hashlist?source=x", &[("Authorization", &auth)], list.as_bytes());
    assert!(r.error(400).contains("class is required"));
    http(server.addr, "POST", "/v1/feeds/nope", &[("Authorization", &auth)], b"x").error(404);
    http(server.addr, "POST", "/v1/feeds/hashlist?source=x&class=malicious", &[], b"x").error(401);
    let r = http(server.addr, "POST", "/v1/feeds/loldrivers-json", &[("Authorization", &auth)], b"{ this is not json");
    assert!(r.status == 400, "{}", r.text());

    // A feed imported by another process while the server runs becomes visible.
    let mb = "e149f36cb6c001aa340c388d7684c8a055f59152026e8e0d1d678264d7c084d7";
    assert_eq!(server.get_json(&format!("/v1/files/{mb}"))["verdict"]["level"], "unknown");
    let p = feed("malwarebazaar/recent_export_sample.csv");
    run_ok(d, &db, &["db", "import", "--format", "malwarebazaar-csv", p.to_str().unwrap()]);
    let after = server.get_json(&format!("/v1/files/{mb}"));
    assert_eq!(after["verdict"]["level"], "malicious", "{after:#}");
    assert_eq!(after, lookup_json(d, &db, mb));
    let info = server.get_json("/v1/info");
    let sources: Vec<&str> = info["feeds"].as_array().unwrap().iter().filter_map(|f| f["source"].as_str()).collect();
    assert_eq!(sources, ["loldrivers", "malwarebazaar", "mine", "my-list"]);

    // The uploads left nothing behind next to the store.
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".upload-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_world_readable_or_empty_token_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let token_file = d.join("token");
    std::fs::write(&token_file, "\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = filerep(d).args(["serve", "--listen", "127.0.0.1:0", "--token-file", "token"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("is empty"));
        std::fs::write(&token_file, "abc\n").unwrap();
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = filerep(d).args(["serve", "--listen", "127.0.0.1:0", "--token-file", "token"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("readable by every user") && !err.contains("abc"), "{err}");
    }
}

#[test]
fn slow_clients_and_floods_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("store.sqlite");
    // One request a second, bursts of 5: a slow machine cannot refill the bucket during the burst below.
    let server = Server::start(d, &db, &["--header-timeout", "1s", "--rate-limit", "1", "--rate-burst", "5"], &[]);

    // Half a request line, then nothing: the server closes the connection after the header timeout.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"GET /healthz HT").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = s.read_to_end(&mut buf);
    let waited = started.elapsed();
    assert!(read.is_ok() || read.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset), "{read:?}");
    assert!(waited >= Duration::from_millis(800) && waited < Duration::from_secs(5), "dropped after {waited:?}");
    // (hyper may answer 408 before closing; it must not answer 200)
    assert!(!String::from_utf8_lossy(&buf).contains(" 200 "), "{}", String::from_utf8_lossy(&buf));

    // The rate limit: 5 at once, then 429 with Retry-After.
    let statuses: Vec<Resp> = (0..8).map(|_| server.get("/healthz")).collect();
    let ok = statuses.iter().filter(|r| r.status == 200).count();
    let limited: Vec<&Resp> = statuses.iter().filter(|r| r.status == 429).collect();
    assert!((5..=6).contains(&ok), "{:?}", statuses.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(!limited.is_empty());
    for r in limited {
        let secs: u64 = r.header("retry-after").and_then(|v| v.parse().ok()).expect("Retry-After in seconds");
        assert_eq!(secs, 1);
        assert!(r.error(429).contains("rate limit"));
    }
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(server.get("/healthz").status, 200, "a token comes back every second");
}

/// Send a POST's headers (declaring `length` bytes of JSON) and `sent` of its body, and keep the connection.
fn partial_post(addr: SocketAddr, length: usize, sent: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
    .unwrap();
    s.write_all(sent).unwrap();
    s.flush().unwrap();
    s
}

#[test]
fn slow_bodies_big_chunked_bodies_and_too_many_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("store.sqlite");
    let server = Server::start(
        d,
        &db,
        &["--request-timeout", "1s", "--max-in-flight", "1", "--max-body-bytes", "1K", "--rate-limit", "0"],
        &[],
    );

    // A body that never comes: 408 after the request timeout, as JSON.
    let started = Instant::now();
    let mut slow = partial_post(server.addr, 100, b"{\"hashes\": [");
    // Meanwhile it holds the only in-flight slot: another request is a 503 with Retry-After.
    std::thread::sleep(Duration::from_millis(200));
    let busy = server.get("/healthz");
    assert!(busy.error(503).contains("too many requests in flight"));
    assert_eq!(busy.header("retry-after"), Some("1"));
    let r = read_response(&mut slow);
    let waited = started.elapsed();
    assert!(r.error(408).contains("timed out"), "{}", r.text());
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(server.get("/healthz").status, 200, "the slot is free again");

    // A chunked body (no Content-Length) that grows past the limit is cut off with a 413.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        .unwrap();
    let chunk = vec![b' '; 800];
    for _ in 0..2 {
        let _ = write!(s, "{:x}\r\n", chunk.len());
        let _ = s.write_all(&chunk);
        let _ = s.write_all(b"\r\n");
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let r = read_response(&mut s);
    assert!(r.error(413).contains("1024 bytes"), "{}", r.text());
}

#[cfg(unix)]
#[test]
fn sigterm_lets_the_request_in_flight_finish_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = loldrivers_store(d);
    let mut server = Server::start(d, &db, &[], &[]);

    // A request whose body is half sent when SIGTERM comes.
    let body = json!({"hashes": [IQVW_SHA256]}).to_string();
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(first).unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: sends SIGTERM to the child we started.
    assert_eq!(unsafe { libc::kill(server.pid(), libc::SIGTERM) }, 0);
    std::thread::sleep(Duration::from_millis(300));
    // No new connection is accepted once shutting down...
    let refused = TcpStream::connect_timeout(&server.addr, Duration::from_secs(2))
        .map(|mut c| {
            let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut b = Vec::new();
            c.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let _ = c.read_to_end(&mut b);
            b.is_empty()
        })
        .unwrap_or(true);
    assert!(refused, "a connection made after SIGTERM was served");
    // ...but the one in flight is answered in full.
    s.write_all(rest).unwrap();
    let r = read_response(&mut s);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["results"][0]["verdict"]["level"], "vulnerable");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = server.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "filerep serve did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}

/// `filerep check --json` of the generated PE32+ sample, as a document to POST to /v1/reports.
fn sample_report(d: &Path) -> (Value, String) {
    let exe = d.join("sample.exe");
    std::fs::write(&exe, fixtures::valid_pe32_plus().bytes).unwrap();
    let (out, doc) = crate::support::check_json(d, &exe);
    assert!(out.status.code().is_some_and(|c| c < 2), "{}", String::from_utf8_lossy(&out.stderr));
    let sha = doc["reports"][0]["hashes"]["sha256"].as_str().expect("a sha256").to_string();
    (doc, sha)
}

#[test]
fn reports_are_stored_and_shown_on_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = loldrivers_store(d);
    let server = Server::start(d, &db, &[], &[("FILEREP_SERVE_TOKEN", TOKEN)]);
    let (doc, sha) = sample_report(d);
    let r = server.post_json("/v1/reports", &doc, Some(TOKEN));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"stored": 1}));
    assert_eq!(server.get_json("/v1/info")["reports"], 1);
    let msg = server
        .post_json("/v1/reports", &json!({"schema_version": 1, "reports": [{"path": "x"}]}), Some(TOKEN))
        .error(400);
    assert!(msg.contains("reports[0]") && msg.contains("sha256"), "{msg}");
    server.post_json("/v1/reports", &json!({"schema_version": 2, "reports": []}), Some(TOKEN)).error(400);
    server.post_json("/v1/reports", &doc, None).error(401);

    let html = http(server.addr, "GET", &format!("/files/{sha}"), &[("Accept", "text/html")], b"").text();
    for want in ["Digital DNA", "Hashes", "Imports", "Reputation", "Additional versions", "Relationships", &sha] {
        assert!(html.contains(want), "{want} missing from the page");
    }
    assert!(!html.contains("id=\"no-report\""), "the stored report is used");
}

/// Headless Chromium, when installed (`FILEREP_REQUIRE_BROWSER=1` makes its absence a failure).
fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(p) = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
        {
            return Some(p);
        }
    }
    None
}

#[test]
fn headless_chromium_renders_the_card_page() {
    let Some(browser) = chromium() else {
        if std::env::var("FILEREP_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("chromium is not installed and FILEREP_REQUIRE_BROWSER=1");
        }
        eprintln!("skipped: chromium is not installed (set FILEREP_REQUIRE_BROWSER=1 to make this a failure)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = loldrivers_store(d);
    let server = Server::start(d, &db, &[], &[("FILEREP_SERVE_TOKEN", TOKEN)]);
    let (doc, sha) = sample_report(d);
    assert_eq!(server.post_json("/v1/reports", &doc, Some(TOKEN)).status, 200);
    let records = json!({"source": "analysts", "records": [
        {"class": "malicious", "hash": sha, "meta": {"file_name": HOSTILE, "family": "TestFamily"}}]});
    assert_eq!(server.post_json("/v1/records", &records, Some(TOKEN)).status, 200);

    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{}/files/{sha}", server.addr);
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(&url)
        .stdin(Stdio::null())
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    // The verdict first, from the record just added.
    let verdict_at = dom.find("id=\"verdict\"").expect("a verdict banner");
    assert!(dom[verdict_at..].contains("Yes. Malicious"), "{dom}");
    assert!(dom.contains("class=\"verdict lv-malicious\""));
    for want in
        ["Details", "Hashes", "Digital DNA", "Imports", "Reputation", "Additional versions", "Relationships", &sha]
    {
        assert!(dom.contains(want), "{want} missing from the rendered page");
    }
    // The hostile name is text in the DOM, never an element.
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{dom}");
    assert!(!dom.contains(HOSTILE));
    assert_eq!(dom.matches("<script").count(), 0, "no script element at all");
}
