//! `filerep scan`: what a CI run reports about each artifact, beyond its report.
//!
//! A scan turns each file's [`Report`] into [`Finding`]s: verdict reasons at `suspicious` or above, and the
//! hardening checks the policy enables or requires. The policy ([`policy`]) decides which checks count, the
//! `--fail-on` level and the suppressions; a baseline ([`baseline`]) hides what an earlier run already
//! reported. Renderers (table, JSON, JSON lines, CSV, [`sarif`]) are pure functions of these values.

pub mod baseline;
pub mod csv;
pub mod policy;
pub mod rules;
pub mod sarif;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::report::Report;
use crate::verdict::Level;

/// What kind of fact a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A verdict reason (`known-malicious`, `signature-invalid`, …).
    Verdict,
    /// A hardening check the policy enables or requires (`pe-aslr`, `elf-relro`, …).
    Hardening,
}

/// The SARIF level of a finding: `error` for malicious, `warning` for vulnerable, suspicious and required
/// hardening checks, `note` for hardening checks the policy only enables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Informational (an enabled, not required, hardening check).
    Note,
    /// Vulnerable, suspicious, or a required hardening check.
    Warning,
    /// Malicious.
    Error,
}

impl Severity {
    /// The SARIF spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Where a finding stands against the baseline (`--baseline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BaselineState {
    /// Not in the baseline.
    New,
    /// In the baseline with the same rule and level (hidden from the output unless asked).
    Unchanged,
}

/// A suppression from the policy that matched a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AppliedSuppression {
    /// What matched: `sha256 <hex>` or `path <glob>`.
    pub matched_by: String,
    /// The mandatory justification from the policy.
    pub justification: String,
    /// The expiry date (YYYY-MM-DD), when the suppression has one.
    pub expires: Option<String>,
    /// True when the expiry date has passed: the suppression no longer suppresses, and says so.
    pub expired: bool,
}

/// One finding about one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// The rule: a verdict reason id or a hardening check id.
    pub rule: String,
    /// Where the rule comes from.
    pub kind: FindingKind,
    /// The verdict level the reason supports (verdict findings); null for hardening findings.
    pub level: Option<Level>,
    /// The SARIF level.
    pub severity: Severity,
    /// One line for humans.
    pub message: String,
    /// `file` or the data source the fact comes from.
    pub source: String,
    /// True when this finding makes the run fail (at or above `--fail-on`, or a required check), unless it is
    /// suppressed.
    pub fails: bool,
    /// The policy suppression that matched, if any (an expired one is listed with `expired: true` and does
    /// not suppress).
    pub suppression: Option<AppliedSuppression>,
    /// Against the baseline; null without `--baseline`.
    pub baseline: Option<BaselineState>,
}

impl Finding {
    /// Suppressed by a suppression that has not expired.
    pub fn is_suppressed(&self) -> bool {
        self.suppression.as_ref().is_some_and(|s| !s.expired)
    }

    /// Counts towards the exit status: fails, not suppressed, and not unchanged since the baseline.
    pub fn counts(&self) -> bool {
        self.fails && !self.is_suppressed() && self.baseline != Some(BaselineState::Unchanged)
    }
}

/// One scanned file: its report, flattened, and the scan's findings about it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ScanEntry {
    /// The path relative to the scan root it was found under, with `/` separators (the SARIF artifact URI).
    pub relative_path: String,
    /// The scan root (as given on the command line) the file was found under.
    pub root: String,
    /// The file's report, as `filerep check --json` gives it.
    #[serde(flatten)]
    pub report: Report,
    /// Findings, the most severe first.
    pub findings: Vec<Finding>,
}

impl ScanEntry {
    /// True when a finding of this file makes the run fail.
    pub fn fails(&self) -> bool {
        self.findings.iter().any(Finding::counts)
    }
}

/// Counts for the end of a scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    /// Files looked at (executables and skipped files).
    pub files_seen: u64,
    /// Files checked (executables by their magic bytes, or every file with `--all-files`).
    pub files_checked: u64,
    /// Files skipped because their first bytes are not an executable's.
    pub skipped_not_executable: u64,
    /// Files that could not be read.
    pub errors: u64,
    /// Checked files per verdict level.
    pub levels: LevelCounts,
    /// Findings reported (not suppressed, not unchanged since the baseline).
    pub findings: u64,
    /// Findings that fail the run.
    pub failing: u64,
    /// Findings suppressed by the policy.
    pub suppressed: u64,
    /// Findings hidden because the baseline has them.
    pub unchanged: u64,
    /// Suppressions that matched but had expired.
    pub expired_suppressions: u64,
    /// The `--fail-on` level in force.
    pub fail_on: Level,
    /// The policy file used, if any.
    pub policy: Option<String>,
    /// The exit status of the run.
    pub exit_status: u8,
}

/// Checked files per verdict level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LevelCounts {
    /// Known good.
    pub good: u64,
    /// Unknown.
    pub unknown: u64,
    /// Suspicious.
    pub suspicious: u64,
    /// Vulnerable.
    pub vulnerable: u64,
    /// Malicious.
    pub malicious: u64,
}

impl LevelCounts {
    /// Count one more file at this level.
    pub fn add(&mut self, level: Level) {
        match level {
            Level::Good => self.good += 1,
            Level::Unknown => self.unknown += 1,
            Level::Suspicious => self.suspicious += 1,
            Level::Vulnerable => self.vulnerable += 1,
            Level::Malicious => self.malicious += 1,
        }
    }
}

/// What turns a report into findings.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The policy (checks, suppressions).
    pub policy: policy::Policy,
    /// Files at or above this verdict level fail the run.
    pub fail_on: Level,
    /// Today (`YYYY-MM-DD`, UTC), for suppression expiry.
    pub today: String,
}

/// The rule id of the finding that stands for a whole verdict at or above `--fail-on` when no reason at that
/// level is itself a finding (`--fail-on unknown` on a file nothing is known about).
pub const VERDICT_RULE: &str = "verdict-at-fail-on";

impl Rules {
    /// The findings about one file, most severe first (none for a file that could not be read).
    pub fn findings(&self, report: &Report, relative_path: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        if report.error.is_some() {
            return out;
        }
        for r in &report.verdict.reasons {
            if r.level < Level::Suspicious {
                continue;
            }
            out.push(Finding {
                rule: r.id.clone(),
                kind: FindingKind::Verdict,
                level: Some(r.level),
                severity: if r.level >= Level::Malicious { Severity::Error } else { Severity::Warning },
                message: r.message.clone(),
                source: r.source.clone(),
                fails: r.level >= self.fail_on,
                suppression: None,
                baseline: None,
            });
        }
        let level = report.verdict.level;
        if level >= self.fail_on && !out.iter().any(|f| f.fails) {
            let why = report.verdict.reasons.first().map_or("no reason given".to_string(), |r| r.message.clone());
            out.push(Finding {
                rule: VERDICT_RULE.to_string(),
                kind: FindingKind::Verdict,
                level: Some(level),
                severity: if level >= Level::Malicious { Severity::Error } else { Severity::Warning },
                message: format!("verdict {level}, at or above --fail-on {}: {why}", self.fail_on),
                source: "file".to_string(),
                fails: true,
                suppression: None,
                baseline: None,
            });
        }
        for c in &report.hardening {
            let mode = self.policy.mode(&c.id);
            if mode == policy::Mode::Off || c.status != crate::hardening::Status::Fail {
                continue;
            }
            let title = crate::hardening::info(&c.id).map_or(c.id.as_str(), |i| i.title);
            let required = mode == policy::Mode::Require;
            out.push(Finding {
                rule: c.id.clone(),
                kind: FindingKind::Hardening,
                level: None,
                severity: if required { Severity::Warning } else { Severity::Note },
                message: format!("{title}: {}", c.detail),
                source: "file".to_string(),
                fails: required,
                suppression: None,
                baseline: None,
            });
        }
        let sha256 = report.hashes.sha256.as_deref();
        for f in &mut out {
            if let Some(s) = self.policy.suppression_for(&f.rule, relative_path, sha256) {
                f.suppression = Some(AppliedSuppression {
                    matched_by: s.matched_by(),
                    justification: s.justification.clone(),
                    expires: s.expires.clone(),
                    expired: s.expired(&self.today),
                });
            }
        }
        out.sort_by(|a, b| b.severity.cmp(&a.severity).then(b.fails.cmp(&a.fails)));
        out
    }
}

/// The `filerep scan --format json` document (written as a stream: `files` first, `summary` last).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ScanDocument {
    /// Version of this JSON contract (integer, raised only on breaking change).
    pub schema_version: u32,
    /// Version of the filerep binary that wrote the document.
    pub filerep_version: String,
    /// The scan roots, as given.
    pub roots: Vec<String>,
    /// One entry per checked file (and per file or directory that could not be read), in path order.
    pub files: Vec<ScanEntry>,
    /// Counts and the exit status.
    pub summary: Summary,
}

/// The JSON Schema of the scan document, generated from the types.
pub fn schema() -> String {
    let schema = schemars::schema_for!(ScanDocument);
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardening::{Check, Status};
    use crate::verdict::{Reason, Verdict};

    fn reason(id: &str, level: Level) -> Reason {
        Reason { id: id.into(), level, message: format!("{id} msg"), source: "file".into(), source_version: None }
    }

    fn report(level: Level, reasons: Vec<Reason>) -> Report {
        let mut r = Report { verdict: Verdict { level, reasons }, ..Default::default() };
        r.hashes.sha256 = Some("ab".repeat(32));
        r.hardening = vec![
            Check { id: "pe-gs".into(), status: Status::Fail, detail: "no load configuration".into() },
            Check { id: "pe-nx".into(), status: Status::Fail, detail: "NX_COMPAT not set".into() },
            Check { id: "pe-aslr".into(), status: Status::Pass, detail: String::new() },
            Check { id: "pe-cfg".into(), status: Status::Fail, detail: "x".into() },
        ];
        r
    }

    fn rules(policy: &str, fail_on: Level) -> Rules {
        Rules { policy: policy::Policy::parse(policy).unwrap(), fail_on, today: "2026-06-01".into() }
    }

    #[test]
    fn verdict_reasons_and_checks_become_findings() {
        let r = report(
            Level::Malicious,
            vec![
                reason("known-malicious", Level::Malicious),
                reason("packed", Level::Suspicious),
                reason("windows-gui", Level::Unknown),
            ],
        );
        let rs = rules("[checks]\npe-gs = \"require\"\npe-nx = \"warn\"\npe-aslr = \"require\"", Level::Malicious);
        let f = rs.findings(&r, "a.exe");
        let ids: Vec<_> = f.iter().map(|f| (f.rule.as_str(), f.severity, f.fails)).collect();
        assert_eq!(
            ids,
            [
                ("known-malicious", Severity::Error, true),
                ("pe-gs", Severity::Warning, true),
                ("packed", Severity::Warning, false),
                ("pe-nx", Severity::Note, false),
            ]
        );
        assert!(f[1].message.contains("no load configuration"));
    }

    #[test]
    fn a_low_fail_on_fails_a_verdict_without_findings() {
        let r = report(Level::Unknown, vec![reason("windows-gui", Level::Unknown)]);
        let f = rules("", Level::Unknown).findings(&r, "a.exe");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, VERDICT_RULE);
        assert!(f[0].fails && f[0].message.contains("windows-gui msg"));
        assert!(rules("", Level::Suspicious).findings(&r, "a.exe").is_empty());
    }

    #[test]
    fn suppressions_apply_and_expire() {
        let r = report(Level::Malicious, vec![reason("known-malicious", Level::Malicious)]);
        let p = "[checks]\npe-gs = \"require\"\n[[suppress]]\npath = \"vendor/**\"\njustification = \"vendor\"\nrules = [\"pe-gs\"]\n\
                 [[suppress]]\nsha256 = \"ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB\"\njustification = \"old\"\nexpires = 2026-05-31\n";
        let f = rules(p, Level::Malicious).findings(&r, "vendor/x/a.exe");
        let gs = f.iter().find(|f| f.rule == "pe-gs").unwrap();
        assert!(gs.is_suppressed() && !gs.counts());
        let km = f.iter().find(|f| f.rule == "known-malicious").unwrap();
        let s = km.suppression.as_ref().unwrap();
        assert!(s.expired && !km.is_suppressed() && km.counts(), "expired on 2026-05-31, today is 2026-06-01");
        let f = rules(p, Level::Malicious).findings(&r, "src/a.exe");
        assert!(!f.iter().find(|f| f.rule == "pe-gs").unwrap().is_suppressed(), "path glob does not match");
    }

    #[test]
    fn unreadable_files_have_no_findings() {
        let mut r = report(Level::Unknown, vec![]);
        r.error = Some("permission denied".into());
        assert!(rules("", Level::Good).findings(&r, "a").is_empty());
    }

    #[test]
    fn scan_schema_has_not_drifted() {
        crate::report::json::assert_schema_current("schema/scan.schema.json", &schema());
    }
}
