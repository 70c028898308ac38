//! OSU's benchmarks and their loop counts, shared by the MPI benchmarks
//! (`mpi_bench.rs`) and the floor (`floor.rs`).

/// Which benchmark.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// osu_latency.
    Latency,
    /// osu_bw.
    Bw,
    /// osu_bibw.
    Bibw,
    /// osu_multi_lat.
    MultiLat,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Latency => "latency",
            Kind::Bw => "bw",
            Kind::Bibw => "bibw",
            Kind::MultiLat => "multi-lat",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Kind::Latency => "OSU MPI Latency Test",
            Kind::Bw => "OSU MPI Bandwidth Test",
            Kind::Bibw => "OSU MPI Bi-Directional Bandwidth Test",
            Kind::MultiLat => "OSU MPI Multi Latency Test",
        }
    }
}

/// OSU's threshold between small and large messages.
pub const LARGE: usize = 8192;

/// (timed iterations, warm-up iterations) for one size: OSU's, or the given
/// count with at most a tenth of it (and no more than OSU's) as warm-up.
pub fn loops(kind: Kind, size: usize, given: Option<usize>) -> (usize, usize) {
    let (iters, skip) = match (kind, size > LARGE) {
        (Kind::Latency | Kind::MultiLat, false) => (10_000, 100),
        (Kind::Latency | Kind::MultiLat, true) => (1_000, 10),
        (Kind::Bw | Kind::Bibw, false) => (100, 10),
        (Kind::Bw | Kind::Bibw, true) => (20, 2),
    };
    match given {
        Some(n) => (n.max(1), skip.min(n / 10)),
        None => (iters, skip),
    }
}
