//! The allocator of MANAGED compute environments (issue 18): from what the
//! core could not place, which allocations to ask of the provider (Slurm)
//! and which to end. [`plan`] is pure: the state machine gives it an
//! environment's capacity, its allocations and the jobs waiting for it, and
//! carries out its [`Action`]s (through the Slurm thread, `crate::slurm`).

use shoal_core::{Resources, Waiting};
use shoal_model::managed::ManagedSpec;

/// Seconds an allocation lasts beyond the longest timeout it is asked for:
/// the time its workers take to start and register.
pub const START_MARGIN_S: u64 = 60;

/// At most this many allocations of one environment wait to start at once.
pub const MAX_PENDING: usize = 4;

/// What the allocator sees of one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocView {
    /// Shoal's number of it in its environment.
    pub seq: u32,
    /// Not yet running with all its workers registered (submitted,
    /// pending in Slurm, or starting its workers).
    pub coming: bool,
    /// Being ended (cancelled, or Slurm says it completes).
    pub ending: bool,
    /// Nodes asked for.
    pub nodes: u32,
    /// Its workers registered so far.
    pub registered: u32,
    /// vCPUs it holds or will.
    pub vcpus: u32,
    /// Its time limit (None: the partition's).
    pub time_limit_s: Option<u64>,
    /// How long every node of it has had nothing to run (None: something
    /// runs, or it is not running yet).
    pub idle_ms: Option<u64>,
}

/// What the allocator decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ask for an allocation of `nodes` nodes for `time_limit_s` (None:
    /// the partition's limit).
    Submit {
        /// Nodes.
        nodes: u32,
        /// Its time limit.
        time_limit_s: Option<u64>,
    },
    /// End an allocation (idle past the idle timeout).
    Cancel {
        /// Which.
        seq: u32,
    },
}

/// The time an allocation for jobs of these timeouts asks for: the
/// environment's limit when it has one, else the longest timeout and the
/// start margin (None when some job has no timeout: the partition's).
fn time_for(limit: Option<u64>, timeouts: &[Option<u64>]) -> Option<u64> {
    if limit.is_some() {
        return limit;
    }
    let mut longest = 0;
    for t in timeouts {
        longest = longest.max((*t)? + START_MARGIN_S);
    }
    Some(longest.max(START_MARGIN_S))
}

/// Whether an allocation of `time_limit_s` can ever hold a job of
/// `timeout_s` (with the start margin).
fn long_enough(time_limit_s: Option<u64>, timeout_s: Option<u64>) -> bool {
    match (time_limit_s, timeout_s) {
        (Some(l), Some(t)) => t + START_MARGIN_S <= l,
        _ => true,
    }
}

/// The actions for one environment at this moment.
///
/// * `node_vcpus`: the vCPUs of one of the provider's nodes (sizes
///   allocations against `maxvCpus` and packs single-node jobs).
/// * `allocs`: its allocations.
/// * `waiting`: the RUNNABLE jobs of its queues that the last pass did not
///   start, in scheduling order (the core could place none of them on the
///   nodes there are).
/// * `may_submit`: false while the environment is INVALID or DISABLED.
pub fn plan(
    spec: &ManagedSpec,
    limit_s: Option<u64>,
    idle_timeout_s: u64,
    node_vcpus: u32,
    allocs: &[AllocView],
    waiting: &[Waiting],
    may_submit: bool,
) -> Vec<Action> {
    let node_vcpus = node_vcpus.max(1);
    let mut out = Vec::new();
    let mut held: u64 = allocs
        .iter()
        .filter(|a| !a.ending)
        .map(|a| u64::from(a.vcpus))
        .sum();
    let max = u64::from(spec.max_vcpus);
    let min = u64::from(spec.min_vcpus);

    // Idle allocations end, down to minvCpus.
    for a in allocs.iter().filter(|a| !a.ending && !a.coming) {
        if a.idle_ms.is_some_and(|ms| ms >= idle_timeout_s * 1000)
            && held - u64::from(a.vcpus) >= min
            && waiting.is_empty()
        {
            held -= u64::from(a.vcpus);
            out.push(Action::Cancel { seq: a.seq });
        }
    }
    if !may_submit {
        return out;
    }

    // What the allocations still to come will offer: nodes not yet
    // registered, with their time limits. The waiting jobs take those
    // first, in order; what is left needs new allocations.
    // Per allocation on its way: its time limit and the vCPUs of its
    // nodes not yet registered (a gang takes whole nodes of them).
    let nv = u64::from(node_vcpus);
    let mut coming: Vec<(Option<u64>, u64)> = allocs
        .iter()
        .filter(|a| a.coming && !a.ending)
        .map(|a| {
            (
                a.time_limit_s,
                u64::from(a.nodes.saturating_sub(a.registered)) * nv,
            )
        })
        .collect();
    let mut gangs: Vec<&Waiting> = Vec::new();
    let mut singles: Vec<&Waiting> = Vec::new();
    for w in waiting {
        let k = w.nodes.len() as u64;
        let per_node = w.nodes.iter().map(|r| r.vcpus).max().unwrap_or(1).max(1);
        if !long_enough(limit_s, w.timeout_s) || per_node > node_vcpus {
            // No allocation of this environment can ever hold it; its
            // status reason says what it waits for.
            continue;
        }
        let need = if w.gang { k * nv } else { u64::from(per_node) };
        let whole = |free: u64| if w.gang { free / nv >= k } else { free >= need };
        match coming
            .iter_mut()
            .find(|(t, free)| long_enough(*t, w.timeout_s) && whole(*free))
        {
            Some((_, free)) => *free -= need,
            None if w.gang => gangs.push(w),
            None => singles.push(w),
        }
    }
    let pending = allocs.iter().filter(|a| a.coming && !a.ending).count();
    let mut room = MAX_PENDING.saturating_sub(pending);
    // A gang each its own allocation of its size, in order, while they fit
    // under maxvCpus.
    for w in gangs {
        if room == 0 {
            break;
        }
        let k = w.nodes.len() as u32;
        let vcpus = u64::from(k) * u64::from(node_vcpus);
        if held + vcpus > max {
            // It waits for capacity to be freed (ended allocations).
            continue;
        }
        held += vcpus;
        room -= 1;
        out.push(Action::Submit {
            nodes: k,
            time_limit_s: time_for(limit_s, &[w.timeout_s]),
        });
    }
    // The single-node jobs together: as many nodes as their vCPUs need,
    // as far as maxvCpus allows.
    if !singles.is_empty() && room > 0 {
        let need: u64 = singles
            .iter()
            .map(|w| u64::from(w.nodes.first().map_or(1, |r: &Resources| r.vcpus.max(1))))
            .sum();
        let nodes = need.div_ceil(u64::from(node_vcpus));
        let fit = (max.saturating_sub(held)) / u64::from(node_vcpus);
        let nodes = nodes.min(fit) as u32;
        if nodes > 0 {
            held += u64::from(nodes) * u64::from(node_vcpus);
            room -= 1;
            let timeouts: Vec<Option<u64>> = singles.iter().map(|w| w.timeout_s).collect();
            out.push(Action::Submit {
                nodes,
                time_limit_s: time_for(limit_s, &timeouts),
            });
        }
    }
    // minvCpus kept even with nothing to run.
    if held < min && room > 0 {
        let nodes = (min - held).div_ceil(u64::from(node_vcpus)) as u32;
        out.push(Action::Submit {
            nodes,
            time_limit_s: limit_s,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_core::{JobKey, QueueId};
    use shoal_model::managed::{Provider, SlurmSettings};

    fn spec(min: u32, max: u32) -> ManagedSpec {
        ManagedSpec {
            min_vcpus: min,
            desired_vcpus: min,
            max_vcpus: max,
            provider: Provider::Slurm(SlurmSettings {
                partition: None,
                account: None,
                time_limit_s: None,
                extra_args: vec![],
                idle_timeout_s: 30,
            }),
        }
    }

    fn job(key: u64, nodes: usize, vcpus: u32, timeout_s: Option<u64>) -> Waiting {
        Waiting {
            job: JobKey(key),
            queue: QueueId(1),
            nodes: vec![
                Resources {
                    vcpus,
                    memory_mib: 256,
                    shm_mib: 64
                };
                nodes
            ],
            gang: nodes > 1,
            timeout_s,
        }
    }

    fn alloc(seq: u32, nodes: u32, registered: u32, limit: Option<u64>) -> AllocView {
        AllocView {
            seq,
            coming: registered < nodes,
            ending: false,
            nodes,
            registered,
            vcpus: nodes * 2,
            time_limit_s: limit,
            idle_ms: None,
        }
    }

    #[test]
    fn a_waiting_gang_gets_an_allocation_of_its_size_for_its_timeout() {
        let a = plan(
            &spec(0, 8),
            None,
            30,
            2,
            &[],
            &[job(1, 2, 1, Some(120))],
            true,
        );
        assert_eq!(
            a,
            vec![Action::Submit {
                nodes: 2,
                time_limit_s: Some(120 + START_MARGIN_S)
            }]
        );
        // With the environment's time limit, that limit.
        let a = plan(
            &spec(0, 8),
            Some(3600),
            30,
            2,
            &[],
            &[job(1, 2, 1, Some(120))],
            true,
        );
        assert_eq!(
            a,
            vec![Action::Submit {
                nodes: 2,
                time_limit_s: Some(3600)
            }]
        );
    }

    #[test]
    fn nothing_is_submitted_for_what_an_allocation_on_its_way_will_hold() {
        let coming = [alloc(1, 2, 0, Some(600))];
        let a = plan(
            &spec(0, 8),
            Some(600),
            30,
            2,
            &coming,
            &[job(1, 2, 1, Some(60))],
            true,
        );
        assert_eq!(a, vec![]);
        // A second gang does not fit in it: an allocation of its own.
        let a = plan(
            &spec(0, 8),
            Some(600),
            30,
            2,
            &coming,
            &[job(1, 2, 1, Some(60)), job(2, 2, 1, Some(60))],
            true,
        );
        assert_eq!(
            a,
            vec![Action::Submit {
                nodes: 2,
                time_limit_s: Some(600)
            }]
        );
    }

    #[test]
    fn a_job_longer_than_the_allocations_on_their_way_gets_its_own() {
        let coming = [alloc(1, 2, 0, Some(200))];
        let a = plan(
            &spec(0, 8),
            None,
            30,
            2,
            &coming,
            &[job(1, 2, 1, Some(600))],
            true,
        );
        assert_eq!(
            a,
            vec![Action::Submit {
                nodes: 2,
                time_limit_s: Some(600 + START_MARGIN_S)
            }]
        );
    }

    #[test]
    fn max_vcpus_bounds_what_is_held_and_what_never_fits_is_not_asked_for() {
        let running = [alloc(1, 2, 2, None)];
        // 4 of 6 vCPUs held: a 2-node gang (4 vCPUs) waits.
        let a = plan(
            &spec(0, 6),
            None,
            30,
            2,
            &running,
            &[job(1, 2, 1, None)],
            true,
        );
        assert_eq!(a, vec![]);
        // A node's worth of vCPUs more than a node has: never.
        let a = plan(&spec(0, 64), None, 30, 2, &[], &[job(1, 1, 4, None)], true);
        assert_eq!(a, vec![]);
        // Longer than the environment's time limit allows: never.
        let a = plan(
            &spec(0, 64),
            Some(100),
            30,
            2,
            &[],
            &[job(1, 1, 1, Some(100))],
            true,
        );
        assert_eq!(a, vec![]);
    }

    #[test]
    fn single_jobs_are_packed_onto_as_few_nodes_as_their_vcpus_need() {
        let w: Vec<Waiting> = (0..5).map(|i| job(i, 1, 1, Some(30))).collect();
        let a = plan(&spec(0, 64), None, 30, 2, &[], &w, true);
        assert_eq!(
            a,
            vec![Action::Submit {
                nodes: 3,
                time_limit_s: Some(30 + START_MARGIN_S)
            }]
        );
        // ... within maxvCpus.
        let a = plan(&spec(0, 4), None, 30, 2, &[], &w, true);
        assert_eq!(
            a,
            vec![Action::Submit {
                nodes: 2,
                time_limit_s: Some(30 + START_MARGIN_S)
            }]
        );
    }

    #[test]
    fn idle_allocations_end_after_the_idle_timeout_down_to_min_vcpus() {
        let mut a1 = alloc(1, 1, 1, None);
        let mut a2 = alloc(2, 1, 1, None);
        a1.idle_ms = Some(31_000);
        a2.idle_ms = Some(29_000);
        let a = plan(
            &spec(0, 8),
            None,
            30,
            2,
            &[a1.clone(), a2.clone()],
            &[],
            true,
        );
        assert_eq!(a, vec![Action::Cancel { seq: 1 }]);
        // minvCpus 4 keeps both.
        let a = plan(&spec(4, 8), None, 30, 2, &[a1.clone(), a2], &[], true);
        assert_eq!(a, vec![]);
        // Below minvCpus: an allocation to make it up.
        let a = plan(&spec(4, 8), Some(900), 30, 2, &[a1], &[], true);
        assert_eq!(
            a,
            vec![Action::Submit {
                nodes: 1,
                time_limit_s: Some(900)
            }]
        );
    }

    #[test]
    fn an_invalid_environment_submits_nothing() {
        let a = plan(&spec(2, 8), None, 30, 2, &[], &[job(1, 2, 1, None)], false);
        assert_eq!(a, vec![]);
    }

    #[test]
    fn few_allocations_wait_to_start_at_once() {
        let w: Vec<Waiting> = (0..10).map(|i| job(i, 2, 1, None)).collect();
        let a = plan(&spec(0, 1000), None, 30, 2, &[], &w, true);
        assert_eq!(a.len(), MAX_PENDING);
    }
}
