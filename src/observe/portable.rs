//! Sampling the processes of any platform that the `sysinfo` crate supports (Windows, macOS, the BSDs, Linux).
//!
//! One [`sysinfo::System`] is kept for the whole observation and only its processes are refreshed at each
//! sample, so a sample costs about what the `/proc` backend's does. What `sysinfo` gives, and how it fills a
//! [`ProcSample`]:
//!
//! - `start_ticks`: the start time in seconds since the epoch (it only tells a reused pid apart);
//! - `cpu_ticks`: the accumulated CPU time in **milliseconds**, so this backend's clock is [`CLOCK_TICKS`]
//!   (1000 per second);
//! - `threads`: the tasks of the process plus its main thread where `sysinfo` lists them (Linux); elsewhere
//!   1, a lower bound (every running process has a thread);
//! - `virtual_bytes`, `working_set`: `virtual_memory()` and `memory()`; the peaks are the largest value this
//!   sampler saw for the process (the OS's own peak is not given);
//! - `private_bytes`: on Windows `sysinfo`'s "virtual memory" is the private commit (`PrivateUsage`), used for
//!   both; elsewhere `sysinfo` does not give it, and it is 0;
//! - `fds`: open files (handles on Windows) where `sysinfo` can count them, else `None`;
//! - `uid`: the real user id on Unix; `None` on Windows (a SID is no number), so no owner there;
//! - `privilege`: from the real and effective user ids on Unix (capabilities are not given: a process that
//!   is elevated by capabilities alone shows as `user`); `None` on Windows (its integrity level is not given);
//! - `deleted`: only Linux tells it (the `" (deleted)"` suffix of the exe link); false elsewhere.
//!
//! A process without an executable path is skipped: a kernel thread, another user's process this user may
//! not inspect, or one that exited (a zombie) while being read.
//!
//! The executable is hashed through its path (there is no `/proc/PID/exe` to open elsewhere): one deleted or
//! replaced since its process started (Linux tells) is counted as unhashable: the file at its path is not the
//! one running.

use std::collections::{HashMap, HashSet};

use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

use super::{Pass, ProcSample, Skip};

/// Clock ticks per second of this backend's `cpu_ticks` (milliseconds).
pub const CLOCK_TICKS: f64 = 1000.0;

/// The process sampler: one `sysinfo::System`, refreshed once per sample.
pub struct Sampler {
    system: System,
    /// Peaks seen per (pid, start): (virtual, working set).
    peaks: HashMap<(u32, u64), (u64, u64)>,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler").field("processes", &self.system.processes().len()).finish()
    }
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

/// Split Linux's `" (deleted)"` suffix off an executable path: (path, deleted).
pub fn split_deleted(exe: &str) -> (String, bool) {
    match exe.strip_suffix(" (deleted)") {
        Some(p) => (p.to_string(), true),
        None => (exe.to_string(), false),
    }
}

/// Why a process without an executable path was not sampled: a kernel thread; one that exited (a zombie,
/// or dead while being read); else a live process whose executable this user may not see (another user's,
/// or a protected process on Windows).
pub fn skip_without_exe(kernel_thread: bool, exited: bool) -> Skip {
    if kernel_thread {
        Skip::KernelThread
    } else if exited {
        Skip::Vanished
    } else {
        Skip::PermissionDenied
    }
}

impl Sampler {
    /// A sampler with an empty process list (the first [`Sampler::sample`] fills it).
    pub fn new() -> Self {
        // On Linux sysinfo keeps a `/proc/PID/stat` open per process (up to half the fd limit) between two
        // refreshes: this process would show that many fds of its own and could run short of them. Each
        // sample opens what it reads instead, as the `/proc` backend does. (Does nothing elsewhere.)
        sysinfo::set_open_files_limit(0);
        Self { system: System::new(), peaks: HashMap::new() }
    }

    /// What is refreshed at each sample: CPU time, memory, the exe path and command line (a process may
    /// exec), the user once, and the tasks (threads, on Linux).
    fn refresh_kind() -> ProcessRefreshKind {
        ProcessRefreshKind::nothing()
            .with_cpu()
            .with_memory()
            .with_exe(UpdateKind::Always)
            .with_cmd(UpdateKind::Always)
            .with_user(UpdateKind::OnlyIfNotSet)
            .with_tasks()
    }

    /// One pass over the processes.
    pub fn sample(&mut self) -> Pass {
        self.system.refresh_processes_specifics(ProcessesToUpdate::All, true, Self::refresh_kind());
        let mut pass = Pass::default();
        let mut live = HashSet::new();
        for (pid, p) in self.system.processes() {
            // Linux lists each thread as a process of its own: its process is sampled instead.
            if p.thread_kind() == Some(sysinfo::ThreadKind::Userland) {
                continue;
            }
            let pid = pid.as_u32();
            let start = p.start_time();
            pass.names.insert(pid, p.name().to_string_lossy().into_owned());
            if pass.samples.len() + pass.skipped.len() >= super::MAX_PROCESSES {
                continue;
            }
            #[cfg(unix)]
            let (uid, euid): (Option<u32>, Option<u32>) =
                (p.user_id().map(|u| **u), p.effective_user_id().map(|u| **u));
            #[cfg(not(unix))]
            let (uid, euid): (Option<u32>, Option<u32>) = (None, None);
            let Some(exe) = p.exe().filter(|e| !e.as_os_str().is_empty()) else {
                let kernel = p.thread_kind() == Some(sysinfo::ThreadKind::Kernel);
                let exited = matches!(p.status(), sysinfo::ProcessStatus::Zombie | sysinfo::ProcessStatus::Dead);
                pass.skipped.push((pid, start, skip_without_exe(kernel, exited)));
                continue;
            };
            let (exe, deleted) = split_deleted(&exe.to_string_lossy());
            let (virtual_bytes, working_set) = (p.virtual_memory(), p.memory());
            let peak = self.peaks.entry((pid, start)).or_default();
            *peak = (peak.0.max(virtual_bytes), peak.1.max(working_set));
            live.insert((pid, start));
            let private_bytes = if cfg!(windows) { virtual_bytes } else { 0 };
            pass.samples.push(ProcSample {
                pid,
                start_ticks: start,
                exe,
                deleted,
                cmdline: p.cmd().iter().map(|a| a.to_string_lossy().into_owned()).collect(),
                uid,
                privilege: super::privilege(uid, euid, None),
                ppid: p.parent().map_or(0, |pp| pp.as_u32()),
                cpu_ticks: p.accumulated_cpu_time(),
                threads: p.tasks().map_or(1, |t| t.len() as u64 + 1),
                virtual_bytes,
                virtual_peak: peak.0,
                working_set,
                working_set_peak: peak.1,
                private_bytes,
                fds: p.open_files().map(|n| n as u64),
            });
        }
        self.peaks.retain(|k, _| live.contains(k));
        pass.samples.sort_unstable_by_key(|s| s.pid);
        pass
    }

    /// uid → user name, from the system's user list (Unix; empty elsewhere, where there are no uids).
    pub fn user_names() -> HashMap<u32, String> {
        #[cfg(unix)]
        {
            sysinfo::Users::new_with_refreshed_list().list().iter().map(|u| (**u.id(), u.name().to_string())).collect()
        }
        #[cfg(not(unix))]
        {
            HashMap::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deleted_suffix_is_split_off() {
        assert_eq!(split_deleted("/usr/bin/x (deleted)"), ("/usr/bin/x".to_string(), true));
        assert_eq!(split_deleted("/usr/bin/x"), ("/usr/bin/x".to_string(), false));
        assert_eq!(split_deleted("/opt/a (deleted) b"), ("/opt/a (deleted) b".to_string(), false));
    }

    #[test]
    fn processes_without_an_exe_are_skipped_for_the_right_reason() {
        assert_eq!(skip_without_exe(true, false), Skip::KernelThread);
        assert_eq!(skip_without_exe(true, true), Skip::KernelThread);
        assert_eq!(skip_without_exe(false, true), Skip::Vanished);
        assert_eq!(skip_without_exe(false, false), Skip::PermissionDenied);
    }

    #[test]
    fn this_process_is_sampled_with_its_figures() {
        if !sysinfo::IS_SUPPORTED_SYSTEM {
            return;
        }
        let mut s = Sampler::new();
        let first = s.sample();
        let me = std::process::id();
        let a = first.samples.iter().find(|p| p.pid == me).expect("this process is sampled");
        assert_eq!(std::path::PathBuf::from(&a.exe), std::env::current_exe().unwrap());
        assert!(a.working_set > 0 && a.working_set_peak >= a.working_set && a.threads >= 1, "{a:?}");
        assert!(first.names.contains_key(&me));
        // Burn a little CPU: the accumulated time does not go back, the start stays the same.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(std::hint::black_box(x), 1);
        let second = s.sample();
        let b = second.samples.iter().find(|p| p.pid == me).expect("still sampled");
        assert_eq!(a.start_ticks, b.start_ticks);
        assert!(b.cpu_ticks >= a.cpu_ticks && b.working_set_peak >= a.working_set_peak, "{a:?} {b:?}");
        #[cfg(unix)]
        {
            // SAFETY: getuid takes no arguments.
            assert_eq!(b.uid, Some(unsafe { libc::getuid() }));
            assert!(Sampler::user_names().contains_key(&b.uid.unwrap_or(u32::MAX)) || b.uid != Some(0));
        }
        // Threads are processes of their own in sysinfo's list on Linux; they are not sampled twice.
        assert_eq!(second.samples.iter().filter(|p| p.pid == me).count(), 1);
    }
}
