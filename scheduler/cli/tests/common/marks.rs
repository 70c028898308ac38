//! Jobs that leave a trail: every attempt of every node appends a
//! timestamped line to a file of its own every 50 ms until it is told to
//! finish, so that overlapping attempts show, and what each attempt did
//! (finished, was terminated, or was cut short) can be read back.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The directory the jobs write to (any uid may: each attempt runs as a
/// transient uid of its own).
pub struct Marks(pub PathBuf);

/// What one attempt of one node left.
#[derive(Debug, Clone)]
pub struct Trail {
    /// 1-based attempt.
    pub attempt: u32,
    /// The node's address.
    pub node: String,
    /// The node's name (`SHOAL_NODE`).
    pub name: String,
    /// First and last timestamps, ns since the epoch.
    pub first: u128,
    pub last: u128,
    /// It finished (wrote `done`).
    pub done: bool,
    /// Its TERM handler ran.
    pub termed: bool,
}

impl Marks {
    /// A marks directory in `dir` (made reachable for other uids).
    pub fn new(dir: &Path) -> Marks {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let m = dir.join("marks");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o1777)).unwrap();
        Marks(m)
    }

    /// The definition of the marking job: `NAME` (from the submission's
    /// environment) finishes once the file `stop-NAME` exists.
    pub fn definition(&self, def: &str, attempts: u32) -> Value {
        json!({ "jobDefinitionName": def, "type": "container",
            "retryStrategy": { "attempts": attempts },
            "containerProperties": self.container(0) })
    }

    /// The marking job's container; its TERM handler takes `term_s`
    /// seconds (writing all along) before it exits.
    pub fn container(&self, term_s: u32) -> Value {
        let script = format!(
            r#"i=${{AWS_BATCH_JOB_NODE_INDEX:-0}}
f="$MARKS/$NAME.$AWS_BATCH_JOB_ATTEMPT.$i"
echo "at $(echo "$SHOAL_NODE_ADDRS" | cut -d, -f$((i + 1))) $SHOAL_NODE" >> "$f"
trap 'echo "term $(date +%s%N)" >> "$f"; n=0; while [ $n -lt {ticks} ]; do date +%s%N >> "$f"; sleep 0.05; n=$((n + 1)); done; exit 143' TERM
while [ ! -e "$MARKS/stop-$NAME" ]; do date +%s%N >> "$f"; sleep 0.05; done
echo "done $(date +%s%N)" >> "$f""#,
            ticks = term_s * 20
        );
        json!({ "command": ["sh", "-c", script],
              "environment": [{ "name": "MARKS", "value": self.0.to_string_lossy() }],
              "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"128"}] })
    }

    /// A submission of the marking job as `name`.
    pub fn submission(&self, name: &str, def: &str) -> Value {
        json!({ "jobName": name, "jobQueue": "default", "jobDefinition": def,
                "containerOverrides": { "environment": [{ "name": "NAME", "value": name }] } })
    }

    /// A submission of a multinode marking job as `name`.
    pub fn gang_submission(&self, name: &str, def: &str) -> Value {
        json!({ "jobName": name, "jobQueue": "default", "jobDefinition": def,
                "nodeOverrides": { "nodePropertyOverrides": [{ "targetNodes": "0:",
                  "containerOverrides": { "environment": [{ "name": "NAME", "value": name }] } }] } })
    }

    /// Tell job `name` to finish.
    pub fn release(&self, name: &str) {
        std::fs::write(self.0.join(format!("stop-{name}")), b"").unwrap();
    }

    /// The trails of job `name`, by attempt then node.
    pub fn trails(&self, name: &str) -> Vec<Trail> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.0).unwrap().flatten() {
            let file = e.file_name().to_string_lossy().to_string();
            let Some(rest) = file.strip_prefix(&format!("{name}.")) else {
                continue;
            };
            let Some((attempt, _index)) = rest.split_once('.') else {
                continue;
            };
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let at = text
                .lines()
                .find_map(|l| l.strip_prefix("at "))
                .unwrap_or_default();
            let mut at = at.split_whitespace();
            let node = at.next().unwrap_or_default().to_string();
            let name = at.next().unwrap_or_default().to_string();
            let stamps: Vec<u128> = text
                .lines()
                .filter(|l| !l.starts_with("at "))
                .filter_map(|l| l.split_whitespace().last()?.parse().ok())
                .collect();
            let (Some(&first), Some(&last)) = (stamps.first(), stamps.last()) else {
                continue;
            };
            out.push(Trail {
                attempt: attempt.parse().unwrap_or(0),
                node,
                name,
                first,
                last,
                done: text.lines().any(|l| l.starts_with("done")),
                termed: text.lines().any(|l| l.starts_with("term")),
            });
        }
        out.sort_by_key(|t| (t.attempt, t.node.clone()));
        out
    }

    /// Where job `name`'s attempt `attempt` runs (or ran), once it wrote.
    pub fn node_of(&self, name: &str, attempt: u32) -> Option<String> {
        self.trails(name)
            .into_iter()
            .find(|t| t.attempt == attempt)
            .map(|t| t.node)
    }
}

/// Milliseconds during which two different attempts of one job ran at once.
pub fn overlap_ms(trails: &[Trail]) -> u128 {
    let mut by_attempt: BTreeMap<u32, (u128, u128)> = BTreeMap::new();
    for t in trails {
        let e = by_attempt.entry(t.attempt).or_insert((t.first, t.last));
        e.0 = e.0.min(t.first);
        e.1 = e.1.max(t.last);
    }
    let spans: Vec<(u128, u128)> = by_attempt.into_values().collect();
    let mut ns = 0;
    for i in 0..spans.len() {
        for j in i + 1..spans.len() {
            let (a, b) = (spans[i], spans[j]);
            ns += b.1.min(a.1).saturating_sub(b.0.max(a.0));
        }
    }
    ns / 1_000_000
}

/// The status a job must end in given what its processes did: SUCCEEDED
/// when every node of its last attempt finished, else FAILED.
pub fn status_from(trails: &[Trail]) -> &'static str {
    let last = trails.iter().map(|t| t.attempt).max().unwrap_or(0);
    let nodes: Vec<&Trail> = trails.iter().filter(|t| t.attempt == last).collect();
    if !nodes.is_empty() && nodes.iter().all(|t| t.done) {
        "SUCCEEDED"
    } else {
        "FAILED"
    }
}
