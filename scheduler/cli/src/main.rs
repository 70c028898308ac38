//! `shoal`: one binary for every role: scheduler daemon, client commands and
//! benchmarks.

mod bench;
mod client;
mod commands;
mod pass_bench;

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
    #[arg(long, env = "SHOAL_ENDPOINT", default_value = client::DEFAULT_ENDPOINT, global = true)]
    pub endpoint: String,
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
    /// Cancel a job that has not started (it ends FAILED with the reason).
    Cancel {
        /// The job.
        job: String,
        /// Why.
        #[arg(long, default_value = "cancelled by the user")]
        reason: String,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Terminate a job, killing it if it runs (it ends FAILED with the reason).
    Terminate {
        /// The job.
        job: String,
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
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
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
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHOAL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
            };
            commands::scheduler(config)?;
            Ok(0)
        }
        Command::Register { file, endpoint } => commands::register(&endpoint, &file),
        Command::Submit(a) => commands::submit(a),
        Command::Jobs(a) => commands::jobs(a),
        Command::Describe { jobs, endpoint } => commands::describe(&endpoint, &jobs),
        Command::Cancel {
            job,
            reason,
            endpoint,
        } => commands::cancel(&endpoint, "canceljob", &job, &reason),
        Command::Terminate {
            job,
            reason,
            endpoint,
        } => commands::cancel(&endpoint, "terminatejob", &job, &reason),
        Command::Queues { json, endpoint } => commands::queues(&endpoint, json),
        Command::Nodes { json, endpoint } => commands::nodes(&endpoint, json),
        Command::Bench(b) => bench::run(b),
    }
}
