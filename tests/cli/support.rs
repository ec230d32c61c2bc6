//! Shared helpers: run the binary with a clean environment in a temp dir.

#![allow(dead_code)]

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

/// A `filerep` command with a clean environment (`NO_COLOR`, no user config) in `dir`, with its own empty
/// store (`FILEREP_DB`, relative to `dir` so that its path in the output is stable).
pub fn filerep(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("filerep").expect("the filerep binary is built");
    cmd.current_dir(dir)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("FILEREP_DB", "filerep-store.sqlite");
    // scripts/test runs the suite with canary API keys: every run has them, and none may print them.
    for key in ["FILEREP_VIRUSTOTAL_KEY", "FILEREP_MALWAREBAZAAR_KEY"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    cmd
}

/// Run `filerep check --json FILE` and parse the document.
pub fn check_json(dir: &Path, file: &Path) -> (Output, serde_json::Value) {
    let out = filerep(dir).arg("check").arg("--json").arg(file).output().expect("filerep runs");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, doc)
}
