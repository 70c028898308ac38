//! The MPI benchmarks, with OSU's loop structure. The timed loops call the
//! MPI C API directly (through rsmpi's `ffi`) on buffers and request arrays
//! prepared beforehand, as the C suite does, so that nothing but MPI is
//! measured. Like OSU, every pending receive of a window lands in the same
//! buffer (passed to C as a raw pointer; no Rust reference aliases it).

use crate::loops::{loops, Kind};
use crate::{env_meta, latency_row, report, write_meta, Common, PageBuf, PingClock, Row};
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use mpi::ffi;
use mpi::traits::*;
use serde_json::json;
use std::os::raw::{c_int, c_void};
use std::time::Instant;

/// osu_bw's window.
const WINDOW: usize = 64;
const TAG_PING: c_int = 1;
const TAG_FWD: c_int = 100;
const TAG_BACK: c_int = 10;
const TAG_ACK: c_int = 101;

fn send(buf: *const u8, len: usize, dest: i32, tag: c_int) {
    // SAFETY: `buf` is valid for `len` bytes for the whole blocking call.
    unsafe {
        ffi::MPI_Send(
            buf as *const c_void,
            len as c_int,
            ffi::RSMPI_UINT8_T,
            dest,
            tag,
            ffi::RSMPI_COMM_WORLD,
        );
    }
}

fn recv(buf: *mut u8, len: usize, src: i32, tag: c_int) {
    // SAFETY: as above; the status is ignored.
    unsafe {
        ffi::MPI_Recv(
            buf as *mut c_void,
            len as c_int,
            ffi::RSMPI_UINT8_T,
            src,
            tag,
            ffi::RSMPI_COMM_WORLD,
            ffi::RSMPI_STATUS_IGNORE,
        );
    }
}

fn isend(buf: *const u8, len: usize, dest: i32, tag: c_int, req: &mut ffi::MPI_Request) {
    // SAFETY: the caller waits on `req` before `buf` goes away.
    unsafe {
        ffi::MPI_Isend(
            buf as *const c_void,
            len as c_int,
            ffi::RSMPI_UINT8_T,
            dest,
            tag,
            ffi::RSMPI_COMM_WORLD,
            req,
        );
    }
}

fn irecv(buf: *mut u8, len: usize, src: i32, tag: c_int, req: &mut ffi::MPI_Request) {
    // SAFETY: as above.
    unsafe {
        ffi::MPI_Irecv(
            buf as *mut c_void,
            len as c_int,
            ffi::RSMPI_UINT8_T,
            src,
            tag,
            ffi::RSMPI_COMM_WORLD,
            req,
        );
    }
}

fn waitall(reqs: &mut [ffi::MPI_Request]) {
    // SAFETY: every request was started above (or is MPI_REQUEST_NULL).
    unsafe {
        ffi::MPI_Waitall(
            reqs.len() as c_int,
            reqs.as_mut_ptr(),
            ffi::RSMPI_STATUSES_IGNORE,
        );
    }
}

/// CPUs this process may run on, as a list like `0-3,8`.
fn allowed_cpus() -> String {
    cpu_list(&crate::allowed_cpus())
}

/// `0-3,8` from `[0, 1, 2, 3, 8]`.
pub fn cpu_list(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if j == i {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    out.join(",")
}

/// Run one benchmark; returns the exit code.
pub fn run(kind: Kind, common: &Common) -> anyhow::Result<i32> {
    let min = if matches!(kind, Kind::Latency | Kind::MultiLat) {
        0
    } else {
        1
    };
    // Check the arguments before MPI starts, so every rank fails alike.
    let sizes = common.sizes(min)?;
    let universe =
        mpi::initialize().ok_or_else(|| anyhow::anyhow!("MPI is already initialized"))?;
    let world = universe.world();
    let (rank, n) = (world.rank(), world.size());
    let need_even = kind == Kind::MultiLat;
    if n < 2 || (need_even && n % 2 != 0) || (!need_even && n != 2) {
        if rank == 0 {
            eprintln!(
                "shoal-osu {}: this test needs {} ranks, got {n}; run it as `mpirun -np 2 shoal-osu {} …`",
                kind.name(),
                if need_even {
                    "an even number (at least 2) of"
                } else {
                    "exactly 2"
                },
                kind.name()
            );
        }
        return Ok(2);
    }
    let max = sizes.iter().copied().max().unwrap_or(0).max(4);
    let mut sbuf = PageBuf::new(max, b'a');
    let mut rbuf = PageBuf::new(max, b'b');
    let mut reqs: Vec<ffi::MPI_Request> = vec![unsafe { ffi::RSMPI_REQUEST_NULL }; 2 * WINDOW];
    let mut rows = Vec::new();
    for &size in &sizes {
        let (iters, skip) = loops(kind, size, common.iterations);
        // Fresh contents for every size, as OSU's buffer set-up does.
        sbuf.as_mut_slice().fill(b'a' + (size % 26) as u8);
        let (sp, rp) = (sbuf.as_slice().as_ptr(), rbuf.as_mut_slice().as_mut_ptr());
        world.barrier();
        match kind {
            Kind::Latency | Kind::MultiLat => {
                let half = n / 2;
                let (peer, pinger) = if rank < half {
                    (rank + half, true)
                } else {
                    (rank - half, false)
                };
                let mut clock = PingClock::new(if pinger { iters } else { 1 }, skip)?;
                for i in 0..iters + skip {
                    if pinger {
                        send(sp, size, peer, TAG_PING);
                        recv(rp, size, peer, TAG_PING);
                        clock.tick(i);
                    } else {
                        recv(rp, size, peer, TAG_PING);
                        send(sp, size, peer, TAG_PING);
                    }
                }
                let (avg, mut hist) = clock.finish(iters);
                let mine = if pinger { avg } else { 0.0 };
                // multi_lat averages over the pairs; for 2 ranks this is rank 0's figure.
                let mut sum = 0.0f64;
                world.all_reduce_into(&mine, &mut sum, mpi::collective::SystemOperation::sum());
                // The percentiles pool every pair's round trips at rank 0.
                if pinger && rank != 0 {
                    let mut bytes = Vec::new();
                    V2Serializer::new()
                        .serialize(&hist, &mut bytes)
                        .map_err(|e| anyhow::anyhow!("histogram: {e:?}"))?;
                    let root = world.process_at_rank(0);
                    root.send(&(bytes.len() as u64));
                    root.send(&bytes[..]);
                } else if rank == 0 {
                    for r in 1..half {
                        let from = world.process_at_rank(r);
                        let (len, _) = from.receive::<u64>();
                        let mut bytes = vec![0u8; len as usize];
                        from.receive_into(&mut bytes[..]);
                        let other: Histogram<u64> = Deserializer::new()
                            .deserialize(&mut &bytes[..])
                            .map_err(|e| anyhow::anyhow!("histogram: {e:?}"))?;
                        hist.add(&other)
                            .map_err(|e| anyhow::anyhow!("histogram: {e:?}"))?;
                    }
                }
                rows.push(latency_row(kind.name(), size, sum / half as f64, &hist));
            }
            Kind::Bw | Kind::Bibw => {
                let bi = kind == Kind::Bibw;
                let mut t0 = Instant::now();
                for i in 0..iters + skip {
                    if rank == 0 {
                        if i == skip {
                            t0 = Instant::now();
                        }
                        if bi {
                            for r in reqs[WINDOW..].iter_mut() {
                                irecv(rp, size, 1, TAG_BACK, r);
                            }
                        }
                        for r in reqs[..WINDOW].iter_mut() {
                            isend(sp, size, 1, TAG_FWD, r);
                        }
                        waitall(&mut reqs[..WINDOW]);
                        if bi {
                            waitall(&mut reqs[WINDOW..]);
                        } else {
                            recv(rp, 4, 1, TAG_ACK);
                        }
                    } else {
                        for r in reqs[..WINDOW].iter_mut() {
                            irecv(rp, size, 0, TAG_FWD, r);
                        }
                        if bi {
                            for r in reqs[WINDOW..].iter_mut() {
                                isend(sp, size, 0, TAG_BACK, r);
                            }
                            waitall(&mut reqs[WINDOW..]);
                        }
                        waitall(&mut reqs[..WINDOW]);
                        if !bi {
                            send(sp, 4, 0, TAG_ACK);
                        }
                    }
                }
                let secs = t0.elapsed().as_secs_f64();
                let bytes = (size * WINDOW * iters) as f64 * if bi { 2.0 } else { 1.0 };
                rows.push(Row {
                    benchmark: kind.name().into(),
                    size,
                    latency_us: None,
                    p50_us: None,
                    p99_us: None,
                    bandwidth_mbps: Some(bytes / 1e6 / secs),
                });
            }
        }
    }
    world.barrier();

    // Metadata: what each rank saw.
    let host = mpi::environment::processor_name().unwrap_or_default();
    let me = json!({"rank": rank, "host": host, "cpus": allowed_cpus()});
    let mut mine = serde_json::to_vec(&me)?;
    const REC: usize = 1024;
    mine.resize(REC, 0);
    let root = world.process_at_rank(0);
    if rank == 0 {
        let mut all = vec![0u8; REC * n as usize];
        root.gather_into_root(&mine[..], &mut all[..]);
        let ranks: Vec<serde_json::Value> = all
            .chunks(REC)
            .map(|c| {
                let end = c.iter().position(|b| *b == 0).unwrap_or(c.len());
                serde_json::from_slice(&c[..end]).unwrap_or(serde_json::Value::Null)
            })
            .collect();
        let hostnames: Vec<serde_json::Value> = ranks.iter().map(|r| r["host"].clone()).collect();
        let env = env_meta();
        let meta = json!({
            "benchmark": kind.name(),
            "shoal_osu": env!("CARGO_PKG_VERSION"),
            "mpi_library": mpi::environment::library_version().unwrap_or_default().trim_end_matches(['\0', '\n']),
            "ranks": n,
            "hostnames": hostnames,
            "transport_as_seen": env["transport_as_seen"],
            "single_copy_mechanism": env["single_copy_mechanism"],
            "env": env["env"],
            "sizes": sizes,
            "iterations": common.iterations,
            "per_rank": ranks,
        });
        write_meta(common, &meta)?;
        report(kind.title(), common, &rows)?;
    } else {
        root.gather_into(&mine[..]);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_are_osus() {
        assert_eq!(loops(Kind::Latency, 8192, None), (10_000, 100));
        assert_eq!(loops(Kind::Latency, 8193, None), (1_000, 10));
        assert_eq!(loops(Kind::Bw, 8, None), (100, 10));
        assert_eq!(loops(Kind::Bibw, 1 << 20, None), (20, 2));
        assert_eq!(loops(Kind::Latency, 0, Some(50)), (50, 5));
        assert_eq!(loops(Kind::Bw, 1 << 20, Some(50)), (50, 2));
        assert_eq!(loops(Kind::Latency, 0, Some(0)), (1, 0));
    }

    #[test]
    fn cpu_lists_are_ranges() {
        assert_eq!(cpu_list(&[0, 1, 2, 3, 8]), "0-3,8");
        assert_eq!(cpu_list(&[1]), "1");
        assert_eq!(cpu_list(&[]), "");
    }
}
