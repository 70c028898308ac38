//! Prints the latency of one scheduling pass on a big, mostly full cluster:
//! 10,000 nodes and 100,000 RUNNABLE jobs (see `src/fixture.rs`).
//! Each of the measured passes follows a small change (one job ends, one
//! arrives), like the live scheduler sees.
//!
//! `cargo run --release -p shoal-benches --example pass_latency [passes] [fcfs|easy|conservative]`

use shoal_benches::fixture as setup;

use std::time::Instant;

use shoal_core::Backfill;

fn main() {
    let mut args = std::env::args().skip(1);
    let passes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let backfill = match args.next().as_deref() {
        Some("fcfs") => Backfill::Fcfs,
        Some("conservative") => Backfill::Conservative,
        _ => Backfill::Easy,
    };
    let (nodes, jobs) = (10_000, 100_000);
    let t0 = Instant::now();
    let mut b = setup::Bench::new(nodes, jobs, backfill);
    let (util, idle) = b.utilization(nodes);
    eprintln!(
        "setup: {:.1} s, {} running attempts, {} RUNNABLE, {:.1}% of vCPUs allocated, {idle} idle nodes",
        t0.elapsed().as_secs_f64(),
        b.running.len(),
        b.core.runnable_count(),
        util * 100.0
    );
    let mut times = Vec::with_capacity(passes);
    let mut started = 0;
    for _ in 0..passes {
        b.perturb();
        let t = Instant::now();
        b.core.schedule(b.now);
        times.push(t.elapsed());
        started += b.collect();
    }
    times.sort();
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
    println!(
        "pass p50={:.2}ms p99={:.2}ms max={:.2}ms (nodes={nodes} jobs={} runnable, {:?}, {passes} passes, {started} starts)",
        pct(0.5),
        pct(0.99),
        pct(1.0),
        b.core.runnable_count(),
        backfill,
    );
}
