//! SARIF 2.1.0 for `filerep scan --format sarif`: a streaming writer, so that a scan of tens of thousands of
//! files never holds their reports in memory.
//!
//! The document is one run. Its `results` array is opened by [`SarifWriter::begin`], fed one file at a time
//! by [`SarifWriter::entry`] (in path order), and closed by [`SarifWriter::finish`], which then writes the
//! parts that depend on the whole run: `tool.driver.rules` (only the rules used, each with its help text
//! from [`super::rules`]), `artifacts`, `invocations` and `originalUriBaseIds` (JSON objects are unordered,
//! so the run's other properties can follow its results). What is kept between the calls is small: one
//! record per used rule, per file with a result (its URI, length and digests) and per file that could not
//! be read.
//!
//! Conventions (SARIF 2.1.0, OASIS, and GitHub code scanning's reading of it):
//! * each scan root is an `originalUriBaseIds` entry `ROOT0`, `ROOT1`, … (its absolute `file://` URI, ending
//!   in `/`), and artifact URIs are relative to it, so the same artifact has the same URI on every machine;
//! * `partialFingerprints["filerepFinding/v1"]` hashes the rule id and the relative path only, so an alert
//!   survives a rebuild of the artifact (new content, same place) and moves only with the file;
//! * `error` for malicious, `warning` for vulnerable, suspicious and required checks, `note` for enabled
//!   checks (the finding's [`Severity`]); a suppressed finding is written with `suppressions` (and is not
//!   shown as an open alert), an expired suppression is not a suppression and the message says so, and a
//!   finding unchanged since the baseline is not written at all.
//!
//! Every string goes through serde_json; nothing attacker-controlled is formatted into JSON by hand.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{BaselineState, Finding, FindingKind, ScanEntry, Severity, Summary, rules};
use crate::verdict::Level;

/// The schema URI written in `$schema`.
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The key of filerep's stable fingerprint in `partialFingerprints`.
pub const FINGERPRINT_KEY: &str = "filerepFinding/v1";
/// Where filerep lives (`tool.driver.informationUri`).
pub const INFORMATION_URI: &str = "https://github.com/filerep/filerep";

/// A rule used by at least one result, in first-use order.
struct UsedRule {
    id: String,
    kind: FindingKind,
    /// The most severe level a result of this rule had (the rule's `defaultConfiguration.level`).
    severity: Severity,
    /// The highest verdict level a result of this rule supported (for GitHub's `security-severity`).
    level: Option<Level>,
}

/// A file with at least one result (`run.artifacts`).
struct ArtifactRecord {
    uri: String,
    root: usize,
    length: Option<u64>,
    md5: Option<String>,
    sha1: Option<String>,
    sha256: Option<String>,
}

/// A file that could not be read (`invocations[0].toolExecutionNotifications`).
struct ErrorRecord {
    uri: String,
    root: usize,
    text: String,
}

/// Writes one SARIF run, a file at a time: [`begin`](Self::begin), [`entry`](Self::entry) for each file in
/// path order, then [`finish`](Self::finish).
pub struct SarifWriter {
    /// `originalUriBaseIds`: (the root as given, its absolute `file://` URI).
    roots: Vec<(String, String)>,
    rules: Vec<UsedRule>,
    rule_index: HashMap<String, usize>,
    artifacts: Vec<ArtifactRecord>,
    errors: Vec<ErrorRecord>,
    results: u64,
}

impl SarifWriter {
    /// Open the document and its results array. `roots` are the scan roots as given on the command line;
    /// each becomes `ROOT<i>` with its absolute `file://` URI ending in `/` (for a root that is a file, the
    /// URI of the directory holding it, against which the file's relative path is its name).
    pub fn begin(out: &mut dyn Write, roots: &[PathBuf]) -> io::Result<SarifWriter> {
        let roots = roots
            .iter()
            .map(|r| Ok((r.to_string_lossy().into_owned(), root_uri(r)?)))
            .collect::<io::Result<Vec<_>>>()?;
        out.write_all(b"{\"$schema\":")?;
        serde_json::to_writer(&mut *out, SCHEMA_URI)?;
        out.write_all(b",\"version\":\"2.1.0\",\"runs\":[{\"results\":[")?;
        Ok(SarifWriter {
            roots,
            rules: Vec::new(),
            rule_index: HashMap::new(),
            artifacts: Vec::new(),
            errors: Vec::new(),
            results: 0,
        })
    }

    /// Write the results of one file (call in path order). `root_index` is the index in `roots` of the root
    /// it was found under. Findings with `baseline == Some(Unchanged)` are not written; a file whose report
    /// has an error becomes a tool execution notification.
    pub fn entry(&mut self, out: &mut dyn Write, root_index: usize, entry: &ScanEntry) -> io::Result<()> {
        if root_index >= self.roots.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("SARIF: root index {root_index} for {} but only {} roots", entry.report.path, self.roots.len()),
            ));
        }
        let uri = sarif_uri(&entry.relative_path);
        if let Some(err) = &entry.report.error {
            self.errors.push(ErrorRecord {
                uri: uri.clone(),
                root: root_index,
                text: format!("{}: {err}", entry.report.path),
            });
        }
        let mut written = entry.findings.iter().filter(|f| f.baseline != Some(BaselineState::Unchanged)).peekable();
        if written.peek().is_none() {
            return Ok(());
        }
        let artifact_index = self.artifacts.len();
        let hashes = &entry.report.hashes;
        self.artifacts.push(ArtifactRecord {
            uri: uri.clone(),
            root: root_index,
            length: entry.report.size,
            md5: hashes.md5.clone(),
            sha1: hashes.sha1.clone(),
            sha256: hashes.sha256.clone(),
        });
        for finding in written {
            let rule_index = self.use_rule(finding);
            let result = result_json(entry, finding, &uri, root_index, artifact_index, rule_index);
            out.write_all(if self.results == 0 { b"\n" } else { b",\n" })?;
            serde_json::to_writer(&mut *out, &result)?;
            self.results += 1;
        }
        Ok(())
    }

    /// Close the results, then write `tool.driver` (with the rules actually used), `artifacts`,
    /// `invocations` and `originalUriBaseIds`, and end the document (with a newline).
    pub fn finish(self, out: &mut dyn Write, summary: &Summary) -> io::Result<()> {
        out.write_all(b"\n],\"tool\":")?;
        let rules: Vec<Value> = self.rules.iter().map(rule_json).collect();
        let version = env!("CARGO_PKG_VERSION");
        let tool = json!({
            "driver": {
                "name": "filerep",
                "version": version,
                "semanticVersion": version,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        });
        serde_json::to_writer(&mut *out, &tool)?;

        out.write_all(b",\"artifacts\":[")?;
        for (i, a) in self.artifacts.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            out.write_all(b"\n")?;
            let mut hashes = Map::new();
            for (key, value) in [("md5", &a.md5), ("sha-1", &a.sha1), ("sha-256", &a.sha256)] {
                if let Some(v) = value {
                    hashes.insert(key.to_string(), Value::from(v.as_str()));
                }
            }
            let mut artifact = json!({
                "location": { "uri": a.uri, "uriBaseId": root_id(a.root) },
                "roles": ["analysisTarget"],
                "hashes": hashes,
            });
            if let Some(length) = a.length {
                artifact["length"] = Value::from(length);
            }
            serde_json::to_writer(&mut *out, &artifact)?;
        }
        out.write_all(b"],\"invocations\":")?;
        let notifications: Vec<Value> = self
            .errors
            .iter()
            .map(|e| {
                json!({
                    "level": "error",
                    "message": { "text": e.text },
                    "locations": [{
                        "physicalLocation": { "artifactLocation": { "uri": e.uri, "uriBaseId": root_id(e.root) } }
                    }],
                })
            })
            .collect();
        let invocations = json!([{
            "executionSuccessful": summary.errors == 0,
            "exitCode": summary.exit_status,
            "toolExecutionNotifications": notifications,
            "properties": { "summary": summary },
        }]);
        serde_json::to_writer(&mut *out, &invocations)?;

        out.write_all(b",\"originalUriBaseIds\":")?;
        let mut bases = Map::new();
        for (i, (given, uri)) in self.roots.iter().enumerate() {
            bases.insert(root_id(i), json!({ "uri": uri, "description": { "text": format!("scan root {given}") } }));
        }
        serde_json::to_writer(&mut *out, &bases)?;
        out.write_all(b"}]}\n")?;
        out.flush()
    }

    /// The index of the finding's rule in the rules array, registering it on first use.
    fn use_rule(&mut self, finding: &Finding) -> usize {
        let index = match self.rule_index.get(&finding.rule) {
            Some(&i) => i,
            None => {
                let i = self.rules.len();
                self.rules.push(UsedRule {
                    id: finding.rule.clone(),
                    kind: finding.kind,
                    severity: finding.severity,
                    level: finding.level,
                });
                self.rule_index.insert(finding.rule.clone(), i);
                i
            }
        };
        let rule = &mut self.rules[index];
        rule.severity = rule.severity.max(finding.severity);
        rule.level = rule.level.max(finding.level);
        index
    }
}

/// `ROOT0`, `ROOT1`, …
fn root_id(index: usize) -> String {
    format!("ROOT{index}")
}

/// One result.
fn result_json(
    entry: &ScanEntry,
    finding: &Finding,
    uri: &str,
    root: usize,
    artifact_index: usize,
    rule_index: usize,
) -> Value {
    let mut text = finding.message.clone();
    let mut properties = Map::new();
    if let Some(sha256) = &entry.report.hashes.sha256 {
        properties.insert("sha256".into(), Value::from(sha256.as_str()));
    }
    properties.insert("verdict".into(), Value::from(entry.report.verdict.level.as_str()));
    if let Some(level) = finding.level {
        properties.insert("reasonLevel".into(), Value::from(level.as_str()));
    }
    properties.insert("findingKind".into(), serde_json::to_value(finding.kind).unwrap_or(Value::Null));
    properties.insert("source".into(), Value::from(finding.source.as_str()));
    properties.insert("fails".into(), Value::from(finding.fails));

    let mut suppressions = None;
    if let Some(s) = &finding.suppression {
        if s.expired {
            // An expired suppression no longer suppresses (issue 5); the alert is open and says why.
            if !text.is_empty() && !text.ends_with(['.', '!', '?']) {
                text.push('.');
            }
            if !text.is_empty() {
                text.push(' ');
            }
            match &s.expires {
                Some(date) => text.push_str(&format!(
                    "The policy suppression ({}) expired on {date} and no longer applies.",
                    s.matched_by
                )),
                None => text
                    .push_str(&format!("The policy suppression ({}) has expired and no longer applies.", s.matched_by)),
            }
            properties.insert(
                "expiredSuppression".into(),
                json!({ "matchedBy": s.matched_by, "justification": s.justification, "expires": s.expires }),
            );
        } else {
            let mut props = Map::new();
            props.insert("matchedBy".into(), Value::from(s.matched_by.as_str()));
            if let Some(date) = &s.expires {
                props.insert("expires".into(), Value::from(date.as_str()));
            }
            suppressions = Some(json!([{
                "kind": "external",
                "status": "accepted",
                "justification": s.justification,
                "properties": props,
            }]));
        }
    }

    let mut result = json!({
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": finding.severity.as_str(),
        "kind": "fail",
        "message": { "text": text },
        "locations": [{
            "physicalLocation": {
                "artifactLocation": { "uri": uri, "uriBaseId": root_id(root), "index": artifact_index }
            }
        }],
        "partialFingerprints": { FINGERPRINT_KEY: fingerprint(&finding.rule, &entry.relative_path) },
        "properties": properties,
    });
    if finding.baseline == Some(BaselineState::New) {
        result["baselineState"] = Value::from("new");
    }
    if let Some(s) = suppressions {
        result["suppressions"] = s;
    }
    result
}

/// One `tool.driver.rules` entry.
fn rule_json(rule: &UsedRule) -> Value {
    let text = rules::describe(&rule.id);
    let markdown = format!("**{}**\n\n{}\n\n{}", text.short, text.full, text.help);
    json!({
        "id": rule.id,
        "name": text.name,
        "shortDescription": { "text": text.short },
        "fullDescription": { "text": text.full },
        "help": { "text": text.help, "markdown": markdown },
        "defaultConfiguration": { "level": rule.severity.as_str() },
        "properties": {
            "tags": rules::tags(&rule.id, rule.kind),
            "security-severity": security_severity(rule.severity, rule.level),
        },
    })
}

/// GitHub code scanning's `security-severity` (a CVSS-like score: 9.0+ critical, 7.0+ high, 4.0+ medium,
/// below that low), from the verdict level a rule supports, else its SARIF level.
fn security_severity(severity: Severity, level: Option<Level>) -> &'static str {
    match (level, severity) {
        (Some(Level::Malicious), _) | (None, Severity::Error) => "9.5",
        (Some(Level::Vulnerable), _) => "8.0",
        (Some(Level::Suspicious), _) => "5.5",
        (_, Severity::Warning) => "5.0",
        _ => "2.0",
    }
}

/// The stable fingerprint of a finding: the first 32 hex digits of SHA-256 over the rule id, a NUL and the
/// relative path. It does not depend on the file's content, so a rebuilt artifact keeps its alert.
pub fn fingerprint(rule: &str, relative_path: &str) -> String {
    let mut h = Sha256::new();
    h.update(rule.as_bytes());
    h.update([0u8]);
    h.update(relative_path.as_bytes());
    let mut hex = crate::hex::encode(&h.finalize());
    hex.truncate(32);
    hex
}

/// Characters kept as they are in a path segment: RFC 3986 `unreserved` and the `sub-delims` allowed in a
/// segment. `:` is encoded (a relative reference whose first segment has a colon would read as a scheme),
/// as are `%`, `#`, `?`, `[`, `]`, `\`, spaces, controls and every non-ASCII byte.
fn keep(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=@".contains(&b)
}

fn percent_encode(bytes: &[u8], also_keep: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if keep(b) || b == b'/' || also_keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// A relative path with `/` separators as a SARIF artifact URI: a relative URI reference, percent-encoded
/// (UTF-8) wherever a character is not allowed as it is (spaces, `#`, `%`, `?`, `:`, controls, non-ASCII).
pub fn sarif_uri(relative_path: &str) -> String {
    percent_encode(relative_path.as_bytes(), b"")
}

/// The absolute `file://` URI of a scan root, ending in `/` (the directory holding it, for a file).
fn root_uri(root: &Path) -> io::Result<String> {
    let mut abs = std::path::absolute(root)?;
    if abs.exists() && !abs.is_dir() {
        if let Some(parent) = abs.parent() {
            abs = parent.to_path_buf();
        }
    }
    let mut uri = file_uri(&abs);
    if !uri.ends_with('/') {
        uri.push('/');
    }
    Ok(uri)
}

#[cfg(unix)]
fn file_uri(abs: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    // An absolute path starts with '/', so this is "file:///…" (empty authority), whatever its bytes.
    format!("file://{}", percent_encode(abs.as_os_str().as_bytes(), b""))
}

#[cfg(not(unix))]
fn file_uri(abs: &Path) -> String {
    let text = abs.to_string_lossy().replace('\\', "/");
    // `\\?\C:\x` → `C:/x`; `\\?\UNC\host\share` → `//host/share`; `\\host\share` stays a network path.
    let text = if let Some(unc) = text.strip_prefix("//?/UNC/") {
        format!("//{unc}")
    } else if let Some(rest) = text.strip_prefix("//?/") {
        rest.to_string()
    } else {
        text.clone()
    };
    match text.strip_prefix("//") {
        Some(unc) => format!("file://{}", percent_encode(unc.as_bytes(), b"")),
        None => format!("file:///{}", percent_encode(text.as_bytes(), b":")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Format, Hashes, Report};
    use crate::scan::{AppliedSuppression, LevelCounts};
    use crate::verdict::{Reason, Verdict};

    /// Validate `text` against the official SARIF 2.1.0 schema in `tests/data/schemas`, as draft-04 (what
    /// the schema declares) and as draft-07 (which also checks the `uri-reference` format of artifact URIs),
    /// with format validation on. The schema's own references are all internal, and jsonschema is built
    /// without its HTTP and file resolvers, so nothing is fetched.
    pub(crate) fn validate(text: &str) {
        let errors = schema_errors(text);
        assert!(errors.is_empty(), "SARIF output invalid:\n{}\n{text}", errors.join("\n"));
    }

    /// The schema violations of `text`, each prefixed by the draft it was found under.
    fn schema_errors(text: &str) -> Vec<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/schemas/sarif-schema-2.1.0.json");
        let text_of_schema = std::fs::read_to_string(path).unwrap();
        // rtm.5's two `language` patterns have an unbalanced `]`, which is no valid ECMA-262 regex for
        // jsonschema (the schema fails its own meta-schema); the OASIS errata schema fixed it to this. filerep
        // never writes `language`, so the fix changes nothing that is checked.
        const BROKEN: &str = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
        assert_eq!(text_of_schema.matches(BROKEN).count(), 2, "the schema is the rtm.5 text");
        let schema: Value =
            serde_json::from_str(&text_of_schema.replace(BROKEN, r#""^[a-zA-Z]{2}(-[a-zA-Z]{2})?$""#)).unwrap();
        let instance: Value = serde_json::from_str(text).expect("the SARIF output is JSON");
        let mut errors = Vec::new();
        for draft in [jsonschema::Draft::Draft4, jsonschema::Draft::Draft7] {
            let validator = jsonschema::options()
                .with_draft(draft)
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("the SARIF schema compiles as {draft:?}: {e}"));
            errors.extend(validator.iter_errors(&instance).map(|e| format!("{draft:?} {}: {e}", e.instance_path())));
        }
        errors
    }

    #[test]
    fn the_schema_check_catches_mistakes() {
        let text = render(&roots(), &entries(), &summary());
        let mut doc: Value = serde_json::from_str(&text).unwrap();
        doc["runs"][0]["results"][0]["level"] = Value::from("fatal");
        let errors = schema_errors(&doc.to_string());
        assert!(errors.iter().any(|e| e.contains("/runs/0/results/0/level")), "{errors:?}");

        // An artifact URI that is not a URI reference (an unencoded space and '#'s) is caught as draft-07.
        let mut doc: Value = serde_json::from_str(&text).unwrap();
        doc["runs"][0]["artifacts"][0]["location"]["uri"] = Value::from("a b#c#d");
        let errors = schema_errors(&doc.to_string());
        assert!(
            errors.iter().any(|e| e.starts_with("Draft7") && e.contains("/artifacts/0/location/uri")),
            "{errors:?}"
        );
    }

    fn finding(rule: &str, severity: Severity, level: Option<Level>) -> Finding {
        Finding {
            rule: rule.into(),
            kind: if level.is_some() { FindingKind::Verdict } else { FindingKind::Hardening },
            level,
            severity,
            message: format!("{rule} message"),
            source: "file".into(),
            fails: severity >= Severity::Warning,
            suppression: None,
            baseline: None,
        }
    }

    fn report(path: &str, level: Level) -> Report {
        Report {
            path: path.into(),
            size: Some(1024),
            format: Format::Pe,
            fully_analysed: true,
            hashes: Hashes {
                md5: Some("0".repeat(32)),
                sha1: Some("1".repeat(40)),
                sha256: Some("2".repeat(64)),
                ..Default::default()
            },
            verdict: Verdict {
                level,
                reasons: vec![Reason {
                    id: "x".into(),
                    level,
                    message: "m".into(),
                    source: "file".into(),
                    source_version: None,
                }],
            },
            ..Default::default()
        }
    }

    fn entry(rel: &str, level: Level, findings: Vec<Finding>) -> ScanEntry {
        ScanEntry {
            relative_path: rel.into(),
            root: "dist".into(),
            report: report(&format!("dist/{rel}"), level),
            findings,
        }
    }

    /// The entries of the unit tests: a clean file, a malicious one with a suppressed and an expired
    /// suppression, a read error, a hostile one, and one whose findings are all unchanged since the baseline.
    fn entries() -> Vec<(usize, ScanEntry)> {
        let clean = entry("bin/clean.exe", Level::Unknown, vec![]);

        let mut suppressed = finding("packed", Severity::Warning, Some(Level::Suspicious));
        suppressed.suppression = Some(AppliedSuppression {
            matched_by: "path bin/**".into(),
            justification: "our installer is packed with UPX on purpose".into(),
            expires: Some("2099-12-31".into()),
            expired: false,
        });
        let mut expired = finding("high-entropy-code", Severity::Warning, Some(Level::Suspicious));
        expired.suppression = Some(AppliedSuppression {
            matched_by: format!("sha256 {}", "2".repeat(64)),
            justification: "was fine last year".into(),
            expires: Some("2020-01-31".into()),
            expired: true,
        });
        let mut new = finding("known-malicious", Severity::Error, Some(Level::Malicious));
        new.source = "malwarebazaar".into();
        new.baseline = Some(BaselineState::New);
        let malicious = entry("bin/evil.exe", Level::Malicious, vec![new, suppressed, expired]);

        let mut error = entry("bin/locked.exe", Level::Unknown, vec![]);
        error.report.error = Some("permission denied (os error 13)".into());
        error.report.size = None;
        error.report.hashes = Hashes::default();

        let hostile_name = "we\"ird dir/na me #1 %41\n\u{1b}[31mred\u{202e}ñ日本:x?.exe";
        let mut hostile_finding = finding("pe-aslr", Severity::Note, None);
        hostile_finding.message = "\"quoted\" \\ back\nslash \u{0}\u{1b}[2J </script> ${x}".into();
        let mut hostile = entry(hostile_name, Level::Suspicious, vec![hostile_finding]);
        hostile.report.path = format!("other/{hostile_name}");
        hostile.report.error = None;

        let mut unchanged = finding("known-malicious", Severity::Error, Some(Level::Malicious));
        unchanged.baseline = Some(BaselineState::Unchanged);
        let old = entry("bin/old.exe", Level::Malicious, vec![unchanged]);

        vec![(0, clean), (0, malicious), (0, error), (1, hostile), (0, old)]
    }

    fn summary() -> Summary {
        Summary {
            files_seen: 5,
            files_checked: 5,
            errors: 1,
            levels: LevelCounts { unknown: 2, suspicious: 1, malicious: 2, ..Default::default() },
            findings: 3,
            failing: 2,
            suppressed: 1,
            unchanged: 1,
            expired_suppressions: 1,
            fail_on: Level::Malicious,
            exit_status: 1,
            ..Default::default()
        }
    }

    fn render(roots: &[PathBuf], entries: &[(usize, ScanEntry)], summary: &Summary) -> String {
        let mut out = Vec::new();
        let mut w = SarifWriter::begin(&mut out, roots).unwrap();
        for (root, e) in entries {
            w.entry(&mut out, *root, e).unwrap();
        }
        w.finish(&mut out, summary).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn roots() -> Vec<PathBuf> {
        vec![PathBuf::from("dist"), PathBuf::from("/tmp/other root #2")]
    }

    #[test]
    fn a_scan_becomes_valid_sarif_with_one_result_per_written_finding() {
        let text = render(&roots(), &entries(), &summary());
        validate(&text);
        assert!(text.ends_with("}]}\n"));
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["version"], "2.1.0");
        assert_eq!(doc["$schema"], SCHEMA_URI);
        let run = &doc["runs"][0];
        let results = run["results"].as_array().unwrap();
        // 3 for the malicious file, 1 for the hostile one; the unchanged finding is not written.
        assert_eq!(results.len(), 4, "{results:#?}");
        assert!(results.iter().all(|r| r["kind"] == "fail"));

        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["known-malicious", "packed", "high-entropy-code", "pe-aslr"], "first-use order");
        for r in results {
            let i = r["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[i]["id"], r["ruleId"]);
        }
        let km = &rules[0];
        assert_eq!(km["name"], "KnownMalicious");
        assert_eq!(km["defaultConfiguration"]["level"], "error");
        assert_eq!(km["properties"]["tags"], json!(["security", "reputation"]));
        assert_eq!(km["properties"]["security-severity"], "9.5");
        assert!(km["help"]["markdown"].as_str().unwrap().starts_with("**Known malware**"));
        assert_eq!(rules[3]["properties"]["tags"], json!(["security", "hardening"]));
        assert_eq!(rules[3]["defaultConfiguration"]["level"], "note");
        let driver = &run["tool"]["driver"];
        assert_eq!(driver["name"], "filerep");
        assert_eq!(driver["semanticVersion"], env!("CARGO_PKG_VERSION"));

        // The malicious file: error level, new since the baseline, the source and verdict in the properties.
        let evil = &results[0];
        assert_eq!(evil["level"], "error");
        assert_eq!(evil["baselineState"], "new");
        assert_eq!(evil["message"]["text"], "known-malicious message");
        let loc = &evil["locations"][0]["physicalLocation"]["artifactLocation"];
        assert_eq!(loc["uri"], "bin/evil.exe");
        assert_eq!(loc["uriBaseId"], "ROOT0");
        assert_eq!(loc["index"], 0);
        assert_eq!(evil["properties"]["source"], "malwarebazaar");
        assert_eq!(evil["properties"]["verdict"], "malicious");
        assert_eq!(evil["properties"]["findingKind"], "verdict");
        assert_eq!(evil["properties"]["fails"], true);
        assert_eq!(evil["properties"]["sha256"], "2".repeat(64));
        assert_eq!(evil["partialFingerprints"][FINGERPRINT_KEY], fingerprint("known-malicious", "bin/evil.exe"));
        assert!(evil.get("suppressions").is_none());

        // A suppressed finding carries its suppression; an expired one does not, and says it expired.
        let packed = &results[1];
        let s = &packed["suppressions"][0];
        assert_eq!(s["kind"], "external");
        assert_eq!(s["status"], "accepted");
        assert_eq!(s["justification"], "our installer is packed with UPX on purpose");
        assert_eq!(s["properties"]["matchedBy"], "path bin/**");
        assert_eq!(s["properties"]["expires"], "2099-12-31");
        assert!(packed.get("baselineState").is_none());
        let entropy = &results[2];
        assert!(entropy.get("suppressions").is_none());
        let msg = entropy["message"]["text"].as_str().unwrap();
        assert!(msg.starts_with("high-entropy-code message. "), "{msg}");
        assert!(msg.contains("expired on 2020-01-31 and no longer applies"), "{msg}");
        assert_eq!(entropy["properties"]["expiredSuppression"]["expires"], "2020-01-31");

        // The hostile file: its name percent-encoded under the second root, its message intact.
        let hostile = &results[3];
        let loc = &hostile["locations"][0]["physicalLocation"]["artifactLocation"];
        assert_eq!(loc["uriBaseId"], "ROOT1");
        assert_eq!(loc["index"], 1);
        assert_eq!(
            loc["uri"],
            "we%22ird%20dir/na%20me%20%231%20%2541%0A%1B%5B31mred%E2%80%AE%C3%B1%E6%97%A5%E6%9C%AC%3Ax%3F.exe"
        );
        assert_eq!(hostile["message"]["text"], "\"quoted\" \\ back\nslash \u{0}\u{1b}[2J </script> ${x}");
        assert_eq!(hostile["level"], "note");
        assert_eq!(hostile["properties"]["findingKind"], "hardening");

        // Artifacts: only the files with results, with their digests.
        let artifacts = run["artifacts"].as_array().unwrap();
        assert_eq!(artifacts.len(), 2);
        assert_eq!(artifacts[0]["location"]["uri"], "bin/evil.exe");
        assert_eq!(artifacts[0]["length"], 1024);
        assert_eq!(artifacts[0]["hashes"]["sha-256"], "2".repeat(64));
        assert_eq!(artifacts[0]["hashes"]["sha-1"], "1".repeat(40));
        assert_eq!(artifacts[0]["hashes"]["md5"], "0".repeat(32));
        assert_eq!(artifacts[1]["location"]["uriBaseId"], "ROOT1");

        // The read error is a notification, and the run did not execute successfully.
        let inv = &run["invocations"][0];
        assert_eq!(inv["executionSuccessful"], false);
        assert_eq!(inv["exitCode"], 1);
        let notes = inv["toolExecutionNotifications"].as_array().unwrap();
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0]["level"], "error");
        assert_eq!(notes[0]["message"]["text"], "dist/bin/locked.exe: permission denied (os error 13)");
        assert_eq!(notes[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "bin/locked.exe");
        assert_eq!(inv["properties"]["summary"]["expired_suppressions"], 1);

        // Roots: absolute file URIs ending in '/'.
        let bases = &run["originalUriBaseIds"];
        let root0 = bases["ROOT0"]["uri"].as_str().unwrap();
        assert!(root0.starts_with("file:///") && root0.ends_with("/dist/"), "{root0}");
        assert_eq!(bases["ROOT1"]["uri"], "file:///tmp/other%20root%20%232/");
        assert_eq!(bases["ROOT0"]["description"]["text"], "scan root dist");
    }

    #[test]
    fn an_empty_scan_is_valid_sarif() {
        let ok = Summary { files_seen: 0, exit_status: 0, ..Default::default() };
        let text = render(&[PathBuf::from(".")], &[], &ok);
        validate(&text);
        let doc: Value = serde_json::from_str(&text).unwrap();
        let run = &doc["runs"][0];
        assert_eq!(run["results"], json!([]));
        assert_eq!(run["artifacts"], json!([]));
        assert_eq!(run["tool"]["driver"]["rules"], json!([]));
        assert_eq!(run["invocations"][0]["executionSuccessful"], true);
        assert_eq!(run["invocations"][0]["exitCode"], 0);
        // No roots at all is still a document.
        validate(&render(&[], &[], &ok));
    }

    #[test]
    fn a_root_index_out_of_range_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        let mut w = SarifWriter::begin(&mut out, &[PathBuf::from("a")]).unwrap();
        let e = entry("x.exe", Level::Unknown, vec![finding("packed", Severity::Warning, Some(Level::Suspicious))]);
        assert_eq!(w.entry(&mut out, 1, &e).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_file_root_is_based_at_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.exe");
        std::fs::write(&file, b"MZ").unwrap();
        let uri = root_uri(&file).unwrap();
        assert!(uri.ends_with('/') && !uri.contains("app.exe"), "{uri}");
        let dir_uri = root_uri(dir.path()).unwrap();
        assert_eq!(uri, dir_uri);
    }

    #[test]
    fn fingerprints_depend_on_rule_and_path_only() {
        let a = fingerprint("known-malicious", "bin/app.exe");
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(a, fingerprint("known-malicious", "bin/app.exe"), "stable");
        // SHA-256("known-malicious\0bin/app.exe"), computed with `printf 'known-malicious\0bin/app.exe' |
        // sha256sum`: the fingerprint of released versions must never change.
        assert_eq!(a, "b5eb62a10d96929f6e9161af0b021c80");
        assert_ne!(a, fingerprint("packed", "bin/app.exe"));
        assert_ne!(a, fingerprint("known-malicious", "bin/app2.exe"));
        // The NUL separates: "ab" + "c" is not "a" + "bc".
        assert_ne!(fingerprint("ab", "c"), fingerprint("a", "bc"));

        // The same file rebuilt (other content and digests) keeps its fingerprint in the output.
        let mut e = entry(
            "bin/app.exe",
            Level::Malicious,
            vec![finding("known-malicious", Severity::Error, Some(Level::Malicious))],
        );
        let first = render(&[PathBuf::from("dist")], &[(0, e.clone())], &summary());
        e.report.hashes.sha256 = Some("f".repeat(64));
        e.report.size = Some(99);
        let second = render(&[PathBuf::from("dist")], &[(0, e)], &summary());
        let fp = |t: &str| {
            let v: Value = serde_json::from_str(t).unwrap();
            v["runs"][0]["results"][0]["partialFingerprints"][FINGERPRINT_KEY].clone()
        };
        assert_eq!(fp(&first), fp(&second));
        assert_eq!(fp(&first), a.as_str());
    }

    #[test]
    fn uris_are_percent_encoded_references() {
        assert_eq!(sarif_uri("bin/app.exe"), "bin/app.exe");
        assert_eq!(sarif_uri("my dir/a b.exe"), "my%20dir/a%20b.exe");
        assert_eq!(sarif_uri("a#b%c?d"), "a%23b%25c%3Fd");
        assert_eq!(sarif_uri("c:evil"), "c%3Aevil", "no scheme in the first segment");
        assert_eq!(sarif_uri("ñ"), "%C3%B1");
        assert_eq!(sarif_uri("日"), "%E6%97%A5");
        assert_eq!(sarif_uri("a\nb\"c\\d"), "a%0Ab%22c%5Cd");
        assert_eq!(sarif_uri("x[1]{2}<3>|^`"), "x%5B1%5D%7B2%7D%3C3%3E%7C%5E%60");
        assert_eq!(sarif_uri("keep-._~!$&'()*+,;=@"), "keep-._~!$&'()*+,;=@");
        // Every encoding decodes back to the path.
        for p in ["bin/app.exe", "we\"ird dir/na me #1 %41\nñ日本:x?.exe", "%%%"] {
            let enc = sarif_uri(p);
            assert!(enc.is_ascii() && !enc.contains(' '));
            let mut bytes = Vec::new();
            let mut it = enc.bytes();
            while let Some(b) = it.next() {
                if b == b'%' {
                    let hi = it.next().unwrap();
                    let lo = it.next().unwrap();
                    bytes.push(u8::from_str_radix(std::str::from_utf8(&[hi, lo]).unwrap(), 16).unwrap());
                } else {
                    bytes.push(b);
                }
            }
            assert_eq!(String::from_utf8(bytes).unwrap(), p);
        }
    }
}
