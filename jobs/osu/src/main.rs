//! `shoal-osu`: OSU Micro-Benchmarks' latency and bandwidth tests, written
//! in Rust over MPI (rsmpi), with OSU's semantics and text output, plus
//! p50/p99 from a histogram; and `floor`, the same ping-pong without MPI,
//! through a shared-memory segment or TCP loopback.
//!
//! Run it like the C suite: `mpirun -np 2 shoal-osu latency`.

mod floor;
mod mpi_bench;

use clap::{Parser, Subcommand};

/// Options shared by every benchmark.
#[derive(clap::Args, Clone, Debug)]
pub struct Common {
    /// Message sizes in bytes, e.g. 0,8,1024 (default: 0, then 1 B … --max-size doubling).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// Largest size of the default list.
    #[arg(long, default_value_t = 4 << 20)]
    pub max_size: usize,
    /// Iterations per size (default: OSU's).
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Add p50 and p99 columns (µs) to the text output.
    #[arg(long)]
    pub percentiles: bool,
    /// Write JSON rows here (`-` for stdout instead of the text).
    #[arg(long)]
    pub json: Option<String>,
}

impl Common {
    /// The sizes to run, starting at `min`.
    pub fn sizes(&self, min: usize) -> Vec<usize> {
        if !self.sizes.is_empty() {
            return self.sizes.clone();
        }
        let mut v = if min == 0 { vec![0] } else { vec![] };
        let mut s = 1;
        while s <= self.max_size {
            v.push(s);
            s *= 2;
        }
        v
    }
}

#[derive(Parser)]
#[command(
    name = "shoal-osu",
    version,
    about = "OSU-style MPI latency and bandwidth benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// osu_latency: blocking ping-pong between ranks 0 and 1.
    Latency(Common),
    /// osu_bw: windows of 64 non-blocking sends from rank 0 to rank 1.
    Bw(Common),
    /// osu_bibw: windows in both directions at once.
    Bibw(Common),
    /// osu_multi_lat: rank i ping-pongs with rank i + n/2, all pairs at once.
    MultiLat(Common),
    /// The floor: the same ping-pong without MPI, between two processes.
    Floor {
        #[command(flatten)]
        common: Common,
        /// shm (a shared-memory segment, spinning on a flag) or tcp (loopback).
        #[arg(long, default_value = "shm")]
        transport: String,
        /// CPUs for the two processes.
        #[arg(long, value_delimiter = ',', default_values_t = [0usize, 1])]
        cpus: Vec<usize>,
    },
}

/// One result row.
#[derive(serde::Serialize, Debug, Clone)]
pub struct Row {
    /// latency, bw, bibw, multi-lat, floor-shm, floor-tcp.
    pub benchmark: String,
    /// Bytes.
    pub size: usize,
    /// OSU's figure: average one-way latency, µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<f64>,
    /// Median one-way latency, µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_us: Option<f64>,
    /// 99th percentile, µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
    /// MB/s (10^6 bytes per second).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_mbps: Option<f64>,
}

/// Print rows in OSU's format (and JSON where asked).
pub fn report(title: &str, common: &Common, rows: &[Row]) -> anyhow::Result<()> {
    if let Some(path) = &common.json {
        let text = serde_json::to_string_pretty(rows)?;
        if path == "-" {
            println!("{text}");
            return Ok(());
        }
        std::fs::write(path, text)?;
    }
    println!("# {title} v7.3 (shoal-osu)");
    let bw = rows.first().is_some_and(|r| r.bandwidth_mbps.is_some());
    if bw {
        println!("# Size      Bandwidth (MB/s)");
        for r in rows {
            println!("{:<10}{:>18.2}", r.size, r.bandwidth_mbps.unwrap_or(0.0));
        }
    } else if common.percentiles {
        println!("# Size          Latency (us)        P50 (us)        P99 (us)");
        for r in rows {
            println!(
                "{:<10}{:>18.2}{:>16.2}{:>16.2}",
                r.size,
                r.latency_us.unwrap_or(0.0),
                r.p50_us.unwrap_or(0.0),
                r.p99_us.unwrap_or(0.0)
            );
        }
    } else {
        println!("# Size          Latency (us)");
        for r in rows {
            println!("{:<10}{:>18.2}", r.size, r.latency_us.unwrap_or(0.0));
        }
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.bench {
        Bench::Floor {
            common,
            transport,
            cpus,
        } => floor::run(&common, &transport, &cpus),
        Bench::Latency(c) => mpi_bench::run(mpi_bench::Kind::Latency, &c),
        Bench::Bw(c) => mpi_bench::run(mpi_bench::Kind::Bw, &c),
        Bench::Bibw(c) => mpi_bench::run(mpi_bench::Kind::Bibw, &c),
        Bench::MultiLat(c) => mpi_bench::run(mpi_bench::Kind::MultiLat, &c),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("shoal-osu: {e:#}");
            std::process::exit(1);
        }
    }
}
