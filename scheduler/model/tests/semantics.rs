mod common;
use common::*;
use shoal_model::*;
use std::collections::BTreeMap;

fn params(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sub(json: &str) -> SubmitJobRequest {
    accept(json)
}

#[test]
fn ref_substitution() {
    let cmd: Vec<String> = [
        "run",
        "Ref::in",
        "--out=Ref::out.txt",
        "Ref::missing",
        "Ref::",
        "Ref::a-b",
        "xRef::in",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = substitute(
        &cmd,
        &params(&[("in", "/data/x"), ("out", "o"), ("a-b", "AB")]),
    );
    assert_eq!(
        out,
        vec![
            "run",
            "/data/x",
            "--out=o.txt",
            "Ref::missing",
            "Ref::",
            "AB",
            "x/data/x"
        ]
    );
    // Values are not rescanned.
    let out = substitute(
        &["Ref::a".to_string()],
        &params(&[("a", "Ref::b"), ("b", "no")]),
    );
    assert_eq!(out, vec!["Ref::b"]);
    // Multi-byte text around placeholders survives.
    let out = substitute(&["é-Ref::a-ü".to_string()], &params(&[("a", "1")]));
    assert_eq!(out, vec!["é-Ref::a-ü"]);
    let out = substitute(&["é Ref::a ü".to_string()], &params(&[("a", "1")]));
    assert_eq!(out, vec!["é 1 ü"]);
}

#[test]
fn single_node_overrides_and_params() {
    let def = register(
        r#"{"jobDefinitionName":"d","type":"container","parameters":{"in":"default","mode":"fast"},
        "containerProperties":{"command":["prog","Ref::in","Ref::mode"],"vcpus":2,
          "resourceRequirements":[{"type":"MEMORY","value":"1000"}],
          "environment":[{"name":"A","value":"1"},{"name":"B","value":"2"}],
          "linuxParameters":{"sharedMemorySize":512}},
        "retryStrategy":{"attempts":2},"timeout":{"attemptDurationSeconds":600},"schedulingPriority":5,
        "tags":{"t1":"d","t2":"d"},"propagateTags":true}"#,
    );
    let req = sub(
        r#"{"jobName":"j","jobQueue":"q","jobDefinition":"d","parameters":{"in":"/x"},
        "containerOverrides":{"environment":[{"name":"B","value":"3"},{"name":"C","value":"4"}],
          "resourceRequirements":[{"type":"VCPU","value":"8"}],"memory":4096},
        "tags":{"t2":"s"},"schedulingPriorityOverride":9}"#,
    );
    let c = effective_container(&def, 0, &req).unwrap();
    assert_eq!(c.command, vec!["prog", "/x", "fast"]);
    assert_eq!(c.vcpus, None);
    assert_eq!(c.memory, Some(4096));
    assert_eq!(
        c.resource_requirements,
        vec![ResourceRequirement::new("VCPU", "8")]
    );
    assert_eq!(
        c.environment,
        vec![
            KeyValuePair::new("A", "1"),
            KeyValuePair::new("B", "3"),
            KeyValuePair::new("C", "4")
        ]
    );
    let r = validate_submit(&def, &req).unwrap();
    assert!(!r.multinode);
    assert_eq!((r.num_nodes, r.main_node, r.nodes.len()), (1, 0, 1));
    assert_eq!(
        r.nodes[0].demand,
        Resources {
            vcpus: 8,
            memory_mib: 4096,
            shm_mib: 512
        }
    );
    assert_eq!(r.parameters, params(&[("in", "/x"), ("mode", "fast")]));
    assert_eq!(r.max_attempts, 2);
    assert_eq!(r.attempt_duration_seconds, Some(600));
    assert_eq!(r.scheduling_priority, 9);
    assert_eq!(r.tags, params(&[("t1", "d"), ("t2", "s")]));
    assert!(r.propagate_tags);
    assert_eq!(r.array_size, None);

    // Submission's retry strategy and timeout replace the definition's.
    let req = sub(
        r#"{"jobName":"j","jobQueue":"q","jobDefinition":"d","retryStrategy":{"attempts":5},"timeout":{"attemptDurationSeconds":61},
        "propagateTags":false,"arrayProperties":{"size":4},"dependsOn":[{"type":"SEQUENTIAL"}],"containerOverrides":{"command":["other","Ref::mode"]}}"#,
    );
    let r = validate_submit(&def, &req).unwrap();
    assert_eq!(r.max_attempts, 5);
    assert_eq!(r.attempt_duration_seconds, Some(61));
    assert_eq!(r.scheduling_priority, 5);
    assert!(!r.propagate_tags);
    assert_eq!(r.array_size, Some(4));
    assert_eq!(r.depends_on, vec![Dependency::Sequential]);
    assert_eq!(r.nodes[0].container.command, vec!["other", "fast"]);
    assert_eq!(
        r.nodes[0].demand,
        Resources {
            vcpus: 2,
            memory_mib: 1000,
            shm_mib: 512
        }
    );
}

#[test]
fn demand_defaults() {
    let d = node_demand(&ContainerProperties::default());
    assert_eq!(
        d,
        Resources {
            vcpus: 1,
            memory_mib: 2048,
            shm_mib: 64
        }
    );
    let def = register(&container_def(r#"{"vcpus":3,"memory":100}"#));
    let r = validate_submit(
        &def,
        &sub(r#"{"jobName":"j","jobQueue":"q","jobDefinition":"d"}"#),
    )
    .unwrap();
    assert_eq!(
        r.nodes[0].demand,
        Resources {
            vcpus: 3,
            memory_mib: 100,
            shm_mib: 64
        }
    );
    assert_eq!(r.scheduling_priority, 0);
    assert_eq!(r.max_attempts, 1);
    // Legacy override replaces a resourceRequirements VCPU.
    let def = register(&container_def(
        r#"{"resourceRequirements":[{"type":"VCPU","value":"4"}]}"#,
    ));
    let r = validate_submit(
        &def,
        &sub(r#"{"jobName":"j","jobQueue":"q","jobDefinition":"d","containerOverrides":{"vcpus":6}}"#),
    )
    .unwrap();
    assert_eq!(r.nodes[0].demand.vcpus, 6);
}

#[test]
fn submit_against_definition_errors() {
    let def = register(&container_def("{}"));
    let e = validate_submit(
        &def,
        &sub(
            r#"{"jobName":"j","jobQueue":"q","jobDefinition":"d","nodeOverrides":{"numNodes":2}}"#,
        ),
    )
    .unwrap_err();
    assert_err(&e, "nodeOverrides", "only for multinode");
    let mut inactive = def.clone();
    inactive.status = "INACTIVE".into();
    let e = validate_submit(
        &inactive,
        &sub(r#"{"jobName":"j","jobQueue":"q","jobDefinition":"d"}"#),
    )
    .unwrap_err();
    assert_err(&e, "jobDefinition", "INACTIVE");
    // validate_submit re-runs the request's own validation.
    let req: SubmitJobRequest = parse_request(
        br#"{"jobName":"j","jobQueue":"q","jobDefinition":"d","containerOverrides":{"resourceRequirements":[{"type":"VCPU","value":"x"}]}}"#,
    )
    .unwrap();
    let e = validate_submit(&def, &req).unwrap_err();
    assert_err(
        &e,
        "containerOverrides.resourceRequirements[0].value",
        "whole number",
    );
}

#[test]
fn multinode_resolution() {
    let def = register(
        r#"{"jobDefinitionName":"m","type":"multinode","parameters":{"n":"def"},"nodeProperties":{"numNodes":4,"mainNode":0,"nodeRangeProperties":[
          {"targetNodes":"0","container":{"command":["main","Ref::n"],"vcpus":1}},
          {"targetNodes":"1:","container":{"command":["worker","Ref::n"],"vcpus":2,"linuxParameters":{"sharedMemorySize":1024}}}]}}"#,
    );
    let base = r#"{"jobName":"j","jobQueue":"q","jobDefinition":"m""#;
    let r = validate_submit(&def, &sub(&format!("{base}}}"))).unwrap();
    assert!(r.multinode);
    assert_eq!((r.num_nodes, r.main_node), (4, 0));
    assert_eq!(r.nodes[0].container.command, vec!["main", "def"]);
    assert_eq!(r.nodes[3].container.command, vec!["worker", "def"]);
    assert_eq!(
        r.nodes[3].demand,
        Resources {
            vcpus: 2,
            memory_mib: 2048,
            shm_mib: 1024
        }
    );
    assert!(r.nodes.iter().enumerate().all(|(i, n)| n.index == i as u32));

    // numNodes override stretches the open-ended range; node overrides apply per range.
    let req = sub(&format!(
        r#"{base},"parameters":{{"n":"sub"}},"nodeOverrides":{{"numNodes":6,"nodePropertyOverrides":[
          {{"targetNodes":"4:","containerOverrides":{{"command":["special","Ref::n"],"resourceRequirements":[{{"type":"VCPU","value":"16"}}]}}}}]}}}}"#
    ));
    let r = validate_submit(&def, &req).unwrap();
    assert_eq!(r.num_nodes, 6);
    assert_eq!(r.nodes[3].container.command, vec!["worker", "sub"]);
    assert_eq!(r.nodes[4].container.command, vec!["special", "sub"]);
    assert_eq!(r.nodes[5].demand.vcpus, 16);
    assert_eq!(r.nodes[3].demand.vcpus, 2);
    assert_eq!(
        effective_container(&def, 5, &req).unwrap().command,
        vec!["special", "sub"]
    );
    assert_err(
        &effective_container(&def, 6, &req).unwrap_err(),
        "nodeIndex",
        "does not exist",
    );

    // Shrinking to 1 leaves range "1:" starting past the last node.
    let e = validate_submit(
        &def,
        &sub(&format!(r#"{base},"nodeOverrides":{{"numNodes":1}}}}"#)),
    )
    .unwrap_err();
    assert_err(&e, "nodeOverrides.numNodes", "with numNodes 1");

    // Override ranges must fit and must not overlap.
    let e = validate_submit(
        &def,
        &sub(&format!(
            r#"{base},"nodeOverrides":{{"nodePropertyOverrides":[{{"targetNodes":"0:9"}}]}}}}"#
        )),
    )
    .unwrap_err();
    assert_err(
        &e,
        "nodeOverrides.nodePropertyOverrides[0].targetNodes",
        "ends at node 9",
    );
    let e = validate_submit(
        &def,
        &sub(&format!(
            r#"{base},"nodeOverrides":{{"nodePropertyOverrides":[{{"targetNodes":"0:1"}},{{"targetNodes":"1"}}]}}}}"#
        )),
    )
    .unwrap_err();
    assert_err(
        &e,
        "nodeOverrides.nodePropertyOverrides[1].targetNodes",
        "overlaps",
    );

    // containerOverrides and arrays are not for multinode jobs.
    let e = validate_submit(
        &def,
        &sub(&format!(r#"{base},"containerOverrides":{{}}}}"#)),
    )
    .unwrap_err();
    assert_err(&e, "containerOverrides", "not allowed for multinode");
    let e = validate_submit(
        &def,
        &sub(&format!(r#"{base},"arrayProperties":{{"size":2}}}}"#)),
    )
    .unwrap_err();
    assert_err(&e, "arrayProperties", "cannot be array jobs");
}

#[test]
fn num_nodes_override_needs_open_range() {
    let def = register(&mnp_def(3, 2, &["0:1", "2"]));
    let base = r#"{"jobName":"j","jobQueue":"q","jobDefinition":"mnp""#;
    let e = validate_submit(
        &def,
        &sub(&format!(r#"{base},"nodeOverrides":{{"numNodes":5}}}}"#)),
    )
    .unwrap_err();
    assert_err(&e, "nodeOverrides.numNodes", "open-ended");
    // Same count is fine.
    validate_submit(
        &def,
        &sub(&format!(r#"{base},"nodeOverrides":{{"numNodes":3}}}}"#)),
    )
    .unwrap();
    let def = register(&mnp_def(3, 2, &["0:"]));
    let e = validate_submit(
        &def,
        &sub(&format!(r#"{base},"nodeOverrides":{{"numNodes":2}}}}"#)),
    )
    .unwrap_err();
    assert_err(&e, "nodeOverrides.numNodes", "mainNode 2");
}

#[test]
fn container_detail_from_properties() {
    let def = register(&container_def(
        r#"{"image":"i","command":["a"],"user":"u"}"#,
    ));
    let d = ContainerDetail::from_properties(def.container_properties.as_ref().unwrap());
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"image":"i","command":["a"],"user":"u"})
    );
}

#[test]
fn a_job_without_a_command_to_run_is_refused_naming_the_field() {
    let reg = |json: &str| -> Result<(), ClientError> {
        Err(reject::<RegisterJobDefinitionRequest>(json))
    };
    let e =
        reg(r#"{"jobDefinitionName":"d","type":"container","containerProperties":{"command":[]}}"#)
            .unwrap_err();
    assert_err(&e, "containerProperties.command", "is empty");
    let e = reg(r#"{"jobDefinitionName":"d","type":"container","containerProperties":{}}"#)
        .unwrap_err();
    assert_err(&e, "containerProperties.command", "give the program to run");
    let e = reg(r#"{"jobDefinitionName":"d","type":"container","containerProperties":{"command":[" ","x"]}}"#)
        .unwrap_err();
    assert_err(&e, "containerProperties.command[0]", "blank");
    let e =
        reg(&mnp_def(2, 0, &["0:"]).replace(r#""command":["run","Ref::n"]"#, r#""command":[]"#))
            .unwrap_err();
    assert_err(
        &e,
        "nodeProperties.nodeRangeProperties[0].container.command",
        "is empty",
    );
    // An override that empties the command.
    let def = register(&container_def(r#"{"command":["echo","hi"]}"#));
    let e = validate_submit(
        &def,
        &parse_request(
            br#"{"jobName":"j","jobQueue":"q","jobDefinition":"d","containerOverrides":{"command":[]}}"#,
        )
        .unwrap(),
    )
    .unwrap_err();
    assert_err(&e, "containerOverrides.command", "is empty");
    let ok = validate_submit(
        &def,
        &sub(r#"{"jobName":"j","jobQueue":"q","jobDefinition":"d","containerOverrides":{"command":["true"]}}"#),
    )
    .unwrap();
    assert_eq!(ok.nodes[0].container.command, vec!["true".to_string()]);
}
