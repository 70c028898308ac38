//! AWS clients against the real `shoal scheduler`: boto3's batch client and
//! `aws batch --endpoint-url`, and durability across `kill -9`.

mod common;

use common::{call, start_scheduler};
use serde_json::{json, Value};
use std::process::Command;

fn run_script(program: &str, script: &str, endpoint: &str) {
    let path = format!("{}/tests/aws/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(program).arg(&path).arg(endpoint).output().unwrap_or_else(|e| {
        panic!("cannot run {program} {path}: {e}; run scripts/install-deps.sh (it installs boto3 and awscli in .venv)")
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script} failed:\n{text}");
    println!("{}", text.lines().last().unwrap_or_default());
}

#[test]
fn boto3_batch_client_works_against_shoal() {
    let dir = tempfile::tempdir().unwrap();
    let (_s, endpoint) = start_scheduler(dir.path(), &[]);
    let probe = Command::new("python3")
        .args(["-c", "import boto3"])
        .status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "python3 cannot import boto3; run scripts/install-deps.sh and put .venv/bin on PATH (scripts/test.sh does)"
    );
    run_script("python3", "boto3_check.py", &endpoint);
}

#[test]
fn aws_cli_works_against_shoal() {
    let dir = tempfile::tempdir().unwrap();
    let (_s, endpoint) = start_scheduler(dir.path(), &[]);
    run_script("bash", "aws_cli_check.sh", &endpoint);
}

#[test]
fn kill9_keeps_every_acknowledged_submission() {
    let dir = tempfile::tempdir().unwrap();
    let (sched, endpoint) = start_scheduler(dir.path(), &[]);
    let http = reqwest::blocking::Client::new();
    let (s, _) = call(
        &http,
        &format!("{endpoint}/v1/registerjobdefinition"),
        &json!({ "jobDefinitionName": "d", "type": "container", "containerProperties": { "command": ["true"] } }),
    );
    assert_eq!(s, 200);
    // 4 clients submit concurrently; only acknowledged (200) ids count.
    let acked: Vec<(String, String)> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (http, endpoint) = (http.clone(), endpoint.clone());
                sc.spawn(move || {
                    (0..75)
                        .filter_map(|i| {
                            let name = format!("c{t}-{i}");
                            let (s, v) = call(
                                &http,
                                &format!("{endpoint}/v1/submitjob"),
                                &json!({ "jobName": name, "jobQueue": "default", "jobDefinition": "d" }),
                            );
                            (s == 200).then(|| (v["jobId"].as_str().unwrap().to_string(), name))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(acked.len(), 300);
    sched.kill9();
    let (_s2, endpoint) = start_scheduler(dir.path(), &[]);
    for chunk in acked.chunks(100) {
        let ids: Vec<&String> = chunk.iter().map(|(id, _)| id).collect();
        let (s, v) = call(
            &http,
            &format!("{endpoint}/v1/describejobs"),
            &json!({ "jobs": ids }),
        );
        assert_eq!(s, 200);
        let jobs = v["jobs"].as_array().unwrap();
        assert_eq!(
            jobs.len(),
            chunk.len(),
            "every acknowledged job is there after kill -9"
        );
        for (j, (id, name)) in jobs.iter().zip(chunk) {
            assert_eq!(j["jobId"], Value::String(id.clone()));
            assert_eq!(j["jobName"], Value::String(name.clone()));
            assert!(j["jobDefinition"]
                .as_str()
                .unwrap()
                .ends_with("job-definition/d:1"));
            assert_eq!(j["status"], "RUNNABLE");
        }
    }
}
