//! TLS of a worker, both ways: the client it reaches the scheduler's
//! worker listener with (mutual TLS under the cluster CA), and the
//! configuration of its own server (`/logs`, `/exec`) with this node's
//! certificate.

use crate::pki::TlsFiles;
use crate::Error;
use std::sync::Arc;
use std::time::Duration;

/// How long a connection to the scheduler may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The HTTP client for the scheduler at `scheduler`: with `tls`, it trusts
/// only the cluster CA and presents this node's certificate.
pub fn scheduler_client(
    scheduler: &str,
    tls: Option<&TlsFiles>,
) -> Result<reqwest::blocking::Client, Error> {
    // Each request sets its own timeout (below the lost-node timeout);
    // a connection that cannot be made in half a second is tried anew.
    let builder = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .connect_timeout(CONNECT_TIMEOUT);
    let https = scheduler.starts_with("https://");
    let builder = match tls {
        None if https => {
            return Err(Error::Config(format!(
                "--scheduler {} is https: give this worker its certificate with --tls-dir DIR (or --ca, --cert and --key)",
                scheduler
            )))
        }
        None => builder,
        Some(_) if !https => {
            return Err(Error::Config(format!(
                "--scheduler {}: with a certificate, give the scheduler's worker listener as https://ADDRESS:PORT",
                scheduler
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

/// The TLS configuration of the worker's own server: this node's
/// certificate, which must be valid, under the cluster CA, for `address`
/// (the address the scheduler hands to clients). No client certificates:
/// `/exec` checks the job's token and `/logs` the scheduler's grant.
pub fn server_config(t: &TlsFiles, address: &str) -> Result<Arc<rustls::ServerConfig>, Error> {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};
    let bad = |what: String| Error::Config(what);
    let pki = |e: crate::pki::PkiError| Error::Config(e.to_string());
    let provider = crate::pki::provider();
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
    crate::pki::server_config(&t.cert, &t.key, None, provider).map_err(pki)
}
