//! Fair share end to end (issue 16): boto3 creates a scheduling policy and
//! a queue that uses it and submits 60 one-vCPU jobs of 5 s in shares A
//! (weight 1) and B (weight 0.25) on a 2-vCPU local cluster; B gets about
//! four times A's vCPU-seconds, and the planner, replaying the same jobs
//! through the same core, starts them in the same order.

mod common;

use common::local::Cluster;
use shoal_core::{FairShare, ShareWeight};
use shoal_planner::sim::{simulate_fair, Policy, ShareBy, SimConfig, SimFairshare, TieBreak};
use shoal_planner::workload::SimJob;

/// One started job as the script saw it: share, startedAt, stoppedAt (ms).
type Started = (String, i64, i64);

fn run_check(endpoint: &str) -> Vec<Started> {
    let said = common::run_boto3_check("boto3_fairshare_check.py", &[endpoint]);
    said.lines()
        .filter_map(|l| l.strip_prefix("START "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

/// The planner's start rounds for the same 60 jobs: per start time, the
/// shares started then (A is user 1, B user 2).
fn planner_rounds() -> Vec<Vec<char>> {
    let jobs: Vec<SimJob> = (0..60)
        .map(|i| SimJob {
            index: i,
            submit: 0,
            width: 1,
            actual: 5,
            estimate: 5,
            user: if i % 2 == 0 { 1 } else { 2 },
            group: 1,
        })
        .collect();
    let weight = |id: &str, w: u32| ShareWeight {
        identifier: id.into(),
        weight: w,
    };
    let fair = SimFairshare {
        policy: FairShare {
            decay_s: 3600,
            compute_reservation: 0,
            shares: vec![weight("1", 10_000), weight("2", 2_500)],
        },
        by: ShareBy::User,
    };
    let cfg = SimConfig {
        procs: 2,
        policy: Policy::Easy,
        tie_break: TieBreak::Batch,
        procs_per_node: None,
    };
    let starts = simulate_fair(&jobs, &cfg, Some(&fair)).unwrap();
    let mut order: Vec<(u64, u64)> = starts
        .iter()
        .enumerate()
        .map(|(i, &t)| (t, i as u64))
        .collect();
    order.sort();
    let mut rounds: Vec<(u64, Vec<char>)> = Vec::new();
    for (t, i) in order {
        let share = if i % 2 == 0 { 'A' } else { 'B' };
        match rounds.last_mut() {
            Some((at, list)) if *at == t => list.push(share),
            _ => rounds.push((t, vec![share])),
        }
    }
    rounds
        .into_iter()
        .map(|(_, mut l)| {
            l.sort();
            l
        })
        .collect()
}

#[test]
fn fair_share_gives_a_quarter_weight_four_times_the_vcpu_seconds_and_the_planner_agrees() {
    let c = Cluster::start(&["w1", "w2"]);
    let started = run_check(&c.endpoint);
    assert!(started.len() >= 30, "{started:?}");
    let first = &started[..30];
    let seconds = |share: &str| -> f64 {
        first
            .iter()
            .filter(|s| s.0 == share)
            .map(|s| (s.2 - s.1) as f64 / 1000.0)
            .sum()
    };
    let (a, b) = (seconds("A"), seconds("B"));
    let ratio = b / a;
    let order: String = first.iter().map(|s| s.0.as_str()).collect();
    assert!(
        (3.0..=5.0).contains(&ratio),
        "B/A vCPU-seconds over the first 30 starts = {ratio:.2} ({b:.1} / {a:.1}), order {order}"
    );
    // The planner starts the same jobs in the same order: each of its start
    // rounds (jobs started at one instant, which have no order among
    // themselves) holds the same shares as the live starts in its place.
    let rounds = planner_rounds();
    let mut at = 0;
    for (n, round) in rounds.iter().enumerate() {
        if at + round.len() > first.len() {
            break;
        }
        let mut live: Vec<char> = first[at..at + round.len()]
            .iter()
            .map(|s| s.0.chars().next().unwrap())
            .collect();
        live.sort();
        assert_eq!(
            &live, round,
            "start round {n} (starts {at}..): live {order}, planner {rounds:?}"
        );
        at += round.len();
    }
    assert!(at >= 28, "{at} starts compared");
    println!("fair share: B/A = {ratio:.2} over the first 30 starts, order {order}");
}
