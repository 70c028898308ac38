//! The benchmark programs under real `mpirun` (Open MPI): output parses in
//! OSU's format and as JSON, every size is there, figures are positive.
//! No figure is compared with a threshold: these are not timed tests.

use serde_json::Value;
use std::process::Command;

const OSU: &str = env!("CARGO_BIN_EXE_shoal-osu");
const SIZES: &str = "0,1,8,1024,65536";

fn mpirun(btl: &[&str], args: &[&str]) -> (String, String) {
    let mut cmd = Command::new("mpirun");
    cmd.args([
        "-np",
        "2",
        "--oversubscribe",
        "--bind-to",
        "none",
        "--mca",
        "pml",
        "ob1",
    ]);
    for b in btl {
        cmd.args([
            "--mca",
            b.split('=').next().unwrap(),
            b.split('=').nth(1).unwrap(),
        ]);
    }
    cmd.arg(OSU).args(args);
    if nix::unistd::geteuid().is_root() {
        cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    }
    let out = cmd
        .output()
        .expect("mpirun runs (install openmpi-bin: scripts/install-deps.sh)");
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(out.status.success(), "mpirun {args:?} failed:\n{so}\n{se}");
    (so, se)
}

/// `size value…` rows after OSU's `#` header lines.
fn rows(text: &str) -> Vec<(u64, Vec<f64>)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_whitespace();
            let size = it
                .next()
                .unwrap()
                .parse()
                .unwrap_or_else(|_| panic!("bad row {l:?}"));
            (size, it.map(|v| v.parse().unwrap()).collect())
        })
        .collect()
}

fn check(text: &str, header: &str, sizes: &[u64], columns: usize) {
    assert!(
        text.lines().any(|l| l.starts_with(header)),
        "no {header:?} header:\n{text}"
    );
    let r = rows(text);
    assert_eq!(
        r.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        sizes,
        "{text}"
    );
    for (s, v) in &r {
        assert_eq!(v.len(), columns, "row {s}: {v:?}");
        assert!(
            v.iter().all(|x| *x > 0.0),
            "row {s} has a non-positive figure: {v:?}"
        );
    }
}

const ALL: [u64; 5] = [0, 1, 8, 1024, 65536];

#[test]
fn latency_over_shared_memory_prints_osu_rows_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("lat.json");
    let (out, _) = mpirun(
        &["btl=self,vader", "btl_vader_single_copy_mechanism=none"],
        &[
            "latency",
            "--sizes",
            SIZES,
            "--iterations",
            "200",
            "--percentiles",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    check(&out, "# OSU MPI Latency Test", &ALL, 3);
    assert!(out.contains("# Size          Latency (us)"), "{out}");
    let j: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(j.len(), ALL.len());
    for (row, size) in j.iter().zip(ALL) {
        assert_eq!(row["benchmark"], "latency");
        assert_eq!(row["size"], size);
        for k in ["latency_us", "p50_us", "p99_us"] {
            assert!(row[k].as_f64().unwrap() > 0.0, "{row}");
        }
    }
}

#[test]
fn latency_over_tcp_uses_the_tcp_transport_only() {
    let (out, err) = mpirun(
        &[
            "btl=self,tcp",
            "btl_tcp_if_include=lo",
            "btl_base_verbose=100",
        ],
        &["latency", "--sizes", SIZES, "--iterations", "100"],
    );
    check(&out, "# OSU MPI Latency Test", &ALL, 1);
    let log = format!("{out}{err}");
    assert!(
        log.contains("select: initializing btl component tcp"),
        "the TCP BTL was not selected:\n{log}"
    );
    assert!(!log.contains("component vader"), "vader was loaded:\n{log}");
}

#[test]
fn shared_memory_runs_select_vader_and_not_tcp() {
    let (out, err) = mpirun(
        &["btl=self,vader", "btl_base_verbose=100"],
        &["latency", "--sizes", "8", "--iterations", "100"],
    );
    check(&out, "# OSU MPI Latency Test", &[8], 1);
    let log = format!("{out}{err}");
    assert!(
        log.contains("select: init of component vader returned success"),
        "vader was not selected:\n{log}"
    );
    assert!(
        !log.contains("btl component tcp"),
        "the TCP BTL was selected:\n{log}"
    );
}

#[test]
fn bandwidth_and_bidirectional_bandwidth_print_rows() {
    let (out, _) = mpirun(
        &["btl=self,vader"],
        &["bw", "--sizes", "1,8,1024,65536", "--iterations", "5"],
    );
    check(&out, "# OSU MPI Bandwidth Test", &[1, 8, 1024, 65536], 1);
    assert!(out.contains("# Size      Bandwidth (MB/s)"), "{out}");
    let (out, _) = mpirun(
        &["btl=self,vader"],
        &[
            "bibw",
            "--sizes",
            "8,65536",
            "--iterations",
            "5",
            "--json",
            "-",
        ],
    );
    let j: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(j.len(), 2);
    assert!(
        j.iter()
            .all(|r| r["benchmark"] == "bibw" && r["bandwidth_mbps"].as_f64().unwrap() > 0.0),
        "{out}"
    );
}

#[test]
fn multi_pair_latency_runs_with_two_ranks() {
    let (out, _) = mpirun(
        &["btl=self,vader"],
        &["multi-lat", "--sizes", "0,8", "--iterations", "100"],
    );
    check(&out, "# OSU MPI Multi Latency Test", &[0, 8], 1);
}

#[test]
fn the_floor_runs_over_shared_memory_and_tcp() {
    for t in ["shm", "tcp"] {
        let out = Command::new(OSU)
            .args([
                "floor",
                "--transport",
                t,
                "--sizes",
                SIZES,
                "--iterations",
                "200",
                "--percentiles",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        check(
            &String::from_utf8_lossy(&out.stdout),
            "# Shoal floor",
            &ALL,
            3,
        );
    }
}

#[test]
fn one_rank_is_refused_clearly() {
    let mut cmd = Command::new("mpirun");
    cmd.args([
        "-np", "1", "--mca", "pml", "ob1", "--mca", "btl", "self", OSU, "latency",
    ]);
    if nix::unistd::geteuid().is_root() {
        cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exactly 2 ranks"));
}
