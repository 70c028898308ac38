//! The worker's own HTTP server: `GET /logs/{task-dir}` serves a task's
//! output to a holder of the scheduler's grant, `POST /exec` runs the MPI
//! launch agent's command in a task (`shoal launch-agent`, through
//! `shoal-client`). Over TLS when the node has a certificate.

use crate::task::Tasks;
use crate::Error;
use shoal_pki::TlsListener;
use std::path::PathBuf;
use std::sync::Arc;

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
pub fn serve(
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
