//! GetJobQueueSnapshot, and the start estimates behind it and behind
//! DescribeJobs' `shoalEstimatedStartAt`: a dry run of the core
//! ([`shoal_core::Core::estimate_starts`]), kept while the core is
//! unchanged, for at most [`ESTIMATE_MAX_AGE_MS`]. A dry run costs a pass
//! per attempt it ends: with a deep queue it is kept, changed core or
//! not, for [`ESTIMATE_COST_FACTOR`] times what it took, so that
//! estimates take at most about 1/[`ESTIMATE_COST_FACTOR`] of the state
//! thread (a job submitted meanwhile has none until the next run).

use std::collections::HashMap;

use super::{reply, Jobs, Registry, Shared};
use crate::api::ApiError;
use shoal_core::{JobKey, JobState, Millis, QueueId, StartEstimate};
use shoal_model as m;

/// Estimates older than this are recomputed even if the core is unchanged
/// (an attempt past its estimate is taken to end at the time of the run).
pub(super) const ESTIMATE_MAX_AGE_MS: u64 = 1_000;

/// A dry run is kept for this many times what it took.
pub(super) const ESTIMATE_COST_FACTOR: u32 = 20;

/// The last dry run.
#[derive(Debug, Default)]
pub(super) struct Estimates {
    /// The core's version it ran at.
    version: u64,
    /// When it ran (ms).
    at: u64,
    /// What it took.
    took: std::time::Duration,
    /// In the order the core would start the jobs.
    list: Vec<StartEstimate>,
    by_job: HashMap<JobKey, Option<Millis>>,
}

/// Per queue: each listed job's position in its last snapshot and since
/// when it holds it (`earliestTimeAtPosition`).
pub(super) type Positions = HashMap<QueueId, HashMap<JobKey, (usize, u64)>>;

impl Shared {
    /// The start estimates at `now`, from the cache when still good.
    pub(super) fn estimates(&mut self, now: u64) -> &Estimates {
        let version = self.core.version();
        let fresh = self.estimates.as_ref().is_some_and(|e| {
            let age = now.saturating_sub(e.at);
            let paid = (e.took * ESTIMATE_COST_FACTOR).as_millis() as u64;
            now >= e.at && (age < paid || (e.version == version && age < ESTIMATE_MAX_AGE_MS))
        });
        if !fresh {
            let started = std::time::Instant::now();
            let list = self.core.estimate_starts(now);
            let by_job = list.iter().map(|e| (e.job, e.start)).collect();
            self.estimates = Some(Estimates {
                version,
                at: now,
                took: started.elapsed(),
                list,
                by_job,
            });
        }
        self.estimates.get_or_insert_with(Estimates::default)
    }

    /// A job's estimated start (ms), if it waits and the dry run starts it.
    pub(super) fn estimated_start(&mut self, now: u64, job: JobKey) -> Option<Millis> {
        self.estimates(now).by_job.get(&job).copied().flatten()
    }
}

impl Registry {
    /// `GetJobQueueSnapshot`: the first 100 RUNNABLE jobs in the order
    /// the core will start them, and the capacity the queue uses.
    pub(super) fn queue_snapshot(
        &self,
        sh: &mut Shared,
        jobs: &Jobs,
        now: u64,
        r: m::GetJobQueueSnapshotRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let name = self.queue_name("jobQueue", &r.job_queue)?;
        let rec = &self.queues[&name];
        let queue = QueueId(rec.id);
        let fair = rec.detail.scheduling_policy_arn.is_some();
        let at = sh.estimates(now).at;
        let front: Vec<(JobKey, Option<Millis>)> = sh
            .estimates(now)
            .list
            .iter()
            .filter(|e| e.queue == queue && e.state == JobState::Runnable)
            .take(m::FRONT_OF_QUEUE_MAX)
            .map(|e| (e.job, e.start))
            .collect();
        let old = sh.positions.remove(&queue).unwrap_or_default();
        let mut positions = HashMap::with_capacity(front.len());
        let mut listed = Vec::with_capacity(front.len());
        for (i, (job, start)) in front.into_iter().enumerate() {
            let since = match old.get(&job) {
                Some(&(p, t)) if p == i => t,
                _ => at,
            };
            positions.insert(job, (i, since));
            let Some(id) = jobs.id_of(job) else { continue };
            listed.push(m::FrontOfQueueJobSummary {
                job_arn: sh.scope.job_arn(&id),
                earliest_time_at_position: Some(since as i64),
                shoal_estimated_start_at: start.map(|t| t as i64),
            });
        }
        sh.positions.insert(queue, positions);
        let vcpus = |q: f64| {
            vec![m::QueueSnapshotCapacityUsage {
                capacity_unit: "VCPU".into(),
                quantity: q,
            }]
        };
        let fairshare_utilization = fair.then(|| {
            let mut shares = sh.core.share_usage(queue, now);
            shares.retain(|s| s.running_vcpus > 0);
            shares.sort_by(|a, b| {
                b.running_vcpus
                    .cmp(&a.running_vcpus)
                    .then_with(|| a.identifier.cmp(&b.identifier))
            });
            m::FairshareUtilizationDetail {
                active_share_count: shares.len() as i64,
                top_capacity_utilization: shares
                    .into_iter()
                    .take(m::TOP_SHARES_MAX)
                    .map(|s| m::FairshareCapacityUtilization {
                        share_identifier: s.identifier,
                        capacity_usage: vcpus(s.running_vcpus as f64),
                    })
                    .collect(),
            }
        });
        reply(&m::GetJobQueueSnapshotResponse {
            front_of_queue: Some(m::FrontOfQueueDetail {
                jobs: listed,
                last_updated_at: Some(at as i64),
            }),
            queue_utilization: Some(m::QueueSnapshotUtilizationDetail {
                total_capacity_usage: vcpus(sh.core.queue_vcpus_in_use(queue) as f64),
                fairshare_utilization,
                last_updated_at: Some(now as i64),
            }),
        })
    }
}
