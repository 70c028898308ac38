//! The scheduler's state machine without HTTP, sockets or threads, in the
//! manner of HyperQueue's `TestEnv`: a [`TestEnv`] holds a store in a
//! temporary directory and the state machine over it, sends typed requests
//! the way the actor does (handle, tick, commit, deliver), and plays the
//! workers' side of the protocol by hand.

use shoal_model as m;
use shoal_model::wire::{
    Order, OrderSeq, PollRequest, PollResponse, RegisterWorkerRequest, RegisterWorkerResponse,
    Resources, StartTask, TaskEvent, TaskReport,
};
use shoal_model::{Api, Operation};
use shoal_scheduler::api::{ApiError, Request};
use shoal_scheduler::mailbox::Mailboxes;
use shoal_scheduler::state::StateMachine;
use shoal_scheduler::store::Store;
use shoal_scheduler::Config;

struct TestEnv {
    dir: tempfile::TempDir,
    store: Store,
    sm: StateMachine,
    mail: Mailboxes,
    /// The state machine's time, ms; moved by hand.
    now: u64,
    rt: tokio::runtime::Runtime,
}

impl TestEnv {
    fn new() -> TestEnv {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mail = Mailboxes::default();
        let now = 1_000_000;
        let sm = StateMachine::load(config(dir.path()), &store, mail.clone(), now).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let mut env = TestEnv {
            dir,
            store,
            sm,
            mail,
            now,
            rt,
        };
        env.commit();
        env
    }

    /// Commit what the state machine changed and hand out its orders, as
    /// the actor does after each batch.
    fn commit(&mut self) {
        let batch = self.sm.take_batch();
        self.store.commit(&batch).unwrap();
        self.sm.deliver_orders();
    }

    /// One request, as the actor handles it: its reply once committed.
    fn request(&mut self, req: Result<Request, ApiError>) -> Result<Vec<u8>, ApiError> {
        let reply = self.sm.handle(self.now, req?);
        self.sm.tick(self.now);
        self.commit();
        reply
    }

    /// A typed call, parsed from JSON as the HTTP layer parses it.
    fn call<O: Operation>(&mut self, req: &O) -> Result<O::Response, ApiError> {
        let body = serde_json::to_vec(req).unwrap();
        let parsed = match O::API {
            Api::Aws => Request::parse_aws(O::NAME, &body),
            _ => Request::parse_shoal(O::NAME, &body),
        };
        let reply = self.request(parsed)?;
        Ok(serde_json::from_slice(&reply).expect("the reply's type"))
    }

    /// Register a definition running `command` with this /dev/shm size.
    fn register(&mut self, name: &str, command: &str, shm_mib: Option<i32>) {
        let def: m::RegisterJobDefinitionRequest = serde_json::from_value(serde_json::json!({
            "jobDefinitionName": name, "type": "container",
            "containerProperties": {
                "command": ["sh", "-c", command],
                "resourceRequirements": [
                    {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "256"}],
                "linuxParameters": shm_mib.map(|s| serde_json::json!({ "sharedMemorySize": s })),
            }
        }))
        .unwrap();
        self.call(&def).unwrap();
    }

    fn submit(&mut self, name: &str, definition: &str) -> String {
        let req = m::SubmitJobRequest {
            job_name: name.into(),
            job_queue: "default".into(),
            job_definition: definition.into(),
            ..Default::default()
        };
        self.call(&req).unwrap().job_id
    }

    fn job(&mut self, id: &str) -> m::JobDetail {
        let resp = self
            .call(&m::DescribeJobsRequest {
                jobs: vec![id.into()],
            })
            .unwrap();
        resp.jobs.into_iter().next().expect("the job")
    }

    /// A worker with `vcpus` registers.
    fn worker(&mut self, name: &str, vcpus: u32) -> RegisterWorkerResponse {
        let req = RegisterWorkerRequest {
            name: name.into(),
            address: "10.0.0.1".into(),
            port: 7000,
            capacity: Resources {
                vcpus,
                memory_mib: 4096,
                shm_mib: 2048,
            },
            labels: Default::default(),
            running: Vec::new(),
            log_key: None,
            tls: false,
            notes: Vec::new(),
            allocation: None,
        };
        let reply = self.request(Request::parse_shoal(
            "registerworker",
            &serde_json::to_vec(&req).unwrap(),
        ));
        serde_json::from_slice(&reply.unwrap()).unwrap()
    }

    /// A poll of worker `name` with these reports, acknowledging `ack`:
    /// the orders waiting for it.
    fn poll(
        &mut self,
        name: &str,
        reports: Vec<TaskReport>,
        ack: Option<OrderSeq>,
    ) -> PollResponse {
        let req = PollRequest {
            name: name.into(),
            reports,
            wait_ms: 0,
            phase: Default::default(),
            ack,
            tasks: None,
            shm: Vec::new(),
        };
        self.request(Request::parse_shoal(
            "poll",
            &serde_json::to_vec(&req).unwrap(),
        ))
        .unwrap();
        self.mail.ack(name, ack);
        let (orders, first) = self
            .rt
            .block_on(self.mail.take_or_wait(name, std::time::Duration::ZERO));
        PollResponse { orders, first }
    }

    /// The Start orders in a poll's reply.
    fn starts(resp: &PollResponse) -> Vec<StartTask> {
        resp.orders
            .iter()
            .filter_map(|o| match o {
                Order::Start(s) => Some((**s).clone()),
                Order::Kill { .. } => None,
            })
            .collect()
    }

    /// Stop the state machine and load it again from the store.
    fn restart(&mut self) {
        self.now += 5_000;
        self.mail = Mailboxes::default();
        self.sm = StateMachine::load(
            config(self.dir.path()),
            &self.store,
            self.mail.clone(),
            self.now,
        )
        .unwrap();
        self.commit();
    }
}

fn config(dir: &std::path::Path) -> Config {
    Config {
        state_dir: dir.to_path_buf(),
        ..Config::default()
    }
}

/// The position after the last of a reply's orders.
fn last(resp: &PollResponse) -> Option<OrderSeq> {
    Some(OrderSeq {
        epoch: resp.first.epoch,
        seq: resp.first.seq + resp.orders.len() as u64 - 1,
    })
}

fn report(start: &StartTask, event: TaskEvent) -> TaskReport {
    TaskReport {
        task: start.task.clone(),
        event,
    }
}

#[test]
fn shared_memory_size_travels_from_the_definition_to_the_start_order() {
    let mut env = TestEnv::new();
    env.register("shm", "true", Some(512));
    env.register("plain", "true", None);
    env.worker("w1", 2);
    let a = env.submit("a", "shm");
    let b = env.submit("b", "plain");
    let resp = env.poll("w1", Vec::new(), None);
    let starts = TestEnv::starts(&resp);
    assert_eq!(starts.len(), 2, "{resp:?}");
    let of = |id: &str| {
        starts
            .iter()
            .find(|s| s.task.job_id.job.as_str() == id)
            .unwrap()
    };
    assert_eq!(of(&a).launch.shm_mib, 512);
    assert_eq!(of(&a).alloc.shm_mib, 512, "placed with what it mounts");
    assert_eq!(of(&b).launch.shm_mib, m::DEFAULT_SHM_MIB, "the one default");
    assert_eq!(of(&a).launch.argv, ["sh", "-c", "true"]);
    assert_eq!(env.job(&a).status, "STARTING");
}

#[test]
fn a_job_runs_through_its_states_by_the_workers_reports() {
    let mut env = TestEnv::new();
    env.register("ok", "true", None);
    env.worker("w1", 1);
    let id = env.submit("ok", "ok");
    let resp = env.poll("w1", Vec::new(), None);
    let start = TestEnv::starts(&resp).remove(0);
    env.now += 100;
    env.poll("w1", vec![report(&start, TaskEvent::Started)], last(&resp));
    assert_eq!(env.job(&id).status, "RUNNING");
    env.now += 100;
    let exited = TaskEvent::Exited {
        exit_code: Some(0),
        reason: "Essential container in task exited".into(),
        shm_peak_mib: 3,
    };
    env.poll("w1", vec![report(&start, exited)], last(&resp));
    let job = env.job(&id);
    assert_eq!(job.status, "SUCCEEDED");
    assert_eq!(job.shm_peak_mib, Some(3));
    assert_eq!(job.container.and_then(|c| c.exit_code), Some(0));
}

#[test]
fn an_order_not_acknowledged_is_sent_again_and_an_acknowledged_one_is_not() {
    let mut env = TestEnv::new();
    env.register("ok", "true", None);
    env.worker("w1", 1);
    env.submit("ok", "ok");
    let first = env.poll("w1", Vec::new(), None);
    assert_eq!(TestEnv::starts(&first).len(), 1);
    // The reply was lost: the next poll acknowledges nothing and gets it again.
    let again = env.poll("w1", Vec::new(), None);
    assert_eq!(again.orders, first.orders);
    assert_eq!(again.first, first.first);
    let acked = env.poll("w1", Vec::new(), last(&again));
    assert!(acked.orders.is_empty(), "{acked:?}");
}

#[test]
fn a_drained_node_gets_nothing_new_and_a_resumed_one_does() {
    let mut env = TestEnv::new();
    env.register("ok", "true", None);
    env.worker("w1", 1);
    env.call(&m::DrainNodeRequest {
        name: "w1".into(),
        reason: Some("maintenance".into()),
    })
    .unwrap();
    let id = env.submit("ok", "ok");
    assert!(env.poll("w1", Vec::new(), None).orders.is_empty());
    assert_eq!(env.job(&id).status, "RUNNABLE");
    let nodes = env.call(&m::ListNodesRequest {}).unwrap().nodes;
    assert_eq!(nodes[0].state, "DRAINED");
    assert_eq!(nodes[0].drain_reason.as_deref(), Some("maintenance"));
    env.call(&m::ResumeNodeRequest { name: "w1".into() })
        .unwrap();
    assert_eq!(TestEnv::starts(&env.poll("w1", Vec::new(), None)).len(), 1);
}

#[test]
fn what_was_acknowledged_is_there_after_a_restart() {
    let mut env = TestEnv::new();
    env.register("ok", "true", None);
    let queued: Vec<String> = (0..3).map(|i| env.submit(&format!("j{i}"), "ok")).collect();
    env.restart();
    for id in &queued {
        assert_eq!(env.job(id).status, "RUNNABLE", "{id}");
    }
    // Queue order survives: a 1-vCPU node starts the first submitted first.
    env.worker("w1", 1);
    let starts = TestEnv::starts(&env.poll("w1", Vec::new(), None));
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0].task.job_id.job.as_str(), queued[0]);
}

#[test]
fn bad_requests_are_client_errors_naming_the_field() {
    let mut env = TestEnv::new();
    let e = env
        .call(&m::SubmitJobRequest {
            job_name: "x".into(),
            job_queue: "nope".into(),
            job_definition: "nothing".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(e, ApiError::Client(_)), "{e:?}");
    let e = env
        .call(&m::DrainNodeRequest {
            name: " ".into(),
            reason: None,
        })
        .unwrap_err();
    assert!(e.to_string().contains("name"), "{e}");
}

#[test]
fn a_scheduling_policy_and_its_queue_survive_a_restart_and_still_order_by_share() {
    let mut env = TestEnv::new();
    let policy = m::FairsharePolicy {
        share_decay_seconds: Some(3600),
        compute_reservation: None,
        share_distribution: vec![m::ShareAttributes {
            share_identifier: "B".into(),
            weight_factor: Some(0.25),
        }],
    };
    let arn = env
        .call(&m::CreateSchedulingPolicyRequest {
            name: "fair".into(),
            fairshare_policy: Some(policy.clone()),
            ..Default::default()
        })
        .unwrap()
        .arn;
    env.call(&m::CreateJobQueueRequest {
        job_queue_name: "fq".into(),
        priority: 1,
        scheduling_policy_arn: Some(arn.clone()),
        compute_environment_order: vec![m::ComputeEnvironmentOrder {
            order: 1,
            compute_environment: "default".into(),
        }],
        ..Default::default()
    })
    .unwrap();
    env.register("ok", "true", None);
    let submit = |env: &mut TestEnv, share: &str| {
        env.call(&m::SubmitJobRequest {
            job_name: "j".into(),
            job_queue: "fq".into(),
            job_definition: "ok".into(),
            share_identifier: Some(share.into()),
            ..Default::default()
        })
        .unwrap()
        .job_id
    };
    let a = submit(&mut env, "A");
    let b = submit(&mut env, "B");
    env.restart();
    let got = env
        .call(&m::DescribeSchedulingPoliciesRequest {
            arns: vec![arn.clone()],
        })
        .unwrap();
    assert_eq!(got.scheduling_policies[0].fairshare_policy, Some(policy));
    assert_eq!(env.job(&b).share_identifier.as_deref(), Some("B"));
    // Deleting it is refused while the queue uses it.
    let e = env
        .call(&m::DeleteSchedulingPolicyRequest { arn: arn.clone() })
        .unwrap_err();
    assert!(e.to_string().contains("used by job queue(s) fq"), "{e}");
    // Both shares have used nothing: the tie goes to A, then B.
    env.worker("w1", 1);
    let starts = TestEnv::starts(&env.poll("w1", Vec::new(), None));
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0].task.job_id.job.as_str(), a);
}

#[test]
fn a_head_job_waiting_past_its_queue_time_limit_is_cancelled_with_aws_reason() {
    let mut env = TestEnv::new();
    let rule = |reason: &str, secs: i32| m::JobStateTimeLimitAction {
        reason: reason.into(),
        state: "RUNNABLE".into(),
        max_time_seconds: secs,
        action: "CANCEL".into(),
    };
    let queue = |name: &str, rules: Vec<m::JobStateTimeLimitAction>| m::CreateJobQueueRequest {
        job_queue_name: name.into(),
        priority: 1,
        compute_environment_order: vec![m::ComputeEnvironmentOrder {
            order: 1,
            compute_environment: "default".into(),
        }],
        job_state_time_limit_actions: Some(rules),
        ..Default::default()
    };
    // AWS's minimum holds unless the scheduler lowers it.
    let e = env
        .call(&queue(
            "short",
            vec![rule("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY", 599)],
        ))
        .unwrap_err();
    assert!(e.to_string().contains("maxTimeSeconds"), "{e}");
    let e = env
        .call(&queue("bad", vec![rule("CAPACITY:SOMETHING", 600)]))
        .unwrap_err();
    assert!(e.to_string().contains("reason"), "{e}");
    env.call(&queue(
        "lim",
        vec![
            rule("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY", 600),
            rule("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE", 900),
        ],
    ))
    .unwrap();
    env.register("ok", "true", None);
    let id = env
        .call(&m::SubmitJobRequest {
            job_name: "j".into(),
            job_queue: "lim".into(),
            job_definition: "ok".into(),
            ..Default::default()
        })
        .unwrap()
        .job_id;
    // No worker is registered: the head waits for
    // MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE, 900 s.
    let job = env.job(&id);
    assert_eq!(job.status, "RUNNABLE");
    for step in [600_000, 299_000] {
        env.now += step;
        env.sm.tick(env.now);
        env.commit();
        assert_eq!(env.job(&id).status, "RUNNABLE", "after {step} ms more");
    }
    env.now += 1_000;
    env.sm.tick(env.now);
    env.commit();
    let job = env.job(&id);
    assert_eq!(job.status, "FAILED");
    assert_eq!(
        job.status_reason.as_deref(),
        Some(
            "Canceled by JobStateTimeLimit action due to reason: MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE"
        )
    );
}
