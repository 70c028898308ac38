//! Shared validation helpers and serde helpers.

use crate::error::{err, ClientError};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// Deserialize `null` as the type's default (for collections that default
/// to empty when absent).
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `prefix.name`, or `name` when the prefix is empty.
pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// AWS resource-name rule shared by job names, job definition names,
/// queue names and compute environment names: 1–128 characters of
/// `[A-Za-z0-9_-]`, starting with a letter or digit.
pub(crate) fn check_name(field: &str, what: &str, value: &str) -> Result<(), ClientError> {
    if value.is_empty() {
        return err(field, format!("{what} must not be empty"));
    }
    let n = value.chars().count();
    if n > 128 {
        return err(
            field,
            format!("{what} is {n} characters long; the limit is 128"),
        );
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return err(
            field,
            format!(
                "{what} {value:?} contains {c:?}; only letters, digits, hyphens (-) and underscores (_) are allowed"
            ),
        );
    }
    if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return err(
            field,
            format!("{what} {value:?} must start with a letter or a digit"),
        );
    }
    Ok(())
}

pub(crate) fn check_not_empty(field: &str, value: &str) -> Result<(), ClientError> {
    if value.trim().is_empty() {
        return err(field, "must not be empty");
    }
    Ok(())
}

/// A command a job can run: a program (not blank) and its arguments.
pub(crate) fn check_command(field: &str, command: &[String]) -> Result<(), ClientError> {
    match command.first() {
        Some(program) if !program.trim().is_empty() => Ok(()),
        Some(_) => err(
            format!("{field}[0]"),
            "the program to run is blank; give its name or path, e.g. \"sh\"",
        ),
        None => err(
            field,
            "is empty; give the program to run and its arguments, e.g. [\"sh\", \"-c\", \"echo hello\"] (a job runs its command as a host process: without one it can never run)",
        ),
    }
}

pub(crate) fn check_range(field: &str, value: i64, min: i64, max: i64) -> Result<(), ClientError> {
    if value < min || value > max {
        return err(
            field,
            format!("must be between {min} and {max} (got {value})"),
        );
    }
    Ok(())
}

pub(crate) fn check_one_of(field: &str, value: &str, allowed: &[&str]) -> Result<(), ClientError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    let list = allowed
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    err(field, format!("{value:?} is not one of {list}"))
}

pub(crate) fn check_max_results(field: &str, v: Option<i32>, max: i64) -> Result<(), ClientError> {
    if let Some(v) = v {
        check_range(field, v.into(), 1, max)?;
    }
    Ok(())
}

/// AWS tag rules: at most 50 tags, keys 1–128 characters not starting with
/// `aws:`, values at most 256 characters.
pub(crate) fn check_tags(field: &str, tags: &BTreeMap<String, String>) -> Result<(), ClientError> {
    if tags.len() > 50 {
        return err(field, format!("{} tags given; the limit is 50", tags.len()));
    }
    for (k, v) in tags {
        let f = join(field, k);
        if k.is_empty() || k.chars().count() > 128 {
            return err(f, "tag keys must be 1 to 128 characters long");
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return err(f, "tag keys starting with \"aws:\" are reserved");
        }
        if v.chars().count() > 256 {
            return err(f, "tag values must be at most 256 characters long");
        }
    }
    Ok(())
}

/// Parameter map keys must be non-empty.
pub(crate) fn check_parameters(
    field: &str,
    params: &BTreeMap<String, String>,
) -> Result<(), ClientError> {
    for k in params.keys() {
        if k.is_empty() {
            return err(field, "parameter names must not be empty");
        }
    }
    Ok(())
}
