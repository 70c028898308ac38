mod common;
use common::*;
use shoal_model::*;

#[test]
fn unknown_field_is_rejected_with_its_path() {
    let e = parse_request::<RegisterJobDefinitionRequest>(
        br#"{"jobDefinitionName":"d","type":"container","containerProperties":{"linuxParameters":{"sharedMemorySizee":5}}}"#,
    )
    .unwrap_err();
    assert_eq!(
        e.field,
        "containerProperties.linuxParameters.sharedMemorySizee"
    );
    assert!(e.message.starts_with("unknown field"), "{e}");
    assert!(e.message.contains("sharedMemorySize"), "{e}");
    assert!(e
        .to_string()
        .starts_with("containerProperties.linuxParameters.sharedMemorySizee: unknown field"));

    let e = parse_request::<SubmitJobRequest>(
        br#"{"jobName":"a","jobQueue":"q","jobDefinition":"d","bogus":1}"#,
    )
    .unwrap_err();
    assert_err(&e, "bogus", "unknown field");

    let e = parse_request::<SubmitJobRequest>(
        br#"{"jobName":"a","jobQueue":"q","jobDefinition":"d","containerOverrides":{"resourceRequirements":[{"type":"VCPU","value":"1","x":2}]}}"#,
    )
    .unwrap_err();
    assert_err(
        &e,
        "containerOverrides.resourceRequirements[0].x",
        "unknown field",
    );
}

#[test]
fn missing_field_names_the_path() {
    let e = parse_request::<SubmitJobRequest>(br#"{"jobName":"a","jobQueue":"q"}"#).unwrap_err();
    assert_err(&e, "jobDefinition", "required");
    let e = parse_request::<RegisterJobDefinitionRequest>(
        br#"{"jobDefinitionName":"d","type":"container","containerProperties":{"resourceRequirements":[{"value":"1"}]}}"#,
    )
    .unwrap_err();
    assert_err(
        &e,
        "containerProperties.resourceRequirements[0].type",
        "required",
    );
}

#[test]
fn wrong_type_names_the_path() {
    let e = parse_request::<RegisterJobDefinitionRequest>(
        br#"{"jobDefinitionName":"d","type":"container","containerProperties":{"command":"echo hi"}}"#,
    )
    .unwrap_err();
    assert_err(&e, "containerProperties.command", "invalid type");
    let e =
        parse_request::<SubmitJobRequest>(br#"{"jobName":5,"jobQueue":"q","jobDefinition":"d"}"#)
            .unwrap_err();
    assert_err(&e, "jobName", "invalid type");
}

#[test]
fn numbers_out_of_range() {
    let e = parse_request::<RegisterJobDefinitionRequest>(
        br#"{"jobDefinitionName":"d","type":"multinode","nodeProperties":{"numNodes":99999999999,"mainNode":0,"nodeRangeProperties":[]}}"#,
    )
    .unwrap_err();
    assert_eq!(e.field, "nodeProperties.numNodes");
    let e = parse_request::<SubmitJobRequest>(
        br#"{"jobName":"a","jobQueue":"q","jobDefinition":"d","arrayProperties":{"size":1e400}}"#,
    )
    .unwrap_err();
    assert!(!e.to_string().is_empty());
    let e = parse_request::<SubmitJobRequest>(
        br#"{"jobName":"a","jobQueue":"q","jobDefinition":"d","arrayProperties":{"size":2.5}}"#,
    )
    .unwrap_err();
    assert_eq!(e.field, "arrayProperties.size");
}

#[test]
fn syntax_errors_and_truncation() {
    let e = parse_request::<SubmitJobRequest>(br#"{"jobName":"a","#).unwrap_err();
    assert_eq!(e.field, "");
    assert!(e.message.contains("truncated"), "{e}");
    let e = parse_request::<SubmitJobRequest>(br#"{"jobName" "a"}"#).unwrap_err();
    assert!(e.message.contains("not valid JSON"), "{e}");
    let e = parse_request::<DescribeJobsRequest>(br#"{"jobs":["a"]} trailing"#).unwrap_err();
    assert!(e.message.contains("not valid JSON"), "{e}");
    let e = parse_request::<DescribeJobsRequest>(b"\xff\xfe").unwrap_err();
    assert_eq!(e.field, "");
    let e = parse_request::<DescribeJobsRequest>(br#"[1,2]"#).unwrap_err();
    assert!(e.message.contains("invalid type"), "{e}");
}

#[test]
fn duplicate_field() {
    let e = parse_request::<DescribeJobsRequest>(br#"{"jobs":["a"],"jobs":["b"]}"#).unwrap_err();
    assert_err(&e, "jobs", "more than once");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = "[".repeat(10_000);
    let e = parse_request::<SubmitJobRequest>(deep.as_bytes()).unwrap_err();
    assert!(!e.message.is_empty());
    // Nesting inside a free-form field hits serde_json's recursion limit.
    let body = format!(
        r#"{{"computeEnvironmentName":"ce","type":"MANAGED","computeResources":{}"#,
        "[".repeat(10_000)
    );
    let e = parse_request::<CreateComputeEnvironmentRequest>(body.as_bytes()).unwrap_err();
    assert!(e.message.contains("nested too deeply"), "{e}");
    let body = format!(
        r#"{{"computeEnvironmentName":"ce","type":"MANAGED","computeResources":{}"#,
        r#"{"a":"#.repeat(10_000)
    );
    assert!(parse_request::<CreateComputeEnvironmentRequest>(body.as_bytes()).is_err());
}

#[test]
fn empty_body_is_an_empty_object() {
    let r: DescribeJobQueuesRequest = accept("");
    assert!(r.job_queues.is_empty());
    let _: DescribeComputeEnvironmentsRequest = accept("  ");
    let e = parse_request::<DescribeJobsRequest>(b"").unwrap_err();
    assert_err(&e, "jobs", "required");
}

#[test]
fn nulls_are_absent() {
    let r: SubmitJobRequest = accept(
        r#"{"jobName":"a","jobQueue":"q","jobDefinition":"d","dependsOn":null,"parameters":null,"timeout":null}"#,
    );
    assert!(r.depends_on.is_empty() && r.parameters.is_empty() && r.timeout.is_none());
}

#[test]
fn client_error_json() {
    let e = ClientError::new("jobName", "bad");
    assert_eq!(e.to_string(), "jobName: bad");
    assert_eq!(
        e.to_json(),
        serde_json::json!({"__type":"ClientException","message":"jobName: bad"})
    );
    assert_eq!(ClientError::new("", "whole").to_string(), "whole");
}

#[test]
fn responses_serialize_camel_case_and_skip_none() {
    let d = JobDetail {
        job_arn: "arn".into(),
        job_name: "n".into(),
        job_id: "id".into(),
        job_queue: "q".into(),
        status: "RUNNING".into(),
        job_definition: "jd".into(),
        shm_peak_mib: Some(12),
        created_at: Some(1),
        ..Default::default()
    };
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["shmPeakMiB"], 12);
    assert_eq!(v["createdAt"], 1);
    assert!(v.get("stoppedAt").is_none());
    assert!(v.get("container").is_none());
    let back: JobDetail = serde_json::from_value(v).unwrap();
    assert_eq!(back, d);

    let ce = ComputeEnvironmentDetail {
        compute_environment_name: "c".into(),
        compute_environment_arn: "a".into(),
        unmanaged_vcpus: Some(4),
        kind: Some("MANAGED".into()),
        ..Default::default()
    };
    let v = serde_json::to_value(&ce).unwrap();
    assert_eq!(v["unmanagedvCpus"], 4);
    assert_eq!(v["type"], "MANAGED");

    assert_eq!(serde_json::to_string(&EmptyResponse {}).unwrap(), "{}");
    let l = ListJobsResponse::default();
    assert_eq!(
        serde_json::to_string(&l).unwrap(),
        r#"{"jobSummaryList":[]}"#
    );
}

#[test]
fn job_definition_round_trips() {
    let def = register(&container_def(
        r#"{"image":"i","command":["a"],"resourceRequirements":[{"type":"VCPU","value":"2"}],"linuxParameters":{"sharedMemorySize":128},"logConfiguration":{"logDriver":"awslogs"}}"#,
    ));
    let v = serde_json::to_value(&def).unwrap();
    assert_eq!(v["type"], "container");
    assert_eq!(v["containerOrchestrationType"], "ECS");
    assert_eq!(
        v["jobDefinitionArn"],
        "arn:aws:batch:us-east-1:000000000000:job-definition/d:1"
    );
    assert_eq!(
        v["containerProperties"]["resourceRequirements"][0]["type"],
        "VCPU"
    );
    assert_eq!(v["platformCapabilities"][0], "EC2");
    let back: JobDefinition = serde_json::from_value(v).unwrap();
    assert_eq!(back, def);
}
