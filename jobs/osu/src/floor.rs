//! The physical floor: the same ping-pong as osu_latency between two
//! processes (this one and a forked child), without MPI.
//!
//! - `shm`: a `shared_memory` segment in /dev/shm; each side spins on a flag
//!   in its own cache line. A message is one copy: each side's send buffer
//!   lives in the segment, and the receiver copies it into its own buffer
//!   (what a single-copy transport such as Open MPI's CMA does, without its
//!   system calls), so the floor is at or below any MPI shared-memory
//!   transport, which needs at least that copy.
//! - `tcp`: loopback sockets with TCP_NODELAY, polled without sleeping (as
//!   MPI's TCP transport polls). A 0-byte message sends 1 byte.
//!
//! Each process is pinned to its own CPU. Nothing is left behind: the
//! segment's name is unlinked as soon as it is mapped (the mapping lives on
//! in both processes), so a killed process leaves no /dev/shm file; the
//! child dies with the parent (PR_SET_PDEATHSIG) and the parent notices a
//! dead child instead of spinning for ever.

use crate::loops::{loops, Kind};
use crate::{
    allowed_cpus, env_meta, latency_row, report, write_meta, Common, PageBuf, PingClock, Row,
    Transport,
};
use anyhow::{bail, Context};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use serde_json::json;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

/// The flags sit 128 bytes apart (own cache line, and apart from the
/// adjacent-line prefetcher's pair) in the first page; the page-aligned
/// payload areas follow.
const FLAG_GAP: usize = 128;
const AREA: usize = 4096;

/// The two CPUs to pin to: the wanted ones when both are allowed, else the
/// first two allowed; None when fewer than two are allowed.
pub fn choose_cpus(wanted: &[usize], allowed: &[usize]) -> Option<(usize, usize)> {
    let (a, b) = (
        wanted.first().copied().unwrap_or(0),
        wanted.get(1).copied().unwrap_or(1),
    );
    if a != b && allowed.contains(&a) && allowed.contains(&b) {
        return Some((a, b));
    }
    match allowed {
        [x, y, ..] => Some((*x, *y)),
        _ => None,
    }
}

fn pin(cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        let mut set = nix::sched::CpuSet::new();
        if set.set(cpu).is_ok() {
            let _ = nix::sched::sched_setaffinity(Pid::from_raw(0), &set);
        }
    }
}

/// (timed iterations, warm-up) for one size, as osu_latency.
fn iters_for(size: usize, given: Option<usize>) -> (usize, usize) {
    loops(Kind::Latency, size, given)
}

/// Run the floor benchmark; returns the exit code.
pub fn run(common: &Common, transport: Transport, cpus: &[usize]) -> anyhow::Result<i32> {
    let sizes = common.sizes(0)?;
    let plan: Vec<(usize, usize, usize)> = sizes
        .iter()
        .map(|&s| {
            let (iters, skip) = iters_for(s, common.iterations);
            (s, iters, skip)
        })
        .collect();
    let allowed = allowed_cpus();
    let pair = choose_cpus(cpus, &allowed);
    if pair.is_none() {
        eprintln!(
            "shoal-osu floor: fewer than 2 CPUs allowed ({allowed:?}); running unpinned, figures will be poor"
        );
    }
    let name = format!("floor-{}", transport.name());
    let rows = match transport {
        Transport::Shm => shm(&name, &plan, pair)?,
        Transport::Tcp => tcp(&name, &plan, pair)?,
    };
    let meta = json!({
        "benchmark": name,
        "shoal_osu": env!("CARGO_PKG_VERSION"),
        "transport": transport.name(),
        "hostname": nix::unistd::gethostname().ok().map(|h| h.to_string_lossy().into_owned()),
        "cpus": pair.map(|(a, b)| vec![a, b]),
        "sizes": sizes,
        "iterations": common.iterations,
        "env": env_meta()["env"],
    });
    write_meta(common, &meta)?;
    report(
        &format!("Shoal floor ({}, no MPI) Latency Test", transport.name()),
        common,
        &rows,
    )?;
    Ok(0)
}

/// Spin until `flag` holds `seq`. After a while (about a millisecond),
/// check `alive` now and then; after longer, yield the CPU between looks so
/// that an oversubscribed machine still makes progress.
fn wait_for(flag: &AtomicU64, seq: u64, alive: &mut dyn FnMut() -> bool) -> anyhow::Result<()> {
    let mut spins: u64 = 0;
    loop {
        if flag.load(Ordering::Acquire) == seq {
            return Ok(());
        }
        spins += 1;
        if spins & ((1 << 18) - 1) == 0 && !alive() {
            bail!("the other process went away");
        }
        if spins > 1 << 22 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Reap the child; an error unless it exited 0.
fn reap(child: Pid) -> anyhow::Result<()> {
    match waitpid(child, None)? {
        WaitStatus::Exited(_, 0) => Ok(()),
        other => bail!("the child process ended badly: {other:?}"),
    }
}

/// Whether `child` is still running (not exited, not killed).
fn child_alive(child: Pid) -> bool {
    matches!(
        waitpid(child, Some(WaitPidFlag::WNOHANG)),
        Ok(WaitStatus::StillAlive)
    )
}

/// In the child: die with the parent; false when it is already gone.
fn follow_parent(parent: Pid) -> bool {
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    nix::unistd::getppid() == parent
}

/// What a message of `size` bytes is filled with.
fn payload_byte(size: usize) -> u8 {
    b'a' + (size % 26) as u8
}

/// The segment's name in /dev/shm.
pub fn segment_name(pid: u32) -> String {
    format!("/shoal-osu-floor-{pid}")
}

fn shm(
    name: &str,
    plan: &[(usize, usize, usize)],
    pair: Option<(usize, usize)>,
) -> anyhow::Result<Vec<Row>> {
    let max = plan.iter().map(|p| p.0).max().unwrap_or(0).max(1);
    let stride = max.div_ceil(AREA) * AREA;
    let len = AREA + 2 * stride;
    let id = segment_name(std::process::id());
    let mut seg = match shared_memory::ShmemConf::new()
        .os_id(&id)
        .size(len)
        .create()
    {
        Ok(s) => s,
        Err(shared_memory::ShmemError::MappingIdExists) => {
            // A leftover of an earlier process with our pid: ours to remove.
            let _ = nix::sys::mman::shm_unlink(id.as_str());
            shared_memory::ShmemConf::new()
                .os_id(&id)
                .size(len)
                .create()
                .with_context(|| format!("cannot create /dev/shm{id}"))?
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create /dev/shm{id}")),
    };
    // Both processes keep the mapping; the name goes now, so that nothing is
    // left in /dev/shm whatever happens to either process.
    nix::sys::mman::shm_unlink(id.as_str()).with_context(|| format!("shm_unlink {id}"))?;
    seg.set_owner(false);
    let base = seg.as_ptr();
    // SAFETY: the segment is `len` bytes, page-aligned and shared by both
    // processes; the flags are only accessed atomically, and each payload
    // area is written by one side only while the other waits on a flag.
    let (ping, pong) = unsafe {
        (
            &*(base as *const AtomicU64),
            &*(base.add(FLAG_GAP) as *const AtomicU64),
        )
    };
    let (area_a, area_b) = unsafe { (base.add(AREA), base.add(AREA + stride)) };
    let parent = nix::unistd::getpid();
    // SAFETY: this process is single-threaded; the child only spins, copies
    // within the segment and its own buffer, and exits without unwinding.
    match unsafe { fork()? } {
        ForkResult::Child => {
            let code = (|| -> anyhow::Result<()> {
                if !follow_parent(parent) {
                    bail!("parent gone");
                }
                pin(pair.map(|p| p.1));
                let mut alive = || nix::unistd::getppid() == parent;
                let mut local_buf = PageBuf::new(max, 0);
                let local = local_buf.as_mut_slice();
                let mut seq = 0u64;
                for &(size, iters, skip) in plan {
                    for i in 0..iters + skip {
                        seq += 1;
                        wait_for(ping, seq, &mut alive)?;
                        // The one copy of the message: the parent's buffer
                        // into this side's own.
                        // SAFETY: within the segment; the parent is waiting.
                        unsafe { std::ptr::copy_nonoverlapping(area_a, local.as_mut_ptr(), size) };
                        if i == 0 {
                            // This side's send buffer for this size, in the
                            // segment: written once the parent has read the
                            // last reply of the size before (it has, since it
                            // sent this ping), in a warm-up round.
                            // SAFETY: within the segment; the parent is waiting.
                            unsafe { std::ptr::write_bytes(area_b, payload_byte(size), size) };
                        }
                        pong.store(seq, Ordering::Release);
                    }
                }
                Ok(())
            })();
            // SAFETY: leave at once: no destructors, no stdio flushing.
            unsafe { nix::libc::_exit(if code.is_ok() { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => {
            let result = (|| -> anyhow::Result<Vec<Row>> {
                pin(pair.map(|p| p.0));
                let mut alive = || child_alive(child);
                let mut back_buf = PageBuf::new(max, 0);
                let back = back_buf.as_mut_slice();
                let mut seq = 0u64;
                let mut rows = Vec::new();
                for &(size, iters, skip) in plan {
                    // This side's send buffer, in the segment (the child
                    // reads it only after the next ping).
                    // SAFETY: within the segment; the child is waiting.
                    unsafe { std::ptr::write_bytes(area_a, payload_byte(size), size) };
                    let mut clock = PingClock::new(iters, skip)?;
                    for i in 0..iters + skip {
                        seq += 1;
                        ping.store(seq, Ordering::Release);
                        wait_for(pong, seq, &mut alive)?;
                        // The one copy of the reply: the child's buffer into ours.
                        unsafe { std::ptr::copy_nonoverlapping(area_b, back.as_mut_ptr(), size) };
                        clock.tick(i);
                    }
                    if size > 0 && back[size - 1] != payload_byte(size) {
                        bail!("payload of {size} bytes came back wrong");
                    }
                    let (avg, hist) = clock.finish(iters);
                    rows.push(latency_row(name, size, avg, &hist));
                }
                Ok(rows)
            })();
            if result.is_err() {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            }
            let reaped = reap(child);
            let rows = result?;
            reaped?;
            Ok(rows)
        }
    }
}

/// Read exactly `buf.len()` bytes from a non-blocking socket, spinning.
fn spin_read(s: &mut std::net::TcpStream, buf: &mut [u8]) -> std::io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
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
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Write and read at once (for messages larger than the socket buffers,
/// where the peer echoes while we are still sending).
fn spin_exchange(s: &mut std::net::TcpStream, out: &[u8], back: &mut [u8]) -> std::io::Result<()> {
    let (mut put, mut got) = (0, 0);
    while put < out.len() || got < back.len() {
        if put < out.len() {
            match s.write(&out[put..]) {
                Ok(n) => put += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if got < back.len() {
            match s.read(&mut back[got..]) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        std::hint::spin_loop();
    }
    Ok(())
}

fn tcp(
    name: &str,
    plan: &[(usize, usize, usize)],
    pair: Option<(usize, usize)>,
) -> anyhow::Result<Vec<Row>> {
    let max = plan.iter().map(|p| p.0).max().unwrap_or(0).max(1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let parent = nix::unistd::getpid();
    // SAFETY: this process is single-threaded; the child uses only its own
    // socket and buffer, and exits without unwinding.
    match unsafe { fork()? } {
        ForkResult::Child => {
            let code = (|| -> anyhow::Result<()> {
                if !follow_parent(parent) {
                    bail!("parent gone");
                }
                drop(listener);
                pin(pair.map(|p| p.1));
                let mut s = std::net::TcpStream::connect(addr)?;
                s.set_nodelay(true)?;
                s.set_nonblocking(true)?;
                let mut buf_ = PageBuf::new(max, 0);
                let buf = buf_.as_mut_slice();
                for &(size, iters, skip) in plan {
                    // A 0-byte message still has to cross: send one byte.
                    let n = size.max(1);
                    for _ in 0..iters + skip {
                        spin_read(&mut s, &mut buf[..n])?;
                        spin_write(&mut s, &buf[..n])?;
                    }
                }
                Ok(())
            })();
            // SAFETY: leave at once: no destructors, no stdio flushing.
            unsafe { nix::libc::_exit(if code.is_ok() { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => {
            let result = (|| -> anyhow::Result<Vec<Row>> {
                pin(pair.map(|p| p.0));
                let (mut s, _) = listener.accept()?;
                s.set_nodelay(true)?;
                s.set_nonblocking(true)?;
                let mut out_buf = PageBuf::new(max, 0);
                let mut back_buf = PageBuf::new(max, 0);
                let (out, back) = (out_buf.as_mut_slice(), back_buf.as_mut_slice());
                let mut rows = Vec::new();
                for &(size, iters, skip) in plan {
                    out.fill(b'a' + (size % 26) as u8);
                    let n = size.max(1);
                    let mut clock = PingClock::new(iters, skip)?;
                    for i in 0..iters + skip {
                        spin_exchange(&mut s, &out[..n], &mut back[..n])?;
                        clock.tick(i);
                    }
                    if back[n - 1] != out[n - 1] {
                        bail!("payload of {size} bytes came back wrong");
                    }
                    let (avg, hist) = clock.finish(iters);
                    rows.push(latency_row(name, size, avg, &hist));
                }
                Ok(rows)
            })();
            if result.is_err() {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            }
            let reaped = reap(child);
            let rows = result?;
            reaped?;
            Ok(rows)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_are_the_wanted_ones_when_allowed() {
        assert_eq!(choose_cpus(&[0, 1], &[0, 1, 2]), Some((0, 1)));
        assert_eq!(choose_cpus(&[2, 5], &[0, 1, 2, 5]), Some((2, 5)));
        assert_eq!(choose_cpus(&[0, 1], &[4, 6]), Some((4, 6)));
        assert_eq!(choose_cpus(&[0, 0], &[0, 1]), Some((0, 1)));
        assert_eq!(choose_cpus(&[0, 1], &[3]), None);
    }
}
