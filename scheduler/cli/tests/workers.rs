//! End-to-end tests of workers: the real `shoal` binary as a scheduler and
//! as workers on this machine, running real jobs with a private /dev/shm.
//! They need root or unprivileged user namespaces (CI runs as root).

mod common;

use common::local::{processes_running, sh_def, Cluster};
use common::{free_port, start_scheduler_at, SHOAL};
use serde_json::{json, Value};
use std::process::Command;

fn shm_mib_of(df: &str) -> Option<u64> {
    // `df -m /dev/shm`: the size column of the line for /dev/shm.
    df.lines()
        .find(|l| l.trim_end().ends_with("/dev/shm"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn a_job_gets_a_private_dev_shm_of_its_size_and_batch_variables() {
    let c = Cluster::start(&["n1"]);
    c.register(sh_def("shm", "df -m /dev/shm; touch /dev/shm/mine; head -c 3000000 /dev/zero > /dev/shm/fill; sleep 0.3; env | grep ^AWS_BATCH_ | sort", 96));
    let id = c.submit("shm", "shm");
    let j = c.wait_done(&id);
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    let out = c.logs(&id);
    assert_eq!(shm_mib_of(&out), Some(96), "{out}");
    assert!(out.contains(&format!("AWS_BATCH_JOB_ID={id}")), "{out}");
    assert!(out.contains("AWS_BATCH_JQ_NAME=default"), "{out}");
    assert!(out.contains("AWS_BATCH_JOB_ATTEMPT=1"), "{out}");
    assert!(
        j["shmPeakMiB"].as_u64().unwrap_or(0) >= 2,
        "the /dev/shm high-water mark is reported: {j}"
    );
    // The job's /dev/shm was its own: nothing of it reached the host's.
    assert!(!std::path::Path::new("/dev/shm/mine").exists());
    assert_eq!(j["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(j["attempts"][0]["container"]["exitCode"], 0);
}

#[test]
fn filling_a_small_dev_shm_fails_the_job_and_spares_the_host() {
    let c = Cluster::start(&["n1"]);
    c.register(sh_def(
        "fill",
        "head -c 209715200 /dev/zero > /dev/shm/big",
        32,
    ));
    let id = c.submit("fill", "fill");
    let j = c.wait_done(&id);
    assert_eq!(j["status"], "FAILED", "{j}");
    assert_ne!(j["attempts"][0]["container"]["exitCode"], 0, "{j}");
    assert!(!std::path::Path::new("/dev/shm/big").exists());
}

#[test]
fn a_multinode_job_runs_one_task_per_node_with_the_gang_variables() {
    let c = Cluster::start(&["n1", "n2"]);
    let ce = &c.aws("describecomputeenvironments", json!({}))["computeEnvironments"][0];
    let reason = ce["statusReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("2 workers (n1, n2)"),
        "DescribeComputeEnvironments shows the workers: {ce}"
    );
    c.register(json!({ "jobDefinitionName": "mn", "type": "multinode",
        "nodeProperties": { "numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
          { "targetNodes": "0:", "container": { "command": ["sh", "-c", "df -m /dev/shm; env | grep -E '^(AWS_BATCH|SHOAL_NODE)' | sort; cat $SHOAL_HOSTFILE; b=${AWS_BATCH_JOB_ID%#*}; if [ \"$AWS_BATCH_JOB_NODE_INDEX\" = 0 ]; then i=0; while [ ! -e /tmp/$b.done ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done; rm -f /tmp/$b.done; else touch /tmp/$b.done; fi"],
            "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"256"}],
            "linuxParameters": { "sharedMemorySize": 96 } } } ] } }));
    let id = c.submit("mn", "mn");
    let j = c.wait_done(&id);
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    for n in 0..2 {
        let out = c.logs(&format!("{id}#{n}"));
        assert_eq!(shm_mib_of(&out), Some(96), "node {n}: {out}");
        assert!(
            out.contains(&format!("AWS_BATCH_JOB_NODE_INDEX={n}")),
            "{out}"
        );
        assert!(out.contains("AWS_BATCH_JOB_NUM_NODES=2"), "{out}");
        assert!(out.contains("AWS_BATCH_JOB_MAIN_NODE_INDEX=0"), "{out}");
        assert!(
            out.contains("AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS=127.0.0.1"),
            "{out}"
        );
        assert!(
            out.contains("slots=1"),
            "the hostfile lists the gang: {out}"
        );
    }
}

#[test]
fn a_lost_worker_fails_the_attempt_and_the_retry_succeeds_once_it_is_back() {
    let mut c = Cluster::start(&["n1", "n2"]);
    // The first attempt sleeps long enough to be interrupted; the second
    // (AWS_BATCH_JOB_ATTEMPT=2) ends at once.
    c.register(json!({ "jobDefinitionName": "gang", "type": "multinode",
        "retryStrategy": { "attempts": 2 },
        "nodeProperties": { "numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
          { "targetNodes": "0:", "container": { "command": ["sh", "-c", "[ \"$AWS_BATCH_JOB_ATTEMPT\" = 2 ] || sleep 60.017"],
            "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"256"}] } } ] } }));
    let id = c.submit("gang", "gang");
    c.wait_for("the gang to run", || c.job(&id)["status"] == "RUNNING");
    c.kill_worker("n2");
    c.wait_for("the first attempt to fail", || {
        c.job(&id)["attempts"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });
    let j = c.job(&id);
    let reason = j["attempts"][0]["statusReason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("n2"), "the reason names the lost node: {j}");
    c.add_worker("n2");
    let j = c.wait_done(&id);
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    assert_eq!(j["attempts"].as_array().unwrap().len(), 2);
    // Nothing of the first attempt survives on either node.
    c.wait_for("the first attempt's processes to end", || {
        processes_running("sleep 60.017") == 0
    });
}

#[test]
fn a_worker_keeps_its_running_job_across_a_scheduler_restart() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let state = dir.path().join("scheduler");
    let (scheduler, endpoint) =
        start_scheduler_at(&listen, &state, &["--worker-timeout-ms", "5000"]);
    let go = dir.path().join("go");
    let mut c = Cluster::with(dir, scheduler, endpoint, &["n1"]);
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.02; done; echo finished",
        go.display()
    );
    c.register(sh_def("waits", &script, 16));
    let id = c.submit("waits", "waits");
    c.wait_for("the job to run", || c.job(&id)["status"] == "RUNNING");
    // kill -9 the scheduler and bring it back on the same address and state.
    std::mem::replace(
        &mut c._scheduler,
        start_scheduler_at("127.0.0.1:0", &c.dir.path().join("spare"), &[]).0,
    )
    .kill9();
    let (restarted, endpoint) =
        start_scheduler_at(&listen, &state, &["--worker-timeout-ms", "5000"]);
    c._scheduler = restarted;
    assert_eq!(c.endpoint, endpoint);
    assert_eq!(
        c.job(&id)["status"],
        "RUNNING",
        "the restarted scheduler still knows the job runs"
    );
    std::fs::write(&go, b"").unwrap();
    let j = c.wait_done(&id);
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    assert_eq!(
        j["attempts"].as_array().unwrap().len(),
        1,
        "the same attempt finished: {j}"
    );
    assert!(c.logs(&id).contains("finished"));
}

#[test]
fn a_job_runs_as_the_definitions_user() {
    let c = Cluster::start(&["n1"]);
    let mut def = sh_def("who", "id -u; touch /dev/shm/mine && echo shm-writable", 16);
    def["containerProperties"]["user"] = json!("nobody");
    c.register(def);
    let id = c.submit("who", "who");
    assert_eq!(c.wait_done(&id)["status"], "SUCCEEDED");
    let out = c.logs(&id);
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("user nobody exists")
        .uid
        .as_raw();
    assert_eq!(
        out.lines().next(),
        Some(nobody.to_string().as_str()),
        "{out}"
    );
    assert!(out.contains("shm-writable"), "{out}");
}

#[test]
fn dev_shm_pages_count_against_the_memory_limit() {
    let c = Cluster::start(&["n1"]);
    // 256 MiB of /dev/shm but only 64 MiB of memory: filling 150 MB must
    // hit the memory cgroup, not the host.
    let mut def = sh_def("oom", "head -c 150000000 /dev/zero > /dev/shm/x", 256);
    def["containerProperties"]["resourceRequirements"][1]["value"] = json!("64");
    c.register(def);
    let id = c.submit("oom", "oom");
    let j = c.wait_done(&id);
    assert_eq!(j["status"], "FAILED", "{j}");
    assert_eq!(
        j["attempts"][0]["container"]["exitCode"], 137,
        "killed by the OOM killer: {j}"
    );
}

#[test]
fn an_unprivileged_worker_gives_jobs_a_private_dev_shm_through_a_user_namespace() {
    use std::os::unix::fs::PermissionsExt;
    let mut c = Cluster::start(&[]);
    // The worker runs as `nobody` (this test itself runs as root, as CI does).
    std::fs::set_permissions(c.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let state = c.dir.path().join("u1");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    c.add_worker_as(
        "u1",
        &[
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
        ],
    );
    c.register(sh_def(
        "unpriv",
        "df -m /dev/shm; touch /dev/shm/unpriv-mine",
        48,
    ));
    let id = c.submit("unpriv", "unpriv");
    let j = c.wait_done(&id);
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    let out = c.logs(&id);
    assert_eq!(shm_mib_of(&out), Some(48), "{out}");
    // That limits are off is said once, on the node, not in every job's log.
    assert!(!out.contains("without memory and CPU limits"), "{out}");
    let notes = c.shoal("listnodes", json!({}))["nodes"][0]["notes"].to_string();
    assert!(notes.contains("without memory and CPU limits"), "{notes}");
    let ces = c.aws("describecomputeenvironments", json!({}));
    assert!(
        ces.to_string()
            .contains("u1: jobs run without memory and CPU limits"),
        "{ces}"
    );
    assert!(!std::path::Path::new("/dev/shm/unpriv-mine").exists());
}

#[test]
fn a_job_on_a_worker_refused_user_namespaces_fails_saying_so_and_how_to_allow_them() {
    use std::os::unix::fs::PermissionsExt;
    // A user namespace of the test's own whose user.max_user_namespaces is
    // 0: an unprivileged worker inside it cannot make one for its jobs
    // (the host's settings stay as they are).
    let holder = common::Proc(
        Command::new("unshare")
            .args(["--user", "sleep", "600"])
            .spawn()
            .unwrap(),
    );
    let pid = holder.0.id();
    wait_for_own_userns(pid);
    for f in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{pid}/{f}"), "0 0 1\n65534 65534 1\n").unwrap();
    }
    let mut c = Cluster::start(&[]);
    std::fs::set_permissions(c.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let state = c.dir.path().join("u2");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let pid = pid.to_string();
    c.add_worker_as(
        "u2",
        &[
            "nsenter",
            "-t",
            &pid,
            "-U",
            "--preserve-credentials",
            "sh",
            "-c",
            "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\"",
            "sh",
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ],
    );
    // The worker said so at start, on its node.
    let notes = c.shoal("listnodes", json!({}))["nodes"][0]["notes"].to_string();
    assert!(notes.contains("user namespaces are refused"), "{notes}");
    c.register(sh_def("needs-userns", "echo never", 16));
    let id = c.submit("needs-userns", "needs-userns");
    let j = c.wait_done(&id);
    assert_eq!(j["status"], "FAILED", "{j}");
    let reason = j["statusReason"].as_str().unwrap_or_default();
    assert!(reason.contains("user namespaces are refused"), "{reason}");
    assert!(
        reason.contains("user.max_user_namespaces"),
        "the knob to turn: {reason}"
    );
    assert!(!reason.contains("os error 22"), "{reason}");
    assert!(c.logs(&id).contains("user namespaces are refused"));
    drop(c);
    drop(holder);
}

/// Wait until `pid` has left the test's user namespace (`unshare` made its
/// own before it runs `sleep`).
fn wait_for_own_userns(pid: u32) {
    let mine = std::fs::read_link("/proc/self/ns/user").unwrap();
    common::wait_for("the user namespace", || {
        std::fs::read_link(format!("/proc/{pid}/ns/user")).is_ok_and(|ns| ns != mine)
    });
}

#[test]
fn tmpfs_mounts_and_volumes_are_mounted_in_the_jobs_namespace() {
    let mut c = Cluster::start(&[]);
    let host = c.dir.path().join("data");
    std::fs::create_dir_all(&host).unwrap();
    c.add_worker_with("n1", &[], &["--allow-volume", host.to_str().unwrap()]);
    std::fs::write(host.join("input.txt"), "from the host\n").unwrap();
    // Writable by the job's user (nobody): only the read-only mount stops it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o777)).unwrap();
    // Shoal runs host processes: mount points must exist on the host.
    let scratch = c.dir.path().join("scratch");
    let data = c.dir.path().join("mnt-data");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    let script = format!(
        "df -m {s} | tail -1; cat {d}/input.txt; touch {d}/nope 2>/dev/null && echo data-writable || echo data-read-only; grep NoNewPrivs /proc/self/status",
        s = scratch.display(),
        d = data.display()
    );
    c.register(json!({ "jobDefinitionName": "mounts", "type": "container",
        "containerProperties": { "command": ["sh", "-c", script],
          "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"256"}],
          "linuxParameters": { "tmpfs": [{ "containerPath": scratch.to_str().unwrap(), "size": 16 }] },
          "volumes": [{ "name": "data", "host": { "sourcePath": host.to_str().unwrap() } }],
          "mountPoints": [{ "sourceVolume": "data", "containerPath": data.to_str().unwrap(), "readOnly": true }] } }));
    let id = c.submit("mounts", "mounts");
    let j = c.wait_done(&id);
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    let out = c.logs(&id);
    let scratch_mib: Option<u64> = out
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok());
    assert_eq!(scratch_mib, Some(16), "{out}");
    assert!(out.contains("from the host"), "{out}");
    assert!(out.contains("data-read-only"), "{out}");
    // Mounting over any path of its namespace must not let a job gain
    // privileges through set-user-id programs reading what it mounted.
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(!host.join("nope").exists());
    // A mount point that does not exist is refused, not made on the host.
    let missing = c.dir.path().join("not-there");
    c.register(json!({ "jobDefinitionName": "missing", "type": "container",
        "containerProperties": { "command": ["true"],
          "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"256"}],
          "linuxParameters": { "tmpfs": [{ "containerPath": missing.to_str().unwrap(), "size": 16 }] } } }));
    let id = c.submit("missing", "missing");
    let j = c.wait_done(&id);
    assert_eq!(j["status"], "FAILED", "{j}");
    assert!(
        j["attempts"][0]["statusReason"]
            .as_str()
            .unwrap_or_default()
            .contains("not an existing directory"),
        "{j}"
    );
    assert!(
        !missing.exists(),
        "the worker made no directory on the host"
    );
    assert!(
        !std::path::Path::new("/data").exists() || std::fs::read_dir("/data").is_ok(),
        "nothing mounted on the host"
    );
}

#[test]
fn volumes_and_devices_outside_the_operators_allow_list_are_refused() {
    let mut c = Cluster::start(&[]);
    let allowed = c.dir.path().join("allowed");
    let secret = c.dir.path().join("secret");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::create_dir_all(&secret).unwrap();
    std::os::unix::fs::symlink(&secret, allowed.join("escape")).unwrap();
    c.add_worker_with(
        "n1",
        &[],
        &[
            "--allow-volume",
            allowed.to_str().unwrap(),
            "--allow-device",
            "/dev/null",
        ],
    );
    let def = |name: &str, source: &std::path::Path, device: &str| {
        json!({ "jobDefinitionName": name, "type": "container",
            "containerProperties": { "command": ["true"],
              "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"64"}],
              "linuxParameters": { "devices": [{ "hostPath": device }] },
              "volumes": [{ "name": "v", "host": { "sourcePath": source.to_str().unwrap() } }],
              "mountPoints": [{ "sourceVolume": "v", "containerPath": "/mnt", "readOnly": true }] } })
    };
    c.register(def("inside", &allowed, "/dev/null"));
    c.register(def("outside", &secret, "/dev/null"));
    c.register(def("symlink", &allowed.join("escape"), "/dev/null"));
    c.register(def("device", &allowed, "/dev/mem"));
    let ok = c.submit("inside", "inside");
    assert_eq!(c.wait_done(&ok)["status"], "SUCCEEDED");
    for (name, flag) in [
        ("outside", "--allow-volume"),
        ("symlink", "--allow-volume"),
        ("device", "--allow-device"),
    ] {
        let id = c.submit(name, name);
        let j = c.wait_done(&id);
        assert_eq!(j["status"], "FAILED", "{name}: {j}");
        let reason = j["attempts"][0]["statusReason"]
            .as_str()
            .unwrap_or_default();
        assert!(
            reason.contains("allow-list") && reason.contains(flag),
            "{name}: the reason says why and what to do: {j}"
        );
    }
}

#[test]
fn a_job_cannot_reach_another_jobs_dev_shm_even_through_proc() {
    let c = Cluster::start(&["n1", "n2"]);
    let go = c.dir.path().join("go");
    c.register(sh_def(
        "holder",
        &format!(
            "id -u; echo secret > /dev/shm/secret-a; while [ ! -e {} ]; do sleep 0.01; done",
            go.display()
        ),
        8,
    ));
    // Every way in a host process has: its own /dev/shm, and every other
    // process's root and cwd through /proc.
    c.register(sh_def(
        "snoop",
        "id -u; ls /dev/shm; for p in /proc/[0-9]*; do cat $p/root/dev/shm/secret-a $p/cwd/../../../dev/shm/secret-a 2>/dev/null; done; echo scanned",
        8,
    ));
    let holder = c.submit("holder", "holder");
    c.wait_for("the holder to run", || {
        c.job(&holder)["status"] == "RUNNING"
    });
    let snoop = c.submit("snoop", "snoop");
    let j = c.wait_done(&snoop);
    std::fs::write(&go, b"").unwrap();
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    assert_eq!(c.wait_done(&holder)["status"], "SUCCEEDED");
    let out = c.logs(&snoop);
    assert!(out.contains("scanned"), "{out}");
    assert!(
        !out.contains("secret"),
        "another job's /dev/shm leaked: {out}"
    );
    let (a, b) = (c.logs(&holder), out);
    assert_ne!(
        a.lines().next(),
        b.lines().next(),
        "jobs that name no user run as different users: {a} / {b}"
    );
}

#[test]
fn a_job_cannot_replace_the_files_the_worker_writes_for_it() {
    let c = Cluster::start(&["n1"]);
    // The worker (root) writes the log and hostfile in the task directory:
    // a job that could swap them for symlinks would have root write or
    // serve any file. Its own working directory is the place to write.
    c.register(sh_def(
        "swap",
        "ln -sf /etc/hostname \"$SHOAL_TASK_DIR/output.log\" 2>/dev/null && echo swapped-log || echo log-kept; \
         ln -sf /etc/hostname \"$SHOAL_HOSTFILE\" 2>/dev/null && echo swapped-hostfile || echo hostfile-kept; \
         touch mine && [ \"$HOME\" = \"$PWD\" ] && echo cwd-is-home-and-writable",
        8,
    ));
    let id = c.submit("swap", "swap");
    let j = c.wait_done(&id);
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    let out = c.logs(&id);
    assert!(out.contains("log-kept"), "{out}");
    assert!(out.contains("hostfile-kept"), "{out}");
    assert!(out.contains("cwd-is-home-and-writable"), "{out}");
}

#[test]
fn a_job_and_its_children_are_in_its_own_cgroup_in_every_hierarchy() {
    let c = Cluster::start(&["n1"]);
    c.register(sh_def(
        "cg",
        "sed 's/^/main:/' /proc/self/cgroup; sh -c 'sed s/^/child:/ /proc/self/cgroup'",
        16,
    ));
    let id = c.submit("cg", "cg");
    let j = c.wait_done(&id);
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    let out = c.logs(&id);
    // `N:controllers:path`: the hierarchies of cgroup v1 that the worker
    // uses, or v2's one where there are none.
    let v1 = out.lines().any(|l| l.contains(":memory:"));
    for who in ["main:", "child:"] {
        let lines: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix(who))
            .filter(|l| {
                let ctrls = l.split(':').nth(1).unwrap_or("");
                if v1 {
                    ctrls
                        .split(',')
                        .any(|c| ["memory", "cpuset", "pids"].contains(&c))
                } else {
                    l.starts_with("0::")
                }
            })
            .collect();
        assert!(
            lines.len() >= if v1 { 3 } else { 1 },
            "{who} {lines:?}\n{out}"
        );
        for l in lines {
            assert!(l.contains(&id), "{who} in the job's own cgroup: {l}\n{out}");
        }
    }
}

#[test]
fn a_fork_bomb_stops_at_the_jobs_process_limit() {
    let mut c = Cluster::start(&[]);
    c.add_worker_with("n1", &[], &["--max-job-processes", "20"]);
    // Fork 40 children that wait; count how many forks the kernel allowed.
    let forker = "import os, time\nn = 0\nfor i in range(40):\n    try:\n        p = os.fork()\n    except OSError:\n        break\n    if p == 0:\n        time.sleep(30)\n        os._exit(0)\n    n += 1\nprint('forked', n)\n";
    c.register(json!({ "jobDefinitionName": "forks", "type": "container",
        "containerProperties": { "command": ["python3", "-c", forker],
          "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"512"}] } }));
    let id = c.submit("forks", "forks");
    let j = c.wait_done(&id);
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    let out = c.logs(&id);
    let forked: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("forked "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        (10..20).contains(&forked),
        "at most 20 processes in the job's cgroup: {forked} forks"
    );
}

#[test]
fn jobs_run_as_a_uid_of_their_own_by_default_and_as_root_only_when_asked_and_allowed() {
    let mut c = Cluster::start(&["plain"]);
    // Jobs that name no user run as a transient uid (0x7000_0000 and up).
    let transient = |out: String| {
        out.trim()
            .parse::<u32>()
            .is_ok_and(|u| (0x7000_0000..0x7100_0000).contains(&u))
    };
    c.register(sh_def("anyone", "id -u", 8));
    let mut root = sh_def("root", "id -u", 8);
    root["containerProperties"]["user"] = json!("root");
    c.register(root);
    // A definition without a user does not get root.
    let id = c.submit("anyone", "anyone");
    assert_eq!(c.wait_done(&id)["status"], "SUCCEEDED");
    assert!(transient(c.logs(&id)), "{}", c.logs(&id));
    // Asking for root is not enough without the operator's consent.
    let id = c.submit("root", "root");
    let j = c.wait_done(&id);
    assert_eq!(j["status"], "FAILED", "{j}");
    let reason = j["attempts"][0]["statusReason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("--allow-root-jobs"), "{j}");
    // With it (a worker that allows root), the job runs as root.
    c.stop_worker("plain");
    c.wait_for("node plain to be DOWN", || {
        c.shoal("listnodes", json!({}))["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == "plain" && n["state"] == "DOWN")
    });
    c.add_worker_with("rooty", &[], &["--allow-root-jobs"]);
    let id = c.submit("root", "root");
    let j = c.wait_done(&id);
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    assert_eq!(c.logs(&id).trim(), "0");
    // ... and still not when the definition does not ask.
    let id = c.submit("anyone", "anyone");
    assert_eq!(c.wait_done(&id)["status"], "SUCCEEDED");
    assert!(transient(c.logs(&id)), "{}", c.logs(&id));
}

#[test]
fn finished_jobs_export_as_a_swf_trace_the_planner_reads() {
    let c = Cluster::start(&["n1"]);
    c.register(sh_def("ok", "true", 8));
    c.register(sh_def("bad", "exit 3", 8));
    let mut ids = vec![c.submit("a", "ok"), c.submit("b", "bad")];
    let arr = c.aws(
        "submitjob",
        json!({ "jobName": "arr", "jobQueue": "default", "jobDefinition": "ok",
        "arrayProperties": { "size": 2 } }),
    )["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    ids.push(arr.clone());
    for id in &ids {
        c.wait_done(id);
    }
    let out = Command::new(SHOAL)
        .args(["export", "--swf", "--endpoint", &c.endpoint])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (header, records) =
        shoal_planner::swf::read(&out.stdout[..]).expect("the planner reads the export");
    assert_eq!(
        header.machine_procs(),
        Some(1),
        "MaxProcs is the workers' vCPUs"
    );
    // a, b and the two array children ran; the array parent itself is not a job.
    assert_eq!(records.len(), 4, "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(records.iter().filter(|r| r.status == 1).count(), 3);
    assert_eq!(records.iter().filter(|r| r.status == 0).count(), 1);
    assert!(records
        .iter()
        .all(|r| r.alloc_procs == 1 && r.submit >= 0 && r.wait >= 0 && r.run >= 0));
}

/// The worker's `/exec` (the MPI launch agent's door into a job) runs a
/// command only for a job that runs there, with that job's token, from one
/// of the job's nodes.
#[test]
fn exec_needs_the_jobs_token_a_task_here_and_a_caller_among_its_nodes() {
    let c = Cluster::start(&["n1", "n2"]);
    let go = c.dir.path().join("go");
    let script = format!(
        "echo token=$SHOAL_JOB_TOKEN; while [ ! -e {} ]; do sleep 0.02; done",
        go.display()
    );
    c.register(sh_def("holds", &script, 16));
    let id = c.submit("holds", "holds");
    c.wait_for("the job to run", || c.job(&id)["status"] == "RUNNING");
    let mut token = String::new();
    c.wait_for("the job to print its token", || {
        token = c
            .logs(&id)
            .lines()
            .find_map(|l| l.strip_prefix("token="))
            .unwrap_or_default()
            .to_string();
        !token.is_empty()
    });
    assert_eq!(token.len(), 64, "{token}");
    // Which worker runs it, and which does not.
    let nodes = c.shoal("listnodes", json!({}))["nodes"]
        .as_array()
        .unwrap()
        .clone();
    let url = |busy: bool| {
        let n = nodes
            .iter()
            .find(|n| (n["vcpusAllocated"] == 1) == busy)
            .expect("one busy node and one idle");
        format!(
            "http://{}:{}/exec",
            n["address"].as_str().unwrap(),
            n["port"]
        )
    };
    let (here, elsewhere) = (url(true), url(false));
    let exec = |client: &reqwest::blocking::Client, url: &str, token: &str, cmd: &str| {
        let body = json!({ "jobId": id, "attempt": 0, "command": cmd, "token": token });
        common::call(client, url, &body)
    };
    let local = reqwest::blocking::Client::new();

    let (status, v) = exec(&local, &here, "0".repeat(64).as_str(), "echo bad-token");
    assert_eq!(status, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("wrong job token"),
        "{v}"
    );

    // 127.0.0.2 is this machine too, but not one of the job's nodes.
    let stranger = reqwest::blocking::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    let (status, v) = exec(&stranger, &here, &token, "echo stranger");
    assert_eq!(status, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("is not a node of job"),
        "{v}"
    );

    let (status, v) = exec(&local, &elsewhere, &token, "echo elsewhere");
    assert_eq!(status, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no task of job"),
        "{v}"
    );

    // The job's own token, from its node, to the node it runs on: runs.
    let (status, v) = exec(&local, &here, &token, "echo via-exec-$AWS_BATCH_JOB_ID");
    assert_eq!((status, &v["exitCode"]), (200, &json!(0)), "{v}");

    std::fs::write(&go, b"").unwrap();
    assert_eq!(c.wait_done(&id)["status"], "SUCCEEDED");
    let out = c.logs(&id);
    assert!(out.contains(&format!("via-exec-{id}")), "{out}");
    for refused in ["bad-token", "stranger", "elsewhere"] {
        assert!(!out.contains(refused), "{refused} ran: {out}");
    }
}

/// A worker serves a task's log only with the scheduler's current grant
/// for that task (what `shoal logs` gets from the scheduler).
#[test]
fn a_log_needs_the_schedulers_grant_for_that_task() {
    let c = Cluster::start(&["n1"]);
    c.register(sh_def("secret", "echo the-secret-output", 8));
    let (a, b) = (c.submit("a", "secret"), c.submit("b", "secret"));
    for id in [&a, &b] {
        assert_eq!(c.wait_done(id)["status"], "SUCCEEDED");
    }
    let loc = |id: &str| c.shoal("logs", json!({ "jobId": id }));
    let (la, lb) = (loc(&a), loc(&b));
    let dir = |l: &Value| {
        let t: shoal_model::wire::TaskRef = serde_json::from_value(l["task"].clone()).unwrap();
        format!("{}/{}", l["url"].as_str().unwrap(), t.dir_name())
    };
    let get = |url: String| {
        let r = c.http.get(url).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let grant_a = la["grant"].as_str().expect("a grant").to_string();
    let (status, body) = get(format!("{}?offset=0&{grant_a}", dir(&la)));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("the-secret-output"), "{body}");
    // Without a grant, with another task's grant, or with a forged one.
    let (status, body) = get(dir(&la));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("shoal logs"), "{body}");
    assert_eq!(get(format!("{}?{grant_a}", dir(&lb))).0, 403);
    let forged = format!("{}?expires=99999999999999&sig={}", dir(&la), "0".repeat(64));
    assert_eq!(get(forged).0, 403);
}

/// Submit six one-vCPU jobs at once and check that every one succeeds in its
/// first attempt (their definition allows one: a job handed to a worker that
/// is gone would fail).
fn six_jobs_succeed_at_once(c: &Cluster) {
    c.register(sh_def("hello6", "echo hello", 16));
    let ids: Vec<String> = (0..6)
        .map(|i| c.submit(&format!("h{i}"), "hello6"))
        .collect();
    for id in &ids {
        let j = c.wait_done(id);
        assert_eq!(j["status"], "SUCCEEDED", "{j}");
        assert_eq!(j["attempts"].as_array().map(Vec::len), Some(1), "{j}");
    }
}

fn node_state(c: &Cluster, name: &str) -> Value {
    c.shoal("listnodes", json!({}))["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .map(|n| n["state"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn a_worker_stopped_with_sigterm_is_down_at_once_and_gets_no_jobs() {
    let dir = tempfile::tempdir().unwrap();
    // A long timeout: a stopped worker must not rely on it to be DOWN.
    let (scheduler, endpoint) = common::start_scheduler(
        &dir.path().join("scheduler"),
        &["--worker-timeout-ms", "30000"],
    );
    let mut c = Cluster::with(dir, scheduler, endpoint, &["w1", "w2"]);
    c.stop_worker("w2");
    assert_eq!(
        node_state(&c, "w2"),
        "DOWN",
        "down as soon as it has stopped"
    );
    six_jobs_succeed_at_once(&c);
}

#[test]
fn after_a_restart_a_worker_that_was_down_gets_no_jobs_until_it_polls() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let state = dir.path().join("scheduler");
    let args = ["--worker-timeout-ms", "1500"];
    let (scheduler, endpoint) = start_scheduler_at(&listen, &state, &args);
    let mut c = Cluster::with(dir, scheduler, endpoint, &["w1", "w2"]);
    c.kill_worker("w2");
    c.wait_for("w2 to be down", || node_state(&c, "w2") == "DOWN");
    // kill -9 the scheduler and bring it back, with a timeout long enough
    // that w2 would take jobs before it was declared lost again.
    std::mem::replace(
        &mut c._scheduler,
        start_scheduler_at("127.0.0.1:0", &c.dir.path().join("spare"), &[]).0,
    )
    .kill9();
    let (restarted, _) = start_scheduler_at(&listen, &state, &["--worker-timeout-ms", "30000"]);
    c._scheduler = restarted;
    assert_eq!(
        node_state(&c, "w2"),
        "UNKNOWN",
        "not heard from since the restart"
    );
    six_jobs_succeed_at_once(&c);
    assert_eq!(node_state(&c, "w2"), "UNKNOWN");
}

#[test]
fn a_worker_with_a_relative_state_directory_runs_jobs() {
    // As in the README's quick start: `shoal worker --state ./shoal-worker`.
    let mut c = Cluster::start(&[]);
    let child = Command::new(SHOAL)
        .args(["worker", "--scheduler", &c.endpoint, "--name", "rel"])
        .args([
            "--cpus",
            "1",
            "--memory",
            "2048",
            "--state",
            "./relative-state",
        ])
        .current_dir(c.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    c.workers.push(("rel".into(), common::Proc(child)));
    c.wait_for("worker rel up", || node_state(&c, "rel") == "IDLE");
    c.register(sh_def("hello-rel", "echo hello from a relative state", 16));
    let id = c.submit("hello-rel", "hello-rel");
    let j = c.wait_done(&id);
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    assert!(c.logs(&id).contains("hello from a relative state"));
}

#[test]
fn an_operator_drains_resumes_and_removes_nodes() {
    let mut c = Cluster::start(&["w1", "w2"]);
    let endpoint = c.endpoint.clone();
    let shoal = |args: &[&str]| {
        Command::new(SHOAL)
            .args(args)
            .args(["--endpoint", &endpoint])
            .output()
            .unwrap()
    };
    let o = shoal(&["drain", "w2", "--reason", "bad DIMM"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(node_state(&c, "w2"), "DRAINED");
    let nodes = String::from_utf8_lossy(&shoal(&["nodes"]).stdout).to_string();
    assert!(nodes.contains("drained: bad DIMM"), "{nodes}");
    // Nothing goes to the drained node: six jobs, all on w1.
    six_jobs_succeed_at_once(&c);
    let ids: Vec<String> = c.aws(
        "listjobs",
        json!({ "jobQueue": "default", "jobStatus": "SUCCEEDED" }),
    )["jobSummaryList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["jobId"].as_str().unwrap().to_string())
        .collect();
    for id in &ids {
        let loc = c.shoal("logs", json!({ "jobId": id }));
        assert_eq!(loc["node"], "w1", "{loc}");
    }
    // Resumed, it takes jobs again: with w1 full, a job goes to w2.
    assert!(shoal(&["resume", "w2"]).status.success());
    assert_eq!(node_state(&c, "w2"), "IDLE");
    c.register(sh_def("hold", "sleep 60.031", 16));
    let held = c.submit("hold", "hold");
    c.wait_for("hold to run", || c.job(&held)["status"] == "RUNNING");
    c.register(sh_def("second", "true", 16));
    let second = c.submit("second", "second");
    assert_eq!(c.wait_done(&second)["status"], "SUCCEEDED");
    assert_eq!(c.shoal("logs", json!({ "jobId": second }))["node"], "w2");
    // A node that is up is not removed; one that is down and empty is.
    let o = shoal(&["remove-node", "w2"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not DOWN"));
    c.kill_worker("w2");
    c.wait_for("w2 down", || node_state(&c, "w2") == "DOWN");
    let o = shoal(&["remove-node", "w2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(node_state(&c, "w2"), Value::Null, "gone from the list");
}
