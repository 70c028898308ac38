//! Fair share: each share's usage (decayed vCPU-seconds, see
//! [`crate::FairShare`] for the curve), and the order in which a pass offers
//! the jobs of a queue with a fair-share policy.
//!
//! Usage counts each attempt in whole seconds (rounded), so that the order
//! a pass chooses does not hang on milliseconds of start-up noise: the live
//! scheduler and the planner, replaying the same jobs, start them in the
//! same order.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use crate::types::{FairShare, JobKey, Millis, WeightE4};

/// A share's number within its queue.
pub(crate) type ShareNo = u32;

/// The shares of one queue, by number.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shares {
    pub list: Vec<Share>,
    index: HashMap<String, ShareNo>,
}

/// One share identifier's account.
#[derive(Debug, Clone)]
pub(crate) struct Share {
    pub name: String,
    /// Its weight factor under the queue's policy.
    pub weight: WeightE4,
    /// Finished attempts' vCPU-seconds, decayed to `past_at`.
    past: f64,
    past_at: Millis,
    /// Attempts in flight: start and vCPUs.
    running: BTreeMap<JobKey, (Millis, u32)>,
    /// vCPUs of `running`.
    pub running_vcpus: u64,
}

/// Whole seconds in `ms`, rounded to the nearest.
fn whole_seconds(ms: Millis) -> f64 {
    (ms.saturating_add(500) / 1000) as f64
}

/// `exp(-dt / window)`.
fn decay(dt: Millis, window_s: u32) -> f64 {
    (-(dt as f64) / (f64::from(window_s.max(1)) * 1000.0)).exp()
}

impl Share {
    /// Unweighted usage at `now`, in vCPU-seconds.
    pub fn usage(&self, now: Millis, window_s: u32) -> f64 {
        let past = self.past * decay(now.saturating_sub(self.past_at), window_s);
        let running: f64 = self
            .running
            .values()
            .map(|&(start, vcpus)| f64::from(vcpus) * whole_seconds(now.saturating_sub(start)))
            .sum();
        past + running
    }

    /// Weighted usage at `now`: what the pass compares.
    pub fn weighted(&self, now: Millis, window_s: u32) -> f64 {
        self.usage(now, window_s) * self.weight_factor()
    }

    /// The weight as a number.
    pub fn weight_factor(&self) -> f64 {
        f64::from(self.weight) / 10_000.0
    }
}

impl Shares {
    /// The number of a share identifier, registering it (with its weight
    /// under `policy`) on first use.
    pub fn number(&mut self, name: &str, policy: Option<&FairShare>) -> ShareNo {
        if let Some(&n) = self.index.get(name) {
            return n;
        }
        let n = self.list.len() as ShareNo;
        self.list.push(Share {
            name: name.to_string(),
            weight: policy.map_or(10_000, |p| p.weight_of(name)),
            past: 0.0,
            past_at: 0,
            running: BTreeMap::new(),
            running_vcpus: 0,
        });
        self.index.insert(name.to_string(), n);
        n
    }

    /// The policy changed: every share's weight again.
    pub fn reweigh(&mut self, policy: Option<&FairShare>) {
        for s in &mut self.list {
            s.weight = policy.map_or(10_000, |p| p.weight_of(&s.name));
        }
    }

    /// An attempt of share `n` started at `start` on `vcpus`.
    pub fn start(&mut self, n: ShareNo, job: JobKey, start: Millis, vcpus: u32) {
        if let Some(s) = self.list.get_mut(n as usize) {
            if s.running.insert(job, (start, vcpus)).is_none() {
                s.running_vcpus += u64::from(vcpus);
            }
        }
    }

    /// That attempt ended at `now`: its whole seconds join the past.
    pub fn end(&mut self, n: ShareNo, job: JobKey, now: Millis, window_s: u32) {
        let Some(s) = self.list.get_mut(n as usize) else {
            return;
        };
        let Some((start, vcpus)) = s.running.remove(&job) else {
            return;
        };
        s.running_vcpus -= u64::from(vcpus);
        if now > s.past_at {
            s.past *= decay(now - s.past_at, window_s);
            s.past_at = now;
        }
        s.past += f64::from(vcpus) * whole_seconds(now.saturating_sub(start));
    }

    /// vCPUs held by the queue's attempts in flight.
    pub fn running_vcpus(&self) -> u64 {
        self.list.iter().map(|s| s.running_vcpus).sum()
    }
}

/// A share's place in a pass's choice: lowest weighted usage first, then
/// fewest weighted running vCPUs, then the identifier.
#[derive(Debug, Clone)]
pub(crate) struct Turn {
    pub usage: f64,
    pub running: f64,
    pub share: ShareNo,
}

impl Turn {
    /// Compare two turns of the same queue's shares.
    pub fn cmp(&self, other: &Turn, shares: &Shares) -> Ordering {
        self.usage
            .total_cmp(&other.usage)
            .then(self.running.total_cmp(&other.running))
            .then_with(|| {
                let name = |n: ShareNo| shares.list.get(n as usize).map(|s| s.name.as_str());
                name(self.share).cmp(&name(other.share))
            })
    }
}

/// How many vCPUs the active shares of a queue may hold together:
/// `capacity × (1 − (reservation/100)^active)`, rounded down.
pub(crate) fn share_limit(capacity: u64, reservation: u32, active: usize) -> u64 {
    if reservation == 0 {
        return capacity;
    }
    let held = (f64::from(reservation.min(99)) / 100.0).powi(active.min(1000) as i32);
    (capacity as f64 * (1.0 - held)).floor() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decay curve: a finished attempt counts its whole seconds, then
    /// e^{-age/window} of them.
    #[test]
    fn usage_decays_exponentially_from_the_end() {
        let mut s = Shares::default();
        let a = s.number("a", None);
        s.start(a, JobKey(1), 0, 2);
        // Running: whole seconds so far, rounded.
        assert_eq!(s.list[0].usage(4_400, 600), 8.0);
        assert_eq!(s.list[0].usage(4_600, 600), 10.0);
        s.end(a, JobKey(1), 10_000, 600);
        assert_eq!(s.list[0].usage(10_000, 600), 20.0);
        // One window later: 20/e; two: 20/e².
        let one = s.list[0].usage(610_000, 600);
        assert!((one - 20.0 / std::f64::consts::E).abs() < 1e-9, "{one}");
        let two = s.list[0].usage(1_210_000, 600);
        assert!((two - 20.0 * (-2f64).exp()).abs() < 1e-9, "{two}");
        assert_eq!(s.list[0].running_vcpus, 0);
    }

    #[test]
    fn weights_match_exactly_then_by_longest_prefix() {
        let p = FairShare {
            decay_s: 0,
            compute_reservation: 0,
            shares: vec![
                crate::ShareWeight {
                    identifier: "team*".into(),
                    weight: 5_000,
                },
                crate::ShareWeight {
                    identifier: "teamx*".into(),
                    weight: 1_250,
                },
                crate::ShareWeight {
                    identifier: "team".into(),
                    weight: 20_000,
                },
            ],
        };
        assert_eq!(p.weight_of("team"), 20_000);
        assert_eq!(p.weight_of("teamy"), 5_000);
        assert_eq!(p.weight_of("teamx1"), 1_250);
        assert_eq!(p.weight_of("other"), 10_000);
        assert_eq!(p.window_s(), 600);
    }

    #[test]
    fn reservation_holds_back_a_power_of_the_active_shares() {
        assert_eq!(share_limit(100, 0, 1), 100);
        assert_eq!(share_limit(100, 50, 1), 50);
        assert_eq!(share_limit(100, 50, 2), 75);
        assert_eq!(share_limit(100, 50, 3), 87);
        assert_eq!(share_limit(2, 50, 1), 1);
    }
}
