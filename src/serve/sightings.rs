//! `POST /v1/sightings`: one participant's `filerep observe --json` document, checked field by field before
//! it is recorded (and rolled up for fleet prevalence, see `crate::store::fleet`).
//!
//! The body is bounded ([`super::Config::max_sightings_body_bytes`], and at most
//! [`super::Config::max_sightings_per_batch`] files a batch), every digest must be hex of its length, every
//! text is bounded, every number finite and in range. A participant may send a batch per
//! `sightings_interval` on average (a token bucket per participant id); a replay of a run already recorded
//! is acknowledged and not counted twice.

use axum::http::StatusCode;

use super::ApiError;
use crate::observe::{FileSighting, Observation};
use crate::store::sqlite::{ObservationRow, SightingRow};

use crate::observe::{MAX_SHORT_TEXT as MAX_HOST_TEXT, MAX_TEXT};

/// The earliest `started_at` accepted: 2000-01-01.
const EARLIEST: i64 = 946_684_800;

fn digest<const N: usize>(what: &str, hex: &str) -> Result<[u8; N], String> {
    if hex.len() != 2 * N {
        return Err(format!("{what}: expected {} hex digits, got {}", 2 * N, hex.len()));
    }
    let bytes = crate::hex::decode(hex).ok_or_else(|| format!("{what}: not hex"))?;
    bytes.try_into().map_err(|_| format!("{what}: not {N} bytes"))
}

fn text(what: &str, v: &Option<String>, max: usize) -> Result<Option<String>, String> {
    match v {
        None => Ok(None),
        Some(s) if s.chars().count() > max => Err(format!("{what}: longer than {max} characters")),
        Some(s) if s.chars().any(|c| c.is_control() && c != '\t') => {
            Err(format!("{what}: contains control characters"))
        }
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => Ok(Some(s.clone())),
    }
}

fn finite(what: &str, v: f64, max: f64) -> Result<f64, String> {
    if v.is_finite() && (0.0..=max).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{what}: {v} is not a number from 0 to {max}"))
    }
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `YYYY-MM-DDTHH:MM:SSZ` (as `observe` writes it) to seconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(crate::authenticode::der::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

fn file_row(i: usize, f: &FileSighting) -> Result<SightingRow, String> {
    let at = |what: &str| format!("files[{i}].{what}");
    let path = text(&at("path"), &Some(f.path.clone()), MAX_TEXT)?.ok_or_else(|| format!("{}: empty", at("path")))?;
    let cpu = match f.cpu_percent {
        Some(c) => Some(finite(&at("cpu_percent"), c, 100.0)?),
        None => None,
    };
    let platform = text(&at("platform"), &f.platform, 16)?;
    if platform.as_deref().is_some_and(|p| p != "32-bit" && p != "64-bit") {
        return Err(format!("{}: expected 32-bit or 64-bit", at("platform")));
    }
    let privilege = text(&at("privilege"), &f.privilege, 16)?;
    if privilege.as_deref().is_some_and(|p| !crate::observe::PRIVILEGES.contains(&p)) {
        return Err(format!("{}: expected one of {}", at("privilege"), crate::observe::PRIVILEGES.join(", ")));
    }
    let count_max = 1e9;
    Ok(SightingRow {
        sha256: digest(&at("sha256"), &f.sha256)?,
        sha1: digest(&at("sha1"), &f.sha1)?,
        md5: digest(&at("md5"), &f.md5)?,
        path,
        processes: int(f.processes),
        parent: text(&at("parent"), &f.parent, MAX_TEXT)?,
        command_line: text(&at("command_line"), &f.command_line, MAX_TEXT)?,
        owner: text(&at("owner"), &f.owner, MAX_HOST_TEXT)?,
        privilege,
        platform,
        cpu_percent: cpu,
        private: (int(f.private_bytes.mean), int(f.private_bytes.max)),
        virtual_bytes: (int(f.virtual_bytes.mean), int(f.virtual_bytes.max)),
        working_set: (int(f.working_set.mean), int(f.working_set.max)),
        peak_working_set: int(f.peak_working_set),
        threads: (finite(&at("threads.mean"), f.threads.mean, count_max)?, int(f.threads.max)),
        handles: (finite(&at("handles.mean"), f.handles.mean, count_max)?, int(f.handles.max)),
    })
}

/// Parse and check a `POST /v1/sightings` body: an `observe --json` document with at most `max_files` files.
pub fn parse(bytes: &[u8], max_files: usize) -> Result<(ObservationRow, Vec<SightingRow>), ApiError> {
    let obs: Observation = super::parse_json(bytes)?;
    if obs.schema_version != crate::observe::SCHEMA_VERSION {
        return Err(ApiError::bad_request(format!(
            "unsupported schema_version {}: this server reads {}",
            obs.schema_version,
            crate::observe::SCHEMA_VERSION
        )));
    }
    if obs.participant.len() != 32 || !obs.participant.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request("participant: expected 32 hex digits"));
    }
    if obs.files.len() > max_files {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("too many files: {} in one batch, at most {max_files}", obs.files.len()),
        ));
    }
    let started_at = parse_rfc3339(&obs.started_at)
        .ok_or_else(|| ApiError::bad_request("started_at: expected YYYY-MM-DDTHH:MM:SSZ"))?;
    // A run from the future (beyond a day of clock skew) or from before 2000 would become a file's first or
    // last sighting for good.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    if !(EARLIEST..=now.saturating_add(86_400)).contains(&started_at) {
        return Err(ApiError::bad_request(format!(
            "started_at: {} is not a time this run can have started (from 2000 to now)",
            obs.started_at
        )));
    }
    let host = &obs.host;
    let bad = ApiError::bad_request;
    for (what, v) in [
        ("host.os_name", &host.os_name),
        ("host.os_version", &host.os_version),
        ("host.os_pretty_name", &host.os_pretty_name),
        ("host.kernel", &host.kernel),
        ("host.manufacturer", &host.manufacturer),
        ("host.product", &host.product),
        ("host.platform", &host.platform),
        ("host.arch", &host.arch),
    ] {
        text(what, v, MAX_HOST_TEXT).map_err(bad)?;
    }
    if let Some(c) = &host.country {
        if !crate::config::is_country_code(c) || c.bytes().any(|b| b.is_ascii_lowercase()) {
            return Err(bad("host.country: expected an ISO 3166-1 alpha-2 code in capitals (e.g. DE)".into()));
        }
    }
    finite("duration_secs", obs.duration_secs, 366.0 * 86_400.0).map_err(bad)?;
    let mut rows = Vec::with_capacity(obs.files.len());
    let mut paths = std::collections::HashSet::new();
    for (i, f) in obs.files.iter().enumerate() {
        let row = file_row(i, f).map_err(bad)?;
        if !paths.insert(row.path.clone()) {
            return Err(bad(format!("files[{i}].path: listed twice")));
        }
        rows.push(row);
    }
    let run = ObservationRow {
        participant: obs.participant.to_ascii_lowercase(),
        started_at,
        duration_ms: (obs.duration_secs * 1000.0) as i64,
        samples: int(obs.samples),
        host: serde_json::to_string(&obs.host).unwrap_or_else(|_| "{}".into()),
        host_key: obs.host.key(),
    };
    Ok((run, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(files: &str) -> String {
        format!(
            r#"{{"schema_version":1,"participant":"0123456789abcdef0123456789abcdef","host":{{"os_name":"Debian GNU/Linux","os_version":"12","country":"DE"}},"started_at":"2026-11-27T10:00:00Z","duration_secs":30.0,"samples":31,"hashed":0,"cached":0,"files":[{files}],"skipped":{{"kernel_threads":0,"permission_denied":0,"vanished":0,"unhashable":0}}}}"#
        )
    }

    fn file(sha: &str, path: &str) -> String {
        format!(
            r#"{{"sha256":"{sha}","sha1":"{}","md5":"{}","path":"{path}","deleted":false,"cached":false,"processes":1,"parent":"systemd","command_line":"x","owner":"root","platform":"64-bit","cpu_percent":1.5,"private_bytes":{{"mean":10,"max":20}},"virtual_bytes":{{"mean":10,"max":20}},"working_set":{{"mean":10,"max":20}},"peak_working_set":30,"threads":{{"mean":2.0,"max":2}},"handles":{{"mean":4.0,"max":4}}}}"#,
            "b".repeat(40),
            "c".repeat(32)
        )
    }

    #[test]
    fn a_good_batch_reads() {
        let (run, rows) = parse(doc(&file(&"a".repeat(64), "/usr/bin/x")).as_bytes(), 10).unwrap();
        assert_eq!(run.started_at, 1_795_773_600);
        assert_eq!(run.host_key.os.as_deref(), Some("Debian GNU/Linux 12"));
        assert_eq!(run.host_key.country.as_deref(), Some("DE"));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].cpu_percent, Some(1.5));
    }

    #[test]
    fn bad_batches_are_refused_with_the_field() {
        let ok = file(&"a".repeat(64), "/usr/bin/x");
        let cases = [
            (doc(&file("xyz", "/a")), "files[0].sha256"),
            (doc(&file(&"a".repeat(64), "")), "files[0].path"),
            (doc(&ok.replace("1.5", "101")), "cpu_percent"),
            (doc(&ok.replace("64-bit", "128-bit")), "platform"),
            (doc(&format!("{ok},{ok}")), "listed twice"),
            (doc(&ok).replace("0123456789abcdef0123456789abcdef", "nope"), "participant"),
            (doc(&ok).replace("\"DE\"", "\"Germany\""), "host.country"),
            (doc(&ok).replace("2026-11-27T10:00:00Z", "yesterday"), "started_at"),
            (doc(&ok).replace("2026-11-27T10:00:00Z", "9999-01-01T00:00:00Z"), "not a time this run"),
            (doc(&ok).replace("2026-11-27T10:00:00Z", "1999-12-31T23:59:59Z"), "not a time this run"),
            (doc(&ok).replace("\"schema_version\":1", "\"schema_version\":9"), "schema_version"),
            (doc(&ok.replace("/usr/bin/x", "/a\\u0007b")), "control"),
            ("[]".to_string(), "invalid JSON"),
        ];
        for (body, want) in cases {
            let e = parse(body.as_bytes(), 10).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{want}: {}", e.message);
            assert!(e.message.contains(want), "{want}: {}", e.message);
        }
        let many: Vec<String> = (0..3).map(|i| file(&"a".repeat(64), &format!("/bin/{i}"))).collect();
        let e = parse(doc(&many.join(",")).as_bytes(), 2).unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn timestamps_parse() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2000-03-01T12:34:56Z"), Some(951_914_096));
        for bad in
            ["", "2000-13-01T00:00:00Z", "2000-01-01 00:00:00Z", "2000-01-01T00:00:00+01:00", "+000-01-01T00:00:00Z"]
        {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
