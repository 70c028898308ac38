//! The MPI benchmarks, with OSU's loop structure. The timed loops call the
//! MPI C API directly (through rsmpi's `ffi`) on buffers and request arrays
//! prepared beforehand, as the C suite does, so that nothing but MPI is
//! measured.

use crate::{report, Common, Row};
use hdrhistogram::Histogram;
use mpi::ffi;
use mpi::traits::*;
use std::os::raw::{c_int, c_void};

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

/// OSU's threshold between small and large messages.
const LARGE: usize = 8192;
/// osu_bw's window.
const WINDOW: usize = 64;

fn loops(kind: Kind, size: usize, given: Option<usize>) -> (usize, usize) {
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

struct Comm;

impl Comm {
    fn send(buf: &[u8], dest: i32) {
        // SAFETY: `buf` is valid for `len` bytes for the whole blocking call.
        unsafe {
            ffi::MPI_Send(
                buf.as_ptr() as *const c_void,
                buf.len() as c_int,
                ffi::RSMPI_UINT8_T,
                dest,
                1,
                ffi::RSMPI_COMM_WORLD,
            );
        }
    }
    fn recv(buf: &mut [u8], src: i32) {
        // SAFETY: as above; the status is ignored.
        unsafe {
            ffi::MPI_Recv(
                buf.as_mut_ptr() as *mut c_void,
                buf.len() as c_int,
                ffi::RSMPI_UINT8_T,
                src,
                1,
                ffi::RSMPI_COMM_WORLD,
                ffi::RSMPI_STATUS_IGNORE,
            );
        }
    }
    fn isend(buf: &[u8], dest: i32, req: &mut ffi::MPI_Request) {
        // SAFETY: the caller waits on `req` before `buf` goes away.
        unsafe {
            ffi::MPI_Isend(
                buf.as_ptr() as *const c_void,
                buf.len() as c_int,
                ffi::RSMPI_UINT8_T,
                dest,
                100,
                ffi::RSMPI_COMM_WORLD,
                req,
            );
        }
    }
    fn irecv(buf: &mut [u8], src: i32, req: &mut ffi::MPI_Request) {
        // SAFETY: as above.
        unsafe {
            ffi::MPI_Irecv(
                buf.as_mut_ptr() as *mut c_void,
                buf.len() as c_int,
                ffi::RSMPI_UINT8_T,
                src,
                100,
                ffi::RSMPI_COMM_WORLD,
                req,
            );
        }
    }
    fn waitall(reqs: &mut [ffi::MPI_Request]) {
        // SAFETY: every request was started above.
        unsafe {
            ffi::MPI_Waitall(
                reqs.len() as c_int,
                reqs.as_mut_ptr(),
                ffi::RSMPI_STATUSES_IGNORE,
            );
        }
    }
}

/// Run one benchmark; returns the exit code.
pub fn run(kind: Kind, common: &Common) -> anyhow::Result<i32> {
    let universe =
        mpi::initialize().ok_or_else(|| anyhow::anyhow!("MPI is already initialized"))?;
    let world = universe.world();
    let (rank, n) = (world.rank(), world.size());
    let need_even = kind == Kind::MultiLat;
    if n < 2 || (need_even && n % 2 != 0) || (!need_even && n != 2) {
        if rank == 0 {
            eprintln!(
                "shoal-osu: {kind:?} needs {} ranks (got {n}); run it with mpirun -np 2",
                if need_even {
                    "an even number of"
                } else {
                    "exactly 2"
                }
            );
        }
        return Ok(2);
    }
    let min = if matches!(kind, Kind::Latency | Kind::MultiLat) {
        0
    } else {
        1
    };
    let sizes = common.sizes(min);
    let max = sizes.iter().copied().max().unwrap_or(0).max(4);
    let mut sbuf = vec![b'a'; max];
    let windows = if matches!(kind, Kind::Bw | Kind::Bibw) {
        WINDOW
    } else {
        1
    };
    // One receive buffer per window slot, so no two pending receives share
    // memory (OSU reuses one; Rust will not alias a &mut).
    let mut rbufs: Vec<Vec<u8>> = (0..windows).map(|_| vec![b'b'; max]).collect();
    let mut reqs: Vec<ffi::MPI_Request> = vec![unsafe { ffi::RSMPI_REQUEST_NULL }; 2 * WINDOW];
    let mut rows = Vec::new();
    for &size in &sizes {
        let (iters, skip) = loops(kind, size, common.iterations);
        world.barrier();
        match kind {
            Kind::Latency | Kind::MultiLat => {
                let half = n / 2;
                let (peer, pinger) = if rank < half {
                    (rank + half, true)
                } else {
                    (rank - half, false)
                };
                let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
                let mut total = 0.0f64;
                for i in 0..iters + skip {
                    if pinger {
                        let t0 = mpi::time();
                        Comm::send(&sbuf[..size], peer);
                        Comm::recv(&mut rbufs[0][..size], peer);
                        let dt = mpi::time() - t0;
                        if i >= skip {
                            total += dt;
                            hist.record(((dt * 1e9 / 2.0) as u64).max(1))?;
                        }
                    } else {
                        Comm::recv(&mut rbufs[0][..size], peer);
                        Comm::send(&sbuf[..size], peer);
                    }
                }
                let mine = if pinger {
                    total * 1e6 / (2.0 * iters as f64)
                } else {
                    0.0
                };
                // OSU's multi_lat averages over the pairs; for 2 ranks this is rank 0's figure.
                let mut sum = 0.0f64;
                world.all_reduce_into(&mine, &mut sum, mpi::collective::SystemOperation::sum());
                let lat = sum / half as f64;
                rows.push(Row {
                    benchmark: if kind == Kind::Latency {
                        "latency"
                    } else {
                        "multi-lat"
                    }
                    .into(),
                    size,
                    latency_us: Some(lat),
                    p50_us: pinger.then(|| hist.value_at_quantile(0.5) as f64 / 1000.0),
                    p99_us: pinger.then(|| hist.value_at_quantile(0.99) as f64 / 1000.0),
                    bandwidth_mbps: None,
                });
            }
            Kind::Bw | Kind::Bibw => {
                let bi = kind == Kind::Bibw;
                let mut t0 = 0.0;
                for i in 0..iters + skip {
                    if i == skip {
                        world.barrier();
                        t0 = mpi::time();
                    }
                    if rank == 0 {
                        if bi {
                            for (w, rb) in rbufs.iter_mut().enumerate() {
                                Comm::irecv(&mut rb[..size], 1, &mut reqs[WINDOW + w]);
                            }
                        }
                        for r in reqs[..WINDOW].iter_mut() {
                            Comm::isend(&sbuf[..size], 1, r);
                        }
                        Comm::waitall(&mut reqs[..WINDOW]);
                        if bi {
                            Comm::waitall(&mut reqs[WINDOW..]);
                        }
                        Comm::recv(&mut rbufs[0][..4], 1);
                    } else {
                        for (w, rb) in rbufs.iter_mut().enumerate() {
                            Comm::irecv(&mut rb[..size], 0, &mut reqs[w]);
                        }
                        if bi {
                            for r in reqs[WINDOW..].iter_mut() {
                                Comm::isend(&sbuf[..size], 0, r);
                            }
                        }
                        Comm::waitall(&mut reqs[..WINDOW]);
                        if bi {
                            Comm::waitall(&mut reqs[WINDOW..]);
                        }
                        Comm::send(&sbuf[..4], 0);
                    }
                }
                let secs = mpi::time() - t0;
                let bytes = (size * WINDOW * iters) as f64 * if bi { 2.0 } else { 1.0 };
                rows.push(Row {
                    benchmark: if bi { "bibw" } else { "bw" }.into(),
                    size,
                    latency_us: None,
                    p50_us: None,
                    p99_us: None,
                    bandwidth_mbps: Some(bytes / 1e6 / secs),
                });
            }
        }
        sbuf[0] = sbuf[0].wrapping_add(1);
    }
    if rank == 0 {
        let title = match kind {
            Kind::Latency => "OSU MPI Latency Test",
            Kind::Bw => "OSU MPI Bandwidth Test",
            Kind::Bibw => "OSU MPI Bi-Directional Bandwidth Test",
            Kind::MultiLat => "OSU MPI Multi Latency Test",
        };
        report(title, common, &rows)?;
    }
    Ok(0)
}
