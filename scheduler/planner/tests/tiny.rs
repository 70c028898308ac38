//! Hand-checked tiny traces: every job's wait is written out.

use shoal_planner::metrics;
use shoal_planner::sim::{simulate, Policy, SimConfig, TieBreak};
use shoal_planner::workload::SimJob;

/// (submit, width, actual, estimate) per job.
fn jobs(spec: &[(u64, u32, u64, u64)]) -> Vec<SimJob> {
    spec.iter()
        .enumerate()
        .map(|(i, &(submit, width, actual, estimate))| SimJob {
            index: i as u64,
            submit,
            width,
            actual,
            estimate,
            ..Default::default()
        })
        .collect()
}

fn waits(js: &[SimJob], procs: u32, policy: Policy, tie_break: TieBreak) -> Vec<u64> {
    let cfg = SimConfig {
        procs,
        policy,
        tie_break,
        procs_per_node: None,
    };
    let starts = simulate(js, &cfg).unwrap();
    js.iter().zip(&starts).map(|(j, s)| s - j.submit).collect()
}

/// P = 4. A (3 procs, 0–10); B (4 procs) arrives at 1 and must wait for A;
/// C (1 proc, 5 s) arrives at 2, D (1 proc, 20 s) at 3.
/// FCFS: B starts at 10, C and D behind it at 15.
/// EASY: B's shadow time is 10 with no extra; C ends at 7 ≤ 10 and
/// backfills at 2; D would run past 10 and there is no extra: it waits for B.
#[test]
fn backfill_before_the_shadow_time() {
    let js = jobs(&[(0, 3, 10, 10), (1, 4, 5, 5), (2, 1, 5, 5), (3, 1, 20, 20)]);
    for tb in [TieBreak::Batch, TieBreak::PerEvent] {
        assert_eq!(waits(&js, 4, Policy::Fcfs, tb), vec![0, 9, 13, 12]);
        assert_eq!(waits(&js, 4, Policy::Easy, tb), vec![0, 9, 0, 12]);
    }
}

/// P = 4. A (2 procs, 0–10); B (3 procs, 5 s) at 1: shadow 10, extra 1;
/// C (1 proc, 100 s) at 2 runs past the shadow time but fits the extra:
/// EASY starts it at 2 and the extra is used up; D (1 proc, 100 s) at 3
/// finds no free processor until B ends at 15.
/// FCFS: B at 10, C beside it at 10, D at 15.
#[test]
fn backfill_into_the_extra() {
    let js = jobs(&[
        (0, 2, 10, 10),
        (1, 3, 5, 5),
        (2, 1, 100, 100),
        (3, 1, 100, 100),
    ]);
    assert_eq!(
        waits(&js, 4, Policy::Fcfs, TieBreak::Batch),
        vec![0, 9, 8, 12]
    );
    assert_eq!(
        waits(&js, 4, Policy::Easy, TieBreak::Batch),
        vec![0, 9, 0, 12]
    );
    // The metrics of the EASY schedule, by hand: waits 0, 9, 0, 12.
    let cfg = SimConfig {
        procs: 4,
        policy: Policy::Easy,
        tie_break: TieBreak::Batch,
        procs_per_node: None,
    };
    let starts = simulate(&js, &cfg).unwrap();
    assert_eq!(starts, vec![0, 10, 2, 15]);
    let m = metrics::compute(&js, &starts, 4);
    assert_eq!(m.mean_wait_s, 21.0 / 4.0);
    assert_eq!(m.max_wait_s, 12.0);
    assert_eq!(m.median_wait_s, 0.0);
    assert_eq!(m.makespan_s, 115); // D ends at 115
    let area = (2 * 10 + 3 * 5 + 100 + 100) as f64;
    assert_eq!(m.utilization, area / (4.0 * 115.0));
    // Bounded slowdowns: 1, (9+5)/10, 1, (12+100)/100.
    let bsld = (1.0 + 1.4 + 1.0 + 1.12) / 4.0;
    assert!((m.mean_bounded_slowdown - bsld).abs() < 1e-12);
}

/// The two event orders differ. P = 4. A (2 procs) ends at 10 though its
/// estimate says 20; B (4 procs) waits from 1 with shadow time 20 and
/// extra 0; D (2 procs, 5 s) arrives at 10.
/// batch: A's end is applied first, B starts at 10, D waits for B (20).
/// per-event (pyss): D's submission comes first, while A still holds its
/// processors: D ends by 15 ≤ 20, so it backfills at 10; B then waits for D.
#[test]
fn event_order_at_equal_times() {
    let js = jobs(&[(0, 2, 10, 20), (1, 4, 10, 10), (10, 2, 5, 5)]);
    assert_eq!(waits(&js, 4, Policy::Easy, TieBreak::Batch), vec![0, 9, 10]);
    assert_eq!(
        waits(&js, 4, Policy::Easy, TieBreak::PerEvent),
        vec![0, 14, 0]
    );
}

/// pyss: a running job whose estimated end is ≤ t counts as free even
/// before its termination event (processed after the submissions at t).
/// P = 2. A (2 procs, 10 s, estimate 10); B (2 procs) submitted at 10
/// starts at 10 in both orders.
#[test]
fn estimated_end_reached_counts_as_free() {
    let js = jobs(&[(0, 2, 10, 10), (10, 2, 5, 5)]);
    for p in [Policy::Fcfs, Policy::Easy] {
        assert_eq!(waits(&js, 2, p, TieBreak::Batch), vec![0, 0]);
        assert_eq!(waits(&js, 2, p, TieBreak::PerEvent), vec![0, 0]);
    }
}

/// Whole nodes: 2 nodes of 4 processors. A (1 proc) takes node 1 alone;
/// B (5 procs) needs both nodes and waits for A; C (1 proc) takes node 2.
#[test]
fn procs_per_node_gives_exclusive_nodes() {
    let js = jobs(&[(0, 1, 10, 10), (1, 5, 10, 10), (2, 1, 5, 5)]);
    let cfg = SimConfig {
        procs: 8,
        policy: Policy::Fcfs,
        tie_break: TieBreak::Batch,
        procs_per_node: Some(4),
    };
    // FCFS: C is behind B.
    assert_eq!(simulate(&js, &cfg).unwrap(), vec![0, 10, 20]);
    // EASY: C ends at 7 ≤ 10 and backfills onto node 2.
    let easy = SimConfig {
        policy: Policy::Easy,
        ..cfg
    };
    assert_eq!(simulate(&js, &easy).unwrap(), vec![0, 10, 2]);
    // One node of 8 processors: A, B and C share it, each starts on arrival.
    let single = SimConfig {
        procs_per_node: None,
        ..easy
    };
    assert_eq!(simulate(&js, &single).unwrap(), vec![0, 1, 2]);
}

#[test]
fn conservative_runs_and_never_starts_later_than_needed() {
    let js = jobs(&[(0, 3, 10, 10), (1, 4, 5, 5), (2, 1, 5, 5), (3, 1, 20, 20)]);
    // Conservative: C (ends 7) backfills; D would delay B's reservation.
    assert_eq!(
        waits(&js, 4, Policy::Conservative, TieBreak::Batch),
        vec![0, 9, 0, 12]
    );
}

#[test]
fn too_wide_jobs_are_refused() {
    let js = jobs(&[(0, 5, 10, 10)]);
    let cfg = SimConfig {
        procs: 4,
        policy: Policy::Easy,
        tie_break: TieBreak::Batch,
        procs_per_node: None,
    };
    assert!(simulate(&js, &cfg).is_err());
}
