//! A local cluster for the end-to-end tests: one `shoal scheduler` and
//! `shoal worker`s on loopback (no network namespaces), in a temporary
//! directory, driven over HTTP.

use super::{start_scheduler, Proc, SHOAL};
use serde_json::{json, Value};
use std::process::{Command, Stdio};

// Fields drop in order: workers stop first, then the scheduler, then the
// directory goes.
pub struct Cluster {
    pub workers: Vec<(String, Proc)>,
    pub _scheduler: Proc,
    pub endpoint: String,
    pub http: reqwest::blocking::Client,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    pub fn start(workers: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let (scheduler, endpoint) = start_scheduler(
            &dir.path().join("scheduler"),
            &["--worker-timeout-ms", "1500"],
        );
        Cluster::with(dir, scheduler, endpoint, workers)
    }

    pub fn with(
        dir: tempfile::TempDir,
        scheduler: Proc,
        endpoint: String,
        workers: &[&str],
    ) -> Cluster {
        // Jobs run as a transient uid unless their definition names a user:
        // the files tests leave for them here must be reachable (their own
        // task directory they reach wherever it is).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = Cluster {
            endpoint,
            dir,
            _scheduler: scheduler,
            workers: Vec::new(),
            http: reqwest::blocking::Client::new(),
        };
        for w in workers {
            c.add_worker(w);
        }
        c
    }

    pub fn add_worker(&mut self, name: &str) {
        self.add_worker_as(name, &[]);
    }

    /// Start a worker, its command line prefixed by `prefix` (e.g. setpriv).
    pub fn add_worker_as(&mut self, name: &str, prefix: &[&str]) {
        self.add_worker_with(name, prefix, &[]);
    }

    /// Start a worker with extra arguments (e.g. `--allow-root-jobs`).
    pub fn add_worker_with(&mut self, name: &str, prefix: &[&str], extra: &[&str]) {
        let state = self.dir.path().join(name);
        std::fs::create_dir_all(&state).unwrap();
        let mut cmd = match prefix.split_first() {
            Some((p, rest)) => {
                let mut c = Command::new(p);
                c.args(rest).arg(SHOAL);
                c
            }
            None => Command::new(SHOAL),
        };
        let child = cmd
            .args([
                "worker",
                "--scheduler",
                &self.endpoint,
                "--name",
                name,
                "--cpus",
                "1",
                "--memory",
                "2048",
                "--exec-wait-ms",
                "3000",
                "--state",
            ])
            .arg(&state)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.workers.push((name.to_string(), Proc(child)));
        self.wait_for(&format!("worker {name} up"), || {
            self.shoal("listnodes", json!({}))["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["name"] == name && n["state"] != "DOWN")
        });
    }

    /// Stop a worker as an operator would (SIGTERM): it ends its tasks and
    /// removes its cgroups.
    pub fn stop_worker(&mut self, name: &str) {
        if let Some(i) = self.workers.iter().position(|(n, _)| n == name) {
            drop(self.workers.remove(i));
        }
    }

    /// SIGKILL a worker: it gets no chance to clean up.
    pub fn kill_worker(&mut self, name: &str) {
        if let Some(i) = self.workers.iter().position(|(n, _)| n == name) {
            self.workers.remove(i).1.kill9();
        }
    }

    pub fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.endpoint))
            .json(&body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.text().unwrap());
        r.json().unwrap()
    }
    pub fn aws(&self, op: &str, body: Value) -> Value {
        self.post(&format!("/v1/{op}"), body)
    }
    pub fn shoal(&self, op: &str, body: Value) -> Value {
        self.post(&format!("/shoal/v1/{op}"), body)
    }
    pub fn job(&self, id: &str) -> Value {
        self.aws("describejobs", json!({ "jobs": [id] }))["jobs"][0].clone()
    }

    pub fn wait_for(&self, what: &str, f: impl FnMut() -> bool) {
        super::wait_for(what, f)
    }

    pub fn wait_done(&self, id: &str) -> Value {
        let mut last = Value::Null;
        self.wait_for(&format!("job {id} to end"), || {
            last = self.job(id);
            matches!(last["status"].as_str(), Some("SUCCEEDED" | "FAILED"))
        });
        last
    }

    pub fn logs(&self, id: &str) -> String {
        let out = Command::new(SHOAL)
            .args(["logs", id, "--endpoint", &self.endpoint])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "shoal logs {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn register(&self, def: Value) {
        self.aws("registerjobdefinition", def);
    }

    pub fn submit(&self, name: &str, def: &str) -> String {
        self.aws(
            "submitjob",
            json!({ "jobName": name, "jobQueue": "default", "jobDefinition": def }),
        )["jobId"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// A one-node-job definition running `script` with `shm` MiB of /dev/shm.
pub fn sh_def(name: &str, script: &str, shm: i32) -> Value {
    json!({ "jobDefinitionName": name, "type": "container",
            "containerProperties": { "command": ["sh", "-c", script],
              "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"256"}],
              "linuxParameters": { "sharedMemorySize": shm } } })
}

/// Processes whose command line is exactly `cmd`.
pub fn processes_running(cmd: &str) -> usize {
    let want = cmd.replace(' ', "\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).trim_end_matches('\0') == want)
        .count()
}
