//! The sweep: argument parsing, points, JSON and SVG outputs.

use clap::Parser;
use shoal_planner::plan::{sweep, table};
use shoal_planner::PlanArgs;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    plan: PlanArgs,
}

fn args(extra: &[&str]) -> PlanArgs {
    let trace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/traces/lublin_256.swf.gz"
    );
    let mut v = vec!["plan", "--quiet", "--trace", trace];
    v.extend_from_slice(extra);
    Cli::try_parse_from(v).unwrap().plan
}

#[test]
fn sweep_over_scales_and_policies_writes_json_and_svg() {
    let dir = std::env::temp_dir().join(format!("shoal-planner-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("out.json");
    let svg = dir.join("out.svg");
    let mut a = args(&["--scale", "1.0,1.5", "--policy", "easy,fcfs"]);
    a.json = Some(json.clone());
    a.plot = Some(svg.clone());
    assert_eq!(shoal_planner::run(a).unwrap(), 0);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 4);
    for key in [
        "policy",
        "procs",
        "jobs",
        "utilization",
        "mean_wait_s",
        "median_wait_s",
        "p95_wait_s",
        "max_wait_s",
        "mean_bounded_slowdown",
        "makespan_s",
        "skipped",
        "sim_seconds",
    ] {
        assert!(list[0].get(key).is_some(), "missing {key}");
    }
    // Sorted by (policy, procs); the reference's EASY figures at 256.
    assert_eq!(list[0]["policy"], "easy");
    assert_eq!(list[0]["procs"], 256);
    assert_eq!(list[1]["procs"], 384);
    assert_eq!(list[0]["mean_wait_s"].as_f64().unwrap(), 97155.9945);
    assert_eq!(list[0]["jobs"], 10000);
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.contains("<svg") && svg_text.contains("easy"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn nodes_with_procs_per_node_and_options() {
    let a = args(&[
        "--nodes",
        "32,64",
        "--procs-per-node",
        "8",
        "--policy",
        "easy",
        "--tie-break",
        "per-event",
        "--estimate",
        "actual",
        "--shm-speedup",
        "1.2",
        "--shm-jobs",
        "procs>=2",
    ]);
    let r = sweep(&a).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].procs, r[0].nodes), (256, 32));
    assert_eq!((r[1].procs, r[1].nodes), (512, 64));
    assert!(r[1].mean_wait_s <= r[0].mean_wait_s);
    assert!(table(&r).contains("easy"));
}

#[test]
fn bad_arguments_are_errors() {
    let trace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/traces/lublin_256.swf.gz"
    );
    for bad in [
        vec!["plan", "--trace", trace, "--policy", "sjf"],
        vec!["plan", "--trace", trace, "--tie-break", "random"],
        vec!["plan", "--trace", trace, "--shm-jobs", "width>2"],
        vec!["plan", "--trace", trace, "--nodes", "4", "--scale", "1"],
    ] {
        assert!(Cli::try_parse_from(&bad).is_err(), "{bad:?}");
    }
    let mut a = args(&[]);
    a.trace = "/nonexistent.swf".into();
    assert!(sweep(&a).is_err());
    let a = args(&["--scale=-1"]);
    assert!(sweep(&a).is_err());
}

#[test]
fn clap_definition_is_consistent() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}

/// `--shm-speedup-from` a benchmark's JSON: with one measured speed-up X it
/// plans exactly as `--shm-speedup X`; with none measured over both
/// transports it is refused; two measured counts change the plan.
#[test]
fn shm_speedup_from_a_bench_json_is_the_constant_when_it_holds_one() {
    let dir = tempfile_dir("speedup");
    let one = dir.join("one.json");
    std::fs::write(
        &one,
        r#"[{"nodes":1,"ranks_per_node":1,"ranks":1,"transport":"serial","steps_per_s":50.0},
            {"nodes":2,"ranks_per_node":2,"ranks":4,"transport":"shm","steps_per_s":125.0,"thermo":[]},
            {"nodes":2,"ranks_per_node":2,"ranks":4,"transport":"tcp","steps_per_s":100.0,"thermo":[]}]"#,
    )
    .unwrap();
    let key = |r: &[shoal_planner::plan::PointResult]| -> Vec<String> {
        r.iter()
            .map(|p| {
                format!(
                    "{} {} {} {} {} {} {}",
                    p.policy,
                    p.procs,
                    p.utilization,
                    p.mean_wait_s,
                    p.p95_wait_s,
                    p.mean_bounded_slowdown,
                    p.makespan_s
                )
            })
            .collect()
    };
    let from = sweep(&args(&[
        "--policy",
        "easy",
        "--shm-speedup-from",
        one.to_str().unwrap(),
    ]))
    .unwrap();
    let constant = sweep(&args(&["--policy", "easy", "--shm-speedup", "1.25"])).unwrap();
    let plain = sweep(&args(&["--policy", "easy"])).unwrap();
    assert_eq!(key(&from), key(&constant));
    assert_ne!(key(&from), key(&plain), "a 1.25× speed-up changed nothing");
    // Two counts: between them, not the constant of either.
    let two = dir.join("two.json");
    std::fs::write(
        &two,
        r#"[{"nodes":1,"ranks_per_node":2,"transport":"shm","steps_per_s":300.0},
            {"nodes":1,"ranks_per_node":2,"transport":"tcp","steps_per_s":100.0},
            {"nodes":2,"ranks_per_node":2,"transport":"shm","steps_per_s":125.0},
            {"nodes":2,"ranks_per_node":2,"transport":"tcp","steps_per_s":100.0}]"#,
    )
    .unwrap();
    let curve = sweep(&args(&[
        "--policy",
        "easy",
        "--shm-speedup-from",
        two.to_str().unwrap(),
    ]))
    .unwrap();
    assert_ne!(key(&curve), key(&constant));
    // Nothing measured over both transports.
    let none = dir.join("none.json");
    std::fs::write(
        &none,
        r#"[{"nodes":1,"ranks_per_node":2,"transport":"shm","steps_per_s":3.0}]"#,
    )
    .unwrap();
    let e = sweep(&args(&["--shm-speedup-from", none.to_str().unwrap()])).unwrap_err();
    assert!(format!("{e:#}").contains("--transport shm,tcp"), "{e:#}");
    // Not both.
    let trace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/traces/lublin_256.swf.gz"
    );
    assert!(Cli::try_parse_from([
        "plan",
        "--trace",
        trace,
        "--shm-speedup",
        "2",
        "--shm-speedup-from",
        one.to_str().unwrap()
    ])
    .is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("shoal-planner-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `--fairshare`: the busiest KTH-SP2 user weighted 0.01 waits less than
/// the same user weighted 100; per-share figures cover every job.
#[test]
fn fairshare_reports_per_share_and_a_low_weight_waits_less() {
    let trace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/traces/KTH-SP2-1996-2.1-cln.swf.gz"
    );
    let (_, records) = shoal_planner::swf::read_file(std::path::Path::new(trace)).unwrap();
    let mut count: std::collections::BTreeMap<i64, usize> = Default::default();
    for r in &records {
        *count.entry(r.user).or_default() += 1;
    }
    let (&busiest, _) = count.iter().max_by_key(|(_, &n)| n).unwrap();
    let dir = tempfile_dir("fairshare");
    let wait_of = |weight: f64| -> (f64, usize, u64) {
        let file = dir.join(format!("policy-{weight}.json"));
        let policy = serde_json::json!({"fairsharePolicy": {
            "shareDecaySeconds": 86400,
            "shareDistribution": [{"shareIdentifier": busiest.to_string(), "weightFactor": weight}]
        }});
        std::fs::write(&file, policy.to_string()).unwrap();
        let v = vec![
            "plan".to_string(),
            "--quiet".into(),
            "--trace".into(),
            trace.into(),
            "--policy".into(),
            "easy".into(),
            "--fairshare".into(),
            file.display().to_string(),
        ];
        let a = Cli::try_parse_from(v).unwrap().plan;
        let r = sweep(&a).unwrap();
        let shares = &r[0].by_share;
        let jobs: u64 = shares.iter().map(|b| b.jobs).sum();
        assert_eq!(jobs, r[0].jobs);
        assert!(table(&r).contains("by share"), "{}", table(&r));
        let mine = shares
            .iter()
            .find(|b| b.share == busiest.to_string())
            .unwrap();
        (mine.mean_wait_s, shares.len(), jobs)
    };
    let (favoured, n, _) = wait_of(0.01);
    let (disfavoured, _, _) = wait_of(100.0);
    assert!(n > 10, "{n} shares");
    assert!(
        favoured < disfavoured,
        "user {busiest}: mean wait {favoured:.0} s at weight 0.01, {disfavoured:.0} s at 100"
    );
    // A bad policy is refused with the field.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"computeReservation": 100}"#).unwrap();
    let e = shoal_planner::plan::read_fairshare(&bad, Default::default()).unwrap_err();
    assert!(format!("{e:#}").contains("computeReservation"), "{e:#}");
}
