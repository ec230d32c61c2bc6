//! CIRCL hashlookup, `GET /lookup/{md5,sha1,sha256}/{hash}`: a record (200), not found (404), or a
//! malformed query (400).

use super::{ProviderError, ProviderEvidence, json_body, text};
use crate::verdict::Level;

const NAME: &str = "hashlookup";

/// Turn one answer into evidence.
pub fn parse(status: u16, body: &[u8], retry_after: Option<u64>) -> Result<ProviderEvidence, ProviderError> {
    match status {
        200 => Ok(record(&json_body(NAME, body)?)),
        404 => Ok(ProviderEvidence::new(NAME, false, "hashlookup: not a known file".into())),
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
}
