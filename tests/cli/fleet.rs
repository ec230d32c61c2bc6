//! Fleet prevalence through a real `filerep serve`: a simulated fleet of participants with known figures
//! (built here) is sent to `POST /v1/sightings`, and the aggregates come back exactly through
//! `GET /v1/files/{hash}`, `filerep lookup --remote` (JSON and card) and the HTML page; below the participant
//! floor nothing but the number of participants is given, anywhere; a flooding participant is rate-limited
//! and weighs as one participant.

use std::path::Path;

use serde_json::{Value, json};

use crate::serve::Server;
use crate::support::filerep;

const TOKEN: &str = "fleet-token-8e2d41";
/// The file every participant runs.
const COMMON: &str = "aa00000000000000000000000000000000000000000000000000000000000001";
/// The file one participant fewer than the floor runs, then exactly the floor.
const RARE: &str = "bb00000000000000000000000000000000000000000000000000000000000002";
/// Participants of the common file.
const FLEET: usize = 250;
/// The floor (the default).
const FLOOR: usize = 200;

fn participant(i: usize) -> String {
    format!("{:032x}", 0x000f_1ee7_0000_u64 + i as u64)
}

fn country(i: usize) -> &'static str {
    match i {
        0..125 => "DE",
        125..200 => "FR",
        200..247 => "US",
        _ => "LI",
    }
}

/// A file as participant `i` reports it: figures that are a known function of `i`.
fn file(sha: &str, i: usize, working_set: u64) -> Value {
    let name = if sha == RARE { "rare" } else { "tool" };
    let path = if i % 50 == 7 { format!("/home/secret-user-{i}/bin/{name}") } else { format!("/usr/bin/{name}") };
    json!({
        "sha256": sha, "sha1": &sha[..40], "md5": &sha[..32],
        "path": path, "deleted": false, "cached": false, "processes": 1 + (i % 2) as u64,
        "parent": "systemd", "command_line": format!("/usr/bin/{name} --serve{}", if i % 50 == 7 { format!(" --user secret-user-{i}") } else { String::new() }),
        "owner": if i % 50 == 7 { format!("secret-user-{i}") } else { "svc-tool".to_string() },
        "privilege": if i % 5 == 0 { "root" } else { "user" },
        "platform": "64-bit", "cpu_percent": (i % 10) as f64,
        "private_bytes": {"mean": 2 * working_set, "max": 2 * working_set},
        "virtual_bytes": {"mean": 10 * working_set, "max": 10 * working_set},
        "working_set": {"mean": working_set, "max": working_set},
        "peak_working_set": working_set + 500,
        "threads": {"mean": (i % 4) as f64, "max": (i % 4) as u64},
        "handles": {"mean": 8.0, "max": 8},
    })
}

fn observation(i: usize, started_at: &str, files: Vec<Value>) -> Value {
    let (os, version) = if i % 2 == 0 { ("Debian GNU/Linux", "12") } else { ("Ubuntu", "24.04") };
    let mut host = json!({"os_name": os, "os_version": version, "country": country(i), "platform": "64-bit"});
    if i < 150 {
        host["manufacturer"] = json!("Dell Inc.");
    }
    json!({
        "schema_version": 1, "participant": participant(i), "host": host, "started_at": started_at,
        "duration_secs": 30.0, "samples": 31, "hashed": 0, "cached": 0, "files": files,
        "skipped": {"kernel_threads": 0, "permission_denied": 0, "vanished": 0, "unhashable": 0},
    })
}

fn post(server: &Server, doc: &Value) -> Value {
    let r = server.post_json("/v1/sightings", doc, Some(TOKEN));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn prevalence(server: &Server, sha: &str) -> Value {
    server.get_json(&format!("/v1/files/{sha}"))["reputation"]["prevalence"].clone()
}

fn start(dir: &Path) -> Server {
    let db = dir.join("fleet.sqlite");
    // The peer-address limit is off: the whole fleet comes from 127.0.0.1. The per-participant one is on.
    Server::start(dir, &db, &["--rate-limit", "0", "--sightings-burst", "4"], &[("FILEREP_SERVE_TOKEN", TOKEN)])
}

/// Everything a withheld answer must not contain.
fn assert_nothing_leaks(text: &str) {
    for secret in ["/usr/bin/", "secret-user", "systemd", "Dell", "Debian", "Ubuntu", "\"DE\"", "\"FR\"", "svc-tool"] {
        assert!(!text.contains(secret), "{secret} leaked below the floor: {text}");
    }
}

#[test]
fn a_simulated_fleet_is_aggregated_exactly_and_nothing_leaks_below_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());

    // Participants 0..199 run the rare file too: one fewer than the floor.
    for i in 0..FLEET {
        let mut files = vec![file(COMMON, i, 1000 * (i as u64 + 1))];
        if i < FLOOR - 1 {
            files.push(file(RARE, i, 7777));
        }
        let answer = post(&server, &observation(i, "2026-11-01T10:00:00Z", files));
        assert_eq!(answer["recorded"], if i < FLOOR - 1 { 2 } else { 1 }, "{answer}");
    }

    // Below the floor: the number of participants, and nothing else, in the JSON, the card and the page.
    let rare = prevalence(&server, RARE);
    assert_eq!(rare["participants"], (FLOOR - 1) as u64, "{rare:#}");
    assert_eq!(rare["withheld"], true);
    assert_eq!(rare["min_participants"], FLOOR as u64);
    for key in ["sightings", "first_seen", "last_seen", "os_versions", "countries", "manufacturers"] {
        assert!(rare[key].is_null(), "{key}: {rare:#}");
    }
    for (k, v) in rare["resources"].as_object().unwrap().iter().chain(rare["process"].as_object().unwrap()) {
        assert!(v.is_null(), "{k}: {rare:#}");
    }
    let whole = server.get(&format!("/v1/files/{RARE}")).text();
    assert_nothing_leaks(&whole);
    let page = crate::serve::http(server.addr, "GET", &format!("/files/{RARE}"), &[("Accept", "text/html")], b"");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("Fewer than 200 participants"), "{html}");
    assert_nothing_leaks(&html);
    let url = format!("http://{}", server.addr);
    let out = filerep(dir.path()).args(["--remote", &url, "lookup", RARE]).output().unwrap();
    let card = String::from_utf8_lossy(&out.stdout);
    assert!(card.contains("199 participants · fewer than 200 participants: figures withheld"), "{card}");
    assert_nothing_leaks(&card);

    // One more participant: exactly the floor, and the figures appear.
    post(&server, &observation(FLEET, "2026-11-02T10:00:00Z", vec![file(RARE, FLEET, 7777)]));
    let rare = prevalence(&server, RARE);
    assert_eq!((rare["participants"].as_u64(), rare["withheld"].as_bool()), (Some(FLOOR as u64), Some(false)));
    assert_eq!(
        rare["resources"]["working_set"],
        json!({"mean": 7777.0, "min": 7777.0, "max": 7777.0, "participants": 200})
    );

    // A flooding participant: four batches go through (the burst), the fifth is refused; a replay of a run
    // already recorded is acknowledged and not counted again.
    let flood = |at: &str| observation(0, at, vec![file(COMMON, 0, 4000)]);
    for at in ["2026-11-03T10:00:00Z", "2026-11-03T11:00:00Z"] {
        post(&server, &flood(at));
    }
    let replay = post(&server, &observation(0, "2026-11-01T10:00:00Z", vec![file(COMMON, 0, 1000)]));
    assert_eq!(replay, json!({"recorded": 0, "duplicate": true}));
    let refused = server.post_json("/v1/sightings", &flood("2026-11-03T12:00:00Z"), Some(TOKEN));
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert!(refused.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)));

    // The aggregates, exactly: each participant's own mean first, then over the participants.
    // Participant 0's working set: (1000 + 4000 + 4000) / 3 = 3000; participant i > 0: 1000 (i + 1).
    let means: Vec<f64> = (0..FLEET).map(|i| if i == 0 { 3000.0 } else { 1000.0 * (i as f64 + 1.0) }).collect();
    let mean = means.iter().sum::<f64>() / FLEET as f64;
    let p = prevalence(&server, COMMON);
    assert_eq!(p["participants"], FLEET as u64);
    assert_eq!(p["withheld"], false);
    assert_eq!(p["sightings"], FLEET as u64 + 2);
    assert_eq!(p["first_seen"], "2026-11-01T10:00:00Z");
    assert_eq!(p["last_seen"], "2026-11-03T11:00:00Z");
    let r = &p["resources"];
    // Minimum and maximum are those of every value reported: participant 0's first run had 1000.
    assert_eq!(r["working_set"], json!({"mean": mean.round(), "min": 1000.0, "max": 250_000.0, "participants": 250}));
    assert_eq!(r["private_bytes"]["mean"], (2.0 * mean).round());
    assert_eq!(r["virtual_bytes"]["max"], 2_500_000.0);
    assert_eq!(r["peak_working_set"]["min"], 1500.0);
    // A naive mean over sightings would have let the flood count three times.
    let naive = (means.iter().sum::<f64>() - 3000.0 + 9000.0) / (FLEET + 2) as f64;
    assert_ne!(r["working_set"]["mean"], naive.round());
    // CPU: i % 10 for everyone; participant 0 reported 0 three times.
    let cpu = (0..FLEET).map(|i| (i % 10) as f64).sum::<f64>() / FLEET as f64;
    assert_eq!(r["cpu_percent"], json!({"mean": cpu, "min": 0.0, "max": 9.0, "participants": 250}));
    let threads = (0..FLEET).map(|i| (i % 4) as f64).sum::<f64>() / FLEET as f64;
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    assert_eq!(r["threads"], json!({"mean": round2(threads), "min": 0.0, "max": 3.0, "participants": 250}));
    assert_eq!(r["handles"]["mean"], 8.0);
    assert_eq!(r["processes"], json!({"mean": 1.5, "min": 1.0, "max": 2.0, "participants": 250}));

    // Process properties: the most common values; the five private paths (one participant each) never show.
    let pr = &p["process"];
    assert_eq!(pr["typical_path"], "/usr/bin/tool");
    assert_eq!(pr["typical_command_line"], "/usr/bin/tool --serve");
    assert_eq!(pr["typical_owner"], "svc-tool");
    assert_eq!(pr["typical_privilege"], "user", "200 of 250 participants run it as a user");
    assert_eq!(pr["typical_parent"], "systemd");
    assert_eq!(pr["platform"], "64-bit");
    assert_eq!(pr["paths"], json!([{"value": "/usr/bin/tool", "participants": 245, "percent": 98.0}]));
    let whole = server.get(&format!("/v1/files/{COMMON}")).text();
    assert!(!whole.contains("secret-user"), "{whole}");
    assert_eq!(server.get_json(&format!("/v1/files/{COMMON}"))["reputation"]["typical_path"], "/usr/bin/tool");

    // The distributions, with the three participants in LI under "Other" and no manufacturer as "Unknown".
    let share = |v: &str, n: u64, pc: f64| json!({"value": v, "participants": n, "percent": pc});
    assert_eq!(
        p["countries"],
        json!([share("DE", 125, 50.0), share("FR", 75, 30.0), share("US", 47, 18.8), share("Other", 3, 1.2)])
    );
    assert_eq!(p["os_versions"], json!([share("Debian GNU/Linux 12", 125, 50.0), share("Ubuntu 24.04", 125, 50.0)]));
    assert_eq!(p["manufacturers"], json!([share("Dell Inc.", 150, 60.0), share("Unknown", 100, 40.0)]));
    assert!(!whole.contains("\"LI\""), "a country of three participants is not shown on its own");

    // The client: lookup --remote gives the same figures and draws the card's sections.
    let out = filerep(dir.path()).args(["--remote", &url, "lookup", "--json", COMMON]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut mine = doc["lookups"][0]["reputation"]["prevalence"].clone();
    assert_eq!(mine["source"], url.as_str());
    mine["source"] = p["source"].clone();
    assert_eq!(mine, p);
    let out = filerep(dir.path()).args(["--remote", &url, "lookup", COMMON]).output().unwrap();
    let card = String::from_utf8_lossy(&out.stdout);
    let row = |label: &str, value: &str| format!("{:<21}{value}", format!("   {label}"));
    let bar = |label: &str, cells: usize, pc: f64| {
        format!("   {label:<42}{}{} {pc:>5.1} %", "█".repeat(cells), "░".repeat(20 - cells))
    };
    for want in [
        " Fleet prevalence    250 participants · 252 sightings · seen 2026-11-01 to 2026-11-03".to_string(),
        " Resource utilization (averaged over 250 participants)".to_string(),
        row("Working set", &format!("{:.1} KiB", mean / 1024.0)),
        row("Typical path", "/usr/bin/tool"),
        "   Typical command line /usr/bin/tool --serve".to_string(),
        format!("{:<17}user", "Privilege"),
        " Countries".to_string(),
        bar("DE", 10, 50.0),
        bar("Other", 0, 1.2),
        " PC manufacturers".to_string(),
        bar("Unknown", 8, 40.0),
    ] {
        assert!(card.contains(want.as_str()), "{want:?} not in\n{card}");
    }

    // The HTML page draws the three distributions as bar charts.
    let html =
        crate::serve::http(server.addr, "GET", &format!("/files/{COMMON}"), &[("Accept", "text/html")], b"").text();
    for want in [
        "id=\"dist-os\"",
        "id=\"dist-country\"",
        "id=\"dist-manufacturer\"",
        "width:50.0%",
        "Resource utilization",
        "Typical privilege",
    ] {
        assert!(html.contains(want), "{want} not in the page");
    }
    assert!(!html.contains("secret-user"));
}

#[test]
fn sightings_need_the_token_and_a_bounded_well_formed_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fleet.sqlite");
    let server = Server::start(
        dir.path(),
        &db,
        &["--max-sightings-per-batch", "2", "--min-participants", "5"],
        &[("FILEREP_SERVE_TOKEN", TOKEN)],
    );
    let doc = observation(1, "2026-11-01T10:00:00Z", vec![file(COMMON, 1, 10)]);
    assert!(server.post_json("/v1/sightings", &doc, None).error(401).contains("Bearer"));
    assert_eq!(server.post_json("/v1/sightings", &doc, Some("wrong")).error(401), "invalid token");
    let three = observation(
        1,
        "2026-11-01T10:00:00Z",
        (0..3).map(|i| file(&COMMON.replace("01", &format!("{i:02}")), 1, 10)).collect(),
    );
    assert!(server.post_json("/v1/sightings", &three, Some(TOKEN)).error(413).contains("at most 2"));
    let mut bad = doc.clone();
    bad["files"][0]["sha256"] = json!("nothex");
    assert!(server.post_json("/v1/sightings", &bad, Some(TOKEN)).error(400).contains("files[0].sha256"));
    let mut bad = doc.clone();
    bad["files"][0]["privilege"] = json!("admin");
    let why = server.post_json("/v1/sightings", &bad, Some(TOKEN)).error(400);
    assert!(why.contains("files[0].privilege") && why.contains("root, elevated, user"), "{why}");
    // Nothing was recorded by the refused requests.
    assert_eq!(prevalence(&server, COMMON)["participants"], 0);
    post(&server, &doc);
    let p = prevalence(&server, COMMON);
    assert_eq!((p["participants"].as_u64(), p["min_participants"].as_u64()), (Some(1), Some(5)));
    // The floor cannot be set below 5.
    let out = filerep(dir.path()).args(["serve", "--min-participants", "4"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--min-participants"));
}
