//! Timestamps along one job's path, for the breakdown of where a trivial
//! job's time goes (`shoal bench path`). With
//! `SHOAL_LOG=info,shoal_path=debug` the scheduler and the workers log one
//! line per step of each job: `job=ID step=NAME t_us=WALL-CLOCK-µs`
//! (scheduler and workers of one machine share the wall clock). Off, a
//! step costs one check of a cached flag.

/// The tracing target of the steps.
pub const TARGET: &str = "shoal_path";

/// Whether steps are being logged.
pub fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::DEBUG)
}

/// The wall clock in microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Log step `step` of job `job` now.
pub fn mark(job: &dyn std::fmt::Display, step: &str) {
    if enabled() {
        mark_at(job, step, now_us());
    }
}

/// Log step `step` of job `job` at `t_us` (from [`now_us`]).
pub fn mark_at(job: &dyn std::fmt::Display, step: &str, t_us: u64) {
    tracing::debug!(target: TARGET, job = %job, step, t_us);
}
