//! Property tests over random event sequences, with a scheduling pass after
//! every event:
//! 1. no node is ever over-committed, and gang nodes are exclusive;
//! 2. a gang starts whole (one distinct node per node index) or not at all;
//! 3. EASY never delays the head's reservation: after a pass, the head can
//!    still start by the shadow time the pass computed before backfilling;
//! 4. determinism: replaying the same calls yields the same decisions;
//! 5. FCFS's pass that stops at its blocked head (skipping the jobs behind
//!    it) decides, reasons and finds queue heads exactly as a pass that
//!    walks every job.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use proptest::prelude::*;
use shoal_core::*;

#[derive(Debug, Clone)]
enum Op {
    AddNode {
        id: u32,
        vcpus: u32,
        mem: u64,
        shm: u64,
    },
    LoseNode {
        pick: usize,
    },
    Submit {
        gang: usize,
        vcpus: u32,
        mem: u64,
        shm: u64,
        prio: i32,
        timeout: Option<u64>,
        attempts: u32,
        dep: Option<usize>,
        queue: u32,
    },
    Start {
        pick: usize,
    },
    Exit {
        pick: usize,
        index: u32,
        code: i32,
    },
    Cancel {
        pick: usize,
        terminate: bool,
    },
    Advance {
        secs: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u32..6, 1u32..=8, 1u64..=8, 0u64..=2).prop_map(|(id, vcpus, mem, shm)| Op::AddNode {
            id,
            vcpus,
            mem: mem * 1024,
            shm: shm * 1024
        }),
        1 => any::<usize>().prop_map(|pick| Op::LoseNode { pick }),
        6 => (
            prop_oneof![2 => Just(0usize), 1 => 1usize..=3],
            1u32..=4,
            0u64..=4,
            0u64..=2,
            0i32..3,
            prop::option::of(1u64..=100),
            1u32..=3,
            prop::option::weighted(0.2, any::<usize>()),
            1u32..=2,
        )
            .prop_map(|(gang, vcpus, mem, shm, prio, timeout, attempts, dep, queue)| Op::Submit {
                gang,
                vcpus,
                mem: mem * 1024,
                shm: shm * 512,
                prio,
                timeout,
                attempts,
                dep,
                queue
            }),
        2 => any::<usize>().prop_map(|pick| Op::Start { pick }),
        4 => (any::<usize>(), 0u32..3, 0i32..3).prop_map(|(pick, index, code)| Op::Exit { pick, index, code }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, terminate)| Op::Cancel { pick, terminate }),
        3 => (0u64..80).prop_map(|secs| Op::Advance { secs }),
    ]
}

/// A call made on the core, for replay.
#[derive(Debug, Clone)]
enum Call {
    Apply(Millis, Box<Event>),
    Schedule(Millis),
}

/// What the decisions say is running.
#[derive(Default)]
struct Model {
    nodes: BTreeMap<NodeId, Resources>,
    /// job -> (attempt, placement, gang)
    running: BTreeMap<JobKey, (u32, Vec<Placement>, bool)>,
    shapes: BTreeMap<JobKey, (usize, bool)>,
}

impl Model {
    fn observe(&mut self, ds: &[Decision]) -> Result<(), TestCaseError> {
        for d in ds {
            match d {
                Decision::Start {
                    job,
                    attempt,
                    placement,
                } => {
                    prop_assert!(!self.running.contains_key(job), "{job:?} started twice");
                    let (n, gang) = self.shapes[job];
                    // (2) whole gang: one entry per node index, distinct nodes.
                    prop_assert_eq!(placement.len(), n);
                    let distinct: BTreeSet<NodeId> = placement.iter().map(|p| p.node).collect();
                    prop_assert_eq!(distinct.len(), n);
                    for (i, p) in placement.iter().enumerate() {
                        prop_assert_eq!(p.node_index as usize, i);
                        prop_assert!(self.nodes.contains_key(&p.node), "placed on a missing node");
                    }
                    self.running
                        .insert(*job, (*attempt, placement.clone(), gang));
                }
                Decision::AttemptEnded { job, attempt, .. } => {
                    let r = self.running.remove(job);
                    prop_assert!(r.is_some_and(|r| r.0 == *attempt), "ended unknown attempt");
                }
                _ => {}
            }
        }
        self.check()
    }

    /// (1) no over-commit; gang nodes exclusive.
    fn check(&self) -> Result<(), TestCaseError> {
        let mut used: BTreeMap<NodeId, (Resources, usize, bool)> = BTreeMap::new();
        for (_, p, gang) in self.running.values() {
            for p in p {
                let e = used.entry(p.node).or_default();
                e.0.vcpus += p.alloc.vcpus;
                e.0.memory_mib += p.alloc.memory_mib;
                e.0.shm_mib += p.alloc.shm_mib;
                e.1 += 1;
                e.2 |= *gang;
            }
        }
        for (node, (u, users, gang)) in used {
            let cap = self.nodes.get(&node).copied();
            prop_assert!(cap.is_some(), "attempt left on a lost node");
            let cap = cap.unwrap();
            prop_assert!(
                u.vcpus <= cap.vcpus && u.memory_mib <= cap.memory_mib && u.shm_mib <= cap.shm_mib,
                "node {node:?} over-committed: {u:?} > {cap:?}"
            );
            prop_assert!(
                !gang || users == 1,
                "gang node {node:?} shared by {users} attempts"
            );
        }
        Ok(())
    }
}

fn run(mode: Backfill, ops: &[Op]) -> Result<(), TestCaseError> {
    let second = || Event::QueueUpserted(queue(2, "second", 0, &[1]));
    let mut core = world(mode);
    core.apply(0, second()).unwrap();
    // (5) FCFS: the same calls, each pass walking every job.
    let mut full = world(mode);
    full.apply(0, second()).unwrap();
    let mut calls = vec![
        Call::Apply(0, Box::new(Event::PoolUpserted(pool(1, "default", &[])))),
        Call::Apply(
            0,
            Box::new(Event::QueueUpserted(queue(1, "default", 0, &[1]))),
        ),
        Call::Apply(0, Box::new(second())),
    ];
    let mut log: Vec<Decision> = Vec::new();
    let mut model = Model::default();
    let mut now: Millis = 0;
    let mut next_key = 1u64;
    let mut keys: Vec<JobKey> = Vec::new();
    for op in ops {
        let event = match op.clone() {
            Op::AddNode {
                id,
                vcpus,
                mem,
                shm,
            } => {
                if model.nodes.contains_key(&NodeId(id)) {
                    continue;
                }
                model.nodes.insert(NodeId(id), res(vcpus, mem, shm));
                node(id, vcpus, mem, shm)
            }
            Op::LoseNode { pick } => {
                if model.nodes.is_empty() {
                    continue;
                }
                let id = *model.nodes.keys().nth(pick % model.nodes.len()).unwrap();
                Event::NodeLost(id)
            }
            Op::Submit {
                gang,
                vcpus,
                mem,
                shm,
                prio,
                timeout,
                attempts,
                dep,
                queue,
            } => {
                let key = next_key;
                next_key += 1;
                let mut b = job(key)
                    .prio(prio)
                    .at(now)
                    .retry(attempts, vec![])
                    .queue(queue);
                b = if gang == 0 {
                    b.single(vcpus, mem, shm)
                } else {
                    b.gang(gang, res(vcpus, mem, shm))
                };
                if let Some(t) = timeout {
                    b = b.timeout(t);
                }
                if let (Some(d), false) = (dep, keys.is_empty()) {
                    b = b.after(&[keys[d % keys.len()].0]);
                }
                model.shapes.insert(JobKey(key), (gang.max(1), gang > 0));
                keys.push(JobKey(key));
                b.submit()
            }
            Op::Start { pick } => {
                if model.running.is_empty() {
                    continue;
                }
                let (job, (attempt, _, _)) = model
                    .running
                    .iter()
                    .nth(pick % model.running.len())
                    .unwrap();
                Event::NodeStarted {
                    job: *job,
                    attempt: *attempt,
                    node_index: 0,
                }
            }
            Op::Exit { pick, index, code } => {
                if model.running.is_empty() {
                    continue;
                }
                let (job, (attempt, p, _)) = model
                    .running
                    .iter()
                    .nth(pick % model.running.len())
                    .unwrap();
                Event::NodeExited {
                    job: *job,
                    attempt: *attempt,
                    node_index: index % p.len() as u32,
                    exit_code: Some(code),
                    reason: String::new(),
                }
            }
            Op::Cancel { pick, terminate } => {
                if keys.is_empty() {
                    continue;
                }
                let job = keys[pick % keys.len()];
                let reason = "by test".to_string();
                if terminate {
                    Event::JobTerminated { job, reason }
                } else {
                    Event::JobCancelled { job, reason }
                }
            }
            Op::Advance { secs } => {
                now += secs * 1000;
                Event::Tick
            }
        };
        let lost = match &event {
            Event::NodeLost(id) => Some(*id),
            _ => None,
        };
        calls.push(Call::Apply(now, Box::new(event.clone())));
        if mode == Backfill::Fcfs {
            prop_assert!(full.apply(now, event.clone()).is_ok());
            full.drain();
        }
        prop_assert!(core.apply(now, event).is_ok());
        let ds = core.drain();
        if let Some(id) = lost {
            model.nodes.remove(&id);
        }
        model.observe(&ds)?;
        log.extend(ds);

        calls.push(Call::Schedule(now));
        core.schedule(now);
        let ds = core.drain();
        if mode == Backfill::Fcfs {
            full.forget_pass_memory();
            full.schedule(now);
            prop_assert_eq!(&ds, &full.drain(), "FCFS skipping decided otherwise");
            prop_assert_eq!(core.queue_heads(), full.queue_heads());
            for k in &keys {
                prop_assert_eq!(core.job_state(*k), full.job_state(*k));
            }
        }
        model.observe(&ds)?;
        log.extend(ds);

        // (3) EASY: the head can still start by its shadow time.
        if mode == Backfill::Easy {
            if let Some((head, shadow)) = core.last_pass_head() {
                if shadow != Millis::MAX {
                    let again = core.head_reservation(now);
                    prop_assert!(
                        again.is_some_and(|(h, s)| h == head && s <= shadow),
                        "head {head:?} reserved at {shadow}, now {again:?}"
                    );
                }
            }
        }
        if let Err(e) = core.check_consistency() {
            prop_assert!(false, "inconsistent bookkeeping: {}", e);
        }
        prop_assert_eq!(
            core.runnable_count(),
            keys.iter()
                .filter(|k| core.job_state(**k).unwrap().0 == JobState::Runnable
                    && core.lingering(**k) == 0)
                .count()
        );
    }

    // (4) determinism.
    let mut replay = Core::new(CoreConfig { backfill: mode });
    let mut log2 = Vec::new();
    for c in calls {
        match c {
            Call::Apply(t, e) => replay.apply(t, *e).unwrap(),
            Call::Schedule(t) => replay.schedule(t),
        }
        log2.extend(replay.drain());
    }
    // The first two calls' decisions (none) were not in `log`.
    prop_assert_eq!(log, log2);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn easy_invariants(ops in prop::collection::vec(op(), 1..80)) {
        run(Backfill::Easy, &ops)?;
    }

    #[test]
    fn fcfs_invariants(ops in prop::collection::vec(op(), 1..80)) {
        run(Backfill::Fcfs, &ops)?;
    }

    #[test]
    fn conservative_invariants(ops in prop::collection::vec(op(), 1..80)) {
        run(Backfill::Conservative, &ops)?;
    }
}
