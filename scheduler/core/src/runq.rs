//! The RUNNABLE jobs in scheduling order, laid out for a fast pass.
//!
//! A pass walks every RUNNABLE job, so the walk must stream through memory:
//! most jobs live in a sorted vector (`keys` / `vals`, removed entries left
//! as tombstones), recent arrivals in a second, small sorted vector
//! (`pkeys` / `pvals`). A walk merges the two as it goes, one comparison of
//! keys a step (a walk that stops early, as a blocked FCFS pass does, costs
//! what it visited); it starts after each vector's leading tombstones
//! (the jobs passes started from the front), found once. Positions are
//! indices into one vector or the other, so a pass reaches an entry again
//! without a search. The main vector is rebuilt once the recent arrivals or
//! the tombstones grow past a threshold (in `insert` / `remove`, so during
//! `apply`, not during a pass).

use crate::index::JobSlot;
use crate::state::{RunEntry, RunKey};

/// Recent arrivals above this rebuild the main vector.
const MAX_PENDING: usize = 2048;

/// Where an entry is, during a pass.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pos {
    /// Index in the main vector.
    Vec(usize),
    /// Index in the vector of recent arrivals.
    Pending(usize),
}

/// RUNNABLE jobs in scheduling order.
#[derive(Debug, Default, Clone)]
pub(crate) struct RunQueue {
    keys: Vec<RunKey>,
    vals: Vec<RunEntry>,
    /// Tombstones in `vals` (slot None).
    dead: usize,
    /// Recent arrivals, sorted, with their tombstones (slot None).
    pkeys: Vec<RunKey>,
    pvals: Vec<RunEntry>,
    len: usize,
    /// Every entry of `vals` before it is a tombstone.
    live_from: usize,
    /// Every entry of `pvals` before it is a tombstone (the arrivals
    /// passes started, which a walk would otherwise step over each time).
    plive_from: usize,
    /// Entries removed other than by a pass (`remove`): a count that
    /// changes when the queue lost a job no pass started.
    removals: u64,
}

impl RunQueue {
    /// Number of RUNNABLE jobs.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn insert(&mut self, key: RunKey, val: RunEntry) {
        let at = match self.pkeys.binary_search(&key) {
            // A tombstone of the same key: live again.
            Ok(i) => {
                let was = self.pvals[i].slot;
                self.pvals[i] = val;
                if was.is_some() {
                    return;
                }
                i
            }
            Err(i) => {
                self.pkeys.insert(i, key);
                self.pvals.insert(i, val);
                i
            }
        };
        self.plive_from = self.plive_from.min(at);
        self.len += 1;
        if self.pkeys.len() > MAX_PENDING {
            self.compact();
        }
    }

    pub fn remove(&mut self, key: &RunKey) -> Option<RunEntry> {
        let val = match self.pkeys.binary_search(key) {
            Ok(i) if self.pvals[i].slot.is_some() => {
                if i < self.plive_from {
                    self.plive_from -= 1;
                }
                self.pkeys.remove(i);
                self.pvals.remove(i)
            }
            _ => {
                let i = self.keys.binary_search(key).ok()?;
                self.kill(i)?
            }
        };
        self.len -= 1;
        self.removals += 1;
        self.maybe_compact();
        Some(val)
    }

    /// Rebuilds the vector if too many tombstones piled up.
    pub fn maybe_compact(&mut self) {
        if self.dead > MAX_PENDING.max(self.vals.len() / 8) {
            self.compact();
        }
    }

    /// Removes the entry at `pos` (found by the current pass). Never
    /// compacts or moves an entry, so other positions of the pass stay
    /// valid.
    pub fn remove_at(&mut self, pos: Pos) {
        let gone = match pos {
            Pos::Vec(i) => self.kill(i).is_some(),
            Pos::Pending(i) => self.pvals[i].slot.take().is_some(),
        };
        self.len -= gone as usize;
    }

    /// The entry at `pos` (found by the current pass).
    pub fn get_mut(&mut self, pos: Pos) -> &mut RunEntry {
        match pos {
            Pos::Vec(i) => &mut self.vals[i],
            Pos::Pending(i) => &mut self.pvals[i],
        }
    }

    fn kill(&mut self, i: usize) -> Option<RunEntry> {
        let v = self.vals[i];
        v.slot?;
        self.vals[i].slot = None;
        self.dead += 1;
        Some(v)
    }

    /// Merges the recent arrivals into the main vector and drops
    /// tombstones.
    pub fn compact(&mut self) {
        let n = self.len;
        let mut keys = Vec::with_capacity(n);
        let mut vals = Vec::with_capacity(n);
        let pkeys = std::mem::take(&mut self.pkeys);
        let pvals = std::mem::take(&mut self.pvals);
        let mut pend = pkeys
            .into_iter()
            .zip(pvals)
            .filter(|(_, v)| v.slot.is_some())
            .peekable();
        for (k, v) in self.keys.iter().zip(&self.vals) {
            while let Some((pk, _)) = pend.peek() {
                if pk > k {
                    break;
                }
                let (pk, pv) = pend.next().expect("peeked");
                keys.push(pk);
                vals.push(pv);
            }
            if v.slot.is_some() {
                keys.push(*k);
                vals.push(*v);
            }
        }
        for (pk, pv) in pend {
            keys.push(pk);
            vals.push(pv);
        }
        self.keys = keys;
        self.vals = vals;
        self.dead = 0;
        self.live_from = 0;
        self.plive_from = 0;
    }

    /// Changes whenever an entry is removed other than by a pass.
    pub fn removals(&self) -> u64 {
        self.removals
    }

    /// The position of the live entry `key`, if any.
    pub fn pos_of(&self, key: &RunKey) -> Option<Pos> {
        if let Ok(i) = self.pkeys.binary_search(key) {
            if self.pvals[i].slot.is_some() {
                return Some(Pos::Pending(i));
            }
        }
        let i = self.keys.binary_search(key).ok()?;
        self.vals[i].slot.map(|_| Pos::Vec(i))
    }

    /// Every entry (key, value), in order; for rare whole-queue changes.
    pub fn entries(&self) -> Vec<(RunKey, RunEntry)> {
        let mut out: Vec<(RunKey, RunEntry)> = self
            .keys
            .iter()
            .zip(&self.vals)
            .chain(self.pkeys.iter().zip(&self.pvals))
            .filter(|(_, v)| v.slot.is_some())
            .map(|(k, v)| (*k, *v))
            .collect();
        out.sort_by_key(|e| e.0);
        out
    }

    /// Replaces every entry.
    pub fn rebuild(&mut self, mut entries: Vec<(RunKey, RunEntry)>) {
        entries.sort_by_key(|e| e.0);
        self.len = entries.len();
        self.pkeys.clear();
        self.pvals.clear();
        self.dead = 0;
        self.live_from = 0;
        self.plive_from = 0;
        self.removals += 1;
        (self.keys, self.vals) = entries.into_iter().unzip();
    }

    /// Starts walking the queue in order.
    pub fn walk(&mut self) -> Walk {
        while self
            .vals
            .get(self.live_from)
            .is_some_and(|v| v.slot.is_none())
        {
            self.live_from += 1;
        }
        while self
            .pvals
            .get(self.plive_from)
            .is_some_and(|v| v.slot.is_none())
        {
            self.plive_from += 1;
        }
        Walk {
            i: self.live_from,
            j: self.plive_from,
        }
    }

    /// The next live entry of a walk: its position, its job's slot, and
    /// the entry.
    #[inline]
    pub fn next<'a>(&'a mut self, w: &mut Walk) -> Option<(Pos, JobSlot, &'a mut RunEntry)> {
        loop {
            let pending_first = match (self.keys.get(w.i), self.pkeys.get(w.j)) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(k), Some(pk)) => pk < k,
            };
            if pending_first {
                let j = w.j;
                w.j += 1;
                if let Some(slot) = self.pvals[j].slot {
                    return Some((Pos::Pending(j), slot, &mut self.pvals[j]));
                }
            } else {
                let i = w.i;
                let v = self.vals.get(i)?;
                w.i += 1;
                if let Some(slot) = v.slot {
                    return Some((Pos::Vec(i), slot, &mut self.vals[i]));
                }
            }
        }
    }
}

/// A walk over a [`RunQueue`] (entries may be modified or removed by
/// position, not added, while it lasts).
#[derive(Debug)]
pub(crate) struct Walk {
    /// The next position in the main vector.
    i: usize,
    /// The next position among the recent arrivals.
    j: usize,
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::BTreeMap;

    use super::*;
    use crate::index::{Idx, ShapeId};
    use crate::types::JobKey;

    fn key(n: u64, prio: i32) -> RunKey {
        RunKey {
            qprio: Reverse(0),
            group: 0,
            prio: Reverse(prio),
            submitted_at: n / 3,
            key: JobKey(n),
        }
    }

    fn walk_all(q: &mut RunQueue) -> Vec<(RunKey, JobSlot)> {
        let mut w = q.walk();
        let mut out = Vec::new();
        while let Some((pos, slot, _)) = q.next(&mut w) {
            let k = match pos {
                Pos::Vec(i) => q.keys[i],
                Pos::Pending(j) => q.pkeys[j],
            };
            out.push((k, slot));
        }
        out
    }

    /// Random inserts and removals (enough to compact many times) walk in
    /// the same order as a BTreeMap holding the same entries.
    #[test]
    fn matches_a_btreemap() {
        let mut q = RunQueue::default();
        let mut model: BTreeMap<RunKey, JobSlot> = BTreeMap::new();
        let mut x: u64 = 88172645463325252;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..40_000u64 {
            let r = rnd();
            if r % 3 != 0 || model.is_empty() {
                let k = key(step, (r % 5) as i32);
                let v = RunEntry {
                    slot: Some(JobSlot::new(step as usize)),
                    shape: ShapeId::new(0),
                    reason: None,
                    timeout_s: 0,
                };
                q.insert(k, v);
                model.insert(k, JobSlot::new(step as usize));
            } else {
                let i = (r / 3) as usize % model.len();
                let k = *model.keys().nth(i).expect("in range");
                model.remove(&k);
                assert_eq!(
                    q.remove(&k).and_then(|v| v.slot),
                    Some(JobSlot::new(k.key.0 as usize))
                );
                assert!(q.remove(&k).is_none());
            }
            assert_eq!(q.len(), model.len());
            if step % 97 == 0 {
                let got = walk_all(&mut q);
                let want: Vec<(RunKey, JobSlot)> = model.iter().map(|(k, v)| (*k, *v)).collect();
                assert_eq!(got, want);
                // Removing by position, as a pass does: the last entry, or
                // the first few (as FCFS starts its heads), leaving
                // tombstones at the front of either vector.
                let mut w = q.walk();
                let mut taken = Vec::new();
                while let Some((pos, slot, _)) = q.next(&mut w) {
                    taken.push((pos, slot));
                    if step % 2 == 0 && taken.len() as u64 > step % 7 {
                        break;
                    }
                }
                if step % 2 != 0 {
                    taken = taken.split_off(taken.len().saturating_sub(1));
                }
                for (pos, slot) in taken {
                    q.remove_at(pos);
                    let k = *model.iter().find(|(_, v)| **v == slot).expect("present").0;
                    model.remove(&k);
                }
                assert_eq!(q.len(), model.len());
                let got = walk_all(&mut q);
                let want: Vec<(RunKey, JobSlot)> = model.iter().map(|(k, v)| (*k, *v)).collect();
                assert_eq!(got, want, "after removals by position");
            }
        }
        assert_eq!(
            q.entries().into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
            model.keys().copied().collect::<Vec<_>>()
        );
    }
}
