//! CIRCL hashlookup, `GET /lookup/{md5,sha1,sha256}/{hash}`: a record (200), not found (404), or a
//! malformed query (400). `POST /bulk/{md5,sha1}` with `{"hashes": [...]}`: an array of the records that
//! exist (unknown hashes are left out).

use std::collections::HashMap;

use super::{ProviderError, ProviderEvidence, json_body, text};
use crate::store::{Digest, DigestKind};
use crate::verdict::Level;

const NAME: &str = "hashlookup";

/// Turn one answer into evidence.
pub fn parse(status: u16, body: &[u8], retry_after: Option<u64>) -> Result<ProviderEvidence, ProviderError> {
    match status {
        200 => Ok(record(&json_body(NAME, body)?)),
        404 => Ok(not_found()),
        400 => {
            let v = json_body(NAME, body)?;
            Err(ProviderError::BadRequest {
                provider: NAME,
                detail: text(&v, "message").map(|m| super::excerpt(&m)).unwrap_or_default(),
            })
        }
        429 => Err(ProviderError::RateLimited { provider: NAME, retry_after }),
        s => Err(ProviderError::Status { provider: NAME, status: s }),
    }
}

/// The answer for a hash hashlookup does not know.
pub fn not_found() -> ProviderEvidence {
    ProviderEvidence::new(NAME, false, "hashlookup: not a known file".into())
}

/// The record field holding a digest of `kind` (bulk answers are keyed by it).
fn field_of(kind: DigestKind) -> Option<&'static str> {
    match kind {
        DigestKind::Md5 => Some("MD5"),
        DigestKind::Sha1 => Some("SHA-1"),
        DigestKind::Sha256 => Some("SHA-256"),
        _ => None,
    }
}

/// Turn one bulk answer (`POST /bulk/md5` or `/bulk/sha1`) into one piece of evidence per hash `asked`, in
/// that order: a record when the answer has one with that digest, not found otherwise. All of `asked` are of
/// the same kind.
pub fn parse_bulk(
    status: u16,
    body: &[u8],
    retry_after: Option<u64>,
    asked: &[Digest],
) -> Result<Vec<ProviderEvidence>, ProviderError> {
    match status {
        200 => {}
        // The server answers 404 when the body is not `{"hashes": [...]}`.
        400 | 404 => {
            let detail = json_body(NAME, body)
                .ok()
                .and_then(|v| text(&v, "message"))
                .map(|m| super::excerpt(&m))
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(ProviderError::BadRequest { provider: NAME, detail });
        }
        429 => return Err(ProviderError::RateLimited { provider: NAME, retry_after }),
        s => return Err(ProviderError::Status { provider: NAME, status: s }),
    }
    let v = json_body(NAME, body)?;
    let records = v.as_array().ok_or_else(|| ProviderError::Malformed {
        provider: NAME,
        detail: "a bulk answer that is not an array".into(),
    })?;
    let mut found: HashMap<Digest, &serde_json::Value> = HashMap::new();
    for kind in asked.iter().map(Digest::kind).take(1) {
        let Some(field) = field_of(kind) else { break };
        for r in records {
            if let Some(d) = r.get(field).and_then(|x| x.as_str()).and_then(|h| Digest::parse_hex(kind, h.trim()).ok())
            {
                found.entry(d).or_insert(r);
            }
        }
    }
    Ok(asked.iter().map(|d| found.get(d).map_or_else(not_found, |r| record(r))).collect())
}

/// One hashlookup record (also the shape of each element of a bulk answer).
pub fn record(v: &serde_json::Value) -> ProviderEvidence {
    let trust = v.get("hashlookup:trust").and_then(|x| x.as_u64()).map(|t| t.min(100) as u32);
    let origin = text(v, "db").or_else(|| text(v, "source"));
    let malicious = text(v, "KnownMalicious");
    let product = v.pointer("/ProductCode/ProductName").and_then(|x| x.as_str()).map(str::to_string);
    let where_ = match (&origin, &product) {
        (Some(o), _) if o.starts_with("nsrl") => " in NSRL".to_string(),
        (_, Some(p)) => format!(" ({p})"),
        (Some(o), None) => format!(" ({o})"),
        (None, None) => String::new(),
    };
    let mut summary = match &malicious {
        Some(m) => format!("hashlookup: known file{where_}, flagged malicious by {m}"),
        None => format!("hashlookup: known file{where_}"),
    };
    if let Some(t) = trust {
        summary.push_str(&format!(", trust {t}"));
    }
    let mut e = ProviderEvidence::new(NAME, true, summary);
    // A known file is not a good one (NSRL lists hacking tools too); a KnownMalicious flag is a strong hint.
    e.level = malicious.as_ref().map(|_| Level::Malicious);
    e.trust = trust;
    e.origin = origin;
    e.names = text(v, "FileName").into_iter().collect();
    e.labels = malicious.into_iter().collect();
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::sample;

    #[test]
    fn real_records_not_found_and_bad_queries() {
        let e = parse(200, &sample("circl_hashlookup/lookup_sha256_200_newer_fields_THIRDPARTY.json"), None).unwrap();
        assert_eq!(e.summary, "hashlookup: known file in NSRL, trust 100");
        assert_eq!((e.trust, e.level), (Some(100), None));
        let e = parse(200, &sample("circl_hashlookup/lookup_sha1_200_nsrl_legacy_format.json"), None).unwrap();
        assert_eq!(e.summary, "hashlookup: known file (BlackArch Linux)");
        assert_eq!(e.names, [".rela.dyn"]);
        let e = parse(404, &sample("circl_hashlookup/error_404_not_found_sha256.json"), None).unwrap();
        assert!(!e.found);
        let err = parse(400, &sample("circl_hashlookup/error_400_bad_md5.json"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "hashlookup: bad request (MD5 value incorrect, expecting a MD5 value in hex format)"
        );
        let flagged =
            record(&serde_json::json!({"FileName": "x.exe", "KnownMalicious": "malshare.com", "hashlookup:trust": 30}));
        assert_eq!(flagged.level, Some(Level::Malicious));
        assert_eq!(flagged.summary, "hashlookup: known file, flagged malicious by malshare.com, trust 30");
    }

    #[test]
    fn bulk_answers_give_one_answer_per_hash_asked() {
        // The real bulk request and answer (three MD5s, all known), plus one unknown hash asked.
        let req: serde_json::Value = serde_json::from_slice(&sample("circl_hashlookup/bulk_md5_request.json")).unwrap();
        let mut asked: Vec<Digest> = req["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| Digest::parse_hex(DigestKind::Md5, h.as_str().unwrap()).unwrap())
            .collect();
        asked.insert(1, Digest::parse_hex(DigestKind::Md5, &"0".repeat(32)).unwrap());
        let body = sample("circl_hashlookup/bulk_md5_200.json");
        let got = parse_bulk(200, &body, None, &asked).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got.iter().map(|e| e.found).collect::<Vec<_>>(), [true, false, true, true]);
        assert_eq!(got[0].names, ["network"]);
        assert_eq!(got[0].summary, "hashlookup: known file");
        assert_eq!(got[1], not_found());
        assert_eq!(got[3].names, [".text._ZNSt14overflow_errorC1ERKSs"]);

        // SHA-1 answers are keyed by "SHA-1"; lower-case asks match upper-case records.
        let sha1 = Digest::parse_hex(DigestKind::Sha1, "fffffe4c92e3f7282c7502f1734b243fa52326fb").unwrap();
        let got = parse_bulk(200, &sample("circl_hashlookup/bulk_sha1_200.json"), None, &[sha1]).unwrap();
        assert_eq!(got[0].names, ["358.git2-msvstfs.dll"]);

        // An empty array: nothing known.
        assert!(!parse_bulk(200, b"[]", None, &asked).unwrap().iter().any(|e| e.found));
        let err = parse_bulk(
            404,
            b"{\"message\": \"JSON format incorrect. An array of hashes in the key 'hashes' is expected.\"}",
            None,
            &asked,
        );
        assert!(matches!(err, Err(ProviderError::BadRequest { .. })), "{err:?}");
        assert!(matches!(parse_bulk(200, b"{}", None, &asked), Err(ProviderError::Malformed { .. })));
        assert!(matches!(parse_bulk(200, b"[{\"MD5\"", None, &asked), Err(ProviderError::Malformed { .. })));
        assert!(matches!(
            parse_bulk(429, b"", Some(2), &asked),
            Err(ProviderError::RateLimited { retry_after: Some(2), .. })
        ));
        assert!(matches!(parse_bulk(502, b"<html>", None, &asked), Err(ProviderError::Status { status: 502, .. })));
    }
}
