//! `shoal`: one binary for every role: scheduler daemon, client commands and
//! benchmarks.

/// `println!` for daemons: a closed stdout is ignored, not a panic (see
/// `main`).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($t)*);
        let _ = out.flush();
    }};
}

/// `eprintln!` for daemons: a closed stderr is ignored.
macro_rules! say_err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

mod commands;
mod export;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "shoal",
    version,
    about = "A batch scheduler for tightly coupled HPC jobs, with AWS Batch's API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
pub struct Endpoint {
    /// The scheduler's URL.
    #[arg(long, env = "SHOAL_ENDPOINT", default_value = shoal_client::DEFAULT_ENDPOINT, global = true)]
    pub endpoint: String,
    /// Sign requests with the first key of this file (lines `ACCESS_KEY_ID
    /// SECRET`). Without it, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
    /// (and AWS_SESSION_TOKEN) are used if set; with neither, requests go
    /// unsigned, which only a scheduler without credentials accepts.
    #[arg(long, env = shoal_client::CREDENTIALS_ENV, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
}

impl Endpoint {
    /// A client for this endpoint, with these keys.
    pub fn client(&self) -> Result<shoal_client::Client> {
        Ok(shoal_client::Client::with_credentials(
            &self.endpoint,
            shoal_client::credentials(self.credentials.as_deref())?,
        )?)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the scheduler daemon (HTTP API + state database).
    Scheduler(SchedulerArgs),
    /// Register a job definition (AWS Batch RegisterJobDefinition JSON).
    Register {
        /// The JSON file.
        file: PathBuf,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Submit a job.
    Submit(commands::SubmitArgs),
    /// List jobs, like squeue (all unfinished jobs by default).
    Jobs(commands::JobsArgs),
    /// Print DescribeJobs JSON for jobs.
    Describe {
        /// Job ids (`ID`, `ID:INDEX` for array children, `ID#NODE` for nodes).
        #[arg(required = true)]
        jobs: Vec<String>,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Cancel jobs that have not started (they end FAILED with the reason);
    /// a job that has started is not cancelled: terminate it.
    Cancel {
        /// The jobs.
        #[arg(required = true)]
        jobs: Vec<String>,
        /// Why.
        #[arg(long, default_value = "cancelled by the user")]
        reason: String,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Terminate jobs, killing them if they run (they end FAILED with the reason).
    Terminate {
        /// The jobs.
        #[arg(required = true)]
        jobs: Vec<String>,
        /// Why.
        #[arg(long, default_value = "terminated by the user")]
        reason: String,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// List job queues.
    Queues {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// List worker nodes, like sinfo.
    Nodes {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Drain a node: nothing new is placed there (what runs goes on), like
    /// `scontrol update state=drain`.
    Drain {
        /// The node.
        node: String,
        /// Why (shown in `shoal nodes`).
        #[arg(long, default_value = "drained by an operator")]
        reason: String,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Let a drained node take jobs again.
    Resume {
        /// The node.
        node: String,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Forget a DOWN node that is gone for good (it comes back if its
    /// worker registers again).
    RemoveNode {
        /// The node.
        node: String,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Run a worker: register with the scheduler and run its tasks.
    Worker(Box<WorkerArgs>),
    /// Print the output of a job (`ID`, `ID:INDEX`, or `ID#NODE`).
    Logs {
        /// The job, or one node of a multinode job.
        job: String,
        /// Keep printing new output until the job ends.
        #[arg(long, short = 'f')]
        follow: bool,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// A local multi-node cluster: a scheduler and one worker per network namespace.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Container images in a worker's cache.
    #[command(subcommand)]
    Image(ImageCommand),
    /// The cluster's certificate authority, for mutual TLS between the
    /// scheduler and its workers.
    #[command(subcommand)]
    Ca(CaCommand),
    /// The worker's watchdog (started by `shoal worker`): fences the
    /// worker's task cgroups when the lease in LEASE runs out, even if the
    /// worker hangs.
    #[command(hide = true)]
    WorkerWatchdog {
        /// The lease file the worker writes.
        #[arg(long)]
        lease: PathBuf,
        /// The worker's cgroup directories (their subdirectories are tasks).
        #[arg(long = "cgroup")]
        cgroups: Vec<PathBuf>,
    },
    /// Open MPI's remote launch agent (instead of ssh): run CMD inside this
    /// job's task on the node at HOST. Set for jobs as OMPI_MCA_plm_rsh_agent.
    #[command(hide = true)]
    LaunchAgent {
        /// The node's address (from the hostfile).
        host: String,
        /// The command line to run there.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Write the scheduler's finished jobs as a Standard Workload Format trace
    /// (for `shoal plan`).
    Export {
        /// SWF output (the only format).
        #[arg(long)]
        swf: bool,
        /// Only jobs created at or after this time (epoch milliseconds).
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Write here instead of stdout.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Capacity planning: replay a workload trace (SWF) through the
    /// scheduling core on what-if clusters.
    Plan(shoal_planner::PlanArgs),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(shoal_benches::BenchCommand),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Put an image into a worker's cache without a registry (for sites
    /// that reach none): a `docker save` archive, an OCI archive or an OCI
    /// layout directory. Jobs then name it as their `image`.
    Load {
        /// The archive or layout.
        archive: PathBuf,
        /// The name jobs give it, REGISTRY/REPOSITORY:TAG (default: the
        /// one the archive carries).
        #[arg(long)]
        name: Option<String>,
        /// The worker's state directory (its `--state`).
        #[arg(long, default_value = "shoal-worker")]
        state: PathBuf,
    },
}

#[derive(clap::Subcommand)]
enum ClusterCommand {
    /// Build the cluster and run it in the foreground until SIGTERM or Ctrl-C.
    /// The first line of output is `endpoint: URL`; `ready: N nodes` follows
    /// once every worker has registered.
    Up {
        /// Number of nodes.
        #[arg(long, default_value_t = 2)]
        nodes: u32,
        /// vCPUs per node (disjoint cpusets; oversubscribed with a warning
        /// when nodes × cpus exceeds the CPUs here).
        #[arg(long, default_value_t = 1)]
        cpus_per_node: u32,
        /// Memory per node, MiB (default: the machine's).
        #[arg(long)]
        memory_per_node: Option<u64>,
        /// Directory for state and logs.
        #[arg(long, default_value = "shoal-cluster")]
        dir: PathBuf,
        /// Third octet of the nodes' 10.201.X.0/24 subnet (default: from the pid).
        #[arg(long)]
        subnet: Option<u8>,
        /// A registry the workers reach over plain HTTP, HOST:PORT (repeat
        /// for more). A registry on this machine must listen where the nodes
        /// reach it: the bridge address (the scheduler's, in the
        /// `endpoint:` line).
        #[arg(long, value_name = "HOST:PORT")]
        insecure_registry: Vec<String>,
    },
    /// Stop the cluster running in DIR and remove everything it made.
    Down {
        /// Its directory.
        #[arg(long, default_value = "shoal-cluster")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Create a CA in DIR: DIR/ca.pem and DIR/ca.key (mode 0600).
    Init {
        /// The CA directory (created if missing).
        dir: PathBuf,
        /// Replace a CA already there (what it issued is no longer trusted).
        #[arg(long)]
        force: bool,
    },
    /// Issue a certificate for NAME signed by the CA in DIR: DIR/NAME.pem and
    /// DIR/NAME.key (0600). A worker's NAME is its node name (--name); the
    /// scheduler's is `scheduler`, with the addresses workers reach it at.
    Issue {
        /// The CA directory.
        dir: PathBuf,
        /// Who it is for: the certificate's CN and the files' name.
        name: String,
        /// An IP address for the certificate (repeatable).
        #[arg(long = "ip")]
        ips: Vec<std::net::IpAddr>,
        /// A DNS name for the certificate (repeatable).
        #[arg(long = "dns")]
        dns: Vec<String>,
        /// Replace NAME's certificate and key if they exist.
        #[arg(long)]
        force: bool,
    },
}

#[derive(clap::Args)]
struct WorkerArgs {
    /// The scheduler's URL.
    #[arg(long, env = "SHOAL_ENDPOINT", default_value = shoal_client::DEFAULT_ENDPOINT)]
    scheduler: String,
    /// This node's name (unique in the cluster).
    #[arg(long)]
    name: String,
    /// Offer this many vCPUs (the first N CPUs this process may use).
    #[arg(long, conflicts_with = "cpuset")]
    cpus: Option<u32>,
    /// Offer exactly these CPUs, e.g. 0-3,6.
    #[arg(long)]
    cpuset: Option<String>,
    /// Offer this much memory, MiB (default: the machine's).
    #[arg(long)]
    memory: Option<u64>,
    /// Labels, k=v,k2=v2 (matched by compute environments' shoal:label:KEY tags).
    #[arg(long, default_value = "")]
    labels: String,
    /// The address other nodes reach this one at; `auto`: the one this
    /// node reaches the scheduler from.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// Run a job as root when its definition asks for it (`user`: root).
    /// Without this, such jobs fail with a reason saying so.
    #[arg(long)]
    allow_root_jobs: bool,
    /// The user of jobs whose definition names none (default, when the
    /// worker is root: a transient uid of each task's own, so that such jobs
    /// cannot reach each other; never root).
    #[arg(long)]
    job_user: Option<String>,
    /// A host directory job volumes may come from (repeat for more);
    /// volumes elsewhere are refused.
    #[arg(long, value_name = "DIR")]
    allow_volume: Vec<PathBuf>,
    /// A device jobs may name in linuxParameters.devices (repeat for more).
    #[arg(long, value_name = "PATH")]
    allow_device: Vec<PathBuf>,
    /// At most this many processes and threads per job node (cgroup pids;
    /// 0: no limit), so that a fork bomb stops at its own cgroup.
    #[arg(long, default_value_t = 16384)]
    max_job_processes: u64,
    /// Port of the worker's log server (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where task directories (logs, hostfiles) go.
    #[arg(long, default_value = "shoal-worker")]
    state: PathBuf,
    /// Join this network namespace (`ip netns` name) before anything else.
    #[arg(long)]
    netns: Option<String>,
    /// Mutual TLS with the scheduler's worker listener (--scheduler
    /// https://…): DIR/ca.pem, DIR/NAME.pem and DIR/NAME.key (NAME: --name).
    #[arg(long)]
    tls_dir: Option<PathBuf>,
    /// The cluster CA's certificate (instead of TLS_DIR/ca.pem).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// This node's certificate (instead of TLS_DIR/NAME.pem).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// This node's private key (instead of TLS_DIR/NAME.key).
    #[arg(long)]
    key: Option<PathBuf>,
    /// How long a launch-agent request waits for its job's task to start here.
    #[arg(long, default_value_t = 30_000, hide = true)]
    exec_wait_ms: u64,
    /// On SIGTERM, how long the jobs get between their SIGTERM and SIGKILL
    /// (seconds; as ECS's stop timeout).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    stop_grace: u64,
    /// Run jobs whose definition names an `image` inside it (on), or fail
    /// them with CannotPullContainerError (off).
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    images: OnOff,
    /// A registry reached over plain HTTP, HOST:PORT (repeat for more).
    #[arg(long, value_name = "HOST:PORT")]
    insecure_registry: Vec<String>,
    /// Registry credentials: a Docker-style config.json (`auths`).
    #[arg(long, value_name = "FILE")]
    registry_auth: Option<PathBuf>,
    /// The most the unpacked images may hold, MiB; the least recently
    /// used go first, never one a job is using (default: no limit).
    #[arg(long, value_name = "MIB")]
    image_cache_mib: Option<u64>,
}

/// A switch.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(clap::Args)]
struct SchedulerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// State directory (holds the SQLite database).
    #[arg(long, default_value = "shoal-state")]
    state: PathBuf,
    /// Region used in ARNs.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Account id used in ARNs.
    #[arg(long, default_value = "000000000000")]
    account: String,
    /// Backfilling policy.
    #[arg(long, value_enum, default_value = "easy")]
    backfill: commands::BackfillArg,
    /// Declare a worker lost after this many milliseconds without a poll.
    #[arg(long, default_value_t = 10_000)]
    worker_timeout_ms: u64,
    /// Access keys, one `ACCESS_KEY_ID SECRET` per line (`#` comments and
    /// blank lines allowed). With keys, every client request (AWS Batch ops,
    /// listnodes, logs, …; not the worker protocol) must carry a valid AWS
    /// Signature Version 4 by one of them. Without --credentials, this
    /// process's AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are the one key
    /// if both are set (the environment is not read when --credentials is
    /// given). With no keys at all (protected mode), any request is accepted
    /// and only a loopback --listen address is allowed.
    #[arg(long, value_name = "FILE")]
    credentials: Option<PathBuf>,
    /// Without keys, listen on a non-loopback address anyway: anyone who can
    /// reach it can submit jobs. Insecure; prefer --credentials.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Begin a new, empty state although the state directory's database is
    /// missing, empty or short of commits it acknowledged (the scheduler
    /// refuses to start otherwise). Every job it knew is forgotten and what
    /// the workers still run is killed; the remains are kept beside it.
    #[arg(long)]
    fresh_state: bool,
    /// The least maxTimeSeconds a queue's jobStateTimeLimitActions may give
    /// (AWS's minimum is 600 s; lower it for tests only).
    #[arg(long, default_value_t = shoal_model::STATE_TIME_LIMIT_MIN_S, value_parser = clap::value_parser!(i64).range(1..=86_400))]
    min_state_time_limit_seconds: i64,
    /// Serve the worker protocol on this address over mutual TLS (needs
    /// --tls-dir); the API listener then refuses workers.
    #[arg(long, requires = "tls_dir")]
    worker_listen: Option<SocketAddr>,
    /// The worker listener's certificates: DIR/ca.pem (workers' certificates
    /// must be signed by it), DIR/scheduler.pem and DIR/scheduler.key.
    #[arg(long, requires = "worker_listen")]
    tls_dir: Option<PathBuf>,
    /// Serve Prometheus metrics on GET /metrics of this address, `none`
    /// for none [default: 127.0.0.1:9341; taken, the scheduler runs
    /// without metrics and says so]. They need no signature: keep a
    /// non-loopback address on a network only your monitoring reaches.
    #[arg(long, value_name = "ADDR|none")]
    metrics_listen: Option<String>,
}

/// `--metrics-listen`: the address, the default one, or none.
fn metrics_listen(given: Option<&str>) -> Result<Option<shoal_scheduler::MetricsListen>> {
    Ok(match given {
        None => Some(shoal_scheduler::MetricsListen {
            addr: shoal_scheduler::DEFAULT_METRICS_LISTEN,
            default: true,
        }),
        Some("none") => None,
        Some(a) => Some(shoal_scheduler::MetricsListen {
            addr: a.parse().map_err(|_| {
                anyhow::anyhow!(
                    "--metrics-listen {a:?}: expected ADDRESS:PORT (e.g. 127.0.0.1:9341) or none"
                )
            })?,
            default: false,
        }),
    })
}

/// The scheduler's keys: `--credentials FILE`, else AWS_ACCESS_KEY_ID and
/// AWS_SECRET_ACCESS_KEY, else none.
fn scheduler_keys(file: Option<&std::path::Path>) -> Result<Option<shoal_sigv4::KeyStore>> {
    use shoal_sigv4::KeyStore;
    if let Some(f) = file {
        return Ok(Some(KeyStore::from_file(f)?));
    }
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            if id.contains(['/', ',']) || !id.bytes().all(|b| b.is_ascii_graphic()) {
                anyhow::bail!("AWS_ACCESS_KEY_ID must be printable ASCII without `/` or `,`");
            }
            Ok(Some(KeyStore::single(&id, &secret, "the environment (AWS_ACCESS_KEY_ID)")))
        }
        (None, None) => Ok(None),
        _ => anyhow::bail!(
            "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set; set both (or neither), or pass --credentials FILE"
        ),
    }
}

/// A worker's TLS files: --ca/--cert/--key, each defaulting to its file in
/// --tls-dir; none of them: plain HTTP.
fn worker_tls(
    dir: Option<PathBuf>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    name: &str,
) -> Result<Option<shoal_worker::pki::TlsFiles>> {
    if dir.is_none() && ca.is_none() && cert.is_none() && key.is_none() {
        return Ok(None);
    }
    let from_dir = dir
        .as_deref()
        .map(|d| shoal_worker::pki::TlsFiles::in_dir(d, name));
    let pick =
        |given: Option<PathBuf>, flag: &str, f: fn(&shoal_worker::pki::TlsFiles) -> PathBuf| {
            given.or_else(|| from_dir.as_ref().map(f)).ok_or_else(|| {
                anyhow::anyhow!("give --{flag} (or --tls-dir DIR with all three files)")
            })
        };
    Ok(Some(shoal_worker::pki::TlsFiles {
        ca: pick(ca, "ca", |f| f.ca.clone())?,
        cert: pick(cert, "cert", |f| f.cert.clone())?,
        key: pick(key, "key", |f| f.key.clone())?,
    }))
}

impl Command {
    /// Long-running processes: they outlive whatever reads their output.
    fn is_daemon(&self) -> bool {
        matches!(
            self,
            Command::Scheduler(_)
                | Command::Worker(_)
                | Command::WorkerWatchdog { .. }
                | Command::Cluster(ClusterCommand::Up { .. })
        )
    }
}

fn main() {
    use std::io::IsTerminal;
    // An empty SHOAL_CREDENTIALS= means no keys (not a file named "").
    if std::env::var_os(shoal_client::CREDENTIALS_ENV).is_some_and(|v| v.is_empty()) {
        std::env::remove_var(shoal_client::CREDENTIALS_ENV);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHOAL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    if !cli.command.is_daemon() {
        // A client's output piped into `head` ends it quietly, as it does
        // other Unix tools, instead of a panic on the closed pipe. Daemons
        // keep SIGPIPE ignored (a worker must not die, and take its jobs
        // with it, because a log reader went away) and write their output
        // through `say!`, which ignores a closed stdout.
        // SAFETY: no other thread exists yet.
        unsafe {
            let _ = nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            );
        }
    }
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Scheduler(a) => {
            let config = shoal_scheduler::Config {
                listen: a.listen,
                state_dir: a.state,
                region: a.region,
                account: a.account,
                backfill: a.backfill.into(),
                timing: shoal_scheduler::Timing::new(a.worker_timeout_ms),
                credentials: scheduler_keys(a.credentials.as_deref())?,
                insecure_no_auth: a.insecure_no_auth,
                fresh_state: a.fresh_state,
                min_state_time_limit_s: a.min_state_time_limit_seconds,
                metrics: metrics_listen(a.metrics_listen.as_deref())?,
                worker_tls: match (a.worker_listen, a.tls_dir) {
                    (Some(listen), Some(dir)) => {
                        let f = shoal_worker::pki::TlsFiles::in_dir(
                            &dir,
                            shoal_worker::pki::SCHEDULER_NAME,
                        );
                        Some(shoal_scheduler::tls::WorkerTls {
                            listen,
                            ca: f.ca,
                            cert: f.cert,
                            key: f.key,
                        })
                    }
                    _ => None,
                },
                slurm_tx: None,
            };
            commands::scheduler(config)?;
            Ok(0)
        }
        Command::Register { file, endpoint } => commands::register(&endpoint, &file),
        Command::Submit(a) => commands::submit(a),
        Command::Jobs(a) => commands::jobs(a),
        Command::Describe { jobs, endpoint } => commands::describe(&endpoint, &jobs),
        Command::Cancel {
            jobs,
            reason,
            endpoint,
        } => commands::cancel(&endpoint, false, &jobs, &reason),
        Command::Terminate {
            jobs,
            reason,
            endpoint,
        } => commands::cancel(&endpoint, true, &jobs, &reason),
        Command::Queues { json, endpoint } => commands::queues(&endpoint, json),
        Command::Nodes { json, endpoint } => commands::nodes(&endpoint, json),
        Command::Drain {
            node,
            reason,
            endpoint,
        } => commands::node_op(&endpoint, commands::NodeOp::Drain(reason), &node),
        Command::Resume { node, endpoint } => {
            commands::node_op(&endpoint, commands::NodeOp::Resume, &node)
        }
        Command::RemoveNode { node, endpoint } => {
            commands::node_op(&endpoint, commands::NodeOp::Remove, &node)
        }
        Command::Bench(b) => shoal_benches::run(b),
        Command::WorkerWatchdog { lease, cgroups } => {
            shoal_worker::fence::watchdog(&lease, &cgroups)?;
            Ok(0)
        }
        Command::Worker(a) => {
            let mut labels = std::collections::BTreeMap::new();
            for kv in a.labels.split(',').filter(|s| !s.is_empty()) {
                let Some((k, v)) = kv.split_once('=') else {
                    anyhow::bail!("--labels {kv:?}: expected key=value");
                };
                labels.insert(k.to_string(), v.to_string());
            }
            let name = a.name.clone();
            let config = shoal_worker::WorkerConfig {
                scheduler: a.scheduler,
                name: a.name,
                cpuset: a
                    .cpuset
                    .as_deref()
                    .map(shoal_worker::capacity::CpuSet::parse)
                    .transpose()?,
                cpus: a.cpus,
                memory_mib: a.memory,
                labels,
                address: a.address,
                port: a.port,
                state_dir: a.state,
                netns: a.netns,
                policy: shoal_worker::policy::JobPolicy {
                    allow_root: a.allow_root_jobs,
                    job_user: a.job_user,
                    volumes: a.allow_volume,
                    devices: a.allow_device,
                    max_processes: (a.max_job_processes > 0).then_some(a.max_job_processes),
                },
                tls: worker_tls(a.tls_dir, a.ca, a.cert, a.key, &name)?,
                exec_wait: std::time::Duration::from_millis(a.exec_wait_ms),
                stop_grace: std::time::Duration::from_secs(a.stop_grace),
                images: shoal_worker::images::ImageSettings {
                    disabled: a.images == OnOff::Off,
                    insecure: a.insecure_registry,
                    auth_file: a.registry_auth,
                    cache_mib: a.image_cache_mib,
                },
            };
            shoal_worker::run(config)?;
            Ok(0)
        }
        Command::Logs {
            job,
            follow,
            endpoint,
        } => commands::logs(&endpoint, &job, follow),
        Command::Cluster(ClusterCommand::Up {
            nodes,
            cpus_per_node,
            memory_per_node,
            dir,
            subnet,
            insecure_registry,
        }) => {
            let config = shoal_worker::cluster::ClusterConfig {
                nodes,
                cpus_per_node,
                memory_mib: memory_per_node,
                dir,
                subnet,
                shoal: std::env::current_exe()?,
                insecure_registries: insecure_registry,
            };
            commands::cluster_up(config)
        }
        Command::Image(ImageCommand::Load {
            archive,
            name,
            state,
        }) => {
            let name = name
                .map(|n| shoal_model::ImageRef::parse("--name", &n))
                .transpose()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let images =
                shoal_worker::images::Images::new(state.join("images"), Default::default());
            let (name, digest) = images.load(&archive, name.as_ref())?;
            println!("loaded {name} ({digest}) into {}", state.display());
            Ok(0)
        }
        Command::Plan(a) => shoal_planner::run(a),
        Command::Export {
            swf,
            since,
            output,
            endpoint,
        } => {
            if !swf {
                anyhow::bail!(
                    "give --swf (the Standard Workload Format is the only export format)"
                );
            }
            let text = export::swf(&endpoint.client()?, since)?;
            match output {
                Some(p) => std::fs::write(&p, text)?,
                None => print!("{text}"),
            }
            Ok(0)
        }
        Command::LaunchAgent { host, command } => commands::launch_agent(&host, &command),
        Command::Ca(CaCommand::Init { dir, force }) => {
            shoal_worker::pki::init_ca(&dir, force)?;
            println!(
                "CA in {0}: {0}/ca.pem, {0}/ca.key (keep this one secret)",
                dir.display()
            );
            Ok(0)
        }
        Command::Ca(CaCommand::Issue {
            dir,
            name,
            ips,
            dns,
            force,
        }) => {
            let (cert, key) = shoal_worker::pki::issue(&dir, &name, &ips, &dns, force)?;
            println!("issued {name}: {}, {}", cert.display(), key.display());
            Ok(0)
        }
        Command::Cluster(ClusterCommand::Down { dir }) => {
            shoal_worker::cluster::down(&dir)?;
            Ok(0)
        }
    }
}
