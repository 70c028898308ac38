//! Metrics of a simulated schedule.

use serde::Serialize;

use crate::workload::SimJob;

/// Bounded slowdown threshold τ, seconds.
pub const TAU_S: f64 = 10.0;

/// Metrics of one group of jobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// Jobs.
    pub jobs: u64,
    /// Σ(procs · actual) / (P · makespan).
    pub utilization: f64,
    /// Mean of start − submit.
    pub mean_wait_s: f64,
    /// Median wait (lower median).
    pub median_wait_s: f64,
    /// 95th percentile wait (nearest rank).
    pub p95_wait_s: f64,
    /// Largest wait.
    pub max_wait_s: f64,
    /// Mean of max(1, (wait + actual) / max(actual, τ)).
    pub mean_bounded_slowdown: f64,
    /// Last finish − first submit.
    pub makespan_s: u64,
}

/// Metrics of the jobs in one width bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WidthBucket {
    /// Smallest width in the bucket.
    pub min_procs: u32,
    /// Largest width in the bucket.
    pub max_procs: u32,
    /// Jobs.
    pub jobs: u64,
    /// Mean wait.
    pub mean_wait_s: f64,
    /// Mean bounded slowdown.
    pub mean_bounded_slowdown: f64,
}

fn nearest_rank(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

/// Bounded slowdown of one job.
pub fn bounded_slowdown(wait: u64, actual: u64) -> f64 {
    ((wait + actual) as f64 / (actual as f64).max(TAU_S)).max(1.0)
}

/// Metrics of a schedule on `procs` processors (`starts[i]` for `jobs[i]`).
pub fn compute(jobs: &[SimJob], starts: &[u64], procs: u32) -> Metrics {
    if jobs.is_empty() {
        return Metrics::default();
    }
    let mut waits: Vec<u64> = Vec::with_capacity(jobs.len());
    let mut bsld = 0.0;
    let mut area = 0.0;
    let mut first = u64::MAX;
    let mut last = 0;
    for (j, &s) in jobs.iter().zip(starts) {
        let w = s.saturating_sub(j.submit);
        waits.push(w);
        bsld += bounded_slowdown(w, j.actual);
        area += j.width as f64 * j.actual as f64;
        first = first.min(j.submit);
        last = last.max(s + j.actual);
    }
    let n = jobs.len() as f64;
    let mean_wait = waits.iter().map(|&w| w as f64).sum::<f64>() / n;
    waits.sort_unstable();
    let makespan = last.saturating_sub(first);
    Metrics {
        jobs: jobs.len() as u64,
        utilization: if makespan > 0 {
            area / (procs as f64 * makespan as f64)
        } else {
            0.0
        },
        mean_wait_s: mean_wait,
        median_wait_s: waits[(waits.len() - 1) / 2] as f64,
        p95_wait_s: nearest_rank(&waits, 0.95),
        max_wait_s: *waits.last().unwrap_or(&0) as f64,
        mean_bounded_slowdown: bsld / n,
        makespan_s: makespan,
    }
}

/// Mean wait and bounded slowdown by width bucket: 1, 2, 3–4, 5–8, … (powers
/// of two), empty buckets left out.
pub fn by_width(jobs: &[SimJob], starts: &[u64]) -> Vec<WidthBucket> {
    let mut acc: Vec<(u64, f64, f64)> = vec![(0, 0.0, 0.0); 33];
    for (j, &s) in jobs.iter().zip(starts) {
        let b = if j.width <= 1 {
            0
        } else {
            (32 - (j.width - 1).leading_zeros()) as usize
        };
        let w = s.saturating_sub(j.submit);
        acc[b].0 += 1;
        acc[b].1 += w as f64;
        acc[b].2 += bounded_slowdown(w, j.actual);
    }
    acc.iter()
        .enumerate()
        .filter(|(_, a)| a.0 > 0)
        .map(|(b, a)| {
            let (lo, hi) = if b == 0 {
                (1, 1)
            } else {
                (
                    (1u64 << (b - 1)) as u32 + 1,
                    (1u64 << b).min(u32::MAX as u64) as u32,
                )
            };
            WidthBucket {
                min_procs: lo,
                max_procs: hi,
                jobs: a.0,
                mean_wait_s: a.1 / a.0 as f64,
                mean_bounded_slowdown: a.2 / a.0 as f64,
            }
        })
        .collect()
}

/// Mean wait and bounded slowdown of the jobs of one share.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShareBucket {
    /// The share identifier.
    pub share: String,
    /// Jobs.
    pub jobs: u64,
    /// Mean wait.
    pub mean_wait_s: f64,
    /// Mean bounded slowdown.
    pub mean_bounded_slowdown: f64,
    /// Σ width × actual: the processor-seconds it got.
    pub proc_seconds: u64,
}

/// Mean wait and bounded slowdown per share, `share(job)` naming each
/// job's, by share identifier.
pub fn by_share(
    jobs: &[SimJob],
    starts: &[u64],
    share: impl Fn(&SimJob) -> String,
) -> Vec<ShareBucket> {
    let mut acc: std::collections::BTreeMap<String, (u64, f64, f64, u64)> = Default::default();
    for (j, &s) in jobs.iter().zip(starts) {
        let w = s.saturating_sub(j.submit);
        let a = acc.entry(share(j)).or_default();
        a.0 += 1;
        a.1 += w as f64;
        a.2 += bounded_slowdown(w, j.actual);
        a.3 += u64::from(j.width) * j.actual;
    }
    acc.into_iter()
        .map(|(share, a)| ShareBucket {
            share,
            jobs: a.0,
            mean_wait_s: a.1 / a.0 as f64,
            mean_bounded_slowdown: a.2 / a.0 as f64,
            proc_seconds: a.3,
        })
        .collect()
}
