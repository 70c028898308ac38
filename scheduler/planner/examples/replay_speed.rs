//! Replay speed: a 100,000-job trace (KTH-SP2, 28,476 jobs on 100
//! processors, concatenated with itself and time-shifted, cut at 100,000
//! jobs) through the core with FCFS and EASY, both event orders, plus the
//! original KTH-SP2 for comparison with the reference's timings.
//!
//! `cargo run --release -p shoal-planner --example replay_speed [TRACE] [JOBS]`

use std::path::PathBuf;
use std::time::Instant;

use shoal_planner::metrics;
use shoal_planner::sim::{simulate, Policy, SimConfig, TieBreak};
use shoal_planner::swf;
use shoal_planner::workload::{build, Conventions, SimJob};

fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args().skip(1);
    let trace = argv.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/traces/KTH-SP2-1996-2.1-cln.swf.gz"
        ))
    });
    let target: usize = argv.next().map_or(Ok(100_000), |s| s.parse())?;

    let t0 = Instant::now();
    let (header, records) = swf::read_file(&trace)?;
    let parse_s = t0.elapsed().as_secs_f64();
    let procs = header.machine_procs().unwrap_or(1) as u32;
    let base = build(&records, &Conventions::reference(procs)).jobs;
    println!(
        "trace {} : {} jobs, {procs} processors, parsed in {parse_s:.3} s",
        trace.display(),
        base.len()
    );

    // Concatenate time-shifted copies up to `target` jobs.
    let span = base.iter().map(|j| j.submit).max().unwrap_or(0) + 1;
    let mut big: Vec<SimJob> = Vec::with_capacity(target);
    let mut copy = 0u64;
    while big.len() < target && !base.is_empty() {
        for j in &base {
            if big.len() == target {
                break;
            }
            big.push(SimJob {
                index: big.len() as u64,
                submit: j.submit + copy * span,
                ..*j
            });
        }
        copy += 1;
    }

    for (name, jobs) in [("original", &base), ("synthesized", &big)] {
        for policy in [Policy::Fcfs, Policy::Easy] {
            for tie_break in [TieBreak::Batch, TieBreak::PerEvent] {
                let cfg = SimConfig {
                    procs,
                    policy,
                    tie_break,
                    procs_per_node: None,
                };
                let t = Instant::now();
                let starts = simulate(jobs, &cfg)?;
                let sim_s = t.elapsed().as_secs_f64();
                let m = metrics::compute(jobs, &starts, procs);
                println!(
                    "{name:<11} {:>7} jobs  {:<4} {:<5}  sim {sim_s:>7.3} s  ({:>9.0} jobs/s)  mean wait {:>12.1} s  mean bsld {:>9.2}  util {:.4}",
                    jobs.len(),
                    policy.name(),
                    tie_break.reference_name(),
                    jobs.len() as f64 / sim_s,
                    m.mean_wait_s,
                    m.mean_bounded_slowdown,
                    m.utilization
                );
            }
        }
    }
    Ok(())
}
