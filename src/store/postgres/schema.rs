//! The PostgreSQL side of the versioned schema in
//! [`crate::store::migrations`]: the version is kept in the one-row
//! `schema_version` table that the first script creates (none: version 0).
//! Each missing script runs in its own transaction with its version bump,
//! under a transaction-scoped advisory lock, so two processes opening an old
//! store at once apply each script once.
use super::{db, describe, PostgresStore};
use crate::store::migrations::{self, SCHEMA_VERSION};
use crate::store::{Result, StoreError};

/// The advisory lock of migrations (one 64-bit key: a space apart from the
/// two-key locks of environments).
const MIGRATION_LOCK: i64 = 0x7069_7472_0000_0001;

pub(super) async fn migrate(store: &PostgresStore) -> Result<()> {
    let open_err = |cause: String| StoreError::Open {
        path: store.target().to_string(),
        cause,
    };
    loop {
        let mut conn = store.conn("migrating").await?;
        let tx = conn
            .transaction()
            .await
            .map_err(|e| open_err(format!("starting a migration: {}", describe(&e))))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(|e| open_err(format!("locking the schema: {}", describe(&e))))?;
        let version = version(&tx, store.target()).await?;
        // Dropping `tx` rolls back: a newer store is left as it was.
        if version > SCHEMA_VERSION {
            return Err(schema_too_new(store, version));
        }
        let Some(migration) = migrations::next_after(version) else {
            if version < 0 {
                return Err(StoreError::Corrupt(format!(
                    "schema_version.version of {}: {version}",
                    store.target()
                )));
            }
            return Ok(());
        };
        let next = version + 1;
        let applied = async {
            tx.batch_execute(migration.postgres).await?;
            tx.execute(
                "INSERT INTO schema_version (singleton, version) VALUES (true, $1)
                 ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version",
                &[&next],
            )
            .await?;
            tx.commit().await
        };
        applied.await.map_err(|e| {
            let hint = if e.code().map(|c| c.code()) == Some("42501") {
                "; the user needs CREATE on the database's schema (or to own the database)"
            } else {
                ""
            };
            open_err(format!(
                "migrating to schema version {next}: {}{hint}",
                describe(&e)
            ))
        })?;
    }
}

/// A read-only store is never migrated: its schema must be this binary's.
pub(super) async fn check_current(store: &PostgresStore) -> Result<()> {
    let conn = store.conn("reading the schema version").await?;
    let found = version(&conn, store.target()).await?;
    if found > SCHEMA_VERSION {
        return Err(schema_too_new(store, found));
    }
    if found < SCHEMA_VERSION {
        return Err(StoreError::SchemaTooOld {
            path: store.target().to_string(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

fn schema_too_new(store: &PostgresStore, found: i64) -> StoreError {
    StoreError::SchemaTooNew {
        path: store.target().to_string(),
        found,
        supported: SCHEMA_VERSION,
    }
}

/// The schema version: 0 for a database pitr never wrote to.
async fn version(client: &impl deadpool_postgres::GenericClient, target: &str) -> Result<i64> {
    const OP: &str = "reading the schema version";
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(db(OP))?;
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_opt("SELECT version FROM schema_version", &[])
        .await
        .map_err(db(OP))?
        .ok_or_else(|| {
            StoreError::Corrupt(format!("schema_version of {target}: the table has no row"))
        })?;
    row.try_get(0).map_err(|e| {
        StoreError::Corrupt(format!(
            "schema_version.version of {target}: {}",
            describe(&e)
        ))
    })
}
