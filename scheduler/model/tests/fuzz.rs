//! Nothing panics on any input: arbitrary bytes and arbitrary JSON values
//! go through parse_request + validate for every request type, and valid
//! definitions through validate_submit.

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shoal_model::*;

fn all(body: &[u8]) {
    fn one<T: DeserializeOwned + Validate>(body: &[u8]) {
        if let Ok(v) = parse_request::<T>(body) {
            let _ = v.validate();
        }
    }
    one::<RegisterJobDefinitionRequest>(body);
    one::<SubmitJobRequest>(body);
    one::<DescribeJobDefinitionsRequest>(body);
    one::<DeregisterJobDefinitionRequest>(body);
    one::<DescribeJobsRequest>(body);
    one::<ListJobsRequest>(body);
    one::<CancelJobRequest>(body);
    one::<TerminateJobRequest>(body);
    one::<CreateComputeEnvironmentRequest>(body);
    one::<UpdateComputeEnvironmentRequest>(body);
    one::<DeleteComputeEnvironmentRequest>(body);
    one::<DescribeComputeEnvironmentsRequest>(body);
    one::<CreateJobQueueRequest>(body);
    one::<UpdateJobQueueRequest>(body);
    one::<DeleteJobQueueRequest>(body);
    one::<DescribeJobQueuesRequest>(body);
}

const KEYS: &[&str] = &[
    "jobDefinitionName",
    "type",
    "containerProperties",
    "nodeProperties",
    "numNodes",
    "mainNode",
    "nodeRangeProperties",
    "targetNodes",
    "container",
    "command",
    "resourceRequirements",
    "value",
    "linuxParameters",
    "sharedMemorySize",
    "retryStrategy",
    "attempts",
    "evaluateOnExit",
    "action",
    "timeout",
    "attemptDurationSeconds",
    "jobName",
    "jobQueue",
    "jobDefinition",
    "arrayProperties",
    "size",
    "dependsOn",
    "jobId",
    "nodeOverrides",
    "nodePropertyOverrides",
    "containerOverrides",
    "parameters",
    "jobs",
    "computeEnvironmentOrder",
    "order",
    "computeEnvironment",
    "priority",
    "jobQueueName",
    "computeEnvironmentName",
    "state",
    "tags",
    "filters",
    "name",
    "values",
    "reason",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-3i64..12).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("container".to_string()),
            Just("multinode".to_string()),
            Just("0:".to_string()),
            Just("1:3".to_string()),
            Just(":".to_string()),
            Just("VCPU".to_string()),
            Just("MEMORY".to_string()),
            Just("SEQUENTIAL".to_string()),
            Just("N_TO_N".to_string()),
            Just("Ref::x".to_string()),
            Just("arn:aws:batch:r:a:job-queue/q".to_string()),
            "[ -~]{0,12}",
            "\\PC{0,6}"
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        all(&body);
    }

    #[test]
    fn arbitrary_json_never_panics(v in json_value()) {
        all(serde_json::to_string(&v).unwrap().as_bytes());
    }

    #[test]
    fn arbitrary_submissions_never_panic(
        num_nodes in 0i32..8, main in -1i32..8,
        ranges in prop::collection::vec(prop::sample::select(vec!["0:", ":", "1:", "0", "1", "0:1", "2:", ":2", "3:9", "5:2"]), 0..4),
        sub in json_value(),
    ) {
        let nrp: Vec<Value> = ranges.iter().map(|t| serde_json::json!({"targetNodes": t, "container": {"command": ["Ref::x"]}})).collect();
        let def = serde_json::json!({"jobDefinitionName": "m", "type": "multinode",
            "nodeProperties": {"numNodes": num_nodes, "mainNode": main, "nodeRangeProperties": nrp}});
        let single = serde_json::json!({"jobDefinitionName": "d", "type": "container", "containerProperties": {"command": ["a"]}});
        for d in [def, single] {
            let Ok(req) = parse_and_validate::<RegisterJobDefinitionRequest>(d.to_string().as_bytes()) else { continue };
            let def = JobDefinition::from_request(&req, &ArnScope::default(), 1);
            let mut s = match sub.clone() { Value::Object(m) => m, _ => Default::default() };
            s.insert("jobName".into(), "j".into());
            s.insert("jobQueue".into(), "q".into());
            s.insert("jobDefinition".into(), "m".into());
            if let Ok(r) = parse_request::<SubmitJobRequest>(Value::Object(s).to_string().as_bytes()) {
                if let Ok(res) = validate_submit(&def, &r) {
                    prop_assert_eq!(res.nodes.len() as u32, res.num_nodes);
                    prop_assert!(res.main_node < res.num_nodes);
                }
                let _ = effective_container(&def, 0, &r);
            }
        }
    }

    #[test]
    fn refs_never_panic(s in "\\PC{0,40}") {
        let _ = parse_job_definition_ref(&s);
        let _ = resource_name_from_ref(ResourceKind::JobQueue, &s);
        let _ = job_id_from_ref(&s);
        let _ = substitute(std::slice::from_ref(&s), &[("x".to_string(), "y".to_string())].into_iter().collect());
        let _ = TargetNodes::parse("t", &s);
    }
}
