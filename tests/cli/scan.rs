//! `filerep scan` through the real binary: selection by magic bytes, globs, symlinks, per-file errors, every
//! output format, the exit-code contract, the policy file (checks, suppressions, expiry, typos) and the
//! baseline.

use std::path::Path;
use std::process::Output;

use sha2::Digest;

use crate::fixtures;
use crate::support::filerep;

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `filerep --db DB scan ARGS...` in `dir`, asserting the exit status; returns stdout and stderr.
fn scan(dir: &Path, args: &[&str], status: i32) -> (String, String) {
    let out = filerep(dir).arg("--db").arg("store.sqlite").arg("scan").args(args).output().expect("filerep runs");
    let (o, e) = text(&out);
    assert_eq!(out.status.code(), Some(status), "filerep scan {args:?}\nstdout:\n{o}\nstderr:\n{e}");
    (o, e)
}

fn scan_json(dir: &Path, args: &[&str], status: i32) -> serde_json::Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let (o, e) = scan(dir, &all, status);
    serde_json::from_str(&o).unwrap_or_else(|err| panic!("scan --format json prints JSON ({err}):\n{o}\n{e}"))
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn sha256(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A plain console program with imports (nothing odd about it: its verdict is `unknown`).
fn clean_pe(pe32_plus: bool) -> fixtures::Pe {
    let mut pe = fixtures::Pe::new(pe32_plus);
    pe.imports = fixtures::sample_imports();
    pe
}

/// A build-output tree: a PE under a `.txt` name, an ELF and a Mach-O without extensions, text under an
/// `.exe` name, and a nested directory. Returns the PE's bytes.
fn tree(root: &Path) -> Vec<u8> {
    let pe = clean_pe(true).build().bytes;
    write(&root.join("docs/readme.txt"), &pe);
    write(&root.join("bin/tool"), &fixtures::Elf::sample().build());
    write(&root.join("bin/macos/tool"), &fixtures::Macho::sample().build());
    write(&root.join("notes.exe"), b"not an executable, whatever the name says\n");
    write(&root.join("data/blob.bin"), &[0u8; 100]);
    write(&root.join("empty"), b"");
    pe
}

fn paths(doc: &serde_json::Value) -> Vec<String> {
    doc["files"].as_array().unwrap().iter().map(|f| f["relative_path"].as_str().unwrap().to_string()).collect()
}

fn rules_of(doc: &serde_json::Value, rel: &str) -> Vec<String> {
    let f = doc["files"].as_array().unwrap().iter().find(|f| f["relative_path"] == rel).expect(rel);
    f["findings"].as_array().unwrap().iter().map(|x| x["rule"].as_str().unwrap().to_string()).collect()
}

/// Import these SHA-256s as known-malicious into the test's store.
fn mark_malicious(dir: &Path, hashes: &[String]) {
    let list = dir.join("bad.txt");
    std::fs::write(&list, hashes.join("\n") + "\n").unwrap();
    let out = filerep(dir)
        .args(["--db", "store.sqlite", "db", "import", "--format", "hashlist", "--source", "ci-blocklist"])
        .args(["--class", "malicious"])
        .arg(&list)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
}

#[test]
fn executables_are_selected_by_magic_bytes_not_names() {
    let dir = tempfile::tempdir().unwrap();
    tree(&dir.path().join("out"));
    let doc = scan_json(dir.path(), &["--no-store", "out"], 0);
    assert_eq!(paths(&doc), ["bin/macos/tool", "bin/tool", "docs/readme.txt"], "sorted, relative to the root");
    let s = &doc["summary"];
    assert_eq!((s["files_seen"].as_u64(), s["files_checked"].as_u64()), (Some(6), Some(3)));
    assert_eq!(s["skipped_not_executable"], 3);
    let formats: Vec<_> = doc["files"].as_array().unwrap().iter().map(|f| f["format"].as_str().unwrap()).collect();
    assert_eq!(formats, ["macho", "elf", "pe"]);
    assert_eq!(doc["roots"][0], "out");
    assert_eq!(doc["files"][2]["root"], "out");
    assert_eq!(doc["files"][2]["path"], "out/docs/readme.txt");

    // --all-files checks everything, the empty file included.
    let doc = scan_json(dir.path(), &["--no-store", "--all-files", "out"], 0);
    assert_eq!(paths(&doc).len(), 6);
    assert_eq!(doc["summary"]["skipped_not_executable"], 0);

    // Globs: without a slash on the name, with one on the path under the root; excludes prune directories.
    let doc = scan_json(dir.path(), &["--no-store", "--include", "*.txt", "out"], 0);
    assert_eq!(paths(&doc), ["docs/readme.txt"]);
    let doc = scan_json(dir.path(), &["--no-store", "--include", "bin/**", "out"], 0);
    assert_eq!(paths(&doc), ["bin/macos/tool", "bin/tool"]);
    let doc = scan_json(dir.path(), &["--no-store", "--exclude", "macos", "--exclude", "docs/*", "out"], 0);
    assert_eq!(paths(&doc), ["bin/tool"]);
    let (_, e) = scan(dir.path(), &["--no-store", "--include", "a[", "out"], 2);
    assert!(e.contains("--include 'a['"), "{e}");

    // Fuzzy hashes only when asked (no verdict or store lookup uses them; they are most of the hashing time).
    let fuzzy = |doc: &serde_json::Value| {
        doc["files"][2]["hashes"]["tlsh"].is_string() && doc["files"][2]["hashes"]["ssdeep"].is_string()
    };
    assert!(!fuzzy(&scan_json(dir.path(), &["--no-store", "out"], 0)));
    let doc = scan_json(dir.path(), &["--no-store", "--fuzzy", "out"], 0);
    assert!(fuzzy(&doc));
    let (_, check) = crate::support::check_json(dir.path(), Path::new("out/docs/readme.txt"));
    assert_eq!(doc["files"][2]["hashes"], check["reports"][0]["hashes"], "the same digests as check");

    // A single file as the root.
    let doc = scan_json(dir.path(), &["--no-store", "out/bin/tool"], 0);
    assert_eq!(paths(&doc), ["tool"]);

    // A missing root is one error line.
    let (_, e) = scan(dir.path(), &["--no-store", "nowhere"], 2);
    assert!(e.starts_with("filerep: error: nowhere: cannot scan") && e.lines().count() == 1, "{e}");
}

#[cfg(unix)]
#[test]
fn symlinks_are_not_followed_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    write(&elsewhere.join("a.exe"), &clean_pe(false).build().bytes);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("linked-dir")).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("a.exe"), out.join("linked.exe")).unwrap();
    let doc = scan_json(dir.path(), &["--no-store", "out"], 0);
    assert!(paths(&doc).is_empty());
    let doc = scan_json(dir.path(), &["--no-store", "--follow", "out"], 0);
    assert_eq!(paths(&doc), ["linked-dir/a.exe", "linked.exe"]);

    // A loop is an error entry and exit 2 with --follow; the rest of the scan goes on.
    std::os::unix::fs::symlink("..", out.join("linked-dir-loop")).unwrap();
    let (o, e) = scan(dir.path(), &["--no-store", "--follow", "--format", "json", "out"], 2);
    let doc: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert!(e.contains("symbolic link loop"), "{e}");
    assert!(paths(&doc).contains(&"linked.exe".to_string()));
    assert_eq!(doc["summary"]["errors"], 1);
}

#[cfg(unix)]
#[test]
fn a_file_that_cannot_be_read_is_one_line_and_an_entry_and_the_scan_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let pe = tree(&dir.path().join("out"));
    let fifo = dir.path().join("out/pipe.exe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let (o, e) = scan(dir.path(), &["--no-store", "--format", "json", "out"], 2);
    let doc: serde_json::Value = serde_json::from_str(&o).unwrap();
    let errs: Vec<&str> = e.lines().filter(|l| l.starts_with("filerep: error:")).collect();
    assert_eq!(errs, ["filerep: error: out/pipe.exe: not a regular file (a FIFO); refusing to read it"]);
    let entry = doc["files"].as_array().unwrap().iter().find(|f| f["relative_path"] == "pipe.exe").unwrap();
    assert_eq!(entry["error"], "not a regular file (a FIFO); refusing to read it");
    assert_eq!(paths(&doc).len(), 4, "the other files are still checked");
    assert_eq!(doc["summary"]["exit_status"], 2);

    // 1 wins over 2: a known-malicious file and an unreadable one.
    mark_malicious(dir.path(), &[sha256(&pe)]);
    let (_, e) = scan(dir.path(), &["--format", "json", "out"], 1);
    assert!(e.contains("1 malicious") && e.contains("1 errors") && e.ends_with("exit 1\n"), "{e}");
}

#[test]
fn the_exit_status_follows_fail_on_and_known_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let pe = tree(&dir.path().join("out"));
    scan(dir.path(), &["--format", "json", "out"], 0);
    // Nothing known about the files: unknown, which fails only at --fail-on unknown.
    let doc = scan_json(dir.path(), &["--fail-on", "unknown", "out"], 1);
    assert!(rules_of(&doc, "bin/tool").contains(&"verdict-at-fail-on".to_string()));
    scan(dir.path(), &["--format", "json", "--fail-on", "suspicious", "out"], 0);
    // A program without imports is suspicious, which fails at --fail-on suspicious, not above.
    write(&dir.path().join("out/odd.exe"), &fixtures::Pe::new(true).build().bytes);
    let doc = scan_json(dir.path(), &["--fail-on", "suspicious", "out"], 1);
    assert_eq!(rules_of(&doc, "odd.exe"), ["no-imports"]);
    assert!(rules_of(&doc, "bin/tool").is_empty());
    scan(dir.path(), &["--format", "json", "--fail-on", "vulnerable", "out"], 0);
    std::fs::remove_file(dir.path().join("out/odd.exe")).unwrap();

    mark_malicious(dir.path(), &[sha256(&pe)]);
    let doc = scan_json(dir.path(), &["out"], 1);
    assert_eq!(rules_of(&doc, "docs/readme.txt"), ["known-malicious"]);
    let f = &doc["files"][2]["findings"][0];
    assert_eq!(
        (f["severity"].as_str(), f["fails"].as_bool(), f["source"].as_str()),
        (Some("error"), Some(true), Some("ci-blocklist"))
    );
    assert_eq!(doc["summary"]["levels"]["malicious"], 1);
    assert_eq!(doc["summary"]["failing"], 1);
    // --no-store judges from the files alone.
    scan(dir.path(), &["--format", "json", "--no-store", "out"], 0);
    // A bad level is a usage error.
    let (_, e) = scan(dir.path(), &["--fail-on", "bad", "out"], 2);
    assert!(e.contains("unknown level 'bad'"), "{e}");
}

#[test]
fn every_output_format() {
    let dir = tempfile::tempdir().unwrap();
    let pe = tree(&dir.path().join("out"));
    mark_malicious(dir.path(), &[sha256(&pe)]);

    // jsonl: one file line per checked file, then one summary line.
    let (o, _) = scan(dir.path(), &["--format", "jsonl", "out"], 1);
    let lines: Vec<serde_json::Value> = o.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4);
    assert!(
        lines[..3].iter().all(|l| l["type"] == "file" && l["sha256"].is_null() && l["hashes"]["sha256"].is_string())
    );
    assert_eq!(lines[2]["relative_path"], "docs/readme.txt");
    assert_eq!(lines[3]["type"], "summary");
    assert_eq!(lines[3]["exit_status"], 1);

    // csv: a header and one row per checked file.
    let (o, _) = scan(dir.path(), &["--format", "csv", "out"], 1);
    let mut rd = csv::Reader::from_reader(o.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_string).collect();
    for col in ["Path", "Verified", "Publisher", "MD5", "SHA256", "Verdict"] {
        assert!(header.iter().any(|h| h == col), "{col} in {header:?}");
    }
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    let verdict = header.iter().position(|h| h == "Verdict").unwrap();
    let sha = header.iter().position(|h| h == "SHA256").unwrap();
    let bad = rows.iter().find(|r| r[sha] == sha256(&pe)).expect("the PE's row");
    assert_eq!(&bad[verdict], "malicious");

    // table: files with findings, then counts per level.
    let (o, e) = scan(dir.path(), &["--format", "table", "out"], 1);
    assert!(o.starts_with("VERDICT"), "{o}");
    assert!(
        o.lines().any(|l| l.starts_with("malicious")
            && l.contains("known-malicious (fails)")
            && l.ends_with("out/docs/readme.txt")),
        "{o}"
    );
    assert!(o.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["unknown", "2"]), "{o}");
    assert!(e.starts_with("filerep: scanned 6 files (3 checked, 3 not executables): 1 malicious"), "{e}");

    // Not a terminal: JSON by default; --output writes the file and nothing to stdout.
    let (o, _) = scan(dir.path(), &["out"], 1);
    let doc: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert_eq!(doc["schema_version"], 1);
    let (o, _) = scan(dir.path(), &["--format", "sarif", "--output", "result.sarif", "out"], 1);
    assert!(o.is_empty());
    let sarif: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("result.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A device is written in place, never renamed over.
    #[cfg(unix)]
    {
        scan(dir.path(), &["--format", "sarif", "--output", "/dev/null", "out"], 1);
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    }
    let (_, e) = scan(dir.path(), &["--format", "sarif", "--output", "out", "out"], 2);
    assert!(e.contains("--output out: is a directory"), "{e}");
}

#[test]
fn the_policy_file_requires_checks_suppresses_and_expires() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    let mut pe = clean_pe(true);
    pe.dll_characteristics &= !0x0100; // no NX_COMPAT
    let pe = pe.build().bytes;
    write(&repo.join("build/out/app.exe"), &pe);
    write(&repo.join("build/out/vendor/lib.dll"), &pe);

    // No policy: hardening checks are computed but report nothing.
    let doc = scan_json(&repo, &["--no-store", "build/out"], 0);
    assert!(rules_of(&doc, "app.exe").is_empty());
    let checks = doc["files"][0]["hardening"].as_array().unwrap();
    assert!(checks.iter().any(|c| c["id"] == "pe-nx" && c["status"] == "fail"), "{checks:?}");

    // --warn reports as a note without failing; --require fails.
    let doc = scan_json(&repo, &["--no-store", "--warn", "pe-nx", "build/out"], 0);
    assert_eq!(rules_of(&doc, "app.exe"), ["pe-nx"]);
    assert_eq!(doc["files"][0]["findings"][0]["severity"], "note");
    let doc = scan_json(&repo, &["--no-store", "--require", "pe-nx,pe-aslr", "build/out"], 1);
    assert_eq!(rules_of(&doc, "app.exe"), ["pe-nx"], "ASLR is present");
    let (_, e) = scan(&repo, &["--no-store", "--require", "pe-nxx", "build/out"], 2);
    assert!(e.contains("unknown hardening check 'pe-nxx'"), "{e}");

    // filerep.toml at the repository root is found from a scan root below it.
    let policy = repo.join("filerep.toml");
    std::fs::write(
        &policy,
        "fail_on = \"suspicious\"\n[checks]\npe-nx = \"require\"\n\n[[suppress]]\npath = \"vendor/**\"\n\
         justification = \"vendored, rebuilt by upstream\"\n",
    )
    .unwrap();
    let doc = scan_json(&repo, &["--no-store", "build/out"], 1);
    assert_eq!(doc["summary"]["policy"].as_str().map(|p| p.ends_with("repo/filerep.toml")), Some(true));
    assert_eq!(doc["summary"]["fail_on"], "suspicious");
    let vendor = &doc["files"][1];
    assert_eq!(vendor["relative_path"], "vendor/lib.dll");
    assert_eq!(vendor["findings"][0]["suppression"]["justification"], "vendored, rebuilt by upstream");
    assert_eq!(doc["summary"]["suppressed"], 1);
    assert_eq!(doc["summary"]["failing"], 1, "app.exe still fails");

    // Suppress app.exe by its SHA-256 too, with an expiry in the past: it stops suppressing and says so.
    let mut text = std::fs::read_to_string(&policy).unwrap();
    text.push_str(&format!(
        "\n[[suppress]]\nsha256 = \"{}\"\njustification = \"accepted until the fix\"\nexpires = 2001-01-01\n",
        sha256(&pe)
    ));
    std::fs::write(&policy, &text).unwrap();
    let (o, e) = scan(&repo, &["--no-store", "--format", "json", "build/out"], 1);
    assert!(e.contains("expired on 2001-01-01 and no longer suppresses"), "{e}");
    let doc: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert_eq!(doc["files"][0]["findings"][0]["suppression"]["expired"], true);
    // Not expired: the run passes.
    std::fs::write(&policy, text.replace("2001-01-01", "2999-01-01")).unwrap();
    scan(&repo, &["--no-store", "--format", "json", "build/out"], 0);
    // --policy elsewhere, and --no-policy.
    scan(&repo, &["--no-store", "--no-policy", "--format", "json", "build/out"], 0);
    let other = dir.path().join("strict.toml");
    std::fs::write(&other, "[checks]\npe-nx = \"require\"\n").unwrap();
    let doc = scan_json(&repo, &["--no-store", "--policy", other.to_str().unwrap(), "build/out"], 1);
    assert_eq!(doc["summary"]["failing"], 2);

    // A typo is an error naming the file and the key; no output is written.
    std::fs::write(&policy, "[checks]\npe-nx = \"require\"\n[[suppress]]\npath = \"x\"\njustificaton = \"typo\"\n")
        .unwrap();
    let (o, e) = scan(&repo, &["--no-store", "--format", "json", "build/out"], 2);
    assert!(o.is_empty());
    assert!(e.contains("filerep.toml") && e.contains("justificaton") && e.lines().count() == 1, "{e}");
    std::fs::write(&policy, "[checks]\npe-nx = \"require\"\n[[suppress]]\npath = \"x\"\n").unwrap();
    let (_, e) = scan(&repo, &["--no-store", "build/out"], 2);
    assert!(e.contains("a justification is mandatory"), "{e}");
}

#[test]
fn a_baseline_hides_old_findings_and_shows_a_changed_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut pe = clean_pe(true);
    pe.dll_characteristics &= !0x0100;
    let pe = pe.build().bytes;
    write(&d.join("out/app.exe"), &pe);
    let elf = fixtures::Elf::sample().build();
    write(&d.join("out/tool"), &elf);

    // The release's result, kept as the baseline: pe-nx fails.
    scan(d, &["--require", "pe-nx", "--format", "json", "--output", "baseline.json", "out"], 1);
    // The same findings again: nothing new, the run passes, and the summary says what was hidden.
    let (o, e) = scan(d, &["--require", "pe-nx", "--baseline", "baseline.json", "--format", "json", "out"], 0);
    let doc: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert_eq!(doc["files"][0]["findings"][0]["baseline"], "unchanged");
    assert_eq!(doc["summary"]["unchanged"], 1);
    assert!(e.contains("1 unchanged since the baseline"), "{e}");
    let (o, _) = scan(d, &["--require", "pe-nx", "--baseline", "baseline.json", "--format", "sarif", "out"], 0);
    let sarif: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert!(sarif["runs"][0]["results"].as_array().unwrap().is_empty(), "unchanged findings are not reported");

    // A data set update turns the old, unchanged ELF malicious: that is new.
    mark_malicious(d, &[sha256(&elf)]);
    let (o, _) = scan(d, &["--require", "pe-nx", "--baseline", "baseline.json", "--format", "sarif", "out"], 1);
    let sarif: serde_json::Value = serde_json::from_str(&o).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["ruleId"], "known-malicious");
    assert_eq!(results[0]["baselineState"], "new");

    // The JSON-lines form is a baseline too; a file that is not one is a clear error.
    scan(d, &["--require", "pe-nx", "--format", "jsonl", "--output", "base.jsonl", "out"], 1);
    scan(d, &["--require", "pe-nx", "--baseline", "base.jsonl", "--format", "json", "out"], 0);
    std::fs::write(d.join("junk.json"), "{\"reports\": []}").unwrap();
    let (_, e) = scan(d, &["--baseline", "junk.json", "out"], 2);
    assert!(e.contains("--baseline junk.json: not a filerep scan result"), "{e}");
}

/// A policy that requires every check, on the corpus: each check fails exactly where the independent tools'
/// flags (tests/data/corpus/expected: pefile, LIEF, readelf) say the mitigation is missing. SafeSEH and /GS
/// come from the load configuration, which the expected files do not describe: tests/cli/hardening.rs checks
/// those values.
#[test]
fn a_policy_requiring_every_check_agrees_with_the_corpus_flags() {
    let Some(corpus) = crate::conformance::corpus_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (o, _) = scan(
        dir.path(),
        &["--no-store", "--no-policy", "--require", "all", "--format", "json", corpus.to_str().unwrap()],
        1,
    );
    let doc: serde_json::Value = serde_json::from_str(&o).unwrap();
    let expected_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/corpus/expected");
    let mut compared = std::collections::BTreeMap::<&str, usize>::new();
    let mut mismatches = Vec::new();
    for entry in doc["files"].as_array().unwrap() {
        let name = entry["relative_path"].as_str().unwrap();
        let Ok(text) = std::fs::read_to_string(expected_dir.join(format!("{name}.json"))) else { continue };
        let exp: serde_json::Value = serde_json::from_str(&text).unwrap();
        let found: std::collections::BTreeSet<&str> =
            entry["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
        let mut expect = |id: &'static str, missing: bool| {
            *compared.entry(id).or_default() += 1;
            if found.contains(id) != missing {
                mismatches.push(format!(
                    "{name}: {id}: expected {}, scan {}",
                    if missing { "a failure" } else { "a pass" },
                    if found.contains(id) { "failed it" } else { "passed it" }
                ));
            }
        };
        match entry["format"].as_str().unwrap() {
            "pe" if exp["pe"]["dll_characteristics"].is_object() => {
                let dc = &exp["pe"]["dll_characteristics"];
                let flag = |k: &str| dc[k].as_bool().unwrap_or(false);
                let relocs_stripped = exp["pe"]["characteristics"]["flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|x| x == "IMAGE_FILE_RELOCS_STRIPPED"));
                expect("pe-aslr", !flag("aslr_dynamic_base") || relocs_stripped);
                if exp["pe"]["magic"] == "PE32+" {
                    expect("pe-high-entropy-va", !(flag("high_entropy_va") && flag("aslr_dynamic_base")));
                }
                expect("pe-nx", !flag("nx_compat"));
                expect("pe-force-integrity", !flag("force_integrity"));
                let il_only = exp["dotnet"]["flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|x| x.as_str().is_some_and(|s| s.contains("ILONLY"))));
                if !il_only && !flag("guard_cf") {
                    expect("pe-cfg", true);
                }
            }
            "elf" if exp["elf"].is_object() && exp["elf"]["parsed_by_lief"] == true => {
                let e = &exp["elf"];
                if e["interpreter"].is_string() {
                    expect("elf-pie", !e["pie"].as_bool().unwrap());
                }
                expect("elf-nx", !e["nx_stack"].as_bool().unwrap());
                expect("elf-relro", e["relro"] != "full");
                expect("elf-canary", !e["canary"].as_bool().unwrap());
                expect("elf-fortify", e["fortify_symbols"].as_array().is_none_or(|a| a.is_empty()));
            }
            "macho" if exp["macho"]["slices"].is_array() => {
                let slices = exp["macho"]["slices"].as_array().unwrap();
                expect("macho-code-signature", slices.iter().any(|s| s["code_signature"] != true));
                let execs: Vec<_> = slices.iter().filter(|s| s["file_type"] == "EXECUTE").collect();
                if !execs.is_empty() {
                    expect("macho-pie", execs.iter().any(|s| s["pie"] != true));
                }
            }
            _ => {}
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    for id in [
        "pe-aslr",
        "pe-high-entropy-va",
        "pe-nx",
        "pe-force-integrity",
        "pe-cfg",
        "elf-nx",
        "elf-relro",
        "elf-canary",
        "elf-fortify",
        "elf-pie",
        "macho-code-signature",
    ] {
        assert!(compared.get(id).copied().unwrap_or(0) > 0, "no corpus file exercised {id}: {compared:?}");
    }
}
