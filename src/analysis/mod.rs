//! Analysis: bytes in, filerep's own facts out (PE, ELF, Mach-O), with anomalies instead of failures.
//!
//! goblin's types never leave this module. Every parser runs under `catch_unwind`: goblin has open panic and
//! hang bugs on crafted files, so counts are capped before its sub-parsers see them, and a recovered failure
//! becomes an anomaly plus a limit (the file is then "not fully analysed", never clean). Hashing does not
//! depend on anything here.

pub mod authenticode;
pub mod elf;
pub mod macho;
pub mod pe;

use std::panic::{self, AssertUnwindSafe};

use crate::report::{Anomaly, ElfInfo, Format, MachoInfo, PeInfo};

/// Everything the analysis found in one file.
#[derive(Debug, Default)]
pub struct FileFacts {
    /// Container format from the magic bytes.
    pub format: Format,
    /// PE facts.
    pub pe: Option<PeInfo>,
    /// ELF facts.
    pub elf: Option<ElfInfo>,
    /// Mach-O facts.
    pub macho: Option<MachoInfo>,
    /// pefile-compatible imphash (PE only).
    pub imphash: Option<String>,
    /// MD5 of the decoded Rich header (PE only, when present).
    pub rich_header_md5: Option<String>,
    /// Anomalies in the order found.
    pub anomalies: Vec<Anomaly>,
    /// Shannon entropy of the whole file, when the analysis computed it (PE files whose headers could be
    /// read: assembled from the section histograms).
    pub entropy: Option<f64>,
}

impl FileFacts {
    /// Why the analysis is incomplete: one line per limiting anomaly.
    pub fn limits(&self) -> Vec<String> {
        self.anomalies.iter().filter(|a| a.limits_analysis).map(|a| a.message.clone()).collect()
    }
}

/// Detect the container format from the first bytes (the same rules as the corpus oracle: `MZ` +
/// `e_lfanew` → `PE\0\0` is PE; an `MZ` file without that is `unknown`, with an anomaly saying why).
pub fn detect_format(data: &[u8]) -> Format {
    if data.is_empty() {
        return Format::Empty;
    }
    if data.starts_with(b"MZ") {
        if data.len() >= 0x40 {
            let lfanew = u32::from_le_bytes([data[0x3c], data[0x3d], data[0x3e], data[0x3f]]) as usize;
            if lfanew.checked_add(4).is_some_and(|end| end <= data.len()) && &data[lfanew..lfanew + 4] == b"PE\0\0" {
                return Format::Pe;
            }
        }
        return Format::Unknown;
    }
    if data.starts_with(b"\x7fELF") {
        return Format::Elf;
    }
    match data.get(..4) {
        Some(
            [0xcf, 0xfa, 0xed, 0xfe] | [0xce, 0xfa, 0xed, 0xfe] | [0xfe, 0xed, 0xfa, 0xcf] | [0xfe, 0xed, 0xfa, 0xce],
        ) => Format::Macho,
        // 0xcafebabe is also a Java class file; a fat Mach-O has a small architecture count there.
        Some([0xca, 0xfe, 0xba, 0xbe])
            if data.len() >= 8 && u32::from_be_bytes([data[4], data[5], data[6], data[7]]) < 45 =>
        {
            Format::Macho
        }
        Some([0xca, 0xfe, 0xba, 0xbf]) => Format::Macho,
        _ => Format::Unknown,
    }
}

/// True when the first bytes (at least 8 for a fat Mach-O) are an executable's: `MZ` (PE or DOS), ELF or
/// Mach-O. `filerep scan` selects files with it.
pub fn is_executable_magic(head: &[u8]) -> bool {
    head.starts_with(b"MZ") || matches!(detect_format(head), Format::Elf | Format::Macho)
}

/// Analyse a whole file held in memory.
pub fn analyse(data: &[u8]) -> FileFacts {
    let mut facts = FileFacts { format: detect_format(data), ..Default::default() };
    match facts.format {
        Format::Pe => {
            let mut anomalies = Vec::new();
            let out = guarded("PE", &mut anomalies, |a| pe::analyse(data, a));
            if let Some(out) = out.flatten() {
                facts.imphash = out.imphash.clone();
                facts.rich_header_md5 = out.rich_header_md5.clone();
                facts.entropy = Some(out.file_entropy);
                facts.pe = Some(out.info);
            }
            facts.anomalies = anomalies;
        }
        Format::Unknown if data.starts_with(b"MZ") => {
            facts.anomalies.push(mz_anomaly(data));
        }
        Format::Elf => {
            let mut anomalies = Vec::new();
            facts.elf = guarded("ELF", &mut anomalies, |a| elf::analyse(data, a)).flatten();
            facts.anomalies = anomalies;
        }
        Format::Macho => {
            let mut anomalies = Vec::new();
            facts.macho = guarded("Mach-O", &mut anomalies, |a| macho::analyse(data, a)).flatten();
            facts.anomalies = anomalies;
        }
        Format::Empty | Format::Unknown => {}
    }
    facts
}

/// Say why an MZ file has no PE header.
fn mz_anomaly(data: &[u8]) -> Anomaly {
    if data.len() < 0x40 {
        return Anomaly::new(
            "dos-header-truncated",
            format!("the DOS header is cut short ({} of 64 bytes)", data.len()),
        );
    }
    let lfanew = u32::from_le_bytes([data[0x3c], data[0x3d], data[0x3e], data[0x3f]]);
    if u64::from(lfanew) + 4 > data.len() as u64 {
        Anomaly::new(
            "e-lfanew-out-of-bounds",
            format!("e_lfanew 0x{lfanew:x} points past the end of the file ({} bytes)", data.len()),
        )
    } else {
        Anomaly::new(
            "no-pe-signature",
            format!("no PE signature at e_lfanew 0x{lfanew:x} (a DOS program or a damaged PE)"),
        )
    }
}

thread_local! {
    /// Set while a parser runs under [`guarded`], whose panics are recovered and reported as anomalies.
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run a parser, turning a panic into an anomaly that limits the analysis.
pub(crate) fn guarded<T>(
    what: &str,
    anomalies: &mut Vec<Anomaly>,
    f: impl FnOnce(&mut Vec<Anomaly>) -> T,
) -> Option<T> {
    let mut local = Vec::new();
    let outer = GUARDED.with(|g| g.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&mut local)));
    GUARDED.with(|g| g.set(outer));
    anomalies.append(&mut local);
    match result {
        Ok(v) => Some(v),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            let first_line = msg.lines().next().unwrap_or("").to_string();
            anomalies.push(Anomaly::limiting(
                "parser-failure",
                format!(
                    "the {what} parser failed on this file ({first_line}); the rest of its structure was not analysed"
                ),
            ));
            None
        }
    }
}

/// Silence the default panic hook's message for panics that `guarded` recovers from, keeping it for others.
///
/// A recovered parser panic is reported as an anomaly; printing "thread panicked at …" to stderr as well
/// would read like a crash. Any other panic is a bug and is printed as usual.
pub fn install_quiet_panic_hook() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !GUARDED.with(|g| g.get()) {
            default(info);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(detect_format(b""), Format::Empty);
        assert_eq!(detect_format(b"hello"), Format::Unknown);
        assert_eq!(detect_format(b"MZ"), Format::Unknown);
        assert_eq!(mz_anomaly(b"MZ").id, "dos-header-truncated");
        let mut mz = vec![0u8; 0x80];
        mz[..2].copy_from_slice(b"MZ");
        mz[0x3c] = 0x40;
        mz[0x40..0x44].copy_from_slice(b"PE\0\0");
        assert_eq!(detect_format(&mz), Format::Pe);
        mz[0x3c..0x40].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
        assert_eq!(detect_format(&mz), Format::Unknown);
        assert_eq!(mz_anomaly(&mz).id, "e-lfanew-out-of-bounds");
        assert_eq!(detect_format(b"\x7fELF\x02\x01\x01"), Format::Elf);
        assert_eq!(detect_format(&[0xcf, 0xfa, 0xed, 0xfe, 0, 0, 0, 0]), Format::Macho);
        assert_eq!(detect_format(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2]), Format::Macho);
        // A Java class file shares the fat magic; its version number is far above any slice count.
        assert_eq!(detect_format(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52]), Format::Unknown);
    }

    #[test]
    fn guarded_turns_a_panic_into_a_limit() {
        let mut anomalies = Vec::new();
        let r: Option<()> = guarded("test", &mut anomalies, |_| panic!("boom"));
        assert!(r.is_none());
        assert_eq!(anomalies.len(), 1);
        assert!(anomalies[0].limits_analysis);
        assert!(anomalies[0].message.contains("boom"));
    }
}
