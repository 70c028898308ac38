//! Queues end to end (issue 16): a `jobStateTimeLimitActions` rule
//! cancels the head of its queue with AWS's reason, on a scheduler whose
//! 600 s minimum is lowered by `--min-state-time-limit-seconds`;
//! GetJobQueueSnapshot through boto3 lists the RUNNABLE jobs in the order
//! they then start, with Shoal's start estimates.

mod common;

use common::local::Cluster;
use common::{run_boto3_check, start_scheduler, SHOAL};
use serde_json::json;

#[test]
fn a_queue_snapshot_lists_runnable_jobs_in_the_order_they_start() {
    let c = Cluster::start(&["w1", "w2"]);
    let said = run_boto3_check("boto3_snapshot_check.py", &[&c.endpoint, SHOAL]);
    println!("{said}");
}

#[test]
fn a_head_that_cannot_fit_is_cancelled_by_its_queue_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (scheduler, endpoint) = start_scheduler(
        &dir.path().join("scheduler"),
        &[
            "--worker-timeout-ms",
            "1500",
            "--min-state-time-limit-seconds",
            "2",
        ],
    );
    let c = Cluster::with(dir, scheduler, endpoint, &["w1"]);
    c.aws(
        "createjobqueue",
        json!({"jobQueueName": "lim", "priority": 1,
               "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "default"}],
               "jobStateTimeLimitActions": [{"reason": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
                   "state": "RUNNABLE", "maxTimeSeconds": 2, "action": "CANCEL"}]}),
    );
    let q = c.aws("describejobqueues", json!({"jobQueues": ["lim"]}));
    assert_eq!(
        q["jobQueues"][0]["jobStateTimeLimitActions"][0]["maxTimeSeconds"],
        2
    );
    // The worker offers 1 vCPU; the job needs 4.
    c.register(json!({"jobDefinitionName": "big", "type": "container",
        "containerProperties": {"command": ["true"], "resourceRequirements": [
            {"type": "VCPU", "value": "4"}, {"type": "MEMORY", "value": "64"}]}}));
    let id = c.aws(
        "submitjob",
        json!({"jobName": "big", "jobQueue": "lim", "jobDefinition": "big"}),
    )["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    let job = c.wait_done(&id);
    assert_eq!(job["status"], "FAILED", "{job}");
    assert_eq!(
        job["statusReason"],
        "Canceled by JobStateTimeLimit action due to reason: MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
        "{job}"
    );
    let waited = job["stoppedAt"].as_i64().unwrap() - job["createdAt"].as_i64().unwrap();
    assert!(waited >= 2000, "cancelled after {waited} ms");
    // Below the lowered minimum is still refused, naming the field.
    let r = c
        .http
        .post(format!("{}/v1/updatejobqueue", c.endpoint))
        .json(&json!({"jobQueue": "lim", "jobStateTimeLimitActions": [{"reason": "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
            "state": "RUNNABLE", "maxTimeSeconds": 1, "action": "CANCEL"}]}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().unwrap().contains("maxTimeSeconds"));
}
