//! Authenticode verification: the certificate table's structure, and for every embedded signature (nested
//! ones included) its four checks, each reported on its own:
//!
//! 1. digest: the image hash computed from the file equals the one in `SpcIndirectDataContent`;
//! 2. signer: the SignerInfo's signature over its signed attributes verifies with the signer certificate, the
//!    content-type attribute names `SpcIndirectDataContent` and the message-digest attribute matches it;
//! 3. chain: from the signer to a trusted anchor through the signature's certificates, each link's signature
//!    verified, with validity, basic constraints, key usage and the code-signing EKU checked;
//! 4. time: an RFC 3161 or legacy (PKCS #9) countersignature, itself verified and chained to a time-stamping
//!    anchor. A certificate that has expired still validates at the timestamp's time, unless it carries the
//!    lifetime-signing EKU.
//!
//! Unauthenticated attributes are only ever used for the timestamp and nested signatures, both of which are
//! verified themselves. Revocation is not checked (no network). References: Microsoft, "Windows Authenticode
//! Portable Executable Signature Format"; RFC 5652 (CMS), RFC 3161 (timestamps), RFC 5280 (certificates).
//! Where the image-hash ranges lie is `analysis::authenticode`'s job; this module does not parse PE headers.

pub mod catalog;
pub mod cert;
pub mod crypto;
pub mod der;
pub mod trust;

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use const_oid::ObjectIdentifier;

use crate::report::{
    CatalogMatch, CertificateSummary, SignatureCheck, SignatureReport, SignatureStatus, TimestampCheck, TrustSummary,
};
use cert::{Cert, EKU_CODE_SIGNING, EKU_LIFETIME_SIGNING, EKU_TIME_STAMPING};
use crypto::HashAlg;
use der::{DerError, Reader, Tlv, tag};
use trust::{Anchor, Origin, TrustStore, purpose};

/// WIN_CERTIFICATE entries read at most (real files have one or two).
pub const MAX_ENTRIES: usize = 8;
/// Nesting levels followed at most (real files nest once).
pub const MAX_DEPTH: usize = 4;
/// Signatures verified at most per file, nested ones included.
pub const MAX_SIGNATURES: usize = 16;
/// Certificates in a chain at most.
const MAX_CHAIN: usize = 8;
/// Certificate links (each a signature check) tried at most while building one chain: a hostile signature
/// with many certificates of the same name would otherwise make the search exponential.
const MAX_LINK_CHECKS: usize = 64;
/// Certificate links remembered per process at most (intermediates and TSAs repeat; leaves mostly do not).
const MAX_CACHED_LINKS: usize = 10_000;
/// Certificates read at most from one SignedData (real ones carry fewer than ten).
const MAX_CERTS: usize = 100;

pub(crate) mod oid {
    use const_oid::ObjectIdentifier as O;
    pub const SIGNED_DATA: O = O::new_unwrap("1.2.840.113549.1.7.2");
    pub const SPC_INDIRECT_DATA: O = O::new_unwrap("1.3.6.1.4.1.311.2.1.4");
    pub const SPC_SP_OPUS_INFO: O = O::new_unwrap("1.3.6.1.4.1.311.2.1.12");
    pub const SPC_NESTED_SIGNATURE: O = O::new_unwrap("1.3.6.1.4.1.311.2.4.1");
    pub const SPC_RFC3161: O = O::new_unwrap("1.3.6.1.4.1.311.3.3.1");
    pub const CONTENT_TYPE: O = O::new_unwrap("1.2.840.113549.1.9.3");
    pub const MESSAGE_DIGEST: O = O::new_unwrap("1.2.840.113549.1.9.4");
    pub const SIGNING_TIME: O = O::new_unwrap("1.2.840.113549.1.9.5");
    pub const COUNTERSIGNATURE: O = O::new_unwrap("1.2.840.113549.1.9.6");
    pub const TST_INFO: O = O::new_unwrap("1.2.840.113549.1.9.16.1.4");
    pub const CTL: O = O::new_unwrap("1.3.6.1.4.1.311.10.1");
}

/// Checked certificate links: (child SHA-1, issuer SHA-1) -> whether the issuer's key verifies the child.
type LinkCache = std::collections::HashMap<(String, String), Result<(), crypto::CryptoError>>;

/// What a verification needs besides the file: the anchors and the current time.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// Trust anchors.
    pub trust: Arc<TrustStore>,
    /// "Now", seconds since the epoch: the time certificates are checked at when there is no timestamp.
    pub now: i64,
    /// Catalogs given with `--catalog`, verified once.
    pub catalogs: Vec<Arc<catalog::Catalog>>,
    /// Certificate links already checked in this process: (child SHA-1, issuer SHA-1) -> result. The same
    /// intermediates and timestamp authorities sign thousands of files; their RSA checks are the bulk of a
    /// verification, and a link's result never changes.
    links: Arc<std::sync::Mutex<LinkCache>>,
}

impl Verifier {
    /// Anchors and the system clock.
    pub fn new(trust: Arc<TrustStore>) -> Verifier {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        Verifier { trust, now, catalogs: Vec::new(), links: Arc::default() }
    }

    /// Whether `issuer` signed `child`, from the cache when this link was checked before.
    fn link(&self, child: &Cert, issuer: &Cert) -> Result<(), crypto::CryptoError> {
        let key = (child.sha1.clone(), issuer.sha1.clone());
        if let Some(r) = self.links.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return r;
        }
        let r = child.verify_issued_by(issuer);
        if let Ok(mut m) = self.links.lock() {
            // Bounded: a scan of many files with their own leaf certificates must not grow it without end.
            if m.len() < MAX_CACHED_LINKS {
                m.insert(key, r.clone());
            }
        }
        r
    }

    fn trust_summary(&self) -> TrustSummary {
        TrustSummary {
            bundled: self.trust.bundled,
            user_anchors: self.trust.user_count(),
            revocation_checked: false,
            anchors_version: self.trust.bundled.then(|| trust::bundled_version().to_string()),
        }
    }
}

/// The image hash of a file under any algorithm, computed at most once per algorithm. The SHA-1 and SHA-256
/// ones normally come from the single hashing pass; others (MD5, SHA-384, SHA-512) are computed here.
pub struct ImageHashes<'a> {
    data: &'a [u8],
    ranges: &'a [Range<u64>],
    known: Vec<(HashAlg, Vec<u8>)>,
}

impl<'a> ImageHashes<'a> {
    /// The file, the ranges the image hash covers, and the digests already computed (lower-case hex).
    pub fn new(data: &'a [u8], ranges: &'a [Range<u64>], known: &[(HashAlg, Option<&str>)]) -> ImageHashes<'a> {
        let known = known.iter().filter_map(|(alg, hex)| Some((*alg, crate::hex::decode(hex.as_ref()?)?))).collect();
        ImageHashes { data, ranges, known }
    }

    /// The image hash under `alg`.
    pub fn get(&mut self, alg: HashAlg) -> Vec<u8> {
        if let Some((_, d)) = self.known.iter().find(|(a, _)| *a == alg) {
            return d.clone();
        }
        let parts: Vec<&[u8]> = self
            .ranges
            .iter()
            .filter_map(|r| self.data.get(usize::try_from(r.start).ok()?..usize::try_from(r.end).ok()?))
            .collect();
        let d = alg.hash_parts(&parts);
        self.known.push((alg, d.clone()));
        d
    }
}

/// Verify the embedded signatures of a PE file, given where its image hash and certificate table lie.
pub fn verify_pe(
    data: &[u8],
    layout: &crate::analysis::authenticode::ImageHashLayout,
    hashes: &mut ImageHashes<'_>,
    verifier: &Verifier,
) -> SignatureReport {
    let mut report = verify_embedded(data, layout, hashes, verifier);
    apply_catalogs(&mut report, hashes, verifier);
    report
}

/// A catalog given with `--catalog` that lists the file's authentihash vouches for it. A file with no
/// embedded signature is then as valid as the catalog's signature; an embedded signature keeps its own
/// status (the catalog is reported beside it).
fn apply_catalogs(report: &mut SignatureReport, hashes: &mut ImageHashes<'_>, verifier: &Verifier) {
    if verifier.catalogs.is_empty() {
        return;
    }
    let (sha1, sha256) = (hashes.get(HashAlg::Sha1), hashes.get(HashAlg::Sha256));
    let mut found = None;
    for cat in &verifier.catalogs {
        if let Some(m) = cat.find(&[&sha1, &sha256]) {
            found = Some((cat, m));
            if cat.valid() {
                break;
            }
        }
    }
    let Some((cat, member)) = found else { return };
    let valid = cat.valid();
    let name = Path::new(&cat.file).file_name().map_or(cat.file.clone(), |n| n.to_string_lossy().into_owned());
    let signer = cat.signature.signer_subject.as_deref().map(short_name).unwrap_or("an unknown signer");
    report.catalog = Some(CatalogMatch {
        file: cat.file.clone(),
        member_hash: crate::hex::encode(&member.hash),
        signature: cat.signature.clone(),
        valid,
    });
    if report.status == SignatureStatus::Absent {
        if valid {
            report.status = SignatureStatus::Valid;
            let anchor = cat.signature.anchor.as_deref().unwrap_or("a trusted anchor");
            report.summary = format!("signed by catalog {name}, signer {signer}, chain to {anchor}");
        } else {
            report.status = SignatureStatus::Untrusted;
            let why = cat.signature.errors.first().map(String::as_str).unwrap_or("its signature does not verify");
            report.summary =
                format!("listed in catalog {name} (signer {signer}), but the catalog is not trusted: {why}");
        }
    }
}

fn verify_embedded(
    data: &[u8],
    layout: &crate::analysis::authenticode::ImageHashLayout,
    hashes: &mut ImageHashes<'_>,
    verifier: &Verifier,
) -> SignatureReport {
    let mut report = SignatureReport { trust: verifier.trust_summary(), ..Default::default() };
    let Some((start, size)) = layout.directory.filter(|&(a, s)| a != 0 && s != 0) else {
        report.status = SignatureStatus::Absent;
        report.summary = "no embedded signature (may be catalog-signed)".into();
        return report;
    };
    let file_len = data.len() as u64;
    let end = start + size;
    if end > file_len {
        report.status = SignatureStatus::Malformed;
        report.problems.push(format!(
            "the certificate table (offset {start}, {size} bytes) runs past the end of the file ({file_len} bytes): the file was cut or the signature damaged"
        ));
        report.summary = report.problems[0].clone();
        return report;
    }
    if layout.certificate_table.is_none() {
        report.status = SignatureStatus::Malformed;
        report.problems.push(format!("the certificate table (offset {start}) overlaps the headers"));
        report.summary = report.problems[0].clone();
        return report;
    }
    let mut walk = Walk { verifier, hashes, checks: Vec::new(), malformed: Vec::new(), tampered: Vec::new() };
    let (start, end) = (start as usize, end as usize);
    let mut pos = start;
    let mut entry = 0usize;
    while pos < end {
        if entry == MAX_ENTRIES {
            walk.malformed.push(format!("more than {MAX_ENTRIES} certificate entries: the rest were not read"));
            break;
        }
        let header = data.get(pos..pos + 8).filter(|_| pos + 8 <= end);
        let Some(h) = header else {
            walk.malformed.push(format!("certificate entry {entry} at offset {pos} is cut short"));
            break;
        };
        let length = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let revision = u16::from_le_bytes([h[4], h[5]]);
        let kind = u16::from_le_bytes([h[6], h[7]]);
        if length < 8 || pos + length > end {
            walk.malformed.push(format!(
                "certificate entry {entry} at offset {pos} says it is {length} bytes long, which does not fit the {size}-byte table"
            ));
            break;
        }
        let content = &data[pos + 8..pos + length];
        if kind != 2 || (revision != 0x0200 && revision != 0x0100) {
            walk.malformed.push(format!(
                "certificate entry {entry} has revision 0x{revision:04x} and type {kind}, not a PKCS#7 SignedData (revision 2.0, type 2)"
            ));
        } else {
            match der::read_tlv(content) {
                Ok((ci, trailing)) => {
                    // CVE-2013-3900: bytes after the PKCS#7 blob inside the entry are not covered by anything.
                    // Only the zero padding to an 8-byte boundary may follow.
                    if trailing.len() >= 8 || trailing.iter().any(|&b| b != 0) {
                        walk.tampered.push(format!(
                            "{} bytes follow the PKCS#7 signature inside certificate entry {entry} (CVE-2013-3900: data smuggled after the signature)",
                            trailing.len()
                        ));
                    }
                    walk.signed_data(ci.raw, entry, false, 0);
                }
                Err(e) => {
                    walk.malformed.push(format!("certificate entry {entry}: the PKCS#7 signature cannot be read ({e})"))
                }
            }
        }
        let next = pos + ((length + 7) & !7);
        let gap = &data[pos + length..next.min(end)];
        if gap.iter().any(|&b| b != 0) {
            walk.tampered.push(format!("non-zero bytes in the padding after certificate entry {entry}"));
        }
        pos = next;
        entry += 1;
    }
    if (end as u64) < file_len {
        walk.tampered.push(format!(
            "{} bytes follow the certificate table, which must end the file (data appended after signing)",
            file_len - end as u64
        ));
    }
    let Walk { checks, malformed, tampered, .. } = walk;
    report.signatures = checks;
    report.problems = tampered.iter().chain(&malformed).cloned().collect();
    let (status, summary) = overall(&report.signatures, &tampered, &malformed);
    report.status = status;
    report.summary = summary;
    report
}

/// The overall status and its one-line summary.
fn overall(checks: &[SignatureCheck], tampered: &[String], malformed: &[String]) -> (SignatureStatus, String) {
    if let Some(t) = tampered.first() {
        return (SignatureStatus::Tampered, t.clone());
    }
    if let Some(m) = malformed.first() {
        return (SignatureStatus::Malformed, m.clone());
    }
    let Some(first) = checks.first() else {
        return (SignatureStatus::Malformed, "the certificate table holds no signature".into());
    };
    if let Some(bad) = checks.iter().find(|c| !c.digest_ok) {
        let what = if bad.computed_digest.is_some() {
            "the file's image hash is not the signed one: it was modified after signing".to_string()
        } else {
            bad.errors.first().cloned().unwrap_or_default()
        };
        return (SignatureStatus::Invalid, what);
    }
    if let Some(bad) = checks.iter().find(|c| !c.signer_ok) {
        let why = bad.errors.first().cloned().unwrap_or_default();
        return (SignatureStatus::Invalid, format!("a signer's signature does not verify: {why}"));
    }
    let who = first.signer_subject.as_deref().map(short_name).unwrap_or("an unknown signer");
    let n = checks.len();
    let count = if n == 1 { String::new() } else { format!(" ({n} signatures)") };
    if first.chain_ok {
        let anchor = first.anchor.as_deref().unwrap_or("a trusted anchor");
        let when =
            first.timestamp.as_deref().map_or_else(|| ", no timestamp".to_string(), |t| format!(", timestamped {t}"));
        (SignatureStatus::Valid, format!("signed by {who}{count}, chain to {anchor}{when}"))
    } else {
        let why = first.errors.first().cloned().unwrap_or_else(|| "no chain to a trusted anchor".into());
        (SignatureStatus::Untrusted, format!("signed by {who}{count}, but not trusted: {why}"))
    }
}

/// "CN=Microsoft Corporation, O=…" → "Microsoft Corporation".
pub fn short_name(subject: &str) -> &str {
    subject
        .split(", ")
        .find_map(|p| p.strip_prefix("CN="))
        .or_else(|| subject.split(", ").find_map(|p| p.strip_prefix("O=")))
        .unwrap_or(subject)
}

/// A parsed SignedData, with slices of the original bytes.
pub(crate) struct SignedData<'a> {
    pub content_type: ObjectIdentifier,
    /// The encapsulated content: the element inside `[0]` (an OCTET STRING's contents are unwrapped).
    pub content: Option<Tlv<'a>>,
    pub certs: Vec<Cert>,
    pub cert_errors: Vec<String>,
    pub signers: Vec<Tlv<'a>>,
}

/// Parse a ContentInfo holding a SignedData.
pub(crate) fn parse_signed_data(ci: &[u8]) -> Result<SignedData<'_>, String> {
    let e = |e: DerError| e.to_string();
    let mut top = Reader::new(ci);
    let info = top.expect(tag::SEQUENCE, "ContentInfo").map_err(e)?;
    let mut f = info.children();
    if !f.next_tlv().map_err(e)?.is_oid(&oid::SIGNED_DATA) {
        return Err("the content is not a PKCS#7 SignedData".into());
    }
    let explicit = f.expect(tag::CTX0, "[0] content").map_err(e)?;
    let sd = explicit.children().expect(tag::SEQUENCE, "SignedData").map_err(e)?;
    let mut s = sd.children();
    s.expect(tag::INTEGER, "version").map_err(e)?;
    s.expect(tag::SET, "digestAlgorithms").map_err(e)?;
    let encap = s.expect(tag::SEQUENCE, "encapContentInfo").map_err(e)?;
    let mut ef = encap.children();
    let content_type = ef.next_tlv().and_then(|t| t.oid()).map_err(e)?;
    let content = match ef.optional(tag::CTX0).map_err(e)? {
        Some(c) => {
            let inner = c.children().next_tlv().map_err(e)?;
            Some(if inner.tag == tag::OCTET_STRING && inner.value.first() == Some(&tag::SEQUENCE) {
                Reader::new(inner.value).next_tlv().map_err(e)?
            } else {
                inner
            })
        }
        None => None,
    };
    let mut certs = Vec::new();
    let mut cert_errors = Vec::new();
    if let Some(set) = s.optional(tag::CTX0).map_err(e)? {
        let mut r = set.children();
        while !r.is_empty() {
            let c = r.next_tlv().map_err(e)?;
            if certs.len() + cert_errors.len() >= MAX_CERTS {
                cert_errors
                    .push(format!("more than {MAX_CERTS} certificates in the signature: the rest were not read"));
                break;
            }
            if c.tag == tag::SEQUENCE {
                match Cert::parse(c.raw) {
                    Ok(cert) => certs.push(cert),
                    Err(err) => cert_errors.push(format!("a certificate in the signature cannot be read: {err}")),
                }
            }
        }
    }
    s.optional(tag::CTX1).map_err(e)?;
    let signer_set = s.expect(tag::SET, "signerInfos").map_err(e)?;
    s.finish("SignedData").map_err(e)?;
    let mut signers = Vec::new();
    let mut r = signer_set.children();
    while !r.is_empty() {
        signers.push(r.expect(tag::SEQUENCE, "SignerInfo").map_err(e)?);
    }
    Ok(SignedData { content_type, content, certs, cert_errors, signers })
}

/// A parsed SignerInfo.
pub(crate) struct SignerInfo<'a> {
    /// issuer Name (DER) and serial (INTEGER contents), when identified that way.
    pub issuer_serial: Option<(&'a [u8], &'a [u8])>,
    pub digest_alg: ObjectIdentifier,
    /// The `[0]` signed attributes, whole (tag included).
    pub signed_attrs: Option<Tlv<'a>>,
    pub sig_alg: ObjectIdentifier,
    pub signature: &'a [u8],
    pub unsigned_attrs: Option<Tlv<'a>>,
}

pub(crate) fn parse_signer_info<'a>(si: &Tlv<'a>) -> Result<SignerInfo<'a>, String> {
    let e = |e: DerError| e.to_string();
    let mut f = si.children();
    f.expect(tag::INTEGER, "version").map_err(e)?;
    let sid = f.next_tlv().map_err(e)?;
    let issuer_serial = if sid.tag == tag::SEQUENCE {
        let mut r = sid.children();
        let issuer = r.expect(tag::SEQUENCE, "issuer").map_err(e)?;
        let serial = r.expect(tag::INTEGER, "serialNumber").map_err(e)?;
        Some((issuer.raw, serial.value))
    } else {
        None
    };
    let digest_alg = f.expect(tag::SEQUENCE, "digestAlgorithm").map_err(e)?;
    let digest_alg = digest_alg.children().next_tlv().and_then(|t| t.oid()).map_err(e)?;
    let signed_attrs = f.optional(tag::CTX0).map_err(e)?;
    let sig_alg = f.expect(tag::SEQUENCE, "signatureAlgorithm").map_err(e)?;
    let sig_alg = sig_alg.children().next_tlv().and_then(|t| t.oid()).map_err(e)?;
    let signature = f.expect(tag::OCTET_STRING, "signature").map_err(e)?.value;
    let unsigned_attrs = f.optional(tag::CTX1).map_err(e)?;
    f.finish("SignerInfo").map_err(e)?;
    Ok(SignerInfo { issuer_serial, digest_alg, signed_attrs, sig_alg, signature, unsigned_attrs })
}

/// Attributes: (type, values). Duplicated types are kept so that callers can refuse them.
pub(crate) fn attributes<'a>(set: &Tlv<'a>) -> Result<Vec<(ObjectIdentifier, Vec<Tlv<'a>>)>, String> {
    let e = |e: DerError| e.to_string();
    let mut out = Vec::new();
    let mut r = set.children();
    while !r.is_empty() {
        let a = r.expect(tag::SEQUENCE, "Attribute").map_err(e)?;
        let mut f = a.children();
        let t = f.next_tlv().and_then(|t| t.oid()).map_err(e)?;
        let vals = f.expect(tag::SET, "attribute values").map_err(e)?;
        let mut values = Vec::new();
        let mut vr = vals.children();
        while !vr.is_empty() {
            values.push(vr.next_tlv().map_err(e)?);
        }
        out.push((t, values));
    }
    Ok(out)
}

/// The single value of a signed attribute that must appear exactly once.
fn single<'a>(
    attrs: &[(ObjectIdentifier, Vec<Tlv<'a>>)],
    oid: &ObjectIdentifier,
    name: &str,
) -> Result<Tlv<'a>, String> {
    let mut found = attrs.iter().filter(|(t, _)| t == oid);
    match (found.next(), found.next()) {
        (Some((_, v)), None) if v.len() == 1 => Ok(v[0]),
        (None, _) => Err(format!("the {name} attribute is missing")),
        _ => Err(format!("the {name} attribute appears more than once")),
    }
}

/// The signer checks shared by file signatures, timestamps, countersignatures and catalogs: find the signer
/// certificate, check the content-type attribute (when `content_type` is given; a countersignature has none)
/// and the message-digest attribute (over `content_digest_input`), and the signature over the signed
/// attributes. Returns the signer certificate's index in `pool` when it was found.
pub(crate) fn check_signer(
    si: &SignerInfo<'_>,
    pool: &[&Cert],
    content_type: Option<&ObjectIdentifier>,
    content_digest_input: &[u8],
    errors: &mut Vec<String>,
) -> (bool, Option<usize>) {
    let signer = si
        .issuer_serial
        .and_then(|(issuer, serial)| pool.iter().position(|c| c.issuer_raw == issuer && c.serial == serial));
    let Some(idx) = signer else {
        errors.push("signer: the signer's certificate is not in the signature".into());
        return (false, None);
    };
    let Some(hash) = HashAlg::from_oid(&si.digest_alg) else {
        errors.push(format!("signer: unsupported digest algorithm {}", si.digest_alg));
        return (false, Some(idx));
    };
    let Some(sa) = si.signed_attrs else {
        errors.push("signer: there are no signed attributes".into());
        return (false, Some(idx));
    };
    let attrs = match attributes(&sa) {
        Ok(a) => a,
        Err(e) => {
            errors.push(format!("signer: the signed attributes cannot be read ({e})"));
            return (false, Some(idx));
        }
    };
    let mut ok = true;
    match content_type.map(|ct| (ct, single(&attrs, &oid::CONTENT_TYPE, "content-type"))) {
        None => {}
        Some((ct, Ok(v))) if v.is_oid(ct) => {}
        Some((_, Ok(_))) => {
            errors.push("signer: the content-type attribute does not name the signed content".into());
            ok = false;
        }
        Some((_, Err(e))) => {
            errors.push(format!("signer: {e}"));
            ok = false;
        }
    }
    match single(&attrs, &oid::MESSAGE_DIGEST, "message-digest") {
        Ok(v) if v.tag == tag::OCTET_STRING && v.value == hash.hash(content_digest_input).as_slice() => {}
        Ok(_) => {
            errors.push("signer: the message-digest attribute does not match the signed content".into());
            ok = false;
        }
        Err(e) => {
            errors.push(format!("signer: {e}"));
            ok = false;
        }
    }
    // The signature covers the DER of the attributes as a SET OF (RFC 5652 5.4), not the [0] tag.
    let mut signed = sa.raw.to_vec();
    signed[0] = tag::SET;
    if let Err(e) = crypto::verify_message_cached(&pool[idx].spki, &si.sig_alg, hash, &signed, si.signature) {
        errors.push(format!("signer: {e} (signer certificate {})", pool[idx].subject));
        ok = false;
    }
    (ok, Some(idx))
}

/// A chain from `leaf` to an anchor with one of `purposes`, every link verified and every certificate
/// checked at time `at`. `eku` is required of the leaf (and of intermediates that restrict EKUs) unless the
/// anchor is a UEFI `db` CA, which firmware trusts without EKUs.
pub(crate) fn build_chain(
    leaf: &Cert,
    pool: &[&Cert],
    v: &Verifier,
    purposes: u8,
    eku: &str,
    at: i64,
) -> Result<(Vec<Cert>, Arc<Anchor>), String> {
    let mut search = Search { pool, v, purposes, eku, at, budget: MAX_LINK_CHECKS, last_error: None };
    let mut path = vec![leaf];
    if let Some(found) = search.extend(&mut path) {
        return Ok(found);
    }
    Err(search.last_error.unwrap_or_else(|| format!("no issuer matching \"{}\" was found", leaf.issuer)))
}

/// A depth-first search for a chain, with what it looks for and what it has spent.
struct Search<'p, 'a> {
    pool: &'p [&'a Cert],
    v: &'p Verifier,
    purposes: u8,
    eku: &'p str,
    at: i64,
    /// Link checks left (each is a signature verification).
    budget: usize,
    /// Why the last attempt failed.
    last_error: Option<String>,
}

impl<'a> Search<'_, 'a> {
    /// Take one link check from the budget; false (and the reason recorded) when it is spent.
    fn spend(&mut self) -> bool {
        if self.budget == 0 {
            self.last_error = Some(format!("no chain found within {MAX_LINK_CHECKS} certificate checks"));
            return false;
        }
        self.budget -= 1;
        true
    }

    fn extend(&mut self, path: &mut Vec<&'a Cert>) -> Option<(Vec<Cert>, Arc<Anchor>)> {
        let current = *path.last()?;
        let trust = &self.v.trust;
        // The current certificate is itself an anchor (a trusted intermediate such as a UEFI db CA).
        let own = trust.anchors().find(|a| {
            a.purposes & self.purposes != 0 && a.cert.subject_raw == current.subject_raw && a.cert.spki == current.spki
        });
        let mut candidates: Vec<Arc<Anchor>> = own.cloned().into_iter().collect();
        if own.is_none() {
            for a in trust.by_subject(&current.issuer_raw, self.purposes) {
                if !self.spend() {
                    return None;
                }
                match self.v.link(current, &a.cert) {
                    Ok(()) => candidates.push(a.clone()),
                    Err(e) => {
                        self.last_error = Some(format!(
                            "\"{}\" is not signed by the anchor \"{}\": {e}",
                            current.subject, a.cert.subject
                        ))
                    }
                }
            }
        }
        for anchor in candidates {
            // The anchor ends the path; an anchor that equals `current` is not an extra link.
            let end = if own.is_some() { path.len() - 1 } else { path.len() };
            match constraints(&path[..end.max(1)], &anchor, self.eku, self.at, own.is_some()) {
                Ok(()) => return Some((path.iter().map(|c| (*c).clone()).collect(), anchor)),
                Err(e) => self.last_error = Some(e),
            }
        }
        if path.len() >= MAX_CHAIN {
            self.last_error = Some(format!("no chain of at most {MAX_CHAIN} certificates reaches a trusted anchor"));
            return None;
        }
        for cand in self.pool.iter().copied() {
            if cand.subject_raw != current.issuer_raw || path.iter().any(|p| p.raw == cand.raw) {
                continue;
            }
            if !self.spend() {
                return None;
            }
            match self.v.link(current, cand) {
                Ok(()) => {
                    path.push(cand);
                    if let Some(found) = self.extend(path) {
                        return Some(found);
                    }
                    path.pop();
                }
                Err(e) => {
                    self.last_error =
                        Some(format!("\"{}\" is not signed by \"{}\": {e}", current.subject, cand.subject))
                }
            }
        }
        if self.last_error.is_none() {
            self.last_error = Some(format!("no issuer matching \"{}\" was found", current.issuer));
        }
        None
    }
}

/// Check validity, CA constraints, key usage and EKU along a path (leaf first, anchor excluded unless the
/// leaf-side certificate is itself the anchor).
fn constraints(path: &[&Cert], anchor: &Anchor, eku: &str, at: i64, last_is_anchor: bool) -> Result<(), String> {
    let when = der::rfc3339(at, 0);
    let uefi_only = anchor.purposes & (purpose::CODE_SIGNING | purpose::TIME_STAMPING) == 0;
    for (i, c) in path.iter().enumerate() {
        let is_anchor = last_is_anchor && i == path.len() - 1;
        if !is_anchor && !c.valid_at(at) {
            return Err(format!(
                "\"{}\" is not valid at {when} (valid {} to {})",
                c.subject,
                der::rfc3339(c.not_before, 0),
                der::rfc3339(c.not_after, 0)
            ));
        }
        if i == 0 {
            if c.key_usage.is_some_and(|(ds, _)| !ds) {
                return Err(format!("\"{}\" may not make digital signatures (key usage)", c.subject));
            }
            if !uefi_only && !c.allows(eku) {
                return Err(format!("\"{}\" is not allowed for {} (extended key usage)", c.subject, eku_name(eku)));
            }
        } else {
            if !c.is_ca {
                return Err(format!("\"{}\" is not a certificate authority (basic constraints)", c.subject));
            }
            if c.key_usage.is_some_and(|(_, cs)| !cs) {
                return Err(format!("\"{}\" may not sign certificates (key usage)", c.subject));
            }
            if c.path_len.is_some_and(|n| usize::from(n) < i - 1) {
                return Err(format!("\"{}\" allows a shorter chain (path length)", c.subject));
            }
            if !uefi_only && !c.allows(eku) {
                return Err(format!("\"{}\" does not allow {} (extended key usage)", c.subject, eku_name(eku)));
            }
        }
    }
    Ok(())
}

fn eku_name(eku: &str) -> &str {
    match eku {
        EKU_CODE_SIGNING => "code signing",
        EKU_TIME_STAMPING => "time stamping",
        other => other,
    }
}

/// Summaries of a chain for the report.
pub(crate) fn summarise(chain: &[Cert], anchor: Option<&Anchor>) -> Vec<CertificateSummary> {
    let mut out: Vec<CertificateSummary> = chain.iter().map(summary).collect();
    if let Some(a) = anchor {
        if chain.last().is_none_or(|c| c.raw != a.cert.raw && c.spki != a.cert.spki) {
            out.push(summary(&a.cert));
        }
    }
    out
}

fn summary(c: &Cert) -> CertificateSummary {
    CertificateSummary {
        subject: c.subject.clone(),
        issuer: c.issuer.clone(),
        serial: c.serial_hex(),
        not_before: der::rfc3339(c.not_before, 0),
        not_after: der::rfc3339(c.not_after, 0),
        sha1: c.sha1.clone(),
    }
}

pub(crate) fn anchor_label(a: &Anchor) -> String {
    match &a.origin {
        Origin::Bundled => format!("{} (bundled)", short_name(&a.cert.subject)),
        Origin::User(f) => format!("{} ({f})", short_name(&a.cert.subject)),
    }
}

/// The walk over one file's signatures.
struct Walk<'v, 'h, 'd> {
    verifier: &'v Verifier,
    hashes: &'h mut ImageHashes<'d>,
    checks: Vec<SignatureCheck>,
    malformed: Vec<String>,
    tampered: Vec<String>,
}

impl Walk<'_, '_, '_> {
    /// Verify one SignedData (a ContentInfo's bytes) and, recursively, the signatures nested in it.
    fn signed_data(&mut self, ci: &[u8], entry: usize, nested: bool, depth: usize) {
        if self.checks.len() >= MAX_SIGNATURES {
            self.malformed.push(format!("more than {MAX_SIGNATURES} signatures: the rest were not verified"));
            return;
        }
        let sd = match parse_signed_data(ci) {
            Ok(sd) => sd,
            Err(e) => {
                self.malformed.push(format!("certificate entry {entry}: the signature cannot be parsed ({e})"));
                return;
            }
        };
        let mut check = SignatureCheck { entry, nested, ..Default::default() };
        check.errors.extend(sd.cert_errors.iter().cloned());
        if sd.content_type != oid::SPC_INDIRECT_DATA {
            self.malformed.push(format!(
                "certificate entry {entry}: the signed content is {}, not Authenticode's SpcIndirectDataContent",
                sd.content_type
            ));
            return;
        }
        let Some(content) = sd.content else {
            self.malformed.push(format!("certificate entry {entry}: the signature has no signed content"));
            return;
        };
        // SpcIndirectDataContent ::= SEQUENCE { data SpcAttributeTypeAndOptionalValue, messageDigest DigestInfo }
        let indirect = (|| -> Result<(ObjectIdentifier, &[u8]), DerError> {
            let mut f = content.expect(tag::SEQUENCE, "SpcIndirectDataContent")?.children();
            f.expect(tag::SEQUENCE, "SpcAttributeTypeAndOptionalValue")?;
            let di = f.expect(tag::SEQUENCE, "DigestInfo")?;
            let mut d = di.children();
            let alg = d.expect(tag::SEQUENCE, "digestAlgorithm")?.children().next_tlv()?.oid()?;
            let digest = d.expect(tag::OCTET_STRING, "digest")?.value;
            Ok((alg, digest))
        })();
        let (alg, signed_digest) = match indirect {
            Ok(v) => v,
            Err(e) => {
                self.malformed.push(format!("certificate entry {entry}: SpcIndirectDataContent cannot be read ({e})"));
                return;
            }
        };

        // 1. digest
        check.signed_digest = Some(crate::hex::encode(signed_digest));
        match HashAlg::from_oid(&alg) {
            Some(h) => {
                check.digest_algorithm = h.name().into();
                check.digest_weak = h.is_weak();
                let computed = self.hashes.get(h);
                check.digest_ok = computed == signed_digest;
                if !check.digest_ok {
                    check.errors.push(format!(
                        "digest: the file's {} image hash {} is not the signed {}",
                        h.name(),
                        crate::hex::encode(&computed),
                        crate::hex::encode(signed_digest)
                    ));
                }
                check.computed_digest = Some(crate::hex::encode(&computed));
            }
            None => {
                check.digest_algorithm = alg.to_string();
                check.errors.push(format!("digest: unsupported algorithm {alg}"));
            }
        }

        let unsigned = verify_signer_side(&sd, &oid::SPC_INDIRECT_DATA, content.value, self.verifier, &mut check);
        self.checks.push(check);

        // Nested signatures.
        for (t, values) in &unsigned {
            if *t != oid::SPC_NESTED_SIGNATURE {
                continue;
            }
            if depth + 1 > MAX_DEPTH {
                self.malformed
                    .push(format!("signatures nested more than {MAX_DEPTH} deep: the rest were not verified"));
                return;
            }
            for v in values {
                self.signed_data(v.raw, entry, true, depth + 1);
            }
        }
    }
}

/// The checks every signed blob shares (file signatures and catalogs): the signer (2), the timestamp (4) and
/// the chain (3), written into `check`. Returns the unsigned attributes, for the caller to follow nested
/// signatures.
pub(crate) fn verify_signer_side<'a>(
    sd: &'a SignedData<'a>,
    content_type: &ObjectIdentifier,
    digest_input: &[u8],
    verifier: &Verifier,
    check: &mut SignatureCheck,
) -> Vec<(ObjectIdentifier, Vec<Tlv<'a>>)> {
    // 2. signer
    let pool: Vec<&Cert> = sd.certs.iter().collect();
    let signer_info = match sd.signers.as_slice() {
        [one] => parse_signer_info(one).map_err(|e| format!("signer: the SignerInfo cannot be read ({e})")),
        [] => Err("signer: the signature has no SignerInfo".into()),
        _ => Err("signer: Authenticode allows exactly one SignerInfo".into()),
    };
    let si = match signer_info {
        Ok(si) => si,
        Err(e) => {
            check.errors.push(e);
            return Vec::new();
        }
    };
    let (signer_ok, signer_idx) = check_signer(&si, &pool, Some(content_type), digest_input, &mut check.errors);
    check.signer_ok = signer_ok;
    if let Some(i) = signer_idx {
        let c = pool[i];
        check.signer_subject = Some(c.subject.clone());
        check.issuer_subject = Some(c.issuer.clone());
        check.signer_serial = Some(c.serial_hex());
    }
    if let Some(sa) = si.signed_attrs {
        if let Ok(attrs) = attributes(&sa) {
            if let Ok(opus) = single(&attrs, &oid::SPC_SP_OPUS_INFO, "SpcSpOpusInfo") {
                let (name, url) = opus_info(&opus);
                check.program_name = name;
                check.more_info = url;
            }
        }
    }

    // 4. time (before the chain: the chain is checked at the timestamp's time)
    let unsigned = match si.unsigned_attrs.map(|u| attributes(&u)).transpose() {
        Ok(u) => u.unwrap_or_default(),
        Err(e) => {
            check.errors.push(format!("the unauthenticated attributes cannot be read ({e})"));
            Vec::new()
        }
    };
    let mut ts_time = None;
    for (t, values) in &unsigned {
        if *t == oid::SPC_RFC3161 || *t == oid::COUNTERSIGNATURE {
            if check.countersignature.is_some() {
                continue;
            }
            let Some(v) = values.first() else { continue };
            let ts = if *t == oid::SPC_RFC3161 {
                timestamp_rfc3161(v.raw, si.signature, &pool, verifier)
            } else {
                timestamp_legacy(v, si.signature, &pool, verifier)
            };
            if ts.0.ok {
                ts_time = ts.1;
                check.timestamp = ts.0.time.clone();
            }
            check.countersignature = Some(ts.0);
        }
    }

    // 3. chain
    if let Some(i) = signer_idx {
        let leaf = pool[i];
        let lifetime = leaf.eku.as_ref().is_some_and(|e| e.iter().any(|o| o == EKU_LIFETIME_SIGNING));
        let at = match ts_time {
            Some(t) if !lifetime => t,
            _ => verifier.now,
        };
        match build_chain(leaf, &pool, verifier, purpose::CODE_SIGNING | purpose::UEFI, EKU_CODE_SIGNING, at) {
            Ok((chain, anchor)) => {
                check.chain_ok = true;
                check.anchor = Some(anchor_label(&anchor));
                check.chain = summarise(&chain, Some(&anchor));
            }
            Err(e) => {
                check.errors.push(format!("chain: {e}"));
                check.chain = summarise(std::slice::from_ref(leaf), None);
            }
        }
    }
    unsigned
}

/// SpcSpOpusInfo ::= SEQUENCE { programName [0] EXPLICIT SpcString OPTIONAL, moreInfo [1] EXPLICIT SpcLink OPTIONAL }
fn opus_info(v: &Tlv<'_>) -> (Option<String>, Option<String>) {
    let mut name = None;
    let mut url = None;
    if v.tag != tag::SEQUENCE {
        return (None, None);
    }
    let mut r = v.children();
    while let Ok(t) = r.next_tlv() {
        let inner = t.children().next_tlv().ok();
        match (t.tag, inner) {
            (tag::CTX0, Some(s)) => name = spc_string(&s),
            (tag::CTX1, Some(l)) if l.tag == 0x80 => url = Some(String::from_utf8_lossy(l.value).into_owned()),
            _ => {}
        }
    }
    (name, url)
}

/// SpcString ::= CHOICE { unicode [0] IMPLICIT BMPString, ascii [1] IMPLICIT IA5String }
fn spc_string(t: &Tlv<'_>) -> Option<String> {
    match t.tag {
        0x80 | 0xa0 => {
            let units: Vec<u16> = t.value.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            Some(String::from_utf16_lossy(&units))
        }
        0x81 | 0xa1 => Some(String::from_utf8_lossy(t.value).into_owned()),
        _ => None,
    }
}

/// A TSTInfo's imprint algorithm, imprint, and time (seconds, milliseconds).
type Imprinted<'a> = (ObjectIdentifier, &'a [u8], (i64, u32));

/// Verify an RFC 3161 timestamp token countersigning `signature`. Returns the check and the verified time.
fn timestamp_rfc3161(token: &[u8], signature: &[u8], outer: &[&Cert], v: &Verifier) -> (TimestampCheck, Option<i64>) {
    let mut out = TimestampCheck { kind: "rfc3161".into(), ..Default::default() };
    let fail = |mut out: TimestampCheck, e: String| {
        out.error = Some(e);
        (out, None)
    };
    let sd = match parse_signed_data(token) {
        Ok(sd) => sd,
        Err(e) => return fail(out, format!("the timestamp token cannot be parsed ({e})")),
    };
    if sd.content_type != oid::TST_INFO {
        return fail(out, "the timestamp token does not hold a TSTInfo".into());
    }
    let Some(tst) = sd.content else { return fail(out, "the timestamp token is empty".into()) };
    // TSTInfo ::= SEQUENCE { version, policy, messageImprint, serialNumber, genTime, ... }
    let parsed = (|| -> Result<Imprinted<'_>, DerError> {
        let mut f = tst.expect(tag::SEQUENCE, "TSTInfo")?.children();
        f.expect(tag::INTEGER, "version")?;
        f.expect(tag::OID, "policy")?;
        let mut mi = f.expect(tag::SEQUENCE, "messageImprint")?.children();
        let alg = mi.expect(tag::SEQUENCE, "hashAlgorithm")?.children().next_tlv()?.oid()?;
        let imprint = mi.expect(tag::OCTET_STRING, "hashedMessage")?.value;
        f.expect(tag::INTEGER, "serialNumber")?;
        let time = der::parse_time(&f.expect(tag::GENERALIZED_TIME, "genTime")?)?;
        Ok((alg, imprint, time))
    })();
    let (alg, imprint, (secs, millis)) = match parsed {
        Ok(p) => p,
        Err(e) => return fail(out, format!("TSTInfo cannot be read ({e})")),
    };
    out.time = Some(der::rfc3339(secs, millis));
    let mut pool: Vec<&Cert> = sd.certs.iter().collect();
    pool.extend(outer.iter().copied());
    let mut errors = Vec::new();
    let si = match sd.signers.as_slice() {
        [one] => parse_signer_info(one),
        _ => Err("a timestamp token needs exactly one SignerInfo".into()),
    };
    let si = match si {
        Ok(si) => si,
        Err(e) => return fail(out, e),
    };
    let (signer_ok, idx) = check_signer(&si, &pool, Some(&oid::TST_INFO), tst.raw, &mut errors);
    if let Some(i) = idx {
        out.authority = Some(pool[i].subject.clone());
    }
    match HashAlg::from_oid(&alg) {
        Some(h) if h.hash(signature) == imprint => {}
        Some(_) => errors.push("the timestamp's message imprint is not the signature it claims to countersign".into()),
        None => errors.push(format!("unsupported imprint algorithm {alg}")),
    }
    finish_timestamp(out, signer_ok, idx.map(|i| pool[i]), &pool, errors, secs, v)
}

/// Verify a legacy PKCS #9 countersignature (a SignerInfo over the outer signature value).
fn timestamp_legacy(si: &Tlv<'_>, signature: &[u8], pool: &[&Cert], v: &Verifier) -> (TimestampCheck, Option<i64>) {
    let mut out = TimestampCheck { kind: "legacy".into(), ..Default::default() };
    let si = match parse_signer_info(si) {
        Ok(si) => si,
        Err(e) => {
            out.error = Some(format!("the countersignature cannot be read ({e})"));
            return (out, None);
        }
    };
    let mut errors = Vec::new();
    let time = si
        .signed_attrs
        .and_then(|sa| attributes(&sa).ok())
        .and_then(|a| single(&a, &oid::SIGNING_TIME, "signing-time").ok())
        .and_then(|t| der::parse_time(&t).ok());
    let Some((secs, millis)) = time else {
        out.error = Some("the countersignature has no signing time".into());
        return (out, None);
    };
    out.time = Some(der::rfc3339(secs, millis));
    // A countersignature's message digest covers the outer signature value; it has no content-type
    // attribute (RFC 5652 11.4).
    let (signer_ok, idx) = check_signer(&si, pool, None, signature, &mut errors);
    if let Some(i) = idx {
        out.authority = Some(pool[i].subject.clone());
    }
    finish_timestamp(out, signer_ok, idx.map(|i| pool[i]), pool, errors, secs, v)
}

fn finish_timestamp(
    mut out: TimestampCheck,
    signer_ok: bool,
    tsa: Option<&Cert>,
    pool: &[&Cert],
    mut errors: Vec<String>,
    secs: i64,
    v: &Verifier,
) -> (TimestampCheck, Option<i64>) {
    let mut chain_ok = false;
    if let Some(tsa) = tsa {
        match build_chain(tsa, pool, v, purpose::TIME_STAMPING, EKU_TIME_STAMPING, secs) {
            Ok(_) => chain_ok = true,
            Err(e) => errors.push(format!("timestamp chain: {e}")),
        }
    }
    out.ok = signer_ok && chain_ok && errors.is_empty();
    if let Some(e) = errors.into_iter().next() {
        out.error = Some(e);
    }
    let t = out.ok.then_some(secs);
    (out, t)
}
