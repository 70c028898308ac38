//! Internal bookkeeping: jobs, nodes, pools, queues, job shapes and status
//! reason texts. Nothing here makes decisions; see `core.rs` for the job
//! lifecycle, `placement.rs` for fitting jobs on nodes and `backfill.rs` for
//! reservations.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::fairshare::{ShareNo, Shares};
use crate::index::{Idx, IndexVec, JobSlot, NodeSlot, QueueSlot, ReasonId, ShapeId};
use crate::resources::{res_add, res_min, res_sub};
use crate::types::{
    JobKey, JobSpec, JobState, Millis, NodeId, NodeSpec, Placement, PoolId, PoolSpec, QueueId,
    QueueSpec, Resources, WaitCode,
};

/// Position of a RUNNABLE job in scheduling order: queue priority (higher
/// first), fair-share group (0 for a queue without a fair-share policy, so
/// that a fair-share queue's jobs lie together), job priority (higher
/// first), submit time (earlier first), key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RunKey {
    pub qprio: Reverse<i32>,
    pub group: u32,
    pub prio: Reverse<i32>,
    pub submitted_at: Millis,
    pub key: JobKey,
}

/// What the scheduling pass needs of a RUNNABLE job, kept small and next
/// to its key so that a pass over 100,000 jobs stays in cache.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunEntry {
    /// The job's slot in `Core::jobs`; None for a removed entry (a
    /// tombstone of the run queue).
    pub slot: Option<JobSlot>,
    /// Its shape id.
    pub shape: ShapeId,
    /// The pass-made status reason it shows (an id in [`Reasons`]), or
    /// None when its reason was set otherwise (e.g. by a retry).
    pub reason: Option<ReasonId>,
    /// `timeout_s` (at most `u32::MAX - 1`), or `u32::MAX` when the queue
    /// default applies.
    pub timeout_s: u32,
}

/// An attempt in flight (STARTING or RUNNING).
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    /// 0-based attempt number.
    pub number: u32,
    /// Estimated end, for backfilling.
    pub est_end: Millis,
    /// When a Tick kills it, if the job has a timeout.
    pub deadline: Option<Millis>,
    /// One entry per node index.
    pub placement: Vec<Placement>,
    /// Node slots, per node index.
    pub slots: Vec<NodeSlot>,
    /// Per node index: has it exited (or been killed)?
    pub exited: Vec<bool>,
    /// A gang (multi-node) attempt: its nodes are held exclusively.
    pub gang: bool,
    /// The main node index.
    pub main: u32,
}

/// A job.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub spec: JobSpec,
    pub state: JobState,
    pub reason: Arc<str>,
    /// Queue slot; None for a restored finished job of a deleted queue.
    pub qslot: Option<QueueSlot>,
    /// Shape id; None for array parents (and finished jobs restored into a
    /// deleted queue).
    pub shape: Option<ShapeId>,
    /// An array parent.
    pub is_array: bool,
    /// Finished attempts.
    pub attempts_done: u32,
    /// Of those, the ones that do not count against the retry strategy.
    pub uncounted: u32,
    pub attempt: Option<Attempt>,
    /// Dependencies not yet SUCCEEDED.
    pub unfinished_deps: u32,
    /// Jobs depending on this one.
    pub dependents: Vec<JobSlot>,
    /// Array parent.
    pub parent: Option<JobSlot>,
    /// Array children, for a parent.
    pub children: Vec<JobSlot>,
    pub children_done: u32,
    pub children_failed: u32,
    /// For a parent that was cancelled (false) or terminated (true): applied
    /// to children submitted later, too.
    pub kill_children: Option<(bool, String)>,
    /// Set while RUNNABLE.
    pub run_key: Option<RunKey>,
    /// Its share in its queue's [`Shares`].
    pub share: ShareNo,
    /// Tasks of ended attempts told to end (Kill) and not yet gone:
    /// (attempt, node index, node). A RUNNABLE job waits for them before
    /// another attempt starts anywhere.
    pub lingering: Vec<(u32, u32, NodeId)>,
}

/// The hot, scanned part of a node.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NodeHot {
    pub cap: Resources,
    pub used: Resources,
    /// Attempts placed on it.
    pub users: u32,
    /// Gang attempts placed on it (then `users == 1`).
    pub excl: u32,
    pub alive: bool,
    /// Its allocation (0: none); see [`NodeSpec::group`].
    pub group: u32,
    /// When it ends (`Millis::MAX`: never); see [`NodeSpec::ends_at`].
    pub ends_at: Millis,
}

/// The rest of a node.
#[derive(Debug, Clone)]
pub(crate) struct NodeMeta {
    pub spec: NodeSpec,
    /// Jobs whose attempts are placed on it.
    pub attempts: Vec<JobSlot>,
}

/// A compute environment.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    pub spec: PoolSpec,
    /// Alive nodes matched by its selector.
    pub members: BTreeSet<NodeId>,
}

/// Eligible nodes of a queue: nodes of its ENABLED pools, earlier pools
/// first, then by node id.
#[derive(Debug, Clone, Default)]
pub(crate) struct Class {
    /// Node slots in preference order.
    pub order: Vec<NodeSlot>,
    /// Position in `order` per node slot (None: not eligible).
    pub pos: IndexVec<NodeSlot, Option<u32>>,
}

/// A job queue.
#[derive(Debug, Clone)]
pub(crate) struct Queue {
    pub spec: QueueSpec,
    pub deleted: bool,
    /// Jobs of this queue not yet SUCCEEDED or FAILED.
    pub active: usize,
    pub class: Class,
    /// Topology epoch `class` was built for.
    pub class_epoch: u64,
    /// Reason id of "queue NAME is DISABLED".
    pub disabled_reason: ReasonId,
    /// Pass for which `max_free` and `idle` were computed.
    pub bounds_epoch: u64,
    /// At the start of that pass: component-wise maximum of free resources
    /// over eligible nodes a single-node job may use (an upper bound for the
    /// rest of the pass, as a pass only takes resources).
    pub max_free: Resources,
    /// ... and the number of eligible idle nodes.
    pub idle: u32,
    /// Its jobs' share identifiers and their usage.
    pub shares: Shares,
    /// Some pool of it is timed ([`PoolSpec::timed`]): its shapes carry
    /// their jobs' timeouts.
    pub timed: bool,
}

impl Queue {
    /// Its fair-share group in [`RunKey`]: 0 without a policy.
    pub fn group(&self, slot: QueueSlot) -> u32 {
        match self.spec.fairshare {
            Some(_) => slot.index() as u32 + 1,
            None => 0,
        }
    }
}

/// What one node index, or every node index of a gang, needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Demand {
    Single(Resources),
    Gang(Vec<Resources>),
}

/// A distinct (queue, demand, limit) triple. Jobs of one shape are
/// interchangeable for placement, so one pass remembers per shape what did
/// not fit.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    pub qslot: QueueSlot,
    pub demand: Demand,
    /// In a timed queue: the jobs' timeout, which every node they go to
    /// must outlast (None: any node).
    pub limit: Option<Millis>,
    /// Component-wise minimum over node indexes.
    pub min: Resources,
    /// Gang node indexes, largest demand first.
    pub gang_order: Vec<u32>,
    /// (topology epoch, reason id, or None when it can fit an empty
    /// cluster).
    pub never: (u64, Option<ReasonId>),
    /// "waiting for resources" reason id, None until first needed.
    pub waiting: Option<ReasonId>,
    /// Pass memo (valid while `epoch` is the current pass).
    pub memo: Memo,
}

/// Per-pass facts about a shape. Within a pass resources are only taken,
/// never freed, so every "does not fit" stays true for the rest of it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memo {
    pub epoch: u64,
    /// Does not fit the free resources now.
    pub nofit_now: bool,
    /// Does not fit now within EASY's extra resources.
    pub nofit_extra: bool,
    /// Eligible-order positions before this cannot take the shape now.
    pub cursor: u32,
    /// ... nor within the extra.
    pub extra_cursor: u32,
    /// Conservative: cannot start now for an estimate this long or longer.
    pub cons_fail_est: u64,
    /// Set up for this pass (the fields below are valid).
    pub ready: bool,
    /// Nothing of this shape can start in this pass.
    pub dead: bool,
    /// Status reason id for its jobs that do not start in this pass.
    pub rid: Option<ReasonId>,
}

impl Shape {
    #[inline]
    pub fn memo(&mut self, epoch: u64) -> &mut Memo {
        if self.memo.epoch != epoch {
            self.memo = Memo {
                epoch,
                cons_fail_est: u64::MAX,
                ..Memo::default()
            };
        }
        &mut self.memo
    }
}

/// Interned status reason texts made by scheduling passes, so that a pass
/// compares ids rather than strings.
#[derive(Debug, Default, Clone)]
pub(crate) struct Reasons {
    pub texts: IndexVec<ReasonId, Arc<str>>,
    /// The wait class of each text, where it has one.
    pub codes: IndexVec<ReasonId, Option<WaitCode>>,
    ids: HashMap<Arc<str>, ReasonId>,
}

impl Reasons {
    pub fn intern(&mut self, text: String) -> ReasonId {
        self.intern_coded(text, None)
    }

    /// The wait class of an interned text.
    pub fn code_of(&self, text: &str) -> Option<WaitCode> {
        self.ids.get(text).and_then(|&id| self.codes[id])
    }

    /// Interns a text of wait class `code`.
    pub fn intern_coded(&mut self, text: String, code: Option<WaitCode>) -> ReasonId {
        if let Some(&id) = self.ids.get(text.as_str()) {
            return id;
        }
        let text: Arc<str> = text.into();
        let id = self.texts.push(text.clone());
        self.codes.push(code);
        self.ids.insert(text, id);
        id
    }
}

/// Everything placement looks at: nodes, pools, queues, shapes.
#[derive(Debug, Default, Clone)]
pub(crate) struct Cluster {
    pub hot: IndexVec<NodeSlot, NodeHot>,
    pub meta: IndexVec<NodeSlot, NodeMeta>,
    pub node_index: HashMap<NodeId, NodeSlot>,
    pub pools: BTreeMap<PoolId, Pool>,
    pub queues: IndexVec<QueueSlot, Queue>,
    pub queue_index: HashMap<QueueId, QueueSlot>,
    pub shapes: IndexVec<ShapeId, Shape>,
    pub shape_index: HashMap<(QueueSlot, Demand, Option<Millis>), ShapeId>,
    /// Bumped whenever nodes, pools or queues change what is eligible.
    pub topo_epoch: u64,
    /// Per node: allocations, attempts and gang attempts of the attempts in
    /// flight whose estimated end is at or before `overdue_at` (EASY counts
    /// them as ending now).
    pub overdue: IndexVec<NodeSlot, SimNode>,
    /// See `overdue`.
    pub overdue_at: Millis,
    pub reasons: Reasons,
    /// The time of the pass under way (nodes that end before a timed
    /// shape's limit from now do not take it).
    pub now: Millis,
}

impl Cluster {
    /// Alive node slot.
    pub fn node_slot(&self, id: NodeId) -> Option<NodeSlot> {
        let slot = *self.node_index.get(&id)?;
        self.hot[slot].alive.then_some(slot)
    }

    /// Live (not deleted) queue slot.
    pub fn queue_slot(&self, id: QueueId) -> Option<QueueSlot> {
        let slot = *self.queue_index.get(&id)?;
        (!self.queues[slot].deleted).then_some(slot)
    }

    /// Rebuilds a queue's eligible node list if the topology changed.
    pub fn ensure_class(&mut self, qslot: QueueSlot) {
        let q = &self.queues[qslot];
        if q.class_epoch == self.topo_epoch {
            return;
        }
        let mut pos = IndexVec::from_elem(None, self.hot.len());
        let mut order = Vec::new();
        for pid in &q.spec.pools {
            let Some(pool) = self.pools.get(pid) else {
                continue;
            };
            if !pool.spec.enabled {
                continue;
            }
            for nid in &pool.members {
                let slot = self.node_index[nid];
                if pos[slot].is_none() && self.hot[slot].alive {
                    pos[slot] = Some(order.len() as u32);
                    order.push(slot);
                }
            }
        }
        let q = &mut self.queues[qslot];
        q.class = Class { order, pos };
        q.class_epoch = self.topo_epoch;
    }

    /// Interns a shape for a queue slot, demand and the job's timeout
    /// (which counts only in a timed queue).
    pub fn intern_shape(
        &mut self,
        qslot: QueueSlot,
        demand: Demand,
        timeout_s: Option<u64>,
    ) -> ShapeId {
        let limit = timeout_s
            .filter(|_| self.queues[qslot].timed)
            .map(|t| t.saturating_mul(1000));
        if let Some(&id) = self.shape_index.get(&(qslot, demand.clone(), limit)) {
            return id;
        }
        let (min, gang_order) = match &demand {
            Demand::Single(r) => (*r, Vec::new()),
            Demand::Gang(v) => {
                let mut min = v[0];
                for r in v {
                    min = res_min(min, *r);
                }
                let mut order: Vec<u32> = (0..v.len() as u32).collect();
                order.sort_by_key(|&i| {
                    let r = v[i as usize];
                    (
                        Reverse(r.vcpus),
                        Reverse(r.memory_mib),
                        Reverse(r.shm_mib),
                        i,
                    )
                });
                (min, order)
            }
        };
        let id = self.shapes.push(Shape {
            qslot,
            demand: demand.clone(),
            limit,
            min,
            gang_order,
            never: (u64::MAX, None),
            waiting: None,
            memo: Memo::default(),
        });
        self.shape_index.insert((qslot, demand, limit), id);
        id
    }
}

/// Estimated usage of one node at some time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SimNode {
    pub used: Resources,
    pub users: u32,
    pub excl: u32,
}

impl SimNode {
    #[inline]
    pub(crate) fn of(h: &NodeHot) -> SimNode {
        SimNode {
            used: h.used,
            users: h.users,
            excl: h.excl,
        }
    }
    #[inline]
    pub fn take(&mut self, alloc: Resources, gang: bool) {
        self.used = res_add(self.used, alloc);
        self.users += 1;
        self.excl += gang as u32;
    }
    #[inline]
    pub fn give(&mut self, alloc: Resources, gang: bool) {
        self.used = res_sub(self.used, alloc);
        self.users = self.users.saturating_sub(1);
        self.excl = self.excl.saturating_sub(gang as u32);
    }
}
