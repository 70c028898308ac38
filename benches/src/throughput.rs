//! `shoal bench throughput`: trivial jobs (each with its /dev/shm mount)
//! end to end through a cluster; jobs/s and submit → start latency.

use crate::ThroughputBench;
use anyhow::Result;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use shoal_client::Client;
use shoal_model as m;
use std::time::Instant;

/// `bench-true`: `true` with 1 vCPU, 64 MiB and a 64 MiB /dev/shm.
pub(crate) fn definition(shm_mib: Option<i32>) -> m::RegisterJobDefinitionRequest {
    definition_named("bench-true", shm_mib, None)
}

/// `true` under `name`, in `image` if given.
fn definition_named(
    name: &str,
    shm_mib: Option<i32>,
    image: Option<&str>,
) -> m::RegisterJobDefinitionRequest {
    let mut container = m::ContainerProperties {
        image: image.map(str::to_string),
        command: vec!["true".into()],
        resource_requirements: vec![
            m::ResourceRequirement::new("VCPU", "1"),
            m::ResourceRequirement::new("MEMORY", "64"),
        ],
        ..Default::default()
    };
    if let Some(shm) = shm_mib {
        container.linux_parameters = Some(m::LinuxParameters {
            shared_memory_size: Some(shm),
            ..Default::default()
        });
    }
    m::RegisterJobDefinitionRequest {
        job_definition_name: name.into(),
        kind: "container".into(),
        container_properties: Some(container),
        ..Default::default()
    }
}

/// SubmitJob of `bench-true` named `name`.
pub(crate) fn submit(name: String) -> m::SubmitJobRequest {
    submit_of(name, "bench-true")
}

/// SubmitJob of definition `def` named `name`.
fn submit_of(name: String, def: &str) -> m::SubmitJobRequest {
    m::SubmitJobRequest {
        job_name: name,
        job_queue: "default".into(),
        job_definition: def.into(),
        ..Default::default()
    }
}

/// Run it.
pub(crate) fn run(b: ThroughputBench) -> Result<i32> {
    let dir = std::env::temp_dir().join(format!("shoal-throughput-{}", std::process::id()));
    let mut cluster = None;
    let client = match &b.endpoint {
        Some(e) => Client::new(e)?,
        None => {
            let c = crate::local_cluster::start(b.nodes, 1, &b.net, &dir)?;
            let client = Client::with_credentials_file(&c.endpoint, &c.credentials)?;
            cluster = Some(c);
            client
        }
    };
    // Every node of a cluster we started; at least one of a given cluster.
    let want = if b.endpoint.is_some() {
        1
    } else {
        b.nodes as usize
    };
    crate::local_cluster::wait_nodes(&client, want)?;
    client.call(&definition(Some(64)))?;
    let bar = ProgressBar::new(b.jobs);
    bar.set_style(
        ProgressStyle::with_template("{msg:10} {bar:40} {pos}/{len} {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("submitted");
    let start = Instant::now();
    let mut ids = Vec::with_capacity(b.jobs as usize);
    let mut array_done = None;
    if b.array {
        if !(2..=10_000).contains(&b.jobs) {
            anyhow::bail!("an array job has 2 to 10,000 children; give --jobs in that range");
        }
        let mut req = submit("array".into());
        req.array_properties = Some(m::ArrayProperties {
            size: Some(b.jobs as i32),
        });
        let parent = client.call(&req)?.job_id;
        ids.extend((0..b.jobs).map(|i| format!("{parent}:{i}")));
        // The parent's status summary counts its children as they end;
        // each child is described once, at the end.
        bar.set_message("succeeded");
        loop {
            let p = client.describe_one(&parent)?;
            let summary = p
                .as_ref()
                .and_then(|p| p.array_properties.as_ref())
                .and_then(|a| a.status_summary.clone())
                .unwrap_or_default();
            let ended = ["SUCCEEDED", "FAILED"]
                .iter()
                .map(|s| summary.get(*s).copied().unwrap_or(0))
                .sum::<i64>() as u64;
            bar.set_position(ended);
            if ended >= b.jobs {
                array_done = Some(start.elapsed().as_secs_f64());
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    } else {
        for i in 0..b.jobs {
            ids.push(client.call(&submit(format!("t{i}")))?.job_id);
            bar.inc(1);
        }
    }
    bar.set_position(0);
    bar.set_message("succeeded");
    let mut done = 0u64;
    let mut failed = 0u64;
    let mut details = Vec::new();
    let mut pending: Vec<String> = ids.clone();
    while !pending.is_empty() {
        // The oldest 100 only (one DescribeJobs a round): jobs end about in
        // the order they were submitted, and a benchmark that described
        // every pending job every round would load the scheduler with its
        // own polling (a deep queue made that 50 calls a round).
        let head = pending.len().min(100);
        let mut still = Vec::new();
        for j in client.describe_all(&pending[..head])? {
            match j.status.as_str() {
                "SUCCEEDED" => {
                    done += 1;
                    details.push(j);
                }
                "FAILED" => {
                    failed += 1;
                    details.push(j);
                }
                _ => still.push(j.job_id),
            }
        }
        bar.set_position(done + failed);
        still.extend(pending.drain(head..));
        pending = still;
        if !pending.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let secs = array_done.unwrap_or_else(|| start.elapsed().as_secs_f64());
    bar.finish_and_clear();
    let mut hist = Histogram::<u64>::new(3)?;
    for j in &details {
        if let Some(ms) = submit_to_start(j) {
            hist.record(ms)?;
        }
    }
    // Idle latency: one job at a time on an empty cluster; with an image,
    // its jobs alternate with host jobs (after one job has pulled it).
    if let Some(image) = &b.image {
        client.call(&definition_named("bench-true-image", Some(64), Some(image)))?;
        let warm = client
            .call(&submit_of("warm".into(), "bench-true-image"))?
            .job_id;
        let j = client.wait_for(&warm)?;
        if j.status != "SUCCEEDED" {
            anyhow::bail!(
                "the image job failed: {}",
                j.status_reason.unwrap_or_default()
            );
        }
    }
    let mut idle = Histogram::<u64>::new(3)?;
    let mut idle_image = Histogram::<u64>::new(3)?;
    for i in 0..b.idle_samples {
        let id = client.call(&submit(format!("idle{i}")))?.job_id;
        if let Some(ms) = submit_to_start(&client.wait_for(&id)?) {
            idle.record(ms)?;
        }
        if b.image.is_some() {
            let id = client
                .call(&submit_of(format!("idle-image{i}"), "bench-true-image"))?
                .job_id;
            if let Some(ms) = submit_to_start(&client.wait_for(&id)?) {
                idle_image.record(ms)?;
            }
        }
    }
    if let Some(mut c) = cluster {
        c.down();
        let _ = std::fs::remove_dir_all(&dir);
    }
    let out = serde_json::json!({
        "idle_submit_to_start_p50_ms": idle.value_at_quantile(0.5),
        "idle_submit_to_start_p99_ms": idle.value_at_quantile(0.99),
        "jobs": b.jobs, "succeeded": done, "failed": failed, "seconds": secs,
        "jobs_per_s": b.jobs as f64 / secs,
        "submit_to_start_p50_ms": hist.value_at_quantile(0.5),
        "submit_to_start_p99_ms": hist.value_at_quantile(0.99),
        "nodes": b.nodes,
        "array": b.array,
        "image": b.image,
        "idle_image_submit_to_start_p50_ms": b.image.as_ref().map(|_| idle_image.value_at_quantile(0.5)),
        "idle_image_submit_to_start_p99_ms": b.image.as_ref().map(|_| idle_image.value_at_quantile(0.99)),
    });
    if b.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{} {} ({} succeeded, {} failed) in {:.2} s on {} nodes: {:.1} jobs/s end to end; submit → start p50 {} ms, p99 {} ms",
            b.jobs, if b.array { "children of one array job" } else { "jobs" },
            done, failed, secs, b.nodes, b.jobs as f64 / secs,
            hist.value_at_quantile(0.5), hist.value_at_quantile(0.99)
        );
        println!(
            "idle cluster, one job at a time ({} jobs): submit → start p50 {} ms, p99 {} ms",
            b.idle_samples,
            idle.value_at_quantile(0.5),
            idle.value_at_quantile(0.99)
        );
        if let Some(image) = &b.image {
            let (host, cont) = (
                idle.value_at_quantile(0.5),
                idle_image.value_at_quantile(0.5),
            );
            println!(
                "idle cluster, in {image} (warm cache, alternating with the host jobs): submit → start p50 {cont} ms, p99 {} ms; the container's start overhead at p50: {} ms",
                idle_image.value_at_quantile(0.99),
                cont as i64 - host as i64
            );
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

/// A job's submit → start time in ms.
fn submit_to_start(j: &m::JobDetail) -> Option<u64> {
    let (c, s) = (j.created_at?, j.started_at?);
    Some(s.saturating_sub(c).max(0) as u64)
}
