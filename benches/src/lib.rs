//! Shoal's benchmarks: commands that print figures (`shoal bench …` calls
//! [`run`]), never tests.
//!
//! - [`osu`]: OSU-style latency and bandwidth as MPI jobs, shared memory
//!   against TCP, next to the physical floor;
//! - [`gromacs`]: GROMACS itself as MPI jobs, over the same sweep as md;
//! - [`md`]: the molecular-dynamics benchmark as MPI jobs on N nodes × R
//!   ranks ([`sweep`]: the shapes, placement, BTL check, table and plot);
//! - `throughput`: trivial jobs end to end through a local cluster;
//! - `path`: where one trivial job's time goes, step by step;
//! - `memory`: the scheduler's resident memory per queued job;
//! - `scheduler`: HTTP submit throughput and one scheduling pass
//!   ([`pass`], over the [`fixture`] that `cargo bench` times too);
//! - [`local_cluster`]: the cluster a benchmark runs on (given, or started
//!   for the run).
//!
//! The job definitions and inputs they submit come from `jobs/` through
//! the `shoal-jobs` crate. These are drivers of the `shoal` binary, so their
//! errors are `anyhow`'s.

pub mod fixture;
pub mod gromacs;
pub mod local_cluster;
pub mod md;
mod memory;
pub mod osu;
pub mod pass;
mod path;
mod scheduler;
pub mod sweep;
mod throughput;

use anyhow::Result;

/// Benchmarks.
#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// The control plane: HTTP submit throughput and one scheduling pass.
    Scheduler(SchedulerBench),
    /// The molecular-dynamics benchmark as MPI jobs: shared memory vs TCP.
    Md(md::MdBench),
    /// GROMACS itself (gmx_mpi mdrun) as MPI jobs on N nodes × R ranks:
    /// shared memory vs TCP, ns/day from GROMACS' log.
    Gromacs(gromacs::GromacsBench),
    /// Merge the JSON of `shoal bench md` and `shoal bench gromacs` runs
    /// into one file and one SVG (a panel per program).
    Merge(MergeArgs),
    /// OSU-style latency and bandwidth as MPI jobs: shared memory vs TCP.
    Osu(osu::OsuBench),
    /// End to end: trivial jobs (with their /dev/shm mount) through a local
    /// cluster; jobs/s and submit → start latency.
    Throughput(ThroughputBench),
    /// Where one trivial job's time goes: jobs one at a time on an idle
    /// local cluster that logs each step of each job; the median time of
    /// every step, from SubmitJob to the exit report's commit.
    Path(path::PathBench),
    /// The scheduler's resident memory per queued job, with 100,000 and
    /// 1,000,000 RUNNABLE jobs by default.
    Memory(memory::MemoryBench),
}

/// `shoal bench throughput` arguments.
#[derive(clap::Args)]
pub struct ThroughputBench {
    /// Jobs to run.
    #[arg(long, default_value_t = 1000)]
    jobs: u64,
    /// Nodes of the local cluster started for the run.
    #[arg(long, default_value_t = 2)]
    nodes: u32,
    /// Use a running cluster instead of starting one.
    #[arg(long)]
    endpoint: Option<String>,
    /// Submit the jobs as one array job of `--jobs` children (2–10,000)
    /// instead of one SubmitJob each.
    #[arg(long)]
    array: bool,
    /// Jobs run one at a time afterwards, for the idle submit → start latency.
    #[arg(long, default_value_t = 50)]
    idle_samples: u64,
    /// Also run the idle samples in this container image (warm cache: it is
    /// pulled once first), alternating with host jobs, and print the
    /// container's start overhead.
    #[arg(long)]
    image: Option<String>,
    /// The local cluster's network (for a registry it pulls from).
    #[command(flatten)]
    net: local_cluster::LocalNet,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// `shoal bench merge` arguments.
#[derive(clap::Args)]
pub struct MergeArgs {
    /// JSON files written by `shoal bench md` or `shoal bench gromacs`.
    #[arg(required = true)]
    inputs: Vec<std::path::PathBuf>,
    /// Write every run of them here, as one JSON list.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Write one SVG of ns/day against total ranks here.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

fn merge(m: MergeArgs) -> Result<i32> {
    use anyhow::Context;
    let mut all: Vec<serde_json::Value> = Vec::new();
    for p in &m.inputs {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        let runs: Vec<serde_json::Value> = serde_json::from_str(&text).with_context(|| {
            format!("{}: not the JSON of shoal bench md or gromacs", p.display())
        })?;
        all.extend(runs);
    }
    let out = sweep::Output {
        json: m.json,
        plot: m.plot,
        endpoint: None,
    };
    sweep::report(
        &all,
        |_| "every run".into(),
        "performance against ranks",
        &out,
    )?;
    Ok(0)
}

/// `shoal bench scheduler` arguments.
#[derive(clap::Args)]
pub struct SchedulerBench {
    /// Submissions in total.
    #[arg(long, default_value_t = 20_000)]
    submits: u64,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 8)]
    clients: u64,
    /// Nodes in the scheduling-pass benchmark.
    #[arg(long, default_value_t = 10_000)]
    nodes: u32,
    /// Pending jobs in the scheduling-pass benchmark.
    #[arg(long, default_value_t = 100_000)]
    jobs: u64,
    /// Passes to time.
    #[arg(long, default_value_t = 200)]
    passes: u32,
    /// Use a running scheduler instead of starting one in a temporary directory.
    #[arg(long)]
    endpoint: Option<String>,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// Run a benchmark.
pub fn run(cmd: BenchCommand) -> Result<i32> {
    match cmd {
        BenchCommand::Scheduler(b) => scheduler::run(b),
        BenchCommand::Throughput(b) => throughput::run(b),
        BenchCommand::Path(b) => path::run(b),
        BenchCommand::Memory(b) => memory::run(b),
        BenchCommand::Osu(b) => osu::run(b),
        BenchCommand::Md(b) => md::run(b),
        BenchCommand::Gromacs(b) => gromacs::run(b),
        BenchCommand::Merge(m) => merge(m),
    }
}
