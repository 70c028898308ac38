//! The `shoal` client commands as a user meets them: what cancel and
//! terminate say, the job history, logs of jobs that have not started and
//! of array jobs, and output into a closed pipe.

mod common;

use common::local::{sh_def, Cluster};
use common::SHOAL;
use serde_json::{json, Value};
use std::process::{Command, Output, Stdio};

fn shoal(c: &Cluster, args: &[&str]) -> Output {
    Command::new(SHOAL)
        .args(args)
        .args(["--endpoint", &c.endpoint])
        .env_remove("SHOAL_CREDENTIALS")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn cancel_of_a_running_job_says_to_terminate_it_and_fails() {
    let c = Cluster::start(&["w1"]);
    c.register(sh_def("long", "sleep 60.021", 16));
    let id = c.submit("long", "long");
    c.wait_for("the job to run", || c.job(&id)["status"] == "RUNNING");
    let o = shoal(&c, &["cancel", &id]);
    assert!(
        !o.status.success(),
        "cancel of a running job fails: {}",
        text(&o)
    );
    assert!(text(&o).contains("shoal terminate"), "{}", text(&o));
    assert_eq!(c.job(&id)["status"], "RUNNING", "and it goes on running");
    // Terminate says what it did; a second time, that there is nothing to do.
    let o = shoal(&c, &["terminate", &id]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("terminated (was RUNNING"), "{}", text(&o));
    assert_eq!(c.wait_done(&id)["status"], "FAILED");
    let o = shoal(&c, &["terminate", &id]);
    assert!(!o.status.success());
    assert!(text(&o).contains("already FAILED"), "{}", text(&o));
    // Several at once: one waiting job is cancelled, an unknown one named.
    c.register(json!({ "jobDefinitionName": "never", "type": "container",
        "containerProperties": { "command": ["true"],
          "resourceRequirements": [{"type":"VCPU","value":"64"},{"type":"MEMORY","value":"64"}] } }));
    let waiting = c.submit("never", "never");
    let o = shoal(&c, &["cancel", &waiting, "no-such-job"]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains(&format!("{waiting}: cancelled (was")), "{t}");
    assert!(t.contains("no-such-job: no such job"), "{t}");
    assert_eq!(c.job(&waiting)["status"], "FAILED");
}

#[test]
fn jobs_all_lists_finished_jobs_with_their_exit_codes_and_arrays_by_state() {
    let c = Cluster::start(&["w1"]);
    c.register(sh_def("ok", "true", 16));
    c.register(sh_def("bad", "exit 3", 16));
    let ok = c.submit("ok", "ok");
    let bad = c.submit("bad", "bad");
    c.wait_done(&ok);
    c.wait_done(&bad);
    let arr: String = c.aws(
        "submitjob",
        json!({ "jobName": "arr", "jobQueue": "default", "jobDefinition": "ok",
                "arrayProperties": { "size": 3 } }),
    )["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    c.wait_done(&arr);
    // By default only unfinished jobs: none.
    let o = shoal(&c, &["jobs"]);
    assert!(o.status.success());
    assert!(!String::from_utf8_lossy(&o.stdout).contains(&ok));
    let o = shoal(&c, &["jobs", "--all"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", text(&o));
    let header = out.lines().next().unwrap_or_default();
    for col in ["EXIT", "CREATED", "STARTED", "STOPPED", "ELAPSED"] {
        assert!(header.contains(col), "{header}");
    }
    let row = |id: &str| {
        out.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_default()
            .to_string()
    };
    let exit_col = |line: &str| line.split_whitespace().nth(5).map(String::from);
    assert!(row(&ok).contains("SUCCEEDED"), "{out}");
    assert_eq!(exit_col(&row(&ok)).as_deref(), Some("0"), "{out}");
    assert!(row(&bad).contains("FAILED"), "{out}");
    assert_eq!(exit_col(&row(&bad)).as_deref(), Some("3"), "{out}");
    assert!(
        row(&format!("{arr}:[0-2]")).contains("SUCCEEDED"),
        "an array is one row per state of its children: {out}"
    );
    // Repeated -s, and the children one by one.
    let o = shoal(&c, &["jobs", "-s", "FAILED", "-s", "succeeded", "--expand"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.contains(&format!("{arr}:1 ")), "{out}");
    assert!(out.contains(&bad), "{out}");
    // --since: nothing was created in the future.
    let o = shoal(&c, &["jobs", "--all", "--since", "1h", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(3), "{v}");
    // Logs of the array job list its children.
    let o = shoal(&c, &["logs", &arr]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(&format!("{arr}:2")), "{}", text(&o));
}

#[test]
fn logs_follow_waits_for_a_job_that_has_not_started() {
    let mut c = Cluster::start(&[]);
    c.register(sh_def("hello", "echo hello from the job", 16));
    let id = c.submit("hello", "hello");
    let child = Command::new(SHOAL)
        .args(["logs", "--follow", &id, "--endpoint", &c.endpoint])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // No worker yet: the job waits, and so does `logs --follow`.
    c.wait_for("the job to be runnable", || {
        c.job(&id)["status"] == "RUNNABLE"
    });
    c.add_worker("w1");
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("hello from the job"), "{}", text(&o));
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let c = Cluster::start(&[]);
    // More JSON than a pipe holds (64 KiB), so that `head` closes it
    // while shoal still writes.
    c.register(sh_def("ok", "true", 16));
    for i in 0..300 {
        c.submit(&format!("j{i}"), "ok");
    }
    let sh = format!(
        "{SHOAL} jobs --all --json --endpoint {} | head -c 10 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
        c.endpoint
    );
    let o = Command::new("bash").args(["-c", &sh]).output().unwrap();
    let t = text(&o);
    assert!(!t.contains("panicked"), "{t}");
    let code = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_ne!(code, "101", "no panic exit: {t}");
    // An empty SHOAL_CREDENTIALS means no keys.
    let o = Command::new(SHOAL)
        .args(["jobs", "--endpoint", &c.endpoint])
        .env("SHOAL_CREDENTIALS", "")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // Logs that are not a terminal carry no colour codes.
    let o = Command::new(SHOAL)
        .args(["worker", "--scheduler", "http://127.0.0.1:1", "--name", "x"])
        .args(["--cpuset", "0-4095"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("are not this machine's"), "{t}");
    assert!(!t.contains('\u{1b}'), "no ANSI codes: {t:?}");
}

#[test]
fn cluster_up_refuses_more_vcpus_per_node_than_the_machine_has() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(SHOAL)
        .args([
            "cluster",
            "up",
            "--nodes",
            "1",
            "--cpus-per-node",
            "100000",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("--cpus-per-node 100000: this machine has"),
        "{t}"
    );
}
