//! Prometheus metrics (`prometheus-client`), served as OpenMetrics text on
//! `GET /metrics` of the metrics listener (`--metrics-listen`).
//!
//! Two kinds: what happens (the scheduling pass's duration, the group
//! commit's size and duration, SubmitJob's latency: histograms kept here
//! and observed by the actor and the HTTP handlers), and what is (nodes,
//! compute environments, jobs, shares, workers' poll lag, /dev/shm peaks:
//! read from the state at each scrape, [`crate::state::Gauges`]). Names
//! follow the Slurm exporters' manner: `shoal_nodes{state}`,
//! `shoal_queue_jobs{queue,state}`, `shoal_scheduler_pass_seconds`.

use crate::state::gauges::{Amounts, NODE_STATES};
use crate::state::Gauges;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// The content type of a scrape's reply.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const MIB: f64 = 1024.0 * 1024.0;

/// The histograms, shared by the actor and the HTTP handlers.
#[derive(Debug, Clone)]
pub struct Metrics {
    pass_seconds: Histogram,
    commit_seconds: Histogram,
    commit_requests: Histogram,
    commit_rows: Histogram,
    submit_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            // 10 µs to 2.6 s.
            pass_seconds: Histogram::new(exponential_buckets(1e-5, 4.0, 10)),
            // 100 µs to 6.6 s.
            commit_seconds: Histogram::new(exponential_buckets(1e-4, 4.0, 9)),
            commit_requests: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            commit_rows: Histogram::new(exponential_buckets(1.0, 4.0, 9)),
            submit_seconds: Histogram::new(exponential_buckets(1e-4, 4.0, 9)),
        }
    }
}

type Labels = Vec<(&'static str, String)>;
type IntFamily = Family<Labels, Gauge>;
type FloatFamily = Family<Labels, Gauge<f64, AtomicU64>>;

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Metrics {
    /// A scheduling pass took `d`.
    pub fn observe_pass(&self, d: Duration) {
        self.pass_seconds.observe(d.as_secs_f64());
    }

    /// A group commit of `requests` requests wrote `rows` rows in `d`.
    pub fn observe_commit(&self, requests: usize, rows: usize, d: Duration) {
        self.commit_requests.observe(requests as f64);
        self.commit_rows.observe(rows as f64);
        self.commit_seconds.observe(d.as_secs_f64());
    }

    /// A SubmitJob was answered (committed) `d` after it arrived.
    pub fn observe_submit(&self, d: Duration) {
        self.submit_seconds.observe(d.as_secs_f64());
    }

    /// Everything, as OpenMetrics text, with the state `g`.
    pub fn encode(&self, g: &Gauges) -> String {
        let mut reg = Registry::default();
        self.register_histograms(&mut reg);
        register_nodes(&mut reg, g);
        register_compute_environments(&mut reg, g);
        register_jobs(&mut reg, g);
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &reg) {
            tracing::error!("cannot encode the metrics: {e}");
        }
        out
    }

    fn register_histograms(&self, reg: &mut Registry) {
        reg.register(
            "shoal_scheduler_pass_seconds",
            "Duration of the scheduling core's passes",
            self.pass_seconds.clone(),
        );
        reg.register(
            "shoal_commit_seconds",
            "Duration of the group commits to the state database",
            self.commit_seconds.clone(),
        );
        reg.register(
            "shoal_commit_batch_requests",
            "API requests acknowledged by one group commit",
            self.commit_requests.clone(),
        );
        reg.register(
            "shoal_commit_batch_rows",
            "Rows written or deleted by one group commit",
            self.commit_rows.clone(),
        );
        reg.register(
            "shoal_submit_seconds",
            "SubmitJob latency: from the request to its committed reply",
            self.submit_seconds.clone(),
        );
    }
}

fn ints(reg: &mut Registry, name: &str, help: &str, rows: impl IntoIterator<Item = (Labels, u64)>) {
    let f = IntFamily::default();
    for (labels, v) in rows {
        f.get_or_create(&labels).set(int(v));
    }
    reg.register(name, help, f);
}

fn floats(
    reg: &mut Registry,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, f64)>,
) {
    let f = FloatFamily::default();
    for (labels, v) in rows {
        f.get_or_create(&labels).set(v);
    }
    reg.register(name, help, f);
}

/// vCPUs, memory and /dev/shm, total and allocated, of things `key`
/// names (`node`, `compute_environment`).
fn resources<'a>(
    reg: &mut Registry,
    prefix: &str,
    what: &str,
    key: &'static str,
    rows: impl Iterator<Item = (&'a str, Amounts, Amounts)> + Clone,
) {
    let pick = |f: fn(&Amounts) -> f64, total: bool| {
        rows.clone().map(move |(name, t, a)| {
            (
                vec![(key, name.to_string())],
                f(if total { &t } else { &a }),
            )
        })
    };
    let vcpus = |a: &Amounts| a.vcpus as f64;
    let memory = |a: &Amounts| a.memory_mib as f64 * MIB;
    let shm = |a: &Amounts| a.shm_mib as f64 * MIB;
    floats(
        reg,
        &format!("{prefix}_cpus"),
        &format!("vCPUs {what} offers"),
        pick(vcpus, true),
    );
    floats(
        reg,
        &format!("{prefix}_cpus_allocated"),
        &format!("vCPUs of {what} held by attempts"),
        pick(vcpus, false),
    );
    floats(
        reg,
        &format!("{prefix}_memory_bytes"),
        &format!("Memory {what} offers"),
        pick(memory, true),
    );
    floats(
        reg,
        &format!("{prefix}_memory_allocated_bytes"),
        &format!("Memory of {what} held by attempts"),
        pick(memory, false),
    );
    floats(
        reg,
        &format!("{prefix}_shm_bytes"),
        &format!("/dev/shm {what} offers"),
        pick(shm, true),
    );
    floats(
        reg,
        &format!("{prefix}_shm_allocated_bytes"),
        &format!("/dev/shm of {what} held by attempts"),
        pick(shm, false),
    );
}

fn register_nodes(reg: &mut Registry, g: &Gauges) {
    ints(
        reg,
        "shoal_nodes",
        "Worker nodes by state (as shoal nodes shows them)",
        NODE_STATES.iter().map(|s| {
            let n = g.nodes.iter().filter(|n| n.state == *s).count() as u64;
            (vec![("state", s.to_string())], n)
        }),
    );
    resources(
        reg,
        "shoal_node",
        "a node",
        "node",
        g.nodes
            .iter()
            .map(|n| (n.name.as_str(), n.total, n.allocated)),
    );
    floats(
        reg,
        "shoal_worker_poll_lag_seconds",
        "Seconds since the node's worker last polled",
        g.nodes
            .iter()
            .map(|n| (vec![("node", n.name.clone())], n.poll_lag_s)),
    );
}

fn register_compute_environments(reg: &mut Registry, g: &Gauges) {
    const KEY: &str = "compute_environment";
    ints(
        reg,
        "shoal_compute_environment_nodes",
        "Nodes a compute environment selects that are not DOWN",
        g.compute_environments
            .iter()
            .map(|c| (vec![(KEY, c.name.clone())], c.nodes)),
    );
    resources(
        reg,
        "shoal_compute_environment",
        "a compute environment's nodes (not DOWN)",
        KEY,
        g.compute_environments
            .iter()
            .map(|c| (c.name.as_str(), c.total, c.allocated)),
    );
}

fn register_jobs(reg: &mut Registry, g: &Gauges) {
    ints(
        reg,
        "shoal_queue_jobs",
        "Jobs by queue and state (array children counted, not their parents)",
        g.queue_jobs
            .iter()
            .map(|(q, s, n)| (vec![("queue", q.clone()), ("state", s.to_string())], *n)),
    );
    ints(
        reg,
        "shoal_queue_runnable_jobs",
        "RUNNABLE jobs by queue and why they wait (AWS's codes; OTHER: no code)",
        g.runnable
            .iter()
            .map(|(q, r, n)| (vec![("queue", q.clone()), ("reason", r.to_string())], *n)),
    );
    let share = |s: &crate::state::gauges::ShareGauge| {
        vec![("queue", s.queue.clone()), ("share", s.share.clone())]
    };
    floats(
        reg,
        "shoal_share_usage_vcpu_seconds",
        "A share's decayed vCPU-seconds (fair-share queues)",
        g.shares.iter().map(|s| (share(s), s.usage)),
    );
    floats(
        reg,
        "shoal_share_weighted_usage",
        "A share's usage times its weightFactor: the lowest goes next",
        g.shares.iter().map(|s| (share(s), s.weighted)),
    );
    ints(
        reg,
        "shoal_share_cpus_running",
        "vCPUs a share's attempts in flight hold",
        g.shares.iter().map(|s| (share(s), s.running_vcpus)),
    );
    floats(
        reg,
        "shoal_job_shm_peak_bytes",
        "Highest /dev/shm use so far of each node of a running job",
        g.shm.iter().map(|s| {
            (
                vec![
                    ("job_id", s.job_id.clone()),
                    ("queue", s.queue.clone()),
                    ("node", s.node.clone()),
                    ("node_index", s.node_index.to_string()),
                ],
                s.peak_mib as f64 * MIB,
            )
        }),
    );
}
