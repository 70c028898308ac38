//! Shoal's client: one type, [`Client`], that sends the model's request
//! types ([`shoal_model::Operation`]) and parses the model's reply types.
//! The `shoal` CLI, the benchmarks and the launch agent (`shoal
//! launch-agent`, which asks a worker to run a command) all use it.
//!
//! Requests to a scheduler are signed with AWS Signature Version 4 when the
//! client has keys (see [`credentials`]), with the same code the scheduler
//! verifies with (`shoal-sigv4`). A worker's own server is reached over
//! plain HTTP, or over TLS verified against the cluster CA only.

use serde::de::DeserializeOwned;
use shoal_model as m;
use shoal_model::{ErrorBody, LogLocation, Operation};
use shoal_sigv4::{self as sigv4, Credentials, KeyStore};
use std::path::Path;
use std::time::Duration;

/// Default endpoint when neither `--endpoint` nor `SHOAL_ENDPOINT` is set.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8080";

/// The environment variable naming the CLI's credentials file.
pub const CREDENTIALS_ENV: &str = "SHOAL_CREDENTIALS";

/// How long a request to a scheduler may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What went wrong talking to a scheduler or a worker. Each says what to
/// do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The keys could not be read or are incomplete.
    #[error("{0}")]
    Credentials(String),
    /// The endpoint is not a URL.
    #[error(
        "the endpoint {0:?} is not a URL like http://HOST:PORT (set --endpoint or SHOAL_ENDPOINT)"
    )]
    Endpoint(String),
    /// The HTTP client could not be built (a bad CA certificate).
    #[error("{0}")]
    Setup(String),
    /// No connection, or it broke off.
    #[error("cannot reach {what} at {endpoint}{hint}: {source}")]
    Unreachable {
        /// "the scheduler" or "the worker".
        what: &'static str,
        /// Where.
        endpoint: String,
        /// What to check.
        hint: &'static str,
        /// The transport's error.
        source: reqwest::Error,
    },
    /// The server answered with an error.
    #[error("{kind}: {message}{hint}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The exception, e.g. `ClientException` (`error` for a worker's).
        kind: String,
        /// Its message.
        message: String,
        /// What to do, when the client knows (empty otherwise).
        hint: String,
    },
    /// The reply is not what the operation returns.
    #[error("the reply to {path} is not the expected JSON: {source}")]
    Decode {
        /// The request's path.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
}

/// This crate's results.
pub type Result<T> = std::result::Result<T, Error>;

/// The keys the CLI signs with: the first key of `file` (`--credentials`
/// or `SHOAL_CREDENTIALS`) if given, else `AWS_ACCESS_KEY_ID` and
/// `AWS_SECRET_ACCESS_KEY` (with `AWS_SESSION_TOKEN` if set), else none:
/// requests go unsigned.
pub fn credentials(file: Option<&Path>) -> Result<Option<Credentials>> {
    if let Some(f) = file {
        let keys = KeyStore::from_file(f).map_err(|e| Error::Credentials(e.to_string()))?;
        return Ok(keys.first());
    }
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Ok(Some(Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: var("AWS_SESSION_TOKEN"),
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(Error::Credentials(
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both, or neither"
                .into(),
        )),
        (None, Some(_)) => Err(Error::Credentials(
            "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; set both, or neither"
                .into(),
        )),
    }
}

/// An HTTP client that trusts only the cluster CA `ca_pem` (no built-in
/// roots), presents no certificate and speaks only HTTPS: for workers'
/// own servers.
fn tls_http(ca_pem: &str, timeout: Option<Duration>) -> Result<reqwest::blocking::Client> {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())
        .map_err(|e| Error::Setup(format!("the cluster CA certificate is not PEM: {e}")))?;
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .https_only(true)
        .build()
        .map_err(|e| Error::Setup(format!("cannot build the HTTPS client: {e}")))
}

fn plain_http(timeout: Option<Duration>) -> Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| Error::Setup(format!("cannot build the HTTP client: {e}")))
}

/// Talks to one scheduler, or to one worker's own server.
pub struct Client {
    endpoint: String,
    http: reqwest::blocking::Client,
    credentials: Option<Credentials>,
    region: String,
    /// "the scheduler" or "the worker", for errors.
    what: &'static str,
}

impl Client {
    /// A client for the scheduler at `endpoint` (e.g.
    /// `http://127.0.0.1:8080`) with the keys of the environment:
    /// `SHOAL_CREDENTIALS`, else `AWS_ACCESS_KEY_ID`… (see [`credentials`]).
    pub fn new(endpoint: &str) -> Result<Client> {
        let file = std::env::var_os(CREDENTIALS_ENV).filter(|f| !f.is_empty());
        Client::with_credentials(endpoint, credentials(file.as_deref().map(Path::new))?)
    }

    /// A client signing with the first key of the credentials file `file`.
    pub fn with_credentials_file(endpoint: &str, file: &Path) -> Result<Client> {
        Client::with_credentials(endpoint, credentials(Some(file))?)
    }

    /// A client signing with `credentials` (None: unsigned requests).
    pub fn with_credentials(endpoint: &str, credentials: Option<Credentials>) -> Result<Client> {
        let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| "us-east-1".into());
        Ok(Client {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            http: plain_http(Some(REQUEST_TIMEOUT))?,
            credentials,
            region,
            what: "the scheduler",
        })
    }

    /// A client for a worker's own server: `ADDRESS:PORT` over HTTP, or
    /// `https://ADDRESS:PORT` verified against the cluster CA `ca_pem`.
    /// Its requests (a launch-agent command) may take as long as they run.
    pub fn worker(address: &str, ca_pem: Option<&str>) -> Result<Client> {
        let (endpoint, http) = match address.strip_prefix("https://") {
            Some(a) => {
                let ca = ca_pem.ok_or_else(|| {
                    Error::Setup(format!(
                        "the worker at {address} speaks TLS, and no cluster CA was given to verify it"
                    ))
                })?;
                (format!("https://{a}"), tls_http(ca, None)?)
            }
            None => (format!("http://{address}"), plain_http(None)?),
        };
        Ok(Client {
            endpoint,
            http,
            credentials: None,
            region: String::new(),
            what: "the worker",
        })
    }

    /// Send `req`; its reply.
    pub fn call<O: Operation>(&self, req: &O) -> Result<O::Response> {
        let path = O::path();
        let text = self.post(&path, req)?;
        parse(&path, &text)
    }

    /// DescribeJobs of one job; None if the scheduler does not know it.
    pub fn describe_one(&self, id: &str) -> Result<Option<m::JobDetail>> {
        let resp = self.call(&m::DescribeJobsRequest {
            jobs: vec![id.to_string()],
        })?;
        Ok(resp.jobs.into_iter().next())
    }

    /// DescribeJobs of `ids` (in pages of 100), in the scheduler's order.
    pub fn describe_all(&self, ids: &[String]) -> Result<Vec<m::JobDetail>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(100) {
            let resp = self.call(&m::DescribeJobsRequest {
                jobs: chunk.to_vec(),
            })?;
            out.extend(resp.jobs);
        }
        Ok(out)
    }

    /// Every page of a ListJobs call.
    pub fn list_all(&self, mut req: m::ListJobsRequest) -> Result<Vec<m::JobSummary>> {
        let mut out = Vec::new();
        req.max_results = Some(1000);
        loop {
            let resp = self.call(&req)?;
            out.extend(resp.job_summary_list);
            match resp.next_token {
                Some(t) if !t.is_empty() => req.next_token = Some(t),
                _ => return Ok(out),
            }
        }
    }

    /// Every job queue.
    pub fn queues(&self) -> Result<Vec<m::JobQueueDetail>> {
        Ok(self
            .call(&m::DescribeJobQueuesRequest::default())?
            .job_queues)
    }

    /// How many workers are registered and not DOWN.
    pub fn nodes_up(&self) -> Result<usize> {
        let nodes = self.call(&m::ListNodesRequest {})?.nodes;
        Ok(nodes.iter().filter(|n| n.state != "DOWN").count())
    }

    /// Poll DescribeJobs (backing off to 1 s) until job `id` is SUCCEEDED or
    /// FAILED; its last description. An unknown job is an error.
    pub fn wait_for(&self, id: &str) -> Result<m::JobDetail> {
        let mut delay = Duration::from_millis(20);
        loop {
            let Some(job) = self.describe_one(id)? else {
                return Err(Error::Api {
                    status: 400,
                    kind: "ClientException".into(),
                    message: format!("job {id} is not known to the scheduler"),
                    hint: String::new(),
                });
            };
            if m::is_finished(&job.status) {
                return Ok(job);
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    /// A task's output (`ID` or `ID#NODE`) from byte `offset` on.
    pub fn log(&self, job: &str, offset: u64) -> Result<Vec<u8>> {
        let loc = self.call(&m::LogsRequest {
            job_id: job.to_string(),
        })?;
        fetch_log(&loc, offset)
    }

    fn post(&self, path: &str, body: &impl serde::Serialize) -> Result<String> {
        let url = format!("{}{}", self.endpoint, path);
        let parsed =
            reqwest::Url::parse(&url).map_err(|_| Error::Endpoint(self.endpoint.clone()))?;
        let body = serde_json::to_vec(body).map_err(|source| Error::Decode {
            path: path.to_string(),
            source,
        })?;
        let mut req = self
            .http
            .post(parsed.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(c) = &self.credentials {
            let host = parsed.host_str().unwrap_or_default();
            let host = match parsed.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            };
            let added = sigv4::sign(
                &sigv4::SigningParams {
                    credentials: c,
                    region: &self.region,
                    service: "batch",
                    time: sigv4::now_secs(),
                },
                "POST",
                parsed.path(),
                parsed.query().unwrap_or(""),
                &[("host", &host), ("content-type", "application/json")],
                &body,
            );
            req = req.header(reqwest::header::HOST, host);
            for (n, v) in added {
                req = req.header(n, v);
            }
        }
        let resp = req.body(body).send().map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        let text = resp.text().map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            return Err(self.api_error(status, &text));
        }
        Ok(text)
    }

    fn unreachable(&self, source: reqwest::Error) -> Error {
        Error::Unreachable {
            what: self.what,
            endpoint: self.endpoint.clone(),
            hint: if self.what == "the scheduler" {
                " (is `shoal scheduler` running there? set --endpoint or SHOAL_ENDPOINT)"
            } else {
                ""
            },
            source,
        }
    }

    fn api_error(&self, status: reqwest::StatusCode, text: &str) -> Error {
        let body: ErrorBody = serde_json::from_str(text).unwrap_or_else(|_| ErrorBody {
            kind: None,
            message: text.to_string(),
        });
        let hint = if status == reqwest::StatusCode::FORBIDDEN
            && self.credentials.is_none()
            && self.what == "the scheduler"
        {
            "\nhint: this shoal client has no keys, so its requests are unsigned; \
             give it the scheduler's keys with --credentials FILE or SHOAL_CREDENTIALS=FILE \
             (a file of `ACCESS_KEY_ID SECRET` lines), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                .to_string()
        } else {
            String::new()
        };
        Error::Api {
            status: status.as_u16(),
            kind: body.kind.unwrap_or_else(|| "error".into()),
            message: body.message,
            hint,
        }
    }
}

fn parse<T: DeserializeOwned>(path: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|source| Error::Decode {
        path: path.to_string(),
        source,
    })
}

/// Read a task's output from byte `offset` on, through the worker that
/// ran it, with the scheduler's grant in `loc` (the reply to
/// [`shoal_model::LogsRequest`]).
pub fn fetch_log(loc: &LogLocation, offset: u64) -> Result<Vec<u8>> {
    let mut url = format!("{}/{}?offset={offset}", loc.url, loc.task.dir_name());
    if let Some(grant) = &loc.grant {
        url = format!("{url}&{grant}");
    }
    let http = if url.starts_with("https://") {
        let ca = loc.ca.as_deref().ok_or_else(|| {
            Error::Setup(
                "the worker speaks TLS, but the scheduler's reply holds no CA to verify it".into(),
            )
        })?;
        tls_http(ca, Some(REQUEST_TIMEOUT))?
    } else {
        plain_http(Some(REQUEST_TIMEOUT))?
    };
    let unreachable = |source| Error::Unreachable {
        what: "the worker",
        endpoint: loc.node.clone(),
        hint: " for the log",
        source,
    };
    let resp = http.get(&url).send().map_err(unreachable)?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Error::Api {
            status: status.as_u16(),
            kind: status.to_string(),
            message: format!(
                "worker {} has no log for {}: {}",
                loc.node,
                loc.task.job_id,
                resp.text().unwrap_or_default()
            ),
            hint: String::new(),
        });
    }
    Ok(resp.bytes().map_err(unreachable)?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_with_tls_needs_the_ca() {
        let e = Client::worker("https://10.0.0.1:7000", None).err().unwrap();
        assert!(e.to_string().contains("no cluster CA"), "{e}");
        assert!(Client::worker("10.0.0.1:7000", None).is_ok());
    }

    #[test]
    fn error_replies_keep_their_kind_and_message() {
        let c = Client::with_credentials("http://127.0.0.1:1", None).unwrap();
        let e = c.api_error(
            reqwest::StatusCode::BAD_REQUEST,
            r#"{"__type":"ClientException","message":"jobQueue: no such queue"}"#,
        );
        assert_eq!(e.to_string(), "ClientException: jobQueue: no such queue");
        let e = c.api_error(reqwest::StatusCode::FORBIDDEN, r#"{"message":"no"}"#);
        assert!(
            e.to_string()
                .contains("hint: this shoal client has no keys"),
            "{e}"
        );
        let w = Client::worker("10.0.0.1:7000", None).unwrap();
        let e = w.api_error(
            reqwest::StatusCode::FORBIDDEN,
            r#"{"message":"wrong token"}"#,
        );
        assert_eq!(e.to_string(), "error: wrong token");
    }

    #[test]
    fn a_scheduler_that_is_not_there_is_named() {
        let c = Client::with_credentials("http://127.0.0.1:1", None).unwrap();
        let e = c
            .call(&shoal_model::ListNodesRequest {})
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("cannot reach the scheduler at http://127.0.0.1:1"),
            "{e}"
        );
        assert!(e.contains("SHOAL_ENDPOINT"), "{e}");
    }
}
