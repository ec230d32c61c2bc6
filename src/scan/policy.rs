//! The scan policy (`filerep.toml`): which hardening checks count, the `--fail-on` level, and suppressions.
//!
//! ```toml
//! fail_on = "suspicious"          # optional; `--fail-on` overrides it
//!
//! [checks]                        # hardening check id = "off" | "warn" | "require"
//! pe-aslr = "require"
//! pe-signed = "warn"
//!
//! [[suppress]]                    # by SHA-256 or by path glob (relative to the scan root)
//! path = "third_party/**"
//! justification = "vendored, rebuilt upstream"   # mandatory
//! expires = 2027-01-31            # optional; an expired suppression no longer suppresses, and says so
//! rules = ["pe-cfg"]              # optional; default: every rule
//! ```
//!
//! Unknown keys, unknown check ids, an empty justification or a bad date are errors naming the file and the
//! place: a policy that silently ignores a typo would pass a build it should fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;

use crate::verdict::Level;

/// The policy file name looked for in the scanned repository.
pub const FILE_NAME: &str = "filerep.toml";

/// A policy file is read whole; anything larger is not a policy.
const MAX_POLICY_BYTES: u64 = 1 << 20;

/// What a policy does with one hardening check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Not reported.
    #[default]
    Off,
    /// Reported as a note; does not fail the run.
    Warn,
    /// Reported as a warning; fails the run.
    Require,
}

/// Why a policy could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The policy file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Too large to be a policy.
    #[error("{0}: larger than 1 MiB; not a policy file")]
    TooLarge(String),
    /// Not valid TOML, or not the policy's shape.
    #[error("{path}: {message}")]
    Invalid {
        /// The policy file.
        path: String,
        /// What is wrong, with the line.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    fail_on: Option<String>,
    #[serde(default)]
    checks: BTreeMap<String, Mode>,
    #[serde(default)]
    suppress: Vec<RawSuppression>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuppression {
    sha256: Option<String>,
    path: Option<String>,
    justification: Option<String>,
    expires: Option<toml::Value>,
    rules: Option<Vec<String>>,
}

/// What a suppression matches.
#[derive(Debug, Clone)]
pub enum Target {
    /// A file's SHA-256 (lower-case hex).
    Sha256(String),
    /// A glob over the path relative to the scan root (`/` separators; `**` crosses directories).
    Path {
        /// The glob as written.
        glob: String,
        /// The compiled matcher.
        matcher: GlobMatcher,
    },
}

/// One suppression.
#[derive(Debug, Clone)]
pub struct Suppression {
    /// What it matches.
    pub target: Target,
    /// Why (mandatory).
    pub justification: String,
    /// Expiry date, `YYYY-MM-DD`; the suppression stops suppressing after that day (UTC).
    pub expires: Option<String>,
    /// Only these rules (every rule when empty).
    pub rules: Vec<String>,
}

impl Suppression {
    /// `sha256 <hex>` or `path <glob>`.
    pub fn matched_by(&self) -> String {
        match &self.target {
            Target::Sha256(h) => format!("sha256 {h}"),
            Target::Path { glob, .. } => format!("path {glob}"),
        }
    }

    /// Does it apply to this rule on this file?
    pub fn applies(&self, rule: &str, relative_path: &str, sha256: Option<&str>) -> bool {
        if !self.rules.is_empty() && !self.rules.iter().any(|r| r == rule) {
            return false;
        }
        match &self.target {
            Target::Sha256(h) => sha256.is_some_and(|s| s.eq_ignore_ascii_case(h)),
            Target::Path { matcher, .. } => matcher.is_match(relative_path),
        }
    }

    /// True when `today` (`YYYY-MM-DD`) is after the expiry date.
    pub fn expired(&self, today: &str) -> bool {
        self.expires.as_deref().is_some_and(|e| today > e)
    }
}

/// A parsed policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The file it came from (None for the built-in default).
    pub path: Option<PathBuf>,
    /// `fail_on` from the file.
    pub fail_on: Option<Level>,
    /// Check modes (checks not listed are off).
    pub checks: BTreeMap<String, Mode>,
    /// Suppressions, in file order.
    pub suppressions: Vec<Suppression>,
}

impl Policy {
    /// Read and validate a policy file.
    pub fn load(path: &Path) -> Result<Policy, Error> {
        let name = path.display().to_string();
        let read_err = |source| Error::Read { path: name.clone(), source };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        if meta.len() > MAX_POLICY_BYTES {
            return Err(Error::TooLarge(name));
        }
        let text = std::fs::read(path).map_err(read_err)?;
        let text = String::from_utf8(text)
            .map_err(|_| Error::Invalid { path: name.clone(), message: "not UTF-8 text".to_string() })?;
        let mut policy = Policy::parse(&text).map_err(|message| Error::Invalid { path: name, message })?;
        policy.path = Some(path.to_path_buf());
        Ok(policy)
    }

    /// Parse policy text; the error is one line (TOML's own message names the line and column).
    pub fn parse(text: &str) -> Result<Policy, String> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
        let fail_on =
            raw.fail_on.as_deref().map(|s| s.parse::<Level>().map_err(|e| format!("fail_on: {e}"))).transpose()?;
        for id in raw.checks.keys() {
            if crate::hardening::info(id).is_none() {
                let known: Vec<&str> = crate::hardening::CHECKS.iter().map(|c| c.id).collect();
                return Err(format!("[checks]: unknown check '{id}' (known: {})", known.join(", ")));
            }
        }
        let mut suppressions = Vec::with_capacity(raw.suppress.len());
        for (i, s) in raw.suppress.into_iter().enumerate() {
            let at = format!("[[suppress]] #{}", i + 1);
            let target = match (s.sha256, s.path) {
                (Some(h), None) => {
                    let h = h.trim().to_ascii_lowercase();
                    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(format!("{at}: sha256 must be 64 hex digits, got '{h}'"));
                    }
                    Target::Sha256(h)
                }
                (None, Some(glob)) => {
                    let matcher = GlobBuilder::new(&glob)
                        .literal_separator(true)
                        .backslash_escape(true)
                        .build()
                        .map_err(|e| format!("{at}: bad path glob '{glob}': {}", e.kind()))?
                        .compile_matcher();
                    Target::Path { glob, matcher }
                }
                (Some(_), Some(_)) => return Err(format!("{at}: give either sha256 or path, not both")),
                (None, None) => return Err(format!("{at}: needs sha256 or path")),
            };
            let justification = s.justification.map(|j| j.trim().to_string()).unwrap_or_default();
            if justification.is_empty() {
                return Err(format!("{at}: a justification is mandatory"));
            }
            let expires = s.expires.map(|v| parse_date(&v).map_err(|e| format!("{at}: expires: {e}"))).transpose()?;
            suppressions.push(Suppression { target, justification, expires, rules: s.rules.unwrap_or_default() });
        }
        Ok(Policy { path: None, fail_on, checks: raw.checks, suppressions })
    }

    /// The mode of a check.
    pub fn mode(&self, id: &str) -> Mode {
        self.checks.get(id).copied().unwrap_or_default()
    }

    /// The first suppression that applies to this finding.
    pub fn suppression_for(&self, rule: &str, relative_path: &str, sha256: Option<&str>) -> Option<&Suppression> {
        self.suppressions.iter().find(|s| s.applies(rule, relative_path, sha256))
    }
}

/// Find `filerep.toml` for a scan root: in the root (or the directory of a file root) and its parents, up to
/// and including the repository's top (the first directory with a `.git`).
pub fn discover(root: &Path) -> Option<PathBuf> {
    let start = if root.is_dir() { root.to_path_buf() } else { root.parent()?.to_path_buf() };
    let start = std::fs::canonicalize(&start).unwrap_or(start);
    for dir in start.ancestors() {
        let candidate = dir.join(FILE_NAME);
        if candidate.is_file() {
            return Some(candidate);
        }
        if dir.join(".git").exists() {
            break;
        }
    }
    None
}

/// A date as `YYYY-MM-DD`: a TOML date (`2027-01-31`) or a string holding one.
fn parse_date(v: &toml::Value) -> Result<String, String> {
    let text = match v {
        toml::Value::Datetime(d) => match (d.date, d.time) {
            (Some(date), None) => return Ok(format!("{:04}-{:02}-{:02}", date.year, date.month, date.day)),
            _ => return Err(format!("'{d}' is not a plain date (YYYY-MM-DD)")),
        },
        toml::Value::String(s) => s.trim(),
        other => return Err(format!("expected a date (YYYY-MM-DD), got {}", other.type_str())),
    };
    let ok = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() })
        && {
            let month: u32 = text[5..7].parse().unwrap_or(0);
            let day: u32 = text[8..10].parse().unwrap_or(0);
            (1..=12).contains(&month) && (1..=31).contains(&day)
        };
    if ok { Ok(text.to_string()) } else { Err(format!("'{text}' is not a date (YYYY-MM-DD)")) }
}

/// Today's date (UTC) as `YYYY-MM-DD`.
pub fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    crate::analysis::pe::rfc3339(secs as i64)[..10].to_string()
}

fn one_line(s: &str) -> String {
    // TOML errors span several lines (a caret under the offending text); keep the message and the line.
    let mut parts = s.lines().map(str::trim).filter(|l| !l.is_empty() && !l.chars().all(|c| c == '|' || c == '^'));
    let mut out = parts.next().unwrap_or("invalid TOML").trim_end_matches(':').to_string();
    let rest: Vec<&str> = parts.filter(|l| !l.starts_with('|') && !l.starts_with("-->")).collect();
    if let Some(last) = rest.last() {
        out.push_str(": ");
        out.push_str(last);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Policy::parse(text).unwrap_err()
    }

    #[test]
    fn a_full_policy_parses() {
        let p = Policy::parse(
            r#"
fail_on = "suspicious"
[checks]
pe-aslr = "require"
pe-signed = "warn"
elf-relro = "off"
[[suppress]]
path = "third_party/**"
justification = "vendored"
expires = 2027-01-31
[[suppress]]
sha256 = "AA00000000000000000000000000000000000000000000000000000000000000"
justification = "known vendor driver"
expires = "2020-01-01"
rules = ["known-vulnerable"]
"#,
        )
        .unwrap();
        assert_eq!(p.fail_on, Some(Level::Suspicious));
        assert_eq!(p.mode("pe-aslr"), Mode::Require);
        assert_eq!(p.mode("pe-signed"), Mode::Warn);
        assert_eq!(p.mode("elf-relro"), Mode::Off);
        assert_eq!(p.mode("pe-nx"), Mode::Off);
        assert_eq!(p.suppressions.len(), 2);
        let s0 = &p.suppressions[0];
        assert_eq!(s0.expires.as_deref(), Some("2027-01-31"));
        assert!(s0.applies("pe-cfg", "third_party/a/b.dll", None));
        assert!(!s0.applies("pe-cfg", "src/third_party/b.dll", None));
        assert!(!s0.expired("2027-01-31") && s0.expired("2027-02-01"));
        let s1 = &p.suppressions[1];
        let h = format!("aa{}", "0".repeat(62));
        assert!(s1.applies("known-vulnerable", "x", Some(&h)));
        assert!(!s1.applies("known-malicious", "x", Some(&h)), "limited to its rules");
        assert!(!s1.applies("known-vulnerable", "x", Some(&"b".repeat(64))));
        assert_eq!(s1.matched_by(), format!("sha256 {h}"));
    }

    #[test]
    fn mistakes_are_errors_naming_the_place() {
        assert!(err("fail_onn = \"malicious\"").contains("fail_onn"), "{}", err("fail_onn = \"malicious\""));
        assert!(err("fail_on = \"bad\"").contains("unknown level 'bad'"));
        assert!(err("[checks]\npe-aslrr = \"require\"").contains("unknown check 'pe-aslrr'"));
        assert!(err("[checks]\npe-aslr = \"must\"").contains("must"));
        assert!(err("[[suppress]]\npath = \"a\"").contains("justification is mandatory"));
        assert!(err("[[suppress]]\npath = \"a\"\njustification = \"  \"").contains("justification is mandatory"));
        assert!(err("[[suppress]]\njustification = \"x\"").contains("needs sha256 or path"));
        assert!(err("[[suppress]]\npath = \"a\"\nsha256 = \"b\"\njustification = \"x\"").contains("not both"));
        assert!(err("[[suppress]]\nsha256 = \"abc\"\njustification = \"x\"").contains("64 hex digits"));
        assert!(err("[[suppress]]\npath = \"a[\"\njustification = \"x\"").contains("bad path glob"));
        assert!(
            err("[[suppress]]\npath = \"a\"\njustification = \"x\"\nexpires = \"2027-13-01\"").contains("not a date")
        );
        assert!(
            err("[[suppress]]\npath = \"a\"\njustification = \"x\"\nexpires = 2027-01-01T00:00:00Z")
                .contains("plain date")
        );
        assert!(err("[[suppress]]\npath = \"a\"\njustification = \"x\"\nreason = \"y\"").contains("reason"));
        assert!(err("fail_on = ").lines().count() == 1);
        for e in [err("fail_onn = 1"), err("[checks]\npe-aslr = \"must\""), err("x = [")] {
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn today_is_a_date() {
        let t = today();
        assert_eq!(t.len(), 10);
        assert!(t.as_str() > "2024-01-01");
    }
}
