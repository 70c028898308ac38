//! A task that outlives its timeout is ended by its worker, even with no
//! scheduler to end it: [`TIMEOUT_BACKSTOP`] after the timeout, with the
//! timeout's reason and no success.

use shoal_model::wire::{StartTask, TaskEvent, TaskRef, TIMEOUT_REASON};
use shoal_model::{LaunchSpec, Resources};
use shoal_worker::cgroup::Cgroups;
use shoal_worker::images::{ImageSettings, Images};
use shoal_worker::task::{NodeSettings, Tasks, TIMEOUT_BACKSTOP};
use std::time::{Duration, Instant};

#[test]
fn a_task_past_its_timeout_is_ended_by_its_worker() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let leaf = format!("shoal-backstop-{}", std::process::id());
    let tasks = Tasks::new(
        dir.path().to_path_buf(),
        Cgroups::detect(&leaf),
        &[0],
        tx,
        None,
        NodeSettings {
            node: "backstop".into(),
            address: "127.0.0.1".into(),
            policy: Default::default(),
            exec_wait: Duration::from_secs(1),
            ca_pem: None,
            images: std::sync::Arc::new(Images::new(
                dir.path().join("images"),
                ImageSettings::default(),
            )),
        },
    );
    let task = TaskRef {
        job_id: "backstop-job".parse().unwrap(),
        attempt: 0,
        node_index: 0,
    };
    let started = Instant::now();
    tasks.start(StartTask {
        task: task.clone(),
        launch: LaunchSpec {
            argv: vec!["sleep".into(), "60".into()],
            shm_mib: 16,
            timeout_s: Some(1),
            ..Default::default()
        },
        hostfile: String::new(),
        alloc: Resources {
            vcpus: 1,
            memory_mib: 256,
            shm_mib: 16,
        },
        job_token: None,
    });
    let limit = Duration::from_secs(1) + TIMEOUT_BACKSTOP + Duration::from_secs(20);
    let mut events = Vec::new();
    let ended = loop {
        let r = rx.recv_timeout(limit).expect("the task's reports");
        assert_eq!(r.task, task);
        events.push(r.event.clone());
        if let TaskEvent::Exited {
            exit_code, reason, ..
        } = r.event
        {
            break (exit_code, reason);
        }
        assert!(
            !matches!(r.event, TaskEvent::NotStarted { .. }),
            "{events:?}"
        );
    };
    let took = started.elapsed();
    // The worker's own end removes what it made (the cgroup bases).
    tasks.stop_all(Duration::from_secs(1));
    assert_eq!(events[0], TaskEvent::Started, "{events:?}");
    let (exit_code, reason) = ended;
    assert!(reason.starts_with(TIMEOUT_REASON), "{reason}");
    assert!(reason.contains("worker backstop"), "{reason}");
    assert_ne!(exit_code, Some(0), "{reason}");
    assert!(
        took >= Duration::from_secs(1) + TIMEOUT_BACKSTOP,
        "ended after {took:?}, before its timeout and the backstop"
    );
}
