//! `shoal-osu`: OSU Micro-Benchmarks' latency and bandwidth tests, written
//! in Rust over MPI (rsmpi), with OSU's loops and text output, plus p50/p99
//! from a histogram; and `floor`, the same ping-pong without MPI, through a
//! shared-memory segment or TCP loopback.
//!
//! Run it like the C suite: `mpirun -np 2 shoal-osu latency`.

mod floor;
mod loops;
mod mpi_bench;

use clap::{Parser, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The largest message size accepted (MPI counts are C ints; OSU stops at 4 MiB).
pub const MAX_SIZE: usize = 1 << 30;

/// Options shared by every benchmark.
#[derive(clap::Args, Clone, Debug)]
pub struct Common {
    /// Message sizes in bytes, e.g. 0,8,1024 (default: 0 for latency tests, then 1 B … --max-size doubling).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// Largest size of the default list.
    #[arg(long, default_value_t = 4 << 20)]
    pub max_size: usize,
    /// Timed iterations per size (default: OSU's: latency 10,000 up to 8 KiB
    /// and 1,000 above; bw/bibw 100 windows up to 8 KiB and 20 above).
    /// Warm-up is OSU's too, but at most a tenth of this.
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Add p50 and p99 columns (one-way, µs) to the text output (latency tests; ignored by bw/bibw).
    #[arg(long)]
    pub percentiles: bool,
    /// Also write the rows as a JSON list to FILE (`-`: print the JSON on stdout instead of the text).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
    /// Write run metadata as a JSON object to FILE (`-`: to stderr): the
    /// transport as seen (OMPI_MCA_* variables), ranks, hostnames, CPUs.
    #[arg(long, value_name = "FILE")]
    pub meta: Option<String>,
}

impl Common {
    /// The sizes to run: --sizes, or 0 (when `min` is 0) and 1 B … --max-size doubling.
    pub fn sizes(&self, min: usize) -> anyhow::Result<Vec<usize>> {
        let v: Vec<usize> = if !self.sizes.is_empty() {
            self.sizes.iter().copied().filter(|s| *s >= min).collect()
        } else {
            let mut v = if min == 0 { vec![0] } else { vec![] };
            let mut s = 1;
            while s <= self.max_size {
                v.push(s);
                s *= 2;
            }
            v
        };
        if let Some(big) = v.iter().find(|s| **s > MAX_SIZE) {
            anyhow::bail!("size {big} is larger than the limit of {MAX_SIZE} bytes");
        }
        if v.is_empty() {
            anyhow::bail!("no message size to run (bandwidth tests start at 1 byte)");
        }
        Ok(v)
    }
}

/// The floor's transport.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A shared-memory segment in /dev/shm; each side spins on a flag.
    Shm,
    /// Loopback TCP sockets with TCP_NODELAY.
    Tcp,
}

impl Transport {
    /// `shm` or `tcp`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Shm => "shm",
            Transport::Tcp => "tcp",
        }
    }
}

#[derive(Parser)]
#[command(
    name = "shoal-osu",
    version,
    about = "OSU-style MPI latency and bandwidth benchmarks (run under mpirun -np 2), and the non-MPI floor"
)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// osu_latency: blocking ping-pong between ranks 0 and 1 (exactly 2 ranks).
    Latency(Common),
    /// osu_bw: windows of 64 non-blocking sends from rank 0 to rank 1, then a 4-byte ack.
    Bw(Common),
    /// osu_bibw: windows of 64 in both directions at once.
    Bibw(Common),
    /// osu_multi_lat: rank i ping-pongs with rank i + n/2, all pairs at once (even number of ranks).
    MultiLat(Common),
    /// The floor: the same ping-pong without MPI, between this process and a forked child.
    Floor {
        #[command(flatten)]
        common: Common,
        /// shm: a /dev/shm segment, spinning on flags; tcp: loopback sockets.
        #[arg(long, value_enum, default_value = "shm")]
        transport: Transport,
        /// CPUs for the two processes (used when both are allowed; else the first two allowed).
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
    /// Median one-way latency (half the round trip), µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_us: Option<f64>,
    /// 99th percentile of the one-way latency, µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
    /// MB/s (10^6 bytes per second).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_mbps: Option<f64>,
}

/// The clock of a ping-pong loop: one reading per iteration, each round
/// trip being the gap between two readings, and OSU's total (from the end
/// of the warm-up to the end of the loop) their sum. Round trips go into a
/// bounded buffer that is emptied into an hdrhistogram (nanosecond
/// resolution, 3 significant digits) when full; the time that takes is left
/// out of both the total and the next round trip.
pub struct PingClock {
    skip: usize,
    start: Instant,
    prev: Instant,
    excluded: Duration,
    buf: Vec<u64>,
    hist: Histogram<u64>,
}

/// Round trips buffered before they go into the histogram.
const BUFFERED: usize = 1 << 16;

impl PingClock {
    /// A clock for `iters` timed iterations after `skip` warm-up ones.
    pub fn new(iters: usize, skip: usize) -> anyhow::Result<Self> {
        let now = Instant::now();
        Ok(PingClock {
            skip,
            start: now,
            prev: now,
            excluded: Duration::ZERO,
            buf: Vec::with_capacity(iters.clamp(1, BUFFERED)),
            hist: new_histogram()?,
        })
    }

    /// Iteration `i` (counting the warm-up) has just finished.
    #[inline]
    pub fn tick(&mut self, i: usize) {
        let mut now = Instant::now();
        if i >= self.skip {
            self.buf.push((now - self.prev).as_nanos() as u64);
            if self.buf.len() == self.buf.capacity() {
                self.flush();
                let after = Instant::now();
                self.excluded += after - now;
                now = after;
            }
        } else if i + 1 == self.skip {
            self.start = now;
        }
        self.prev = now;
    }

    fn flush(&mut self) {
        for &v in &self.buf {
            self.hist.saturating_record(v.max(1));
        }
        self.buf.clear();
    }

    /// OSU's figure (average one-way latency over `iters`, µs) and the
    /// histogram of round trips (ns).
    pub fn finish(mut self, iters: usize) -> (f64, Histogram<u64>) {
        self.flush();
        let total = (self.prev - self.start).saturating_sub(self.excluded);
        (
            total.as_secs_f64() * 1e6 / (2.0 * iters.max(1) as f64),
            self.hist,
        )
    }
}

/// A histogram for round trips in ns, up to an hour.
pub fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)?)
}

/// A latency row: OSU's average, and p50/p99 of one-way latency (half the
/// round trip) from the histogram of round trips in ns.
pub fn latency_row(name: &str, size: usize, avg_us: f64, round_trips_ns: &Histogram<u64>) -> Row {
    let (p50, p99) = percentiles(round_trips_ns);
    Row {
        benchmark: name.into(),
        size,
        latency_us: Some(avg_us),
        p50_us: p50,
        p99_us: p99,
        bandwidth_mbps: None,
    }
}

/// p50 and p99 of one-way latency (µs) from round trips in ns.
pub fn percentiles(round_trips_ns: &Histogram<u64>) -> (Option<f64>, Option<f64>) {
    if round_trips_ns.is_empty() {
        return (None, None);
    }
    let one_way = |q: f64| Some(round_trips_ns.value_at_quantile(q) as f64 / 2000.0);
    (one_way(0.5), one_way(0.99))
}

/// A page-aligned byte buffer, as OSU allocates its message buffers
/// (alignment changes memcpy's and CMA's speed).
pub struct PageBuf {
    v: Vec<u8>,
    off: usize,
    len: usize,
}

impl PageBuf {
    /// `len` bytes (at least 1) of `fill`, starting on a page boundary.
    pub fn new(len: usize, fill: u8) -> Self {
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .map_or(4096, |p| p as usize);
        let len = len.max(1);
        let v = vec![fill; len + page];
        let off = v.as_ptr().align_offset(page).min(page);
        PageBuf { v, off, len }
    }
    /// The bytes.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.v[self.off..self.off + self.len]
    }
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.v[self.off..self.off + self.len]
    }
}

/// The OMPI_MCA_* and GLIBC_TUNABLES variables of this process, as metadata.
pub fn env_meta() -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in std::env::vars() {
        if (k.starts_with("OMPI_MCA_") && !k.contains("orte_") && !k.contains("ess_"))
            || k == "GLIBC_TUNABLES"
        {
            m.insert(k, Value::String(v));
        }
    }
    json!({
        "transport_as_seen": std::env::var("OMPI_MCA_btl").ok(),
        "single_copy_mechanism": std::env::var("OMPI_MCA_btl_vader_single_copy_mechanism").ok(),
        "env": Value::Object(m),
    })
}

/// Print rows in OSU's format (and JSON where asked).
pub fn report(title: &str, common: &Common, rows: &[Row]) -> anyhow::Result<()> {
    if let Some(path) = &common.json {
        let text = serde_json::to_string_pretty(rows)?;
        if path == "-" {
            println!("{text}");
            return Ok(());
        }
        std::fs::write(path, text + "\n")?;
    }
    print!("{}", osu_text(title, common.percentiles, rows));
    Ok(())
}

/// OSU's text: `# title v7.3 (shoal-osu)`, the column header, `%-10d%18.2f` rows.
pub fn osu_text(title: &str, percentiles: bool, rows: &[Row]) -> String {
    let mut s = format!("# {title} v7.3 (shoal-osu)\n");
    let bw = rows.first().is_some_and(|r| r.bandwidth_mbps.is_some());
    if bw {
        s += "# Size      Bandwidth (MB/s)\n";
        for r in rows {
            s += &format!("{:<10}{:>18.2}\n", r.size, r.bandwidth_mbps.unwrap_or(0.0));
        }
    } else if percentiles {
        s += &format!(
            "# Size          Latency (us){:>18}{:>18}\n",
            "P50 (us)", "P99 (us)"
        );
        for r in rows {
            s += &format!(
                "{:<10}{:>18.2}{:>18.2}{:>18.2}\n",
                r.size,
                r.latency_us.unwrap_or(0.0),
                r.p50_us.unwrap_or(0.0),
                r.p99_us.unwrap_or(0.0)
            );
        }
    } else {
        s += "# Size          Latency (us)\n";
        for r in rows {
            s += &format!("{:<10}{:>18.2}\n", r.size, r.latency_us.unwrap_or(0.0));
        }
    }
    s
}

/// Write the metadata object where --meta asks.
pub fn write_meta(common: &Common, meta: &Value) -> anyhow::Result<()> {
    if let Some(path) = &common.meta {
        let text = serde_json::to_string_pretty(meta)?;
        if path == "-" {
            eprintln!("{text}");
        } else {
            std::fs::write(path, text + "\n")?;
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
        } => floor::run(&common, transport, &cpus),
        Bench::Latency(c) => mpi_bench::run(loops::Kind::Latency, &c),
        Bench::Bw(c) => mpi_bench::run(loops::Kind::Bw, &c),
        Bench::Bibw(c) => mpi_bench::run(loops::Kind::Bibw, &c),
        Bench::MultiLat(c) => mpi_bench::run(loops::Kind::MultiLat, &c),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("shoal-osu: {e:#}");
            std::process::exit(1);
        }
    }
}

/// CPUs this process may run on.
pub(crate) fn allowed_cpus() -> Vec<usize> {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common(sizes: &[usize], max: usize) -> Common {
        Common {
            sizes: sizes.to_vec(),
            max_size: max,
            iterations: None,
            percentiles: false,
            json: None,
            meta: None,
        }
    }

    #[test]
    fn default_sizes_are_osus() {
        let c = common(&[], 4 << 20);
        let lat = c.sizes(0).unwrap();
        assert_eq!(lat.len(), 24);
        assert_eq!(&lat[..4], &[0, 1, 2, 4]);
        assert_eq!(*lat.last().unwrap(), 4 << 20);
        assert_eq!(c.sizes(1).unwrap()[0], 1);
        assert_eq!(common(&[], 8).sizes(0).unwrap(), vec![0, 1, 2, 4, 8]);
    }

    #[test]
    fn given_sizes_are_kept_and_checked() {
        assert_eq!(common(&[0, 8, 1024], 0).sizes(0).unwrap(), vec![0, 8, 1024]);
        assert_eq!(common(&[0, 8], 0).sizes(1).unwrap(), vec![8]);
        assert!(common(&[0], 0).sizes(1).is_err());
        assert!(common(&[MAX_SIZE + 1], 0).sizes(0).is_err());
    }

    #[test]
    fn text_is_osus_format() {
        let rows = vec![latency_row("latency", 8, 0.2345, &hist(&[400, 500, 600]))];
        assert_eq!(
            osu_text("OSU MPI Latency Test", false, &rows),
            format!(
                "# OSU MPI Latency Test v7.3 (shoal-osu)\n# Size          Latency (us)\n8{}0.23\n",
                " ".repeat(10 - 1 + 18 - 4)
            )
        );
        let with = osu_text("OSU MPI Latency Test", true, &rows);
        let line = with.lines().nth(2).unwrap();
        assert_eq!(line.len(), 10 + 3 * 18);
        assert_eq!(
            line.split_whitespace().collect::<Vec<_>>(),
            ["8", "0.23", "0.25", "0.30"]
        );
        let bw = Row {
            benchmark: "bw".into(),
            size: 1048576,
            latency_us: None,
            p50_us: None,
            p99_us: None,
            bandwidth_mbps: Some(12345.678),
        };
        assert_eq!(
            osu_text("OSU MPI Bandwidth Test", true, &[bw]),
            format!(
                "# OSU MPI Bandwidth Test v7.3 (shoal-osu)\n# Size      Bandwidth (MB/s)\n1048576{}12345.68\n",
                " ".repeat(10 - 7 + 18 - 8)
            )
        );
    }

    fn hist(v: &[u64]) -> Histogram<u64> {
        let mut h = new_histogram().unwrap();
        for &x in v {
            h.record(x).unwrap();
        }
        h
    }

    #[test]
    fn percentiles_are_one_way() {
        let samples: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        let (p50, p99) = percentiles(&hist(&samples));
        assert!((p50.unwrap() - 250.0).abs() < 1.0, "{p50:?}");
        assert!((p99.unwrap() - 495.0).abs() < 1.0, "{p99:?}");
        assert_eq!(percentiles(&hist(&[])), (None, None));
    }

    #[test]
    fn the_ping_clock_counts_every_timed_round_trip_and_sums_them() {
        let iters = BUFFERED * 2 + 10;
        let mut c = PingClock::new(iters, 5).unwrap();
        let t0 = Instant::now();
        let mut warm_end = t0;
        for i in 0..iters + 5 {
            c.tick(i);
            if i == 4 {
                warm_end = Instant::now();
            }
        }
        let wall = warm_end.elapsed();
        let (avg_us, h) = c.finish(iters);
        assert_eq!(h.len(), iters as u64);
        assert!(avg_us > 0.0);
        // The buffer flushes are left out, so the sum is below the wall time.
        assert!(avg_us * 2.0 * iters as f64 <= wall.as_secs_f64() * 1e6 + 1.0);
    }

    #[test]
    fn page_buffers_are_aligned() {
        for len in [0, 1, 4096, 65537] {
            let mut b = PageBuf::new(len, 7);
            assert_eq!(b.as_slice().as_ptr() as usize % 4096, 0);
            assert_eq!(b.as_mut_slice().len(), len.max(1));
            assert!(b.as_slice().iter().all(|x| *x == 7));
        }
    }

    #[test]
    fn json_rows_have_only_their_fields() {
        let r = latency_row("latency", 8, 0.2, &hist(&[400]));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["benchmark"], "latency");
        assert_eq!(v["size"], 8);
        assert!(v.get("bandwidth_mbps").is_none());
        assert!(v["p99_us"].as_f64().unwrap() > 0.0);
    }
}
