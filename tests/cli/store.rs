//! The reputation store through the real binary: imports of the real feed samples, lookups, the verdict
//! they give, edits, and faults (bad hashes, a busy store, a full disk, a damaged file, kill -9 mid-import).

// The kill -9 test prints its seed and kill points, for a rerun.
#![allow(clippy::print_stderr)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output, Stdio};
use std::time::Duration;

use crate::fixtures;
use crate::support::filerep;

fn feed(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/feeds").join(rel)
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `filerep --db DB ARGS...`, asserting the exit status.
fn run(dir: &Path, db: &Path, args: &[&str], status: i32) -> (String, String) {
    let out = filerep(dir).arg("--db").arg(db).args(args).output().expect("filerep runs");
    let (o, e) = text(&out);
    assert_eq!(out.status.code(), Some(status), "filerep {args:?}\nstdout:\n{o}\nstderr:\n{e}");
    (o, e)
}

fn import(dir: &Path, db: &Path, format: &str, path: &Path, extra: &[&str]) -> String {
    let p = path.to_str().unwrap();
    let mut args = vec!["db", "import", "--format", format, p];
    args.extend_from_slice(extra);
    run(dir, db, &args, 0).0
}

fn lookup_json(dir: &Path, db: &Path, hash: &str, extra: &[&str], status: i32) -> serde_json::Value {
    let mut args = vec!["lookup", "--json", hash];
    args.extend_from_slice(extra);
    let (o, _) = run(dir, db, &args, status);
    let doc: serde_json::Value = serde_json::from_str(&o).expect("lookup --json prints JSON");
    doc["lookups"][0].clone()
}

/// A LOLDrivers vulnerable driver in drivers.subset.json (entry 1d2cdef1…, iQVW64.SYS by Intel).
const IQVW_SHA256: &str = "4429f32db1cc70567919d7d47b844a91cf1329a6cd116f582305f3b7b60cd60b";
const IQVW_AUTH_SHA256: &str = "785e87bc23a1353fe0726554fd009aca69c320a98445a604a64e23ab45108087";
/// smss.exe 10.0.19041.1 in the xcyclopedia subset (C:\Windows\system32\smss.exe).
const SMSS_SHA256: &str = "E11AE324BA8C7AD66869BC34D16594F053C9447F0B11BF8D147DA259AD19DC92";
/// The first row of the MalwareBazaar sample export.
const MB_SHA256: &str = "e149f36cb6c001aa340c388d7684c8a055f59152026e8e0d1d678264d7c084d7";
const MB_RUSTY_SHA256: &str = "1d233362395405a19be5da8fc1f3fba060e658fb30718a47eedc0925a7226e52";

#[test]
fn real_feeds_import_with_their_counts_and_answer_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.sqlite");
    let d = dir.path();

    // Counts: drivers.subset.json has 69 KnownVulnerableSamples (python: sum(len(x['KnownVulnerableSamples'])));
    // the MalwareBazaar sample has 47 data rows; the LOLDrivers hash list has 1698 lines.
    let o = import(d, &db, "loldrivers-json", &feed("loldrivers/drivers.subset.json"), &[]);
    assert!(o.contains("loldrivers") && o.contains("imported 69 records"), "{o}");
    let o = import(d, &db, "malwarebazaar-csv", &feed("malwarebazaar/recent_export_sample.csv"), &[]);
    assert!(o.contains("imported 47 records") && o.contains("2026-07-22"), "{o}");
    let o = import(
        d,
        &db,
        "hashlist",
        &feed("loldrivers/samples_vulnerable.sha256"),
        &["--source", "loldrivers-hashes", "--class", "vulnerable"],
    );
    assert!(o.contains("imported 1698 records"), "{o}");
    let o = import(d, &db, "xcyclopedia", &feed("xcyclopedia/xcyclopedia.subset.csv"), &[]);
    assert!(o.contains("xcyclopedia") && o.contains("imported"), "{o}");

    // A vulnerable driver, by file hash and by authentihash.
    let by_file = lookup_json(d, &db, IQVW_SHA256, &["--fail-on", "vulnerable"], 1);
    assert_eq!(by_file["verdict"]["level"], "vulnerable", "{by_file:#}");
    let reason = &by_file["verdict"]["reasons"][0];
    assert_eq!(reason["id"], "known-vulnerable");
    assert!(reason["source"] == "loldrivers" || reason["source"] == "loldrivers-hashes", "{reason}");
    let m = by_file["reputation"]["matches"].as_array().unwrap();
    assert!(m.iter().any(|m| m["source"] == "loldrivers" && m["meta"]["company"] == "Intel Corporation"), "{m:?}");
    let by_auth = lookup_json(d, &db, IQVW_AUTH_SHA256, &["--kind", "authentihash-sha256"], 0);
    assert_eq!(by_auth["verdict"]["level"], "vulnerable", "{by_auth:#}");
    assert_eq!(by_auth["reputation"]["matches"][0]["matched_by"], "authentihash-sha256");
    assert_eq!(by_auth["verdict"]["reasons"][0]["source"], "loldrivers");

    // smss.exe from xcyclopedia: known good, with the Windows metadata.
    let smss = lookup_json(d, &db, SMSS_SHA256, &[], 0);
    assert_eq!(smss["verdict"]["level"], "good", "{smss:#}");
    let meta = &smss["reputation"]["matches"][0]["meta"];
    assert_eq!(meta["company"], "Microsoft Corporation");
    assert_eq!(meta["signer"], "Microsoft Windows");
    assert!(meta["path"].as_str().unwrap().to_lowercase().ends_with("\\system32\\smss.exe"));
    assert!(smss["reputation"]["typical_path"].as_str().unwrap().to_lowercase().contains("system32"));
    // Other smss.exe versions are in the subset too.
    assert!(!smss["reputation"]["additional_versions"].as_array().unwrap().is_empty(), "{smss:#}");

    // A MalwareBazaar row: malicious, exit 1 under the default --fail-on.
    let mb = lookup_json(d, &db, MB_RUSTY_SHA256, &[], 1);
    assert_eq!(mb["verdict"]["level"], "malicious");
    assert_eq!(mb["verdict"]["reasons"][0]["source"], "malwarebazaar");
    assert!(mb["verdict"]["reasons"][0]["message"].as_str().unwrap().contains("RustyStealer"), "{mb:#}");
    assert_eq!(mb["verdict"]["reasons"][0]["source_version"], "2026-07-22 22:38:50 UTC");
    // Upper case, as NSRL writes hashes, is the same hash.
    lookup_json(d, &db, &MB_SHA256.to_uppercase(), &[], 1);
    // An unknown hash: unknown, exit 0, no match.
    let none = lookup_json(d, &db, &"0".repeat(64), &[], 0);
    assert_eq!(none["verdict"]["level"], "unknown");
    assert_eq!(none["reputation"]["matches"].as_array().unwrap().len(), 0);

    // The card names the source and its version.
    let (card, _) = run(d, &db, &["lookup", MB_RUSTY_SHA256], 1);
    assert!(card.contains("known-malicious") && card.contains("(malwarebazaar 2026-07-22 22:38:50 UTC)"), "{card}");

    // db info lists the four sources with their counts.
    let (info, _) = run(d, &db, &["db", "info", "--json"], 0);
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    let feeds = info["feeds"].as_array().unwrap();
    assert_eq!(feeds.len(), 4, "{info:#}");
    let lol = feeds.iter().find(|f| f["source"] == "loldrivers").unwrap();
    assert_eq!(lol["records"], 69);
    let (v, _) = run(d, &db, &["db", "verify"], 0);
    assert!(v.contains("ok"), "{v}");
}

#[test]
fn a_reimport_is_idempotent_and_a_new_version_replaces_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let (d, db) = (dir.path(), dir.path().join("s.sqlite"));
    let f = feed("malwarebazaar/recent_export_sample.csv");
    import(d, &db, "malwarebazaar-csv", &f, &[]);
    let o = import(d, &db, "malwarebazaar-csv", &f, &[]);
    assert!(o.contains("unchanged"), "{o}");
    let (info, _) = run(d, &db, &["db", "info", "--json"], 0);
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["feeds"].as_array().unwrap().len(), 1);
    assert_eq!(info["feeds"][0]["records"], 47);

    // A new version with one row less: the dropped hash is gone, the others stay.
    let text = std::fs::read_to_string(&f).unwrap();
    let fewer: String = text.lines().filter(|l| !l.contains(MB_RUSTY_SHA256)).map(|l| format!("{l}\n")).collect();
    let f2 = d.join("newer.csv");
    std::fs::write(&f2, fewer).unwrap();
    let o = import(d, &db, "malwarebazaar-csv", &f2, &[]);
    assert!(o.contains("imported 46 records") && o.contains("replaced version"), "{o}");
    lookup_json(d, &db, MB_RUSTY_SHA256, &[], 0);
    lookup_json(d, &db, MB_SHA256, &[], 1);
}

#[test]
fn edits_add_remove_and_remove_feed() {
    let dir = tempfile::tempdir().unwrap();
    let (d, db) = (dir.path(), dir.path().join("s.sqlite"));
    let h = "d41d8cd98f00b204e9800998ecf8427e";
    let (o, _) = run(d, &db, &["db", "add", h, "--class", "malicious", "--source", "mine", "--name", "x.exe"], 0);
    assert!(o.contains("added md5"), "{o}");
    let l = lookup_json(d, &db, h, &[], 1);
    assert_eq!(l["reputation"]["matches"][0]["source"], "mine");
    assert_eq!(l["reputation"]["matches"][0]["meta"]["file_name"], "x.exe");
    // Adding again updates the class.
    run(d, &db, &["db", "add", h, "--class", "known-good", "--source", "mine"], 0);
    assert_eq!(lookup_json(d, &db, h, &[], 0)["verdict"]["level"], "good");
    let (o, _) = run(d, &db, &["db", "remove", h], 0);
    assert!(o.contains("removed md5") && o.contains("mine"), "{o}");
    assert_eq!(lookup_json(d, &db, h, &[], 0)["verdict"]["level"], "unknown");
    // db add refuses to write into an imported feed.
    import(d, &db, "malwarebazaar-csv", &feed("malwarebazaar/recent_export_sample.csv"), &[]);
    let (_, e) = run(d, &db, &["db", "add", h, "--class", "malicious", "--source", "malwarebazaar"], 2);
    assert!(e.contains("imported malwarebazaar-csv feed"), "{e}");
    let (o, _) = run(d, &db, &["db", "remove-feed", "malwarebazaar"], 0);
    assert!(o.contains("removed source malwarebazaar"), "{o}");
    lookup_json(d, &db, MB_SHA256, &[], 0);
    let (_, e) = run(d, &db, &["db", "remove-feed", "malwarebazaar"], 2);
    assert!(e.contains("no source named malwarebazaar"), "{e}");
}

#[test]
fn bad_hashes_exit_2_with_the_accepted_format() {
    let dir = tempfile::tempdir().unwrap();
    let (d, db) = (dir.path(), dir.path().join("s.sqlite"));
    for bad in [
        "xyz",
        "d41d8cd98f00b204e9800998ecf8427",
        "d41d8cd98f00b204e9800998ecf8427g",
        " d41d8cd98f00b204e9800998ecf8427e",
        "0xd41d8cd98f00b204e9800998ecf8427e",
        "d41d8cd98f00b204e9800998ecf8427é",
        "",
    ] {
        let (o, e) = run(d, &db, &["lookup", bad], 2);
        assert!(o.is_empty(), "{bad:?}: {o}");
        assert!(e.starts_with("filerep: error: invalid hash") && e.contains("ASCII hex only"), "{bad:?}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    // From standard input, with the line number.
    let out = filerep(d)
        .arg("--db")
        .arg(&db)
        .args(["lookup", "-"])
        .write_stdin("d41d8cd98f00b204e9800998ecf8427e\nnot-a-hash\n")
        .output()
        .unwrap();
    let (_, e) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(e.contains("standard input line 2"), "{e}");
    // A stream with no newline is cut off at 1 MiB, not read into memory whole.
    let out = filerep(d).arg("--db").arg(&db).args(["lookup", "-"]).write_stdin(vec![b'a'; 3 << 20]).output().unwrap();
    let (_, e) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(e.contains("standard input line 1: line longer than 1 MiB"), "{e}");
    // A good list from stdin: one answer per hash, in order.
    let out = filerep(d)
        .arg("--db")
        .arg(&db)
        .args(["lookup", "--format", "jsonl", "-"])
        .write_stdin("# comment\nd41d8cd98f00b204e9800998ecf8427e\n\nDA39A3EE5E6B4B0D3255BFEF95601890AFD80709\n")
        .output()
        .unwrap();
    let (o, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    let kinds: Vec<String> =
        o.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"].to_string()).collect();
    assert_eq!(kinds, ["\"md5\"", "\"sha1\""]);
}

#[test]
fn check_uses_the_store_and_flags_masquerading() {
    let dir = tempfile::tempdir().unwrap();
    let (d, db) = (dir.path(), dir.path().join("s.sqlite"));
    // A console program calling itself svchost.exe with another binary's version information.
    let mut pe = fixtures::Pe::new(true);
    pe.resources = Some(fixtures::Resources::Version(fixtures::VersionInfo {
        strings: vec![
            ("CompanyName".into(), "Evil Corp".into()),
            ("OriginalFilename".into(), "evil.exe".into()),
            ("FileDescription".into(), "Host Process for Windows Services".into()),
        ],
        file_version: [10, 0, 19041, 1],
        product_version: [10, 0, 19041, 1],
    }));
    let file = d.join("svchost.exe");
    std::fs::write(&file, pe.build().bytes).unwrap();
    let (o, _) = run(d, &db, &["check", "--json", file.to_str().unwrap()], 0);
    let doc: serde_json::Value = serde_json::from_str(&o).unwrap();
    let r = &doc["reports"][0];
    assert_eq!(r["verdict"]["level"], "suspicious", "{r:#}");
    let ids: Vec<&str> =
        r["verdict"]["reasons"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"masquerade-original-name") && ids.contains(&"masquerade-company"), "{ids:?}");
    let reason =
        r["verdict"]["reasons"].as_array().unwrap().iter().find(|x| x["id"] == "masquerade-original-name").unwrap();
    assert_eq!(reason["source"], "xcyclopedia");
    assert!(reason["source_version"].is_string());
    assert!(r["reputation"]["sources"].as_array().unwrap().is_empty());

    // Put its SHA-256 in the store as malicious: check now says malicious, names the source, exits 1.
    let sha256 = r["hashes"]["sha256"].as_str().unwrap().to_string();
    run(d, &db, &["db", "add", &sha256, "--class", "malicious", "--source", "team-blocklist"], 0);
    let (o, _) = run(d, &db, &["check", "--json", file.to_str().unwrap()], 1);
    let doc: serde_json::Value = serde_json::from_str(&o).unwrap();
    let r = &doc["reports"][0];
    assert_eq!(r["verdict"]["level"], "malicious");
    assert_eq!(r["verdict"]["reasons"][0]["source"], "team-blocklist");
    assert_eq!(r["reputation"]["matches"][0]["matched_by"], "sha256");
    let (card, _) = run(d, &db, &["check", file.to_str().unwrap()], 1);
    assert!(card.contains("team-blocklist 20") && card.contains("(malicious)"), "{card}");
    // --no-store judges from the file alone.
    let (card, _) = run(d, &db, &["check", "--no-store", file.to_str().unwrap()], 0);
    assert!(card.contains("store not consulted"), "{card}");
}

#[test]
fn feed_faults_leave_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (d, db) = (dir.path(), dir.path().join("s.sqlite"));
    import(d, &db, "malwarebazaar-csv", &feed("malwarebazaar/recent_export_sample.csv"), &[]);

    // Not the format asked for.
    let p = feed("malwarebazaar/recent_export_sample.csv");
    let (_, e) = run(d, &db, &["db", "import", "--format", "loldrivers-json", p.to_str().unwrap()], 2);
    assert!(e.contains("not a loldrivers-json file") || e.contains("import as loldrivers-json failed"), "{e}");
    // An NSRL "database" that is not SQLite.
    let (_, e) = run(d, &db, &["db", "import", "--format", "nsrl-rds3", p.to_str().unwrap()], 2);
    assert!(e.contains("nsrl-rds3") && e.to_lowercase().contains("sqlite"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    // A gzip bomb: 64 MiB of hash lines from a small file, refused past the cap.
    let bomb = d.join("bomb.gz");
    {
        let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&bomb).unwrap(), flate2::Compression::best());
        let line = format!("{}\n", "a".repeat(64));
        for _ in 0..(64 << 20) / line.len() {
            gz.write_all(line.as_bytes()).unwrap();
        }
        gz.finish().unwrap();
    }
    let (_, e) = run(
        d,
        &db,
        &[
            "db",
            "import",
            "--format",
            "hashlist",
            "--source",
            "x",
            "--class",
            "malicious",
            "--max-expanded",
            "1M",
            bomb.to_str().unwrap(),
        ],
        2,
    );
    assert!(e.contains("expands beyond 1048576 bytes"), "{e}");
    // --strict: one bad line aborts, nothing changes.
    let bad = d.join("bad.txt");
    std::fs::write(&bad, format!("{}\nnot-a-hash\n", "b".repeat(64))).unwrap();
    let (_, e) = run(
        d,
        &db,
        &[
            "db",
            "import",
            "--format",
            "hashlist",
            "--source",
            "x",
            "--class",
            "malicious",
            "--strict",
            bad.to_str().unwrap(),
        ],
        2,
    );
    assert!(e.contains("line 2") && e.contains("--strict"), "{e}");
    lookup_json(d, &db, &"b".repeat(64), &[], 0);
    // Without --strict the bad line is skipped and named.
    let (o, e) = run(
        d,
        &db,
        &["db", "import", "--format", "hashlist", "--source", "x", "--class", "malicious", bad.to_str().unwrap()],
        0,
    );
    assert!(o.contains("1 bad lines skipped") && e.contains("line 2"), "{o}\n{e}");

    let (info, _) = run(d, &db, &["db", "info", "--json"], 0);
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["feeds"].as_array().unwrap().len(), 2);
    run(d, &db, &["db", "verify"], 0);
}

#[test]
fn a_busy_store_says_so_and_readers_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (d, db) = (dir.path(), dir.path().join("s.sqlite"));
    run(d, &db, &["db", "add", &"c".repeat(64), "--class", "malicious"], 0);
    // Another process holds the write lock of the database.
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE; CREATE TABLE hold (x);").unwrap();
    let out = filerep(d)
        .env("FILEREP_BUSY_TIMEOUT_MS", "300")
        .arg("--db")
        .arg(&db)
        .args(["db", "add", &"d".repeat(64), "--class", "malicious"])
        .output()
        .unwrap();
    let (_, e) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains("store busy"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    // Readers are not blocked by the writer.
    lookup_json(d, &db, &"c".repeat(64), &[], 1);
    holder.execute_batch("ROLLBACK").unwrap();
    run(d, &db, &["db", "add", &"d".repeat(64), "--class", "malicious"], 0);
}

#[test]
fn a_full_disk_fails_the_import_and_keeps_the_old_data() {
    let dir = tempfile::tempdir().unwrap();
    let (d, db) = (dir.path(), dir.path().join("s.sqlite"));
    import(d, &db, "malwarebazaar-csv", &feed("malwarebazaar/recent_export_sample.csv"), &[]);
    let list = d.join("big.txt");
    write_hash_list(&list, 0, 200_000);
    let out = filerep(d)
        .env("FILEREP_MAX_PAGE_COUNT", "400")
        .arg("--db")
        .arg(&db)
        .args([
            "db",
            "import",
            "--format",
            "hashlist",
            "--source",
            "big",
            "--class",
            "malicious",
            list.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let (_, e) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains("store full") && e.contains("unchanged"), "{e}");
    lookup_json(d, &db, MB_SHA256, &[], 1);
    let (info, _) = run(d, &db, &["db", "info", "--json"], 0);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&info).unwrap()["feeds"].as_array().unwrap().len(), 1);
    run(d, &db, &["db", "verify"], 0);
}

#[test]
fn a_damaged_store_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (d, db) = (dir.path(), dir.path().join("s.sqlite"));
    // Not a database at all.
    std::fs::write(&db, b"this is not a database, just text that is long enough to fill a header......").unwrap();
    let exe = d.join("a.exe");
    std::fs::write(&exe, fixtures::valid_pe32_plus().bytes).unwrap();
    for args in [
        vec!["check", exe.to_str().unwrap()],
        vec!["lookup", &"a".repeat(64)],
        vec!["db", "info"],
        vec!["db", "verify"],
    ] {
        let (o, e) = run(d, &db, &args, 2);
        assert!(o.is_empty(), "{args:?}: {o}");
        assert!(e.contains("s.sqlite") && e.contains("damaged or not a filerep store"), "{args:?}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    // A real store whose feed data file was overwritten in the middle.
    let db2 = d.join("t.sqlite");
    import(d, &db2, "loldrivers-csv", &feed("loldrivers/drivers.csv"), &[]);
    let files: Vec<PathBuf> = std::fs::read_dir(d.join("t.sqlite.feeds")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let len = bytes.len();
    assert!(len > 64 * 1024, "{len}");
    for b in &mut bytes[8192..len - 4096] {
        *b = 0x5a;
    }
    std::fs::write(&files[0], bytes).unwrap();
    let out = filerep(d).arg("--db").arg(&db2).args(["db", "verify"]).output().unwrap();
    let (_, e) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains("damaged") && e.contains("loldrivers"), "{e}");
    // Lookups on it fail with one clear line, never a wrong answer.
    let out = filerep(d).arg("--db").arg(&db2).args(["lookup", IQVW_SHA256]).output().unwrap();
    let (o, e) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{o}{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    // The catalogue itself damaged: the same clear error.
    let mut bytes = std::fs::read(&db2).unwrap();
    let n = bytes.len();
    for b in &mut bytes[100..n.min(4096)] {
        *b = 0xa5;
    }
    std::fs::write(&db2, bytes).unwrap();
    let _ = std::fs::remove_file(d.join("t.sqlite-wal"));
    let out = filerep(d).arg("--db").arg(&db2).args(["db", "info"]).output().unwrap();
    let (_, e) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains("damaged"), "{e}");
}

fn write_hash_list(path: &Path, seed: u64, n: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        // Distinct SHA-256-shaped values from a counter (splitmix64 spreads them over the key space).
        let mut x = (seed << 40) ^ i;
        let mut words = [0u64; 4];
        for w in &mut words {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            *w = z ^ (z >> 31);
        }
        writeln!(f, "{:016x}{:016x}{:016x}{:016x}", words[0], words[1], words[2], words[3]).unwrap();
    }
}

fn first_hash(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().lines().next().unwrap().to_string()
}

/// kill -9 at random points of a large import, many times: the store is always either the old or the new
/// version, never a mix, and SQLite's integrity check passes.
#[test]
fn kill_9_during_imports_never_leaves_a_mix() {
    let dir = tempfile::tempdir().unwrap();
    let (d, db) = (dir.path(), dir.path().join("s.sqlite"));
    let old = d.join("old.txt");
    let new = d.join("new.txt");
    // 600,000 lines (39 MB): big enough to be built in partitions, one per core, written in parallel.
    write_hash_list(&old, 1, 600_000);
    write_hash_list(&new, 2, 600_000);
    let (old_h, new_h) = (first_hash(&old), first_hash(&new));
    let started = std::time::Instant::now();
    import(d, &db, "hashlist", &old, &["--source", "list", "--class", "malicious"]);
    // Kill points spread over a whole import and a little beyond, so that some land in the final sort, the
    // switch, or after it.
    let span = started.elapsed().as_millis() as u64 * 115 / 100 + 1;
    let bin = assert_cmd::cargo::cargo_bin("filerep");
    // A time-seeded LCG: the kill points differ from run to run (the seed is printed for a rerun).
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("kill -9 test seed {seed}");
    for round in 0..12 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = Duration::from_millis((seed >> 33) % span);
        let src = if round % 2 == 0 { &new } else { &old };
        let mut child = StdCommand::new(&bin)
            .env_clear()
            .env("NO_COLOR", "1")
            .arg("--db")
            .arg(&db)
            .args(["db", "import", "--format", "hashlist", "--source", "list", "--class", "malicious"])
            .arg(src)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        eprintln!("round {round}: SIGKILL sent after {delay:?}; the import ended with {status}");
        // Exactly one of the two versions is visible, whole.
        let (o, _) = run(d, &db, &["lookup", "--format", "jsonl", &old_h, &new_h, "--fail-on", "vulnerable"], 1);
        let levels: Vec<String> = o
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["verdict"]["level"].to_string())
            .collect();
        assert!(
            levels == ["\"malicious\"", "\"unknown\""] || levels == ["\"unknown\"", "\"malicious\""],
            "round {round} (delay {delay:?}): {levels:?}"
        );
        let (info, _) = run(d, &db, &["db", "info", "--json"], 0);
        let info: serde_json::Value = serde_json::from_str(&info).unwrap();
        assert_eq!(info["feeds"][0]["digests"], 600_000, "round {round}: {info:#}");
        let conn = rusqlite::Connection::open(&db).unwrap();
        let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok", "round {round}");
    }
    // The next writer cleans up what the killed imports left: one version, no staging tables.
    import(d, &db, "hashlist", &new, &["--source", "list", "--class", "malicious"]);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let versions: i64 = conn.query_row("SELECT count(*) FROM feeds", [], |r| r.get(0)).unwrap();
    assert_eq!(versions, 1);
    // Two files when the machine has two cores or more, never a leftover from a killed import.
    let files = std::fs::read_dir(d.join("s.sqlite.feeds")).unwrap().count();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    assert_eq!(files, cores, "one file per partition and nothing else");
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name LIKE 's%' \
             AND name NOT IN ('sqlite_sequence', 'sightings')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
}

/// An NSRL RDSv3 minimal database built from NIST's schema, holding real NSRL records (tests/data/feeds/nsrl).
fn make_rds(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&std::fs::read_to_string(feed("nsrl/RDSv3_minimal.schema.sql.txt")).unwrap()).unwrap();
    conn.execute_batch(
        "INSERT INTO MFG VALUES (534, 'Vinux Project');
         INSERT INTO OS VALUES (599, 'Linux', '5.1', 534);
         INSERT INTO PKG VALUES (163568, 'Vinux', '5.1', 599, 534, 'English', 'Operating System');
         INSERT INTO VERSION VALUES ('2024.03.1', 'modern', '2024-03-01', '2024-03-01', 'test build');",
    )
    .unwrap();
    // RDS 2.x has no SHA-256; the one for ./bin/ls comes from the hashlookup record of the same file.
    let rows = [
        (
            "08AC13B08BFE4407E0F0C2E12E7F5B1B5E77EB817349A5EA1D836E83CD5ACB13",
            "5848386F77B4C60319C68B69C4594E29959381A2",
            "945FEDB3A3C290D69F075F997E5320FF",
            "./bin/ls",
            110080,
            163568,
        ),
        (
            "",
            "00000079FD7AAC9B2F9C988C50750E1F50B27EB5",
            "8ED4B4ED952526D89899E723F3488DE4",
            "wow64_microsoft-windows-i..timezones.resources_31bf3856ad364e35_10.0.16299.579_de-de_f24979c73226184d.manifest",
            2520,
            190742,
        ),
    ];
    for r in rows {
        conn.execute(
            "INSERT INTO FILE VALUES (?1, ?2, ?3, '00000000', ?4, ?5, ?6)",
            rusqlite::params![r.0, r.1, r.2, r.3, r.4, r.5],
        )
        .unwrap();
    }
}

#[test]
fn nsrl_hashlookup_and_bloom_feeds_say_known_file_not_good() {
    let dir = tempfile::tempdir().unwrap();
    let (d, db) = (dir.path(), dir.path().join("s.sqlite"));
    let rds = d.join("RDS_2024.03.1_modern_minimal.db");
    make_rds(&rds);
    let o = import(d, &db, "nsrl-rds3", &rds, &[]);
    assert!(o.contains("nsrl 2024.03.1") && o.contains("imported 2 records"), "{o}");
    let ls = lookup_json(d, &db, "5848386f77b4c60319c68b69c4594e29959381a2", &["--fail-on", "suspicious"], 0);
    assert_eq!(ls["verdict"]["level"], "unknown", "known is not good: {ls:#}");
    assert_eq!(ls["verdict"]["reasons"][0]["id"], "known-file");
    assert_eq!(ls["verdict"]["reasons"][0]["source_version"], "2024.03.1");
    assert_eq!(ls["reputation"]["matches"][0]["meta"]["package"], "Vinux 5.1");
    assert_eq!(ls["reputation"]["relationships"]["packages"][0], "Vinux 5.1");

    // CIRCL hashlookup records, one per line (the real sample records, compacted).
    let mut ndjson = String::new();
    for f in [
        "draft_sample_binary_with_parents.json",
        "lookup_md5_200_nsrl_legacy_format.json",
        "lookup_sha256_200_newer_fields_THIRDPARTY.json",
    ] {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(feed(&format!("circl_hashlookup/{f}"))).unwrap()).unwrap();
        ndjson.push_str(&format!("{v}\n"));
    }
    let hl = d.join("hashlookup.ndjson");
    std::fs::write(&hl, ndjson).unwrap();
    let o = import(d, &db, "hashlookup", &hl, &[]);
    assert!(o.contains("imported 3 records"), "{o}");
    let ls = lookup_json(d, &db, "08ac13b08bfe4407e0f0c2e12e7f5b1b5e77eb817349a5ea1d836e83cd5acb13", &[], 0);
    let sources: Vec<&str> =
        ls["reputation"]["matches"].as_array().unwrap().iter().map(|m| m["source"].as_str().unwrap()).collect();
    assert!(sources.contains(&"nsrl") && sources.contains(&"hashlookup"), "{sources:?}");
    let packages = ls["reputation"]["relationships"]["packages"].to_string();
    assert!(packages.contains("coreutils 8.21-1ubuntu5.4"), "{packages}");

    // A DCSO Bloom filter of upper-case SHA-1 hex, queried in place.
    let members: Vec<String> = (0..1000).map(|i| format!("{:040X}", i * 7919 + 1)).collect();
    let bloom = d.join("hashlookup-full.bloom");
    filerep::store::bloom::write_bloom(&bloom, 10_000, 1e-6, members.iter().map(|m| m.as_bytes())).unwrap();
    let o = import(d, &db, "hashlookup-bloom", &bloom, &["--set-version", "2026-11"]);
    assert!(o.contains("hashlookup-bloom 2026-11"), "{o}");
    let hit = lookup_json(d, &db, &members[10].to_lowercase(), &[], 0);
    let m = &hit["reputation"]["matches"][0];
    assert_eq!(m["source"], "hashlookup-bloom");
    assert_eq!(m["probabilistic"], true);
    assert_eq!(m["class"], "known-file");
    assert_eq!(hit["verdict"]["level"], "unknown");
    let miss = lookup_json(d, &db, &format!("{:040x}", 2), &[], 0);
    assert!(miss["reputation"]["matches"].as_array().unwrap().is_empty(), "{miss:#}");
    // The filter is read where it is: moving it away is a clear error naming the source.
    std::fs::rename(&bloom, d.join("moved.bloom")).unwrap();
    let (_, e) = run(d, &db, &["lookup", &members[10]], 2);
    assert!(e.contains("hashlookup-bloom") && e.contains("cannot be used"), "{e}");
}

/// MalwareBazaar publishes its full dump as a zip holding one CSV: imported as it comes, without unzipping.
#[test]
fn a_zipped_export_is_imported_as_it_comes() {
    let dir = tempfile::tempdir().unwrap();
    let (d, db) = (dir.path(), dir.path().join("s.sqlite"));
    let csv = std::fs::read(feed("malwarebazaar/recent_export_sample.csv")).unwrap();
    let mut deflated = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflated.write_all(&csv).unwrap();
    let data = deflated.finish().unwrap();
    // A local file header with a data descriptor flag (sizes after the data), as streaming zip writers do.
    let mut z = b"PK\x03\x04".to_vec();
    for v in [20u16, 8, 8] {
        z.extend_from_slice(&v.to_le_bytes());
    }
    z.extend_from_slice(&[0; 16]);
    z.extend_from_slice(&8u16.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z.extend_from_slice(b"full.csv");
    z.extend_from_slice(&data);
    let zip = d.join("full.zip");
    std::fs::write(&zip, z).unwrap();
    let o = import(d, &db, "malwarebazaar-csv", &zip, &[]);
    assert!(o.contains("imported 47 records"), "{o}");
    lookup_json(d, &db, MB_RUSTY_SHA256, &[], 1);
}

#[test]
fn a_store_from_a_newer_filerep_is_refused_and_feed_strings_are_sanitised() {
    let dir = tempfile::tempdir().unwrap();
    let (d, db) = (dir.path(), dir.path().join("s.sqlite"));
    // A file name with terminal escapes and a newline, as a hostile feed could carry.
    let list = d.join("list.txt");
    let h = "f".repeat(64);
    std::fs::write(&list, format!("{h}  evil\x1b[2J\x1b]0;pwned\x07name.exe\n")).unwrap();
    import(d, &db, "hashlist", &list, &["--source", "mine", "--class", "malicious"]);
    let (card, _) = run(d, &db, &["lookup", &h], 1);
    assert!(!card.contains('\x1b') && !card.contains('\x07'), "{card:?}");
    assert!(card.contains("evil"), "{card}");
    let (json, _) = run(d, &db, &["lookup", "--json", &h], 1);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["lookups"][0]["reputation"]["matches"][0]["meta"]["file_name"], "evil\x1b[2J\x1b]0;pwned\x07name.exe");

    // A store whose schema is newer than this filerep: refused with one clear line, never altered.
    rusqlite::Connection::open(&db).unwrap().pragma_update(None, "user_version", 99).unwrap();
    for args in [vec!["db", "info"], vec!["lookup", h.as_str()], vec!["db", "add", h.as_str(), "--class", "known-good"]]
    {
        let (_, e) = run(d, &db, &args, 2);
        assert!(e.contains("schema version 99") && e.contains("upgrade filerep"), "{args:?}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    let v: i64 = rusqlite::Connection::open(&db).unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(v, 99);
}
