//! The worker's connection to its scheduler, behind the [`Scheduler`]
//! trait.

use crate::pki::TlsFiles;
use crate::Error;
use shoal_model::wire::{PollRequest, PollResponse, RegisterWorkerRequest, RegisterWorkerResponse};
use std::sync::Arc;
use std::time::Duration;

/// What the worker needs of its scheduler: registering and polling. The
/// worker talks to a real one over HTTP ([`HttpScheduler`]); the poll loop
/// (`poll.rs`) takes any, so that it can be tested without one.
pub trait Scheduler: Send + Sync {
    /// Where the scheduler is (for messages).
    fn endpoint(&self) -> &str;
    /// Register this node (again), giving up after `within`.
    fn register(
        &self,
        req: &RegisterWorkerRequest,
        within: Duration,
    ) -> Result<RegisterWorkerResponse, Error>;
    /// One poll: reports out, orders back, giving up after `within`.
    fn poll(&self, req: &PollRequest, within: Duration) -> Result<PollResponse, Error>;
}

/// The scheduler over HTTP (mutual TLS with a certificate). Every answer
/// renews the tasks' lease; a registration sets the lease's timing.
pub struct HttpScheduler {
    endpoint: String,
    tls: Option<TlsFiles>,
    /// Replaced after a failure, so that no request waits on a connection
    /// that died with a cut link.
    http: std::sync::Mutex<reqwest::blocking::Client>,
    /// Every answer renews it.
    lease: Arc<crate::fence::Lease>,
}

impl Scheduler for HttpScheduler {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn register(
        &self,
        req: &RegisterWorkerRequest,
        within: Duration,
    ) -> Result<RegisterWorkerResponse, Error> {
        let r: RegisterWorkerResponse = self.post_within("registerworker", req, within)?;
        let lease_ms = if r.lease_ms > 0 {
            r.lease_ms
        } else {
            r.lost_after_ms
        };
        self.lease.set_timing(lease_ms, r.fence_grace_ms);
        Ok(r)
    }

    fn poll(&self, req: &PollRequest, within: Duration) -> Result<PollResponse, Error> {
        self.post_within("poll", req, within)
    }
}

impl HttpScheduler {
    /// A connection to the scheduler at `scheduler` (`http://` or, with
    /// `tls`, `https://`) over `http`, the client made for it
    /// ([`crate::tls::scheduler_client`], which checks the certificates),
    /// renewing `lease`.
    pub fn new(
        scheduler: &str,
        tls: Option<TlsFiles>,
        http: reqwest::blocking::Client,
        lease: Arc<crate::fence::Lease>,
    ) -> HttpScheduler {
        HttpScheduler {
            endpoint: scheduler.trim_end_matches('/').to_string(),
            tls,
            http: std::sync::Mutex::new(http),
            lease,
        }
    }

    fn client(&self) -> reqwest::blocking::Client {
        self.http.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Drop the pooled connections (they may be dead).
    fn reset(&self) {
        if let Ok(c) = crate::tls::scheduler_client(&self.endpoint, self.tls.as_ref()) {
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
