//! A small blocking client for the scheduler's HTTP API.

use anyhow::{anyhow, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Default endpoint when neither `--endpoint` nor `SHOAL_ENDPOINT` is set.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8080";

/// Talks to one scheduler.
pub struct Client {
    endpoint: String,
    http: reqwest::blocking::Client,
}

impl Client {
    /// A client for `endpoint` (e.g. `http://127.0.0.1:8080`).
    pub fn new(endpoint: &str) -> Result<Client> {
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Client {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            http,
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
        let resp = self.http.post(&url).json(body).send().with_context(|| {
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
            return Err(anyhow!("{kind}: {msg}"));
        }
        serde_json::from_str(&text)
            .with_context(|| format!("the scheduler's reply to {path} is not the expected JSON"))
    }
}
