//! `filerep observe`: which executables run on this machine, and how heavily (issue 7, "fleet prevalence").
//!
//! The running processes are sampled every `interval` for `duration` by a [`Backend`]: on Linux [`linux`]
//! reads `/proc`; on every other platform [`portable`] asks the `sysinfo` crate (Windows, macOS, the BSDs),
//! which Linux can use too with `FILEREP_OBSERVE_BACKEND=sysinfo` (`proc`, the default there, or `sysinfo`;
//! see [`BackendKind`]). Each executable is hashed once per (path, modification
//! time, size): the digests are cached in the store (`observed_files`), so a second run re-hashes nothing
//! that did not change. The samples are aggregated per executable path ([`Aggregator`]): processes, CPU
//! share, private/virtual memory and working set (mean and maximum over the samples), the peak working set,
//! threads and handles, the owner, the most common parent and one redacted command line ([`redact`]).
//! The `sysinfo` backend fills fewer figures (no private bytes outside Windows, threads only on Linux, no
//! owner on Windows): [`portable`] says which.
//!
//! The result, with the host profile ([`host`]) and the participant id (random, kept next to the store),
//! is recorded in the local store (`observations`, `sightings`). Nothing leaves the machine.

pub mod host;
#[cfg(target_os = "linux")]
pub mod linux;
pub mod portable;
pub mod redact;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::sqlite::{ObservationRow, ObservedDigests, SightingRow, SqliteStore};

/// The version of the `--json` document.
pub const SCHEMA_VERSION: u32 = 1;
/// The shortest interval between samples.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// The longest observation.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Processes followed per executable in one run (a day of short-lived processes stays bounded in memory).
pub const MAX_TRACKED_PROCESSES: usize = 100_000;
/// Processes looked at per sample, at most.
pub const MAX_PROCESSES: usize = 100_000;
/// The environment variable that chooses the sampling backend ([`BackendKind`]).
pub const BACKEND_ENV: &str = "FILEREP_OBSERVE_BACKEND";
/// Longest path, parent name or command line in a sighting (characters, after escaping); `serve` refuses
/// longer ones.
pub const MAX_TEXT: usize = 4096;
/// Longest owner name or host profile field (characters).
pub const MAX_SHORT_TEXT: usize = 256;

/// Why an observation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A platform that neither `/proc` nor `sysinfo` can sample.
    #[error("observe is not supported on this platform (sysinfo cannot list its processes)")]
    Unsupported,
    /// `FILEREP_OBSERVE_BACKEND` names no backend (or one this platform does not have).
    #[error("{BACKEND_ENV}={value:?} is not a sampling backend here: use {accepted}")]
    BadBackend {
        /// The value given.
        value: String,
        /// The accepted values, for the message.
        accepted: &'static str,
    },
    /// `/proc` cannot be read.
    #[error("cannot read the process list in {path}: {source} (is /proc mounted?)")]
    NoProc {
        /// The directory.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The participant id file.
    #[error("participant id {path}: {source}")]
    Participant {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The thread that hashes newly seen executables could not be started, or died.
    #[error("cannot hash the observed executables: {0}")]
    Hasher(io::Error),
    /// The store.
    #[error(transparent)]
    Store(#[from] crate::store::sqlite::Error),
}

/// Parse a duration: `500ms`, `30s`, `1m`, `2h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("'{text}' is not a duration (e.g. 500ms, 30s, 1m, 2h)"))?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" | "min" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(format!("'{text}' has an unknown unit (use ms, s, m or h)")),
    };
    ms.map(Duration::from_millis).ok_or_else(|| format!("'{text}' is too long"))
}

/// What to observe.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long.
    pub duration: Duration,
    /// Between samples.
    pub interval: Duration,
    /// `[observe] country` from the configuration.
    pub country: Option<String>,
    /// How the processes are sampled.
    pub backend: BackendKind,
}

impl Options {
    /// Check the bounds: interval ≥ 100 ms, duration ≤ 24 h.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval < MIN_INTERVAL {
            return Err(format!("--interval must be at least 100ms (got {} ms)", self.interval.as_millis()));
        }
        if self.duration > MAX_DURATION {
            return Err("--duration must be at most 24h".into());
        }
        Ok(())
    }

    /// Samples taken: one at the start, then one per interval until the duration is over.
    pub fn samples(&self) -> u64 {
        let n = self.duration.as_millis() / self.interval.as_millis().max(1);
        u64::try_from(n).unwrap_or(u64::MAX).saturating_add(1)
    }
}

/// One process as one sample saw it.
#[derive(Debug, Clone, Default)]
pub struct ProcSample {
    /// Process id.
    pub pid: u32,
    /// Start time after boot in clock ticks (tells a reused pid apart).
    pub start_ticks: u64,
    /// The executable's path (without " (deleted)").
    pub exe: String,
    /// The executable was deleted (or replaced) since the process started.
    pub deleted: bool,
    /// The arguments.
    pub cmdline: Vec<String>,
    /// Real user id.
    pub uid: Option<u32>,
    /// What the process may do: [`PRIVILEGES`] (see [`privilege`]).
    pub privilege: Option<&'static str>,
    /// Parent pid.
    pub ppid: u32,
    /// utime + stime, clock ticks.
    pub cpu_ticks: u64,
    /// Threads.
    pub threads: u64,
    /// Virtual size, bytes.
    pub virtual_bytes: u64,
    /// Peak virtual size, bytes.
    pub virtual_peak: u64,
    /// Resident set, bytes.
    pub working_set: u64,
    /// Peak resident set, bytes.
    pub working_set_peak: u64,
    /// Private (anonymous resident) bytes.
    pub private_bytes: u64,
    /// Open file descriptors (`None` when they cannot be listed).
    pub fds: Option<u64>,
}

/// Why a process was not sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A kernel thread (no executable).
    KernelThread,
    /// Its executable cannot be read by this user.
    PermissionDenied,
    /// It exited while being read.
    Vanished,
}

/// What one pass over the processes saw (either backend).
#[derive(Debug, Default)]
pub struct Pass {
    /// The processes sampled.
    pub samples: Vec<ProcSample>,
    /// Every process's name, by pid (for parent names).
    pub names: HashMap<u32, String>,
    /// The processes skipped: (pid, start, why).
    pub skipped: Vec<(u32, u64, Skip)>,
}

/// The platform of an executable from its first bytes: the ELF class (or a PE's machine, for Wine).
pub fn platform_of_header(head: &[u8]) -> Option<&'static str> {
    if head.len() >= 5 && head[..4] == *b"\x7fELF" {
        return match head[4] {
            1 => Some("32-bit"),
            2 => Some("64-bit"),
            _ => None,
        };
    }
    // PE: the machine in the COFF header that e_lfanew points to (within the head read).
    if head.len() >= 0x40 && head[..2] == *b"MZ" {
        let at = u32::from_le_bytes([head[0x3c], head[0x3d], head[0x3e], head[0x3f]]) as usize;
        let machine = head.get(at..at.checked_add(6)?).filter(|h| h[..4] == *b"PE\0\0")?;
        return match u16::from_le_bytes([machine[4], machine[5]]) {
            0x014c | 0x01c0 | 0x01c4 => Some("32-bit"),
            0x8664 | 0xaa64 | 0x0200 => Some("64-bit"),
            _ => None,
        };
    }
    // Mach-O (thin; a universal binary has both).
    match head.get(..4)? {
        [0xfe, 0xed, 0xfa, 0xce] | [0xce, 0xfa, 0xed, 0xfe] => Some("32-bit"),
        [0xfe, 0xed, 0xfa, 0xcf] | [0xcf, 0xfa, 0xed, 0xfe] => Some("64-bit"),
        _ => None,
    }
}

/// Which backend samples the processes: `/proc` (Linux only, its default) or `sysinfo` (everywhere else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// `/proc` ([`linux`]).
    Proc,
    /// The `sysinfo` crate ([`portable`]).
    Sysinfo,
}

impl Default for BackendKind {
    fn default() -> Self {
        if cfg!(target_os = "linux") { Self::Proc } else { Self::Sysinfo }
    }
}

impl BackendKind {
    /// The values [`BackendKind::parse`] accepts on this platform, for messages.
    pub const ACCEPTED: &'static str =
        if cfg!(target_os = "linux") { "proc or sysinfo" } else { "sysinfo (/proc is read on Linux only)" };

    /// The backend named by `FILEREP_OBSERVE_BACKEND` (`None` or empty: the platform's default).
    pub fn parse(value: Option<&str>) -> Result<Self, Error> {
        match value.map(str::trim) {
            None | Some("") => Ok(Self::default()),
            Some("sysinfo") => Ok(Self::Sysinfo),
            Some("proc") if cfg!(target_os = "linux") => Ok(Self::Proc),
            Some(other) => Err(Error::BadBackend { value: other.to_string(), accepted: Self::ACCEPTED }),
        }
    }

    /// The backend chosen by the environment ([`BACKEND_ENV`]).
    pub fn from_env() -> Result<Self, Error> {
        let value = std::env::var_os(BACKEND_ENV).map(|v| v.to_string_lossy().into_owned());
        Self::parse(value.as_deref())
    }
}

/// A sampling backend with what the observation needs of it besides the samples: where to read a
/// process's executable (to hash it and read its header), the owners' names, and the clock of `cpu_ticks`.
#[derive(Debug)]
pub enum Backend {
    /// `/proc` (normally `/proc`), with `/etc/passwd`: uid → (name, home).
    #[cfg(target_os = "linux")]
    Proc {
        /// The `/proc` directory.
        proc: PathBuf,
        /// `/etc/passwd`.
        passwd: HashMap<u32, (String, String)>,
    },
    /// `sysinfo`, with the system's user names by uid.
    Sysinfo {
        /// The sampler (one `sysinfo::System` for the whole observation).
        sampler: Box<portable::Sampler>,
        /// uid → user name.
        users: HashMap<u32, String>,
    },
}

impl Backend {
    /// Open the backend of `kind`: check that it can list the processes here.
    pub fn open(kind: BackendKind) -> Result<Self, Error> {
        match kind {
            #[cfg(target_os = "linux")]
            BackendKind::Proc => {
                let proc = PathBuf::from("/proc");
                std::fs::metadata(proc.join("self/stat"))
                    .map_err(|source| Error::NoProc { path: proc.display().to_string(), source })?;
                let passwd =
                    std::fs::read_to_string("/etc/passwd").map(|t| linux::parse_passwd(&t)).unwrap_or_default();
                Ok(Self::Proc { proc, passwd })
            }
            #[cfg(not(target_os = "linux"))]
            BackendKind::Proc => Err(Error::BadBackend { value: "proc".into(), accepted: BackendKind::ACCEPTED }),
            BackendKind::Sysinfo => {
                if !sysinfo::IS_SUPPORTED_SYSTEM {
                    return Err(Error::Unsupported);
                }
                Ok(Self::Sysinfo { sampler: Box::default(), users: portable::Sampler::user_names() })
            }
        }
    }

    /// One pass over the processes.
    pub fn sample(&mut self) -> Result<Pass, Error> {
        match self {
            #[cfg(target_os = "linux")]
            Self::Proc { proc, .. } => {
                linux::sample(proc).map_err(|source| Error::NoProc { path: proc.display().to_string(), source })
            }
            Self::Sysinfo { sampler, .. } => Ok(sampler.sample()),
        }
    }

    /// The file to hash for a sampled process: `/proc/PID/exe` (the very file it runs, even deleted or
    /// replaced), or the executable's path (`None` when it was deleted or replaced: the file now at that
    /// path is not the one running, and the process's executable is counted as unhashable).
    pub fn exe_file(&self, s: &ProcSample) -> Option<PathBuf> {
        match self {
            #[cfg(target_os = "linux")]
            Self::Proc { proc, .. } => Some(proc.join(s.pid.to_string()).join("exe")),
            Self::Sysinfo { .. } => (!s.deleted).then(|| PathBuf::from(&s.exe)),
        }
    }

    /// The owner of `uid`: (user name, home directory if known).
    pub fn account(&self, uid: u32) -> Option<(&str, Option<&str>)> {
        match self {
            #[cfg(target_os = "linux")]
            Self::Proc { passwd, .. } => passwd.get(&uid).map(|(n, h)| (n.as_str(), Some(h.as_str()))),
            Self::Sysinfo { users, .. } => users.get(&uid).map(|n| (n.as_str(), None)),
        }
    }

    /// Units of `cpu_ticks` per second: the kernel's clock ticks for `/proc`, milliseconds for `sysinfo`.
    pub fn clock_ticks(&self) -> f64 {
        match self {
            #[cfg(target_os = "linux")]
            Self::Proc { .. } => linux::clock_ticks(),
            Self::Sysinfo { .. } => portable::CLOCK_TICKS,
        }
    }
}

/// The privileges a process may have, from most to least.
pub const PRIVILEGES: [&str; 3] = ["root", "elevated", "user"];

/// What a process may do, the Unix counterpart of Windows' integrity level: `root` when its effective user
/// id is 0, `elevated` when it runs set-uid (the effective user id is not the real one) or holds effective
/// capabilities, else `user`; `None` when the effective user id is unknown.
pub fn privilege(uid: Option<u32>, euid: Option<u32>, cap_eff: Option<u64>) -> Option<&'static str> {
    let euid = euid?;
    Some(if euid == 0 {
        PRIVILEGES[0]
    } else if uid != Some(euid) || cap_eff.is_some_and(|c| c != 0) {
        PRIVILEGES[1]
    } else {
        PRIVILEGES[2]
    })
}

/// A file's modification time in nanoseconds since the epoch (0 when unknown).
fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec())
    }
    #[cfg(not(unix))]
    {
        meta.modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_nanos()).ok())
            .unwrap_or(0)
    }
}

/// A figure in bytes over the samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Bytes {
    /// Mean over the samples in which the executable ran.
    pub mean: u64,
    /// Maximum.
    pub max: u64,
}

/// A count over the samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Count {
    /// Mean over the samples in which the executable ran.
    pub mean: f64,
    /// Maximum.
    pub max: u64,
}

/// One executable in the `--json` document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileSighting {
    /// SHA-256 (hex).
    pub sha256: String,
    /// SHA-1 (hex).
    pub sha1: String,
    /// MD5 (hex).
    pub md5: String,
    /// The executable's path.
    pub path: String,
    /// The file was deleted or replaced while running.
    pub deleted: bool,
    /// Its digests came from the cache (it was hashed by an earlier run, and has not changed since).
    pub cached: bool,
    /// Processes seen running it.
    pub processes: u64,
    /// The most common parent process name.
    pub parent: Option<String>,
    /// The command line of its first process, redacted.
    pub command_line: Option<String>,
    /// The owner's user name (or uid) of its first process.
    pub owner: Option<String>,
    /// What its first process may do, the counterpart of Windows' integrity level: `root` (effective user
    /// id 0), `elevated` (set-uid, or effective capabilities), `user` (none of these).
    pub privilege: Option<String>,
    /// `32-bit` / `64-bit`.
    pub platform: Option<String>,
    /// Share of the machine's CPU time, percent (`None` with one sample).
    pub cpu_percent: Option<f64>,
    /// Private (anonymous) resident bytes, all its processes together.
    pub private_bytes: Bytes,
    /// Virtual bytes.
    pub virtual_bytes: Bytes,
    /// Resident bytes.
    pub working_set: Bytes,
    /// The largest peak resident size of one of its processes.
    pub peak_working_set: u64,
    /// Threads.
    pub threads: Count,
    /// Open file descriptors.
    pub handles: Count,
}

/// Processes not observed, by reason (each process counted once per run).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Skipped {
    /// Kernel threads.
    pub kernel_threads: u64,
    /// Processes whose executable this user may not read (another user's; run as root to see them).
    pub permission_denied: u64,
    /// Processes that exited before they could be read.
    pub vanished: u64,
    /// Executables that could not be hashed (exited before, or unreadable).
    pub unhashable: u64,
    /// Executables whose path, once escaped and cut to [`MAX_TEXT`] (see [`redact::printable`]), reads the same
    /// as another's (`a<newline>b` and a literal `a\x0ab`): a run lists each path once, so only the first is kept.
    #[serde(default)]
    pub same_printed_path: u64,
}

/// The `--json` document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Observation {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The participant id.
    pub participant: String,
    /// The machine.
    pub host: host::HostProfile,
    /// Start, RFC 3339.
    pub started_at: String,
    /// Seconds observed (first to last sample).
    pub duration_secs: f64,
    /// Samples taken.
    pub samples: u64,
    /// Executables hashed in this run.
    pub hashed: u64,
    /// Executables whose digests came from the cache.
    pub cached: u64,
    /// Per executable, largest working set first.
    pub files: Vec<FileSighting>,
    /// What was not observed.
    pub skipped: Skipped,
}

#[derive(Debug, Default, Clone, Copy)]
struct TickSum {
    tick: u64,
    private: u64,
    virt: u64,
    ws: u64,
    threads: u64,
    fds: u64,
}

#[derive(Debug, Default)]
struct ProcAcc {
    first_cpu: u64,
    last_cpu: u64,
}

#[derive(Debug, Default)]
struct FileAcc {
    deleted: bool,
    procs: HashMap<(u32, u64), ProcAcc>,
    /// Processes beyond [`MAX_TRACKED_PROCESSES`] (counted, their CPU time not followed).
    untracked: u64,
    ticks: Vec<TickSum>,
    parents: BTreeMap<String, u64>,
    first_cmdline: Option<Vec<String>>,
    first_uid: Option<u32>,
    first_privilege: Option<&'static str>,
    peak_ws: u64,
}

/// The samples of a run, aggregated per executable path.
#[derive(Debug, Default)]
pub struct Aggregator {
    ticks: u64,
    first_at: Option<f64>,
    last_at: f64,
    files: BTreeMap<String, FileAcc>,
}

/// An executable's figures, before the digests are attached.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Path.
    pub path: String,
    /// Deleted while running.
    pub deleted: bool,
    /// Distinct processes.
    pub processes: u64,
    /// Most common parent name.
    pub parent: Option<String>,
    /// The first process's arguments.
    pub cmdline: Option<Vec<String>>,
    /// The first process's uid.
    pub uid: Option<u32>,
    /// The first process's privilege.
    pub privilege: Option<&'static str>,
    /// CPU share, percent.
    pub cpu_percent: Option<f64>,
    /// Private bytes.
    pub private_bytes: Bytes,
    /// Virtual bytes.
    pub virtual_bytes: Bytes,
    /// Working set.
    pub working_set: Bytes,
    /// Peak working set.
    pub peak_working_set: u64,
    /// Threads.
    pub threads: Count,
    /// Handles.
    pub handles: Count,
}

impl Aggregator {
    /// Add one sample taken `at` seconds after the start; `names` gives each pid's name (for parents).
    pub fn add(&mut self, at: f64, samples: &[ProcSample], names: &HashMap<u32, String>) {
        let tick = self.ticks;
        self.ticks += 1;
        self.first_at.get_or_insert(at);
        self.last_at = at;
        for s in samples {
            let f = self.files.entry(s.exe.clone()).or_default();
            f.deleted |= s.deleted;
            let key = (s.pid, s.start_ticks);
            if let Some(p) = f.procs.get_mut(&key) {
                p.last_cpu = s.cpu_ticks.max(p.first_cpu);
            } else if f.procs.len() < MAX_TRACKED_PROCESSES {
                if let Some(parent) = names.get(&s.ppid) {
                    if f.parents.len() < 1000 || f.parents.contains_key(parent) {
                        *f.parents.entry(parent.clone()).or_default() += 1;
                    }
                }
                f.procs.insert(key, ProcAcc { first_cpu: s.cpu_ticks, last_cpu: s.cpu_ticks });
            } else {
                f.untracked += 1;
            }
            if f.first_cmdline.is_none() {
                f.first_cmdline = Some(s.cmdline.clone());
                f.first_uid = s.uid;
                f.first_privilege = s.privilege;
            }
            f.peak_ws = f.peak_ws.max(s.working_set_peak).max(s.working_set);
            if f.ticks.last().is_none_or(|t| t.tick != tick) {
                f.ticks.push(TickSum { tick, ..TickSum::default() });
            }
            if let Some(t) = f.ticks.last_mut() {
                t.private += s.private_bytes;
                t.virt += s.virtual_bytes;
                t.ws += s.working_set;
                t.threads += s.threads;
                t.fds += s.fds.unwrap_or(0);
            }
        }
    }

    /// Samples added.
    pub fn samples(&self) -> u64 {
        self.ticks
    }

    /// Seconds from the first sample to the last.
    pub fn elapsed(&self) -> f64 {
        self.first_at.map_or(0.0, |f| self.last_at - f)
    }

    /// The figures per executable. CPU share = the CPU time its processes used between their first and last
    /// sample / (the wall time from the first sample to the last × CPUs); `None` with a single sample.
    pub fn figures(&self, clock_ticks: f64, cpus: usize) -> Vec<Figures> {
        let wall = self.elapsed();
        self.files
            .iter()
            .map(|(path, f)| {
                let n = f.ticks.len().max(1) as u64;
                let bytes = |get: fn(&TickSum) -> u64| Bytes {
                    mean: f.ticks.iter().map(get).sum::<u64>() / n,
                    max: f.ticks.iter().map(get).max().unwrap_or(0),
                };
                let count = |get: fn(&TickSum) -> u64| Count {
                    mean: f.ticks.iter().map(get).sum::<u64>() as f64 / n as f64,
                    max: f.ticks.iter().map(get).max().unwrap_or(0),
                };
                let cpu_ticks: u64 = f.procs.values().map(|p| p.last_cpu - p.first_cpu).sum();
                let cpu_percent = (wall > 0.0 && clock_ticks > 0.0).then(|| {
                    let share = cpu_ticks as f64 / clock_ticks / (wall * cpus.max(1) as f64) * 100.0;
                    (share.min(100.0) * 100.0).round() / 100.0
                });
                let parent =
                    f.parents.iter().max_by_key(|(name, n)| (**n, std::cmp::Reverse(*name))).map(|(k, _)| k.clone());
                Figures {
                    path: path.clone(),
                    deleted: f.deleted,
                    processes: f.procs.len() as u64 + f.untracked,
                    parent,
                    cmdline: f.first_cmdline.clone(),
                    uid: f.first_uid,
                    privilege: f.first_privilege,
                    cpu_percent,
                    private_bytes: bytes(|t| t.private),
                    virtual_bytes: bytes(|t| t.virt),
                    working_set: bytes(|t| t.ws),
                    peak_working_set: f.peak_ws,
                    threads: count(|t| t.threads),
                    handles: count(|t| t.fds),
                }
            })
            .collect()
    }
}

/// The participant id: 128 random bits (hex), kept in `participant-id` next to the store, created (mode 0600)
/// on first use.
pub fn participant_id(store: &Path) -> Result<String, Error> {
    let path = participant_path(store);
    let dir = path.parent().unwrap_or(Path::new("."));
    let err = |source| Error::Participant { path: path.display().to_string(), source };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(id.to_ascii_lowercase());
            }
            return Err(err(io::Error::other(
                "not a participant id (32 hex digits); remove the file to get a new one",
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| err(io::Error::other(e.to_string())))?;
    let id = crate::hex::encode(&bytes);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    match opts.open(&path) {
        Ok(mut f) => {
            use std::io::Write as _;
            f.write_all(format!("{id}\n").as_bytes()).map_err(err)?;
            Ok(id)
        }
        // Another observe created it meanwhile: use theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => participant_id(store),
        Err(e) => Err(err(e)),
    }
}

/// Hash an executable (MD5, SHA-1, SHA-256 in one streaming pass).
pub fn hash_file(path: &Path) -> io::Result<ObservedDigests> {
    hash_open(std::fs::File::open(path)?).map(|(d, _)| d)
}

/// Hash an open executable in one read: its first 4 KiB give the platform, and the digests run over the
/// whole file (MD5, SHA-1, SHA-256 in one streaming pass).
fn hash_open(mut f: std::fs::File) -> io::Result<(ObservedDigests, Option<&'static str>)> {
    let head = read_head(&mut f)?;
    let platform = platform_of_header(&head);
    let d = crate::hashing::digest_stream(head, &mut f)?;
    let bad = || io::Error::other("digest is not hex");
    let arr = |s: &str| crate::hex::decode(s).ok_or_else(bad);
    let digests = ObservedDigests {
        sha256: arr(&d.sha256)?.try_into().map_err(|_| bad())?,
        sha1: arr(&d.sha1)?.try_into().map_err(|_| bad())?,
        md5: arr(&d.md5)?.try_into().map_err(|_| bad())?,
    };
    Ok((digests, platform))
}

/// An executable waiting for the hasher thread: the sampled path, its cache key, modification time and size,
/// and the file itself, opened when it was first seen (its process may be gone by the time it is hashed).
struct HashJob {
    exe: String,
    key: String,
    mtime_ns: i64,
    len: u64,
    file: std::fs::File,
}

/// At most this many opened executables wait for the hasher; beyond, sampling waits (bounded descriptors).
const HASH_QUEUE: usize = 256;

/// Observe this machine and record the result in the store at `store_path`. `progress` gets one line now
/// and then (for stderr).
pub fn run(store_path: &Path, opts: &Options, progress: &mut dyn FnMut(&str)) -> Result<Observation, Error> {
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    let mut backend = Backend::open(opts.backend)?;
    if !store_path.exists() {
        // Create (and migrate) it now and let go: a reader that creates the store holds the writer lock for as
        // long as it is open, and an observation may last hours.
        drop(SqliteStore::open(store_path, crate::store::sqlite::Mode::Write)?);
    }
    let store = SqliteStore::open(store_path, crate::store::sqlite::Mode::Read)?;
    let participant = participant_id(store_path)?;
    let started = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let t0 = Instant::now();
    let samples = opts.samples();
    progress(&format!(
        "observing the processes of this machine for {} s ({samples} sample{})…",
        opts.duration.as_secs_f64(),
        if samples == 1 { "" } else { "s" }
    ));

    let mut agg = Aggregator::default();
    // Digests per executable path, taken from the cache or computed from the file opened at its first
    // sighting (the file may be deleted or the process gone by the end). New executables are hashed on a
    // thread of their own, so that the samples keep to the interval while a first run hashes the machine.
    let mut digests: HashMap<String, (ObservedDigests, Option<&'static str>, bool)> = HashMap::new();
    let mut queued: std::collections::HashSet<String> = std::collections::HashSet::new();
    let (jobs, queue) = std::sync::mpsc::sync_channel::<HashJob>(HASH_QUEUE);
    let hasher = std::thread::Builder::new()
        .name("observe-hasher".into())
        .spawn(move || {
            queue
                .into_iter()
                .filter_map(|job| {
                    hash_open(job.file).ok().map(|(d, platform)| (job.exe, job.key, job.mtime_ns, job.len, d, platform))
                })
                .collect::<Vec<_>>()
        })
        .map_err(Error::Hasher)?;
    let mut cached = 0u64;
    let mut skipped: HashMap<(u32, u64), Skip> = HashMap::new();
    for i in 0..samples {
        if i > 0 {
            let due = opts.interval.saturating_mul(u32::try_from(i).unwrap_or(u32::MAX));
            if let Some(wait) = due.checked_sub(t0.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let at = t0.elapsed().as_secs_f64();
        let pass = backend.sample()?;
        for (pid, start, why) in &pass.skipped {
            if skipped.len() < 4 * MAX_TRACKED_PROCESSES {
                skipped.entry((*pid, *start)).or_insert(*why);
            }
        }
        for s in &pass.samples {
            if digests.contains_key(&s.exe) || queued.contains(&s.exe) {
                continue;
            }
            let Some(exe_file) = backend.exe_file(s) else { continue };
            // Only regular files are opened: a FIFO or a device put where an executable was would block the
            // open, or never end.
            if !std::fs::metadata(&exe_file).is_ok_and(|m| m.is_file()) {
                continue;
            }
            let Ok(mut file) = std::fs::File::open(&exe_file) else { continue };
            let Ok(meta) = file.metadata() else { continue };
            let (mtime_ns, len) = (mtime_ns(&meta), meta.len());
            let key = if s.deleted { format!("{} (deleted)", s.exe) } else { s.exe.clone() };
            if let Some(d) = store.observed_file_get(&key, mtime_ns, len)? {
                cached += 1;
                let platform = read_head(&mut file).ok().and_then(|h| platform_of_header(&h));
                digests.insert(s.exe.clone(), (d, platform, true));
                continue;
            }
            queued.insert(s.exe.clone());
            // Fails only when the hasher is gone (it panicked); its join below reports that.
            if jobs.send(HashJob { exe: s.exe.clone(), key, mtime_ns, len, file }).is_err() {
                break;
            }
        }
        agg.add(at, &pass.samples, &pass.names);
    }
    drop(jobs);
    let mut hashed: Vec<(String, i64, u64, ObservedDigests)> = Vec::new();
    let done = hasher.join().map_err(|_| Error::Hasher(io::Error::other("the hashing thread panicked")))?;
    for (exe, key, mtime_ns, len, d, platform) in done {
        hashed.push((key, mtime_ns, len, d.clone()));
        digests.insert(exe, (d, platform, false));
    }
    let elapsed = agg.elapsed();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut out = Observation {
        schema_version: SCHEMA_VERSION,
        participant,
        host: host::profile(opts.country.clone()),
        started_at: crate::analysis::pe::rfc3339(i64::try_from(started).unwrap_or(0)),
        duration_secs: (elapsed * 1000.0).round() / 1000.0,
        samples: agg.samples(),
        hashed: hashed.len() as u64,
        cached,
        files: Vec::new(),
        skipped: Skipped::default(),
    };
    for why in skipped.values() {
        match why {
            Skip::KernelThread => out.skipped.kernel_threads += 1,
            Skip::PermissionDenied => out.skipped.permission_denied += 1,
            Skip::Vanished => out.skipped.vanished += 1,
        }
    }
    let mut rows = Vec::new();
    let mut printed_paths = std::collections::HashSet::new();
    for f in agg.figures(backend.clock_ticks(), cpus) {
        let Some((d, platform, from_cache)) = digests.get(&f.path) else {
            out.skipped.unhashable += 1;
            continue;
        };
        let path = redact::printable(&f.path, MAX_TEXT);
        if !printed_paths.insert(path.clone()) {
            out.skipped.same_printed_path += 1;
            continue;
        }
        let account = f.uid.and_then(|u| backend.account(u));
        let owner = account.map(|(n, _)| redact::printable(n, MAX_SHORT_TEXT)).or_else(|| f.uid.map(|u| u.to_string()));
        let command_line = f
            .cmdline
            .as_ref()
            .map(|args| redact::redact_command_line(args, account.map(|(n, _)| n), account.and_then(|(_, h)| h)));
        let sighting = FileSighting {
            sha256: crate::hex::encode(&d.sha256),
            sha1: crate::hex::encode(&d.sha1),
            md5: crate::hex::encode(&d.md5),
            path,
            deleted: f.deleted,
            cached: *from_cache,
            processes: f.processes,
            parent: f.parent.as_deref().map(|p| redact::printable(p, MAX_TEXT)),
            command_line,
            owner,
            privilege: f.privilege.map(str::to_string),
            platform: platform.map(str::to_string),
            cpu_percent: f.cpu_percent,
            private_bytes: f.private_bytes,
            virtual_bytes: f.virtual_bytes,
            working_set: f.working_set,
            peak_working_set: f.peak_working_set,
            threads: f.threads,
            handles: f.handles,
        };
        rows.push(sighting_row(d, &sighting));
        out.files.push(sighting);
    }
    out.files.sort_by(|a, b| b.working_set.max.cmp(&a.working_set.max).then_with(|| a.path.cmp(&b.path)));
    let run = ObservationRow {
        participant: out.participant.clone(),
        started_at: i64::try_from(started).unwrap_or(0),
        duration_ms: (elapsed * 1000.0) as i64,
        samples: i64::try_from(out.samples).unwrap_or(i64::MAX),
        host: serde_json::to_string(&out.host).unwrap_or_else(|_| "{}".into()),
        host_key: out.host.key(),
    };
    store.record_observation(&run, &hashed, &rows)?;
    Ok(out)
}

/// The first 4 KiB of a file: enough for an ELF or Mach-O magic, and for a PE's COFF header (e_lfanew is
/// small in practice).
fn read_head(f: &mut std::fs::File) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(4096);
    f.take(4096).read_to_end(&mut head)?;
    Ok(head)
}

fn sighting_row(d: &ObservedDigests, s: &FileSighting) -> SightingRow {
    let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    SightingRow {
        sha256: d.sha256,
        sha1: d.sha1,
        md5: d.md5,
        path: s.path.clone(),
        processes: i(s.processes),
        parent: s.parent.clone(),
        command_line: s.command_line.clone(),
        owner: s.owner.clone(),
        privilege: s.privilege.clone(),
        platform: s.platform.clone(),
        cpu_percent: s.cpu_percent,
        private: (i(s.private_bytes.mean), i(s.private_bytes.max)),
        virtual_bytes: (i(s.virtual_bytes.mean), i(s.virtual_bytes.max)),
        working_set: (i(s.working_set.mean), i(s.working_set.max)),
        peak_working_set: i(s.peak_working_set),
        threads: (s.threads.mean, i(s.threads.max)),
        handles: (s.handles.mean, i(s.handles.max)),
    }
}

/// Where the participant id of the store at `store` is kept.
pub fn participant_path(store: &Path) -> PathBuf {
    store.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).join("participant-id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privilege_is_root_elevated_or_user() {
        assert_eq!(privilege(Some(0), Some(0), Some(0x1ff_ffff_ffff)), Some("root"));
        // A set-uid root program run by a user is root; one set-uid to another user is elevated.
        assert_eq!(privilege(Some(1000), Some(0), None), Some("root"));
        assert_eq!(privilege(Some(1000), Some(33), Some(0)), Some("elevated"));
        // Capabilities without root (CAP_NET_BIND_SERVICE).
        assert_eq!(privilege(Some(33), Some(33), Some(0x400)), Some("elevated"));
        assert_eq!(privilege(Some(1000), Some(1000), Some(0)), Some("user"));
        assert_eq!(privilege(Some(1000), Some(1000), None), Some("user"));
        assert_eq!(privilege(Some(1000), None, Some(0)), None);
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "s", "1.5s", "-1s", "10x", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bounds_and_sample_counts() {
        let o = |d: u64, i: u64| Options {
            duration: Duration::from_millis(d),
            interval: Duration::from_millis(i),
            country: None,
            backend: BackendKind::default(),
        };
        assert_eq!(o(1000, 200).samples(), 6);
        assert_eq!(o(0, 1000).samples(), 1);
        assert_eq!(o(30_000, 1000).samples(), 31);
        assert!(o(1000, 200).validate().is_ok());
        assert!(o(1000, 99).validate().is_err());
        assert!(o(25 * 3_600_000, 1000).validate().is_err());
    }

    fn proc(pid: u32, exe: &str, cpu: u64, ws: u64) -> ProcSample {
        ProcSample {
            pid,
            start_ticks: 7,
            exe: exe.into(),
            ppid: 1,
            cpu_ticks: cpu,
            threads: 2,
            working_set: ws,
            working_set_peak: ws,
            private_bytes: ws / 2,
            virtual_bytes: ws * 4,
            fds: Some(3),
            cmdline: vec![exe.into()],
            uid: Some(1000),
            ..ProcSample::default()
        }
    }

    #[test]
    fn cpu_share_and_memory_are_aggregated_per_executable() {
        let names: HashMap<u32, String> = [(1, "init".to_string())].into();
        let mut a = Aggregator::default();
        // Two processes of /bin/a, one of /bin/b; 100 ticks per second, 2 CPUs, 2 s of wall time.
        a.add(0.0, &[proc(10, "/bin/a", 100, 1000), proc(11, "/bin/a", 0, 3000), proc(20, "/bin/b", 5, 10)], &names);
        a.add(1.0, &[proc(10, "/bin/a", 150, 2000), proc(11, "/bin/a", 50, 3000)], &names);
        // /bin/b exited; process 11 exited too.
        a.add(2.0, &[proc(10, "/bin/a", 300, 1000)], &names);
        let f = a.figures(100.0, 2);
        assert_eq!(f.len(), 2);
        let fa = &f[0];
        assert_eq!(fa.path, "/bin/a");
        assert_eq!(fa.processes, 2);
        // (200 + 50) ticks = 2.5 s of CPU over 2 s × 2 CPUs = 62.5 %.
        assert_eq!(fa.cpu_percent, Some(62.5));
        // Working set per sample: 4000, 5000, 1000.
        assert_eq!(fa.working_set, Bytes { mean: 3333, max: 5000 });
        assert_eq!(fa.threads, Count { mean: 10.0 / 3.0, max: 4 });
        assert_eq!(fa.handles.max, 6);
        assert_eq!(fa.peak_working_set, 3000);
        assert_eq!(fa.parent.as_deref(), Some("init"));
        let fb = &f[1];
        assert_eq!((fb.processes, fb.cpu_percent), (1, Some(0.0)));
        assert_eq!(fb.working_set, Bytes { mean: 10, max: 10 });
        // A single sample has no CPU share.
        let mut one = Aggregator::default();
        one.add(0.0, &[proc(10, "/bin/a", 100, 1000)], &names);
        assert_eq!(one.figures(100.0, 2)[0].cpu_percent, None);
        // A reused pid is another process.
        let mut r = Aggregator::default();
        r.add(0.0, &[proc(10, "/bin/a", 100, 1000)], &names);
        r.add(1.0, &[ProcSample { start_ticks: 99, cpu_ticks: 0, ..proc(10, "/bin/a", 0, 1000) }], &names);
        let fr = &r.figures(100.0, 1)[0];
        assert_eq!((fr.processes, fr.cpu_percent), (2, Some(0.0)));
    }

    #[test]
    fn the_participant_id_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("sub/store.sqlite");
        let id = participant_id(&store).unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(participant_id(&store).unwrap(), id);
        assert_ne!(participant_id(&dir.path().join("other/store.sqlite")).unwrap(), id);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(participant_path(&store)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(participant_path(&store), "garbage").unwrap();
        assert!(participant_id(&store).is_err());
    }

    #[test]
    fn elf_class_gives_the_platform() {
        assert_eq!(platform_of_header(b"\x7fELF\x02\x01"), Some("64-bit"));
        assert_eq!(platform_of_header(b"\x7fELF\x01"), Some("32-bit"));
        assert_eq!(platform_of_header(b"MZ\x90\x00\x03"), None);
        let mut pe = vec![0u8; 0x90];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c] = 0x80;
        pe[0x80..0x84].copy_from_slice(b"PE\0\0");
        pe[0x84..0x86].copy_from_slice(&0x8664u16.to_le_bytes());
        assert_eq!(platform_of_header(&pe), Some("64-bit"));
        pe[0x84..0x86].copy_from_slice(&0x014cu16.to_le_bytes());
        assert_eq!(platform_of_header(&pe), Some("32-bit"));
        pe[0x3c] = 0xff;
        assert_eq!(platform_of_header(&pe), None, "e_lfanew beyond the head");
        assert_eq!(platform_of_header(&[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1]), Some("64-bit"));
        assert_eq!(platform_of_header(&[0xca, 0xfe, 0xba, 0xbe]), None);
        assert_eq!(platform_of_header(b"\x7fEL"), None);
    }

    #[test]
    fn the_backend_is_chosen_by_the_environment_value() {
        assert_eq!(BackendKind::parse(None).unwrap(), BackendKind::default());
        assert_eq!(BackendKind::parse(Some("")).unwrap(), BackendKind::default());
        assert_eq!(BackendKind::parse(Some("sysinfo")).unwrap(), BackendKind::Sysinfo);
        if cfg!(target_os = "linux") {
            assert_eq!(BackendKind::default(), BackendKind::Proc);
            assert_eq!(BackendKind::parse(Some("proc")).unwrap(), BackendKind::Proc);
        } else {
            assert_eq!(BackendKind::default(), BackendKind::Sysinfo);
            assert!(BackendKind::parse(Some("proc")).is_err());
        }
        let e = BackendKind::parse(Some("wmi")).unwrap_err().to_string();
        assert!(e.contains("FILEREP_OBSERVE_BACKEND") && e.contains("\"wmi\"") && e.contains("sysinfo"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn a_file_is_hashed_with_the_known_digests() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        let d = hash_file(&p).unwrap();
        assert_eq!(crate::hex::encode(&d.sha256), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(crate::hex::encode(&d.md5), "900150983cd24fb0d6963f7d28e17f72");
    }
}
