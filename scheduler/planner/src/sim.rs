//! Discrete-event replay of a workload through [`shoal_core::Core`] on a
//! virtual clock (seconds × 1000 = the core's milliseconds).
//!
//! The machine is one node with P vCPUs (or, with `procs_per_node`, whole
//! nodes of that many vCPUs and every job a gang of exclusive nodes). Each
//! job is submitted with `timeout_s` = its estimate, which the core uses as
//! the runtime estimate for backfilling. The conventions guarantee
//! actual ≤ estimate, and no `Event::Tick` is ever sent, so the core never
//! kills an attempt: each job ends with `NodeExited { exit_code: Some(0) }`
//! at start + actual.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use shoal_core::{
    Backfill, Core, CoreConfig, CoreError, Decision, Event, FairShare, JobKey, JobSpec, Millis,
    NodeId, NodeSpec, PoolId, PoolSpec, QueueId, QueueSpec, Resources, RetryPolicy, Shape,
};

use crate::workload::SimJob;

/// Scheduling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Policy {
    /// First come, first served.
    Fcfs,
    /// EASY backfilling.
    Easy,
    /// Conservative backfilling (the core caps reservations per pass).
    Conservative,
}

impl Policy {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Fcfs => "fcfs",
            Policy::Easy => "easy",
            Policy::Conservative => "conservative",
        }
    }
    fn backfill(self) -> Backfill {
        match self {
            Policy::Fcfs => Backfill::Fcfs,
            Policy::Easy => Backfill::Easy,
            Policy::Conservative => Backfill::Conservative,
        }
    }
}

impl std::str::FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fcfs" => Ok(Policy::Fcfs),
            "easy" => Ok(Policy::Easy),
            "conservative" | "cons" => Ok(Policy::Conservative),
            _ => Err(format!("unknown policy {s:?} (fcfs, easy or conservative)")),
        }
    }
}

/// Order of events at equal times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TieBreak {
    /// At each time t: every termination at t, then every submission at t,
    /// then one scheduling pass (the reference's `batch` mode).
    #[default]
    Batch,
    /// One event at a time, ordered by (time, submission before
    /// termination, arrival counter), a pass after each; a running job
    /// whose estimated end is ≤ t already counts as free (the reference's
    /// `pyss` mode).
    PerEvent,
}

impl TieBreak {
    /// Name as in the reference (`batch` / `pyss`).
    pub fn reference_name(self) -> &'static str {
        match self {
            TieBreak::Batch => "batch",
            TieBreak::PerEvent => "pyss",
        }
    }
}

impl std::str::FromStr for TieBreak {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "batch" => Ok(TieBreak::Batch),
            "per-event" | "pyss" | "per_event" => Ok(TieBreak::PerEvent),
            _ => Err(format!("unknown tie-break {s:?} (batch or per-event)")),
        }
    }
}

/// A simulated machine and policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimConfig {
    /// Total processors.
    pub procs: u32,
    /// Policy.
    pub policy: Policy,
    /// Event order at equal times.
    pub tie_break: TieBreak,
    /// Nodes of this many processors, jobs as gangs of whole nodes; None:
    /// one node of `procs` processors.
    pub procs_per_node: Option<u32>,
}

/// Which SWF field names a job's share identifier in a fair-share replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShareBy {
    /// Field 12, the user id.
    #[default]
    User,
    /// Field 13, the group id.
    Group,
}

impl std::str::FromStr for ShareBy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "user" => Ok(ShareBy::User),
            "group" => Ok(ShareBy::Group),
            _ => Err(format!("unknown share field {s:?} (user or group)")),
        }
    }
}

/// A fair-share replay: the queue's policy and where each job's share
/// identifier comes from (the id in decimal, e.g. `"12"`; a job with an
/// unknown id, -1, is in share `"unknown"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimFairshare {
    /// The policy, as the core takes it.
    pub policy: FairShare,
    /// User or group ids.
    pub by: ShareBy,
}

impl SimFairshare {
    /// The share identifier of a job.
    pub fn share_of(&self, j: &SimJob) -> String {
        let id = match self.by {
            ShareBy::User => j.user,
            ShareBy::Group => j.group,
        };
        if id < 0 {
            "unknown".to_string()
        } else {
            id.to_string()
        }
    }
}

/// A simulation error (the core refused an event: a bug).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The core rejected an event.
    #[error("the scheduling core rejected an event at t={at_s}s: {source}")]
    Core {
        /// Virtual time, seconds.
        at_s: u64,
        /// The core's error.
        #[source]
        source: CoreError,
    },
    /// Jobs were still waiting when no event was left.
    #[error("{0} jobs never started (they cannot fit the machine)")]
    Stuck(usize),
    /// Invalid configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Start time (seconds) of every job, indexed like the input.
pub type Starts = Vec<u64>;

const Q: QueueId = QueueId(1);
const MEM: u64 = 1 << 40;

struct Driver<'a> {
    core: Core,
    jobs: &'a [SimJob],
    fair: Option<&'a SimFairshare>,
    starts: Starts,
    started: usize,
    /// (end ms, start counter, job index): terminations pending.
    ends: BinaryHeap<Reverse<(Millis, u64, u32)>>,
    counter: u64,
    gang_nodes: Option<u32>,
    ppn: u32,
}

impl Driver<'_> {
    fn err(at: Millis) -> impl Fn(CoreError) -> SimError {
        move |source| SimError::Core {
            at_s: at / 1000,
            source,
        }
    }

    fn submit(&mut self, t: Millis, i: usize) -> Result<(), SimError> {
        let j = &self.jobs[i];
        let shape = match self.gang_nodes {
            None => Shape::Single(Resources {
                vcpus: j.width,
                memory_mib: 0,
                shm_mib: 0,
            }),
            Some(_) => {
                let n = j.width.div_ceil(self.ppn).max(1);
                Shape::Gang {
                    nodes: vec![
                        Resources {
                            vcpus: self.ppn,
                            memory_mib: 0,
                            shm_mib: 0,
                        };
                        n as usize
                    ],
                    main_node: 0,
                }
            }
        };
        let spec = JobSpec {
            key: JobKey(i as u64 + 1),
            queue: Q,
            priority: 0,
            submitted_at: j.submit * 1000,
            shape,
            parent: None,
            depends_on: Vec::new(),
            timeout_s: Some(j.estimate),
            retry: RetryPolicy::default(),
            share: self.fair.map(|f| f.share_of(j)),
        };
        self.core
            .apply(
                t,
                Event::JobSubmitted {
                    spec,
                    restored: None,
                },
            )
            .map_err(Self::err(t))
    }

    fn end(&mut self, t: Millis, i: u32) -> Result<(), SimError> {
        self.core
            .apply(
                t,
                Event::NodeExited {
                    job: JobKey(i as u64 + 1),
                    attempt: 0,
                    node_index: 0,
                    exit_code: Some(0),
                    reason: String::new(),
                },
            )
            .map_err(Self::err(t))
    }

    /// One scheduling pass at t; records starts and their terminations.
    fn pass(&mut self, t: Millis) -> Result<(), SimError> {
        self.core.schedule(t);
        for d in self.core.drain() {
            if let Decision::Start { job, attempt, .. } = d {
                let i = (job.0 - 1) as usize;
                self.starts[i] = t / 1000;
                self.started += 1;
                let end = t + self.jobs[i].actual * 1000;
                self.ends.push(Reverse((end, self.counter, i as u32)));
                self.counter += 1;
                self.core
                    .apply(
                        t,
                        Event::NodeStarted {
                            job,
                            attempt,
                            node_index: 0,
                        },
                    )
                    .map_err(Self::err(t))?;
            }
        }
        Ok(())
    }
}

/// Replays `jobs` on the configured machine; returns each job's start time
/// (seconds). Widths must be in [1, procs].
pub fn simulate(jobs: &[SimJob], cfg: &SimConfig) -> Result<Starts, SimError> {
    simulate_fair(jobs, cfg, None)
}

/// As [`simulate`], the queue under a fair-share policy when `fair` is
/// given (each job in the share its SWF user or group id names).
pub fn simulate_fair(
    jobs: &[SimJob],
    cfg: &SimConfig,
    fair: Option<&SimFairshare>,
) -> Result<Starts, SimError> {
    let d = replay(jobs, cfg, fair, None)?;
    if d.started != jobs.len() {
        return Err(SimError::Stuck(jobs.len() - d.started));
    }
    Ok(d.starts)
}

/// Replays `jobs` up to `at_s` (nothing later is applied: no later
/// arrival, no later end), then asks the core for its start estimates
/// ([`Core::estimate_starts`]). Returns, for every job submitted by
/// `at_s` that has not started by then, its index and estimated start in
/// seconds (None: the dry run never starts it), in the order the core
/// would start them.
pub fn estimate_at(
    jobs: &[SimJob],
    cfg: &SimConfig,
    fair: Option<&SimFairshare>,
    at_s: u64,
) -> Result<Vec<(usize, Option<u64>)>, SimError> {
    let at = at_s * 1000;
    let d = replay(jobs, cfg, fair, Some(at))?;
    Ok(d.core
        .estimate_starts(at)
        .into_iter()
        .map(|e| ((e.job.0 - 1) as usize, e.start.map(|ms| ms / 1000)))
        .collect())
}

/// The replay; with `stop`, events after it are not applied.
fn replay<'a>(
    jobs: &'a [SimJob],
    cfg: &SimConfig,
    fair: Option<&'a SimFairshare>,
    stop: Option<Millis>,
) -> Result<Driver<'a>, SimError> {
    let past = |t: Millis| stop.is_some_and(|s| t > s);
    if cfg.procs == 0 {
        return Err(SimError::Config("the machine has no processors".into()));
    }
    if let Some(j) = jobs.iter().find(|j| j.width == 0 || j.width > cfg.procs) {
        return Err(SimError::Config(format!(
            "job {} has width {} on a machine of {} processors",
            j.index, j.width, cfg.procs
        )));
    }
    let mut core = Core::new(CoreConfig {
        backfill: cfg.policy.backfill(),
    });
    let init = |e: CoreError| SimError::Core { at_s: 0, source: e };
    core.apply(
        0,
        Event::PoolUpserted(PoolSpec {
            id: PoolId(1),
            name: "machine".into(),
            enabled: true,
            selector: BTreeMap::new(),
            timed: false,
        }),
    )
    .map_err(init)?;
    core.apply(
        0,
        Event::QueueUpserted(QueueSpec {
            id: Q,
            name: "trace".into(),
            priority: 0,
            enabled: true,
            pools: vec![PoolId(1)],
            default_estimate_s: 1,
            fairshare: fair.map(|f| f.policy.clone()),
        }),
    )
    .map_err(init)?;
    let (gang_nodes, ppn) = match cfg.procs_per_node {
        Some(ppn) if ppn > 0 => (Some(cfg.procs.div_ceil(ppn)), ppn),
        Some(_) => return Err(SimError::Config("--procs-per-node must be > 0".into())),
        None => (None, cfg.procs),
    };
    for n in 0..gang_nodes.unwrap_or(1) {
        core.apply(
            0,
            Event::NodeUpserted(NodeSpec {
                id: NodeId(n + 1),
                name: format!("n{}", n + 1),
                capacity: Resources {
                    vcpus: ppn,
                    memory_mib: MEM,
                    shm_mib: MEM,
                },
                labels: BTreeMap::new(),
                schedulable: true,
                group: None,
                ends_at: None,
            }),
        )
        .map_err(init)?;
    }
    core.drain();

    // Submissions in (submit, index) order.
    let mut order: Vec<u32> = (0..jobs.len() as u32).collect();
    order.sort_by_key(|&i| (jobs[i as usize].submit, i));
    let mut d = Driver {
        core,
        jobs,
        fair,
        starts: vec![u64::MAX; jobs.len()],
        started: 0,
        ends: BinaryHeap::new(),
        counter: 0,
        gang_nodes,
        ppn,
    };
    let mut next = 0usize;
    let sub_at = |k: usize| order.get(k).map(|&i| jobs[i as usize].submit * 1000);
    match cfg.tie_break {
        TieBreak::Batch => loop {
            let ts = sub_at(next);
            let te = d.ends.peek().map(|r| r.0 .0);
            let t = match (ts, te) {
                (None, None) => break,
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap_or_default(),
            };
            if past(t) {
                break;
            }
            while let Some(&Reverse((e, _, i))) = d.ends.peek() {
                if e != t {
                    break;
                }
                d.ends.pop();
                d.end(t, i)?;
            }
            while sub_at(next) == Some(t) {
                d.submit(t, order[next] as usize)?;
                next += 1;
            }
            // Under FCFS a pass behind a blocked head costs the jobs
            // that came (the core skips the rest).
            d.pass(t)?;
        },
        TieBreak::PerEvent => {
            // Terminations already applied early (estimated end reached).
            let mut released = vec![false; jobs.len()];
            let mut now = None;
            loop {
                let ts = sub_at(next);
                let te = d.ends.peek().map(|r| r.0 .0);
                let (t, is_sub) = match (ts, te) {
                    (None, None) => break,
                    (Some(a), Some(b)) => (a.min(b), a <= b),
                    (Some(a), None) => (a, true),
                    (None, Some(b)) => (b, false),
                };
                if past(t) {
                    break;
                }
                if now != Some(t) {
                    // A running job whose estimated end is ≤ t counts as
                    // free from the first event at t: with actual ≤
                    // estimate, those are the jobs ending now exactly at
                    // their estimate.
                    now = Some(t);
                    let mut at_t = Vec::new();
                    while let Some(&Reverse(e)) = d.ends.peek() {
                        if e.0 != t {
                            break;
                        }
                        d.ends.pop();
                        at_t.push(e);
                    }
                    let due: Vec<u32> = at_t
                        .iter()
                        .map(|e| e.2)
                        .filter(|&i| jobs[i as usize].actual == jobs[i as usize].estimate)
                        .collect();
                    d.ends.extend(at_t.into_iter().map(Reverse));
                    for i in due {
                        released[i as usize] = true;
                        d.end(t, i)?;
                    }
                }
                if is_sub {
                    d.submit(t, order[next] as usize)?;
                    next += 1;
                } else if let Some(Reverse((_, _, i))) = d.ends.pop() {
                    if !released[i as usize] {
                        d.end(t, i)?;
                    }
                }
                d.pass(t)?;
            }
        }
    }
    Ok(d)
}
