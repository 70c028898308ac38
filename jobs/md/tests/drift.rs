//! NVE energy conservation with Shoal's reaction field (`lj/cut/coul/rf`):
//! over 10,000 steps at dt = 0.005, the drift of the total energy (the slope
//! of a least-squares line through TotEng per atom against time, after the
//! first 1,000 steps in which the lattice melts) stays below 1e-4 per atom
//! per τ. Release builds only (it runs 10,000 steps).

use std::process::Command;

const MD: &str = env!("CARGO_BIN_EXE_shoal-md");

#[test]
#[cfg_attr(debug_assertions, ignore = "10,000 steps: run with --release")]
fn reaction_field_nve_energy_drift_is_small() {
    let input = include_str!("../inputs/bench.rf").replace("thermo\t\t50", "thermo\t\t500");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drift.rf");
    std::fs::write(&path, input).unwrap();
    let out = Command::new(MD)
        .arg("-in")
        .arg(&path)
        .args(["-var", "n", "6", "-var", "steps", "10000"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Step Temp E_pair E_mol TotEng Press
    let rows: Vec<(f64, f64)> = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("Step"))
        .skip(1)
        .map_while(|l| {
            let v: Vec<f64> = l
                .split_whitespace()
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?;
            (v.len() == 6).then(|| (v[0] * 0.005, v[4]))
        })
        .filter(|(t, _)| *t >= 1000.0 * 0.005)
        .collect();
    assert!(rows.len() >= 15, "thermo rows: {rows:?}\n{text}");
    let n = rows.len() as f64;
    let (mt, me) = (
        rows.iter().map(|r| r.0).sum::<f64>() / n,
        rows.iter().map(|r| r.1).sum::<f64>() / n,
    );
    let slope = rows.iter().map(|(t, e)| (t - mt) * (e - me)).sum::<f64>()
        / rows.iter().map(|(t, _)| (t - mt).powi(2)).sum::<f64>();
    println!(
        "reaction field NVE drift: {slope:.3e} per atom per tau over {} thermo points",
        rows.len()
    );
    assert!(slope.abs() < 1e-4, "drift {slope:e} per atom per tau");
}
