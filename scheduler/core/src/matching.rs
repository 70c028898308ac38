//! Gang assignment: each node index of a gang gets a distinct node that
//! covers its demand (a maximum bipartite matching).

use crate::index::NodeSlot;
use crate::resources::fits;
use crate::types::Resources;

/// Assigns every node index (taken in `index_order`) a distinct candidate
/// node whose capacity `cap` covers its demand; candidates are in
/// preference order. Greedy first, then augmenting paths (a maximum
/// bipartite matching), so it finds an assignment whenever one exists.
/// Returns the node slot per node index.
pub(crate) fn assign(
    index_order: &[u32],
    demands: &[Resources],
    cands: &[NodeSlot],
    cap: impl Fn(NodeSlot) -> Resources,
) -> Option<Vec<NodeSlot>> {
    let (k, m) = (demands.len(), cands.len());
    if m < k {
        return None;
    }
    // Per candidate: the node index it serves; per node index: its
    // candidate.
    let mut owner: Vec<Option<u32>> = vec![None; m];
    let mut assigned: Vec<Option<u32>> = vec![None; k];
    let mut first_free = 0;
    for &i in index_order {
        for j in first_free..m {
            if owner[j].is_none() && fits(cap(cands[j]), demands[i as usize]) {
                owner[j] = Some(i);
                assigned[i as usize] = Some(j as u32);
                break;
            }
        }
        while first_free < m && owner[first_free].is_some() {
            first_free += 1;
        }
    }
    if assigned.contains(&None) {
        let ok = |i: u32, j: usize| fits(cap(cands[j]), demands[i as usize]);
        for &i in index_order {
            if assigned[i as usize].is_some() {
                continue;
            }
            let mut seen = vec![false; m];
            if !augment(i, &ok, &mut seen, &mut owner, &mut assigned) {
                return None;
            }
        }
    }
    assigned
        .iter()
        .map(|j| j.map(|j| cands[j as usize]))
        .collect()
}

fn augment(
    i: u32,
    ok: &impl Fn(u32, usize) -> bool,
    seen: &mut [bool],
    owner: &mut [Option<u32>],
    assigned: &mut [Option<u32>],
) -> bool {
    for j in 0..owner.len() {
        if seen[j] || !ok(i, j) {
            continue;
        }
        seen[j] = true;
        let free = match owner[j] {
            None => true,
            Some(o) => augment(o, ok, seen, owner, assigned),
        };
        if free {
            owner[j] = Some(i);
            assigned[i as usize] = Some(j as u32);
            return true;
        }
    }
    false
}
