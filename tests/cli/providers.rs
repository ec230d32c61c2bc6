//! The opt-in providers through the real binary, against local servers that replay the providers' real
//! answers (tests/data/feeds): evidence on the card and in JSON, what goes out (only the hash), the cache (a
//! second run makes no request), the request budget, and API keys that no output ever contains.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::fixtures::Pe;
use crate::support::filerep;

/// One request as a replay server received it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

type Responder = dyn Fn(&Request) -> Vec<u8> + Send + Sync;

/// A local HTTP/1.1 server that answers every request with `respond` and records it.
struct Replay {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Replay {
    fn start(respond: impl Fn(&Request) -> Vec<u8> + Send + Sync + 'static) -> Replay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (reqs, respond): (_, Arc<Responder>) = (requests.clone(), Arc::new(respond));
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (reqs, respond) = (reqs.clone(), respond.clone());
                std::thread::spawn(move || serve_connection(stream, &reqs, &*respond));
            }
        });
        Replay { url, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve_connection(mut s: TcpStream, reqs: &Mutex<Vec<Request>>, respond: &Responder) {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut buf = Vec::new();
    loop {
        // Read one request: the head, then Content-Length bytes.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 8192];
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let (method, path) = (first.next().unwrap_or("").to_string(), first.next().unwrap_or("").to_string());
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + 4 + len {
            let mut chunk = [0u8; 8192];
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[head_end + 4..head_end + 4 + len].to_vec();
        buf.drain(..head_end + 4 + len);
        let req = Request { method, path, headers, body };
        let answer = respond(&req);
        reqs.lock().unwrap().push(req);
        if s.write_all(&answer).is_err() {
            return;
        }
    }
}

fn http(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/json\r\n{headers}\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn sample(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/feeds").join(rel)).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Replays of the three providers: VirusTotal knows the file (64 engines), MalwareBazaar does not, hashlookup
/// does not.
fn providers_that_answer() -> (Replay, Replay, Replay) {
    let vt = Replay::start(|r| {
        if r.path.starts_with("/api/v3/files/") {
            http("200 OK", "", &sample("virustotal/GET_files_id_200_75186675.json"))
        } else {
            http("404 Not Found", "", &sample("virustotal/error_404_NotFoundError_docs_example.json"))
        }
    });
    let mb = Replay::start(|_| http("200 OK", "", b"{\"query_status\": \"hash_not_found\"}"));
    let hl = Replay::start(|_| http("404 Not Found", "", &sample("circl_hashlookup/error_404_not_found_sha256.json")));
    (vt, mb, hl)
}

fn with_providers<'a>(
    cmd: &'a mut assert_cmd::Command,
    vt: &Replay,
    mb: &Replay,
    hl: &Replay,
) -> &'a mut assert_cmd::Command {
    cmd.env("FILEREP_VIRUSTOTAL_URL", &vt.url)
        .env("FILEREP_MALWAREBAZAAR_URL", &mb.url)
        .env("FILEREP_HASHLOOKUP_URL", &hl.url)
        .env("FILEREP_VIRUSTOTAL_KEY", "vt-test-key")
        .env("FILEREP_MALWAREBAZAAR_KEY", "mb-test-key")
}

#[test]
fn provider_answers_are_evidence_and_only_the_hash_goes_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bytes = Pe::sample(true).build().bytes;
    std::fs::write(d.join("a.exe"), &bytes).unwrap();
    let sha256 = hex(&Sha256::digest(&bytes));
    let (vt, mb, hl) = providers_that_answer();

    let out = with_providers(&mut filerep(d), &vt, &mb, &hl)
        .args(["check", "--json", "--provider", "virustotal,malwarebazaar,hashlookup", "a.exe"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "VirusTotal's 64 engines make it malicious: {out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &doc["reports"][0];
    let answers = r["providers"].as_array().unwrap();
    let by = |name: &str| answers.iter().find(|a| a["provider"] == name).unwrap_or_else(|| panic!("{name}: {r}"));
    let v = by("virustotal");
    assert_eq!(v["query"], sha256.as_str());
    assert_eq!(v["cached"], false);
    assert_eq!(v["evidence"]["found"], true);
    assert_eq!(v["evidence"]["detections"], 64);
    assert_eq!(v["evidence"]["engines"], 70);
    assert_eq!(v["evidence"]["summary"], "VirusTotal: 64/70 engines, first seen 2014-09-11");
    assert_eq!(by("malwarebazaar")["evidence"]["summary"], "MalwareBazaar: not listed");
    assert_eq!(by("hashlookup")["evidence"]["found"], false);
    assert!(by("hashlookup")["error"].is_null());
    assert_eq!(r["verdict"]["level"], "malicious");
    let reason = r["verdict"]["reasons"].as_array().unwrap().iter().find(|x| x["id"] == "provider-malicious").unwrap();
    assert_eq!(reason["source"], "virustotal");
    assert_eq!(reason["message"], "64/70 engines, first seen 2014-09-11");

    // What went out: one request each, the hash and the key in its header, never the file.
    let vreq = vt.requests();
    assert_eq!(vreq.len(), 1, "{vreq:?}");
    assert_eq!(vreq[0].method, "GET");
    assert_eq!(vreq[0].path, format!("/api/v3/files/{sha256}"));
    assert_eq!(vreq[0].header("x-apikey"), Some("vt-test-key"));
    assert!(vreq[0].body.is_empty());
    let mreq = mb.requests();
    assert_eq!(mreq.len(), 1);
    assert_eq!((mreq[0].method.as_str(), mreq[0].path.as_str()), ("POST", "/api/v1/"));
    assert_eq!(mreq[0].header("auth-key"), Some("mb-test-key"));
    assert_eq!(String::from_utf8_lossy(&mreq[0].body), format!("query=get_info&hash={sha256}"));
    let hreq = hl.requests();
    assert_eq!(hreq.len(), 1);
    assert!(hreq[0].header("x-apikey").is_none() && hreq[0].header("auth-key").is_none());
    for req in vreq.iter().chain(&mreq).chain(&hreq) {
        assert!(req.body.len() < 200, "only a hash is sent: {} bytes", req.body.len());
        assert!(!req.body.windows(16).any(|w| bytes.windows(16).next() == Some(w)));
    }

    // The card shows each answer with its source.
    let out = with_providers(&mut filerep(d), &vt, &mb, &hl)
        .args(["check", "--provider", "virustotal,malwarebazaar,hashlookup", "a.exe"])
        .output()
        .unwrap();
    let card = String::from_utf8_lossy(&out.stdout);
    assert!(card.contains("Providers (online, only the hash was sent)"), "{card}");
    assert!(card.contains("VirusTotal") && card.contains("64/70 engines, first seen 2014-09-11 (cached)"), "{card}");
    assert!(card.contains("MalwareBazaar") && card.contains("not listed (cached)"), "{card}");

    // The second run came from the cache: still one request each.
    assert_eq!((vt.requests().len(), mb.requests().len(), hl.requests().len()), (1, 1, 1));

    // lookup asks them too, and a config file can name them instead of --provider.
    let cfg = d.join("config.toml");
    std::fs::write(&cfg, "[providers]\nenabled = [\"virustotal\"]\n").unwrap();
    let other = "ab".repeat(32);
    let out = with_providers(&mut filerep(d), &vt, &mb, &hl)
        .env("FILEREP_CONFIG", &cfg)
        .args(["lookup", "--json", &other])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["lookups"][0]["providers"][0]["provider"], "virustotal");
    assert_eq!(vt.requests().last().unwrap().path, format!("/api/v3/files/{other}"));
}

#[test]
fn the_virustotal_budget_holds_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let vt =
        Replay::start(|_| http("404 Not Found", "", &sample("virustotal/error_404_NotFoundError_docs_example.json")));
    // Never wait for the budget in a test: a spent budget is reported instead.
    let cfg = d.join("config.toml");
    std::fs::write(&cfg, "[providers]\nmax_wait_secs = 0\n").unwrap();
    let mut levels = Vec::new();
    for i in 0..6u8 {
        let hash = format!("{:02x}", i + 1).repeat(32);
        let out = filerep(d)
            .env("FILEREP_CONFIG", &cfg)
            .env("FILEREP_VIRUSTOTAL_URL", &vt.url)
            .env("FILEREP_VIRUSTOTAL_KEY", "k")
            .args(["lookup", "--json", "--provider", "virustotal", &hash])
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let a = &doc["lookups"][0]["providers"][0];
        levels.push(if a["error"].is_null() {
            "answered".to_string()
        } else {
            a["error"].as_str().unwrap().to_string()
        });
    }
    assert_eq!(vt.requests().len(), 4, "four requests a minute reach VirusTotal: {levels:?}");
    assert!(levels[..4].iter().all(|l| l == "answered"), "{levels:?}");
    for l in &levels[4..] {
        assert!(l.contains("request budget of 4/min spent"), "{l}");
    }
}

#[test]
fn usage_errors_name_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.exe"), Pe::sample(true).build().bytes).unwrap();
    let out = filerep(d)
        .env_remove("FILEREP_VIRUSTOTAL_KEY")
        .args(["check", "--provider", "virustotal", "a.exe"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("FILEREP_VIRUSTOTAL_KEY") && e.lines().count() == 1, "{e}");
    let out = filerep(d).args(["check", "--provider", "virustotl", "a.exe"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("virustotl"));
}

/// Every way a provider can fail, every output format, keys from the environment and from the config file:
/// the canary key appears in no output.
#[test]
fn keys_never_appear_in_any_output() {
    let canary = std::env::var("FILEREP_TEST_CANARY").unwrap_or_else(|_| "canary-key-local-5f3a9c".into());
    let (vt_key, mb_key) = (format!("vt-{canary}"), format!("mb-{canary}"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("tree")).unwrap();
    std::fs::write(d.join("tree/a.exe"), Pe::sample(true).build().bytes).unwrap();
    let mut b = Pe::sample(false);
    b.timestamp = 7;
    std::fs::write(d.join("tree/b.exe"), b.build().bytes).unwrap();
    let elsewhere = Replay::start(|_| http("200 OK", "", b"{}"));
    let target = elsewhere.url.clone();
    let canary_echo = canary.clone();
    // Answers that fail in every way, some echoing what they received (a key included) back.
    let scenarios: Vec<Box<Responder>> = vec![
        Box::new(move |r| {
            let echo = format!(
                "{{\"error\": {{\"code\": \"WrongCredentialsError\", \"message\": \"bad key {}\"}}}}",
                r.header("x-apikey").or(r.header("auth-key")).unwrap_or(&canary_echo)
            );
            http("401 Unauthorized", "", echo.as_bytes())
        }),
        Box::new(|_| http("429 Too Many Requests", "Retry-After: 3600\r\n", b"{}")),
        Box::new(|_| http("500 Internal Server Error", "", b"{}")),
        Box::new(|_| http("200 OK", "", b"<html><body>maintenance</body></html>")),
        Box::new(|_| http("200 OK", "", b"{\"data\": {\"attri")),
        Box::new(move |_| http("302 Found", &format!("Location: {target}/steal\r\n"), b"")),
    ];
    let cfg = d.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[providers]\nmax_wait_secs = 0\ncache_ttl_hours = 0\n[providers.virustotal]\nkey = \"{vt_key}\"\n\
             [providers.malwarebazaar]\nkey = \"{mb_key}\"\n"
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut outputs = 0;
    for (i, respond) in scenarios.into_iter().enumerate() {
        let respond: Arc<Responder> = Arc::from(respond);
        let server = {
            let respond = respond.clone();
            Replay::start(move |r| respond(r))
        };
        for from_config in [false, true] {
            for args in [
                &["check", "tree/a.exe"][..],
                &["check", "--json", "tree/a.exe"],
                &["check", "--format", "jsonl", "tree/a.exe"],
                &["lookup", &"cd".repeat(32)],
                &["lookup", "--json", &"cd".repeat(32)],
                &["scan", "--format", "sarif", "tree"],
                &["scan", "--format", "csv", "tree"],
                &["scan", "--format", "table", "tree"],
            ] {
                let mut cmd = filerep(d);
                cmd.env("FILEREP_CONFIG", &cfg)
                    .env("FILEREP_VIRUSTOTAL_URL", &server.url)
                    .env("FILEREP_MALWAREBAZAAR_URL", &server.url)
                    .env("FILEREP_HASHLOOKUP_URL", &server.url);
                if from_config {
                    cmd.env_remove("FILEREP_VIRUSTOTAL_KEY").env_remove("FILEREP_MALWAREBAZAAR_KEY");
                } else {
                    cmd.env("FILEREP_VIRUSTOTAL_KEY", &vt_key).env("FILEREP_MALWAREBAZAAR_KEY", &mb_key);
                }
                let out = cmd.args(["--provider", "virustotal,malwarebazaar,hashlookup"]).args(args).output().unwrap();
                for (what, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
                    let text = String::from_utf8_lossy(text);
                    assert!(!text.contains(&canary), "scenario {i}, {args:?}: the key is in {what}:\n{text}");
                }
                assert!(!out.stdout.is_empty(), "scenario {i}, {args:?}: no output at all");
                outputs += 1;
            }
        }
    }
    assert_eq!(outputs, 96);
    assert!(elsewhere.requests().is_empty(), "a redirect target received {:?}", elsewhere.requests());
}
