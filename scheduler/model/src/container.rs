//! Container properties (the `containerProperties` of a job definition and
//! each `nodeRangeProperties[].container`) and their validation.

use crate::error::{err, ClientError};
use crate::util::{check_not_empty, check_one_of, check_range, join, nullable};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{name, value}`, used for environment variables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyValuePair {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl KeyValuePair {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        KeyValuePair {
            name: Some(name.into()),
            value: Some(value.into()),
        }
    }
}

/// `{type, value}`. AWS spells values as strings: `VCPU` a whole number of
/// vCPUs, `MEMORY` MiB. `GPU` is rejected by validation (Shoal schedules no
/// GPUs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceRequirement {
    /// JSON `type`: `"VCPU"`, `"MEMORY"` or `"GPU"`.
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

impl ResourceRequirement {
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> Self {
        ResourceRequirement {
            kind: kind.into(),
            value: value.into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Host {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_path: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Host>,
    /// Accepted and recorded; Shoal mounts no EFS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efs_volume_configuration: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MountPoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Must name one of the container's `volumes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_volume: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ulimit {
    pub name: String,
    pub soft_limit: i32,
    pub hard_limit: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Device {
    pub host_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
    /// `READ`, `WRITE`, `MKNOD`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tmpfs {
    pub container_path: String,
    /// MiB, > 0.
    pub size: i32,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mount_options: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinuxParameters {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub devices: Vec<Device>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_process_enabled: Option<bool>,
    /// Size of /dev/shm in MiB (> 0). Unset: Docker's default, 64 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_memory_size: Option<i32>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tmpfs: Vec<Tmpfs>,
    /// MiB of swap, ≥ 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_swap: Option<i32>,
    /// 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<i32>,
}

/// A job definition's `containerProperties` (AWS reference names). Fields
/// that do not matter to Shoal are accepted as raw JSON and recorded; any
/// other name is rejected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerProperties {
    /// `[registry/]repository[:tag][@digest]`, checked at registration
    /// ([`crate::ImageRef`]); recorded (Shoal runs jobs on its workers'
    /// own system until container images are applied, issue 14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Deprecated AWS form of a `VCPU` resource requirement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<i32>,
    /// Deprecated AWS form of a `MEMORY` resource requirement (MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i32>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub volumes: Vec<Volume>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub environment: Vec<KeyValuePair>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mount_points: Vec<MountPoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_root_filesystem: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ulimits: Vec<Ulimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_requirements: Vec<ResourceRequirement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_parameters: Option<LinuxParameters>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fargate_platform_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_platform: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_credentials: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_execute_command: Option<bool>,
}

/// A parsed resource requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    Vcpu(u32),
    MemoryMib(u64),
}

/// Parse one `{type, value}` entry; `field` is the entry's path
/// (e.g. `containerOverrides.resourceRequirements[0]`).
pub fn parse_requirement(
    field: &str,
    rr: &ResourceRequirement,
) -> Result<Requirement, ClientError> {
    let vfield = join(field, "value");
    match rr.kind.as_str() {
        "VCPU" => {
            let v = rr.value.trim();
            if v.contains('.') {
                return err(
                    vfield,
                    format!(
                        "fractional vCPUs ({v:?}) are not supported; give a whole number of vCPUs, at least 1"
                    ),
                );
            }
            match v.parse::<i64>() {
                Ok(n) if (1..=i64::from(i32::MAX)).contains(&n) => Ok(Requirement::Vcpu(n as u32)),
                Ok(n) => err(
                    vfield,
                    format!("VCPU must be a whole number of vCPUs, at least 1 (got {n})"),
                ),
                Err(_) => err(
                    vfield,
                    format!(
                        "VCPU must be a whole number of vCPUs, at least 1 (got {:?})",
                        rr.value
                    ),
                ),
            }
        }
        "MEMORY" => {
            let v = rr.value.trim();
            match v.parse::<i64>() {
                Ok(n) if (4..=i64::from(i32::MAX)).contains(&n) => {
                    Ok(Requirement::MemoryMib(n as u64))
                }
                Ok(n) => err(
                    vfield,
                    format!("MEMORY must be a whole number of MiB, at least 4 (got {n})"),
                ),
                Err(_) => err(
                    vfield,
                    format!(
                        "MEMORY must be a whole number of MiB, at least 4 (got {:?})",
                        rr.value
                    ),
                ),
            }
        }
        "GPU" => err(
            join(field, "type"),
            "GPU resources are not supported by Shoal; remove this resource requirement",
        ),
        other => err(
            join(field, "type"),
            format!("{other:?} is not one of \"VCPU\", \"MEMORY\", \"GPU\""),
        ),
    }
}

/// Validate a `resourceRequirements` list plus the legacy `vcpus`/`memory`
/// fields of the same object (prefix is the object's path).
pub(crate) fn check_resources(
    prefix: &str,
    reqs: &[ResourceRequirement],
    vcpus: Option<i32>,
    memory: Option<i32>,
) -> Result<(), ClientError> {
    let mut seen_vcpu = false;
    let mut seen_mem = false;
    for (i, rr) in reqs.iter().enumerate() {
        let f = join(prefix, &format!("resourceRequirements[{i}]"));
        match parse_requirement(&f, rr)? {
            Requirement::Vcpu(_) => {
                if seen_vcpu {
                    return err(f, "VCPU given more than once");
                }
                seen_vcpu = true;
                if vcpus.is_some() {
                    return err(
                        f,
                        "VCPU given both here and in the deprecated `vcpus` field; remove `vcpus`",
                    );
                }
            }
            Requirement::MemoryMib(_) => {
                if seen_mem {
                    return err(f, "MEMORY given more than once");
                }
                seen_mem = true;
                if memory.is_some() {
                    return err(
                        f,
                        "MEMORY given both here and in the deprecated `memory` field; remove `memory`",
                    );
                }
            }
        }
    }
    if let Some(v) = vcpus {
        if v < 1 {
            return err(
                join(prefix, "vcpus"),
                format!("must be at least 1 (got {v})"),
            );
        }
    }
    if let Some(m) = memory {
        if m < 4 {
            return err(
                join(prefix, "memory"),
                format!("must be at least 4 MiB (got {m})"),
            );
        }
    }
    Ok(())
}

pub(crate) fn check_environment(prefix: &str, env: &[KeyValuePair]) -> Result<(), ClientError> {
    for (i, kv) in env.iter().enumerate() {
        let f = join(prefix, &format!("environment[{i}].name"));
        match kv.name.as_deref() {
            None | Some("") => return err(f, "environment variables need a name"),
            Some(n) if n.starts_with("AWS_BATCH") => {
                return err(
                    f,
                    format!("{n:?}: names starting with AWS_BATCH are reserved for variables set by the scheduler"),
                )
            }
            Some(n) if n.contains('=') || n.contains('\0') => {
                return err(f, format!("{n:?} must not contain '=' or NUL"))
            }
            _ => {}
        }
    }
    Ok(())
}

impl ContainerProperties {
    /// Validate against the rules Shoal enforces; `prefix` is this object's
    /// path (e.g. `containerProperties` or
    /// `nodeProperties.nodeRangeProperties[0].container`).
    pub fn validate_at(&self, prefix: &str) -> Result<(), ClientError> {
        if let Some(image) = &self.image {
            crate::image::ImageRef::parse(&join(prefix, "image"), image)?;
        }
        check_resources(prefix, &self.resource_requirements, self.vcpus, self.memory)?;
        check_environment(prefix, &self.environment)?;
        if let Some(lp) = &self.linux_parameters {
            lp.validate_at(&join(prefix, "linuxParameters"))?;
        }
        for (i, u) in self.ulimits.iter().enumerate() {
            let f = join(prefix, &format!("ulimits[{i}]"));
            check_not_empty(&join(&f, "name"), &u.name)?;
            if u.soft_limit > u.hard_limit {
                return err(
                    join(&f, "softLimit"),
                    format!(
                        "softLimit {} is above hardLimit {}",
                        u.soft_limit, u.hard_limit
                    ),
                );
            }
        }
        let mut names: Vec<&str> = Vec::new();
        for (i, v) in self.volumes.iter().enumerate() {
            let f = join(prefix, &format!("volumes[{i}].name"));
            if let Some(n) = v.name.as_deref() {
                check_not_empty(&f, n)?;
                if names.contains(&n) {
                    return err(f, format!("volume name {n:?} is used twice"));
                }
                names.push(n);
            }
        }
        for (i, m) in self.mount_points.iter().enumerate() {
            let f = join(prefix, &format!("mountPoints[{i}]"));
            match m.source_volume.as_deref() {
                None => {
                    return err(
                        join(&f, "sourceVolume"),
                        "required: the name of one of the volumes",
                    )
                }
                Some(s) if !names.contains(&s) => {
                    return err(
                        join(&f, "sourceVolume"),
                        format!("{s:?} does not name any of this container's volumes"),
                    )
                }
                _ => {}
            }
            match m.container_path.as_deref() {
                None | Some("") => return err(join(&f, "containerPath"), "required"),
                _ => {}
            }
        }
        Ok(())
    }
}

impl LinuxParameters {
    pub fn validate_at(&self, prefix: &str) -> Result<(), ClientError> {
        if let Some(s) = self.shared_memory_size {
            if s <= 0 {
                return err(
                    join(prefix, "sharedMemorySize"),
                    format!(
                        "must be a positive number of MiB (got {s}); leave it out for Docker's default of 64 MiB"
                    ),
                );
            }
        }
        if let Some(s) = self.max_swap {
            if s < 0 {
                return err(
                    join(prefix, "maxSwap"),
                    format!("must be 0 (no swap) or a positive number of MiB (got {s})"),
                );
            }
        }
        if let Some(s) = self.swappiness {
            check_range(&join(prefix, "swappiness"), s.into(), 0, 100)?;
        }
        for (i, t) in self.tmpfs.iter().enumerate() {
            let f = join(prefix, &format!("tmpfs[{i}]"));
            check_not_empty(&join(&f, "containerPath"), &t.container_path)?;
            if t.size <= 0 {
                return err(
                    join(&f, "size"),
                    format!("must be a positive number of MiB (got {})", t.size),
                );
            }
        }
        for (i, d) in self.devices.iter().enumerate() {
            let f = join(prefix, &format!("devices[{i}]"));
            check_not_empty(&join(&f, "hostPath"), &d.host_path)?;
            for (j, p) in d.permissions.iter().enumerate() {
                check_one_of(
                    &join(&f, &format!("permissions[{j}]")),
                    p,
                    &["READ", "WRITE", "MKNOD"],
                )?;
            }
        }
        Ok(())
    }
}
