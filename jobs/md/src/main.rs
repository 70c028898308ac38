use anyhow::{bail, Context, Result};
use shoal_md::comm::Comm;
use shoal_md::output::fmt_g;
use shoal_md::{input, Sim, Thermo};
use std::time::Instant;

const USAGE: &str = "usage: shoal-md -in FILE [--json FILE] [-var NAME VALUE]...";

/// LJ time unit for argon (σ = 3.405 Å, ε/k = 119.8 K, m = 39.948 u), in ns,
/// used only to report `ns_per_day` for `units lj`.
const TAU_NS_ARGON: f64 = 2.1564e-3;

struct Args {
    input: String,
    json: Option<String>,
    vars: Vec<(String, String)>,
}

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let mut input = None;
    let mut json = None;
    let mut vars = Vec::new();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-in" | "--in" | "-i" => input = Some(it.next().context("-in needs a file")?),
            "--json" | "-json" => json = Some(it.next().context("--json needs a file")?),
            "-var" | "-v" | "--var" => {
                let k = it.next().context("-var needs NAME VALUE")?;
                let v = it.next().context("-var needs NAME VALUE")?;
                vars.push((k, v));
            }
            "-log" => {
                it.next();
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            o => bail!("unknown argument `{o}`\n{USAGE}"),
        }
    }
    Ok(Args {
        input: input.context(USAGE)?,
        json,
        vars,
    })
}

fn line(t: &Thermo) -> String {
    format!(
        "{:>8} {:>12} {:>12} {:>12} {:>12} {:>12} ",
        t.step,
        fmt_g(t.temp, 8),
        fmt_g(t.e_pair, 8),
        0,
        fmt_g(t.tot_eng, 8),
        fmt_g(t.press, 8)
    )
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("ERROR: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let args = parse_args()?;
    let text = std::fs::read_to_string(&args.input)
        .with_context(|| format!("cannot read input `{}`", args.input))?;
    let inp = input::parse(&text, &args.vars)?;
    let universe = mpi::initialize().context("MPI initialisation failed")?;
    let world = universe.world();
    let comm = Comm::mpi(world);
    let me = comm.rank;
    let nprocs = comm.size;
    let out = |s: &str| {
        if me == 0 {
            println!("{s}");
        }
    };
    out(&format!(
        "Shoal-MD ({} {})",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION")
    ));
    let mut sim = Sim::new(&inp, comm)?;
    let (lo, hi) = sim.box_bounds();
    out(&format!(
        "Created orthogonal box = ({} {} {}) to ({} {} {})",
        fmt_g(lo[0], 8),
        fmt_g(lo[1], 8),
        fmt_g(lo[2], 8),
        fmt_g(hi[0], 8),
        fmt_g(hi[1], 8),
        fmt_g(hi[2], 8)
    ));
    let g = sim.comm.grid;
    out(&format!(
        "  {} by {} by {} MPI processor grid",
        g[0], g[1], g[2]
    ));
    out(&format!("Created {} atoms", sim.natoms));
    out(&format!(
        "Setting up Verlet run ...\n  Unit style    : lj\n  Current step  : 0\n  Time step     : {}",
        inp.dt
    ));
    out("Step Temp E_pair E_mol TotEng Press ");
    let mut rows = vec![sim.thermo_now()?];
    out(&line(&rows[0]));
    sim.comm.barrier();
    sim.comm.time = 0.0;
    let t0 = Instant::now();
    for s in 1..=inp.run {
        let th = s == inp.run || (inp.thermo > 0 && s % inp.thermo == 0);
        if let Some(ev) = sim.step(th) {
            let t = sim.thermo(ev)?;
            out(&line(&t));
            rows.push(t);
        }
    }
    let elapsed = t0.elapsed().as_secs_f64().max(1e-12);
    let mut sums = [elapsed, sim.comm.time];
    let mut tmp = sums;
    sim.comm.sum(&mut tmp);
    sums[0] = tmp[0] / nprocs as f64;
    sums[1] = tmp[1] / nprocs as f64;
    let steps_per_s = inp.run as f64 / elapsed;
    let tau_per_day = steps_per_s * inp.dt * 86400.0;
    let comm_fraction = if inp.run > 0 { sums[1] / sums[0] } else { 0.0 };
    out(&format!(
        "Loop time of {} on {} procs for {} steps with {} atoms\n",
        fmt_g(elapsed, 6),
        nprocs,
        inp.run,
        sim.natoms
    ));
    out(&format!(
        "Performance: {} tau/day, {} timesteps/s",
        fmt_g(tau_per_day, 6),
        fmt_g(steps_per_s, 6)
    ));
    out(&format!(
        "Comm time fraction: {:.2}% (halo exchange, migration and reductions, mean over ranks)",
        100.0 * comm_fraction
    ));
    out(&format!("Neighbor list builds = {}", sim.nbuilds));
    if let (Some(path), 0) = (&args.json, me) {
        let j = serde_json::json!({
            "thermo": rows,
            "steps_per_s": steps_per_s,
            "ns_per_day": tau_per_day * TAU_NS_ARGON,
            "tau_per_day": tau_per_day,
            "comm_fraction": comm_fraction,
            "natoms": sim.natoms,
            "nprocs": nprocs,
            "grid": sim.comm.grid,
            "loop_time_s": elapsed,
        });
        std::fs::write(path, serde_json::to_string_pretty(&j)? + "\n")
            .with_context(|| format!("cannot write `{path}`"))?;
    }
    Ok(())
}
