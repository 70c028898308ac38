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
            && self.jobs.is_empty()
            && self.meta.is_empty()
            && self.nodes.is_empty()
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
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS job_definitions (
    name TEXT NOT NULL, revision INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (name, revision));
CREATE TABLE IF NOT EXISTS compute_environments (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS job_queues (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
";

impl Store {
    /// Open (creating if needed) `DIR/shoal.db`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("shoal.db");
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
        let conn = open(&path).map_err(|source| StoreError::Open { path, source })?;
        Ok(Store { conn })
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
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(l.meta.is_empty());
    }
}
