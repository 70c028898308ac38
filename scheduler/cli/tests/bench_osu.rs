//! The README's main job, small: `shoal bench osu` runs the OSU-style jobs
//! through its own local clusters and writes a table, JSON rows and an SVG.
//! Figures are checked for presence and sign only, never against a time.

mod common;

use common::SHOAL;
use serde_json::Value;
use std::process::Command;

/// Benchmarks in this file run one at a time: two at once on a 2-CPU
/// machine would measure each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn bench_osu_compares_shm_and_tcp_through_the_scheduler() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let osu = std::path::Path::new(SHOAL).with_file_name("shoal-osu");
    assert!(
        osu.exists(),
        "{} is missing: build every binary first (scripts/test.sh does)",
        osu.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let (json, svg) = (dir.path().join("osu.json"), dir.path().join("osu.svg"));
    let out = Command::new(SHOAL)
        .args([
            "bench",
            "osu",
            "--nodes",
            "2",
            "--sizes",
            "0,8,65536",
            "--iterations",
            "300",
            "--bw-iterations",
            "3",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "shoal bench osu failed:\n{stdout}\n{stderr}"
    );
    // The table: a row per size with both transports.
    for size in ["0", "8", "65536"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(size)),
            "no row for {size}:\n{stdout}"
        );
    }
    // JSON rows for every transport and size, positive figures.
    let rows: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for t in ["shm", "tcp", "tcp-2node", "floor-shm", "floor-tcp"] {
        for size in [0u64, 8, 65536] {
            let r = rows
                .iter()
                .find(|r| r["transport"] == t && r["size"] == size)
                .unwrap_or_else(|| panic!("no {t} row for {size}: {rows:?}"));
            for k in ["latency_us", "p50_us", "p99_us"] {
                assert!(r[k].as_f64().unwrap() > 0.0, "{t} {size} {k}: {r}");
            }
            if !t.starts_with("floor") && size > 0 {
                assert!(r["bandwidth_mbps"].as_f64().unwrap() > 0.0, "{r}");
            }
        }
    }
    // The shm job really used shared memory: its /dev/shm was written.
    let peak: u64 = stderr
        .lines()
        .find_map(|l| l.split("peaked at ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no /dev/shm peak reported:\n{stderr}"));
    assert!(
        peak > 0,
        "the shm job's /dev/shm high-water mark is zero:\n{stderr}"
    );
    // A valid SVG.
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
        "not an SVG"
    );
    assert!(svg.contains("Latency") && svg.contains("Bandwidth"));
}

/// The floor is a floor: one copy per message through the segment is at or
/// below Open MPI's shared-memory transport (which needs that copy and
/// more) at 64 KiB and 1 MiB. The one comparison of figures in the tests,
/// as the issue asks, side by side in one run and with room for noise
/// (5 %); the single-copy floor sits far below vader on both machine kinds.
#[test]
fn the_floor_is_at_or_below_open_mpis_shared_memory() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("osu.json");
    let out = Command::new(SHOAL)
        .args(["bench", "osu", "--nodes", "1", "--sizes", "65536,1048576"])
        .args(["--iterations", "300", "--bw-iterations", "2", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let p50 = |t: &str, size: u64| {
        rows.iter()
            .find(|r| r["transport"] == t && r["size"] == size)
            .and_then(|r| r["p50_us"].as_f64())
            .unwrap_or_else(|| panic!("no {t} p50 for {size}: {rows:?}"))
    };
    for size in [65536u64, 1 << 20] {
        let (floor, vader) = (p50("floor-shm", size), p50("shm", size));
        assert!(
            floor <= 1.05 * vader,
            "at {size} B the floor's p50 {floor} µs is above 1.05 × vader's {vader} µs:\n{stdout}"
        );
    }
    assert!(!stdout.contains("floor↑"), "{stdout}");
}

/// `--nodes 2 --ranks-per-node 2`: OSU's multi-pair latency with every
/// pair inside a node and then every pair across the nodes, in one table;
/// each run checked pair by pair for the BTL Open MPI chose (vader inside,
/// tcp across). Presence and sign only. An odd count is refused.
#[test]
fn bench_osu_multi_pairs_inside_and_across_nodes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("osu.json");
    let (rows, stdout, stderr) = common::bench_json(
        Command::new(SHOAL)
            .args(["bench", "osu", "--nodes", "2", "--ranks-per-node", "2"])
            .args(["--transport", "shm", "--sizes", "8", "--iterations", "100"])
            .args(["--no-bandwidth", "--json"])
            .arg(&json),
        &json,
    );
    for t in ["multi-in-node", "multi-across"] {
        let r = rows
            .iter()
            .find(|r| r["transport"] == t && r["size"] == 8)
            .unwrap_or_else(|| panic!("no {t} row: {rows:?}"));
        assert!(r["latency_us"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert!(
        stdout.contains("multi-pair latency on 2 nodes × 2 ranks"),
        "{stdout}"
    );
    assert!(
        stderr.contains("multi-in-node: 2 pairs at once, each over vader")
            && stderr.contains("multi-across: 2 pairs at once, each over tcp"),
        "{stderr}"
    );
    let bad = Command::new(SHOAL)
        .args(["bench", "osu", "--nodes", "2", "--ranks-per-node", "3"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("give an even number"));
}
