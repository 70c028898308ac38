//! The three backfilling policies of a scheduling pass, each a
//! [`Policy`] of its own. [`crate::Core::schedule`] walks the runnable
//! jobs in priority order once and asks the policy where each job may
//! start; what the policies decide is applied by one shared step
//! (`Core::apply_actions`).
//!
//! - [`Fcfs`]: strict priority order: the first job that does not fit stops
//!   the pass.
//! - [`Easy`]: EASY backfilling: the first job that does not fit (the head)
//!   gets a reservation at its shadow time; later jobs start if they fit
//!   now and either end by then or leave the head's reservation free.
//! - [`Conservative`]: every job that does not fit gets a reservation (up
//!   to [`CONSERVATIVE_MAX_RESERVATIONS`]); a job starts now only if
//!   it delays none of them.

use crate::backfill::{easy_reservation, FreshStart, Overlay, Profile, RunningSet};
use crate::index::{IndexVec, JobSlot, NodeSlot, ShapeId};
use crate::state::{Cluster, Job, Memo};
use crate::types::{JobKey, Millis};

/// Conservative backfilling reserves for at most this many blocked jobs per
/// pass; later blocked jobs get no reservation (they may still start when
/// that delays no reservation).
pub const CONSERVATIVE_MAX_RESERVATIONS: usize = 256;

/// What a policy sees and may change during one pass.
pub(crate) struct Pass<'a> {
    /// The pass's time.
    pub now: Millis,
    /// The pass's number (for the shapes' memos).
    pub epoch: u64,
    /// Nodes, queues, shapes.
    pub cluster: &'a mut Cluster,
    /// Every job, by slot.
    pub jobs: &'a IndexVec<JobSlot, Job>,
    /// Attempts in flight, by estimated end.
    pub running: &'a RunningSet,
    /// EASY's per-node usage at the shadow time.
    pub overlay: &'a mut Overlay,
    /// Conservative's reservations over time.
    pub profile: &'a mut Profile,
    /// The reservation to report (the head's, or the first made).
    pub last_head: &'a mut Option<(JobKey, Millis)>,
}

/// A job the walk offers a policy.
pub(crate) struct Candidate {
    /// The job's slot (its key is read only when needed: most jobs a pass
    /// walks neither start nor reserve, and reading every job's record would
    /// cost a pass over a deep queue dearly).
    pub slot: JobSlot,
    /// Its shape.
    pub sid: ShapeId,
    /// Its shape's memo for this pass, as it was before this job.
    pub memo: Memo,
    /// How long it is expected to run (its timeout, else its queue's
    /// estimate), ms.
    pub est: Millis,
}

impl Candidate {
    /// The job's key.
    fn key(&self, pass: &Pass) -> JobKey {
        pass.jobs[self.slot].spec.key
    }
}

/// One backfilling policy.
pub(crate) trait Policy {
    /// Nothing more starts in this pass.
    fn stopped(&self) -> bool {
        false
    }
    /// Where the job may start now (node slot per node index), if anywhere;
    /// may reserve for it when it cannot.
    fn place(&mut self, pass: &mut Pass, job: &Candidate) -> Option<Vec<NodeSlot>>;
    /// The job was started on `nodes`.
    fn started(&mut self, _pass: &Pass, _job: &Candidate, _nodes: &[NodeSlot]) {}
    /// Whether a shape that does not fit now is given up for the rest of
    /// the pass (within a pass nothing is freed).
    fn gives_up(&self) -> bool {
        true
    }
}

/// Strict priority order.
#[derive(Default)]
pub(crate) struct Fcfs {
    /// A job did not fit: nothing after it starts.
    blocked: bool,
}

impl Policy for Fcfs {
    fn stopped(&self) -> bool {
        self.blocked
    }

    fn place(&mut self, pass: &mut Pass, job: &Candidate) -> Option<Vec<NodeSlot>> {
        let nodes = pass.cluster.place_now(job.sid, pass.epoch);
        self.blocked = nodes.is_none();
        nodes
    }
}

/// EASY backfilling.
#[derive(Default)]
pub(crate) struct Easy {
    /// The head's shadow time, once a head is blocked.
    shadow: Option<Millis>,
    /// Attempts started in this pass before the head was found.
    fresh: Vec<FreshStart>,
}

impl Policy for Easy {
    fn place(&mut self, pass: &mut Pass, job: &Candidate) -> Option<Vec<NodeSlot>> {
        let (sid, epoch) = (job.sid, pass.epoch);
        match self.shadow {
            None => {
                let nodes = pass.cluster.place_now(sid, epoch);
                if nodes.is_none() {
                    // The head: its reservation, from what runs and what
                    // this pass started before it.
                    self.fresh.sort_by_key(|f| (f.0, f.1));
                    let shadow = easy_reservation(
                        pass.cluster,
                        pass.jobs,
                        pass.running,
                        &self.fresh,
                        pass.now,
                        sid,
                        pass.overlay,
                    )
                    .map_or(Millis::MAX, |r| r.shadow);
                    self.shadow = Some(shadow);
                    *pass.last_head = Some((job.key(pass), shadow));
                }
                nodes
            }
            Some(shadow) if pass.now.saturating_add(job.est) <= shadow => {
                // Ends by the shadow time: needs only to fit now.
                let nodes = pass.cluster.place_now(sid, epoch);
                for &n in nodes.iter().flatten() {
                    pass.overlay.entry(n, &pass.cluster.hot);
                }
                nodes
            }
            Some(_) if job.memo.nofit_extra => None,
            Some(_) => {
                // Runs past the shadow time: must fit in the extra.
                let nodes = pass.cluster.place_extra(sid, epoch, pass.overlay);
                if let Some(nodes) = &nodes {
                    let shape = &pass.cluster.shapes[sid];
                    for (i, &n) in nodes.iter().enumerate() {
                        let (alloc, gang) = shape.alloc(i);
                        pass.overlay.entry(n, &pass.cluster.hot).take(alloc, gang);
                    }
                }
                nodes
            }
        }
    }

    fn started(&mut self, pass: &Pass, job: &Candidate, nodes: &[NodeSlot]) {
        if self.shadow.is_none() {
            let end = pass.now.saturating_add(job.est);
            self.fresh
                .push((end, job.key(pass), job.sid, nodes.to_vec()));
        }
    }
}

/// Conservative backfilling.
#[derive(Default)]
pub(crate) struct Conservative {
    /// Reservations made in this pass.
    reservations: usize,
}

impl Policy for Conservative {
    fn place(&mut self, pass: &mut Pass, job: &Candidate) -> Option<Vec<NodeSlot>> {
        let (sid, est, now) = (job.sid, job.est, pass.now);
        let nodes = if job.memo.nofit_now || est >= job.memo.cons_fail_est {
            None
        } else {
            pass.cluster
                .place_conservative(sid, pass.epoch, est, pass.profile, pass.jobs)
        };
        let shape = &pass.cluster.shapes[sid];
        let view = (&pass.cluster.hot, &pass.cluster.meta, pass.jobs);
        if let Some(nodes) = &nodes {
            for (i, &n) in nodes.iter().enumerate() {
                let (alloc, gang) = shape.alloc(i);
                pass.profile.reserve(view, n, now, est, alloc, gang);
            }
        } else if self.reservations < CONSERVATIVE_MAX_RESERVATIONS {
            if let Some((t, at)) = pass.profile.earliest(pass.cluster, pass.jobs, sid, est) {
                let shape = &pass.cluster.shapes[sid];
                let view = (&pass.cluster.hot, &pass.cluster.meta, pass.jobs);
                for (i, &n) in at.iter().enumerate() {
                    let (alloc, gang) = shape.alloc(i);
                    pass.profile.reserve(view, n, t, est, alloc, gang);
                }
                self.reservations += 1;
                let key = job.key(pass);
                pass.last_head.get_or_insert((key, t));
            }
        }
        nodes
    }

    fn gives_up(&self) -> bool {
        // A shape that does not fit now may still get reservations.
        self.reservations >= CONSERVATIVE_MAX_RESERVATIONS
    }
}
