//! `shoal bench gromacs`: GROMACS itself (Debian's `gmx_mpi mdrun`) as MPI
//! jobs through the scheduler on N nodes × R ranks, shared memory inside
//! nodes plus TCP between them against TCP only, with the same table, JSON
//! and plot as `shoal bench md`; ns/day from GROMACS' own log.

use crate::sweep::{self, Shapes};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use shoal_client::Client;
use shoal_jobs::{definitions, inputs};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const DEFINITIONS: [&str; 4] = [
    definitions::GROMACS_SHM_1NODE,
    definitions::GROMACS_TCP_1NODE,
    definitions::GROMACS_SHM_MULTINODE,
    definitions::GROMACS_TCP_MULTINODE,
];
const MARKER: &str = "--- gromacs log ---";
/// Atoms per nm³ of SPC water as `gmx solvate` fills a box (about 96).
const ATOMS_PER_NM3: f64 = 96.4;
/// The time step of `rf.mdp`, ns.
const DT_NS: f64 = 2e-6;

/// `shoal bench gromacs` arguments.
#[derive(clap::Args)]
pub struct GromacsBench {
    /// Atoms, about: SPC water in a cubic box of the size that holds them.
    #[arg(long, default_value_t = 4_000)]
    atoms: u64,
    /// MD steps per run (GROMACS times the second half, -resethway).
    #[arg(long, default_value_t = 2_000)]
    steps: u64,
    #[command(flatten)]
    shapes: Shapes,
    #[command(flatten)]
    out: sweep::Output,
}

/// Run the benchmark.
pub fn run(b: GromacsBench) -> Result<i32> {
    b.shapes.check()?;
    if b.steps < 2 {
        bail!("--steps {}: give at least 2", b.steps);
    }
    let dir = std::env::temp_dir().join(format!("shoal-gromacs-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = prepare(&dir, b.atoms).and_then(|(tpr, natoms)| {
        eprintln!("GROMACS input: {natoms} atoms of SPC water, reaction field (epsilon-rf 0, 1.2 nm cut-offs)");
        sweep::run_all(
            &b.shapes,
            b.out.endpoint.as_deref(),
            &dir,
            sweep::register(&DEFINITIONS),
            |client, cluster, run| one_run(client, cluster, run, &tpr, b.steps, natoms),
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
    let results = result?;
    sweep::report(
        &results,
        |natoms| {
            format!("shoal bench gromacs: {natoms} atoms of SPC water with reaction field; GROMACS (gmx_mpi mdrun) through the scheduler")
        },
        "GROMACS performance against ranks",
        &b.out,
    )?;
    Ok(0)
}

/// Run a GROMACS tool in `dir`; its output if it succeeded.
fn gmx(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("gmx")
        .arg("-quiet")
        .args(args)
        .current_dir(dir)
        .output()
        .context(
            "cannot run `gmx` (GROMACS: apt-get install gromacs, or scripts/install-deps.sh)",
        )?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("gmx {} failed:\n{text}", args.join(" "));
    }
    Ok(text)
}

/// The input, made offline with GROMACS' own tools in `dir`: a cubic box
/// of SPC water holding about `atoms`, `rf.mdp`, `topol.top`, grompp'd
/// into `rf.tpr`. Its path and the atoms it holds.
fn prepare(dir: &Path, atoms: u64) -> Result<(PathBuf, u64)> {
    // Reaction field with 1.2 nm cut-offs needs a box over twice that.
    let side = (atoms.max(1) as f64 / ATOMS_PER_NM3).cbrt().max(2.6);
    let side = format!("{side:.3}");
    gmx(
        dir,
        &[
            "solvate",
            "-cs",
            "spc216.gro",
            "-box",
            &side,
            &side,
            &side,
            "-o",
            "conf.gro",
        ],
    )?;
    let conf = std::fs::read_to_string(dir.join("conf.gro"))?;
    let natoms: u64 = conf
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .context("gmx solvate wrote no atom count")?;
    std::fs::write(dir.join("rf.mdp"), inputs::GROMACS_RF_MDP)?;
    std::fs::write(
        dir.join("topol.top"),
        inputs::GROMACS_TOPOL.replace("@WATERS@", &(natoms / 3).to_string()),
    )?;
    gmx(
        dir,
        &[
            "grompp",
            "-f",
            "rf.mdp",
            "-c",
            "conf.gro",
            "-p",
            "topol.top",
            "-o",
            "rf.tpr",
            "-maxwarn",
            "2",
        ],
    )?;
    Ok((std::fs::canonicalize(dir.join("rf.tpr"))?, natoms))
}

/// What GROMACS' log says of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct GromacsLog {
    /// `Performance:` ns/day.
    pub ns_per_day: f64,
    /// `Using N MPI processes`.
    pub mpi_processes: u64,
    /// `coulombtype = …`.
    pub coulombtype: String,
    /// The share of wall time in communication (the cycle accounting's
    /// `Comm.` and `Wait + Comm.` rows), 0–1.
    pub comm_fraction: Option<f64>,
}

impl GromacsLog {
    /// Read a GROMACS `md.log`.
    pub fn parse(log: &str) -> Option<GromacsLog> {
        let mut ns_per_day = None;
        let mut mpi = None;
        let mut coulomb = None;
        let mut comm = 0.0;
        let mut comm_seen = false;
        for line in log.lines() {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("Performance:") {
                ns_per_day = rest.split_whitespace().next().and_then(|v| v.parse().ok());
            } else if let Some(rest) = t.strip_prefix("Using ") {
                if let Some(n) = rest.strip_suffix(" MPI processes") {
                    mpi = n.trim().parse().ok();
                } else if rest == "1 MPI process" {
                    mpi = Some(1);
                }
            } else if t.starts_with("coulombtype") && coulomb.is_none() {
                coulomb = t.split('=').nth(1).map(|v| v.trim().to_string());
            } else if t.starts_with("Comm.") || t.starts_with("Wait + Comm.") {
                if let Some(pct) = t
                    .split_whitespace()
                    .last()
                    .and_then(|v| v.parse::<f64>().ok())
                {
                    comm += pct / 100.0;
                    comm_seen = true;
                }
            }
        }
        Some(GromacsLog {
            ns_per_day: ns_per_day?,
            mpi_processes: mpi.unwrap_or(1),
            coulombtype: coulomb?,
            comm_fraction: comm_seen.then_some(comm),
        })
    }
}

/// One run: its job, GROMACS' figures from its log, checked for the rank
/// count and the electrostatics asked for, and the BTL each pair used.
fn one_run(
    client: &Client,
    cluster: &sweep::Cluster,
    run: &sweep::Run,
    tpr: &Path,
    steps: u64,
    natoms: u64,
) -> Result<Value> {
    let t = if run.transport == "tcp" { "tcp" } else { "shm" };
    let shape = if run.nodes > 1 { "multinode" } else { "1node" };
    let params = BTreeMap::from([
        ("tpr".to_string(), tpr.display().to_string()),
        ("steps".to_string(), steps.to_string()),
    ]);
    let f = sweep::submit(
        client,
        run,
        &format!("gromacs-{t}-{shape}"),
        params,
        cluster.vcpus(run),
    )?;
    let text = f.log.split(MARKER).nth(1).with_context(|| {
        format!(
            "the {} run printed no GROMACS log:\n{}",
            run.transport, f.log
        )
    })?;
    let g = GromacsLog::parse(text)
        .with_context(|| format!("GROMACS' log has no Performance line:\n{text}"))?;
    if g.mpi_processes != u64::from(run.ranks()) {
        bail!(
            "GROMACS ran {} MPI processes where {} were asked for",
            g.mpi_processes,
            run.ranks()
        );
    }
    if g.coulombtype != "Reaction-Field" {
        bail!(
            "GROMACS used coulombtype {} where Reaction-Field was asked for",
            g.coulombtype
        );
    }
    let btl = sweep::BtlUse::of(&f.log, run.rpn);
    btl.verify(run)?;
    let mut r = json!({
        "program": "gmx_mpi mdrun",
        "natoms": natoms,
        "steps": steps,
        "ns_per_day": g.ns_per_day,
        "steps_per_s": g.ns_per_day / 86_400.0 / DT_NS,
        "comm_fraction": g.comm_fraction,
        "gromacs": { "mpi_processes": g.mpi_processes, "coulombtype": g.coulombtype },
        "thermo": Value::Null,
    });
    sweep::annotate(&mut r, run, &f, &btl);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gromacs_logs_give_performance_ranks_and_electrostatics() {
        let log = "   coulombtype                    = Reaction-Field\n\
                   Using 2 MPI processes\nUsing 1 OpenMP thread per MPI process\n\
                   \x20Comm. coord.           2    1         90       0.002          0.010   0.9\n\
                   \x20Wait + Comm. F         2    1        101       0.018          0.090   7.9\n\
                   \x20Comm. energies         2    1         11       0.001          0.003   0.3\n\
                   \x20              (ns/day)    (hour/ns)\nPerformance:       74.638        0.322\n";
        let g = GromacsLog::parse(log).unwrap();
        assert_eq!(g.ns_per_day, 74.638);
        assert_eq!(g.mpi_processes, 2);
        assert_eq!(g.coulombtype, "Reaction-Field");
        assert!((g.comm_fraction.unwrap() - 0.091).abs() < 1e-9);
        assert!(GromacsLog::parse("Using 2 MPI processes\n").is_none());
    }
}
