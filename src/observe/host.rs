//! The host profile sent with an observation: the operating system and its version, the kernel, the
//! machine's manufacturer and model (DMI; missing in most containers), the country the user configured (never
//! guessed from the network), and the platform.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// What an observation says about the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostProfile {
    /// `Debian GNU/Linux`.
    pub os_name: Option<String>,
    /// `12`.
    pub os_version: Option<String>,
    /// `Debian GNU/Linux 12 (bookworm)`.
    pub os_pretty_name: Option<String>,
    /// The kernel release (`uname -r`).
    pub kernel: Option<String>,
    /// DMI `sys_vendor`.
    pub manufacturer: Option<String>,
    /// DMI `product_name`.
    pub product: Option<String>,
    /// ISO 3166-1 alpha-2, from the configuration (`[observe] country`).
    pub country: Option<String>,
    /// `64-bit` or `32-bit`.
    pub platform: Option<String>,
    /// The machine architecture (`uname -m`).
    pub arch: Option<String>,
}

impl HostProfile {
    /// What fleet prevalence counts participants by: `NAME VERSION_ID`, the country, the manufacturer.
    pub fn key(&self) -> crate::store::fleet::HostKey {
        let os = match (&self.os_name, &self.os_version) {
            (Some(n), Some(v)) => Some(format!("{n} {v}")),
            (Some(n), None) => Some(n.clone()),
            (None, _) => None,
        };
        crate::store::fleet::HostKey { os, country: self.country.clone(), manufacturer: self.manufacturer.clone() }
    }
}

/// `NAME`, `VERSION_ID` and `PRETTY_NAME` from an os-release file's text.
pub fn parse_os_release(text: &str) -> (Option<String>, Option<String>, Option<String>) {
    let (mut name, mut version, mut pretty) = (None, None, None);
    for line in text.lines().take(200) {
        let Some((key, value)) = line.trim().split_once('=') else { continue };
        let value = unquote(value.trim());
        if value.is_empty() {
            continue;
        }
        match key.trim() {
            "NAME" => name = Some(value),
            "VERSION_ID" => version = Some(value),
            "PRETTY_NAME" => pretty = Some(value),
            _ => {}
        }
    }
    (name, version, pretty)
}

fn unquote(v: &str) -> String {
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(v);
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out.chars().filter(|c| !c.is_control()).take(super::MAX_SHORT_TEXT).collect()
}

/// A small text file's first line, trimmed; `None` when missing, unreadable, empty or a placeholder.
fn read_line(path: &Path) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&text[..text.len().min(4096)]).into_owned();
    let line: String =
        text.lines().next()?.trim().chars().filter(|c| !c.is_control()).take(super::MAX_SHORT_TEXT).collect();
    let placeholder = ["", "To be filled by O.E.M.", "Default string", "System Product Name", "None"];
    (!placeholder.contains(&line.as_str())).then_some(line)
}

/// The platform of a machine architecture name.
pub fn platform_of_arch(arch: &str) -> Option<&'static str> {
    match arch {
        "x86_64" | "aarch64" | "arm64" | "ppc64" | "ppc64le" | "s390x" | "riscv64" | "loongarch64" | "mips64"
        | "sparc64" => Some("64-bit"),
        "i386" | "i486" | "i586" | "i686" | "x86" | "armv6l" | "armv7l" | "arm" | "ppc" | "mips" | "riscv32" => {
            Some("32-bit")
        }
        _ => None,
    }
}

/// `uname -r` and `uname -m`.
#[cfg(unix)]
fn uname() -> (Option<String>, Option<String>) {
    // SAFETY: utsname is plain old data; uname fills it with NUL-terminated strings.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return (None, None);
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
        let s = String::from_utf8_lossy(&bytes).trim().to_string();
        (!s.is_empty()).then_some(s)
    };
    (field(&u.release[..]), field(&u.machine[..]))
}

#[cfg(not(unix))]
fn uname() -> (Option<String>, Option<String>) {
    (None, Some(std::env::consts::ARCH.to_string()))
}

/// The profile of this machine; `country` comes from the configuration.
pub fn profile(country: Option<String>) -> HostProfile {
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    let (mut os_name, mut os_version, mut os_pretty_name) = parse_os_release(&text);
    let (mut kernel, arch) = uname();
    // Without os-release (Windows, macOS, the BSDs): what sysinfo says about the OS.
    if os_name.is_none() {
        os_name = sysinfo::System::name().filter(|s| !s.trim().is_empty());
        os_version = sysinfo::System::os_version().filter(|s| !s.trim().is_empty());
        os_pretty_name = sysinfo::System::long_os_version().filter(|s| !s.trim().is_empty());
    }
    if kernel.is_none() {
        kernel = sysinfo::System::kernel_version().filter(|s| !s.trim().is_empty());
    }
    HostProfile {
        os_name,
        os_version,
        os_pretty_name,
        kernel,
        manufacturer: read_line(Path::new("/sys/class/dmi/id/sys_vendor")),
        product: read_line(Path::new("/sys/class/dmi/id/product_name")),
        country,
        platform: arch.as_deref().and_then(platform_of_arch).map(str::to_string),
        arch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_is_parsed() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n\
                    VERSION=\"12 (bookworm)\"\nID=debian\n# comment\n\nHOME_URL=\"https://www.debian.org/\"\n";
        let (name, version, pretty) = parse_os_release(text);
        assert_eq!(name.as_deref(), Some("Debian GNU/Linux"));
        assert_eq!(version.as_deref(), Some("12"));
        assert_eq!(pretty.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        // Unquoted and single-quoted values, escapes; a missing VERSION_ID (Arch, rolling) is None.
        let (name, version, pretty) = parse_os_release("NAME=Arch\\ Linux\nPRETTY_NAME='Arch Linux'\nVERSION_ID=\n");
        assert_eq!((name.as_deref(), version, pretty.as_deref()), (Some("Arch Linux"), None, Some("Arch Linux")));
        assert_eq!(parse_os_release(""), (None, None, None));
    }

    #[test]
    fn platforms_of_architectures() {
        assert_eq!(platform_of_arch("x86_64"), Some("64-bit"));
        assert_eq!(platform_of_arch("i686"), Some("32-bit"));
        assert_eq!(platform_of_arch("armv7l"), Some("32-bit"));
        assert_eq!(platform_of_arch("vax"), None);
    }

    #[test]
    fn this_machine_has_a_profile() {
        let p = profile(Some("DE".into()));
        assert_eq!(p.country.as_deref(), Some("DE"));
        assert!(p.kernel.is_some() || cfg!(not(unix)));
    }
}
