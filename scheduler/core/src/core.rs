//! The [`Core`]: the job lifecycle ([`Core::apply`]) and scheduling passes
//! ([`Core::schedule`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BTreeSet as Set, HashMap, VecDeque};
use std::sync::Arc;

use crate::backfill::{easy_reservation, Overlay, Profile, RunningSet};
use crate::error::CoreError;
use crate::fairshare::{share_limit, ShareNo, Shares, Turn};
use crate::index::{Idx, IndexVec, JobSlot, NodeSlot, QueueSlot, ReasonId};
use crate::pass::{Candidate, Conservative, Easy, Fcfs, Pass, Policy};
use crate::placement::{give, take};
use crate::runq::{Pos, RunQueue};
use crate::state::{
    Attempt, Class, Cluster, Demand, Job, NodeHot, NodeMeta, Pool, Queue, RunEntry, RunKey, SimNode,
};
use crate::types::{
    Backfill, CoreConfig, Decision, Event, JobKey, JobSpec, JobState, Millis, NodeId, NodeSpec,
    Placement, PoolId, PoolSpec, QueueHead, QueueId, QueueSpec, Resources, Restored, RetryAction,
    RetryRule, Shape, ShareUsage, WaitCode, Waiting,
};

/// Reason of an attempt killed by its timeout (AWS's wording).
pub const TIMEOUT_REASON: &str = "Job attempt duration exceeded timeout";
/// Reason of a job failed because a dependency failed (AWS's wording).
pub const DEPENDENCY_FAILED_REASON: &str = "Dependent Job failed";
/// Reason used when a node exits without giving one.
pub const DEFAULT_EXIT_REASON: &str = "Essential container in task exited";
/// Reason of the Kill sent to a gang's other nodes when its main node exits.
pub const MAIN_EXITED_REASON: &str = "main node exited";

/// Shoal's scheduling core. Feed it events with [`Core::apply`], run
/// scheduling passes with [`Core::schedule`], and take the resulting
/// decisions with [`Core::drain`]. Deterministic: the same calls always
/// yield the same decisions.
#[derive(Debug, Default, Clone)]
pub struct Core {
    config: CoreConfig,
    jobs: IndexVec<JobSlot, Job>,
    job_index: HashMap<JobKey, JobSlot>,
    /// RUNNABLE jobs in scheduling order.
    runnable: RunQueue,
    cluster: Cluster,
    /// Attempts in flight by estimated end.
    running: RunningSet,
    /// Attempts with a timeout, by deadline.
    deadlines: BTreeSet<(Millis, JobKey, JobSlot)>,
    out: Vec<Decision>,
    /// Jobs that just reached SUCCEEDED or FAILED, for dependents/parents.
    finished: VecDeque<JobSlot>,
    pass_epoch: u64,
    overlay: Overlay,
    profile: Profile,
    last_head: Option<(JobKey, Millis)>,
    /// Per queue: the first job the last pass offered and did not start,
    /// and its status reason then.
    heads: IndexVec<QueueSlot, Option<(JobSlot, Option<ReasonId>)>>,
    /// The latest `now` seen (for what an event ends without naming a
    /// time, e.g. an attempt's share usage).
    clock: Millis,
    /// Bumped by every event and pass (see [`Core::version`]).
    version: u64,
    /// Jobs that entered the run queue since the last pass.
    fresh: Vec<JobSlot>,
    /// After an FCFS pass: the topology epoch and the run queue's removal
    /// count it saw. While both hold, the jobs behind a blocked head keep
    /// their status reasons and the next FCFS pass skips them (see
    /// [`FcfsSkip`]).
    fcfs_rest: Option<(u64, u64)>,
}

/// What lets an FCFS pass stop at its blocked head instead of walking the
/// rest of the queue: the heads of the last pass and the jobs that came
/// since. Behind the head nothing starts, and the jobs the last pass saw
/// there keep the reasons it gave them (their shapes' reasons change only
/// with the topology); so the pass visits the jobs up to the head, the
/// new jobs behind it, and as many more as it takes to find the head of
/// each queue whose last head it started.
struct FcfsSkip {
    heads: IndexVec<QueueSlot, Option<(JobSlot, Option<ReasonId>)>>,
    fresh: Vec<JobSlot>,
}

/// What a pass decided for one job, applied once the walk is over.
enum Action {
    Reason {
        slot: JobSlot,
        rid: ReasonId,
    },
    Start {
        pos: Pos,
        slot: JobSlot,
        nodes: Vec<NodeSlot>,
        est_end: Millis,
    },
}

/// A submission that passed [`Core::check_submit`].
struct CheckedSubmit {
    /// None for an array parent.
    demand: Option<Demand>,
    /// Its queue's slot (None for a finished job whose queue is gone).
    qslot: Option<QueueSlot>,
    /// A restored job that has finished.
    terminal_restore: bool,
    dep_slots: Vec<JobSlot>,
    /// Its array parent's slot.
    parent: Option<JobSlot>,
    /// A restored attempt's place.
    occupy: Option<Occupy>,
}

/// Where a restored attempt runs.
struct Occupy {
    number: u32,
    started_at: Millis,
    /// One per node index, in order.
    placement: Vec<Placement>,
    /// The node slot of each.
    slots: Vec<NodeSlot>,
}

/// Adds (or removes) an attempt's allocations to the per-node overdue totals.
fn overdue_apply(overdue: &mut IndexVec<NodeSlot, SimNode>, att: &Attempt, add: bool) {
    for (p, &ns) in att.placement.iter().zip(&att.slots) {
        if let Some(o) = overdue.get_mut(ns) {
            if add {
                o.take(p.alloc, att.gang);
            } else {
                o.give(p.alloc, att.gang);
            }
        }
    }
}

fn selector_matches(selector: &BTreeMap<String, String>, node: &NodeSpec) -> bool {
    selector.iter().all(|(k, v)| node.labels.get(k) == Some(v))
}

fn rule_matches(rule: &RetryRule, exit: Option<i32>, reason: &str) -> bool {
    use glob_match::glob_match;
    if let Some(p) = &rule.on_exit_code {
        match exit {
            Some(code) if glob_match(p, &code.to_string()) => {}
            _ => return false,
        }
    }
    if let Some(p) = &rule.on_reason {
        if !glob_match(p, reason) {
            return false;
        }
    }
    if let Some(p) = &rule.on_status_reason {
        if !glob_match(p, reason) {
            return false;
        }
    }
    true
}

/// First matching `evaluateOnExit` rule decides; with none matching, retry.
fn retry_allowed(rules: &[RetryRule], exit: Option<i32>, reason: &str) -> bool {
    match rules.iter().find(|r| rule_matches(r, exit, reason)) {
        Some(r) => r.action == RetryAction::Retry,
        None => true,
    }
}

impl Core {
    /// A core with no queues, pools, nodes or jobs.
    pub fn new(config: CoreConfig) -> Core {
        Core {
            config,
            ..Core::default()
        }
    }

    /// Applies one event at time `now`. Decisions (state changes, kills,
    /// attempt ends) go to an internal buffer, see [`Core::drain`]. An event
    /// naming an unknown job, node, queue or compute environment, or
    /// otherwise invalid, returns an error and changes nothing. Events of a
    /// stale attempt (not the job's current one) are ignored.
    pub fn apply(&mut self, now: Millis, event: Event) -> Result<(), CoreError> {
        // Jobs started by the last pass left tombstones.
        self.runnable.maybe_compact();
        self.clock = self.clock.max(now);
        self.version += 1;
        let result = match event {
            Event::QueueUpserted(spec) => {
                self.upsert_queue(spec);
                Ok(())
            }
            Event::QueueDeleted(id) => self.delete_queue(id),
            Event::PoolUpserted(spec) => {
                self.upsert_pool(spec);
                Ok(())
            }
            Event::PoolDeleted(id) => self.delete_pool(id),
            Event::NodeUpserted(spec) => {
                self.upsert_node(spec);
                Ok(())
            }
            Event::NodeLost(id) => self.node_lost(id, None),
            Event::NodeDown { node, reason } => self.node_lost(node, Some(reason)),
            Event::StartUndelivered {
                job,
                attempt,
                reason,
            } => self.start_undelivered(job, attempt, &reason),
            Event::JobSubmitted { spec, restored } => self.submit(spec, restored),
            Event::JobCancelled { job, reason } => self.stop_event(job, &reason, false),
            Event::JobTerminated { job, reason } => self.stop_event(job, &reason, true),
            Event::NodeStarted {
                job,
                attempt,
                node_index,
            } => self.node_started(job, attempt, node_index),
            Event::NodeExited {
                job,
                attempt,
                node_index,
                exit_code,
                reason,
            } => self.node_exited(job, attempt, node_index, exit_code, reason),
            Event::Tick => {
                self.tick(now);
                Ok(())
            }
        };
        self.settle();
        result
    }

    /// The share identifiers of a queue's jobs and their usage at `now`
    /// (empty for an unknown queue).
    pub fn share_usage(&self, queue: QueueId, now: Millis) -> Vec<ShareUsage> {
        let Some(q) = self.cluster.queue_slot(queue) else {
            return Vec::new();
        };
        let q = &self.cluster.queues[q];
        let window = q.spec.fairshare.as_ref().map_or(0, |p| p.window_s());
        q.shares
            .list
            .iter()
            .map(|s| ShareUsage {
                identifier: s.name.clone(),
                weight: s.weight,
                usage: s.usage(now, window),
                weighted: s.weighted(now, window),
                running_vcpus: s.running_vcpus,
            })
            .collect()
    }

    /// vCPUs held by a queue's attempts in flight (STARTING or RUNNING).
    pub fn queue_vcpus_in_use(&self, queue: QueueId) -> u64 {
        let Some(q) = self.cluster.queue_slot(queue) else {
            return 0;
        };
        self.running
            .iter()
            .filter(|r| self.jobs[r.2].qslot == Some(q))
            .filter_map(|r| self.jobs[r.2].attempt.as_ref())
            .map(|a| {
                a.placement
                    .iter()
                    .map(|p| u64::from(p.alloc.vcpus))
                    .sum::<u64>()
            })
            .sum()
    }

    /// Per queue, the first job the last pass offered and did not start
    /// (in the order it offered them: priority order, or fair-share order),
    /// and the class of its status reason.
    pub fn queue_heads(&self) -> Vec<QueueHead> {
        self.heads
            .iter_enumerated()
            .filter_map(|(q, h)| {
                let (slot, rid) = (*h)?;
                let queue = self.cluster.queues.get(q)?;
                Some(QueueHead {
                    queue: queue.spec.id,
                    job: self.jobs[slot].spec.key,
                    code: rid.and_then(|r| self.cluster.reasons.codes[r]),
                })
            })
            .collect()
    }

    /// The class of a RUNNABLE job's status reason, as AWS's
    /// `jobStateTimeLimitActions` name them (None: its reason has no class,
    /// e.g. no pass has offered it yet or its queue is DISABLED, or it is
    /// not RUNNABLE).
    pub fn wait_code(&self, job: JobKey) -> Option<WaitCode> {
        let j = &self.jobs[*self.job_index.get(&job)?];
        if j.state != JobState::Runnable {
            return None;
        }
        self.cluster.reasons.code_of(&j.reason)
    }

    /// A number that changes with every event applied and every pass run:
    /// what was computed from the core at one version (e.g. start
    /// estimates) still holds while it stays the same.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Takes the decisions emitted so far, in order.
    pub fn drain(&mut self) -> Vec<Decision> {
        std::mem::take(&mut self.out)
    }

    /// Current state and status reason of a job.
    pub fn job_state(&self, job: JobKey) -> Option<(JobState, &str)> {
        let j = &self.jobs[*self.job_index.get(&job)?];
        Some((j.state, &j.reason))
    }

    /// Earliest time at which a [`Event::Tick`] would time out an attempt.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.deadlines.first().map(|d| d.0)
    }

    /// Free resources of a node right now: capacity minus what attempts
    /// placed on it hold (a node held by a gang shows what the gang does not
    /// use, though nothing else may go there). None for an unknown or lost
    /// node.
    pub fn node_free(&self, node: NodeId) -> Option<Resources> {
        let slot = self.cluster.node_slot(node)?;
        Some(self.cluster.hot[slot].free())
    }

    /// The first `max` RUNNABLE jobs of the queues `of` accepts, in
    /// scheduling order (after a pass: those it did not start), with what
    /// their nodes need.
    pub fn waiting(&mut self, max: usize, of: impl Fn(QueueId) -> bool) -> Vec<Waiting> {
        let mut out = Vec::new();
        let mut w = self.runnable.walk();
        while out.len() < max {
            let Some((_, slot, _)) = self.runnable.next(&mut w) else {
                break;
            };
            let job = &self.jobs[slot];
            let Some(sid) = job.shape else { continue };
            if !of(job.spec.queue) {
                continue;
            }
            let shape = &self.cluster.shapes[sid];
            let (nodes, gang) = match &shape.demand {
                Demand::Single(r) => (vec![*r], false),
                Demand::Gang(v) => (v.clone(), true),
            };
            out.push(Waiting {
                job: job.spec.key,
                queue: job.spec.queue,
                nodes,
                gang,
                timeout_s: job.spec.timeout_s,
            });
        }
        out
    }

    /// Number of RUNNABLE jobs that may start (not waiting for the tasks
    /// of an ended attempt to be gone).
    pub fn runnable_count(&self) -> usize {
        self.runnable.len()
    }

    /// How many tasks of a job's ended attempts it waits for (killed, not
    /// yet reported gone) before another attempt may start.
    pub fn lingering(&self, job: JobKey) -> usize {
        self.job_index
            .get(&job)
            .map_or(0, |&j| self.jobs[j].lingering.len())
    }

    /// RUNNABLE jobs in scheduling order (for the dry run).
    pub(crate) fn runnable_keys(&self) -> Vec<JobKey> {
        self.runnable
            .entries()
            .into_iter()
            .filter_map(|(_, e)| e.slot.map(|s| self.jobs[s].spec.key))
            .collect()
    }

    /// Every job (for the dry run).
    pub(crate) fn jobs_iter(&self) -> impl Iterator<Item = &Job> {
        (&self.jobs).into_iter()
    }

    /// The id of a queue slot (for the dry run).
    pub(crate) fn queue_id(&self, q: QueueSlot) -> QueueId {
        self.cluster.queues[q].spec.id
    }

    /// Number of attempts in flight (for the dry run).
    pub(crate) fn running_len(&self) -> usize {
        self.running.len()
    }

    /// The earliest estimated end of an attempt in flight.
    pub(crate) fn next_estimated_end(&self) -> Option<Millis> {
        self.running.first().map(|r| r.0)
    }

    /// Attempts in flight whose estimated end is ≤ `t`: (job, attempt
    /// number, main node index), by estimated end.
    pub(crate) fn attempts_ending_by(&self, t: Millis) -> Vec<(JobKey, u32, u32)> {
        self.running
            .range(..=(t, JobKey(u64::MAX), JobSlot::LAST))
            .filter_map(|&(_, key, slot)| {
                let att = self.jobs[slot].attempt.as_ref()?;
                Some((key, att.number, att.main))
            })
            .collect()
    }

    /// Makes the next pass walk every RUNNABLE job, as if it were the
    /// first: for tests that hold FCFS's skipping against a full walk.
    #[doc(hidden)]
    pub fn forget_pass_memory(&mut self) {
        self.fcfs_rest = None;
    }

    /// The head job and its shadow time as computed by the last EASY pass
    /// (or the first reservation of the last Conservative pass). For tests.
    #[doc(hidden)]
    pub fn last_pass_head(&self) -> Option<(JobKey, Millis)> {
        self.last_head
    }

    /// Computes, from the current state, the EASY head (first RUNNABLE job,
    /// in order, of an ENABLED queue, that could fit an empty cluster but
    /// does not fit now) and its shadow time. For tests: after a pass, the
    /// head must still be able to start by the shadow time recorded by the
    /// pass.
    #[doc(hidden)]
    pub fn head_reservation(&mut self, now: Millis) -> Option<(JobKey, Millis)> {
        self.pass_epoch += 1;
        let epoch = self.pass_epoch;
        self.ensure_classes();
        self.advance_overdue(now);
        let Core {
            jobs,
            runnable,
            cluster,
            running,
            overlay,
            ..
        } = self;
        for (key, entry) in runnable.entries() {
            let sid = entry.shape;
            let qslot = cluster.shapes[sid].qslot;
            if !cluster.queues[qslot].spec.enabled || cluster.never_fit(sid).is_some() {
                continue;
            }
            if cluster.place_now(sid, epoch).is_some() {
                continue;
            }
            return easy_reservation(cluster, jobs, running, &[], now, sid, overlay)
                .map(|r| (key.key, r.shadow));
        }
        None
    }

    /// Recomputes the bookkeeping (node usage, overdue totals, RUNNABLE
    /// count) from the jobs and compares. For tests.
    #[doc(hidden)]
    pub fn check_consistency(&self) -> Result<(), String> {
        let n = self.cluster.hot.len();
        let mut hot: IndexVec<NodeSlot, SimNode> = IndexVec::from_elem(SimNode::default(), n);
        let mut overdue: IndexVec<NodeSlot, SimNode> = IndexVec::from_elem(SimNode::default(), n);
        let mut runnable = 0;
        for job in &self.jobs {
            let may_start = job.state == JobState::Runnable && job.lingering.is_empty();
            runnable += may_start as usize;
            if job.run_key.is_some() != may_start {
                return Err(format!("job {} run key / state mismatch", job.spec.key.0));
            }
            if let Some(att) = &job.attempt {
                for (p, &ns) in att.placement.iter().zip(&att.slots) {
                    hot[ns].take(p.alloc, att.gang);
                    if att.est_end <= self.cluster.overdue_at {
                        overdue[ns].take(p.alloc, att.gang);
                    }
                }
            }
        }
        if runnable != self.runnable.len() {
            return Err(format!(
                "{runnable} RUNNABLE jobs, queue holds {}",
                self.runnable.len()
            ));
        }
        for i in self.cluster.hot.indices() {
            let h = &self.cluster.hot[i];
            let have = SimNode {
                used: h.used,
                users: h.users,
                excl: h.excl,
            };
            if have != hot[i] {
                return Err(format!(
                    "node slot {}: usage {have:?}, attempts say {:?}",
                    i.index(),
                    hot[i]
                ));
            }
            if self.cluster.overdue[i] != overdue[i] {
                return Err(format!(
                    "node slot {}: overdue {:?}, attempts say {:?}",
                    i.index(),
                    self.cluster.overdue[i],
                    overdue[i]
                ));
            }
        }
        Ok(())
    }

    // ----- topology -------------------------------------------------------

    /// Moves the attempts whose estimated end has passed by `now` into the
    /// per-node overdue totals (each attempt once in its life).
    fn advance_overdue(&mut self, now: Millis) {
        let c = &mut self.cluster;
        if now <= c.overdue_at {
            return;
        }
        let lo = (c.overdue_at.saturating_add(1), JobKey(0), JobSlot::FIRST);
        let hi = (now, JobKey(u64::MAX), JobSlot::LAST);
        for &(_, _, j) in self.running.range(lo..=hi) {
            if let Some(att) = self.jobs[j].attempt.as_ref() {
                overdue_apply(&mut c.overdue, att, true);
            }
        }
        c.overdue_at = now;
    }

    fn ensure_classes(&mut self) {
        for q in self.cluster.queues.indices() {
            if !self.cluster.queues[q].deleted {
                self.cluster.ensure_class(q);
            }
        }
    }

    fn upsert_queue(&mut self, spec: QueueSpec) {
        let c = &mut self.cluster;
        let disabled_reason = c.reasons.intern(format!("queue {} is DISABLED", spec.name));
        c.topo_epoch += 1;
        if let Some(&slot) = c.queue_index.get(&spec.id) {
            let q = &mut c.queues[slot];
            let reprioritize = q.spec.priority != spec.priority
                || q.spec.fairshare.is_some() != spec.fairshare.is_some();
            q.shares.reweigh(spec.fairshare.as_ref());
            q.spec = spec;
            q.deleted = false;
            q.disabled_reason = disabled_reason;
            if reprioritize {
                self.rekey_queue(slot);
            }
        } else {
            let slot = c.queues.next_index();
            c.queue_index.insert(spec.id, slot);
            c.queues.push(Queue {
                spec,
                deleted: false,
                active: 0,
                class: Class::default(),
                class_epoch: u64::MAX,
                disabled_reason,
                bounds_epoch: 0,
                max_free: Resources::default(),
                idle: 0,
                shares: Shares::default(),
                timed: false,
            });
        }
        self.retime_queues();
    }

    /// Re-sorts a queue's RUNNABLE jobs after its priority changed, or it
    /// gained or lost a fair-share policy.
    fn rekey_queue(&mut self, qslot: QueueSlot) {
        let q = &self.cluster.queues[qslot];
        let (prio, group) = (q.spec.priority, q.group(qslot));
        let mut entries = self.runnable.entries();
        for (k, e) in entries.iter_mut() {
            if self.cluster.shapes[e.shape].qslot == qslot {
                k.qprio = Reverse(prio);
                k.group = group;
                if let Some(slot) = e.slot {
                    self.jobs[slot].run_key = Some(*k);
                }
            }
        }
        self.runnable.rebuild(entries);
    }

    fn delete_queue(&mut self, id: QueueId) -> Result<(), CoreError> {
        let slot = self
            .cluster
            .queue_slot(id)
            .ok_or(CoreError::UnknownQueue(id))?;
        let q = &mut self.cluster.queues[slot];
        if q.active > 0 {
            return Err(CoreError::QueueNotEmpty {
                queue: id,
                count: q.active,
            });
        }
        q.deleted = true;
        self.cluster.topo_epoch += 1;
        Ok(())
    }

    fn upsert_pool(&mut self, spec: PoolSpec) {
        let c = &mut self.cluster;
        let mut members = Set::new();
        for (id, &slot) in &c.node_index {
            let node = &c.meta[slot].spec;
            if c.hot[slot].alive && node.schedulable && selector_matches(&spec.selector, node) {
                members.insert(*id);
            }
        }
        c.pools.insert(spec.id, Pool { spec, members });
        c.topo_epoch += 1;
        self.retime_queues();
    }

    fn delete_pool(&mut self, id: PoolId) -> Result<(), CoreError> {
        self.cluster
            .pools
            .remove(&id)
            .ok_or(CoreError::UnknownPool(id))?;
        self.cluster.topo_epoch += 1;
        self.retime_queues();
        Ok(())
    }

    /// Whether each queue is timed (some pool of it is), and for a queue
    /// that became or stopped being timed, its jobs' shapes anew (with or
    /// without their timeouts).
    fn retime_queues(&mut self) {
        let c = &self.cluster;
        let flips: Vec<QueueSlot> = c
            .queues
            .iter_enumerated()
            .filter(|(_, q)| {
                let timed = q
                    .spec
                    .pools
                    .iter()
                    .any(|p| c.pools.get(p).is_some_and(|p| p.spec.timed));
                timed != q.timed
            })
            .map(|(slot, _)| slot)
            .collect();
        for qslot in flips {
            let q = &mut self.cluster.queues[qslot];
            q.timed = !q.timed;
            self.reshape_queue(qslot);
        }
    }

    /// Every unfinished job of a queue takes the shape its demand and
    /// timeout now make (the queue became timed or stopped being so).
    fn reshape_queue(&mut self, qslot: QueueSlot) {
        let mut changed = false;
        for slot in self.jobs.indices() {
            let job = &self.jobs[slot];
            let Some(sid) = job.shape else { continue };
            if job.qslot != Some(qslot) || job.state.is_terminal() {
                continue;
            }
            let (demand, timeout) = (self.cluster.shapes[sid].demand.clone(), job.spec.timeout_s);
            let new = self.cluster.intern_shape(qslot, demand, timeout);
            changed |= new != sid;
            self.jobs[slot].shape = Some(new);
        }
        if changed {
            let mut entries = self.runnable.entries();
            for (_, e) in entries.iter_mut() {
                if let Some(slot) = e.slot {
                    if let Some(sid) = self.jobs[slot].shape {
                        e.shape = sid;
                    }
                }
            }
            self.runnable.rebuild(entries);
        }
    }

    fn upsert_node(&mut self, spec: NodeSpec) {
        let c = &mut self.cluster;
        let slot = match c.node_index.get(&spec.id) {
            Some(&s) => s,
            None => {
                let s = c.hot.push(NodeHot::default());
                c.overdue.push(SimNode::default());
                c.meta.push(NodeMeta {
                    spec: spec.clone(),
                    attempts: Vec::new(),
                });
                c.node_index.insert(spec.id, s);
                s
            }
        };
        let h = &mut c.hot[slot];
        h.cap = spec.capacity;
        h.alive = true;
        h.group = spec.group.map_or(0, |g| g.saturating_add(1));
        h.ends_at = spec.ends_at.unwrap_or(Millis::MAX);
        for pool in c.pools.values_mut() {
            if spec.schedulable && selector_matches(&pool.spec.selector, &spec) {
                pool.members.insert(spec.id);
            } else {
                pool.members.remove(&spec.id);
            }
        }
        c.meta[slot].spec = spec;
        c.topo_epoch += 1;
    }

    /// A node is gone: every attempt with a node there fails (`reason`,
    /// else "node NAME was lost") and may be retried.
    fn node_lost(&mut self, id: NodeId, reason: Option<String>) -> Result<(), CoreError> {
        let slot = self
            .cluster
            .node_slot(id)
            .ok_or(CoreError::UnknownNode(id))?;
        let reason = reason
            .unwrap_or_else(|| format!("node {} was lost", self.cluster.meta[slot].spec.name));
        let mut victims = self.cluster.meta[slot].attempts.clone();
        victims.sort_by_key(|&j| self.jobs[j].spec.key);
        victims.dedup();
        for j in victims {
            if let Some(number) =
                self.end_attempt(j, None, &reason, Some(&reason), Some(slot), true)
            {
                self.after_attempt(j, number, None, &reason, true);
            }
        }
        // What the node held of ended attempts is gone with it.
        let waiting: Vec<JobSlot> = self
            .jobs
            .iter_enumerated()
            .filter(|(_, j)| j.lingering.iter().any(|l| l.2 == id))
            .map(|(i, _)| i)
            .collect();
        for j in waiting {
            self.unlinger(j, |l| l.2 == id);
        }
        let c = &mut self.cluster;
        c.hot[slot] = NodeHot::default();
        c.overdue[slot] = SimNode::default();
        c.meta[slot].attempts.clear();
        for pool in c.pools.values_mut() {
            pool.members.remove(&id);
        }
        c.topo_epoch += 1;
        Ok(())
    }

    // ----- job lifecycle ----------------------------------------------------

    fn slot_of(&self, job: JobKey) -> Result<JobSlot, CoreError> {
        self.job_index
            .get(&job)
            .copied()
            .ok_or(CoreError::UnknownJob(job))
    }

    /// Runtime estimate of a job in ms: its timeout, else its queue's default.
    fn estimate(&self, j: JobSlot) -> Millis {
        let job = &self.jobs[j];
        let secs = job.spec.timeout_s.unwrap_or_else(|| {
            job.qslot
                .and_then(|q| self.cluster.queues.get(q))
                .map_or(0, |q| q.spec.default_estimate_s)
        });
        secs.saturating_mul(1000)
    }

    fn submit(&mut self, spec: JobSpec, restored: Option<Restored>) -> Result<(), CoreError> {
        let mut checked = self.check_submit(&spec, restored.as_ref())?;
        let key = spec.key;
        let timeout_s = spec.timeout_s;
        let (parent, is_array) = (checked.parent, checked.demand.is_none());
        let occupy = checked.occupy.take();
        let rstate = restored.as_ref().map(|r| r.state);
        let (slot, unfinished, dep_failed) = self.insert_job(spec, restored.as_ref(), checked);
        match rstate {
            None | Some(JobState::Submitted) => self.evaluate_new(slot, dep_failed),
            Some(JobState::Pending) => {
                self.jobs[slot].state = JobState::Pending;
                if is_array {
                    self.check_parent(slot);
                } else if dep_failed {
                    self.set_state(slot, JobState::Failed, DEPENDENCY_FAILED_REASON);
                } else if unfinished == 0 {
                    self.set_state(slot, JobState::Runnable, "");
                }
            }
            Some(JobState::Runnable) => {
                self.jobs[slot].state = JobState::Runnable;
                self.insert_runnable(slot);
            }
            Some(state @ (JobState::Starting | JobState::Running)) => {
                self.jobs[slot].state = state;
                let occupy = occupy.expect("checked: a STARTING or RUNNING job has its attempt");
                self.occupy_restored(key, slot, timeout_s, occupy);
            }
            Some(state) => {
                // Finished: kept so that dependents and the parent see it.
                self.jobs[slot].state = state;
                if let Some(parent) = parent {
                    self.child_finished(parent, state == JobState::Succeeded);
                }
            }
        }
        // A child submitted after its parent was cancelled or terminated.
        if let Some(parent) = parent {
            if let Some((_, reason)) = self.jobs[parent].kill_children.clone() {
                if matches!(
                    self.jobs[slot].state,
                    JobState::Submitted | JobState::Pending | JobState::Runnable
                ) {
                    self.set_state(slot, JobState::Failed, reason.as_str());
                }
            }
        }
        Ok(())
    }

    /// Everything a submission (or a restored job) must be before it is
    /// inserted: its demand, queue, dependencies and parent known, and a
    /// restored attempt on known nodes, one per node index.
    fn check_submit(
        &self,
        spec: &JobSpec,
        restored: Option<&Restored>,
    ) -> Result<CheckedSubmit, CoreError> {
        let key = spec.key;
        if self.job_index.contains_key(&key) {
            return Err(CoreError::DuplicateJob(key));
        }
        let invalid = |why: &str| CoreError::InvalidJob {
            job: key,
            why: why.to_string(),
        };
        let bad_restore = |why: &str| CoreError::InvalidRestore {
            job: key,
            why: why.to_string(),
        };
        let demand = match &spec.shape {
            Shape::Single(r) => Some(Demand::Single(*r)),
            Shape::Gang { nodes, main_node } => {
                if nodes.is_empty() {
                    return Err(invalid("a multi-node job needs at least one node"));
                }
                if *main_node as usize >= nodes.len() {
                    return Err(invalid("the main node index is out of range"));
                }
                Some(Demand::Gang(nodes.clone()))
            }
            Shape::ArrayParent { .. } => {
                if spec.parent.is_some() {
                    return Err(invalid("an array child cannot be an array job itself"));
                }
                None
            }
        };
        let terminal_restore = restored.is_some_and(|r| r.state.is_terminal());
        let qslot = match self.cluster.queue_slot(spec.queue) {
            Some(s) => Some(s),
            None if terminal_restore => None,
            None => return Err(CoreError::UnknownQueue(spec.queue)),
        };
        let mut dep_slots = Vec::with_capacity(spec.depends_on.len());
        for d in &spec.depends_on {
            if d.on == key {
                return Err(invalid("a job cannot depend on itself"));
            }
            dep_slots.push(self.slot_of(d.on)?);
        }
        let parent = match spec.parent {
            Some(p) => {
                let ps = self.slot_of(p)?;
                let pj = &self.jobs[ps];
                let Shape::ArrayParent { size } = pj.spec.shape else {
                    return Err(invalid("its parent is not an array job"));
                };
                if pj.children.len() >= size as usize {
                    return Err(invalid("its array job already has all its children"));
                }
                Some(ps)
            }
            None => None,
        };
        let mut occupy = None;
        if let Some(r) = restored {
            match r.state {
                JobState::Starting | JobState::Running => {
                    let Some((number, started_at, placement)) = &r.running else {
                        return Err(bad_restore("a STARTING or RUNNING job needs its attempt"));
                    };
                    let Some(demand) = &demand else {
                        return Err(bad_restore("an array job never runs"));
                    };
                    let n = match demand {
                        Demand::Single(_) => 1,
                        Demand::Gang(v) => v.len(),
                    };
                    let mut placement = placement.clone();
                    placement.sort_by_key(|p| p.node_index);
                    if placement.len() != n
                        || placement
                            .iter()
                            .enumerate()
                            .any(|(i, p)| p.node_index as usize != i)
                    {
                        return Err(bad_restore(
                            "the placement must have one entry per node index",
                        ));
                    }
                    let mut slots = Vec::with_capacity(n);
                    for p in &placement {
                        slots.push(
                            self.cluster
                                .node_slot(p.node)
                                .ok_or(CoreError::UnknownNode(p.node))?,
                        );
                    }
                    occupy = Some(Occupy {
                        number: *number,
                        started_at: *started_at,
                        placement,
                        slots,
                    });
                }
                JobState::Runnable if demand.is_none() => {
                    return Err(bad_restore("an array job is never RUNNABLE"));
                }
                _ => {}
            }
        }
        Ok(CheckedSubmit {
            demand,
            qslot,
            terminal_restore,
            dep_slots,
            parent,
            occupy,
        })
    }

    /// Insert a checked job as SUBMITTED, linked to its dependencies and
    /// parent; its slot, how many of its dependencies have not succeeded,
    /// and whether one failed.
    fn insert_job(
        &mut self,
        spec: JobSpec,
        restored: Option<&Restored>,
        checked: CheckedSubmit,
    ) -> (JobSlot, usize, bool) {
        let CheckedSubmit {
            demand,
            qslot,
            terminal_restore,
            dep_slots,
            parent,
            ..
        } = checked;
        let key = spec.key;
        let slot = self.jobs.next_index();
        let unfinished = dep_slots
            .iter()
            .filter(|&&d| self.jobs[d].state != JobState::Succeeded)
            .count();
        let dep_failed = dep_slots
            .iter()
            .any(|&d| self.jobs[d].state == JobState::Failed);
        for &d in &dep_slots {
            self.jobs[d].dependents.push(slot);
        }
        if let Some(parent) = parent {
            self.jobs[parent].children.push(slot);
        }
        let is_array = demand.is_none();
        let shape = match (demand, qslot) {
            (Some(d), Some(q)) => Some(self.cluster.intern_shape(q, d, spec.timeout_s)),
            _ => None,
        };
        let share = match qslot {
            Some(q) if spec.share.is_some() || self.cluster.queues[q].spec.fairshare.is_some() => {
                let q = &mut self.cluster.queues[q];
                let name = spec.share.as_deref().unwrap_or("");
                q.shares.number(name, q.spec.fairshare.as_ref())
            }
            _ => 0,
        };
        self.jobs.push(Job {
            spec,
            state: JobState::Submitted,
            reason: Arc::from(""),
            qslot,
            shape,
            is_array,
            attempts_done: restored.map_or(0, |r| r.attempts_done),
            uncounted: restored.map_or(0, |r| r.uncounted),
            attempt: None,
            unfinished_deps: unfinished as u32,
            dependents: Vec::new(),
            parent,
            children: Vec::new(),
            children_done: 0,
            children_failed: 0,
            kill_children: None,
            run_key: None,
            share,
            lingering: Vec::new(),
        });
        self.job_index.insert(key, slot);
        if let (false, Some(q)) = (terminal_restore, qslot) {
            self.cluster.queues[q].active += 1;
        }
        (slot, unfinished, dep_failed)
    }

    /// A restored STARTING or RUNNING job takes its attempt's place again:
    /// its allocations on its nodes, its estimated end and its deadline.
    fn occupy_restored(&mut self, key: JobKey, slot: JobSlot, timeout_s: Option<u64>, o: Occupy) {
        let Occupy {
            number,
            started_at,
            placement,
            slots,
        } = o;
        let gang = matches!(self.jobs[slot].spec.shape, Shape::Gang { .. });
        for (p, &ns) in placement.iter().zip(&slots) {
            take(&mut self.cluster.hot[ns], p.alloc, gang);
            self.cluster.meta[ns].attempts.push(slot);
        }
        let est_end = started_at.saturating_add(self.estimate(slot));
        let deadline = timeout_s.map(|t| started_at.saturating_add(t.saturating_mul(1000)));
        let job = &mut self.jobs[slot];
        let main = match job.spec.shape {
            Shape::Gang { main_node, .. } => main_node,
            _ => 0,
        };
        job.attempts_done = job.attempts_done.min(number);
        job.attempt = Some(Attempt {
            number,
            est_end,
            deadline,
            exited: vec![false; placement.len()],
            placement,
            slots,
            gang,
            main,
        });
        self.running.insert((est_end, key, slot));
        share_start(&mut self.cluster, &self.jobs[slot], started_at);
        if est_end <= self.cluster.overdue_at {
            if let Some(att) = self.jobs[slot].attempt.as_ref() {
                overdue_apply(&mut self.cluster.overdue, att, true);
            }
        }
        if let Some(d) = deadline {
            self.deadlines.insert((d, key, slot));
        }
    }

    /// A new job leaves SUBMITTED.
    fn evaluate_new(&mut self, slot: JobSlot, dep_failed: bool) {
        let job = &self.jobs[slot];
        if job.is_array {
            self.set_state(slot, JobState::Pending, "");
            self.check_parent(slot);
        } else if dep_failed {
            self.set_state(slot, JobState::Failed, DEPENDENCY_FAILED_REASON);
        } else if job.unfinished_deps > 0 {
            self.set_state(slot, JobState::Pending, "");
        } else {
            self.set_state(slot, JobState::Runnable, "");
        }
    }

    fn insert_runnable(&mut self, slot: JobSlot) {
        let job = &mut self.jobs[slot];
        let (Some(qslot), Some(shape)) = (job.qslot, job.shape) else {
            return; // an array parent, or a finished job of a deleted queue: never runs
        };
        let q = &self.cluster.queues[qslot];
        let key = RunKey {
            qprio: Reverse(q.spec.priority),
            group: q.group(qslot),
            prio: Reverse(job.spec.priority),
            submitted_at: job.spec.submitted_at,
            key: job.spec.key,
        };
        let entry = RunEntry {
            slot: Some(slot),
            shape,
            reason: None,
            timeout_s: job
                .spec
                .timeout_s
                .map_or(u32::MAX, |t| t.min(u32::MAX as u64 - 1) as u32),
        };
        job.run_key = Some(key);
        self.runnable.insert(key, entry);
        self.fresh.push(slot);
    }

    /// Changes a job's state and reason and emits the change.
    fn set_state(&mut self, slot: JobSlot, state: JobState, reason: &str) {
        let job = &mut self.jobs[slot];
        let old = job.state;
        if state != JobState::Runnable {
            if let Some(k) = job.run_key.take() {
                self.runnable.remove(&k);
            }
        }
        job.state = state;
        job.reason = Arc::from(reason);
        let key = job.spec.key;
        let qslot = job.qslot;
        if state == JobState::Runnable && job.run_key.is_none() && job.lingering.is_empty() {
            self.insert_runnable(slot);
        }
        self.out.push(Decision::State {
            job: key,
            state,
            reason: reason.to_string(),
        });
        if state.is_terminal() && !old.is_terminal() {
            if let Some(q) = qslot.and_then(|q| self.cluster.queues.get_mut(q)) {
                q.active = q.active.saturating_sub(1);
            }
            self.finished.push_back(slot);
        }
    }

    /// Propagates finished jobs to dependents and array parents.
    fn settle(&mut self) {
        while let Some(j) = self.finished.pop_front() {
            let ok = self.jobs[j].state == JobState::Succeeded;
            let dependents = std::mem::take(&mut self.jobs[j].dependents);
            for &d in &dependents {
                let dj = &mut self.jobs[d];
                if ok {
                    dj.unfinished_deps = dj.unfinished_deps.saturating_sub(1);
                }
                if dj.state != JobState::Pending || dj.is_array {
                    continue;
                }
                if !ok {
                    self.set_state(d, JobState::Failed, DEPENDENCY_FAILED_REASON);
                } else if dj.unfinished_deps == 0 {
                    self.set_state(d, JobState::Runnable, "");
                }
            }
            self.jobs[j].dependents = dependents;
            if let Some(parent) = self.jobs[j].parent {
                self.child_finished(parent, ok);
            }
        }
    }

    fn child_finished(&mut self, parent: JobSlot, ok: bool) {
        let p = &mut self.jobs[parent];
        p.children_done += 1;
        if !ok {
            p.children_failed += 1;
        }
        self.check_parent(parent);
    }

    /// Ends an array parent once all its children have ended.
    fn check_parent(&mut self, parent: JobSlot) {
        let p = &self.jobs[parent];
        let Shape::ArrayParent { size } = p.spec.shape else {
            return;
        };
        if p.state.is_terminal() || p.children_done < size {
            return;
        }
        if p.children_failed == 0 {
            self.set_state(parent, JobState::Succeeded, "");
        } else {
            // A cancelled or terminated array ends with the user's reason.
            let counts = format!("{} of {size} child jobs failed", p.children_failed);
            let reason = match &p.kill_children {
                Some((_, why)) => format!("{why} ({counts})"),
                None => counts,
            };
            self.set_state(parent, JobState::Failed, &reason);
        }
    }

    fn stop_event(&mut self, job: JobKey, reason: &str, terminate: bool) -> Result<(), CoreError> {
        let slot = self.slot_of(job)?;
        self.stop(slot, reason, terminate);
        Ok(())
    }

    /// CancelJob (`terminate == false`) or TerminateJob. For an array parent
    /// it applies to every unfinished child, including children submitted
    /// later.
    fn stop(&mut self, slot: JobSlot, reason: &str, terminate: bool) {
        let job = &mut self.jobs[slot];
        if job.is_array {
            if !job.state.is_terminal() {
                job.kill_children = Some((terminate, reason.to_string()));
            }
            for c in job.children.clone() {
                self.stop(c, reason, terminate);
            }
            return;
        }
        match job.state {
            JobState::Submitted | JobState::Pending | JobState::Runnable => {
                self.set_state(slot, JobState::Failed, reason);
            }
            JobState::Starting | JobState::Running if terminate => {
                self.end_attempt(slot, None, reason, Some(reason), None, true);
                self.set_state(slot, JobState::Failed, reason);
            }
            _ => {}
        }
    }

    /// Tasks of a job's ended attempts matching `gone` are gone; once none
    /// is left, a RUNNABLE job may start again.
    fn unlinger(&mut self, slot: JobSlot, gone: impl Fn(&(u32, u32, NodeId)) -> bool) {
        let job = &mut self.jobs[slot];
        if job.lingering.is_empty() {
            return;
        }
        job.lingering.retain(|l| !gone(l));
        if job.lingering.is_empty() && job.state == JobState::Runnable && job.run_key.is_none() {
            self.insert_runnable(slot);
        }
    }

    /// The job's current attempt, if `attempt` names it.
    fn current_attempt(&self, slot: JobSlot, attempt: u32) -> Option<&Attempt> {
        self.jobs[slot]
            .attempt
            .as_ref()
            .filter(|a| a.number == attempt)
    }

    fn node_started(&mut self, job: JobKey, attempt: u32, idx: u32) -> Result<(), CoreError> {
        let slot = self.slot_of(job)?;
        let Some(att) = self.current_attempt(slot, attempt) else {
            return Ok(());
        };
        if idx as usize >= att.placement.len() {
            return Err(CoreError::InvalidNodeIndex {
                job,
                node_index: idx,
            });
        }
        if idx == att.main && self.jobs[slot].state == JobState::Starting {
            self.set_state(slot, JobState::Running, "");
        }
        Ok(())
    }

    fn node_exited(
        &mut self,
        job: JobKey,
        attempt: u32,
        idx: u32,
        exit: Option<i32>,
        reason: String,
    ) -> Result<(), CoreError> {
        let slot = self.slot_of(job)?;
        let Some(att) = self.current_attempt(slot, attempt) else {
            // A task of an ended attempt is gone.
            self.unlinger(slot, |&(a, i, _)| a == attempt && i == idx);
            return Ok(());
        };
        if idx as usize >= att.placement.len() {
            return Err(CoreError::InvalidNodeIndex {
                job,
                node_index: idx,
            });
        }
        let ends = !att.gang || idx == att.main;
        let gang = att.gang;
        if let Some(a) = self.jobs[slot].attempt.as_mut() {
            a.exited[idx as usize] = true;
        }
        if ends {
            let reason = if reason.is_empty() {
                DEFAULT_EXIT_REASON
            } else {
                reason.as_str()
            };
            let kill = gang.then_some(MAIN_EXITED_REASON);
            self.end_attempt(slot, exit, reason, kill, None, true);
            self.after_attempt(slot, attempt, exit, reason, true);
        }
        Ok(())
    }

    fn tick(&mut self, now: Millis) {
        let due: Vec<JobSlot> = self
            .deadlines
            .range(..=(now, JobKey(u64::MAX), JobSlot::LAST))
            .map(|d| d.2)
            .collect();
        for j in due {
            self.end_attempt(j, None, TIMEOUT_REASON, Some(TIMEOUT_REASON), None, true);
            self.set_state(j, JobState::Failed, TIMEOUT_REASON);
        }
    }

    /// The Start of an attempt in flight never reached a node: end it
    /// without counting it and make the job RUNNABLE again.
    fn start_undelivered(
        &mut self,
        job: JobKey,
        attempt: u32,
        reason: &str,
    ) -> Result<(), CoreError> {
        let slot = self.slot_of(job)?;
        if self.current_attempt(slot, attempt).is_none() {
            return Ok(());
        }
        self.end_attempt(slot, None, reason, Some(reason), None, false);
        let text = format!("{reason}; not counted as an attempt, waiting to start again");
        self.set_state(slot, JobState::Runnable, &text);
        Ok(())
    }

    /// Ends a job's attempt in flight: Kill (with `kill` as reason) what
    /// still runs (except on node slot `skip`), free its resources, emit
    /// AttemptEnded (`counted`: against the retry strategy). Returns the
    /// attempt number, None if none was in flight.
    fn end_attempt(
        &mut self,
        slot: JobSlot,
        exit: Option<i32>,
        reason: &str,
        kill: Option<&str>,
        skip: Option<NodeSlot>,
        counted: bool,
    ) -> Option<u32> {
        let job = &mut self.jobs[slot];
        let att = job.attempt.take()?;
        job.attempts_done = job.attempts_done.max(att.number + 1);
        if !counted {
            job.uncounted += 1;
        }
        let key = job.spec.key;
        if let Some(kill_reason) = kill {
            let nodes: Vec<NodeId> = (0..att.placement.len())
                .filter(|&i| !att.exited[i] && Some(att.slots[i]) != skip)
                .map(|i| att.placement[i].node)
                .collect();
            if !nodes.is_empty() {
                // Until each is gone, no other attempt of the job starts.
                self.jobs[slot].lingering.extend(
                    (0..att.placement.len())
                        .filter(|&i| !att.exited[i] && Some(att.slots[i]) != skip)
                        .map(|i| (att.number, i as u32, att.placement[i].node)),
                );
                self.out.push(Decision::Kill {
                    job: key,
                    attempt: att.number,
                    nodes,
                    reason: kill_reason.to_string(),
                });
            }
        }
        for (p, &ns) in att.placement.iter().zip(&att.slots) {
            give(&mut self.cluster.hot[ns], p.alloc, att.gang);
            let list = &mut self.cluster.meta[ns].attempts;
            if let Some(i) = list.iter().position(|&x| x == slot) {
                list.swap_remove(i);
            }
        }
        self.running.remove(&(att.est_end, key, slot));
        if let Some(q) = self.jobs[slot].qslot {
            let q = &mut self.cluster.queues[q];
            let window = q.spec.fairshare.as_ref().map_or(0, |p| p.window_s());
            q.shares.end(self.jobs[slot].share, key, self.clock, window);
        }
        if att.est_end <= self.cluster.overdue_at {
            overdue_apply(&mut self.cluster.overdue, &att, false);
        }
        if let Some(d) = att.deadline {
            self.deadlines.remove(&(d, key, slot));
        }
        self.out.push(Decision::AttemptEnded {
            job: key,
            attempt: att.number,
            exit_code: exit,
            reason: reason.to_string(),
            counted,
        });
        Some(att.number)
    }

    /// After an attempt ended: SUCCEEDED, retry (RUNNABLE) or FAILED.
    fn after_attempt(
        &mut self,
        slot: JobSlot,
        number: u32,
        exit: Option<i32>,
        reason: &str,
        retryable: bool,
    ) {
        if exit == Some(0) {
            self.set_state(slot, JobState::Succeeded, reason);
            return;
        }
        let job = &self.jobs[slot];
        let retry = &job.spec.retry;
        let max = retry.attempts.max(1);
        // Attempts that never reached a node do not count.
        let number = number.saturating_sub(job.uncounted);
        if retryable && number + 1 < max && retry_allowed(&retry.evaluate_on_exit, exit, reason) {
            let what = match exit {
                Some(code) => format!("exit code {code}"),
                None => reason.to_string(),
            };
            let text = format!(
                "attempt {} failed ({what}); retrying (attempt {} of {max})",
                number + 1,
                number + 2
            );
            self.set_state(slot, JobState::Runnable, &text);
        } else {
            self.set_state(slot, JobState::Failed, reason);
        }
    }

    // ----- scheduling -------------------------------------------------------

    /// One scheduling pass at `now`. Walks RUNNABLE jobs in priority order
    /// (queue priority, job priority, submit time, key), starts what fits
    /// according to the backfilling policy (emitting Start and State
    /// STARTING), and updates the status reason of jobs that stay RUNNABLE
    /// (emitted only when the text changes).
    pub fn schedule(&mut self, now: Millis) {
        self.pass_epoch += 1;
        self.version += 1;
        self.clock = self.clock.max(now);
        self.cluster.now = now;
        let prev_heads = std::mem::replace(
            &mut self.heads,
            IndexVec::from_elem(None, self.cluster.queues.len()),
        );
        let fresh = std::mem::take(&mut self.fresh);
        let rest = self.fcfs_rest.take();
        let epoch = self.pass_epoch;
        self.last_head = None;
        let fcfs = self.config.backfill == Backfill::Fcfs;
        if self.runnable.len() == 0 {
            if fcfs {
                self.fcfs_rest = Some((self.cluster.topo_epoch, self.runnable.removals()));
            }
            return;
        }
        self.ensure_classes();
        self.advance_overdue(now);
        let actions = match self.config.backfill {
            Backfill::Fcfs => {
                let unchanged = rest == Some((self.cluster.topo_epoch, self.runnable.removals()));
                let fair = self
                    .cluster
                    .queues
                    .iter_enumerated()
                    .any(|(_, q)| !q.deleted && q.spec.fairshare.is_some());
                let skip = (unchanged
                    && !fair
                    && prev_heads.len() == self.cluster.queues.len()
                    && fresh.len() <= self.runnable.len())
                .then_some(FcfsSkip {
                    heads: prev_heads,
                    fresh,
                });
                self.walk(now, epoch, Fcfs::default(), skip)
            }
            Backfill::Easy => self.walk(now, epoch, Easy::default(), None),
            Backfill::Conservative => {
                self.profile.reset(self.cluster.hot.len(), now);
                self.walk(now, epoch, Conservative::default(), None)
            }
        };
        self.apply_actions(now, actions);
        if fcfs {
            self.fcfs_rest = Some((self.cluster.topo_epoch, self.runnable.removals()));
        }
    }

    /// One walk over the runnable jobs in priority order: for each, the
    /// policy says where it starts (or reserves for it); the jobs that do
    /// not start get their shape's status reason. The jobs of a queue with a
    /// fair-share policy lie together in the run queue; they are gathered
    /// and offered in fair-share order (`offer_fair`). Changes nothing but
    /// the cluster's allocations and the policies' reservations: the
    /// actions are applied after.
    fn walk<P: Policy>(
        &mut self,
        now: Millis,
        epoch: u64,
        mut policy: P,
        mut skip: Option<FcfsSkip>,
    ) -> Vec<Action> {
        let Core {
            jobs,
            runnable,
            cluster,
            running,
            overlay,
            profile,
            last_head,
            heads,
            ..
        } = self;
        let mut pass = Pass {
            now,
            epoch,
            cluster,
            jobs,
            running,
            overlay,
            profile,
            last_head,
        };
        let mut actions: Vec<Action> = Vec::new();
        let mut fair: Option<(QueueSlot, Vec<(Pos, JobSlot)>)> = None;
        // FCFS skipping: the queues whose last head this pass started (their
        // new head must be found by walking), and the last job visited.
        let mut refind: Vec<QueueSlot> = Vec::new();
        let mut cut: Option<RunKey> = None;
        let mut walk = runnable.walk();
        while let Some((pos, slot, entry)) = runnable.next(&mut walk) {
            let qslot = pass.cluster.shapes[entry.shape].qslot;
            if pass.cluster.queues[qslot].spec.fairshare.is_some() {
                match &mut fair {
                    Some((q, list)) if *q == qslot => list.push((pos, slot)),
                    _ => {
                        if let Some((q, list)) = fair.replace((qslot, vec![(pos, slot)])) {
                            let pass = &mut pass;
                            offer_fair(pass, &mut policy, &mut actions, runnable, heads, q, list);
                        }
                    }
                }
                continue;
            }
            if let Some((q, list)) = fair.take() {
                offer_fair(
                    &mut pass,
                    &mut policy,
                    &mut actions,
                    runnable,
                    heads,
                    q,
                    list,
                );
            }
            let entry = runnable.get_mut(pos);
            if !offer(&mut pass, &mut policy, &mut actions, pos, slot, entry) {
                heads[qslot].get_or_insert((slot, entry.reason));
            } else if let Some(s) = &skip {
                if s.heads[qslot].is_some_and(|h| h.0 == slot) {
                    refind.push(qslot);
                }
            }
            if skip.is_some() && policy.stopped() && refind.iter().all(|&q| heads[q].is_some()) {
                cut = pass.jobs[slot].run_key;
                break;
            }
        }
        if let Some((q, list)) = fair.take() {
            offer_fair(
                &mut pass,
                &mut policy,
                &mut actions,
                runnable,
                heads,
                q,
                list,
            );
        }
        if let (Some(cut), Some(skip)) = (cut, skip.take()) {
            // Behind the cut: the new jobs get their reasons, and each queue
            // not yet given a head gets the first of its last head and its
            // new jobs.
            let mut first: IndexVec<QueueSlot, Option<(RunKey, JobSlot, Option<ReasonId>)>> =
                IndexVec::from_elem(None, heads.len());
            let mut consider = |q: QueueSlot, k: RunKey, slot: JobSlot, r: Option<ReasonId>| {
                if first[q].is_none_or(|f| k < f.0) {
                    first[q] = Some((k, slot, r));
                }
            };
            for (q, h) in skip.heads.iter_enumerated() {
                if let Some((slot, r)) = *h {
                    if let Some(k) = pass.jobs[slot].run_key.filter(|k| *k > cut) {
                        consider(q, k, slot, r);
                    }
                }
            }
            for slot in skip.fresh {
                let Some(key) = pass.jobs[slot].run_key.filter(|k| *k > cut) else {
                    continue;
                };
                let Some(pos) = runnable.pos_of(&key) else {
                    continue;
                };
                let entry = runnable.get_mut(pos);
                let qslot = pass.cluster.shapes[entry.shape].qslot;
                offer(&mut pass, &mut policy, &mut actions, pos, slot, entry);
                consider(qslot, key, slot, entry.reason);
            }
            for (q, f) in first.iter_enumerated() {
                if let Some((_, slot, r)) = *f {
                    heads[q].get_or_insert((slot, r));
                }
            }
        }
        actions
    }

    /// Apply a pass's actions: new status reasons, and the starts (the
    /// attempt, its placement, deadline and estimated end; the Start and
    /// STARTING decisions).
    fn apply_actions(&mut self, now: Millis, actions: Vec<Action>) {
        let Core {
            jobs,
            runnable,
            cluster,
            running,
            deadlines,
            out,
            ..
        } = self;
        for action in actions {
            match action {
                Action::Reason { slot, rid } => {
                    let text = &cluster.reasons.texts[rid];
                    let job = &mut jobs[slot];
                    if job.reason != *text {
                        job.reason = text.clone();
                        out.push(Decision::State {
                            job: job.spec.key,
                            state: JobState::Runnable,
                            reason: text.to_string(),
                        });
                    }
                }
                Action::Start {
                    pos,
                    slot,
                    nodes,
                    est_end,
                } => {
                    runnable.remove_at(pos);
                    let job = &mut jobs[slot];
                    let Some(sid) = job.shape else {
                        continue; // never: only jobs with a shape are runnable
                    };
                    let shape = &cluster.shapes[sid];
                    let mut gang = false;
                    let placement: Vec<Placement> = nodes
                        .iter()
                        .enumerate()
                        .map(|(i, &ns)| {
                            let (alloc, g) = shape.alloc(i);
                            gang = g;
                            cluster.meta[ns].attempts.push(slot);
                            Placement {
                                node_index: i as u32,
                                node: cluster.meta[ns].spec.id,
                                alloc,
                            }
                        })
                        .collect();
                    let key = job.spec.key;
                    let number = job.attempts_done;
                    let deadline = job
                        .spec
                        .timeout_s
                        .map(|t| now.saturating_add(t.saturating_mul(1000)));
                    let main = match job.spec.shape {
                        Shape::Gang { main_node, .. } => main_node,
                        _ => 0,
                    };
                    job.attempt = Some(Attempt {
                        number,
                        est_end,
                        deadline,
                        placement: placement.clone(),
                        exited: vec![false; nodes.len()],
                        slots: nodes,
                        gang,
                        main,
                    });
                    job.run_key = None;
                    job.state = JobState::Starting;
                    job.reason = Arc::from("");
                    running.insert((est_end, key, slot));
                    share_start(cluster, job, now);
                    if est_end <= cluster.overdue_at {
                        if let Some(att) = job.attempt.as_ref() {
                            overdue_apply(&mut cluster.overdue, att, true);
                        }
                    }
                    if let Some(d) = deadline {
                        deadlines.insert((d, key, slot));
                    }
                    out.push(Decision::Start {
                        job: key,
                        attempt: number,
                        placement,
                    });
                    out.push(Decision::State {
                        job: key,
                        state: JobState::Starting,
                        reason: String::new(),
                    });
                }
            }
        }
    }
}

/// Offers one runnable job to the policy: starts it where the policy
/// places it (true), or gives it its shape's status reason.
fn offer<P: Policy>(
    pass: &mut Pass,
    policy: &mut P,
    actions: &mut Vec<Action>,
    pos: Pos,
    slot: JobSlot,
    entry: &mut RunEntry,
) -> bool {
    let sid = entry.shape;
    let epoch = pass.epoch;
    let memo = pass.cluster.shape_memo(sid, epoch);
    if !(memo.dead || policy.stopped()) {
        let est = match entry.timeout_s {
            u32::MAX => {
                let shape = &pass.cluster.shapes[sid];
                let q = &pass.cluster.queues[shape.qslot];
                q.spec.default_estimate_s.saturating_mul(1000)
            }
            t => t as u64 * 1000,
        };
        let job = Candidate {
            slot,
            sid,
            memo,
            est,
        };
        if let Some(nodes) = policy.place(pass, &job) {
            pass.cluster.commit(sid, &nodes);
            policy.started(pass, &job, &nodes);
            actions.push(Action::Start {
                pos,
                slot,
                nodes,
                est_end: pass.now.saturating_add(est),
            });
            return true;
        }
        // Within a pass nothing is freed: once a shape does not fit now,
        // none of its later jobs will (but under Conservative they may
        // still get reservations).
        let m = &mut pass.cluster.shapes[sid].memo;
        m.dead |= m.nofit_now && policy.gives_up();
    }
    if let Some(rid) = memo.rid.filter(|&r| entry.reason != Some(r)) {
        entry.reason = Some(rid);
        actions.push(Action::Reason { slot, rid });
    }
    false
}

/// Offers the runnable jobs of fair-share queue `q` (`list`, in priority
/// order) to the policy: each next job from the active share with the
/// lowest weighted usage ([`Turn`]), in priority order within it, while the
/// active shares hold less than the compute reservation leaves them.
fn offer_fair<P: Policy>(
    pass: &mut Pass,
    policy: &mut P,
    actions: &mut Vec<Action>,
    runnable: &mut RunQueue,
    heads: &mut IndexVec<QueueSlot, Option<(JobSlot, Option<ReasonId>)>>,
    q: QueueSlot,
    list: Vec<(Pos, JobSlot)>,
) {
    let mut by_share: BTreeMap<ShareNo, VecDeque<(Pos, JobSlot)>> = BTreeMap::new();
    for (pos, slot) in list {
        by_share
            .entry(pass.jobs[slot].share)
            .or_default()
            .push_back((pos, slot));
    }
    let now = pass.now;
    let queue = &pass.cluster.queues[q];
    let Some(fs) = queue.spec.fairshare.as_ref() else {
        return;
    };
    let (window, reservation) = (fs.window_s(), fs.compute_reservation);
    let shares = &queue.shares;
    let mut used = shares.running_vcpus();
    let active = shares
        .list
        .iter()
        .enumerate()
        .filter(|(n, s)| s.running_vcpus > 0 || by_share.contains_key(&(*n as ShareNo)))
        .count();
    let limit = if reservation > 0 {
        let capacity: u64 = queue
            .class
            .order
            .iter()
            .map(|&n| u64::from(pass.cluster.hot[n].cap.vcpus))
            .sum();
        share_limit(capacity, reservation, active)
    } else {
        u64::MAX
    };
    let mut turns: Vec<Turn> = by_share
        .keys()
        .map(|&share| {
            let s = &shares.list[share as usize];
            Turn {
                usage: s.weighted(now, window),
                running: s.running_vcpus as f64 * s.weight_factor(),
                share,
            }
        })
        .collect();
    while !turns.is_empty() {
        let shares = &pass.cluster.queues[q].shares;
        let best = (0..turns.len())
            .min_by(|&a, &b| turns[a].cmp(&turns[b], shares))
            .unwrap_or(0);
        let share = turns[best].share;
        let Some((pos, slot)) = by_share.get_mut(&share).and_then(|l| l.pop_front()) else {
            turns.swap_remove(best);
            continue;
        };
        let vcpus = pass.jobs[slot]
            .shape
            .map_or(0, |sid| pass.cluster.shapes[sid].total_vcpus());
        let entry = runnable.get_mut(pos);
        if used.saturating_add(vcpus) > limit {
            // Held back for shares that have no job yet.
            continue;
        }
        if offer(pass, policy, actions, pos, slot, entry) {
            used += vcpus;
            let w = pass.cluster.queues[q].shares.list[share as usize].weight_factor();
            turns[best].running += vcpus as f64 * w;
        } else {
            heads[q].get_or_insert((slot, entry.reason));
        }
    }
}

/// A job's attempt started at `start`: in a fair-share queue, its share
/// counts its vCPUs from then.
fn share_start(cluster: &mut Cluster, job: &Job, start: Millis) {
    let (Some(q), Some(att)) = (job.qslot, job.attempt.as_ref()) else {
        return;
    };
    let q = &mut cluster.queues[q];
    if q.spec.fairshare.is_some() {
        let vcpus = att.placement.iter().map(|p| p.alloc.vcpus).sum();
        q.shares.start(job.share, job.spec.key, start, vcpus);
    }
}
