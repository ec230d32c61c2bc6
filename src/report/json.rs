//! JSON renderers: the `--json` document and `--format jsonl` lines. Pure functions of the report values.

use super::{Document, Report, SCHEMA_VERSION};

/// Wrap reports in the top-level document.
pub fn document(reports: Vec<Report>) -> Document {
    Document { schema_version: SCHEMA_VERSION, filerep_version: env!("CARGO_PKG_VERSION").to_string(), reports }
}

/// The `--json` document, pretty-printed, with a final newline.
pub fn render_document(doc: &Document) -> String {
    let mut s = serde_json::to_string_pretty(doc).expect("reports always serialise");
    s.push('\n');
    s
}

/// One `--format jsonl` line: a single report on one line, with a final newline.
pub fn render_line(report: &Report) -> String {
    let mut s = serde_json::to_string(report).expect("reports always serialise");
    s.push('\n');
    s
}

/// The JSON Schema of the `--json` document, generated from the types.
pub fn schema() -> String {
    let schema = schemars::schema_for!(Document);
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serialises");
    s.push('\n');
    s
}

/// The JSON Schema of the `filerep lookup --json` document, generated from the types.
pub fn lookup_schema() -> String {
    let schema = schemars::schema_for!(super::LookupDocument);
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serialises");
    s.push('\n');
    s
}

/// Test helper: the committed schema file must equal the generated one (`FILEREP_UPDATE_SCHEMA=1` rewrites it).
#[cfg(test)]
pub(crate) fn assert_schema_current(file: &str, generated: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    if std::env::var_os("FILEREP_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{file} is out of date with the types; regenerate it with \
         FILEREP_UPDATE_SCHEMA=1 cargo test schema_has_not_drifted"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same drift check for the lookup document (`schema/lookup.schema.json`).
    #[test]
    fn lookup_schema_has_not_drifted() {
        assert_schema_current("schema/lookup.schema.json", &lookup_schema());
    }

    /// The committed schema must equal the one generated from the types: a change to the report types
    /// must come with a regenerated `schema/report.schema.json`
    /// (`FILEREP_UPDATE_SCHEMA=1 cargo test schema_has_not_drifted` rewrites it).
    #[test]
    fn schema_has_not_drifted() {
        assert_schema_current("schema/report.schema.json", &schema());
    }

    #[test]
    fn document_and_lines_round_trip() {
        let r = Report { path: "a".into(), size: Some(1), ..Default::default() };
        let doc = document(vec![r.clone(), r]);
        let text = render_document(&doc);
        let back: Document = serde_json::from_str(&text).unwrap();
        assert_eq!(back.schema_version, 1);
        assert_eq!(back.reports.len(), 2);
        let line = render_line(&back.reports[0]);
        assert_eq!(line.matches('\n').count(), 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["format"], "unknown");
        assert_eq!(v["verdict"]["level"], "unknown");
    }
}
