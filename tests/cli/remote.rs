//! The remote-store client against a real `filerep serve` on 127.0.0.1: check, lookup and scan with
//! `--remote`, `--remote-only`, `--require-remote` and `--submit`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use sha2::{Digest as _, Sha256};

use crate::fixtures::Pe;
use crate::support::filerep;

const TOKEN: &str = "remote-test-token-7c1f";

/// A running `filerep serve`, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(store: &Path) -> Server {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("filerep"))
        .arg("--db")
        .arg(store)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_clear()
        .env("NO_COLOR", "1")
        .env("FILEREP_SERVE_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("filerep serve starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut url = None;
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(rest) = line.split("listening on ").nth(1) {
            url = rest.split_whitespace().next().map(str::to_string);
            break;
        }
    }
    // Keep reading stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    let server = Server { child, url: url.unwrap_or_default() };
    assert!(server.url.starts_with("http://127.0.0.1:"), "no listening line from filerep serve");
    server
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A directory with three PE files, a server store that calls one of them malicious, and an empty local store.
fn setup() -> (tempfile::TempDir, Server, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("tree")).unwrap();
    let bad = Pe::sample(true).build().bytes;
    let mut other = Pe::sample(false);
    other.timestamp = 1;
    std::fs::write(d.join("tree/bad.exe"), &bad).unwrap();
    std::fs::write(d.join("tree/other.exe"), other.build().bytes).unwrap();
    let mut third = Pe::sample(false);
    third.timestamp = 2;
    std::fs::write(d.join("tree/third.dll"), third.build().bytes).unwrap();
    let sha = sha256_hex(&bad);
    let store = d.join("server.sqlite");
    let out = filerep(d)
        .arg("--db")
        .arg(&store)
        .args(["db", "add", &sha, "--class", "malicious", "--source", "team-blocklist", "--name", "bad.exe"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let server = serve(&store);
    let url = server.url.clone();
    (dir, server, url, sha)
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

#[test]
fn check_lookup_and_scan_ask_the_remote_store() {
    let (dir, _server, url, sha) = setup();
    let d = dir.path();

    // check: the remote's record decides the verdict; the match says where it came from.
    let out = filerep(d).args(["check", "--json", "--remote", &url, "tree/bad.exe"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json(&out);
    let r = &doc["reports"][0];
    assert_eq!(r["verdict"]["level"], "malicious");
    let m = &r["reputation"]["matches"][0];
    assert_eq!(m["source"], "team-blocklist");
    assert_eq!(m["digest"], sha.as_str());
    assert_eq!(m["remote"], url.as_str());
    assert_eq!(r["reputation"]["remote"]["url"], url.as_str());
    assert!(r["reputation"]["remote"]["error"].is_null());
    assert_eq!(r["reputation"]["remote"]["sources"][0]["name"], "team-blocklist");

    // The card says it too.
    let out = filerep(d).args(["check", "--remote", &url, "tree/bad.exe"]).output().unwrap();
    let card = String::from_utf8_lossy(&out.stdout);
    assert!(card.contains("team-blocklist (remote)"), "{card}");
    assert!(card.contains(&format!("Remote          {url}")) || card.contains(&url), "{card}");

    // The environment variable works like the option.
    let out = filerep(d).env("FILEREP_REMOTE", &url).args(["check", "--json", "tree/bad.exe"]).output().unwrap();
    assert_eq!(json(&out)["reports"][0]["verdict"]["level"], "malicious");

    // Without the remote, the same file is not known (the local store is empty).
    let out = filerep(d).args(["check", "--json", "tree/bad.exe"]).output().unwrap();
    let doc = json(&out);
    assert_ne!(doc["reports"][0]["verdict"]["level"], "malicious");
    assert_eq!(doc["reports"][0]["reputation"]["matches"].as_array().map(Vec::len), Some(0));
    assert!(doc["reports"][0]["reputation"]["remote"].is_null());

    // lookup, one query and many.
    let out = filerep(d).args(["lookup", "--json", "--remote", &url, &sha, &"00".repeat(32)]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc = json(&out);
    assert_eq!(doc["lookups"][0]["verdict"]["level"], "malicious");
    assert_eq!(doc["lookups"][0]["reputation"]["matches"][0]["remote"], url.as_str());
    assert_eq!(doc["lookups"][1]["verdict"]["level"], "unknown");
    assert_eq!(doc["lookups"][1]["reputation"]["matches"].as_array().map(Vec::len), Some(0));

    // scan: every file asked, the malicious one found.
    let out = filerep(d).args(["scan", "--format", "json", "--remote", &url, "tree"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json(&out);
    let files = doc["files"].as_array().expect("files");
    assert_eq!(files.len(), 3);
    for f in files {
        let bad = f["relative_path"] == "bad.exe";
        assert_eq!(f["verdict"]["level"] == "malicious", bad, "{}", f["relative_path"]);
        assert_eq!(f["reputation"]["matches"].as_array().map(Vec::len), Some(usize::from(bad)));
        assert_eq!(f["reputation"]["remote"]["url"], url.as_str());
    }
}

#[test]
fn remote_only_ignores_the_local_store() {
    let (dir, _server, url, sha) = setup();
    let d = dir.path();
    // The local store says known-good; --remote-only never opens it.
    let out =
        filerep(d).args(["db", "add", &sha, "--class", "known-good", "--source", "local-allow"]).output().unwrap();
    assert!(out.status.success());
    let out = filerep(d).args(["check", "--json", "--remote", &url, "tree/bad.exe"]).output().unwrap();
    let sources: Vec<String> = json(&out)["reports"][0]["reputation"]["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["source"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(sources, ["team-blocklist", "local-allow"], "both stores without --remote-only");

    let out = filerep(d).args(["check", "--json", "--remote-only", "--remote", &url, "tree/bad.exe"]).output().unwrap();
    let doc = json(&out);
    let rep = &doc["reports"][0]["reputation"];
    assert_eq!(rep["store"], url.as_str());
    assert_eq!(rep["matches"].as_array().map(Vec::len), Some(1));
    assert_eq!(rep["matches"][0]["source"], "team-blocklist");

    // --remote-only without a remote is a usage error.
    let out = filerep(d).args(["check", "--remote-only", "tree/bad.exe"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--remote-only needs a remote store"));
}

#[test]
fn an_unreachable_remote_is_a_warning_unless_required() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.exe"), Pe::sample(true).build().bytes).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");

    let out = filerep(d).args(["check", "--json", "--remote", &url, "a.exe", "a.exe"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "not required: the local answer stands");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one warning for the run: {stderr}");
    assert!(
        stderr.starts_with("filerep: warning: remote http://127.0.0.1:") && stderr.contains("cannot connect"),
        "{stderr}"
    );
    let doc = json(&out);
    assert!(doc["reports"][0]["reputation"]["remote"]["error"].as_str().unwrap_or_default().contains("cannot connect"));

    for args in [
        &["check", "--require-remote", "--remote", &url, "a.exe"][..],
        &["check", "--remote-only", "--remote", &url, "a.exe"],
        &["lookup", "--require-remote", "--remote", &url, &"ab".repeat(32)],
        &["scan", "--require-remote", "--remote", &url, "."],
    ] {
        let out = filerep(d).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("filerep: error: remote http://127.0.0.1:"), "{args:?}: {stderr}");
    }

    // A URL that is no URL is a clear error before anything runs.
    let out = filerep(d).args(["check", "--remote", "ftp://x", "a.exe"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a usable URL"));
}

#[test]
fn scans_submit_reports_with_the_token() {
    let (dir, server, url, _sha) = setup();
    let d = dir.path();
    // Without the token: a clear error.
    let out = filerep(d).args(["scan", "--format", "json", "--submit", "--remote", &url, "tree"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FILEREP_REMOTE_TOKEN"));
    // A wrong token: the server's refusal, without the token in the message.
    let out = filerep(d)
        .env("FILEREP_REMOTE_TOKEN", "wrong-token-value")
        .args(["scan", "--format", "json", "--submit", "--remote", &url, "tree"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HTTP 401") && !stderr.contains("wrong-token-value"), "{stderr}");
    // The right token: the server keeps the three reports.
    let out = filerep(d)
        .env("FILEREP_REMOTE_TOKEN", TOKEN)
        .args(["scan", "--format", "json", "--submit", "--remote", &url, "tree"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let info = reqwest::blocking::get(format!("{}/v1/info", server.url)).unwrap().text().unwrap();
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["reports"], 3, "{info}");
}
