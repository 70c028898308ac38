//! Per-task cgroups: a memory limit (tmpfs pages of the private /dev/shm
//! are charged to it), a cpuset inside the worker's own and a limit on
//! processes (pids). Works with cgroup v2 (unified) and v1 (memory, cpuset
//! and pids hierarchies). Where neither
//! can be written, tasks run without limits and their log says so.

use std::path::{Path, PathBuf};

/// The cgroup hierarchies the worker can use.
#[derive(Debug, Clone)]
pub enum Cgroups {
    /// cgroup v2: one directory per task under `base`.
    V2 {
        /// `…/shoal-WORKER`.
        base: PathBuf,
    },
    /// cgroup v1: a directory per task in each hierarchy found.
    V1 {
        /// `/sys/fs/cgroup/memory/…/shoal-WORKER`.
        memory: Option<PathBuf>,
        /// `/sys/fs/cgroup/cpuset/…/shoal-WORKER`.
        cpuset: Option<PathBuf>,
        /// `/sys/fs/cgroup/pids/…/shoal-WORKER`.
        pids: Option<PathBuf>,
    },
    /// No usable cgroups; the worker notes why on its node.
    Unavailable(String),
}

/// One task's cgroup directories.
#[derive(Debug, Default)]
pub struct TaskCgroup {
    dirs: Vec<PathBuf>,
    /// In cgroup v1 hierarchies (else v2).
    v1: bool,
}

fn own_path(controller: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
        let hit = if controller.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        hit.then(|| path.trim_start_matches('/').to_string())
    })
}

fn prepare(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

impl Cgroups {
    /// Find and prepare the hierarchies for the worker whose cgroup
    /// directory is `leaf` (unique per worker on the machine).
    pub fn detect(leaf: &str) -> Cgroups {
        let root = Path::new("/sys/fs/cgroup");
        if root.join("cgroup.controllers").exists() {
            // Unified: put tasks beside the worker, under a parent that
            // delegates memory and cpuset.
            let base = root.join(leaf);
            let enable = || -> std::io::Result<()> {
                prepare(&base)?;
                let _ = std::fs::write(root.join("cgroup.subtree_control"), "+memory +cpuset");
                // pids separately: a kernel without it still gets the rest.
                let _ = std::fs::write(root.join("cgroup.subtree_control"), "+pids");
                let _ = std::fs::write(base.join("cgroup.subtree_control"), "+pids");
                std::fs::write(base.join("cgroup.subtree_control"), "+memory +cpuset")
            };
            return match enable() {
                Ok(()) => Cgroups::V2 { base },
                Err(e) => Cgroups::Unavailable(format!(
                    "cgroup v2 at {} is not writable ({e})",
                    base.display()
                )),
            };
        }
        let v1 = |ctrl: &str| -> Option<PathBuf> {
            let mount = root.join(ctrl);
            if !mount.join("tasks").exists() {
                return None;
            }
            let dir = mount.join(own_path(ctrl).unwrap_or_default()).join(leaf);
            prepare(&dir).ok()?;
            if ctrl == "cpuset" {
                // A v1 cpuset needs cpus and mems before it takes tasks.
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let parent = std::fs::read_to_string(dir.parent()?.join(f)).ok()?;
                    std::fs::write(dir.join(f), parent.trim()).ok()?;
                }
            }
            Some(dir)
        };
        let (memory, cpuset) = (v1("memory"), v1("cpuset"));
        if memory.is_none() && cpuset.is_none() {
            return Cgroups::Unavailable(
                "no writable cgroup v1 memory or cpuset hierarchy under /sys/fs/cgroup".into(),
            );
        }
        Cgroups::V1 {
            memory,
            cpuset,
            pids: v1("pids"),
        }
    }

    /// The worker's own cgroup directories, one per hierarchy in use.
    pub fn bases(&self) -> Vec<&PathBuf> {
        match self {
            Cgroups::V2 { base } => vec![base],
            Cgroups::V1 {
                memory,
                cpuset,
                pids,
            } => memory
                .iter()
                .chain(cpuset.iter())
                .chain(pids.iter())
                .collect(),
            Cgroups::Unavailable(_) => Vec::new(),
        }
    }

    /// Kill whatever earlier runs of this worker left behind (a worker
    /// killed with SIGKILL cannot clean up after its tasks) and remove their
    /// cgroups. Returns how many task cgroups were cleaned.
    pub fn clean_stale(&self) -> usize {
        let bases = self.bases();
        let mut n = 0;
        for base in bases {
            let Ok(entries) = std::fs::read_dir(base) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    TaskCgroup {
                        dirs: vec![e.path()],
                        v1: matches!(self, Cgroups::V1 { .. }),
                    }
                    .kill_and_remove();
                    n += 1;
                }
            }
        }
        n
    }

    /// Remove the worker's own cgroup directories (after `clean_stale`).
    pub fn remove_base(&self) {
        let bases = self.bases();
        for b in bases {
            let _ = std::fs::remove_dir(b);
        }
    }

    /// Whether a task's cgroup confines it to its CPUs (a cpuset
    /// controller Shoal writes), so that what runs inside sees only those:
    /// Open MPI's hwloc then counts a node's cores from its own cpuset.
    pub fn confines_cpus(&self) -> bool {
        match self {
            Cgroups::V2 { base } => std::fs::read_to_string(base.join("cgroup.subtree_control"))
                .unwrap_or_default()
                .split_whitespace()
                .any(|c| c == "cpuset"),
            Cgroups::V1 { cpuset, .. } => cpuset.is_some(),
            Cgroups::Unavailable(_) => false,
        }
    }

    /// The limits jobs do not get here, and why (empty: all of them).
    pub fn notes(&self) -> Vec<String> {
        let missing = |what: &str, why: String| format!("jobs run without a {what} limit: {why}");
        match self {
            Cgroups::Unavailable(why) => {
                vec![format!("jobs run without memory and CPU limits: {why}")]
            }
            Cgroups::V2 { base } => {
                let on = std::fs::read_to_string(base.join("cgroup.subtree_control"))
                    .unwrap_or_default();
                [("memory", "memory"), ("cpuset", "CPU"), ("pids", "process")]
                    .into_iter()
                    .filter(|(c, _)| !on.split_whitespace().any(|x| x == *c))
                    .map(|(c, what)| {
                        missing(
                            what,
                            format!(
                                "the cgroup v2 controller {c} is not enabled under {}",
                                base.display()
                            ),
                        )
                    })
                    .collect()
            }
            Cgroups::V1 {
                memory,
                cpuset,
                pids,
            } => [
                (memory, "memory", "memory"),
                (cpuset, "cpuset", "CPU"),
                (pids, "pids", "process"),
            ]
            .into_iter()
            .filter(|(dir, _, _)| dir.is_none())
            .map(|(_, c, what)| missing(what, format!("no writable cgroup v1 {c} hierarchy")))
            .collect(),
        }
    }

    /// Create the cgroup of task `id` with its limits (`max_pids`: at most
    /// that many processes and threads).
    pub fn create(
        &self,
        id: &str,
        memory_mib: u64,
        cpus: &str,
        max_pids: Option<u64>,
    ) -> std::io::Result<TaskCgroup> {
        let mut cg = TaskCgroup::default();
        let bytes = (memory_mib * 1024 * 1024).to_string();
        match self {
            Cgroups::V2 { base } => {
                let d = base.join(id);
                prepare(&d)?;
                cg.dirs.push(d.clone());
                std::fs::write(d.join("memory.max"), &bytes)?;
                let _ = std::fs::write(d.join("memory.swap.max"), "0");
                if !cpus.is_empty() {
                    std::fs::write(d.join("cpuset.cpus"), cpus)?;
                }
                if let Some(n) = max_pids {
                    // Absent where the kernel has no pids controller.
                    let _ = std::fs::write(d.join("pids.max"), n.to_string());
                }
            }
            Cgroups::V1 {
                memory,
                cpuset,
                pids,
            } => {
                cg.v1 = true;
                if let (Some(p), Some(n)) = (pids, max_pids) {
                    let d = p.join(id);
                    prepare(&d)?;
                    cg.dirs.push(d.clone());
                    std::fs::write(d.join("pids.max"), n.to_string())?;
                }
                if let Some(m) = memory {
                    let d = m.join(id);
                    prepare(&d)?;
                    cg.dirs.push(d.clone());
                    std::fs::write(d.join("memory.limit_in_bytes"), &bytes)?;
                    let _ = std::fs::write(d.join("memory.swappiness"), "0");
                }
                if let Some(c) = cpuset {
                    let d = c.join(id);
                    prepare(&d)?;
                    cg.dirs.push(d.clone());
                    let cpus = if cpus.is_empty() {
                        std::fs::read_to_string(c.join("cpuset.cpus"))?
                    } else {
                        cpus.to_string()
                    };
                    std::fs::write(d.join("cpuset.cpus"), cpus.trim())?;
                    let mems = std::fs::read_to_string(c.join("cpuset.mems"))?;
                    std::fs::write(d.join("cpuset.mems"), mems.trim())?;
                }
            }
            Cgroups::Unavailable(_) => {}
        }
        Ok(cg)
    }
}

impl TaskCgroup {
    /// Files to write `0` into to join, from a single-threaded child
    /// before exec: in v1 each hierarchy's `tasks`, which moves the calling
    /// thread (the child's only one) without the kernel's global
    /// thread-group lock that a write to `cgroup.procs` takes (an RCU
    /// grace period per hierarchy, about 3 ms each, measured by `shoal
    /// bench path`); in v2 `cgroup.procs`.
    pub fn join_files(&self) -> Vec<PathBuf> {
        let file = if self.v1 { "tasks" } else { "cgroup.procs" };
        self.dirs.iter().map(|d| d.join(file)).collect()
    }

    /// The hierarchy of each of [`TaskCgroup::join_files`], for people.
    pub fn hierarchies(&self) -> Vec<String> {
        self.dirs
            .iter()
            .map(|d| {
                let under = d.strip_prefix("/sys/fs/cgroup").unwrap_or(d);
                match under.components().next() {
                    Some(c) if self.v1 => c.as_os_str().to_string_lossy().into_owned(),
                    _ => "v2".to_string(),
                }
            })
            .collect()
    }

    /// Did the memory limit kill something? (v1 `memory.failcnt`, v2
    /// `memory.events` oom_kill).
    pub fn oom_killed(&self) -> bool {
        self.dirs.iter().any(|d| {
            std::fs::read_to_string(d.join("memory.events"))
                .ok()
                .and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("oom_kill ").map(|n| n.trim() != "0"))
                })
                .unwrap_or(false)
                || std::fs::read_to_string(d.join("memory.oom_control"))
                    .ok()
                    .and_then(|t| {
                        t.lines()
                            .find_map(|l| l.strip_prefix("oom_kill ").map(|n| n.trim() != "0"))
                    })
                    .unwrap_or(false)
        })
    }

    /// SIGKILL every process left in the cgroup, then remove it.
    pub fn kill_and_remove(&mut self) {
        for d in &self.dirs {
            let _ = std::fs::write(d.join("cgroup.kill"), "1");
            for _ in 0..100 {
                let pids: Vec<i32> = std::fs::read_to_string(d.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect();
                if pids.is_empty() {
                    break;
                }
                for p in pids {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                std::thread::yield_now();
            }
        }
        for d in self.dirs.drain(..) {
            // The kernel lets go of a cgroup a moment after its last task.
            for _ in 0..200 {
                if std::fs::remove_dir(&d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}

impl Drop for TaskCgroup {
    fn drop(&mut self) {
        self.kill_and_remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_joins_v1_through_tasks_and_v2_through_cgroup_procs() {
        let v1 = TaskCgroup {
            dirs: vec![
                "/sys/fs/cgroup/pids/a/t".into(),
                "/sys/fs/cgroup/memory/a/t".into(),
            ],
            v1: true,
        };
        assert_eq!(
            v1.join_files(),
            [
                PathBuf::from("/sys/fs/cgroup/pids/a/t/tasks"),
                PathBuf::from("/sys/fs/cgroup/memory/a/t/tasks")
            ]
        );
        assert_eq!(v1.hierarchies(), ["pids", "memory"]);
        let v2 = TaskCgroup {
            dirs: vec!["/sys/fs/cgroup/a/t".into()],
            v1: false,
        };
        assert_eq!(
            v2.join_files(),
            [PathBuf::from("/sys/fs/cgroup/a/t/cgroup.procs")]
        );
        assert_eq!(v2.hierarchies(), ["v2"]);
        // Nothing to remove: the paths do not exist.
        std::mem::forget(v1);
        std::mem::forget(v2);
    }
}
