//! Help texts for every rule a scan finding can carry: the SARIF `tool.driver.rules` and the `--help`-style
//! explanations of reason ids.
//!
//! A finding's rule is a verdict reason id (`src/verdict.rs`, including the masquerading ids of
//! `src/masquerade.rs`), the scan's `verdict-at-fail-on` ([`crate::scan::VERDICT_RULE`]), a hardening check
//! id (`src/hardening.rs`, whose texts live there and are read through [`crate::hardening::info`]), or,
//! should a policy ever turn one into a finding, an analysis anomaly id (`src/analysis`). This module owns
//! the texts of all but the hardening checks; it does not decide which findings exist or how severe they are. An id nobody here knows gets a generic text: [`describe`] never
//! fails, so a new reason id can never break a SARIF run (a unit test below fails instead, so that it gets
//! its own text before release).

use crate::report::Format;
use crate::scan::FindingKind;

/// What a rule is, in words: the SARIF rule's name and descriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleText {
    /// The stable kebab-case id (`known-malicious`).
    pub id: String,
    /// The id in PascalCase (`KnownMalicious`), as SARIF viewers show rule names.
    pub name: String,
    /// One short line: what was found.
    pub short: String,
    /// A paragraph: what the rule detects and how.
    pub full: String,
    /// What it means and what to do about it.
    pub help: String,
}

/// One rule's text, as written below.
struct Text {
    id: &'static str,
    short: &'static str,
    full: &'static str,
    help: &'static str,
    /// Shared advice appended to `help` (empty for none).
    then: &'static str,
}

const fn t(id: &'static str, short: &'static str, full: &'static str, help: &'static str) -> Text {
    Text { id, short, full, help, then: "" }
}

/// A text whose help goes on with shared advice.
const fn and(
    id: &'static str,
    short: &'static str,
    full: &'static str,
    help: &'static str,
    then: &'static str,
) -> Text {
    Text { id, short, full, help, then }
}

// Shared advice for the families of rules (each rule still has its own short and full text).

const FALSE_POSITIVE: &str = "If you have established that the finding is wrong for this artifact, suppress it in \
filerep.toml by SHA-256 (or by path glob) with a justification and an expiry date, so that it is looked at again.";

const STRUCTURE_HELP: &str = "Linkers and compilers do not produce such structures: the file was damaged (a \
truncated download or copy, a disk error) or crafted to confuse analysis tools, as packers and malware do. \
Rebuild or re-download the artifact and compare its digest with the one your build produced; a file that \
keeps this shape and whose origin you cannot explain should be analysed before it is shipped or run.";

const LIMIT_HELP: &str = "Part of the file was not analysed, so filerep cannot call it clean: its verdict stays at \
most unknown. Genuine build outputs rarely hit these limits; look at the file with `filerep check FILE` and, if \
it is larger than the size cap, scan it with a larger `--max-size`. A file crafted to exhaust parsers deserves \
suspicion.";

const ODD_HELP: &str = "This is unusual but not harmful on its own: some toolchains and post-processors produce \
it. It is reported so that the rest of the report can be read in its light; no action is needed unless other \
findings point the same way.";

const MASQUERADE_HELP: &str = "Malware names itself after Windows system binaries (svchost.exe, lsass.exe, \
rundll32.exe…) to blend in with process lists and file listings. A build artifact has no reason to carry a Windows \
system binary's name: rename your own program, or, if this really is a copy of the Windows file, find out why \
its identity differs from the genuine one before shipping it. The expected values come from the xcyclopedia \
inventory of Windows binaries.";

const SIGNATURE_FIX: &str = "Re-sign the artifact from a clean build output with your code-signing certificate \
(signtool sign /fd sha256 /tr <timestamp URL> /td sha256), then verify it with `filerep check`. Never modify a \
file after signing it: patching, appending data or stripping a signature invalidates the Authenticode digest.";

/// Verdict reason ids (src/verdict.rs), masquerading ids (src/masquerade.rs) and the scan's own
/// `verdict-at-fail-on` ([`crate::scan::VERDICT_RULE`]).
const VERDICT_TEXTS: &[Text] = &[
    and(
        "provider-malicious",
        "A public service calls the file malware",
        "An online provider asked with `--provider` (VirusTotal: at least 10 engines flag the file; MalwareBazaar: \
         it is a listed malware sample) knows this exact file hash as malicious.",
        "Treat the artifact as compromised: do not ship or run it, find how it entered the build, rebuild from \
         clean sources and rotate credentials the build could reach. Only the hash was sent to the provider.",
        FALSE_POSITIVE,
    ),
    and(
        "provider-suspicious",
        "A few engines of a public service flag the file",
        "An online provider asked with `--provider` knows this exact file hash and some, but few, of its engines \
         flag it (VirusTotal: 1 to 9 engines).",
        "A handful of detections is often a false positive of heuristic engines on packed or unusual but \
         legitimate files. Look at the engines' labels on the provider's page for the hash, and rebuild or \
         re-download the artifact to compare digests.",
        FALSE_POSITIVE,
    ),
    and(
        "provider-known",
        "Known to a public service",
        "An online provider asked with `--provider` knows this exact file hash and flags nothing (CIRCL hashlookup: a \
         file of a known software distribution; VirusTotal: no engine flags it). Informative only.",
        "No action is needed: being known is not a statement that the file is safe.",
        "",
    ),
    and(
        "known-malicious",
        "Known malware",
        "A digest of the file (MD5, SHA-1, SHA-256 or the Authenticode image hash) matches a record that a \
         reputation source in the store classes as malicious.",
        "The named data source lists this exact file (or its signed image) as malware. Do not ship or run it. \
         Remove the artifact, find how it entered the build (a compromised dependency, toolchain, build host or \
         download), rebuild from clean sources and rotate credentials the build could reach. If the source is \
         wrong, report the false positive to it.",
        FALSE_POSITIVE,
    ),
    and(
        "known-vulnerable",
        "Known vulnerable file",
        "A digest of the file matches a record that a reputation source classes as vulnerable: legitimate, \
         usually signed software with a known flaw that attackers abuse (for example a driver on the LOLDrivers \
         list, used to kill security tools or gain kernel access).",
        "Shipping or loading this file gives attackers a known way in, whatever its signature says. Upgrade to a \
         fixed version of the component, or remove it; for a driver, make sure it is not installed or loadable \
         (Microsoft's vulnerable driver blocklist, WDAC).",
        FALSE_POSITIVE,
    ),
    and(
        "vulnerable-driver",
        "Known vulnerable driver",
        "The file is a kernel driver that a data source lists as vulnerable and abused in \
         bring-your-own-vulnerable-driver attacks.",
        "A vulnerable signed driver lets an attacker with administrator rights run code in the kernel, disable \
         security tools and hide. Remove the driver from the artifact or upgrade to a fixed version, and block \
         the vulnerable one (Microsoft's vulnerable driver blocklist, WDAC).",
        FALSE_POSITIVE,
    ),
    t(
        "known-good",
        "Known good file",
        "A digest of the file matches a record that a reputation source classes as known good (for example a \
         Windows binary from a trusted inventory, or a catalog-signed file).",
        "Informative: the file is what the source says it is. No action is needed.",
    ),
    t(
        "known-file",
        "Known published file",
        "A digest of the file matches a known-files set such as NSRL or CIRCL hashlookup (possibly through a \
         Bloom filter, with a stated false-positive rate).",
        "Informative: the file has been published as part of some software package. Known is not the same as \
         safe: those sets also contain hacking tools and vulnerable software. No action is needed on its own.",
    ),
    t(
        "imphash-match",
        "Import table shared with a known sample",
        "The file's import hash (imphash) equals that of a sample a reputation source classes as malicious or \
         vulnerable. The imphash summarises which functions a PE imports, in which order.",
        "Weak evidence: unrelated programs built with the same toolchain and libraries can share an import table. \
         Compare the file with the named sample (family, author, build) before concluding anything; if your own \
         program shares an import table with malware by coincidence, suppress the finding with a justification.",
    ),
    and(
        "signer-on-blocklist",
        "Signer also signed blocklisted files",
        "The certificate that signed this file also signed files that a reputation source (such as LOLDrivers) \
         lists as vulnerable or malicious.",
        "A valid signature from this signer is no evidence that the file is good: the same publisher (or a \
         stolen key) signed abused files. Confirm that this file is one you expect from that publisher, at a \
         version without known flaws.",
        FALSE_POSITIVE,
    ),
    and(
        "masquerade-original-name",
        "Windows binary name with a different original name",
        "The file is named like a Windows system binary, but its version resource's OriginalFilename is not the \
         one the genuine binary carries.",
        MASQUERADE_HELP,
        FALSE_POSITIVE,
    ),
    and(
        "masquerade-company",
        "Windows binary name with a different company",
        "The file is named like a Windows system binary, but its version resource's CompanyName is not \
         Microsoft's (or not the one the genuine binary carries).",
        MASQUERADE_HELP,
        FALSE_POSITIVE,
    ),
    and(
        "masquerade-missing-version-info",
        "Windows binary name without version information",
        "The file is named like a Windows system binary whose genuine copies carry version information \
         (OriginalFilename, CompanyName), but it has none.",
        MASQUERADE_HELP,
        FALSE_POSITIVE,
    ),
    and(
        "masquerade-signer",
        "Windows binary name signed by someone else",
        "The file is named like a Windows system binary, but it is signed by a certificate whose name is not one \
         Microsoft signs that binary with.",
        MASQUERADE_HELP,
        FALSE_POSITIVE,
    ),
    and(
        "masquerade-location",
        "Windows binary name in an unexpected directory",
        "The file is named like a Windows system binary, and its (Windows) path is outside every directory where \
         the genuine binary is found.",
        MASQUERADE_HELP,
        FALSE_POSITIVE,
    ),
    t(
        "analysis-error",
        "File could not be analysed",
        "The file could not be read or analysed at all (permission denied, a read error, a file that vanished \
         during the scan).",
        "Nothing is known about this file, so it is neither clean nor flagged. Fix the cause shown in the message \
         (permissions, a file being rewritten during the scan) and scan again; a file that cannot be read fails \
         the run with exit status 2.",
    ),
    t(
        "not-fully-analysed",
        "File not fully analysed",
        "A limit stopped the analysis before the whole file was examined: the size cap, a count cap (sections, \
         imports, resources) or a parser failure on a malformed structure.",
        LIMIT_HELP,
    ),
    t(
        "empty-file",
        "Empty file",
        "The file has no content.",
        "Informative: an empty file cannot run. If an artifact is unexpectedly empty, the build step that wrote \
         it failed or ran out of disk space.",
    ),
    t(
        "not-an-executable",
        "Not an executable",
        "The file is not a PE, ELF or Mach-O executable (it was scanned because of --all-files or an explicit \
         path).",
        "Informative: only the digests and the reputation store apply to such a file. No action is needed.",
    ),
    t(
        "malformed-header",
        "Malformed executable structure",
        "The executable's headers contradict each other or the file: a PE header that cannot be reached, a \
         truncated or corrupt section table, directories outside the file, resource loops, overlapping Mach-O \
         slices or unreadable ELF header tables.",
        STRUCTURE_HELP,
    ),
    t(
        "executable-stack",
        "Executable stack",
        "The ELF file has no PT_GNU_STACK program header, or marks the stack executable, so the loader maps the \
         stack with execute permission.",
        "An executable stack turns a stack buffer overflow into straightforward code execution. Link with \
         `-z noexecstack`, and find the object (often hand-written assembly without a `.note.GNU-stack` section) \
         that requests an executable stack.",
    ),
    t(
        "packed",
        "Packed executable",
        "The PE looks packed or protected: section names, markers or the layout of a known packer (UPX, ASPack, \
         Themida…), or code and imports arranged the way packers leave them.",
        "Packing compresses or encrypts the real code, which hides it from review and from scanners and is \
         common in malware. If you pack your own program on purpose, suppress the finding with a justification; \
         otherwise find which build step or dependency produced a packed file.",
    ),
    t(
        "writable-executable-section",
        "Writable and executable section",
        "A PE section is both writable and executable (IMAGE_SCN_MEM_WRITE and IMAGE_SCN_MEM_EXECUTE), outside \
         the PAGE section that kernel drivers legitimately carry.",
        "Memory that is both writable and executable defeats DEP: an attacker who can write there can run code. \
         Self-modifying code and unpackers need it, compilers do not produce it. Remove linker options that merge \
         code and data (/SECTION:name,ERW, /MERGE of .data into .text) or find the tool that added the section.",
    ),
    t(
        "high-entropy-code",
        "Compressed or encrypted code",
        "An executable PE section has a byte entropy above 7.2 bits per byte: compiled code sits well below that, \
         compressed or encrypted data at 7.9 and above.",
        "Code that is compressed or encrypted in the file is unpacked at run time, which hides it from analysis: \
         a sign of a packer or protector. If you use one on purpose, suppress the finding with a justification; \
         otherwise find which build step produced the section.",
    ),
    t(
        "no-imports",
        "Windows program without imports",
        "A Windows GUI or console program with an entry point has no import table, and is not a .NET assembly.",
        "Every normal Windows program imports at least from kernel32.dll. A program without imports finds the \
         API at run time by walking loader structures, as shellcode, packers and malware do. Find out which tool \
         built or post-processed the file.",
    ),
    and(
        "entry-point-outside-sections",
        "Entry point outside every section",
        "The PE's AddressOfEntryPoint lies in no section (and not in the headers).",
        "A linker always places the entry point inside a code section. An entry point elsewhere is a sign of a \
         crafted or damaged file, used to confuse disassemblers and scanners. Rebuild the artifact and compare.",
        FALSE_POSITIVE,
    ),
    t(
        "checksum-mismatch",
        "PE checksum mismatch",
        "The PE optional header's CheckSum is set but differs from the checksum computed over the file, as the \
         Windows loader computes it.",
        "Informative for user-mode programs (the loader checks the sum only for drivers and some system DLLs): \
         the file was changed after linking, for example patched or resigned without updating the checksum. A \
         driver must have a correct checksum: link with /RELEASE.",
    ),
    t(
        "signature-valid",
        "Valid Authenticode signature",
        "The file's embedded Authenticode signature verifies: the image digest matches, the signer's signature \
         verifies and the chain reaches a trusted code-signing root.",
        "Informative: the file is signed by the named publisher and unchanged since it was signed. No action is \
         needed.",
    ),
    and(
        "signature-untrusted",
        "Authenticode signature not trusted",
        "The embedded Authenticode signature matches the file and the signer's signature verifies, but the \
         certificate chain does not reach a trusted code-signing root (a self-signed or test certificate, a \
         private CA, an expired chain without a timestamp).",
        "Windows will not treat the publisher as verified. Sign release artifacts with a certificate from a \
         publicly trusted code-signing CA and a timestamp; for an internal CA, give filerep its root with \
         `--trust FILE`.",
        SIGNATURE_FIX,
    ),
    and(
        "signature-invalid",
        "Authenticode signature invalid",
        "The embedded Authenticode signature does not match the file (the image digest differs: the file was \
         modified after signing) or the signer's signature does not verify.",
        "A signature that does not verify means the file is not what the publisher signed: it was patched, \
         corrupted or had a signature transplanted from another file. Do not ship it.",
        SIGNATURE_FIX,
    ),
    and(
        "signature-tampered",
        "Authenticode structure tampered with",
        "The Authenticode certificate table violates its structure: data after the signature, padding or extra \
         bytes inside the table, or a table that does not end the file (CVE-2013-3900).",
        "Data smuggled into or after the certificate table is not covered by the signature, so the file can carry \
         a payload while still showing a valid signature on older Windows. Do not ship it.",
        SIGNATURE_FIX,
    ),
    and(
        "signature-malformed",
        "Authenticode signature malformed",
        "The certificate table or the PKCS#7 SignedData inside it cannot be parsed.",
        "A signature that cannot be parsed was damaged (a truncated file) or crafted to break verifiers.",
        SIGNATURE_FIX,
    ),
    t(
        "signature-weak-digest",
        "Signature uses a weak digest",
        "One of the file's signatures uses MD5 or SHA-1 for the image digest or the signed attributes, which no \
         longer resist collision attacks.",
        "A collision can let an attacker make a different file that the same signature covers. Sign with SHA-256 \
         (signtool sign /fd sha256 /td sha256); dual-signing with SHA-1 for Windows 7 is no longer needed.",
    ),
    and(
        "verdict-at-fail-on",
        "Verdict at or above --fail-on",
        "The file's overall verdict is at or above the --fail-on level while no single reason at that level is a \
         finding of its own (for example --fail-on unknown on a file nothing is known about).",
        "The run fails because of the file's overall verdict, not one fact. See its reasons with `filerep check \
         FILE`; make the file known (sign it, or add its hash to your store as known good with `filerep db add \
         HASH --class known-good`), or raise --fail-on (fail_on in filerep.toml) if the level is stricter than \
         this artifact needs.",
        FALSE_POSITIVE,
    ),
];

/// Analysis anomaly ids (src/analysis, src/pipeline.rs). The verdict turns the structural ones into
/// `malformed-header` and the limiting ones into `not-fully-analysed`; these texts are for a policy that
/// reports an anomaly under its own id.
const ANOMALY_TEXTS: &[Text] = &[
    // The file as a whole.
    t(
        "size-cap",
        "File larger than the size cap",
        "The file is larger than the size cap: only its digests were computed, its structure was not analysed.",
        LIMIT_HELP,
    ),
    t(
        "parser-failure",
        "Parser failure",
        "A format parser failed on this file; the rest of its structure was not analysed.",
        LIMIT_HELP,
    ),
    t(
        "dos-header-truncated",
        "DOS header truncated",
        "The file starts with MZ but the 64-byte DOS header is cut short.",
        STRUCTURE_HELP,
    ),
    t(
        "e-lfanew-out-of-bounds",
        "PE header offset outside the file",
        "The DOS header's e_lfanew points past the end of the file, so the PE header cannot be reached.",
        STRUCTURE_HELP,
    ),
    t(
        "no-pe-signature",
        "No PE signature",
        "The file starts with MZ but has no PE\\0\\0 signature at e_lfanew: a DOS program, or a damaged PE.",
        ODD_HELP,
    ),
    // PE headers and sections.
    t(
        "pe-header-invalid",
        "PE headers unreadable",
        "The PE headers (COFF file header and optional header) cannot be parsed.",
        STRUCTURE_HELP,
    ),
    t(
        "optional-header-truncated",
        "Optional header truncated",
        "The PE optional header is shorter than its fixed part.",
        STRUCTURE_HELP,
    ),
    t(
        "optional-header-magic-unknown",
        "Unknown optional header magic",
        "The PE optional header's magic is neither PE32 (0x10b) nor PE32+ (0x20b).",
        STRUCTURE_HELP,
    ),
    t(
        "too-many-data-directories",
        "Too many data directories",
        "NumberOfRvaAndSizes is above 16, the number of data directories the format defines.",
        ODD_HELP,
    ),
    t(
        "too-many-sections",
        "Too many sections",
        "NumberOfSections is above the number of section headers filerep reads (96); the rest were not read.",
        LIMIT_HELP,
    ),
    t(
        "section-table-truncated",
        "Section table truncated",
        "The section table is cut short by the end of the file: fewer section headers than NumberOfSections says.",
        STRUCTURE_HELP,
    ),
    t(
        "section-table-null-entry",
        "Null section header",
        "A section header is all zeros before the table's declared end.",
        STRUCTURE_HELP,
    ),
    t(
        "section-table-corrupt",
        "Section table corrupt",
        "A section header has several inconsistencies (sizes, offsets and addresses that cannot belong to a real section); the rest of the table was not read.",
        STRUCTURE_HELP,
    ),
    t(
        "section-beyond-eof",
        "Section data beyond the end of the file",
        "A section's raw data runs past the end of the file.",
        STRUCTURE_HELP,
    ),
    t("section-virtual-size-huge", "Huge section virtual size", "A section's VirtualSize is over 256 MiB.", ODD_HELP),
    t(
        "section-misaligned",
        "Section misaligned",
        "A section's PointerToRawData is not a multiple of FileAlignment.",
        ODD_HELP,
    ),
    t(
        "section-entropy-skipped",
        "Section entropy not computed",
        "Sections overlap so much that reading them all would cost many times the file's size; their entropy was not computed.",
        LIMIT_HELP,
    ),
    // PE directories.
    t(
        "import-directory-invalid",
        "Import directory invalid",
        "The import directory lies outside the file or has too many errors to read.",
        STRUCTURE_HELP,
    ),
    t(
        "import-entries-invalid",
        "Import entries invalid",
        "A library's import entries cannot be read; its imports were skipped.",
        STRUCTURE_HELP,
    ),
    t(
        "import-table-too-large",
        "Import table too large",
        "The file has more import thunks than filerep (and pefile) read; the rest of the import tables was not read.",
        LIMIT_HELP,
    ),
    t(
        "import-table-bogus",
        "Crafted import table",
        "Import thunk tables were dropped as crafted: repeated or scattered name addresses, or impossible ordinals.",
        STRUCTURE_HELP,
    ),
    t(
        "delay-import-directory-invalid",
        "Delay-import directory invalid",
        "The delay-load import directory lies outside the file.",
        STRUCTURE_HELP,
    ),
    t(
        "export-directory-invalid",
        "Export directory invalid",
        "The export directory lies outside the file or cannot be parsed; exports were not read.",
        STRUCTURE_HELP,
    ),
    t(
        "export-table-too-large",
        "Export table too large",
        "The export directory claims more functions or names than filerep reads; exports were not read.",
        LIMIT_HELP,
    ),
    t(
        "resource-directory-invalid",
        "Resource directory invalid",
        "The resource directory, or a directory inside it, lies outside the file or cannot be parsed.",
        STRUCTURE_HELP,
    ),
    t(
        "resource-directory-cycle",
        "Resource directory loop",
        "The resource tree loops back to a directory it already visited; resources were not read.",
        STRUCTURE_HELP,
    ),
    t(
        "resource-directory-too-deep",
        "Resource directories nested too deep",
        "Resource directories nest deeper than the format's three levels allow filerep to follow; resources were not read.",
        STRUCTURE_HELP,
    ),
    t(
        "resource-directory-too-large",
        "Too many resources",
        "The resource tree has more entries than filerep reads; the rest were not read.",
        LIMIT_HELP,
    ),
    t("debug-directory-invalid", "Debug directory invalid", "The debug directory cannot be parsed.", ODD_HELP),
    t(
        "debug-directory-too-large",
        "Debug directory too large",
        "The debug directory claims an implausible number of entries; it was not read.",
        STRUCTURE_HELP,
    ),
    t(
        "rich-header-malformed",
        "Rich header malformed",
        "The Rich header (the MSVC linker's build stamp) is not in Microsoft's format: it was damaged or forged.",
        ODD_HELP,
    ),
    t(
        "dotnet-metadata-invalid",
        ".NET metadata invalid",
        "The .NET CLR header or metadata streams cannot be fully read.",
        ODD_HELP,
    ),
    t(
        "load-config-invalid",
        "Load configuration directory invalid",
        "The load configuration directory lies outside the file data; its /GS cookie, SafeSEH and CFG fields were not read.",
        STRUCTURE_HELP,
    ),
    t(
        "load-config-truncated",
        "Load configuration truncated",
        "The load configuration says it is larger than the bytes present in the file; the fields past the end were not read.",
        STRUCTURE_HELP,
    ),
    t(
        "load-config-size-unusual",
        "Unusual load configuration size",
        "The load configuration's Size field is a value no Windows toolchain writes.",
        ODD_HELP,
    ),
    // The Authenticode certificate table.
    t(
        "certificate-table-beyond-eof",
        "Certificate table beyond the end of the file",
        "The certificate table runs past the end of the file: the file was cut or the signature damaged.",
        STRUCTURE_HELP,
    ),
    t(
        "certificate-table-malformed",
        "Certificate table malformed",
        "A WIN_CERTIFICATE entry is cut short or has a length that does not fit the table.",
        STRUCTURE_HELP,
    ),
    t(
        "certificate-table-too-many-entries",
        "Too many certificate entries",
        "The certificate table has more than 64 WIN_CERTIFICATE entries; the rest were not read.",
        STRUCTURE_HELP,
    ),
    t(
        "data-after-certificate-table",
        "Data after the certificate table",
        "Bytes follow the certificate table, which should end the file: data appended after signing.",
        STRUCTURE_HELP,
    ),
    // ELF.
    t(
        "elf-header-truncated",
        "ELF header truncated",
        "The ELF header is cut short; only the identification, type and machine were read.",
        STRUCTURE_HELP,
    ),
    t(
        "elf-header-invalid",
        "ELF header invalid",
        "The ELF header cannot be parsed; only the identification, type and machine were read.",
        STRUCTURE_HELP,
    ),
    t(
        "elf-program-headers-invalid",
        "ELF program headers invalid",
        "The program header table lies outside the file, is cut short or is over the limit filerep reads.",
        STRUCTURE_HELP,
    ),
    t(
        "elf-program-header-size-unusual",
        "Unusual ELF program header size",
        "e_phentsize is not the standard size for the ELF class; entries were read at the standard size.",
        ODD_HELP,
    ),
    t(
        "elf-section-headers-invalid",
        "ELF section headers invalid",
        "The section header table lies outside the file, is cut short or is over the limit filerep reads.",
        STRUCTURE_HELP,
    ),
    t(
        "elf-section-header-size-unusual",
        "Unusual ELF section header size",
        "e_shentsize is not the standard size for the ELF class; entries were read at the standard size.",
        ODD_HELP,
    ),
    t(
        "elf-section-names-missing",
        "ELF section names missing",
        "The section-name string table index names no section, so sections are unnamed.",
        ODD_HELP,
    ),
    t(
        "elf-section-names-invalid",
        "ELF section names too large",
        "The section names add up to more than filerep reads; later sections are unnamed.",
        LIMIT_HELP,
    ),
    t(
        "elf-section-beyond-eof",
        "ELF section beyond the end of the file",
        "Sections extend past the end of the file.",
        STRUCTURE_HELP,
    ),
    t(
        "elf-section-entropy-skipped",
        "ELF section entropy not computed",
        "Sections overlap far more than a real file's; some were not scanned for entropy.",
        LIMIT_HELP,
    ),
    t(
        "elf-interpreter-invalid",
        "ELF interpreter invalid",
        "PT_INTERP holds no string inside the file.",
        STRUCTURE_HELP,
    ),
    t(
        "elf-dynamic-invalid",
        "ELF dynamic section invalid",
        "PT_DYNAMIC extends past the end of the file or has more entries than filerep reads.",
        LIMIT_HELP,
    ),
    t(
        "elf-dynamic-strtab-invalid",
        "ELF dynamic string table missing",
        "The dynamic string table cannot be located; library names and paths were not read.",
        LIMIT_HELP,
    ),
    t(
        "elf-dynamic-string-invalid",
        "ELF dynamic strings invalid",
        "Dynamic entries point outside the dynamic string table.",
        ODD_HELP,
    ),
    t(
        "elf-too-many-needed",
        "Too many ELF needed libraries",
        "The file has more DT_NEEDED entries than filerep reports.",
        LIMIT_HELP,
    ),
    t(
        "elf-symbol-table-invalid",
        "ELF symbol table invalid",
        "A symbol table cannot be read or is over the limit filerep reads; canary and FORTIFY detection may be incomplete.",
        LIMIT_HELP,
    ),
    t(
        "elf-too-many-fortified-functions",
        "Too many fortified functions",
        "More distinct __*_chk functions than filerep lists; only the first are listed.",
        ODD_HELP,
    ),
    // Mach-O.
    t(
        "macho-fat-header-truncated",
        "Fat header truncated",
        "The fat (universal) Mach-O header is cut short.",
        STRUCTURE_HELP,
    ),
    t("macho-fat-empty", "Empty fat file", "The fat (universal) header lists no architecture.", ODD_HELP),
    t(
        "macho-too-many-slices",
        "Too many Mach-O slices",
        "The fat header lists more architectures than filerep reads.",
        LIMIT_HELP,
    ),
    t(
        "macho-slice-out-of-bounds",
        "Mach-O slice outside the file",
        "An architecture slice lies partly or wholly outside the file.",
        STRUCTURE_HELP,
    ),
    t(
        "macho-slice-cpu-mismatch",
        "Mach-O slice CPU mismatch",
        "The fat header and the slice's own header disagree on the CPU type.",
        STRUCTURE_HELP,
    ),
    t(
        "macho-slice-not-macho",
        "Fat slice is not Mach-O",
        "An architecture slice does not start with a Mach-O header (for example a static library archive); it was not analysed.",
        LIMIT_HELP,
    ),
    t(
        "macho-slices-overlap",
        "Mach-O slices overlap",
        "Architecture slices of the fat file overlap each other.",
        STRUCTURE_HELP,
    ),
    t(
        "macho-header-truncated",
        "Mach-O header truncated",
        "The Mach-O header is cut short; its load commands were not read.",
        STRUCTURE_HELP,
    ),
    t(
        "macho-load-commands-truncated",
        "Mach-O load commands truncated",
        "The load commands extend past the end of the data or past sizeofcmds.",
        STRUCTURE_HELP,
    ),
    t(
        "macho-load-command-invalid",
        "Mach-O load command invalid",
        "A load command has an impossible cmdsize; the rest were not read.",
        STRUCTURE_HELP,
    ),
    t(
        "macho-too-many-load-commands",
        "Too many Mach-O load commands",
        "The header declares more load commands than filerep reads.",
        LIMIT_HELP,
    ),
    t(
        "macho-too-many-dylibs",
        "Too many Mach-O dylibs",
        "The file names more dylibs than filerep reports.",
        LIMIT_HELP,
    ),
    t(
        "macho-dylib-name-invalid",
        "Mach-O dylib name invalid",
        "A dylib load command's name lies outside the command.",
        STRUCTURE_HELP,
    ),
];

/// Texts for ids that nobody described (never a panic: a new id still gets a usable rule).
const GENERIC_HELP: &str = "Run `filerep check --json FILE` on the artifact to see the full report behind this \
finding, including the data source and the facts it rests on.";

/// The id in PascalCase (`known-malicious` → `KnownMalicious`, `pe-aslr` → `PeAslr`); characters other than
/// ASCII letters and digits separate words.
pub fn pascal_case(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for word in id.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() { "Unnamed".to_string() } else { out }
}

fn table_text(id: &str) -> Option<&'static Text> {
    VERDICT_TEXTS.iter().chain(ANOMALY_TEXTS).find(|t| t.id == id)
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Pe => "PE",
        Format::Elf => "ELF",
        Format::Macho => "Mach-O",
        Format::Empty | Format::Unknown => "executable",
    }
}

/// True when `id` has a text of its own (written here, or a hardening check's from `crate::hardening`), not
/// the generic one.
pub fn has_specific_text(id: &str) -> bool {
    table_text(id).is_some() || crate::hardening::info(id).is_some()
}

/// The text for a rule id; an unknown id gets a generic text naming it.
pub fn describe(id: &str) -> RuleText {
    let name = pascal_case(id);
    if let Some(t) = table_text(id) {
        let help = if t.then.is_empty() { t.help.to_string() } else { format!("{} {}", t.help, t.then) };
        return RuleText { id: id.to_string(), name, short: t.short.to_string(), full: t.full.to_string(), help };
    }
    if let Some(check) = crate::hardening::info(id) {
        let format = format_name(check.format);
        return RuleText {
            id: id.to_string(),
            name,
            short: format!("{format} hardening: {}", check.title),
            full: format!(
                "{} is missing from this {format} file (hardening check `{id}`), and the scan policy \
                 (filerep.toml, --require or --warn) enables or requires the check.",
                check.title
            ),
            help: check.help.to_string(),
        };
    }
    if is_hardening_like(id) {
        return RuleText {
            id: id.to_string(),
            name,
            short: format!("Hardening check {id}"),
            full: format!(
                "The hardening check `{id}` fails: an exploit mitigation the scan policy enables or requires is \
                 missing from the file."
            ),
            help: format!(
                "Rebuild the artifact with the compiler and linker options that enable this mitigation, or change \
                 the policy if it does not apply to this file. {GENERIC_HELP}"
            ),
        };
    }
    RuleText {
        id: id.to_string(),
        name,
        short: format!("filerep finding {id}"),
        full: format!("filerep reported `{id}` about this file."),
        help: GENERIC_HELP.to_string(),
    }
}

/// Hardening ids are prefixed by their format (`pe-aslr`, `elf-relro`, `macho-pie`).
fn is_hardening_like(id: &str) -> bool {
    ["pe-", "elf-", "macho-"].iter().any(|p| id.starts_with(p))
}

/// SARIF `properties.tags` for a rule: `security`, then `hardening` for a hardening check, `signature` for
/// the Authenticode and signer reasons, `reputation` for the others.
pub fn tags(id: &str, kind: FindingKind) -> Vec<&'static str> {
    let family = match kind {
        FindingKind::Hardening => "hardening",
        FindingKind::Verdict if id.starts_with("signature-") || id.starts_with("signer-") => "signature",
        FindingKind::Verdict if id == "masquerade-signer" => "signature",
        FindingKind::Verdict => "reputation",
    };
    vec!["security", family]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Every `.rs` file under `dir`, recursively.
    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("the source tree is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// A stable kebab-case id: lower-case ASCII letters, digits and dashes, starting with a letter.
    fn is_id(s: &str) -> bool {
        s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }

    /// The value of `const NAME: &str = "value";` in `src`.
    fn const_value<'a>(src: &'a str, name: &str) -> Option<&'a str> {
        let at = src.find(&format!("const {name}: &str = \""))? + name.len() + 16;
        src[at..].split('"').next()
    }

    /// The string literal (or the `&str` constant) that starts `rest`, after whitespace.
    fn leading_id<'a>(src: &'a str, rest: &'a str) -> Option<&'a str> {
        let rest = rest.trim_start();
        if let Some(lit) = rest.strip_prefix('"') {
            return lit.split('"').next();
        }
        let ident: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect();
        let last = ident.rsplit("::").next()?;
        if last.chars().all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()) && !last.is_empty() {
            const_value(src, last)
        } else {
            None
        }
    }

    /// Reason and anomaly ids the code can emit, read from the source: the first argument of every
    /// `Reason::file(`, `Reason::data(`, `Anomaly::new(` and `Anomaly::limiting(` call (a literal or a `&str`
    /// constant of the same file), and every literal directly followed by `, Level::` in the verdict (the
    /// signature statuses are a table of `("id", Level::…)`). Test modules are left out.
    fn ids_in_code() -> BTreeSet<String> {
        let mut files = Vec::new();
        rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
        let mut ids = BTreeSet::new();
        for file in files {
            if file.components().any(|c| c.as_os_str() == "scan") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let src = text.split("#[cfg(test)]").next().unwrap();
            for call in ["Reason::file(", "Reason::data(", "Anomaly::new(", "Anomaly::limiting("] {
                for (at, _) in src.match_indices(call) {
                    if let Some(id) = leading_id(src, &src[at + call.len()..]) {
                        if is_id(id) {
                            ids.insert(id.to_string());
                        }
                    }
                }
            }
            if file.ends_with("verdict.rs") {
                for (at, _) in src.match_indices("\", Level::") {
                    let start = src[..at].rfind('"').unwrap() + 1;
                    let id = &src[start..at];
                    if is_id(id) {
                        ids.insert(id.to_string());
                    }
                }
            }
        }
        ids
    }

    /// The ids a finding can carry, from the code where possible.
    fn all_ids() -> BTreeSet<String> {
        let mut ids = ids_in_code();
        use crate::masquerade::*;
        for id in [ID_ORIGINAL_NAME, ID_COMPANY, ID_MISSING_VERSION_INFO, ID_SIGNER, ID_LOCATION] {
            ids.insert(id.to_string());
        }
        for c in crate::hardening::CHECKS {
            ids.insert(c.id.to_string());
        }
        // The finding that stands for a whole verdict (src/scan/mod.rs).
        ids.insert(crate::scan::VERDICT_RULE.to_string());
        ids
    }

    #[test]
    fn the_extraction_from_the_code_finds_what_it_should() {
        let ids = ids_in_code();
        // One of each kind of call site, so that a change of style in the code cannot empty the list unseen.
        for id in [
            "known-malicious",   // Reason::data( on its own line
            "imphash-match",     // Reason::data( inside a push
            "packed",            // Reason::file( with a one-word id
            "signature-invalid", // the ("id", Level::…) table
            "signature-weak-digest",
            "malformed-header",
            "parser-failure",          // Anomaly::limiting(
            "dos-header-truncated",    // Anomaly::new(
            "dotnet-metadata-invalid", // a const ANOMALY_ID
            "size-cap",                // src/pipeline.rs
        ] {
            assert!(ids.contains(id), "{id} was not found in the code; found {ids:?}");
        }
        assert!(ids.len() > 60, "{ids:?}");
    }

    #[test]
    fn every_id_the_code_can_emit_has_its_own_text() {
        let missing: Vec<String> = all_ids().into_iter().filter(|id| !has_specific_text(id)).collect();
        assert!(missing.is_empty(), "ids without a specific text in src/scan/rules.rs: {missing:?}");
    }

    #[test]
    fn texts_are_complete_and_unique() {
        let mut seen = BTreeSet::new();
        for t in VERDICT_TEXTS.iter().chain(ANOMALY_TEXTS) {
            assert!(seen.insert(t.id), "{} is described twice", t.id);
            assert!(is_id(t.id), "{}", t.id);
            let r = describe(t.id);
            for (what, s) in [("short", &r.short), ("full", &r.full), ("help", &r.help)] {
                assert!(!s.trim().is_empty(), "{}: empty {what}", t.id);
                assert!(!s.contains("  "), "{}: double space in {what}: {s:?}", t.id);
                assert!(!s.contains('\n'), "{}: line break in {what}", t.id);
            }
            assert!(!r.short.ends_with('.'), "{}: a short description is a title", t.id);
            assert!(r.full.ends_with('.') && r.help.ends_with('.'), "{}", t.id);
        }
        // Hardening checks keep their own texts: no id is both a check and a reason.
        for c in crate::hardening::CHECKS {
            assert!(table_text(c.id).is_none(), "{} is both a hardening check and a reason id", c.id);
            let r = describe(c.id);
            assert!(r.short.contains(c.title) && r.help == c.help, "{r:?}");
        }
    }

    #[test]
    fn names_and_fallbacks() {
        assert_eq!(pascal_case("known-malicious"), "KnownMalicious");
        assert_eq!(pascal_case("pe-aslr"), "PeAslr");
        assert_eq!(pascal_case("elf-relro"), "ElfRelro");
        assert_eq!(pascal_case("--"), "Unnamed");
        assert_eq!(pascal_case("x_y z"), "XYZ");

        let k = describe("known-malicious");
        assert_eq!(k.name, "KnownMalicious");
        assert!(k.help.contains("filerep.toml"), "false-positive advice is appended: {}", k.help);

        // Unknown ids never panic and say what they are.
        for id in ["", "no-such-rule", "ünïcode \"id\"\n", "pe-some-future-check"] {
            let r = describe(id);
            assert_eq!(r.id, id);
            assert!(!r.short.is_empty() && !r.full.is_empty() && !r.help.is_empty());
            assert!(!has_specific_text(id));
        }
        assert!(describe("pe-some-future-check").short.starts_with("Hardening check"));
        assert!(describe("no-such-rule").short.contains("no-such-rule"));

        assert_eq!(tags("known-malicious", FindingKind::Verdict), ["security", "reputation"]);
        assert_eq!(tags("signature-invalid", FindingKind::Verdict), ["security", "signature"]);
        assert_eq!(tags("pe-aslr", FindingKind::Hardening), ["security", "hardening"]);
    }
}
