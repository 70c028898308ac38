//! Running one task: one node of one attempt of a job.

use crate::cgroup::{Cgroups, TaskCgroup};
use crate::images::{Image, Images};
use crate::isolate::{BindMount, ImageRoot, Isolation};
use crate::policy::{JobPolicy, RunAs};
use shoal_model::wire::{StartTask, TaskEvent, TaskRef, TaskReport};
use shoal_model::JobRef;
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a killed task gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// How often /dev/shm use is sampled.
pub const SHM_SAMPLE: Duration = Duration::from_millis(10);

/// How long after its timeout a task still running is ended by its worker:
/// the scheduler ends it at its timeout; this holds when the scheduler
/// cannot (it is down, and its refused connections keep the lease).
pub const TIMEOUT_BACKSTOP: Duration = Duration::from_secs(10);

/// What every task of a worker shares.
pub struct Tasks {
    /// Where task directories (logs, hostfiles) go.
    pub dir: PathBuf,
    /// cgroup hierarchies.
    pub cgroups: Cgroups,
    /// CPUs not given to a running task.
    free_cpus: Mutex<BTreeSet<u32>>,
    /// Running tasks.
    running: Mutex<HashMap<TaskRef, Running>>,
    /// Signalled whenever a task starts, for launch-agent requests waiting
    /// for theirs.
    started: std::sync::Condvar,
    /// Where reports go.
    reports: Sender<TaskReport>,
    /// The network interface holding the worker's address (for MPI).
    pub interface: Option<String>,
    /// What jobs may ask of this node (user, volumes, devices).
    pub policy: JobPolicy,
    /// This node's name (for messages).
    pub node: String,
    /// The address the worker registers (its gang hostfiles' name for it).
    pub address: String,
    /// How long a launch-agent request waits for its task to start here.
    pub exec_wait: Duration,
    /// The cluster CA (PEM) when this node's own server speaks TLS: jobs
    /// get it as `SHOAL_CA_PEM`, for the launch agent to verify workers.
    pub ca_pem: Option<String>,
    /// The node's container images.
    images: Arc<Images>,
    /// What runs the launch agent inside an image.
    agent: Option<crate::isolate::AgentFiles>,
    /// Where a task sees its own directory in its mount namespace (see
    /// [`TASK_VIEW`]); None: at its path on the host.
    view: Option<PathBuf>,
    /// How to allow user namespaces on this kernel (for an unprivileged
    /// worker's errors).
    userns_hint: String,
    /// The worker is stopping: no new task starts.
    stopping: AtomicBool,
    /// Task threads alive (each sends its reports before it ends).
    threads: AtomicUsize,
    /// Reports sent to the reporter and not yet delivered.
    unsent: AtomicUsize,
    /// Tasks from their Start order until their processes and cgroup are
    /// gone, and those ended whose end is not yet delivered.
    book: Mutex<Book>,
    /// Signalled when a task's processes and cgroup are gone.
    gone: std::sync::Condvar,
}

/// Which tasks a worker knows, and what was asked of those not yet running.
#[derive(Debug, Default)]
struct Book {
    /// From the Start order until its processes and cgroup are gone.
    alive: BTreeSet<TaskRef>,
    /// Gone, with the report of its end not yet delivered.
    ended: BTreeSet<TaskRef>,
    /// Told to end before they run (a Kill, or the lease ran out): why.
    doomed: HashMap<TaskRef, String>,
    /// Ended by the worker because its lease ran out: why.
    fenced: HashMap<TaskRef, String>,
}

fn base_job(t: &TaskRef) -> &str {
    t.job_id.job.as_str()
}

/// Why a launch-agent request did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// Not allowed: wrong token, no such task here, or a caller that is not
    /// a node of the job. Answered 403.
    #[error("{0}")]
    Refused(String),
    /// Allowed, but the command could not be started.
    #[error("{0}")]
    Failed(String),
}

/// Who asks a worker to run a command in a task (`POST /exec`).
#[derive(Debug, Clone)]
pub struct ExecCaller<'a> {
    /// The job (`AWS_BATCH_JOB_ID` of the caller; its node is ignored).
    pub job_id: &'a JobRef,
    /// 0-based attempt.
    pub attempt: u32,
    /// The job token it presents (`SHOAL_JOB_TOKEN`).
    pub token: &'a str,
    /// The address the request came from.
    pub peer: std::net::IpAddr,
}

/// Compare secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The host name a task of a gang sees: this node's name in the gang's
/// hostfile (`address`, the first word of one of its lines). Open MPI names
/// a remote node by what mpirun was given for it, and its ranks count as
/// on one node (shared memory between them) only when their own host name
/// is that name. None outside a gang: the task keeps the machine's.
pub fn gang_hostname(hostfile: &str, address: &str) -> Option<String> {
    let names: Vec<&str> = hostfile
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    (names.len() > 1 && names.contains(&address)).then(|| address.to_string())
}

/// The addresses of a gang's nodes, from its hostfile (`ADDRESS slots=N`).
pub fn hostfile_addresses(hostfile: &str) -> Vec<std::net::IpAddr> {
    hostfile
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// The launch agent's checks, on the task of the caller's job that runs
/// here: the token is the job's, and the caller is one of the job's nodes.
fn authorize(
    caller: &ExecCaller<'_>,
    token: Option<&str>,
    gang: &[std::net::IpAddr],
) -> Result<(), ExecError> {
    let Some(token) = token else {
        return Err(ExecError::Refused(format!(
            "job {} has no job token on this node (its scheduler sent none), so no launch-agent request is accepted for it",
            caller.job_id
        )));
    };
    if !same_secret(token, caller.token) {
        return Err(ExecError::Refused(format!(
            "wrong job token for job {} attempt {}",
            caller.job_id,
            caller.attempt + 1
        )));
    }
    let peer = match caller.peer {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(std::net::IpAddr::V4)
            .unwrap_or(caller.peer),
        v4 => v4,
    };
    if !gang.contains(&peer) {
        return Err(ExecError::Refused(format!(
            "{peer} is not a node of job {} (its nodes: {})",
            caller.job_id,
            gang.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

/// A running task.
#[derive(Debug, Clone)]
struct Running {
    /// Process (and process group, and session) id of its main process.
    pid: i32,
    /// The files that join its cgroups (for `exec` into it).
    cgroup_join: Vec<PathBuf>,
    /// Its CPUs.
    cpus: Vec<u32>,
    /// Its directory.
    dir: PathBuf,
    /// Its user (None: the worker's).
    user: RunAs,
    /// The job's token (from the Start order).
    token: Option<String>,
    /// Addresses of the job's nodes (from the hostfile).
    gang: Vec<std::net::IpAddr>,
    /// Highest /dev/shm use seen so far, bytes (its sampler's).
    shm_peak: Arc<std::sync::atomic::AtomicU64>,
}

/// What a transient uid is drawn from: the job (every node of a multinode
/// job on one host shares it) and its attempt.
fn uid_key(t: &TaskRef) -> String {
    let job = &t.job_id.job;
    format!("{job}/{}", t.attempt)
}

/// Where a task sees its task directory (hostfile, log, `work/`): bound
/// there in its mount namespace, so that its user reads what the worker
/// gives it whatever the modes of the directories above the worker's
/// state (a 0700 `/var/lib/shoal`, say). The worker makes this empty
/// directory once, at start.
pub const TASK_VIEW: &str = "/run/shoal/task";

/// [`TASK_VIEW`], made if missing, for a root worker. An unprivileged
/// worker's jobs run as its own user, who reads the state directory where
/// it is: None.
fn task_view() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let view = PathBuf::from(TASK_VIEW);
    let made = std::fs::create_dir_all(&view).and_then(|()| {
        for d in [view.as_path(), view.parent().unwrap_or(&view)] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(())
    });
    match made {
        Ok(()) => Some(view),
        Err(e) => {
            tracing::warn!(
                "cannot make {TASK_VIEW} ({e}): jobs see their task directory at its path in the                  state directory, which their users must be able to reach"
            );
            None
        }
    }
}

/// The shell a job's user gets as `SHELL` (which Open MPI probes): the
/// user's own when it is one Open MPI knows, else `/bin/sh` (a transient
/// uid has no passwd entry, `nobody` has nologin).
fn job_shell(uid: Option<u32>) -> String {
    let own = uid
        .and_then(|u| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(u))
                .ok()
                .flatten()
        })
        .map(|u| u.shell.to_string_lossy().into_owned());
    match own {
        Some(sh)
            if ["sh", "bash", "zsh", "ksh", "csh", "tcsh"]
                .iter()
                .any(|k| sh.rsplit('/').next() == Some(k)) =>
        {
            sh
        }
        _ => "/bin/sh".to_string(),
    }
}

/// A task's working directory (its user's own) inside its task directory.
fn work_dir(task_dir: &Path) -> PathBuf {
    task_dir.join("work")
}

/// Open a task's log for appending, never through a symlink.
fn open_log(task_dir: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(task_dir.join("output.log"))
}

/// A file-name-safe form of a task id.
pub fn task_dir_name(t: &TaskRef) -> String {
    t.dir_name()
}

/// How this node runs tasks, from the worker's configuration.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// This node's name (for messages).
    pub node: String,
    /// The address the worker registers (its gang hostfiles' name for it).
    pub address: String,
    /// What jobs may ask of this node (user, volumes, devices).
    pub policy: JobPolicy,
    /// How long a launch-agent request waits for its task to start here.
    pub exec_wait: Duration,
    /// The cluster CA (PEM) when this node's own server speaks TLS.
    pub ca_pem: Option<String>,
    /// The node's container images.
    pub images: Arc<Images>,
}

/// A task ready to start: what [`Tasks::prepare`] made for it.
struct Prepared {
    /// The task directory (the worker's).
    dir: PathBuf,
    /// `work/` in it: the job's working directory.
    work: PathBuf,
    /// The Open MPI hostfile in it.
    hostfile: PathBuf,
    /// The uid and gid the task runs as (None: the worker's).
    user: Option<(u32, u32)>,
    /// Whether the worker runs as root.
    root: bool,
    /// The CPUs it was given.
    cpus: Vec<u32>,
    /// Its cgroup.
    cgroup: TaskCgroup,
    /// Its mounts, user and limits; taken when the command starts.
    isolation: Option<Isolation>,
    /// Its container image, held while it runs (None: it runs on the
    /// host).
    image: Option<Image>,
    /// Its writable layer over the image (removed when it ends).
    layer: Option<PathBuf>,
}

/// How a task's main process ended.
struct Ended {
    /// Its status.
    status: std::io::Result<std::process::ExitStatus>,
    /// Whether the kernel's OOM killer ended it.
    oom: bool,
    /// Peak /dev/shm use, MiB.
    shm_peak_mib: u64,
}

impl Tasks {
    /// A task runner using `dir`, `cgroups` and the worker's `cpus`.
    pub fn new(
        dir: PathBuf,
        cgroups: Cgroups,
        cpus: &[u32],
        reports: Sender<TaskReport>,
        interface: Option<String>,
        settings: NodeSettings,
    ) -> Arc<Tasks> {
        let NodeSettings {
            node,
            address,
            policy,
            exec_wait,
            ca_pem,
            images,
        } = settings;
        Arc::new(Tasks {
            dir,
            cgroups,
            free_cpus: Mutex::new(cpus.iter().copied().collect()),
            running: Mutex::new(HashMap::new()),
            started: std::sync::Condvar::new(),
            reports,
            interface,
            policy,
            node,
            address,
            exec_wait,
            ca_pem,
            images,
            agent: crate::isolate::AgentFiles::of_this_process(),
            view: task_view(),
            userns_hint: crate::isolate::userns_hint(),
            stopping: AtomicBool::new(false),
            threads: AtomicUsize::new(0),
            unsent: AtomicUsize::new(0),
            book: Mutex::new(Book::default()),
            gone: std::sync::Condvar::new(),
        })
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every task this worker knows: starting, running, or ended and its
    /// end not yet delivered (what the scheduler reconciles against).
    pub fn known(&self) -> Vec<TaskRef> {
        let b = self.book();
        b.alive.union(&b.ended).cloned().collect()
    }

    /// Whether any task is alive (started and not yet gone).
    pub fn any_alive(&self) -> bool {
        !self.book().alive.is_empty()
    }

    /// The lease ran out: end every task (`why`), SIGTERM now and SIGKILL
    /// after `grace`; tasks not yet running never start.
    pub fn fence(self: &Arc<Self>, why: &str, grace: Duration) {
        let alive: Vec<TaskRef> = self.book().alive.iter().cloned().collect();
        for t in alive {
            self.end_task(&t, why, grace);
        }
    }

    /// The worker ends `task` itself (`why` becomes its reason, and it
    /// cannot succeed): SIGTERM now, SIGKILL after `grace`; not yet running,
    /// it never starts. Once per task.
    fn end_task(self: &Arc<Self>, task: &TaskRef, why: &str, grace: Duration) {
        {
            let mut b = self.book();
            if b.fenced.contains_key(task) {
                return;
            }
            b.fenced.insert(task.clone(), why.to_string());
            b.doomed
                .entry(task.clone())
                .or_insert_with(|| why.to_string());
        }
        tracing::warn!("{task}: {why}");
        self.signal_then_kill(task, grace);
    }

    /// The highest /dev/shm use so far of each task running now.
    pub fn shm_peaks(&self) -> Vec<shoal_model::wire::TaskShm> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(task, r)| shoal_model::wire::TaskShm {
                task: task.clone(),
                peak_mib: r
                    .shm_peak
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .div_ceil(1024 * 1024),
            })
            .collect()
    }

    /// Tasks running now.
    pub fn running(&self) -> Vec<TaskRef> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Start no more tasks: a Start order from now on is reported as not
    /// started (the worker is stopping).
    pub fn refuse_new(&self) {
        self.stopping.store(true, SeqCst);
    }

    /// End every task (the worker is stopping): SIGTERM to each process
    /// group (tasks that start meanwhile too), SIGKILL to what is left
    /// after `grace`; let the task threads reap their processes and remove
    /// their cgroups (bounded), then sweep whatever is left.
    pub fn stop_all(&self, grace: Duration) {
        use nix::sys::signal::{killpg, Signal};
        self.refuse_new();
        let start = std::time::Instant::now();
        let mut termed = BTreeSet::new();
        loop {
            let pids: Vec<i32> = self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .map(|r| r.pid)
                .collect();
            let waited = start.elapsed();
            if pids.is_empty() || waited > grace + Duration::from_secs(2) {
                break;
            }
            for pid in pids {
                let pg = nix::unistd::Pid::from_raw(pid);
                if waited >= grace {
                    let _ = killpg(pg, Signal::SIGKILL);
                } else if termed.insert(pid) {
                    let _ = killpg(pg, Signal::SIGTERM);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.cgroups.clean_stale();
        self.cgroups.remove_base();
    }

    /// Whether the worker is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(SeqCst)
    }

    /// Task threads alive plus reports not yet delivered: what a stopping
    /// worker waits for before it says it is gone.
    pub fn unreported(&self) -> usize {
        self.threads.load(SeqCst) + self.unsent.load(SeqCst)
    }

    /// The reporter delivered these reports.
    pub fn delivered(&self, reports: &[TaskReport]) {
        {
            let mut b = self.book();
            for r in reports {
                if matches!(r.event, TaskEvent::Exited { .. }) {
                    b.ended.remove(&r.task);
                    b.fenced.remove(&r.task);
                }
            }
        }
        self.forget_unsent(reports.len());
    }

    fn forget_unsent(&self, n: usize) {
        let _ = self
            .unsent
            .fetch_update(SeqCst, SeqCst, |u| Some(u.saturating_sub(n)));
    }

    /// Path of a task's log.
    pub fn log_path(&self, t: &TaskRef) -> PathBuf {
        self.dir.join(task_dir_name(t)).join("output.log")
    }

    fn take_cpus(&self, n: u32) -> Vec<u32> {
        let mut free = self.free_cpus.lock().unwrap_or_else(|e| e.into_inner());
        if (free.len() as u32) < n {
            return Vec::new(); // not ours to pin: share the worker's CPUs
        }
        let got: Vec<u32> = free.iter().take(n as usize).copied().collect();
        for c in &got {
            free.remove(c);
        }
        got
    }

    fn give_cpus(&self, cpus: &[u32]) {
        self.free_cpus
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(cpus.iter().copied());
    }

    /// Start a task on its own thread; reports come through the channel.
    pub fn start(self: &Arc<Self>, order: StartTask) {
        if self.stopping.load(SeqCst) {
            let reason = format!("worker {} is stopping", self.node);
            tracing::info!("not starting {}: {reason}", order.task);
            return self.report(&order.task, TaskEvent::NotStarted { reason });
        }
        {
            let mut b = self.book();
            if b.alive.contains(&order.task) || b.ended.contains(&order.task) {
                tracing::info!("{}: already here", order.task);
                return;
            }
            b.alive.insert(order.task.clone());
        }
        let task = order.task.clone();
        let me = self.clone();
        let name = format!("task-{}", order.task);
        self.threads.fetch_add(1, SeqCst);
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            me.clone().run(order);
            me.threads.fetch_sub(1, SeqCst);
        });
        if let Err(e) = spawned {
            self.threads.fetch_sub(1, SeqCst);
            self.fail(&task, format!("cannot start a task thread: {e}"));
        }
    }

    /// Kill a task's process tree: SIGTERM, then SIGKILL after a grace
    /// period. A task not yet running never starts; a task this worker
    /// does not know is reported gone (its job may be waiting for it).
    pub fn kill(self: &Arc<Self>, task: &TaskRef, reason: &str) {
        {
            let mut b = self.book();
            if b.ended.contains(task) {
                return;
            }
            if !b.alive.contains(task) {
                drop(b);
                tracing::info!("kill {task}: not on this node");
                return self.report(
                    task,
                    TaskEvent::Exited {
                        exit_code: None,
                        reason: format!("not running on node {} ({reason})", self.node),
                        shm_peak_mib: 0,
                    },
                );
            }
            b.doomed
                .entry(task.clone())
                .or_insert_with(|| reason.to_string());
        }
        tracing::info!("killing {task}: {reason}");
        self.signal_then_kill(task, KILL_GRACE);
    }

    /// SIGTERM a running task's process group, SIGKILL it after `grace`
    /// if it still runs.
    fn signal_then_kill(self: &Arc<Self>, task: &TaskRef, grace: Duration) {
        let pgid = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(task)
            .map(|r| r.pid);
        let Some(pgid) = pgid else { return };
        let pg = nix::unistd::Pid::from_raw(pgid);
        let _ = nix::sys::signal::killpg(pg, nix::sys::signal::Signal::SIGTERM);
        let me = self.clone();
        let task = task.clone();
        std::thread::spawn(move || {
            std::thread::sleep(grace);
            if me
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&task)
                .map(|r| r.pid)
                == Some(pgid)
            {
                let _ = nix::sys::signal::killpg(pg, nix::sys::signal::Signal::SIGKILL);
            }
        });
    }

    /// The launch agent's request: run `command_line` (through `sh -c`, as
    /// ssh would) inside the namespaces, cgroup and CPUs of this node's
    /// task of the caller's job and attempt, with that task's environment.
    /// Only for a job with a task here, with that job's token, from one of
    /// that job's nodes. Waits up to `exec_wait` for the task to start;
    /// blocks until the command ends and returns its exit code.
    pub fn exec_in(&self, caller: &ExecCaller<'_>, command_line: &str) -> Result<i32, ExecError> {
        let (base, attempt) = (&caller.job_id.job, caller.attempt);
        let deadline = std::time::Instant::now() + self.exec_wait;
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let r = loop {
            let hit = running
                .iter()
                .find(|(t, _)| t.attempt == attempt && t.job_id.job == *base)
                .map(|(_, r)| r.clone());
            if let Some(r) = hit {
                break r;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(ExecError::Refused(format!(
                    "no task of job {base} attempt {} runs on this node",
                    attempt + 1
                )));
            }
            running = self
                .started
                .wait_timeout(running, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        drop(running);
        authorize(caller, r.token.as_deref(), &r.gang)?;
        let failed = ExecError::Failed;
        let environ = std::fs::read(format!("/proc/{}/environ", r.pid))
            .map_err(|e| failed(format!("cannot read the task's environment: {e}")))?;
        let mnt = std::fs::File::open(format!("/proc/{}/ns/mnt", r.pid))
            .map_err(|e| failed(format!("cannot open the task's mount namespace: {e}")))?;
        let uts = std::fs::File::open(format!("/proc/{}/ns/uts", r.pid))
            .map_err(|e| failed(format!("cannot open the task's UTS namespace: {e}")))?;
        let log = open_log(&r.dir).map_err(|e| failed(e.to_string()))?;
        let err_log = log.try_clone().map_err(|e| failed(e.to_string()))?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command_line)
            .env_clear()
            .current_dir(work_dir(&r.dir));
        for kv in environ.split(|b| *b == 0).filter(|kv| !kv.is_empty()) {
            let kv = String::from_utf8_lossy(kv);
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log));
        let (procs, cpus, user) = (r.cgroup_join.clone(), r.cpus.clone(), r.user);
        // SAFETY: system calls only, on descriptors opened before the fork.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                let io = |e: nix::Error| std::io::Error::from_raw_os_error(e as i32);
                crate::isolate::child_signals(false)?;
                for f in &procs {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(f)?
                        .write_all(b"0")?;
                }
                if !cpus.is_empty() {
                    let mut set = nix::sched::CpuSet::new();
                    for c in &cpus {
                        let _ = set.set(*c as usize);
                    }
                    let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
                }
                nix::sched::setns(&uts, nix::sched::CloneFlags::CLONE_NEWUTS).map_err(io)?;
                nix::sched::setns(&mnt, nix::sched::CloneFlags::CLONE_NEWNS).map_err(io)?;
                // The launch agent's command runs as the task does.
                crate::isolate::become_job_user(user)
            });
        }
        let status = cmd
            .status()
            .map_err(|e| failed(format!("cannot start the command: {e}")))?;
        use std::os::unix::process::ExitStatusExt;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }

    fn report(&self, task: &TaskRef, event: TaskEvent) {
        if matches!(event, TaskEvent::Exited { .. }) {
            let mut b = self.book();
            if b.alive.remove(task) {
                // Its processes and cgroup are gone: known until delivered.
                b.ended.insert(task.clone());
                b.doomed.remove(task);
                drop(b);
                self.gone.notify_all();
            }
        }
        self.unsent.fetch_add(1, SeqCst);
        let sent = self.reports.send(TaskReport {
            task: task.clone(),
            event,
        });
        if sent.is_err() {
            self.forget_unsent(1);
        }
    }

    fn fail(&self, task: &TaskRef, reason: String) {
        tracing::warn!("{task}: {reason}");
        self.report(
            task,
            TaskEvent::Exited {
                exit_code: None,
                reason,
                shm_peak_mib: 0,
            },
        );
    }

    /// Wait until no other attempt of `task`'s job has processes or a
    /// cgroup here (one attempt of a job at a time on a node). Returns why
    /// the task must not start, if it was told to end meanwhile.
    fn wait_for_earlier_attempts(&self, task: &TaskRef) -> Option<String> {
        let base = base_job(task);
        let mut b = self.book();
        let mut said = false;
        loop {
            if let Some(why) = b.doomed.get(task) {
                return Some(why.clone());
            }
            let earlier = b
                .alive
                .iter()
                .find(|t| base_job(t) == base && t.attempt != task.attempt)
                .cloned();
            let earlier = earlier?;
            if !said {
                tracing::info!("{task} waits for {earlier} to end on this node");
                said = true;
            }
            b = self
                .gone
                .wait_timeout(b, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Run one task to its end: prepare its directory, user, CPUs, cgroup
    /// and isolation; build its command; start it; supervise it until it
    /// ends; report how it ended.
    fn run(self: Arc<Self>, order: StartTask) {
        let task = order.task.clone();
        shoal_model::path::mark(&task.job_id, "task_thread");
        if let Some(why) = self.wait_for_earlier_attempts(&task) {
            return self.fail(&task, format!("ended before it started: {why}"));
        }
        let (mut prepared, log) = match self.prepare(&order) {
            Ok(p) => p,
            Err(reason) => return self.fail(&task, reason),
        };
        let started = self
            .command(&order, &prepared, log)
            .and_then(|cmd| self.launch(&order, &mut prepared, cmd));
        let child = match started {
            Ok(c) => c,
            Err(reason) => return self.fail(&task, reason),
        };
        let ended = self.supervise(&order, prepared, child);
        let event = self.exit_event(&task, ended, order.alloc.memory_mib);
        self.report(&task, event);
    }

    /// A path in the task directory `dir` as the task sees it.
    fn seen(&self, dir: &Path, p: &Path) -> PathBuf {
        match (&self.view, p.strip_prefix(dir)) {
            (Some(view), Ok(rest)) => view.join(rest),
            _ => p.to_path_buf(),
        }
    }

    /// Everything a task needs before its command is built: its directory
    /// (the worker's) with `work/` (the job's), the hostfile and the log;
    /// the user it runs as and the policy's checks of its mounts and
    /// devices; its CPUs and cgroup; its isolation, checked. Errors are the
    /// task's reason, also written to its log where it is open.
    fn prepare(&self, order: &StartTask) -> Result<(Prepared, std::fs::File), String> {
        let task = &order.task;
        let dir = self.dir.join(task_dir_name(task));
        // The task directory and what the worker writes there (log,
        // hostfile) stay the worker's: a job that could swap them for
        // symlinks would have the worker write or serve any file. The job
        // gets `work/`, its own, as working directory.
        let work = work_dir(&dir);
        let files = (|| -> std::io::Result<(std::fs::File, PathBuf)> {
            std::fs::create_dir_all(&work)?;
            let hostfile = dir.join("hostfile");
            std::fs::write(&hostfile, &order.hostfile)?;
            let log = open_log(&dir)?;
            Ok((log, hostfile))
        })();
        let (mut log, hostfile) = files
            .map_err(|e| format!("cannot prepare the task directory {}: {e}", dir.display()))?;
        shoal_model::path::mark(&task.job_id, "dir_ready");
        let launch = &order.launch;
        let root = nix::unistd::geteuid().is_root();
        let image = match &launch.image {
            Some(i) => Some(self.image(i, root).inspect_err(|e| {
                let _ = writeln!(log, "shoal: {e}");
            })?),
            None => None,
        };
        if argv(launch, image.as_ref()).is_empty() {
            return Err("the job has no command; set containerProperties.command".into());
        }
        // In an image, a user is looked up in the image's /etc/passwd, and
        // the image's own user applies when the job names none.
        let lookup = |u: &str| match &image {
            Some(i) => crate::images::lookup_user_in(&i.rootfs, u),
            None => crate::isolate::lookup_user(u),
        };
        let wanted = launch
            .user
            .clone()
            .or_else(|| image.as_ref().and_then(|i| i.config.user.clone()));
        let user = self
            .policy
            .run_as_with(wanted.as_deref(), &uid_key(task), root, &self.node, lookup)
            .and_then(|u| {
                let volumes = launch.binds.iter().map(|b| b.source.as_str());
                self.policy.check_volumes(volumes, &self.node)?;
                let devices = launch.devices.iter().map(|d| d.host_path.as_str());
                self.policy.check_devices(devices, &self.node)?;
                Ok(u)
            })
            .inspect_err(|e| {
                let _ = writeln!(log, "shoal: {e}");
            })?;
        if let Some((uid, gid)) = user {
            let _ = nix::unistd::chown(
                &work,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            );
        }
        // Before the CPUs and the cgroup are taken: nothing to give back.
        let layer = image.as_ref().map(|_| dir.join("layer"));
        let rootfs = match (&image, &layer) {
            (Some(i), Some(l)) => Some(image_root(i, l, launch, self.agent.clone()).inspect_err(
                |e| {
                    let _ = writeln!(log, "shoal: {e}");
                },
            )?),
            _ => None,
        };
        let cpus = self.take_cpus(order.alloc.vcpus);
        shoal_model::path::mark(&task.job_id, "user_ready");
        let mut cgroup = match self.cgroups.create(
            &task_dir_name(task),
            order.alloc.memory_mib,
            &cpu_list(&cpus),
            self.policy.max_processes,
        ) {
            Ok(c) => c,
            Err(e) => {
                let _ = writeln!(
                    log,
                    "shoal: warning: cannot create the task's cgroup ({e}); running without limits"
                );
                TaskCgroup::default()
            }
        };
        shoal_model::path::mark(&task.job_id, "cgroup_created");
        let cwd = match &image {
            // Where the image says, else `/` (as Docker).
            Some(i) => Some(
                i.config
                    .working_dir
                    .clone()
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| "/".into()),
            ),
            // The working directory as the task sees it, so that $PWD and
            // $HOME agree.
            None => self
                .view
                .as_ref()
                .map(|_| self.seen(&dir, &work).to_string_lossy().into_owned()),
        };
        let isolation = Isolation {
            shm_mib: Some(launch.shm_mib),
            tmpfs: launch.tmpfs.clone(),
            binds: self
                .view
                .iter()
                .map(|view| BindMount {
                    source: dir.to_string_lossy().into_owned(),
                    target: view.to_string_lossy().into_owned(),
                    read_only: false,
                })
                .chain(launch.binds.iter().cloned())
                .collect(),
            cgroup_join: cgroup.join_files(),
            user,
            cpus: cpus.clone(),
            cwd,
            userns_hint: self.userns_hint.clone(),
            root: rootfs,
            hostname: gang_hostname(&order.hostfile, &self.address),
            stamps: shoal_model::path::enabled()
                .then(|| crate::isolate::ChildStamps::new(&cgroup.hierarchies()))
                .flatten()
                .map(Arc::new),
        };
        // On the host, mount points must exist; in an image the worker
        // makes them in the task's own layer.
        let mount_points = if image.is_some() {
            Ok(())
        } else {
            check_mount_points(
                isolation
                    .tmpfs
                    .iter()
                    .map(|t| t.path.as_str())
                    .chain(isolation.binds.iter().map(|b| b.target.as_str())),
                &self.node,
            )
        };
        let checked = mount_points.and_then(|()| {
            check_mpi_shm(
                &argv(launch, image.as_ref()),
                launch.shm_mib,
                &order.hostfile,
                order.alloc.vcpus,
            )
        });
        if let Err(reason) = checked {
            self.give_cpus(&cpus);
            cgroup.kill_and_remove();
            remove_layer(layer.as_deref());
            let _ = writeln!(log, "shoal: {reason}");
            return Err(reason);
        }
        shoal_model::path::mark(&task.job_id, "prepared");
        let prepared = Prepared {
            dir,
            work,
            hostfile,
            user,
            root,
            cpus,
            cgroup,
            isolation: Some(isolation),
            image,
            layer,
        };
        Ok((prepared, log))
    }

    /// The image of a task, pulled if it is not here: only for a worker
    /// that runs as root, for now.
    fn image(&self, image: &shoal_model::ImageRef, root: bool) -> Result<Image, String> {
        if !root {
            return Err(format!(
                "CannotStartContainerError: {image}: worker {} runs unprivileged, and runs container images only as root for now; run the job on a root worker, or remove `image` to run it on the host",
                self.node
            ));
        }
        self.images.get(image).map_err(|e| e.to_string())
    }

    /// The task's command: its argv, a clean environment with the user's
    /// home and shell, Open MPI's settings for a gang (the launch agent
    /// instead of ssh, no binding, the node's interface), the job's own
    /// variables, then the launch agent's credential and CA; output to
    /// `log`, in `work/`.
    fn command(
        &self,
        order: &StartTask,
        p: &Prepared,
        log: std::fs::File,
    ) -> Result<Command, String> {
        let launch = &order.launch;
        let argv = argv(launch, p.image.as_ref());
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| "the job has no command; set containerProperties.command".to_string())?;
        let seen = |path: &Path| self.seen(&p.dir, path);
        let mut cmd = Command::new(program);
        cmd.args(args).env_clear();
        if let Some(image) = &p.image {
            // The image's environment, as Docker gives it; the job's
            // variables come after and win.
            for kv in &image.config.env {
                if let Some((k, v)) = kv.split_once('=') {
                    cmd.env(k, v);
                }
            }
            if !image.config.env.iter().any(|kv| kv.starts_with("PATH=")) {
                cmd.env("PATH", crate::images::DEFAULT_PATH);
            }
            if !image.config.env.iter().any(|kv| kv.starts_with("HOME=")) {
                cmd.env("HOME", "/");
            }
            cmd.env("SHELL", "/bin/sh");
        } else {
            for k in ["PATH", "LANG", "TERM"] {
                if let Ok(v) = std::env::var(k) {
                    cmd.env(k, v);
                }
            }
        }
        let home = match p.user {
            Some((uid, _)) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .ok()
                .flatten()
                .map(|u| u.dir.to_string_lossy().into_owned())
                // A transient uid has no home: its working directory.
                .or_else(|| Some(seen(&p.work).to_string_lossy().into_owned())),
            None => std::env::var("HOME").ok(),
        };
        if p.image.is_none() {
            cmd.env("HOME", home.unwrap_or_else(|| "/".into()));
            cmd.env("SHELL", job_shell(p.user.map(|(uid, _)| uid)));
        }
        if p.user.is_some_and(|(uid, _)| uid == 0) || (p.user.is_none() && p.root) {
            cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
                .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        }
        cmd.env("SHOAL_HOSTFILE", seen(&p.hostfile));
        // MPI across the gang: Open MPI starts remote daemons through
        // Shoal's launch agent instead of ssh. Each rank is bound to a core
        // of its node's cpuset where the task's cgroup confines it to that
        // cpuset (hwloc then sees only the node's cores; more ranks than
        // cores share them, `overload-allowed`); elsewhere binding is off,
        // since every simulated node would bind to "its" core 0 of the
        // whole machine, and ranks keep the CPUs Shoal pinned the task to.
        // The job's environment may override any of these.
        // In an image, the launch agent is the host's binary, bound under
        // /.shoal with its loader and libraries.
        let agent = match &p.image {
            Some(_) => self.agent.as_ref().and_then(|a| a.command()),
            None => std::env::current_exe()
                .ok()
                .map(|me| format!("{} launch-agent", me.display())),
        };
        if let Some(agent) = agent {
            cmd.env("OMPI_MCA_plm_rsh_agent", agent);
        }
        let binding = if self.cgroups.confines_cpus() && !p.cpus.is_empty() {
            "core:overload-allowed"
        } else {
            "none"
        };
        cmd.env("OMPI_MCA_hwloc_base_binding_policy", binding);
        if let Some(iface) = &self.interface {
            cmd.env("OMPI_MCA_oob_tcp_if_include", iface)
                .env("OMPI_MCA_btl_tcp_if_include", iface);
        }
        cmd.env("SHOAL_TASK_DIR", seen(&p.dir));
        for kv in &launch.environment {
            cmd.env(&kv.name, &kv.value);
        }
        // After the job's own variables: the launch agent's credential.
        if let Some(t) = &order.job_token {
            cmd.env("SHOAL_JOB_TOKEN", t);
        }
        // The CA that the nodes' own servers (the launch agent's peers)
        // have their certificates from.
        if let Some(ca) = &self.ca_pem {
            cmd.env("SHOAL_CA_PEM", ca);
        }
        let err_log = log
            .try_clone()
            .map_err(|e| format!("cannot open the log: {e}"))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log));
        cmd.current_dir(&p.work);
        Ok(cmd)
    }

    /// Start `cmd` in the task's isolation. On failure the CPUs and the
    /// cgroup go back, and the reason (in the child's words when it failed
    /// between fork and exec) goes to the log.
    fn launch(
        &self,
        order: &StartTask,
        p: &mut Prepared,
        mut cmd: Command,
    ) -> Result<std::process::Child, String> {
        let Some(isolation) = p.isolation.take() else {
            return Err("the task's isolation was applied once already".into());
        };
        let stamps = isolation.stamps.clone();
        let start_error = isolation.apply(&mut cmd);
        let job = &order.task.job_id;
        shoal_model::path::mark(job, "spawn");
        let spawned = cmd.spawn();
        shoal_model::path::mark(job, "spawned");
        if let Some(s) = stamps {
            for (step, t) in s.read() {
                shoal_model::path::mark_at(job, &step, t);
            }
        }
        spawned.map_err(|e| {
            self.give_cpus(&p.cpus);
            p.cgroup.kill_and_remove();
            remove_layer(p.layer.as_deref());
            let program = argv(&order.launch, p.image.as_ref())
                .first()
                .cloned()
                .unwrap_or_default();
            // What went wrong between fork and exec, in the child's
            // words (std only passes its errno).
            let reason = match start_error.take() {
                Some(why) => format!("cannot start {program:?}: {why}"),
                None => format!("cannot start {program:?}: {e}"),
            };
            // In an image, as AWS Batch says it.
            let reason = match &p.image {
                Some(_) => format!("CannotStartContainerError: {reason}"),
                None => reason,
            };
            if let Ok(mut log) = open_log(&p.dir) {
                let _ = writeln!(log, "shoal: {reason}");
            }
            reason
        })
    }

    /// Watch a started task until it ends: it is known as running (so the
    /// launch agent and kills find it) and reported STARTED, its /dev/shm
    /// use is sampled; when its main process ends, its whole session and
    /// cgroup are killed and its CPUs go back.
    fn supervise(
        self: &Arc<Self>,
        order: &StartTask,
        mut p: Prepared,
        mut child: std::process::Child,
    ) -> Ended {
        let task = &order.task;
        let pid = child.id() as i32;
        let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let entry = Running {
            pid,
            cgroup_join: p.cgroup.join_files(),
            cpus: p.cpus.clone(),
            dir: p.dir.clone(),
            user: p.user,
            token: order.job_token.clone(),
            gang: hostfile_addresses(&order.hostfile),
            shm_peak: peak.clone(),
        };
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(task.clone(), entry);
        self.started.notify_all();
        self.report(task, TaskEvent::Started);
        // Told to end while it was being set up.
        if self.book().doomed.contains_key(task) {
            self.signal_then_kill(task, KILL_GRACE);
        }
        // Sample /dev/shm use through the task's own view of the filesystem,
        // and end the task if it outlives its timeout by the backstop.
        let done = Arc::new(AtomicBool::new(false));
        let backstop = order.launch.timeout_s.map(|t| {
            let at = std::time::Instant::now() + Duration::from_secs(t) + TIMEOUT_BACKSTOP;
            let why = format!(
                "{}: worker {} ended it {}s after its {t}s timeout (its scheduler did not)",
                shoal_model::wire::TIMEOUT_REASON,
                self.node,
                TIMEOUT_BACKSTOP.as_secs()
            );
            (at, why)
        });
        let sampler = {
            let (done, peak) = (done.clone(), peak.clone());
            let (tasks, task) = (self.clone(), task.clone());
            let path = PathBuf::from(format!("/proc/{pid}/root/dev/shm"));
            std::thread::spawn(move || {
                let mut backstop = backstop;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some(used) = shm_used_bytes(&path) {
                        peak.fetch_max(used, std::sync::atomic::Ordering::Relaxed);
                    }
                    if backstop
                        .as_ref()
                        .is_some_and(|(at, _)| std::time::Instant::now() >= *at)
                    {
                        if let Some((_, why)) = backstop.take() {
                            tasks.end_task(&task, &why, KILL_GRACE);
                        }
                    }
                    // Woken at once when the task ends.
                    std::thread::park_timeout(SHM_SAMPLE);
                }
            })
        };
        shoal_model::path::mark(&task.job_id, "sampler_started");
        let status = child.wait();
        shoal_model::path::mark(&task.job_id, "exited");
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        sampler.thread().unpark();
        let _ = sampler.join();
        // The task ends with its main process: nothing of it may outlive it.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let oom = p.cgroup.oom_killed();
        p.cgroup.kill_and_remove();
        // Its mount namespace went with its processes: its layer is free,
        // and so is its image.
        remove_layer(p.layer.as_deref());
        drop(p.image.take());
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(task);
        self.give_cpus(&p.cpus);
        shoal_model::path::mark(&task.job_id, "torn_down");
        Ended {
            status,
            oom,
            shm_peak_mib: peak
                .load(std::sync::atomic::Ordering::Relaxed)
                .div_ceil(1024 * 1024),
        }
    }

    /// How a task ended, as its report says it: the exit code, or the
    /// signal (an OOM kill at `memory_mib` named as such); a task ended by
    /// the fence or by the worker's stop gets that reason (the host's, as
    /// AWS Batch gives for a terminated instance, so `onStatusReason:
    /// "Host*"` retries it) and no success.
    fn exit_event(&self, task: &TaskRef, ended: Ended, memory_mib: u64) -> TaskEvent {
        use std::os::unix::process::ExitStatusExt;
        let (exit_code, reason) = match ended.status {
            Ok(s) => match (s.code(), s.signal()) {
                (Some(c), _) => (Some(c), "Essential container in task exited".to_string()),
                (None, Some(sig)) if ended.oom => (
                    Some(128 + sig),
                    format!(
                        "OutOfMemoryError: killed by signal {sig} at the {memory_mib} MiB memory limit"
                    ),
                ),
                (None, Some(sig)) => (Some(128 + sig), format!("killed by signal {sig}")),
                (None, None) => (None, "ended without a status".to_string()),
            },
            Err(e) => (None, format!("cannot wait for the task: {e}")),
        };
        let fenced = self.book().fenced.get(task).cloned();
        let (exit_code, reason) = if let Some(why) = fenced {
            (exit_code.filter(|&c| c != 0), format!("{why} ({reason})"))
        } else if self.stopping.load(SeqCst) {
            (
                exit_code.filter(|&c| c != 0),
                format!(
                    "{}: worker {} stopped ({reason})",
                    shoal_model::wire::HOST_TERMINATED,
                    self.node
                ),
            )
        } else {
            (exit_code, reason)
        };
        TaskEvent::Exited {
            exit_code,
            reason,
            shm_peak_mib: ended.shm_peak_mib,
        }
    }
}

/// What a task runs: its command, or in an image the image's entrypoint
/// followed by the job's command (which replaces the image's `Cmd`, as
/// `docker run IMAGE COMMAND` and AWS Batch do).
fn argv(launch: &shoal_model::LaunchSpec, image: Option<&Image>) -> Vec<String> {
    match image {
        None => launch.argv.clone(),
        Some(i) => {
            let cmd = if launch.argv.is_empty() {
                &i.config.cmd
            } else {
                &launch.argv
            };
            i.config.entrypoint.iter().chain(cmd).cloned().collect()
        }
    }
}

/// The root filesystem of a task in `image`: the image's root under the
/// task's own layer in `layer` (made now), with the devices the job asked
/// for (already allowed by the policy).
fn image_root(
    image: &Image,
    layer: &Path,
    launch: &shoal_model::LaunchSpec,
    agent: Option<crate::isolate::AgentFiles>,
) -> Result<ImageRoot, String> {
    let dirs = ["upper", "work", "merged"].map(|d| layer.join(d));
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(|e| {
            format!(
                "CannotStartContainerError: cannot create {}: {e}",
                d.display()
            )
        })?;
    }
    let [upper, work, merged] = dirs.map(|d| d.to_string_lossy().into_owned());
    Ok(ImageRoot {
        lower: image.rootfs.to_string_lossy().into_owned(),
        upper,
        work,
        merged,
        devices: launch.devices.iter().map(|d| d.host_path.clone()).collect(),
        agent,
    })
}

/// Remove a task's layer over its image, if it has one.
fn remove_layer(layer: Option<&Path>) {
    if let Some(l) = layer {
        if let Err(e) = std::fs::remove_dir_all(l) {
            tracing::warn!("cannot remove the task layer {}: {e}", l.display());
        }
    }
}

fn cpu_list(cpus: &[u32]) -> String {
    cpus.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Open MPI's shared-memory transport needs about 4 MiB of /dev/shm per
/// local rank (one `vader_segment` file each); with less it fails, or with
/// the default transports silently falls back to TCP.
pub const MPI_SHM_PER_RANK_MIB: u64 = 4;

/// Mount points (tmpfs and volume `containerPath`s) must be existing
/// directories: a job runs on the host's filesystem, and the worker does
/// not create directories there for it.
pub fn check_mount_points<'a>(
    paths: impl IntoIterator<Item = &'a str>,
    node: &str,
) -> Result<(), String> {
    for p in paths {
        let path = Path::new(p);
        if !path.is_absolute() || !path.is_dir() {
            return Err(format!(
                "containerPath {p:?} is not an existing directory on {node}: Shoal runs jobs on the \
                 host's filesystem and does not create mount points there; use a directory that \
                 exists (e.g. under /tmp or /mnt), or ask the operator to create it"
            ));
        }
    }
    Ok(())
}

/// Refuse an `mpirun` whose ranks per node cannot fit in /dev/shm.
/// How many of `np` ranks (None: one per slot) Open MPI places on the first
/// node of a hostfile with these slots: it fills nodes in order, and with
/// more ranks than slots (`--oversubscribe`) deals the rest round the nodes.
pub fn ranks_on_first_node(np: Option<u64>, slots: &[u64]) -> u64 {
    let first = slots.first().copied().unwrap_or(1);
    let total: u64 = slots.iter().sum();
    match np {
        None => first,
        Some(n) if n <= total => n.min(first),
        Some(n) => first + (n - total).div_ceil(slots.len().max(1) as u64),
    }
}

/// Before an `mpirun` starts on the main node (the hostfile's first line):
/// its /dev/shm must hold Open MPI's segment for each rank it places here,
/// counted from `-np` and the hostfile's slots (one slot per vCPU of this
/// node when there is no hostfile).
pub fn check_mpi_shm(
    command: &[String],
    shm_mib: u64,
    hostfile: &str,
    vcpus: u32,
) -> Result<(), String> {
    let words: Vec<&str> = command.iter().flat_map(|a| a.split_whitespace()).collect();
    let Some(at) = words
        .iter()
        .position(|w| w.ends_with("mpirun") || w.ends_with("mpiexec"))
    else {
        return Ok(());
    };
    let rest = &words[at + 1..];
    let np = rest
        .windows(2)
        .find(|w| matches!(w[0], "-np" | "-n" | "--np" | "-c"))
        .and_then(|w| w[1].parse::<u64>().ok());
    let mut slots: Vec<u64> = hostfile
        .lines()
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("slots=")))
        .filter_map(|n| n.parse().ok())
        .collect();
    if slots.is_empty() {
        slots.push(u64::from(vcpus.max(1)));
    }
    let here = ranks_on_first_node(np, &slots);
    let need = here * MPI_SHM_PER_RANK_MIB;
    if shm_mib < need {
        let ranks = if here == 1 { "rank" } else { "ranks" };
        return Err(format!(
            "/dev/shm is {shm_mib} MiB but the {here} {ranks} mpirun places on this node need ≥ {need} MiB \
             ({MPI_SHM_PER_RANK_MIB} MiB each); raise linuxParameters.sharedMemorySize"
        ));
    }
    Ok(())
}

/// Bytes in use on the filesystem at `path`.
pub fn shm_used_bytes(path: &Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    Some((s.blocks() as u64).saturating_sub(s.blocks_free() as u64) * s.fragment_size() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gang_task_is_named_as_its_hostfile_names_its_node() {
        let hostfile = "10.201.7.1 slots=2\n10.201.7.2 slots=2\n";
        assert_eq!(
            gang_hostname(hostfile, "10.201.7.2").as_deref(),
            Some("10.201.7.2")
        );
        // Not in the gang, or no gang (one node): the machine's name.
        assert_eq!(gang_hostname(hostfile, "10.201.7.3"), None);
        assert_eq!(gang_hostname("10.201.7.1 slots=2\n", "10.201.7.1"), None);
    }
    use std::net::IpAddr;

    #[test]
    fn the_mpirun_fit_check_counts_the_ranks_it_places_here() {
        // -np 2 --oversubscribe on one node with one slot: both ranks here.
        assert_eq!(ranks_on_first_node(Some(2), &[1]), 2);
        assert_eq!(ranks_on_first_node(Some(2), &[1, 1]), 1);
        assert_eq!(ranks_on_first_node(Some(8), &[2, 2]), 4);
        assert_eq!(ranks_on_first_node(None, &[3, 1]), 3);
        let cmd = |s: &str| vec!["sh".to_string(), "-c".into(), s.to_string()];
        let one = "10.0.0.1 slots=1\n";
        let e = check_mpi_shm(&cmd("mpirun -np 2 --oversubscribe ./a"), 4, one, 1).unwrap_err();
        assert!(
            e.contains("the 2 ranks mpirun places on this node need ≥ 8 MiB"),
            "{e}"
        );
        let e = check_mpi_shm(&cmd("mpirun -np 1 ./a"), 2, one, 1).unwrap_err();
        assert!(e.contains("the 1 rank mpirun places"), "{e}");
        assert!(check_mpi_shm(&cmd("mpirun -np 2 ./a"), 4, "a slots=1\nb slots=1\n", 1).is_ok());
        assert!(check_mpi_shm(&cmd("echo no mpi"), 0, "", 1).is_ok());
    }

    fn caller<'a>(token: &'a str, peer: &str) -> ExecCaller<'a> {
        static JOB: std::sync::LazyLock<JobRef> =
            std::sync::LazyLock::new(|| "j#1".parse().unwrap());
        ExecCaller {
            job_id: &JOB,
            attempt: 0,
            token,
            peer: peer.parse().unwrap(),
        }
    }

    #[test]
    fn exec_needs_the_jobs_token_from_one_of_its_nodes() {
        let gang = hostfile_addresses("10.0.0.1 slots=2\n10.0.0.2 slots=2\n");
        assert_eq!(gang.len(), 2);
        let t = Some("abc123");
        assert_eq!(authorize(&caller("abc123", "10.0.0.2"), t, &gang), Ok(()));
        assert_eq!(
            authorize(&caller("abc123", "::ffff:10.0.0.1"), t, &gang),
            Ok(())
        );
        for (token, peer, why) in [
            ("abc124", "10.0.0.2", "wrong job token"),
            ("abc12", "10.0.0.2", "wrong job token"),
            ("", "10.0.0.2", "wrong job token"),
            ("abc123", "10.0.0.3", "is not a node of job"),
            ("abc123", "127.0.0.1", "is not a node of job"),
        ] {
            match authorize(&caller(token, peer), t, &gang) {
                Err(ExecError::Refused(m)) => assert!(m.contains(why), "{m}"),
                other => panic!("{token} from {peer}: {other:?}"),
            }
        }
        assert!(matches!(
            authorize(&caller("abc123", "10.0.0.1"), None, &gang),
            Err(ExecError::Refused(_))
        ));
        let _: Vec<IpAddr> = hostfile_addresses("garbage\n\n");
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret("a1", "a1"));
        assert!(!same_secret("a1", "a2"));
        assert!(!same_secret("a1", "a1b"));
        assert!(same_secret("", ""));
    }
}
