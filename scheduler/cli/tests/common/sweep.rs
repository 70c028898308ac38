//! What the multi-node benchmark tests (`shoal bench md`, `shoal bench
//! gromacs`) check alike in their JSON runs.

use serde_json::Value;

/// Each run's (nodes, ranks per node, transport), in order.
pub fn shapes(runs: &[Value]) -> Vec<(u64, u64, String)> {
    runs.iter()
        .map(|r| {
            (
                r["nodes"].as_u64().unwrap(),
                r["ranks_per_node"].as_u64().unwrap(),
                r["transport"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The BTLs Open MPI reported for a run are what its transport promises:
/// vader between ranks of one node for shm, tcp for tcp, tcp between
/// nodes; nothing where the shape has no such pairs.
pub fn assert_btls(r: &Value) {
    let within = &r["btl"]["within_node"];
    match (r["ranks_per_node"].as_u64(), r["transport"].as_str()) {
        (Some(rpn), Some("shm")) if rpn > 1 => assert_eq!(within, "vader", "{r}"),
        (Some(rpn), Some("tcp")) if rpn > 1 => assert_eq!(within, "tcp", "{r}"),
        _ => assert!(within.is_null(), "{r}"),
    }
    let across = &r["btl"]["across_nodes"];
    if r["nodes"].as_u64().unwrap() > 1 {
        assert_eq!(across, "tcp", "{r}");
    } else {
        assert!(across.is_null(), "{r}");
    }
}
