//! The planner against the reference simulator (`shared/reference/`):
//! every job's start time, and the metrics, for KTH-SP2 and lublin_256,
//! FCFS and EASY, `batch` and `pyss` event orders.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use shoal_planner::metrics;
use shoal_planner::sim::{simulate, Policy, SimConfig, TieBreak};
use shoal_planner::swf;
use shoal_planner::workload::{build, Conventions};

fn shared() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"))
}

/// (line index, submit, start, procs, actual, estimate) per job.
fn reference_starts(name: &str) -> Vec<[u64; 6]> {
    let path = shared().join("reference/starts").join(name);
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let r = BufReader::new(flate2::read::GzDecoder::new(f));
    let mut out = Vec::new();
    for l in r.lines() {
        let l = l.unwrap();
        if l.starts_with('#') || l.trim().is_empty() {
            continue;
        }
        let v: Vec<u64> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
        out.push([v[0], v[1], v[2], v[3], v[4], v[5]]);
    }
    out
}

fn reference_line(trace: &str, sched: &str, mode: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(shared().join("reference/planner-shared.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["trace"] == trace && v["sched"] == sched && v["mode"] == mode)
        .unwrap_or_else(|| panic!("no reference for {trace} {sched} {mode}"))
}

fn close(what: &str, got: f64, want: f64) {
    let rel = if want == 0.0 {
        got.abs()
    } else {
        ((got - want) / want).abs()
    };
    assert!(
        rel <= 1e-3,
        "{what}: got {got}, reference {want} (rel {rel:.2e})"
    );
}

fn check(file: &str, policy: Policy, tie: TieBreak) {
    let path = shared().join("traces").join(file);
    let (header, records) = swf::read_file(Path::new(&path)).unwrap();
    let procs = header.machine_procs().unwrap() as u32;
    let w = build(&records, &Conventions::reference(procs));
    let cfg = SimConfig {
        procs,
        policy,
        tie_break: tie,
        procs_per_node: None,
    };
    let starts = simulate(&w.jobs, &cfg).unwrap();
    let stem = file.trim_end_matches(".gz").trim_end_matches(".swf");
    let sched = policy.name();
    let mode = tie.reference_name();
    let want = reference_starts(&format!("{stem}.{sched}.{mode}.starts.gz"));
    assert_eq!(want.len(), w.jobs.len(), "job count");
    // The conventions first, then the schedule, job by job.
    for (j, r) in w.jobs.iter().zip(&want) {
        assert_eq!(
            [j.index, j.submit, j.width as u64, j.actual, j.estimate],
            [r[0], r[1], r[3], r[4], r[5]],
            "job {} as simulated differs from the reference's",
            j.index
        );
    }
    let mismatches: Vec<(usize, u64, u64)> = starts
        .iter()
        .zip(&want)
        .enumerate()
        .filter(|(_, (s, r))| **s != r[2])
        .map(|(i, (s, r))| (i, *s, r[2]))
        .collect();
    if let Some(&(i, got, exp)) = mismatches.first() {
        panic!(
            "{file} {sched} {mode}: {} of {} start times differ; first: job (line index) {i}, \
             submit {}, width {}, actual {}, estimate {}: started at {got}, reference {exp}",
            mismatches.len(),
            starts.len(),
            w.jobs[i].submit,
            w.jobs[i].width,
            w.jobs[i].actual,
            w.jobs[i].estimate
        );
    }
    let m = metrics::compute(&w.jobs, &starts, procs);
    let r = reference_line(&format!("{stem}.swf"), sched, mode);
    assert_eq!(m.jobs, r["jobs"].as_u64().unwrap());
    assert_eq!(procs as u64, r["procs"].as_u64().unwrap());
    close(
        "mean wait",
        m.mean_wait_s,
        r["avg_wait_s"].as_f64().unwrap(),
    );
    close(
        "mean bounded slowdown",
        m.mean_bounded_slowdown,
        r["avg_bsld10"].as_f64().unwrap(),
    );
    close("max wait", m.max_wait_s, r["max_wait_s"].as_f64().unwrap());
    close(
        "utilization",
        m.utilization,
        r["utilization"].as_f64().unwrap(),
    );
    close(
        "makespan",
        m.makespan_s as f64,
        r["makespan_s"].as_f64().unwrap(),
    );
}

const KTH: &str = "KTH-SP2-1996-2.1-cln.swf.gz";
const LUBLIN: &str = "lublin_256.swf.gz";

#[test]
fn kth_fcfs_batch() {
    check(KTH, Policy::Fcfs, TieBreak::Batch);
}
#[test]
fn kth_fcfs_pyss() {
    check(KTH, Policy::Fcfs, TieBreak::PerEvent);
}
#[test]
fn kth_easy_batch() {
    check(KTH, Policy::Easy, TieBreak::Batch);
}
#[test]
fn kth_easy_pyss() {
    check(KTH, Policy::Easy, TieBreak::PerEvent);
}
#[test]
fn lublin_fcfs_batch() {
    check(LUBLIN, Policy::Fcfs, TieBreak::Batch);
}
#[test]
fn lublin_fcfs_pyss() {
    check(LUBLIN, Policy::Fcfs, TieBreak::PerEvent);
}
#[test]
fn lublin_easy_batch() {
    check(LUBLIN, Policy::Easy, TieBreak::Batch);
}
#[test]
fn lublin_easy_pyss() {
    check(LUBLIN, Policy::Easy, TieBreak::PerEvent);
}
