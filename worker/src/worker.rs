//! The worker process: register, long-poll for orders, run tasks, report.

use crate::capacity::{self, CpuSet};
use crate::cgroup::Cgroups;
use crate::task::{task_dir_name, Tasks};
use crate::Error;
use shoal_model::wire::{
    Capacity, Order, PollRequest, PollResponse, RegisterWorkerRequest, RegisterWorkerResponse,
    TaskReport, WorkerPhase,
};
use shoal_pki::TlsListener;
use std::collections::BTreeMap;
use std::path::PathBuf;
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
}

impl WorkerConfig {
    /// The HTTP client for the scheduler: with TLS, it trusts only the
    /// cluster CA and presents this node's certificate.
    fn http_client(&self) -> Result<reqwest::blocking::Client, Error> {
        let builder = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60));
        let https = self.scheduler.starts_with("https://");
        let builder = match &self.tls {
            None if https => {
                return Err(Error::Config(format!(
                    "--scheduler {} is https: give this worker its certificate with --tls-dir DIR (or --ca, --cert and --key)",
                    self.scheduler
                )))
            }
            None => builder,
            Some(_) if !https => {
                return Err(Error::Config(format!(
                    "--scheduler {}: with a certificate, give the scheduler's worker listener as https://ADDRESS:PORT",
                    self.scheduler
                )))
            }
            Some(t) => {
                let read = |p: &std::path::Path| {
                    std::fs::read(p).map_err(crate::io(format!("cannot read {}", p.display())))
                };
                let bad = |what: &str, p: &std::path::Path, e: reqwest::Error| {
                    Error::Config(format!("{what} {}: {e}", p.display()))
                };
                let ca = reqwest::Certificate::from_pem(&read(&t.ca)?)
                    .map_err(|e| bad("not a CA certificate:", &t.ca, e))?;
                let mut pem = read(&t.cert)?;
                pem.push(b'\n');
                pem.extend(read(&t.key)?);
                let id = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| bad("not a certificate and key:", &t.cert, e))?;
                builder
                    .use_rustls_tls()
                    .tls_built_in_root_certs(false)
                    .add_root_certificate(ca)
                    .identity(id)
                    .https_only(true)
            }
        };
        builder
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))
    }
}

struct Conn {
    endpoint: String,
    http: reqwest::blocking::Client,
}

impl Conn {
    fn post<T: serde::de::DeserializeOwned>(
        &self,
        op: &str,
        body: &impl serde::Serialize,
    ) -> Result<T, Error> {
        self.post_within(op, body, None)
    }

    /// As `post`, giving up after `timeout` (None: the client's own).
    fn post_within<T: serde::de::DeserializeOwned>(
        &self,
        op: &str,
        body: &impl serde::Serialize,
        timeout: Option<Duration>,
    ) -> Result<T, Error> {
        let err = |message: String| Error::Scheduler {
            endpoint: self.endpoint.clone(),
            message,
        };
        let mut req = self
            .http
            .post(format!("{}/shoal/v1/{op}", self.endpoint))
            .json(body);
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        let resp = req
            .send()
            .map_err(|e| err(format!("cannot reach it: {e}")))?;
        let status = resp.status();
        let text = resp.text().map_err(|e| err(e.to_string()))?;
        if !status.is_success() {
            return Err(err(format!("{status}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| err(format!("bad reply to {op}: {e}")))
    }
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

/// The address of a client of the worker's own server.
#[derive(Debug, Clone, Copy)]
struct Peer(std::net::SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for Peer
{
    fn connect_info(s: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Peer(*s.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(s: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        Peer(s.remote_addr().addr)
    }
}

/// The TLS configuration of the worker's own server: this node's
/// certificate, which must be valid, under the cluster CA, for `address`
/// (the address the scheduler hands to clients). No client certificates:
/// `/exec` checks the job's token and `/logs` the scheduler's grant.
fn server_tls(t: &crate::pki::TlsFiles, address: &str) -> Result<Arc<rustls::ServerConfig>, Error> {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};
    let bad = |what: String| Error::Config(what);
    let pki = |e: crate::pki::PkiError| Error::Config(e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = crate::pki::load_certs(&t.cert).map_err(pki)?;
    // Fail at start, with the fix, rather than at every client's handshake.
    let roots = crate::pki::root_store(&t.ca).map_err(pki)?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| bad(format!("cannot verify against {}: {e}", t.ca.display())))?;
    let name = ServerName::try_from(address.to_string())
        .map_err(|e| bad(format!("--address {address}: {e}")))?;
    verifier
        .verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now())
        .map_err(|e| {
            bad(format!(
                "{} is not valid for this node's address {address} under the CA {}: {e}; \
                 issue it with `shoal ca issue DIR NAME --ip {address} --force`",
                t.cert.display(),
                t.ca.display()
            ))
        })?;
    let key = crate::pki::load_key(&t.key).map_err(pki)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            bad(format!(
                "{} and {} do not make a usable certificate: {e}",
                t.cert.display(),
                t.key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A launch-agent request.
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecRequest {
    /// The job (`AWS_BATCH_JOB_ID` of the caller; a `#NODE` suffix is ignored).
    pub job_id: String,
    /// 0-based attempt.
    pub attempt: u32,
    /// The command line, run through `sh -c`.
    pub command: String,
    /// The job's token (`SHOAL_JOB_TOKEN`).
    #[serde(default)]
    pub token: String,
}

/// Whether `sig` (hex) is the scheduler's grant to read the log in
/// `dir_name` until `expires` (epoch ms), under this worker's log key.
pub fn log_grant_ok(key: &[u8], dir_name: &str, expires: u64, sig: &str, now_ms: u64) -> bool {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let msg = shoal_model::wire::log_grant_message(dir_name, expires);
    let want = hex::encode(ring::hmac::sign(&key, msg.as_bytes()).as_ref());
    now_ms <= expires && crate::task::same_secret(&want, sig)
}

/// The worker's own HTTP server: `GET /logs/{task-dir}?offset=N&expires=E&sig=S`
/// serves a task's output to a holder of the scheduler's grant, `POST
/// /exec` runs a launch-agent command in a task.
fn serve(
    tasks: Arc<Tasks>,
    dir: PathBuf,
    address: &str,
    port: u16,
    log_key: Vec<u8>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<u16, Error> {
    use axum::extract::{Path, Query, State};
    use axum::routing::get;
    let listener = std::net::TcpListener::bind((address, port))
        .map_err(crate::io(format!("cannot listen on {address}:{port}")))?;
    listener
        .set_nonblocking(true)
        .map_err(crate::io("cannot set up the log server"))?;
    let port = listener
        .local_addr()
        .map_err(crate::io("cannot read the log server's address"))?
        .port();
    #[derive(serde::Deserialize)]
    struct Q {
        offset: Option<u64>,
        expires: Option<u64>,
        sig: Option<String>,
    }
    async fn logs(
        State((dir, key)): State<(Arc<PathBuf>, Arc<Vec<u8>>)>,
        Path(name): Path<String>,
        Query(q): Query<Q>,
    ) -> (axum::http::StatusCode, Vec<u8>) {
        if name.contains('/') || name.starts_with('.') {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                b"bad task name".to_vec(),
            );
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(u64::MAX);
        let granted = match (q.expires, q.sig.as_deref()) {
            (Some(e), Some(s)) => log_grant_ok(&key, &name, e, s, now),
            _ => false,
        };
        if !granted {
            return (
                axum::http::StatusCode::FORBIDDEN,
                b"reading a log needs a current grant from the scheduler (expires, sig): use `shoal logs`".to_vec(),
            );
        }
        match std::fs::read(dir.join(&name).join("output.log")) {
            Ok(bytes) => {
                let from = (q.offset.unwrap_or(0) as usize).min(bytes.len());
                (axum::http::StatusCode::OK, bytes[from..].to_vec())
            }
            Err(_) => (axum::http::StatusCode::NOT_FOUND, b"no such log".to_vec()),
        }
    }
    async fn exec(
        State(tasks): State<Arc<Tasks>>,
        axum::extract::ConnectInfo(Peer(peer)): axum::extract::ConnectInfo<Peer>,
        axum::Json(r): axum::Json<ExecRequest>,
    ) -> (axum::http::StatusCode, String) {
        let run = tokio::task::spawn_blocking(move || {
            let caller = crate::task::ExecCaller {
                job_id: &r.job_id,
                attempt: r.attempt,
                token: &r.token,
                peer: peer.ip(),
            };
            let out = tasks.exec_in(&caller, &r.command);
            if let Err(crate::task::ExecError::Refused(why)) = &out {
                tracing::warn!("refused a launch-agent request from {peer}: {why}");
            }
            out
        })
        .await;
        let (status, body) = match run {
            Ok(Ok(code)) => (
                axum::http::StatusCode::OK,
                serde_json::json!({ "exitCode": code }),
            ),
            Ok(Err(crate::task::ExecError::Refused(e))) => (
                axum::http::StatusCode::FORBIDDEN,
                serde_json::json!({ "message": e }),
            ),
            Ok(Err(crate::task::ExecError::Failed(e))) => (
                axum::http::StatusCode::CONFLICT,
                serde_json::json!({ "message": e }),
            ),
            Err(e) => (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({ "message": e.to_string() }),
            ),
        };
        (status, body.to_string())
    }
    let app = axum::Router::new()
        .route("/logs/{name}", get(logs))
        .with_state((Arc::new(dir), Arc::new(log_key)))
        .merge(
            axum::Router::new()
                .route("/exec", axum::routing::post(exec))
                .with_state(tasks),
        );
    std::thread::Builder::new()
        .name("log-server".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return tracing::error!("log server: {e}"),
            };
            rt.block_on(async move {
                let app = app.into_make_service_with_connect_info::<Peer>();
                match (tokio::net::TcpListener::from_std(listener), tls) {
                    (Ok(l), None) => {
                        let _ = axum::serve(l, app).await;
                    }
                    (Ok(l), Some(config)) => {
                        let _ = axum::serve(TlsListener::start(l, config, "log server"), app).await;
                    }
                    (Err(e), _) => tracing::error!("log server: {e}"),
                }
            });
        })
        .map_err(crate::io("cannot start the log server"))?;
    Ok(port)
}

/// Run the worker until the process is stopped.
pub fn run(config: WorkerConfig) -> Result<(), Error> {
    config
        .policy
        .check(nix::unistd::geteuid().is_root())
        .map_err(Error::Config)?;
    if let Some(ns) = &config.netns {
        // Before any thread exists: threads inherit the namespace. Unlike
        // `ip netns exec`, this keeps the host's /sys (and its cgroups).
        let f = std::fs::File::open(format!("/run/netns/{ns}"))
            .map_err(crate::io(format!("cannot open network namespace {ns}")))?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::Config(format!("cannot join network namespace {ns}: {e}")))?;
    }
    // SIGTERM and SIGINT are taken by one thread (below), which ends every
    // task before the worker exits. Block them before any thread starts so
    // that every thread inherits the mask.
    use nix::sys::signal::{SigSet, Signal};
    let mut stop_signals = SigSet::empty();
    stop_signals.add(Signal::SIGTERM);
    stop_signals.add(Signal::SIGINT);
    stop_signals
        .thread_block()
        .map_err(|e| Error::Config(format!("cannot block SIGTERM: {e}")))?;
    // Certificates are checked before anything starts.
    let conn = Arc::new(Conn {
        endpoint: config.scheduler.trim_end_matches('/').to_string(),
        http: config.http_client()?,
    });
    let server_tls = match &config.tls {
        Some(t) => Some(server_tls(t, &config.address)?),
        None => None,
    };
    let ca_pem = match &config.tls {
        Some(t) => Some(
            std::fs::read_to_string(&t.ca)
                .map_err(crate::io(format!("cannot read {}", t.ca.display())))?,
        ),
        None => None,
    };
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
    let memory_mib = config.memory_mib.unwrap_or_else(capacity::memory_mib);
    let capacity = Capacity {
        vcpus: cpus.len() as u32,
        memory_mib,
        // A job's /dev/shm pages count against its memory: a node offers
        // no more shared memory than memory.
        shm_mib: capacity::shm_mib().min(memory_mib),
    };
    let tasks_dir = config.state_dir.join("tasks");
    std::fs::create_dir_all(&tasks_dir)
        .map_err(crate::io(format!("cannot create {}", tasks_dir.display())))?;
    // Absolute: a task's mounts and paths are resolved from its own
    // working directory, not the worker's (`--state ./w` must work too).
    let tasks_dir = std::fs::canonicalize(&tasks_dir)
        .map_err(crate::io(format!("cannot resolve {}", tasks_dir.display())))?;
    // One cgroup directory per worker identity (name and state directory),
    // so that workers of different clusters on one machine never touch
    // each other's tasks.
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
    // What this worker cannot enforce, found once at start: logged here and
    // shown on its node, not in every job's log.
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
    let (tx, rx) = mpsc::channel::<TaskReport>();
    let interface = interface_of(&config.address);
    let tasks = Tasks::new(
        tasks_dir.clone(),
        cgroups,
        &cpus,
        tx,
        interface,
        crate::task::NodeSettings {
            node: config.name.clone(),
            policy: config.policy.clone(),
            exec_wait: config.exec_wait,
            ca_pem,
        },
    );
    let log_key = crate::pki::random_bytes(32)?;
    let log_key_hex = hex::encode(&log_key);
    let port = serve(
        tasks.clone(),
        tasks_dir,
        &config.address,
        config.port,
        log_key,
        server_tls,
    )?;
    {
        let (tasks, conn, name) = (tasks.clone(), conn.clone(), config.name.clone());
        let grace = config.stop_grace;
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if let Ok(sig) = stop_signals.wait() {
                    tracing::info!("{sig:?}: stopping (tasks get {grace:?} after their SIGTERM)");
                }
                stop(&tasks, &conn, &name, grace);
                std::process::exit(0);
            })
            .map_err(crate::io("cannot start the signal thread"))?;
    }
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
        let (conn, tasks, name) = (conn.clone(), tasks.clone(), config.name.clone());
        std::thread::Builder::new()
            .name("reporter".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut reports = vec![first];
                    reports.extend(rx.try_iter());
                    loop {
                        let body = PollRequest {
                            name: name.clone(),
                            reports: reports.clone(),
                            wait_ms: 0,
                            phase: Default::default(),
                        };
                        match conn.post::<PollResponse>("poll", &body) {
                            Ok(resp) => {
                                tasks.delivered(reports.len());
                                obey(&tasks, resp.orders);
                                break;
                            }
                            Err(e) => {
                                tracing::warn!("cannot report, retrying: {e}");
                                std::thread::sleep(Duration::from_millis(500));
                            }
                        }
                    }
                }
            })
            .map_err(crate::io("cannot start the reporter"))?;
    }

    let mut backoff = Duration::from_millis(100);
    loop {
        // A stopping worker neither registers nor polls again: the signal
        // thread ends the process.
        while tasks.is_stopping() {
            std::thread::park();
        }
        let reg = RegisterWorkerRequest {
            name: config.name.clone(),
            address: config.address.clone(),
            port,
            capacity,
            labels: config.labels.clone(),
            running: tasks.running(),
            log_key: Some(log_key_hex.clone()),
            tls: config.tls.is_some(),
            notes: notes.clone(),
        };
        let hb = match conn.post::<RegisterWorkerResponse>("registerworker", &reg) {
            Ok(r) => {
                backoff = Duration::from_millis(100);
                tracing::info!("registered with {}", conn.endpoint);
                r.heartbeat_ms
            }
            Err(e) => {
                tracing::warn!("cannot register, retrying in {backoff:?}: {e}");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        while !tasks.is_stopping() {
            let body = PollRequest {
                name: config.name.clone(),
                reports: Vec::new(),
                wait_ms: hb,
                phase: Default::default(),
            };
            match conn.post::<PollResponse>("poll", &body) {
                Ok(resp) => obey(&tasks, resp.orders),
                Err(_) if tasks.is_stopping() => {}
                Err(e) => {
                    tracing::warn!("poll failed, registering again: {e}");
                    break;
                }
            }
        }
    }
}

/// A graceful stop: tell the scheduler (nothing new is placed here and the
/// orders not yet taken go back), end every task (SIGTERM, `grace`,
/// SIGKILL), let their reports go out, and tell the scheduler the node is
/// down. The scheduler may be unreachable: each step is bounded.
fn stop(tasks: &Arc<Tasks>, conn: &Conn, name: &str, grace: Duration) {
    let tell = |phase: WorkerPhase| {
        let body = PollRequest {
            name: name.to_string(),
            reports: Vec::new(),
            wait_ms: 0,
            phase,
        };
        // Bounded: a worker cut off from its scheduler still stops its
        // tasks at once.
        let within = Some(Duration::from_secs(2));
        if let Err(e) = conn.post_within::<PollResponse>("poll", &body, within) {
            tracing::warn!("cannot tell the scheduler this worker is {phase:?}: {e}");
        }
    };
    tasks.refuse_new();
    tell(WorkerPhase::Stopping);
    tasks.stop_all(grace);
    // The reporter sends what the tasks' ends produced; wait for it, briefly.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while tasks.unreported() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    tell(WorkerPhase::Stopped);
}

fn obey(tasks: &Arc<Tasks>, orders: Vec<Order>) {
    for o in orders {
        match o {
            Order::Start(s) => {
                tracing::info!("starting {} ({})", s.task, task_dir_name(&s.task));
                tasks.start(*s);
            }
            Order::Kill { task, reason } => tasks.kill(&task, &reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_grant_is_for_one_task_one_key_and_until_it_expires() {
        let key = [7u8; 32];
        let msg = shoal_model::wire::log_grant_message("t.node0.attempt1", 1000);
        let sig = hex::encode(
            ring::hmac::sign(
                &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
                msg.as_bytes(),
            )
            .as_ref(),
        );
        assert!(log_grant_ok(&key, "t.node0.attempt1", 1000, &sig, 999));
        assert!(log_grant_ok(&key, "t.node0.attempt1", 1000, &sig, 1000));
        assert!(!log_grant_ok(&key, "t.node0.attempt1", 1000, &sig, 1001));
        assert!(!log_grant_ok(&key, "t.node1.attempt1", 1000, &sig, 999));
        assert!(!log_grant_ok(&key, "t.node0.attempt1", 2000, &sig, 999));
        assert!(!log_grant_ok(
            &[8u8; 32],
            "t.node0.attempt1",
            1000,
            &sig,
            999
        ));
    }
}
