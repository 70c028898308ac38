//! `shoal cluster up`: a multi-node cluster on one machine. Each node is a
//! worker in a network namespace of its own, joined to the others by veths
//! on a bridge, with a disjoint cpuset; the scheduler listens on the
//! bridge. Without root, the nodes are plain local workers on 127.0.0.1.
//!
//! Workers join over mutual TLS: `up` makes a CA in `DIR/tls` (kept across
//! runs), issues the scheduler's certificate (for its bridge address,
//! 127.0.0.1 and `shoal-scheduler`) and one per node (CN `nodeN`), starts
//! the scheduler with its worker listener on the bridge and each worker
//! with its own certificate.
//!
//! Everything made is written to `DIR/cluster.json` first, so that
//! `shoal cluster down --dir DIR` (or the next `up` in the same directory)
//! can remove it even if `up` was killed.

use crate::capacity::CpuSet;
use crate::Error;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What `cluster up` is asked for.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Number of nodes.
    pub nodes: u32,
    /// vCPUs per node.
    pub cpus_per_node: u32,
    /// Memory per node, MiB (None: the machine's, shared).
    pub memory_mib: Option<u64>,
    /// Directory for state, logs and the record of what was made.
    pub dir: PathBuf,
    /// The third octet of the 10.201.X.0/24 subnet (None: chosen from the pid).
    pub subnet: Option<u8>,
    /// The `shoal` binary to run for the scheduler and workers.
    pub shoal: PathBuf,
    /// Registries every worker reaches over plain HTTP (`HOST:PORT`; a
    /// registry on this machine is reached from the nodes at the bridge
    /// address, the scheduler's in the `endpoint:` line).
    pub insecure_registries: Vec<String>,
}

/// What a cluster made, so that it can be removed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    /// pid of `shoal cluster up`.
    pub pid: u32,
    /// Bridge device.
    pub bridge: Option<String>,
    /// Network namespaces.
    pub namespaces: Vec<String>,
    /// Host-side veth devices.
    pub veths: Vec<String>,
    /// pids of the scheduler and workers.
    pub children: Vec<u32>,
    /// The scheduler's URL.
    pub endpoint: String,
    /// The scheduler's worker listener (mutual TLS).
    #[serde(default)]
    pub worker_endpoint: String,
}

fn record_path(dir: &Path) -> PathBuf {
    dir.join("cluster.json")
}

fn save(dir: &Path, r: &Record) -> Result<(), Error> {
    let tmp = dir.join("cluster.json.partial");
    std::fs::write(&tmp, serde_json::to_vec_pretty(r).unwrap_or_default())
        .map_err(crate::io("cannot write cluster.json"))?;
    std::fs::rename(&tmp, record_path(dir)).map_err(crate::io("cannot write cluster.json"))
}

fn ip(args: &[&str]) -> Result<(), Error> {
    let out = Command::new("ip").args(args).output().map_err(crate::io(
        "cannot run `ip` (install iproute2: scripts/install-deps.sh)",
    ))?;
    if !out.status.success() {
        return Err(Error::Config(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Remove everything a record lists (processes first). Safe to repeat.
pub fn teardown(r: &Record) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    for pid in r.children.iter().rev() {
        let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGTERM);
    }
    // Wait (bounded) for them to go: workers end their tasks first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for pid in &r.children {
        while kill(Pid::from_raw(*pid as i32), None).is_ok() && std::time::Instant::now() < deadline
        {
            // Reap if it is our child; otherwise just wait for it to vanish.
            let _ = nix::sys::wait::waitpid(
                Pid::from_raw(*pid as i32),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
    }
    for v in &r.veths {
        let _ = ip(&["link", "del", v]);
    }
    for ns in &r.namespaces {
        let _ = ip(&["netns", "del", ns]);
    }
    if let Some(b) = &r.bridge {
        let _ = ip(&["link", "del", b]);
    }
}

/// `shoal cluster down --dir DIR`: stop a running `cluster up` (it cleans
/// up after itself) or, if it is gone, remove what it left.
pub fn down(dir: &Path) -> Result<(), Error> {
    let text = std::fs::read_to_string(record_path(dir)).map_err(|e| {
        Error::Config(format!(
            "no cluster in {} ({e}); was it started with --dir {0}?",
            dir.display()
        ))
    })?;
    let r: Record = serde_json::from_str(&text)
        .map_err(|e| Error::Config(format!("corrupt cluster.json: {e}")))?;
    let pid = nix::unistd::Pid::from_raw(r.pid as i32);
    if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_ok() {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while nix::sys::signal::kill(pid, None).is_ok() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    teardown(&r);
    let _ = std::fs::remove_file(record_path(dir));
    Ok(())
}

/// A running cluster: its processes and what it made.
pub struct Cluster {
    /// The scheduler's URL.
    pub endpoint: String,
    /// The scheduler's credentials file (`DIR/credentials`, a fresh random
    /// key per `up`): clients sign their requests with its key.
    pub credentials: PathBuf,
    record: Arc<Mutex<Record>>,
    dir: PathBuf,
    scheduler: Option<Child>,
    stopping: Arc<AtomicBool>,
    supervisors: Vec<std::thread::JoinHandle<()>>,
}

/// Start a worker and keep it running: a worker that dies (crash, kill -9)
/// is started again, as a rebooted node would rejoin, until the cluster
/// stops. Its new pid replaces the old one in the record.
fn supervise(
    make: Box<dyn Fn() -> Result<Child, Error> + Send>,
    record: Arc<Mutex<Record>>,
    dir: PathBuf,
    stopping: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, Error> {
    let mut child = make()?;
    {
        let mut r = record.lock().unwrap_or_else(|e| e.into_inner());
        r.children.push(child.id());
        save(&dir, &r)?;
    }
    std::thread::Builder::new()
        .name("supervisor".into())
        .spawn(move || loop {
            let _ = child.wait();
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            let old = child.id();
            say_err!("shoal cluster: worker (pid {old}) ended; starting it again");
            std::thread::sleep(std::time::Duration::from_millis(200));
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            match make() {
                Ok(c) => {
                    child = c;
                    let mut r = record.lock().unwrap_or_else(|e| e.into_inner());
                    for p in r.children.iter_mut().filter(|p| **p == old) {
                        *p = child.id();
                    }
                    let _ = save(&dir, &r);
                }
                Err(e) => {
                    say_err!("shoal cluster: cannot restart a worker: {e}");
                    return;
                }
            }
        })
        .map_err(crate::io("cannot start a supervisor thread"))
}

impl Cluster {
    /// Build the cluster and start the scheduler and workers.
    pub fn up(c: &ClusterConfig) -> Result<Cluster, Error> {
        let cpus = check(c)?;
        std::fs::create_dir_all(&c.dir)
            .map_err(crate::io(format!("cannot create {}", c.dir.display())))?;
        remove_stale(&c.dir)?;
        let mut cluster = Cluster {
            endpoint: String::new(),
            credentials: write_credentials(&c.dir)?,
            record: Arc::new(Mutex::new(Record {
                pid: std::process::id(),
                ..Record::default()
            })),
            dir: c.dir.clone(),
            scheduler: None,
            stopping: Arc::new(AtomicBool::new(false)),
            supervisors: Vec::new(),
        };
        let result = (|| -> Result<(), Error> {
            let net = cluster.network(c)?;
            let tls = certificates(c, &net)?;
            let worker_endpoint = cluster.start_scheduler(c, &net, &tls)?;
            cluster.start_workers(c, &net, &tls, &worker_endpoint, &cpus)
        })();
        if let Err(e) = result {
            cluster.down();
            return Err(e);
        }
        Ok(cluster)
    }

    /// Record what was made (for `down` and for a later `up` to remove).
    fn note(&self, f: &mut dyn FnMut(&mut Record)) -> Result<(), Error> {
        let mut r = self.record.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut r);
        save(&self.dir, &r)
    }

    /// As root, a bridge and one network namespace per node with a veth on
    /// it (`10.201.OCTET.I`, the scheduler at `.254`); otherwise every node
    /// on 127.0.0.1.
    fn network(&self, c: &ClusterConfig) -> Result<Network, Error> {
        let root = nix::unistd::geteuid().is_root();
        let id = std::process::id() % 10000;
        let octet = c.subnet.unwrap_or(((std::process::id() % 200) + 20) as u8);
        if !root {
            say_err!("warning: not root: nodes are plain local workers on 127.0.0.1 (no network namespaces)");
            return Ok(Network {
                id,
                root,
                octet: None,
            });
        }
        let bridge = format!("shb{id}");
        self.note(&mut |r| r.bridge = Some(bridge.clone()))?;
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("10.201.{octet}.254/24"),
            "dev",
            &bridge,
        ])?;
        ip(&["link", "set", &bridge, "up"])?;
        for i in 1..=c.nodes {
            let ns = format!("shoal{id}n{i}");
            let veth = format!("shv{id}n{i}");
            self.note(&mut |r| {
                r.namespaces.push(ns.clone());
                r.veths.push(veth.clone());
            })?;
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&["link", "set", &veth, "master", &bridge, "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("10.201.{octet}.{i}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(Network {
            id,
            root,
            octet: Some(octet),
        })
    }

    /// Start the scheduler (its API and its worker listener on the
    /// cluster's network, with the cluster's keys and certificates); the
    /// worker listener's endpoint.
    fn start_scheduler(
        &mut self,
        c: &ClusterConfig,
        net: &Network,
        tls: &std::path::Path,
    ) -> Result<String, Error> {
        let sched_addr = net.scheduler_address();
        let mut sched = Command::new(&c.shoal)
            .args([
                "scheduler",
                "--listen",
                &format!("{sched_addr}:0"),
                "--worker-listen",
                &format!("{sched_addr}:0"),
                "--tls-dir",
            ])
            .arg(tls)
            .arg("--state")
            .arg(c.dir.join("scheduler"))
            .arg("--credentials")
            .arg(&self.credentials)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file(&c.dir, "scheduler.log")?))
            .spawn()
            .map_err(crate::io("cannot start the scheduler"))?;
        let sched_pid = sched.id();
        self.note(&mut |r| r.children.push(sched_pid))?;
        let (mut line, mut workers_line) = (String::new(), String::new());
        if let Some(out) = sched.stdout.take() {
            let mut out = BufReader::new(out);
            out.read_line(&mut line)
                .and_then(|_| out.read_line(&mut workers_line))
                .map_err(crate::io("cannot read the scheduler's endpoint"))?;
        }
        self.scheduler = Some(sched);
        let not_started = |what: &str| {
            Error::Config(format!(
                "the scheduler did not start{what}; see {}",
                c.dir.join("scheduler.log").display()
            ))
        };
        self.endpoint = line
            .trim()
            .strip_prefix("endpoint: ")
            .ok_or_else(|| not_started(""))?
            .to_string();
        let worker_endpoint = workers_line
            .trim()
            .strip_prefix("workers: ")
            .ok_or_else(|| not_started(" its worker listener"))?
            .to_string();
        let endpoint = self.endpoint.clone();
        self.note(&mut |r| {
            r.endpoint = endpoint.clone();
            r.worker_endpoint = worker_endpoint.clone();
        })?;
        Ok(worker_endpoint)
    }

    /// Start one supervised worker per node, each on its own CPUs (round
    /// robin over the machine's) with its part of the memory.
    fn start_workers(
        &mut self,
        c: &ClusterConfig,
        net: &Network,
        tls: &std::path::Path,
        worker_endpoint: &str,
        cpus: &[u32],
    ) -> Result<(), Error> {
        // Unless told, the nodes share the machine's memory: each offers
        // its part, not the whole.
        let memory_mib = c
            .memory_mib
            .unwrap_or_else(|| (crate::capacity::memory_mib() / u64::from(c.nodes)).max(1));
        for i in 1..=c.nodes {
            let first = ((i - 1) * c.cpus_per_node) as usize;
            let set: Vec<u32> = (0..c.cpus_per_node as usize)
                .map(|k| cpus[(first + k) % cpus.len()])
                .collect();
            let (shoal, dir, endpoint, memory, tls) = (
                c.shoal.clone(),
                c.dir.clone(),
                worker_endpoint.to_string(),
                memory_mib,
                tls.to_path_buf(),
            );
            let (cpuset, address) = (CpuSet(set).to_list(), net.node_address(i));
            let netns = net.root.then(|| format!("shoal{}n{i}", net.id));
            let insecure = c.insecure_registries.clone();
            let make = move || -> Result<Child, Error> {
                let mut cmd = Command::new(&shoal);
                cmd.arg("worker");
                if let Some(ns) = &netns {
                    cmd.args(["--netns", ns]);
                }
                // A personal cluster: its operator is the user who started
                // it, so definitions may ask for root (they still must ask).
                cmd.arg("--allow-root-jobs");
                cmd.args(["--scheduler", &endpoint, "--name", &format!("node{i}")])
                    .args(["--cpuset", &cpuset, "--address", &address, "--state"])
                    .arg(dir.join(format!("node{i}")))
                    .arg("--tls-dir")
                    .arg(&tls);
                cmd.args(["--memory", &memory.to_string()]);
                for r in &insecure {
                    cmd.args(["--insecure-registry", r]);
                }
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(format!("node{i}.log")))
                    .map_err(crate::io(format!("cannot open node{i}.log")))?;
                cmd.stdout(Stdio::null())
                    .stderr(Stdio::from(log))
                    .spawn()
                    .map_err(crate::io("cannot start a worker"))
            };
            let handle = supervise(
                Box::new(make),
                self.record.clone(),
                c.dir.clone(),
                self.stopping.clone(),
            )?;
            self.supervisors.push(handle);
        }
        Ok(())
    }

    /// Stop everything and remove what was made.
    pub fn down(&mut self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        let record = self
            .record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        teardown(&record);
        if let Some(mut s) = self.scheduler.take() {
            let _ = s.wait();
        }
        for h in self.supervisors.drain(..) {
            let _ = h.join();
        }
        let _ = std::fs::remove_file(record_path(&self.dir));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.down();
    }
}

fn log_file(dir: &Path, name: &str) -> Result<std::fs::File, Error> {
    std::fs::File::create(dir.join(name)).map_err(crate::io(format!("cannot create {name}")))
}

/// Write `DIR/credentials` (mode 0600) with one fresh random access key
/// for the cluster's scheduler, replacing any earlier one.
fn write_credentials(dir: &Path) -> Result<PathBuf, Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let hex = hex::encode(crate::pki::random_bytes(28)?);
    let (id, secret) = hex.split_at(16);
    let path = dir.join("credentials");
    let _ = std::fs::remove_file(&path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| {
            writeln!(
                f,
                "# The access key of the `shoal cluster up` scheduler in this directory.\n\
                 # Use it with SHOAL_CREDENTIALS={}, or as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.\n\
                 SHOAL{} {secret}",
                path.display(),
                id.to_ascii_uppercase()
            )
        })
        .map_err(crate::io(format!("cannot write {}", path.display())))?;
    Ok(path)
}

/// The cluster's network: namespaces on a bridge (root), or loopback.
struct Network {
    /// This run's id in interface and namespace names.
    id: u32,
    /// Whether nodes have network namespaces.
    root: bool,
    /// The third octet of `10.201.OCTET.0/24`, with namespaces.
    octet: Option<u8>,
}

impl Network {
    /// Where the scheduler listens.
    fn scheduler_address(&self) -> String {
        match self.octet {
            Some(o) => format!("10.201.{o}.254"),
            None => "127.0.0.1".into(),
        }
    }

    /// Node `i`'s address (1-based).
    fn node_address(&self, i: u32) -> String {
        match self.octet {
            Some(o) => format!("10.201.{o}.{i}"),
            None => "127.0.0.1".into(),
        }
    }
}

/// The configuration's bounds; the machine's CPUs. Warns when the nodes
/// would share CPUs.
fn check(c: &ClusterConfig) -> Result<Vec<u32>, Error> {
    if c.nodes == 0 || c.nodes > 200 {
        return Err(Error::Config(format!("--nodes {}: give 1 to 200", c.nodes)));
    }
    if c.cpus_per_node == 0 {
        return Err(Error::Config("--cpus-per-node must be at least 1".into()));
    }
    let cpus = CpuSet::current().0;
    if c.cpus_per_node as usize > cpus.len() {
        return Err(Error::Config(format!(
            "--cpus-per-node {}: this machine has {} CPUs ({}); give 1..={}",
            c.cpus_per_node,
            cpus.len(),
            CpuSet(cpus.clone()).to_list(),
            cpus.len()
        )));
    }
    let want = (c.nodes * c.cpus_per_node) as usize;
    if want > cpus.len() {
        say_err!(
            "warning: {} nodes × {} vCPUs = {want} > the {} CPUs here; nodes share CPUs (oversubscribed)",
            c.nodes,
            c.cpus_per_node,
            cpus.len()
        );
    }
    Ok(cpus)
}

/// Remove what an earlier cluster in `dir` left, unless it still runs.
fn remove_stale(dir: &std::path::Path) -> Result<(), Error> {
    let Ok(old) = std::fs::read_to_string(record_path(dir)) else {
        return Ok(());
    };
    let Ok(r) = serde_json::from_str::<Record>(&old) else {
        return Ok(());
    };
    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(r.pid as i32), None).is_ok()
        && r.pid != std::process::id()
    {
        return Err(Error::Config(format!(
            "a cluster (pid {pid}) is already running in {dir}; stop it with `shoal cluster down --dir {dir}`",
            pid = r.pid,
            dir = dir.display()
        )));
    }
    teardown(&r);
    Ok(())
}

/// The cluster's CA (made once, kept with the cluster's directory) and
/// fresh certificates for this run's addresses; the TLS directory.
fn certificates(c: &ClusterConfig, net: &Network) -> Result<std::path::PathBuf, Error> {
    let tls = c.dir.join("tls");
    if !crate::pki::has_ca(&tls) {
        crate::pki::init_ca(&tls, false)?;
    }
    let ip = |a: &str| -> Result<std::net::IpAddr, Error> {
        a.parse()
            .map_err(|_| Error::Config(format!("{a} is not an IP address")))
    };
    let sched_addr = net.scheduler_address();
    let mut sched_ips = vec![ip(&sched_addr)?];
    if sched_addr != "127.0.0.1" {
        sched_ips.push(ip("127.0.0.1")?);
    }
    crate::pki::issue(
        &tls,
        crate::pki::SCHEDULER_NAME,
        &sched_ips,
        &[crate::pki::SCHEDULER_DNS.to_string()],
        true,
    )?;
    for i in 1..=c.nodes {
        crate::pki::issue(
            &tls,
            &format!("node{i}"),
            &[ip(&net.node_address(i))?],
            &[],
            true,
        )?;
    }
    Ok(tls)
}
