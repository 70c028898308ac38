//! A big, mostly full cluster for measuring scheduling passes: 10,000 nodes
//! (two node types), two queues, and 100,000 RUNNABLE jobs of a handful of
//! shapes (single-node and gang) waiting behind the running ones.
//!
//! Shared by `benches/schedule_pass.rs`, `examples/pass_latency.rs` and
//! `shoal bench scheduler`. It drives the core through its public API only.
#![allow(clippy::should_implement_trait)]

use shoal_core::*;

/// Deterministic pseudo-random numbers (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn res(vcpus: u32, gib: u64, shm_gib: u64) -> Resources {
    Resources {
        vcpus,
        memory_mib: gib * 1024,
        shm_mib: shm_gib * 1024,
    }
}

/// The fixture: a core plus what the driver knows about running attempts.
pub struct Bench {
    pub core: Core,
    pub now: Millis,
    pub rng: Rng,
    next_key: u64,
    /// Running attempts: (job, attempt, main node index).
    pub running: Vec<(JobKey, u32, u32)>,
}

impl Bench {
    /// Builds the cluster and runs the first (filling) pass.
    pub fn new(nodes: u32, runnable: usize, backfill: Backfill) -> Bench {
        let mut core = Core::new(CoreConfig { backfill });
        let pool = PoolSpec {
            id: PoolId(1),
            name: "default".into(),
            enabled: true,
            selector: Default::default(),
            timed: false,
        };
        core.apply(0, Event::PoolUpserted(pool)).unwrap();
        for (id, name, priority) in [(1, "default", 0), (2, "high", 10)] {
            let q = QueueSpec {
                id: QueueId(id),
                name: name.into(),
                priority,
                enabled: true,
                pools: vec![PoolId(1)],
                default_estimate_s: 3600,
                fairshare: None,
            };
            core.apply(0, Event::QueueUpserted(q)).unwrap();
        }
        for n in 0..nodes {
            let capacity = if n % 5 == 4 {
                res(64, 256, 32)
            } else {
                res(32, 128, 16)
            };
            let spec = NodeSpec {
                id: NodeId(n),
                name: format!("node-{n:05}"),
                capacity,
                labels: Default::default(),
                schedulable: true,
                group: None,
                ends_at: None,
            };
            core.apply(0, Event::NodeUpserted(spec)).unwrap();
        }
        let mut b = Bench {
            core,
            now: 0,
            rng: Rng(0x5eed_1234_abcd_0001),
            next_key: 1,
            running: Vec::new(),
        };
        // Fill: submit until the cluster is full and `runnable` jobs wait.
        while b.core.runnable_count() < runnable {
            let missing = runnable - b.core.runnable_count();
            for _ in 0..missing.max(1000) {
                b.submit();
            }
            b.pass();
        }
        b
    }

    /// Fraction of vCPUs allocated, and number of fully idle nodes.
    pub fn utilization(&self, nodes: u32) -> (f64, usize) {
        let (mut cap, mut free, mut idle) = (0u64, 0u64, 0);
        for n in 0..nodes {
            let c = if n % 5 == 4 { 64 } else { 32 };
            let f = self.core.node_free(NodeId(n)).map_or(0, |r| r.vcpus) as u64;
            cap += c;
            free += f;
            idle += (f == c) as usize;
        }
        (1.0 - free as f64 / cap as f64, idle)
    }

    /// Submits one job of a random shape.
    pub fn submit(&mut self) {
        let key = self.next_key;
        self.next_key += 1;
        let r = self.rng.below(100);
        let shape = match r {
            0..=34 => Shape::Single(res(4, 16, 0)),
            35..=59 => Shape::Single(res(1, 2, 0)),
            60..=79 => Shape::Single(res(8, 32, 4)),
            80..=89 => Shape::Single(res(16, 64, 8)),
            90..=96 => Shape::Gang {
                nodes: vec![res(16, 64, 8); 2],
                main_node: 0,
            },
            _ => Shape::Gang {
                nodes: vec![res(32, 120, 16); 4],
                main_node: 0,
            },
        };
        let timeout_s = match self.rng.below(4) {
            0 => None,
            _ => Some(600 + self.rng.below(7200)),
        };
        let spec = JobSpec {
            key: JobKey(key),
            queue: QueueId(if self.rng.below(10) == 0 { 2 } else { 1 }),
            priority: self.rng.below(3) as i32,
            submitted_at: self.now,
            shape,
            parent: None,
            depends_on: Vec::new(),
            timeout_s,
            retry: RetryPolicy::default(),
            share: None,
        };
        self.core
            .apply(
                self.now,
                Event::JobSubmitted {
                    spec,
                    restored: None,
                },
            )
            .unwrap();
    }

    /// One pass, recording started attempts. Returns how many started.
    pub fn pass(&mut self) -> usize {
        self.core.schedule(self.now);
        self.collect()
    }

    /// Takes the decisions of a pass, recording started attempts.
    pub fn collect(&mut self) -> usize {
        let mut n = 0;
        for d in self.core.drain() {
            if let Decision::Start { job, attempt, .. } = d {
                self.running.push((job, attempt, 0));
                n += 1;
            }
        }
        n
    }

    /// Perturbs the state a bit before the next pass: time moves one
    /// second, one random running job ends, one new job arrives.
    pub fn perturb(&mut self) {
        self.now += 1000;
        if !self.running.is_empty() {
            let i = self.rng.below(self.running.len() as u64) as usize;
            let (job, attempt, idx) = self.running.swap_remove(i);
            let ev = Event::NodeExited {
                job,
                attempt,
                node_index: idx,
                exit_code: Some(0),
                reason: "Essential container in task exited".into(),
            };
            self.core.apply(self.now, ev).unwrap();
        }
        self.submit();
        self.core.drain();
    }
}
