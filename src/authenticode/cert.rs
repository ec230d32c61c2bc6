//! X.509 certificates as the chain check needs them: the exact signed bytes, names for matching and display,
//! validity, and the constraints (basic constraints, key usage, extended key usage).
//!
//! `x509-cert` decodes the certificate (with its permissive `Raw` profile: real code-signing certificates
//! carry negative or over-long serial numbers that the strict RFC 5280 profile refuses); the DER reader keeps
//! the original `tbsCertificate`, issuer and subject bytes, which are what signatures and name matching use.

use const_oid::ObjectIdentifier;
use der::Decode;
use x509_cert::certificate::{CertificateInner, Raw};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};

use super::crypto::{self, CryptoError, HashAlg};
use super::der::{DerError, Reader, tag};

/// Code signing (RFC 5280).
pub const EKU_CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
/// Time stamping (RFC 5280).
pub const EKU_TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";
/// Any extended key usage.
pub const EKU_ANY: &str = "2.5.29.37.0";
/// Microsoft lifetime signing: the signature expires with the certificate, whatever the timestamp says.
pub const EKU_LIFETIME_SIGNING: &str = "1.3.6.1.4.1.311.10.3.13";

/// One certificate.
#[derive(Debug, Clone)]
pub struct Cert {
    /// The whole certificate, DER.
    pub raw: Vec<u8>,
    /// Range of `tbsCertificate` in `raw`.
    tbs: std::ops::Range<usize>,
    /// The issuer Name, DER.
    pub issuer_raw: Vec<u8>,
    /// The subject Name, DER.
    pub subject_raw: Vec<u8>,
    /// The serial number's INTEGER contents.
    pub serial: Vec<u8>,
    /// SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
    /// signatureAlgorithm.
    pub sig_alg: ObjectIdentifier,
    /// signatureValue (bit string contents, without the unused-bits octet).
    pub signature: Vec<u8>,
    /// Subject, RFC 4514 order with ", " between attributes.
    pub subject: String,
    /// Issuer, the same way.
    pub issuer: String,
    /// notBefore, seconds since the epoch.
    pub not_before: i64,
    /// notAfter, seconds since the epoch.
    pub not_after: i64,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// basicConstraints pathLenConstraint.
    pub path_len: Option<u8>,
    /// keyUsage: (digitalSignature, keyCertSign), when the extension is present.
    pub key_usage: Option<(bool, bool)>,
    /// extendedKeyUsage OIDs, when the extension is present.
    pub eku: Option<Vec<String>>,
    /// SHA-1 of the DER (the "thumbprint" Windows shows).
    pub sha1: String,
}

impl Cert {
    /// Parse one DER certificate.
    pub fn parse(raw: &[u8]) -> Result<Cert, String> {
        let der_err = |e: DerError| e.to_string();
        let mut top = Reader::new(raw);
        let cert = top.expect(tag::SEQUENCE, "Certificate").map_err(der_err)?;
        top.finish("a certificate").map_err(der_err)?;
        let mut parts = cert.children();
        let tbs = parts.expect(tag::SEQUENCE, "tbsCertificate").map_err(der_err)?;
        let alg = parts.expect(tag::SEQUENCE, "signatureAlgorithm").map_err(der_err)?;
        let sig = parts.expect(tag::BIT_STRING, "signatureValue").map_err(der_err)?;
        let sig_alg = alg.children().next_tlv().and_then(|t| t.oid()).map_err(der_err)?;
        let signature = match sig.value.split_first() {
            Some((0, s)) => s.to_vec(),
            _ => return Err("signature bit string has unused bits".into()),
        };
        let mut f = tbs.children();
        f.optional(tag::CTX0).map_err(der_err)?;
        let serial = f.expect(tag::INTEGER, "serialNumber").map_err(der_err)?;
        f.expect(tag::SEQUENCE, "signature").map_err(der_err)?;
        let issuer = f.expect(tag::SEQUENCE, "issuer").map_err(der_err)?;
        f.expect(tag::SEQUENCE, "validity").map_err(der_err)?;
        let subject = f.expect(tag::SEQUENCE, "subject").map_err(der_err)?;
        let spki = f.expect(tag::SEQUENCE, "subjectPublicKeyInfo").map_err(der_err)?;

        let typed = CertificateInner::<Raw>::from_der(raw).map_err(|e| e.to_string())?;
        let t = typed.tbs_certificate();
        let validity = t.validity();
        let not_before = validity.not_before.to_unix_duration().as_secs() as i64;
        let not_after = validity.not_after.to_unix_duration().as_secs() as i64;
        let (mut is_ca, mut path_len, mut key_usage, mut eku) = (false, None, None, None);
        if let Ok(Some((_, bc))) = t.get_extension::<BasicConstraints>() {
            is_ca = bc.ca;
            path_len = bc.path_len_constraint;
        }
        if let Ok(Some((_, ku))) = t.get_extension::<KeyUsage>() {
            key_usage = Some((ku.digital_signature(), ku.key_cert_sign()));
        }
        if let Ok(Some((_, e))) = t.get_extension::<ExtendedKeyUsage>() {
            eku = Some(e.0.iter().map(|o| o.to_string()).collect());
        }
        let start = tbs.raw.as_ptr() as usize - raw.as_ptr() as usize;
        Ok(Cert {
            raw: raw.to_vec(),
            tbs: start..start + tbs.raw.len(),
            issuer_raw: issuer.raw.to_vec(),
            subject_raw: subject.raw.to_vec(),
            serial: serial.value.to_vec(),
            spki: spki.raw.to_vec(),
            sig_alg,
            signature,
            subject: display_name(t.subject()),
            issuer: display_name(t.issuer()),
            not_before,
            not_after,
            is_ca,
            path_len,
            key_usage,
            eku,
            sha1: crate::hex::encode(&HashAlg::Sha1.hash(raw)),
        })
    }

    /// The signed part.
    pub fn tbs(&self) -> &[u8] {
        &self.raw[self.tbs.clone()]
    }

    /// Whether `issuer` signed this certificate: names chain and the issuer's key verifies the signature.
    pub fn verify_issued_by(&self, issuer: &Cert) -> Result<(), CryptoError> {
        let hash = HashAlg::from_oid(&self.sig_alg)
            .ok_or_else(|| CryptoError::Unsupported(format!("certificate signature algorithm {}", self.sig_alg)))?;
        crypto::verify_message(&issuer.spki, &self.sig_alg, hash, self.tbs(), &self.signature)
    }

    /// Whether the extended key usage allows `purpose` (absent extension: any use).
    pub fn allows(&self, purpose: &str) -> bool {
        self.eku.as_ref().is_none_or(|e| e.iter().any(|o| o == purpose || o == EKU_ANY))
    }

    /// The serial number as upper-case hex, as Windows shows it.
    pub fn serial_hex(&self) -> String {
        // The INTEGER's sign octet is not part of the number Windows shows.
        match self.serial.as_slice() {
            [0, rest @ ..] if !rest.is_empty() => crate::hex::encode(rest),
            s => crate::hex::encode(s),
        }
    }

    /// Valid at `t` (seconds since the epoch).
    pub fn valid_at(&self, t: i64) -> bool {
        self.not_before <= t && t <= self.not_after
    }

    /// The common name, or the whole subject when there is none.
    pub fn common_name(&self) -> &str {
        self.subject.strip_prefix("CN=").map_or(self.subject.as_str(), |s| s.split(", ").next().unwrap_or(s))
    }
}

/// A Name as "CN=…, O=…, C=…": most specific first, as signify and the Windows UI print it.
pub fn display_name(name: &x509_cert::name::Name) -> String {
    let mut parts: Vec<String> = Vec::new();
    for rdn in name.iter_rdn().collect::<Vec<_>>().into_iter().rev() {
        let atvs: Vec<String> = rdn.iter().map(display_atv).collect();
        parts.push(atvs.join("+"));
    }
    parts.join(", ")
}

/// One attribute: the usual short names from a small table (x509-cert's own Display searches the whole OID
/// database for every attribute, which made parsing the bundled anchors the slowest part of a check), any
/// other attribute as x509-cert prints it.
fn display_atv(atv: &x509_cert::attr::AttributeTypeAndValue) -> String {
    use der::{Tag, Tagged};
    let short = match atv.oid.to_string().as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "SERIALNUMBER",
        "1.2.840.113549.1.9.1" => "E",
        "0.9.2342.19200300.100.1.25" => "DC",
        _ => return atv.to_string(),
    };
    let bytes = atv.value.value();
    let text = match atv.value.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::TeletexString | Tag::VisibleString => {
            String::from_utf8_lossy(bytes).into_owned()
        }
        Tag::BmpString => String::from_utf16_lossy(
            &bytes.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect::<Vec<_>>(),
        ),
        _ => return atv.to_string(),
    };
    let mut out = format!("{short}=");
    for c in text.chars() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
