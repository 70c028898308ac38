//! What a worker offers: vCPUs (a cpuset), memory and /dev/shm capacity,
//! detected from the machine unless the operator says otherwise.

use crate::Error;

/// A set of CPU ids, e.g. parsed from `0-3,6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuSet(pub Vec<u32>);

impl CpuSet {
    /// Parse the kernel's list format (`0-3,6`).
    pub fn parse(s: &str) -> Result<CpuSet, Error> {
        let mut out = Vec::new();
        for part in s.trim().split(',').filter(|p| !p.is_empty()) {
            let bad = || Error::Config(format!("cpuset {s:?}: expected a list like 0-3,6"));
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b): (u32, u32) = (
                        a.trim().parse().map_err(|_| bad())?,
                        b.trim().parse().map_err(|_| bad())?,
                    );
                    if a > b || b - a > 4096 {
                        return Err(bad());
                    }
                    out.extend(a..=b);
                }
                None => out.push(part.trim().parse().map_err(|_| bad())?),
            }
        }
        out.sort_unstable();
        out.dedup();
        if out.is_empty() {
            return Err(Error::Config(format!("cpuset {s:?} is empty")));
        }
        Ok(CpuSet(out))
    }

    /// The kernel's list format.
    pub fn to_list(&self) -> String {
        self.0
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The CPUs this process may run on.
    pub fn current() -> CpuSet {
        match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
            Ok(set) => CpuSet(
                (0..nix::sched::CpuSet::count() as u32)
                    .filter(|c| set.is_set(*c as usize).unwrap_or(false))
                    .collect(),
            ),
            Err(_) => CpuSet(
                (0..std::thread::available_parallelism()
                    .map(|n| n.get() as u32)
                    .unwrap_or(1))
                    .collect(),
            ),
        }
    }
}

/// Total memory of the machine in MiB (`MemTotal`).
pub fn memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(1024)
}

/// Size of the host's /dev/shm in MiB: the most one task's private
/// /dev/shm can be given.
pub fn shm_mib() -> u64 {
    nix::sys::statvfs::statvfs("/dev/shm")
        .map(|s| s.blocks() * s.fragment_size() / (1024 * 1024))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuset_lists_parse() {
        assert_eq!(CpuSet::parse("0-3,6").unwrap().0, vec![0, 1, 2, 3, 6]);
        assert_eq!(CpuSet::parse("1").unwrap().to_list(), "1");
        assert!(CpuSet::parse("3-1").is_err());
        assert!(CpuSet::parse("x").is_err());
        assert!(CpuSet::parse("").is_err());
    }

    #[test]
    fn the_machine_has_memory_and_cpus() {
        assert!(memory_mib() > 0);
        assert!(!CpuSet::current().0.is_empty());
    }
}
