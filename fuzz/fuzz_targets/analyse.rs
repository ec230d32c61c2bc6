//! Fuzz target: any bytes through the whole in-memory pipeline (hashing, PE/ELF/Mach-O analysis, verdict),
//! then the JSON serialisation and the verdict card. A panic that escapes, a hang (libFuzzer's `-timeout`) or
//! an out-of-memory (`-rss_limit_mb`) is a finding; so is a broken invariant checked below.

#![no_main]

use libfuzzer_sys::fuzz_target;

use filerep::report::{Report, card};
use filerep::verdict::Level;

fuzz_target!(|data: &[u8]| {
    let report = filerep::pipeline::report_from_bytes("fuzz.bin", data);
    assert_eq!(report.size, Some(data.len() as u64), "size must be the input's length");
    assert!(report.hashes.sha256.is_some(), "the file digests are always computed");
    assert!(
        report.fully_analysed || report.verdict.level != Level::Good,
        "a file that was not fully analysed is never `good`"
    );
    let json = serde_json::to_string(&report).expect("the report serialises");
    let _: Report = serde_json::from_str(&json).expect("the JSON reads back as a Report");
    let _ = card::render(&report, &card::Options::default());
    #[allow(clippy::needless_update)] // the card may grow options; their defaults are fine here
    let coloured = card::Options { color: true, all_imports: true, ..Default::default() };
    let _ = card::render(&report, &coloured);
});
