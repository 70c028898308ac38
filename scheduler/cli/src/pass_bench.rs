//! The scheduling-pass benchmark: one `Core::schedule` pass over a large,
//! full cluster with a deep queue.

use hdrhistogram::Histogram;
use shoal_core::{
    Core, CoreConfig, Decision, Event, JobKey, JobSpec, NodeId, NodeSpec, PoolId, PoolSpec,
    QueueId, QueueSpec, Resources, RetryPolicy, Shape,
};
use std::collections::BTreeMap;
use std::time::Instant;

/// Pass latency figures.
pub struct PassLatency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn spec(key: u64, shape: Shape, t: u64) -> JobSpec {
    JobSpec {
        key: JobKey(key),
        queue: QueueId(1),
        priority: (key % 7) as i32,
        submitted_at: t,
        shape,
        parent: None,
        depends_on: Vec::new(),
        timeout_s: Some(600 + (key % 5) * 600),
        retry: RetryPolicy::default(),
    }
}

/// Build a cluster of `nodes` nodes (16 vCPUs, 64 GiB, 8 GiB shm each), fill
/// every node with a whole-node job, queue `jobs` more of mixed shapes
/// (single-node 1–16 vCPUs and 2–8 node gangs), then time `passes` passes,
/// each after one running job ends.
pub fn pass_latency(nodes: u32, jobs: usize, passes: u32) -> anyhow::Result<PassLatency> {
    let mut core = Core::new(CoreConfig::default());
    let mut t = 1_000u64;
    let ev =
        |core: &mut Core, t: u64, e: Event| core.apply(t, e).map_err(|e| anyhow::anyhow!("{e}"));
    ev(
        &mut core,
        t,
        Event::PoolUpserted(PoolSpec {
            id: PoolId(1),
            name: "default".into(),
            enabled: true,
            selector: BTreeMap::new(),
        }),
    )?;
    ev(
        &mut core,
        t,
        Event::QueueUpserted(QueueSpec {
            id: QueueId(1),
            name: "default".into(),
            priority: 1,
            enabled: true,
            pools: vec![PoolId(1)],
            default_estimate_s: 3600,
        }),
    )?;
    let cap = Resources {
        vcpus: 16,
        memory_mib: 65536,
        shm_mib: 8192,
    };
    for n in 0..nodes {
        ev(
            &mut core,
            t,
            Event::NodeUpserted(NodeSpec {
                id: NodeId(n),
                name: format!("n{n}"),
                capacity: cap,
                labels: BTreeMap::new(),
            }),
        )?;
    }
    let mut key = 0u64;
    for _ in 0..nodes {
        key += 1;
        ev(
            &mut core,
            t,
            Event::JobSubmitted {
                spec: spec(key, Shape::Single(cap), t),
                restored: None,
            },
        )?;
    }
    core.schedule(t);
    let mut running: Vec<(JobKey, u32)> = core
        .drain()
        .into_iter()
        .filter_map(|d| match d {
            Decision::Start { job, attempt, .. } => Some((job, attempt)),
            _ => None,
        })
        .collect();
    for (job, attempt) in &running {
        ev(
            &mut core,
            t,
            Event::NodeStarted {
                job: *job,
                attempt: *attempt,
                node_index: 0,
            },
        )?;
    }
    let shapes = [
        Shape::Single(Resources {
            vcpus: 1,
            memory_mib: 2048,
            shm_mib: 64,
        }),
        Shape::Single(Resources {
            vcpus: 2,
            memory_mib: 4096,
            shm_mib: 64,
        }),
        Shape::Single(Resources {
            vcpus: 4,
            memory_mib: 8192,
            shm_mib: 512,
        }),
        Shape::Single(Resources {
            vcpus: 16,
            memory_mib: 32768,
            shm_mib: 4096,
        }),
        Shape::Gang {
            nodes: vec![
                Resources {
                    vcpus: 8,
                    memory_mib: 16384,
                    shm_mib: 1024
                };
                2
            ],
            main_node: 0,
        },
        Shape::Gang {
            nodes: vec![
                Resources {
                    vcpus: 16,
                    memory_mib: 32768,
                    shm_mib: 2048
                };
                8
            ],
            main_node: 0,
        },
    ];
    for i in 0..jobs {
        key += 1;
        t += 1;
        ev(
            &mut core,
            t,
            Event::JobSubmitted {
                spec: spec(key, shapes[i % shapes.len()].clone(), t),
                restored: None,
            },
        )?;
    }
    // Warm-up pass: status reasons for the whole queue.
    core.schedule(t);
    core.drain();
    let mut hist = Histogram::<u64>::new(3)?;
    for _ in 0..passes {
        t += 1000;
        if let Some((job, attempt)) = running.pop() {
            ev(
                &mut core,
                t,
                Event::NodeExited {
                    job,
                    attempt,
                    node_index: 0,
                    exit_code: Some(0),
                    reason: "done".into(),
                },
            )?;
        }
        let start = Instant::now();
        core.schedule(t);
        let decisions = core.drain();
        hist.record(start.elapsed().as_micros() as u64)?;
        for d in decisions {
            if let Decision::Start {
                job,
                attempt,
                placement,
            } = d
            {
                if placement.len() == 1 {
                    running.insert(0, (job, attempt));
                }
            }
        }
    }
    Ok(PassLatency {
        p50_ms: hist.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
        max_ms: hist.max() as f64 / 1000.0,
    })
}
