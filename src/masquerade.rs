//! Masquerading: a file named like a Windows system binary whose original name, company, signer or location disagree
//! with what is known of that binary.
//!
//! This module owns the knowledge and the rules, not the verdict. The knowledge is `data/windows-binaries.tsv`,
//! embedded in the binary with `include_str!` and parsed lazily, once, into a sorted table: 1,010 file names seen under
//! `C:\Windows\` in the xcyclopedia inventory (github.com/strontic/xcyclopedia, MIT License, © 2020 strontic; see
//! `data/README.md`), each with its expected directories, signer CNs, VERSIONINFO OriginalFilename and CompanyName
//! values, first description and sample count (`scripts/gen-masquerade-table.py` makes the table). The rules are
//! [`check`]: pure string comparisons of what a file claims ([`Claims`]) with that table, giving [`Finding`]s with
//! stable kebab-case ids. What a finding weighs (suspicious, malicious, informative) is the verdict's business, not
//! this module's.
//!
//! # Which names are checked
//!
//! A file is checked only when its name is in the table **and** the entry is a Microsoft binary that is not generic and
//! has enough samples:
//!
//! - *Microsoft*: every CompanyName of the entry is Microsoft's (after the normalisation of the company rule below, its
//!   first word is `microsoft`). Third-party programs the inventory happened to find under `C:\Windows` (Intel, NVIDIA,
//!   Synaptics, Canon, Lexmark drivers; Python's `py.exe`; `curl.exe`, whose company is the curl project; Flash;
//!   Sysmon) and entries with no CompanyName at all (the OpenSSH client, `vulkaninfo.exe`) are not "Windows system
//!   binaries" and are never flagged: their names are the vendor's to reuse, and the data about them is a single
//!   machine's.
//! - *not generic*: [`GENERIC_NAMES`] lists Microsoft names that unrelated software ships under the same name, so that
//!   a non-Microsoft file with that name is normal, not a masquerade. The list comes from the xcyclopedia inventory
//!   itself (`find.exe`, `sort.exe`, `ssh.exe`… in Git for Windows' `usr\bin`, `help.exe` and `print.exe` among GIMP's
//!   plug-ins, `klist.exe` in every Java JDK, `setup.exe` in the Chrome, Edge and Adobe installers), from well-known
//!   ports (Git for Windows / MSYS2 / Cygwin coreutils and friends: `bash.exe`, `tar.exe`, `expand.exe`, `timeout.exe`,
//!   `whoami.exe`, `hostname.exe`, `reset.exe`; ImageMagick's `convert.exe`; curl) and plain English words any program
//!   may be called (`query.exe`, `change.exe`, `label.exe`, `replace.exe`, `recover.exe`, `write.exe`, `user.exe`,
//!   `audit.exe`, `locator.exe`, `spectrum.exe`). Names such as `install.exe`, `update.exe`, `uninstall.exe` or
//!   `launcher.exe` are not in the table at all. The classic masquerade targets (`svchost.exe`, `lsass.exe`,
//!   `csrss.exe`, `explorer.exe`, `notepad.exe`, `calc.exe`…) are deliberately *not* generic, even though a few
//!   third-party programs reuse them (the inventory has a Spybot `explorer.exe`): a finding there is exactly the point.
//! - *enough samples*: at least [`MIN_SAMPLES`] inventory rows; what one machine had once is too thin to call another
//!   file a fake.
//!
//! Within a checked name, a rule is skipped when the table has nothing for its column (no original names, no signer
//! CNs, no directories), so an empty column never produces a finding.
//!
//! # The rules
//!
//! - `masquerade-original-name`: the claimed OriginalFilename is not one of the entry's. Both sides are trimmed,
//!   unquoted, lower-cased and lose a trailing `.mui` (the Windows version API reports `smss.exe.mui`, the PE's own
//!   VERSIONINFO `smss.exe`); two names that differ only in their last extension (`cleanmgr.dll` for `cleanmgr.exe`)
//!   also agree, since what matters is the program's name, not its build artefact's.
//! - `masquerade-company`: the claimed CompanyName is not one of the entry's. Companies are compared after
//!   lower-casing, turning punctuation into spaces and dropping trailing legal-form words (`corporation`, `corp`,
//!   `inc`, `incorporated`, `ltd`, `llc`, `limited`, `co`, `gmbh`), so "Microsoft Corporation", "Microsoft Corp." and
//!   "MICROSOFT" agree; any Microsoft company form seen anywhere in the table ("Microsoft Windows Operating System" on
//!   older builds) is accepted for every Microsoft binary.
//! - `masquerade-missing-version-info`: the file has neither an OriginalFilename nor a CompanyName, while the entry has
//!   original names. Two names whose genuine copies were seen without VERSIONINFO (`appvstreamingux.exe`,
//!   `syncappvpublishingserver.exe`; counted in the raw inventory) are exempt.
//! - `masquerade-signer`: the claimed signer CN (or the CN of a full subject DN) is neither one of the entry's signer
//!   CNs nor one of the Microsoft signing CNs the table knows (`Microsoft Windows`, `Microsoft Windows Publisher`,
//!   `Microsoft Corporation`, …): Microsoft re-signs the same binary under different CNs from build to build
//!   (`svchost.exe` under both of the first two), so the rule catches a Microsoft binary signed by *someone else*.
//!   Whether the signature is valid is not this module's question. An unsigned file (catalog signing is normal for
//!   Windows files) gives no claim and no finding.
//! - `masquerade-location`: the path is recognisably a Windows path and its directory is none of the entry's.
//!   Recognisable means: it has a path component `windows` (case-insensitively: `C:\Windows\Temp\x.exe`, a mounted
//!   image's `/mnt/c/Windows/Temp/x.exe`), in which case the components after it are compared with the expected
//!   `%windir%\…` directories; or it is a drive-absolute path (`C:\Users\Public\x.exe`, `D:/x.exe`), which is then
//!   outside the Windows tree. Any other path (`/home/u/Downloads/svchost.exe`, `/tmp/x.exe`, a relative path, a UNC
//!   share) says nothing: a file analysed on Linux or from a share is usually a copy, and its location is the
//!   analyst's, not the attacker's. Leniencies, since a genuine binary turns up in more places than one inventory saw:
//!   `system32`, `syswow64`, `sysnative` and ARM64's `sysarm32` and `sychpe32` are interchangeable; `%windir%\winsxs`,
//!   `servicing`, `softwaredistribution`, `systemtemp` and `uus` (component store and update staging) are always
//!   allowed, as are `Program Files`, `Program Files (x86)`, the `$WINDOWS.~BT`, `$WINDOWS.~WS` and `$WinREAgent`
//!   upgrade folders at a drive's root and the per-user app-alias folder `AppData\Local\Microsoft\WindowsApps` (Store
//!   apps, SDKs and Visual Studio carry their own copies of Microsoft binaries); and [`LOCATION_ANYWHERE`] names
//!   (redistributables and self-extracting tools that run from wherever they were unpacked) are never flagged for
//!   location.
//!
//! Every message is one line, names the file, what it claims and what the genuine binary has, and ends with
//! "(xcyclopedia)". Claimed strings are quoted as they are, except that control characters are escaped and very long
//! values are cut.

use std::sync::OnceLock;

/// The embedded table (see the module documentation and `data/README.md`).
const TABLE: &str = include_str!("../data/windows-binaries.tsv");

/// Fewest inventory rows a name needs before its entry is trusted to flag anything.
pub const MIN_SAMPLES: u32 = 2;

/// Id of the finding "the OriginalFilename is not the genuine binary's".
pub const ID_ORIGINAL_NAME: &str = "masquerade-original-name";
/// Id of the finding "the CompanyName is not the genuine binary's".
pub const ID_COMPANY: &str = "masquerade-company";
/// Id of the finding "a system binary's name with no VERSIONINFO at all".
pub const ID_MISSING_VERSION_INFO: &str = "masquerade-missing-version-info";
/// Id of the finding "signed by someone other than the genuine binary's signers".
pub const ID_SIGNER: &str = "masquerade-signer";
/// Id of the finding "in a directory the genuine binary does not live in".
pub const ID_LOCATION: &str = "masquerade-location";

/// Microsoft file names that unrelated software also uses; never flagged (sorted, lower-case). See the module
/// documentation for where each comes from.
pub const GENERIC_NAMES: &[&str] = &[
    "audit.exe",
    "bash.exe",
    "change.exe",
    "convert.exe",
    "curl.exe",
    "expand.exe",
    "find.exe",
    "help.exe",
    "hostname.exe",
    "klist.exe",
    "label.exe",
    "locator.exe",
    "print.exe",
    "query.exe",
    "recover.exe",
    "replace.exe",
    "reset.exe",
    "scp.exe",
    "setup.exe",
    "sftp.exe",
    "sort.exe",
    "spectrum.exe",
    "ssh-add.exe",
    "ssh-agent.exe",
    "ssh-keygen.exe",
    "ssh-keyscan.exe",
    "ssh.exe",
    "tar.exe",
    "timeout.exe",
    "user.exe",
    "whoami.exe",
    "write.exe",
];

/// Microsoft binaries that legitimately run from wherever they were downloaded or unpacked (temporary folders,
/// vendors' driver packages); never flagged for location (sorted, lower-case).
pub const LOCATION_ANYWHERE: &[&str] =
    &["dismhost.exe", "dpinst.exe", "mpsigstub.exe", "mrt-kb890830.exe", "mrt.exe", "onedrivesetup.exe"];

/// Names whose genuine copies were seen without VERSIONINFO in the raw inventory (sorted, lower-case).
const VERSION_INFO_SOMETIMES_MISSING: &[&str] = &["appvstreamingux.exe", "syncappvpublishingserver.exe"];

/// Windows directories where any Microsoft binary may legitimately be (component store, update staging), as
/// path components after `windows`; a trailing `*` is one or more components.
const ALWAYS_ALLOWED_UNDER_WINDIR: &[&[&str]] =
    &[&["winsxs", "*"], &["servicing", "*"], &["softwaredistribution", "*"], &["systemtemp", "*"], &["uus", "*"]];

/// The system directories of the native, WOW64 (x86 on x64, x86 and ARM32 on ARM64) and redirected views:
/// interchangeable for the location rule.
const SYSTEM_DIRS: &[&str] = &["sychpe32", "sysarm32", "sysnative", "system32", "syswow64"];

/// First directories of a drive under which Microsoft binaries ship with other products or upgrades.
const ALLOWED_DRIVE_ROOTS: &[&str] =
    &["program files", "program files (x86)", "programfiles", "$windows.~bt", "$windows.~ws", "$winreagent"];

/// A directory sequence that, wherever it occurs, holds legitimate copies or aliases (Store app aliases).
const ALLOWED_ANYWHERE_DIRS: &[&str] = &["appdata", "local", "microsoft", "windowsapps"];

/// Legal-form words dropped from the end of a company name before comparing.
const LEGAL_FORMS: &[&str] = &["co", "corp", "corporation", "gmbh", "inc", "incorporated", "limited", "llc", "ltd"];

/// What xcyclopedia knows of one Windows file name (one line of the embedded table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownBinary {
    /// The file name, lower-case (`svchost.exe`).
    pub name: &'static str,
    /// Directories it was found in, `%windir%\…`, lower-case, most frequent first; a trailing `\*` is one or more
    /// path components (`%windir%\system32\driverstore\filerepository\*`).
    pub expected_dirs: Vec<&'static str>,
    /// Signer subject CNs (`Microsoft Windows`), most frequent first; empty when no sample had an embedded
    /// signature (or, for three third-party names, when the aggregate had cut the CN).
    pub signers: Vec<&'static str>,
    /// VERSIONINFO OriginalFilename values, lower-case, without a trailing `.mui` (`svchost.exe`).
    pub original_names: Vec<&'static str>,
    /// CompanyName values as found (`Microsoft Corporation`).
    pub companies: Vec<&'static str>,
    /// The most frequent FileDescription.
    pub description: Option<&'static str>,
    /// How many inventory rows the name had.
    pub samples: u32,
}

impl KnownBinary {
    /// True when every company of the entry is Microsoft's (and there is at least one).
    pub fn is_microsoft(&self) -> bool {
        !self.companies.is_empty() && self.companies.iter().all(|c| is_microsoft_company(&normalise_company(c)))
    }

    /// True when the name is in [`GENERIC_NAMES`].
    pub fn is_generic(&self) -> bool {
        GENERIC_NAMES.binary_search(&self.name).is_ok()
    }

    /// True when [`check`] applies its rules to this name: a Microsoft binary, not generic, with at least
    /// [`MIN_SAMPLES`] samples.
    pub fn is_checked(&self) -> bool {
        self.is_microsoft() && !self.is_generic() && self.samples >= MIN_SAMPLES
    }
}

/// What a file says about itself, as far as masquerading goes. Absent or blank values are "no claim".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Claims<'a> {
    /// The file's name; only its last path component is used (`svchost.exe`).
    pub file_name: &'a str,
    /// Where the file is, as given (`C:\Windows\System32\svchost.exe`); see the location rule.
    pub path: Option<&'a str>,
    /// VERSIONINFO OriginalFilename.
    pub original_name: Option<&'a str>,
    /// VERSIONINFO CompanyName.
    pub company: Option<&'a str>,
    /// The embedded signature's signer: its subject CN (`Microsoft Windows`) or whole subject DN
    /// (`CN=Microsoft Windows, O=Microsoft Corporation, …`).
    pub signer: Option<&'a str>,
}

/// One disagreement between a file's claims and the genuine binary of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable kebab-case id: one of the `ID_*` constants (`masquerade-original-name`, …).
    pub id: &'static str,
    /// One line naming what the file claims and what was expected, ending with "(xcyclopedia)".
    pub message: String,
}

/// The parsed table and what is derived from it once.
struct Table {
    /// Sorted by name.
    binaries: Vec<KnownBinary>,
    /// Normalised company forms of Microsoft seen anywhere in the table (`microsoft`,
    /// `microsoft windows operating system`).
    microsoft_companies: Vec<String>,
    /// Signer CNs seen anywhere in the table that start with "Microsoft ", lower-case.
    microsoft_signers: Vec<String>,
}

fn table() -> &'static Table {
    static TABLE_CELL: OnceLock<Table> = OnceLock::new();
    TABLE_CELL.get_or_init(|| {
        // The embedded table is checked by the tests; were it ever malformed, detection would be off, not fatal.
        let binaries = parse(TABLE).unwrap_or_default();
        let mut microsoft_companies: Vec<String> = binaries
            .iter()
            .flat_map(|b| b.companies.iter().map(|c| normalise_company(c)))
            .filter(|c| is_microsoft_company(c))
            .collect();
        microsoft_companies.sort();
        microsoft_companies.dedup();
        let mut microsoft_signers: Vec<String> = binaries
            .iter()
            .flat_map(|b| b.signers.iter())
            .filter(|s| s.starts_with("Microsoft "))
            .map(|s| s.to_lowercase())
            .collect();
        microsoft_signers.sort();
        microsoft_signers.dedup();
        Table { binaries, microsoft_companies, microsoft_signers }
    })
}

/// Parse the table text: `#` lines are comments; every other non-empty line has seven TAB-separated fields.
/// The result is sorted by name.
fn parse(text: &'static str) -> Result<Vec<KnownBinary>, String> {
    fn list(field: &'static str) -> Vec<&'static str> {
        field.split(';').map(str::trim).filter(|s| !s.is_empty()).collect()
    }
    let mut binaries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&'static str> = line.split('\t').collect();
        let [name, dirs, signers, originals, companies, description, samples] = fields[..] else {
            return Err(format!("line {}: {} fields, expected 7", index + 1, fields.len()));
        };
        if name.is_empty() || name != name.to_lowercase() {
            return Err(format!("line {}: bad name {name:?}", index + 1));
        }
        let samples = samples.parse().map_err(|e| format!("line {}: samples {samples:?}: {e}", index + 1))?;
        binaries.push(KnownBinary {
            name,
            expected_dirs: list(dirs),
            signers: list(signers),
            original_names: list(originals),
            companies: list(companies),
            description: Some(description.trim()).filter(|d| !d.is_empty()),
            samples,
        });
    }
    binaries.sort_by(|a, b| a.name.cmp(b.name));
    if let Some(pair) = binaries.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(format!("duplicate name {}", pair[0].name));
    }
    Ok(binaries)
}

/// Every entry of the embedded table, sorted by name.
pub fn all() -> &'static [KnownBinary] {
    &table().binaries
}

/// What is known of a file name: case-insensitive, on the last component of a `/` or `\` path.
pub fn known(file_name: &str) -> Option<&'static KnownBinary> {
    let name = base_name(file_name).trim().to_lowercase();
    // Most files are not named like a Windows binary: one substring search of the raw table tells, without
    // parsing it (which costs a noticeable share of a `check` of a small file).
    if name.is_empty() || name.contains(['\t', '\n']) || !TABLE.contains(&format!("\n{name}\t")) {
        return None;
    }
    let binaries = &table().binaries;
    binaries.binary_search_by(|b| b.name.cmp(name.as_str())).ok().map(|i| &binaries[i])
}

/// Compare a file's claims with the genuine binary of the same name; see the module documentation for the
/// rules. Unknown and unchecked names give no findings. Findings come in a fixed order: original name,
/// company, missing version info, signer, location.
pub fn check(claims: &Claims) -> Vec<Finding> {
    let Some(known) = known(claims.file_name) else { return Vec::new() };
    if !known.is_checked() {
        return Vec::new();
    }
    let table = table();
    let named = display(base_name(claims.file_name).trim());
    let genuine = known.name;
    let mut findings = Vec::new();

    let original = claim(claims.original_name);
    let company = claim(claims.company);

    if let Some(original) = original
        .filter(|o| !known.original_names.is_empty() && !known.original_names.iter().any(|k| same_original_name(o, k)))
    {
        findings.push(Finding {
            id: ID_ORIGINAL_NAME,
            message: format!(
                "named {named} but its original name is {}; genuine {genuine} says {} (xcyclopedia)",
                display(original),
                known.original_names.join(" or ")
            ),
        });
    }

    if let Some(company) = company {
        let norm = normalise_company(company);
        let agrees =
            known.companies.iter().any(|k| normalise_company(k) == norm) || table.microsoft_companies.contains(&norm);
        if !agrees {
            findings.push(Finding {
                id: ID_COMPANY,
                message: format!(
                    "named {named} but its company is {}; genuine {genuine} says {} (xcyclopedia)",
                    display(company),
                    known.companies.join(" or ")
                ),
            });
        }
    }

    if original.is_none()
        && company.is_none()
        && !known.original_names.is_empty()
        && VERSION_INFO_SOMETIMES_MISSING.binary_search(&genuine).is_err()
    {
        findings.push(Finding {
            id: ID_MISSING_VERSION_INFO,
            message: format!(
                "named {named} but it has no version information (no original name, no company); genuine {genuine} \
                 says {} by {} (xcyclopedia)",
                known.original_names.join(" or "),
                known.companies.join(" or ")
            ),
        });
    }

    let signer = claim(claims.signer).map(signer_cn).filter(|s| !s.is_empty() && !known.signers.is_empty());
    if let Some(signer) = signer {
        let lower = signer.to_lowercase();
        let agrees =
            known.signers.iter().any(|k| k.to_lowercase() == lower) || table.microsoft_signers.contains(&lower);
        if !agrees {
            findings.push(Finding {
                id: ID_SIGNER,
                message: format!(
                    "named {named} but it is signed by {}; genuine {genuine} is signed by {} (xcyclopedia)",
                    display(signer),
                    known.signers.join(" or ")
                ),
            });
        }
    }

    let misplaced = claim(claims.path).filter(|path| {
        !known.expected_dirs.is_empty()
            && LOCATION_ANYWHERE.binary_search(&genuine).is_err()
            && location_disagrees(path, &known.expected_dirs)
    });
    if let Some(path) = misplaced {
        findings.push(Finding {
            id: ID_LOCATION,
            message: format!(
                "named {named} but it is in {}; genuine {genuine} lives in {} (xcyclopedia)",
                display(dir_of(path)),
                known.expected_dirs.join(" or ")
            ),
        });
    }
    findings
}

/// A claimed value, trimmed; `None` when absent or blank.
fn claim(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// The last component of a `/` or `\` path.
fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Everything before the last `/` or `\` (the path itself when there is none).
fn dir_of(path: &str) -> &str {
    match path.rfind(['/', '\\']) {
        Some(0) => &path[..1],
        Some(i) => &path[..i],
        None => path,
    }
}

/// A claimed value fit for a one-line message: control characters escaped, cut after 120 characters.
fn display(value: &str) -> String {
    const MAX: usize = 120;
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// An OriginalFilename for comparison: trimmed, unquoted, lower-case, without a trailing `.mui`.
fn normalise_original_name(name: &str) -> String {
    let mut n = name.trim();
    if n.len() >= 2 && n.starts_with('"') && n.ends_with('"') {
        n = n[1..n.len() - 1].trim();
    }
    let mut n = n.to_lowercase();
    if n.ends_with(".mui") {
        n.truncate(n.len() - ".mui".len());
        n.truncate(n.trim_end().len());
    }
    n
}

/// A name without its last extension (1 to 8 ASCII alphanumerics after the last dot).
fn stem(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty() && (1..=8).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            stem
        }
        _ => name,
    }
}

/// Whether a claimed OriginalFilename agrees with a known (already normalised) one.
fn same_original_name(claimed: &str, known: &str) -> bool {
    let claimed = normalise_original_name(claimed);
    claimed == known || stem(&claimed) == stem(known)
}

/// A company name for comparison: lower-case words of letters and digits, without trailing legal-form words.
fn normalise_company(company: &str) -> String {
    let lower = company.to_lowercase();
    let mut words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    while words.len() > 1 && words.last().is_some_and(|w| LEGAL_FORMS.contains(w)) {
        words.pop();
    }
    words.join(" ")
}

/// Whether a normalised company is Microsoft's.
fn is_microsoft_company(normalised: &str) -> bool {
    normalised.split(' ').next() == Some("microsoft")
}

/// The CN of a subject DN (`CN=Microsoft Windows, O=…` → `Microsoft Windows`, quotes honoured); a value that
/// is not a DN is returned trimmed.
fn signer_cn(signer: &str) -> &str {
    let s = signer.trim();
    let mut rest = s;
    loop {
        let t = rest.trim_start();
        if t.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("cn=")) {
            let value = &t[3..];
            if let Some(quoted) = value.strip_prefix('"') {
                return quoted.split('"').next().unwrap_or(quoted).trim();
            }
            return value.split([',', '+']).next().unwrap_or(value).trim();
        }
        match rest.find(',') {
            Some(i) => rest = &rest[i + 1..],
            None => return s,
        }
    }
}

/// Whether a path is recognisably a Windows location that none of the expected directories allows.
fn location_disagrees(path: &str, expected: &[&str]) -> bool {
    let mut p = path.trim();
    for prefix in [r"\\?\", r"\\.\", "//?/", "//./"] {
        if let Some(rest) = p.strip_prefix(prefix) {
            p = rest;
        }
    }
    let components: Vec<String> =
        p.split(['/', '\\']).filter(|c| !c.is_empty() && *c != ".").map(str::to_lowercase).collect();
    let Some((_, dir)) = components.split_last() else { return false };
    if dir
        .windows(ALLOWED_ANYWHERE_DIRS.len())
        .any(|w| w.iter().map(String::as_str).eq(ALLOWED_ANYWHERE_DIRS.iter().copied()))
    {
        return false;
    }
    let windows_at: Vec<usize> = dir.iter().enumerate().filter(|(_, c)| *c == "windows").map(|(i, _)| i).collect();
    if !windows_at.is_empty() {
        let patterns: Vec<Vec<&str>> = expected.iter().filter_map(|d| windir_pattern(d)).collect();
        let allowed = windows_at.iter().any(|&i| {
            let rest = &dir[i + 1..];
            patterns.iter().any(|p| dir_matches(rest, p))
                || ALWAYS_ALLOWED_UNDER_WINDIR.iter().any(|p| dir_matches(rest, p))
        });
        return !allowed;
    }
    let bytes = p.as_bytes();
    let drive_absolute =
        bytes.len() >= 3 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' && matches!(bytes[2], b'\\' | b'/');
    if drive_absolute {
        // components[0] is the drive ("c:"); dir[1] is the first directory on it, if any.
        return !dir.get(1).is_some_and(|first| ALLOWED_DRIVE_ROOTS.contains(&first.as_str()));
    }
    false
}

/// `%windir%\system32\wbem` → `["system32", "wbem"]`; `None` for a directory not under `%windir%`.
fn windir_pattern(dir: &str) -> Option<Vec<&str>> {
    let mut parts = dir.split(['\\', '/']).filter(|c| !c.is_empty());
    if !parts.next()?.eq_ignore_ascii_case("%windir%") {
        return None;
    }
    Some(parts.collect())
}

/// Whether lower-case directory components (after `windows`) match a pattern: components equal
/// case-insensitively, the [`SYSTEM_DIRS`] interchangeable, a `*` one component, a trailing `*` one or more.
fn dir_matches(dir: &[String], pattern: &[&str]) -> bool {
    fn system_dir(c: &str) -> bool {
        SYSTEM_DIRS.iter().any(|s| s.eq_ignore_ascii_case(c))
    }
    let trailing_star = pattern.last() == Some(&"*");
    let fixed = if trailing_star { &pattern[..pattern.len() - 1] } else { pattern };
    let length_ok = if trailing_star { dir.len() > fixed.len() } else { dir.len() == fixed.len() };
    length_ok
        && fixed
            .iter()
            .zip(dir)
            .all(|(p, d)| *p == "*" || p.eq_ignore_ascii_case(d) || (system_dir(p) && system_dir(d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real xcyclopedia rows under `C:\Windows` (strontic-xcyclopedia, MIT, © 2020 strontic), copied literally:
    /// `file_path | meta_original_filename | meta_company_name | CN of signature_subject` (an empty CN: the file
    /// had no embedded signature). Chosen for variety: the core processes, LOLBins, `.mui` and PE spellings,
    /// quoted and space-padded original names, "Microsoft Corp.", a driver-store package, .NET Framework
    /// folders, and a stride through the rest.
    const SAMPLE_ROWS: &str = r#"
C:\Windows\system32\ApplyTrustOffline.exe | "ApplyTrustOffline.PROGRAM" | Microsoft Corporation | Microsoft Windows
C:\Windows\Microsoft.NET\Framework64\v4.0.30319\aspnet_wp.exe | aspnet_wp.exe | Microsoft Corporation | Microsoft Corporation
C:\WINDOWS\SysWOW64\calc.exe | CALC.EXE | Microsoft Corporation | Microsoft Windows
C:\windows\system32\certutil.exe | CertUtil.exe.mui | Microsoft Corporation |
C:\WINDOWS\system32\cleanmgr.exe | CLEANMGR.DLL.MUI | Microsoft Corporation | Microsoft Windows
C:\Windows\system32\conhost.exe | CONHOST.EXE.MUI | Microsoft Corporation | Microsoft Windows
C:\Windows\Microsoft.NET\Framework\v4.0.30319\csc.exe | csc.exe | Microsoft Corporation | Microsoft Windows
C:\WINDOWS\system32\csrss.exe | CSRSS.Exe.MUI | Microsoft Corporation | Microsoft Windows
C:\WINDOWS\system32\Defrag.exe | Defrag.EXE.MUI | Microsoft Corp. | Microsoft Windows
C:\Windows\system32\Dism\DismHost.exe | DismHost.exe | Microsoft Corporation | Microsoft Windows
C:\Windows\system32\dllhost.exe | dllhost.exe | Microsoft Corporation | Microsoft Windows
C:\WINDOWS\system32\DriverStore\FileRepository\synpd.inf_amd64_4e500223b4e4a9e4\dpinst.exe | DPInst.exe | Microsoft Corporation | Microsoft Windows Hardware Compatibility Publisher
C:\Windows\system32\mavinject.exe | mavinject64.exe | Microsoft Corporation | Microsoft Windows
C:\windows\system32\msconfig.exe | msconfig.EXE.MUI | Microsoft Corporation |
C:\Windows\SysWOW64\mshta.exe | MSHTA.EXE.MUI | Microsoft Corporation | Microsoft Windows
C:\Windows\Microsoft.NET\Framework\v4.0.30319\ngen.exe | ngen.exe | Microsoft Corporation | Microsoft Windows
C:\Windows\system32\notepad.exe | NOTEPAD.EXE.MUI | Microsoft Corporation | Microsoft Windows
C:\Windows\system32\WindowsPowerShell\v1.0\powershell.exe | PowerShell.EXE.MUI | Microsoft Corporation | Microsoft Windows
C:\Windows\SysWOW64\regsvr32.exe | REGSVR32.EXE | Microsoft Corporation | Microsoft Windows
C:\Windows\SysWOW64\rundll32.exe | RUNDLL32.EXE.MUI | Microsoft Corporation | Microsoft Windows
C:\WINDOWS\system32\schtasks.exe | schtasks.exe.mui | Microsoft Corporation | Microsoft Windows
C:\Windows\system32\services.exe | services.exe.mui | Microsoft Corporation | Microsoft Windows
C:\Windows\system32\spoolsv.exe | spoolsv.exe.mui | Microsoft Corporation | Microsoft Windows
C:\Windows\system32\Taskmgr.exe | Taskmgr.exe.mui | Microsoft Corporation | Microsoft Windows
C:\WINDOWS\SysWOW64\wextract.exe | WEXTRACT.EXE            .MUI | Microsoft Corporation | Microsoft Windows
C:\Windows\system32\wininit.exe | WinInit.exe.mui | Microsoft Corporation | Microsoft Windows
C:\windows\system32\winlogon.exe | WINLOGON.EXE.MUI | Microsoft Corporation |
C:\Windows\system32\wbem\WmiPrvSE.exe | Wmiprvse.exe | Microsoft Corporation | Microsoft Windows
C:\WINDOWS\system32\AgentService.exe | AgentService.exe.mui | Microsoft Corporation | Microsoft Windows
C:\Windows\system32\AxInstUI.exe | AxInstUI.exe.mui | Microsoft Corporation | Microsoft Windows
C:\windows\SysWOW64\chglogon.exe | chglogon.exe.mui | Microsoft Corporation |
C:\windows\system32\Com\comrepl.exe | COMREPL.EXE.MUI | Microsoft Corporation |
C:\Windows\system32\dfsrdiag.exe | dfsrdiag.exe.mui | Microsoft Corporation | Microsoft Windows
C:\Windows\system32\dsmod.exe | dsmod.exe.mui | Microsoft Corporation | Microsoft Windows
C:\Windows\SysWOW64\fc.exe | FC.EXE.MUI | Microsoft Corporation | Microsoft Windows
C:\Windows\SysWOW64\grpconv.exe | GRPCONV.EXE | Microsoft Corporation | Microsoft Windows
C:\windows\SysWOW64\IME\IMEJP\imjpuexc.exe | imjpuexc.exe | Microsoft Corporation |
C:\WINDOWS\SysWOW64\logman.exe | Logman.exe | Microsoft Corporation | Microsoft Windows
C:\Windows\system32\MRT.exe | mrt.exe | Microsoft Corporation | Microsoft Windows
C:\Windows\SysWOW64\netdom.exe | NETDOM.EXE.MUI | Microsoft Corporation | Microsoft Windows
C:\Windows\SysWOW64\PATHPING.EXE | pathping.exe.mui | Microsoft Corporation | Microsoft Windows
C:\Windows\system32\prproc.exe | PlayReady Process EXE | Microsoft Corporation | Microsoft Windows
C:\windows\system32\regini.exe | REGINI.EXE | Microsoft Corporation |
C:\Windows\system32\RuntimeBroker.exe | RuntimeBroker.exe | Microsoft Corporation | Microsoft Windows
C:\Windows\SysWOW64\setup16.exe | SETUP.EXE.MUI | Microsoft Corporation | Microsoft Windows
C:\WINDOWS\SysWOW64\stordiag.exe | stordiag.exe | Microsoft Corporation | Microsoft Windows
C:\Windows\SysWOW64\taskkill.exe | taskkill.exe.mui | Microsoft Corporation | Microsoft Windows
C:\WINDOWS\system32\UevTemplateConfigItemGenerator.exe | UevTemplateConfigItemGenerator.exe | Microsoft Corporation | Microsoft Windows
C:\WINDOWS\system32\wcsetupagent.exe | wcsetupagent.exe | Microsoft Corporation | Microsoft Windows
C:\Windows\system32\winrshost.exe | winrshost.exe | Microsoft Corporation | Microsoft Windows
C:\Windows\system32\xpsrchvw.exe | xpsrchvw.exe.mui | Microsoft Corporation | Microsoft Windows
"#;

    /// The five core binaries, every distinct real row (path, original name, company, signer subject DN).
    const GENUINE: &[(&str, &str, &str, &str)] = &[
        (
            r"C:\Windows\system32\smss.exe",
            "smss.exe.mui",
            "Microsoft Corporation",
            "CN=Microsoft Windows, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
        ),
        (
            r"C:\windows\system32\smss.exe",
            "smss.exe.mui",
            "Microsoft Corporation",
            "CN=Microsoft Windows Publisher, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
        ),
        (
            r"C:\Windows\SysWOW64\svchost.exe",
            "svchost.exe.mui",
            "Microsoft Corporation",
            "CN=Microsoft Windows, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
        ),
        (
            r"C:\Windows\system32\svchost.exe",
            "svchost.exe.mui",
            "Microsoft Corporation",
            "CN=Microsoft Windows, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
        ),
        (
            r"C:\windows\system32\svchost.exe",
            "svchost.exe.mui",
            "Microsoft Corporation",
            "CN=Microsoft Windows Publisher, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
        ),
        (
            r"C:\Windows\SysWOW64\cmd.exe",
            "Cmd.Exe.MUI",
            "Microsoft Corporation",
            "CN=Microsoft Windows, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
        ),
        (
            r"C:\Windows\SysWOW64\cmd.exe",
            "Cmd.Exe",
            "Microsoft Corporation",
            "CN=Microsoft Windows, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
        ),
        (r"C:\windows\system32\cmd.exe", "Cmd.Exe.MUI", "Microsoft Corporation", ""),
        (
            r"C:\WINDOWS\system32\lsass.exe",
            "lsass.exe",
            "Microsoft Corporation",
            "CN=Microsoft Windows, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
        ),
        (
            r"C:\windows\system32\lsass.exe",
            "lsass.exe",
            "Microsoft Corporation",
            "CN=Microsoft Windows Publisher, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
        ),
        (
            r"C:\WINDOWS\explorer.exe",
            "EXPLORER.EXE.MUI",
            "Microsoft Corporation",
            "CN=Microsoft Windows, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
        ),
        (
            r"C:\Windows\SysWOW64\explorer.exe",
            "EXPLORER.EXE.MUI",
            "Microsoft Corporation",
            "CN=Microsoft Windows, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
        ),
    ];

    fn some(s: &str) -> Option<&str> {
        Some(s).filter(|s| !s.is_empty())
    }

    /// Claims of a genuine svchost.exe, to be spoiled one field at a time.
    fn svchost() -> Claims<'static> {
        Claims {
            file_name: "svchost.exe",
            path: Some(r"C:\Windows\System32\svchost.exe"),
            original_name: Some("svchost.exe"),
            company: Some("Microsoft Corporation"),
            signer: Some("Microsoft Windows"),
        }
    }

    fn ids(claims: &Claims) -> Vec<&'static str> {
        check(claims).iter().map(|f| f.id).collect()
    }

    #[test]
    fn the_embedded_table_parses() {
        let binaries = parse(TABLE).expect("the embedded table parses");
        assert_eq!(binaries.len(), 1010);
        assert_eq!(all().len(), 1010);
        assert!(all().windows(2).all(|w| w[0].name < w[1].name));
        assert!(all().iter().all(|b| b.samples >= 1 && b.name.ends_with(".exe")));
        assert!(GENERIC_NAMES.windows(2).all(|w| w[0] < w[1]));
        assert!(LOCATION_ANYWHERE.windows(2).all(|w| w[0] < w[1]));
        assert!(VERSION_INFO_SOMETIMES_MISSING.windows(2).all(|w| w[0] < w[1]));
        // Every listed name is in the table, so the lists cannot silently drift from the data.
        for name in GENERIC_NAMES.iter().chain(LOCATION_ANYWHERE).chain(VERSION_INFO_SOMETIMES_MISSING) {
            assert!(known(name).is_some(), "{name} is not in the table");
        }
        let t = table();
        assert_eq!(t.microsoft_companies, ["microsoft", "microsoft windows operating system"]);
        assert!(t.microsoft_signers.iter().any(|s| s == "microsoft windows publisher"));
        assert!(t.microsoft_signers.iter().all(|s| s.starts_with("microsoft ")));
        assert!(parse("a.exe\tx\n").is_err());
        assert!(parse("a.exe\t\t\t\t\t\tmany\n").is_err());
        assert!(parse("a.exe\t\t\t\t\t\t1\na.exe\t\t\t\t\t\t1\n").is_err());
    }

    #[test]
    fn known_is_case_insensitive_on_the_last_path_component() {
        let svchost = known("SVCHOST.EXE").expect("svchost.exe is known");
        assert_eq!(svchost.name, "svchost.exe");
        assert_eq!(svchost.original_names, ["svchost.exe"]);
        assert_eq!(svchost.companies, ["Microsoft Corporation"]);
        assert_eq!(svchost.signers, ["Microsoft Windows", "Microsoft Windows Publisher"]);
        assert_eq!(svchost.expected_dirs, [r"%windir%\syswow64", r"%windir%\system32"]);
        assert_eq!(svchost.description, Some("Host Process for Windows Services"));
        assert_eq!(svchost.samples, 12);
        assert!(svchost.is_microsoft() && !svchost.is_generic() && svchost.is_checked());
        assert!(std::ptr::eq(known(r"C:\Windows\System32\SvcHost.exe").unwrap(), svchost));
        assert!(std::ptr::eq(known("/mnt/c/Windows/System32/svchost.exe").unwrap(), svchost));
        assert_eq!(known("explorer.exe").unwrap().expected_dirs, ["%windir%", r"%windir%\syswow64"]);
        assert!(known("myapp.exe").is_none());
        assert!(known("").is_none());
        assert!(known("svchost").is_none());
        // Third-party, generic and thin entries are known but not checked.
        assert!(!known("igfxem.exe").unwrap().is_microsoft());
        assert!(!known("ssh.exe").unwrap().is_microsoft(), "no CompanyName at all");
        assert!(known("find.exe").unwrap().is_generic());
        assert!(!known("acu.exe").unwrap().is_checked(), "one sample");
    }

    #[test]
    fn genuine_core_binaries_give_no_findings() {
        for &(path, original, company, subject) in GENUINE {
            let file_name = base_name(path);
            let pe_original = original.strip_suffix(".MUI").or(original.strip_suffix(".mui")).unwrap_or(original);
            for original in [original, pe_original] {
                for signer in [subject, signer_cn(subject)] {
                    let claims = Claims {
                        file_name,
                        path: Some(path),
                        original_name: Some(original),
                        company: Some(company),
                        signer: some(signer),
                    };
                    assert_eq!(check(&claims), [], "{claims:?}");
                }
            }
        }
        // The same files seen from Linux: a mounted image, a copy.
        for path in ["/mnt/c/Windows/System32/svchost.exe", "/home/u/Downloads/svchost.exe", "svchost.exe"] {
            assert_eq!(check(&Claims { path: Some(path), ..svchost() }), []);
        }
    }

    #[test]
    fn a_sample_of_real_rows_under_windows_gives_no_findings() {
        let mut rows = 0;
        for line in SAMPLE_ROWS.lines().filter(|l| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split('|').map(str::trim).collect();
            let [path, original, company, signer] = fields[..] else { panic!("bad sample row {line:?}") };
            let claims = Claims {
                file_name: base_name(path),
                path: Some(path),
                original_name: some(original),
                company: some(company),
                signer: some(signer),
            };
            assert!(known(claims.file_name).is_some_and(KnownBinary::is_checked), "{path} is checked");
            assert_eq!(check(&claims), [], "{claims:?}");
            rows += 1;
        }
        assert_eq!(rows, 51);
    }

    #[test]
    fn a_wrong_original_name_is_flagged() {
        let findings = check(&Claims { original_name: Some("evil.exe"), ..svchost() });
        assert_eq!(
            findings,
            [Finding {
                id: ID_ORIGINAL_NAME,
                message: "named svchost.exe but its original name is evil.exe; genuine svchost.exe says svchost.exe \
                          (xcyclopedia)"
                    .into()
            }]
        );
        // The spelling of the genuine name does not matter; a different program's does.
        for fine in ["SVCHOST.EXE", " svchost.exe.MUI ", "\"svchost.exe\"", "svchost.dll", "svchost"] {
            assert_eq!(ids(&Claims { original_name: Some(fine), ..svchost() }), [] as [&str; 0], "{fine}");
        }
        for bad in ["svchost32.exe", "evil.exe.mui", "mimikatz.exe", "svchost.exe.bak.exe"] {
            assert_eq!(ids(&Claims { original_name: Some(bad), ..svchost() }), [ID_ORIGINAL_NAME], "{bad}");
        }
        // Several known original names: each is fine, and the message lists them.
        let mavinject =
            Claims { file_name: "mavinject.exe", path: None, original_name: Some("mavinject32.exe"), ..svchost() };
        assert_eq!(check(&mavinject), []);
        let f = check(&Claims { original_name: Some("x.exe"), ..mavinject });
        assert_eq!(
            f[0].message,
            "named mavinject.exe but its original name is x.exe; genuine mavinject.exe says mavinject64.exe or \
             mavinject32.exe (xcyclopedia)"
        );
    }

    #[test]
    fn a_foreign_company_is_flagged() {
        let findings = check(&Claims { company: Some("Evil Corp"), ..svchost() });
        assert_eq!(
            findings,
            [Finding {
                id: ID_COMPANY,
                message: "named svchost.exe but its company is Evil Corp; genuine svchost.exe says Microsoft \
                          Corporation (xcyclopedia)"
                    .into()
            }]
        );
        for fine in [
            "Microsoft Corp.",
            "MICROSOFT CORPORATION",
            " Microsoft Corporation. ",
            "Microsoft",
            "Microsoft Windows Operating System",
        ] {
            assert_eq!(ids(&Claims { company: Some(fine), ..svchost() }), [] as [&str; 0], "{fine}");
        }
        for bad in ["Microsoft Windows Corp Ltd Fake", "Micros0ft Corporation", "Corporation"] {
            assert_eq!(ids(&Claims { company: Some(bad), ..svchost() }), [ID_COMPANY], "{bad}");
        }
    }

    #[test]
    fn no_version_info_is_flagged_where_genuine_copies_have_it() {
        let bare = Claims { original_name: None, company: Some("  "), ..svchost() };
        let findings = check(&bare);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].id, ID_MISSING_VERSION_INFO);
        assert_eq!(
            findings[0].message,
            "named svchost.exe but it has no version information (no original name, no company); genuine \
             svchost.exe says svchost.exe by Microsoft Corporation (xcyclopedia)"
        );
        // Only one of the two missing: no finding.
        assert_eq!(check(&Claims { original_name: None, ..svchost() }), []);
        assert_eq!(check(&Claims { company: None, ..svchost() }), []);
        // Genuine copies seen without VERSIONINFO, and names whose entry has no original name.
        for file_name in ["SyncAppvPublishingServer.exe", "AppVStreamingUX.exe", "aitstatic.exe", "mbr2gpt.exe"] {
            assert_eq!(check(&Claims { file_name, path: None, original_name: None, company: None, signer: None }), []);
        }
    }

    #[test]
    fn a_foreign_signer_is_flagged() {
        let findings = check(&Claims { signer: Some("Evil Signer LLC"), ..svchost() });
        assert_eq!(
            findings,
            [Finding {
                id: ID_SIGNER,
                message: "named svchost.exe but it is signed by Evil Signer LLC; genuine svchost.exe is signed by \
                          Microsoft Windows or Microsoft Windows Publisher (xcyclopedia)"
                    .into()
            }]
        );
        let dn = r#"CN="Evil, Inc.", O=Evil, C=US"#;
        assert_eq!(
            check(&Claims { signer: Some(dn), ..svchost() })[0].message.split(';').next(),
            Some("named svchost.exe but it is signed by Evil, Inc.")
        );
        // Microsoft's other signing CNs are fine for a Microsoft binary; no signature is no claim.
        for fine in [
            "microsoft windows publisher",
            "Microsoft Corporation",
            "CN=Microsoft Windows, O=Microsoft Corporation",
            "",
        ] {
            let claims = Claims {
                file_name: "cmd.exe",
                path: None,
                original_name: Some("Cmd.Exe"),
                signer: some(fine),
                ..svchost()
            };
            assert_eq!(check(&claims), [], "{fine}");
        }
        assert_eq!(check(&Claims { signer: None, ..svchost() }), []);
        // An entry without signer CNs (no sample had an embedded signature) checks no signer.
        let taskeng = known("taskeng.exe").unwrap();
        assert!(taskeng.is_checked() && taskeng.signers.is_empty());
        let claims = Claims { file_name: "taskeng.exe", path: None, original_name: Some("taskeng.exe"), ..svchost() };
        assert_eq!(check(&Claims { signer: Some("Evil Signer LLC"), ..claims }), []);
    }

    #[test]
    fn locations_are_judged_only_on_recognisable_windows_paths() {
        let at = |path: &'static str| ids(&Claims { path: Some(path), ..svchost() });
        let flagged = [ID_LOCATION];
        let fine: [&str; 0] = [];
        assert_eq!(at(r"C:\Users\Public\svchost.exe"), flagged);
        assert_eq!(
            check(&Claims { path: Some(r"C:\Users\Public\svchost.exe"), ..svchost() })[0].message,
            concat!(
                r"named svchost.exe but it is in C:\Users\Public; genuine svchost.exe lives in %windir%\syswow64 or ",
                r"%windir%\system32 (xcyclopedia)"
            )
        );
        assert_eq!(at(r"C:\svchost.exe"), flagged);
        assert_eq!(at(r"c:/ProgramData/svchost.exe"), flagged);
        assert_eq!(at(r"C:\Windows\Temp\svchost.exe"), flagged);
        assert_eq!(at(r"C:\Windows\svchost.exe"), flagged);
        assert_eq!(at(r"C:\Windows\System32\Tasks\svchost.exe"), flagged);
        assert_eq!(at("/mnt/c/Windows/Temp/svchost.exe"), flagged);
        assert_eq!(at(r"\\?\C:\Users\Public\svchost.exe"), flagged);
        // Not recognisably Windows: a copy analysed elsewhere.
        assert_eq!(at("/tmp/svchost.exe"), fine);
        assert_eq!(at("/home/u/Downloads/svchost.exe"), fine);
        assert_eq!(at("/mnt/c/Users/Public/svchost.exe"), fine);
        assert_eq!(at(r"Downloads\svchost.exe"), fine);
        assert_eq!(at(r"\\server\share\svchost.exe"), fine);
        assert_eq!(at("svchost.exe"), fine);
        // Genuine places, and the leniencies.
        assert_eq!(at(r"C:\WINDOWS\system32\svchost.exe"), fine);
        assert_eq!(at(r"\\?\C:\Windows\System32\svchost.exe"), fine);
        assert_eq!(at(r"C:\Windows\Sysnative\svchost.exe"), fine);
        assert_eq!(at(r"C:\Windows\SysArm32\svchost.exe"), fine);
        assert_eq!(at(r"D:\mnt\image\Windows\SysWOW64\svchost.exe"), fine);
        assert_eq!(
            at(r"C:\Windows\WinSxS\amd64_microsoft-windows-svchost_31bf3856ad364e35_10.0.19041.1_none\svchost.exe"),
            fine
        );
        assert_eq!(at(r"C:\Windows\WinSxS\amd64_x\f\svchost.exe"), fine);
        assert_eq!(at(r"C:\Windows\SoftwareDistribution\Download\abc\svchost.exe"), fine);
        assert_eq!(at(r"C:\$WINDOWS.~BT\Sources\svchost.exe"), fine);
        assert_eq!(at(r"C:\Program Files\WindowsApps\Microsoft.X_1.0_x64__8wekyb3d8bbwe\svchost.exe"), fine);
        assert_eq!(at(r"C:\Users\u\AppData\Local\Microsoft\WindowsApps\svchost.exe"), fine);
        // Other entries: the Windows directory itself, wildcards, names that run from anywhere.
        let other = |file_name: &'static str, path: &'static str| {
            ids(&Claims {
                file_name,
                path: Some(path),
                original_name: None,
                company: Some("Microsoft Corporation"),
                signer: None,
            })
        };
        assert_eq!(other("explorer.exe", r"C:\Windows\explorer.exe"), fine);
        assert_eq!(other("explorer.exe", r"C:\Users\u\AppData\Roaming\explorer.exe"), flagged);
        assert_eq!(other("csc.exe", r"C:\Windows\Microsoft.NET\Framework64\v2.0.50727\csc.exe"), fine);
        assert_eq!(other("csc.exe", r"C:\Windows\Microsoft.NET\csc.exe"), flagged);
        assert_eq!(
            other("dpinst.exe", r"C:\Windows\System32\DriverStore\FileRepository\x.inf_amd64_1\dpinst.exe"),
            fine
        );
        assert_eq!(other("dpinst.exe", r"C:\Drivers\Chipset\dpinst.exe"), fine);
        assert_eq!(other("dismhost.exe", r"C:\Users\u\AppData\Local\Temp\5D2E4C9A\DismHost.exe"), fine);
        assert_eq!(other("wmiprvse.exe", r"C:\Windows\SysWOW64\wbem\WmiPrvSE.exe"), fine);
        assert_eq!(other("wmiprvse.exe", r"C:\Windows\System32\WmiPrvSE.exe"), flagged);
    }

    #[test]
    fn unknown_generic_third_party_and_thin_names_give_nothing() {
        let evil = |file_name: &'static str| Claims {
            file_name,
            path: Some(r"C:\Users\Public\x.exe"),
            original_name: Some("evil.exe"),
            company: Some("Evil Corp"),
            signer: Some("Evil Signer"),
        };
        for name in [
            "myapp.exe",
            "setup.exe",
            "install.exe",
            "find.exe",
            "klist.exe",
            "igfxem.exe",
            "curl.exe",
            "ssh.exe",
            "py.exe",
            "acu.exe",
        ] {
            assert_eq!(check(&evil(name)), [], "{name}");
        }
        // Git for Windows' find.exe: no VERSIONINFO, no signature, anywhere.
        let git_find = Claims {
            file_name: "find.exe",
            path: Some(r"C:\Program Files\Git\usr\bin\find.exe"),
            original_name: None,
            company: None,
            signer: None,
        };
        assert_eq!(check(&git_find), []);
        // Everything wrong at once on a core binary: every rule fires, in order.
        assert_eq!(
            ids(&Claims { file_name: r"C:\x\LSASS.EXE", ..evil("lsass.exe") }),
            [ID_ORIGINAL_NAME, ID_COMPANY, ID_SIGNER, ID_LOCATION]
        );
    }

    #[test]
    fn messages_are_one_line_and_cite_the_source() {
        let hostile = "evil\n.exe\u{7}";
        let long = "x".repeat(500);
        let claims = Claims {
            file_name: "svchost.exe",
            path: Some("C:\\Users\\Public\nX\\svchost.exe"),
            original_name: Some(hostile),
            company: Some(&long),
            signer: Some("Evil\rSigner"),
        };
        let findings = check(&claims);
        assert_eq!(findings.len(), 4);
        for f in &findings {
            assert!(!f.message.chars().any(char::is_control), "{:?}", f.message);
            assert!(f.message.ends_with(" (xcyclopedia)"), "{:?}", f.message);
            assert!(f.message.starts_with("named svchost.exe but "), "{:?}", f.message);
            assert!(f.id.starts_with("masquerade-"));
            assert!(f.message.chars().count() < 400);
        }
        assert!(findings[0].message.contains(r"evil\n.exe\u{7}"));
    }

    #[test]
    fn helpers() {
        assert_eq!(normalise_company("Microsoft Corporation"), "microsoft");
        assert_eq!(normalise_company("Microsoft Corp."), "microsoft");
        assert_eq!(normalise_company("Lexmark International, Inc."), "lexmark international");
        assert_eq!(normalise_company("Corporation"), "corporation");
        assert_eq!(normalise_company("curl, https://curl.haxx.se/"), "curl https curl haxx se");
        assert_eq!(signer_cn("CN=Microsoft Windows, O=Microsoft Corporation, C=US"), "Microsoft Windows");
        assert_eq!(signer_cn("O=Evil, CN=Evil Signer, C=US"), "Evil Signer");
        assert_eq!(signer_cn(r#"CN="McAfee, LLC", O="McAfee, LLC""#), "McAfee, LLC");
        assert_eq!(signer_cn(" Microsoft Windows "), "Microsoft Windows");
        assert_eq!(signer_cn("éé, ü=x, cN=Zoë"), "Zoë");
        assert_eq!(signer_cn("é"), "é");
        assert_eq!(normalise_original_name(" \"WEXTRACT.EXE            .MUI\" "), "wextract.exe");
        assert_eq!(stem("cleanmgr.dll"), "cleanmgr");
        assert_eq!(stem("expand"), "expand");
        assert_eq!(stem(".mui"), ".mui");
        assert_eq!(dir_of(r"C:\Windows\x.exe"), r"C:\Windows");
        assert_eq!(dir_of("/x.exe"), "/");
        assert_eq!(display("a\tb"), r"a\tb");
    }

    /// Fields of one CSV line (RFC 4180 quoting, no line breaks inside fields: the layout of the xcyclopedia
    /// files).
    fn csv_fields(line: &str) -> Vec<String> {
        let (mut fields, mut field, mut quoted, mut chars) =
            (Vec::new(), String::new(), false, line.chars().peekable());
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => fields.push(std::mem::take(&mut field)),
                _ => field.push(c),
            }
        }
        fields.push(field);
        fields
    }

    /// Every row of the full xcyclopedia CSV under `C:\Windows` gives no finding. Runs only when
    /// `FILEREP_XCYCLOPEDIA_CSV` names `strontic-xcyclopedia.trimmed.csv`: the repository does not ship it.
    #[test]
    fn the_whole_inventory_under_windows_gives_no_findings() {
        let Some(csv_path) = std::env::var_os("FILEREP_XCYCLOPEDIA_CSV") else { return };
        let text = std::fs::read_to_string(csv_path).expect("the xcyclopedia CSV reads");
        let mut lines = text.lines();
        let header = csv_fields(lines.next().expect("a header"));
        let col = |name: &str| header.iter().position(|h| h == name).expect(name);
        let (name, path, original, company, subject) = (
            col("file_name"),
            col("file_path"),
            col("meta_original_filename"),
            col("meta_company_name"),
            col("signature_subject"),
        );
        let (mut rows, mut checked) = (0, 0);
        for line in lines {
            let r = csv_fields(line);
            assert_eq!(r.len(), header.len(), "{line}");
            if !r[path].to_lowercase().starts_with(r"c:\windows\") {
                continue;
            }
            rows += 1;
            let claims = Claims {
                file_name: &r[name],
                path: Some(&r[path]),
                original_name: some(&r[original]),
                company: some(&r[company]),
                signer: some(&r[subject]),
            };
            checked += usize::from(known(claims.file_name).is_some_and(KnownBinary::is_checked));
            assert_eq!(check(&claims), [], "{claims:?}");
        }
        assert!(rows > 5000 && checked > 4000, "{rows} rows, {checked} checked");
    }
}
