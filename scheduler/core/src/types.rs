//! Public types of the core: ids, resources, events in, decisions out.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Milliseconds on the driver's clock (wall clock or virtual clock).
pub type Millis = u64;

/// A job, as the core knows it. The daemon maps its string job ids to these.
/// Array children and multi-node jobs are each one `JobKey`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobKey(pub u64);

/// A worker node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u32);

/// A job queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QueueId(pub u32);

/// A compute environment: a named pool of worker nodes selected by labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PoolId(pub u32);

/// Consumable resources of a node, or the demand of one node of a job.
/// Shared memory (tmpfs pages) is accounted on its own and is expected to be
/// part of the memory demand as well.
///
/// The one resource type of Shoal: the model's node demand, the core's
/// capacities and allocations, and the worker protocol's capacity
/// (`{vcpus, memoryMib, shmMib}`; stored records written with snake_case
/// names read too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// Whole vCPUs.
    pub vcpus: u32,
    /// Memory in MiB.
    #[serde(alias = "memory_mib")]
    pub memory_mib: u64,
    /// /dev/shm (tmpfs) in MiB.
    #[serde(alias = "shm_mib")]
    pub shm_mib: u64,
}

/// AWS Batch job states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Accepted, not yet looked at.
    Submitted,
    /// Waiting for dependencies (or, for an array parent, for its children).
    Pending,
    /// Ready, waiting for resources.
    Runnable,
    /// Placed on nodes; the nodes are starting.
    Starting,
    /// The (main) node is running.
    Running,
    /// Finished with exit code 0.
    Succeeded,
    /// Finished otherwise, cancelled, terminated or timed out.
    Failed,
}

impl JobState {
    /// SUCCEEDED or FAILED.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed)
    }
}

/// What a retry rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetryAction {
    /// Run another attempt (if attempts remain).
    Retry,
    /// Fail the job now.
    Exit,
}

/// One `evaluateOnExit` rule. Each present pattern is a glob (`*` wildcard
/// at the end, as AWS Batch allows) and all present patterns must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryRule {
    /// Glob on the exit code as decimal text.
    pub on_exit_code: Option<String>,
    /// Glob on the attempt's reason.
    pub on_reason: Option<String>,
    /// Glob on the attempt's status reason.
    pub on_status_reason: Option<String>,
    /// What to do when the rule matches.
    pub action: RetryAction,
}

/// `retryStrategy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Total attempts allowed, 1..=10.
    pub attempts: u32,
    /// Rules, first match wins; with no match, a failed attempt is retried.
    pub evaluate_on_exit: Vec<RetryRule>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 1,
            evaluate_on_exit: Vec::new(),
        }
    }
}

/// How a job depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// The job waited for. It must reach SUCCEEDED; if it FAILS, so does
    /// the dependent job ("Dependent Job failed").
    pub on: JobKey,
}

/// What a job needs to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// A single-node job. Several may share a node.
    Single(Resources),
    /// A multi-node (gang) job: one entry per node index. All nodes start
    /// at once or none; each node index gets its own node, exclusively.
    Gang {
        /// Demand of node index i.
        nodes: Vec<Resources>,
        /// The main node's index.
        main_node: u32,
    },
    /// An array parent: runs nothing itself. Its children are separate jobs
    /// with `parent` set; the parent ends when they all have ended.
    ArrayParent {
        /// Number of children.
        size: u32,
    },
}

/// A job handed to the core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The job.
    pub key: JobKey,
    /// Its queue.
    pub queue: QueueId,
    /// `schedulingPriority` (higher runs first within a queue priority).
    pub priority: i32,
    /// Submit time; ties broken by `key`.
    pub submitted_at: Millis,
    /// What it needs.
    pub shape: Shape,
    /// The array parent, for an array child.
    pub parent: Option<JobKey>,
    /// Jobs this one waits for.
    pub depends_on: Vec<Dependency>,
    /// `timeout.attemptDurationSeconds`: kill an attempt after this long.
    /// Also the runtime estimate for backfilling.
    pub timeout_s: Option<u64>,
    /// `retryStrategy`.
    pub retry: RetryPolicy,
    /// `shareIdentifier`: the fair share it is accounted to, in a queue
    /// with a [`FairShare`] policy (ignored in a queue without one).
    #[serde(default)]
    pub share: Option<String>,
}

/// Restored state of a job reloaded after a scheduler restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restored {
    /// State it had.
    pub state: JobState,
    /// Attempts already made (finished ones).
    pub attempts_done: u32,
    /// For STARTING / RUNNING: the attempt in flight and where it runs,
    /// (node index, node, allocation) per node.
    pub running: Option<(u32, Millis, Vec<Placement>)>,
    /// Of `attempts_done`, those that do not count against the retry
    /// strategy (their Start never reached a node).
    #[serde(default)]
    pub uncounted: u32,
}

/// One node of a placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The job's node index (0 for a single-node job).
    pub node_index: u32,
    /// The worker node.
    pub node: NodeId,
    /// What is reserved on it.
    pub alloc: Resources,
}

/// A worker node's description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// The node.
    pub id: NodeId,
    /// Human name (for status reasons).
    pub name: String,
    /// Capacity.
    pub capacity: Resources,
    /// Labels, matched by pools' selectors.
    pub labels: BTreeMap<String, String>,
    /// New attempts may be placed here. A node that is not (restored after
    /// a restart and not yet heard from, stopping, drained) keeps the
    /// attempts it holds but gets no new ones.
    #[serde(default = "yes")]
    pub schedulable: bool,
    /// The allocation it belongs to (e.g. a Slurm job), if any: a gang's
    /// nodes all come from one allocation (or all from none).
    #[serde(default)]
    pub group: Option<u32>,
    /// When it ends (its allocation's end time), if it does: a job of a
    /// queue with a timed pool is placed here only if its timeout ends by
    /// then.
    #[serde(default)]
    pub ends_at: Option<Millis>,
}

fn yes() -> bool {
    true
}

/// A compute environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSpec {
    /// The pool.
    pub id: PoolId,
    /// Its name (for status reasons).
    pub name: String,
    /// ENABLED pools receive jobs.
    pub enabled: bool,
    /// A node belongs to the pool when every selector label matches.
    /// An empty selector selects every node.
    pub selector: BTreeMap<String, String>,
    /// Its nodes come and go with allocations that end at known times
    /// (a MANAGED environment): the jobs of its queues that have a
    /// timeout go only to nodes that last until it ends.
    #[serde(default)]
    pub timed: bool,
}

/// A job queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSpec {
    /// The queue.
    pub id: QueueId,
    /// Its name (for status reasons).
    pub name: String,
    /// Higher priority queues are served first.
    pub priority: i32,
    /// Only ENABLED queues start jobs.
    pub enabled: bool,
    /// `computeEnvironmentOrder`, first preferred.
    pub pools: Vec<PoolId>,
    /// Runtime estimate for jobs without a timeout, for backfilling.
    pub default_estimate_s: u64,
    /// Its scheduling policy's fair share, if it has one.
    #[serde(default)]
    pub fairshare: Option<FairShare>,
}

/// A weight factor in ten-thousandths (AWS Batch's `weightFactor`,
/// 0.0001–999.9999, exactly): 10000 is 1.0.
pub type WeightE4 = u32;

/// One entry of a `shareDistribution`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareWeight {
    /// A share identifier, or a prefix of identifiers when it ends in `*`.
    pub identifier: String,
    /// Its weight factor: a lower weight gets more of the queue.
    pub weight: WeightE4,
}

/// A queue's fair-share policy (AWS Batch's `fairsharePolicy`, resolved).
///
/// A share's usage is the vCPU-seconds of its attempts, each counted in
/// whole seconds, a finished one decayed by `exp(-age / window)` from its
/// end (`window` = `shareDecaySeconds`, 600 s when 0), a running one as far
/// as it has run, undecayed; times its weight. The next job of the queue
/// comes from the active share with the lowest usage (then the fewest
/// weighted running vCPUs, then the identifier), in scheduling priority
/// order within it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FairShare {
    /// `shareDecaySeconds` (0: the default window of 600 s).
    pub decay_s: u32,
    /// `computeReservation`, 0–99: (r/100)^active shares of the queue's
    /// vCPUs are held back for share identifiers that have no job yet.
    pub compute_reservation: u32,
    /// `shareDistribution`.
    pub shares: Vec<ShareWeight>,
}

/// A share's account, as [`crate::Core::share_usage`] reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareUsage {
    /// The share identifier.
    pub identifier: String,
    /// Its weight factor.
    pub weight: WeightE4,
    /// Decayed vCPU-seconds.
    pub usage: f64,
    /// `usage` × weight: what the scheduling pass compares.
    pub weighted: f64,
    /// vCPUs its attempts in flight hold.
    pub running_vcpus: u64,
}

/// Why a RUNNABLE job waits, in the classes AWS Batch's
/// `jobStateTimeLimitActions` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WaitCode {
    /// It fits the cluster, not what is free now:
    /// `CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY`.
    Capacity,
    /// Its queue's compute environments have too few nodes (or none):
    /// `MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE`.
    ComputeEnvironmentMax,
    /// No node is big enough for it:
    /// `MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT`.
    JobRequirement,
}

impl WaitCode {
    /// AWS's code.
    pub fn aws_code(self) -> &'static str {
        match self {
            WaitCode::Capacity => "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
            WaitCode::ComputeEnvironmentMax => "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
            WaitCode::JobRequirement => "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
        }
    }
}

/// The first job of a queue that the last scheduling pass offered and did
/// not start, and why it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueHead {
    /// The queue.
    pub queue: QueueId,
    /// Its head.
    pub job: JobKey,
    /// Why it waits (None: e.g. its queue is DISABLED).
    pub code: Option<WaitCode>,
}

/// A RUNNABLE job the last pass did not start: what a provider of nodes
/// (a MANAGED environment's allocator) would need to give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// The job.
    pub job: JobKey,
    /// Its queue.
    pub queue: QueueId,
    /// What each of its nodes needs (one entry for a single-node job).
    pub nodes: Vec<Resources>,
    /// A gang: its nodes are whole nodes of one allocation.
    pub gang: bool,
    /// Its timeout, which the nodes must outlast.
    pub timeout_s: Option<u64>,
}

/// The window used when `shareDecaySeconds` is 0 (AWS's minimum).
pub const DEFAULT_SHARE_DECAY_S: u32 = 600;

impl FairShare {
    /// The decay window in seconds.
    pub fn window_s(&self) -> u32 {
        if self.decay_s == 0 {
            DEFAULT_SHARE_DECAY_S
        } else {
            self.decay_s
        }
    }

    /// The weight of a share identifier: its own entry, else the longest
    /// prefix entry (`abc*`) that matches it, else 1.0.
    pub fn weight_of(&self, identifier: &str) -> WeightE4 {
        let mut best: Option<(usize, WeightE4)> = None;
        for s in &self.shares {
            match s.identifier.strip_suffix('*') {
                None if s.identifier == identifier => return s.weight,
                Some(prefix)
                    if identifier.starts_with(prefix)
                        && best.is_none_or(|(len, _)| prefix.len() > len) =>
                {
                    best = Some((prefix.len(), s.weight));
                }
                _ => {}
            }
        }
        best.map_or(10_000, |(_, w)| w)
    }
}

/// Backfilling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Backfill {
    /// Strict priority order: nothing overtakes the head.
    Fcfs,
    /// EASY: a reservation for the queue head only.
    #[default]
    Easy,
    /// Conservative: a reservation for every waiting job.
    Conservative,
}

/// Core configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CoreConfig {
    /// Backfilling policy.
    pub backfill: Backfill,
}

/// An event in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A queue was created or changed.
    QueueUpserted(QueueSpec),
    /// A queue was deleted (it must hold no unfinished jobs).
    QueueDeleted(QueueId),
    /// A compute environment was created or changed.
    PoolUpserted(PoolSpec),
    /// A compute environment was deleted.
    PoolDeleted(PoolId),
    /// A worker joined, or its capacity or labels changed.
    NodeUpserted(NodeSpec),
    /// A worker was lost: every attempt with a node on it fails.
    NodeLost(NodeId),
    /// A worker is gone for a known reason (e.g. it stopped): as
    /// [`Event::NodeLost`], with `reason` as the attempts' reason.
    NodeDown {
        /// The node.
        node: NodeId,
        /// Why, for the attempts that fail (e.g. `Host terminated: …`).
        reason: String,
    },
    /// The Start order of an attempt never reached (one of) its node(s):
    /// the attempt ends without counting against the retry strategy (its
    /// other nodes get Kill) and the job is RUNNABLE again.
    StartUndelivered {
        /// The job.
        job: JobKey,
        /// Its attempt (0-based).
        attempt: u32,
        /// Why, for people.
        reason: String,
    },
    /// A new job (state SUBMITTED), or a reloaded one with `restored`.
    JobSubmitted {
        /// The job.
        spec: JobSpec,
        /// Set when reloading after a restart.
        restored: Option<Restored>,
    },
    /// CancelJob: fails a job that has not started; no effect otherwise.
    JobCancelled {
        /// The job.
        job: JobKey,
        /// The user's reason.
        reason: String,
    },
    /// TerminateJob: fails the job, killing a running attempt.
    JobTerminated {
        /// The job.
        job: JobKey,
        /// The user's reason.
        reason: String,
    },
    /// A node of an attempt has started its process.
    NodeStarted {
        /// The job.
        job: JobKey,
        /// Its attempt (0-based).
        attempt: u32,
        /// The node index.
        node_index: u32,
    },
    /// A node of an attempt has exited.
    NodeExited {
        /// The job.
        job: JobKey,
        /// Its attempt (0-based).
        attempt: u32,
        /// The node index.
        node_index: u32,
        /// Exit code, when the process exited (None: killed / never ran).
        exit_code: Option<i32>,
        /// Why (e.g. "Essential container in task exited").
        reason: String,
    },
    /// Time passed: attempt timeouts are checked.
    Tick,
}

/// A decision out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// The job's state or status reason changed.
    State {
        /// The job.
        job: JobKey,
        /// New state.
        state: JobState,
        /// Human status reason (empty when none).
        reason: String,
    },
    /// Start an attempt on these nodes (job state is now STARTING).
    Start {
        /// The job.
        job: JobKey,
        /// The attempt (0-based).
        attempt: u32,
        /// One entry per node index.
        placement: Vec<Placement>,
    },
    /// Kill what still runs of an attempt.
    Kill {
        /// The job.
        job: JobKey,
        /// The attempt.
        attempt: u32,
        /// Nodes to kill on.
        nodes: Vec<NodeId>,
        /// Why.
        reason: String,
    },
    /// An attempt ended (recorded in the job's `attempts[]`).
    AttemptEnded {
        /// The job.
        job: JobKey,
        /// The attempt.
        attempt: u32,
        /// The main node's exit code, when it exited.
        exit_code: Option<i32>,
        /// Why it ended.
        reason: String,
        /// Whether it counts against the retry strategy (false: it never
        /// reached a node).
        counted: bool,
    },
}
