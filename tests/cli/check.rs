//! `filerep check`: exit codes, output formats, stdin, size cap, colour, interruption and broken pipes.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use md5::Digest;
use tempfile::TempDir;

use crate::support::{check_json, filerep};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// 64 bytes of MZ whose e_lfanew points far past the end: a damaged PE (verdict `suspicious`).
fn damaged_mz() -> Vec<u8> {
    let mut d = vec![0u8; 64];
    d[..2].copy_from_slice(b"MZ");
    d[0x3c..0x40].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
    d
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_filerep"))
}

#[test]
fn plain_text_exits_0_with_unknown_verdict() {
    let t = TempDir::new().unwrap();
    let f = write(t.path(), "notes.txt", b"just some text\n");
    let (out, doc) = check_json(t.path(), &f);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let r = &doc["reports"][0];
    assert_eq!(r["format"], "unknown");
    assert_eq!(r["verdict"]["level"], "unknown");
    assert_eq!(r["hashes"]["md5"], filerep::hex::encode(&md5::Md5::digest(b"just some text\n")));
    assert!(out.stderr.is_empty());
}

#[test]
fn file_at_fail_on_level_exits_1() {
    let t = TempDir::new().unwrap();
    let f = write(t.path(), "bad.exe", &damaged_mz());
    let out = filerep(t.path()).args(["check", "--json", "--fail-on", "suspicious"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["reports"][0]["verdict"]["level"], "suspicious");
    // The default --fail-on is malicious: the same file exits 0.
    let out = filerep(t.path()).args(["check", "--json"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn unreadable_file_exits_2_with_one_line_naming_it() {
    let t = TempDir::new().unwrap();
    let out = filerep(t.path()).args(["check", "no-such-file.exe"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(err.trim_end(), "filerep: error: no-such-file.exe: no such file or directory");
    assert!(out.stdout.is_empty(), "the card of an unreadable file is not printed");
}

#[test]
fn findings_win_over_errors() {
    let t = TempDir::new().unwrap();
    let f = write(t.path(), "bad.exe", &damaged_mz());
    let out = filerep(t.path()).args(["check", "--fail-on", "suspicious", "missing.exe"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn usage_error_exits_2() {
    let t = TempDir::new().unwrap();
    for args in [
        vec!["check"],
        vec!["check", "--fail-on", "bad", "x"],
        vec!["frobnicate"],
        vec!["check", "--max-size", "1T", "x"],
    ] {
        let out = filerep(t.path()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn help_documents_the_exit_codes() {
    let t = TempDir::new().unwrap();
    let out = filerep(t.path()).args(["check", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in ["Exit status:", "0 ", "1 ", "2 ", "130"] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
}

#[test]
fn json_document_keeps_argument_order_and_reports_errors_inline() {
    let t = TempDir::new().unwrap();
    let a = write(t.path(), "a.bin", b"aaaa");
    let b = write(t.path(), "b.bin", b"bbbb");
    let out = filerep(t.path()).args(["check", "--json", "-j", "2"]).arg(&b).arg("missing").arg(&a).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["filerep_version"], env!("CARGO_PKG_VERSION"));
    let reports = doc["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 3);
    assert!(reports[0]["path"].as_str().unwrap().ends_with("b.bin"));
    assert_eq!(reports[1]["path"], "missing");
    assert_eq!(reports[1]["error"], "no such file or directory");
    assert!(reports[1]["size"].is_null());
    assert!(reports[2]["path"].as_str().unwrap().ends_with("a.bin"));
}

#[test]
fn jsonl_prints_one_report_per_line() {
    let t = TempDir::new().unwrap();
    let a = write(t.path(), "a.bin", b"aaaa");
    let out = filerep(t.path()).args(["check", "--format", "jsonl"]).arg(&a).arg(&a).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    for l in lines {
        let r: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(r["size"], 4);
    }
}

#[test]
fn stdin_is_read_with_dash() {
    let t = TempDir::new().unwrap();
    let data = damaged_mz();
    let mut child = Command::new(bin())
        .env("FILEREP_DB", "filerep-store.sqlite")
        .current_dir(t.path())
        .args(["check", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["reports"][0]["path"], "-");
    assert_eq!(doc["reports"][0]["size"], 64);
    assert_eq!(doc["reports"][0]["hashes"]["sha256"], filerep::hex::encode(&sha2::Sha256::digest(&data)));
}

#[test]
fn over_the_size_cap_only_digests_and_never_clean() {
    let t = TempDir::new().unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let f = write(t.path(), "big.bin", &data);
    let out = filerep(t.path()).args(["check", "--json", "--max-size", "4K"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &doc["reports"][0];
    assert_eq!(r["fully_analysed"], false);
    assert_eq!(r["size"], 100_000);
    assert_eq!(r["hashes"]["sha1"], filerep::hex::encode(&sha1::Sha1::digest(&data)));
    assert!(r["hashes"]["tlsh"].is_null());
    assert_ne!(r["verdict"]["level"], "good");
    assert!(r["verdict"]["reasons"].as_array().unwrap().iter().any(|x| x["id"] == "not-fully-analysed"));
}

#[test]
fn card_is_plain_without_a_terminal_and_coloured_on_request() {
    let t = TempDir::new().unwrap();
    let f = write(t.path(), "bad.exe", &damaged_mz());
    let plain = filerep(t.path()).args(["check"]).arg(&f).output().unwrap();
    assert!(!plain.stdout.contains(&0x1b));
    let card = String::from_utf8(plain.stdout).unwrap();
    assert!(card.contains("Should I block it?"), "{card}");
    assert!(card.contains("malformed-header"), "{card}");
    let coloured = filerep(t.path()).args(["check", "--color", "always"]).arg(&f).output().unwrap();
    assert!(coloured.stdout.contains(&0x1b));
    // NO_COLOR does not stop an explicit --color always, and --color never wins over everything.
    let never = filerep(t.path()).args(["check", "--color", "never"]).arg(&f).output().unwrap();
    assert!(!never.stdout.contains(&0x1b));
}

#[test]
fn interrupted_exits_130() {
    let t = TempDir::new().unwrap();
    // `check -` waits on a standard input that never ends; SIGINT must end it with 130.
    let mut child = Command::new(bin())
        .env("FILEREP_DB", "filerep-store.sqlite")
        .current_dir(t.path())
        .args(["check", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _keep_open = child.stdin.take();
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            assert_eq!(s.code(), Some(130));
            break;
        }
        if start.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("filerep did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn closed_stdout_is_not_an_error() {
    let t = TempDir::new().unwrap();
    let f = write(t.path(), "a.bin", &[7u8; 1000]);
    let mut cmd = Command::new(bin());
    cmd.env("FILEREP_DB", "filerep-store.sqlite").current_dir(t.path()).args(["check", "--format", "jsonl", "-j", "1"]);
    for _ in 0..400 {
        cmd.arg(&f);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = [0u8; 16];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn stdin_can_be_named_only_once() {
    let t = TempDir::new().unwrap();
    let out = Command::new(bin())
        .env("FILEREP_DB", "filerep-store.sqlite")
        .current_dir(t.path())
        .args(["check", "-", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
