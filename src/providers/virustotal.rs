//! VirusTotal API v3, `GET /api/v3/files/{hash}`: a file object (200), `NotFoundError` (404), or an error.

use super::{ProviderError, ProviderEvidence, date_of, json_body, text};
use crate::verdict::Level;

const NAME: &str = "virustotal";

/// Engines at or above which a file counts as malicious on VirusTotal's word alone (a few engines flag
/// clean files; many do not flag the same clean file).
pub const MALICIOUS_DETECTIONS: u32 = 10;

/// Turn one answer into evidence. `retry_after` is the `Retry-After` header, in seconds, if any.
pub fn parse(status: u16, body: &[u8], retry_after: Option<u64>) -> Result<ProviderEvidence, ProviderError> {
    match status {
        200 => found(&json_body(NAME, body)?),
        404 => {
            let v = json_body(NAME, body)?;
            match v.pointer("/error/code").and_then(|c| c.as_str()) {
                Some("NotFoundError") => {
                    Ok(ProviderEvidence::new(NAME, false, "VirusTotal: not found (never submitted)".into()))
                }
                _ => Err(ProviderError::Malformed { provider: NAME, detail: "404 without NotFoundError".into() }),
            }
        }
        401 | 403 => Err(ProviderError::Auth { provider: NAME, detail: error_detail(body) }),
        429 => Err(ProviderError::RateLimited { provider: NAME, retry_after }),
        400 => Err(ProviderError::BadRequest { provider: NAME, detail: error_detail(body) }),
        s => Err(ProviderError::Status { provider: NAME, status: s }),
    }
}

/// `error.code: error.message` from an error body, or the status's meaning.
fn error_detail(body: &[u8]) -> String {
    let v = serde_json::from_slice::<serde_json::Value>(body).unwrap_or_default();
    let code = v.pointer("/error/code").and_then(|c| c.as_str()).unwrap_or("no error code");
    let msg = v.pointer("/error/message").and_then(|c| c.as_str()).unwrap_or("");
    super::excerpt(&if msg.is_empty() { code.to_string() } else { format!("{code}: {msg}") })
}

fn found(v: &serde_json::Value) -> Result<ProviderEvidence, ProviderError> {
    let a = v
        .pointer("/data/attributes")
        .ok_or_else(|| ProviderError::Malformed { provider: NAME, detail: "no data.attributes".into() })?;
    let stats = a
        .get("last_analysis_stats")
        .ok_or_else(|| ProviderError::Malformed { provider: NAME, detail: "no last_analysis_stats".into() })?;
    let n = |k: &str| stats.get(k).and_then(|x| x.as_u64()).unwrap_or(0) as u32;
    let detections = n("malicious");
    let engines = n("malicious") + n("suspicious") + n("undetected") + n("harmless");
    let first_seen = a.get("first_submission_date").and_then(|x| x.as_i64()).map(date_of);
    let mut e = ProviderEvidence::new(
        NAME,
        true,
        format!(
            "VirusTotal: {detections}/{engines} engines{}",
            first_seen.as_deref().map(|d| format!(", first seen {d}")).unwrap_or_default()
        ),
    );
    e.level = match detections {
        0 => None,
        d if d >= MALICIOUS_DETECTIONS => Some(Level::Malicious),
        _ => Some(Level::Suspicious),
    };
    e.detections = Some(detections);
    e.engines = Some(engines);
    e.first_seen = first_seen;
    let mut names: Vec<String> = text(a, "meaningful_name").into_iter().collect();
    for n in a.get("names").and_then(|x| x.as_array()).into_iter().flatten().filter_map(|x| x.as_str()) {
        if names.len() >= 10 {
            break;
        }
        if !names.iter().any(|m| m == n) {
            names.push(n.to_string());
        }
    }
    e.names = names;
    if let Some(label) = a.pointer("/popular_threat_classification/suggested_threat_label").and_then(|x| x.as_str()) {
        e.labels.push(label.to_string());
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::sample;

    #[test]
    fn a_real_file_report() {
        let e = parse(200, &sample("virustotal/GET_files_id_200_75186675.json"), None).unwrap();
        assert!(e.found);
        // last_analysis_stats: malicious 64, undetected 6, harmless 0, suspicious 0 (type-unsupported,
        // failure and timeout are not verdicts).
        assert_eq!((e.detections, e.engines), (Some(64), Some(70)));
        assert_eq!(e.first_seen.as_deref(), Some("2014-09-11"));
        assert_eq!(e.summary, "VirusTotal: 64/70 engines, first seen 2014-09-11");
        assert_eq!(e.level, Some(Level::Malicious));
        assert_eq!(e.names[0], "VirusShare_1937fe95fafee53a8e300b85d71b5bd5");
    }

    #[test]
    fn not_found_is_an_answer_and_errors_are_errors() {
        let e = parse(404, &sample("virustotal/error_404_NotFoundError_docs_example.json"), None).unwrap();
        assert!(!e.found && e.level.is_none());
        let err = parse(401, &sample("virustotal/error_401_AuthenticationRequiredError_docs_example.json"), None);
        assert_eq!(
            err.unwrap_err().to_string(),
            "virustotal: authentication refused (AuthenticationRequiredError: X-Apikey header is missing)"
        );
        assert_eq!(parse(429, b"", Some(60)).unwrap_err().to_string(), "virustotal: rate limited (retry after 60 s)");
        assert_eq!(parse(503, b"<html>", None).unwrap_err().to_string(), "virustotal: HTTP status 503");
        assert!(parse(404, b"<html>not found</html>", None).is_err(), "a 404 page that is not VirusTotal's");
        assert!(parse(200, b"{\"data\": {}}", None).unwrap_err().to_string().contains("no data.attributes"));
        let truncated = &sample("virustotal/GET_files_id_200_75186675.json")[..5000];
        assert!(matches!(parse(200, truncated, None), Err(ProviderError::Malformed { .. })));
    }
}
