//! Running one task: one node of one attempt of a job.

use crate::cgroup::{Cgroups, TaskCgroup};
use crate::isolate::{lookup_user, BindMount, Isolation, TmpfsMount};
use shoal_model::wire::{StartTask, TaskEvent, TaskRef, TaskReport};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// /dev/shm size when the job definition sets none: Docker's default.
pub const DEFAULT_SHM_MIB: u64 = 64;

/// How long a killed task gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// How often /dev/shm use is sampled.
pub const SHM_SAMPLE: Duration = Duration::from_millis(50);

/// What every task of a worker shares.
pub struct Tasks {
    /// Where task directories (logs, hostfiles) go.
    pub dir: PathBuf,
    /// cgroup hierarchies.
    pub cgroups: Cgroups,
    /// CPUs not given to a running task.
    free_cpus: Mutex<BTreeSet<u32>>,
    /// Running tasks: task → process group id.
    running: Mutex<HashMap<TaskRef, i32>>,
    /// Where reports go.
    reports: Sender<TaskReport>,
}

/// A file-name-safe form of a task id.
pub fn task_dir_name(t: &TaskRef) -> String {
    let id: String = t
        .job_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{id}.node{}.attempt{}", t.node_index, t.attempt + 1)
}

impl Tasks {
    /// A task runner using `dir`, `cgroups` and the worker's `cpus`.
    pub fn new(
        dir: PathBuf,
        cgroups: Cgroups,
        cpus: &[u32],
        reports: Sender<TaskReport>,
    ) -> Arc<Tasks> {
        Arc::new(Tasks {
            dir,
            cgroups,
            free_cpus: Mutex::new(cpus.iter().copied().collect()),
            running: Mutex::new(HashMap::new()),
            reports,
        })
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

    /// Kill every running task at once (the worker is shutting down).
    pub fn kill_all(&self) {
        for pgid in self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(*pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // Let the task threads reap their processes and remove their own
        // cgroups (bounded), then sweep whatever is left.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.cgroups.clean_stale();
        self.cgroups.remove_base();
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
        let me = self.clone();
        let name = format!("task-{}", order.task);
        let spawned = std::thread::Builder::new()
            .name(name)
            .spawn(move || me.run(order));
        if let Err(e) = spawned {
            tracing::error!("cannot start a task thread: {e}");
        }
    }

    /// Kill a task's process tree: SIGTERM, then SIGKILL after a grace period.
    pub fn kill(self: &Arc<Self>, task: &TaskRef, reason: &str) {
        let pgid = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(task)
            .copied();
        let Some(pgid) = pgid else { return };
        tracing::info!("killing {task}: {reason}");
        let pg = nix::unistd::Pid::from_raw(pgid);
        let _ = nix::sys::signal::killpg(pg, nix::sys::signal::Signal::SIGTERM);
        let me = self.clone();
        let task = task.clone();
        std::thread::spawn(move || {
            std::thread::sleep(KILL_GRACE);
            if me
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&task)
                == Some(&pgid)
            {
                let _ = nix::sys::signal::killpg(pg, nix::sys::signal::Signal::SIGKILL);
            }
        });
    }

    fn report(&self, task: &TaskRef, event: TaskEvent) {
        let _ = self.reports.send(TaskReport {
            task: task.clone(),
            event,
        });
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

    fn run(self: Arc<Self>, order: StartTask) {
        let task = order.task.clone();
        let dir = self.dir.join(task_dir_name(&task));
        let prepared = (|| -> std::io::Result<(std::fs::File, PathBuf)> {
            std::fs::create_dir_all(&dir)?;
            let hostfile = dir.join("hostfile");
            std::fs::write(&hostfile, &order.hostfile)?;
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("output.log"))?;
            Ok((log, hostfile))
        })();
        let (mut log, hostfile) = match prepared {
            Ok(x) => x,
            Err(e) => {
                return self.fail(
                    &task,
                    format!("cannot prepare the task directory {}: {e}", dir.display()),
                )
            }
        };
        let Some((program, args)) = order.command.split_first() else {
            return self.fail(
                &task,
                "the job has no command; set containerProperties.command".into(),
            );
        };
        let user = match order.user.as_deref().map(lookup_user).transpose() {
            Ok(u) => u,
            Err(e) => return self.fail(&task, e),
        };
        if let Some(w) = self.cgroups.warning() {
            let _ = writeln!(log, "{w}");
        }
        let cpus = self.take_cpus(order.alloc.vcpus);
        let cg_name = task_dir_name(&task);
        let mut cgroup = match self.cgroups.create(
            &cg_name,
            order.alloc.memory_mib.max(order.alloc.shm_mib),
            &cpu_list(&cpus),
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
        let lp = order.linux_parameters.clone().unwrap_or_default();
        let shm_mib = lp
            .shared_memory_size
            .map(|s| s.max(1) as u64)
            .unwrap_or(DEFAULT_SHM_MIB);
        let volumes: HashMap<String, String> = order
            .volumes
            .iter()
            .filter_map(|v| Some((v.name.clone()?, v.host.as_ref()?.source_path.clone()?)))
            .collect();
        let isolation = Isolation {
            shm_mib: Some(shm_mib),
            tmpfs: lp
                .tmpfs
                .iter()
                .map(|t| TmpfsMount {
                    path: t.container_path.clone(),
                    size_mib: t.size.max(1) as u64,
                    options: t.mount_options.clone(),
                })
                .collect(),
            binds: order
                .mount_points
                .iter()
                .filter_map(|m| {
                    let source = volumes.get(m.source_volume.as_deref()?)?.clone();
                    Some(BindMount {
                        source,
                        target: m.container_path.clone()?,
                        read_only: m.read_only.unwrap_or(false),
                    })
                })
                .collect(),
            cgroup_procs: cgroup.procs_files(),
            user,
            cpus: cpus.clone(),
        };
        let mut cmd = Command::new(program);
        cmd.args(args).env_clear();
        for k in ["PATH", "LANG", "TERM"] {
            if let Ok(v) = std::env::var(k) {
                cmd.env(k, v);
            }
        }
        cmd.env("HOME", std::env::var("HOME").unwrap_or_else(|_| "/".into()));
        if nix::unistd::geteuid().is_root() {
            cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
                .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        }
        cmd.env("SHOAL_HOSTFILE", &hostfile);
        cmd.env("SHOAL_TASK_DIR", &dir);
        for kv in &order.environment {
            if let (Some(k), Some(v)) = (&kv.name, &kv.value) {
                cmd.env(k, v);
            }
        }
        let err_log = match log.try_clone() {
            Ok(l) => l,
            Err(e) => return self.fail(&task, format!("cannot open the log: {e}")),
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log));
        cmd.current_dir(&dir);
        isolation.apply(&mut cmd);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                self.give_cpus(&cpus);
                cgroup.kill_and_remove();
                return self.fail(&task, format!("cannot start {program:?}: {e}"));
            }
        };
        let pid = child.id() as i32;
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(task.clone(), pid);
        self.report(&task, TaskEvent::Started);

        // Sample /dev/shm use through the task's own view of the filesystem.
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let sampler = {
            let (done, peak) = (done.clone(), peak.clone());
            let path = PathBuf::from(format!("/proc/{pid}/root/dev/shm"));
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some(used) = shm_used_bytes(&path) {
                        peak.fetch_max(used, std::sync::atomic::Ordering::Relaxed);
                    }
                    std::thread::sleep(SHM_SAMPLE);
                }
            })
        };
        let status = child.wait();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = sampler.join();
        // The task ends with its main process: nothing of it may outlive it.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let oom = cgroup.oom_killed();
        cgroup.kill_and_remove();
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&task);
        self.give_cpus(&cpus);
        let peak_mib = peak
            .load(std::sync::atomic::Ordering::Relaxed)
            .div_ceil(1024 * 1024);
        use std::os::unix::process::ExitStatusExt;
        let (exit_code, reason) = match status {
            Ok(s) => match (s.code(), s.signal()) {
                (Some(c), _) => (Some(c), "Essential container in task exited".to_string()),
                (None, Some(sig)) if oom => (
                    Some(128 + sig),
                    format!(
                        "OutOfMemoryError: killed by signal {sig} at the {} MiB memory limit",
                        order.alloc.memory_mib
                    ),
                ),
                (None, Some(sig)) => (Some(128 + sig), format!("killed by signal {sig}")),
                (None, None) => (None, "ended without a status".to_string()),
            },
            Err(e) => (None, format!("cannot wait for the task: {e}")),
        };
        self.report(
            &task,
            TaskEvent::Exited {
                exit_code,
                reason,
                shm_peak_mib: peak_mib,
            },
        );
    }
}

fn cpu_list(cpus: &[u32]) -> String {
    cpus.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Bytes in use on the filesystem at `path`.
pub fn shm_used_bytes(path: &Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    Some((s.blocks() as u64).saturating_sub(s.blocks_free() as u64) * s.fragment_size() as u64)
}
