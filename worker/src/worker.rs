//! The worker process: its configuration, and [`run`], which sets the
//! node up (CPUs, memory, cgroups, the lease and its watchdog, the
//! worker's own server) and starts its threads: signals, the fence, the
//! reporter and the poll loop ([`crate::poll`]) over the connection to the
//! scheduler ([`crate::connection`]).

use crate::capacity::{self, CpuSet};
use crate::cgroup::Cgroups;
use crate::connection::{HttpScheduler, Scheduler};
use crate::poll::{Taken, Timing};
use crate::task::Tasks;
use crate::Error;
use shoal_model::wire::{RegisterWorkerRequest, Resources, TaskReport};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// How a worker is set up.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Scheduler URL.
    pub scheduler: String,
    /// Node name (unique in the cluster).
    pub name: String,
    /// The CPUs this node owns (default: all this process may use).
    pub cpuset: Option<CpuSet>,
    /// Limit to this many vCPUs (the first N of the cpuset).
    pub cpus: Option<u32>,
    /// Memory offered, MiB (default: the machine's).
    pub memory_mib: Option<u64>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Address others reach this node at.
    pub address: String,
    /// Port for the worker's own HTTP server (0: any).
    pub port: u16,
    /// Where task directories go.
    pub state_dir: PathBuf,
    /// Join this network namespace (`/run/netns/NAME`) first.
    pub netns: Option<String>,
    /// What jobs may ask of this node.
    pub policy: crate::policy::JobPolicy,
    /// Mutual TLS with the scheduler's worker listener: the cluster CA and
    /// this node's certificate and key (None: plain HTTP).
    pub tls: Option<crate::pki::TlsFiles>,
    /// How long a launch-agent request waits for its task to start here.
    pub exec_wait: Duration,
    /// On SIGTERM: how long tasks get between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// Container images: on or off, insecure registries, credentials, the
    /// cache's size (the cache is STATE/images).
    pub images: crate::images::ImageSettings,
}

/// The network interface that holds `address`.
fn interface_of(address: &str) -> Option<String> {
    let want: std::net::IpAddr = address.parse().ok()?;
    nix::ifaddrs::getifaddrs().ok()?.find_map(|i| {
        let a = i.address?;
        let ip = a.as_sockaddr_in().map(|s| std::net::IpAddr::V4(s.ip()))?;
        (ip == want).then_some(i.interface_name)
    })
}

/// `--address auto`: the address this node reaches the scheduler from
/// (what the kernel's route to it uses; no packet is sent).
fn address_towards(scheduler: &str) -> Result<String, Error> {
    use std::net::ToSocketAddrs;
    let bad = |why: String| Error::Config(format!("--address auto: {why}"));
    let rest = scheduler.split_once("://").map_or(scheduler, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or(rest);
    let target = hostport
        .to_socket_addrs()
        .map_err(|e| bad(format!("cannot resolve the scheduler {hostport:?}: {e}")))?
        .next()
        .ok_or_else(|| bad(format!("the scheduler {hostport:?} has no address")))?;
    let any: std::net::SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = std::net::UdpSocket::bind(any).map_err(|e| bad(e.to_string()))?;
    s.connect(target)
        .map_err(|e| bad(format!("no route to the scheduler at {target}: {e}")))?;
    Ok(s.local_addr()
        .map_err(|e| bad(e.to_string()))?
        .ip()
        .to_string())
}

/// Run the worker until the process is stopped.
pub fn run(mut config: WorkerConfig) -> Result<(), Error> {
    config
        .policy
        .check(nix::unistd::geteuid().is_root())
        .map_err(Error::Config)?;
    join_netns(&config)?;
    if config.address == "auto" {
        config.address = address_towards(&config.scheduler)?;
    }
    let stop_signals = block_stop_signals()?;
    // Certificates are checked before anything starts.
    let http = crate::tls::scheduler_client(&config.scheduler, config.tls.as_ref())?;
    let server_tls = match &config.tls {
        Some(t) => Some(crate::tls::server_config(t, &config.address)?),
        None => None,
    };
    let ca_pem = match &config.tls {
        Some(t) => Some(
            std::fs::read_to_string(&t.ca)
                .map_err(crate::io(format!("cannot read {}", t.ca.display())))?,
        ),
        None => None,
    };
    let cpus = node_cpus(&config)?;
    let capacity = node_capacity(&config, &cpus);
    let tasks_dir = tasks_dir(&config)?;
    let (cgroups, notes) = cgroups_and_notes(&config);
    let lease = Arc::new(crate::fence::Lease::new(&config.state_dir.join("lease"))?);
    let _watchdog = watchdog(&config, &cgroups)?;
    let sched: Arc<dyn Scheduler> = Arc::new(HttpScheduler::new(
        &config.scheduler,
        config.tls.clone(),
        http,
        lease.clone(),
    ));
    let (tx, rx) = mpsc::channel::<TaskReport>();
    let tasks = Tasks::new(
        tasks_dir.clone(),
        cgroups,
        &cpus,
        tx,
        interface_of(&config.address),
        crate::task::NodeSettings {
            node: config.name.clone(),
            address: config.address.clone(),
            policy: config.policy.clone(),
            exec_wait: config.exec_wait,
            ca_pem,
            images: Arc::new(crate::images::Images::new(
                config.state_dir.join("images"),
                config.images.clone(),
            )),
        },
    );
    let log_key = crate::pki::random_bytes(32)?;
    let log_key_hex = hex::encode(&log_key);
    let port = crate::server::serve(
        tasks.clone(),
        tasks_dir,
        &config.address,
        config.port,
        log_key,
        server_tls,
    )?;
    let taken = Arc::new(Taken::default());
    let timing = Arc::new(Timing::default());
    spawn_signals(&config, stop_signals, &tasks, &sched, &timing)?;
    spawn_fence(&config, &tasks, &lease)?;
    tracing::info!(
        "worker {} at {}: {} vCPUs ({}), {} MiB memory, {} MiB /dev/shm",
        config.name,
        config.address,
        capacity.vcpus,
        CpuSet(cpus.clone()).to_list(),
        capacity.memory_mib,
        capacity.shm_mib
    );
    // Reports go out at once, on their own connection, so a task's end
    // never waits for the long poll to return.
    {
        let (sched, tasks, name) = (sched.clone(), tasks.clone(), config.name.clone());
        let (taken, timing) = (taken.clone(), timing.clone());
        std::thread::Builder::new()
            .name("reporter".into())
            .spawn(move || crate::poll::report(sched.as_ref(), &tasks, &name, rx, &taken, &timing))
            .map_err(crate::io("cannot start the reporter"))?;
    }
    let node = RegisterWorkerRequest {
        name: config.name.clone(),
        address: config.address.clone(),
        port,
        capacity,
        labels: config.labels.clone(),
        running: Vec::new(),
        log_key: Some(log_key_hex),
        tls: config.tls.is_some(),
        notes,
        allocation: None,
    };
    crate::poll::run(sched.as_ref(), &tasks, &node, &taken, &timing);
    // Stopping: the signal thread ends the process.
    loop {
        std::thread::park();
    }
}

/// The thread that takes SIGTERM or SIGINT, stops the worker gracefully
/// ([`crate::poll::stop`]: tasks get `--stop-grace` after their SIGTERM)
/// and ends the process.
fn spawn_signals(
    config: &WorkerConfig,
    stop_signals: nix::sys::signal::SigSet,
    tasks: &Arc<Tasks>,
    sched: &Arc<dyn Scheduler>,
    timing: &Arc<Timing>,
) -> Result<(), Error> {
    let (tasks, sched, name) = (tasks.clone(), sched.clone(), config.name.clone());
    let (grace, timing) = (config.stop_grace, timing.clone());
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Ok(sig) = stop_signals.wait() {
                tracing::info!("{sig:?}: stopping (tasks get {grace:?} after their SIGTERM)");
            }
            let every = Duration::from_millis(timing.heartbeat_ms.load(SeqCst));
            tasks.refuse_new();
            crate::poll::stop(
                sched,
                &name,
                every,
                || tasks.stop_all(grace),
                || tasks.unreported(),
            );
            std::process::exit(0);
        })
        .map_err(crate::io("cannot start the signal thread"))?;
    Ok(())
}

/// The worker's own fence: when the lease runs out, its tasks end.
fn spawn_fence(
    config: &WorkerConfig,
    tasks: &Arc<Tasks>,
    lease: &Arc<crate::fence::Lease>,
) -> Result<(), Error> {
    let (tasks, lease, name) = (tasks.clone(), lease.clone(), config.name.clone());
    std::thread::Builder::new()
        .name("fence".into())
        .spawn(move || loop {
            std::thread::sleep(crate::fence::CHECK_EVERY);
            let now = crate::fence::clock_ms();
            if lease.overdue(now).is_some() && tasks.any_alive() {
                let (length, grace) = lease.timing();
                let why = format!(
                    "node {name} lost contact with the scheduler for over {} ms: its lease ran out and the worker ended the task",
                    length.as_millis()
                );
                tasks.fence(&why, grace);
            }
        })
        .map_err(crate::io("cannot start the fence thread"))?;
    Ok(())
}

/// Join the network namespace `--netns` names, before any thread exists:
/// threads inherit it. Unlike `ip netns exec`, this keeps the host's /sys
/// (and its cgroups).
fn join_netns(config: &WorkerConfig) -> Result<(), Error> {
    if let Some(ns) = &config.netns {
        let f = std::fs::File::open(format!("/run/netns/{ns}"))
            .map_err(crate::io(format!("cannot open network namespace {ns}")))?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::Config(format!("cannot join network namespace {ns}: {e}")))?;
    }
    Ok(())
}

/// SIGTERM and SIGINT, blocked in every thread (so block them before any
/// starts): one thread takes them and ends every task before the worker
/// exits.
fn block_stop_signals() -> Result<nix::sys::signal::SigSet, Error> {
    use nix::sys::signal::{SigSet, Signal};
    let mut stop_signals = SigSet::empty();
    stop_signals.add(Signal::SIGTERM);
    stop_signals.add(Signal::SIGINT);
    stop_signals
        .thread_block()
        .map_err(|e| Error::Config(format!("cannot block SIGTERM: {e}")))?;
    Ok(stop_signals)
}

/// The CPUs this node offers: `--cpuset` (within what this process may
/// use), the first `--cpus` of them.
fn node_cpus(config: &WorkerConfig) -> Result<Vec<u32>, Error> {
    let mine = CpuSet::current();
    let mut cpus = match &config.cpuset {
        Some(set) => {
            let outside: Vec<u32> = set
                .0
                .iter()
                .filter(|c| !mine.0.contains(c))
                .copied()
                .collect();
            if !outside.is_empty() {
                return Err(Error::Config(format!(
                    "--cpuset {}: CPUs {} are not this machine's (this worker may use {})",
                    set.to_list(),
                    CpuSet(outside).to_list(),
                    mine.to_list()
                )));
            }
            set.0.clone()
        }
        None => mine.0,
    };
    if let Some(n) = config.cpus {
        if n == 0 || n as usize > cpus.len() {
            return Err(Error::Config(format!(
                "--cpus {n}: this worker may use {} CPUs ({}); give 1..={}",
                cpus.len(),
                CpuSet(cpus.clone()).to_list(),
                cpus.len()
            )));
        }
        cpus.truncate(n as usize);
    }
    Ok(cpus)
}

/// What this node offers: its CPUs, `--memory` or the machine's, and no
/// more shared memory than memory (a job's /dev/shm pages count against
/// its memory).
fn node_capacity(config: &WorkerConfig, cpus: &[u32]) -> Resources {
    let memory_mib = config.memory_mib.unwrap_or_else(capacity::memory_mib);
    Resources {
        vcpus: cpus.len() as u32,
        memory_mib,
        // A job's /dev/shm pages count against its memory: a node offers
        // no more shared memory than memory.
        shm_mib: capacity::shm_mib().min(memory_mib),
    }
}

/// `STATE/tasks`, created, as an absolute path: a task's mounts and paths
/// are resolved from its own working directory, not the worker's
/// (`--state ./w` must work too).
fn tasks_dir(config: &WorkerConfig) -> Result<PathBuf, Error> {
    let tasks_dir = config.state_dir.join("tasks");
    std::fs::create_dir_all(&tasks_dir)
        .map_err(crate::io(format!("cannot create {}", tasks_dir.display())))?;
    let tasks_dir = std::fs::canonicalize(&tasks_dir)
        .map_err(crate::io(format!("cannot resolve {}", tasks_dir.display())))?;
    Ok(tasks_dir)
}

/// The node's task cgroups (one directory per worker identity, its name
/// and state directory, so that workers of different clusters on one
/// machine never touch each other's tasks; leftovers of an earlier run
/// killed), and what this worker cannot enforce, found once at start:
/// logged here and shown on its node, not in every job's log.
fn cgroups_and_notes(config: &WorkerConfig) -> (Cgroups, Vec<String>) {
    let state =
        std::fs::canonicalize(&config.state_dir).unwrap_or_else(|_| config.state_dir.clone());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&state, &mut h);
    let leaf = format!(
        "shoal-{}-{:08x}",
        config.name,
        std::hash::Hasher::finish(&h) as u32
    );
    let cgroups = Cgroups::detect(&leaf);
    let mut notes = cgroups.notes();
    if let Err(e) = crate::isolate::probe_isolation() {
        notes.push(format!("jobs cannot get a private /dev/shm: {e}"));
    }
    for n in &notes {
        tracing::warn!("{n}");
    }
    let stale = cgroups.clean_stale();
    if stale > 0 {
        tracing::warn!("killed the leftovers of {stale} tasks from an earlier run of this worker");
    }
    (cgroups, notes)
}

/// The watchdog process that fences this worker's tasks when their lease
/// runs out, even if this process hangs; none without task cgroups.
fn watchdog(
    config: &WorkerConfig,
    cgroups: &Cgroups,
) -> Result<Option<std::process::Child>, Error> {
    let bases: Vec<PathBuf> = cgroups.bases().into_iter().cloned().collect();
    Ok(if bases.is_empty() {
        tracing::warn!(
        "no task cgroups: if this worker hangs, nothing ends its tasks when their lease runs out"
    );
        None
    } else {
        Some(crate::fence::spawn_watchdog(
            &config.state_dir.join("lease"),
            &bases,
        )?)
    })
}
