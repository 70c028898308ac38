//! `shoal bench md`, small: the MD job through the scheduler, serial and on
//! 2 ranks over shm and tcp; the physics agrees across runs, figures exist.

mod common;

use common::SHOAL;
use serde_json::Value;
use std::process::Command;

#[test]
fn bench_md_runs_serial_shm_and_tcp_through_the_scheduler() {
    let md = std::path::Path::new(SHOAL).with_file_name("shoal-md");
    assert!(
        md.exists(),
        "{} is missing: build every binary first (scripts/test.sh does)",
        md.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let (json, svg) = (dir.path().join("md.json"), dir.path().join("md.svg"));
    let out = Command::new(SHOAL)
        .args(["bench", "md", "--atoms", "4000", "--steps", "50", "--json"])
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
        "shoal bench md failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("shared memory is"), "{stdout}");
    let runs: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let kinds: Vec<(&str, u64)> = runs
        .iter()
        .map(|r| {
            (
                r["transport"].as_str().unwrap(),
                r["ranks"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds, vec![("serial", 1), ("shm", 2), ("tcp", 2)]);
    for r in &runs {
        assert!(
            r["steps_per_s"].as_f64().unwrap() > 0.0 && r["ns_per_day"].as_f64().unwrap() > 0.0,
            "{r}"
        );
        assert_eq!(r["natoms"], 4000);
    }
    // Same physics whatever the transport: the last thermo line agrees to 6 digits.
    let last = |r: &Value| {
        r["thermo"].as_array().unwrap().last().unwrap()["tot_eng"]
            .as_f64()
            .unwrap()
    };
    for r in &runs[1..] {
        assert!(
            (last(r) - last(&runs[0])).abs() <= 1e-6 * last(&runs[0]).abs(),
            "{} vs {}",
            last(r),
            last(&runs[0])
        );
    }
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("ns/day"));
}
