//! The operator's rules for what a job may ask of this node: which user it
//! runs as, which host paths it may mount and which devices it may name.
//!
//! - A job runs as its definition's `user`. A job that names no user runs
//!   as the worker's job user (`--job-user`, `nobody` by default when the
//!   worker is root; the worker's own user otherwise).
//! - A job runs as root only when its definition asks for it (`user` is
//!   `root` or `0`) *and* the operator started the worker with
//!   `--allow-root-jobs`.
//! - `volumes` (host `sourcePath`s) must lie under a directory of
//!   `--allow-volume`, and `devices` must be listed by `--allow-device`;
//!   by default neither is allowed.

use std::path::{Path, PathBuf};

/// The rules, from the worker's command line.
#[derive(Debug, Clone, Default)]
pub struct JobPolicy {
    /// Run a job as root when its definition asks for it.
    pub allow_root: bool,
    /// The user of jobs whose definition names none (None: `nobody` when
    /// the worker is root, else the worker's own user).
    pub job_user: Option<String>,
    /// Host directories volumes may come from (their subtrees included).
    pub volumes: Vec<PathBuf>,
    /// Device paths jobs may name.
    pub devices: Vec<PathBuf>,
}

/// Who a task runs as: None keeps the worker's own user.
pub type RunAs = Option<(u32, u32)>;

impl JobPolicy {
    /// Check the policy itself at the worker's start.
    pub fn check(&self, worker_is_root: bool) -> Result<(), String> {
        if worker_is_root {
            let (uid, _) = self.default_user()?;
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

    fn default_user(&self) -> Result<(u32, u32), String> {
        crate::isolate::lookup_user(self.job_user.as_deref().unwrap_or("nobody"))
    }

    /// The uid/gid a task with definition user `user` runs as, on a worker
    /// that runs as root (`worker_is_root`) or not.
    pub fn run_as(
        &self,
        user: Option<&str>,
        worker_is_root: bool,
        node: &str,
    ) -> Result<RunAs, String> {
        let wanted = user.map(crate::isolate::lookup_user).transpose()?;
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
            None => self.default_user().map(Some),
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
        let e = p.run_as(Some("root"), true, "n1").unwrap_err();
        assert!(e.contains("--allow-root-jobs"), "{e}");
        assert!(p.run_as(Some("0"), true, "n1").is_err());
        let p = JobPolicy {
            allow_root: true,
            ..JobPolicy::default()
        };
        assert_eq!(p.run_as(Some("root"), true, "n1").unwrap(), Some((0, 0)));
        // Allowing root does not make root the default.
        let nobody = crate::isolate::lookup_user("nobody").unwrap();
        assert_eq!(p.run_as(None, true, "n1").unwrap(), Some(nobody));
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
