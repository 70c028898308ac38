//! The physical floor: the same ping-pong as osu_latency between two
//! processes, without MPI. `shm`: a shared-memory segment, each side
//! spinning on a flag in its own cache line, the payload copied in and out;
//! `tcp`: loopback sockets with TCP_NODELAY. Each process is pinned to its
//! own CPU.

use crate::{report, Common, Row};
use hdrhistogram::Histogram;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

fn pin(cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
    }
}

fn iters_for(size: usize, given: Option<usize>) -> (usize, usize) {
    match given {
        Some(n) => (n.max(1), (n / 10).min(100)),
        None if size > 8192 => (1_000, 10),
        None => (10_000, 100),
    }
}

/// Run the floor benchmark; returns the exit code.
pub fn run(common: &Common, transport: &str, cpus: &[usize]) -> anyhow::Result<i32> {
    let sizes = common.sizes(0);
    let (a, b) = (
        cpus.first().copied().unwrap_or(0),
        cpus.get(1).copied().unwrap_or(1),
    );
    let rows = match transport {
        "shm" => shm(common, &sizes, a, b)?,
        "tcp" => tcp(common, &sizes, a, b)?,
        other => anyhow::bail!("--transport {other:?}: give shm or tcp"),
    };
    report(
        &format!("Shoal floor ({transport}, no MPI) Latency Test"),
        common,
        &rows,
    )?;
    Ok(0)
}

fn row(name: &str, size: usize, total_s: f64, iters: usize, hist: &Histogram<u64>) -> Row {
    Row {
        benchmark: name.into(),
        size,
        latency_us: Some(total_s * 1e6 / (2.0 * iters as f64)),
        p50_us: Some(hist.value_at_quantile(0.5) as f64 / 1000.0),
        p99_us: Some(hist.value_at_quantile(0.99) as f64 / 1000.0),
        bandwidth_mbps: None,
    }
}

fn shm(common: &Common, sizes: &[usize], cpu_a: usize, cpu_b: usize) -> anyhow::Result<Vec<Row>> {
    let max = sizes.iter().copied().max().unwrap_or(0);
    // Two flags in their own cache lines, then the ping and pong areas.
    let len = 128 + 2 * max.max(1);
    let seg = shared_memory::ShmemConf::new().size(len).create()?;
    let base = seg.as_ptr();
    // SAFETY: the segment is `len` bytes, page-aligned, shared by both
    // processes; the flags are only accessed atomically.
    let (ping, pong) = unsafe {
        (
            &*(base as *const AtomicU64),
            &*(base.add(64) as *const AtomicU64),
        )
    };
    let (area_a, area_b) = unsafe { (base.add(128), base.add(128 + max.max(1))) };
    let plan: Vec<(usize, usize, usize)> = sizes
        .iter()
        .map(|&s| {
            (
                s,
                iters_for(s, common.iterations).0,
                iters_for(s, common.iterations).1,
            )
        })
        .collect();
    // SAFETY: the child only spins, copies within the segment and exits
    // without running destructors (so it never unlinks the segment).
    match unsafe { nix::unistd::fork()? } {
        nix::unistd::ForkResult::Child => {
            pin(cpu_b);
            let mut local = vec![0u8; max.max(1)];
            let mut seq = 0u64;
            for &(size, iters, skip) in &plan {
                for _ in 0..iters + skip {
                    seq += 1;
                    while ping.load(Ordering::Acquire) != seq {
                        std::hint::spin_loop();
                    }
                    // SAFETY: within the segment; the parent is waiting.
                    unsafe {
                        std::ptr::copy_nonoverlapping(area_a, local.as_mut_ptr(), size);
                        std::ptr::copy_nonoverlapping(local.as_ptr(), area_b, size);
                    }
                    pong.store(seq, Ordering::Release);
                }
            }
            std::process::exit(0);
        }
        nix::unistd::ForkResult::Parent { child } => {
            pin(cpu_a);
            let out = vec![b'a'; max.max(1)];
            let mut back = vec![0u8; max.max(1)];
            let mut seq = 0u64;
            let mut rows = Vec::new();
            for &(size, iters, skip) in &plan {
                let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
                let mut total = 0.0;
                for i in 0..iters + skip {
                    seq += 1;
                    let t0 = Instant::now();
                    // SAFETY: within the segment; the child is waiting.
                    unsafe { std::ptr::copy_nonoverlapping(out.as_ptr(), area_a, size) };
                    ping.store(seq, Ordering::Release);
                    while pong.load(Ordering::Acquire) != seq {
                        std::hint::spin_loop();
                    }
                    unsafe { std::ptr::copy_nonoverlapping(area_b, back.as_mut_ptr(), size) };
                    let dt = t0.elapsed().as_secs_f64();
                    if i >= skip {
                        total += dt;
                        hist.record(((dt * 1e9 / 2.0) as u64).max(1))?;
                    }
                }
                rows.push(row("floor-shm", size, total, iters, &hist));
            }
            nix::sys::wait::waitpid(child, None)?;
            Ok(rows)
        }
    }
}

/// Read exactly `buf.len()` bytes from a non-blocking socket, spinning (as
/// MPI's TCP transport polls) instead of sleeping in the kernel.
fn spin_read(s: &mut std::net::TcpStream, buf: &mut [u8]) -> std::io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn spin_write(s: &mut std::net::TcpStream, buf: &[u8]) -> std::io::Result<()> {
    let mut put = 0;
    while put < buf.len() {
        match s.write(&buf[put..]) {
            Ok(n) => put += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn tcp(common: &Common, sizes: &[usize], cpu_a: usize, cpu_b: usize) -> anyhow::Result<Vec<Row>> {
    let max = sizes.iter().copied().max().unwrap_or(0).max(1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let plan: Vec<(usize, usize, usize)> = sizes
        .iter()
        .map(|&s| {
            (
                s,
                iters_for(s, common.iterations).0,
                iters_for(s, common.iterations).1,
            )
        })
        .collect();
    // SAFETY: the child uses only its own socket and exits.
    match unsafe { nix::unistd::fork()? } {
        nix::unistd::ForkResult::Child => {
            pin(cpu_b);
            let code = (|| -> std::io::Result<()> {
                let mut s = std::net::TcpStream::connect(addr)?;
                s.set_nodelay(true)?;
                s.set_nonblocking(true)?;
                let mut buf = vec![0u8; max];
                for &(size, iters, skip) in &plan {
                    // A 0-byte message still has to cross: send one byte.
                    let n = size.max(1);
                    for _ in 0..iters + skip {
                        spin_read(&mut s, &mut buf[..n])?;
                        spin_write(&mut s, &buf[..n])?;
                    }
                }
                Ok(())
            })();
            std::process::exit(if code.is_ok() { 0 } else { 1 });
        }
        nix::unistd::ForkResult::Parent { child } => {
            pin(cpu_a);
            let (mut s, _) = listener.accept()?;
            s.set_nodelay(true)?;
            s.set_nonblocking(true)?;
            let out = vec![b'a'; max];
            let mut back = vec![0u8; max];
            let mut rows = Vec::new();
            for &(size, iters, skip) in &plan {
                let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
                let mut total = 0.0;
                let n = size.max(1);
                for i in 0..iters + skip {
                    let t0 = Instant::now();
                    spin_write(&mut s, &out[..n])?;
                    spin_read(&mut s, &mut back[..n])?;
                    let dt = t0.elapsed().as_secs_f64();
                    if i >= skip {
                        total += dt;
                        hist.record(((dt * 1e9 / 2.0) as u64).max(1))?;
                    }
                }
                rows.push(row("floor-tcp", size, total, iters, &hist));
            }
            nix::sys::wait::waitpid(child, None)?;
            Ok(rows)
        }
    }
}
