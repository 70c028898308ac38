//! Job lifecycle: dependencies, arrays, cancel/terminate, retries, timeouts,
//! lost nodes, restore, errors.

mod common;

use common::*;
use shoal_core::*;

use JobState::*;

#[test]
fn submit_goes_runnable_or_pending() {
    let mut core = world(Backfill::Easy);
    core.apply(0, job(1).submit()).unwrap();
    core.apply(0, job(2).after(&[1]).submit()).unwrap();
    let ds = core.drain();
    assert_eq!(states_of(&ds, 1), vec![(Runnable, String::new())]);
    assert_eq!(states_of(&ds, 2), vec![(Pending, String::new())]);
    assert_eq!(core.runnable_count(), 1);
}

#[test]
fn dependency_chain_runs_in_order() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 4, 4096, 0)).unwrap();
    core.apply(0, job(1).submit()).unwrap();
    core.apply(0, job(2).after(&[1]).submit()).unwrap();
    core.apply(0, job(3).after(&[2]).submit()).unwrap();
    core.schedule(0);
    assert_eq!(starts(&core.drain()), vec![1]);
    core.apply(1, started(1, 0, 0)).unwrap();
    assert_eq!(state(&core, 1), Running);
    core.apply(2, exited(1, 0, 0, 0)).unwrap();
    assert_eq!(state(&core, 1), Succeeded);
    assert_eq!(state(&core, 2), Runnable);
    assert_eq!(state(&core, 3), Pending);
    core.schedule(2);
    assert_eq!(starts(&core.drain()), vec![2]);
    core.apply(3, exited(2, 0, 0, 0)).unwrap();
    core.schedule(3);
    assert_eq!(starts(&core.drain()), vec![3]);
}

#[test]
fn dependency_on_finished_jobs() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 4, 4096, 0)).unwrap();
    core.apply(0, job(1).submit()).unwrap();
    core.apply(0, job(2).submit()).unwrap();
    core.apply(
        0,
        Event::JobCancelled {
            job: JobKey(2),
            reason: "no".into(),
        },
    )
    .unwrap();
    core.schedule(0);
    core.apply(1, exited(1, 0, 0, 0)).unwrap();
    core.drain();
    // On a SUCCEEDED job: satisfied at once.
    core.apply(2, job(3).after(&[1]).submit()).unwrap();
    assert_eq!(state(&core, 3), Runnable);
    // On a FAILED job: FAILED at once.
    core.apply(2, job(4).after(&[1, 2]).submit()).unwrap();
    assert_eq!(
        core.job_state(JobKey(4)),
        Some((Failed, "Dependent Job failed"))
    );
    let ds = core.drain();
    assert_eq!(
        states_of(&ds, 4),
        vec![(Failed, "Dependent Job failed".to_string())]
    );
}

#[test]
fn unknown_dependency_is_an_error_and_changes_nothing() {
    let mut core = world(Backfill::Easy);
    let err = core.apply(0, job(1).after(&[99]).submit()).unwrap_err();
    assert_eq!(err, CoreError::UnknownJob(JobKey(99)));
    assert_eq!(err.to_string(), "unknown job 99");
    assert!(core.job_state(JobKey(1)).is_none());
    assert!(core.drain().is_empty());
    // The key is still free.
    core.apply(0, job(1).submit()).unwrap();
}

#[test]
fn errors_for_unknown_things() {
    let mut core = world(Backfill::Easy);
    assert_eq!(
        core.apply(0, job(1).queue(9).submit()),
        Err(CoreError::UnknownQueue(QueueId(9)))
    );
    assert_eq!(
        core.apply(0, Event::NodeLost(NodeId(3))),
        Err(CoreError::UnknownNode(NodeId(3)))
    );
    assert_eq!(
        core.apply(0, Event::PoolDeleted(PoolId(3))),
        Err(CoreError::UnknownPool(PoolId(3)))
    );
    assert_eq!(
        core.apply(
            0,
            Event::JobCancelled {
                job: JobKey(5),
                reason: String::new()
            }
        ),
        Err(CoreError::UnknownJob(JobKey(5)))
    );
    assert_eq!(
        core.apply(0, started(5, 0, 0)),
        Err(CoreError::UnknownJob(JobKey(5)))
    );
    core.apply(0, job(1).submit()).unwrap();
    assert_eq!(
        core.apply(0, job(1).submit()),
        Err(CoreError::DuplicateJob(JobKey(1)))
    );
    assert!(matches!(
        core.apply(0, job(2).after(&[2]).submit()),
        Err(CoreError::InvalidJob { .. })
    ));
    assert!(core
        .drain()
        .iter()
        .all(|d| matches!(d, Decision::State { job: JobKey(1), .. })));
}

#[test]
fn dependent_failure_cascades() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 4, 4096, 0)).unwrap();
    core.apply(0, job(1).submit()).unwrap();
    core.apply(0, job(2).after(&[1]).submit()).unwrap();
    core.apply(0, job(3).after(&[2]).submit()).unwrap();
    core.apply(0, job(4).after(&[3, 1]).submit()).unwrap();
    core.schedule(0);
    core.drain();
    core.apply(1, exited(1, 0, 0, 2)).unwrap();
    let ds = core.drain();
    assert_eq!(state(&core, 1), Failed);
    for k in [2, 3, 4] {
        assert_eq!(
            core.job_state(JobKey(k)),
            Some((Failed, "Dependent Job failed"))
        );
        assert_eq!(
            states_of(&ds, k).len(),
            1,
            "one FAILED decision for job {k}"
        );
    }
    // Cascade order: 1, then its dependents, then theirs.
    let order: Vec<u64> = ds
        .iter()
        .filter_map(|d| match d {
            Decision::State {
                job, state: Failed, ..
            } => Some(job.0),
            _ => None,
        })
        .collect();
    assert_eq!(order, vec![1, 2, 4, 3]);
}

#[test]
fn array_parent_succeeds_when_all_children_succeed() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 8, 8192, 0)).unwrap();
    core.apply(0, job(10).array(3).submit()).unwrap();
    for c in 11..=13 {
        core.apply(0, job(c).parent(10).submit()).unwrap();
    }
    assert_eq!(state(&core, 10), Pending);
    core.schedule(0);
    assert_eq!(starts(&core.drain()), vec![11, 12, 13]);
    core.apply(1, exited(11, 0, 0, 0)).unwrap();
    core.apply(1, exited(12, 0, 0, 0)).unwrap();
    assert_eq!(state(&core, 10), Pending);
    core.apply(2, exited(13, 0, 0, 0)).unwrap();
    assert_eq!(state(&core, 10), Succeeded);
    assert_eq!(
        states_of(&core.drain(), 10),
        vec![(Succeeded, String::new())]
    );
}

#[test]
fn array_parent_fails_when_a_child_fails() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 8, 8192, 0)).unwrap();
    core.apply(0, job(10).array(3).submit()).unwrap();
    core.apply(0, job(20).after(&[10]).submit()).unwrap();
    for c in 11..=13 {
        core.apply(0, job(c).parent(10).submit()).unwrap();
    }
    core.schedule(0);
    core.apply(1, exited(11, 0, 0, 0)).unwrap();
    core.apply(1, exited(12, 0, 0, 1)).unwrap();
    core.apply(1, exited(13, 0, 0, 0)).unwrap();
    assert_eq!(
        core.job_state(JobKey(10)),
        Some((Failed, "1 of 3 child jobs failed"))
    );
    // A job depending on the array fails too.
    assert_eq!(state(&core, 20), Failed);
    // Too many children is an error.
    assert!(matches!(
        core.apply(1, job(14).parent(10).submit()),
        Err(CoreError::InvalidJob { .. })
    ));
}

#[test]
fn cancel_of_array_parent_cancels_waiting_children() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 1, 8192, 0)).unwrap();
    core.apply(0, job(10).array(3).submit()).unwrap();
    core.apply(0, job(11).parent(10).submit()).unwrap();
    core.apply(0, job(12).parent(10).submit()).unwrap();
    core.schedule(0); // 11 starts, 12 waits
    core.apply(
        1,
        Event::JobCancelled {
            job: JobKey(10),
            reason: "user".into(),
        },
    )
    .unwrap();
    assert_eq!(
        state(&core, 11),
        Starting,
        "cancel leaves a started child alone"
    );
    assert_eq!(core.job_state(JobKey(12)), Some((Failed, "user")));
    // A child submitted after the cancel is cancelled too.
    core.apply(1, job(13).parent(10).submit()).unwrap();
    assert_eq!(state(&core, 13), Failed);
    assert_eq!(state(&core, 10), Pending);
    core.apply(2, exited(11, 0, 0, 0)).unwrap();
    assert_eq!(
        core.job_state(JobKey(10)),
        Some((Failed, "user (2 of 3 child jobs failed)")),
        "a cancelled array keeps the user's reason"
    );
}

#[test]
fn terminate_of_array_parent_kills_running_children() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 1, 8192, 0)).unwrap();
    core.apply(0, job(10).array(2).submit()).unwrap();
    core.apply(0, job(11).parent(10).submit()).unwrap();
    core.apply(0, job(12).parent(10).submit()).unwrap();
    core.schedule(0);
    core.drain();
    core.apply(
        1,
        Event::JobTerminated {
            job: JobKey(10),
            reason: "stop".into(),
        },
    )
    .unwrap();
    let ds = core.drain();
    assert!(ds.contains(&Decision::Kill {
        job: JobKey(11),
        attempt: 0,
        nodes: vec![NodeId(1)],
        reason: "stop".into()
    }));
    assert_eq!(state(&core, 11), Failed);
    assert_eq!(state(&core, 12), Failed);
    assert_eq!(state(&core, 10), Failed);
    assert_eq!(core.node_free(NodeId(1)), Some(res(1, 8192, 0)));
}

#[test]
fn cancel_versus_terminate() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 1, 1024, 0)).unwrap();
    core.apply(0, job(1).submit()).unwrap();
    core.apply(0, job(2).submit()).unwrap();
    core.schedule(0);
    core.drain();
    assert_eq!(state(&core, 1), Starting);
    // Cancel: no effect once started.
    core.apply(
        1,
        Event::JobCancelled {
            job: JobKey(1),
            reason: "c".into(),
        },
    )
    .unwrap();
    assert_eq!(state(&core, 1), Starting);
    assert!(core.drain().is_empty());
    // Cancel of a RUNNABLE job fails it.
    core.apply(
        1,
        Event::JobCancelled {
            job: JobKey(2),
            reason: "c2".into(),
        },
    )
    .unwrap();
    assert_eq!(core.job_state(JobKey(2)), Some((Failed, "c2")));
    assert_eq!(core.runnable_count(), 0);
    core.drain();
    // Terminate kills the attempt.
    core.apply(2, started(1, 0, 0)).unwrap();
    assert_eq!(states_of(&core.drain(), 1), vec![(Running, String::new())]);
    core.apply(
        3,
        Event::JobTerminated {
            job: JobKey(1),
            reason: "t".into(),
        },
    )
    .unwrap();
    let ds = core.drain();
    assert_eq!(
        ds,
        vec![
            Decision::Kill {
                job: JobKey(1),
                attempt: 0,
                nodes: vec![NodeId(1)],
                reason: "t".into()
            },
            Decision::AttemptEnded {
                job: JobKey(1),
                attempt: 0,
                exit_code: None,
                reason: "t".into(),
                counted: true,
            },
            Decision::State {
                job: JobKey(1),
                state: Failed,
                reason: "t".into()
            },
        ]
    );
    // Terminal: no effect.
    core.apply(
        4,
        Event::JobTerminated {
            job: JobKey(1),
            reason: "again".into(),
        },
    )
    .unwrap();
    assert!(core.drain().is_empty());
    assert_eq!(core.node_free(NodeId(1)), Some(res(1, 1024, 0)));
    // A late exit of the killed attempt is ignored.
    core.apply(5, exited(1, 0, 0, 137)).unwrap();
    assert!(core.drain().is_empty());
}

#[test]
fn retry_until_attempts_run_out() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 1, 1024, 0)).unwrap();
    core.apply(0, job(1).retry(3, vec![]).submit()).unwrap();
    for attempt in 0..3u32 {
        core.schedule(attempt as u64 * 10);
        let ds = core.drain();
        assert!(ds.iter().any(|d| matches!(d,
            Decision::Start { job: JobKey(1), attempt: a, .. } if *a == attempt)));
        core.apply(attempt as u64 * 10 + 5, exited(1, attempt, 0, 3))
            .unwrap();
        if attempt < 2 {
            assert_eq!(state(&core, 1), Runnable);
            assert_eq!(
                reason(&core, 1),
                format!(
                    "attempt {} failed (exit code 3); retrying (attempt {} of 3)",
                    attempt + 1,
                    attempt + 2
                )
            );
        }
    }
    assert_eq!(
        core.job_state(JobKey(1)),
        Some((Failed, "Essential container in task exited"))
    );
}

#[test]
fn evaluate_on_exit_globs() {
    let rules = vec![
        rule(Some("13*"), None, RetryAction::Exit),
        rule(None, Some("Host EC2*"), RetryAction::Retry),
        rule(Some("*"), None, RetryAction::Exit),
    ];
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 4, 4096, 0)).unwrap();
    for k in 1..=4 {
        core.apply(0, job(k).retry(5, rules.clone()).submit())
            .unwrap();
    }
    core.schedule(0);
    core.drain();
    // 137 matches "13*": EXIT.
    core.apply(1, exited(1, 0, 0, 137)).unwrap();
    assert_eq!(state(&core, 1), Failed);
    // Reason matches the second rule: RETRY.
    core.apply(
        1,
        Event::NodeExited {
            job: JobKey(2),
            attempt: 0,
            node_index: 0,
            exit_code: Some(1),
            reason: "Host EC2 (instance i-1) terminated.".into(),
        },
    )
    .unwrap();
    assert_eq!(state(&core, 2), Runnable);
    // Exit 1, other reason: third rule EXIT.
    core.apply(1, exited(3, 0, 0, 1)).unwrap();
    assert_eq!(state(&core, 3), Failed);
    // No exit code (lost node): "*" on the exit code does not match; no
    // rule matches: retry.
    core.apply(1, Event::NodeLost(NodeId(1))).unwrap();
    assert_eq!(state(&core, 4), Runnable);
    assert_eq!(
        reason(&core, 4),
        "attempt 1 failed (node n1 was lost); retrying (attempt 2 of 5)"
    );
}

#[test]
fn timeout_kills_without_retry() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 4, 4096, 0)).unwrap();
    core.apply(0, job(1).timeout(60).retry(3, vec![]).submit())
        .unwrap();
    core.apply(0, job(2).timeout(120).submit()).unwrap();
    assert_eq!(core.next_deadline(), None);
    core.schedule(1000);
    core.drain();
    assert_eq!(core.next_deadline(), Some(61_000));
    core.apply(61_000 - 1, Event::Tick).unwrap();
    assert!(core.drain().is_empty());
    core.apply(61_000, Event::Tick).unwrap();
    let ds = core.drain();
    assert_eq!(
        ds,
        vec![
            Decision::Kill {
                job: JobKey(1),
                attempt: 0,
                nodes: vec![NodeId(1)],
                reason: TIMEOUT_REASON.into()
            },
            Decision::AttemptEnded {
                job: JobKey(1),
                attempt: 0,
                exit_code: None,
                reason: TIMEOUT_REASON.into(),
                counted: true,
            },
            Decision::State {
                job: JobKey(1),
                state: Failed,
                reason: TIMEOUT_REASON.into()
            },
        ]
    );
    assert_eq!(core.next_deadline(), Some(121_000));
}

#[test]
fn node_lost_kills_gang_and_retries_elsewhere() {
    let mut core = world(Backfill::Easy);
    for n in 1..=3 {
        core.apply(0, node(n, 4, 4096, 0)).unwrap();
    }
    core.apply(0, job(1).gang(2, res(4, 1024, 0)).retry(2, vec![]).submit())
        .unwrap();
    core.schedule(0);
    let ds = core.drain();
    let p = placement_of(&ds, 1).unwrap();
    assert_eq!(
        p.iter().map(|p| p.node).collect::<Vec<_>>(),
        vec![NodeId(1), NodeId(2)]
    );
    core.apply(1, Event::NodeLost(NodeId(2))).unwrap();
    let ds = core.drain();
    assert_eq!(
        ds[..2],
        [
            Decision::Kill {
                job: JobKey(1),
                attempt: 0,
                nodes: vec![NodeId(1)],
                reason: "node n2 was lost".into()
            },
            Decision::AttemptEnded {
                job: JobKey(1),
                attempt: 0,
                exit_code: None,
                reason: "node n2 was lost".into(),
                counted: true,
            },
        ]
    );
    assert_eq!(state(&core, 1), Runnable);
    assert_eq!(core.node_free(NodeId(2)), None);
    // Until the killed task on n1 is gone, no other attempt starts.
    core.schedule(2);
    let ds = core.drain();
    assert!(
        !ds.iter().any(|d| matches!(d, Decision::Start { .. })),
        "started while attempt 0 still ran on n1: {ds:?}"
    );
    core.apply(2, exited(1, 0, 0, 143)).unwrap();
    assert_eq!(state(&core, 1), Runnable, "a stale report changes no state");
    core.schedule(2);
    let ds = core.drain();
    assert!(ds.iter().any(|d| matches!(
        d,
        Decision::Start {
            job: JobKey(1),
            attempt: 1,
            ..
        }
    )));
    let p = placement_of(&ds, 1).unwrap();
    assert_eq!(
        p.iter().map(|p| p.node).collect::<Vec<_>>(),
        vec![NodeId(1), NodeId(3)]
    );
    // The node comes back.
    core.apply(3, node(2, 4, 4096, 0)).unwrap();
    assert_eq!(core.node_free(NodeId(2)), Some(res(4, 4096, 0)));
}

#[test]
fn gang_main_node_exit_ends_attempt_and_kills_the_rest() {
    let mut core = world(Backfill::Easy);
    for n in 1..=3 {
        core.apply(0, node(n, 2, 2048, 0)).unwrap();
    }
    let mut b = job(1).gang(3, res(2, 1024, 0));
    b.0.shape = Shape::Gang {
        nodes: vec![res(2, 1024, 0); 3],
        main_node: 1,
    };
    core.apply(0, b.submit()).unwrap();
    core.schedule(0);
    core.drain();
    core.apply(1, started(1, 0, 0)).unwrap();
    assert_eq!(state(&core, 1), Starting, "node 0 is not the main node");
    core.apply(1, started(1, 0, 1)).unwrap();
    assert_eq!(state(&core, 1), Running);
    assert_eq!(
        core.apply(1, started(1, 0, 7)),
        Err(CoreError::InvalidNodeIndex {
            job: JobKey(1),
            node_index: 7
        })
    );
    // A non-main node exiting does not end the attempt.
    core.apply(2, exited(1, 0, 2, 0)).unwrap();
    assert_eq!(state(&core, 1), Running);
    core.drain();
    core.apply(3, exited(1, 0, 1, 0)).unwrap();
    let ds = core.drain();
    assert_eq!(
        ds[0],
        Decision::Kill {
            job: JobKey(1),
            attempt: 0,
            nodes: vec![NodeId(1)],
            reason: MAIN_EXITED_REASON.into()
        }
    );
    assert!(matches!(
        ds[1],
        Decision::AttemptEnded {
            exit_code: Some(0),
            ..
        }
    ));
    assert_eq!(state(&core, 1), Succeeded);
    for n in 1..=3 {
        assert_eq!(core.node_free(NodeId(n)), Some(res(2, 2048, 0)));
    }
}

#[test]
fn stale_attempt_events_are_ignored() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 1, 1024, 0)).unwrap();
    core.apply(0, job(1).retry(2, vec![]).submit()).unwrap();
    core.schedule(0);
    core.apply(1, exited(1, 0, 0, 1)).unwrap();
    core.schedule(2);
    core.drain();
    // Attempt 0 is over; its events change nothing.
    core.apply(3, started(1, 0, 0)).unwrap();
    core.apply(3, exited(1, 0, 0, 0)).unwrap();
    assert!(core.drain().is_empty());
    assert_eq!(state(&core, 1), Starting);
    core.apply(3, started(1, 1, 0)).unwrap();
    assert_eq!(state(&core, 1), Running);
}

#[test]
fn restored_jobs_take_their_state_silently() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 4, 4096, 0)).unwrap();
    core.apply(0, node(2, 4, 4096, 0)).unwrap();
    core.drain();
    let done = Restored {
        state: Succeeded,
        attempts_done: 1,
        uncounted: 0,
        running: None,
    };
    core.apply(0, job(1).restore(done)).unwrap();
    let running = Restored {
        state: Running,
        attempts_done: 1,
        uncounted: 0,
        running: Some((
            1,
            500,
            vec![Placement {
                node_index: 0,
                node: NodeId(1),
                alloc: res(3, 1000, 0),
            }],
        )),
    };
    core.apply(
        1000,
        job(2)
            .single(3, 1000, 0)
            .timeout(10)
            .after(&[1])
            .restore(running),
    )
    .unwrap();
    let waiting = Restored {
        state: Runnable,
        attempts_done: 0,
        uncounted: 0,
        running: None,
    };
    core.apply(1000, job(3).single(4, 1000, 0).restore(waiting))
        .unwrap();
    let pending = Restored {
        state: Pending,
        attempts_done: 0,
        uncounted: 0,
        running: None,
    };
    core.apply(1000, job(4).after(&[2]).restore(pending))
        .unwrap();
    assert!(core.drain().is_empty(), "restoring emits nothing");
    assert_eq!(core.node_free(NodeId(1)), Some(res(1, 3096, 0)));
    assert_eq!(core.next_deadline(), Some(10_500));
    assert_eq!(state(&core, 2), Running);
    assert_eq!(core.runnable_count(), 1);
    core.schedule(1000);
    let ds = core.drain();
    assert_eq!(placement_of(&ds, 3).unwrap()[0].node, NodeId(2));
    // The restored attempt's events work.
    core.apply(2000, exited(2, 1, 0, 0)).unwrap();
    assert_eq!(state(&core, 2), Succeeded);
    assert_eq!(state(&core, 4), Runnable);
    // Restoring onto an unknown node is an error.
    let bad = Restored {
        state: Starting,
        attempts_done: 0,
        uncounted: 0,
        running: Some((
            0,
            0,
            vec![Placement {
                node_index: 0,
                node: NodeId(9),
                alloc: res(1, 1, 0),
            }],
        )),
    };
    assert_eq!(
        core.apply(0, job(5).restore(bad)),
        Err(CoreError::UnknownNode(NodeId(9)))
    );
}

#[test]
fn restored_pending_job_with_finished_dependencies_moves_on() {
    let mut core = world(Backfill::Easy);
    core.apply(
        0,
        job(1).restore(Restored {
            state: Succeeded,
            attempts_done: 1,
            uncounted: 0,
            running: None,
        }),
    )
    .unwrap();
    core.apply(
        0,
        job(2).after(&[1]).restore(Restored {
            state: Pending,
            attempts_done: 0,
            uncounted: 0,
            running: None,
        }),
    )
    .unwrap();
    assert_eq!(states_of(&core.drain(), 2), vec![(Runnable, String::new())]);
}

#[test]
fn queue_delete_requires_finished_jobs() {
    let mut core = world(Backfill::Easy);
    core.apply(0, job(1).submit()).unwrap();
    assert_eq!(
        core.apply(0, Event::QueueDeleted(Q)),
        Err(CoreError::QueueNotEmpty { queue: Q, count: 1 })
    );
    core.apply(
        0,
        Event::JobCancelled {
            job: JobKey(1),
            reason: "x".into(),
        },
    )
    .unwrap();
    core.apply(0, Event::QueueDeleted(Q)).unwrap();
    assert_eq!(
        core.apply(0, job(2).submit()),
        Err(CoreError::UnknownQueue(Q))
    );
    core.apply(0, Event::PoolDeleted(POOL)).unwrap();
}

#[test]
fn core_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Core>();
    send_sync::<CoreError>();
}

#[test]
fn an_unschedulable_node_keeps_its_attempt_and_gets_no_new_one() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 2, 4096, 0)).unwrap();
    core.apply(0, job(1).submit()).unwrap();
    core.schedule(0);
    core.drain();
    assert_eq!(state(&core, 1), Starting);
    // The node stops taking work (a restart, a stopping worker).
    let Event::NodeUpserted(mut spec) = node(1, 2, 4096, 0) else {
        unreachable!()
    };
    spec.schedulable = false;
    core.apply(1, Event::NodeUpserted(spec.clone())).unwrap();
    core.apply(1, job(2).submit()).unwrap();
    core.schedule(1);
    core.drain();
    assert_eq!(state(&core, 2), Runnable, "nothing new on it");
    assert_eq!(state(&core, 1), Starting, "what it holds stays");
    core.apply(2, started(1, 0, 0)).unwrap();
    core.apply(2, exited(1, 0, 0, 0)).unwrap();
    assert_eq!(state(&core, 1), Succeeded);
    spec.schedulable = true;
    core.apply(3, Event::NodeUpserted(spec)).unwrap();
    core.schedule(3);
    assert_eq!(state(&core, 2), Starting, "placed once it takes work again");
}

#[test]
fn an_undelivered_start_does_not_use_up_an_attempt() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 2, 4096, 0)).unwrap();
    core.apply(0, node(2, 2, 4096, 0)).unwrap();
    // One attempt allowed: a counted failure would fail it for good.
    core.apply(0, job(1).gang(2, res(1, 0, 0)).retry(1, vec![]).submit())
        .unwrap();
    core.schedule(0);
    core.drain();
    core.apply(1, started(1, 0, 1)).unwrap();
    core.apply(
        2,
        Event::StartUndelivered {
            job: JobKey(1),
            attempt: 0,
            reason: "never reached n1".into(),
        },
    )
    .unwrap();
    let ds = core.drain();
    assert!(
        ds.contains(&Decision::Kill {
            job: JobKey(1),
            attempt: 0,
            nodes: vec![NodeId(1), NodeId(2)],
            reason: "never reached n1".into(),
        }),
        "what did start is killed: {ds:?}"
    );
    assert!(ds.contains(&Decision::AttemptEnded {
        job: JobKey(1),
        attempt: 0,
        exit_code: None,
        reason: "never reached n1".into(),
        counted: false,
    }));
    assert_eq!(state(&core, 1), Runnable);
    assert!(
        reason(&core, 1).contains("not counted"),
        "{}",
        reason(&core, 1)
    );
    // A stale report of the withdrawn attempt changes no state; once both
    // nodes' tasks are gone, the job may start again.
    core.apply(3, exited(1, 0, 0, 0)).unwrap();
    assert_eq!(state(&core, 1), Runnable);
    core.schedule(3);
    assert!(
        !core
            .drain()
            .iter()
            .any(|d| matches!(d, Decision::Start { .. })),
        "node 1's task may still run"
    );
    core.apply(3, exited(1, 0, 1, 0)).unwrap();
    // The next attempt has a number of its own, and its failure is the
    // first that counts: with one attempt allowed, the job fails.
    core.schedule(4);
    let ds = core.drain();
    assert!(
        ds.iter()
            .any(|d| matches!(d, Decision::Start { attempt: 1, .. })),
        "{ds:?}"
    );
    core.apply(5, exited(1, 1, 0, 3)).unwrap();
    assert_eq!(state(&core, 1), Failed);
}

#[test]
fn a_node_down_fails_its_attempts_with_the_given_reason() {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 2, 4096, 0)).unwrap();
    core.apply(0, job(1).retry(2, vec![]).submit()).unwrap();
    core.schedule(0);
    core.drain();
    core.apply(
        1,
        Event::NodeDown {
            node: NodeId(1),
            reason: "Host terminated: worker n1 stopped".into(),
        },
    )
    .unwrap();
    assert_eq!(state(&core, 1), Runnable);
    assert_eq!(
        reason(&core, 1),
        "attempt 1 failed (Host terminated: worker n1 stopped); retrying (attempt 2 of 2)"
    );
}
