//! The reputation store: what public data sets (and the user) say about a digest.
//!
//! This module owns the vocabulary shared by the store, its feed importers and the verdict: the [`Class`] of a
//! record, the [`DigestKind`]s a record is keyed by, a parsed [`Digest`], the metadata a source gives
//! ([`Meta`]) and one importable [`FeedRecord`]. The SQLite store is in [`sqlite`], the feed parsers in
//! [`feeds`], the in-place DCSO Bloom filter in [`bloom`]. Nothing here prints or reads the environment.

pub mod bloom;
pub mod build;
pub mod feeds;
pub mod fleet;
pub mod sqlite;

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a source says a file is. Ordered from the most benign to the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Known good: a curated inventory of genuine files (xcyclopedia, a user's allow list).
    KnownGood,
    /// Known published software (NSRL, CIRCL hashlookup): known, but not a statement that it is safe.
    KnownFile,
    /// Legitimate but abusable (a LOLDrivers vulnerable driver).
    Vulnerable,
    /// Known malware (MalwareBazaar, LOLDrivers malicious).
    Malicious,
}

impl Class {
    /// All classes.
    pub const ALL: [Class; 4] = [Class::KnownGood, Class::KnownFile, Class::Vulnerable, Class::Malicious];

    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::KnownGood => "known-good",
            Class::KnownFile => "known-file",
            Class::Vulnerable => "vulnerable",
            Class::Malicious => "malicious",
        }
    }

    /// The integer stored in the database (stable: never renumber).
    pub fn code(self) -> i64 {
        match self {
            Class::KnownGood => 1,
            Class::KnownFile => 2,
            Class::Vulnerable => 3,
            Class::Malicious => 4,
        }
    }

    /// The class of a stored integer.
    pub fn from_code(code: i64) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.code() == code)
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Class {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Class::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
            format!("unknown class '{s}' (expected one of known-good, known-file, vulnerable, malicious)")
        })
    }
}

/// Which digest of a file a record is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DigestKind {
    /// MD5 of the whole file.
    Md5,
    /// SHA-1 of the whole file.
    Sha1,
    /// SHA-256 of the whole file.
    Sha256,
    /// Authenticode image hash, SHA-1.
    AuthentihashSha1,
    /// Authenticode image hash, SHA-256.
    AuthentihashSha256,
    /// pefile-compatible import hash (weak evidence: many unrelated files share one).
    Imphash,
}

impl DigestKind {
    /// All kinds.
    pub const ALL: [DigestKind; 6] = [
        DigestKind::Md5,
        DigestKind::Sha1,
        DigestKind::Sha256,
        DigestKind::AuthentihashSha1,
        DigestKind::AuthentihashSha256,
        DigestKind::Imphash,
    ];

    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestKind::Md5 => "md5",
            DigestKind::Sha1 => "sha1",
            DigestKind::Sha256 => "sha256",
            DigestKind::AuthentihashSha1 => "authentihash-sha1",
            DigestKind::AuthentihashSha256 => "authentihash-sha256",
            DigestKind::Imphash => "imphash",
        }
    }

    /// Length of the digest in bytes.
    #[allow(clippy::len_without_is_empty)] // a digest kind is never empty
    pub fn len(self) -> usize {
        match self {
            DigestKind::Md5 | DigestKind::Imphash => 16,
            DigestKind::Sha1 | DigestKind::AuthentihashSha1 => 20,
            DigestKind::Sha256 | DigestKind::AuthentihashSha256 => 32,
        }
    }

    /// The integer stored in the database (stable: never renumber).
    pub fn code(self) -> i64 {
        match self {
            DigestKind::Md5 => 1,
            DigestKind::Sha1 => 2,
            DigestKind::Sha256 => 3,
            DigestKind::AuthentihashSha1 => 4,
            DigestKind::AuthentihashSha256 => 5,
            DigestKind::Imphash => 6,
        }
    }

    /// The kind of a stored integer.
    pub fn from_code(code: i64) -> Option<DigestKind> {
        DigestKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// True for a digest of the whole file's bytes (MD5, SHA-1, SHA-256).
    pub fn is_file_hash(self) -> bool {
        matches!(self, DigestKind::Md5 | DigestKind::Sha1 | DigestKind::Sha256)
    }

    /// The file-hash kind a bare hex string of this many characters is (32 → MD5, 40 → SHA-1, 64 → SHA-256).
    pub fn file_hash_of_hex_len(len: usize) -> Option<DigestKind> {
        match len {
            32 => Some(DigestKind::Md5),
            40 => Some(DigestKind::Sha1),
            64 => Some(DigestKind::Sha256),
            _ => None,
        }
    }
}

impl fmt::Display for DigestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DigestKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DigestKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!(
                "unknown digest kind '{s}' (expected one of md5, sha1, sha256, authentihash-sha1, \
                 authentihash-sha256, imphash)"
            )
        })
    }
}

/// A parsed digest: its kind and its bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    kind: DigestKind,
    bytes: [u8; 32],
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Wrong number of characters.
    #[error("expected {expected} hex characters for {kind}, got {got}")]
    Length {
        /// The kind asked for.
        kind: DigestKind,
        /// Hex characters expected.
        expected: usize,
        /// Characters given.
        got: usize,
    },
    /// A length that is no file hash.
    #[error("a hash is 32 (MD5), 40 (SHA-1) or 64 (SHA-256) hex characters, got {0}")]
    UnknownLength(usize),
    /// Something other than ASCII hex.
    #[error("not a hex digit at position {0}")]
    NotHex(usize),
}

impl Digest {
    /// Parse strictly: ASCII hex digits (either case) of exactly the kind's length, nothing else (no spaces,
    /// no prefix).
    pub fn parse_hex(kind: DigestKind, s: &str) -> Result<Digest, DigestError> {
        let want = kind.len() * 2;
        if s.len() != want {
            return Err(DigestError::Length { kind, expected: want, got: s.chars().count() });
        }
        let mut bytes = [0u8; 32];
        decode_hex(s.as_bytes(), &mut bytes[..kind.len()])?;
        Ok(Digest { kind, bytes })
    }

    /// Parse a file hash, its kind told by its length (32 → MD5, 40 → SHA-1, 64 → SHA-256).
    pub fn parse_file_hash(s: &str) -> Result<Digest, DigestError> {
        let kind = DigestKind::file_hash_of_hex_len(s.len()).ok_or(DigestError::UnknownLength(s.chars().count()))?;
        Digest::parse_hex(kind, s)
    }

    /// A digest from raw bytes; `None` when the length does not fit the kind.
    pub fn from_bytes(kind: DigestKind, raw: &[u8]) -> Option<Digest> {
        if raw.len() != kind.len() {
            return None;
        }
        let mut bytes = [0u8; 32];
        bytes[..raw.len()].copy_from_slice(raw);
        Some(Digest { kind, bytes })
    }

    /// The kind.
    pub fn kind(&self) -> DigestKind {
        self.kind
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.kind.len()]
    }

    /// Lower-case hex.
    pub fn hex(&self) -> String {
        crate::hex::encode(self.bytes())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

/// Hex digit values; 0xff marks a byte that is not an ASCII hex digit.
const HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Decode hex `s` (twice as long as `out`) into `out`, branch-free; false when a byte is not a hex digit.
/// Imports decode tens of millions of digests: one table lookup per digit, one check per digest.
pub(crate) fn decode_hex_into(s: &[u8], out: &mut [u8]) -> bool {
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let (hi, lo) = (HEX[usize::from(pair[0])], HEX[usize::from(pair[1])]);
        bad |= hi | lo;
        *o = hi << 4 | lo;
    }
    bad & 0xf0 == 0
}

fn decode_hex(s: &[u8], out: &mut [u8]) -> Result<(), DigestError> {
    if decode_hex_into(s, out) {
        return Ok(());
    }
    // The slow path only says where.
    let at = s.iter().position(|b| HEX[usize::from(*b)] > 15).unwrap_or(0);
    Err(DigestError::NotHex(at))
}

/// What a source says about a file besides its class. Every field is optional; empty strings are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Meta {
    /// The file's name as the source saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// VERSIONINFO OriginalFilename (a trailing `.mui` is kept as the source gives it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_name: Option<String>,
    /// VERSIONINFO FileDescription, or the source's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Product name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// Company or manufacturer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// File version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_version: Option<String>,
    /// Product version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_version: Option<String>,
    /// Where the file was found (a Windows path for xcyclopedia, a package path for NSRL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Code-signing signer (subject CN or DN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// The package or product that contains it ("coreutils 8.21-1ubuntu5.4").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// Operating system of the package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// Malware family, tags or CVEs, as the source names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// When the source first saw it (as the source writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    /// A link to the source's entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// File size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl Meta {
    /// Set a field from a source value: trimmed, and `None` when empty or a placeholder (`n/a`, `null`, `-`).
    pub fn clean(value: &str) -> Option<String> {
        let v = value.trim();
        if v.is_empty() || v.eq_ignore_ascii_case("n/a") || v.eq_ignore_ascii_case("null") || v == "-" {
            None
        } else {
            Some(v.to_string())
        }
    }

    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Meta::default()
    }
}

/// One importable record: a file some source knows, with every digest the source gives for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRecord {
    /// What the source says it is.
    pub class: Class,
    /// The digests it is keyed by (at least one).
    pub digests: Vec<Digest>,
    /// Everything else the source says.
    pub meta: Meta,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_parse_strictly() {
        let d = Digest::parse_file_hash("D41D8CD98F00B204E9800998ECF8427E").unwrap();
        assert_eq!(d.kind(), DigestKind::Md5);
        assert_eq!(d.hex(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(Digest::parse_file_hash(" d41d8cd98f00b204e9800998ecf8427e"), Err(DigestError::UnknownLength(33)));
        assert_eq!(Digest::parse_file_hash("g41d8cd98f00b204e9800998ecf8427e"), Err(DigestError::NotHex(0)));
        assert_eq!(Digest::parse_file_hash(""), Err(DigestError::UnknownLength(0)));
        // A multi-byte character never panics on a char boundary.
        assert!(Digest::parse_file_hash("é41d8cd98f00b204e9800998ecf8427").is_err());
        assert!(matches!(
            Digest::parse_hex(DigestKind::Sha1, "00"),
            Err(DigestError::Length { expected: 40, got: 2, .. })
        ));
    }

    #[test]
    fn codes_round_trip() {
        for c in Class::ALL {
            assert_eq!(Class::from_code(c.code()), Some(c));
            assert_eq!(c.as_str().parse::<Class>(), Ok(c));
        }
        for k in DigestKind::ALL {
            assert_eq!(DigestKind::from_code(k.code()), Some(k));
            assert_eq!(k.as_str().parse::<DigestKind>(), Ok(k));
        }
    }

    #[test]
    fn placeholders_are_none() {
        assert_eq!(Meta::clean(" n/a "), None);
        assert_eq!(Meta::clean(""), None);
        assert_eq!(Meta::clean(" Microsoft "), Some("Microsoft".into()));
    }
}
