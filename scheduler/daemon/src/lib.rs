//! Shoal's scheduler daemon.
//!
//! - [`http`]: AWS Batch's rest-json API (axum).
//! - [`actor`]: one thread that owns the state, drives the scheduling core and
//!   group-commits every change to SQLite before replying.
//! - [`state`]: the state machine behind every API operation.
//! - [`store`]: the SQLite database in the state directory.
//! - [`auth`]: AWS Signature Version 4 (the `shoal-sigv4` crate, shared
//!   with the client) on every client request when the scheduler has
//!   access keys.
//! - [`tls`]: the worker listener (mutual TLS) for the worker protocol.
//! - [`metrics`]: Prometheus metrics on the metrics listener.
#![warn(missing_docs)]

pub mod actor;
pub mod api;
pub mod auth;
pub mod body;
pub mod config;
pub mod http;
pub mod limits;
pub mod mailbox;
pub mod metrics;
mod serve;
pub mod slurm;
pub mod state;
pub mod store;
pub mod tls;

pub use config::{Config, MetricsListen, Timing, DEFAULT_METRICS_LISTEN};

/// Errors starting or running the daemon.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state database.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// An I/O failure, with what was being done.
    #[error("{0}")]
    Io(String, #[source] std::io::Error),
    /// Stored state that no longer makes sense.
    #[error("cannot load the stored state: {0}")]
    Load(String),
    /// A configuration the scheduler refuses to run with.
    #[error("{0}")]
    Config(String),
    /// The worker listener's certificates.
    #[error("worker listener TLS: {0}")]
    Tls(String),
}

/// A running scheduler: its address and a way to stop it.
pub struct Running {
    /// The address the API listens on.
    pub addr: std::net::SocketAddr,
    /// The address of the worker listener (mutual TLS), when configured.
    pub worker_addr: Option<std::net::SocketAddr>,
    /// The address of the metrics listener, when it serves.
    pub metrics_addr: Option<std::net::SocketAddr>,
    actor: actor::ActorHandle,
    actor_thread: Option<std::thread::JoinHandle<()>>,
    shutdown: Option<tokio::sync::watch::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stop serving, let the actor finish what it has and wait for both.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.server).await;
        self.actor.shutdown();
        if let Some(t) = self.actor_thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }

    /// Wait until the server ends (it ends only on `stop`).
    pub async fn wait(&mut self) {
        let _ = (&mut self.server).await;
    }
}

/// Protected mode: without access keys the scheduler listens only on a
/// loopback address, unless `insecure_no_auth`. Logs which mode it runs in.
fn check_auth(config: &Config) -> Result<Option<std::sync::Arc<shoal_sigv4::KeyStore>>, Error> {
    let listen = config.listen;
    match &config.credentials {
        Some(keys) if !keys.is_empty() => {
            tracing::info!(
                "authentication: requests must be signed (AWS SigV4) with one of {} access key{} from {}",
                keys.len(),
                if keys.len() == 1 { "" } else { "s" },
                keys.source
            );
            Ok(Some(std::sync::Arc::new(keys.clone())))
        }
        _ if listen.ip().is_loopback() => {
            tracing::warn!(
                "no credentials configured: the API on {listen} accepts any request, signed or not, \
                 from anyone who can connect (protected mode: loopback addresses only). \
                 Pass --credentials FILE (or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) to require signatures"
            );
            Ok(None)
        }
        _ if config.insecure_no_auth => {
            tracing::warn!(
                "INSECURE: --insecure-no-auth: the API on {listen} accepts unsigned requests from \
                 anyone who can reach this address, and jobs run whatever they say on the workers. \
                 Pass --credentials FILE to require AWS SigV4 signatures"
            );
            Ok(None)
        }
        _ => Err(Error::Config(format!(
            "refusing to listen on {listen} without credentials: anyone who can reach that address \
             could submit jobs, which run commands on the workers. Pass --credentials FILE (lines \
             `ACCESS_KEY_ID SECRET`) or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY so that \
             requests must be signed, listen on a loopback address (127.0.0.1), or pass \
             --insecure-no-auth to run without authentication anyway"
        ))),
    }
}

/// Bind the metrics listener. The default address, taken, is no error:
/// the scheduler runs without metrics and says so.
async fn bind_metrics(m: MetricsListen) -> Result<Option<tokio::net::TcpListener>, Error> {
    match tokio::net::TcpListener::bind(m.addr).await {
        Ok(l) => {
            if !m.addr.ip().is_loopback() {
                tracing::warn!(
                    "metrics on {} answer anyone who can reach that address, without \
                     authentication (queue, job and node names); keep it on a network only \
                     your monitoring reaches",
                    m.addr
                );
            }
            Ok(Some(l))
        }
        Err(e) if m.default && e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::warn!(
                "no metrics: {} is in use (another scheduler on this machine?); pass \
                 --metrics-listen ADDR to serve them elsewhere, or --metrics-listen none",
                m.addr
            );
            Ok(None)
        }
        Err(e) => Err(Error::Io(
            format!(
                "cannot serve metrics on {} (--metrics-listen; `none` serves none)",
                m.addr
            ),
            e,
        )),
    }
}

/// Load the state, bind the listeners and serve in the background.
pub async fn start(mut config: Config) -> Result<Running, Error> {
    let listen = config.listen;
    let keys = check_auth(&config)?;
    let insecure_no_auth = config.insecure_no_auth;
    // Certificates first: a mistake there should stop the start at once.
    let worker_tls = match &config.worker_tls {
        Some(t) => Some((t.listen, tls::server_config(t)?)),
        None => None,
    };
    let metrics_listen = config.metrics;
    let (slurm_tx, slurm_rx) = std::sync::mpsc::channel();
    config.slurm_tx = Some(slurm_tx);
    let state_dir = config.state_dir.clone();
    let ca_dir = config
        .worker_tls
        .as_ref()
        .and_then(|t| t.ca.parent().map(|p| p.to_path_buf()));
    let mail = mailbox::Mailboxes::default();
    let metrics = metrics::Metrics::default();
    let (actor, actor_thread) = actor::spawn(config, mail.clone(), metrics.clone())?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Io(format!("cannot listen on {listen}"), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Io("cannot read the listening address".into(), e))?;
    let worker_listener = match worker_tls {
        Some((at, server_config)) => Some(tls::bind(at, server_config).await?),
        None => None,
    };
    let worker_addr = worker_listener
        .as_ref()
        .map(|l| axum::serve::Listener::local_addr(l).map(|p| p.addr))
        .transpose()
        .map_err(|e| Error::Io("cannot read the worker listener's address".into(), e))?;
    // The Slurm thread of MANAGED environments: idle unless there are
    // some; it ends with the actor (the last sender).
    slurm::spawn(
        slurm::SlurmConfig {
            state_dir,
            ca_dir,
            worker_url: worker_addr.map(|a| format!("https://{a}")),
            shoal: std::env::current_exe().unwrap_or_else(|_| std::path::PathBuf::from("shoal")),
        },
        slurm_rx,
        actor.clone(),
    )
    .map_err(|e| Error::Io("cannot start the Slurm thread".into(), e))?;
    let metrics_listener = match metrics_listen {
        Some(m) => bind_metrics(m).await?,
        None => None,
    };
    let metrics_addr = metrics_listener
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()
        .map_err(|e| Error::Io("cannot read the metrics listener's address".into(), e))?;
    let (shutdown, rx) = tokio::sync::watch::channel(());
    let api = http::router(http::AppState {
        actor: actor.clone(),
        mail,
        keys,
        metrics,
    });
    let scrape = http::metrics_router(actor.clone());
    // Workers join over mutual TLS; on the plain listener only where that
    // is safe: loopback (one machine), or when the operator said insecure.
    let plain = match worker_addr {
        Some(w) => tls::refuse_worker_ops(Some(w)).merge(api.clone()),
        None if listen.ip().is_loopback() || insecure_no_auth => api.clone(),
        None => tls::refuse_worker_ops(None).merge(api.clone()),
    };
    // Outermost: every body is read, bounded in time and size, first.
    let read_body = || axum::middleware::from_fn(body::read_body);
    let plain = plain.layer(read_body());
    let server = tokio::spawn(async move {
        let plain = serve::serve(listener, plain, |a: &std::net::SocketAddr| *a, rx.clone());
        let workers = async {
            if let Some(l) = worker_listener {
                let app = tls::worker_router(api).layer(read_body());
                serve::serve(l, app, tls::Peer::of, rx.clone()).await
            }
        };
        let metrics = async {
            if let Some(l) = metrics_listener {
                let app = scrape.layer(read_body());
                serve::serve(l, app, |a: &std::net::SocketAddr| *a, rx.clone()).await
            }
        };
        tokio::join!(plain, workers, metrics);
    });
    Ok(Running {
        addr,
        worker_addr,
        metrics_addr,
        actor,
        actor_thread: Some(actor_thread),
        shutdown: Some(shutdown),
        server,
    })
}
