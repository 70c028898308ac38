//! The scheduling-pass benchmark: one `Core::schedule` pass over a large,
//! mostly full cluster with a deep queue, over [`crate::fixture`] (which
//! `cargo bench -p shoal-benches` times too).

use crate::fixture::Bench;
use hdrhistogram::Histogram;
use shoal_core::Backfill;
use std::time::Instant;

/// Pass latency figures.
pub struct PassLatency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Build the fixture (`nodes` nodes, `jobs` RUNNABLE jobs behind a full
/// cluster), then time `passes` EASY passes, each after one job ends and one
/// arrives (not timed).
pub fn pass_latency(nodes: u32, jobs: usize, passes: u32) -> anyhow::Result<PassLatency> {
    let mut b = Bench::new(nodes, jobs, Backfill::Easy);
    let mut hist = Histogram::<u64>::new(3)?;
    for _ in 0..passes {
        b.perturb();
        let t = Instant::now();
        b.core.schedule(b.now);
        hist.record(t.elapsed().as_micros() as u64)?;
        b.collect();
    }
    Ok(PassLatency {
        p50_ms: hist.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
        max_ms: hist.max() as f64 / 1000.0,
    })
}
