//! Small builders shared by the core's tests.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use shoal_core::*;

pub const Q: QueueId = QueueId(1);
pub const POOL: PoolId = PoolId(1);

pub fn res(vcpus: u32, memory_mib: u64, shm_mib: u64) -> Resources {
    Resources {
        vcpus,
        memory_mib,
        shm_mib,
    }
}

/// A node `n<id>` with these resources and no labels.
pub fn node(id: u32, vcpus: u32, mem: u64, shm: u64) -> Event {
    node_labeled(id, vcpus, mem, shm, &[])
}

pub fn node_labeled(id: u32, vcpus: u32, mem: u64, shm: u64, labels: &[(&str, &str)]) -> Event {
    Event::NodeUpserted(NodeSpec {
        id: NodeId(id),
        name: format!("n{id}"),
        capacity: res(vcpus, mem, shm),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        schedulable: true,
        group: None,
        ends_at: None,
    })
}

pub fn queue(id: u32, name: &str, priority: i32, pools: &[u32]) -> QueueSpec {
    QueueSpec {
        id: QueueId(id),
        name: name.to_string(),
        priority,
        enabled: true,
        pools: pools.iter().map(|&p| PoolId(p)).collect(),
        default_estimate_s: 3600,
        fairshare: None,
    }
}

pub fn pool(id: u32, name: &str, selector: &[(&str, &str)]) -> PoolSpec {
    PoolSpec {
        id: PoolId(id),
        name: name.to_string(),
        enabled: true,
        selector: selector
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        timed: false,
    }
}

/// A core with queue `default` (id 1) on pool `default` (id 1, every node).
pub fn world(backfill: Backfill) -> Core {
    let mut core = Core::new(CoreConfig { backfill });
    core.apply(0, Event::PoolUpserted(pool(1, "default", &[])))
        .unwrap();
    core.apply(0, Event::QueueUpserted(queue(1, "default", 0, &[1])))
        .unwrap();
    core
}

/// Job builder: `job(1).single(2, 1024, 0).timeout(60).submit()`.
#[derive(Clone)]
pub struct JobB(pub JobSpec);

pub fn job(key: u64) -> JobB {
    JobB(JobSpec {
        key: JobKey(key),
        queue: Q,
        priority: 0,
        submitted_at: key,
        shape: Shape::Single(res(1, 0, 0)),
        parent: None,
        depends_on: Vec::new(),
        timeout_s: None,
        retry: RetryPolicy::default(),
        share: None,
    })
}

impl JobB {
    pub fn single(mut self, vcpus: u32, mem: u64, shm: u64) -> Self {
        self.0.shape = Shape::Single(res(vcpus, mem, shm));
        self
    }
    pub fn gang(mut self, n: usize, r: Resources) -> Self {
        self.0.shape = Shape::Gang {
            nodes: vec![r; n],
            main_node: 0,
        };
        self
    }
    pub fn array(mut self, size: u32) -> Self {
        self.0.shape = Shape::ArrayParent { size };
        self
    }
    pub fn parent(mut self, p: u64) -> Self {
        self.0.parent = Some(JobKey(p));
        self
    }
    pub fn after(mut self, deps: &[u64]) -> Self {
        self.0.depends_on = deps.iter().map(|&d| Dependency { on: JobKey(d) }).collect();
        self
    }
    pub fn prio(mut self, p: i32) -> Self {
        self.0.priority = p;
        self
    }
    pub fn queue(mut self, q: u32) -> Self {
        self.0.queue = QueueId(q);
        self
    }
    pub fn at(mut self, t: Millis) -> Self {
        self.0.submitted_at = t;
        self
    }
    pub fn timeout(mut self, s: u64) -> Self {
        self.0.timeout_s = Some(s);
        self
    }
    pub fn retry(mut self, attempts: u32, rules: Vec<RetryRule>) -> Self {
        self.0.retry = RetryPolicy {
            attempts,
            evaluate_on_exit: rules,
        };
        self
    }
    pub fn submit(self) -> Event {
        Event::JobSubmitted {
            spec: self.0,
            restored: None,
        }
    }
    pub fn restore(self, restored: Restored) -> Event {
        Event::JobSubmitted {
            spec: self.0,
            restored: Some(restored),
        }
    }
}

pub fn rule(code: Option<&str>, reason: Option<&str>, action: RetryAction) -> RetryRule {
    RetryRule {
        on_exit_code: code.map(str::to_string),
        on_reason: reason.map(str::to_string),
        on_status_reason: None,
        action,
    }
}

pub fn exited(job: u64, attempt: u32, node_index: u32, code: i32) -> Event {
    Event::NodeExited {
        job: JobKey(job),
        attempt,
        node_index,
        exit_code: Some(code),
        reason: "Essential container in task exited".into(),
    }
}

pub fn started(job: u64, attempt: u32, node_index: u32) -> Event {
    Event::NodeStarted {
        job: JobKey(job),
        attempt,
        node_index,
    }
}

/// Keys of the jobs started by these decisions, in order.
pub fn starts(ds: &[Decision]) -> Vec<u64> {
    ds.iter()
        .filter_map(|d| match d {
            Decision::Start { job, .. } => Some(job.0),
            _ => None,
        })
        .collect()
}

/// The placement of a job's Start among these decisions.
pub fn placement_of(ds: &[Decision], key: u64) -> Option<Vec<Placement>> {
    ds.iter().find_map(|d| match d {
        Decision::Start { job, placement, .. } if job.0 == key => Some(placement.clone()),
        _ => None,
    })
}

/// (state, reason) State decisions of one job, in order.
pub fn states_of(ds: &[Decision], key: u64) -> Vec<(JobState, String)> {
    ds.iter()
        .filter_map(|d| match d {
            Decision::State { job, state, reason } if job.0 == key => {
                Some((*state, reason.clone()))
            }
            _ => None,
        })
        .collect()
}

pub fn state(core: &Core, key: u64) -> JobState {
    core.job_state(JobKey(key)).expect("known job").0
}

pub fn reason(core: &Core, key: u64) -> String {
    core.job_state(JobKey(key))
        .expect("known job")
        .1
        .to_string()
}

/// Drives a core like the capacity planner does: every started job runs
/// exactly `est` ms (its timeout, else `default_est`) and exits 0 (main node
/// index 0); a pass runs at every start and end time. Returns the start time
/// of every job.
pub fn simulate(
    core: &mut Core,
    default_est: Millis,
    estimates: &BTreeMap<u64, Millis>,
) -> BTreeMap<u64, Millis> {
    let mut now = 0;
    let mut ends: BTreeSet<(Millis, u64, u32)> = BTreeSet::new();
    let mut start_times = BTreeMap::new();
    loop {
        core.schedule(now);
        for d in core.drain() {
            if let Decision::Start { job, attempt, .. } = d {
                start_times.insert(job.0, now);
                let est = estimates.get(&job.0).copied().unwrap_or(default_est);
                ends.insert((now + est, job.0, attempt));
            }
        }
        let Some(&(t, _, _)) = ends.first() else {
            break;
        };
        now = t;
        while let Some(&(t2, job, attempt)) = ends.first() {
            if t2 != now {
                break;
            }
            ends.pop_first();
            core.apply(now, exited(job, attempt, 0, 0)).unwrap();
        }
    }
    start_times
}
