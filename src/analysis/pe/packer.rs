//! A packer guess: known packers by their section names and markers, then a heuristic for the rest.
//!
//! Section names are what packers leave behind most reliably (UPX0/UPX1, .aspack, .MPRESS1, …); UPX also
//! writes a `UPX!` marker before its packed data. A packer that renames its sections still has to unpack
//! code at run time: executable data that looks compressed (high entropy) in an image that imports almost
//! nothing, or resolves its API with LoadLibrary/GetProcAddress, is reported as an unknown packer.

use crate::report::{Packer, PeInfo};

/// Section names and the packer that writes them (compared case-sensitively, as written by the packers).
const SECTION_NAMES: &[(&str, &str)] = &[
    ("UPX0", "UPX"),
    ("UPX1", "UPX"),
    ("UPX2", "UPX"),
    ("UPX!", "UPX"),
    (".UPX0", "UPX"),
    (".UPX1", "UPX"),
    (".aspack", "ASPack"),
    (".adata", "ASPack"),
    ("ASPack", "ASPack"),
    (".ASPack", "ASPack"),
    ("PEC2", "PECompact"),
    ("PEC2TO", "PECompact"),
    ("PEC2MO", "PECompact"),
    ("pec1", "PECompact"),
    ("pec2", "PECompact"),
    (".MPRESS1", "MPRESS"),
    (".MPRESS2", "MPRESS"),
    (".themida", "Themida"),
    (".winlice", "WinLicense"),
    (".vmp0", "VMProtect"),
    (".vmp1", "VMProtect"),
    (".vmp2", "VMProtect"),
    (".enigma1", "Enigma Protector"),
    (".enigma2", "Enigma Protector"),
    (".petite", "Petite"),
    (".nsp0", "NsPack"),
    (".nsp1", "NsPack"),
    (".nsp2", "NsPack"),
    ("nsp0", "NsPack"),
    ("nsp1", "NsPack"),
    ("MEW", "MEW"),
    ("kkrunchy", "kkrunchy"),
    (".packed", "RLPack"),
    (".RLPack", "RLPack"),
    (".perplex", "Perplex"),
    (".spack", "Simple Pack"),
    (".taz", "PESpin"),
    (".yP", "Y0da Protector"),
    (".y0da", "Y0da Protector"),
    ("ExeS", "EXE Stealth"),
    (".boom", "The Boomerang"),
    (".ccg", "CCG"),
    ("BitArts", "Crunch"),
    ("PELOCKnt", "PELock"),
    (".pelock", "PELock"),
    (".svkp", "SVKP"),
    ("PEPACK!!", "PEPack"),
    ("PEBundle", "PEBundle"),
    ("PEShit", "PEShit"),
    ("FSG!", "FSG"),
    ("ProCrypt", "ProCrypt"),
    ("Themida", "Themida"),
    (".Themida", "Themida"),
    (".shrink1", "Shrinker"),
    (".neolit", "NeoLite"),
    (".neolite", "NeoLite"),
    (".wwpack", "WWPack32"),
    (".WWP32", "WWPack32"),
];

/// Entropy at which executable data is taken to be compressed or encrypted.
const PACKED_ENTROPY: f64 = 7.0;

/// Guess a packer from the analysed facts and the raw bytes.
pub fn guess(pe: &PeInfo, data: &[u8]) -> Option<Packer> {
    let mut hits: Vec<(&str, &str)> = Vec::new();
    for s in &pe.sections {
        if let Some(&(name, packer)) = SECTION_NAMES.iter().find(|(n, _)| *n == s.name) {
            if !hits.iter().any(|(n, _)| *n == name) {
                hits.push((name, packer));
            }
        }
    }
    if let Some(&(_, packer)) = hits.first() {
        let names: Vec<&str> = hits.iter().filter(|(_, p)| *p == packer).map(|(n, _)| *n).collect();
        return Some(Packer {
            name: packer.to_string(),
            method: "section-names".to_string(),
            evidence: format!("section name{} {}", if names.len() > 1 { "s" } else { "" }, names.join(", ")),
        });
    }
    // UPX's "UPX!" marker sits just before the first section's data (in the headers' slack space).
    let header_end = pe.sections.iter().map(|s| s.raw_pointer).filter(|&p| p > 0).min().unwrap_or(0x400);
    let head = &data[..data.len().min(header_end.max(0x400) as usize)];
    if head.windows(4).any(|w| w == b"UPX!") {
        return Some(Packer {
            name: "UPX".to_string(),
            method: "marker".to_string(),
            evidence: "UPX! marker in the headers".to_string(),
        });
    }
    // Heuristic: compressed executable data plus an import table that only bootstraps the real one.
    if pe.dotnet.is_some() {
        return None;
    }
    let hot = pe
        .sections
        .iter()
        .find(|s| s.characteristics & 0x2000_0000 != 0 && s.raw_size >= 512 && s.entropy >= PACKED_ENTROPY);
    let functions: Vec<&str> =
        pe.imports.iter().flat_map(|i| i.functions.iter().filter_map(|f| f.name.as_deref())).collect();
    let count: usize = pe.imports.iter().map(|i| i.functions.len()).sum();
    let bootstrap = functions.iter().any(|f| f.starts_with("LoadLibrary")) && functions.contains(&"GetProcAddress");
    let empty_executable =
        pe.sections.iter().any(|s| s.characteristics & 0x2000_0000 != 0 && s.raw_size == 0 && s.virtual_size > 0);
    match hot {
        Some(s) if count <= 10 || (bootstrap && count < 20) => Some(Packer {
            name: "unknown".to_string(),
            method: "heuristic".to_string(),
            evidence: format!(
                "executable section {} has entropy {:.2} and the image imports only {count} function{}",
                s.name,
                s.entropy,
                if count == 1 { "" } else { "s" }
            ),
        }),
        Some(s) if empty_executable => Some(Packer {
            name: "unknown".to_string(),
            method: "heuristic".to_string(),
            evidence: format!(
                "an executable section with no data in the file (filled at run time) and section {} with entropy {:.2}",
                s.name, s.entropy
            ),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Import, ImportedFunction, Section};

    fn sec(name: &str, ch: u32, raw: u32, entropy: f64) -> Section {
        Section {
            name: name.into(),
            characteristics: ch,
            raw_size: raw,
            virtual_size: 0x1000,
            raw_pointer: 0x400,
            entropy,
            ..Default::default()
        }
    }

    #[test]
    fn by_section_names() {
        let pe = PeInfo {
            sections: vec![sec("UPX0", 0xe000_0080, 0, 0.0), sec("UPX1", 0xe000_0040, 0x9000, 7.8)],
            ..Default::default()
        };
        let p = guess(&pe, &[0u8; 0x400]).unwrap();
        assert_eq!((p.name.as_str(), p.method.as_str()), ("UPX", "section-names"));
        assert_eq!(p.evidence, "section names UPX0, UPX1");
    }

    #[test]
    fn by_marker() {
        let mut data = vec![0u8; 0x400];
        data[0x3e0..0x3e4].copy_from_slice(b"UPX!");
        let pe = PeInfo { sections: vec![sec(".text", 0x6000_0020, 0x1000, 6.0)], ..Default::default() };
        assert_eq!(guess(&pe, &data).unwrap().method, "marker");
    }

    #[test]
    fn heuristic_needs_both_entropy_and_a_thin_import_table() {
        let imports = |n: usize| {
            vec![Import {
                library: "KERNEL32.dll".into(),
                functions: (0..n).map(|i| ImportedFunction { name: Some(format!("F{i}")), ordinal: None }).collect(),
            }]
        };
        let mut pe = PeInfo {
            sections: vec![sec(".text", 0x6000_0020, 0x8000, 7.6)],
            imports: imports(3),
            ..Default::default()
        };
        assert_eq!(guess(&pe, &[0u8; 0x400]).unwrap().name, "unknown");
        pe.imports = imports(80);
        assert!(guess(&pe, &[0u8; 0x400]).is_none(), "a normal import table");
        pe.imports = imports(3);
        pe.sections[0].entropy = 6.3;
        assert!(guess(&pe, &[0u8; 0x400]).is_none(), "ordinary code");
    }
}
