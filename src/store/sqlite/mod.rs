//! The embedded store: one SQLite file in WAL mode.
//!
//! Several `pitr` processes (the daemon, an operator's CLI) may share the file,
//! so every write runs in a `BEGIN IMMEDIATE` transaction: the write lock is
//! taken up front, which makes the read-check-write sequences atomic across
//! processes (the rules in [`super::rules`] decide inside them), and lets the
//! busy timeout wait for another writer instead of failing on a lock upgrade.
//!
//! rusqlite is synchronous: every call runs on Tokio's blocking pool, never
//! on a worker thread, so a write waiting for another process's lock does not
//! stall the runtime (lease heartbeats, polls of other jobs).
mod copy;
mod in_play;
mod outbox;
mod queries;
mod rows;
mod schema;
mod sql;
mod web;

pub use super::migrations::SCHEMA_VERSION;

use super::{Result, StoreError};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: String,
    conn: Mutex<Connection>,
}

impl Inner {
    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held cannot leave a half-done write: an
        // open transaction is rolled back when it is dropped during unwinding.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SqliteStore {
    /// Opens the store file at `path` and migrates it to [`SCHEMA_VERSION`].
    /// With `create`, a missing file is created (a store made on purpose);
    /// without it, a missing or empty file is refused: a mistyped path must
    /// not silently become a new, empty store. A file from a newer pitr is
    /// refused untouched; a store already at this version is opened without
    /// taking the write lock (a read-only command does not wait for a writer).
    pub async fn open(path: &str, create: bool) -> Result<SqliteStore> {
        let path = path.to_string();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path, create))
            .await
            .map_err(|e| StoreError::Database(format!("opening the store: {e}")))?
    }

    fn open_blocking(path: &str, create: bool) -> Result<SqliteStore> {
        let open_err = |cause: String| StoreError::Open {
            path: path.to_string(),
            cause,
        };
        if path.is_empty() {
            return Err(open_err(
                "the path is empty; use sqlite://PATH (for example sqlite://var/pitr.db)".into(),
            ));
        }
        match std::fs::metadata(path) {
            Ok(m) if m.len() == 0 && !create => {
                return Err(StoreError::NotAStore {
                    path: path.to_string(),
                    why: "it is empty (0 bytes); if it is meant to be a new store, remove it and run `pitr store init`".into(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => {
                return Err(StoreError::NotAStore {
                    path: path.to_string(),
                    why: "it does not exist; check [store] url (or PITR_STORE_URL), or create a new store with `pitr store init`".into(),
                })
            }
            _ => {}
        }
        if let Some(dir) = Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    open_err(format!(
                        "cannot create the directory {}: {e}",
                        dir.display()
                    ))
                })?;
            }
        }
        let mut conn = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_err(format!("setting the busy timeout: {e}")))?;

        // Refuse a newer store before changing anything, even the journal mode.
        let found = schema::user_version(&conn).map_err(|e| open_err(e.to_string()))?;
        if found > SCHEMA_VERSION {
            return Err(schema::schema_too_new(path, found));
        }

        // A damaged file is told at once, not halfway through a run.
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| open_err(format!("checking the file: {e}")))?;
        if check != "ok" {
            return Err(StoreError::NotAStore {
                path: path.to_string(),
                why: format!("its integrity check failed ({check}); restore it from a backup"),
            });
        }
        // WAL lets readers proceed while a runner writes; it is persistent in
        // the file, so it is set once (setting it takes the write lock).
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .map_err(|e| open_err(format!("reading the journal mode: {e}")))?;
        let mode = if mode.eq_ignore_ascii_case("wal") {
            mode
        } else {
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                .map_err(|e| open_err(format!("enabling WAL: {e}")))?
        };
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(open_err(format!(
                "the file cannot use WAL journaling (journal mode stays '{mode}'); \
                 put the store on a local file system"
            )));
        }
        // FULL: a committed checkpoint survives power loss, not only a crash.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| open_err(format!("setting synchronous=FULL: {e}")))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(|e| open_err(format!("enabling foreign keys: {e}")))?;

        if found < SCHEMA_VERSION {
            schema::migrate(&mut conn, path)?;
        }
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_string(),
                conn: Mutex::new(conn),
            }),
        })
    }

    /// Opens an existing store file without changing it (the source of a
    /// copy): nothing is created, no migration runs, and the connection is
    /// read-only. Its schema must be exactly this binary's.
    pub async fn open_read_only(path: &str) -> Result<SqliteStore> {
        let path = path.to_string();
        tokio::task::spawn_blocking(move || Self::open_read_only_blocking(&path))
            .await
            .map_err(|e| StoreError::Database(format!("opening the store: {e}")))?
    }

    fn open_read_only_blocking(path: &str) -> Result<SqliteStore> {
        let open_err = |cause: String| StoreError::Open {
            path: path.to_string(),
            cause,
        };
        if !Path::new(path).is_file() {
            return Err(open_err(
                "there is no store file there; check the path (sqlite://PATH)".into(),
            ));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_err(format!("setting the busy timeout: {e}")))?;
        let found = schema::user_version(&conn).map_err(|e| open_err(e.to_string()))?;
        if found > SCHEMA_VERSION {
            return Err(schema::schema_too_new(path, found));
        }
        if found < SCHEMA_VERSION {
            return Err(StoreError::SchemaTooOld {
                path: path.to_string(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_string(),
                conn: Mutex::new(conn),
            }),
        })
    }

    /// The path of the store file.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// Runs `f` on the connection, on the blocking pool.
    pub(super) async fn read<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner.conn()))
            .await
            .map_err(|e| StoreError::Database(format!("{op}: {e}")))?
    }

    /// Runs `f` in one IMMEDIATE transaction, committed only if `f`
    /// succeeds, on the blocking pool.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db(op))?;
            let out = f(&tx)?;
            tx.commit().map_err(db(op))?;
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Database(format!("{op}: {e}")))?
    }
}

/// Maps a SQLite error to `StoreError::Database`, naming the operation.
fn db(op: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Database(format!("{op}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::rows::{ts, REQUEST_COLUMNS};
    use super::*;
    use crate::domain::RequestStatus;
    use chrono::{DateTime, TimeZone, Utc};
    use rusqlite::params;

    fn temp_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pitr.db");
        let store = SqliteStore::open_blocking(path.to_str().unwrap(), true).unwrap();
        (dir, store)
    }

    #[test]
    fn connection_settings() {
        let (_dir, store) = temp_store();
        let conn = store.inner.conn();
        let q = |p: &str| -> String {
            conn.query_row(&format!("PRAGMA {p}"), [], |r| {
                r.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| format!("{v:?}"))
            .unwrap()
        };
        assert_eq!(q("journal_mode"), r#"Text("wal")"#);
        assert_eq!(q("synchronous"), "Integer(2)"); // FULL
        assert_eq!(q("foreign_keys"), "Integer(1)");
        assert_eq!(q("busy_timeout"), "Integer(5000)");
        assert_eq!(schema::user_version(&conn).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn instants_keep_nanoseconds_and_sort_as_text() {
        let a = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
        let b = Utc.timestamp_opt(1_700_000_000, 900_000_000).unwrap();
        let c = Utc.timestamp_opt(1_700_000_001, 0).unwrap();
        assert_eq!(ts(&a), "2023-11-14T22:13:20.123456789Z");
        assert!(ts(&a) < ts(&b) && ts(&b) < ts(&c));
        let parsed = DateTime::parse_from_rfc3339(&ts(&a)).unwrap();
        assert_eq!(parsed.with_timezone(&Utc), a);
    }

    /// The partial unique index must list exactly the active statuses.
    #[test]
    fn one_active_index_matches_the_domain() {
        let (_dir, store) = temp_store();
        let conn = store.inner.conn();
        let insert = |id: &str, status: RequestStatus| {
            let t = "2024-01-01T00:00:00.000000000Z";
            conn.execute(
                &format!(
                    "INSERT INTO requests ({REQUEST_COLUMNS}) VALUES \
                     (?1, ?2, 'db', ?3, ?3, ?3, 1, 1, 1, 'me', NULL, 0, ?4, ?3, ?3, NULL, 0, NULL)"
                ),
                params![id, format!("env-{status}"), t, status.as_str()],
            )
        };
        for status in RequestStatus::ALL {
            insert(&format!("{status}-1"), status).unwrap();
            let second = insert(&format!("{status}-2"), status);
            assert_eq!(second.is_err(), status.is_active(), "{status}");
        }
    }
}
