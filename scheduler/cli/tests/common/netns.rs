//! A `shoal cluster up` cluster for the end-to-end tests: one network
//! namespace and veth per node (root), driven over its signed API, with
//! ways to cut a node's link and to freeze its worker.

use super::{first_key, signed_call, wait_for, SHOAL};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct NsCluster {
    child: Child,
    pub endpoint: String,
    key: (String, String),
    pub http: reqwest::blocking::Client,
    pub dir: tempfile::TempDir,
}

/// Start `SHOAL cluster up --nodes N --dir DIR EXTRA…`: the process, its
/// endpoint (first line) and its second line (`ready: N nodes`).
pub fn cluster_up(shoal: &Path, dir: &Path, nodes: u32, extra: &[&str]) -> (Child, String, String) {
    let mut child = Command::new(shoal)
        .args(["cluster", "up", "--nodes", &nodes.to_string()])
        .args(extra)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let endpoint = line
        .trim()
        .strip_prefix("endpoint: ")
        .expect("first line is the endpoint")
        .to_string();
    line.clear();
    out.read_line(&mut line).unwrap();
    (child, endpoint, line)
}

impl NsCluster {
    /// `shoal cluster up --nodes N` with `cpus` vCPUs per node, ready.
    pub fn up(nodes: u32, cpus: u32) -> NsCluster {
        NsCluster::up_with(nodes, cpus, &[])
    }

    /// [`NsCluster::up`] with more arguments for `cluster up`.
    pub fn up_with(nodes: u32, cpus: u32, more: &[&str]) -> NsCluster {
        assert!(
            nix::unistd::geteuid().is_root(),
            "network-namespace clusters need root (CI runs as root)"
        );
        let dir = tempfile::tempdir().unwrap();
        let cpus = cpus.to_string();
        let mut extra = vec!["--cpus-per-node", &cpus, "--memory-per-node", "2048"];
        extra.extend_from_slice(more);
        let (child, endpoint, ready) = cluster_up(Path::new(SHOAL), dir.path(), nodes, &extra);
        assert!(ready.starts_with("ready: "), "{ready}");
        let key = first_key(&dir.path().join("credentials"));
        NsCluster {
            child,
            endpoint,
            key,
            http: reqwest::blocking::Client::new(),
            dir,
        }
    }

    pub fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.endpoint);
        let (status, v) = signed_call(&self.http, &url, &body, (&self.key.0, &self.key.1));
        assert_eq!(status, 200, "{path}: {v}");
        v
    }

    pub fn aws(&self, op: &str, body: Value) -> Value {
        self.post(&format!("/v1/{op}"), body)
    }

    pub fn job(&self, id: &str) -> Value {
        self.aws("describejobs", json!({ "jobs": [id] }))["jobs"][0].clone()
    }

    pub fn nodes(&self) -> Vec<Value> {
        self.post("/shoal/v1/listnodes", json!({}))["nodes"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The name of the node at `address`.
    pub fn node_at(&self, address: &str) -> String {
        self.nodes()
            .iter()
            .find(|n| n["address"] == address)
            .and_then(|n| n["name"].as_str().map(String::from))
            .unwrap_or_else(|| panic!("no node at {address}"))
    }

    fn record(&self) -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(self.dir.path().join("cluster.json")).unwrap(),
        )
        .unwrap()
    }

    /// The host side of node `name`'s veth (`nodeI` is the I-th).
    pub fn veth(&self, name: &str) -> String {
        let i: usize = name.trim_start_matches("node").parse().unwrap();
        self.record()["veths"][i - 1].as_str().unwrap().to_string()
    }

    /// Cut (false) or restore (true) node `name`'s link.
    pub fn link(&self, name: &str, up: bool) {
        let veth = self.veth(name);
        let state = if up { "up" } else { "down" };
        let out = Command::new("ip")
            .args(["link", "set", &veth, state])
            .output()
            .unwrap();
        assert!(out.status.success(), "ip link set {veth} {state}: {out:?}");
    }

    /// The pid of node `name`'s worker.
    pub fn worker_pid(&self, name: &str) -> i32 {
        let dir = self.dir.path().to_string_lossy().to_string();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .find_map(|e| {
                let pid: i32 = e.file_name().to_string_lossy().parse().ok()?;
                let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
                let args: Vec<String> = cmd
                    .split(|b| *b == 0)
                    .map(|a| String::from_utf8_lossy(a).to_string())
                    .collect();
                let is = args.get(1).is_some_and(|a| a == "worker")
                    && args.windows(2).any(|w| w[0] == "--name" && w[1] == name)
                    && args.iter().any(|a| a.starts_with(&dir));
                is.then_some(pid)
            })
            .unwrap_or_else(|| panic!("no worker process for {name}"))
    }

    /// Send `sig` to node `name`'s worker process (its tasks are not
    /// signalled).
    pub fn signal_worker(&self, name: &str, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.worker_pid(name));
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    /// `shoal logs JOB` with the cluster's key.
    pub fn logs(&self, job: &str) -> String {
        let o = Command::new(SHOAL)
            .env("SHOAL_CREDENTIALS", self.dir.path().join("credentials"))
            .args(["logs", job, "--endpoint", &self.endpoint])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    pub fn wait_done(&self, id: &str) -> Value {
        let mut last = Value::Null;
        wait_for(&format!("job {id} to end"), || {
            last = self.job(id);
            matches!(last["status"].as_str(), Some("SUCCEEDED" | "FAILED"))
        });
        last
    }
}

impl Drop for NsCluster {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}
