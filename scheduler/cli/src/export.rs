//! `shoal export --swf`: the scheduler's finished jobs as a Standard Workload
//! Format trace, so that `shoal plan` can replay an operator's real workload.

use anyhow::Result;
use shoal_client::Client;
use shoal_model as m;
use std::fmt::Write as _;

/// vCPUs of one node of a job, from its `resourceRequirements` (or legacy
/// `vcpus`); 1 when unset, as Shoal schedules it.
fn vcpus_of(requirements: &[m::ResourceRequirement], vcpus: Option<i32>) -> u64 {
    requirements
        .iter()
        .find(|r| r.kind == "VCPU")
        .and_then(|r| r.value.parse().ok())
        .or_else(|| vcpus.map(|v| v.max(0) as u64))
        .unwrap_or(1)
}

/// vCPUs per node of a job as it ran.
fn job_vcpus(j: &m::JobDetail) -> u64 {
    if let Some(c) = &j.container {
        return vcpus_of(&c.resource_requirements, c.vcpus);
    }
    let first = j
        .node_properties
        .as_ref()
        .and_then(|n| n.node_range_properties.first())
        .and_then(|r| r.container.as_ref());
    first.map_or(1, |c| vcpus_of(&c.resource_requirements, c.vcpus))
}

fn all_jobs(client: &Client, queue: &str, status: &str) -> Result<Vec<String>> {
    let req = m::ListJobsRequest {
        job_queue: Some(queue.to_string()),
        job_status: Some(status.to_string()),
        ..Default::default()
    };
    Ok(client
        .list_all(req)?
        .into_iter()
        .map(|j| j.job_id)
        .collect())
}

/// Build the SWF text of every finished job created at or after `since`
/// (epoch ms).
pub fn swf(client: &Client, since: u64) -> Result<String> {
    let queue_names: Vec<String> = client
        .queues()?
        .into_iter()
        .map(|q| q.job_queue_name)
        .collect();
    let mut jobs: Vec<(usize, m::JobDetail)> = Vec::new();
    for (qi, q) in queue_names.iter().enumerate() {
        for status in ["SUCCEEDED", "FAILED"] {
            let ids = all_jobs(client, q, status)?;
            // Array jobs: the children are the jobs that ran.
            let mut kids = Vec::new();
            for j in client.describe_all(&ids)? {
                match j.array_properties.as_ref() {
                    Some(a) if a.size.is_some() && a.index.is_none() => {
                        let n = a.size.unwrap_or(0).max(0);
                        kids.extend((0..n).map(|i| format!("{}:{i}", j.job_id)));
                    }
                    _ => jobs.push((qi + 1, j)),
                }
            }
            jobs.extend(client.describe_all(&kids)?.into_iter().map(|j| (qi + 1, j)));
        }
    }
    let at = |t: Option<i64>| t.map(|t| t.max(0) as u64);
    jobs.retain(|(_, j)| at(j.created_at).unwrap_or(0) >= since);
    let never_ran = jobs.iter().filter(|(_, j)| j.started_at.is_none()).count();
    jobs.retain(|(_, j)| j.started_at.is_some() && j.stopped_at.is_some());
    jobs.sort_by_key(|(_, j)| j.created_at.unwrap_or(0));
    let nodes = client.call(&m::ListNodesRequest {})?.nodes;
    let max_procs: u64 = nodes.iter().map(|n| n.vcpus as u64).sum();
    let start = jobs
        .first()
        .and_then(|(_, j)| at(j.created_at))
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
        let _ = writeln!(out, "; MaxNodes: {}", nodes.len());
    }
    for (i, q) in queue_names.iter().enumerate() {
        let _ = writeln!(out, "; Queue: {} {q}", i + 1);
    }
    let _ = writeln!(out, "; Note: times in seconds; {never_ran} finished jobs never ran (cancelled before starting) and are left out");
    for (n, (queue, j)) in jobs.iter().enumerate() {
        let created = at(j.created_at).unwrap_or(0);
        let started = at(j.started_at).unwrap_or(created);
        let stopped = at(j.stopped_at).unwrap_or(started);
        let nodes = j
            .node_properties
            .as_ref()
            .map_or(1, |n| n.num_nodes.max(1) as u64);
        let procs = nodes * job_vcpus(j);
        let requested = j
            .timeout
            .as_ref()
            .and_then(|t| t.attempt_duration_seconds)
            .map_or(-1, i64::from);
        let status = if j.status == "SUCCEEDED" { 1 } else { 0 };
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
