//! Fitting jobs on nodes: resource arithmetic, first-fit search over a
//! queue's eligible nodes, gang assignment, and the status reasons that
//! explain why a job does not fit.

use crate::state::{Cluster, Demand, NodeHot, Shape, NONE};
use crate::types::Resources;

/// Component-wise minimum.
pub(crate) fn res_min(a: Resources, b: Resources) -> Resources {
    Resources {
        vcpus: a.vcpus.min(b.vcpus),
        memory_mib: a.memory_mib.min(b.memory_mib),
        shm_mib: a.shm_mib.min(b.shm_mib),
    }
}

/// Component-wise maximum.
pub(crate) fn res_max(a: Resources, b: Resources) -> Resources {
    Resources {
        vcpus: a.vcpus.max(b.vcpus),
        memory_mib: a.memory_mib.max(b.memory_mib),
        shm_mib: a.shm_mib.max(b.shm_mib),
    }
}

/// `a + b`, saturating.
pub(crate) fn res_add(a: Resources, b: Resources) -> Resources {
    Resources {
        vcpus: a.vcpus.saturating_add(b.vcpus),
        memory_mib: a.memory_mib.saturating_add(b.memory_mib),
        shm_mib: a.shm_mib.saturating_add(b.shm_mib),
    }
}

/// `a - b`, saturating at zero.
pub(crate) fn res_sub(a: Resources, b: Resources) -> Resources {
    Resources {
        vcpus: a.vcpus.saturating_sub(b.vcpus),
        memory_mib: a.memory_mib.saturating_sub(b.memory_mib),
        shm_mib: a.shm_mib.saturating_sub(b.shm_mib),
    }
}

/// Does `need` fit in `free` (all three dimensions)?
#[inline]
pub(crate) fn fits(free: Resources, need: Resources) -> bool {
    need.vcpus <= free.vcpus && need.memory_mib <= free.memory_mib && need.shm_mib <= free.shm_mib
}

/// Does `need` fit in `cap - used`?
#[inline]
pub(crate) fn fits_used(cap: Resources, used: Resources, need: Resources) -> bool {
    need.vcpus as u64 + used.vcpus as u64 <= cap.vcpus as u64
        && need.memory_mib.saturating_add(used.memory_mib) <= cap.memory_mib
        && need.shm_mib.saturating_add(used.shm_mib) <= cap.shm_mib
}

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
    order: &[u32],
    cursor: &mut u32,
    mut ok: impl FnMut(u32) -> bool,
) -> Option<u32> {
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
/// per-node condition. Prefers earlier nodes.
pub(crate) fn find_gang(
    hot: &[NodeHot],
    order: &[u32],
    cursor: &mut u32,
    shape: &Shape,
    mut ok: impl FnMut(u32) -> bool,
) -> Option<Vec<u32>> {
    let Demand::Gang(demands) = &shape.demand else {
        return None;
    };
    let k = demands.len();
    let mut cands = Vec::with_capacity(k);
    let mut first = None;
    let mut i = *cursor as usize;
    while i < order.len() {
        let slot = order[i];
        if hot[slot as usize].fits_gang(shape.min) && ok(slot) {
            first.get_or_insert(i);
            cands.push(slot);
            if cands.len() == k {
                break;
            }
        }
        i += 1;
    }
    *cursor = first.unwrap_or(order.len()) as u32;
    if cands.len() < k {
        return None;
    }
    let cap = |s: u32| hot[s as usize].cap;
    if let Some(a) = assign(&shape.gang_order, demands, &cands, cap) {
        return Some(a);
    }
    // Heterogeneous demands: look at every candidate.
    for &slot in &order[i + 1..] {
        if hot[slot as usize].fits_gang(shape.min) && ok(slot) {
            cands.push(slot);
        }
    }
    assign(&shape.gang_order, demands, &cands, cap)
}

/// Assigns every node index (taken in `index_order`) a distinct candidate
/// node whose capacity `cap` covers its demand; candidates are in
/// preference order. Greedy first, then augmenting paths (a maximum
/// bipartite matching), so it finds an assignment whenever one exists.
/// Returns the node slot per node index.
pub(crate) fn assign(
    index_order: &[u32],
    demands: &[Resources],
    cands: &[u32],
    cap: impl Fn(u32) -> Resources,
) -> Option<Vec<u32>> {
    let (k, m) = (demands.len(), cands.len());
    if m < k {
        return None;
    }
    let mut owner = vec![NONE; m];
    let mut assigned = vec![NONE; k];
    let mut first_free = 0;
    for &i in index_order {
        for j in first_free..m {
            if owner[j] == NONE && fits(cap(cands[j]), demands[i as usize]) {
                owner[j] = i;
                assigned[i as usize] = j as u32;
                break;
            }
        }
        while first_free < m && owner[first_free] != NONE {
            first_free += 1;
        }
    }
    if assigned.contains(&NONE) {
        let ok = |i: u32, j: usize| fits(cap(cands[j]), demands[i as usize]);
        for &i in index_order {
            if assigned[i as usize] != NONE {
                continue;
            }
            let mut seen = vec![false; m];
            if !augment(i, &ok, &mut seen, &mut owner, &mut assigned) {
                return None;
            }
        }
    }
    Some(assigned.iter().map(|&j| cands[j as usize]).collect())
}

fn augment(
    i: u32,
    ok: &impl Fn(u32, usize) -> bool,
    seen: &mut [bool],
    owner: &mut [u32],
    assigned: &mut [u32],
) -> bool {
    for j in 0..owner.len() {
        if seen[j] || !ok(i, j) {
            continue;
        }
        seen[j] = true;
        if owner[j] == NONE || augment(owner[j], ok, seen, owner, assigned) {
            owner[j] = i;
            assigned[i as usize] = j as u32;
            return true;
        }
    }
    false
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
    /// Can the shape never fit the cluster, even empty? Returns the reason
    /// id, or [`NONE`] when it can fit. Cached until the topology changes.
    /// The queue's class must be current.
    pub fn never_fit(&mut self, sid: u32) -> u32 {
        let shape = &self.shapes[sid as usize];
        if shape.never.0 == self.topo_epoch {
            return shape.never.1;
        }
        let id = match self.never_fit_text(sid) {
            Some(text) => self.reasons.intern(text),
            None => NONE,
        };
        self.shapes[sid as usize].never = (self.topo_epoch, id);
        id
    }

    fn pool_list(&self, qslot: u32, only_enabled: bool) -> String {
        let q = &self.queues[qslot as usize];
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

    fn never_fit_text(&self, sid: u32) -> Option<String> {
        let shape = &self.shapes[sid as usize];
        let q = &self.queues[shape.qslot as usize];
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
        let caps = || order.iter().map(|&s| self.hot[s as usize].cap);
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
                let cands: Vec<u32> = order
                    .iter()
                    .copied()
                    .filter(|&s| fits(self.hot[s as usize].cap, shape.min))
                    .collect();
                let cap = |s: u32| self.hot[s as usize].cap;
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
    pub fn waiting_reason(&mut self, sid: u32) -> u32 {
        let shape = &self.shapes[sid as usize];
        if shape.waiting != NONE {
            return shape.waiting;
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
        let id = self.reasons.intern(text);
        self.shapes[sid as usize].waiting = id;
        id
    }
}
