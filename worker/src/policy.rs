//! The operator's rules for what a job may ask of this node: which user it
//! runs as, which host paths it may mount and which devices it may name.
//!
//! - A job runs as its definition's `user`. A job that names no user runs
//!   as a transient uid of its own (see [`TRANSIENT_UIDS`]; one per task, so
//!   two such jobs cannot reach each other's files, `/dev/shm` or processes
//!   through `/proc`), or as the operator's `--job-user`; on a worker that is
//!   not root, as the worker's own user.
//! - A job runs as root only when its definition asks for it (`user` is
//!   `root` or `0`) *and* the operator started the worker with
//!   `--allow-root-jobs`.
//! - `volumes` (host `sourcePath`s) must lie under a directory of
//!   `--allow-volume`, and `devices` must be listed by `--allow-device`;
//!   by default neither is allowed.

use std::path::{Path, PathBuf};

/// Transient uids (and gids of the same number) for jobs that name no user:
/// 2^24 ids from 0x7000_0000, far above any passwd range. A job's id is a
/// hash of its id and attempt (all its nodes on one host share it), so
/// workers on one host need no shared allocator.
pub const TRANSIENT_UIDS: std::ops::Range<u32> = 0x7000_0000..0x7100_0000;

/// The transient uid for `key` (a job and attempt).
pub fn transient_uid(task: &str) -> u32 {
    // FNV-1a: stable across runs and versions, unlike std's hasher.
    let h = task.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let span = TRANSIENT_UIDS.end - TRANSIENT_UIDS.start;
    TRANSIENT_UIDS.start + (h % u64::from(span)) as u32
}

/// The rules, from the worker's command line.
#[derive(Debug, Clone, Default)]
pub struct JobPolicy {
    /// Run a job as root when its definition asks for it.
    pub allow_root: bool,
    /// The user of jobs whose definition names none (None: a transient uid
    /// per task when the worker is root, else the worker's own user).
    pub job_user: Option<String>,
    /// Host directories volumes may come from (their subtrees included).
    pub volumes: Vec<PathBuf>,
    /// Device paths jobs may name.
    pub devices: Vec<PathBuf>,
    /// At most this many processes and threads per task (cgroup pids).
    pub max_processes: Option<u64>,
}

/// Who a task runs as: None keeps the worker's own user.
pub type RunAs = Option<(u32, u32)>;

impl JobPolicy {
    /// Check the policy itself at the worker's start.
    pub fn check(&self, worker_is_root: bool) -> Result<(), String> {
        if let (true, Some(user)) = (worker_is_root, &self.job_user) {
            let (uid, _) = crate::isolate::lookup_user(user)?;
            if uid == 0 {
                return Err(
                    "--job-user is root: jobs that name no user would run as root; \
                     name an unprivileged user (jobs that need root say so in their \
                     definition, and --allow-root-jobs lets them)"
                        .into(),
                );
            }
        }
        Ok(())
    }

    /// The uid/gid a task with definition user `user` runs as, on a worker
    /// that runs as root (`worker_is_root`) or not; `task` keys its
    /// transient uid (its job and attempt).
    pub fn run_as(
        &self,
        user: Option<&str>,
        task: &str,
        worker_is_root: bool,
        node: &str,
    ) -> Result<RunAs, String> {
        self.run_as_with(
            user,
            task,
            worker_is_root,
            node,
            crate::isolate::lookup_user,
        )
    }

    /// [`JobPolicy::run_as`] with users looked up by `lookup` (in a
    /// container image's `/etc/passwd`, say).
    pub fn run_as_with(
        &self,
        user: Option<&str>,
        task: &str,
        worker_is_root: bool,
        node: &str,
        lookup: impl Fn(&str) -> Result<(u32, u32), String>,
    ) -> Result<RunAs, String> {
        let wanted = user.map(&lookup).transpose()?;
        if !worker_is_root {
            // An unprivileged worker cannot switch users: jobs run as the
            // worker's user, which is not root. Asking for another is an error
            // rather than silently ignored.
            let me = nix::unistd::getuid().as_raw();
            return match wanted {
                Some((uid, _)) if uid != me => Err(format!(
                    "the job asks to run as user {:?}, but worker {node} runs unprivileged \
                     (uid {me}) and cannot switch users; remove `user` from the definition \
                     or run the worker as root",
                    user.unwrap_or_default()
                )),
                _ => Ok(None),
            };
        }
        match wanted {
            Some((0, g)) if self.allow_root => Ok(Some((0, g))),
            Some((0, _)) => Err(format!(
                "the job asks to run as root, which worker {node} does not allow; \
                 run it as an unprivileged user (containerProperties.user), or ask the \
                 operator to start the worker with --allow-root-jobs"
            )),
            Some(u) => Ok(Some(u)),
            None => match &self.job_user {
                Some(u) => lookup(u).map(Some),
                None => {
                    let id = transient_uid(task);
                    Ok(Some((id, id)))
                }
            },
        }
    }

    /// Refuse host paths outside the allow-list, with the first offender.
    pub fn check_volumes<'a>(
        &self,
        sources: impl IntoIterator<Item = &'a str>,
        node: &str,
    ) -> Result<(), String> {
        for s in sources {
            // Resolve `..` and symlinks before comparing: a path that only
            // looks like it is under an allowed directory is refused.
            let real = std::fs::canonicalize(s)
                .map_err(|e| format!("volume sourcePath {s:?} cannot be used on {node}: {e}"))?;
            let allowed = self
                .volumes
                .iter()
                .filter_map(|a| std::fs::canonicalize(a).ok())
                .any(|a| real.starts_with(&a));
            if !allowed {
                return Err(format!(
                    "volume sourcePath {s:?} is not in worker {node}'s allow-list ({}); \
                     ask the operator to add it with --allow-volume DIR",
                    list(&self.volumes)
                ));
            }
        }
        Ok(())
    }

    /// Refuse devices that are not listed.
    pub fn check_devices<'a>(
        &self,
        devices: impl IntoIterator<Item = &'a str>,
        node: &str,
    ) -> Result<(), String> {
        for d in devices {
            if !self.devices.iter().any(|a| a == Path::new(d)) {
                return Err(format!(
                    "device {d:?} is not in worker {node}'s allow-list ({}); \
                     ask the operator to add it with --allow-device PATH",
                    list(&self.devices)
                ));
            }
        }
        Ok(())
    }
}

fn list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        "empty".into()
    } else {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_needs_the_definition_and_the_operator() {
        let p = JobPolicy::default();
        let e = p.run_as(Some("root"), "t", true, "n1").unwrap_err();
        assert!(e.contains("--allow-root-jobs"), "{e}");
        assert!(p.run_as(Some("0"), "t", true, "n1").is_err());
        let p = JobPolicy {
            allow_root: true,
            ..JobPolicy::default()
        };
        assert_eq!(
            p.run_as(Some("root"), "t", true, "n1").unwrap(),
            Some((0, 0))
        );
        // Allowing root does not make root the default.
        let (uid, gid) = p.run_as(None, "t", true, "n1").unwrap().unwrap();
        assert!(TRANSIENT_UIDS.contains(&uid) && uid == gid);
    }

    #[test]
    fn jobs_without_a_user_get_a_uid_of_their_own() {
        let p = JobPolicy::default();
        let a = p.run_as(None, "job-a.node0.attempt1", true, "n").unwrap();
        let b = p.run_as(None, "job-b.node0.attempt1", true, "n").unwrap();
        assert_ne!(a, b);
        assert_eq!(
            a,
            p.run_as(None, "job-a.node0.attempt1", true, "n").unwrap()
        );
        // Spread over the whole range, never outside it.
        let ids: std::collections::BTreeSet<u32> =
            (0..1000).map(|i| transient_uid(&format!("j{i}"))).collect();
        assert!(ids.len() > 990);
        assert!(ids.iter().all(|u| TRANSIENT_UIDS.contains(u)));
        // The operator may name one user for them instead.
        let p = JobPolicy {
            job_user: Some("nobody".into()),
            ..JobPolicy::default()
        };
        let nobody = crate::isolate::lookup_user("nobody").unwrap();
        assert_eq!(p.run_as(None, "t", true, "n").unwrap(), Some(nobody));
    }

    #[test]
    fn a_root_job_user_is_refused_at_start() {
        let p = JobPolicy {
            job_user: Some("root".into()),
            ..JobPolicy::default()
        };
        assert!(p.check(true).unwrap_err().contains("--job-user"));
        assert!(p.check(false).is_ok());
        assert!(JobPolicy::default().check(true).is_ok());
    }

    #[test]
    fn volumes_must_be_under_an_allowed_directory() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("data");
        let other = dir.path().join("other");
        std::fs::create_dir_all(ok.join("sub")).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        std::os::unix::fs::symlink(&other, ok.join("escape")).unwrap();
        let p = JobPolicy {
            volumes: vec![ok.clone()],
            ..JobPolicy::default()
        };
        let s = |p: &Path| p.to_str().unwrap().to_string();
        assert!(p.check_volumes([s(&ok.join("sub")).as_str()], "n").is_ok());
        let e = p.check_volumes([s(&other).as_str()], "n").unwrap_err();
        assert!(e.contains("--allow-volume"), "{e}");
        assert!(p
            .check_volumes([s(&ok.join("sub/../../other")).as_str()], "n")
            .is_err());
        assert!(p
            .check_volumes([s(&ok.join("escape")).as_str()], "n")
            .is_err());
        assert!(JobPolicy::default()
            .check_volumes([s(&ok).as_str()], "n")
            .unwrap_err()
            .contains("(empty)"));
    }

    #[test]
    fn devices_must_be_listed() {
        let p = JobPolicy {
            devices: vec!["/dev/fuse".into()],
            ..JobPolicy::default()
        };
        assert!(p.check_devices(["/dev/fuse"], "n").is_ok());
        assert!(p.check_devices(["/dev/mem"], "n").is_err());
    }
}
