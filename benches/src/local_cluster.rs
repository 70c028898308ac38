//! Running a benchmark on a cluster: the one given with `--endpoint`, or a
//! local one started for the run and removed after it.

use anyhow::{bail, Result};
use shoal_client::Client;
use shoal_model as m;
use std::path::Path;

/// Wait (bounded) until `n` workers are registered and not DOWN.
pub fn wait_nodes(client: &Client, n: usize) -> Result<()> {
    let mut delay = std::time::Duration::from_millis(10);
    for _ in 0..300 {
        if client.nodes_up()? >= n {
            return Ok(());
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(std::time::Duration::from_millis(200));
    }
    bail!("the cluster's workers did not register")
}

/// How a local cluster that a benchmark starts reaches container
/// registries (`shoal cluster up`'s options of the same names).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct LocalNet {
    /// Third octet of the local cluster's 10.201.X.0/24 subnet (default:
    /// from the pid). A registry listening on the host is reached from the
    /// nodes at 10.201.X.254.
    #[arg(long)]
    pub subnet: Option<u8>,
    /// A registry the local cluster's workers reach over plain HTTP
    /// (repeatable), e.g. 10.201.X.254:5000.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,
}

/// Start a local cluster of `nodes` × `cpus` in `dir`.
pub fn start(
    nodes: u32,
    cpus: u32,
    net: &LocalNet,
    dir: &Path,
) -> Result<shoal_worker::cluster::Cluster> {
    Ok(shoal_worker::cluster::Cluster::up(
        &shoal_worker::cluster::ClusterConfig {
            nodes,
            cpus_per_node: cpus,
            memory_mib: None,
            dir: dir.to_path_buf(),
            subnet: net.subnet,
            shoal: std::env::current_exe()?,
            insecure_registries: net.insecure_registries.clone(),
        },
    )?)
}

/// Run `f` with a client of `endpoint`'s cluster (keys from the
/// environment), or of a local cluster of `nodes` × `cpus` made in `dir`
/// (with that cluster's keys; removed afterwards, with `dir`), once `nodes`
/// workers are up.
pub fn with_cluster<T>(
    endpoint: Option<&str>,
    nodes: u32,
    cpus: u32,
    net: &LocalNet,
    dir: &Path,
    f: impl FnOnce(&Client) -> Result<T>,
) -> Result<T> {
    let mut cluster = None;
    let client = match endpoint {
        Some(e) => Client::new(e).map_err(anyhow::Error::from),
        None => {
            eprintln!("starting a local {nodes}-node cluster ({cpus} vCPUs per node) …");
            let c = start(nodes, cpus, net, dir)?;
            let client = Client::with_credentials_file(&c.endpoint, &c.credentials)
                .map_err(anyhow::Error::from);
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
pub fn run_as_me(definition: &mut m::RegisterJobDefinitionRequest) {
    let uid = nix::unistd::getuid();
    let me = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());
    for c in containers_mut(definition) {
        c.user = Some(me.clone());
    }
}

/// Every container of a definition: its single-node one and each node
/// range's.
fn containers_mut(
    definition: &mut m::RegisterJobDefinitionRequest,
) -> impl Iterator<Item = &mut m::ContainerProperties> {
    let ranges = definition
        .node_properties
        .iter_mut()
        .flat_map(|n| n.node_range_properties.iter_mut())
        .filter_map(|r| r.container.as_mut());
    definition.container_properties.iter_mut().chain(ranges)
}

/// The same definition with every node in `image`, named `NAME-image`.
pub fn in_image(
    mut definition: m::RegisterJobDefinitionRequest,
    image: &str,
) -> m::RegisterJobDefinitionRequest {
    definition.job_definition_name = image_variant(&definition.job_definition_name);
    for c in containers_mut(&mut definition) {
        c.image = Some(image.to_string());
    }
    definition
}

/// The name of a definition's variant in an image (see [`in_image`]).
pub fn image_variant(name: &str) -> String {
    format!("{name}-image")
}

/// A shipped job definition (`shoal_jobs::definitions`), to run as the
/// benchmark's user (see [`run_as_me`]).
pub fn shipped_definition(json: &str) -> Result<m::RegisterJobDefinitionRequest> {
    let mut d: m::RegisterJobDefinitionRequest = m::parse_request(json.as_bytes())?;
    run_as_me(&mut d);
    Ok(d)
}

/// Submit definition `definition` as `name` with these `Ref::` parameters
/// and wait until it ends; its id and last description.
pub fn run_job(
    client: &Client,
    definition: &str,
    name: String,
    parameters: std::collections::BTreeMap<String, String>,
) -> Result<(String, m::JobDetail)> {
    let id = client
        .call(&m::SubmitJobRequest {
            job_name: name,
            job_queue: "default".into(),
            job_definition: definition.to_string(),
            parameters,
            ..Default::default()
        })?
        .job_id;
    let job = client.wait_for(&id)?;
    Ok((id, job))
}
