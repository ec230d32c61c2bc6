//! Mach-O analysis: thin images (MH_MAGIC/MH_MAGIC_64, either byte order) and fat (universal) files
//! (FAT_MAGIC and FAT_MAGIC_64), turned into filerep's [`MachoInfo`]: per slice the CPU, file type, header
//! flags, linked dylibs, UUID, code-signature presence and minimum OS.
//!
//! It does not own format detection (`analysis::detect_format`, which also tells a Java class file from a
//! fat header) or panic recovery (`analysis::guarded`). The headers and load commands are read here with
//! bounds checks on every field, using goblin's constants: goblin's `MachO::parse` also walks segments,
//! symbols and the dyld opcode streams of every slice, which we do not need and would have to trust. Counts
//! from the file are capped ([`MAX_SLICES`], [`MAX_LOAD_COMMANDS`]); a load command that does not advance
//! (cmdsize below 8) or leaves the load-command area ends the walk with an anomaly.

use goblin::mach::constants::cputype::{
    CPU_SUBTYPE_MASK, CPU_TYPE_ARM, CPU_TYPE_ARM64, CPU_TYPE_ARM64_32, CPU_TYPE_MC680X0, CPU_TYPE_MC88000,
    CPU_TYPE_POWERPC, CPU_TYPE_POWERPC64, CPU_TYPE_SPARC, CPU_TYPE_X86, CPU_TYPE_X86_64,
};
use goblin::mach::fat::FAT_MAGIC;
use goblin::mach::header::{MH_CIGAM, MH_CIGAM_64, MH_MAGIC, MH_MAGIC_64, MH_PIE};
use goblin::mach::load_command::{
    LC_BUILD_VERSION, LC_CODE_SIGNATURE, LC_LAZY_LOAD_DYLIB, LC_LOAD_DYLIB, LC_LOAD_UPWARD_DYLIB, LC_LOAD_WEAK_DYLIB,
    LC_REEXPORT_DYLIB, LC_UUID, LC_VERSION_MIN_IPHONEOS, LC_VERSION_MIN_MACOSX, LC_VERSION_MIN_TVOS,
    LC_VERSION_MIN_WATCHOS,
};

use crate::report::{Anomaly, MachoInfo, MachoSlice};

/// FAT_MAGIC_64: a fat header whose architecture entries have 64-bit offsets and sizes (not in goblin 0.10).
const FAT_MAGIC_64: u32 = 0xcafe_babf;
/// Architecture slices analysed at most.
const MAX_SLICES: usize = 64;
/// Load commands walked at most, per slice.
const MAX_LOAD_COMMANDS: usize = 4_096;
/// Dylib paths reported at most, over all slices (slices may overlap, so the file size alone does not
/// bound the memory their names take).
const MAX_DYLIBS: usize = 4_096;
/// Longest dylib path kept (MAXPATHLEN on Darwin).
const MAX_STRING: usize = 1_024;

/// Analyse a thin or fat Mach-O image.
///
/// Returns `None` only for data without a Mach-O or fat magic; anything after that yields what could be
/// read, with anomalies for the rest.
pub fn analyse(data: &[u8], anomalies: &mut Vec<Anomaly>) -> Option<MachoInfo> {
    let magic = be_u32(data, 0)?;
    match magic {
        FAT_MAGIC | FAT_MAGIC_64 => Some(analyse_fat(data, magic == FAT_MAGIC_64, anomalies)),
        MH_MAGIC | MH_CIGAM | MH_MAGIC_64 | MH_CIGAM_64 => {
            let mut dylib_budget = DylibBudget::default();
            let slice = analyse_slice(data, 0, data.len() as u64, &mut dylib_budget, anomalies, "the image");
            dylib_budget.report(anomalies);
            Some(MachoInfo { fat: false, slices: slice.into_iter().collect() })
        }
        _ => None,
    }
}

/// A fat file: the big-endian architecture table, then each slice it points at.
fn analyse_fat(data: &[u8], is_64: bool, anomalies: &mut Vec<Anomaly>) -> MachoInfo {
    let mut info = MachoInfo { fat: true, slices: Vec::new() };
    let Some(nfat) = be_u32(data, 4) else {
        anomalies
            .push(Anomaly::limiting("macho-fat-header-truncated", "the fat header is cut short; no slice was read"));
        return info;
    };
    if nfat == 0 {
        anomalies.push(Anomaly::new("macho-fat-empty", "the fat header lists no architecture"));
    }
    if nfat as usize > MAX_SLICES {
        anomalies.push(Anomaly::limiting(
            "macho-too-many-slices",
            format!("the fat header lists {nfat} architectures; only the first {MAX_SLICES} were read"),
        ));
    }
    let entsize: u64 = if is_64 { 32 } else { 20 };
    let file_len = data.len() as u64;
    let mut seen: Vec<(u64, u64)> = Vec::new();
    let mut dylib_budget = DylibBudget::default();
    let mut outside = 0usize;
    let (mut overlaps, mut first_overlap) = (0usize, String::new());
    for i in 0..(nfat as usize).min(MAX_SLICES) {
        let at = 8 + i as u64 * entsize;
        let Some(entry) = read(data, at, entsize) else {
            anomalies.push(Anomaly::limiting(
                "macho-fat-header-truncated",
                format!("the fat header lists {nfat} architectures but the file ends after {i} of them"),
            ));
            break;
        };
        let cputype = be_u32(entry, 0).unwrap_or(0);
        let (offset, size) = if is_64 {
            (be_u64(entry, 8).unwrap_or(0), be_u64(entry, 16).unwrap_or(0))
        } else {
            (u64::from(be_u32(entry, 8).unwrap_or(0)), u64::from(be_u32(entry, 12).unwrap_or(0)))
        };
        let label = format!("slice {i} ({})", cpu_name(cputype));
        if offset == 0 || offset >= file_len || size == 0 {
            // A bogus table (all zeros, or garbage past the real entries) would give one line per entry.
            outside += 1;
            if outside <= 4 {
                anomalies.push(Anomaly::limiting(
                    "macho-slice-out-of-bounds",
                    format!("{label} at offset {offset:#x}, size {size}, lies outside the file ({file_len} bytes); it was not read"),
                ));
            }
            continue;
        }
        let end = offset.saturating_add(size);
        if end > file_len {
            anomalies.push(Anomaly::limiting(
                "macho-slice-out-of-bounds",
                format!("{label} at offset {offset:#x}, size {size}, extends past the end of the file ({file_len} bytes); only the bytes present were read"),
            ));
        }
        if seen.iter().any(|&(s, e)| offset < e && s < end) {
            overlaps += 1;
            if overlaps == 1 {
                first_overlap = format!("{label} at offset {offset:#x}, size {size}, overlaps another slice");
            }
        }
        seen.push((offset, end));
        let bytes = data.get(offset as usize..end.min(file_len) as usize).unwrap_or_default();
        match analyse_slice(bytes, offset, size, &mut dylib_budget, anomalies, &label) {
            Some(slice) => {
                if cpu_name(cputype) != slice.cpu {
                    anomalies.push(Anomaly::new(
                        "macho-slice-cpu-mismatch",
                        format!(
                            "{label}: the fat header says {} but the slice's own header says {}",
                            cpu_name(cputype),
                            slice.cpu
                        ),
                    ));
                }
                info.slices.push(slice);
            }
            None if bytes.starts_with(b"!<arch>\n") => anomalies.push(Anomaly::limiting(
                "macho-slice-not-macho",
                format!("{label} is a static library archive; archives are not analysed"),
            )),
            None => anomalies.push(Anomaly::limiting(
                "macho-slice-not-macho",
                format!("{label} at offset {offset:#x} does not start with a Mach-O header; it was not analysed"),
            )),
        }
    }
    match overlaps {
        0 => {}
        1 => anomalies.push(Anomaly::new("macho-slices-overlap", first_overlap)),
        n => anomalies.push(Anomaly::new("macho-slices-overlap", format!("{first_overlap} (and {} more)", n - 1))),
    }
    dylib_budget.report(anomalies);
    if outside > 4 {
        anomalies.push(Anomaly::limiting(
            "macho-slice-out-of-bounds",
            format!("{} more slices lie outside the file; they were not read", outside - 4),
        ));
    }
    info
}

/// One Mach-O image (`bytes` starts at its header; `offset` and `size` are where the fat header puts it).
/// `None` when `bytes` does not start with a Mach-O magic.
/// `dylib_budget` counts the dylib paths kept in this file.
fn analyse_slice(
    bytes: &[u8],
    offset: u64,
    size: u64,
    dylib_budget: &mut DylibBudget,
    anomalies: &mut Vec<Anomaly>,
    label: &str,
) -> Option<MachoSlice> {
    let (le, header_size) = match be_u32(bytes, 0)? {
        MH_MAGIC => (false, 28u64),
        MH_CIGAM => (true, 28),
        MH_MAGIC_64 => (false, 32),
        MH_CIGAM_64 => (true, 32),
        _ => return None,
    };
    let r = Reader { data: bytes, le };
    let cputype = r.u32(4);
    let subtype = r.u32(8);
    let filetype = r.u32(12);
    let ncmds = r.u32(16);
    let sizeofcmds = r.u32(20);
    let flags = r.u32(24).unwrap_or(0);
    let mut slice = MachoSlice {
        offset,
        size,
        cpu: cputype.map_or_else(|| "unknown".to_string(), cpu_name),
        cpu_subtype: subtype.map_or(0, |s| s & !CPU_SUBTYPE_MASK),
        file_type: filetype.map_or_else(|| "unknown".to_string(), file_type_name),
        flags: flag_names(flags),
        pie: flags & MH_PIE != 0,
        load_commands: ncmds.unwrap_or(0),
        ..Default::default()
    };
    if (bytes.len() as u64) < header_size {
        anomalies.push(Anomaly::limiting(
            "macho-header-truncated",
            format!("the Mach-O header of {label} is cut short ({} of {header_size} bytes); its load commands were not read", bytes.len()),
        ));
        return Some(slice);
    }
    let (Some(ncmds), Some(sizeofcmds)) = (ncmds, sizeofcmds) else { return Some(slice) };
    let area = LoadCommands { start: header_size, ncmds, sizeofcmds };
    read_load_commands(&r, area, &mut slice, dylib_budget, anomalies, label);
    Some(slice)
}

/// Dylib paths kept so far in one file, and those dropped over [`MAX_DYLIBS`].
#[derive(Debug, Default)]
struct DylibBudget {
    kept: usize,
    dropped: usize,
}

impl DylibBudget {
    /// One anomaly for the whole file when paths were dropped.
    fn report(&self, anomalies: &mut Vec<Anomaly>) {
        if self.dropped > 0 {
            anomalies.push(Anomaly::limiting(
                "macho-too-many-dylibs",
                format!("{} dylib paths were not reported: the file names more than {MAX_DYLIBS}", self.dropped),
            ));
        }
    }
}

/// Where the load commands are, as the header says.
#[derive(Debug, Clone, Copy)]
struct LoadCommands {
    /// Offset of the first command (the header size).
    start: u64,
    ncmds: u32,
    sizeofcmds: u32,
}

/// Walk the load commands and fill the slice's dylibs, UUID, code-signature flag and minimum OS.
fn read_load_commands(
    r: &Reader<'_>,
    area: LoadCommands,
    slice: &mut MachoSlice,
    dylib_budget: &mut DylibBudget,
    anomalies: &mut Vec<Anomaly>,
    label: &str,
) {
    let LoadCommands { start, ncmds, sizeofcmds } = area;
    let declared_end = start + u64::from(sizeofcmds);
    let end = declared_end.min(r.data.len() as u64);
    if declared_end > end {
        anomalies.push(Anomaly::limiting(
            "macho-load-commands-truncated",
            format!("the load commands of {label} ({sizeofcmds} bytes) extend past the end of the data; only the commands present were read"),
        ));
    }
    if ncmds as usize > MAX_LOAD_COMMANDS {
        anomalies.push(Anomaly::limiting(
            "macho-too-many-load-commands",
            format!("{label} declares {ncmds} load commands; only the first {MAX_LOAD_COMMANDS} were read"),
        ));
    }
    let mut build_version: Option<String> = None;
    let mut version_min: Option<String> = None;
    let mut bad_names = 0usize;
    let mut pos = start;
    for i in 0..(ncmds as usize).min(MAX_LOAD_COMMANDS) {
        let (Some(cmd), Some(cmdsize)) = (r.u32_within(pos, end), r.u32_within(pos + 4, end)) else {
            if declared_end <= end {
                anomalies.push(Anomaly::limiting(
                    "macho-load-commands-truncated",
                    format!("{label} declares {ncmds} load commands but sizeofcmds ends after {i} of them"),
                ));
            }
            break;
        };
        // cmdsize counts the 8-byte cmd/cmdsize header itself: anything smaller would not advance.
        if cmdsize < 8 {
            anomalies.push(Anomaly::limiting(
                "macho-load-command-invalid",
                format!("load command {i} of {label} (cmd {cmd:#x}) has cmdsize {cmdsize}; the rest were not read"),
            ));
            break;
        }
        let Some(body) = read(r.data, pos, u64::from(cmdsize)).filter(|_| pos + u64::from(cmdsize) <= end) else {
            anomalies.push(Anomaly::limiting(
                "macho-load-commands-truncated",
                format!("load command {i} of {label} (cmd {cmd:#x}, cmdsize {cmdsize}) runs past the load-command area; the rest were not read"),
            ));
            break;
        };
        let body = Reader { data: body, le: r.le };
        match cmd {
            LC_LOAD_DYLIB | LC_LOAD_WEAK_DYLIB | LC_REEXPORT_DYLIB | LC_LAZY_LOAD_DYLIB | LC_LOAD_UPWARD_DYLIB => {
                if dylib_budget.kept == MAX_DYLIBS {
                    // Over the budget: count the path without decoding it.
                    dylib_budget.dropped += 1;
                } else if let Some(name) = body.u32(8).and_then(|name| body.cstr(u64::from(name))) {
                    dylib_budget.kept += 1;
                    slice.dylibs.push(name);
                } else {
                    bad_names += 1;
                }
            }
            LC_UUID if slice.uuid.is_none() => {
                slice.uuid = read(body.data, 8, 16).map(crate::hex::encode);
            }
            LC_CODE_SIGNATURE => slice.code_signature = true,
            LC_BUILD_VERSION if build_version.is_none() => {
                if let (Some(platform), Some(minos)) = (body.u32(8), body.u32(12)) {
                    build_version = Some(format!("{} {}", platform_name(platform), version(minos)));
                }
            }
            LC_VERSION_MIN_MACOSX | LC_VERSION_MIN_IPHONEOS | LC_VERSION_MIN_TVOS | LC_VERSION_MIN_WATCHOS
                if version_min.is_none() =>
            {
                let os = match cmd {
                    LC_VERSION_MIN_MACOSX => "macos",
                    LC_VERSION_MIN_IPHONEOS => "ios",
                    LC_VERSION_MIN_TVOS => "tvos",
                    _ => "watchos",
                };
                version_min = body.u32(8).map(|v| format!("{os} {}", version(v)));
            }
            _ => {}
        }
        pos += u64::from(cmdsize);
    }
    if bad_names > 0 {
        anomalies.push(Anomaly::new(
            "macho-dylib-name-invalid",
            format!("{bad_names} dylib load command(s) of {label} have a name outside the command"),
        ));
    }
    // LC_BUILD_VERSION supersedes the older LC_VERSION_MIN_* commands.
    slice.min_os = build_version.or(version_min);
}

// ------------------------------------------------------------------------------------------- reader

/// Exactly `len` bytes at `off`, or `None` when they are not all there.
fn read(data: &[u8], off: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(off).ok()?;
    data.get(start..start.checked_add(usize::try_from(len).ok()?)?)
}

fn be_u32(data: &[u8], off: u64) -> Option<u32> {
    Some(u32::from_be_bytes(read(data, off, 4)?.try_into().ok()?))
}

fn be_u64(data: &[u8], off: u64) -> Option<u64> {
    Some(u64::from_be_bytes(read(data, off, 8)?.try_into().ok()?))
}

/// Bounds-checked reads in one slice's byte order.
struct Reader<'a> {
    data: &'a [u8],
    le: bool,
}

impl Reader<'_> {
    fn u32(&self, off: u64) -> Option<u32> {
        let b: [u8; 4] = read(self.data, off, 4)?.try_into().ok()?;
        Some(if self.le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    }

    /// A u32 that must also end before `end`.
    fn u32_within(&self, off: u64, end: u64) -> Option<u32> {
        if off.checked_add(4)? > end { None } else { self.u32(off) }
    }

    /// The NUL-terminated string at `off` (an lc_str inside one load command), lossily decoded.
    fn cstr(&self, off: u64) -> Option<String> {
        let start = usize::try_from(off).ok()?;
        let rest = self.data.get(start..).filter(|b| !b.is_empty())?;
        let rest = rest.get(..rest.len().min(MAX_STRING)).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        Some(String::from_utf8_lossy(rest.get(..end).unwrap_or_default()).into_owned())
    }
}

// -------------------------------------------------------------------------------------------- names

fn cpu_name(cputype: u32) -> String {
    let name = match cputype {
        CPU_TYPE_X86_64 => "x86_64",
        CPU_TYPE_ARM64 => "arm64",
        CPU_TYPE_ARM64_32 => "arm64_32",
        CPU_TYPE_X86 => "i386",
        CPU_TYPE_ARM => "arm",
        CPU_TYPE_POWERPC => "ppc",
        CPU_TYPE_POWERPC64 => "ppc64",
        CPU_TYPE_MC680X0 => "m68k",
        CPU_TYPE_MC88000 => "m88k",
        CPU_TYPE_SPARC => "sparc",
        n => return format!("unknown-{n}"),
    };
    name.to_string()
}

fn file_type_name(filetype: u32) -> String {
    let name = match filetype {
        1 => "object",
        2 => "execute",
        3 => "fvmlib",
        4 => "core",
        5 => "preload",
        6 => "dylib",
        7 => "dylinker",
        8 => "bundle",
        9 => "dylib-stub",
        10 => "dsym",
        11 => "kext",
        12 => "fileset",
        13 => "gpu-execute",
        14 => "gpu-dylib",
        n => return format!("unknown-{n}"),
    };
    name.to_string()
}

/// Header flags, lower-case kebab-case; bits without a name are kept as one `unknown-0x…` entry.
fn flag_names(flags: u32) -> Vec<String> {
    const NAMES: [(u32, &str); 28] = [
        (0x1, "noundefs"),
        (0x2, "incrlink"),
        (0x4, "dyldlink"),
        (0x8, "bindatload"),
        (0x10, "prebound"),
        (0x20, "split-segs"),
        (0x40, "lazy-init"),
        (0x80, "twolevel"),
        (0x100, "force-flat"),
        (0x200, "nomultidefs"),
        (0x400, "nofixprebinding"),
        (0x800, "prebindable"),
        (0x1000, "allmodsbound"),
        (0x2000, "subsections-via-symbols"),
        (0x4000, "canonical"),
        (0x8000, "weak-defines"),
        (0x1_0000, "binds-to-weak"),
        (0x2_0000, "allow-stack-execution"),
        (0x4_0000, "root-safe"),
        (0x8_0000, "setuid-safe"),
        (0x10_0000, "no-reexported-dylibs"),
        (0x20_0000, "pie"),
        (0x40_0000, "dead-strippable-dylib"),
        (0x80_0000, "has-tlv-descriptors"),
        (0x100_0000, "no-heap-execution"),
        (0x200_0000, "app-extension-safe"),
        (0x400_0000, "nlist-outofsync-with-dyldinfo"),
        (0x800_0000, "sim-support"),
    ];
    let mut out: Vec<String> = NAMES.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, n)| n.to_string()).collect();
    // MH_DYLIB_IN_CACHE.
    if flags & 0x8000_0000 != 0 {
        out.push("dylib-in-cache".to_string());
    }
    let rest = NAMES.iter().fold(flags & !0x8000_0000, |acc, (bit, _)| acc & !bit);
    if rest != 0 {
        out.push(format!("unknown-{rest:#x}"));
    }
    out
}

/// LC_BUILD_VERSION platform.
fn platform_name(platform: u32) -> String {
    let name = match platform {
        1 => "macos",
        2 => "ios",
        3 => "tvos",
        4 => "watchos",
        5 => "bridgeos",
        6 => "maccatalyst",
        7 => "ios-simulator",
        8 => "tvos-simulator",
        9 => "watchos-simulator",
        10 => "driverkit",
        11 => "visionos",
        12 => "visionos-simulator",
        n => return format!("unknown-{n}"),
    };
    name.to_string()
}

/// A version packed as xxxx.yy.zz in nibbles, as "x.y.z".
fn version(v: u32) -> String {
    format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LC_SEGMENT_64: u32 = 0x19;

    /// A load command: cmd and its body after the cmd/cmdsize words (padded to 8 bytes).
    fn lc(cmd: u32, body: &[u8], le: bool) -> Vec<u8> {
        let mut body = body.to_vec();
        while (body.len() + 8) % 8 != 0 {
            body.push(0);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&u32_bytes(cmd, le));
        out.extend_from_slice(&u32_bytes(body.len() as u32 + 8, le));
        out.extend_from_slice(&body);
        out
    }

    fn u32_bytes(v: u32, le: bool) -> [u8; 4] {
        if le { v.to_le_bytes() } else { v.to_be_bytes() }
    }

    fn words(ws: &[u32], le: bool) -> Vec<u8> {
        ws.iter().flat_map(|&w| u32_bytes(w, le)).collect()
    }

    /// A dylib command body: lc_str offset 24 (past cmd, cmdsize and struct dylib), then the path.
    fn dylib(cmd: u32, path: &str, le: bool) -> Vec<u8> {
        let mut body = words(&[24, 2, 0x10000, 0x10000], le);
        body.extend_from_slice(path.as_bytes());
        body.push(0);
        lc(cmd, &body, le)
    }

    /// A thin image: header, then the load commands, padded to `size` bytes.
    /// `hdr` is (cputype, cpusubtype, filetype, flags).
    fn image(is_64: bool, le: bool, hdr: (u32, u32, u32, u32), cmds: &[Vec<u8>], size: usize) -> Vec<u8> {
        let (cpu, subtype, filetype, flags) = hdr;
        let magic = if is_64 { MH_MAGIC_64 } else { MH_MAGIC };
        let sizeofcmds: usize = cmds.iter().map(Vec::len).sum();
        let mut out = words(&[magic, cpu, subtype, filetype, cmds.len() as u32, sizeofcmds as u32, flags], le);
        if is_64 {
            out.extend_from_slice(&[0; 4]);
        }
        for c in cmds {
            out.extend_from_slice(c);
        }
        out.resize(size.max(out.len()), 0);
        out
    }

    /// The arm64 bundle most tests start from.
    fn arm64_bundle() -> Vec<u8> {
        let le = true;
        let mut uuid = vec![];
        uuid.extend(0x10u8..0x20);
        let cmds = vec![
            lc(LC_SEGMENT_64, &[0; 64], le),
            lc(LC_UUID, &uuid, le),
            lc(LC_BUILD_VERSION, &words(&[1, 0x000b_0000, 0x000f_0500, 0], le), le),
            dylib(LC_LOAD_DYLIB, "/usr/lib/libSystem.B.dylib", le),
            dylib(LC_LOAD_WEAK_DYLIB, "/usr/lib/libweak.dylib", le),
            dylib(LC_REEXPORT_DYLIB, "@rpath/libre.dylib", le),
            lc(LC_CODE_SIGNATURE, &words(&[0x4000, 0x100], le), le),
        ];
        image(true, le, (CPU_TYPE_ARM64, 0x8000_0002, 8, 0x1 | 0x4 | 0x80 | MH_PIE), &cmds, 0x1000)
    }

    fn run(data: &[u8]) -> (MachoInfo, Vec<Anomaly>) {
        let mut anomalies = Vec::new();
        let info = analyse(data, &mut anomalies).expect("a Mach-O image yields facts");
        (info, anomalies)
    }

    fn has_limit(anomalies: &[Anomaly], id: &str) -> bool {
        anomalies.iter().any(|a| a.id == id && a.limits_analysis)
    }

    #[test]
    fn thin_arm64_bundle() {
        let data = arm64_bundle();
        let (info, anomalies) = run(&data);
        assert_eq!(anomalies, vec![]);
        assert!(!info.fat);
        assert_eq!(info.slices.len(), 1);
        let s = &info.slices[0];
        assert_eq!(s.offset, 0);
        assert_eq!(s.size, data.len() as u64);
        assert_eq!(s.cpu, "arm64");
        assert_eq!(s.cpu_subtype, 2, "the capability bits are dropped");
        assert_eq!(s.file_type, "bundle");
        assert_eq!(s.flags, vec!["noundefs", "dyldlink", "twolevel", "pie"]);
        assert!(s.pie);
        assert_eq!(s.dylibs, vec!["/usr/lib/libSystem.B.dylib", "/usr/lib/libweak.dylib", "@rpath/libre.dylib"]);
        assert_eq!(s.uuid.as_deref(), Some("101112131415161718191a1b1c1d1e1f"));
        assert!(s.code_signature);
        assert_eq!(s.min_os.as_deref(), Some("macos 11.0.0"));
        assert_eq!(s.load_commands, 7);
    }

    #[test]
    fn big_endian_ppc_with_version_min() {
        let le = false;
        let cmds = vec![
            lc(LC_VERSION_MIN_MACOSX, &words(&[0x000a_0409, 0x000a_0500], le), le),
            dylib(LC_LOAD_DYLIB, "/usr/lib/libSystem.B.dylib", le),
        ];
        let data = image(false, le, (CPU_TYPE_POWERPC, 0, 2, 0x1 | 0x4), &cmds, 0x200);
        let (info, anomalies) = run(&data);
        assert_eq!(anomalies, vec![]);
        let s = &info.slices[0];
        assert_eq!(s.cpu, "ppc");
        assert_eq!(s.file_type, "execute");
        assert_eq!(s.flags, vec!["noundefs", "dyldlink"]);
        assert!(!s.pie);
        assert!(!s.code_signature);
        assert_eq!(s.uuid, None);
        assert_eq!(s.min_os.as_deref(), Some("macos 10.4.9"));
        assert_eq!(s.dylibs, vec!["/usr/lib/libSystem.B.dylib"]);
    }

    #[test]
    fn build_version_wins_over_version_min() {
        let le = true;
        let cmds = vec![
            lc(LC_VERSION_MIN_IPHONEOS, &words(&[0x000c_0000, 0], le), le),
            lc(LC_BUILD_VERSION, &words(&[2, 0x000e_0100, 0, 0], le), le),
        ];
        let data = image(true, le, (CPU_TYPE_ARM64, 0, 6, 0), &cmds, 0x100);
        let s = &run(&data).0.slices[0];
        assert_eq!(s.min_os.as_deref(), Some("ios 14.1.0"));
        assert_eq!(s.file_type, "dylib");
    }

    /// A fat file with the given (cputype, offset, image) slices.
    fn fat(is_64: bool, slices: &[(u32, u64, &[u8])], nfat: Option<u32>) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(if is_64 { FAT_MAGIC_64 } else { FAT_MAGIC }).to_be_bytes());
        out.extend_from_slice(&nfat.unwrap_or(slices.len() as u32).to_be_bytes());
        for (cpu, offset, bytes) in slices {
            out.extend_from_slice(&cpu.to_be_bytes());
            out.extend_from_slice(&0u32.to_be_bytes());
            if is_64 {
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 12, 0, 0, 0, 0]);
            } else {
                out.extend_from_slice(&(*offset as u32).to_be_bytes());
                out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                out.extend_from_slice(&12u32.to_be_bytes());
            }
        }
        for (_, offset, bytes) in slices {
            let end = *offset as usize + bytes.len();
            if out.len() < end {
                out.resize(end, 0);
            }
            out[*offset as usize..end].copy_from_slice(bytes);
        }
        out
    }

    fn x86_64_bundle() -> Vec<u8> {
        let le = true;
        let cmds = vec![
            lc(LC_UUID, &[0xab; 16], le),
            lc(LC_VERSION_MIN_MACOSX, &words(&[0x000a_0900, 0x000e_0500], le), le),
            dylib(LC_LOAD_DYLIB, "/usr/lib/libSystem.B.dylib", le),
        ];
        image(true, le, (CPU_TYPE_X86_64, 3, 8, 0x85), &cmds, 0x800)
    }

    #[test]
    fn fat_universal_binary() {
        for is_64 in [false, true] {
            let x86 = x86_64_bundle();
            let arm = arm64_bundle();
            let data = fat(is_64, &[(CPU_TYPE_X86_64, 0x1000, &x86), (CPU_TYPE_ARM64, 0x4000, &arm)], None);
            let (info, anomalies) = run(&data);
            assert_eq!(anomalies, vec![], "FAT_MAGIC_64: {is_64}");
            assert!(info.fat);
            assert_eq!(info.slices.len(), 2);
            let (a, b) = (&info.slices[0], &info.slices[1]);
            assert_eq!((a.offset, a.size, a.cpu.as_str(), a.cpu_subtype), (0x1000, x86.len() as u64, "x86_64", 3));
            assert_eq!(a.min_os.as_deref(), Some("macos 10.9.0"));
            assert_eq!(a.uuid.as_deref(), Some("abababababababababababababababab"));
            assert!(!a.code_signature && !a.pie);
            assert_eq!(a.flags, vec!["noundefs", "dyldlink", "twolevel"]);
            assert_eq!((b.offset, b.size, b.cpu.as_str()), (0x4000, arm.len() as u64, "arm64"));
            assert!(b.code_signature);
            assert_eq!(b.dylibs.len(), 3);
        }
    }

    #[test]
    fn fat_with_absurd_slice_count() {
        let arm = arm64_bundle();
        let data = fat(false, &[(CPU_TYPE_ARM64, 0x1000, &arm)], Some(u32::MAX));
        let (info, anomalies) = run(&data);
        assert!(has_limit(&anomalies, "macho-too-many-slices"));
        // Entries 1 to 63 are the zeros before the first slice: each lies outside the file, in 5 lines.
        assert_eq!(info.slices.len(), 1);
        assert_eq!(info.slices[0].cpu, "arm64");
        assert_eq!(anomalies.iter().filter(|a| a.id == "macho-slice-out-of-bounds").count(), 5);
        assert!(anomalies.last().is_some_and(|a| a.message.starts_with("59 more slices")));
        // A table that runs past the end of the file.
        let (info, anomalies) = run(&data[..0x100]);
        assert!(has_limit(&anomalies, "macho-fat-header-truncated"));
        assert!(info.slices.is_empty());
        // A fat header cut after the magic.
        let (info, anomalies) = run(&[0xca, 0xfe, 0xba, 0xbe, 0, 0]);
        assert!(info.fat && info.slices.is_empty());
        assert!(has_limit(&anomalies, "macho-fat-header-truncated"));
    }

    #[test]
    fn fat_slices_out_of_bounds_overlapping_or_foreign() {
        let arm = arm64_bundle();
        let mut data = fat(false, &[(CPU_TYPE_ARM64, 0x1000, &arm), (CPU_TYPE_ARM64, 0x1800, &arm)], None);
        // Slice 1 overlaps slice 0 and runs past the end of the file by 0x800 bytes.
        data.truncate(0x1800 + arm.len() - 0x800);
        let (info, anomalies) = run(&data);
        assert!(has_limit(&anomalies, "macho-slice-out-of-bounds"));
        assert!(anomalies.iter().any(|a| a.id == "macho-slices-overlap" && !a.limits_analysis));
        assert_eq!(info.slices.len(), 2, "a slice cut short is still read as far as it goes");
        assert_eq!(info.slices[1].dylibs.len(), 3);

        // A slice that starts past the end, and one that is not a Mach-O image.
        let mut data = fat(false, &[(CPU_TYPE_X86_64, 0x1000, &[0x55; 64]), (CPU_TYPE_ARM64, 0x10_0000, &arm)], None);
        data.truncate(0x1040);
        let (info, anomalies) = run(&data);
        assert!(info.slices.is_empty());
        assert!(has_limit(&anomalies, "macho-slice-not-macho"));
        assert!(has_limit(&anomalies, "macho-slice-out-of-bounds"));
    }

    #[test]
    fn zero_cmdsize_stops_the_walk() {
        let le = true;
        let mut zero = lc(LC_UUID, &[0; 16], le);
        zero[4..8].copy_from_slice(&0u32.to_le_bytes());
        let cmds =
            vec![dylib(LC_LOAD_DYLIB, "/usr/lib/libSystem.B.dylib", le), zero, lc(LC_CODE_SIGNATURE, &[0; 8], le)];
        let data = image(true, le, (CPU_TYPE_ARM64, 0, 8, 0), &cmds, 0x200);
        let (info, anomalies) = run(&data);
        assert!(has_limit(&anomalies, "macho-load-command-invalid"));
        let s = &info.slices[0];
        assert_eq!(s.dylibs, vec!["/usr/lib/libSystem.B.dylib"], "commands before the bad one are kept");
        assert_eq!(s.uuid, None);
        assert!(!s.code_signature, "nothing after the bad command is trusted");

        // cmdsize 4 would advance, but into the middle of the command: also refused.
        let mut short = lc(LC_CODE_SIGNATURE, &[0; 8], le);
        short[4..8].copy_from_slice(&4u32.to_le_bytes());
        let data = image(true, le, (CPU_TYPE_ARM64, 0, 8, 0), &[short, lc(LC_CODE_SIGNATURE, &[0; 8], le)], 0x200);
        let (info, anomalies) = run(&data);
        assert!(has_limit(&anomalies, "macho-load-command-invalid"));
        assert!(!info.slices[0].code_signature);
    }

    #[test]
    fn absurd_ncmds_and_sizeofcmds() {
        let mut data = arm64_bundle();
        data[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        let (info, anomalies) = run(&data);
        assert!(has_limit(&anomalies, "macho-too-many-load-commands"));
        assert!(has_limit(&anomalies, "macho-load-commands-truncated"));
        assert_eq!(info.slices[0].load_commands, u32::MAX);
        assert!(info.slices[0].code_signature, "the real commands are still read");

        let mut data = arm64_bundle();
        data[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        let (info, anomalies) = run(&data);
        assert!(has_limit(&anomalies, "macho-load-commands-truncated"));
        assert_eq!(info.slices[0].dylibs.len(), 3);
    }

    #[test]
    fn a_load_command_past_sizeofcmds_is_not_read() {
        let mut data = arm64_bundle();
        // Shrink sizeofcmds so that the last command (LC_CODE_SIGNATURE, 16 bytes) falls outside it.
        let size = u32::from_le_bytes([data[20], data[21], data[22], data[23]]);
        data[20..24].copy_from_slice(&(size - 8).to_le_bytes());
        let (info, anomalies) = run(&data);
        assert!(has_limit(&anomalies, "macho-load-commands-truncated"));
        assert!(!info.slices[0].code_signature);
    }

    #[test]
    fn truncated_thin_header() {
        let data = arm64_bundle();
        let (info, anomalies) = run(&data[..12]);
        assert!(has_limit(&anomalies, "macho-header-truncated"));
        let s = &info.slices[0];
        assert_eq!(s.cpu, "arm64");
        assert_eq!(s.file_type, "unknown");
        assert!(s.dylibs.is_empty());
        assert!(analyse(b"\xcf\xfa", &mut Vec::new()).is_none());
        assert!(analyse(b"\x7fELF\x02\x01\x01\x00", &mut Vec::new()).is_none());
    }

    #[test]
    fn dylib_name_outside_its_command() {
        let le = true;
        let mut bad = dylib(LC_LOAD_DYLIB, "/usr/lib/libSystem.B.dylib", le);
        bad[8..12].copy_from_slice(&0x1000u32.to_le_bytes());
        let data = image(true, le, (CPU_TYPE_ARM64, 0, 8, 0), &[bad], 0x200);
        let (info, anomalies) = run(&data);
        assert!(info.slices[0].dylibs.is_empty());
        assert!(anomalies.iter().any(|a| a.id == "macho-dylib-name-invalid"));
    }

    #[test]
    fn dylib_paths_have_one_budget_per_file() {
        let le = true;
        let cmds: Vec<Vec<u8>> =
            (0..2100).map(|i| dylib(LC_LOAD_DYLIB, &format!("/usr/lib/lib{i}.dylib"), le)).collect();
        let slice = image(true, le, (CPU_TYPE_ARM64, 0, 6, 0), &cmds, 0);
        let second = 0x1000 + slice.len() as u64;
        let data = fat(false, &[(CPU_TYPE_ARM64, 0x1000, &slice), (CPU_TYPE_ARM64, second, &slice)], None);
        let (info, anomalies) = run(&data);
        assert_eq!(info.slices[0].dylibs.len(), 2100);
        assert_eq!(info.slices[1].dylibs.len(), MAX_DYLIBS - 2100);
        assert_eq!(info.slices[1].dylibs[0], "/usr/lib/lib0.dylib");
        let over: Vec<&Anomaly> = anomalies.iter().filter(|a| a.id == "macho-too-many-dylibs").collect();
        assert_eq!(over.len(), 1);
        assert!(over[0].limits_analysis && over[0].message.starts_with("104 dylib paths"), "{}", over[0].message);
    }

    #[test]
    fn names() {
        assert_eq!(cpu_name(CPU_TYPE_ARM64_32), "arm64_32");
        assert_eq!(cpu_name(CPU_TYPE_X86), "i386");
        assert_eq!(cpu_name(CPU_TYPE_POWERPC64), "ppc64");
        assert_eq!(cpu_name(99), "unknown-99");
        assert_eq!(file_type_name(10), "dsym");
        assert_eq!(file_type_name(11), "kext");
        assert_eq!(file_type_name(77), "unknown-77");
        assert_eq!(flag_names(0x8000_0000 | 0x1000_0000), vec!["dylib-in-cache", "unknown-0x10000000"]);
        assert_eq!(version(0x000a_0f02), "10.15.2");
        assert_eq!(platform_name(6), "maccatalyst");
    }
}
