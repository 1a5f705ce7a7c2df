//! The SQLite side of the versioned schema in [`crate::store::migrations`]:
//! the version is kept in `PRAGMA user_version`, and each missing script
//! runs in its own IMMEDIATE transaction with its version bump.
use super::super::migrations::{self, SCHEMA_VERSION};
use super::super::{Result, StoreError};
use rusqlite::{Connection, TransactionBehavior};

pub(super) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

pub(super) fn schema_too_new(path: &str, found: i64) -> StoreError {
    StoreError::SchemaTooNew {
        path: path.to_string(),
        found,
        supported: SCHEMA_VERSION,
    }
}

/// Applies the missing migrations, each in its own transaction with its
/// version bump. The version is re-read under the write lock, so two processes
/// opening an old store at once apply each script once.
pub(super) fn migrate(conn: &mut Connection, path: &str) -> Result<()> {
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::Open {
                path: path.to_string(),
                cause: format!("starting a migration: {e}"),
            })?;
        let version = user_version(&tx).map_err(|e| StoreError::Open {
            path: path.to_string(),
            cause: format!("reading the schema version: {e}"),
        })?;
        if version > SCHEMA_VERSION {
            return Err(schema_too_new(path, version));
        }
        let Some(migration) = migrations::next_after(version) else {
            // Up to date (or a negative version, which no pitr writes).
            if version < 0 {
                return Err(StoreError::Corrupt(format!(
                    "the schema version of {path} ({version})"
                )));
            }
            return Ok(());
        };
        let next = version + 1;
        tx.execute_batch(migration.sqlite)
            .and_then(|()| tx.pragma_update(None, "user_version", next))
            .and_then(|()| tx.commit())
            .map_err(|e| StoreError::Open {
                path: path.to_string(),
                cause: format!("migrating to schema version {next}: {e}"),
            })?;
    }
}
