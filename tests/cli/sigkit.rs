//! The Authenticode signing kit (`fixtures::authenticode`) checked against its own invariants: the
//! authentihash ignores exactly what the specification excludes, the certificate table is laid out as the
//! PE format requires, and what the kit signs parses back and verifies. (The kit was validated against
//! osslsigncode once; these tests keep it honest without the tool, the network or the corpus.)

use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::{Decode, Encode};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{DerSignature, VerifyingKey};

use crate::fixtures::authenticode::*;
use crate::fixtures::{Pe, pe_checksum};

/// A small PE32+ whose length before signing is not a multiple of 8 (so signing has to pad).
fn odd_length_pe() -> Vec<u8> {
    let pe = Pe { overlay: b"odd-length overlay".to_vec(), ..Pe::new(true) }.build().bytes;
    assert_ne!(pe.len() % 8, 0, "the fixture must need padding");
    pe
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
fn authentihash_ignores_the_signature_and_sees_a_flipped_code_byte() {
    let pki = Pki::new();
    let pe = odd_length_pe();
    let image = prepare(&pe);
    let hash = authentihash(&image, DigestAlg::Sha256);
    assert_eq!(hash.len(), 32);
    assert_eq!(hash, authentihash(&prepare(&odd_length_pe()), DigestAlg::Sha256), "deterministic");

    // Signing adds a certificate table, fills the security directory and changes the CheckSum: all three
    // are outside the hash.
    let signed = sign_pe(&pe, &pki.signature());
    assert_ne!(signed[..image.len()], image[..], "the CheckSum and directory changed");
    assert_eq!(authentihash(&signed, DigestAlg::Sha256), hash);
    assert_eq!(authentihash(&signed, DigestAlg::Sha1), authentihash(&image, DigestAlg::Sha1));

    // The same hash is what the signature carries (SpcIndirectDataContent.messageDigest.digest, the last
    // 32 bytes of the encapsulated content).
    let sd = signed_data(&first_pkcs7(&signed));
    let content = sd.encap_content_info.econtent.as_ref().unwrap().to_der().unwrap();
    assert_eq!(content[content.len() - 32..], hash[..]);

    let flipped = flip_code_byte(&signed);
    assert_eq!(flipped.len(), signed.len());
    assert_ne!(authentihash(&flipped, DigestAlg::Sha256), hash);
}

#[test]
fn certificate_table_is_aligned_and_ends_the_file() {
    let pki = Pki::new();
    let pe = odd_length_pe();
    for signatures in [vec![pki.signature()], vec![pki.signature().digest(DigestAlg::Sha1), pki.signature()]] {
        let signed = sign_pe_entries(&pe, &signatures);
        let table = certificate_table(&signed).expect("a certificate table");
        assert_eq!(table.start % 8, 0, "the table starts 8-byte aligned");
        assert_eq!(table.end, signed.len(), "the table ends the file");
        assert_eq!(signed[pe.len()..table.start].iter().filter(|&&b| b != 0).count(), 0, "zero padding");

        let mut at = table.start;
        let mut entries = 0;
        while at < table.end {
            let dw_length = u32_at(&signed, at) as usize;
            assert_eq!(u16::from_le_bytes([signed[at + 4], signed[at + 5]]), 0x0200, "WIN_CERT_REVISION_2_0");
            assert_eq!(u16::from_le_bytes([signed[at + 6], signed[at + 7]]), 2, "PKCS_SIGNED_DATA");
            let blob = &signed[at + 8..at + dw_length];
            let parsed = ContentInfo::from_der(blob).expect("dwLength covers exactly one DER ContentInfo");
            assert_eq!(parsed.to_der().unwrap().len(), blob.len());
            let next = at + dw_length.next_multiple_of(8);
            assert!(signed[at + dw_length..next].iter().all(|&b| b == 0), "entry padding is zeros");
            at = next;
            entries += 1;
        }
        assert_eq!(at, table.end, "the entries fill the table exactly");
        assert_eq!(entries, signatures.len());

        let e_lfanew = u32_at(&signed, 0x3c) as usize;
        let checksum_at = e_lfanew + 24 + 64;
        assert_eq!(u32_at(&signed, checksum_at), pe_checksum(&signed, checksum_at), "the CheckSum is rewritten");
    }
}

#[test]
fn signatures_and_catalogs_parse_back_and_verify() {
    let pki = Pki::new();
    let pe = odd_length_pe();
    let when = utc(2025, 3, 1, 12, 0, 0);
    let signature = pki
        .signature()
        .timestamp(pki.rfc3161(when))
        .nest(pki.signature().digest(DigestAlg::Sha1).timestamp(pki.legacy_timestamp(when)));
    let pkcs7 = first_pkcs7(&sign_pe(&pe, &signature));
    let sd = signed_data(&pkcs7);
    assert_eq!(sd.encap_content_info.econtent_type, oid::SPC_INDIRECT_DATA);
    assert_eq!(sd.certificates.as_ref().map(|c| c.0.len()), Some(2), "leaf and intermediate");
    let signer = &sd.signer_infos.0.as_slice()[0];
    let signed_attrs = signer.signed_attrs.as_ref().expect("signed attributes");
    let oids: Vec<_> = signed_attrs.iter().map(|a| a.oid).collect();
    for expected in [oid::CONTENT_TYPE, oid::MESSAGE_DIGEST, oid::SPC_SP_OPUS_INFO, oid::SPC_STATEMENT_TYPE] {
        assert!(oids.contains(&expected), "{expected} in {oids:?}");
    }
    let unsigned: Vec<_> = signer.unsigned_attrs.as_ref().unwrap().iter().map(|a| a.oid).collect();
    assert!(unsigned.contains(&oid::SPC_RFC3161_TIMESTAMP) && unsigned.contains(&oid::SPC_NESTED_SIGNATURE));
    check_signer(&sd, &pki.leaf, DigestAlg::Sha256);

    // The catalog: a CTL content signed the same way.
    let cat = Catalog::new(DigestAlg::Sha256).with_pe("fixture.exe", &pe).sign(&pki.signature());
    let sd = signed_data(&cat);
    assert_eq!(sd.encap_content_info.econtent_type, oid::CTL);
    check_signer(&sd, &pki.leaf, DigestAlg::Sha256);
    let ctl = sd.encap_content_info.econtent.as_ref().unwrap().to_der().unwrap();
    let tag = Catalog::subject_identifier(&authentihash(&pe, DigestAlg::Sha256));
    assert!(ctl.windows(tag.len()).any(|w| w == tag), "the member is keyed by its hash tag");

    // A flawed signature parses but does not verify.
    let bad = sign_pe(&pe, &pki.signature().flaw(Flaw::SignatureOverOtherBytes));
    let sd = signed_data(&first_pkcs7(&bad));
    let signer = &sd.signer_infos.0.as_slice()[0];
    assert!(verify_signed_attrs(signer, &pki.leaf, DigestAlg::Sha256).is_err());
}

fn signed_data(pkcs7: &[u8]) -> SignedData {
    let ci = ContentInfo::from_der(pkcs7).expect("a ContentInfo");
    assert_eq!(ci.content_type, oid::SIGNED_DATA);
    SignedData::from_der(&ci.content.to_der().unwrap()).expect("a SignedData")
}

/// messageDigest is the hash of the content octets and the signature verifies with `cert`'s key.
fn check_signer(sd: &SignedData, cert: &Cert, alg: DigestAlg) {
    let signer = &sd.signer_infos.0.as_slice()[0];
    let content = sd.encap_content_info.econtent.as_ref().unwrap().to_der().unwrap();
    let attrs = signer.signed_attrs.as_ref().unwrap();
    let md = attrs.iter().find(|a| a.oid == oid::MESSAGE_DIGEST).unwrap().values.get(0).unwrap().value().to_vec();
    assert_eq!(md, alg.hash(content_octets(&content)));
    verify_signed_attrs(signer, cert, alg).expect("the signature verifies");
}

fn verify_signed_attrs(
    signer: &cms::signed_data::SignerInfo,
    cert: &Cert,
    alg: DigestAlg,
) -> Result<(), p256::ecdsa::Error> {
    let attrs_der = signer.signed_attrs.as_ref().unwrap().to_der().unwrap();
    assert_eq!(attrs_der[0], 0x31, "signed over the SET OF encoding");
    let key = VerifyingKey::from_sec1_bytes(&cert.key().public_point()).unwrap();
    let signature = DerSignature::try_from(signer.signature.as_bytes()).unwrap();
    key.verify_prehash(&alg.hash(&attrs_der), &signature)
}
