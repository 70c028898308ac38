//! The launch spec: what a worker needs to run one node of a job, resolved
//! once, at submit, from the node's effective container (overrides
//! applied, `Ref::` parameters substituted). The job record stores it, the
//! Start order carries it, and the worker only applies it: the AWS shapes
//! (`linuxParameters`, `volumes`, `mountPoints`) stop here, and every
//! default (e.g. 64 MiB of `/dev/shm`) is applied once, in this crate.

use crate::container::ContainerProperties;
use serde::{Deserialize, Serialize};
use shoal_core::Resources;

/// An environment variable of the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

impl EnvVar {
    /// `NAME=VALUE`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A tmpfs the job gets at `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TmpfsMount {
    /// Where, in the job's view.
    pub path: String,
    /// Its size, MiB.
    pub size_mib: u64,
    /// Mount options as given (`noexec`, `mode=1777`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// A host directory the job sees at `target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindMount {
    /// The host path (a volume's `host.sourcePath`).
    pub source: String,
    /// Where, in the job's view (the mount point's `containerPath`).
    pub target: String,
    /// Read-only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// A host device the job asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceAccess {
    /// The host path.
    pub host_path: String,
    /// Where the job asks to see it (a host process sees the host's `/dev`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
}

/// A resource limit (`ulimits`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limit {
    /// Its name (`nofile`, `memlock`, …).
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// What a worker needs to run one node of a job, and nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchSpec {
    /// The command line (after `Ref::` substitution).
    pub argv: Vec<String>,
    /// The container image to run in (None: on the worker's host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<crate::image::ImageRef>,
    /// The environment: the container's, then what the scheduler adds
    /// (`AWS_BATCH_*`, `SHOAL_*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<EnvVar>,
    /// The user to run as (`containerProperties.user`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Size of the job's private `/dev/shm`, MiB
    /// (`linuxParameters.sharedMemorySize`, else 64).
    pub shm_mib: u64,
    /// tmpfs mounts (`linuxParameters.tmpfs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<TmpfsMount>,
    /// Bind mounts: each mount point joined with its host volume.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binds: Vec<BindMount>,
    /// Devices asked for (`linuxParameters.devices`), checked by the
    /// worker's allow-list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceAccess>,
    /// `ulimits`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<Limit>,
    /// The attempt's timeout, seconds (`timeout.attemptDurationSeconds`):
    /// the scheduler ends the attempt then; the worker ends a task that is
    /// still running a while after (its scheduler may be down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u64>,
}

impl LaunchSpec {
    /// The launch spec of a node's effective container (validated: tmpfs
    /// sizes are positive, mount points name volumes) whose resolved demand
    /// is `demand` (its `/dev/shm` size comes from there), in an attempt of
    /// `timeout_s` seconds, if any.
    pub fn of(c: &ContainerProperties, demand: &Resources, timeout_s: Option<u64>) -> LaunchSpec {
        let lp = c.linux_parameters.clone().unwrap_or_default();
        let host_path = |volume: &str| {
            c.volumes
                .iter()
                .find(|v| v.name.as_deref() == Some(volume))
                .and_then(|v| v.host.as_ref()?.source_path.clone())
        };
        LaunchSpec {
            // Checked at registration: a name that does not parse is not
            // stored.
            image: c
                .image
                .as_deref()
                .and_then(|i| crate::image::ImageRef::parse("image", i).ok()),
            argv: c.command.clone(),
            environment: c
                .environment
                .iter()
                .filter_map(|kv| Some(EnvVar::new(kv.name.clone()?, kv.value.clone()?)))
                .collect(),
            user: c.user.clone(),
            shm_mib: demand.shm_mib,
            tmpfs: lp
                .tmpfs
                .iter()
                .map(|t| TmpfsMount {
                    path: t.container_path.clone(),
                    size_mib: t.size.max(1) as u64,
                    options: t.mount_options.clone(),
                })
                .collect(),
            binds: c
                .mount_points
                .iter()
                .filter_map(|m| {
                    Some(BindMount {
                        source: host_path(m.source_volume.as_deref()?)?,
                        target: m.container_path.clone()?,
                        read_only: m.read_only.unwrap_or(false),
                    })
                })
                .collect(),
            devices: lp
                .devices
                .iter()
                .map(|d| DeviceAccess {
                    host_path: d.host_path.clone(),
                    container_path: d.container_path.clone(),
                })
                .collect(),
            limits: c
                .ulimits
                .iter()
                .map(|u| Limit {
                    name: u.name.clone(),
                    soft: u.soft_limit.into(),
                    hard: u.hard_limit.into(),
                })
                .collect(),
            timeout_s,
        }
    }

    /// Set `name` to `value` (replacing a variable of that name).
    pub fn set_env(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.environment.iter_mut().find(|e| e.name == name) {
            Some(e) => e.value = value,
            None => self.environment.push(EnvVar::new(name, value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_resolves_to_what_the_worker_applies_with_the_defaults_applied_once() {
        let c: ContainerProperties = serde_json::from_value(serde_json::json!({
            "command": ["run", "--in=x"],
            "environment": [{ "name": "A", "value": "1" }],
            "user": "nobody",
            "volumes": [{ "name": "data", "host": { "sourcePath": "/srv/data" } },
                        { "name": "unused", "host": { "sourcePath": "/srv/other" } }],
            "mountPoints": [{ "sourceVolume": "data", "containerPath": "/data", "readOnly": true }],
            "linuxParameters": { "tmpfs": [{ "containerPath": "/scratch", "size": 16 }],
                                 "devices": [{ "hostPath": "/dev/fuse" }] },
            "ulimits": [{ "name": "nofile", "softLimit": 1024, "hardLimit": 4096 }]
        }))
        .unwrap();
        let s = LaunchSpec::of(&c, &crate::semantics::node_demand(&c), None);
        assert_eq!(s.argv, ["run", "--in=x"]);
        assert_eq!(s.environment, [EnvVar::new("A", "1")]);
        assert_eq!(s.user.as_deref(), Some("nobody"));
        assert_eq!(s.shm_mib, crate::DEFAULT_SHM_MIB, "the model's one default");
        assert_eq!(
            s.binds,
            [BindMount {
                source: "/srv/data".into(),
                target: "/data".into(),
                read_only: true
            }],
            "only mounted volumes"
        );
        assert_eq!(s.tmpfs[0].size_mib, 16);
        assert_eq!(s.devices[0].host_path, "/dev/fuse");
        assert_eq!(s.limits[0].hard, 4096);
        let mut s2 = s.clone();
        s2.set_env("A", "2");
        s2.set_env("B", "3");
        assert_eq!(
            s2.environment,
            [EnvVar::new("A", "2"), EnvVar::new("B", "3")]
        );
    }
}
