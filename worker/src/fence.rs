//! Fencing by lease (see `docs/FENCING.md`).
//!
//! Every task on a worker lives under one lease, renewed by each answer the
//! worker gets from the scheduler (from the moment it sent that request).
//! When the lease runs out the worker ends its tasks itself: SIGTERM, the
//! scheduler's kill grace, SIGKILL ([`crate::task::Tasks::fence`]).
//!
//! A hung worker process (SIGSTOP, a stuck disk) cannot do that, so a
//! second process, the watchdog (`shoal worker-watchdog`, started by the
//! worker), reads the lease's deadline from a small file the worker
//! rewrites on each renewal and does the same to every process in the
//! worker's task cgroups. It needs nothing of the worker process but that
//! file: a worker that is stopped, or spinning, or blocked, is fenced all
//! the same.
//!
//! Both use CLOCK_BOOTTIME (monotonic, counts a suspend), which every
//! process on the machine shares, and which a wall-clock step does not move.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::Duration;

/// Milliseconds of CLOCK_BOOTTIME.
pub fn clock_ms() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
        .unwrap_or(0)
}

/// How often the worker's fence and the watchdog look at the lease.
pub const CHECK_EVERY: Duration = Duration::from_millis(100);

/// The lease of a worker's tasks.
pub struct Lease {
    /// [`clock_ms`] when it runs out (0: never renewed yet).
    deadline: AtomicU64,
    /// Its length and the kill grace, from the scheduler.
    lease_ms: AtomicU64,
    grace_ms: AtomicU64,
    /// The file the watchdog reads.
    file: Mutex<Option<std::fs::File>>,
}

/// The file's contents: deadline and grace (ms), little-endian.
const FILE_LEN: usize = 16;

impl Lease {
    /// A lease not yet renewed, written to `path` for the watchdog.
    pub fn new(path: &Path) -> Result<Lease, crate::Error> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(path)
            .map_err(crate::io(format!("cannot create {}", path.display())))?;
        let lease = Lease {
            deadline: AtomicU64::new(0),
            lease_ms: AtomicU64::new(10_000),
            grace_ms: AtomicU64::new(2_000),
            file: Mutex::new(Some(file)),
        };
        lease.write();
        Ok(lease)
    }

    /// The scheduler's timing (from the registration).
    pub fn set_timing(&self, lease_ms: u64, grace_ms: u64) {
        if lease_ms > 0 {
            self.lease_ms.store(lease_ms, SeqCst);
        }
        if grace_ms > 0 {
            self.grace_ms.store(grace_ms, SeqCst);
        }
    }

    /// The lease's length and kill grace.
    pub fn timing(&self) -> (Duration, Duration) {
        (
            Duration::from_millis(self.lease_ms.load(SeqCst)),
            Duration::from_millis(self.grace_ms.load(SeqCst)),
        )
    }

    /// The scheduler answered a request sent at `sent_at` ([`clock_ms`]).
    pub fn renew(&self, sent_at: u64) {
        let d = sent_at + self.lease_ms.load(SeqCst);
        if self.deadline.fetch_max(d, SeqCst) < d {
            self.write();
        }
    }

    /// How long ago the lease ran out (None: it runs, or was never given).
    pub fn overdue(&self, now: u64) -> Option<u64> {
        let d = self.deadline.load(SeqCst);
        (d > 0 && now > d).then(|| now - d)
    }

    fn write(&self) {
        let mut buf = [0u8; FILE_LEN];
        buf[..8].copy_from_slice(&self.deadline.load(SeqCst).to_le_bytes());
        buf[8..].copy_from_slice(&self.grace_ms.load(SeqCst).to_le_bytes());
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = f.as_mut() {
            // One 16-byte write at offset 0: the reader sees the old or
            // the new value.
            use std::os::unix::fs::FileExt;
            if let Err(e) = file.write_all_at(&buf, 0) {
                tracing::error!("cannot write the lease for the watchdog: {e}");
            }
        }
    }
}

fn read_lease(f: &mut std::fs::File) -> Option<(u64, u64)> {
    let mut buf = [0u8; FILE_LEN];
    f.seek(SeekFrom::Start(0)).ok()?;
    f.read_exact(&mut buf).ok()?;
    let d = u64::from_le_bytes(buf[..8].try_into().ok()?);
    let g = u64::from_le_bytes(buf[8..].try_into().ok()?);
    Some((d, g))
}

/// Send `sig` to every process in the task cgroups under `bases` (with
/// SIGKILL, through `cgroup.kill` too). Returns how many were signalled.
pub fn signal_task_cgroups(bases: &[PathBuf], sig: nix::sys::signal::Signal) -> usize {
    let mut n = 0;
    for base in bases {
        let Ok(entries) = std::fs::read_dir(base) else {
            continue;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let dir = e.path();
            if sig == nix::sys::signal::Signal::SIGKILL {
                let _ = std::fs::write(dir.join("cgroup.kill"), "1");
            }
            let pids = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for p in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                if nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig).is_ok() {
                    n += 1;
                }
            }
        }
    }
    n
}

/// The watchdog's loop (`shoal worker-watchdog`): until the worker that
/// started it is gone, fence its task cgroups whenever the lease in `file`
/// has run out: SIGTERM at once, SIGKILL after the grace.
pub fn watchdog(file: &Path, bases: &[PathBuf]) -> Result<(), crate::Error> {
    use nix::sys::signal::Signal;
    let parent = nix::unistd::getppid();
    let mut f = std::fs::File::open(file).map_err(crate::io(format!(
        "cannot open the lease {}",
        file.display()
    )))?;
    let mut termed = false;
    let mut out = std::io::stderr();
    loop {
        std::thread::sleep(CHECK_EVERY);
        if nix::unistd::getppid() != parent {
            return Ok(()); // the worker is gone, and its tasks with it
        }
        let Some((deadline, grace)) = read_lease(&mut f) else {
            continue;
        };
        let now = clock_ms();
        if deadline == 0 || now <= deadline {
            termed = false;
            continue;
        }
        if !termed {
            let n = signal_task_cgroups(bases, Signal::SIGTERM);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "shoal worker-watchdog: the worker's lease ran out {} ms ago: SIGTERM to {n} task processes",
                    now - deadline
                );
            }
            termed = true;
        }
        if now > deadline + grace {
            let n = signal_task_cgroups(bases, Signal::SIGKILL);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "shoal worker-watchdog: SIGKILL to {n} task processes after the {grace} ms grace"
                );
            }
        }
    }
}

/// Start the watchdog for the lease in `file` and the task cgroups under
/// `bases`: `shoal worker-watchdog`, in a session of its own (a signal to
/// the worker's process group does not reach it), dying with the worker.
pub fn spawn_watchdog(file: &Path, bases: &[PathBuf]) -> Result<std::process::Child, crate::Error> {
    let exe = std::env::current_exe().map_err(crate::io("cannot find the shoal binary"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("worker-watchdog").arg("--lease").arg(file);
    for b in bases {
        cmd.arg("--cgroup").arg(b);
    }
    cmd.stdin(std::process::Stdio::null());
    // SAFETY: system calls only.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| crate::isolate::child_signals(true));
    }
    cmd.spawn()
        .map_err(crate::io("cannot start the worker's watchdog"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_reads_what_the_lease_writes() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("lease");
        let lease = Lease::new(&path).unwrap();
        let mut f = std::fs::File::open(&path).unwrap();
        assert_eq!(read_lease(&mut f), Some((0, 2000)), "never renewed");
        lease.set_timing(5000, 700);
        lease.renew(1_000);
        assert_eq!(read_lease(&mut f), Some((6000, 700)));
        // An older request's answer never shortens the lease.
        lease.renew(500);
        assert_eq!(lease.overdue(6000), None);
        assert_eq!(lease.overdue(6001), Some(1));
        lease.renew(2_000);
        assert_eq!(read_lease(&mut f), Some((7000, 700)));
    }
}
