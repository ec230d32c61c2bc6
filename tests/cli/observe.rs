//! `filerep observe`: a known child process is found among the real processes of this machine, with its
//! digests, figures, owner and a redacted command line; a second run re-hashes nothing unchanged; both runs
//! are recorded in the store.

#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::{Child, Command};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::support::filerep;

/// Kills the child when the test ends, passed or failed.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn observe(dir: &Path) -> Value {
    observe_with(dir, None)
}

/// `observe` for 1 s, with `FILEREP_OBSERVE_BACKEND` set to `backend` if given.
fn observe_with(dir: &Path, backend: Option<&str>) -> Value {
    let mut cmd = filerep(dir);
    if let Some(b) = backend {
        cmd.env("FILEREP_OBSERVE_BACKEND", b);
    }
    let out =
        cmd.args(["observe", "--duration", "1s", "--interval", "200ms", "--json"]).output().expect("filerep runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "observe failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"))
}

/// What the child inherits from this test: `root` when it runs as root, else `elevated` when it holds
/// capabilities (only `/proc` tells them), else `user`.
fn expected_privilege(capabilities: bool) -> &'static str {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.split_whitespace().collect::<Vec<_>>()).unwrap()
    };
    let (uid, euid) = (field("Uid:")[0].to_string(), field("Uid:")[1].to_string());
    let caps = u64::from_str_radix(field("CapEff:")[0], 16).unwrap();
    if euid == "0" {
        "root"
    } else if uid != euid || (capabilities && caps != 0) {
        "elevated"
    } else {
        "user"
    }
}

fn find<'a>(doc: &'a Value, path: &str) -> &'a Value {
    doc["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} not observed in {doc:#}"))
}

#[test]
fn observe_finds_a_known_child_hashes_it_once_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    // A directory name that looks like a token: the command line must not show it.
    let secret = "0123456789abcdef0123456789abcdef";
    std::fs::create_dir(dir.path().join(secret)).unwrap();
    let exe = dir.path().join(secret).join(format!("filerep-observe-sleep-{}", std::process::id()));
    std::fs::copy("/bin/sleep", &exe).unwrap();
    let exe = exe.canonicalize().unwrap();
    let sha256: String = Sha256::digest(std::fs::read(&exe).unwrap()).iter().map(|b| format!("{b:02x}")).collect();
    let _child = KillOnDrop(Command::new(&exe).arg("30").spawn().expect("the copy of sleep starts"));
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap().trim().to_string();

    let first = observe(dir.path());
    assert_eq!(first["schema_version"], 1);
    assert_eq!(first["samples"], 6, "1 s every 200 ms, and one at the start");
    let participant = first["participant"].as_str().unwrap().to_string();
    assert_eq!(participant.len(), 32);
    let id_file = std::fs::read_to_string(dir.path().join("participant-id")).unwrap();
    assert_eq!(id_file.trim(), participant);
    assert!(first["host"]["kernel"].is_string(), "{:#}", first["host"]);
    assert!(first["host"]["country"].is_null(), "never guessed");

    let path = exe.to_str().unwrap();
    let f = find(&first, path);
    assert_eq!(f["sha256"], sha256.as_str());
    assert_eq!(f["sha1"].as_str().unwrap().len(), 40);
    assert_eq!(f["md5"].as_str().unwrap().len(), 32);
    assert!(f["processes"].as_u64().unwrap() >= 1, "{f:#}");
    assert!(f["threads"]["max"].as_u64().unwrap() >= 1, "{f:#}");
    assert!(f["working_set"]["max"].as_u64().unwrap() > 0, "{f:#}");
    assert!(f["peak_working_set"].as_u64().unwrap() > 0, "{f:#}");
    assert_eq!(f["owner"], user.as_str());
    assert_eq!(f["privilege"], expected_privilege(true), "{f:#}");
    assert!(matches!(f["platform"].as_str(), Some("64-bit" | "32-bit")), "{f:#}");
    assert!(f["cpu_percent"].as_f64().is_some_and(|c| (0.0..=100.0).contains(&c)), "{f:#}");
    assert_eq!(f["cached"], false);
    let cmd = f["command_line"].as_str().unwrap();
    assert!(cmd.contains("/<redacted>/filerep-observe-sleep-"), "{cmd}");
    assert!(cmd.ends_with(" 30") && !cmd.contains(secret), "{cmd}");
    // The test runner itself is a parent of the child.
    assert!(f["parent"].is_string(), "{f:#}");
    let hashed_first = first["hashed"].as_u64().unwrap();
    assert!(hashed_first >= 1 && first["cached"] == 0, "a new store has no cache: {}", first["cached"]);

    // The second run takes the digests of everything unchanged from the cache.
    let second = observe(dir.path());
    assert_eq!(second["participant"], participant.as_str());
    let f2 = find(&second, path);
    assert_eq!(f2["sha256"], sha256.as_str());
    assert_eq!(f2["cached"], true);
    assert!(second["cached"].as_u64().unwrap() >= 1);
    // (Processes of a build running alongside may bring new executables: fewer are hashed, not necessarily none.)
    assert!(second["hashed"].as_u64().unwrap() < hashed_first, "{} then {}", hashed_first, second["hashed"]);

    // Both runs are in the store.
    let out = filerep(dir.path()).args(["db", "info", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = first["files"].as_array().unwrap().len() + second["files"].as_array().unwrap().len();
    assert_eq!(info["sightings"], rows as u64);
    assert_eq!(info["schema_version"], filerep::store::sqlite::SCHEMA_VERSION);
    // One row per run for the child's executable, by SHA-256, with the run's figures.
    let conn = rusqlite::Connection::open(dir.path().join("filerep-store.sqlite")).unwrap();
    let sha_bytes: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&sha256[2 * i..2 * i + 2], 16).unwrap()).collect();
    let rows: Vec<(String, i64, String, i64, String)> = conn
        .prepare(
            "SELECT path, processes, owner, ws_max, participant FROM sightings WHERE sha256 = ?1 AND path = ?2 \
             ORDER BY observation",
        )
        .unwrap()
        // (Another test may run /bin/sleep itself meanwhile: same digest, another path.)
        .query_map(rusqlite::params![&sha_bytes, path], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (p, processes, owner, ws, part) in &rows {
        assert!(p == path && *processes >= 1 && *owner == user && *ws > 0 && *part == participant, "{rows:?}");
    }
    let runs: i64 = conn.query_row("SELECT count(*) FROM observations", [], |r| r.get(0)).unwrap();
    assert_eq!(runs, 2);
}

#[test]
fn the_sysinfo_backend_finds_the_known_child_with_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "fedcba9876543210fedcba9876543210";
    std::fs::create_dir(dir.path().join(secret)).unwrap();
    let exe = dir.path().join(secret).join(format!("filerep-sysinfo-sleep-{}", std::process::id()));
    std::fs::copy("/bin/sleep", &exe).unwrap();
    let exe = exe.canonicalize().unwrap();
    let sha256: String = Sha256::digest(std::fs::read(&exe).unwrap()).iter().map(|b| format!("{b:02x}")).collect();
    let _child = KillOnDrop(Command::new(&exe).arg("30").spawn().expect("the copy of sleep starts"));
    let id = |flag: &str| {
        String::from_utf8(Command::new("id").arg(flag).output().unwrap().stdout).unwrap().trim().to_string()
    };
    let (user, uid) = (id("-un"), id("-u"));

    let doc = observe_with(dir.path(), Some("sysinfo"));
    assert_eq!(doc["samples"], 6);
    let f = find(&doc, exe.to_str().unwrap());
    assert_eq!(f["sha256"], sha256.as_str());
    assert!(f["processes"].as_u64().unwrap() >= 1, "{f:#}");
    assert!(f["working_set"]["max"].as_u64().unwrap() > 0, "{f:#}");
    assert!(f["peak_working_set"].as_u64().unwrap() > 0, "{f:#}");
    assert!(f["threads"]["max"].as_u64().unwrap() >= 1, "{f:#}");
    assert!(f["owner"] == user.as_str() || f["owner"] == uid.as_str(), "{f:#}");
    assert_eq!(f["privilege"], expected_privilege(false), "{f:#}");
    assert!(matches!(f["platform"].as_str(), Some("64-bit" | "32-bit")), "{f:#}");
    assert!(f["cpu_percent"].as_f64().is_some_and(|c| (0.0..=100.0).contains(&c)), "{f:#}");
    let cmd = f["command_line"].as_str().unwrap();
    assert!(cmd.contains("/<redacted>/filerep-sysinfo-sleep-"), "{cmd}");
    assert!(cmd.ends_with(" 30") && !cmd.contains(secret), "{cmd}");
    assert!(f["parent"].is_string(), "{f:#}");
    // The test runner (this process) is seen too, each of its threads not as a process of its own.
    let me = std::env::current_exe().unwrap().canonicalize().unwrap();
    assert_eq!(find(&doc, me.to_str().unwrap())["processes"], 1);
}

#[test]
fn a_bad_backend_is_refused_with_the_accepted_values() {
    let dir = tempfile::tempdir().unwrap();
    let out = filerep(dir.path())
        .env("FILEREP_OBSERVE_BACKEND", "wmi")
        .args(["observe", "--duration", "0s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("FILEREP_OBSERVE_BACKEND") && stderr.contains("wmi"), "{stderr}");
    assert!(stderr.contains("proc or sysinfo"), "{stderr}");
    assert!(!dir.path().join("filerep-store.sqlite").exists(), "nothing was recorded");
}

#[test]
fn observe_rejects_bad_durations_and_online_options() {
    let dir = tempfile::tempdir().unwrap();
    for (args, want) in [
        (&["observe", "--interval", "50ms"][..], "at least 100ms"),
        (&["observe", "--duration", "25h"][..], "at most 24h"),
        (&["observe", "--duration", "soon"][..], "not a duration"),
        (&["--remote", "http://127.0.0.1:1", "observe"][..], "observe sends nothing without --submit"),
        (&["--provider", "hashlookup", "observe"][..], "--provider applies to check"),
        (&["--submit", "observe"][..], "--submit needs a remote store"),
    ] {
        let out = filerep(dir.path()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    assert!(!dir.path().join("filerep-store.sqlite").exists(), "nothing was recorded");
}

#[test]
fn the_table_lists_the_executables() {
    let dir = tempfile::tempdir().unwrap();
    let out = filerep(dir.path()).args(["observe", "--duration", "0s"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("sha256 "), "{stdout}");
    assert!(stdout.contains("1 sample over"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("recorded"), "{stderr}");
}

#[test]
fn observe_submit_sends_the_observation_to_a_real_serve() {
    const TOKEN: &str = "observe-token-4f1a";
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join(format!("filerep-submit-sleep-{}", std::process::id()));
    std::fs::copy("/bin/sleep", &exe).unwrap();
    // A file of its own (sleep plus a tag): its digest is this test's alone.
    let mut bytes = std::fs::read(&exe).unwrap();
    bytes.extend_from_slice(format!("filerep-submit-{}", std::process::id()).as_bytes());
    std::fs::write(&exe, &bytes).unwrap();
    let sha256: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    let _child = KillOnDrop(Command::new(&exe).arg("30").spawn().expect("the copy of sleep starts"));
    // A shell whose script holds a newline and an escape sequence, as CI runners' shells do: its command line
    // is sent escaped, one printable line, and the server takes the batch.
    let shell = dir.path().join(format!("filerep-submit-sh-{}", std::process::id()));
    std::fs::copy("/bin/sh", &shell).unwrap();
    let _shell = KillOnDrop(
        Command::new(&shell).args(["-c", "sleep 30\n: \x1b[2J\x07"]).spawn().expect("the copy of sh starts"),
    );

    // Two executables whose names read the same once escaped: a newline, and a literal backslash-x0a. The run
    // lists that path once (serve refuses a path listed twice), and says it left one out.
    let twins = [format!("filerep-twin\n{}", std::process::id()), format!("filerep-twin\\x0a{}", std::process::id())];
    let _twins: Vec<KillOnDrop> = twins
        .iter()
        .map(|name| {
            let twin = dir.path().join(name);
            std::fs::copy("/bin/sleep", &twin).unwrap();
            KillOnDrop(Command::new(&twin).arg("30").spawn().expect("the twin starts"))
        })
        .collect();

    let server_dir = tempfile::tempdir().unwrap();
    let server = crate::serve::Server::start(
        server_dir.path(),
        &server_dir.path().join("server.sqlite"),
        &["--min-participants", "5"],
        &[("FILEREP_SERVE_TOKEN", TOKEN)],
    );
    let url = format!("http://{}", server.addr);

    // Without the token: refused before observing, nothing recorded.
    let out = filerep(dir.path()).args(["--remote", &url, "--submit", "observe", "--duration", "0s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("FILEREP_REMOTE_TOKEN") && stderr.lines().count() == 1, "{stderr}");
    assert!(!dir.path().join("filerep-store.sqlite").exists());

    let out = filerep(dir.path())
        .env("FILEREP_REMOTE_TOKEN", TOKEN)
        .args(["--remote", &url, "--submit", "observe", "--duration", "0s", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("submitted ") && stderr.contains(&url), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(find(&doc, exe.canonicalize().unwrap().to_str().unwrap())["sha256"], sha256.as_str());
    let script = find(&doc, shell.canonicalize().unwrap().to_str().unwrap())["command_line"].as_str().unwrap();
    assert!(script.ends_with(r" -c 'sleep 30\x0a: \x1b[2J\x07'"), "{script:?}");
    let printed = format!(r"{}/filerep-twin\x0a{}", dir.path().canonicalize().unwrap().display(), std::process::id());
    let listed = doc["files"].as_array().unwrap().iter().filter(|f| f["path"] == printed.as_str()).count();
    assert_eq!(listed, 1, "{printed} in {doc:#}");
    assert!(doc["skipped"]["same_printed_path"].as_u64() >= Some(1), "{:#}", doc["skipped"]);

    // The server knows one participant ran it; below its floor of 5, nothing else.
    let p = server.get_json(&format!("/v1/files/{sha256}"))["reputation"]["prevalence"].clone();
    assert_eq!(p["participants"], 1, "{p:#}");
    assert_eq!(p["withheld"], true);
    assert!(p["resources"]["working_set"].is_null() && p["process"]["typical_path"].is_null(), "{p:#}");

    // The server gone: exit 2 with one line; the observation stays in the local store.
    drop(server);
    let out = filerep(dir.path())
        .env("FILEREP_REMOTE_TOKEN", TOKEN)
        .args(["--remote", &url, "--submit", "observe", "--duration", "0s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.contains("the observation is kept in") && last.contains(&url), "{stderr}");
    let conn = rusqlite::Connection::open(dir.path().join("filerep-store.sqlite")).unwrap();
    let runs: i64 = conn.query_row("SELECT count(*) FROM observations", [], |r| r.get(0)).unwrap();
    assert_eq!(runs, 2);
}
