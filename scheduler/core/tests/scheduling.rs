//! Scheduling passes: order, placement, gangs, queues and pools, status
//! reasons, FCFS / EASY / Conservative backfilling.

mod common;

use std::collections::BTreeMap;

use common::*;
use shoal_core::*;

use JobState::*;

#[test]
fn single_jobs_pack_first_fit_on_all_three_resources() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 4, 4096, 1024)).unwrap();
    core.apply(0, node(2, 4, 4096, 1024)).unwrap();
    core.apply(0, job(1).single(2, 1024, 512).submit()).unwrap();
    core.apply(0, job(2).single(1, 1024, 512).submit()).unwrap();
    // Fits node 1 by vCPUs and memory, but its shared memory is used up.
    core.apply(0, job(3).single(1, 1024, 512).submit()).unwrap();
    core.schedule(0);
    let ds = core.drain();
    assert_eq!(placement_of(&ds, 1).unwrap()[0].node, NodeId(1));
    assert_eq!(placement_of(&ds, 2).unwrap()[0].node, NodeId(1));
    let p3 = placement_of(&ds, 3).unwrap();
    assert_eq!(
        p3,
        vec![Placement {
            node_index: 0,
            node: NodeId(2),
            alloc: res(1, 1024, 512)
        }]
    );
    assert_eq!(core.node_free(NodeId(1)), Some(res(1, 2048, 0)));
    // Start then STARTING, per job.
    let i = ds
        .iter()
        .position(|d| matches!(d, Decision::Start { job: JobKey(1), .. }))
        .unwrap();
    assert_eq!(
        ds[i + 1],
        Decision::State {
            job: JobKey(1),
            state: Starting,
            reason: String::new()
        }
    );
}

#[test]
fn priority_order_queue_then_job_then_submit_time() {
    let mut core = world(Backfill::Fcfs);
    core.apply(0, Event::QueueUpserted(queue(2, "high", 10, &[1])))
        .unwrap();
    core.apply(0, node(1, 1, 1024, 0)).unwrap();
    core.apply(0, job(1).prio(100).at(0).submit()).unwrap();
    core.apply(0, job(2).prio(0).at(5).queue(2).submit())
        .unwrap();
    core.apply(0, job(3).prio(1).at(9).queue(2).submit())
        .unwrap();
    core.apply(0, job(4).prio(1).at(7).queue(2).submit())
        .unwrap();
    core.apply(0, job(5).prio(1).at(7).queue(2).submit())
        .unwrap();
    let mut order = Vec::new();
    let mut now = 0;
    for _ in 0..5 {
        core.schedule(now);
        let s = starts(&core.drain());
        assert_eq!(s.len(), 1);
        order.push(s[0]);
        now += 1;
        core.apply(now, exited(s[0], 0, 0, 0)).unwrap();
    }
    // Queue priority first; then job priority; then submit time; then key.
    assert_eq!(order, vec![4, 5, 3, 2, 1]);
}

#[test]
fn queue_priority_change_reorders() {
    let mut core = world(Backfill::Fcfs);
    core.apply(0, Event::QueueUpserted(queue(2, "other", 0, &[1])))
        .unwrap();
    core.apply(0, node(1, 1, 1024, 0)).unwrap();
    core.apply(0, job(1).submit()).unwrap();
    core.apply(0, job(2).queue(2).submit()).unwrap();
    core.apply(0, Event::QueueUpserted(queue(2, "other", 5, &[1])))
        .unwrap();
    core.schedule(0);
    assert_eq!(starts(&core.drain()), vec![2]);
}

#[test]
fn disabled_queue_starts_nothing() {
    let mut core = world(Backfill::Easy);
    let mut q = queue(2, "q1", 0, &[1]);
    q.enabled = false;
    core.apply(0, Event::QueueUpserted(q.clone())).unwrap();
    core.apply(0, node(1, 4, 4096, 0)).unwrap();
    core.apply(0, job(1).queue(2).submit()).unwrap();
    core.apply(0, job(2).submit()).unwrap();
    core.schedule(0);
    let ds = core.drain();
    assert_eq!(starts(&ds), vec![2]);
    assert_eq!(
        core.job_state(JobKey(1)),
        Some((Runnable, "queue q1 is DISABLED"))
    );
    q.enabled = true;
    core.apply(1, Event::QueueUpserted(q)).unwrap();
    core.schedule(1);
    assert_eq!(starts(&core.drain()), vec![1]);
}

#[test]
fn pools_select_nodes_by_labels_in_queue_order() {
    let mut core = world(Backfill::Easy);
    core.apply(0, Event::PoolUpserted(pool(2, "gpu", &[("kind", "gpu")])))
        .unwrap();
    core.apply(0, Event::PoolUpserted(pool(3, "cpu", &[("kind", "cpu")])))
        .unwrap();
    core.apply(0, Event::QueueUpserted(queue(2, "mixed", 0, &[3, 2])))
        .unwrap();
    core.apply(0, Event::QueueUpserted(queue(3, "gpu-only", 0, &[2])))
        .unwrap();
    core.apply(0, node_labeled(1, 2, 1024, 0, &[("kind", "gpu")]))
        .unwrap();
    core.apply(0, node_labeled(2, 2, 1024, 0, &[("kind", "cpu")]))
        .unwrap();
    core.apply(0, job(1).queue(2).submit()).unwrap(); // prefers cpu pool
    core.apply(0, job(2).queue(3).submit()).unwrap(); // gpu only
    core.apply(0, job(3).queue(3).single(2, 0, 0).submit())
        .unwrap(); // gpu node has 1 left
    core.schedule(0);
    let ds = core.drain();
    assert_eq!(placement_of(&ds, 1).unwrap()[0].node, NodeId(2));
    assert_eq!(placement_of(&ds, 2).unwrap()[0].node, NodeId(1));
    assert!(placement_of(&ds, 3).is_none());
    core.apply(
        1,
        Event::JobCancelled {
            job: JobKey(3),
            reason: "x".into(),
        },
    )
    .unwrap();
    // Disabling the cpu pool sends mixed work to gpu nodes.
    let mut cpu = pool(3, "cpu", &[("kind", "cpu")]);
    cpu.enabled = false;
    core.apply(1, Event::PoolUpserted(cpu)).unwrap();
    core.apply(1, job(4).queue(2).submit()).unwrap();
    core.schedule(1);
    let ds = core.drain();
    assert_eq!(placement_of(&ds, 4).unwrap()[0].node, NodeId(1));
}

#[test]
fn gang_starts_whole_or_not_at_all() {
    let mut core = world(Backfill::Fcfs);
    for n in 1..=3 {
        core.apply(0, node(n, 4, 4096, 0)).unwrap();
    }
    core.apply(0, job(1).single(1, 0, 0).submit()).unwrap();
    core.apply(0, job(2).gang(3, res(2, 1024, 0)).submit())
        .unwrap();
    core.schedule(0);
    let ds = core.drain();
    // Node 1 is busy with job 1: only two idle nodes, the gang waits.
    assert_eq!(starts(&ds), vec![1]);
    assert_eq!(
        core.job_state(JobKey(2)),
        Some((
            Runnable,
            "waiting for resources: needs 3 free nodes (2 vCPUs, 1024 MiB each)"
        ))
    );
    core.apply(1, exited(1, 0, 0, 0)).unwrap();
    core.schedule(1);
    let ds = core.drain();
    let p = placement_of(&ds, 2).unwrap();
    assert_eq!(p.len(), 3);
    let nodes: Vec<NodeId> = p.iter().map(|p| p.node).collect();
    assert_eq!(nodes, vec![NodeId(1), NodeId(2), NodeId(3)]);
    assert_eq!(
        p.iter().map(|p| p.node_index).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
}

#[test]
fn gang_nodes_are_exclusive() {
    let mut core = world(Backfill::Easy);
    for n in 1..=3 {
        core.apply(0, node(n, 8, 8192, 0)).unwrap();
    }
    core.apply(0, job(1).gang(2, res(2, 1024, 0)).submit())
        .unwrap();
    core.apply(0, job(2).single(1, 0, 0).submit()).unwrap();
    core.apply(0, job(3).single(1, 0, 0).submit()).unwrap();
    core.schedule(0);
    let ds = core.drain();
    assert_eq!(placement_of(&ds, 1).unwrap().len(), 2);
    // Nodes 1 and 2 have room but are held by the gang.
    assert_eq!(placement_of(&ds, 2).unwrap()[0].node, NodeId(3));
    assert_eq!(placement_of(&ds, 3).unwrap()[0].node, NodeId(3));
    // A second gang needs idle nodes: node 3 is not idle.
    core.apply(1, job(4).gang(1, res(1, 0, 0)).submit())
        .unwrap();
    core.schedule(1);
    assert!(starts(&core.drain()).is_empty());
    assert_eq!(core.node_free(NodeId(1)), Some(res(6, 7168, 0)));
}

#[test]
fn heterogeneous_gang_assigns_each_index_a_fitting_node() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 2, 1024, 0)).unwrap();
    core.apply(0, node(2, 8, 1024, 0)).unwrap();
    let mut b = job(1);
    b.0.shape = Shape::Gang {
        nodes: vec![res(8, 0, 0), res(2, 0, 0)],
        main_node: 0,
    };
    core.apply(0, b.submit()).unwrap();
    core.schedule(0);
    let p = placement_of(&core.drain(), 1).unwrap();
    assert_eq!(p[0].node, NodeId(2));
    assert_eq!(p[1].node, NodeId(1));
}

#[test]
fn status_reasons_explain_what_never_fits() {
    let mut core = world(Backfill::Easy);
    core.apply(0, job(1).submit()).unwrap();
    core.schedule(0);
    assert_eq!(
        reason(&core, 1),
        "no worker nodes are registered in compute environments [default] of queue default"
    );
    core.apply(0, node(1, 4, 8192, 2048)).unwrap();
    core.apply(0, node(2, 4, 8192, 2048)).unwrap();
    core.apply(0, job(2).single(8, 1024, 0).submit()).unwrap();
    core.apply(0, job(3).gang(2, res(1, 4096, 4096)).submit())
        .unwrap();
    core.apply(0, job(4).single(1, 16384, 0).submit()).unwrap();
    core.apply(0, job(5).gang(3, res(1, 1, 0)).submit())
        .unwrap();
    core.schedule(1);
    assert_eq!(
        reason(&core, 2),
        "needs 8 vCPUs on one node; the largest node offers 4"
    );
    assert_eq!(
        reason(&core, 3),
        "needs 2 nodes with 4096 MiB shared memory; the largest node offers 2048 MiB"
    );
    assert!(reason(&core, 3).contains("shared memory"));
    assert!(reason(&core, 4).contains("largest node"));
    assert_eq!(
        reason(&core, 5),
        "needs 3 nodes; compute environments [default] of queue default have only 2 worker nodes"
    );
    // Never-fitting jobs are not the head: job 6 behind them starts.
    core.apply(1, job(6).submit()).unwrap();
    core.schedule(2);
    assert_eq!(starts(&core.drain()), vec![1, 6]);
    // Reasons are emitted only when they change.
    core.schedule(3);
    assert!(core.drain().is_empty());
    // A queue without ENABLED compute environments.
    let mut p = pool(1, "default", &[]);
    p.enabled = false;
    core.apply(4, Event::PoolUpserted(p)).unwrap();
    core.schedule(4);
    assert_eq!(
        reason(&core, 2),
        "no ENABLED compute environment in queue default: [default (DISABLED)]"
    );
}

#[test]
fn status_reason_for_waiting_jobs() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 4, 4096, 1024)).unwrap();
    core.apply(0, job(1).single(4, 1024, 0).submit()).unwrap();
    core.apply(0, job(2).single(4, 1024, 512).submit()).unwrap();
    core.drain();
    core.schedule(0);
    let ds = core.drain();
    assert_eq!(
        states_of(&ds, 2),
        vec![(
            Runnable,
            "waiting for resources (4 vCPUs, 1024 MiB, 512 MiB shared memory)".into()
        )]
    );
    core.schedule(1);
    assert!(
        core.drain().is_empty(),
        "unchanged reasons are not emitted again"
    );
}

/// EASY vs FCFS on one 4-vCPU node. Jobs run exactly their estimate.
///
/// | job | vCPUs | estimate |
/// | 1   | 2     | 100      |
/// | 2   | 3     | 50       |  head at t=0: shadow 100, extra 4-3 = 1
/// | 3   | 1     | 1000     |  EASY: fits the extra (1) -> starts at 0
/// | 4   | 1     | 1000     |  EASY: extra used up, ends after 100 -> waits
/// | 5   | 1     | 60       |  EASY: ends by 100 -> starts at 0
///
/// EASY: t=0 start 1, 3, 5 (node full). t=60: 5 ends; head 2 needs 3, free
/// 1; shadow 100 (1 ends), extra 0; 4 waits. t=100: 2 starts (free 3 -> 0).
/// t=150: 2 ends, 4 starts.
///
/// FCFS: t=0 start 1; 2 blocked, stop. t=100: 2 and 3 start. t=150: 4 and 5.
#[test]
fn easy_backfill_versus_fcfs_hand_checked() {
    let est: BTreeMap<u64, Millis> = [(1, 100), (2, 50), (3, 1000), (4, 1000), (5, 60)].into();
    let cpus = [(1, 2), (2, 3), (3, 1), (4, 1), (5, 1)];
    let run = |mode| {
        let mut core = world(mode);
        core.apply(0, node(1, 4, 4096, 0)).unwrap();
        for (k, c) in cpus {
            let ms = est[&k];
            // Estimates in seconds via the timeout; the driver works in the
            // same unit, so use seconds as the time unit here.
            core.apply(0, job(k).single(c, 0, 0).timeout(ms).submit())
                .unwrap();
        }
        let est_ms: BTreeMap<u64, Millis> = est.iter().map(|(&k, &v)| (k, v * 1000)).collect();
        let starts = simulate(&mut core, 0, &est_ms);
        starts
            .into_iter()
            .map(|(k, t)| (k, t / 1000))
            .collect::<BTreeMap<u64, Millis>>()
    };
    let easy = run(Backfill::Easy);
    assert_eq!(easy, [(1, 0), (2, 100), (3, 0), (4, 150), (5, 0)].into());
    let fcfs = run(Backfill::Fcfs);
    assert_eq!(
        fcfs,
        [(1, 0), (2, 100), (3, 100), (4, 150), (5, 150)].into()
    );
}

#[test]
fn easy_head_reservation_hook() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 4, 4096, 0)).unwrap();
    core.apply(0, job(1).single(2, 0, 0).timeout(100).submit())
        .unwrap();
    core.apply(0, job(2).single(4, 0, 0).timeout(100).submit())
        .unwrap();
    core.apply(0, job(3).single(2, 0, 0).timeout(30).submit())
        .unwrap();
    core.schedule(0);
    assert_eq!(starts(&core.drain()), vec![1, 3]);
    assert_eq!(core.last_pass_head(), Some((JobKey(2), 100_000)));
    assert_eq!(core.head_reservation(0), Some((JobKey(2), 100_000)));
    // Past estimates count as ending now.
    assert_eq!(core.head_reservation(200_000), Some((JobKey(2), 200_000)));
}

/// Conservative vs EASY on one 4-vCPU node.
///
/// | job | vCPUs | estimate |
/// | 1   | 3     | 100      |  starts at 0
/// | 2   | 2     | 100      |  head: reserved [100, 200)
/// | 3   | 4     | 100      |  Conservative: reserved [200, 300)
/// | 4   | 1     | 500      |  fits now; EASY: in the extra (4-2) -> starts at
///                               0. Conservative: would delay job 3 -> 300.
///
/// EASY: 1@0, 4@0, 2@100, 3@500 (waits for 4). Conservative: 1@0, 2@100,
/// 3@200, 4@300.
#[test]
fn conservative_protects_every_reservation() {
    let spec = [(1, 3, 100), (2, 2, 100), (3, 4, 100), (4, 1, 500)];
    let run = |mode| {
        let mut core = world(mode);
        core.apply(0, node(1, 4, 4096, 0)).unwrap();
        let mut est = BTreeMap::new();
        for (k, c, e) in spec {
            core.apply(0, job(k).single(c, 0, 0).timeout(e).submit())
                .unwrap();
            est.insert(k, e * 1000);
        }
        simulate(&mut core, 0, &est)
            .into_iter()
            .map(|(k, t)| (k, t / 1000))
            .collect::<BTreeMap<u64, Millis>>()
    };
    assert_eq!(
        run(Backfill::Easy),
        [(1, 0), (2, 100), (3, 500), (4, 0)].into()
    );
    assert_eq!(
        run(Backfill::Conservative),
        [(1, 0), (2, 100), (3, 200), (4, 300)].into()
    );
}

#[test]
fn conservative_backfills_what_delays_nobody() {
    let mut core = world(Backfill::Conservative);
    core.apply(0, node(1, 4, 4096, 0)).unwrap();
    core.apply(0, node(2, 4, 4096, 0)).unwrap();
    core.apply(0, job(1).gang(2, res(2, 0, 0)).timeout(100).submit())
        .unwrap();
    core.apply(0, job(2).gang(2, res(4, 0, 0)).timeout(100).submit())
        .unwrap();
    core.apply(0, job(3).single(1, 0, 0).timeout(50).submit())
        .unwrap();
    core.schedule(0);
    // Job 3 cannot share the gang's nodes; job 2 is reserved at 100.
    assert_eq!(starts(&core.drain()), vec![1]);
    assert_eq!(core.last_pass_head(), Some((JobKey(2), 100_000)));
    core.apply(100_000, exited(1, 0, 0, 0)).unwrap();
    core.schedule(100_000);
    assert_eq!(starts(&core.drain()), vec![2]);
}

#[test]
fn easy_gang_head_reserves_whole_nodes() {
    let mut core = world(Backfill::Easy);
    for n in 1..=3 {
        core.apply(0, node(n, 4, 4096, 0)).unwrap();
    }
    core.apply(0, job(1).single(1, 0, 0).timeout(100).submit())
        .unwrap(); // node 1
    core.apply(0, job(2).single(1, 0, 0).timeout(200).submit())
        .unwrap(); // node 1
    core.apply(0, job(3).gang(3, res(4, 0, 0)).timeout(100).submit())
        .unwrap(); // head
    core.apply(0, job(4).single(1, 0, 0).timeout(1000).submit())
        .unwrap(); // long
    core.apply(0, job(5).single(1, 0, 0).timeout(150).submit())
        .unwrap(); // short
    core.schedule(0);
    let ds = core.drain();
    // Shadow: node 1 idle at 200. Job 4 would run past it on nodes the gang
    // reserved (all three): waits. Job 5 ends by 200: starts.
    assert_eq!(core.last_pass_head(), Some((JobKey(3), 200_000)));
    assert_eq!(starts(&ds), vec![1, 2, 5]);
}
