//! Running a benchmark on a cluster: the one given with `--endpoint`, or a
//! local one started for the run and removed after it.

use crate::client::Client;
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::path::Path;

/// Wait (bounded) until `n` workers are registered and not DOWN.
pub fn wait_nodes(client: &Client, n: usize) -> Result<()> {
    let mut delay = std::time::Duration::from_millis(10);
    for _ in 0..300 {
        let v: Value = client.shoal("listnodes", &json!({}))?;
        let up = v["nodes"]
            .as_array()
            .map(|a| a.iter().filter(|x| x["state"] != "DOWN").count())
            .unwrap_or(0);
        if up >= n {
            return Ok(());
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(std::time::Duration::from_millis(200));
    }
    bail!("the cluster's workers did not register")
}

/// Run `f` with a client of `endpoint`'s cluster (keys from the
/// environment), or of a local cluster of `nodes` × `cpus` made in `dir`
/// (with that cluster's keys; removed afterwards, with `dir`), once `nodes`
/// workers are up.
pub fn with_cluster<T>(
    endpoint: Option<&str>,
    nodes: u32,
    cpus: u32,
    dir: &Path,
    f: impl FnOnce(&Client) -> Result<T>,
) -> Result<T> {
    let mut cluster = None;
    let client = match endpoint {
        Some(e) => Client::new(e),
        None => {
            eprintln!("starting a local {nodes}-node cluster ({cpus} vCPUs per node) …");
            let c = shoal_worker::cluster::Cluster::up(&shoal_worker::cluster::ClusterConfig {
                nodes,
                cpus_per_node: cpus,
                memory_mib: None,
                dir: dir.to_path_buf(),
                subnet: None,
                shoal: std::env::current_exe()?,
            })?;
            let client = Client::with_credentials_file(&c.endpoint, &c.credentials);
            cluster = Some(c);
            client
        }
    };
    let result = client.and_then(|client| {
        wait_nodes(&client, nodes as usize)?;
        f(&client)
    });
    if let Some(mut c) = cluster {
        c.down();
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// Make a benchmark's job definition run as the user running the benchmark
/// (its binaries are that user's build): `user` goes into every container.
/// Workers refuse root unless the definition asks, so a root benchmark asks,
/// and a local cluster (`--allow-root-jobs`) lets it.
pub fn run_as_me(definition: &mut Value) {
    let uid = nix::unistd::getuid();
    let me = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());
    if let Some(c) = definition.get_mut("containerProperties") {
        c["user"] = json!(me);
    }
    if let Some(ranges) = definition
        .pointer_mut("/nodeProperties/nodeRangeProperties")
        .and_then(Value::as_array_mut)
    {
        for r in ranges {
            r["container"]["user"] = json!(me);
        }
    }
}
