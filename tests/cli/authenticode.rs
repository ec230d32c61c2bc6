//! Authenticode verification on files the tests sign themselves (`fixtures::authenticode`, a P-256 PKI made
//! from fixed seeds): a valid signature, each hostile case the issue lists, and each check failing on its own.
//! Every case runs the real binary with `--trust` on the kit's roots (`--trust-only` where the bundled
//! anchors would only add noise).

use std::path::Path;

use serde_json::Value;

use crate::fixtures::Pe;
use crate::fixtures::authenticode::{
    self as kit, Catalog, CertSpec, DigestAlg, Flaw, Pki, Signature, data_after_certificate_table,
    extra_bytes_in_certificate, flip_code_byte, sign_pe, sign_pe_entries, sign_with_self_signed_leaf, sigthief, utc,
    with_security_directory, with_win_certificate_length,
};
use crate::support;
use filerep::report::SignatureStatus;

/// The fixture module's complete sample PE (imports, resources, version info), without its placeholder
/// certificate table.
fn unsigned() -> Vec<u8> {
    let mut pe = Pe::sample(true);
    pe.certificate = None;
    pe.build().bytes
}

/// Write `file`, the kit's roots as `roots.pem`, and return `check --json`'s report.
fn check(dir: &Path, pki: &Pki, file: &[u8], extra: &[&str]) -> Value {
    let roots = dir.join("roots.pem");
    std::fs::write(&roots, kit::pem_bundle(&[&pki.root, &pki.tsa_root])).unwrap();
    std::fs::write(dir.join("signed.exe"), file).unwrap();
    let out = support::filerep(dir)
        .args(["check", "--json", "--no-store", "--trust", roots.to_str().unwrap()])
        .args(extra)
        .arg("signed.exe")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["reports"][0].clone()
}

fn sig(report: &Value) -> &Value {
    &report["signature"]
}

fn reason_ids(report: &Value) -> Vec<String> {
    report["verdict"]["reasons"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_signature_chaining_to_a_trusted_root_is_valid_and_good_evidence() {
    let (dir, pki) = (tempfile::tempdir().unwrap(), Pki::new());
    let signed = sign_pe(&unsigned(), &pki.signature().timestamp(pki.rfc3161(utc(2025, 3, 1, 12, 0, 0))));
    let r = check(dir.path(), &pki, &signed, &["--trust-only"]);
    let s = sig(&r);
    assert_eq!(s["status"], "valid", "{s:#}");
    let one = &s["signatures"][0];
    for check in ["digest_ok", "signer_ok", "chain_ok"] {
        assert_eq!(one[check], true, "{check}: {one:#}");
    }
    assert_eq!(one["digest_algorithm"], "sha256");
    assert_eq!(one["timestamp"], "2025-03-01T12:00:00Z");
    assert_eq!(one["countersignature"]["kind"], "rfc3161");
    assert_eq!(one["signer_subject"], "CN=Filerep Test Publisher, O=Filerep Test PKI");
    assert_eq!(one["issuer_subject"], "CN=Filerep Test Code Signing CA, O=Filerep Test PKI");
    assert_eq!(one["nested"], false);
    let chain: Vec<&str> = one["chain"].as_array().unwrap().iter().map(|c| c["subject"].as_str().unwrap()).collect();
    assert_eq!(chain.len(), 3, "leaf, intermediate, root: {chain:?}");
    assert_eq!(s["trust"]["revocation_checked"], false);
    assert_eq!(r["verdict"]["level"], "good");
    assert_eq!(reason_ids(&r), ["signature-valid"]);
    assert_eq!(r["verdict"]["reasons"][0]["source"], "authenticode");

    // The same file against the bundled anchors only: the kit's root is nobody's.
    std::fs::write(dir.path().join("signed.exe"), &signed).unwrap();
    let out = support::filerep(dir.path()).args(["check", "--json", "--no-store", "signed.exe"]).output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &doc["reports"][0]["signature"];
    assert_eq!(s["status"], "untrusted", "{s:#}");
    assert_eq!(s["signatures"][0]["digest_ok"], true);
    assert_eq!(s["signatures"][0]["signer_ok"], true);
    assert!(s["signatures"][0]["errors"][0].as_str().unwrap().contains("Filerep Test Root CA"), "{s:#}");
    assert_eq!(doc["reports"][0]["verdict"]["level"], "unknown");
}

#[test]
fn a_file_without_a_signature_is_absent_not_bad() {
    let (dir, pki) = (tempfile::tempdir().unwrap(), Pki::new());
    let r = check(dir.path(), &pki, &unsigned(), &[]);
    assert_eq!(sig(&r)["status"], "absent");
    assert_eq!(sig(&r)["summary"], "no embedded signature (may be catalog-signed)");
    assert_eq!(r["verdict"]["level"], "unknown", "{:#}", r["verdict"]);
    assert!(reason_ids(&r).iter().all(|id| !id.starts_with("signature-")), "{:?}", reason_ids(&r));
}

#[test]
fn hostile_structures_are_caught() {
    let (dir, pki) = (tempfile::tempdir().unwrap(), Pki::new());
    let signed = sign_pe(&unsigned(), &pki.signature());
    let mut other = Pe::new(false);
    other.code = vec![0xcc; 64];
    let victim = other.build().bytes;
    let table = kit::certificate_table(&signed).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        // SigThief: the signature is intact, the file is another one.
        ("signature copied onto another file", sigthief(&signed, &victim), "invalid", "modified after signing"),
        ("one byte of code flipped", flip_code_byte(&signed), "invalid", "modified after signing"),
        // CVE-2013-3900: data inside the entry, after the PKCS#7 blob.
        (
            "bytes appended inside the certificate entry",
            extra_bytes_in_certificate(&signed, b"MZ-payload-smuggled"),
            "tampered",
            "CVE-2013-3900",
        ),
        (
            "data after the certificate table",
            data_after_certificate_table(&signed, &[0x41; 40]),
            "tampered",
            "must end the file",
        ),
        (
            "absurd WIN_CERTIFICATE length",
            with_win_certificate_length(&signed, 0xffff_fff0),
            "malformed",
            "does not fit",
        ),
        (
            "directory size past the end of the file",
            with_security_directory(&signed, table.start as u32, 0x7fff_0000),
            "malformed",
            "runs past the end of the file",
        ),
        (
            "directory inside the headers",
            with_security_directory(&signed, 0x40, 0x100),
            "malformed",
            "overlaps the headers",
        ),
    ];
    for (what, file, status, words) in cases {
        let r = check(dir.path(), &pki, &file, &["--trust-only"]);
        let s = sig(&r);
        assert_eq!(s["status"], status, "{what}: {s:#}");
        assert!(s["summary"].as_str().unwrap().contains(words), "{what}: {}", s["summary"]);
        assert_eq!(r["verdict"]["level"], "suspicious", "{what}");
        assert!(reason_ids(&r).contains(&format!("signature-{status}")), "{what}: {:?}", reason_ids(&r));
    }
}

#[test]
fn each_check_fails_on_its_own() {
    let (dir, pki) = (tempfile::tempdir().unwrap(), Pki::new());
    let pe = unsigned();
    let first = |r: &Value| r["signature"]["signatures"][0].clone();

    // Signer: the signature is over other bytes; the message digest attribute is wrong.
    for flaw in [Flaw::SignatureOverOtherBytes, Flaw::WrongMessageDigest] {
        let r = check(dir.path(), &pki, &sign_pe(&pe, &pki.signature().flaw(flaw)), &["--trust-only"]);
        let s = first(&r);
        assert_eq!(
            (s["digest_ok"].clone(), s["signer_ok"].clone()),
            (Value::Bool(true), Value::Bool(false)),
            "{flaw:?}: {s:#}"
        );
        assert_eq!(r["signature"]["status"], "invalid", "{flaw:?}");
    }

    // Chain: a self-signed signer verifies its own signature but reaches no anchor.
    let r = check(dir.path(), &pki, &sign_with_self_signed_leaf(&pe, &pki), &["--trust-only"]);
    let s = first(&r);
    assert_eq!((s["digest_ok"] == true, s["signer_ok"] == true, s["chain_ok"] == true), (true, true, false), "{s:#}");
    assert_eq!(r["signature"]["status"], "untrusted");

    // Chain: a leaf without the code-signing EKU.
    let mut spec = CertSpec::code_signing("Filerep Test Server");
    spec.ekus = vec![const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1")];
    let server = pki.intermediate.issue(spec);
    let r = check(dir.path(), &pki, &sign_pe(&pe, &Signature::new(&server, &[&pki.intermediate])), &["--trust-only"]);
    let s = first(&r);
    assert_eq!(s["chain_ok"], false);
    assert!(s["errors"].to_string().contains("code signing"), "{s:#}");

    // Time: an expired leaf is valid when a verified timestamp falls inside its validity...
    let mut spec = CertSpec::code_signing("Filerep Test Old Publisher");
    (spec.not_before, spec.not_after) = (utc(2020, 1, 1, 0, 0, 0), utc(2022, 1, 1, 0, 0, 0));
    let old = pki.intermediate.issue(spec);
    let stamped = Signature::new(&old, &[&pki.intermediate]).timestamp(pki.rfc3161(utc(2021, 6, 1, 0, 0, 0)));
    let r = check(dir.path(), &pki, &sign_pe(&pe, &stamped), &["--trust-only"]);
    assert_eq!(r["signature"]["status"], "valid", "{:#}", r["signature"]);
    // ... and not without one,
    let r = check(dir.path(), &pki, &sign_pe(&pe, &Signature::new(&old, &[&pki.intermediate])), &["--trust-only"]);
    assert_eq!(r["signature"]["status"], "untrusted");
    assert!(first(&r)["errors"].to_string().contains("is not valid at"), "{:#}", first(&r));
    // ... nor when the timestamp does not countersign this signature (it is not trusted, the time is not used),
    let mut ts = pki.rfc3161(utc(2021, 6, 1, 0, 0, 0));
    ts.wrong_imprint = true;
    let r = check(
        dir.path(),
        &pki,
        &sign_pe(&pe, &Signature::new(&old, &[&pki.intermediate]).timestamp(ts)),
        &["--trust-only"],
    );
    let s = first(&r);
    assert_eq!(s["countersignature"]["ok"], false, "{s:#}");
    assert_eq!(s["timestamp"], Value::Null);
    assert_eq!(r["signature"]["status"], "untrusted");
    // ... nor under the lifetime-signing EKU.
    let mut spec = CertSpec::code_signing("Filerep Test Lifetime Publisher");
    (spec.not_before, spec.not_after) = (utc(2020, 1, 1, 0, 0, 0), utc(2022, 1, 1, 0, 0, 0));
    spec.ekus.push(const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.10.3.13"));
    let lifetime = pki.intermediate.issue(spec);
    let stamped = Signature::new(&lifetime, &[&pki.intermediate]).timestamp(pki.rfc3161(utc(2021, 6, 1, 0, 0, 0)));
    let r = check(dir.path(), &pki, &sign_pe(&pe, &stamped), &["--trust-only"]);
    assert_eq!(first(&r)["timestamp"], "2021-06-01T00:00:00Z");
    assert_eq!(r["signature"]["status"], "untrusted", "{:#}", r["signature"]);

    // A legacy countersignature verifies like an RFC 3161 token.
    let stamped = Signature::new(&old, &[&pki.intermediate]).timestamp(pki.legacy_timestamp(utc(2021, 6, 1, 0, 0, 0)));
    let r = check(dir.path(), &pki, &sign_pe(&pe, &stamped), &["--trust-only"]);
    assert_eq!(first(&r)["countersignature"]["kind"], "legacy");
    assert_eq!(r["signature"]["status"], "valid", "{:#}", r["signature"]);
}

#[test]
fn weak_digests_nesting_and_two_entries() {
    let (dir, pki) = (tempfile::tempdir().unwrap(), Pki::new());
    let pe = unsigned();

    // MD5 and SHA-1 verify, and are reported as weak.
    for (alg, name) in [(DigestAlg::Md5, "md5"), (DigestAlg::Sha1, "sha1")] {
        let r = check(dir.path(), &pki, &sign_pe(&pe, &pki.signature().digest(alg)), &["--trust-only"]);
        let s = &r["signature"]["signatures"][0];
        assert_eq!((s["digest_algorithm"].as_str(), s["digest_weak"].as_bool()), (Some(name), Some(true)));
        assert_eq!(r["signature"]["status"], "valid", "{name}: {:#}", r["signature"]);
        assert!(reason_ids(&r).contains(&"signature-weak-digest".to_string()), "{name}");
    }

    // A SHA-1 signature with a nested SHA-256 one: both verified, the second marked nested.
    let dual = pki.signature().digest(DigestAlg::Sha1).nest(pki.signature());
    let r = check(dir.path(), &pki, &sign_pe(&pe, &dual), &["--trust-only"]);
    let all = r["signature"]["signatures"].as_array().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!((all[0]["nested"].clone(), all[1]["nested"].clone()), (Value::Bool(false), Value::Bool(true)));
    assert!(all.iter().all(|s| s["digest_ok"] == true && s["signer_ok"] == true && s["chain_ok"] == true));

    // Nesting far deeper than any real file: bounded, reported, no recursion blow-up.
    let mut deep = pki.signature();
    for _ in 0..12 {
        deep = pki.signature().nest(deep);
    }
    let r = check(dir.path(), &pki, &sign_pe(&pe, &deep), &["--trust-only"]);
    assert_eq!(r["signature"]["status"], "malformed", "{:#}", r["signature"]["summary"]);
    assert!(r["signature"]["summary"].as_str().unwrap().contains("nested more than"));
    assert!(r["signature"]["signatures"].as_array().unwrap().len() <= 16);

    // Two WIN_CERTIFICATE entries (as UEFI binaries carry): both verified.
    let other = Pki::named("Second");
    let roots = dir.path().join("second.pem");
    std::fs::write(&roots, kit::pem_bundle(&[&other.root])).unwrap();
    let two = sign_pe_entries(&pe, &[pki.signature(), other.signature()]);
    let r = check(dir.path(), &pki, &two, &["--trust-only", "--trust", roots.to_str().unwrap()]);
    let all = r["signature"]["signatures"].as_array().unwrap();
    assert_eq!(all.iter().map(|s| s["entry"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(r["signature"]["status"], "valid", "{:#}", r["signature"]);
}

#[test]
fn bad_trust_files_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.exe"), unsigned()).unwrap();
    std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
    for (arg, words) in [("missing.pem", "missing.pem"), ("junk.pem", "no certificate")] {
        let out = support::filerep(dir.path()).args(["check", "--trust", arg, "a.exe"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{arg}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(words), "{err}");
    }
    let out = support::filerep(dir.path()).args(["check", "--trust-only", "a.exe"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "--trust-only needs --trust");
}

#[test]
fn a_catalog_signed_file_verifies_through_its_catalog() {
    let (dir, pki) = (tempfile::tempdir().unwrap(), Pki::new());
    let member = unsigned();
    let mut stranger = Pe::sample(false);
    stranger.certificate = None;
    let stranger = stranger.build().bytes;
    for alg in [DigestAlg::Sha1, DigestAlg::Sha256] {
        let cat = Catalog::new(alg).with_pe("member.exe", &member).sign(&pki.signature());
        std::fs::write(dir.path().join("kit.cat"), &cat).unwrap();
        let r = check(dir.path(), &pki, &member, &["--trust-only", "--catalog", "kit.cat"]);
        let s = sig(&r);
        assert_eq!(s["status"], "valid", "{alg:?}: {s:#}");
        assert!(
            s["summary"].as_str().unwrap().starts_with("signed by catalog kit.cat, signer Filerep Test Publisher"),
            "{s:#}"
        );
        assert_eq!(s["catalog"]["valid"], true);
        assert_eq!(s["signatures"].as_array().unwrap().len(), 0, "no embedded signature");
        assert_eq!(r["verdict"]["level"], "good");
        // A file the catalog does not list stays unsigned.
        let r = check(dir.path(), &pki, &stranger, &["--trust-only", "--catalog", "kit.cat"]);
        assert_eq!(sig(&r)["status"], "absent");
        assert_eq!(sig(&r)["catalog"], Value::Null);
    }
    // A catalog whose signer nobody trusts lists the file but does not vouch for it.
    let cat = Catalog::new(DigestAlg::Sha256).with_pe("member.exe", &member).sign(&pki.signature());
    std::fs::write(dir.path().join("kit.cat"), &cat).unwrap();
    std::fs::write(dir.path().join("member.exe"), &member).unwrap();
    let out = support::filerep(dir.path())
        .args(["check", "--json", "--no-store", "--catalog", "kit.cat", "member.exe"])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &doc["reports"][0]["signature"];
    assert_eq!(s["status"], "untrusted", "{s:#}");
    assert_eq!(s["catalog"]["valid"], false);
    // A catalog with a broken signature over its list.
    let bad = Catalog::new(DigestAlg::Sha256)
        .with_pe("member.exe", &member)
        .sign(&pki.signature().flaw(Flaw::WrongMessageDigest));
    std::fs::write(dir.path().join("bad.cat"), &bad).unwrap();
    let r = check(dir.path(), &pki, &member, &["--trust-only", "--catalog", "bad.cat"]);
    assert_eq!(sig(&r)["status"], "untrusted", "{:#}", sig(&r));
    assert_eq!(sig(&r)["catalog"]["signature"]["signer_ok"], false);
    // Not a catalog at all: one line, exit 2.
    std::fs::write(dir.path().join("junk.cat"), b"junk").unwrap();
    let out = support::filerep(dir.path()).args(["check", "--catalog", "junk.cat", "member.exe"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("junk.cat") && err.trim().lines().count() == 1, "{err}");
}

/// Run filerep in `dir` (its store is `dir/filerep-store.sqlite`); returns (exit code, stdout, stderr).
fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = support::filerep(dir).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn catalogs_import_into_the_store_and_vouch_for_their_members() {
    let (dir, pki) = (tempfile::tempdir().unwrap(), Pki::new());
    let d = dir.path();
    let member = unsigned();
    std::fs::write(d.join("member.exe"), &member).unwrap();
    std::fs::write(d.join("roots.pem"), kit::pem_bundle(&[&pki.root, &pki.tsa_root])).unwrap();
    let cats = d.join("CatRoot").join("{F750E6C3-38EE-11D1-85E5-00C04FC295EE}");
    std::fs::create_dir_all(&cats).unwrap();
    let signed = pki.signature().timestamp(pki.rfc3161(utc(2025, 3, 1, 12, 0, 0)));
    std::fs::write(cats.join("kit.cat"), Catalog::new(DigestAlg::Sha256).with_pe("member.exe", &member).sign(&signed))
        .unwrap();
    std::fs::write(cats.join("readme.txt"), "not a catalog, not read").unwrap();

    // Without the kit's root the catalog does not verify: nothing to import, the reason named, exit 2.
    let (code, out, err) = run(d, &["db", "import", "--format", "catalog", "CatRoot"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("kit.cat: not trusted") && err.trim().lines().count() == 1, "{err}");
    let (_, out, _) = run(d, &["check", "--json", "member.exe"]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["reports"][0]["verdict"]["level"], "unknown", "{:#}", r["reports"][0]["verdict"]);

    // With it, the member is known good through its image hash, and the reason names the catalog and signer.
    let (code, out, err) = run(d, &["db", "import", "--format", "catalog", "--trust", "roots.pem", "CatRoot"]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = run(d, &["check", "--json", "member.exe"]);
    let r: Value = serde_json::from_str(&out).unwrap();
    let verdict = &r["reports"][0]["verdict"];
    assert_eq!(verdict["level"], "good", "{verdict:#}");
    let known = verdict["reasons"].as_array().unwrap().iter().find(|x| x["id"] == "known-good").expect("known-good");
    assert_eq!(known["source"], "catalog");
    assert_eq!(known["source_version"], "2025-03-01", "the catalog's timestamp dates the data set");
    let msg = known["message"].as_str().unwrap();
    assert!(msg.contains("member.exe") && msg.contains("kit.cat") && msg.contains("Filerep Test Publisher"), "{msg}");
    assert!(msg.contains("authentihash-sha256"), "{msg}");
    assert_eq!(r["reports"][0]["signature"]["status"], "absent", "the file itself still has no embedded signature");

    // The same catalogs again: unchanged.
    let (code, out, err) = run(d, &["db", "import", "--format", "catalog", "--trust", "roots.pem", "CatRoot"]);
    assert_eq!(code, 0);
    assert!(format!("{out}{err}").contains("unchanged"), "{out}{err}");

    // --strict refuses an untrusted catalog and leaves the store as it was.
    let (code, _, err) = run(d, &["db", "import", "--format", "catalog", "--strict", "CatRoot"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not trusted") && err.trim().lines().count() == 1, "{err}");
    let (_, out, _) = run(d, &["check", "--json", "member.exe"]);
    assert!(out.contains("\"known-good\""), "the previous import still answers");

    // A directory without catalogs, and a file that is not one.
    std::fs::create_dir_all(d.join("empty")).unwrap();
    let (code, _, err) = run(d, &["db", "import", "--format", "catalog", "--source", "other", "empty"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no .cat file"), "{err}");
}

#[test]
fn a_signer_on_a_blocklist_in_the_store_is_reported_and_not_good_evidence() {
    let (dir, pki) = (tempfile::tempdir().unwrap(), Pki::new());
    let d = dir.path();
    std::fs::write(d.join("roots.pem"), kit::pem_bundle(&[&pki.root, &pki.tsa_root])).unwrap();
    std::fs::write(d.join("signed.exe"), sign_pe(&unsigned(), &pki.signature())).unwrap();
    let check = |d: &Path| -> Value {
        let (_, out, err) = run(d, &["check", "--json", "--trust", "roots.pem", "--trust-only", "signed.exe"]);
        let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
        doc["reports"][0].clone()
    };
    // A LOLDrivers-shaped feed: one malicious driver signed by the kit's publisher, one by somebody else.
    let entry = |id: &str, name: &str, hash: char, signer: &str| {
        format!(
            r#"{{"Id":"{id}","Category":"malicious","KnownVulnerableSamples":[{{"Filename":"{name}","SHA256":"{}","Signature":["{signer}","Some CA"]}}]}}"#,
            hash.to_string().repeat(64)
        )
    };
    let feed = format!(
        "[{},{}]",
        entry("a", "evil.sys", 'a', "filerep test PUBLISHER"),
        entry("b", "other.sys", 'b', "Somebody Else Ltd")
    );
    std::fs::write(d.join("drivers.json"), feed).unwrap();

    // Before the feed: the valid signature is good evidence.
    let (code, _, err) =
        run(d, &["db", "import", "--format", "hashlist", "--source", "x", "--class", "malicious", "roots.pem"]);
    assert_eq!(code, 2, "a store with nothing useful: {err}");
    assert_eq!(check(d)["verdict"]["level"], "good");

    let (code, out, err) = run(d, &["db", "import", "--format", "loldrivers-json", "drivers.json"]);
    assert_eq!(code, 0, "{out}{err}");
    let r = check(d);
    let listing = &r["reputation"]["signer_listings"];
    assert_eq!(listing.as_array().unwrap().len(), 1, "{listing:#}");
    assert_eq!(listing[0]["signer"], "Filerep Test Publisher");
    assert_eq!(listing[0]["class"], "malicious");
    assert_eq!(listing[0]["example"], "evil.sys");
    let reasons = r["verdict"]["reasons"].as_array().unwrap();
    let hit = reasons.iter().find(|x| x["id"] == "signer-on-blocklist").expect("signer-on-blocklist");
    assert_eq!(hit["source"], "loldrivers");
    assert!(hit["message"].as_str().unwrap().contains("evil.sys"), "{hit:#}");
    let valid = reasons.iter().find(|x| x["id"] == "signature-valid").expect("still shown");
    assert_eq!(valid["level"], "unknown");
    assert_eq!(r["verdict"]["level"], "unknown", "a blocklisted signer is no evidence of goodness");
    assert_eq!(r["signature"]["status"], "valid", "the signature itself is still valid");

    // A feed version written before the signer index existed is not searched (no full scan), and no error.
    for f in std::fs::read_dir(d.join("filerep-store.sqlite.feeds")).unwrap() {
        let conn = rusqlite::Connection::open(f.unwrap().path()).unwrap();
        conn.execute_batch("DROP INDEX IF EXISTS r_signer").unwrap();
    }
    let r = check(d);
    assert_eq!(r["reputation"]["signer_listings"], serde_json::json!([]), "{:#}", r["reputation"]);
    assert_eq!(r["verdict"]["level"], "good");
}

/// Hundreds of damaged signatures (flipped, zeroed, 0xff-filled, truncated and shifted bytes, inside the
/// certificate table only, where the general mutation test rarely reaches): verification never panics or
/// hangs, the overall status always agrees with the per-signature checks, and a cut table is never `valid`.
#[test]
fn damaged_signatures_never_panic() {
    let pki = Pki::new();
    let stamped = pki.signature().timestamp(pki.rfc3161(utc(2025, 3, 1, 12, 0, 0))).nest(pki.signature());
    let mut seeds = vec![sign_pe(&unsigned(), &stamped)];
    if let Some(c) = crate::conformance::corpus_dir() {
        seeds.extend(std::fs::read(c.join("vcruntime140.dll")).ok());
    }
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let started = std::time::Instant::now();
    for case in 0..600u32 {
        let seed = &seeds[case as usize % seeds.len()];
        let table = kit::certificate_table(seed).expect("signed");
        let mut m = seed.clone();
        for _ in 0..1 + next() % 4 {
            let end = table.end.min(m.len());
            if end <= table.start + 1 {
                break;
            }
            let at = table.start + (next() as usize % (end - table.start));
            match next() % 5 {
                0 => m[at] ^= 1 << (next() % 8),
                1 => m[at] = 0,
                2 => m[at] = 0xff,
                3 => m.truncate(at.max(table.start + 1)),
                _ => {
                    if at < m.len() {
                        m.remove(at);
                    }
                }
            }
            if m.len() <= table.start + 1 {
                break;
            }
        }
        let result = std::panic::catch_unwind(|| filerep::pipeline::report_from_bytes("m.exe", &m));
        let report = result.unwrap_or_else(|_| panic!("case {case} panicked"));
        let sig = report.signature.expect("a PE gets a signature report");
        // The overall status agrees with the checks it summarises.
        let all_verify = sig.signatures.iter().all(|c| c.digest_ok && c.signer_ok);
        match sig.status {
            SignatureStatus::Valid => {
                assert!(all_verify && sig.signatures[0].chain_ok && sig.problems.is_empty(), "case {case}: {sig:?}")
            }
            SignatureStatus::Untrusted => assert!(all_verify && !sig.signatures[0].chain_ok, "case {case}: {sig:?}"),
            SignatureStatus::Invalid => assert!(!all_verify, "case {case}: {sig:?}"),
            SignatureStatus::Tampered | SignatureStatus::Malformed => {
                assert!(!sig.problems.is_empty() || sig.signatures.is_empty(), "case {case}: {sig:?}")
            }
            SignatureStatus::Absent => assert!(sig.signatures.is_empty(), "case {case}"),
        }
        // Truncating the table cuts the file short of where the directory says the table ends.
        if m.len() < seed.len() && m.len() < table.end {
            assert_ne!(sig.status, SignatureStatus::Valid, "case {case}: a cut table cannot verify");
        }
    }
    // A hang guard, not a timing: the cases take seconds, but a loaded shared machine once took over 120 s.
    assert!(started.elapsed() < std::time::Duration::from_secs(600), "hang guard");
}

/// Certificates that all cross-sign each other under one name: every path through them verifies, so an
/// unbounded search would try about 30^7 of them. The search gives up after a fixed number of checks.
#[test]
fn a_maze_of_cross_signed_certificates_is_bounded() {
    let (dir, pki) = (tempfile::tempdir().unwrap(), Pki::new());
    let spec = |n: u64| {
        let mut s = CertSpec::ca("Maze CA");
        (s.key_seed, s.serial) = (format!("maze key {}", n % 10), n);
        s
    };
    let roots: Vec<kit::Cert> = (0..6).map(|i| kit::Cert::self_signed(spec(i))).collect();
    let mut maze = Vec::new();
    for (i, issuer) in roots.iter().enumerate() {
        for j in 0..6 {
            if i != j {
                maze.push(issuer.issue(spec(100 + 10 * i as u64 + j as u64)));
            }
        }
    }
    let leaf = roots[0].issue(CertSpec::code_signing("Maze Publisher"));
    let mut certs: Vec<&kit::Cert> = vec![&leaf];
    certs.extend(maze.iter());
    let file = sign_pe(&unsigned(), &Signature::new(&leaf, &[]).certificates(&certs));
    let started = std::time::Instant::now();
    let r = check(dir.path(), &pki, &file, &["--trust-only"]);
    let s = &r["signature"]["signatures"][0];
    assert_eq!((s["digest_ok"] == true, s["signer_ok"] == true, s["chain_ok"] == true), (true, true, false), "{s:#}");
    assert!(s["errors"].to_string().contains("within 64 certificate checks"), "{s:#}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "hang guard: {:?}", started.elapsed());
}
