//! The SQLite schema, one script per version: `MIGRATIONS[n]` takes a store
//! from version `n` to `n + 1`, and the version is kept in
//! `PRAGMA user_version`. Append only; never edit a released script.
use super::super::{Result, StoreError};
use rusqlite::{Connection, TransactionBehavior};

/// The schema, one script per version: `MIGRATIONS[n]` takes a store from
/// version `n` to `n + 1`. Append only; never edit a released script.
pub(super) const MIGRATIONS: &[&str] = &[
    // Version 1.
    r#"
CREATE TABLE requests (
    id            TEXT PRIMARY KEY NOT NULL,
    environment   TEXT NOT NULL,
    database      TEXT NOT NULL,
    restore_point TEXT NOT NULL,
    window_start  TEXT NOT NULL,
    window_end    TEXT NOT NULL,
    ack_erase     INTEGER NOT NULL CHECK (ack_erase IN (0, 1)),
    ack_downtime  INTEGER NOT NULL CHECK (ack_downtime IN (0, 1)),
    ack_scope     INTEGER NOT NULL CHECK (ack_scope IN (0, 1)),
    requester     TEXT NOT NULL,
    reason        TEXT,
    prestage      INTEGER NOT NULL CHECK (prestage IN (0, 1)),
    status        TEXT NOT NULL,
    submitted_at  TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;
CREATE INDEX requests_environment_status ON requests (environment, status);
-- At most one active request per environment, guaranteed by the file itself
-- (insert_request checks first, to name the request that holds it). The list
-- must match RequestStatus::is_active; a change there needs a migration here.
CREATE UNIQUE INDEX requests_one_active_per_environment ON requests (environment)
    WHERE status IN ('submitted', 'accepted', 'running');

CREATE TABLE request_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id  TEXT NOT NULL REFERENCES requests (id),
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    note        TEXT
) STRICT;
CREATE INDEX request_events_request ON request_events (request_id, id);

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY NOT NULL,
    request_id  TEXT NOT NULL REFERENCES requests (id),
    dry_run     INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
    status      TEXT NOT NULL,
    plan        TEXT NOT NULL, -- step names, comma-separated, in order
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    finished_at TEXT,
    facts       TEXT NOT NULL, -- JSON of JobFacts
    error       TEXT
) STRICT;
CREATE INDEX jobs_request ON jobs (request_id, created_at);

CREATE TABLE job_steps (
    job_id       TEXT NOT NULL REFERENCES jobs (id),
    step         TEXT NOT NULL,
    seq          INTEGER NOT NULL, -- order in which the step was first saved
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL CHECK (attempts >= 0),
    external_ref TEXT,
    started_at   TEXT,
    finished_at  TEXT,
    detail       TEXT,
    error        TEXT,
    PRIMARY KEY (job_id, step)
) STRICT;

-- Leases of jobs to runners; what happened to environments (not used yet).
CREATE TABLE leases (
    job_id     TEXT PRIMARY KEY NOT NULL REFERENCES jobs (id),
    owner      TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    fencing    INTEGER NOT NULL
) STRICT;

CREATE TABLE environment_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('restore', 'deployment')),
    at          TEXT NOT NULL,
    finished_at TEXT,
    version     TEXT,
    detail      TEXT
) STRICT;
CREATE INDEX environment_history_environment ON environment_history (environment, at);
"#,
    // 2: emergencies (a window sooner than 24 h) and the code-version acknowledgement.
    r#"
ALTER TABLE requests ADD COLUMN emergency TEXT;
ALTER TABLE requests ADD COLUMN ack_version_mismatch INTEGER NOT NULL DEFAULT 0
    CHECK (ack_version_mismatch IN (0, 1));
"#,
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

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
        let Some(script) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        else {
            // Up to date (or a negative version, which no pitr writes).
            if version < 0 {
                return Err(StoreError::Corrupt(format!(
                    "the schema version of {path} ({version})"
                )));
            }
            return Ok(());
        };
        let next = version + 1;
        tx.execute_batch(script)
            .and_then(|()| tx.pragma_update(None, "user_version", next))
            .and_then(|()| tx.commit())
            .map_err(|e| StoreError::Open {
                path: path.to_string(),
                cause: format!("migrating to schema version {next}: {e}"),
            })?;
    }
}
