//! Snapshot tests of the renderers (card and JSON) over one shared set of reports, built in-process from
//! generated files: a complete PE, a packed-looking PE with hostile version strings, a damaged MZ, plain
//! text, an ELF and a Mach-O, a report with a read error, and a non-UTF-8 path. A change to the card or the
//! JSON shows up as a diff to review (`INSTA_UPDATE=always cargo test --test cli snapshots` rewrites them).

use filerep::pipeline::{self, Options};
use filerep::report::{card, json};
use filerep::sample::Input;

use crate::fixtures;

fn plain() -> card::Options {
    card::Options { color: false, all_imports: false }
}

fn reports() -> Vec<(&'static str, filerep::report::Report)> {
    let mut out = vec![
        ("pe32plus", pipeline::report_from_bytes("fixture.exe", &fixtures::valid_pe32_plus().bytes)),
        ("pe32", pipeline::report_from_bytes("C:\\tools\\fixture32.exe", &fixtures::valid_pe32().bytes)),
        ("hostile-version", pipeline::report_from_bytes("hostile.exe", &fixtures::version_with_escape_sequences())),
        ("hostile-section", pipeline::report_from_bytes("hostile-section.exe", &fixtures::section_name_with_escapes())),
        ("damaged-mz", pipeline::report_from_bytes("cut.exe", &fixtures::dos_header_only())),
        ("text", pipeline::report_from_bytes("notes.exe", &fixtures::ascii_text())),
        ("elf", pipeline::report_from_bytes("hello", &fixtures::Elf::sample().build())),
        ("macho", pipeline::report_from_bytes("hello.dylib", &fixtures::Macho::sample().build())),
    ];
    let missing = pipeline::check(&Input::Path("/nonexistent/evil\u{1b}[2J.exe".into()), &Options::default());
    out.push(("read-error", missing));
    out
}

#[test]
fn cards() {
    for (name, report) in reports() {
        let text = card::render(&report, &plain());
        assert!(!text.contains('\u{1b}'), "{name}: no escape byte reaches a colourless card");
        insta::assert_snapshot!(format!("card-{name}"), text);
    }
}

#[test]
fn card_with_every_import_listed() {
    let report = pipeline::report_from_bytes("fixture.exe", &fixtures::valid_pe32_plus().bytes);
    let text = card::render(&report, &card::Options { color: false, all_imports: true });
    insta::assert_snapshot!("card-pe32plus-all-imports", text);
}

#[test]
fn coloured_card_escapes_only_its_own_colours() {
    let report = pipeline::report_from_bytes("hostile.exe", &fixtures::version_with_escape_sequences());
    let text = card::render(&report, &card::Options { color: true, all_imports: false });
    // Every ESC starts one of our SGR sequences (ESC [ digits ; m); none comes from the file.
    for (i, _) in text.match_indices('\u{1b}') {
        let rest = &text[i + 1..];
        let end = rest.find('m').expect("an SGR sequence ends with m");
        assert!(rest.starts_with('[') && rest[1..end].chars().all(|c| c.is_ascii_digit() || c == ';'), "{rest:.20?}");
    }
    insta::assert_snapshot!("card-hostile-version-coloured", text);
}

#[test]
fn json_reports() {
    for (name, report) in reports() {
        let text = json::render_line(&report);
        let pretty = serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&text).unwrap()).unwrap();
        insta::assert_snapshot!(format!("json-{name}"), pretty);
    }
}
