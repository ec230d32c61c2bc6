//! Sampling the processes of a Linux machine through `/proc`.
//!
//! Processes come and go between two reads: every read may fail, and a process whose files vanish is
//! skipped (counted) rather than an error. Nothing read from `/proc` is trusted to be well formed.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::{Pass, ProcSample, Skip};

pub use super::MAX_PROCESSES;
/// Bytes of a command line read, at most.
pub const MAX_CMDLINE: u64 = 64 * 1024;

/// The fields of `/proc/PID/status` that an observation keeps (bytes, or counts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Real user id.
    pub uid: Option<u32>,
    /// Effective user id.
    pub euid: Option<u32>,
    /// Effective capabilities (a bit set).
    pub cap_eff: Option<u64>,
    /// Threads.
    pub threads: u64,
    /// VmSize.
    pub vm_size: u64,
    /// VmPeak.
    pub vm_peak: u64,
    /// VmRSS.
    pub vm_rss: u64,
    /// VmHWM.
    pub vm_hwm: u64,
    /// RssAnon (private).
    pub rss_anon: u64,
}

/// Parse `/proc/PID/status`. Sizes are given in kB there; they are returned in bytes.
pub fn parse_status(text: &str) -> Status {
    let mut s = Status::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let mut words = value.split_whitespace();
        let first = words.next().unwrap_or("");
        let kb = || first.parse::<u64>().ok().map(|v| v.saturating_mul(1024)).unwrap_or(0);
        match key {
            "Uid" => {
                s.uid = first.parse().ok();
                s.euid = words.next().and_then(|w| w.parse().ok());
            }
            "CapEff" => s.cap_eff = u64::from_str_radix(first, 16).ok(),
            "Threads" => s.threads = first.parse().unwrap_or(0),
            "VmSize" => s.vm_size = kb(),
            "VmPeak" => s.vm_peak = kb(),
            "VmRSS" => s.vm_rss = kb(),
            "VmHWM" => s.vm_hwm = kb(),
            "RssAnon" => s.rss_anon = kb(),
            _ => {}
        }
    }
    s
}

/// The fields of `/proc/PID/stat` that an observation keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stat {
    /// The process name (`comm`, at most 15 bytes; may hold spaces and parentheses).
    pub comm: String,
    /// State letter.
    pub state: char,
    /// Parent pid.
    pub ppid: u32,
    /// Kernel flags (PF_KTHREAD marks a kernel thread).
    pub flags: u64,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Start time after boot, in clock ticks (with the pid, it tells a reused pid apart).
    pub start_ticks: u64,
}

/// The kernel's flag for kernel threads.
const PF_KTHREAD: u64 = 0x0020_0000;

impl Stat {
    /// True for a kernel thread.
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// Parse `/proc/PID/stat`. The name sits between the first `(` and the LAST `)`: it may contain both.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let comm = text[open + 1..close].to_string();
    // Fields after the name, numbered from 3 (state) as in proc(5).
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).copied();
    let num = |n: usize| field(n).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        comm,
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        flags: num(9)?,
        cpu_ticks: num(14)?.saturating_add(num(15)?),
        start_ticks: num(22)?,
    })
}

/// Split a NUL-separated `/proc/PID/cmdline` into arguments (lossy UTF-8).
pub fn parse_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

/// `/etc/passwd`: uid → (name, home).
pub fn parse_passwd(text: &str) -> HashMap<u32, (String, String)> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 || f[0].starts_with('#') {
            continue;
        }
        if let Ok(uid) = f[2].parse::<u32>() {
            out.entry(uid).or_insert_with(|| (f[0].to_string(), f[5].to_string()));
        }
    }
    out
}

/// The process ids under `proc` (at most [`MAX_PROCESSES`]).
pub fn list_pids(proc: &Path) -> std::io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir(proc)? {
        let Ok(entry) = entry else { continue };
        if let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
            pids.push(pid);
            if pids.len() >= MAX_PROCESSES {
                break;
            }
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::fs::File::open(path)?.take(cap).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Read one process.
fn sample_one(proc: &Path, pid: u32, stat: &Stat) -> Result<ProcSample, Skip> {
    let dir = proc.join(pid.to_string());
    if stat.is_kernel_thread() {
        return Err(Skip::KernelThread);
    }
    let exe = match std::fs::read_link(dir.join("exe")) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Err(Skip::PermissionDenied),
        // A zombie or an exited process has no exe link any more.
        Err(_) => return Err(Skip::Vanished),
    };
    let exe = exe.to_string_lossy().into_owned();
    let (exe, deleted) = match exe.strip_suffix(" (deleted)") {
        Some(p) => (p.to_string(), true),
        None => (exe, false),
    };
    let status = std::fs::read_to_string(dir.join("status")).map_err(|_| Skip::Vanished)?;
    let status = parse_status(&status);
    let cmdline = read_capped(&dir.join("cmdline"), MAX_CMDLINE).map(|b| parse_cmdline(&b)).unwrap_or_default();
    let fds = std::fs::read_dir(dir.join("fd")).ok().map(|d| d.take(1 << 20).count() as u64);
    Ok(ProcSample {
        pid,
        start_ticks: stat.start_ticks,
        exe,
        deleted,
        cmdline,
        uid: status.uid,
        privilege: super::privilege(status.uid, status.euid, status.cap_eff),
        ppid: stat.ppid,
        cpu_ticks: stat.cpu_ticks,
        threads: status.threads,
        virtual_bytes: status.vm_size,
        virtual_peak: status.vm_peak,
        working_set: status.vm_rss,
        working_set_peak: status.vm_hwm,
        private_bytes: status.rss_anon,
        fds,
    })
}

/// One pass over `proc` (normally `/proc`).
pub fn sample(proc: &Path) -> std::io::Result<Pass> {
    let mut pass = Pass::default();
    let pids = list_pids(proc)?;
    let mut stats = Vec::with_capacity(pids.len());
    for pid in pids {
        match std::fs::read_to_string(proc.join(pid.to_string()).join("stat")).ok().and_then(|t| parse_stat(&t)) {
            Some(st) => {
                pass.names.insert(pid, st.comm.clone());
                stats.push((pid, st));
            }
            None => pass.skipped.push((pid, 0, Skip::Vanished)),
        }
    }
    for (pid, st) in stats {
        match sample_one(proc, pid, &st) {
            Ok(s) => pass.samples.push(s),
            Err(why) => pass.skipped.push((pid, st.start_ticks, why)),
        }
    }
    Ok(pass)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 nearly everywhere).
pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf takes no pointers.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nNgid:\t0\nPid:\t4242\n\
PPid:\t100\nTracerPid:\t0\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nFDSize:\t64\n\
CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n\
VmPeak:\t    8368 kB\nVmSize:\t    8364 kB\nVmLck:\t       0 kB\nVmHWM:\t    1024 kB\nVmRSS:\t     900 kB\n\
RssAnon:\t      96 kB\nRssFile:\t     804 kB\nRssShmem:\t       0 kB\nThreads:\t1\n";

    #[test]
    fn status_is_parsed_in_bytes() {
        let s = parse_status(STATUS);
        assert_eq!(
            s,
            Status {
                uid: Some(1000),
                euid: Some(1000),
                cap_eff: Some(0),
                threads: 1,
                vm_size: 8364 * 1024,
                vm_peak: 8368 * 1024,
                vm_rss: 900 * 1024,
                vm_hwm: 1024 * 1024,
                rss_anon: 96 * 1024,
            }
        );
        // A set-uid root program run by uid 1000, and a service holding CAP_NET_BIND_SERVICE.
        let setuid = parse_status("Uid:\t1000\t0\t0\t0\nCapEff:\t000001ffffffffff\n");
        assert_eq!((setuid.uid, setuid.euid, setuid.cap_eff), (Some(1000), Some(0), Some(0x1ff_ffff_ffff)));
        let service = parse_status("Uid:\t33\t33\t33\t33\nCapEff:\t0000000000000400\n");
        assert_eq!(super::super::privilege(service.uid, service.euid, service.cap_eff), Some("elevated"));
        // A kernel thread's status has no Vm lines; garbage is zeros, not a panic.
        assert_eq!(parse_status("Name:\tkthreadd\nThreads:\tx\nVmRSS: lots\n"), Status::default());
    }

    #[test]
    fn stat_is_parsed_with_a_name_holding_spaces_and_parentheses() {
        let text = "4242 (my (odd) name) S 100 4242 4242 0 -1 4194560 120 0 0 0 7 3 0 0 20 0 1 0 123456 8564736 \
                    225 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let s = parse_stat(text).unwrap();
        assert_eq!(s.comm, "my (odd) name");
        assert_eq!((s.state, s.ppid, s.cpu_ticks, s.start_ticks), ('S', 100, 10, 123456));
        assert!(!s.is_kernel_thread());
        let kthread = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 5 0 0 20 0 1 0 4 0 0 18446744073709551615 0 0 0 0";
        assert!(parse_stat(kthread).unwrap().is_kernel_thread());
        assert_eq!(parse_stat("4242 (cut"), None);
        assert_eq!(parse_stat("4242 (x) S 1 2"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn cmdline_and_passwd_are_parsed() {
        assert_eq!(parse_cmdline(b"/bin/sleep\x0030\x00"), ["/bin/sleep", "30"]);
        assert_eq!(parse_cmdline(b"a\x00\x00b\x00"), ["a", "", "b"]);
        assert!(parse_cmdline(b"").is_empty());
        let p = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\n# c\nbad line\nalice:x:1000:1000:A,,,:/home/alice:/bin/sh\n",
        );
        assert_eq!(p[&0], ("root".to_string(), "/root".to_string()));
        assert_eq!(p[&1000], ("alice".to_string(), "/home/alice".to_string()));
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn this_machine_is_sampled_and_this_process_is_in_it() {
        let pass = sample(Path::new("/proc")).unwrap();
        let me = std::process::id();
        let s = pass.samples.iter().find(|s| s.pid == me).expect("this process is sampled");
        assert!(s.threads >= 1 && s.working_set > 0 && s.fds.unwrap_or(0) > 0, "{s:?}");
        assert_eq!(std::path::PathBuf::from(&s.exe), std::env::current_exe().unwrap());
        assert!(pass.names.contains_key(&s.ppid) || s.ppid == 0);
    }
}
