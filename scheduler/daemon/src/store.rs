//! Durable state: an embedded SQLite database (WAL) in the state directory.
//!
//! The store knows rows, not semantics: each object is kept as its JSON body.
//! Every batch of mutations is written in one transaction, and the daemon
//! replies to the clients of a batch only after that transaction commits
//! (group commit).

use rusqlite::{params, Connection, OpenFlags};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A storage failure. Surfaces to clients as `ServerException`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or created.
    #[error("cannot open the state database {path}")]
    Open {
        /// Database file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The state directory could not be created.
    #[error("cannot create the state directory {path}")]
    Dir {
        /// Directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A query or commit failed (disk full, I/O error, ...).
    #[error("state database error")]
    Sql(#[from] rusqlite::Error),
    /// The state directory's database does not hold what it acknowledged
    /// (missing, empty, another state's, or short of commits): the
    /// scheduler does not start, and says what to do.
    #[error("{0}")]
    Refused(String),
    /// A stored body could not be decoded.
    #[error("corrupt {table} row {key}: {message}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// Row key.
        key: String,
        /// What was wrong.
        message: String,
    },
}

/// Everything the store holds, as loaded at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Job definitions: (name, revision) → body.
    pub definitions: Vec<(String, i64, String)>,
    /// Compute environments: name → body.
    pub compute_environments: Vec<(String, String)>,
    /// Job queues: name → body.
    pub job_queues: Vec<(String, String)>,
    /// Scheduling policies: name → body.
    pub scheduling_policies: Vec<(String, String)>,
    /// Jobs in submission order: (seq, id, body).
    pub jobs: Vec<(u64, String, String)>,
    /// Key/value metadata.
    pub meta: BTreeMap<String, String>,
    /// Worker nodes: name → body.
    pub nodes: Vec<(String, String)>,
}

/// A batch of writes, applied in one transaction. Later writes to the same
/// row replace earlier ones.
#[derive(Debug, Default)]
pub struct Batch {
    definitions: BTreeMap<(String, i64), String>,
    compute_environments: BTreeMap<String, Option<String>>,
    job_queues: BTreeMap<String, Option<String>>,
    scheduling_policies: BTreeMap<String, Option<String>>,
    jobs: BTreeMap<u64, (String, String)>,
    meta: BTreeMap<String, String>,
    nodes: BTreeMap<String, Option<String>>,
}

impl Batch {
    /// Nothing to write?
    pub fn is_empty(&self) -> bool {
        self.definitions.is_empty()
            && self.compute_environments.is_empty()
            && self.job_queues.is_empty()
            && self.scheduling_policies.is_empty()
            && self.jobs.is_empty()
            && self.meta.is_empty()
            && self.nodes.is_empty()
    }
    /// Rows it writes or deletes.
    pub fn len(&self) -> usize {
        self.definitions.len()
            + self.compute_environments.len()
            + self.job_queues.len()
            + self.scheduling_policies.len()
            + self.jobs.len()
            + self.meta.len()
            + self.nodes.len()
    }

    /// Insert or replace a worker node.
    pub fn put_node(&mut self, name: &str, body: String) {
        self.nodes.insert(name.to_string(), Some(body));
    }
    /// Delete a worker node.
    pub fn delete_node(&mut self, name: &str) {
        self.nodes.insert(name.to_string(), None);
    }
    /// Insert or replace a job definition revision.
    pub fn put_definition(&mut self, name: &str, revision: i64, body: String) {
        self.definitions.insert((name.to_string(), revision), body);
    }
    /// Insert or replace a compute environment.
    pub fn put_compute_environment(&mut self, name: &str, body: String) {
        self.compute_environments
            .insert(name.to_string(), Some(body));
    }
    /// Delete a compute environment.
    pub fn delete_compute_environment(&mut self, name: &str) {
        self.compute_environments.insert(name.to_string(), None);
    }
    /// Insert or replace a job queue.
    pub fn put_job_queue(&mut self, name: &str, body: String) {
        self.job_queues.insert(name.to_string(), Some(body));
    }
    /// Delete a job queue.
    pub fn delete_job_queue(&mut self, name: &str) {
        self.job_queues.insert(name.to_string(), None);
    }
    /// Insert or replace a scheduling policy.
    pub fn put_scheduling_policy(&mut self, name: &str, body: String) {
        self.scheduling_policies
            .insert(name.to_string(), Some(body));
    }
    /// Delete a scheduling policy.
    pub fn delete_scheduling_policy(&mut self, name: &str) {
        self.scheduling_policies.insert(name.to_string(), None);
    }
    /// Insert or replace a job.
    pub fn put_job(&mut self, seq: u64, id: &str, body: String) {
        self.jobs.insert(seq, (id.to_string(), body));
    }
    /// Set a metadata value.
    pub fn put_meta(&mut self, key: &str, value: String) {
        self.meta.insert(key.to_string(), value);
    }
}

/// The SQLite store.
pub struct Store {
    conn: Connection,
    /// Commits so far (meta `commit_seq`), also written to `DIR/commits`
    /// after each, so that a start finds out when the database is short
    /// of commits it acknowledged (its WAL lost).
    seq: u64,
    commits: PathBuf,
    /// `DIR/commits`, open: rewritten in place after each commit. (A
    /// file truncated and written again is flushed to disk when it is
    /// closed, by ext4's `auto_da_alloc`: a disk write per commit, 11 %
    /// of the scheduler's CPU under load.)
    commits_file: Option<std::fs::File>,
}

/// The file naming a state directory (written at its first start).
pub const IDENTITY_FILE: &str = "identity";
/// The file holding the number of the last commit.
pub const COMMITS_FILE: &str = "commits";
/// The database file.
pub const DB_FILE: &str = "shoal.db";

/// A state directory's identity, as `DIR/identity` holds it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// Random, drawn at the first start.
    pub id: String,
    /// When (epoch ms).
    pub created_at: u64,
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn io_err(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Dir {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Write `bytes` to `path` durably (temporary file, fsync, rename).
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let tmp = path.with_extension("partial");
    let mut f = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

impl Store {
    /// Write the commit count over `DIR/commits` in place: always 21
    /// bytes (zero-padded, the longest u64 and a newline), so nothing of
    /// an earlier count is left after it and the file is never truncated.
    fn write_commits(&mut self) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let f = match &mut self.commits_file {
            Some(f) => f,
            slot => slot.insert(
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&self.commits)?,
            ),
        };
        f.write_all_at(format!("{:020}\n", self.seq).as_bytes(), 0)
    }
}

fn read_commits(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS job_definitions (
    name TEXT NOT NULL, revision INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (name, revision));
CREATE TABLE IF NOT EXISTS compute_environments (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS job_queues (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scheduling_policies (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
";

impl Store {
    /// Open (creating if needed) `DIR/shoal.db`: a new state directory
    /// gets its identity; a known one must still hold its database.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, false)
    }

    /// As [`Store::open`]; `fresh`: start a new state even where a state
    /// directory's database is gone (what remains of it is moved aside).
    pub fn open_with(dir: &Path, fresh: bool) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let identity_path = dir.join(IDENTITY_FILE);
        let commits = dir.join(COMMITS_FILE);
        let identity: Option<Identity> = match std::fs::read(&identity_path) {
            Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| {
                StoreError::Refused(format!(
                    "{} is not a state identity ({e}); restore it from a backup, or remove it if {} is this directory's database",
                    identity_path.display(),
                    path.display()
                ))
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&identity_path, e)),
        };
        if fresh {
            // Keep what was there, out of the way.
            let stamp = epoch_ms();
            for f in [
                DB_FILE,
                "shoal.db-wal",
                "shoal.db-shm",
                IDENTITY_FILE,
                COMMITS_FILE,
            ] {
                let p = dir.join(f);
                if p.exists() {
                    let to = dir.join(format!("{f}.before-fresh-{stamp}"));
                    std::fs::rename(&p, &to).map_err(|e| io_err(&p, e))?;
                }
            }
            return Store::open_with(dir, false);
        }
        let db_there = std::fs::metadata(&path)
            .map(|m| m.len() > 0)
            .unwrap_or(false);
        let refuse = |what: String| {
            let id = identity.as_ref().map(|i| i.id.clone()).unwrap_or_default();
            StoreError::Refused(format!(
                "the state directory {} (identity {id}) {what}: starting would forget every job it acknowledged and kill what the workers run. \
                 Restore {} (with shoal.db-wal, if it was kept) from a backup and start again; or, to begin with no jobs at all, start with --fresh-state (the remains are kept beside it)",
                dir.display(),
                path.display()
            ))
        };
        if identity.is_some() && !db_there {
            let what = if path.exists() {
                "has an empty shoal.db"
            } else {
                "has lost its shoal.db"
            };
            return Err(refuse(what.into()));
        }
        let open = |path: &Path| -> Result<Connection, rusqlite::Error> {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            )?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            // A commit is in the WAL (and so survives a crash of the process)
            // before the reply goes out. FULL also survives power loss.
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            conn.execute_batch(SCHEMA)?;
            Ok(conn)
        };
        let conn = open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        let meta = |key: &str| -> Result<Option<String>, rusqlite::Error> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })
        };
        let stored_id = meta("state_id")?;
        let seq: u64 = match meta("commit_seq")? {
            Some(v) => v.parse().map_err(|_| StoreError::Corrupt {
                table: "meta",
                key: "commit_seq".into(),
                message: format!("{v:?} is not a number"),
            })?,
            None => 0,
        };
        let mut store = Store {
            conn,
            seq,
            commits,
            commits_file: None,
        };
        match (&identity, stored_id) {
            (Some(i), Some(id)) if i.id != id => {
                return Err(refuse(format!(
                    "holds a shoal.db of another state (identity {id})"
                )))
            }
            (Some(_), Some(_)) => {
                let acked = read_commits(&store.commits).unwrap_or(0);
                if store.seq < acked {
                    return Err(refuse(format!(
                        "has a shoal.db short of commits: it holds {} of the {acked} it acknowledged (its write-ahead log shoal.db-wal is missing or cut short)",
                        store.seq
                    )));
                }
            }
            (Some(_), None) => return Err(refuse("has a shoal.db with no state in it".into())),
            (None, Some(id)) => {
                // The identity file went (the database is the state): write it again.
                tracing::warn!(
                    "{} was missing; written again from the database",
                    identity_path.display()
                );
                let i = Identity {
                    id,
                    created_at: epoch_ms(),
                };
                write_durably(&identity_path, &serde_json::to_vec(&i).unwrap_or_default())?;
            }
            (None, None) => {
                // A new state directory (or one from before identities).
                let i = Identity {
                    id: hex::encode(shoal_pki::random_bytes(16).map_err(|e| {
                        StoreError::Refused(format!("cannot draw a state identity: {e}"))
                    })?),
                    created_at: epoch_ms(),
                };
                let mut b = Batch::default();
                b.put_meta("state_id", i.id.clone());
                store.commit(&b)?;
                write_durably(&identity_path, &serde_json::to_vec(&i).unwrap_or_default())?;
            }
        }
        Ok(store)
    }

    /// One metadata value.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        match self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        {
            Ok(v) => Ok(Some(v)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Read everything.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let mut loaded = Loaded::default();
        let mut stmt = self
            .conn
            .prepare("SELECT name, revision, body FROM job_definitions ORDER BY name, revision")?;
        loaded.definitions = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (table, out) in [
            ("compute_environments", &mut loaded.compute_environments),
            ("job_queues", &mut loaded.job_queues),
            ("scheduling_policies", &mut loaded.scheduling_policies),
            ("nodes", &mut loaded.nodes),
        ] {
            let mut stmt = self
                .conn
                .prepare(&format!("SELECT name, body FROM {table} ORDER BY name"))?;
            *out = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
        }
        let mut stmt = self
            .conn
            .prepare("SELECT seq, id, body FROM jobs ORDER BY seq")?;
        loaded.jobs = stmt
            .query_map([], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut stmt = self.conn.prepare("SELECT key, value FROM meta")?;
        loaded.meta = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(loaded)
    }

    /// Write a batch in one transaction. On error nothing of it is stored.
    pub fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        {
            let mut put_def = tx.prepare_cached(
                "INSERT OR REPLACE INTO job_definitions (name, revision, body) VALUES (?1, ?2, ?3)",
            )?;
            for ((name, rev), body) in &batch.definitions {
                put_def.execute(params![name, rev, body])?;
            }
            for (table, rows) in [
                ("compute_environments", &batch.compute_environments),
                ("job_queues", &batch.job_queues),
                ("scheduling_policies", &batch.scheduling_policies),
                ("nodes", &batch.nodes),
            ] {
                for (name, body) in rows {
                    match body {
                        Some(body) => tx.execute(
                            &format!("INSERT OR REPLACE INTO {table} (name, body) VALUES (?1, ?2)"),
                            params![name, body],
                        )?,
                        None => {
                            tx.execute(&format!("DELETE FROM {table} WHERE name = ?1"), [name])?
                        }
                    };
                }
            }
            let mut put_job = tx.prepare_cached(
                "INSERT INTO jobs (seq, id, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT(seq) DO UPDATE SET body = excluded.body",
            )?;
            for (seq, (id, body)) in &batch.jobs {
                put_job.execute(params![*seq as i64, id, body])?;
            }
            let mut put_meta =
                tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?;
            for (k, v) in &batch.meta {
                put_meta.execute(params![k, v])?;
            }
            put_meta.execute(params!["commit_seq", (self.seq + 1).to_string()])?;
        }
        tx.commit()?;
        self.seq += 1;
        // After the commit: the file never claims a commit the database
        // lacks (it may lag, e.g. on a full disk, which only weakens the
        // check).
        if let Err(e) = self.write_commits() {
            self.commits_file = None;
            tracing::warn!("cannot write {}: {e}", self.commits.display());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_count_is_rewritten_in_place_never_truncated() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(COMMITS_FILE);
        let mut store = Store::open(dir.path()).unwrap();
        let mut b = Batch::default();
        b.put_meta("k", "v".into());
        store.commit(&b).unwrap();
        let first = std::fs::metadata(&path).unwrap();
        let before = read_commits(&path).unwrap();
        for _ in 0..12 {
            store.commit(&b).unwrap();
        }
        let after = std::fs::metadata(&path).unwrap();
        assert_eq!(first.ino(), after.ino(), "the same file, written over");
        assert_eq!(
            after.len(),
            21,
            "a fixed width: nothing of a longer count left"
        );
        assert_eq!(read_commits(&path), Some(before + 12));
        drop(store);
        // A count written by an earlier version (no padding) still reads.
        std::fs::write(&path, (before + 12).to_string()).unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.commit(&b).unwrap();
        assert_eq!(read_commits(&path), Some(before + 13));
    }

    #[test]
    fn batch_round_trips_through_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = Store::open(dir.path()).unwrap();
            let mut b = Batch::default();
            b.put_definition("d", 1, "{\"a\":1}".into());
            b.put_compute_environment("ce", "{}".into());
            b.put_job_queue("q", "{}".into());
            b.put_job(1, "j1", "{\"v\":1}".into());
            b.put_job(1, "j1", "{\"v\":2}".into());
            b.put_meta("next_seq", "2".into());
            store.commit(&b).unwrap();
            let mut b = Batch::default();
            b.delete_job_queue("q");
            b.put_job(2, "j2", "{}".into());
            store.commit(&b).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let l = store.load().unwrap();
        assert_eq!(l.definitions, vec![("d".into(), 1, "{\"a\":1}".into())]);
        assert_eq!(l.compute_environments.len(), 1);
        assert!(l.job_queues.is_empty());
        assert_eq!(l.jobs[0], (1, "j1".into(), "{\"v\":2}".into()));
        assert_eq!(l.jobs[1].1, "j2");
        assert_eq!(l.meta["next_seq"], "2");
    }

    #[test]
    fn a_failed_batch_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut b = Batch::default();
        b.put_job(1, "same", "{}".into());
        b.put_job(2, "same", "{}".into()); // violates UNIQUE(id)
        b.put_meta("k", "v".into());
        assert!(store.commit(&b).is_err());
        let l = store.load().unwrap();
        assert!(l.jobs.is_empty());
        assert!(!l.meta.contains_key("k"));
    }

    #[test]
    fn a_state_directory_short_of_its_database_is_refused_until_fresh_state() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        {
            let mut store = Store::open(d).unwrap();
            let mut b = Batch::default();
            b.put_job(1, "j1", "{}".into());
            store.commit(&b).unwrap();
        }
        let refused = |why: &str| match Store::open(d) {
            Err(StoreError::Refused(m)) => {
                assert!(m.contains(why), "{m}");
                assert!(m.contains("--fresh-state") && m.contains("backup"), "{m}");
            }
            Err(e) => panic!("{why}: another error: {e}"),
            Ok(_) => panic!("{why}: opened"),
        };
        let db = d.join(DB_FILE);
        let kept = d.join("kept.db");
        std::fs::rename(&db, &kept).unwrap();
        refused("lost its shoal.db");
        std::fs::write(&db, b"").unwrap();
        refused("empty shoal.db");
        std::fs::rename(&kept, &db).unwrap();
        assert_eq!(Store::open(d).unwrap().load().unwrap().jobs.len(), 1);
        // Commits acknowledged that the database lacks (its WAL lost).
        let n = read_commits(&d.join(COMMITS_FILE)).unwrap();
        std::fs::write(d.join(COMMITS_FILE), (n + 3).to_string()).unwrap();
        refused("short of commits");
        // Another state's database.
        std::fs::write(d.join(COMMITS_FILE), n.to_string()).unwrap();
        let other = tempfile::tempdir().unwrap();
        drop(Store::open(other.path()).unwrap());
        std::fs::copy(other.path().join(DB_FILE), &db).unwrap();
        refused("of another state");
        // A fresh state on request, the remains kept beside it.
        let store = Store::open_with(d, true).unwrap();
        assert!(store.load().unwrap().jobs.is_empty());
        let kept: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.contains(".before-fresh-"))
            .collect();
        assert!(kept.iter().any(|n| n.starts_with("shoal.db.")), "{kept:?}");
        drop(store);
        Store::open(d).unwrap();
    }
}
