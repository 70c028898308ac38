//! A small blocking client for the scheduler's HTTP API. It signs every
//! request with AWS Signature Version 4 when it has keys (see
//! [`credentials`]), with the same code the scheduler verifies with
//! (`shoal_scheduler::sigv4`).

use anyhow::{anyhow, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use shoal_scheduler::sigv4::{self, Credentials, KeyStore};
use std::path::Path;

/// Default endpoint when neither `--endpoint` nor `SHOAL_ENDPOINT` is set.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8080";

/// The environment variable naming the CLI's credentials file.
pub const CREDENTIALS_ENV: &str = "SHOAL_CREDENTIALS";

/// The keys the CLI signs with: the first key of `file` (`--credentials`
/// or `SHOAL_CREDENTIALS`) if given, else `AWS_ACCESS_KEY_ID` and
/// `AWS_SECRET_ACCESS_KEY` (with `AWS_SESSION_TOKEN` if set), else none:
/// requests go unsigned.
pub fn credentials(file: Option<&Path>) -> Result<Option<Credentials>> {
    if let Some(f) = file {
        let keys = KeyStore::from_file(f)?;
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
        (Some(_), None) => Err(anyhow!(
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both, or neither"
        )),
        (None, Some(_)) => Err(anyhow!(
            "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; set both, or neither"
        )),
    }
}

/// Talks to one scheduler.
pub struct Client {
    endpoint: String,
    http: reqwest::blocking::Client,
    credentials: Option<Credentials>,
    region: String,
}

impl Client {
    /// A client for `endpoint` (e.g. `http://127.0.0.1:8080`) with the keys
    /// of the environment: `SHOAL_CREDENTIALS`, else `AWS_ACCESS_KEY_ID`…
    /// (see [`credentials`]).
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
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .context("cannot build the HTTP client")?;
        let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| "us-east-1".into());
        Ok(Client {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            http,
            credentials,
            region,
        })
    }

    /// Call AWS Batch operation `op` (e.g. `submitjob`).
    pub fn aws<T: DeserializeOwned>(&self, op: &str, body: &impl Serialize) -> Result<T> {
        self.post(&format!("/v1/{op}"), body)
    }

    /// Call one of Shoal's own operations (e.g. `listnodes`).
    pub fn shoal<T: DeserializeOwned>(&self, op: &str, body: &impl Serialize) -> Result<T> {
        self.post(&format!("/shoal/v1/{op}"), body)
    }

    fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        let url = format!("{}{}", self.endpoint, path);
        let parsed = reqwest::Url::parse(&url).with_context(|| {
            format!(
                "the endpoint {:?} is not a URL like http://HOST:PORT (set --endpoint or SHOAL_ENDPOINT)",
                self.endpoint
            )
        })?;
        let body = serde_json::to_vec(body).context("cannot encode the request")?;
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
        let resp = req.body(body).send().with_context(|| {
            format!(
                "cannot reach the scheduler at {}; is `shoal scheduler` running there? \
                 (set --endpoint or SHOAL_ENDPOINT)",
                self.endpoint
            )
        })?;
        let status = resp.status();
        let text = resp.text().context("cannot read the scheduler's reply")?;
        if !status.is_success() {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let kind = v["__type"].as_str().unwrap_or("error");
            let msg = v["message"].as_str().unwrap_or(&text);
            if status == reqwest::StatusCode::FORBIDDEN && self.credentials.is_none() {
                return Err(anyhow!(
                    "{kind}: {msg}\nhint: this shoal client has no keys, so its requests are unsigned; \
                     give it the scheduler's keys with --credentials FILE or SHOAL_CREDENTIALS=FILE \
                     (a file of `ACCESS_KEY_ID SECRET` lines), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                ));
            }
            return Err(anyhow!("{kind}: {msg}"));
        }
        serde_json::from_str(&text)
            .with_context(|| format!("the scheduler's reply to {path} is not the expected JSON"))
    }
}
