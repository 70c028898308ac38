//! The worker process: register, long-poll for orders, run tasks, report.

use crate::capacity::{self, CpuSet};
use crate::cgroup::Cgroups;
use crate::task::{task_dir_name, Tasks};
use crate::Error;
use shoal_model::wire::{
    Order, OrderSeq, PollRequest, PollResponse, RegisterWorkerRequest, RegisterWorkerResponse,
    Resources, TaskReport, WorkerPhase,
};
use shoal_pki::TlsListener;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
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
        // Each request sets its own timeout (below the lost-node timeout);
        // a connection that cannot be made in half a second is tried anew.
        let builder = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(CONNECT_TIMEOUT);
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

/// How long a connection to the scheduler may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The longest wait between two tries to reach the scheduler.
const RETRY_CAP: Duration = Duration::from_millis(250);

struct Conn {
    endpoint: String,
    config: WorkerConfig,
    /// Replaced after a failure, so that no request waits on a connection
    /// that died with a cut link.
    http: std::sync::Mutex<reqwest::blocking::Client>,
    /// Every answer renews it.
    lease: Arc<crate::fence::Lease>,
}

impl Conn {
    fn client(&self) -> reqwest::blocking::Client {
        self.http.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Drop the pooled connections (they may be dead).
    fn reset(&self) {
        if let Ok(c) = self.config.http_client() {
            *self.http.lock().unwrap_or_else(|e| e.into_inner()) = c;
        }
    }

    /// POST to the scheduler, giving up after `timeout`. An answer renews
    /// the lease from the moment the request left; a failure to reach the
    /// scheduler drops the pooled connections.
    fn post_within<T: serde::de::DeserializeOwned>(
        &self,
        op: &str,
        body: &impl serde::Serialize,
        timeout: Duration,
    ) -> Result<T, Error> {
        let err = |message: String| Error::Scheduler {
            endpoint: self.endpoint.clone(),
            message,
        };
        let sent_at = crate::fence::clock_ms();
        let resp = self
            .client()
            .post(format!("{}/shoal/v1/{op}", self.endpoint))
            .json(body)
            .timeout(timeout)
            .send()
            .and_then(|r| {
                let status = r.status();
                r.text().map(|t| (status, t))
            });
        let (status, text) = match resp {
            Ok(x) => x,
            Err(e) => {
                if connection_refused(&e) {
                    // Nothing listens there: no scheduler runs that could
                    // give these tasks away (a restarted one gives every
                    // node a full timeout from its start), so the tasks
                    // keep running, as through a restart of the scheduler.
                    self.lease.renew(sent_at);
                }
                self.reset();
                return Err(err(format!("cannot reach it: {e}")));
            }
        };
        if status.is_server_error() {
            return Err(err(format!("{status}: {text}")));
        }
        // The scheduler answered (even to refuse): it is there.
        self.lease.renew(sent_at);
        if !status.is_success() {
            return Err(Error::Refused {
                endpoint: self.endpoint.clone(),
                message: format!("{status}: {text}"),
            });
        }
        serde_json::from_str(&text).map_err(|e| err(format!("bad reply to {op}: {e}")))
    }
}

/// Whether a request failed because nothing listened at the scheduler's
/// address (the host answered with a reset).
fn connection_refused(e: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        cause = c.source();
    }
    false
}

/// The position of the last order this worker took, so that an order sent
/// again (its first reply lost) is taken once.
#[derive(Default)]
struct Taken(std::sync::Mutex<OrderSeq>);

impl Taken {
    fn ack(&self) -> Option<OrderSeq> {
        let t = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        (t.epoch != 0).then_some(t)
    }

    /// Carry out the orders of a reply not taken before.
    fn obey(&self, tasks: &Arc<Tasks>, resp: PollResponse) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if resp.first.epoch != t.epoch {
            // A new scheduler process: a new stream of orders.
            *t = OrderSeq {
                epoch: resp.first.epoch,
                seq: 0,
            };
        }
        for (i, o) in resp.orders.into_iter().enumerate() {
            let seq = resp.first.seq + i as u64;
            if seq <= t.seq && resp.first.epoch != 0 {
                continue;
            }
            match o {
                Order::Start(s) => {
                    tracing::info!("starting {} ({})", s.task, task_dir_name(&s.task));
                    tasks.start(*s);
                }
                Order::Kill { task, reason } => tasks.kill(&task, &reason),
            }
            t.seq = seq;
        }
    }
}

/// The wait before the next try after `failures` failed tries in a row: at
/// once, then doubling from 25 ms up to [`RETRY_CAP`].
fn retry_wait(failures: u32) -> Duration {
    match failures {
        0 | 1 => Duration::ZERO,
        n => (Duration::from_millis(25) * 2u32.saturating_pow(n - 2)).min(RETRY_CAP),
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

/// Whether `sig` (hex) is the scheduler's grant to read the log in
/// `dir_name` until `expires` (epoch ms), under this worker's log key.
pub fn log_grant_ok(key: &[u8], dir_name: &str, expires: u64, sig: &str, now_ms: u64) -> bool {
    let msg = shoal_model::wire::log_grant_message(dir_name, expires);
    let want = shoal_sigv4::hmac_sha256_hex(key, msg.as_bytes());
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
        axum::Json(r): axum::Json<shoal_model::ExecRequest>,
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
        use axum::http::StatusCode;
        let error = |status, message: String| {
            let body = shoal_model::ErrorBody {
                kind: None,
                message,
            };
            (status, serde_json::to_string(&body).unwrap_or_default())
        };
        match run {
            Ok(Ok(exit_code)) => (
                StatusCode::OK,
                serde_json::to_string(&shoal_model::ExecResponse { exit_code }).unwrap_or_default(),
            ),
            Ok(Err(crate::task::ExecError::Refused(e))) => error(StatusCode::FORBIDDEN, e),
            Ok(Err(crate::task::ExecError::Failed(e))) => error(StatusCode::CONFLICT, e),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
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
    let http = config.http_client()?;
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
    let capacity = Resources {
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
    // The lease of this worker's tasks, and the watchdog that fences them
    // even if this process hangs.
    let lease = Arc::new(crate::fence::Lease::new(&config.state_dir.join("lease"))?);
    let bases: Vec<PathBuf> = cgroups.bases().into_iter().cloned().collect();
    let _watchdog = if bases.is_empty() {
        tracing::warn!(
            "no task cgroups: if this worker hangs, nothing ends its tasks when their lease runs out"
        );
        None
    } else {
        Some(crate::fence::spawn_watchdog(
            &config.state_dir.join("lease"),
            &bases,
        )?)
    };
    let conn = Arc::new(Conn {
        endpoint: config.scheduler.trim_end_matches('/').to_string(),
        config: config.clone(),
        http: std::sync::Mutex::new(http),
        lease: lease.clone(),
    });
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
    let taken = Arc::new(Taken::default());
    // Timing from the scheduler (registration); until then the defaults.
    let hb = Arc::new(AtomicU64::new(1000));
    let lost_after = Arc::new(AtomicU64::new(10_000));
    {
        let (tasks, conn, name) = (tasks.clone(), conn.clone(), config.name.clone());
        let (grace, hb) = (config.stop_grace, hb.clone());
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if let Ok(sig) = stop_signals.wait() {
                    tracing::info!("{sig:?}: stopping (tasks get {grace:?} after their SIGTERM)");
                }
                let every = Duration::from_millis(hb.load(SeqCst));
                stop(&tasks, &conn, &name, grace, every);
                std::process::exit(0);
            })
            .map_err(crate::io("cannot start the signal thread"))?;
    }
    // The worker's own fence: when the lease runs out, its tasks end.
    {
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
        let (taken, lost_after) = (taken.clone(), lost_after.clone());
        std::thread::Builder::new()
            .name("reporter".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut reports = vec![first];
                    reports.extend(rx.try_iter());
                    let mut failures = 0;
                    loop {
                        let body = PollRequest {
                            name: name.clone(),
                            reports: reports.clone(),
                            wait_ms: 0,
                            phase: Default::default(),
                            ack: taken.ack(),
                            tasks: None,
                        };
                        let within = poll_timeout(0, lost_after.load(SeqCst));
                        match conn.post_within::<PollResponse>("poll", &body, within) {
                            Ok(resp) => {
                                tasks.delivered(&reports);
                                taken.obey(&tasks, resp);
                                break;
                            }
                            Err(e) => {
                                failures += 1;
                                if failures == 1 {
                                    tracing::warn!("cannot report, retrying: {e}");
                                }
                                // Refused: the node must register again
                                // first (the main loop does).
                                let wait = match e {
                                    Error::Refused { .. } => RETRY_CAP,
                                    _ => retry_wait(failures),
                                };
                                std::thread::sleep(wait);
                            }
                        }
                    }
                }
            })
            .map_err(crate::io("cannot start the reporter"))?;
    }

    let mut failures = 0u32;
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
            running: tasks.known(),
            log_key: Some(log_key_hex.clone()),
            tls: config.tls.is_some(),
            notes: notes.clone(),
        };
        let within = poll_timeout(0, lost_after.load(SeqCst));
        match conn.post_within::<RegisterWorkerResponse>("registerworker", &reg, within) {
            Ok(r) => {
                failures = 0;
                tracing::info!("registered with {}", conn.endpoint);
                hb.store(r.heartbeat_ms, SeqCst);
                lost_after.store(r.lost_after_ms, SeqCst);
                lease.set_timing(
                    if r.lease_ms > 0 {
                        r.lease_ms
                    } else {
                        r.lost_after_ms
                    },
                    r.fence_grace_ms,
                );
            }
            Err(e) => {
                failures += 1;
                // Quick at first (a link back, a scheduler restarted), then
                // once a second.
                let wait = retry_wait(failures).max(Duration::from_millis(if failures > 20 {
                    1000
                } else {
                    0
                }));
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!("cannot register, retrying: {e}");
                }
                std::thread::sleep(wait);
                continue;
            }
        }
        let mut poll_failures = 0u32;
        while !tasks.is_stopping() {
            let wait_ms = hb.load(SeqCst);
            let body = PollRequest {
                name: config.name.clone(),
                reports: Vec::new(),
                wait_ms,
                phase: Default::default(),
                ack: taken.ack(),
                tasks: Some(tasks.known()),
            };
            let within = poll_timeout(wait_ms, lost_after.load(SeqCst));
            match conn.post_within::<PollResponse>("poll", &body, within) {
                Ok(resp) => {
                    if poll_failures > 0 {
                        tracing::info!("reached the scheduler again");
                    }
                    poll_failures = 0;
                    taken.obey(&tasks, resp);
                }
                Err(_) if tasks.is_stopping() => {}
                Err(e @ Error::Refused { .. }) => {
                    tracing::warn!("the scheduler refused the poll, registering again: {e}");
                    break;
                }
                Err(e) => {
                    // Not reached (a cut link, a restart): try again at
                    // once, then with a short capped backoff, on fresh
                    // connections; the tasks keep running under their lease.
                    poll_failures += 1;
                    if poll_failures == 1 {
                        tracing::warn!("poll failed, retrying: {e}");
                    }
                    std::thread::sleep(retry_wait(poll_failures));
                }
            }
        }
    }
}

/// How long a poll that waits `wait_ms` for orders may take in all: the
/// wait, plus a second for the answer (less with a short lost-node
/// timeout), so that a dead connection is given up well before the node
/// would be declared lost.
fn poll_timeout(wait_ms: u64, lost_after_ms: u64) -> Duration {
    let slack = (lost_after_ms / 4).clamp(250, 1000);
    Duration::from_millis(wait_ms + slack)
}

/// A graceful stop: tell the scheduler (nothing new is placed here and the
/// orders not yet taken go back), end every task (SIGTERM, `grace`,
/// SIGKILL), let their reports go out, and tell the scheduler the node is
/// down. The scheduler may be unreachable: each step is bounded. Meanwhile
/// the worker keeps telling the scheduler it is stopping, every `every`,
/// which renews the tasks' lease.
fn stop(tasks: &Arc<Tasks>, conn: &Arc<Conn>, name: &str, grace: Duration, every: Duration) {
    let tell = |conn: &Conn, phase: WorkerPhase| {
        let body = PollRequest {
            name: name.to_string(),
            reports: Vec::new(),
            wait_ms: 0,
            phase,
            ack: None,
            tasks: None,
        };
        // Bounded: a worker cut off from its scheduler still stops its
        // tasks at once.
        let within = Duration::from_secs(2);
        if let Err(e) = conn.post_within::<PollResponse>("poll", &body, within) {
            tracing::warn!("cannot tell the scheduler this worker is {phase:?}: {e}");
            return false;
        }
        true
    };
    tasks.refuse_new();
    tell(conn, WorkerPhase::Stopping);
    let done = Arc::new(AtomicBool::new(false));
    let keep = {
        let (done, conn, name) = (done.clone(), conn.clone(), name.to_string());
        std::thread::spawn(move || {
            while !done.load(SeqCst) {
                std::thread::sleep(every);
                let body = PollRequest {
                    name: name.clone(),
                    reports: Vec::new(),
                    wait_ms: 0,
                    phase: WorkerPhase::Stopping,
                    ack: None,
                    tasks: None,
                };
                let _ = conn.post_within::<PollResponse>("poll", &body, Duration::from_secs(2));
            }
        })
    };
    tasks.stop_all(grace);
    // The reporter sends what the tasks' ends produced; wait for it, briefly.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while tasks.unreported() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    done.store(true, SeqCst);
    let _ = keep.join();
    tell(conn, WorkerPhase::Stopped);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_grant_is_for_one_task_one_key_and_until_it_expires() {
        let key = [7u8; 32];
        let msg = shoal_model::wire::log_grant_message("t.node0.attempt1", 1000);
        let sig = shoal_sigv4::hmac_sha256_hex(&key, msg.as_bytes());
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
