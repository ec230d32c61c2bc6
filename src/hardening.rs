//! Hardening checks: exploit mitigations and signing, one check per id, computed from a report's facts.
//!
//! Every check has a stable kebab-case id that a scan policy can enable or require (`filerep.toml`,
//! `filerep scan --require`). A check is `pass`, `fail` or `not-applicable` (a 32-bit file has no
//! high-entropy VA, a shared object is not an executable to be PIE, managed code has no /GS cookie).
//!
//! The checks are pure functions of the report's facts (the analysis computed them; nothing is re-read
//! here) and follow the conventions of the tools release engineers know: BinSkim's rules for PE (BA2008
//! CFG, BA2009 ASLR, BA2015 high-entropy VA, BA2016 NX, BA2018 SafeSEH), winchecksec for the /GS cookie,
//! checksec and LIEF for ELF, and the Mach-O header flags and load commands. This module does not decide
//! which checks a policy requires, nor the verdict: it only says pass, fail or not applicable, and why.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analysis::pe::loadconfig::{IMAGE_GUARD_CF_INSTRUMENTED, IMAGE_GUARD_SECURITY_COOKIE_UNUSED};
use crate::report::{ElfInfo, Format, MachoInfo, PeInfo, Report, SignatureStatus};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The mitigation is present.
    Pass,
    /// The mitigation is missing.
    Fail,
    /// The check does not apply to this file.
    NotApplicable,
}

/// One check's result for one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Check {
    /// The check id (`pe-aslr`, `elf-relro`, …).
    pub id: String,
    /// Pass, fail or not applicable.
    pub status: Status,
    /// Why, in one line (what was found, or why the check does not apply).
    pub detail: String,
}

/// What a check is, for help texts and SARIF rules.
#[derive(Debug, Clone, Copy)]
pub struct CheckInfo {
    /// Stable id.
    pub id: &'static str,
    /// The format it applies to.
    pub format: Format,
    /// A short title ("ASLR (dynamic base)").
    pub title: &'static str,
    /// What it checks and how to fix a failure (a linker or compiler flag).
    pub help: &'static str,
}

/// Every check, in display order.
pub const CHECKS: &[CheckInfo] = &[
    CheckInfo {
        id: "pe-aslr",
        format: Format::Pe,
        title: "ASLR (dynamic base)",
        help: "The image must set IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE and keep its relocations, so that the \
               loader can place it at a random address. As in BinSkim BA2009, an image that sets DYNAMIC_BASE but \
               has IMAGE_FILE_RELOCS_STRIPPED (an .exe or a .dll) fails: without relocations it cannot be rebased. \
               Link with /DYNAMICBASE (the MSVC default) and without /FIXED; with MinGW ld, --dynamicbase.",
    },
    CheckInfo {
        id: "pe-high-entropy-va",
        format: Format::Pe,
        title: "High-entropy ASLR (64-bit)",
        help: "A 64-bit (PE32+) image should set IMAGE_DLLCHARACTERISTICS_HIGH_ENTROPY_VA together with \
               DYNAMIC_BASE, so that ASLR can use the whole 64-bit address space. Link with /HIGHENTROPYVA \
               (the MSVC default for 64-bit) and /DYNAMICBASE (plus /LARGEADDRESSAWARE for an .exe); with MinGW \
               ld, --high-entropy-va. Not applicable to 32-bit (PE32) images.",
    },
    CheckInfo {
        id: "pe-nx",
        format: Format::Pe,
        title: "DEP (NX compatible)",
        help: "The image must set IMAGE_DLLCHARACTERISTICS_NX_COMPAT so that data pages are not executable. \
               Link with /NXCOMPAT (the MSVC default); with MinGW ld, --nxcompat.",
    },
    CheckInfo {
        id: "pe-cfg",
        format: Format::Pe,
        title: "Control Flow Guard",
        help: "The image must set IMAGE_DLLCHARACTERISTICS_GUARD_CF and its load configuration must carry GuardFlags \
               with IMAGE_GUARD_CF_INSTRUMENTED (as in BinSkim BA2008, the header bit alone does not make the \
               loader enforce CFG). Compile and link with /guard:cf (MSVC), or -mguard=cf with clang/MinGW. Not \
               applicable to IL-only .NET assemblies.",
    },
    CheckInfo {
        id: "pe-safeseh",
        format: Format::Pe,
        title: "SafeSEH (x86)",
        help: "A 32-bit x86 image must either declare that it has no exception handlers \
               (IMAGE_DLLCHARACTERISTICS_NO_SEH) or register its handlers in the load configuration's SafeSEH \
               table (SEHandlerTable with SEHandlerCount > 0), so that a corrupted handler record cannot divert \
               execution. Link with /SAFESEH (MSVC); every object file must be SafeSEH-compatible. Not \
               applicable to other machines (their exception handling is table-based) nor to IL-only .NET.",
    },
    CheckInfo {
        id: "pe-gs",
        format: Format::Pe,
        title: "Stack cookie (/GS)",
        help: "The image must have a load configuration whose SecurityCookie is set (the /GS stack-buffer \
               overrun cookie the loader initialises), and whose GuardFlags do not say the cookie is unused. \
               Compile with /GS (the MSVC default) and link the CRT's load configuration (_load_config_used); \
               with MinGW, -fstack-protector-strong does not create a load configuration. Not applicable to \
               IL-only .NET assemblies.",
    },
    CheckInfo {
        id: "pe-force-integrity",
        format: Format::Pe,
        title: "Force integrity",
        help: "The image sets IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY, so that Windows refuses to load it unless \
               its signature verifies (required for some drivers and protected processes; most files do not \
               need it). Link with /INTEGRITYCHECK and sign the file.",
    },
    CheckInfo {
        id: "pe-signed",
        format: Format::Pe,
        title: "Authenticode signature",
        help: "The file must carry a valid Authenticode signature (digest, signer and a chain to a trusted \
               code-signing root), or be listed by a valid catalog given with --catalog. Sign it with signtool \
               (or osslsigncode) and a timestamp.",
    },
    CheckInfo {
        id: "elf-pie",
        format: Format::Elf,
        title: "PIE",
        help: "An executable must be position-independent (ET_DYN with an interpreter, or DF_1_PIE for a static \
               PIE) so that ASLR moves its code. Compile with -fPIE and link with -pie. Not applicable to shared \
               objects (ET_DYN without PT_INTERP or DF_1_PIE), relocatable objects and core files.",
    },
    CheckInfo {
        id: "elf-nx",
        format: Format::Elf,
        title: "Non-executable stack",
        help: "The file must have a PT_GNU_STACK segment without the execute flag; without it, the stack is \
               executable. Link with -z noexecstack, and find the object that asks for an executable stack \
               (usually hand-written assembly without a .note.GNU-stack section).",
    },
    CheckInfo {
        id: "elf-relro",
        format: Format::Elf,
        title: "Full RELRO",
        help: "The file must have a PT_GNU_RELRO segment and bind every symbol at load time (DT_BIND_NOW, \
               DF_BIND_NOW or DF_1_NOW), so that the GOT is read-only after start-up. Partial RELRO (no BIND_NOW) \
               fails. Link with -Wl,-z,relro,-z,now.",
    },
    CheckInfo {
        id: "elf-canary",
        format: Format::Elf,
        title: "Stack canary",
        help: "The file must reference __stack_chk_fail or __stack_chk_guard, the sign that some functions were \
               compiled with stack protection. Compile with -fstack-protector-strong. A stripped static binary \
               keeps no symbols, so it fails even when protected.",
    },
    CheckInfo {
        id: "elf-fortify",
        format: Format::Elf,
        title: "FORTIFY_SOURCE",
        help: "The file must call the glibc *_chk functions (__memcpy_chk, __printf_chk, ...) that \
               _FORTIFY_SOURCE substitutes for unchecked ones. Compile with -O2 -D_FORTIFY_SOURCE=2 (or 3). A \
               program that calls no fortifiable function fails too: review it before requiring this check.",
    },
    CheckInfo {
        id: "macho-pie",
        format: Format::Macho,
        title: "PIE",
        help: "An executable (MH_EXECUTE) must set MH_PIE so that ASLR moves it; in a fat file every executable \
               slice must. Link with -pie (the default since OS X 10.7; remove -no_pie). Not applicable to \
               dylibs and bundles, which are always position-independent.",
    },
    CheckInfo {
        id: "macho-code-signature",
        format: Format::Macho,
        title: "Code signature",
        help: "Every slice must carry an LC_CODE_SIGNATURE load command (Apple Silicon refuses to run unsigned \
               code). filerep checks its presence only, not its validity. Sign with codesign (ad-hoc: \
               codesign -s -). Not applicable to object files, core files and dSYM companions.",
    },
];

/// The check with this id.
pub fn info(id: &str) -> Option<&'static CheckInfo> {
    CHECKS.iter().find(|c| c.id == id)
}

/// Evaluate every check that belongs to the report's format (an empty list for other formats and for files
/// that could not be read).
pub fn evaluate(report: &Report) -> Vec<Check> {
    if report.error.is_some() {
        return Vec::new();
    }
    let results = match (report.format, &report.pe, &report.elf, &report.macho) {
        (Format::Pe, Some(pe), _, _) => pe_checks(report, pe),
        (Format::Elf, _, Some(elf), _) => elf_checks(elf),
        (Format::Macho, _, _, Some(m)) if !m.slices.is_empty() => macho_checks(m),
        _ => return Vec::new(),
    };
    // In the order of CHECKS, each with the id the table gives it.
    results
        .into_iter()
        .map(|(id, (status, detail))| {
            debug_assert!(info(id).is_some(), "{id} is in CHECKS");
            Check { id: id.to_string(), status, detail }
        })
        .collect()
}

type Outcome = (Status, String);

fn pass(detail: impl Into<String>) -> Outcome {
    (Status::Pass, detail.into())
}

fn fail(detail: impl Into<String>) -> Outcome {
    (Status::Fail, detail.into())
}

fn not_applicable(detail: impl Into<String>) -> Outcome {
    (Status::NotApplicable, detail.into())
}

/// IMAGE_FILE_RELOCS_STRIPPED.
const IMAGE_FILE_RELOCS_STRIPPED: u16 = 0x0001;
/// IMAGE_FILE_MACHINE_I386.
const IMAGE_FILE_MACHINE_I386: u16 = 0x014c;

fn pe_checks(report: &Report, pe: &PeInfo) -> Vec<(&'static str, Outcome)> {
    let m = &pe.mitigations;
    let il_only = pe.dotnet.as_ref().is_some_and(|d| d.il_only);
    const IL_ONLY: &str = "IL-only .NET assembly: no native code of its own";
    let lc = pe.load_config.as_ref();

    let aslr = if !m.aslr {
        fail("DYNAMIC_BASE is not set")
    } else if pe.characteristics & IMAGE_FILE_RELOCS_STRIPPED != 0 {
        fail("DYNAMIC_BASE is set but the relocations are stripped (IMAGE_FILE_RELOCS_STRIPPED): it cannot be rebased")
    } else {
        pass("DYNAMIC_BASE is set and the relocations are kept")
    };

    let high_entropy_va = if pe.magic != "PE32+" {
        not_applicable(format!("{} image: high-entropy ASLR needs a 64-bit (PE32+) image", pe.magic))
    } else if !m.high_entropy_va {
        fail("HIGH_ENTROPY_VA is not set")
    } else if !m.aslr {
        fail("HIGH_ENTROPY_VA is set but DYNAMIC_BASE is not, so there is no ASLR at all")
    } else {
        pass("HIGH_ENTROPY_VA and DYNAMIC_BASE are set")
    };

    let nx = if m.nx { pass("NX_COMPAT is set") } else { fail("NX_COMPAT is not set") };

    let cfg = if il_only {
        not_applicable(IL_ONLY)
    } else if !m.cfg {
        fail("GUARD_CF is not set")
    } else {
        match lc {
            None => fail("GUARD_CF is set but there is no load configuration, so CFG is not in effect"),
            Some(lc) => match lc.guard_flags {
                None => fail(format!(
                    "GUARD_CF is set but the load configuration ({} bytes) is too small to hold GuardFlags",
                    lc.size
                )),
                Some(f) if f & IMAGE_GUARD_CF_INSTRUMENTED == 0 => {
                    fail(format!("GUARD_CF is set but GuardFlags (0x{f:08x}) lack CF_INSTRUMENTED"))
                }
                Some(f) => pass(format!(
                    "GUARD_CF is set and GuardFlags (0x{f:08x}) say cf-instrumented{}",
                    lc.guard_cf_function_count.map(|n| format!(", {n} valid call targets")).unwrap_or_default()
                )),
            },
        }
    };

    let safeseh = if pe.machine_value != IMAGE_FILE_MACHINE_I386 {
        not_applicable(format!("{} image: SafeSEH applies to 32-bit x86 only", pe.machine))
    } else if il_only {
        not_applicable(IL_ONLY)
    } else if m.no_seh {
        pass("NO_SEH is set: the image has no structured exception handlers")
    } else {
        match lc {
            None => fail("no load configuration, so no SafeSEH handler table"),
            Some(lc) => match (lc.se_handler_table, lc.se_handler_count) {
                (Some(t), Some(n)) if t != 0 && n > 0 => {
                    pass(format!("{n} SafeSEH handlers registered (table at 0x{t:x})"))
                }
                (None, _) | (_, None) => fail(format!(
                    "the load configuration ({} bytes) is too small to hold a SafeSEH handler table",
                    lc.size
                )),
                _ => fail("the load configuration has no SafeSEH handler table"),
            },
        }
    };

    let gs = if il_only {
        not_applicable(IL_ONLY)
    } else {
        match lc {
            None => fail("no load configuration"),
            Some(lc) => match lc.security_cookie {
                None => {
                    fail(format!("the load configuration ({} bytes) is too small to hold a security cookie", lc.size))
                }
                Some(0) => fail("the load configuration's SecurityCookie is 0"),
                Some(_) if lc.guard_flags.is_some_and(|f| f & IMAGE_GUARD_SECURITY_COOKIE_UNUSED != 0) => {
                    fail("GuardFlags say the security cookie is unused (security-cookie-unused)")
                }
                Some(c) => pass(format!("security cookie at 0x{c:x}")),
            },
        }
    };

    let force_integrity =
        if m.force_integrity { pass("FORCE_INTEGRITY is set") } else { fail("FORCE_INTEGRITY is not set") };

    let signed = match &report.signature {
        None => fail("the signature was not verified (the headers could not be read far enough)"),
        Some(sig) if sig.status == SignatureStatus::Valid => pass(format!("valid: {}", sig.summary)),
        Some(sig) => match &sig.catalog {
            Some(cat) if cat.valid => {
                pass(format!("listed by the valid catalog {} (embedded signature: {})", cat.file, sig.status.as_str()))
            }
            _ => fail(format!("{}: {}", sig.status.as_str(), sig.summary)),
        },
    };

    vec![
        ("pe-aslr", aslr),
        ("pe-high-entropy-va", high_entropy_va),
        ("pe-nx", nx),
        ("pe-cfg", cfg),
        ("pe-safeseh", safeseh),
        ("pe-gs", gs),
        ("pe-force-integrity", force_integrity),
        ("pe-signed", signed),
    ]
}

fn elf_checks(e: &ElfInfo) -> Vec<(&'static str, Outcome)> {
    // Relocatable objects get their segments (and so PIE, NX, RELRO) only when linked; core files are
    // memory images.
    let linked = match e.kind.as_str() {
        "rel" => Err("relocatable object: decided when it is linked"),
        "core" => Err("core file"),
        _ => Ok(()),
    };
    let pie = match e.kind.as_str() {
        "exec" => fail("ET_EXEC: a fixed-address executable"),
        "dyn" if e.pie && e.interpreter.is_some() => {
            pass("ET_DYN with an interpreter: a position-independent executable")
        }
        "dyn" if e.pie => pass("DF_1_PIE: a static position-independent executable"),
        "dyn" => not_applicable("shared object (ET_DYN without PT_INTERP or DF_1_PIE)"),
        "rel" => not_applicable("relocatable object: decided when it is linked"),
        "core" => not_applicable("core file"),
        other => not_applicable(format!("object type {other}")),
    };
    let nx = match linked {
        Err(why) => not_applicable(why),
        Ok(()) if e.nx => pass("PT_GNU_STACK is not executable"),
        Ok(()) => fail("no PT_GNU_STACK, or an executable one: the stack is executable"),
    };
    let relro = match (linked, e.relro.as_str()) {
        (Err(why), _) => not_applicable(why),
        (Ok(()), "full") => pass("full RELRO (PT_GNU_RELRO and BIND_NOW)"),
        (Ok(()), "partial") => fail("partial RELRO (no BIND_NOW)"),
        (Ok(()), _) => fail("no RELRO (no PT_GNU_RELRO)"),
    };
    let stripped = if e.stripped { " (the file is stripped: its static symbols are gone)" } else { "" };
    let (canary, fortify) = if e.kind == "core" {
        (not_applicable("core file"), not_applicable("core file"))
    } else {
        let canary = if e.canary {
            pass("__stack_chk_fail/__stack_chk_guard is referenced")
        } else {
            fail(format!("no __stack_chk_fail or __stack_chk_guard symbol{stripped}"))
        };
        let fortify = if e.fortify {
            let n = e.fortified_functions.len();
            let shown: Vec<&str> = e.fortified_functions.iter().take(3).map(String::as_str).collect();
            let more = if n > shown.len() { ", …" } else { "" };
            pass(format!("{n} *_chk functions used ({}{more})", shown.join(", ")))
        } else {
            fail(format!("no *_chk function is used{stripped}"))
        };
        (canary, fortify)
    };
    vec![("elf-pie", pie), ("elf-nx", nx), ("elf-relro", relro), ("elf-canary", canary), ("elf-fortify", fortify)]
}

fn macho_checks(m: &MachoInfo) -> Vec<(&'static str, Outcome)> {
    let every = if m.fat { " in every slice" } else { "" };
    let executables: Vec<_> = m.slices.iter().filter(|s| s.file_type == "execute").collect();
    let pie = if executables.is_empty() {
        let types: Vec<&str> = dedup(m.slices.iter().map(|s| s.file_type.as_str()));
        not_applicable(format!("not an executable ({}): position-independent by construction", types.join(", ")))
    } else {
        let failing: Vec<&str> = executables.iter().filter(|s| !s.pie).map(|s| s.cpu.as_str()).collect();
        if failing.is_empty() {
            pass(format!("MH_PIE is set{}", if executables.len() > 1 { " in every executable slice" } else { "" }))
        } else {
            fail(format!("MH_PIE is not set: {}", failing.join(", ")))
        }
    };
    let signable: Vec<_> =
        m.slices.iter().filter(|s| !matches!(s.file_type.as_str(), "object" | "core" | "dsym")).collect();
    let code_signature = if signable.is_empty() {
        let types: Vec<&str> = dedup(m.slices.iter().map(|s| s.file_type.as_str()));
        not_applicable(format!("{} file: not signed", types.join(", ")))
    } else {
        let failing: Vec<&str> = signable.iter().filter(|s| !s.code_signature).map(|s| s.cpu.as_str()).collect();
        if failing.is_empty() {
            pass(format!("LC_CODE_SIGNATURE present{every} (not verified)"))
        } else {
            fail(format!("no LC_CODE_SIGNATURE: {}", failing.join(", ")))
        }
    };
    vec![("macho-pie", pie), ("macho-code-signature", code_signature)]
}

/// The distinct values, in first-seen order.
fn dedup<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for s in it {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Counts of a list of checks: (pass, fail, not applicable).
pub fn tally(checks: &[Check]) -> (usize, usize, usize) {
    checks.iter().fold((0, 0, 0), |(p, f, n), c| match c.status {
        Status::Pass => (p + 1, f, n),
        Status::Fail => (p, f + 1, n),
        Status::NotApplicable => (p, f, n + 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{
        CatalogMatch, DotNet, ElfInfo, LoadConfig, MachoInfo, MachoSlice, Mitigations, PeInfo, SignatureReport,
    };

    fn status(checks: &[Check], id: &str) -> Status {
        checks.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("{id} evaluated: {checks:?}")).status
    }

    fn detail<'a>(checks: &'a [Check], id: &str) -> &'a str {
        &checks.iter().find(|c| c.id == id).unwrap().detail
    }

    /// A hardened 64-bit MSVC DLL: every mitigation, a load configuration with cookie and CFG, signed.
    fn pe64() -> (Report, PeInfo) {
        let pe = PeInfo {
            machine: "amd64".into(),
            machine_value: 0x8664,
            magic: "PE32+".into(),
            characteristics: 0x2022,
            mitigations: Mitigations {
                aslr: true,
                high_entropy_va: true,
                nx: true,
                cfg: true,
                no_seh: false,
                force_integrity: false,
            },
            load_config: Some(LoadConfig {
                size: 0x140,
                directory_size: 0x140,
                security_cookie: Some(0x1_8004_0000),
                guard_cf_check_function_pointer: Some(0x1_8003_0000),
                guard_cf_function_table: Some(0x1_8003_1000),
                guard_cf_function_count: Some(12),
                guard_flags: Some(0x1001_4500),
                ..Default::default()
            }),
            ..Default::default()
        };
        let report = Report {
            format: Format::Pe,
            signature: Some(SignatureReport {
                status: SignatureStatus::Valid,
                summary: "signed by Example".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        (report, pe)
    }

    fn eval_pe(report: &Report, pe: PeInfo) -> Vec<Check> {
        let mut r = report.clone();
        r.pe = Some(pe);
        evaluate(&r)
    }

    /// A 32-bit x86 executable with SafeSEH.
    fn pe32() -> PeInfo {
        PeInfo {
            machine: "i386".into(),
            machine_value: 0x14c,
            magic: "PE32".into(),
            characteristics: 0x0102,
            mitigations: Mitigations { aslr: true, nx: true, ..Default::default() },
            load_config: Some(LoadConfig {
                size: 0xc0,
                directory_size: 0x40,
                security_cookie: Some(0x0041_0000),
                se_handler_table: Some(0x0040_8000),
                se_handler_count: Some(4),
                guard_flags: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_table_is_consistent() {
        let mut seen = std::collections::BTreeSet::new();
        for c in CHECKS {
            assert!(seen.insert(c.id), "{} twice", c.id);
            assert!(c.id.starts_with(&format!("{}-", c.format.as_str())), "{} names its format", c.id);
            assert!(c.id.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-'), "{} is kebab-case", c.id);
            assert!(!c.title.is_empty() && c.help.len() > 40, "{} has a title and a help text", c.id);
            assert!(!c.help.contains("  "), "{}: the help text is one line", c.id);
        }
        assert_eq!(info("pe-gs").map(|c| c.title), Some("Stack cookie (/GS)"));
        assert!(info("pe-nope").is_none());
    }

    #[test]
    fn every_format_gets_its_checks_in_table_order() {
        let (report, pe) = pe64();
        let elf = Report {
            format: Format::Elf,
            elf: Some(ElfInfo { kind: "dyn".into(), ..Default::default() }),
            ..Default::default()
        };
        let macho = Report {
            format: Format::Macho,
            macho: Some(MachoInfo { fat: false, slices: vec![MachoSlice::default()] }),
            ..Default::default()
        };
        for (format, checks) in
            [(Format::Pe, eval_pe(&report, pe)), (Format::Elf, evaluate(&elf)), (Format::Macho, evaluate(&macho))]
        {
            let ids: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
            let want: Vec<&str> = CHECKS.iter().filter(|c| c.format == format).map(|c| c.id).collect();
            assert_eq!(ids, want);
        }
    }

    #[test]
    fn nothing_for_unreadable_or_unknown_files() {
        assert!(evaluate(&Report::default()).is_empty(), "unknown format");
        assert!(evaluate(&Report { format: Format::Empty, ..Default::default() }).is_empty());
        let (report, pe) = pe64();
        let mut r = report.clone();
        r.pe = Some(pe);
        r.error = Some("permission denied".into());
        assert!(evaluate(&r).is_empty(), "error set");
        assert!(evaluate(&report).is_empty(), "PE format but no PE facts (headers unreadable)");
        assert!(
            evaluate(&Report { format: Format::Macho, macho: Some(MachoInfo::default()), ..Default::default() })
                .is_empty()
        );
    }

    #[test]
    fn a_hardened_pe64_passes_everything_but_force_integrity() {
        let (report, pe) = pe64();
        let checks = eval_pe(&report, pe);
        for c in &checks {
            let want = if c.id == "pe-force-integrity" {
                Status::Fail
            } else if c.id == "pe-safeseh" {
                Status::NotApplicable
            } else {
                Status::Pass
            };
            assert_eq!(c.status, want, "{c:?}");
        }
        assert_eq!(detail(&checks, "pe-gs"), "security cookie at 0x180040000");
        assert!(detail(&checks, "pe-cfg").contains("12 valid call targets"), "{checks:?}");
        assert!(detail(&checks, "pe-safeseh").contains("amd64"));
    }

    #[test]
    fn pe_aslr_needs_dynamic_base_and_relocations() {
        let (report, mut pe) = pe64();
        pe.characteristics |= IMAGE_FILE_RELOCS_STRIPPED;
        let checks = eval_pe(&report, pe.clone());
        assert_eq!(status(&checks, "pe-aslr"), Status::Fail);
        assert!(detail(&checks, "pe-aslr").contains("stripped"));
        pe.mitigations.aslr = false;
        let checks = eval_pe(&report, pe);
        assert_eq!(status(&checks, "pe-aslr"), Status::Fail);
        assert_eq!(detail(&checks, "pe-aslr"), "DYNAMIC_BASE is not set");
        assert_eq!(status(&checks, "pe-high-entropy-va"), Status::Fail, "HEVA without DYNAMIC_BASE");
    }

    #[test]
    fn pe_high_entropy_va_is_for_pe32_plus_only() {
        let (report, mut pe) = pe64();
        pe.mitigations.high_entropy_va = false;
        assert_eq!(status(&eval_pe(&report, pe), "pe-high-entropy-va"), Status::Fail);
        let mut p32 = pe32();
        p32.mitigations.high_entropy_va = true;
        let checks = eval_pe(&report, p32);
        assert_eq!(status(&checks, "pe-high-entropy-va"), Status::NotApplicable);
        assert!(detail(&checks, "pe-high-entropy-va").starts_with("PE32 image"));
    }

    #[test]
    fn pe_nx_and_force_integrity_follow_their_bits() {
        let (report, mut pe) = pe64();
        pe.mitigations.nx = false;
        pe.mitigations.force_integrity = true;
        let checks = eval_pe(&report, pe);
        assert_eq!(status(&checks, "pe-nx"), Status::Fail);
        assert_eq!(status(&checks, "pe-force-integrity"), Status::Pass);
    }

    #[test]
    fn pe_cfg_needs_the_bit_and_instrumented_guard_flags() {
        let (report, pe) = pe64();
        let mut no_bit = pe.clone();
        no_bit.mitigations.cfg = false;
        assert_eq!(detail(&eval_pe(&report, no_bit), "pe-cfg"), "GUARD_CF is not set");
        let mut no_lc = pe.clone();
        no_lc.load_config = None;
        let checks = eval_pe(&report, no_lc);
        assert_eq!(status(&checks, "pe-cfg"), Status::Fail);
        assert!(detail(&checks, "pe-cfg").contains("no load configuration"));
        let mut small = pe.clone();
        small.load_config.as_mut().unwrap().guard_flags = None;
        assert!(detail(&eval_pe(&report, small), "pe-cfg").contains("too small"));
        let mut uninstrumented = pe.clone();
        uninstrumented.load_config.as_mut().unwrap().guard_flags = Some(0x400);
        let checks = eval_pe(&report, uninstrumented);
        assert_eq!(status(&checks, "pe-cfg"), Status::Fail);
        assert!(detail(&checks, "pe-cfg").contains("lack CF_INSTRUMENTED"));
    }

    #[test]
    fn managed_code_has_no_cfg_safeseh_or_gs() {
        let (report, _) = pe64();
        let mut pe = pe32();
        pe.load_config = None;
        pe.dotnet = Some(DotNet { il_only: true, ..Default::default() });
        let checks = eval_pe(&report, pe.clone());
        for id in ["pe-cfg", "pe-safeseh", "pe-gs"] {
            assert_eq!(status(&checks, id), Status::NotApplicable, "{id}");
            assert!(detail(&checks, id).contains("IL-only"), "{id}");
        }
        assert_eq!(status(&checks, "pe-aslr"), Status::Pass, "ASLR still applies");
        // Mixed-mode (C++/CLI) assemblies have native code: the checks apply.
        pe.dotnet = Some(DotNet { il_only: false, ..Default::default() });
        let checks = eval_pe(&report, pe);
        assert_eq!(status(&checks, "pe-gs"), Status::Fail);
        assert_eq!(detail(&checks, "pe-gs"), "no load configuration");
    }

    #[test]
    fn pe_safeseh_on_x86() {
        let (report, _) = pe64();
        let checks = eval_pe(&report, pe32());
        assert_eq!(status(&checks, "pe-safeseh"), Status::Pass);
        assert!(detail(&checks, "pe-safeseh").starts_with("4 SafeSEH handlers"));
        let mut no_seh = pe32();
        no_seh.load_config = None;
        no_seh.mitigations.no_seh = true;
        let checks = eval_pe(&report, no_seh.clone());
        assert_eq!(status(&checks, "pe-safeseh"), Status::Pass, "NO_SEH");
        no_seh.mitigations.no_seh = false;
        let checks = eval_pe(&report, no_seh);
        assert_eq!(status(&checks, "pe-safeseh"), Status::Fail);
        assert!(detail(&checks, "pe-safeseh").contains("no load configuration"));
        for (table, count) in [(Some(0), Some(4)), (Some(0x0040_8000), Some(0)), (None, None)] {
            let mut pe = pe32();
            let lc = pe.load_config.as_mut().unwrap();
            (lc.se_handler_table, lc.se_handler_count) = (table, count);
            assert_eq!(status(&eval_pe(&report, pe), "pe-safeseh"), Status::Fail, "{table:?} {count:?}");
        }
    }

    #[test]
    fn pe_gs_needs_a_cookie_in_use() {
        let (report, pe) = pe64();
        for (cookie, flags, want, text) in [
            (Some(0x1000), Some(0), Status::Pass, "security cookie at 0x1000"),
            (Some(0), Some(0), Status::Fail, "SecurityCookie is 0"),
            (None, None, Status::Fail, "too small to hold a security cookie"),
            (Some(0x1000), Some(0x800), Status::Fail, "unused"),
        ] {
            let mut p = pe.clone();
            let lc = p.load_config.as_mut().unwrap();
            (lc.security_cookie, lc.guard_flags) = (cookie, flags);
            let checks = eval_pe(&report, p);
            assert_eq!(status(&checks, "pe-gs"), want, "{cookie:?} {flags:?}");
            assert!(detail(&checks, "pe-gs").contains(text), "{checks:?}");
        }
    }

    #[test]
    fn pe_signed_needs_a_valid_signature_or_catalog() {
        let (mut report, pe) = pe64();
        let sig = report.signature.as_mut().unwrap();
        sig.status = SignatureStatus::Absent;
        sig.summary = "no embedded signature".into();
        let checks = eval_pe(&report, pe.clone());
        assert_eq!(status(&checks, "pe-signed"), Status::Fail);
        assert_eq!(detail(&checks, "pe-signed"), "absent: no embedded signature");
        report.signature.as_mut().unwrap().catalog =
            Some(CatalogMatch { file: "nt5.cat".into(), valid: true, ..Default::default() });
        let checks = eval_pe(&report, pe.clone());
        assert_eq!(status(&checks, "pe-signed"), Status::Pass);
        assert!(detail(&checks, "pe-signed").contains("nt5.cat"));
        report.signature.as_mut().unwrap().catalog.as_mut().unwrap().valid = false;
        assert_eq!(status(&eval_pe(&report, pe.clone()), "pe-signed"), Status::Fail);
        report.signature = None;
        assert_eq!(status(&eval_pe(&report, pe), "pe-signed"), Status::Fail);
    }

    fn elf(kind: &str, f: impl FnOnce(&mut ElfInfo)) -> Vec<Check> {
        let mut e = ElfInfo {
            kind: kind.into(),
            pie: kind == "dyn",
            nx: true,
            relro: "full".into(),
            canary: true,
            fortify: true,
            fortified_functions: vec!["__memcpy_chk".into(), "__printf_chk".into()],
            interpreter: Some("/lib64/ld-linux-x86-64.so.2".into()),
            ..Default::default()
        };
        f(&mut e);
        evaluate(&Report { format: Format::Elf, elf: Some(e), ..Default::default() })
    }

    #[test]
    fn elf_checks_pass_on_a_hardened_pie() {
        let checks = elf("dyn", |_| {});
        assert!(checks.iter().all(|c| c.status == Status::Pass), "{checks:?}");
        assert_eq!(detail(&checks, "elf-fortify"), "2 *_chk functions used (__memcpy_chk, __printf_chk)");
    }

    #[test]
    fn elf_pie_applies_to_executables_only() {
        assert_eq!(status(&elf("exec", |_| {}), "elf-pie"), Status::Fail);
        let so = elf("dyn", |e| {
            e.pie = false;
            e.interpreter = None;
        });
        assert_eq!(status(&so, "elf-pie"), Status::NotApplicable, "shared object");
        let static_pie = elf("dyn", |e| e.interpreter = None);
        assert_eq!(status(&static_pie, "elf-pie"), Status::Pass);
        assert!(detail(&static_pie, "elf-pie").contains("DF_1_PIE"));
        let obj = elf("rel", |e| e.pie = false);
        for id in ["elf-pie", "elf-nx", "elf-relro"] {
            assert_eq!(status(&obj, id), Status::NotApplicable, "{id}");
        }
        assert_eq!(status(&obj, "elf-canary"), Status::Pass, "symbols of an object still tell");
        let core = elf("core", |_| {});
        assert!(core.iter().all(|c| c.status == Status::NotApplicable), "{core:?}");
    }

    #[test]
    fn elf_relro_nx_canary_fortify_fail_when_missing() {
        let partial = elf("dyn", |e| e.relro = "partial".into());
        assert_eq!(status(&partial, "elf-relro"), Status::Fail);
        assert_eq!(detail(&partial, "elf-relro"), "partial RELRO (no BIND_NOW)");
        assert_eq!(status(&elf("dyn", |e| e.relro = "none".into()), "elf-relro"), Status::Fail);
        let bare = elf("exec", |e| {
            e.nx = false;
            e.canary = false;
            e.fortify = false;
            e.fortified_functions.clear();
            e.stripped = true;
        });
        for id in ["elf-nx", "elf-canary", "elf-fortify"] {
            assert_eq!(status(&bare, id), Status::Fail, "{id}");
        }
        assert!(detail(&bare, "elf-canary").contains("stripped"));
    }

    fn slice(cpu: &str, file_type: &str, pie: bool, code_signature: bool) -> MachoSlice {
        MachoSlice { cpu: cpu.into(), file_type: file_type.into(), pie, code_signature, ..Default::default() }
    }

    fn macho(fat: bool, slices: Vec<MachoSlice>) -> Vec<Check> {
        evaluate(&Report { format: Format::Macho, macho: Some(MachoInfo { fat, slices }), ..Default::default() })
    }

    #[test]
    fn macho_pie_for_executables_in_every_slice() {
        let thin = macho(false, vec![slice("arm64", "execute", true, true)]);
        assert!(thin.iter().all(|c| c.status == Status::Pass), "{thin:?}");
        assert_eq!(detail(&thin, "macho-code-signature"), "LC_CODE_SIGNATURE present (not verified)");
        let fat = macho(true, vec![slice("x86_64", "execute", false, false), slice("arm64", "execute", true, true)]);
        assert_eq!(status(&fat, "macho-pie"), Status::Fail);
        assert_eq!(detail(&fat, "macho-pie"), "MH_PIE is not set: x86_64");
        assert_eq!(status(&fat, "macho-code-signature"), Status::Fail);
        assert_eq!(detail(&fat, "macho-code-signature"), "no LC_CODE_SIGNATURE: x86_64");
        let bundle = macho(true, vec![slice("x86_64", "bundle", false, true), slice("arm64", "bundle", false, true)]);
        assert_eq!(status(&bundle, "macho-pie"), Status::NotApplicable);
        assert!(detail(&bundle, "macho-pie").contains("bundle"));
        assert_eq!(status(&bundle, "macho-code-signature"), Status::Pass);
        assert!(detail(&bundle, "macho-code-signature").contains("every slice"));
        let object = macho(false, vec![slice("arm64", "object", false, false)]);
        assert!(object.iter().all(|c| c.status == Status::NotApplicable), "{object:?}");
    }

    #[test]
    fn tally_counts_each_status() {
        let (report, pe) = pe64();
        assert_eq!(tally(&eval_pe(&report, pe)), (6, 1, 1));
        assert_eq!(tally(&[]), (0, 0, 0));
    }

    #[test]
    fn checks_round_trip_through_json() {
        let (report, pe) = pe64();
        let checks = eval_pe(&report, pe);
        let text = serde_json::to_string(&checks).unwrap();
        assert!(text.contains(r#""status":"not-applicable""#), "{text}");
        let back: Vec<Check> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, checks);
    }
}
