//! Offline by default: with no remote and no provider configured, filerep opens no network connection.
//!
//! The proof is the system calls: the binary runs under `strace -f -e trace=socket,connect`, and no
//! AF_INET/AF_INET6 socket may appear. A positive control runs the same way with `--remote` pointing at a
//! local port and must show the connection, so a broken tracer cannot make the test pass. Without strace the
//! test is skipped with a message, unless FILEREP_REQUIRE_STRACE=1 (CI installs strace and sets it).

use std::path::Path;
use std::process::Command;

use crate::fixtures::Pe;

fn strace_available() -> bool {
    let ok = Command::new("strace").args(["-o", "/dev/null", "true"]).status().is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("FILEREP_REQUIRE_STRACE").is_none(),
            "strace is required (FILEREP_REQUIRE_STRACE is set) but cannot run"
        );
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped: strace is not available");
        }
    }
    ok
}

/// Run filerep under strace (clean environment, the store in `dir`); returns the trace and the exit code.
fn traced(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (String, i32) {
    let trace = dir.join(format!("trace-{}.txt", args.join("_").replace(['/', ' ', ':'], "-")));
    let bin = assert_cmd::cargo::cargo_bin("filerep");
    let mut cmd = Command::new("strace");
    cmd.arg("-f").args(["-e", "trace=socket,connect", "-o"]).arg(&trace).arg(&bin).args(args);
    cmd.current_dir(dir)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("FILEREP_DB", "store.sqlite");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("strace runs");
    (std::fs::read_to_string(&trace).unwrap_or_default(), out.status.code().unwrap_or(-1))
}

fn inet_lines(trace: &str) -> Vec<&str> {
    trace.lines().filter(|l| l.contains("AF_INET")).collect()
}

#[test]
fn no_connection_is_opened_without_a_remote_or_a_provider() {
    if !strace_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.exe"), Pe::sample(true).build().bytes).unwrap();
    std::fs::create_dir(d.join("tree")).unwrap();
    std::fs::write(d.join("tree/b.exe"), Pe::sample(false).build().bytes).unwrap();
    // A store with a record, so that every command consults it.
    let (trace, code) = traced(d, &["db", "add", &"ab".repeat(32), "--class", "malicious", "--source", "mine"], &[]);
    assert_eq!(code, 0, "{trace}");

    let runs: &[&[&str]] = &[
        &["check", "a.exe"],
        &["check", "--json", "a.exe"],
        &["lookup", &"ab".repeat(32)],
        &["scan", "--format", "sarif", "tree"],
        &["scan", "--format", "json", "--fuzzy", "tree"],
        &["db", "info"],
        &["observe", "--duration", "300ms", "--interval", "100ms"],
    ];
    for args in runs {
        let (trace, code) = traced(d, args, &[]);
        assert!(code == 0 || code == 1, "{args:?} exited {code}: {trace}");
        assert!(trace.contains("+++ exited"), "{args:?}: the trace is empty, strace did not run: {trace}");
        assert!(inet_lines(&trace).is_empty(), "{args:?} opened network sockets:\n{}", inet_lines(&trace).join("\n"));
    }

    // The positive control: the same tracing sees a remote being asked.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let (trace, _) = traced(d, &["check", "--remote", &url, "a.exe"], &[]);
    let lines = inet_lines(&trace);
    assert!(
        lines.iter().any(|l| l.contains("connect(") && l.contains(&format!("htons({port})"))),
        "the control run's connection was not seen:\n{trace}"
    );
}
