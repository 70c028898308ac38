//! Start-time estimates: a dry run of the core on a copy of its state.
//!
//! The copy is driven forward on a virtual clock: each attempt in flight
//! ends (exit code 0) at its estimated end, the same estimate backfilling
//! uses (the job's timeout, else its queue's default), and a scheduling
//! pass runs at every such time, exactly as the planner drives the core.
//! Nothing arrives that is not already there. An attempt already past its
//! estimate is taken to end now. With exact estimates and no later
//! arrivals, each estimate is the start the job then gets.

use std::collections::HashMap;

use crate::core::Core;
use crate::types::{Decision, Event, JobKey, JobState, Millis, QueueId};

/// The estimated start of a job that has not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartEstimate {
    /// The job.
    pub job: JobKey,
    /// Its queue.
    pub queue: QueueId,
    /// Its state now (PENDING, RUNNABLE, or SUBMITTED).
    pub state: JobState,
    /// When the dry run starts it (None: it never starts there, e.g. it
    /// cannot fit, its queue is DISABLED or a dependency never ends).
    pub start: Option<Millis>,
}

impl Core {
    /// Estimated starts at `now` of every job that has not started yet
    /// (array parents excepted), in the order the core would start them:
    /// by estimated start, then by the order the dry run started them;
    /// jobs that never start there come last, in scheduling order.
    /// `self` is not changed.
    pub fn estimate_starts(&self, now: Millis) -> Vec<StartEstimate> {
        let mut sim = self.clone();
        sim.drain();
        let mut waiting: Vec<(JobKey, QueueId, JobState)> = Vec::new();
        let runq_order: HashMap<JobKey, usize> = self
            .runnable_keys()
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, i))
            .collect();
        for job in self.jobs_iter() {
            let queued = matches!(
                job.state,
                JobState::Submitted | JobState::Pending | JobState::Runnable
            );
            if queued && !job.is_array {
                if let Some(q) = job.qslot {
                    waiting.push((job.spec.key, self.queue_id(q), job.state));
                }
            }
        }
        let mut started: HashMap<JobKey, (Millis, usize)> = HashMap::new();
        let of_interest: std::collections::HashSet<JobKey> = waiting.iter().map(|w| w.0).collect();
        let mut left = waiting.len();
        let mut t = now;
        // Every round ends at least one attempt; at most one more round
        // than attempts that can ever run.
        let limit = waiting.len() + self.running_len() + 2;
        for _ in 0..limit {
            sim.schedule(t);
            for d in sim.drain() {
                if let Decision::Start {
                    job,
                    attempt,
                    placement,
                } = d
                {
                    let seq = started.len();
                    if of_interest.contains(&job) && !started.contains_key(&job) {
                        started.insert(job, (t, seq));
                        left -= 1;
                    }
                    for i in 0..placement.len() as u32 {
                        // The attempt was just started: its nodes are known.
                        let _ = sim.apply(
                            t,
                            Event::NodeStarted {
                                job,
                                attempt,
                                node_index: i,
                            },
                        );
                    }
                }
            }
            if left == 0 {
                break;
            }
            let Some(next) = sim.next_estimated_end() else {
                break;
            };
            t = t.max(next);
            for (job, attempt, main) in sim.attempts_ending_by(t) {
                let _ = sim.apply(
                    t,
                    Event::NodeExited {
                        job,
                        attempt,
                        node_index: main,
                        exit_code: Some(0),
                        reason: String::new(),
                    },
                );
            }
            sim.drain();
        }
        let mut out: Vec<StartEstimate> = waiting
            .into_iter()
            .map(|(job, queue, state)| StartEstimate {
                job,
                queue,
                state,
                start: started.get(&job).map(|s| s.0),
            })
            .collect();
        out.sort_by_key(|e| match started.get(&e.job) {
            Some(&(at, seq)) => (0, at, seq, e.job),
            None => (
                1,
                0,
                runq_order.get(&e.job).copied().unwrap_or(usize::MAX),
                e.job,
            ),
        });
        out
    }
}
