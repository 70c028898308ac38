//! Fair share in the core: the order of a fair-share queue's jobs, weights,
//! the compute reservation, and fair share under EASY backfilling.

mod common;

use std::collections::BTreeMap;

use common::*;
use shoal_core::*;

fn policy(reservation: u32, shares: &[(&str, f64)]) -> FairShare {
    FairShare {
        decay_s: 3600,
        compute_reservation: reservation,
        shares: shares
            .iter()
            .map(|&(id, w)| ShareWeight {
                identifier: id.to_string(),
                weight: (w * 10_000.0).round() as u32,
            })
            .collect(),
    }
}

/// A core whose queue 1 has `fs`, on `vcpus` vCPUs of one node.
fn fair_world(fs: FairShare, vcpus: u32) -> Core {
    let mut core = world(Backfill::Easy);
    let mut q = queue(1, "default", 0, &[1]);
    q.fairshare = Some(fs);
    core.apply(0, Event::QueueUpserted(q)).unwrap();
    core.apply(0, node(1, vcpus, 1 << 20, 1 << 20)).unwrap();
    core
}

fn shared(key: u64, share: &str) -> JobB {
    let mut j = job(key).at(0);
    j.0.share = Some(share.to_string());
    j
}

/// The acceptance scenario: shares A (1.0) and B (0.25), 60 one-vCPU jobs
/// of 5 s, half of each, on 2 vCPUs: over the first 30 starts B gets about
/// 4× A's vCPU-seconds.
#[test]
fn a_quarter_weight_gets_four_times_the_share() {
    let mut core = fair_world(policy(0, &[("A", 1.0), ("B", 0.25)]), 2);
    for k in 1..=60 {
        let share = if k % 2 == 1 { "A" } else { "B" };
        core.apply(0, shared(k, share).submit()).unwrap();
    }
    let starts = simulate(&mut core, 5_000, &BTreeMap::new());
    let mut order: Vec<(Millis, u64)> = starts.iter().map(|(&k, &t)| (t, k)).collect();
    order.sort();
    let first: Vec<char> = order[..30]
        .iter()
        .map(|&(_, k)| if k % 2 == 1 { 'A' } else { 'B' })
        .collect();
    let a = first.iter().filter(|&&c| c == 'A').count() as f64;
    let b = 30.0 - a;
    let ratio = b / a;
    assert!((3.0..=5.0).contains(&ratio), "B/A = {ratio} in {first:?}");
    // Ties go to the share with fewer running vCPUs: the first two starts
    // are one of each.
    assert_ne!(first[0], first[1], "{first:?}");
    // Usage is counted: after all, both shares ran 30 × 5 vCPU-seconds.
    let usage = core.share_usage(Q, order.last().unwrap().0 + 5_000);
    assert_eq!(usage.len(), 2);
    for u in &usage {
        assert!(u.usage > 140.0 && u.usage <= 150.0, "{u:?}");
        assert_eq!(u.running_vcpus, 0);
    }
}

/// Within a share, scheduling priority decides; across shares, usage.
#[test]
fn priority_orders_jobs_within_a_share() {
    let mut core = fair_world(policy(0, &[("A", 1.0), ("B", 1.0)]), 1);
    core.apply(0, shared(1, "A").prio(1).submit()).unwrap();
    core.apply(0, shared(2, "A").prio(9).submit()).unwrap();
    core.apply(0, shared(3, "B").prio(5).submit()).unwrap();
    let starts = simulate(&mut core, 5_000, &BTreeMap::new());
    // A (tie broken by name) starts its priority-9 job; then B (A has
    // used 5 vCPU-seconds); then A's priority-1 job.
    assert_eq!(starts[&2], 0);
    assert_eq!(starts[&3], 5_000);
    assert_eq!(starts[&1], 10_000);
}

/// computeReservation 50 with one active share holds back half of the
/// queue's vCPUs; a second share's jobs may then use them.
#[test]
fn compute_reservation_holds_capacity_for_new_shares() {
    let mut core = fair_world(policy(50, &[]), 4);
    for k in 1..=4 {
        core.apply(0, shared(k, "A").submit()).unwrap();
    }
    core.schedule(0);
    assert_eq!(starts(&core.drain()), vec![1, 2]);
    // A new share arrives: (0.5)^2 = 25 % is held now, so 3 vCPUs may be
    // used; B gets the third.
    core.apply(1, shared(5, "B").submit()).unwrap();
    core.apply(1, shared(6, "B").submit()).unwrap();
    core.schedule(1);
    assert_eq!(starts(&core.drain()), vec![5]);
}

/// Under EASY the head of the chosen share gets the reservation: a later
/// small job of another share may backfill only if it ends before it.
#[test]
fn easy_reserves_for_the_head_of_the_chosen_share() {
    let mut core = fair_world(policy(0, &[("A", 1.0), ("B", 1.0)]), 2);
    // One long job of C holds one vCPU.
    core.apply(0, shared(1, "C").timeout(100).submit()).unwrap();
    core.schedule(0);
    assert_eq!(starts(&core.drain()), vec![1]);
    // A's head needs 2 vCPUs: it is the head, reserved at t = 100 s.
    let mut big = shared(2, "A").timeout(10);
    big.0.shape = Shape::Single(res(2, 0, 0));
    core.apply(1_000, big.submit()).unwrap();
    // B's job of 200 s would delay it; a 50 s one backfills.
    core.apply(1_000, shared(3, "B").timeout(200).submit())
        .unwrap();
    core.apply(1_000, shared(4, "B").timeout(50).submit())
        .unwrap();
    core.schedule(1_000);
    assert_eq!(starts(&core.drain()), vec![4]);
    assert_eq!(core.last_pass_head().map(|h| h.0), Some(JobKey(2)));
}

/// A queue's policy replaced with other weights changes the order at once.
#[test]
fn a_replaced_policy_reweighs_the_shares() {
    let mut core = fair_world(policy(0, &[("A", 1.0), ("B", 1.0)]), 2);
    core.apply(0, shared(1, "A").submit()).unwrap();
    core.apply(0, shared(2, "B").submit()).unwrap();
    core.schedule(0);
    assert_eq!(starts(&core.drain()), vec![1, 2]);
    core.apply(2_000, exited(2, 0, 0, 0)).unwrap();
    core.apply(10_000, exited(1, 0, 0, 0)).unwrap();
    // A has used 10 vCPU-seconds, B 2: B would go first ...
    let two = |mut j: JobB| {
        j.0.shape = Shape::Single(res(2, 0, 0));
        j
    };
    core.apply(10_000, two(shared(3, "A")).submit()).unwrap();
    core.apply(10_000, two(shared(4, "B")).submit()).unwrap();
    // ... but with A's weight cut to 0.1 A's usage counts 1.
    let mut q = queue(1, "default", 0, &[1]);
    q.fairshare = Some(policy(0, &[("A", 0.1), ("B", 1.0)]));
    core.apply(10_000, Event::QueueUpserted(q)).unwrap();
    core.schedule(10_000);
    assert_eq!(starts(&core.drain()), vec![3]);
    let usage = core.share_usage(Q, 10_000);
    assert_eq!(usage[0].weight, 1_000);
    assert!((usage[0].weighted - 1.0).abs() < 1e-6, "{usage:?}");
}

/// The head of each queue and the class of why it waits, as
/// jobStateTimeLimitActions read them.
#[test]
fn queue_heads_carry_aws_wait_codes() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 2, 1 << 20, 1 << 20)).unwrap();
    core.apply(0, node(2, 2, 1 << 20, 1 << 20)).unwrap();
    // Too big for any node; a gang wider than the cluster; one that waits.
    core.apply(0, job(1).single(8, 0, 0).submit()).unwrap();
    core.schedule(0);
    let heads = core.queue_heads();
    assert_eq!(heads.len(), 1);
    assert_eq!(
        (heads[0].job, heads[0].code),
        (JobKey(1), Some(WaitCode::JobRequirement))
    );
    core.apply(
        0,
        Event::JobCancelled {
            job: JobKey(1),
            reason: "x".into(),
        },
    )
    .unwrap();
    core.apply(0, job(2).gang(3, res(1, 0, 0)).submit())
        .unwrap();
    core.schedule(0);
    assert_eq!(
        core.queue_heads()[0].code,
        Some(WaitCode::ComputeEnvironmentMax)
    );
    core.apply(
        0,
        Event::JobCancelled {
            job: JobKey(2),
            reason: "x".into(),
        },
    )
    .unwrap();
    core.apply(0, job(3).single(2, 0, 0).submit()).unwrap();
    core.apply(0, job(4).single(2, 0, 0).submit()).unwrap();
    core.apply(0, job(5).single(2, 0, 0).submit()).unwrap();
    core.schedule(0);
    let heads = core.queue_heads();
    assert_eq!(
        (heads[0].job, heads[0].code),
        (JobKey(5), Some(WaitCode::Capacity))
    );
    assert_eq!(
        WaitCode::Capacity.aws_code(),
        "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
    );
}
