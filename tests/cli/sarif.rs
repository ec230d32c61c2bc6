//! `filerep scan --format sarif` through the real binary: the output is valid against the official SARIF 2.1.0
//! schema (tests/data/schemas, copied from OASIS's rtm.5 text) on generated fixtures and on the corpus, artifact
//! URIs are relative to the scan roots, there is one rule per rule id used, a known-malicious file is an
//! `error`, and fingerprints are the same from one run (and one rebuild) to the next.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::fixtures::{self, ExtraSection, Pe, SectionName};
use crate::support::filerep;

/// The official SARIF 2.1.0 schema.
pub fn sarif_schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/schemas/sarif-schema-2.1.0.json")
}

/// Validate SARIF text against the official schema, as draft-04 (what the schema declares) and as draft-07
/// (which also checks the `uri-reference` format of artifact URIs), with format validation on; panics with
/// every error. The schema's references are all internal and jsonschema is built without its HTTP and file
/// resolvers (`default-features = false`), so nothing is fetched.
pub fn validate_sarif(text: &str) {
    let schema_text = std::fs::read_to_string(sarif_schema_path()).expect("the SARIF schema is in tests/data");
    // rtm.5's two `language` patterns have an unbalanced `]` that no ECMA-262 regex engine in unicode mode
    // accepts (the schema fails its own meta-schema); the OASIS errata schema fixed them to this. filerep
    // never writes `language`, so the fix changes nothing that is checked.
    const BROKEN: &str = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
    assert_eq!(schema_text.matches(BROKEN).count(), 2, "the schema is the rtm.5 text");
    let schema: Value = serde_json::from_str(&schema_text.replace(BROKEN, r#""^[a-zA-Z]{2}(-[a-zA-Z]{2})?$""#))
        .expect("the schema is JSON");
    let instance: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("SARIF output is not JSON: {e}\n{text}"));
    for draft in [jsonschema::Draft::Draft4, jsonschema::Draft::Draft7] {
        let validator = jsonschema::options()
            .with_draft(draft)
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("the SARIF schema compiles as {draft:?}: {e}"));
        let errors: Vec<String> =
            validator.iter_errors(&instance).take(20).map(|e| format!("{}: {e}", e.instance_path())).collect();
        let shown: String = text.chars().take(4000).collect();
        assert!(errors.is_empty(), "SARIF output invalid ({draft:?}):\n{}\n{shown}", errors.join("\n"));
    }
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `filerep [global] scan --format sarif ARGS...` in `dir`, asserting the exit status; the parsed and
/// validated document.
fn scan_sarif(dir: &Path, args: &[&str], status: i32) -> Value {
    let out = filerep(dir).arg("scan").args(["--format", "sarif"]).args(args).output().expect("filerep runs");
    let (o, e) = text(&out);
    assert_eq!(out.status.code(), Some(status), "filerep scan --format sarif {args:?}\nstdout:\n{o}\nstderr:\n{e}");
    validate_sarif(&o);
    serde_json::from_str(&o).unwrap()
}

fn run0(doc: &Value) -> &Value {
    let runs = doc["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    &runs[0]
}

fn results(doc: &Value) -> &Vec<Value> {
    run0(doc)["results"].as_array().expect("results")
}

fn artifact_location(result: &Value) -> &Value {
    &result["locations"][0]["physicalLocation"]["artifactLocation"]
}

/// Decode %XX escapes (the artifact URIs' encoding).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("a %XX escape"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8 paths")
}

/// What every SARIF document of a scan must satisfy beyond the schema: relative artifact URIs under a declared
/// root, indices that point where they should, one rule per rule id, and a fingerprint on every result.
fn check_structure(doc: &Value) {
    let run = run0(doc);
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "filerep");
    assert_eq!(driver["semanticVersion"], env!("CARGO_PKG_VERSION"));
    let bases = run["originalUriBaseIds"].as_object().expect("originalUriBaseIds");
    for (id, base) in bases {
        assert!(id.starts_with("ROOT"), "{id}");
        let uri = base["uri"].as_str().unwrap();
        assert!(uri.starts_with("file:///") && uri.ends_with('/'), "{id}: {uri}");
    }

    let rules = driver["rules"].as_array().expect("rules");
    let rule_ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let unique: BTreeSet<&str> = rule_ids.iter().copied().collect();
    assert_eq!(unique.len(), rule_ids.len(), "one rule per id: {rule_ids:?}");
    for r in rules {
        for key in ["name", "shortDescription", "fullDescription", "help", "defaultConfiguration"] {
            assert!(!r[key].is_null(), "rule {} has no {key}", r["id"]);
        }
        assert!(!r["help"]["markdown"].as_str().unwrap().is_empty());
        assert_eq!(r["properties"]["tags"][0], "security");
    }

    let artifacts = run["artifacts"].as_array().expect("artifacts");
    let mut used = BTreeSet::new();
    for res in results(doc) {
        let id = res["ruleId"].as_str().unwrap();
        used.insert(id);
        let i = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], id, "ruleIndex points at the rule");
        assert!(["error", "warning", "note"].contains(&res["level"].as_str().unwrap()));
        let loc = artifact_location(res);
        let uri = loc["uri"].as_str().unwrap();
        assert!(!uri.contains("://") && !uri.starts_with('/') && !uri.contains(' '), "relative, encoded: {uri}");
        let base = loc["uriBaseId"].as_str().unwrap();
        assert!(bases.contains_key(base), "{base} is declared");
        let a = &artifacts[loc["index"].as_u64().unwrap() as usize];
        assert_eq!(a["location"]["uri"], uri, "index points at the artifact");
        assert_eq!(a["location"]["uriBaseId"], base);
        let fp = res["partialFingerprints"]["filerepFinding/v1"].as_str().unwrap();
        assert_eq!(fp.len(), 32);
    }
    assert_eq!(used, unique, "the rules are exactly the ones used");
    for a in artifacts {
        assert_eq!(a["hashes"]["sha-256"].as_str().unwrap().len(), 64);
        assert!(a["length"].as_u64().is_some());
    }
}

/// (relative URI, rule id) → fingerprint.
fn fingerprints(doc: &Value) -> BTreeMap<(String, String), String> {
    results(doc)
        .iter()
        .map(|r| {
            let uri = artifact_location(r)["uri"].as_str().unwrap().to_string();
            let fp = r["partialFingerprints"]["filerepFinding/v1"].as_str().unwrap().to_string();
            ((uri, r["ruleId"].as_str().unwrap().to_string()), fp)
        })
        .collect()
}

/// A section name of at most 8 bytes.
fn short_name(name: &str) -> SectionName {
    let mut n = [0u8; 8];
    n[..name.len()].copy_from_slice(name.as_bytes());
    SectionName::Short(n)
}

/// A PE with a writable and executable section (`writable-executable-section`, suspicious); `marker`
/// changes its content, not its findings.
fn wx_pe(marker: u8) -> Vec<u8> {
    Pe {
        extra_sections: vec![ExtraSection {
            name: short_name(".wx"),
            data: vec![0xc3, marker, 0xcc, 0xcc],
            // CODE | EXECUTE | READ | WRITE
            characteristics: 0xe000_0020,
        }],
        imports: fixtures::sample_imports(),
        ..Pe::new(true)
    }
    .build()
    .bytes
}

/// The hostile file name of the tree (spaces, '#', '%', quotes, non-ASCII).
const HOSTILE_DIR: &str = "sub dir #1";
const HOSTILE_NAME: &str = "we\"ird 100% ñ日本.exe";

/// A tree of generated fixtures under `dir/dist`: valid PE32+ and PE32 samples, an ELF and a Mach-O, a PE with
/// a W+X section under a hostile name, a truncated PE, and files that are not executables.
fn fixture_tree(dir: &Path) -> PathBuf {
    let dist = dir.join("dist");
    let write = |rel: &str, bytes: &[u8]| {
        let p = dist.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    };
    write("app.exe", &fixtures::valid_pe32_plus().bytes);
    write("lib/x86.dll", &fixtures::valid_pe32().bytes);
    write("bin/tool", &fixtures::Elf::sample().build());
    write("bin/tool-macos", &fixtures::Macho::sample().build());
    write(&format!("{HOSTILE_DIR}/{HOSTILE_NAME}"), &wx_pe(1));
    write("broken.exe", &fixtures::truncated_in_section_table());
    write("README.txt", b"not a program\n");
    write("empty.exe", &fixtures::empty());
    dist
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn sarif_of_a_fixture_tree_is_valid_with_relative_artifact_uris() {
    let dir = tempfile::tempdir().unwrap();
    let dist = fixture_tree(dir.path());
    let doc = scan_sarif(dir.path(), &["--no-store", "dist"], 0);
    check_structure(&doc);
    let run = run0(&doc);

    // ROOT0 is the scanned directory; every URI is relative to it.
    let root = run["originalUriBaseIds"]["ROOT0"]["uri"].as_str().unwrap();
    let canonical = std::fs::canonicalize(&dist).unwrap();
    assert!(root.ends_with("/dist/"), "{root}");
    assert!(root.contains(canonical.file_name().unwrap().to_str().unwrap()), "{root} names {}", canonical.display());

    // The W+X file under its hostile name: found, percent-encoded, and decoding to its path under the root.
    let res = results(&doc);
    let wx: Vec<&Value> = res.iter().filter(|r| r["ruleId"] == "writable-executable-section").collect();
    assert_eq!(wx.len(), 1, "{res:#?}");
    let loc = artifact_location(wx[0]);
    assert_eq!(loc["uriBaseId"], "ROOT0");
    let uri = loc["uri"].as_str().unwrap();
    assert_eq!(percent_decode(uri), format!("{HOSTILE_DIR}/{HOSTILE_NAME}"));
    assert!(uri.is_ascii() && !uri.contains('#') && !uri.contains('"'), "{uri}");
    assert_eq!(wx[0]["level"], "warning", "suspicious is a warning");

    // Not-executables are not results; nothing here is malicious.
    for r in res {
        let uri = artifact_location(r)["uri"].as_str().unwrap();
        assert!(!uri.ends_with("README.txt") && !uri.ends_with("empty.exe"), "{uri}");
        assert_ne!(r["level"], "error", "{r:#}");
    }
    let inv = &run["invocations"][0];
    assert_eq!(inv["executionSuccessful"], true);
    assert_eq!(inv["exitCode"], 0);
}

#[test]
fn a_known_malicious_file_is_an_error_result_and_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fixture_tree(d);
    let evil = fixtures::valid_pe32().bytes;
    let list = d.join("list.txt");
    std::fs::write(&list, format!("{}\n", sha256_hex(&evil))).unwrap();
    let out = filerep(d)
        .args(["db", "import", "--format", "hashlist", "--source", "mine", "--class", "malicious"])
        .arg(&list)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));

    let doc = scan_sarif(d, &["dist"], 1);
    check_structure(&doc);
    let res = results(&doc);
    let malicious: Vec<&Value> = res.iter().filter(|r| r["ruleId"] == "known-malicious").collect();
    assert_eq!(malicious.len(), 1, "{res:#?}");
    let m = malicious[0];
    assert_eq!(m["level"], "error");
    assert_eq!(m["kind"], "fail");
    assert_eq!(artifact_location(m)["uri"], "lib/x86.dll");
    assert_eq!(m["properties"]["sha256"], sha256_hex(&evil));
    assert_eq!(m["properties"]["source"], "mine");
    assert_eq!(m["properties"]["verdict"], "malicious");
    assert!(m.get("suppressions").is_none());

    let run = run0(&doc);
    let rule = &run["tool"]["driver"]["rules"][m["ruleIndex"].as_u64().unwrap() as usize];
    assert_eq!(rule["id"], "known-malicious");
    assert_eq!(rule["name"], "KnownMalicious");
    assert_eq!(rule["defaultConfiguration"]["level"], "error");
    assert!(rule["help"]["text"].as_str().unwrap().contains("Do not ship"), "{rule:#}");
    let artifact = &run["artifacts"][artifact_location(m)["index"].as_u64().unwrap() as usize];
    assert_eq!(artifact["hashes"]["sha-256"], sha256_hex(&evil));
    assert_eq!(artifact["length"], evil.len());
    assert_eq!(run["invocations"][0]["exitCode"], 1);
}

#[test]
fn fingerprints_are_equal_across_runs_and_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let dist = fixture_tree(dir.path());
    let first = scan_sarif(dir.path(), &["--no-store", "dist"], 0);
    let second = scan_sarif(dir.path(), &["--no-store", "dist"], 0);
    let a = fingerprints(&first);
    assert!(!a.is_empty(), "the tree has findings");
    assert_eq!(a, fingerprints(&second), "two runs over the same tree");

    // A rebuild: other bytes (and digests), same place, same findings → same fingerprints.
    let hostile = dist.join(HOSTILE_DIR).join(HOSTILE_NAME);
    let before = sha256_hex(&std::fs::read(&hostile).unwrap());
    std::fs::write(&hostile, wx_pe(2)).unwrap();
    assert_ne!(before, sha256_hex(&std::fs::read(&hostile).unwrap()));
    let rebuilt = scan_sarif(dir.path(), &["--no-store", "dist"], 0);
    assert_eq!(a, fingerprints(&rebuilt), "a rebuilt artifact keeps its alerts");

    // Scanned from elsewhere (an absolute root), the URIs and fingerprints do not change.
    let other = tempfile::tempdir().unwrap();
    let abs = scan_sarif(other.path(), &["--no-store", dist.to_str().unwrap()], 0);
    assert_eq!(fingerprints(&rebuilt), fingerprints(&abs));
}

#[test]
fn each_root_is_its_own_uri_base() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for root in ["one", "two"] {
        std::fs::create_dir_all(d.join(root).join("x")).unwrap();
        std::fs::write(d.join(root).join("x/a.exe"), wx_pe(0)).unwrap();
    }
    let doc = scan_sarif(d, &["--no-store", "one", "two"], 0);
    check_structure(&doc);
    let bases = run0(&doc)["originalUriBaseIds"].as_object().unwrap();
    assert!(bases["ROOT0"]["uri"].as_str().unwrap().ends_with("/one/"));
    assert!(bases["ROOT1"]["uri"].as_str().unwrap().ends_with("/two/"));
    let located: BTreeSet<(String, String)> = results(&doc)
        .iter()
        .map(|r| {
            let loc = artifact_location(r);
            (loc["uriBaseId"].as_str().unwrap().to_string(), loc["uri"].as_str().unwrap().to_string())
        })
        .collect();
    assert!(located.contains(&("ROOT0".into(), "x/a.exe".into())), "{located:?}");
    assert!(located.contains(&("ROOT1".into(), "x/a.exe".into())), "{located:?}");
}

#[cfg(unix)]
#[test]
fn an_unreadable_file_is_a_tool_execution_notification() {
    let dir = tempfile::tempdir().unwrap();
    let dist = fixture_tree(dir.path());
    // A FIFO cannot be read as a file (and, unlike a mode-000 file, not even by root).
    let locked = dist.join("locked.exe");
    let c = std::ffi::CString::new(locked.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let doc = scan_sarif(dir.path(), &["--no-store", "dist"], 2);
    check_structure(&doc);
    let inv = &run0(&doc)["invocations"][0];
    assert_eq!(inv["executionSuccessful"], false);
    assert_eq!(inv["exitCode"], 2);
    let notes = inv["toolExecutionNotifications"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_eq!(notes[0]["level"], "error");
    assert!(notes[0]["message"]["text"].as_str().unwrap().contains("locked.exe"));
    assert_eq!(notes[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "locked.exe");
}

#[test]
fn sarif_of_the_corpus_is_valid() {
    let Some(corpus) = crate::conformance::corpus_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Scan the corpus (exit 0 or 1) and check the SARIF against the schema and the structure rules.
    let scan = |extra: &[&str]| -> Value {
        let out = filerep(dir.path())
            .args(["scan", "--format", "sarif", "--no-store"])
            .args(extra)
            .arg(&corpus)
            .output()
            .expect("filerep runs");
        let (o, e) = text(&out);
        assert!(matches!(out.status.code(), Some(0 | 1)), "exit {:?}\n{e}", out.status.code());
        validate_sarif(&o);
        let doc: Value = serde_json::from_str(&o).unwrap();
        check_structure(&doc);
        doc
    };
    let doc = scan(&[]);
    assert!(!results(&doc).is_empty(), "the corpus has suspicious files (packed, malformed)");
    // Every artifact is a corpus file, by its relative URI.
    for a in run0(&doc)["artifacts"].as_array().unwrap() {
        let rel = percent_decode(a["location"]["uri"].as_str().unwrap());
        assert!(corpus.join(&rel).is_file(), "{rel}");
    }

    // With every hardening check reported: their rules (texts from src/hardening.rs) are valid too.
    let doc = scan(&["--warn", "all"]);
    let rules = run0(&doc)["tool"]["driver"]["rules"].as_array().unwrap();
    let hardening: Vec<&Value> =
        rules.iter().filter(|r| r["properties"]["tags"].as_array().unwrap().contains(&"hardening".into())).collect();
    assert!(!hardening.is_empty(), "{rules:#?}");
    for r in hardening {
        assert!(!r["shortDescription"]["text"].as_str().unwrap().starts_with("Hardening check"), "{r:#}");
    }
}
