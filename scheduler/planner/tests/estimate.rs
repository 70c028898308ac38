//! Start estimates (the core's dry run) on a KTH-SP2 replay stopped at a
//! chosen time: with exact runtime estimates and no later arrivals, every
//! queued job's estimated start is the start it then gets.

use std::path::Path;

use shoal_core::{FairShare, ShareWeight};
use shoal_planner::sim::{
    estimate_at, simulate_fair, Policy, ShareBy, SimConfig, SimFairshare, TieBreak,
};
use shoal_planner::swf;
use shoal_planner::workload::{build, Conventions, EstimateKind, SimJob};

/// KTH-SP2's jobs submitted by the `n`-th submission, exact estimates,
/// and that submission's time.
fn kth_until(n: usize) -> (Vec<SimJob>, u32, u64) {
    let trace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/traces/KTH-SP2-1996-2.1-cln.swf.gz"
    );
    let (header, records) = swf::read_file(Path::new(trace)).unwrap();
    let procs = header.machine_procs().unwrap() as u32;
    let mut conv = Conventions::reference(procs);
    conv.estimate = EstimateKind::Actual;
    let mut jobs = build(&records, &conv).jobs;
    let mut submits: Vec<u64> = jobs.iter().map(|j| j.submit).collect();
    submits.sort_unstable();
    let at = submits[n];
    jobs.retain(|j| j.submit <= at);
    for j in &mut jobs {
        assert_eq!(j.estimate, j.actual);
    }
    (jobs, procs, at)
}

fn check(policy: Policy, fair: Option<&SimFairshare>, n: usize) -> usize {
    let (jobs, procs, at) = kth_until(n);
    let cfg = SimConfig {
        procs,
        policy,
        tie_break: TieBreak::Batch,
        procs_per_node: None,
    };
    let estimates = estimate_at(&jobs, &cfg, fair, at).unwrap();
    let starts = simulate_fair(&jobs, &cfg, fair).unwrap();
    // The queue is deep enough for the test to mean something.
    assert!(
        estimates.len() >= 20,
        "{policy:?}: only {} jobs queued at t={at}",
        estimates.len()
    );
    let mut last = 0;
    for &(i, est) in &estimates {
        assert!(jobs[i].submit <= at);
        assert!(starts[i] >= at, "job {i} started before t={at}");
        assert_eq!(
            est,
            Some(starts[i]),
            "{policy:?}: job {i} (width {}) estimated {est:?}, started at {}",
            jobs[i].width,
            starts[i]
        );
        // Listed in start order.
        assert!(starts[i] >= last, "job {i} listed out of start order");
        last = starts[i];
    }
    // Every job queued at t is listed.
    let queued = (0..jobs.len()).filter(|&i| starts[i] > at).count();
    assert!(queued <= estimates.len());
    estimates.len()
}

#[test]
fn easy_estimates_equal_the_starts_jobs_then_get() {
    // A busy time of KTH-SP2 (the queue holds dozens of jobs).
    check(Policy::Easy, None, 4000);
}

#[test]
fn fcfs_and_conservative_estimates_equal_the_starts_jobs_then_get() {
    check(Policy::Fcfs, None, 4000);
    check(Policy::Conservative, None, 4000);
}

#[test]
fn fair_share_estimates_equal_the_starts_jobs_then_get() {
    let (jobs, _, _) = kth_until(4000);
    // The two busiest users get opposite weights.
    let mut count: std::collections::BTreeMap<i64, usize> = Default::default();
    for j in &jobs {
        *count.entry(j.user).or_default() += 1;
    }
    let mut users: Vec<(usize, i64)> = count.into_iter().map(|(u, n)| (n, u)).collect();
    users.sort_unstable_by(|a, b| b.cmp(a));
    let fair = SimFairshare {
        policy: FairShare {
            decay_s: 86400,
            compute_reservation: 0,
            shares: vec![
                ShareWeight {
                    identifier: users[0].1.to_string(),
                    weight: 1_000,
                },
                ShareWeight {
                    identifier: users[1].1.to_string(),
                    weight: 100_000,
                },
            ],
        },
        by: ShareBy::User,
    };
    check(Policy::Easy, Some(&fair), 4000);
}
