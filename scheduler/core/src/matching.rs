//! Gang assignment: each node index of a gang gets a distinct node that
//! covers its demand (a maximum bipartite matching).

use crate::resources::fits;
use crate::state::NONE;
use crate::types::Resources;

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
