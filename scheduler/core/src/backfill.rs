//! Reservations for backfilling.
//!
//! **EASY** ([`easy_reservation`]): the first blocked job (the head) gets one
//! reservation. Running attempts are released in order of estimated end
//! until the head fits; that time is the *shadow time* and where the head
//! fits then is its reservation. What is left at the shadow time, per node,
//! after the reservation, is the *extra*: a later job may start now if it
//! ends by the shadow time or fits in the extra of the nodes it takes. On one
//! node with rigid single-node jobs this is exactly the classic EASY rule.
//!
//! **Conservative** ([`Profile`]): every blocked job gets a reservation in a
//! per-node, time-indexed usage profile, and a job may start now only if its
//! estimated run does not collide with any reservation.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use crate::index::{IndexVec, JobSlot, NodeSlot, ShapeId};
use crate::matching::assign;
use crate::resources::{fits, fits_used, res_sub};
use crate::state::{Cluster, Demand, Job, NodeHot, NodeMeta, SimNode};
use crate::types::{JobKey, Millis, Resources};

/// A sparse per-node overlay over the live node state, reused between
/// passes (no allocation per pass). Nodes not in the overlay read as their
/// live state.
#[derive(Debug, Default, Clone)]
pub(crate) struct Overlay {
    epoch: u64,
    mark: IndexVec<NodeSlot, u64>,
    val: IndexVec<NodeSlot, SimNode>,
}

impl Overlay {
    /// Empties the overlay.
    pub fn reset(&mut self, nodes: usize) {
        self.epoch += 1;
        if self.mark.len() < nodes {
            self.mark.resize(nodes, 0);
            self.val.resize(nodes, SimNode::default());
        }
    }

    /// The overlay value of a node, if it has one.
    #[inline]
    pub fn get(&self, slot: NodeSlot) -> Option<&SimNode> {
        (self.mark[slot] == self.epoch).then(|| &self.val[slot])
    }

    /// The overlay value of a node, copied from the live state first if it
    /// has none.
    pub fn entry(&mut self, slot: NodeSlot, hot: &IndexVec<NodeSlot, NodeHot>) -> &mut SimNode {
        let i = slot;
        if self.mark[i] != self.epoch {
            self.mark[i] = self.epoch;
            self.val[i] = SimNode::of(&hot[i]);
        }
        &mut self.val[i]
    }
}

/// Running attempts in order of estimated end: (estimated end, job, slot).
pub(crate) type RunningSet = BTreeSet<(Millis, JobKey, JobSlot)>;

/// The head's reservation.
#[derive(Debug, Clone)]
pub(crate) struct EasyReservation {
    /// When the head is expected to be able to start.
    pub shadow: Millis,
}

/// An attempt started earlier in the running pass (not yet in the running
/// set): (estimated end, job, shape id, node slot per node index).
pub(crate) type FreshStart = (Millis, JobKey, ShapeId, Vec<NodeSlot>);

/// Computes the EASY reservation of the head (a job of shape `sid` that does
/// not fit anywhere now) and leaves the *extra* in `ov`: for nodes in the
/// overlay, usage at the shadow time plus the reservation; other nodes are
/// untouched by either, so their extra is their live free resources.
///
/// Attempts are released in order of estimated end. Estimated ends already
/// past count as `now`: they are released at once from the per-node
/// `cluster.overdue` totals (kept up to date by the core, so a cluster full
/// of overdue attempts costs O(nodes), not O(attempts)). Then the attempts
/// of `running` ending after `cluster.overdue_at`, merged with `fresh` (the
/// attempts started earlier in this pass, sorted the same way), are
/// released one time after another; every attempt ending at the shadow time
/// counts. Returns None if the head does not fit even with everything
/// released (over-committed capacity).
pub(crate) fn easy_reservation(
    cluster: &Cluster,
    jobs: &IndexVec<JobSlot, Job>,
    running: &RunningSet,
    fresh: &[FreshStart],
    now: Millis,
    sid: ShapeId,
    ov: &mut Overlay,
) -> Option<EasyReservation> {
    let hot = &cluster.hot;
    ov.reset(hot.len());
    let shape = &cluster.shapes[sid];
    let class = &cluster.queues[shape.qslot].class;
    // Released attempts, in order: (end, Ok(job slot) | Err(fresh index)).
    let after = cluster.overdue_at.saturating_add(1);
    let mut old = running
        .range((after, JobKey(0), JobSlot::FIRST)..)
        .peekable();
    let mut new = fresh.iter().enumerate().peekable();
    let mut next = move || -> Option<(Millis, Result<JobSlot, usize>)> {
        let take_old = match (old.peek(), new.peek()) {
            (None, None) => return None,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(a), Some((_, b))) => (a.0, a.1) <= (b.0, b.1),
        };
        if take_old {
            old.next().map(|&(end, _, j)| (end.max(now), Ok(j)))
        } else {
            new.next().map(|(i, f)| (f.0.max(now), Err(i)))
        }
    };
    // Calls `f(node slot, what to release)` for every node of an attempt.
    let for_nodes =
        |which: Result<JobSlot, usize>, f: &mut dyn FnMut(NodeSlot, SimNode)| match which {
            Ok(j) => {
                if let Some(att) = jobs[j].attempt.as_ref() {
                    for (p, &ns) in att.placement.iter().zip(&att.slots) {
                        let excl = att.gang as u32;
                        f(
                            ns,
                            SimNode {
                                used: p.alloc,
                                users: 1,
                                excl,
                            },
                        );
                    }
                }
            }
            Err(i) => {
                let (_, _, fsid, nodes) = &fresh[i];
                let fshape = &cluster.shapes[*fsid];
                for (k, &ns) in nodes.iter().enumerate() {
                    let (alloc, gang) = fshape.alloc(k);
                    f(
                        ns,
                        SimNode {
                            used: alloc,
                            users: 1,
                            excl: gang as u32,
                        },
                    );
                }
            }
        };
    let demands: &[Resources] = match &shape.demand {
        Demand::Single(need) => std::slice::from_ref(need),
        Demand::Gang(v) => v,
    };
    let gang_head = matches!(shape.demand, Demand::Gang(_));
    let mut sim = HeadSim {
        hot,
        class_pos: &class.pos,
        min: shape.min,
        need: demands[0],
        gang_head,
        best: None,
        cands: Vec::new(),
        added: false,
    };
    if gang_head {
        for &ns in &class.order {
            if hot[ns].fits_gang(shape.min) {
                sim.release(ns, SimNode::default(), ov);
            }
        }
    }
    // Overdue attempts end now.
    for (ns, d) in cluster.overdue.iter_enumerated() {
        if d.users > 0 {
            sim.release(ns, *d, ov);
        }
    }
    let cap = |s: NodeSlot| hot[s].cap;
    let mut t = now;
    let mut pending = next();
    let found = loop {
        // Everything ending at time `t` is released together.
        while let Some((t2, w)) = pending {
            if t2 != t {
                break;
            }
            for_nodes(w, &mut |ns, d| sim.release(ns, d, ov));
            pending = next();
        }
        if gang_head {
            if sim.added && sim.cands.len() >= demands.len() {
                sim.added = false;
                sim.cands.sort_unstable();
                sim.cands.dedup();
                let list: Vec<NodeSlot> = sim.cands.iter().map(|&(_, s)| s).collect();
                if let Some(a) = assign(&shape.gang_order, demands, &list, cap) {
                    break Some((t, a));
                }
            }
        } else if let Some((_, ns)) = sim.best {
            break Some((t, vec![ns]));
        }
        match pending {
            Some((t2, _)) => t = t2,
            None => break None,
        }
    };
    let (shadow, nodes) = found?;
    for (i, &ns) in nodes.iter().enumerate() {
        ov.entry(ns, hot).take(demands[i], gang_head);
    }
    Some(EasyReservation { shadow })
}

/// The head's side of the shadow-time search.
struct HeadSim<'a> {
    hot: &'a IndexVec<NodeSlot, NodeHot>,
    class_pos: &'a IndexVec<NodeSlot, Option<u32>>,
    /// Component-wise minimum demand (gang) / the demand (single node).
    min: Resources,
    need: Resources,
    gang_head: bool,
    /// Single-node head: best node so far (preference position, slot).
    best: Option<(u32, NodeSlot)>,
    /// Gang head: eligible nodes idle at the time looked at (position in
    /// preference order, slot).
    cands: Vec<(u32, NodeSlot)>,
    /// A candidate was added since the last assignment try.
    added: bool,
}

impl HeadSim<'_> {
    /// Releases `d` on node `ns` and notes whether the head now fits there.
    fn release(&mut self, ns: NodeSlot, d: SimNode, ov: &mut Overlay) {
        let h = &self.hot[ns];
        if !h.alive {
            return;
        }
        let e = ov.entry(ns, self.hot);
        e.used = res_sub(e.used, d.used);
        e.users = e.users.saturating_sub(d.users);
        e.excl = e.excl.saturating_sub(d.excl);
        let Some(&Some(pos)) = self.class_pos.get(ns) else {
            return;
        };
        if self.gang_head {
            if e.users == 0 && fits(h.cap, self.min) {
                self.cands.push((pos, ns));
                self.added = true;
            }
        } else if e.excl == 0
            && fits_used(h.cap, e.used, self.need)
            && !matches!(self.best, Some((bp, _)) if pos >= bp)
        {
            self.best = Some((pos, ns));
        }
    }
}

/// May a job that runs past the shadow time take `need` on node `slot`
/// (beyond fitting now)? Single-node: it must fit in the node's extra.
#[inline]
pub(crate) fn extra_ok_single(
    ov: &Overlay,
    hot: &IndexVec<NodeSlot, NodeHot>,
    slot: NodeSlot,
    need: Resources,
) -> bool {
    match ov.get(slot) {
        Some(e) => e.excl == 0 && fits_used(hot[slot].cap, e.used, need),
        None => true,
    }
}

/// Gang node: nothing may be on the node at the shadow time.
#[inline]
pub(crate) fn extra_ok_gang(ov: &Overlay, slot: NodeSlot) -> bool {
    !matches!(ov.get(slot), Some(e) if e.users != 0)
}

/// One step of a node's usage profile: usage from `t` to the next step.
#[derive(Debug, Clone, Copy)]
struct Step {
    t: Millis,
    u: SimNode,
}

/// Conservative backfilling's time-indexed usage profile: per node, the
/// estimated usage from now on (running attempts ending at their estimated
/// end, plus reservations and starts made in this pass). Built lazily per
/// node, reused between passes.
#[derive(Debug, Default, Clone)]
pub(crate) struct Profile {
    epoch: u64,
    mark: IndexVec<NodeSlot, u64>,
    steps: IndexVec<NodeSlot, Vec<Step>>,
    now: Millis,
}

/// Where and when a job can start.
pub(crate) type Slot = (Millis, Vec<NodeSlot>);

/// The node tables and the jobs, as the profile reads them.
pub(crate) type View<'a> = (
    &'a IndexVec<NodeSlot, NodeHot>,
    &'a IndexVec<NodeSlot, NodeMeta>,
    &'a IndexVec<JobSlot, Job>,
);

impl Profile {
    /// Forgets everything; the profile starts at `now`.
    pub fn reset(&mut self, nodes: usize, now: Millis) {
        self.epoch += 1;
        self.now = now;
        if self.mark.len() < nodes {
            self.mark.resize(nodes, 0);
            self.steps.resize(nodes, Vec::new());
        }
    }

    fn node(&mut self, slot: NodeSlot, (hot, meta, jobs): View) -> &mut Vec<Step> {
        let i = slot;
        if self.mark[i] != self.epoch {
            self.mark[i] = self.epoch;
            let now = self.now;
            let mut base = SimNode::of(&hot[i]);
            let mut ends: Vec<(Millis, Resources, bool)> = Vec::new();
            for &j in &meta[i].attempts {
                let Some(att) = jobs[j].attempt.as_ref() else {
                    continue;
                };
                for (p, &ns) in att.placement.iter().zip(&att.slots) {
                    if ns == slot {
                        let t = att.est_end.max(now);
                        if t == now {
                            base.give(p.alloc, att.gang);
                        } else {
                            ends.push((t, p.alloc, att.gang));
                        }
                    }
                }
            }
            ends.sort_by_key(|e| e.0);
            let steps = &mut self.steps[i];
            steps.clear();
            steps.push(Step { t: now, u: base });
            for (t, alloc, gang) in ends {
                let mut u = steps.last().expect("non-empty").u;
                u.give(alloc, gang);
                if steps.last().expect("non-empty").t == t {
                    steps.last_mut().expect("non-empty").u = u;
                } else {
                    steps.push(Step { t, u });
                }
            }
        }
        &mut self.steps[i]
    }

    /// Can `need` run on the node over `[t, t + d)`?
    fn ok_over(
        steps: &[Step],
        cap: Resources,
        t: Millis,
        d: Millis,
        need: Resources,
        gang: bool,
    ) -> bool {
        let end = t.saturating_add(d.max(1));
        for (j, s) in steps.iter().enumerate() {
            let s_end = steps.get(j + 1).map_or(Millis::MAX, |n| n.t);
            if s_end <= t || s.t >= end {
                continue;
            }
            let ok = if gang {
                s.u.users == 0 && fits(cap, need)
            } else {
                s.u.excl == 0 && fits_used(cap, s.u.used, need)
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// Can `need` start on the node now and run for `d` without colliding
    /// with the profile?
    pub fn ok_now(
        &mut self,
        view: View,
        slot: NodeSlot,
        d: Millis,
        need: Resources,
        gang: bool,
    ) -> bool {
        let now = self.now;
        let cap = view.0[slot].cap;
        let steps = self.node(slot, view);
        Self::ok_over(steps, cap, now, d, need, gang)
    }

    /// Records `alloc` on the node over `[t, t + d)`.
    pub fn reserve(
        &mut self,
        view: View,
        slot: NodeSlot,
        t: Millis,
        d: Millis,
        alloc: Resources,
        gang: bool,
    ) {
        let end = t.saturating_add(d.max(1));
        let steps = self.node(slot, view);
        for at in [t, end] {
            if at == Millis::MAX {
                continue;
            }
            match steps.binary_search_by_key(&at, |s| s.t) {
                Ok(_) => {}
                Err(0) => {}
                Err(j) => {
                    let u = steps[j - 1].u;
                    steps.insert(j, Step { t: at, u });
                }
            }
        }
        for s in steps.iter_mut() {
            if s.t >= t && s.t < end {
                s.u.take(alloc, gang);
            }
        }
    }

    /// Earliest time and nodes at which a job of shape `sid` with estimate
    /// `d` can run without colliding with the profile.
    pub fn earliest(
        &mut self,
        cluster: &Cluster,
        jobs: &IndexVec<JobSlot, Job>,
        sid: ShapeId,
        d: Millis,
    ) -> Option<Slot> {
        let shape = &cluster.shapes[sid];
        let class = &cluster.queues[shape.qslot].class;
        let (hot, meta) = (&cluster.hot, &cluster.meta);
        let d = d.max(1);
        match &shape.demand {
            Demand::Single(need) => {
                let mut best: Option<(Millis, NodeSlot)> = None;
                for &ns in &class.order {
                    let h = &hot[ns];
                    if !h.alive || !fits(h.cap, *need) {
                        continue;
                    }
                    let steps = self.node(ns, (hot, meta, jobs));
                    for s in steps.iter() {
                        if best.is_some_and(|(bt, _)| s.t >= bt) {
                            break;
                        }
                        if Self::ok_over(steps, h.cap, s.t, d, *need, false) {
                            best = Some((s.t, ns));
                            break;
                        }
                    }
                }
                best.map(|(t, ns)| (t, vec![ns]))
            }
            Demand::Gang(demands) => {
                let k = demands.len();
                // Windows in which each node is idle: (first start, last start).
                let mut ranges: Vec<(Millis, Millis, u32, NodeSlot)> = Vec::new();
                for (pos, &ns) in class.order.iter().enumerate() {
                    let h = &hot[ns];
                    if !h.alive || !fits(h.cap, shape.min) {
                        continue;
                    }
                    let steps = self.node(ns, (hot, meta, jobs));
                    let mut start: Option<Millis> = None;
                    for (j, s) in steps.iter().enumerate() {
                        if s.u.users == 0 {
                            start.get_or_insert(s.t);
                        } else if let Some(a) = start.take() {
                            if s.t - a >= d {
                                ranges.push((a, s.t - d, pos as u32, ns));
                            }
                        }
                        if j + 1 == steps.len() {
                            if let Some(a) = start {
                                ranges.push((a, Millis::MAX, pos as u32, ns));
                            }
                        }
                    }
                }
                ranges.sort();
                let cap = |s: NodeSlot| hot[s].cap;
                let mut active: BTreeSet<(u32, NodeSlot)> = BTreeSet::new();
                let mut expiry: BinaryHeap<Reverse<(Millis, u32, NodeSlot)>> = BinaryHeap::new();
                let mut i = 0;
                while i < ranges.len() {
                    let t = ranges[i].0;
                    // Expire first: a node's windows do not overlap, so a
                    // node's later window never starts before its earlier
                    // one has expired.
                    while let Some(&Reverse((last, pos, ns))) = expiry.peek() {
                        if last >= t {
                            break;
                        }
                        expiry.pop();
                        active.remove(&(pos, ns));
                    }
                    while i < ranges.len() && ranges[i].0 == t {
                        let (_, last, pos, ns) = ranges[i];
                        active.insert((pos, ns));
                        expiry.push(Reverse((last, pos, ns)));
                        i += 1;
                    }
                    if active.len() >= k {
                        let list: Vec<NodeSlot> = active.iter().map(|&(_, s)| s).collect();
                        if let Some(a) = assign(&shape.gang_order, demands, &list, cap) {
                            return Some((t, a));
                        }
                    }
                }
                None
            }
        }
    }
}
