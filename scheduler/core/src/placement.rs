//! Fitting jobs on nodes: resource arithmetic, first-fit search over a
//! queue's eligible nodes, gang assignment, and the status reasons that
//! explain why a job does not fit.

use crate::backfill::{extra_ok_gang, extra_ok_single, Overlay, Profile};
use crate::index::{IndexVec, JobSlot, NodeSlot, QueueSlot, ReasonId, ShapeId};
use crate::matching::assign;
use crate::resources::{fits, fits_used, res_add, res_max, res_sub};
use crate::state::{Cluster, Demand, Job, Memo, NodeHot, Shape};
use crate::types::{Millis, Resources, WaitCode};

impl NodeHot {
    /// Free resources (capacity minus allocations, at least zero).
    pub fn free(&self) -> Resources {
        res_sub(self.cap, self.used)
    }

    /// Can a single-node job needing `need` be placed here now?
    #[inline]
    pub fn fits_single(&self, need: Resources) -> bool {
        self.alive && self.excl == 0 && fits_used(self.cap, self.used, need)
    }

    /// Can a gang node needing `need` be placed here now (node fully idle)?
    #[inline]
    pub fn fits_gang(&self, need: Resources) -> bool {
        self.alive && self.users == 0 && fits(self.cap, need)
    }

    /// Does the node last until `until` (0: no limit)?
    #[inline]
    pub fn lasts(&self, until: Millis) -> bool {
        self.ends_at >= until
    }
}

/// The time by which the nodes of a shape of `limit` must still be there,
/// in a pass at `now` (0: no limit).
#[inline]
pub(crate) fn until(now: Millis, limit: Option<Millis>) -> Millis {
    limit.map_or(0, |l| now.saturating_add(l))
}

/// Adds an allocation to a node.
pub(crate) fn take(node: &mut NodeHot, alloc: Resources, gang: bool) {
    node.used = res_add(node.used, alloc);
    node.users += 1;
    node.excl += gang as u32;
}

/// Removes an allocation from a node.
pub(crate) fn give(node: &mut NodeHot, alloc: Resources, gang: bool) {
    node.used = res_sub(node.used, alloc);
    node.users = node.users.saturating_sub(1);
    node.excl = node.excl.saturating_sub(gang as u32);
}

/// First eligible node from `*cursor` on that passes `ok`. The cursor moves
/// to it (or to the end), which is sound because within a pass a node that
/// failed keeps failing.
pub(crate) fn find_single(
    order: &[NodeSlot],
    cursor: &mut u32,
    mut ok: impl FnMut(NodeSlot) -> bool,
) -> Option<NodeSlot> {
    let mut i = *cursor as usize;
    while i < order.len() {
        let slot = order[i];
        if ok(slot) {
            *cursor = i as u32;
            return Some(slot);
        }
        i += 1;
    }
    *cursor = order.len() as u32;
    None
}

/// Distinct, currently idle eligible nodes for every node index of a gang
/// shape (node slot per index), scanning from `*cursor`; `ok` is an extra
/// per-node condition. Prefers earlier nodes. All of a gang's nodes come
/// from one allocation ([`NodeHot::group`]; 0 counts as one too).
pub(crate) fn find_gang(
    hot: &IndexVec<NodeSlot, NodeHot>,
    order: &[NodeSlot],
    cursor: &mut u32,
    shape: &Shape,
    mut ok: impl FnMut(NodeSlot) -> bool,
) -> Option<Vec<NodeSlot>> {
    let Demand::Gang(demands) = &shape.demand else {
        return None;
    };
    let k = demands.len();
    // Candidates per group, groups in the order their first candidate
    // comes (nearly always one group).
    let mut groups: Vec<(u32, Vec<NodeSlot>)> = Vec::new();
    let mut first = None;
    let mut full = None;
    let mut i = *cursor as usize;
    while i < order.len() {
        let slot = order[i];
        if hot[slot].fits_gang(shape.min) && ok(slot) {
            first.get_or_insert(i);
            let g = hot[slot].group;
            let at = match groups.iter().position(|(x, _)| *x == g) {
                Some(at) => at,
                None => {
                    groups.push((g, Vec::with_capacity(k)));
                    groups.len() - 1
                }
            };
            groups[at].1.push(slot);
            if groups[at].1.len() == k {
                full = Some(at);
                break;
            }
        }
        i += 1;
    }
    *cursor = first.unwrap_or(order.len()) as u32;
    let cap = |s: NodeSlot| hot[s].cap;
    if let Some(at) = full {
        if let Some(a) = assign(&shape.gang_order, demands, &groups[at].1, cap) {
            return Some(a);
        }
        // Heterogeneous demands: look at every candidate.
        for &slot in &order[i + 1..] {
            if hot[slot].fits_gang(shape.min) && ok(slot) {
                let g = hot[slot].group;
                match groups.iter_mut().find(|(x, _)| *x == g) {
                    Some((_, v)) => v.push(slot),
                    None => groups.push((g, vec![slot])),
                }
            }
        }
    }
    groups
        .iter()
        .filter(|(_, v)| v.len() >= k)
        .find_map(|(_, v)| assign(&shape.gang_order, demands, v, cap))
}

/// [`assign`] within one group: the first group (in `cands`' order) whose
/// candidates cover the gang.
pub(crate) fn assign_grouped(
    hot: &IndexVec<NodeSlot, NodeHot>,
    shape: &Shape,
    demands: &[Resources],
    cands: &[NodeSlot],
) -> Option<Vec<NodeSlot>> {
    let cap = |s: NodeSlot| hot[s].cap;
    if cands.iter().all(|&s| hot[s].group == hot[cands[0]].group) {
        return assign(&shape.gang_order, demands, cands, cap);
    }
    let mut seen: Vec<u32> = Vec::new();
    for &c in cands {
        let g = hot[c].group;
        if seen.contains(&g) {
            continue;
        }
        seen.push(g);
        let of: Vec<NodeSlot> = cands
            .iter()
            .copied()
            .filter(|&s| hot[s].group == g)
            .collect();
        if let Some(a) = assign(&shape.gang_order, demands, &of, cap) {
            return Some(a);
        }
    }
    None
}

/// "12 vCPUs, 4096 MiB[, 512 MiB shared memory]".
pub(crate) fn describe(r: Resources) -> String {
    let mut s = format!("{} vCPUs, {} MiB", r.vcpus, r.memory_mib);
    if r.shm_mib > 0 {
        s.push_str(&format!(", {} MiB shared memory", r.shm_mib));
    }
    s
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Cluster {
    /// The memo of shape `sid` in pass `epoch`, set up by the shape's
    /// first job in the pass: whether it can start at all (its queue
    /// enabled, some node ever big enough) and the status reason of its
    /// jobs that do not start.
    #[inline]
    pub(crate) fn shape_memo(&mut self, sid: ShapeId, epoch: u64) -> Memo {
        // The walk's hot path: one lookup of the shape for every job after
        // the shape's first in the pass.
        let memo = *self.shapes[sid].memo(epoch);
        if memo.ready {
            return memo;
        }
        self.set_up_memo(sid)
    }

    /// The first job of shape `sid` in pass `epoch` sets its memo up.
    fn set_up_memo(&mut self, sid: ShapeId) -> Memo {
        let q = &self.queues[self.shapes[sid].qslot];
        let (enabled, disabled_reason) = (q.spec.enabled, q.disabled_reason);
        let (dead, rid) = if !enabled {
            (true, disabled_reason)
        } else {
            match self.never_fit(sid) {
                None => (false, self.waiting_reason(sid)),
                Some(never) => (true, never),
            }
        };
        let memo = &mut self.shapes[sid].memo;
        memo.ready = true;
        memo.dead = dead;
        memo.rid = Some(rid);
        *memo
    }

    /// Can the shape never fit the cluster, even empty? Returns the reason
    /// id, or None when it can fit. Cached until the topology changes.
    /// The queue's class must be current.
    pub fn never_fit(&mut self, sid: ShapeId) -> Option<ReasonId> {
        let shape = &self.shapes[sid];
        if shape.never.0 == self.topo_epoch {
            return shape.never.1;
        }
        let id = self
            .never_fit_text(sid)
            .map(|(text, code)| self.reasons.intern_coded(text, Some(code)));
        self.shapes[sid].never = (self.topo_epoch, id);
        id
    }

    fn pool_list(&self, qslot: QueueSlot, only_enabled: bool) -> String {
        let q = &self.queues[qslot];
        let names: Vec<String> = q
            .spec
            .pools
            .iter()
            .filter_map(|p| match self.pools.get(p) {
                Some(pool) if pool.spec.enabled => Some(pool.spec.name.clone()),
                Some(pool) if !only_enabled => Some(format!("{} (DISABLED)", pool.spec.name)),
                None if !only_enabled => Some(format!("{} (deleted)", p.0)),
                _ => None,
            })
            .collect();
        format!("[{}]", names.join(", "))
    }

    /// Why a shape never fits, and its class: too few nodes
    /// ([`WaitCode::ComputeEnvironmentMax`]) or none big enough
    /// ([`WaitCode::JobRequirement`]).
    fn never_fit_text(&self, sid: ShapeId) -> Option<(String, WaitCode)> {
        let text = self.never_fit_text_of(sid)?;
        let shape = &self.shapes[sid];
        let nodes = self.queues[shape.qslot].class.order.len();
        let few = match &shape.demand {
            Demand::Single(_) => nodes == 0,
            Demand::Gang(d) => nodes < d.len(),
        };
        let code = if few {
            WaitCode::ComputeEnvironmentMax
        } else {
            WaitCode::JobRequirement
        };
        Some((text, code))
    }

    fn never_fit_text_of(&self, sid: ShapeId) -> Option<String> {
        let shape = &self.shapes[sid];
        let q = &self.queues[shape.qslot];
        let qname = &q.spec.name;
        let order = &q.class.order;
        if order.is_empty() {
            let any_enabled = q
                .spec
                .pools
                .iter()
                .any(|p| self.pools.get(p).is_some_and(|p| p.spec.enabled));
            return Some(if q.spec.pools.is_empty() {
                format!("queue {qname} has no compute environments")
            } else if !any_enabled {
                format!(
                    "no ENABLED compute environment in queue {qname}: {}",
                    self.pool_list(shape.qslot, false)
                )
            } else {
                format!(
                    "no worker nodes are registered in compute environments {} of queue {qname}",
                    self.pool_list(shape.qslot, true)
                )
            });
        }
        let caps = || order.iter().map(|&s| self.hot[s].cap);
        let largest = caps().fold(Resources::default(), res_max);
        match &shape.demand {
            Demand::Single(need) => {
                if caps().any(|c| fits(c, *need)) {
                    return None;
                }
                Some(if need.vcpus > largest.vcpus {
                    format!(
                        "needs {} vCPUs on one node; the largest node offers {}",
                        need.vcpus, largest.vcpus
                    )
                } else if need.memory_mib > largest.memory_mib {
                    format!(
                        "needs {} MiB memory on one node; the largest node offers {} MiB",
                        need.memory_mib, largest.memory_mib
                    )
                } else if need.shm_mib > largest.shm_mib {
                    format!(
                        "needs {} MiB shared memory on one node; the largest node offers {} MiB",
                        need.shm_mib, largest.shm_mib
                    )
                } else {
                    format!(
                        "needs {} vCPUs, {} MiB memory and {} MiB shared memory on one node; \
                         no node offers all of them at once (largest node offers {} vCPUs, {} MiB \
                         memory, {} MiB shared memory)",
                        need.vcpus,
                        need.memory_mib,
                        need.shm_mib,
                        largest.vcpus,
                        largest.memory_mib,
                        largest.shm_mib
                    )
                })
            }
            Demand::Gang(demands) => {
                let k = demands.len();
                if order.len() < k {
                    return Some(format!(
                        "needs {}; compute environments {} of queue {qname} have only {}",
                        plural(k, "node", "nodes"),
                        self.pool_list(shape.qslot, true),
                        plural(order.len(), "worker node", "worker nodes"),
                    ));
                }
                let cands: Vec<NodeSlot> = order
                    .iter()
                    .copied()
                    .filter(|&s| fits(self.hot[s].cap, shape.min))
                    .collect();
                let cap = |s: NodeSlot| self.hot[s].cap;
                if assign(&shape.gang_order, demands, &cands, cap).is_some() {
                    return None;
                }
                let most = demands.iter().copied().fold(Resources::default(), res_max);
                let count = |f: &dyn Fn(Resources) -> bool| caps().filter(|c| f(*c)).count();
                let nodes = plural(k, "node", "nodes");
                let dims: [(u64, u64, usize, &str, &str); 3] = [
                    (
                        most.vcpus as u64,
                        largest.vcpus as u64,
                        count(&|c| c.vcpus >= most.vcpus),
                        "vCPUs",
                        "",
                    ),
                    (
                        most.memory_mib,
                        largest.memory_mib,
                        count(&|c| c.memory_mib >= most.memory_mib),
                        "MiB memory",
                        " MiB",
                    ),
                    (
                        most.shm_mib,
                        largest.shm_mib,
                        count(&|c| c.shm_mib >= most.shm_mib),
                        "MiB shared memory",
                        " MiB",
                    ),
                ];
                for (want, big, n, what, unit) in dims {
                    if want > big {
                        return Some(format!(
                            "needs {nodes} with {want} {what}; the largest node offers {big}{unit}"
                        ));
                    }
                    if n < k {
                        return Some(format!(
                            "needs {nodes} with {want} {what}; only {} offer{} that",
                            plural(n, "node", "nodes"),
                            if n == 1 { "s" } else { "" }
                        ));
                    }
                }
                Some(format!(
                    "needs {nodes} with {} each; not enough nodes offer all of it at once \
                     (largest node offers {})",
                    describe(most),
                    describe(largest)
                ))
            }
        }
    }

    /// The "waiting for resources" reason id of a shape.
    pub fn waiting_reason(&mut self, sid: ShapeId) -> ReasonId {
        let shape = &self.shapes[sid];
        if let Some(id) = shape.waiting {
            return id;
        }
        let text = match &shape.demand {
            Demand::Single(r) => format!("waiting for resources ({})", describe(*r)),
            Demand::Gang(v) if v.iter().all(|r| *r == v[0]) => format!(
                "waiting for resources: needs {} free nodes ({} each)",
                v.len(),
                describe(v[0])
            ),
            Demand::Gang(v) => format!("waiting for resources: needs {} free nodes", v.len()),
        };
        let text = match shape.limit {
            Some(l) => format!(
                "{text}, on nodes whose allocation has at least {} s left (the job's timeout)",
                l / 1000
            ),
            None => text,
        };
        let id = self.reasons.intern_coded(text, Some(WaitCode::Capacity));
        self.shapes[sid].waiting = Some(id);
        id
    }
}

impl Shape {
    /// Allocation of node index `i`, and whether the shape is a gang.
    #[inline]
    pub(crate) fn alloc(&self, i: usize) -> (Resources, bool) {
        match &self.demand {
            Demand::Single(r) => (*r, false),
            Demand::Gang(v) => (v[i], true),
        }
    }

    /// vCPUs of every node index together (what fair share counts).
    pub(crate) fn total_vcpus(&self) -> u64 {
        match &self.demand {
            Demand::Single(r) => u64::from(r.vcpus),
            Demand::Gang(v) => v.iter().map(|r| u64::from(r.vcpus)).sum(),
        }
    }
}

impl Cluster {
    /// Where a job of shape `sid` fits now (node slot per node index), using
    /// and advancing the pass memo. Takes nothing.
    /// Quick reject: false when the shape surely does not fit now (checked
    /// against per-queue bounds computed once per pass).
    fn may_fit(&mut self, sid: ShapeId, epoch: u64) -> bool {
        let qslot = self.shapes[sid].qslot;
        let q = &mut self.queues[qslot];
        if q.bounds_epoch != epoch {
            let mut max_free = Resources::default();
            let mut idle = 0;
            for &n in &q.class.order {
                let h = &self.hot[n];
                if h.alive && h.excl == 0 {
                    max_free = res_max(max_free, h.free());
                    idle += (h.users == 0) as u32;
                }
            }
            q.bounds_epoch = epoch;
            q.max_free = max_free;
            q.idle = idle;
        }
        let shape = &self.shapes[sid];
        match &shape.demand {
            Demand::Single(need) => fits(q.max_free, *need),
            Demand::Gang(v) => q.idle as usize >= v.len(),
        }
    }

    pub(crate) fn place_now(&mut self, sid: ShapeId, epoch: u64) -> Option<Vec<NodeSlot>> {
        if !self.may_fit(sid, epoch) {
            self.shapes[sid].memo(epoch).nofit_now = true;
            return None;
        }
        let Cluster {
            shapes,
            queues,
            hot,
            now,
            ..
        } = self;
        let shape = &mut shapes[sid];
        let class = &queues[shape.qslot].class;
        let until = until(*now, shape.limit);
        let mut cursor = shape.memo(epoch).cursor;
        let found = match &shape.demand {
            Demand::Single(need) => find_single(&class.order, &mut cursor, |s| {
                hot[s].fits_single(*need) && hot[s].lasts(until)
            })
            .map(|s| vec![s]),
            Demand::Gang(_) => find_gang(hot, &class.order, &mut cursor, shape, |s| {
                hot[s].lasts(until)
            }),
        };
        let memo = shape.memo(epoch);
        memo.cursor = cursor;
        memo.nofit_now |= found.is_none();
        found
    }

    /// Where a job of shape `sid` fits now and within EASY's extra.
    pub(crate) fn place_extra(
        &mut self,
        sid: ShapeId,
        epoch: u64,
        ov: &Overlay,
    ) -> Option<Vec<NodeSlot>> {
        if !self.may_fit(sid, epoch) {
            let memo = self.shapes[sid].memo(epoch);
            memo.nofit_now = true;
            memo.nofit_extra = true;
            return None;
        }
        let Cluster {
            shapes,
            queues,
            hot,
            now,
            ..
        } = self;
        let shape = &mut shapes[sid];
        let class = &queues[shape.qslot].class;
        let until = until(*now, shape.limit);
        let mut cursor = shape.memo(epoch).extra_cursor;
        let found = match &shape.demand {
            Demand::Single(need) => find_single(&class.order, &mut cursor, |s| {
                hot[s].fits_single(*need)
                    && hot[s].lasts(until)
                    && extra_ok_single(ov, hot, s, *need)
            })
            .map(|s| vec![s]),
            Demand::Gang(_) => find_gang(hot, &class.order, &mut cursor, shape, |s| {
                hot[s].lasts(until) && extra_ok_gang(ov, s)
            }),
        };
        let memo = shape.memo(epoch);
        memo.extra_cursor = cursor;
        memo.nofit_extra |= found.is_none();
        found
    }

    /// Conservative: where a job of shape `sid` with estimate `est` fits now
    /// without colliding with the profile.
    pub(crate) fn place_conservative(
        &mut self,
        sid: ShapeId,
        epoch: u64,
        est: Millis,
        profile: &mut Profile,
        jobs: &IndexVec<JobSlot, Job>,
    ) -> Option<Vec<NodeSlot>> {
        if !self.may_fit(sid, epoch) {
            self.shapes[sid].memo(epoch).nofit_now = true;
            return None;
        }
        let Cluster {
            shapes,
            queues,
            hot,
            meta,
            now,
            ..
        } = self;
        let view = (&*hot, &*meta, jobs);
        let shape = &mut shapes[sid];
        let class = &queues[shape.qslot].class;
        let until = until(*now, shape.limit);
        let mut cursor = shape.memo(epoch).cursor;
        let (found, fits_now) = match &shape.demand {
            Demand::Single(need) => {
                let first = find_single(&class.order, &mut cursor, |s| {
                    hot[s].fits_single(*need) && hot[s].lasts(until)
                });
                let found = first.and_then(|_| {
                    class.order[cursor as usize..].iter().copied().find(|&s| {
                        hot[s].fits_single(*need)
                            && hot[s].lasts(until)
                            && profile.ok_now(view, s, est, *need, false)
                    })
                });
                (found.map(|s| vec![s]), first.is_some())
            }
            Demand::Gang(demands) => {
                let actual: Vec<NodeSlot> = class.order[cursor as usize..]
                    .iter()
                    .copied()
                    .filter(|&s| hot[s].fits_gang(shape.min) && hot[s].lasts(until))
                    .collect();
                cursor = match actual.first() {
                    Some(&first) => class.pos[first].unwrap_or(class.order.len() as u32),
                    None => class.order.len() as u32,
                };
                let ok: Vec<NodeSlot> = actual
                    .iter()
                    .copied()
                    .filter(|&s| profile.ok_now(view, s, est, shape.min, true))
                    .collect();
                match assign_grouped(hot, shape, demands, &ok) {
                    Some(a) => (Some(a), true),
                    None => {
                        let fits_now = assign_grouped(hot, shape, demands, &actual).is_some();
                        (None, fits_now)
                    }
                }
            }
        };
        let memo = shape.memo(epoch);
        memo.cursor = cursor;
        if found.is_none() {
            if fits_now {
                memo.cons_fail_est = memo.cons_fail_est.min(est);
            } else {
                memo.nofit_now = true;
            }
        }
        found
    }

    /// Takes a placement's resources on its nodes.
    pub(crate) fn commit(&mut self, sid: ShapeId, nodes: &[NodeSlot]) {
        let shape = &self.shapes[sid];
        for (i, &n) in nodes.iter().enumerate() {
            let (alloc, gang) = shape.alloc(i);
            take(&mut self.hot[n], alloc, gang);
        }
    }
}
