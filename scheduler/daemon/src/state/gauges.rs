//! What the scheduler's state looks like now, for its metrics
//! ([`crate::metrics`]): nodes, compute environments, jobs per queue and
//! state, why RUNNABLE jobs wait, share usage, workers' poll lag and the
//! /dev/shm peaks of running jobs. Plain values; the metrics module names
//! them.

use super::{state_name, StateMachine};
use shoal_core::{JobKey, JobState, QueueId};
use std::collections::BTreeMap;

/// The states `shoal nodes` shows, each reported (0 included).
pub const NODE_STATES: [&str; 8] = [
    "IDLE",
    "MIXED",
    "ALLOCATED",
    "DRAINING",
    "DRAINED",
    "UNKNOWN",
    "STOPPING",
    "DOWN",
];

/// Every job state, each reported per queue (0 included).
pub const JOB_STATES: [JobState; 7] = [
    JobState::Submitted,
    JobState::Pending,
    JobState::Runnable,
    JobState::Starting,
    JobState::Running,
    JobState::Succeeded,
    JobState::Failed,
];

/// Why RUNNABLE jobs wait: AWS's codes, each reported per queue (0
/// included), and [`OTHER_REASON`] for a reason with no code.
pub const WAIT_REASONS: [&str; 3] = [
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
];

/// The reason label of a RUNNABLE job whose reason has no AWS code (not
/// yet offered by a pass, its queue DISABLED, waiting for an ended
/// attempt's tasks to be gone).
pub const OTHER_REASON: &str = "OTHER";

/// vCPUs, memory and /dev/shm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Amounts {
    /// vCPUs.
    pub vcpus: u64,
    /// Memory, MiB.
    pub memory_mib: u64,
    /// /dev/shm, MiB.
    pub shm_mib: u64,
}

impl std::ops::AddAssign for Amounts {
    fn add_assign(&mut self, o: Amounts) {
        self.vcpus += o.vcpus;
        self.memory_mib += o.memory_mib;
        self.shm_mib += o.shm_mib;
    }
}

/// One node.
#[derive(Debug, Clone)]
pub struct NodeGauge {
    /// Its name.
    pub name: String,
    /// Its state, one of [`NODE_STATES`].
    pub state: String,
    /// What it offers.
    pub total: Amounts,
    /// What attempts placed there hold.
    pub allocated: Amounts,
    /// Seconds since its worker's last poll.
    pub poll_lag_s: f64,
}

/// One compute environment: the nodes it selects that are not DOWN.
#[derive(Debug, Clone)]
pub struct CeGauge {
    /// Its name.
    pub name: String,
    /// Nodes it selects, not DOWN.
    pub nodes: u64,
    /// What they offer.
    pub total: Amounts,
    /// What attempts placed there hold.
    pub allocated: Amounts,
}

/// One share of a fair-share queue.
#[derive(Debug, Clone)]
pub struct ShareGauge {
    /// The queue.
    pub queue: String,
    /// The share identifier (as the policy or the job named it).
    pub share: String,
    /// Decayed vCPU-seconds.
    pub usage: f64,
    /// Usage × weightFactor: what the scheduler compares.
    pub weighted: f64,
    /// vCPUs its attempts in flight hold.
    pub running_vcpus: u64,
}

/// One node of a running job.
#[derive(Debug, Clone)]
pub struct ShmGauge {
    /// The job's id.
    pub job_id: String,
    /// Its queue.
    pub queue: String,
    /// The node.
    pub node: String,
    /// The job's node index there.
    pub node_index: u32,
    /// Highest /dev/shm use so far, MiB.
    pub peak_mib: u64,
}

/// The state, now.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// Nodes, by name.
    pub nodes: Vec<NodeGauge>,
    /// Compute environments, by name.
    pub compute_environments: Vec<CeGauge>,
    /// (queue, state, jobs): every queue with every state; array parents
    /// are not counted (their children are).
    pub queue_jobs: Vec<(String, &'static str, u64)>,
    /// (queue, reason, RUNNABLE jobs): every queue with every reason.
    pub runnable: Vec<(String, &'static str, u64)>,
    /// Shares of fair-share queues.
    pub shares: Vec<ShareGauge>,
    /// Running jobs' nodes.
    pub shm: Vec<ShmGauge>,
}

fn amounts(vcpus: u32, memory_mib: u64, shm_mib: u64) -> Amounts {
    Amounts {
        vcpus: u64::from(vcpus),
        memory_mib,
        shm_mib,
    }
}

impl StateMachine {
    /// The state at `now`, for the metrics.
    pub fn gauges(&self, now: u64) -> Gauges {
        let core = &self.shared.core;
        let mut g = Gauges::default();
        let mut ces: Vec<(CeGauge, BTreeMap<String, String>)> = self
            .registry
            .ces
            .values()
            .map(|c| {
                let gauge = CeGauge {
                    name: c.detail.compute_environment_name.clone(),
                    nodes: 0,
                    total: Amounts::default(),
                    allocated: Amounts::default(),
                };
                (gauge, c.detail.selector())
            })
            .collect();
        for (rec, info) in self.nodes.infos(core) {
            let total = amounts(info.vcpus, info.memory_mib, info.shm_mib);
            let down = info.state == "DOWN";
            let allocated = if down {
                Amounts::default()
            } else {
                amounts(
                    info.vcpus_allocated,
                    info.memory_mib.saturating_sub(info.memory_free_mib),
                    info.shm_mib.saturating_sub(info.shm_free_mib),
                )
            };
            if !down {
                for (ce, selector) in ces.iter_mut() {
                    if selector.iter().all(|(k, v)| rec.labels.get(k) == Some(v)) {
                        ce.nodes += 1;
                        ce.total += total;
                        ce.allocated += allocated;
                    }
                }
            }
            for s in &rec.shm {
                let Some(job) = self
                    .jobs
                    .seq_of_task(&s.task)
                    .and_then(|q| self.jobs.get(q))
                else {
                    continue;
                };
                let live = job
                    .current
                    .as_ref()
                    .is_some_and(|c| c.attempt == s.task.attempt);
                if live && matches!(job.status, JobState::Starting | JobState::Running) {
                    g.shm.push(ShmGauge {
                        job_id: job.id.clone(),
                        queue: job.queue.clone(),
                        node: rec.name.clone(),
                        node_index: s.task.node_index,
                        peak_mib: s.peak_mib,
                    });
                }
            }
            g.nodes.push(NodeGauge {
                name: info.name,
                state: info.state,
                total,
                allocated,
                poll_lag_s: now.saturating_sub(rec.last_seen) as f64 / 1000.0,
            });
        }
        g.compute_environments = ces.into_iter().map(|(c, _)| c).collect();
        let mut per_state: BTreeMap<(&str, JobState), u64> = BTreeMap::new();
        let mut per_reason: BTreeMap<(&str, &'static str), u64> = BTreeMap::new();
        for job in self.jobs.iter() {
            if job.array.as_ref().is_some_and(|a| a.index.is_none()) {
                continue;
            }
            *per_state.entry((&job.queue, job.status)).or_default() += 1;
            if job.status == JobState::Runnable {
                let reason = core
                    .wait_code(JobKey(job.seq))
                    .map_or(OTHER_REASON, |c| c.aws_code());
                *per_reason.entry((&job.queue, reason)).or_default() += 1;
            }
        }
        for (name, q) in &self.registry.queues {
            for s in JOB_STATES {
                let n = per_state.get(&(name.as_str(), s)).copied().unwrap_or(0);
                g.queue_jobs.push((name.clone(), state_name(s), n));
            }
            for r in WAIT_REASONS.into_iter().chain([OTHER_REASON]) {
                let n = per_reason.get(&(name.as_str(), r)).copied().unwrap_or(0);
                g.runnable.push((name.clone(), r, n));
            }
            if q.detail.scheduling_policy_arn.is_some() {
                for s in core.share_usage(QueueId(q.id), now) {
                    g.shares.push(ShareGauge {
                        queue: name.clone(),
                        share: s.identifier,
                        usage: s.usage,
                        weighted: s.weighted,
                        running_vcpus: s.running_vcpus,
                    });
                }
            }
        }
        g
    }
}
