//! The load configuration directory (data directory 10, `IMAGE_LOAD_CONFIG_DIRECTORY32/64`): the /GS
//! security cookie, the SafeSEH handler table and the Control Flow Guard fields that the hardening checks
//! (`crate::hardening`) need. It does not walk the tables those fields point at (SEH handlers, CFG
//! function ids, dynamic relocations): only the fixed fields are read.
//!
//! The structure is read here with bounds-checked little-endian reads, never through goblin. Its layout
//! follows the Windows SDK (`winnt.h`) and pefile 2024.8.26's `__IMAGE_LOAD_CONFIG_DIRECTORY(64)_format__`.
//! The structure grew with every Windows release, so its first field, `Size`, says which fields exist:
//! the loader trusts that field (not the data directory's size, which older linkers set to 0x40 for x86
//! whatever the structure's real size was). Here a field is read only when `Size` covers it *and* its bytes
//! are in the file; a structure cut short by the end of its section or of the file is an anomaly.

use super::headers::{Pe, u32_at, u64_at};
use crate::report::{Anomaly, LoadConfig};

/// Bytes read at most: the last field used ends at 0x94 (PE32+ GuardFlags); a hostile `Size` of 4 GiB is
/// never followed.
const READ_MAX: usize = 0x100;

/// No Windows release has a load configuration near this large (the 2023 SDK's is 0x140 bytes for PE32+):
/// a larger `Size` is reported.
const SIZE_IMPLAUSIBLE: u32 = 0x1000;

/// The fields used, as (offset, width in bytes) for PE32 and PE32+.
struct Layout {
    security_cookie: (usize, usize),
    se_handler_table: Option<(usize, usize)>,
    se_handler_count: Option<(usize, usize)>,
    guard_cf_check_function_pointer: (usize, usize),
    guard_cf_function_table: (usize, usize),
    guard_cf_function_count: (usize, usize),
    guard_flags: (usize, usize),
}

/// IMAGE_LOAD_CONFIG_DIRECTORY32.
const PE32: Layout = Layout {
    security_cookie: (0x3c, 4),
    se_handler_table: Some((0x40, 4)),
    se_handler_count: Some((0x44, 4)),
    guard_cf_check_function_pointer: (0x48, 4),
    guard_cf_function_table: (0x50, 4),
    guard_cf_function_count: (0x54, 4),
    guard_flags: (0x58, 4),
};

/// IMAGE_LOAD_CONFIG_DIRECTORY64 (SEHandlerTable/Count exist at 0x60/0x68 but SafeSEH is x86-only: the
/// fields are always zero and are not reported).
const PE32_PLUS: Layout = Layout {
    security_cookie: (0x58, 8),
    se_handler_table: None,
    se_handler_count: None,
    guard_cf_check_function_pointer: (0x70, 8),
    guard_cf_function_table: (0x80, 8),
    guard_cf_function_count: (0x88, 8),
    guard_flags: (0x90, 4),
};

/// `IMAGE_GUARD_*` bits of GuardFlags (winnt.h, Windows SDK 10.0.22621), with their report names. The top
/// four bits (IMAGE_GUARD_CF_FUNCTION_TABLE_SIZE_MASK) are the CFG table's stride, not a flag.
/// EH_CONTINUATION_TABLE_PRESENT moved from 0x00200000 (deprecated) to 0x00400000; both are decoded.
pub const GUARD_FLAGS: &[(u32, &str)] = &[
    (0x0000_0100, "cf-instrumented"),
    (0x0000_0200, "cfw-instrumented"),
    (0x0000_0400, "cf-function-table-present"),
    (0x0000_0800, "security-cookie-unused"),
    (0x0000_1000, "protect-delayload-iat"),
    (0x0000_2000, "delayload-iat-in-its-own-section"),
    (0x0000_4000, "cf-export-suppression-info-present"),
    (0x0000_8000, "cf-enable-export-suppression"),
    (0x0001_0000, "cf-longjump-table-present"),
    (0x0002_0000, "rf-instrumented"),
    (0x0004_0000, "rf-enable"),
    (0x0008_0000, "rf-strict"),
    (0x0010_0000, "retpoline-present"),
    (0x0020_0000, "eh-continuation-table-present"),
    (0x0040_0000, "eh-continuation-table-present"),
    (0x0080_0000, "xfg-enabled"),
    (0x0100_0000, "castguard-present"),
    (0x0200_0000, "memcpy-present"),
];

/// IMAGE_GUARD_CF_INSTRUMENTED: the module performs CFG checks.
pub const IMAGE_GUARD_CF_INSTRUMENTED: u32 = 0x0000_0100;
/// IMAGE_GUARD_SECURITY_COOKIE_UNUSED: the module does not use the /GS cookie.
pub const IMAGE_GUARD_SECURITY_COOKIE_UNUSED: u32 = 0x0000_0800;

/// GuardFlags decoded into names, each once, in bit order.
pub fn decode_guard_flags(flags: u32) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for &(bit, name) in GUARD_FLAGS {
        if flags & bit != 0 && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// Read the load configuration, or `None` when there is none (or it cannot be read: an anomaly says why).
pub fn parse(pe: &Pe<'_>, anomalies: &mut Vec<Anomaly>) -> Option<LoadConfig> {
    let (rva, directory_size) = pe.directory(10);
    if rva == 0 {
        return None;
    }
    let is64 = pe.opt.is_64();
    let head = pe.get_data(rva, READ_MAX).unwrap_or(&[]);
    let Some(size) = u32_at(head, 0) else {
        anomalies.push(Anomaly::new(
            "load-config-invalid",
            format!(
                "the load configuration directory at RVA 0x{rva:x} lies outside the file data; its /GS, SafeSEH and CFG fields were not read"
            ),
        ));
        return None;
    };
    Some(from_bytes(head, is64, directory_size, anomalies, size))
}

/// The fields of a load configuration whose first bytes (up to [`READ_MAX`]) are `head`.
fn from_bytes(head: &[u8], is64: bool, directory_size: u32, anomalies: &mut Vec<Anomaly>, size: u32) -> LoadConfig {
    let layout = if is64 { &PE32_PLUS } else { &PE32 };
    // What the loader would see: `Size` bytes, of which only those in the file can be read here.
    let covered = (size as usize).min(head.len());
    let last_field_end = layout.guard_flags.0 + layout.guard_flags.1;
    if (size as usize).min(last_field_end) > covered {
        anomalies.push(Anomaly::new(
            "load-config-truncated",
            format!(
                "the load configuration says it is {size} bytes but only {covered} are in the file; the fields past that were not read"
            ),
        ));
    }
    if !(8..=SIZE_IMPLAUSIBLE).contains(&size) {
        anomalies.push(Anomaly::new(
            "load-config-size-unusual",
            format!(
                "the load configuration's Size field is {size} (0x{size:x}) bytes, which no Windows release writes"
            ),
        ));
    }
    let field = |(off, width): (usize, usize)| -> Option<u64> {
        if off + width > covered {
            return None;
        }
        match width {
            8 => u64_at(head, off),
            _ => u32_at(head, off).map(u64::from),
        }
    };
    let guard_flags = field(layout.guard_flags).map(|v| v as u32);
    LoadConfig {
        size,
        directory_size,
        security_cookie: field(layout.security_cookie),
        se_handler_table: layout.se_handler_table.and_then(field).map(|v| v as u32),
        se_handler_count: layout.se_handler_count.and_then(field).map(|v| v as u32),
        guard_cf_check_function_pointer: field(layout.guard_cf_check_function_pointer),
        guard_cf_function_table: field(layout.guard_cf_function_table),
        guard_cf_function_count: field(layout.guard_cf_function_count),
        guard_flags,
        guard_flags_decoded: guard_flags.map(decode_guard_flags).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PE32 load configuration of `size` bytes with a cookie, 3 SEH handlers and CFG flags.
    fn pe32(size: u32) -> Vec<u8> {
        let mut d = vec![0u8; 0x58];
        d[0..4].copy_from_slice(&size.to_le_bytes());
        d[0x3c..0x40].copy_from_slice(&0x0040_3000u32.to_le_bytes());
        d[0x40..0x44].copy_from_slice(&0x0040_2000u32.to_le_bytes());
        d[0x44..0x48].copy_from_slice(&3u32.to_le_bytes());
        d[0x48..0x4c].copy_from_slice(&0x0040_1000u32.to_le_bytes());
        d[0x50..0x54].copy_from_slice(&0x0040_4000u32.to_le_bytes());
        d[0x54..0x58].copy_from_slice(&17u32.to_le_bytes());
        d.extend_from_slice(&0x1000_0500u32.to_le_bytes()); // GuardFlags at 0x58, stride 1
        d
    }

    fn pe64(size: u32) -> Vec<u8> {
        let mut d = vec![0u8; 0x94];
        d[0..4].copy_from_slice(&size.to_le_bytes());
        d[0x58..0x60].copy_from_slice(&0x1_4000_5000u64.to_le_bytes());
        d[0x60..0x68].copy_from_slice(&0xdeadu64.to_le_bytes()); // SEHandlerTable: not reported for PE32+
        d[0x70..0x78].copy_from_slice(&0x1_4000_1000u64.to_le_bytes());
        d[0x80..0x88].copy_from_slice(&0x1_4000_6000u64.to_le_bytes());
        d[0x88..0x90].copy_from_slice(&42u64.to_le_bytes());
        d[0x90..0x94].copy_from_slice(&0x0040_4500u32.to_le_bytes());
        d
    }

    fn read(head: &[u8], is64: bool) -> (LoadConfig, Vec<Anomaly>) {
        let mut a = Vec::new();
        let size = u32_at(head, 0).unwrap();
        (from_bytes(head, is64, 0x40, &mut a, size), a)
    }

    #[test]
    fn pe32_fields() {
        let (lc, a) = read(&pe32(0x5c), false);
        assert!(a.is_empty(), "{a:?}");
        assert_eq!(lc.size, 0x5c);
        assert_eq!(lc.directory_size, 0x40);
        assert_eq!(lc.security_cookie, Some(0x0040_3000));
        assert_eq!(lc.se_handler_table, Some(0x0040_2000));
        assert_eq!(lc.se_handler_count, Some(3));
        assert_eq!(lc.guard_cf_check_function_pointer, Some(0x0040_1000));
        assert_eq!(lc.guard_cf_function_table, Some(0x0040_4000));
        assert_eq!(lc.guard_cf_function_count, Some(17));
        assert_eq!(lc.guard_flags, Some(0x1000_0500));
        assert_eq!(lc.guard_flags_decoded, ["cf-instrumented", "cf-function-table-present"]);
    }

    #[test]
    fn pe32_plus_fields() {
        let (lc, a) = read(&pe64(0x94), true);
        assert!(a.is_empty(), "{a:?}");
        assert_eq!(lc.security_cookie, Some(0x1_4000_5000));
        assert_eq!((lc.se_handler_table, lc.se_handler_count), (None, None));
        assert_eq!(lc.guard_cf_check_function_pointer, Some(0x1_4000_1000));
        assert_eq!(lc.guard_cf_function_table, Some(0x1_4000_6000));
        assert_eq!(lc.guard_cf_function_count, Some(42));
        assert_eq!(lc.guard_flags, Some(0x0040_4500));
        assert_eq!(
            lc.guard_flags_decoded,
            [
                "cf-instrumented",
                "cf-function-table-present",
                "cf-export-suppression-info-present",
                "eh-continuation-table-present"
            ]
        );
    }

    #[test]
    fn the_structure_size_decides_which_fields_exist() {
        // An XP-era x86 structure (0x48 bytes): cookie and SafeSEH, no CFG, even though more bytes follow.
        let (lc, a) = read(&pe32(0x48), false);
        assert!(a.is_empty(), "{a:?}");
        assert_eq!(lc.security_cookie, Some(0x0040_3000));
        assert_eq!(lc.se_handler_count, Some(3));
        assert_eq!((lc.guard_flags, lc.guard_cf_function_count), (None, None));
        assert!(lc.guard_flags_decoded.is_empty());
        // Size 0x40 covers the cookie only.
        let (lc, _) = read(&pe32(0x40), false);
        assert_eq!(lc.security_cookie, Some(0x0040_3000));
        assert_eq!((lc.se_handler_table, lc.se_handler_count), (None, None));
        // A field cut in half by Size is not read.
        let (lc, _) = read(&pe64(0x5c), true);
        assert_eq!(lc.security_cookie, None);
    }

    #[test]
    fn a_structure_cut_by_the_file_keeps_what_is_there() {
        let mut d = pe32(0x5c);
        d.truncate(0x46);
        let (lc, a) = read(&d, false);
        assert_eq!(lc.security_cookie, Some(0x0040_3000));
        assert_eq!(lc.se_handler_table, Some(0x0040_2000));
        assert_eq!(lc.se_handler_count, None, "cut in half");
        assert_eq!(lc.guard_flags, None);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].id, "load-config-truncated");
        assert!(a[0].message.contains("70 are in the file"), "{}", a[0].message);
    }

    #[test]
    fn hostile_sizes_are_reported_and_never_followed() {
        for size in [0u32, 4, 7, 0x1001, u32::MAX] {
            let mut d = pe64(0x94);
            d[0..4].copy_from_slice(&size.to_le_bytes());
            let (lc, a) = read(&d, true);
            assert_eq!(lc.size, size);
            assert!(a.iter().any(|x| x.id == "load-config-size-unusual"), "{size}: {a:?}");
            if size >= 0x94 {
                // Huge: every field in the bytes present is read, and the file does not run out before them.
                assert_eq!(lc.guard_flags, Some(0x0040_4500));
                assert!(!a.iter().any(|x| x.id == "load-config-truncated"), "{a:?}");
            } else {
                assert_eq!(lc.security_cookie, None);
                assert_eq!(lc.guard_flags, None);
            }
        }
        // Nothing but the Size field.
        let (lc, a) = read(&0x94u32.to_le_bytes(), true);
        assert_eq!(lc.security_cookie, None);
        assert!(a.iter().any(|x| x.id == "load-config-truncated"));
    }

    #[test]
    fn guard_flags_decode_each_name_once() {
        assert!(decode_guard_flags(0).is_empty());
        assert!(decode_guard_flags(0xf000_0000).is_empty(), "the stride is not a flag");
        assert_eq!(decode_guard_flags(0x0060_0000), ["eh-continuation-table-present"]);
        assert_eq!(decode_guard_flags(0x0090_0800), ["security-cookie-unused", "retpoline-present", "xfg-enabled"]);
        let all = decode_guard_flags(u32::MAX);
        assert_eq!(all.len(), GUARD_FLAGS.len() - 1);
        assert!(all.iter().any(|n| n == "delayload-iat-in-its-own-section"));
    }

    /// A minimal PE (one section `.data` at RVA 0x1000, file offset 0x200, 0x200 bytes) whose load-config
    /// directory is (`rva`, 0x40) and whose section holds `section` at its start.
    fn tiny_pe(is64: bool, rva: u32, section: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; 0x400];
        d[..2].copy_from_slice(b"MZ");
        d[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        d[0x40..0x44].copy_from_slice(b"PE\0\0");
        let (fixed, machine) = if is64 { (112usize, 0x8664u16) } else { (96, 0x14c) };
        let opt_size = fixed + 16 * 8;
        d[0x44..0x46].copy_from_slice(&machine.to_le_bytes());
        d[0x46..0x48].copy_from_slice(&1u16.to_le_bytes());
        d[0x54..0x56].copy_from_slice(&(opt_size as u16).to_le_bytes());
        let o = 0x58;
        d[o..o + 2].copy_from_slice(&(if is64 { 0x20bu16 } else { 0x10b }).to_le_bytes());
        d[o + 32..o + 36].copy_from_slice(&0x1000u32.to_le_bytes());
        d[o + 36..o + 40].copy_from_slice(&0x200u32.to_le_bytes());
        d[o + 56..o + 60].copy_from_slice(&0x2000u32.to_le_bytes());
        d[o + 60..o + 64].copy_from_slice(&0x200u32.to_le_bytes());
        d[o + fixed - 4..o + fixed].copy_from_slice(&16u32.to_le_bytes());
        let dir = o + fixed + 10 * 8;
        d[dir..dir + 4].copy_from_slice(&rva.to_le_bytes());
        d[dir + 4..dir + 8].copy_from_slice(&0x40u32.to_le_bytes());
        let s = o + opt_size;
        d[s..s + 5].copy_from_slice(b".data");
        d[s + 8..s + 12].copy_from_slice(&0x200u32.to_le_bytes());
        d[s + 12..s + 16].copy_from_slice(&0x1000u32.to_le_bytes());
        d[s + 16..s + 20].copy_from_slice(&0x200u32.to_le_bytes());
        d[s + 20..s + 24].copy_from_slice(&0x200u32.to_le_bytes());
        d[0x200..0x200 + section.len()].copy_from_slice(section);
        d
    }

    fn parse_file(data: &[u8]) -> (Option<LoadConfig>, Vec<Anomaly>) {
        let mut a = Vec::new();
        let pe = Pe::parse(data, &mut a).expect("headers");
        a.clear();
        let lc = parse(&pe, &mut a);
        (lc, a)
    }

    #[test]
    fn read_from_a_file_through_the_section_table() {
        let (lc, a) = parse_file(&tiny_pe(false, 0x1000, &pe32(0x5c)));
        assert!(a.is_empty(), "{a:?}");
        let lc = lc.expect("a load configuration");
        assert_eq!((lc.size, lc.directory_size), (0x5c, 0x40));
        assert_eq!(lc.se_handler_count, Some(3));
        let (lc, _) = parse_file(&tiny_pe(true, 0x1000, &pe64(0x94)));
        assert_eq!(lc.expect("a load configuration").guard_cf_function_count, Some(42));
        // No directory: no load configuration, nothing odd.
        let (lc, a) = parse_file(&tiny_pe(true, 0, &pe64(0x94)));
        assert!(lc.is_none() && a.is_empty());
    }

    #[test]
    fn a_directory_outside_the_file_is_an_anomaly() {
        for rva in [0x7fff_0000, 0xffff_fffc, 0x3ff] {
            let (lc, a) = parse_file(&tiny_pe(true, rva, &[]));
            assert!(lc.is_none(), "0x{rva:x}");
            assert_eq!(a.len(), 1, "0x{rva:x}: {a:?}");
            assert_eq!(a[0].id, "load-config-invalid");
        }
    }

    #[test]
    fn a_structure_running_off_its_section_is_truncated() {
        // At the last 0x20 bytes of the section's raw data: Size and a few fields, then the section ends.
        let mut data = tiny_pe(true, 0x11e0, &[]);
        data[0x3e0..0x3e4].copy_from_slice(&0x94u32.to_le_bytes());
        let (lc, a) = parse_file(&data);
        let lc = lc.expect("the Size field is there");
        assert_eq!(lc.size, 0x94);
        assert_eq!((lc.security_cookie, lc.guard_flags), (None, None));
        assert!(a.iter().any(|x| x.id == "load-config-truncated"), "{a:?}");
    }
}
