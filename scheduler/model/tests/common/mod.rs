#![allow(dead_code)]

use serde::de::DeserializeOwned;
use shoal_model::*;

/// Parse and validate `json`, expecting an error; returns it.
pub fn reject<T: DeserializeOwned + Validate + std::fmt::Debug>(json: &str) -> ClientError {
    match parse_and_validate::<T>(json.as_bytes()) {
        Ok(v) => panic!("expected an error for {json}, got {v:?}"),
        Err(e) => e,
    }
}

/// Parse and validate `json`, expecting success.
pub fn accept<T: DeserializeOwned + Validate>(json: &str) -> T {
    match parse_and_validate::<T>(json.as_bytes()) {
        Ok(v) => v,
        Err(e) => panic!("expected {json} to be accepted, got: {e}"),
    }
}

pub fn assert_err(e: &ClientError, field: &str, contains: &str) {
    assert_eq!(e.field, field, "wrong field in: {e}");
    assert!(
        e.message.contains(contains),
        "message {:?} does not contain {:?}",
        e.message,
        contains
    );
}

pub fn mnp_def(num_nodes: i32, main: i32, ranges: &[&str]) -> String {
    let ranges: Vec<String> = ranges
        .iter()
        .map(|t| {
            format!(
                r#"{{"targetNodes":"{t}","container":{{"image":"x","command":["run","Ref::n"]}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"jobDefinitionName":"mnp","type":"multinode","nodeProperties":{{"numNodes":{num_nodes},"mainNode":{main},"nodeRangeProperties":[{}]}}}}"#,
        ranges.join(",")
    )
}

/// A container definition; a container that names no command gets `true`.
pub fn container_def(container: &str) -> String {
    let container = match container.trim() {
        c if c.contains("\"command\"") => c.to_string(),
        "{}" => r#"{"command":["true"]}"#.to_string(),
        c => c.replacen('{', r#"{"command":["true"],"#, 1),
    };
    format!(r#"{{"jobDefinitionName":"d","type":"container","containerProperties":{container}}}"#)
}

pub fn register(json: &str) -> JobDefinition {
    let req: RegisterJobDefinitionRequest = accept(json);
    JobDefinition::from_request(&req, &ArnScope::default(), 1)
}
