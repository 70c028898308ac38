//! The scheduler's configuration: listeners, state directory, ARNs,
//! backfilling, worker timing, keys, TLS and metrics.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Scheduler configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// State directory.
    pub state_dir: PathBuf,
    /// Region in ARNs.
    pub region: String,
    /// Account in ARNs.
    pub account: String,
    /// Backfilling policy.
    pub backfill: shoal_core::Backfill,
    /// Worker heartbeat timing.
    pub timing: Timing,
    /// Access keys: with some, every client request must carry a valid AWS
    /// SigV4 signature by one of them (worker protocol ops excepted). None:
    /// protected mode, any request is accepted and `listen` must be a
    /// loopback address unless `insecure_no_auth`.
    pub credentials: Option<shoal_sigv4::KeyStore>,
    /// Allow a non-loopback `listen` without credentials.
    pub insecure_no_auth: bool,
    /// Start a new, empty state where the state directory's database is
    /// gone (`--fresh-state`); without it such a start is refused.
    pub fresh_state: bool,
    /// The worker listener (mutual TLS); None: workers use the API listener.
    pub worker_tls: Option<crate::tls::WorkerTls>,
    /// The least `maxTimeSeconds` a queue's `jobStateTimeLimitActions` may
    /// give: AWS's 600, lowered for tests (`--min-state-time-limit-seconds`).
    pub min_state_time_limit_s: i64,
    /// The metrics listener (`GET /metrics`); None: no metrics served.
    pub metrics: Option<MetricsListen>,
    /// Where the state machine sends Slurm commands (MANAGED environments;
    /// set by [`crate::start`]; None: no Slurm thread).
    pub slurm_tx: Option<std::sync::mpsc::Sender<crate::slurm::Command>>,
}

/// Where the metrics are served.
#[derive(Debug, Clone, Copy)]
pub struct MetricsListen {
    /// The address.
    pub addr: SocketAddr,
    /// It is the default address, not the operator's choice: when it is
    /// taken (another scheduler on this machine), the scheduler runs
    /// without metrics and says so, rather than not at all.
    pub default: bool,
}

/// The metrics listener when the operator names none: loopback only.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9341);

/// How often workers poll, when a silent one is declared lost, and when
/// its tasks are surely gone (see `docs/FENCING.md`).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Workers poll at least this often.
    pub heartbeat_ms: u64,
    /// A worker silent for this long is lost: nothing new goes there.
    pub lost_after_ms: u64,
    /// A worker that has not heard from the scheduler for this long ends
    /// its tasks itself (its watchdog too, if the worker hangs).
    pub lease_ms: u64,
    /// Between the SIGTERM and the SIGKILL of a fenced task.
    pub fence_grace_ms: u64,
}

/// What the scheduler adds to a lost node's lease and kill grace before it
/// takes the node's tasks for gone: the watchdog's period, the time to
/// kill a cgroup, and the two clocks' drift.
pub const FENCE_MARGIN_MS: u64 = 1000;

/// The SIGTERM-to-SIGKILL grace of a fenced task.
pub const FENCE_GRACE_MS: u64 = 2000;

impl Timing {
    /// The timing of `--worker-timeout-ms`: polls at a fifth of it (50 ms
    /// to 1 s), leases as long as it.
    pub fn new(lost_after_ms: u64) -> Timing {
        Timing {
            heartbeat_ms: (lost_after_ms / 5).clamp(50, 1000),
            lost_after_ms,
            lease_ms: lost_after_ms,
            fence_grace_ms: FENCE_GRACE_MS,
        }
    }

    /// From a node's last contact, when every task it had is surely gone:
    /// lease, kill grace and margin.
    pub fn fence_ms(&self) -> u64 {
        self.lease_ms + self.fence_grace_ms + FENCE_MARGIN_MS
    }
}

impl Default for Timing {
    fn default() -> Self {
        Timing::new(10_000)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            state_dir: PathBuf::from("shoal-state"),
            region: "us-east-1".into(),
            account: "000000000000".into(),
            backfill: shoal_core::Backfill::Easy,
            timing: Timing::default(),
            credentials: None,
            insecure_no_auth: false,
            fresh_state: false,
            worker_tls: None,
            min_state_time_limit_s: shoal_model::STATE_TIME_LIMIT_MIN_S,
            metrics: None,
            slurm_tx: None,
        }
    }
}
