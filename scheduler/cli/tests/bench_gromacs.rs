//! `shoal bench gromacs`, small: GROMACS itself (`gmx_mpi mdrun`) through
//! the scheduler on 1 node (1 and 2 ranks) and 2 nodes (1 and 2 ranks
//! each), over shm and tcp. GROMACS' own log of every run shows the rank
//! count asked for and reaction-field electrostatics; figures are checked
//! for presence and sign only.

mod common;

use common::SHOAL;
use serde_json::Value;
use std::process::Command;

#[test]
fn bench_gromacs_runs_gmx_mpi_on_one_and_two_nodes_over_shm_and_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let (json, svg) = (dir.path().join("gmx.json"), dir.path().join("gmx.svg"));
    let (runs, stdout, _stderr) = common::bench_json(
        Command::new(SHOAL)
            .args([
                "bench",
                "gromacs",
                "--nodes",
                "1,2",
                "--ranks-per-node",
                "1,2",
            ])
            .args([
                "--transport",
                "shm,tcp",
                "--atoms",
                "2000",
                "--steps",
                "200",
            ])
            .arg("--json")
            .arg(&json)
            .arg("--plot")
            .arg(&svg),
        &json,
    );
    let shapes = common::sweep::shapes(&runs);
    let shapes: Vec<(u64, u64, &str)> = shapes
        .iter()
        .map(|(n, r, t)| (*n, *r, t.as_str()))
        .collect();
    assert_eq!(
        shapes,
        [
            (1, 1, "serial"),
            (1, 2, "shm"),
            (1, 2, "tcp"),
            (2, 1, "shm"),
            (2, 1, "tcp"),
            (2, 2, "shm"),
            (2, 2, "tcp")
        ]
    );
    for r in &runs {
        let ranks = r["ranks"].as_u64().unwrap();
        assert_eq!(r["gromacs"]["mpi_processes"], ranks, "{r}");
        assert_eq!(r["gromacs"]["coulombtype"], "Reaction-Field", "{r}");
        for k in ["ns_per_day", "steps_per_s"] {
            assert!(r[k].as_f64().unwrap() > 0.0, "{k}: {r}");
        }
        assert!(r["natoms"].as_u64().unwrap() > 1000, "{r}");
        common::sweep::assert_btls(r);
    }
    assert!(
        stdout.contains("ns/day") && stdout.contains("shared memory is"),
        "{stdout}"
    );
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("ns/day"));
    // `shoal bench merge` (what benches/scaling.sh ends with): one JSON and
    // one SVG of several benchmarks' runs, a panel per program.
    let md = dir.path().join("md.json");
    std::fs::write(
        &md,
        r#"[{"program":"shoal-md","nodes":1,"ranks_per_node":1,"ranks":1,"transport":"serial","steps_per_s":10.0,"ns_per_day":1.0}]"#,
    )
    .unwrap();
    let (all, all_svg) = (dir.path().join("all.json"), dir.path().join("all.svg"));
    let out = Command::new(SHOAL)
        .args(["bench", "merge"])
        .args([&json, &md])
        .arg("--json")
        .arg(&all)
        .arg("--plot")
        .arg(&all_svg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&all).unwrap()).unwrap();
    assert_eq!(merged.len(), runs.len() + 1);
    let svg = std::fs::read_to_string(&all_svg).unwrap();
    assert!(svg.contains("shoal-md performance") && svg.contains("gmx_mpi mdrun performance"));
}
