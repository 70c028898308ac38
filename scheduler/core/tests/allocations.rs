//! Nodes that come from allocations (a MANAGED environment's Slurm jobs):
//! a gang's nodes all come from one allocation, and in a timed pool a job
//! goes only to nodes whose allocation outlasts its timeout.

mod common;

use common::*;
use shoal_core::*;

/// A node of allocation `group` (None: of none) that ends at `ends_at`.
fn alloc_node(id: u32, vcpus: u32, group: Option<u32>, ends_at: Option<Millis>) -> Event {
    Event::NodeUpserted(NodeSpec {
        id: NodeId(id),
        name: format!("n{id}"),
        capacity: res(vcpus, 4096, 1024),
        labels: Default::default(),
        schedulable: true,
        group,
        ends_at,
    })
}

/// A core whose one pool is timed (or not).
fn timed_world(backfill: Backfill, timed: bool) -> Core {
    let mut core = Core::new(CoreConfig { backfill });
    let mut p = pool(1, "slurm", &[]);
    p.timed = timed;
    core.apply(0, Event::PoolUpserted(p)).unwrap();
    core.apply(0, Event::QueueUpserted(queue(1, "default", 0, &[1])))
        .unwrap();
    core
}

fn nodes_of(ds: &[Decision], key: u64) -> Vec<u32> {
    placement_of(ds, key)
        .unwrap_or_default()
        .iter()
        .map(|p| p.node.0)
        .collect()
}

#[test]
fn a_gang_takes_its_nodes_from_one_allocation() {
    for backfill in [Backfill::Fcfs, Backfill::Easy, Backfill::Conservative] {
        let mut core = timed_world(backfill, true);
        // Two allocations of 2 nodes each, interleaved in node order.
        core.apply(0, alloc_node(1, 2, Some(7), None)).unwrap();
        core.apply(0, alloc_node(2, 2, Some(8), None)).unwrap();
        core.apply(0, alloc_node(3, 2, Some(7), None)).unwrap();
        core.apply(0, alloc_node(4, 2, Some(8), None)).unwrap();
        core.apply(0, job(1).gang(2, res(1, 1024, 0)).submit())
            .unwrap();
        core.apply(0, job(2).gang(2, res(1, 1024, 0)).submit())
            .unwrap();
        core.apply(0, job(3).gang(3, res(1, 1024, 0)).submit())
            .unwrap();
        core.schedule(0);
        let ds = core.drain();
        assert_eq!(nodes_of(&ds, 1), vec![1, 3], "{backfill:?}");
        assert_eq!(nodes_of(&ds, 2), vec![2, 4], "{backfill:?}");
        // Three nodes: no allocation has them.
        assert!(placement_of(&ds, 3).is_none(), "{backfill:?}");
    }
}

#[test]
fn nodes_of_no_allocation_form_a_gang_together_as_before() {
    let mut core = timed_world(Backfill::Easy, false);
    core.apply(0, alloc_node(1, 2, None, None)).unwrap();
    core.apply(0, alloc_node(2, 2, Some(3), None)).unwrap();
    core.apply(0, alloc_node(3, 2, None, None)).unwrap();
    core.apply(0, job(1).gang(2, res(1, 1024, 0)).submit())
        .unwrap();
    core.schedule(0);
    assert_eq!(nodes_of(&core.drain(), 1), vec![1, 3]);
}

#[test]
fn in_a_timed_pool_a_job_goes_only_to_nodes_that_outlast_its_timeout() {
    for backfill in [Backfill::Fcfs, Backfill::Easy, Backfill::Conservative] {
        let mut core = timed_world(backfill, true);
        // Node 1's allocation ends in 100 s, node 2's in 1000 s.
        core.apply(0, alloc_node(1, 1, Some(1), Some(100_000)))
            .unwrap();
        core.apply(0, alloc_node(2, 1, Some(2), Some(1_000_000)))
            .unwrap();
        core.apply(0, job(1).single(1, 1024, 0).timeout(500).submit())
            .unwrap();
        core.apply(0, job(2).single(1, 1024, 0).timeout(50).submit())
            .unwrap();
        core.apply(0, job(3).single(1, 1024, 0).timeout(50).submit())
            .unwrap();
        core.schedule(0);
        let ds = core.drain();
        assert_eq!(nodes_of(&ds, 1), vec![2], "{backfill:?}");
        assert_eq!(nodes_of(&ds, 2), vec![1], "{backfill:?}");
        assert!(placement_of(&ds, 3).is_none(), "{backfill:?}");
    }
}

#[test]
fn a_timeout_longer_than_every_allocation_waits_and_says_why() {
    let mut core = timed_world(Backfill::Easy, true);
    core.apply(0, alloc_node(1, 4, Some(1), Some(600_000)))
        .unwrap();
    core.apply(0, job(1).single(1, 1024, 0).timeout(3600).submit())
        .unwrap();
    core.schedule(0);
    let ds = core.drain();
    assert!(placement_of(&ds, 1).is_none());
    let (state, reason) = core.job_state(JobKey(1)).unwrap();
    assert_eq!(state, JobState::Runnable);
    assert!(
        reason.contains("whose allocation has at least 3600 s left (the job's timeout)"),
        "{reason}"
    );
    // As time passes an allocation's remaining time shrinks: a job that
    // fitted at 0 no longer does at 550 s.
    core.apply(0, job(2).single(1, 1024, 0).timeout(100).submit())
        .unwrap();
    core.schedule(550_000);
    assert!(placement_of(&core.drain(), 2).is_none());
    // A job without a timeout goes anywhere.
    core.apply(0, job(3).single(1, 1024, 0).submit()).unwrap();
    core.schedule(550_000);
    assert_eq!(nodes_of(&core.drain(), 3), vec![1]);
}

#[test]
fn a_pool_that_becomes_timed_reshapes_the_jobs_already_waiting() {
    let mut core = timed_world(Backfill::Easy, false);
    core.apply(0, job(1).single(1, 1024, 0).timeout(3600).submit())
        .unwrap();
    core.schedule(0);
    core.drain();
    // The pool becomes timed; its node ends in 60 s.
    let mut p = pool(1, "slurm", &[]);
    p.timed = true;
    core.apply(0, Event::PoolUpserted(p)).unwrap();
    core.apply(0, alloc_node(1, 4, Some(1), Some(60_000)))
        .unwrap();
    core.schedule(0);
    assert!(placement_of(&core.drain(), 1).is_none());
    core.check_consistency().unwrap();
    // Untimed again: it starts there.
    core.apply(0, Event::PoolUpserted(pool(1, "slurm", &[])))
        .unwrap();
    core.schedule(0);
    assert_eq!(nodes_of(&core.drain(), 1), vec![1]);
    core.check_consistency().unwrap();
}

#[test]
fn waiting_lists_what_the_pass_did_not_start_in_order() {
    let mut core = timed_world(Backfill::Easy, true);
    core.apply(0, alloc_node(1, 2, Some(1), None)).unwrap();
    core.apply(0, job(1).single(2, 1024, 0).submit()).unwrap();
    core.apply(0, job(2).gang(2, res(1, 512, 64)).timeout(90).submit())
        .unwrap();
    core.apply(0, job(3).single(1, 1024, 0).prio(5).submit())
        .unwrap();
    core.schedule(0);
    let started = starts(&core.drain());
    assert_eq!(started, vec![3]);
    let w = core.waiting(10, |_| true);
    assert_eq!(
        w,
        vec![
            Waiting {
                job: JobKey(1),
                queue: Q,
                nodes: vec![res(2, 1024, 0)],
                gang: false,
                timeout_s: None,
            },
            Waiting {
                job: JobKey(2),
                queue: Q,
                nodes: vec![res(1, 512, 64); 2],
                gang: true,
                timeout_s: Some(90),
            },
        ]
    );
    assert_eq!(core.waiting(1, |_| true).len(), 1);
    assert!(core.waiting(10, |q| q != Q).is_empty());
}
