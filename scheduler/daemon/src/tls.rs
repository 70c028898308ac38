//! The worker listener: the worker protocol (`/shoal/v1/registerworker`,
//! `/shoal/v1/poll`) over mutual TLS. A worker must present a certificate
//! signed by the cluster CA, and it registers and polls only under the name
//! its certificate carries (CN), so one node cannot act for another.
//!
//! With a worker listener configured, the plain API listener refuses the
//! worker operations (403), so that the CA is the only way in.

use crate::limits::WORKER_PATHS;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
pub use shoal_pki::TlsListener;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the worker listener listens, and its certificates.
#[derive(Debug, Clone)]
pub struct WorkerTls {
    /// Address of the worker listener.
    pub listen: SocketAddr,
    /// The cluster CA (PEM): workers' certificates must be signed by it.
    pub ca: PathBuf,
    /// The scheduler's certificate (PEM; its SANs must hold the address or
    /// name workers use to reach it).
    pub cert: PathBuf,
    /// The scheduler's private key (PEM).
    pub key: PathBuf,
}

fn tls_err(what: String) -> crate::Error {
    crate::Error::Tls(what)
}

/// The rustls server configuration: the scheduler's certificate, client
/// certificates required and verified against the CA (ring provider).
pub fn server_config(t: &WorkerTls) -> Result<Arc<rustls::ServerConfig>, crate::Error> {
    let pki = |e: shoal_pki::PkiError| tls_err(e.to_string());
    let provider = shoal_pki::provider();
    let roots = shoal_pki::root_store(&t.ca).map_err(pki)?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| {
        tls_err(format!(
            "cannot verify clients against {}: {e}",
            t.ca.display()
        ))
    })?;
    shoal_pki::server_config(&t.cert, &t.key, Some(verifier), provider).map_err(pki)
}

/// Who is at the other end of a worker-listener connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its address.
    pub addr: SocketAddr,
    /// The common name of its (verified) certificate.
    pub name: Option<String>,
    /// The addresses and DNS names its certificate names (subject
    /// alternative names).
    pub sans: Vec<String>,
}

/// The common name (CN) of a DER certificate.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// The IP addresses (as text) and DNS names a DER certificate names.
pub fn alt_names(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    ext.value
        .general_names
        .iter()
        .filter_map(|g| match g {
            GeneralName::DNSName(d) => Some(d.to_string()),
            GeneralName::IPAddress(b) => match b.len() {
                4 => Some(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
                16 => <[u8; 16]>::try_from(*b)
                    .ok()
                    .map(|a| std::net::Ipv6Addr::from(a).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The worker listener: bind `addr` and accept over TLS with `config`.
pub async fn bind(
    addr: SocketAddr,
    config: Arc<rustls::ServerConfig>,
) -> Result<TlsListener, crate::Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| crate::Error::Io(format!("cannot listen on {addr}"), e))?;
    Ok(TlsListener::start(listener, config, "worker listener"))
}

impl Peer {
    /// Who a worker-listener connection is from: its address and what its
    /// verified certificate names.
    pub fn of(p: &shoal_pki::TlsPeer) -> Peer {
        Peer {
            addr: p.addr,
            name: p.cert.as_deref().and_then(common_name),
            sans: p.cert.as_deref().map(alt_names).unwrap_or_default(),
        }
    }
}

/// A 403 in AWS's error shape.
pub fn access_denied(message: String) -> Response {
    crate::api::ApiError::AccessDenied(message).into_response()
}

/// The worker listener's router: `api` (the whole API) narrowed to the
/// worker operations, each under the caller's certificate name only.
pub fn worker_router(api: Router) -> Router {
    api.layer(axum::middleware::from_fn(worker_ops_only))
}

async fn worker_ops_only(
    ConnectInfo(peer): ConnectInfo<Peer>,
    req: Request,
    next: Next,
) -> Response {
    if !WORKER_PATHS.contains(&req.uri().path()) {
        return access_denied(format!(
            "{} is not served on the worker listener; use the scheduler's API endpoint",
            req.uri().path()
        ));
    }
    let Some(cn) = peer.name.clone() else {
        return access_denied("the client certificate has no common name (CN)".into());
    };
    let register = req.uri().path() == WORKER_PATHS[0];
    let (parts, body) = req.into_parts();
    let mut bytes = match axum::body::to_bytes(body, crate::limits::MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            return crate::api::ApiError::Client(format!("cannot read the request body: {e}"))
                .into_response()
        }
    };
    #[derive(serde::Deserialize)]
    struct Named {
        name: Option<String>,
        address: Option<String>,
    }
    // A body that does not parse is left to the handler, which says why.
    if let Ok(Named { name, address }) = serde_json::from_slice::<Named>(&bytes) {
        // An allocation's certificate (CN `PREFIX*`, issued by the
        // scheduler for one Slurm allocation) covers the names that begin
        // with PREFIX: one per node of it.
        let covers = |n: &str| match cn.strip_suffix(shoal_pki::ALLOCATION_WILDCARD) {
            Some(prefix) => n.starts_with(prefix) && n.len() > prefix.len(),
            None => n == cn,
        };
        if let Some(name) = name.filter(|n| !covers(n)) {
            return access_denied(format!(
                "this worker's certificate is issued to {cn:?}; it may register and poll only as {cn:?}, not {name:?}"
            ));
        }
        // Where the others will reach it (MPI, logs) must be an address its
        // certificate names, or a worker could send them to another host.
        if let Some(address) = address.filter(|a| !peer.sans.contains(a)) {
            return access_denied(format!(
                "the certificate of {cn:?} does not name the address {address:?} it registers with \
                 (it names: {}); reissue it with `shoal ca issue DIR {cn} --ip {address} --force`",
                if peer.sans.is_empty() { "nothing".to_string() } else { peer.sans.join(", ") }
            ));
        }
    }
    // The registration says which allocation's certificate it came with
    // (none: an ordinary one), whatever the worker wrote there.
    if register {
        if let Ok(serde_json::Value::Object(mut body)) = serde_json::from_slice(&bytes) {
            body.remove("allocation");
            if let Some(prefix) = cn.strip_suffix(shoal_pki::ALLOCATION_WILDCARD) {
                body.insert("allocation".into(), prefix.into());
            }
            if let Ok(b) = serde_json::to_vec(&body) {
                bytes = b.into();
            }
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The plain listener's refusal of the worker operations when the worker
/// listener is on.
pub fn refuse_worker_ops(worker_addr: Option<SocketAddr>) -> Router {
    let message = match worker_addr {
        Some(worker_addr) => format!(
            "worker operations are served only on the scheduler's TLS worker listener: \
             start the worker with --scheduler https://{worker_addr} and its certificate \
             (--tls-dir DIR, or --ca, --cert and --key)"
        ),
        None => "this scheduler listens beyond loopback without a TLS worker listener, so it \
                 does not let workers join unauthenticated: start it with --worker-listen ADDR \
                 --tls-dir DIR (certificates from `shoal ca init` / `shoal ca issue`), or with \
                 --insecure-no-auth"
            .to_string(),
    };
    let refuse = move || {
        let message = message.clone();
        async move { access_denied(message) }
    };
    let mut r = Router::new();
    for op in WORKER_PATHS {
        r = r.route(op, axum::routing::post(refuse.clone()));
    }
    r
}
