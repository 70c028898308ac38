//! The child side of starting a task, run between fork and exec: its own
//! session, death with the worker, a private mount namespace with a
//! size-limited tmpfs on /dev/shm (and the job's other tmpfs and bind
//! mounts), the task's cgroup, and the job's user.
//!
//! As root this uses a plain mount namespace. Without root it first enters
//! a new user namespace mapping the worker's user to root inside it (like
//! `unshare -r`), where the kernel allows that; otherwise starting the task
//! fails with an error that says so.

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::Command;

// The mounts come resolved in the job's launch spec.
pub use shoal_model::launch::{BindMount, TmpfsMount};

/// Everything the child does before exec.
#[derive(Debug, Clone, Default)]
pub struct Isolation {
    /// Size of the private /dev/shm, MiB (None: no private mount namespace).
    pub shm_mib: Option<u64>,
    /// Further tmpfs mounts.
    pub tmpfs: Vec<TmpfsMount>,
    /// Bind mounts.
    pub binds: Vec<BindMount>,
    /// The files to write `0` into to join the task's cgroups
    /// ([`crate::cgroup::TaskCgroup::join_files`]).
    pub cgroup_join: Vec<std::path::PathBuf>,
    /// Switch to this uid/gid after the mounts.
    pub user: Option<(u32, u32)>,
    /// CPUs to pin to.
    pub cpus: Vec<u32>,
    /// Change to this directory after the mounts (a path seen through them).
    pub cwd: Option<String>,
    /// What to tell the user when an unprivileged worker cannot make a
    /// user namespace (the knobs of the running kernel, [`userns_hint`]).
    pub userns_hint: String,
    /// The task's root filesystem from its image (None: the host's). The
    /// mounts above are made inside it, and it becomes `/`.
    pub root: Option<ImageRoot>,
    /// The host name the task sees (a UTS namespace of its own): the
    /// node's name in its gang's hostfile, so that Open MPI's daemon and
    /// ranks there agree which node they are on. None: the machine's.
    pub hostname: Option<String>,
    /// Timestamps the child takes between fork and exec, for the path log
    /// (None: none taken).
    pub stamps: Option<std::sync::Arc<ChildStamps>>,
}

/// The most cgroup hierarchies whose joining a child stamps.
const JOINS: usize = 4;

/// Wall-clock µs stamps that a child takes between fork and exec, in a
/// page shared with the parent (`MAP_SHARED`, made before the fork): a
/// store to memory, safe between fork and exec. Slots: forked, each
/// cgroup joined, mount namespace, mounts, exec.
pub struct ChildStamps {
    page: std::ptr::NonNull<std::ffi::c_void>,
    names: Vec<String>,
}

// SAFETY: the page is only read and written through atomics.
unsafe impl Send for ChildStamps {}
// SAFETY: as above.
unsafe impl Sync for ChildStamps {}

const STAMPS_LEN: std::num::NonZeroUsize = match std::num::NonZeroUsize::new(4096) {
    Some(n) => n,
    None => panic!("a page is not empty"),
};

/// Slots after the joins.
const MOUNT_NS: usize = 1 + JOINS;
const MOUNTS: usize = 2 + JOINS;
const EXEC: usize = 3 + JOINS;

impl ChildStamps {
    /// A fresh shared page for a child that joins the cgroups of
    /// `hierarchies` in order, or None if the kernel refuses one.
    pub fn new(hierarchies: &[String]) -> Option<ChildStamps> {
        use nix::sys::mman::{MapFlags, ProtFlags};
        // SAFETY: a new anonymous mapping, owned by the value returned.
        let page = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                STAMPS_LEN,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .ok()?;
        let mut names = vec!["child_forked".to_string()];
        names.extend((0..JOINS).map(|i| match hierarchies.get(i) {
            Some(h) => format!("child_joined_{h}"),
            None => String::new(),
        }));
        names.extend(["child_mount_ns", "child_mounts", "child_exec"].map(String::from));
        Some(ChildStamps { page, names })
    }

    fn slot(&self, i: usize) -> &std::sync::atomic::AtomicU64 {
        debug_assert!(i <= EXEC);
        // SAFETY: the page holds EXEC + 1 aligned u64 slots (zeroed by
        // the kernel) and lives as long as `self`.
        unsafe { &*(self.page.as_ptr() as *const std::sync::atomic::AtomicU64).add(i) }
    }

    /// Stamp slot `i` now (in the child).
    fn stamp(&self, i: usize) {
        if i > EXEC {
            return;
        }
        if let Ok(t) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME) {
            let us = t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000;
            self.slot(i).store(us, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The steps the child stamped, with their times.
    pub fn read(&self) -> Vec<(String, u64)> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.clone(),
                    self.slot(i).load(std::sync::atomic::Ordering::Relaxed),
                )
            })
            .filter(|(s, t)| *t != 0 && !s.is_empty())
            .collect()
    }
}

impl std::fmt::Debug for ChildStamps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.read()).finish()
    }
}

impl Drop for ChildStamps {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        let _ = unsafe { nix::sys::mman::munmap(self.page, STAMPS_LEN.get()) };
    }
}

/// A task's root filesystem from its container image: the image's root
/// (read-only, shared by every task of the image) under a writable layer
/// of the task's own (overlayfs), with a minimal `/dev`, the host's `/proc`
/// and a read-only `/sys`, and the node's `/etc/hosts` and
/// `/etc/resolv.conf`.
#[derive(Debug, Clone, Default)]
pub struct ImageRoot {
    /// The image's unpacked root (overlayfs' lower layer).
    pub lower: String,
    /// The task's writable layer.
    pub upper: String,
    /// Overlayfs' work directory (on the same filesystem as `upper`).
    pub work: String,
    /// Where the overlay is mounted before it becomes `/`.
    pub merged: String,
    /// Host devices the policy allowed (`linuxParameters.devices`), bound
    /// at the same path inside.
    pub devices: Vec<String>,
    /// Shoal's binary and the host libraries it runs with, bound read-only
    /// under [`AGENT_DIR`] so that Open MPI finds the launch agent in any
    /// image (None: not offered).
    pub agent: Option<AgentFiles>,
}

/// Where a task in an image finds Shoal's launch agent.
pub const AGENT_DIR: &str = "/.shoal";

/// The host files that run `shoal launch-agent` inside an image: the
/// binary, and its dynamic loader and libraries (an image need hold none
/// of them).
#[derive(Debug, Clone, Default)]
pub struct AgentFiles {
    /// The `shoal` binary.
    pub binary: String,
    /// Its shared libraries, the dynamic loader among them (file paths).
    pub libs: Vec<String>,
}

impl AgentFiles {
    /// The running binary and the shared libraries mapped into this
    /// process (the worker is that binary), from `/proc/self/maps`.
    pub fn of_this_process() -> Option<AgentFiles> {
        let binary = std::env::current_exe().ok()?.to_string_lossy().into_owned();
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        let mut libs: Vec<String> = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .filter(|p| p.starts_with('/') && p.contains(".so"))
            .map(str::to_string)
            .collect();
        libs.sort();
        libs.dedup();
        libs.iter()
            .any(|l| l.contains("ld-linux"))
            .then_some(AgentFiles { binary, libs })
    }

    /// The command line Open MPI runs as its launch agent inside the image
    /// (`OMPI_MCA_plm_rsh_agent`): the host's loader running the host's
    /// binary with the host's libraries.
    pub fn command(&self) -> Option<String> {
        let loader = self.libs.iter().find(|l| l.contains("ld-linux"))?;
        let name = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
        Some(format!(
            "{AGENT_DIR}/lib/{} --library-path {AGENT_DIR}/lib {AGENT_DIR}/shoal launch-agent",
            name(loader)
        ))
    }
}

/// The device nodes every container gets (Docker's set, less what needs
/// a terminal of its own): bound from the host's.
pub const CONTAINER_DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The error of a child that failed between fork and exec, in words: std
/// passes only an errno from the child, so the child writes its message
/// here too (a close-on-exec pipe: it stays empty when the exec succeeds).
pub struct ChildError {
    read: Option<std::os::fd::OwnedFd>,
    write: Option<std::os::fd::OwnedFd>,
}

impl ChildError {
    fn new() -> ChildError {
        match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok((r, w)) => ChildError {
                read: Some(r),
                write: Some(w),
            },
            Err(e) => {
                tracing::warn!("cannot make a pipe for a task's start errors: {e}");
                ChildError {
                    read: None,
                    write: None,
                }
            }
        }
    }

    /// The child's message, once `spawn` has returned (the child's end is
    /// closed then, by its exec or its exit).
    pub fn take(mut self) -> Option<String> {
        use std::io::Read;
        drop(self.write.take());
        let mut text = String::new();
        let _ = std::fs::File::from(self.read.take()?).read_to_string(&mut text);
        let text = text.trim().to_string();
        (!text.is_empty()).then_some(text)
    }

    /// Install `hook` as `cmd`'s pre-exec step, its error's text written
    /// to this pipe.
    ///
    /// # Safety
    /// As [`CommandExt::pre_exec`]: `hook` runs between fork and exec.
    unsafe fn hook(
        &self,
        cmd: &mut Command,
        mut hook: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static,
    ) {
        use std::os::fd::AsRawFd;
        let fd = self.write.as_ref().map(|w| w.as_raw_fd());
        cmd.pre_exec(move || {
            let out = hook();
            if let (Err(e), Some(fd)) = (&out, fd) {
                let text = e.to_string();
                // SAFETY: the pipe's write end, open in this child until exec.
                let w = std::os::fd::BorrowedFd::borrow_raw(fd);
                let _ = nix::unistd::write(w, text.as_bytes());
            }
            out
        });
    }
}

/// What the running kernel lets an unprivileged user do about user
/// namespaces, and which of its knobs to turn when it does not: only those
/// that exist here, with their values.
pub fn userns_hint() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|v| v.trim().to_string())
    };
    let mut knobs = Vec::new();
    if let Some(v) = read("/proc/sys/user/max_user_namespaces") {
        if v == "0" {
            knobs.push(format!("raise user.max_user_namespaces (it is {v} here)"));
        }
    }
    if let Some(v) = read("/proc/sys/kernel/unprivileged_userns_clone") {
        if v == "0" {
            knobs.push("set kernel.unprivileged_userns_clone=1".to_string());
        }
    }
    if let Some(v) = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") {
        if v == "1" {
            knobs.push(
                "set kernel.apparmor_restrict_unprivileged_userns=0 (or give shoal an AppArmor profile that allows user namespaces)"
                    .to_string(),
            );
        }
    }
    let how = if knobs.is_empty() {
        String::new()
    } else {
        format!("allow them ({}), or ", knobs.join("; "))
    };
    format!("{how}run the worker as root")
}

/// Whether this worker can give a task its private /dev/shm: tried once,
/// in a child, the way a task gets it (a mount namespace, through a user
/// namespace without root, a private `/`, a tmpfs on /dev/shm). The error
/// says which step the kernel refused.
pub fn probe_isolation() -> Result<(), String> {
    let root = nix::unistd::geteuid().is_root();
    let (uid, gid) = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    let hint = userns_hint();
    let mut cmd = Command::new("/bin/true");
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let errors = ChildError::new();
    // SAFETY: system calls and small writes between fork and exec, as a task's.
    unsafe {
        errors.hook(&mut cmd, move || {
            let refused =
                |what: &str, e: nix::Error| std::io::Error::other(format!("{what} ({e})"));
            if root {
                unshare(CloneFlags::CLONE_NEWNS)
                    .map_err(|e| refused("a mount namespace is refused", e))?;
            } else {
                unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).map_err(|e| {
                    std::io::Error::other(format!(
                        "unprivileged user namespaces are refused ({e}); {hint}"
                    ))
                })?;
                write_file("/proc/self/setgroups", b"deny")?;
                write_file("/proc/self/uid_map", format!("0 {uid} 1").as_bytes())?;
                write_file("/proc/self/gid_map", format!("0 {gid} 1").as_bytes())?;
            }
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(|e| refused("making / private is refused", e))?;
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            mount(
                Some("tmpfs"),
                "/dev/shm",
                Some("tmpfs"),
                flags,
                Some("size=1m"),
            )
            .map_err(|e| refused("mounting a tmpfs on /dev/shm is refused", e))
        });
    }
    let status = cmd.status();
    let said = errors.take();
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("the probe exited {s}")),
        Err(e) => Err(said.unwrap_or_else(|| e.to_string())),
    }
}

/// Look up a user name or numeric uid in /etc/passwd: (uid, gid).
pub fn lookup_user(user: &str) -> Result<(u32, u32), String> {
    if let Ok(uid) = user.parse::<u32>() {
        return Ok((uid, uid));
    }
    match nix::unistd::User::from_name(user) {
        Ok(Some(u)) => Ok((u.uid.as_raw(), u.gid.as_raw())),
        Ok(None) => Err(format!("user {user:?} does not exist on this worker")),
        Err(e) => Err(format!("cannot look up user {user:?}: {e}")),
    }
}

fn io(e: nix::Error) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

fn write_file(path: &str, data: &[u8]) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(data)
}

impl Isolation {
    /// Install the pre-exec hook on `cmd`; what it fails with, in words,
    /// comes back through the returned pipe.
    pub fn apply(self, cmd: &mut Command) -> ChildError {
        let root = nix::unistd::geteuid().is_root();
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        // SAFETY: the hook runs in the forked child before exec; it only
        // makes system calls and touches memory prepared before the fork
        // (plus small allocations, which are safe here because the worker
        // forks from threads that hold no allocator lock at that point).
        let errors = ChildError::new();
        unsafe {
            errors.hook(cmd, move || {
                let stamp = |i: usize| {
                    if let Some(s) = &self.stamps {
                        s.stamp(i);
                    }
                };
                stamp(0);
                child_signals(true)?;
                for (i, f) in self.cgroup_join.iter().enumerate() {
                    write_file(&f.to_string_lossy(), b"0")?;
                    if i < JOINS {
                        stamp(1 + i);
                    }
                }
                if !self.cpus.is_empty() {
                    let mut set = nix::sched::CpuSet::new();
                    for c in &self.cpus {
                        let _ = set.set(*c as usize);
                    }
                    let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
                }
                if let Some(shm) = self.shm_mib {
                    let uts = if self.hostname.is_some() {
                        CloneFlags::CLONE_NEWUTS
                    } else {
                        CloneFlags::empty()
                    };
                    if root {
                        unshare(CloneFlags::CLONE_NEWNS | uts).map_err(io)?;
                    } else {
                        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS | uts).map_err(|e| {
                            std::io::Error::other(format!(
                                "cannot create a private /dev/shm without root: unprivileged user namespaces are refused ({e}); {}",
                                self.userns_hint
                            ))
                        })?;
                        write_file("/proc/self/setgroups", b"deny")?;
                        write_file("/proc/self/uid_map", format!("0 {uid} 1").as_bytes())?;
                        write_file("/proc/self/gid_map", format!("0 {gid} 1").as_bytes())?;
                    }
                    if let Some(h) = &self.hostname {
                        nix::unistd::sethostname(h).map_err(io)?;
                    }
                    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
                        .map_err(io)?;
                    stamp(MOUNT_NS);
                    // Inside an image, every mount below is made under its
                    // root, which then becomes `/`.
                    let base = match &self.root {
                        Some(r) => {
                            mount_image_root(r)?;
                            r.merged.as_str()
                        }
                        None => "",
                    };
                    let at = |p: &str| format!("{base}{p}");
                    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                    let opts = format!("size={shm}m,mode=1777");
                    mount(Some("tmpfs"), at("/dev/shm").as_str(), Some("tmpfs"), flags, Some(opts.as_str()))
                        .map_err(|e| std::io::Error::other(format!("cannot mount a {shm} MiB tmpfs on /dev/shm: {e}")))?;
                    for t in &self.tmpfs {
                        let mut opts = format!("size={}m", t.size_mib);
                        for o in &t.options {
                            opts.push(',');
                            opts.push_str(o);
                        }
                        let target = at(&t.path);
                        if self.root.is_some() {
                            std::fs::create_dir_all(&target)?;
                        }
                        mount(Some("tmpfs"), target.as_str(), Some("tmpfs"), flags, Some(opts.as_str()))
                            .map_err(|e| std::io::Error::other(format!("cannot mount a tmpfs on {}: {e}", t.path)))?;
                    }
                    for b in &self.binds {
                        let target = at(&b.target);
                        if self.root.is_some() {
                            make_mount_point(&b.source, &target)?;
                        }
                        bind(&b.source, &target, b.read_only)
                            .map_err(|e| std::io::Error::other(format!("cannot bind {} on {}: {e}", b.source, b.target)))?;
                    }
                    if let Some(r) = &self.root {
                        enter_image_root(r)?;
                    }
                    stamp(MOUNTS);
                }
                if let Some(d) = &self.cwd {
                    nix::unistd::chdir(d.as_str())
                        .map_err(|e| std::io::Error::other(format!("cannot enter {d}: {e}")))?;
                }
                let became = become_job_user(self.user);
                stamp(EXEC);
                became
            });
        }
        errors
    }
}

/// Bind `source` on `target` (recursively), read-only if asked.
fn bind(source: &str, target: &str, read_only: bool) -> nix::Result<()> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    if read_only {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )?;
    }
    Ok(())
}

/// A mount point at `target` for `source`: a directory for a directory,
/// an empty file for anything else (in the task's writable layer).
fn make_mount_point(source: &str, target: &str) -> std::io::Result<()> {
    if std::path::Path::new(source).is_dir() {
        return std::fs::create_dir_all(target);
    }
    if let Some(parent) = std::path::Path::new(target).parent() {
        std::fs::create_dir_all(parent)?;
    }
    if !std::path::Path::new(target).exists() {
        std::fs::File::create(target)?;
    }
    Ok(())
}

/// In the child: the overlay of the image's root and the task's layer at
/// `merged`, with a minimal `/dev` (a tmpfs holding the host's null, zero,
/// full, random, urandom, tty, its `pts` and the allowed devices, and an
/// empty `shm`), the host's `/proc`, a read-only `/sys`, and the node's
/// `/etc/hosts` and `/etc/resolv.conf`.
fn mount_image_root(r: &ImageRoot) -> std::io::Result<()> {
    let fail = |what: String| move |e: nix::Error| std::io::Error::other(format!("{what}: {e}"));
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        r.lower, r.upper, r.work
    );
    // No device nodes and no set-user-id files from the image (its /dev is
    // the worker's, below).
    mount(
        Some("overlay"),
        r.merged.as_str(),
        Some("overlay"),
        MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
        Some(opts.as_str()),
    )
    .map_err(fail(
        "cannot mount the image's root filesystem (overlayfs)".into(),
    ))?;
    let at = |p: &str| format!("{}{p}", r.merged);
    let dev = at("/dev");
    std::fs::create_dir_all(&dev)?;
    mount(
        Some("tmpfs"),
        dev.as_str(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=755,size=64k"),
    )
    .map_err(fail("cannot mount /dev".into()))?;
    for d in CONTAINER_DEVICES {
        let target = at(&format!("/dev/{d}"));
        std::fs::File::create(&target)?;
        bind(&format!("/dev/{d}"), &target, false)
            .map_err(fail(format!("cannot bind /dev/{d}")))?;
    }
    for d in &r.devices {
        let target = at(d);
        make_mount_point(d, &target)?;
        bind(d, &target, false).map_err(fail(format!("cannot bind the device {d}")))?;
    }
    std::fs::create_dir_all(at("/dev/pts"))?;
    bind("/dev/pts", &at("/dev/pts"), false).map_err(fail("cannot bind /dev/pts".into()))?;
    std::os::unix::fs::symlink("pts/ptmx", at("/dev/ptmx"))?;
    std::fs::create_dir_all(at("/dev/shm"))?;
    for (source, read_only) in [("/proc", false), ("/sys", true)] {
        let target = at(source);
        std::fs::create_dir_all(&target)?;
        bind(source, &target, read_only).map_err(fail(format!("cannot bind {source}")))?;
    }
    if let Some(agent) = &r.agent {
        let dir = at(AGENT_DIR);
        std::fs::create_dir_all(&dir)?;
        mount(
            Some("tmpfs"),
            dir.as_str(),
            Some("tmpfs"),
            MsFlags::MS_NOSUID,
            Some("mode=755,size=64k"),
        )
        .map_err(fail(format!("cannot mount {AGENT_DIR}")))?;
        std::fs::create_dir_all(format!("{dir}/lib"))?;
        let files = std::iter::once((agent.binary.as_str(), format!("{dir}/shoal"))).chain(
            agent.libs.iter().map(|l| {
                (
                    l.as_str(),
                    format!("{dir}/lib/{}", l.rsplit('/').next().unwrap_or(l)),
                )
            }),
        );
        for (source, target) in files {
            std::fs::File::create(&target)?;
            bind(source, &target, true).map_err(fail(format!("cannot bind {source}")))?;
        }
    }
    for f in ["/etc/hosts", "/etc/resolv.conf"] {
        if std::path::Path::new(f).exists() {
            let target = at(f);
            make_mount_point(f, &target)?;
            bind(f, &target, true).map_err(fail(format!("cannot bind {f}")))?;
        }
    }
    Ok(())
}

/// In the child, after every mount: the image's root becomes `/`, and the
/// host's is detached (the runc way: `pivot_root(".", ".")`).
fn enter_image_root(r: &ImageRoot) -> std::io::Result<()> {
    let fail =
        |what: &'static str| move |e: nix::Error| std::io::Error::other(format!("{what}: {e}"));
    nix::unistd::chdir(r.merged.as_str()).map_err(fail("cannot enter the image's root"))?;
    nix::unistd::pivot_root(".", ".")
        .map_err(fail("cannot make the image's root `/` (pivot_root)"))?;
    nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH)
        .map_err(fail("cannot detach the host's root"))?;
    nix::unistd::chdir("/").map_err(fail("cannot enter /"))
}

/// The last step before a job's exec (in the child, after the mounts):
/// switch to the job's user, if it has one, and forbid new privileges.
pub fn become_job_user(user: Option<(u32, u32)>) -> std::io::Result<()> {
    if let Some((u, g)) = user {
        nix::unistd::setgroups(&[nix::unistd::Gid::from_raw(g)]).map_err(io)?;
        nix::unistd::setgid(nix::unistd::Gid::from_raw(g)).map_err(io)?;
        nix::unistd::setuid(nix::unistd::Uid::from_raw(u)).map_err(io)?;
        // A change of credentials clears the parent-death signal: set it
        // again, or a task would outlive a killed worker.
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(io)?;
    }
    // No set-user-id or file capabilities from here on: a job may mount a
    // tmpfs or volume over any path in its namespace (/etc included), which
    // must not make `su` its way to root.
    nix::sys::prctl::set_no_new_privs().map_err(io)
}

/// Between fork and exec of a process the worker starts (a task, a
/// launch-agent command, its watchdog): no signal blocked (the worker
/// blocks SIGTERM and SIGINT in its threads, and waits for them on one),
/// a session of its own if `session`, and SIGKILL when the worker's
/// thread that started it goes. System calls only.
pub fn child_signals(session: bool) -> std::io::Result<()> {
    let io = |e: nix::Error| std::io::Error::from_raw_os_error(e as i32);
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    )
    .map_err(io)?;
    if session {
        nix::unistd::setsid().map_err(io)?;
    }
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(io)
}
