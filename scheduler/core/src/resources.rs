//! Resource arithmetic: component-wise minimum, maximum, sums and
//! differences of [`Resources`], and whether a demand fits.

use crate::types::Resources;

/// Component-wise minimum.
#[inline]
pub(crate) fn res_min(a: Resources, b: Resources) -> Resources {
    Resources {
        vcpus: a.vcpus.min(b.vcpus),
        memory_mib: a.memory_mib.min(b.memory_mib),
        shm_mib: a.shm_mib.min(b.shm_mib),
    }
}

/// Component-wise maximum.
#[inline]
pub(crate) fn res_max(a: Resources, b: Resources) -> Resources {
    Resources {
        vcpus: a.vcpus.max(b.vcpus),
        memory_mib: a.memory_mib.max(b.memory_mib),
        shm_mib: a.shm_mib.max(b.shm_mib),
    }
}

/// `a + b`, saturating.
#[inline]
pub(crate) fn res_add(a: Resources, b: Resources) -> Resources {
    Resources {
        vcpus: a.vcpus.saturating_add(b.vcpus),
        memory_mib: a.memory_mib.saturating_add(b.memory_mib),
        shm_mib: a.shm_mib.saturating_add(b.shm_mib),
    }
}

/// `a - b`, saturating at zero.
#[inline]
pub(crate) fn res_sub(a: Resources, b: Resources) -> Resources {
    Resources {
        vcpus: a.vcpus.saturating_sub(b.vcpus),
        memory_mib: a.memory_mib.saturating_sub(b.memory_mib),
        shm_mib: a.shm_mib.saturating_sub(b.shm_mib),
    }
}

/// Does `need` fit in `free` (all three dimensions)?
#[inline]
pub(crate) fn fits(free: Resources, need: Resources) -> bool {
    need.vcpus <= free.vcpus && need.memory_mib <= free.memory_mib && need.shm_mib <= free.shm_mib
}

/// Does `need` fit in `cap - used`?
#[inline]
pub(crate) fn fits_used(cap: Resources, used: Resources, need: Resources) -> bool {
    need.vcpus as u64 + used.vcpus as u64 <= cap.vcpus as u64
        && need.memory_mib.saturating_add(used.memory_mib) <= cap.memory_mib
        && need.shm_mib.saturating_add(used.shm_mib) <= cap.shm_mib
}
