//! Signature primitives: the hash a signature algorithm names, and checking a signature with a public key.
//!
//! RSA PKCS#1 v1.5 (with MD5, SHA-1, SHA-256, SHA-384, SHA-512) and ECDSA on P-256 and P-384 cover every
//! Authenticode signer and certificate authority in use; anything else (RSA-PSS, other curves, DSA) is
//! reported as unsupported, which fails the check that needed it rather than passing it.

use const_oid::ObjectIdentifier;
use sha2::Digest;

use super::der::{Reader, tag};

/// A digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// MD5 (broken; reported as weak).
    Md5,
    /// SHA-1 (weak).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// The lower-case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Md5 => "md5",
            HashAlg::Sha1 => "sha1",
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
        }
    }

    /// MD5 and SHA-1 no longer resist collisions.
    pub fn is_weak(self) -> bool {
        matches!(self, HashAlg::Md5 | HashAlg::Sha1)
    }

    /// The algorithm an identifier names: a digest OID, or the digest of a signature OID.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<HashAlg> {
        Some(match oid.to_string().as_str() {
            "1.2.840.113549.2.5" | "1.2.840.113549.1.1.4" => HashAlg::Md5,
            "1.3.14.3.2.26" | "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" | "1.3.14.3.2.29" => HashAlg::Sha1,
            "2.16.840.1.101.3.4.2.1" | "1.2.840.113549.1.1.11" | "1.2.840.10045.4.3.2" => HashAlg::Sha256,
            "2.16.840.1.101.3.4.2.2" | "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => HashAlg::Sha384,
            "2.16.840.1.101.3.4.2.3" | "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => HashAlg::Sha512,
            _ => return None,
        })
    }

    /// Hash one buffer.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        self.hash_parts(&[data])
    }

    /// Hash the concatenation of several buffers.
    pub fn hash_parts(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            HashAlg::Md5 => run::<md5::Md5>(parts),
            HashAlg::Sha1 => run::<sha1::Sha1>(parts),
            HashAlg::Sha256 => run::<sha2::Sha256>(parts),
            HashAlg::Sha384 => run::<sha2::Sha384>(parts),
            HashAlg::Sha512 => run::<sha2::Sha512>(parts),
        }
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The key or signature algorithm is not one we check.
    #[error("unsupported {0}")]
    Unsupported(String),
    /// The public key could not be decoded.
    #[error("bad public key: {0}")]
    BadKey(String),
    /// The signature does not match.
    #[error("the signature does not match")]
    Mismatch,
}

const RSA: &str = "1.2.840.113549.1.1.1";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const P256: &str = "1.2.840.10045.3.1.7";
const P384: &str = "1.3.132.0.34";

/// Verify `signature` over a message whose digest under `hash` is `digest`, with the key in `spki` (a DER
/// SubjectPublicKeyInfo). `sig_alg` is the signature algorithm OID the signer named: it must agree with the
/// key type (an RSA OID for an RSA key, an ECDSA OID or id-ecPublicKey for an EC key).
pub fn verify_prehashed(
    spki: &[u8],
    sig_alg: &ObjectIdentifier,
    hash: HashAlg,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    let bad = |e: &dyn std::fmt::Display| CryptoError::BadKey(e.to_string());
    let mut r = Reader::new(spki);
    let seq = r.expect(tag::SEQUENCE, "SubjectPublicKeyInfo").map_err(|e| bad(&e))?;
    let mut fields = seq.children();
    let alg = fields.expect(tag::SEQUENCE, "AlgorithmIdentifier").map_err(|e| bad(&e))?;
    let key_bits = fields.expect(tag::BIT_STRING, "subjectPublicKey").map_err(|e| bad(&e))?;
    let mut alg_fields = alg.children();
    let key_alg = alg_fields.next_tlv().and_then(|t| t.oid()).map_err(|e| bad(&e))?;
    let key = match key_bits.value.split_first() {
        Some((0, key)) => key,
        _ => return Err(CryptoError::BadKey("public key bit string has unused bits".into())),
    };
    let sig_alg_s = sig_alg.to_string();
    let sig_is_rsa = sig_alg_s.starts_with("1.2.840.113549.1.1.") || sig_alg_s.starts_with("1.3.14.3.2.");
    let sig_is_ec = sig_alg_s.starts_with("1.2.840.10045.");
    match key_alg.to_string().as_str() {
        RSA => {
            if !sig_is_rsa || sig_alg_s == "1.2.840.113549.1.1.10" {
                return Err(CryptoError::Unsupported(format!("signature algorithm {sig_alg_s} with an RSA key")));
            }
            use rsa::pkcs1::DecodeRsaPublicKey;
            let key = rsa::PublicKey::from_pkcs1_der(key).map_err(|e| bad(&e))?;
            let scheme = match hash {
                HashAlg::Md5 => rsa::Pkcs1v15Sign::new::<md5::Md5>(),
                HashAlg::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                HashAlg::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                HashAlg::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
                HashAlg::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
            };
            key.verify(scheme, digest, signature).map_err(|_| CryptoError::Mismatch)
        }
        EC_PUBLIC_KEY => {
            if !sig_is_ec {
                return Err(CryptoError::Unsupported(format!("signature algorithm {sig_alg_s} with an EC key")));
            }
            let curve = alg_fields.next_tlv().and_then(|t| t.oid()).map_err(|e| bad(&e))?;
            use p256::ecdsa::signature::hazmat::PrehashVerifier;
            match curve.to_string().as_str() {
                P256 => {
                    let k = p256::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(|e| bad(&e))?;
                    let s = p256::ecdsa::Signature::from_der(signature).map_err(|_| CryptoError::Mismatch)?;
                    k.verify_prehash(digest, &s).map_err(|_| CryptoError::Mismatch)
                }
                P384 => {
                    let k = p384::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(|e| bad(&e))?;
                    let s = p384::ecdsa::Signature::from_der(signature).map_err(|_| CryptoError::Mismatch)?;
                    k.verify_prehash(digest, &s).map_err(|_| CryptoError::Mismatch)
                }
                other => Err(CryptoError::Unsupported(format!("elliptic curve {other}"))),
            }
        }
        other => Err(CryptoError::Unsupported(format!("public key algorithm {other}"))),
    }
}

/// Verify `signature` over `message` (hashing it with the algorithm `sig_alg` names, or `hash` when the OID
/// names a bare key algorithm such as rsaEncryption, as CMS signers often do).
pub fn verify_message(
    spki: &[u8],
    sig_alg: &ObjectIdentifier,
    hash: HashAlg,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    verify_prehashed(spki, sig_alg, hash, &hash.hash(message), signature)
}

/// Signature checks remembered per process at most.
const MAX_CACHED_SIGNATURES: usize = 10_000;

/// [`verify_message`], remembered per process: the same signer signature appears in every copy of a signed
/// file (runtime DLLs copied next to each program, installers bundling them), and a check is a pure function
/// of its inputs. The key is the SHA-256 of every input.
pub fn verify_message_cached(
    spki: &[u8],
    sig_alg: &ObjectIdentifier,
    hash: HashAlg,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    type Cache = std::collections::HashMap<[u8; 32], Result<(), CryptoError>>;
    static CACHE: std::sync::OnceLock<std::sync::Mutex<Cache>> = std::sync::OnceLock::new();
    let mut key = sha2::Sha256::new();
    for part in [spki, sig_alg.as_bytes(), &[hash as u8], message, signature] {
        key.update((part.len() as u64).to_le_bytes());
        key.update(part);
    }
    let key: [u8; 32] = key.finalize().into();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(r) = cache.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return r;
    }
    let r = verify_message(spki, sig_alg, hash, message, signature);
    if let Ok(mut m) = cache.lock() {
        if m.len() < MAX_CACHED_SIGNATURES {
            m.insert(key, r.clone());
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_names_and_oids() {
        let oid = |s: &str| ObjectIdentifier::new(s).unwrap();
        assert_eq!(HashAlg::from_oid(&oid("2.16.840.1.101.3.4.2.1")), Some(HashAlg::Sha256));
        assert_eq!(HashAlg::from_oid(&oid("1.2.840.113549.1.1.5")), Some(HashAlg::Sha1));
        assert_eq!(HashAlg::from_oid(&oid("1.2.840.10045.4.3.3")), Some(HashAlg::Sha384));
        assert_eq!(HashAlg::from_oid(&oid("1.2.840.113549.1.1.1")), None);
        assert!(HashAlg::Md5.is_weak() && HashAlg::Sha1.is_weak() && !HashAlg::Sha256.is_weak());
        assert_eq!(
            crate::hex::encode(&HashAlg::Sha256.hash_parts(&[b"a", b"bc"])),
            crate::hex::encode(&HashAlg::Sha256.hash(b"abc"))
        );
    }

    #[test]
    fn the_cached_check_gives_the_same_answers() {
        let oid = ObjectIdentifier::new("1.2.840.113549.1.1.11").unwrap();
        for (spki, sig) in [(&[0x30u8, 0x00][..], &[1u8, 2, 3][..]), (&[0x30, 0x00], &[1, 2, 4]), (&[], &[])] {
            let direct = verify_message(spki, &oid, HashAlg::Sha256, b"message", sig);
            assert!(direct.is_err());
            for _ in 0..2 {
                assert_eq!(verify_message_cached(spki, &oid, HashAlg::Sha256, b"message", sig), direct);
            }
        }
    }

    #[test]
    fn garbage_keys_are_errors_not_panics() {
        let oid = ObjectIdentifier::new("1.2.840.113549.1.1.11").unwrap();
        for spki in
            [&[][..], &[0x30, 0x00], &[0x30, 0x03, 0x30, 0x01, 0x06], &[0x30, 0x05, 0x30, 0x00, 0x03, 0x01, 0x00]]
        {
            assert!(verify_prehashed(spki, &oid, HashAlg::Sha256, &[0; 32], &[1, 2, 3]).is_err());
        }
    }
}
