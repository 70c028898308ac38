//! `shoal bench …`: commands that print figures. Nothing here is a test.

use crate::client::Client;
use anyhow::Result;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Benchmarks.
#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// The control plane: HTTP submit throughput and one scheduling pass.
    Scheduler(SchedulerBench),
    /// The molecular-dynamics benchmark as MPI jobs: shared memory vs TCP.
    Md(crate::md_bench::MdBench),
    /// OSU-style latency and bandwidth as MPI jobs: shared memory vs TCP.
    Osu(crate::osu_bench::OsuBench),
    /// End to end: trivial jobs (with their /dev/shm mount) through a local
    /// cluster; jobs/s and submit → start latency.
    Throughput(ThroughputBench),
}

/// `shoal bench throughput` arguments.
#[derive(clap::Args)]
pub struct ThroughputBench {
    /// Jobs to run.
    #[arg(long, default_value_t = 1000)]
    jobs: u64,
    /// Nodes of the local cluster started for the run.
    #[arg(long, default_value_t = 2)]
    nodes: u32,
    /// Use a running cluster instead of starting one.
    #[arg(long)]
    endpoint: Option<String>,
    /// Jobs run one at a time afterwards, for the idle submit → start latency.
    #[arg(long, default_value_t = 50)]
    idle_samples: u64,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// `shoal bench scheduler` arguments.
#[derive(clap::Args)]
pub struct SchedulerBench {
    /// Submissions in total.
    #[arg(long, default_value_t = 20_000)]
    submits: u64,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 8)]
    clients: u64,
    /// Nodes in the scheduling-pass benchmark.
    #[arg(long, default_value_t = 10_000)]
    nodes: u32,
    /// Pending jobs in the scheduling-pass benchmark.
    #[arg(long, default_value_t = 100_000)]
    jobs: u64,
    /// Passes to time.
    #[arg(long, default_value_t = 200)]
    passes: u32,
    /// Use a running scheduler instead of starting one in a temporary directory.
    #[arg(long)]
    endpoint: Option<String>,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// Run a benchmark.
pub fn run(cmd: BenchCommand) -> Result<i32> {
    match cmd {
        BenchCommand::Scheduler(b) => scheduler(b),
        BenchCommand::Throughput(b) => throughput(b),
        BenchCommand::Osu(b) => crate::osu_bench::run(b),
        BenchCommand::Md(b) => crate::md_bench::run(b),
    }
}

fn throughput(b: ThroughputBench) -> Result<i32> {
    let dir = std::env::temp_dir().join(format!("shoal-throughput-{}", std::process::id()));
    let mut cluster = None;
    let client = match &b.endpoint {
        Some(e) => Client::new(e)?,
        None => {
            let c = shoal_worker::cluster::Cluster::up(&shoal_worker::cluster::ClusterConfig {
                nodes: b.nodes,
                cpus_per_node: 1,
                memory_mib: None,
                dir: dir.clone(),
                subnet: None,
                shoal: std::env::current_exe()?,
            })?;
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
    let _: Value = client.aws(
        "registerjobdefinition",
        &json!({ "jobDefinitionName": "bench-true", "type": "container",
                 "containerProperties": { "command": ["true"],
                   "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"64"}],
                   "linuxParameters": { "sharedMemorySize": 64 } } }),
    )?;
    let bar = ProgressBar::new(b.jobs);
    bar.set_style(
        ProgressStyle::with_template("{msg:10} {bar:40} {pos}/{len} {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("submitted");
    let start = Instant::now();
    let mut ids = Vec::with_capacity(b.jobs as usize);
    for i in 0..b.jobs {
        let v: Value = client.aws(
            "submitjob",
            &json!({ "jobName": format!("t{i}"), "jobQueue": "default", "jobDefinition": "bench-true" }),
        )?;
        ids.push(v["jobId"].as_str().unwrap_or_default().to_string());
        bar.inc(1);
    }
    bar.set_position(0);
    bar.set_message("succeeded");
    let mut done = 0u64;
    let mut failed = 0u64;
    let mut details = Vec::new();
    let mut pending: Vec<String> = ids.clone();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for chunk in pending.chunks(100) {
            let v: Value = client.aws("describejobs", &json!({ "jobs": chunk }))?;
            for j in v["jobs"].as_array().into_iter().flatten() {
                match j["status"].as_str() {
                    Some("SUCCEEDED") => {
                        done += 1;
                        details.push(j.clone());
                    }
                    Some("FAILED") => {
                        failed += 1;
                        details.push(j.clone());
                    }
                    _ => still.push(j["jobId"].as_str().unwrap_or_default().to_string()),
                }
            }
        }
        bar.set_position(done + failed);
        pending = still;
        if !pending.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut hist = Histogram::<u64>::new(3)?;
    for j in &details {
        if let (Some(c), Some(s)) = (j["createdAt"].as_u64(), j["startedAt"].as_u64()) {
            hist.record(s.saturating_sub(c))?;
        }
    }
    // Idle latency: one job at a time on an empty cluster.
    let mut idle = Histogram::<u64>::new(3)?;
    for i in 0..b.idle_samples {
        let v: Value = client.aws(
            "submitjob",
            &json!({ "jobName": format!("idle{i}"), "jobQueue": "default", "jobDefinition": "bench-true" }),
        )?;
        let job = crate::commands::wait_for(&client, v["jobId"].as_str().unwrap_or_default())?;
        if let (Some(c), Some(s)) = (job["createdAt"].as_u64(), job["startedAt"].as_u64()) {
            idle.record(s.saturating_sub(c))?;
        }
    }
    if let Some(mut c) = cluster {
        c.down();
        let _ = std::fs::remove_dir_all(&dir);
    }
    let out = json!({
        "idle_submit_to_start_p50_ms": idle.value_at_quantile(0.5),
        "idle_submit_to_start_p99_ms": idle.value_at_quantile(0.99),
        "jobs": b.jobs, "succeeded": done, "failed": failed, "seconds": secs,
        "jobs_per_s": b.jobs as f64 / secs,
        "submit_to_start_p50_ms": hist.value_at_quantile(0.5),
        "submit_to_start_p99_ms": hist.value_at_quantile(0.99),
        "nodes": b.nodes,
    });
    if b.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{} jobs ({} succeeded, {} failed) in {:.2} s on {} nodes: {:.1} jobs/s end to end; submit → start p50 {} ms, p99 {} ms",
            b.jobs, done, failed, secs, b.nodes, b.jobs as f64 / secs,
            hist.value_at_quantile(0.5), hist.value_at_quantile(0.99)
        );
        println!(
            "idle cluster, one job at a time ({} jobs): submit → start p50 {} ms, p99 {} ms",
            b.idle_samples,
            idle.value_at_quantile(0.5),
            idle.value_at_quantile(0.99)
        );
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

fn scheduler(b: SchedulerBench) -> Result<i32> {
    let pass = crate::pass_bench::pass_latency(b.nodes, b.jobs as usize, b.passes)?;
    eprintln!(
        "scheduling pass ({} nodes, {} pending jobs, {} passes): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        b.nodes, b.jobs, b.passes, pass.p50_ms, pass.p99_ms, pass.max_ms
    );
    let submit = submit_throughput(&b)?;
    let out = json!({
        "pass": { "nodes": b.nodes, "jobs": b.jobs, "passes": b.passes,
                  "p50_ms": pass.p50_ms, "p99_ms": pass.p99_ms, "max_ms": pass.max_ms },
        "submit": submit,
    });
    if b.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "scheduling pass: {} nodes, {} pending jobs: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            b.nodes, b.jobs, pass.p50_ms, pass.p99_ms, pass.max_ms
        );
        println!(
            "http submit: {} submits from {} clients: {:.0} submits/s  latency p50 {:.2} ms  p99 {:.2} ms",
            submit["submits"], b.clients, submit["per_s"].as_f64().unwrap_or(0.0),
            submit["p50_ms"].as_f64().unwrap_or(0.0), submit["p99_ms"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(0)
}

fn submit_throughput(b: &SchedulerBench) -> Result<Value> {
    let rt = tokio::runtime::Runtime::new()?;
    let tmp;
    let mut running = None;
    let endpoint = match &b.endpoint {
        Some(e) => e.clone(),
        None => {
            tmp = std::env::temp_dir().join(format!("shoal-bench-{}", std::process::id()));
            let config = shoal_scheduler::Config {
                listen: "127.0.0.1:0".parse()?,
                state_dir: tmp.clone(),
                ..shoal_scheduler::Config::default()
            };
            let r = rt.block_on(shoal_scheduler::start(config))?;
            let e = format!("http://{}", r.addr);
            running = Some(r);
            e
        }
    };
    let client = Client::new(&endpoint)?;
    let _: Value = client.aws(
        "registerjobdefinition",
        &json!({ "jobDefinitionName": "bench-true", "type": "container",
                 "containerProperties": { "command": ["true"],
                   "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"64"}] } }),
    )?;
    let bar = ProgressBar::new(b.submits);
    bar.set_style(
        ProgressStyle::with_template("submitting {bar:40} {pos}/{len} {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut threads = Vec::new();
    for _ in 0..b.clients {
        let next = next.clone();
        let endpoint = endpoint.clone();
        let bar = bar.clone();
        let total = b.submits;
        threads.push(std::thread::spawn(move || -> Result<Histogram<u64>> {
            let client = Client::new(&endpoint)?;
            let mut h = Histogram::<u64>::new(3)?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok(h);
                }
                let t = Instant::now();
                let _: Value = client.aws(
                    "submitjob",
                    &json!({ "jobName": format!("b{i}"), "jobQueue": "default", "jobDefinition": "bench-true" }),
                )?;
                h.record(t.elapsed().as_micros() as u64)?;
                bar.inc(1);
            }
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    for t in threads {
        let h = t
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        hist.add(h)?;
    }
    let secs = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if let Some(r) = running {
        rt.block_on(r.stop());
        let _ = std::fs::remove_dir_all(
            std::env::temp_dir().join(format!("shoal-bench-{}", std::process::id())),
        );
    }
    Ok(json!({
        "submits": b.submits,
        "clients": b.clients,
        "seconds": secs,
        "per_s": b.submits as f64 / secs,
        "p50_ms": hist.value_at_quantile(0.5) as f64 / 1000.0,
        "p99_ms": hist.value_at_quantile(0.99) as f64 / 1000.0,
    }))
}
