//! Shoal's scheduler daemon.
//!
//! - [`http`]: AWS Batch's rest-json API (axum).
//! - [`actor`]: one thread that owns the state, drives the scheduling core and
//!   group-commits every change to SQLite before replying.
//! - [`state`]: the state machine behind every API operation.
//! - [`store`]: the SQLite database in the state directory.
#![warn(missing_docs)]

pub mod actor;
pub mod api;
pub mod http;
pub mod mailbox;
pub mod state;
pub mod store;

pub use state::{Config, Timing};

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
}

/// A running scheduler: its address and a way to stop it.
pub struct Running {
    /// The address the API listens on.
    pub addr: std::net::SocketAddr,
    actor: actor::ActorHandle,
    actor_thread: Option<std::thread::JoinHandle<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
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

/// Load the state, bind the listener and serve in the background.
pub async fn start(config: Config) -> Result<Running, Error> {
    let listen = config.listen;
    let mail = mailbox::Mailboxes::default();
    let (actor, actor_thread) = actor::spawn(config, mail.clone())?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Io(format!("cannot listen on {listen}"), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Io("cannot read the listening address".into(), e))?;
    let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
    let app = http::router(http::AppState {
        actor: actor.clone(),
        mail,
    });
    let server = tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = r {
            tracing::error!("http server: {e}");
        }
    });
    Ok(Running {
        addr,
        actor,
        actor_thread: Some(actor_thread),
        shutdown: Some(shutdown),
        server,
    })
}
