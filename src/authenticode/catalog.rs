//! Windows catalog files (`.cat`): a PKCS#7 SignedData whose content is a certificate trust list
//! (`szOID_CTL`) of member hashes. Windows signs most of its own files this way (smss.exe carries no embedded
//! signature); a catalog is verified like an embedded signature (signer, timestamp, chain) and then vouches for
//! every file whose hash it lists: for a PE, the authentihash (SHA-1 in version 1 catalogs, SHA-256 in
//! version 2), for other files the flat file hash.
//!
//! CertificateTrustList ::= SEQUENCE { version INTEGER OPTIONAL, subjectUsage SEQUENCE OF OID,
//! listIdentifier OCTET STRING OPTIONAL, sequenceNumber INTEGER OPTIONAL, thisUpdate Time,
//! nextUpdate Time OPTIONAL, subjectAlgorithm AlgorithmIdentifier, trustedSubjects SEQUENCE OF
//! TrustedSubject OPTIONAL, ctlExtensions [0] EXPLICIT Extensions OPTIONAL }, and
//! TrustedSubject ::= SEQUENCE { subjectIdentifier OCTET STRING, subjectAttributes SET OF Attribute OPTIONAL }.

use const_oid::ObjectIdentifier;

use super::der::{DerError, Tlv, tag};
use super::{Verifier, attributes, oid, parse_signed_data, verify_signer_side};
use crate::report::SignatureCheck;

/// CAT_NAMEVALUE: a named value of a member ("File" = its file name).
const CAT_NAMEVALUE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.2.1");
/// SPC_PE_IMAGE_DATAOBJ: the member is a PE file and its hash is the image hash.
const SPC_PE_IMAGE_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.15");
/// Catalogs larger than this are refused (real ones are a few MiB).
pub const MAX_CATALOG_SIZE: u64 = 256 << 20;
/// Members read at most per catalog.
pub const MAX_MEMBERS: usize = 1_000_000;

/// One listed file.
#[derive(Debug, Clone)]
pub struct Member {
    /// Its hash (authentihash for a PE).
    pub hash: Vec<u8>,
    /// The "File" name the catalog gives, when it gives one.
    pub name: Option<String>,
    /// The hash is a PE image hash (the member's indirect data is `SPC_PE_IMAGE_DATAOBJ`); otherwise it is
    /// the hash of the whole file.
    pub pe: bool,
}

/// A parsed and verified catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The file, as given.
    pub file: String,
    /// Its members.
    pub members: Vec<Member>,
    /// The catalog's own signature checks (`digest_ok` is true: a catalog has no image hash of its own; the
    /// signer's message digest covers the list).
    pub signature: SignatureCheck,
}

impl Catalog {
    /// Every check of the catalog's signature passes and its chain reaches a trusted anchor.
    pub fn valid(&self) -> bool {
        self.signature.signer_ok && self.signature.chain_ok
    }

    /// The member whose hash is one of `hashes`.
    pub fn find(&self, hashes: &[&[u8]]) -> Option<&Member> {
        self.members.iter().find(|m| hashes.contains(&m.hash.as_slice()))
    }
}

/// Why a catalog could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct CatalogError {
    /// The file.
    pub file: String,
    /// What is wrong.
    pub reason: String,
}

/// Read, parse and verify a catalog file.
pub fn load(path: &std::path::Path, verifier: &Verifier) -> Result<Catalog, CatalogError> {
    let file = path.display().to_string();
    let err = |reason: String| CatalogError { file: file.clone(), reason };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.len() > MAX_CATALOG_SIZE {
        return Err(err(format!(
            "{} bytes: larger than the {} MiB a catalog may be",
            meta.len(),
            MAX_CATALOG_SIZE >> 20
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    parse(&file, &bytes, verifier).map_err(err)
}

/// Parse and verify catalog bytes.
pub fn parse(file: &str, bytes: &[u8], verifier: &Verifier) -> Result<Catalog, String> {
    let (ci, _) = super::der::read_tlv(bytes).map_err(|e| format!("not a catalog: {e}"))?;
    let sd = parse_signed_data(ci.raw).map_err(|e| format!("not a catalog: {e}"))?;
    if sd.content_type != oid::CTL {
        return Err(format!("not a catalog: the signed content is {}, not a certificate trust list", sd.content_type));
    }
    let content = sd.content.ok_or("the catalog has no content")?;
    let members = members(&content).map_err(|e| format!("the member list cannot be read ({e})"))?;
    let mut signature = SignatureCheck { digest_ok: true, digest_algorithm: "-".into(), ..Default::default() };
    verify_signer_side(&sd, &oid::CTL, content.value, verifier, &mut signature);
    Ok(Catalog { file: file.to_string(), members, signature })
}

fn members(ctl: &Tlv<'_>) -> Result<Vec<Member>, DerError> {
    let mut f = ctl.expect(tag::SEQUENCE, "CertificateTrustList")?.children();
    f.optional(tag::INTEGER)?;
    f.expect(tag::SEQUENCE, "subjectUsage")?;
    f.optional(tag::OCTET_STRING)?;
    f.optional(tag::INTEGER)?;
    let this_update = f.next_tlv()?;
    if this_update.tag != tag::UTC_TIME && this_update.tag != tag::GENERALIZED_TIME {
        return Err(DerError::Unexpected { expected: "thisUpdate", found: this_update.tag });
    }
    if matches!(f.peek_tag(), Some(tag::UTC_TIME | tag::GENERALIZED_TIME)) {
        f.next_tlv()?;
    }
    f.expect(tag::SEQUENCE, "subjectAlgorithm")?;
    let mut out = Vec::new();
    let Some(subjects) = f.optional(tag::SEQUENCE)? else { return Ok(out) };
    let mut r = subjects.children();
    while !r.is_empty() && out.len() < MAX_MEMBERS {
        let subject = r.expect(tag::SEQUENCE, "TrustedSubject")?;
        let mut s = subject.children();
        let id = s.expect(tag::OCTET_STRING, "subjectIdentifier")?;
        let mut hash = None;
        let mut name = None;
        let mut pe = false;
        if let Some(set) = s.optional(tag::SET)? {
            for (t, values) in attributes(&set).map_err(|_| DerError::NotDer("bad member attribute"))? {
                let Some(v) = values.first() else { continue };
                if t == oid::SPC_INDIRECT_DATA {
                    if let Ok((kind, digest)) = indirect_digest(v) {
                        pe = kind == SPC_PE_IMAGE_DATA;
                        hash = Some(digest);
                    }
                } else if t == CAT_NAMEVALUE {
                    name = name.or_else(|| file_name(v));
                }
            }
        }
        // Without an indirect-data attribute, the identifier itself is the hash (UTF-16LE hex, or raw).
        let hash = hash.or_else(|| hex_identifier(id.value)).unwrap_or_else(|| id.value.to_vec());
        out.push(Member { hash, name, pe });
    }
    Ok(out)
}

/// The data type and the digest inside an SpcIndirectDataContent.
fn indirect_digest(v: &Tlv<'_>) -> Result<(ObjectIdentifier, Vec<u8>), DerError> {
    let mut f = v.expect(tag::SEQUENCE, "SpcIndirectDataContent")?.children();
    let kind = f.expect(tag::SEQUENCE, "data")?.children().next_tlv()?.oid()?;
    let mut d = f.expect(tag::SEQUENCE, "DigestInfo")?.children();
    d.expect(tag::SEQUENCE, "digestAlgorithm")?;
    Ok((kind, d.expect(tag::OCTET_STRING, "digest")?.value.to_vec()))
}

/// CAT_NAMEVALUE ::= SEQUENCE { tag BMPString, flags INTEGER, value OCTET STRING (UTF-16LE) }: the "File" one.
fn file_name(v: &Tlv<'_>) -> Option<String> {
    let mut f = v.children();
    let name = f.next_tlv().ok()?;
    f.next_tlv().ok()?;
    let value = f.expect(tag::OCTET_STRING, "value").ok()?;
    let utf16be: Vec<u16> = name.value.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    if String::from_utf16_lossy(&utf16be).trim_end_matches('\0') != "File" {
        return None;
    }
    let utf16le: Vec<u16> = value.value.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    Some(String::from_utf16_lossy(&utf16le).trim_end_matches('\0').to_string())
}

/// A subject identifier written as UTF-16LE hex text (with or without a terminating NUL).
fn hex_identifier(id: &[u8]) -> Option<Vec<u8>> {
    let units: Vec<u16> = id.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    let text = String::from_utf16(&units).ok()?;
    crate::hex::decode(text.trim_end_matches('\0'))
}

/// Parse nothing but the member list (for tests and `db import`): no signature check.
pub fn member_list(bytes: &[u8]) -> Result<Vec<Member>, String> {
    let (ci, _) = super::der::read_tlv(bytes).map_err(|e| e.to_string())?;
    let sd = parse_signed_data(ci.raw)?;
    let content = sd.content.ok_or("no content")?;
    members(&content).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let v = Verifier::new(std::sync::Arc::new(super::super::trust::TrustStore::empty()));
        for bytes in [&b""[..], b"\x30", b"\x30\x03\x06\x01\x00", b"hello world", &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]]
        {
            assert!(parse("x.cat", bytes, &v).is_err());
            assert!(member_list(bytes).is_err());
        }
    }

    #[test]
    fn utf16_hex_identifiers() {
        let id: Vec<u8> = "AB01\0".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(hex_identifier(&id), Some(vec![0xab, 0x01]));
        assert_eq!(hex_identifier(&[0xff, 0xd8]), None);
    }
}
