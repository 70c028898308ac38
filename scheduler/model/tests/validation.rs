mod common;
use common::*;
use shoal_model::*;

type Reg = RegisterJobDefinitionRequest;

// ------------------------------------------------------------ names

#[test]
fn job_names() {
    let sub = |name: &str| format!(r#"{{"jobName":"{name}","jobQueue":"q","jobDefinition":"d"}}"#);
    accept::<SubmitJobRequest>(&sub("good_Name-1"));
    assert_err(
        &reject::<SubmitJobRequest>(&sub("-bad")),
        "jobName",
        "must start with a letter or a digit",
    );
    assert_err(
        &reject::<SubmitJobRequest>(&sub("has space")),
        "jobName",
        "' '",
    );
    assert_err(
        &reject::<SubmitJobRequest>(&sub(&"a".repeat(129))),
        "jobName",
        "129 characters",
    );
    accept::<SubmitJobRequest>(&sub(&"a".repeat(128)));
    assert_err(&reject::<SubmitJobRequest>(&sub("")), "jobName", "empty");
}

#[test]
fn resource_names() {
    assert_err(
        &reject::<Reg>(
            r#"{"jobDefinitionName":"a.b","type":"container","containerProperties":{}}"#,
        ),
        "jobDefinitionName",
        "'.'",
    );
    assert_err(
        &reject::<CreateComputeEnvironmentRequest>(
            r#"{"computeEnvironmentName":"_x","type":"MANAGED"}"#,
        ),
        "computeEnvironmentName",
        "must start",
    );
    assert_err(
        &reject::<CreateJobQueueRequest>(
            r#"{"jobQueueName":"q q","priority":1,"computeEnvironmentOrder":[{"order":1,"computeEnvironment":"ce"}]}"#,
        ),
        "jobQueueName",
        "' '",
    );
}

// ------------------------------------------------------------ type rules

#[test]
fn type_rules() {
    assert_err(
        &reject::<Reg>(r#"{"jobDefinitionName":"d","type":"multinode"}"#),
        "nodeProperties",
        "required when type is \"multinode\"",
    );
    assert_err(
        &reject::<Reg>(r#"{"jobDefinitionName":"d","type":"container"}"#),
        "containerProperties",
        "required when type is \"container\"",
    );
    assert_err(
        &reject::<Reg>(r#"{"jobDefinitionName":"d","type":"batch","containerProperties":{}}"#),
        "type",
        "not one of",
    );
    let json = mnp_def(2, 0, &["0:"]).replace(
        r#""nodeProperties""#,
        r#""containerProperties":{},"nodeProperties""#,
    );
    assert_err(
        &reject::<Reg>(&json),
        "containerProperties",
        "not allowed when type is \"multinode\"",
    );
    let json = r#"{"jobDefinitionName":"d","type":"container","containerProperties":{},"nodeProperties":{"numNodes":1,"mainNode":0,"nodeRangeProperties":[]}}"#;
    assert_err(
        &reject::<Reg>(json),
        "nodeProperties",
        "not allowed when type is \"container\"",
    );
}

// ------------------------------------------------------------ node ranges

#[test]
fn node_ranges_valid() {
    accept::<Reg>(&mnp_def(3, 0, &["0:"]));
    accept::<Reg>(&mnp_def(3, 2, &[":"]));
    accept::<Reg>(&mnp_def(3, 1, &["0", "1:2"]));
    accept::<Reg>(&mnp_def(4, 0, &[":1", "2:"]));
    accept::<Reg>(&mnp_def(4, 0, &["3", "0:2"]));
}

#[test]
fn num_nodes_zero_and_too_many() {
    assert_err(
        &reject::<Reg>(&mnp_def(0, 0, &["0:"])),
        "nodeProperties.numNodes",
        "at least 1",
    );
    assert_err(
        &reject::<Reg>(&mnp_def(1001, 0, &["0:"])),
        "nodeProperties.numNodes",
        "at most 1000",
    );
}

#[test]
fn main_node_out_of_range() {
    assert_err(
        &reject::<Reg>(&mnp_def(3, 3, &["0:"])),
        "nodeProperties.mainNode",
        "mainNode must be 0..2",
    );
    assert_err(
        &reject::<Reg>(&mnp_def(3, -1, &["0:"])),
        "nodeProperties.mainNode",
        "not a node index",
    );
}

#[test]
fn target_nodes_gap() {
    let e = reject::<Reg>(&mnp_def(3, 0, &["0:0"]));
    assert_err(
        &e,
        "nodeProperties.nodeRangeProperties",
        "leaves node 1..2 without a container",
    );
    assert!(e.to_string().contains(r#"nodeProperties.nodeRangeProperties: targetNodes "0:0" leaves node 1..2 without a container"#));
    let e = reject::<Reg>(&mnp_def(5, 0, &["0", "2:3"]));
    assert_err(
        &e,
        "nodeProperties.nodeRangeProperties",
        "leaves nodes 1, 4 without a container",
    );
    let e = reject::<Reg>(&mnp_def(3, 0, &["0", "2"]));
    assert_err(
        &e,
        "nodeProperties.nodeRangeProperties",
        "leaves node 1 without a container",
    );
}

#[test]
fn target_nodes_overlap() {
    let e = reject::<Reg>(&mnp_def(4, 0, &["0:2", "2:"]));
    assert_err(
        &e,
        "nodeProperties.nodeRangeProperties[1].targetNodes",
        "overlaps \"0:2\"",
    );
    assert!(e.message.contains("at node 2"), "{e}");
    assert!(
        e.message
            .contains("nodeProperties.nodeRangeProperties[0].targetNodes"),
        "{e}"
    );
}

#[test]
fn target_nodes_out_of_range_and_syntax() {
    let e = reject::<Reg>(&mnp_def(3, 0, &["0:5"]));
    assert_err(
        &e,
        "nodeProperties.nodeRangeProperties[0].targetNodes",
        "ends at node 5 but numNodes is 3",
    );
    let e = reject::<Reg>(&mnp_def(3, 0, &["0:1", "7:"]));
    assert_err(
        &e,
        "nodeProperties.nodeRangeProperties[1].targetNodes",
        "starts at node 7",
    );
    let e = reject::<Reg>(&mnp_def(3, 0, &["2:1"]));
    assert_err(
        &e,
        "nodeProperties.nodeRangeProperties[0].targetNodes",
        "starts after it ends",
    );
    for bad in ["a:b", "-1:", "1:2:3", "", " 1"] {
        let e = reject::<Reg>(&mnp_def(3, 0, &[bad]));
        assert_eq!(
            e.field, "nodeProperties.nodeRangeProperties[0].targetNodes",
            "{bad}: {e}"
        );
    }
    let e = reject::<Reg>(&mnp_def(3, 0, &["99999999999999:"]));
    assert_eq!(e.field, "nodeProperties.nodeRangeProperties[0].targetNodes");
}

#[test]
fn node_range_needs_container() {
    let json = r#"{"jobDefinitionName":"d","type":"multinode","nodeProperties":{"numNodes":2,"mainNode":0,"nodeRangeProperties":[{"targetNodes":"0:"}]}}"#;
    assert_err(
        &reject::<Reg>(json),
        "nodeProperties.nodeRangeProperties[0].container",
        "required",
    );
    let json = r#"{"jobDefinitionName":"d","type":"multinode","nodeProperties":{"numNodes":2,"mainNode":0,"nodeRangeProperties":[]}}"#;
    assert_err(
        &reject::<Reg>(json),
        "nodeProperties.nodeRangeProperties",
        "at least one",
    );
    let json = r#"{"jobDefinitionName":"d","type":"multinode","nodeProperties":{"numNodes":2,"mainNode":0,"nodeRangeProperties":[{"targetNodes":"0:","container":{"linuxParameters":{"sharedMemorySize":-4}}}]}}"#;
    assert_err(
        &reject::<Reg>(json),
        "nodeProperties.nodeRangeProperties[0].container.linuxParameters.sharedMemorySize",
        "positive",
    );
}

// ------------------------------------------------------------ container

#[test]
fn container_rules() {
    let c = |c: &str| reject::<Reg>(&container_def(c));
    assert_err(
        &c(r#"{"linuxParameters":{"sharedMemorySize":-1}}"#),
        "containerProperties.linuxParameters.sharedMemorySize",
        "positive number of MiB (got -1)",
    );
    assert_err(
        &c(r#"{"resourceRequirements":[{"type":"VCPU","value":"0.5"}]}"#),
        "containerProperties.resourceRequirements[0].value",
        "fractional",
    );
    assert_err(
        &c(r#"{"resourceRequirements":[{"type":"VCPU","value":"0"}]}"#),
        "containerProperties.resourceRequirements[0].value",
        "at least 1",
    );
    assert_err(
        &c(r#"{"resourceRequirements":[{"type":"MEMORY","value":"lots"}]}"#),
        "containerProperties.resourceRequirements[0].value",
        "MiB",
    );
    assert_err(
        &c(r#"{"resourceRequirements":[{"type":"GPU","value":"1"}]}"#),
        "containerProperties.resourceRequirements[0].type",
        "not supported",
    );
    assert_err(
        &c(r#"{"resourceRequirements":[{"type":"CPU","value":"1"}]}"#),
        "containerProperties.resourceRequirements[0].type",
        "not one of",
    );
    assert_err(
        &c(r#"{"vcpus":2,"resourceRequirements":[{"type":"VCPU","value":"1"}]}"#),
        "containerProperties.resourceRequirements[0]",
        "vcpus",
    );
    assert_err(
        &c(r#"{"memory":2,"resourceRequirements":[{"type":"MEMORY","value":"100"}]}"#),
        "containerProperties.resourceRequirements[0]",
        "memory",
    );
    assert_err(
        &c(r#"{"resourceRequirements":[{"type":"VCPU","value":"1"},{"type":"VCPU","value":"2"}]}"#),
        "containerProperties.resourceRequirements[1]",
        "more than once",
    );
    assert_err(
        &c(r#"{"vcpus":0}"#),
        "containerProperties.vcpus",
        "at least 1",
    );
    assert_err(
        &c(r#"{"memory":-5}"#),
        "containerProperties.memory",
        "at least 4",
    );
    assert_err(
        &c(r#"{"linuxParameters":{"swappiness":101}}"#),
        "containerProperties.linuxParameters.swappiness",
        "between 0 and 100",
    );
    assert_err(
        &c(r#"{"linuxParameters":{"maxSwap":-1}}"#),
        "containerProperties.linuxParameters.maxSwap",
        "0 (no swap)",
    );
    assert_err(
        &c(r#"{"linuxParameters":{"tmpfs":[{"containerPath":"/t","size":0}]}}"#),
        "containerProperties.linuxParameters.tmpfs[0].size",
        "positive",
    );
    assert_err(
        &c(
            r#"{"linuxParameters":{"devices":[{"hostPath":"/dev/x","permissions":["READ","EXEC"]}]}}"#,
        ),
        "containerProperties.linuxParameters.devices[0].permissions[1]",
        "not one of",
    );
    assert_err(
        &c(r#"{"environment":[{"name":"AWS_BATCH_JOB_ID","value":"x"}]}"#),
        "containerProperties.environment[0].name",
        "reserved",
    );
    assert_err(
        &c(r#"{"environment":[{"value":"x"}]}"#),
        "containerProperties.environment[0].name",
        "need a name",
    );
    assert_err(
        &c(
            r#"{"volumes":[{"name":"v","host":{"sourcePath":"/d"}}],"mountPoints":[{"containerPath":"/d","sourceVolume":"w"}]}"#,
        ),
        "containerProperties.mountPoints[0].sourceVolume",
        "\"w\" does not name",
    );
    assert_err(
        &c(r#"{"ulimits":[{"name":"nofile","softLimit":10,"hardLimit":5}]}"#),
        "containerProperties.ulimits[0].softLimit",
        "above hardLimit",
    );
}

#[test]
fn container_accepts_the_aws_fields() {
    accept::<Reg>(&container_def(
        r#"{"image":"busybox","vcpus":2,"memory":1024,"command":["echo","hi"],"jobRoleArn":"r","executionRoleArn":"e",
        "volumes":[{"name":"v","host":{"sourcePath":"/d"}},{"name":"efs","efsVolumeConfiguration":{"fileSystemId":"fs"}}],
        "environment":[{"name":"A","value":"1"}],"mountPoints":[{"containerPath":"/d","readOnly":true,"sourceVolume":"v"}],
        "readonlyRootFilesystem":false,"privileged":false,"ulimits":[{"name":"nofile","softLimit":1,"hardLimit":2}],
        "user":"nobody","instanceType":"m5.large",
        "linuxParameters":{"devices":[{"hostPath":"/dev/fuse","containerPath":"/dev/fuse","permissions":["READ","WRITE","MKNOD"]}],
          "initProcessEnabled":true,"sharedMemorySize":256,"tmpfs":[{"containerPath":"/t","size":10,"mountOptions":["rw"]}],"maxSwap":0,"swappiness":60},
        "logConfiguration":{"logDriver":"awslogs","options":{}},"secrets":[{"name":"s","valueFrom":"arn"}],
        "networkConfiguration":{"assignPublicIp":"DISABLED"},"fargatePlatformConfiguration":{"platformVersion":"LATEST"},
        "ephemeralStorage":{"sizeInGiB":30},"runtimePlatform":{"cpuArchitecture":"X86_64"},
        "repositoryCredentials":{"credentialsParameter":"x"},"enableExecuteCommand":false}"#,
    ));
}

// ------------------------------------------------------------ retry / timeout / misc

#[test]
fn retry_strategy_rules() {
    let r = |rs: &str| {
        reject::<Reg>(&format!(
            r#"{{"jobDefinitionName":"d","type":"container","containerProperties":{{"command":["true"]}},"retryStrategy":{rs}}}"#
        ))
    };
    assert_err(
        &r(r#"{"attempts":11}"#),
        "retryStrategy.attempts",
        "between 1 and 10 (got 11)",
    );
    assert_err(
        &r(r#"{"attempts":0}"#),
        "retryStrategy.attempts",
        "between 1 and 10",
    );
    let six = [r#"{"action":"EXIT"}"#; 6].join(",");
    assert_err(
        &r(&format!(r#"{{"evaluateOnExit":[{six}]}}"#)),
        "retryStrategy.evaluateOnExit",
        "limit is 5",
    );
    assert_err(
        &r(r#"{"evaluateOnExit":[{"action":"STOP"}]}"#),
        "retryStrategy.evaluateOnExit[0].action",
        "not one of",
    );
    assert_err(
        &r(r#"{"evaluateOnExit":[{"action":"exit","onExitCode":"1a"}]}"#),
        "retryStrategy.evaluateOnExit[0].onExitCode",
        "digits",
    );
    assert_err(
        &r(r#"{"evaluateOnExit":[{"action":"exit","onReason":"out-of-memory"}]}"#),
        "retryStrategy.evaluateOnExit[0].onReason",
        "letters",
    );
    assert_err(
        &r(r#"{"evaluateOnExit":[{"action":"exit","onStatusReason":"a*b"}]}"#),
        "retryStrategy.evaluateOnExit[0].onStatusReason",
        "letters",
    );
    accept::<Reg>(
        r#"{"jobDefinitionName":"d","type":"container","containerProperties":{"command":["true"]},"retryStrategy":{"attempts":3,"evaluateOnExit":[
        {"action":"retry","onExitCode":"13*"},{"action":"Exit","onReason":"Essential container exited","onStatusReason":"Host EC2*"}]}}"#,
    );
}

#[test]
fn retry_on_exit_semantics() {
    let rs: RetryStrategy = serde_json::from_str(
        r#"{"attempts":3,"evaluateOnExit":[{"onExitCode":"13*","action":"EXIT"},{"onReason":"OOM*","action":"RETRY"},{"onExitCode":"*","action":"exit"}]}"#,
    )
    .unwrap();
    assert_eq!(rs.max_attempts(), 3);
    assert_eq!(rs.on_exit(Some(137), None, None), RetryAction::Exit);
    assert_eq!(
        rs.on_exit(Some(2), Some("OOM killed"), None),
        RetryAction::Retry
    );
    assert_eq!(rs.on_exit(Some(2), None, None), RetryAction::Exit);
    assert_eq!(rs.on_exit(None, None, None), RetryAction::Retry);
    assert_eq!(RetryStrategy::default().max_attempts(), 1);
}

#[test]
fn timeout_and_priority_and_platform() {
    let base =
        r#"{"jobDefinitionName":"d","type":"container","containerProperties":{"command":["true"]}"#;
    assert_err(
        &reject::<Reg>(&format!(
            r#"{base},"timeout":{{"attemptDurationSeconds":59}}}}"#
        )),
        "timeout.attemptDurationSeconds",
        "at least 60 seconds (got 59)",
    );
    accept::<Reg>(&format!(
        r#"{base},"timeout":{{"attemptDurationSeconds":60}}}}"#
    ));
    assert_err(
        &reject::<Reg>(&format!(r#"{base},"schedulingPriority":10000}}"#)),
        "schedulingPriority",
        "between 0 and 9999",
    );
    assert_err(
        &reject::<Reg>(&format!(r#"{base},"platformCapabilities":["FARGATE"]}}"#)),
        "platformCapabilities[0]",
        "only \"EC2\"",
    );
    assert_err(
        &reject::<Reg>(&format!(r#"{base},"tags":{{"aws:x":"y"}}}}"#)),
        "tags.aws:x",
        "reserved",
    );
    accept::<Reg>(&format!(
        r#"{base},"platformCapabilities":["EC2"],"propagateTags":true,"parameters":{{"a":"b"}}}}"#
    ));
}

// ------------------------------------------------------------ submit

fn submit(extra: &str) -> String {
    format!(r#"{{"jobName":"j","jobQueue":"q","jobDefinition":"d"{extra}}}"#)
}

#[test]
fn submit_rules() {
    assert_err(
        &reject::<SubmitJobRequest>(&submit(r#","arrayProperties":{"size":1}"#)),
        "arrayProperties.size",
        "between 2 and 10,000 (got 1)",
    );
    assert_err(
        &reject::<SubmitJobRequest>(&submit(r#","arrayProperties":{"size":10001}"#)),
        "arrayProperties.size",
        "between 2 and 10,000",
    );
    assert_err(
        &reject::<SubmitJobRequest>(&submit(r#","arrayProperties":{}"#)),
        "arrayProperties.size",
        "required",
    );
    accept::<SubmitJobRequest>(&submit(r#","arrayProperties":{"size":10000}"#));
    assert_err(
        &reject::<SubmitJobRequest>(&submit(r#","timeout":{"attemptDurationSeconds":10}"#)),
        "timeout.attemptDurationSeconds",
        "at least 60",
    );
    assert_err(
        &reject::<SubmitJobRequest>(&submit(r#","retryStrategy":{"attempts":11}"#)),
        "retryStrategy.attempts",
        "between 1 and 10",
    );
    assert_err(
        &reject::<SubmitJobRequest>(&submit(r#","schedulingPriorityOverride":-1"#)),
        "schedulingPriorityOverride",
        "between 0 and 9999",
    );
    assert_err(
        &reject::<SubmitJobRequest>(&submit(
            r#","containerOverrides":{"resourceRequirements":[{"type":"VCPU","value":"1.5"}]}"#,
        )),
        "containerOverrides.resourceRequirements[0].value",
        "fractional",
    );
    assert_err(
        &reject::<SubmitJobRequest>(&submit(
            r#","nodeOverrides":{"nodePropertyOverrides":[{"targetNodes":"0:","containerOverrides":{"resourceRequirements":[{"type":"MEMORY","value":"0"}]}}]}"#,
        )),
        "nodeOverrides.nodePropertyOverrides[0].containerOverrides.resourceRequirements[0].value",
        "at least 4",
    );
    assert_err(
        &reject::<SubmitJobRequest>(&submit(
            r#","nodeOverrides":{"nodePropertyOverrides":[{"targetNodes":"x"}]}"#,
        )),
        "nodeOverrides.nodePropertyOverrides[0].targetNodes",
        "not a node range",
    );
    assert_err(
        &reject::<SubmitJobRequest>(&submit(r#","nodeOverrides":{"numNodes":0}"#)),
        "nodeOverrides.numNodes",
        "between 1 and 1000",
    );
    assert_err(
        &reject::<SubmitJobRequest>(&submit(r#","containerOverrides":{},"nodeOverrides":{}"#)),
        "nodeOverrides",
        "cannot be combined",
    );
    assert_err(
        &reject::<SubmitJobRequest>(r#"{"jobName":"j","jobQueue":"q","jobDefinition":"d:x"}"#),
        "jobDefinition",
        "revision",
    );
    assert_err(
        &reject::<SubmitJobRequest>(
            r#"{"jobName":"j","jobQueue":"arn:aws:batch:us-east-1:1:compute-environment/c","jobDefinition":"d"}"#,
        ),
        "jobQueue",
        "compute-environment ARN",
    );
}

#[test]
fn depends_on_rules() {
    let ok: SubmitJobRequest = accept(&submit(
        r#","arrayProperties":{"size":3},"dependsOn":[{"jobId":"a"},{"jobId":"arn:aws:batch:us-east-1:0:job/b","type":"N_TO_N"},{"type":"SEQUENTIAL"}]"#,
    ));
    assert_eq!(
        ok.dependencies().unwrap(),
        vec![
            Dependency::Job("a".into()),
            Dependency::NToN("b".into()),
            Dependency::Sequential
        ]
    );
    assert_err(
        &reject::<SubmitJobRequest>(&submit(r#","dependsOn":[{"type":"SEQUENTIAL"}]"#)),
        "dependsOn[0].type",
        "only apply to array jobs",
    );
    assert_err(
        &reject::<SubmitJobRequest>(&submit(r#","dependsOn":[{"type":"N_TO_N"}]"#)),
        "dependsOn[0].jobId",
        "needs the jobId",
    );
    assert_err(
        &reject::<SubmitJobRequest>(&submit(
            r#","dependsOn":[{"jobId":"a","type":"SEQUENTIAL"}]"#,
        )),
        "dependsOn[0].type",
        "takes no jobId",
    );
    assert_err(
        &reject::<SubmitJobRequest>(&submit(r#","dependsOn":[{"jobId":"a","type":"ALL"}]"#)),
        "dependsOn[0].type",
        "not one of",
    );
    assert_err(
        &reject::<SubmitJobRequest>(&submit(r#","dependsOn":[{}]"#)),
        "dependsOn[0].jobId",
        "required",
    );
    let many = [r#"{"jobId":"a"}"#; 21].join(",");
    assert_err(
        &reject::<SubmitJobRequest>(&submit(&format!(r#","dependsOn":[{many}]"#))),
        "dependsOn",
        "limit is 20",
    );
}

// ------------------------------------------------------------ other requests

#[test]
fn describe_and_list_requests() {
    assert_err(
        &reject::<DescribeJobsRequest>(r#"{"jobs":[]}"#),
        "jobs",
        "1 to 100",
    );
    let many: Vec<String> = (0..101).map(|i| format!("\"j{i}\"")).collect();
    assert_err(
        &reject::<DescribeJobsRequest>(&format!(r#"{{"jobs":[{}]}}"#, many.join(","))),
        "jobs",
        "1 to 100",
    );
    let r: DescribeJobsRequest = accept(r#"{"jobs":["a","arn:aws:batch:us-east-1:0:job/b:3"]}"#);
    assert_eq!(
        r.job_ids().unwrap(),
        vec!["a".to_string(), "b:3".to_string()]
    );

    assert_err(
        &reject::<ListJobsRequest>("{}"),
        "jobQueue",
        "exactly one of",
    );
    assert_err(
        &reject::<ListJobsRequest>(r#"{"jobQueue":"q","arrayJobId":"a"}"#),
        "jobQueue",
        "exactly one of",
    );
    assert_err(
        &reject::<ListJobsRequest>(r#"{"jobQueue":"q","jobStatus":"DONE"}"#),
        "jobStatus",
        "not one of",
    );
    assert_err(
        &reject::<ListJobsRequest>(r#"{"jobQueue":"q","maxResults":0}"#),
        "maxResults",
        "between 1 and 1000",
    );
    assert_err(
        &reject::<ListJobsRequest>(
            r#"{"jobQueue":"q","filters":[{"name":"COLOR","values":["x"]}]}"#,
        ),
        "filters[0].name",
        "not one of",
    );
    assert_err(
        &reject::<ListJobsRequest>(
            r#"{"jobQueue":"q","filters":[{"name":"JOB_NAME","values":[]}]}"#,
        ),
        "filters[0].values",
        "exactly one value",
    );
    assert_err(
        &reject::<ListJobsRequest>(
            r#"{"jobQueue":"q","filters":[{"name":"AFTER_CREATED_AT","values":["yesterday"]}]}"#,
        ),
        "filters[0].values[0]",
        "epoch milliseconds",
    );
    let r: ListJobsRequest = accept(
        r#"{"arrayJobId":"p","jobStatus":"RUNNING","filters":[{"name":"JOB_NAME","values":["a*"]},{"name":"BEFORE_CREATED_AT","values":["1700"]}]}"#,
    );
    assert_eq!(r.scope().unwrap(), ListJobsScope::ArrayJob("p".into()));
    assert_eq!(
        r.parsed_filters().unwrap(),
        vec![
            ListJobsFilter::JobName("a*".into()),
            ListJobsFilter::BeforeCreatedAt(1700)
        ]
    );

    assert_err(
        &reject::<CancelJobRequest>(r#"{"jobId":"a","reason":" "}"#),
        "reason",
        "empty",
    );
    assert_err(
        &reject::<TerminateJobRequest>(r#"{"jobId":"a"}"#),
        "reason",
        "required",
    );
    assert_err(
        &reject::<TerminateJobRequest>(r#"{"jobId":"","reason":"r"}"#),
        "jobId",
        "empty",
    );

    assert_err(
        &reject::<DescribeJobDefinitionsRequest>(r#"{"jobDefinitions":["a:1"],"status":"ACTIVE"}"#),
        "status",
        "cannot be combined",
    );
    assert_err(
        &reject::<DescribeJobDefinitionsRequest>(r#"{"jobDefinitions":["a:0"]}"#),
        "jobDefinitions[0]",
        "revision",
    );
    assert_err(
        &reject::<DescribeJobDefinitionsRequest>(r#"{"status":"GONE"}"#),
        "status",
        "not one of",
    );
    assert_err(
        &reject::<DescribeJobDefinitionsRequest>(r#"{"maxResults":101}"#),
        "maxResults",
        "between 1 and 100",
    );
    let r: DescribeJobDefinitionsRequest =
        accept(r#"{"jobDefinitions":["a","b:2","arn:aws:batch:us-east-1:0:job-definition/c:3"]}"#);
    assert_eq!(
        r.refs().unwrap(),
        vec![
            DefinitionRef::Name("a".into()),
            DefinitionRef::NameRev("b".into(), 2),
            DefinitionRef::NameRev("c".into(), 3)
        ]
    );
    assert_err(
        &reject::<DeregisterJobDefinitionRequest>(r#"{"jobDefinition":"a"}"#),
        "jobDefinition",
        "no revision",
    );
    let r: DeregisterJobDefinitionRequest = accept(r#"{"jobDefinition":"a:4"}"#);
    assert_eq!(r.target().unwrap(), ("a".to_string(), 4));
}

#[test]
fn compute_environment_requests() {
    let r: CreateComputeEnvironmentRequest = accept(
        r#"{"computeEnvironmentName":"ce","type":"UNMANAGED","state":"ENABLED","unmanagedvCpus":8,
        "computeResources":{"type":"EC2","maxvCpus":4},"serviceRole":"r","tags":{"shoal:label:rack":"r1","team":"x"}}"#,
    );
    assert_eq!(
        r.selector(),
        [("rack".to_string(), "r1".to_string())]
            .into_iter()
            .collect()
    );
    assert_err(
        &reject::<CreateComputeEnvironmentRequest>(
            r#"{"computeEnvironmentName":"ce","type":"SPOT"}"#,
        ),
        "type",
        "not one of",
    );
    assert_err(
        &reject::<CreateComputeEnvironmentRequest>(
            r#"{"computeEnvironmentName":"ce","type":"MANAGED","state":"ON"}"#,
        ),
        "state",
        "not one of",
    );
    assert_err(
        &reject::<CreateComputeEnvironmentRequest>(
            r#"{"computeEnvironmentName":"ce","type":"MANAGED","unmanagedvCpus":-1}"#,
        ),
        "unmanagedvCpus",
        "0 or more",
    );
    assert_err(
        &reject::<CreateComputeEnvironmentRequest>(
            r#"{"computeEnvironmentName":"ce","type":"MANAGED","tags":{"shoal:label:":"x"}}"#,
        ),
        "tags.shoal:label:",
        "label name",
    );
    assert_err(
        &reject::<CreateComputeEnvironmentRequest>(
            r#"{"computeEnvironmentName":"ce","type":"MANAGED","unmanagedVcpus":1}"#,
        ),
        "unmanagedVcpus",
        "unknown field",
    );
    let u: UpdateComputeEnvironmentRequest = accept(
        r#"{"computeEnvironment":"arn:aws:batch:us-east-1:000000000000:compute-environment/ce","state":"DISABLED"}"#,
    );
    assert_eq!(u.name().unwrap(), "ce");
    assert_err(
        &reject::<DeleteComputeEnvironmentRequest>(r#"{"computeEnvironment":"arn:aws:s3:::b"}"#),
        "computeEnvironment",
        "not a valid AWS Batch ARN",
    );
    assert_err(
        &reject::<DescribeComputeEnvironmentsRequest>(r#"{"computeEnvironments":["a b"]}"#),
        "computeEnvironments[0]",
        "' '",
    );
}

#[test]
fn job_queue_requests() {
    let q = |extra: &str| format!(r#"{{"jobQueueName":"q","priority":1{extra}}}"#);
    accept::<CreateJobQueueRequest>(&q(
        r#","computeEnvironmentOrder":[{"order":1,"computeEnvironment":"a"},{"order":2,"computeEnvironment":"arn:aws:batch:us-east-1:0:compute-environment/b"}],"state":"ENABLED","tags":{"k":"v"},"schedulingPolicyArn":"x","jobStateTimeLimitActions":[]"#,
    ));
    assert_err(
        &reject::<CreateJobQueueRequest>(&q("")),
        "computeEnvironmentOrder",
        "required",
    );
    assert_err(
        &reject::<CreateJobQueueRequest>(&q(r#","computeEnvironmentOrder":[]"#)),
        "computeEnvironmentOrder",
        "1 to 3",
    );
    let four = [r#"{"order":1,"computeEnvironment":"a"}"#; 4].join(",");
    assert_err(
        &reject::<CreateJobQueueRequest>(&q(&format!(r#","computeEnvironmentOrder":[{four}]"#))),
        "computeEnvironmentOrder",
        "1 to 3",
    );
    assert_err(
        &reject::<CreateJobQueueRequest>(&q(
            r#","computeEnvironmentOrder":[{"order":1,"computeEnvironment":"a"},{"order":1,"computeEnvironment":"b"}]"#,
        )),
        "computeEnvironmentOrder[1].order",
        "distinct",
    );
    assert_err(
        &reject::<CreateJobQueueRequest>(&q(
            r#","computeEnvironmentOrder":[{"order":1,"computeEnvironment":"a"},{"order":2,"computeEnvironment":"a"}]"#,
        )),
        "computeEnvironmentOrder[1].computeEnvironment",
        "twice",
    );
    assert_err(
        &reject::<CreateJobQueueRequest>(
            r#"{"jobQueueName":"q","priority":1001,"computeEnvironmentOrder":[{"order":1,"computeEnvironment":"a"}]}"#,
        ),
        "priority",
        "between 0 and 1000",
    );
    assert_err(
        &reject::<CreateJobQueueRequest>(
            r#"{"jobQueueName":"q","computeEnvironmentOrder":[{"order":1,"computeEnvironment":"a"}]}"#,
        ),
        "priority",
        "required",
    );
    assert_err(
        &reject::<UpdateJobQueueRequest>(r#"{"jobQueue":"q","priority":-1}"#),
        "priority",
        "between 0 and 1000",
    );
    assert_err(
        &reject::<UpdateJobQueueRequest>(r#"{"jobQueue":"q","state":"PAUSED"}"#),
        "state",
        "not one of",
    );
    let d: DeleteJobQueueRequest =
        accept(r#"{"jobQueue":"arn:aws:batch:eu-west-1:1:job-queue/q1"}"#);
    assert_eq!(d.name().unwrap(), "q1");
    assert_err(
        &reject::<DescribeJobQueuesRequest>(r#"{"jobQueues":["arn:aws:batch:r:a:job-queue/"]}"#),
        "jobQueues[0]",
        "empty",
    );
}

// ------------------------------------------------------------ ARNs

#[test]
fn arns() {
    let s = ArnScope::default();
    assert_eq!(
        s.job_definition_arn("d", 3),
        "arn:aws:batch:us-east-1:000000000000:job-definition/d:3"
    );
    assert_eq!(
        s.job_queue_arn("q"),
        "arn:aws:batch:us-east-1:000000000000:job-queue/q"
    );
    assert_eq!(
        s.compute_environment_arn("c"),
        "arn:aws:batch:us-east-1:000000000000:compute-environment/c"
    );
    assert_eq!(
        s.job_arn("id"),
        "arn:aws:batch:us-east-1:000000000000:job/id"
    );
    let s2 = ArnScope::new("eu-west-1", "123456789012");
    assert_eq!(
        s2.job_queue_arn("q"),
        "arn:aws:batch:eu-west-1:123456789012:job-queue/q"
    );

    assert_eq!(
        parse_job_definition_ref("d").unwrap(),
        DefinitionRef::Name("d".into())
    );
    assert_eq!(
        parse_job_definition_ref("d:7").unwrap(),
        DefinitionRef::NameRev("d".into(), 7)
    );
    assert_eq!(
        parse_job_definition_ref(&s.job_definition_arn("d", 3)).unwrap(),
        DefinitionRef::NameRev("d".into(), 3)
    );
    assert_eq!(
        parse_job_definition_ref("arn:aws:batch:us-east-1:0:job-definition/d").unwrap(),
        DefinitionRef::Name("d".into())
    );
    for bad in [
        "d:",
        "d:-1",
        "d:0",
        "d:1:2",
        "arn:aws:batch:us-east-1:0:job-queue/q",
        "arn:aws:batch",
        "",
        "a b:1",
    ] {
        let e = parse_job_definition_ref(bad).unwrap_err();
        assert_eq!(e.field, "jobDefinition", "{bad}: {e}");
    }
    assert_eq!(
        resource_name_from_ref(ResourceKind::JobQueue, "q").unwrap(),
        "q"
    );
    assert_eq!(
        resource_name_from_ref(ResourceKind::JobQueue, &s.job_queue_arn("q")).unwrap(),
        "q"
    );
    assert_eq!(
        resource_name_from_ref(
            ResourceKind::ComputeEnvironment,
            &s.compute_environment_arn("c")
        )
        .unwrap(),
        "c"
    );
    let e = resource_name_from_ref(ResourceKind::ComputeEnvironment, &s.job_queue_arn("q"))
        .unwrap_err();
    assert_err(&e, "computeEnvironment", "job-queue ARN");
    let e = resource_name_from_ref(ResourceKind::JobQueue, "arn:aws:batch:r:a:nope/q").unwrap_err();
    assert_err(&e, "jobQueue", "unknown resource type");
    let e = resource_name_from_ref(ResourceKind::JobQueue, "arn:gcp:batch:r:a:job-queue/q")
        .unwrap_err();
    assert_err(&e, "jobQueue", "partition");
    assert_eq!(job_id_from_ref(&s.job_arn("abc#2")).unwrap(), "abc#2");
    let p = parse_arn("x", &s.job_definition_arn("d", 1)).unwrap();
    assert_eq!(
        (p.kind, p.resource.as_str(), p.region.as_str()),
        (ResourceKind::JobDefinition, "d:1", "us-east-1")
    );
    assert_eq!(
        ClientError::new("jobQueue", "m")
            .with_field("computeEnvironmentOrder[0]")
            .field,
        "computeEnvironmentOrder[0]"
    );
}

// ------------------------------------------------------------ images

#[test]
fn malformed_image_names_are_refused_at_registration() {
    let def = |image: &str| {
        format!(
            r#"{{"jobDefinitionName":"d","type":"container","containerProperties":{{"image":"{image}","command":["true"]}}}}"#
        )
    };
    accept::<Reg>(&def("debian:bookworm"));
    accept::<Reg>(&def("127.0.0.1:5000/shoal/test:1"));
    assert_err(
        &reject::<Reg>(&def("Debian")),
        "containerProperties.image",
        "must be lowercase",
    );
    assert_err(
        &reject::<Reg>(&def("debian@sha256:beef")),
        "containerProperties.image",
        "64 lowercase hexadecimal",
    );
    let multinode = r#"{"jobDefinitionName":"m","type":"multinode","nodeProperties":{"numNodes":2,"mainNode":0,
        "nodeRangeProperties":[{"targetNodes":"0:","container":{"image":"a//b","command":["true"]}}]}}"#;
    assert_err(
        &reject::<Reg>(multinode),
        "nodeProperties.nodeRangeProperties[0].container.image",
        "empty",
    );
}
