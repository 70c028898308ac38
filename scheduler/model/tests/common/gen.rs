//! A generator of JSON values shaped like AWS Batch requests: the keys
//! Shoal's parsers know, nested a few levels, with values that are near
//! the edges (negative and huge numbers, ranges, refs, ARNs). Shared by the
//! model's proptests and the daemon's HTTP fuzz test (`#[path]`).
#![allow(dead_code)]

use proptest::prelude::*;
use serde_json::Value;

pub const KEYS: &[&str] = &[
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

pub fn json_value() -> impl Strategy<Value = Value> {
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
