//! One scheduling pass with 10,000 nodes and 100,000 RUNNABLE jobs on a
//! mostly full cluster. Each measured pass follows a small change (one job
//! ends, one arrives), which is not measured.

use shoal_benches::fixture as setup;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use shoal_core::Backfill;

fn schedule_pass(c: &mut Criterion) {
    let mut group = c.benchmark_group("schedule_pass");
    group.sample_size(50);
    for (name, backfill) in [("easy", Backfill::Easy), ("fcfs", Backfill::Fcfs)] {
        let mut b = setup::Bench::new(10_000, 100_000, backfill);
        group.bench_function(format!("{name}_10k_nodes_100k_jobs"), |bench| {
            bench.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    b.perturb();
                    let t = Instant::now();
                    b.core.schedule(b.now);
                    total += t.elapsed();
                    b.collect();
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, schedule_pass);
criterion_main!(benches);
