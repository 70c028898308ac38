//! `shoal export --swf`: the scheduler's finished jobs as a Standard Workload
//! Format trace, so that `shoal plan` can replay an operator's real workload.

use crate::client::Client;
use anyhow::Result;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// vCPUs of one node of a job, from its `container.resourceRequirements`
/// (or legacy `vcpus`); 1 when unset, as Shoal schedules it.
fn vcpus_of(container: &Value) -> u64 {
    container["resourceRequirements"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["type"] == "VCPU")
        .and_then(|r| r["value"].as_str()?.parse().ok())
        .or_else(|| container["vcpus"].as_u64())
        .unwrap_or(1)
}

fn all_jobs(client: &Client, queue: &str, status: &str) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({ "jobQueue": queue, "jobStatus": status, "maxResults": 1000 });
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let v: Value = client.aws("listjobs", &body)?;
        for j in v["jobSummaryList"].as_array().into_iter().flatten() {
            if let Some(id) = j["jobId"].as_str() {
                ids.push(id.to_string());
            }
        }
        match v["nextToken"].as_str() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(ids),
        }
    }
}

/// Build the SWF text of every finished job created at or after `since`
/// (epoch ms).
pub fn swf(client: &Client, since: u64) -> Result<String> {
    let queues: Value = client.aws("describejobqueues", &json!({}))?;
    let queue_names: Vec<String> = queues["jobQueues"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|q| q["jobQueueName"].as_str().map(String::from))
        .collect();
    let mut jobs: Vec<(usize, Value)> = Vec::new();
    for (qi, q) in queue_names.iter().enumerate() {
        for status in ["SUCCEEDED", "FAILED"] {
            let mut ids = all_jobs(client, q, status)?;
            // Array jobs: the children are the jobs that ran.
            let mut kids = Vec::new();
            for chunk in ids.chunks(100) {
                let v: Value = client.aws("describejobs", &json!({ "jobs": chunk }))?;
                for j in v["jobs"].as_array().into_iter().flatten() {
                    if j["arrayProperties"]["size"].is_u64()
                        && j["arrayProperties"]["index"].is_null()
                    {
                        let parent = j["jobId"].as_str().unwrap_or_default().to_string();
                        let n = j["arrayProperties"]["size"].as_u64().unwrap_or(0);
                        kids.extend((0..n).map(|i| format!("{parent}:{i}")));
                    } else {
                        jobs.push((qi + 1, j.clone()));
                    }
                }
            }
            ids.clear();
            for chunk in kids.chunks(100) {
                let v: Value = client.aws("describejobs", &json!({ "jobs": chunk }))?;
                jobs.extend(
                    v["jobs"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|j| (qi + 1, j.clone())),
                );
            }
        }
    }
    jobs.retain(|(_, j)| j["createdAt"].as_u64().unwrap_or(0) >= since);
    let never_ran = jobs
        .iter()
        .filter(|(_, j)| j["startedAt"].as_u64().is_none())
        .count();
    jobs.retain(|(_, j)| j["startedAt"].as_u64().is_some() && j["stoppedAt"].as_u64().is_some());
    jobs.sort_by_key(|(_, j)| j["createdAt"].as_u64().unwrap_or(0));
    let nodes: Value = client.shoal("listnodes", &json!({}))?;
    let max_procs: u64 = nodes["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["vcpus"].as_u64())
        .sum();
    let start = jobs
        .first()
        .map(|(_, j)| j["createdAt"].as_u64().unwrap_or(0))
        .unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out, "; Version: 2.2");
    let _ = writeln!(out, "; Computer: Shoal");
    let _ = writeln!(out, "; Installation: exported by `shoal export --swf`");
    let _ = writeln!(out, "; UnixStartTime: {}", start / 1000);
    let _ = writeln!(out, "; MaxJobs: {}", jobs.len());
    let _ = writeln!(out, "; MaxRecords: {}", jobs.len());
    if max_procs > 0 {
        let _ = writeln!(out, "; MaxProcs: {max_procs}");
        let _ = writeln!(
            out,
            "; MaxNodes: {}",
            nodes["nodes"].as_array().map(|a| a.len()).unwrap_or(0)
        );
    }
    for (i, q) in queue_names.iter().enumerate() {
        let _ = writeln!(out, "; Queue: {} {q}", i + 1);
    }
    let _ = writeln!(out, "; Note: times in seconds; {never_ran} finished jobs never ran (cancelled before starting) and are left out");
    for (n, (queue, j)) in jobs.iter().enumerate() {
        let created = j["createdAt"].as_u64().unwrap_or(0);
        let started = j["startedAt"].as_u64().unwrap_or(created);
        let stopped = j["stoppedAt"].as_u64().unwrap_or(started);
        let nodes = j["nodeProperties"]["numNodes"].as_u64().unwrap_or(1);
        let per_node = if j["container"].is_object() {
            vcpus_of(&j["container"])
        } else {
            vcpus_of(&j["nodeProperties"]["nodeRangeProperties"][0]["container"])
        };
        let procs = nodes * per_node;
        let requested = j["timeout"]["attemptDurationSeconds"]
            .as_i64()
            .unwrap_or(-1);
        let status = if j["status"] == "SUCCEEDED" { 1 } else { 0 };
        let _ = writeln!(
            out,
            "{} {} {} {} {procs} -1 -1 {procs} {requested} -1 {status} -1 -1 -1 {queue} -1 -1 -1",
            n + 1,
            (created - start) / 1000,
            started.saturating_sub(created) / 1000,
            (stopped.saturating_sub(started)).div_ceil(1000),
        );
    }
    Ok(out)
}
