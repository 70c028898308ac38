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
