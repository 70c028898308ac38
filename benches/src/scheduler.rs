//! `shoal bench scheduler`: the control plane alone: HTTP submit
//! throughput against an in-process scheduler, and one scheduling pass
//! over a large cluster ([`crate::pass`]).

use crate::throughput::{definition, submit};
use crate::SchedulerBench;
use anyhow::Result;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use shoal_client::Client;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Run it.
pub(crate) fn run(b: SchedulerBench) -> Result<i32> {
    let pass = crate::pass::pass_latency(b.nodes, b.jobs as usize, b.passes)?;
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
    client.call(&definition(None))?;
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
                client.call(&submit(format!("b{i}")))?;
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
