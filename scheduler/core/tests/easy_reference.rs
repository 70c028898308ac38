//! The core's EASY policy, driven like the capacity planner drives it (one
//! node with P vCPUs, rigid single-node jobs, arrivals and ends as events),
//! must match a textbook EASY simulator exactly.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use proptest::prelude::*;
use shoal_core::*;

#[derive(Debug, Clone)]
struct TJob {
    arrival: Millis,
    width: u32,
    est: Millis,
    runtime: Millis,
}

/// Textbook EASY: at every event time, start queue heads while they fit;
/// then reserve for the blocked head at the earliest time enough
/// processors are free (running jobs ending in estimated-end order, all
/// jobs ending at that time counted); extra = free then minus the head's
/// width; a later job starts if it fits now and either ends by the shadow
/// time or fits in the extra (which it then uses up).
fn reference(p: u32, jobs: &[TJob]) -> BTreeMap<u64, Millis> {
    let mut starts = BTreeMap::new();
    let mut times: BTreeSet<Millis> = jobs.iter().map(|j| j.arrival).collect();
    let mut queue: Vec<usize> = Vec::new(); // in arrival order
    let mut running: Vec<(Millis, Millis, u32)> = Vec::new(); // (est end, actual end, width)
    let mut free = p;
    while let Some(t) = times.pop_first() {
        running.retain(|&(_, end, w)| {
            if end == t {
                free += w;
                false
            } else {
                true
            }
        });
        for (i, j) in jobs.iter().enumerate() {
            if j.arrival == t {
                queue.push(i);
            }
        }
        let mut start = |i: usize, free: &mut u32, running: &mut Vec<(Millis, Millis, u32)>| {
            let j = &jobs[i];
            *free -= j.width;
            running.push((t + j.est, t + j.runtime, j.width));
            starts.insert(i as u64 + 1, t);
            times.insert(t + j.runtime);
        };
        while let Some(&h) = queue.first() {
            if jobs[h].width > free {
                break;
            }
            queue.remove(0);
            start(h, &mut free, &mut running);
        }
        let Some(&h) = queue.first() else { continue };
        let mut ends: Vec<(Millis, u32)> = running.iter().map(|&(e, _, w)| (e.max(t), w)).collect();
        ends.sort();
        let mut avail = free;
        let mut shadow = Millis::MAX;
        let mut k = 0;
        while k < ends.len() {
            let at = ends[k].0;
            while k < ends.len() && ends[k].0 == at {
                avail += ends[k].1;
                k += 1;
            }
            if avail >= jobs[h].width {
                shadow = at;
                break;
            }
        }
        let mut extra = avail.saturating_sub(jobs[h].width);
        let mut i = 1;
        while i < queue.len() {
            let j = &jobs[queue[i]];
            if j.width <= free && t + j.est <= shadow {
                start(queue.remove(i), &mut free, &mut running);
            } else if j.width <= free && j.width <= extra {
                extra -= j.width;
                start(queue.remove(i), &mut free, &mut running);
            } else {
                i += 1;
            }
        }
    }
    starts
}

/// The same trace through the core (jobs may run past their estimate:
/// both count an estimated end already past as ending now).
fn core_run(p: u32, jobs: &[TJob]) -> BTreeMap<u64, Millis> {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, p, 1 << 20, 0)).unwrap();
    let mut times: BTreeSet<Millis> = jobs.iter().map(|j| j.arrival).collect();
    let mut ends: BTreeSet<(Millis, u64, u32)> = BTreeSet::new();
    let mut starts = BTreeMap::new();
    while let Some(t) = times.pop_first() {
        while let Some(&(e, key, attempt)) = ends.first() {
            if e != t {
                break;
            }
            ends.pop_first();
            core.apply(t, exited(key, attempt, 0, 0)).unwrap();
        }
        for (i, j) in jobs.iter().enumerate() {
            if j.arrival == t {
                let spec = job(i as u64 + 1)
                    .single(j.width, 1, 0)
                    .at(t)
                    .timeout(j.est / 1000);
                core.apply(t, spec.submit()).unwrap();
            }
        }
        core.schedule(t);
        for d in core.drain() {
            if let Decision::Start { job, attempt, .. } = d {
                let j = &jobs[job.0 as usize - 1];
                starts.insert(job.0, t);
                ends.insert((t + j.runtime, job.0, attempt));
                times.insert(t + j.runtime);
            }
        }
    }
    starts
}

fn trace() -> impl Strategy<Value = (u32, Vec<TJob>)> {
    (1u32..=16).prop_flat_map(|p| {
        let job = (0u64..=30, 1..=p, 1u64..=100, 0u64..=160).prop_map(|(gap, width, est, frac)| {
            let runtime = (est * 1000 * frac / 100).max(1000);
            (
                gap * 1000,
                TJob {
                    arrival: 0,
                    width,
                    est: est * 1000,
                    runtime,
                },
            )
        });
        (Just(p), prop::collection::vec(job, 1..60)).prop_map(|(p, v)| {
            let mut t = 0;
            let jobs = v
                .into_iter()
                .map(|(gap, mut j)| {
                    t += gap;
                    j.arrival = t;
                    j
                })
                .collect();
            (p, jobs)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn easy_matches_textbook_simulator((p, jobs) in trace()) {
        let expected = reference(p, &jobs);
        prop_assert_eq!(expected.len(), jobs.len());
        prop_assert_eq!(core_run(p, &jobs), expected);
    }
}
