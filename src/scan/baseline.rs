//! `--baseline FILE`: a previous scan's JSON result, so that a run reports only what is new.
//!
//! A finding is keyed by (path relative to the scan root, rule, level). It is `unchanged` when the baseline
//! has the same key, and `new` otherwise: a new artifact, a new rule on an old one, or the same rule at a
//! different level. So a data set update that turns an old artifact malicious is reported, and a rebuilt
//! artifact that keeps an accepted finding is not.
//!
//! The baseline is read as a stream of typed values (only the keys are kept), from either `--format json`
//! (`{"files": [...]}`) or `--format jsonl` (`{"type": "file", ...}` lines).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::Deserialize;

use super::{BaselineState, Finding, Severity};
use crate::verdict::Level;

/// Why a baseline could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Unreadable.
    #[error("{path}: {source}")]
    Read {
        /// The baseline file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a scan result.
    #[error("{path}: not a filerep scan result ({why})")]
    Invalid {
        /// The baseline file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

#[derive(Deserialize)]
struct Doc {
    files: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    relative_path: String,
    #[serde(default)]
    findings: Vec<KeyFinding>,
}

#[derive(Deserialize)]
struct Line {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct KeyFinding {
    rule: String,
    level: Option<Level>,
    severity: Severity,
}

/// The findings of a previous run.
#[derive(Debug, Default)]
pub struct Baseline {
    keys: HashSet<(String, String, String)>,
    files: usize,
}

fn key(path: &str, rule: &str, level: Option<Level>, severity: Severity) -> (String, String, String) {
    let level = level.map_or_else(|| severity.as_str().to_string(), |l| l.as_str().to_string());
    (path.to_string(), rule.to_string(), level)
}

impl Baseline {
    /// Read a baseline file (`--format json` or `--format jsonl` output of `filerep scan`).
    pub fn load(path: &Path) -> Result<Baseline, Error> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| Error::Read { path: name.clone(), source })?;
        Baseline::read(BufReader::new(file)).map_err(|why| Error::Invalid { path: name, why })
    }

    /// Read a baseline from any reader.
    pub fn read(mut reader: impl BufRead) -> Result<Baseline, String> {
        // Tell the two shapes apart by the first non-blank line.
        let mut first = String::new();
        loop {
            first.clear();
            if reader.read_line(&mut first).map_err(|e| e.to_string())? == 0 {
                return Err("empty file".to_string());
            }
            if !first.trim().is_empty() {
                break;
            }
        }
        let mut b = Baseline::default();
        let trimmed = first.trim();
        if trimmed.starts_with('{') && trimmed.ends_with('}') && trimmed.contains("\"type\"") {
            let mut lineno = 1;
            let mut line = first.clone();
            loop {
                if !line.trim().is_empty() {
                    let l: Line = serde_json::from_str(&line).map_err(|e| format!("line {lineno}: {e}"))?;
                    if l.kind == "file" {
                        let e: Entry = serde_json::from_str(&line).map_err(|e| format!("line {lineno}: {e}"))?;
                        b.add(&e.relative_path, &e.findings);
                    }
                }
                line.clear();
                lineno += 1;
                if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                    break;
                }
            }
        } else {
            let chained = std::io::Cursor::new(first.into_bytes()).chain(reader);
            let doc: Doc = serde_json::from_reader(chained).map_err(|e| e.to_string())?;
            for e in &doc.files {
                b.add(&e.relative_path, &e.findings);
            }
        }
        Ok(b)
    }

    fn add(&mut self, path: &str, findings: &[KeyFinding]) {
        self.files += 1;
        for f in findings {
            self.keys.insert(key(path, &f.rule, f.level, f.severity));
        }
    }

    /// Files in the baseline.
    pub fn files(&self) -> usize {
        self.files
    }

    /// Mark each finding of a file `new` or `unchanged`.
    pub fn mark(&self, relative_path: &str, findings: &mut [Finding]) {
        for f in findings {
            let k = key(relative_path, &f.rule, f.level, f.severity);
            f.baseline = Some(if self.keys.contains(&k) { BaselineState::Unchanged } else { BaselineState::New });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::FindingKind;

    fn finding(rule: &str, level: Option<Level>, severity: Severity) -> Finding {
        Finding {
            rule: rule.into(),
            kind: if level.is_some() { FindingKind::Verdict } else { FindingKind::Hardening },
            level,
            severity,
            message: String::new(),
            source: "file".into(),
            fails: true,
            suppression: None,
            baseline: None,
        }
    }

    #[test]
    fn json_and_jsonl_baselines_mark_findings() {
        let json = r#"{"schema_version": 1, "files": [
            {"relative_path": "a.exe", "path": "x/a.exe", "findings": [
                {"rule": "pe-gs", "level": null, "severity": "warning", "kind": "hardening"},
                {"rule": "known-vulnerable", "level": "vulnerable", "severity": "warning"}]},
            {"relative_path": "b.exe", "findings": []}], "summary": {}}"#;
        let jsonl = "{\"type\":\"file\",\"relative_path\":\"a.exe\",\"findings\":[{\"rule\":\"pe-gs\",\"level\":null,\"severity\":\"warning\"},{\"rule\":\"known-vulnerable\",\"level\":\"vulnerable\",\"severity\":\"warning\"}]}\n\n{\"type\":\"file\",\"relative_path\":\"b.exe\",\"findings\":[]}\n{\"type\":\"summary\",\"files_seen\":2}\n";
        for text in [json, jsonl] {
            let b = Baseline::read(text.as_bytes()).unwrap();
            assert_eq!(b.files(), 2);
            let mut fs = vec![
                finding("pe-gs", None, Severity::Warning),
                finding("known-vulnerable", Some(Level::Vulnerable), Severity::Warning),
                finding("known-vulnerable", Some(Level::Malicious), Severity::Error),
                finding("pe-cfg", None, Severity::Warning),
            ];
            b.mark("a.exe", &mut fs);
            let states: Vec<_> = fs.iter().map(|f| f.baseline.unwrap()).collect();
            assert_eq!(
                states,
                [BaselineState::Unchanged, BaselineState::Unchanged, BaselineState::New, BaselineState::New]
            );
            assert!(fs[0].fails && !fs[0].counts(), "an unchanged finding does not fail the run");
            assert!(fs[2].counts());
            let mut other = vec![finding("pe-gs", None, Severity::Warning)];
            b.mark("b.exe", &mut other);
            assert_eq!(other[0].baseline, Some(BaselineState::New), "keyed by path");
        }
    }

    #[test]
    fn bad_baselines_say_why() {
        assert_eq!(Baseline::read(&b""[..]).unwrap_err(), "empty file");
        assert!(Baseline::read(&b"{\"reports\": []}"[..]).unwrap_err().contains("files"));
        assert!(Baseline::read(&b"{\"type\":\"file\"}\n"[..]).unwrap_err().contains("line 1"));
        assert!(
            Baseline::read(&b"{\"type\":\"file\",\"relative_path\":\"a\"}\n{bad\n"[..]).unwrap_err().contains("line 2")
        );
        assert!(Baseline::read(&b"\x00\x01binary"[..]).is_err());
    }
}
