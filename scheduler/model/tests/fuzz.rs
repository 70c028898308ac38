//! Nothing panics on any input: arbitrary bytes and arbitrary JSON values
//! go through parse_request + validate for every request type, and valid
//! definitions through validate_submit.

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shoal_model::*;

#[path = "common/gen.rs"]
mod gen;
use gen::json_value;

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

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_500, ..ProptestConfig::default() })]

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
