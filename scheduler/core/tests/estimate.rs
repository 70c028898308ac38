//! Start estimates from the core's dry run: gangs, dependencies, jobs that
//! cannot fit, attempts past their estimate, and the core left unchanged.

mod common;

use std::collections::BTreeMap;

use common::*;
use shoal_core::*;

fn two_nodes() -> Core {
    let mut core = world(Backfill::Easy);
    core.apply(0, node(1, 2, 1 << 20, 1 << 20)).unwrap();
    core.apply(0, node(2, 2, 1 << 20, 1 << 20)).unwrap();
    core
}

fn by_job(est: &[StartEstimate]) -> BTreeMap<u64, Option<Millis>> {
    est.iter().map(|e| (e.job.0, e.start)).collect()
}

/// Estimated before any pass, then driven like the planner: the same
/// starts, in the order listed; a job that cannot fit has none.
#[test]
fn estimates_equal_the_starts_of_a_replay() {
    let mut core = two_nodes();
    let jobs = [
        job(1).single(2, 0, 0).timeout(10),
        job(2).gang(2, res(2, 0, 0)).timeout(20),
        job(3).single(1, 0, 0).timeout(5).after(&[2]),
        job(4).single(1, 0, 0).timeout(40),
        job(5).single(1, 0, 0).timeout(7),
        job(6).single(3, 0, 0).timeout(1),
    ];
    let mut timeouts = BTreeMap::new();
    for j in &jobs {
        timeouts.insert(j.0.key.0, j.0.timeout_s.unwrap() * 1000);
        core.apply(0, j.clone().submit()).unwrap();
    }
    let before = format!("{core:?}");
    let est = core.estimate_starts(0);
    assert_eq!(format!("{core:?}"), before, "the dry run changed the core");
    let starts = simulate(&mut core, 3_600_000, &timeouts);
    let got = by_job(&est);
    assert_eq!(got.len(), 6, "{est:?}");
    for (k, &t) in &starts {
        assert_eq!(got[k], Some(t), "job {k}: {est:?} vs {starts:?}");
    }
    // Job 6 (3 vCPUs on nodes of 2) never starts, and is listed last.
    assert_eq!(got[&6], None);
    assert_eq!(est.last().unwrap().job, JobKey(6));
    // Listed by estimated start.
    let listed: Vec<Millis> = est.iter().filter_map(|e| e.start).collect();
    assert!(listed.windows(2).all(|w| w[0] <= w[1]), "{est:?}");
    // The dependent job waits for the gang's end.
    assert_eq!(got[&3], Some(got[&2].unwrap() + 20_000));
    assert_eq!(
        est.iter().find(|e| e.job == JobKey(3)).unwrap().state,
        JobState::Pending
    );
}

/// An attempt past its estimated end is taken to end now.
#[test]
fn an_attempt_past_its_estimate_ends_now() {
    let mut core = two_nodes();
    core.apply(0, job(1).gang(2, res(2, 0, 0)).timeout(10).submit())
        .unwrap();
    core.schedule(0);
    assert_eq!(starts(&core.drain()), vec![1]);
    core.apply(0, started(1, 0, 0)).unwrap();
    core.apply(0, started(1, 0, 1)).unwrap();
    core.apply(1, job(2).single(1, 0, 0).timeout(5).submit())
        .unwrap();
    let est = by_job(&core.estimate_starts(1_000));
    assert_eq!(est[&2], Some(10_000));
    let est = by_job(&core.estimate_starts(25_000));
    assert_eq!(est[&2], Some(25_000));
    // Only jobs not yet started are listed.
    assert!(!est.contains_key(&1));
}
