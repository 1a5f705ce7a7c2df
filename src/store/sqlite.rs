//! The embedded store: one SQLite file in WAL mode.
//!
//! Several `pitr` processes (the daemon, an operator's CLI) may share the file,
//! so every write runs in a `BEGIN IMMEDIATE` transaction: the write lock is
//! taken up front, which makes the read-check-write sequences below (active
//! request rule, status compare-and-set) atomic across processes, and lets
//! the busy timeout wait for another writer instead of failing on a lock
//! upgrade.
//!
//! Instants are stored as RFC 3339 UTC text with a fixed nanosecond fraction
//! (`2024-05-01T22:00:00.000000000Z`): text comparison is then chronological,
//! and every `DateTime<Utc>` reads back exactly as it was written.
use super::{Lease, Result, Store, StoreError};
use crate::domain::job::JobFacts;
use crate::domain::{
    Acknowledgements, EnvironmentEvent, EnvironmentEventKind, Job, JobStatus, RequestEvent,
    RequestStatus, RestoreRequest, StepName, StepRecord, StepStatus, Window,
};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::FromSql;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema, one script per version: `MIGRATIONS[n]` takes a store from
/// version `n` to `n + 1`. Append only; never edit a released script.
const MIGRATIONS: &[&str] = &[
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

/// The schema version this binary writes (kept in `PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const REQUEST_COLUMNS: &str = "id, environment, database, restore_point, window_start, \
     window_end, ack_erase, ack_downtime, ack_scope, requester, reason, prestage, status, \
     submitted_at, updated_at, emergency, ack_version_mismatch";
const JOB_COLUMNS: &str =
    "id, request_id, dry_run, status, plan, created_at, updated_at, finished_at, facts, error";
const STEP_COLUMNS: &str =
    "job_id, step, status, attempts, external_ref, started_at, finished_at, detail, error";

#[derive(Debug)]
pub struct SqliteStore {
    path: String,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store file at `path` and migrates it to
    /// [`SCHEMA_VERSION`]. A file from a newer pitr is refused untouched.
    pub fn open(path: &str) -> Result<SqliteStore> {
        let open_err = |cause: String| StoreError::Open {
            path: path.to_string(),
            cause,
        };
        if path.is_empty() {
            return Err(open_err(
                "the path is empty; use sqlite://PATH (for example sqlite://var/pitr.db)".into(),
            ));
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
        let found = user_version(&conn).map_err(|e| open_err(e.to_string()))?;
        if found > SCHEMA_VERSION {
            return Err(schema_too_new(path, found));
        }

        // WAL lets readers proceed while a runner writes; it is persistent in
        // the file, so this only writes the first time.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| open_err(format!("enabling WAL: {e}")))?;
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

        migrate(&mut conn, path)?;
        Ok(SqliteStore {
            path: path.to_string(),
            conn: Mutex::new(conn),
        })
    }

    /// The path of the store file.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held cannot leave a half-done write: an
        // open transaction is rolled back when it is dropped during unwinding.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` in one IMMEDIATE transaction, committed only if `f` succeeds.
    /// The work is short and synchronous, so it runs inline under the lock.
    fn write<T>(&self, op: &str, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db(op))?;
        let out = f(&tx)?;
        tx.commit().map_err(db(op))?;
        Ok(out)
    }
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

fn schema_too_new(path: &str, found: i64) -> StoreError {
    StoreError::SchemaTooNew {
        path: path.to_string(),
        found,
        supported: SCHEMA_VERSION,
    }
}

/// Applies the missing migrations, each in its own transaction with its
/// version bump. The version is re-read under the write lock, so two processes
/// opening an old store at once apply each script once.
fn migrate(conn: &mut Connection, path: &str) -> Result<()> {
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

/// Maps a SQLite error to `StoreError::Database`, naming the operation.
fn db(op: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Database(format!("{op}: {e}"))
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn opt_ts(t: &Option<DateTime<Utc>>) -> Option<String> {
    t.as_ref().map(ts)
}

/// The event must be about the request being written, or the audit trail
/// would tell another story than the rows.
fn check_event(op: &str, req: &RestoreRequest, event: &RequestEvent) -> Result<()> {
    if event.request_id != req.id {
        return Err(StoreError::Database(format!(
            "{op}: the event is for request {}, not {}",
            event.request_id, req.id
        )));
    }
    Ok(())
}

/// The status of a request, inside a write transaction.
fn current_status(tx: &Transaction<'_>, op: &str, id: &str) -> Result<RequestStatus> {
    let raw: Option<String> = tx
        .query_row("SELECT status FROM requests WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db(op))?;
    let raw = raw.ok_or_else(|| StoreError::RequestNotFound(id.to_string()))?;
    RequestStatus::parse(&raw).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "requests.status of {id}: '{raw}' is not a request status"
        ))
    })
}

/// The compare-and-set of every status change: `None` skips the check (the
/// engine always states the status it expects).
fn check_status(id: &str, expected: Option<RequestStatus>, actual: RequestStatus) -> Result<()> {
    match expected {
        Some(expected) if expected != actual => Err(StoreError::StatusConflict {
            id: id.to_string(),
            expected,
            actual,
        }),
        _ => Ok(()),
    }
}

fn insert_event(tx: &Transaction<'_>, op: &str, ev: &RequestEvent) -> Result<()> {
    tx.execute(
        "INSERT INTO request_events (request_id, at, actor, from_status, to_status, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            ev.request_id,
            ts(&ev.at),
            ev.actor,
            ev.from.map(RequestStatus::as_str),
            ev.to.as_str(),
            ev.note,
        ],
    )
    .map_err(db(op))?;
    Ok(())
}

/// Refuses a write whose lease was taken over (its fencing token is stale).
fn check_fence(tx: &Transaction<'_>, op: &str, fence: Option<&Lease>) -> Result<()> {
    let Some(lease) = fence else {
        return Ok(());
    };
    let current: Option<i64> = tx
        .query_row(
            "SELECT fencing FROM leases WHERE job_id = ?1",
            params![lease.job_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(db(op))?;
    match current {
        Some(c) if c == lease.fencing => Ok(()),
        other => Err(StoreError::LeaseLost {
            job: lease.job_id.clone(),
            ours: lease.fencing,
            current: other.unwrap_or(0),
        }),
    }
}

/// Writes the lease row for a new grant.
fn grant_lease(
    tx: &Transaction<'_>,
    op: &str,
    job_id: &str,
    owner: &str,
    expires_at: DateTime<Utc>,
    fencing: i64,
) -> Result<Lease> {
    tx.execute(
        "INSERT INTO leases (job_id, owner, expires_at, fencing) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (job_id) DO UPDATE SET owner = excluded.owner,
             expires_at = excluded.expires_at, fencing = excluded.fencing",
        params![job_id, owner, ts(&expires_at), fencing],
    )
    .map_err(db(op))?;
    Ok(Lease {
        job_id: job_id.to_string(),
        owner: owner.to_string(),
        expires_at,
        fencing,
    })
}

fn read_lease(tx: &Transaction<'_>, op: &str, job_id: &str) -> Result<Option<Lease>> {
    let row: Option<(String, String, i64)> = tx
        .query_row(
            "SELECT owner, expires_at, fencing FROM leases WHERE job_id = ?1",
            params![job_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(db(op))?;
    row.map(|(owner, expires, fencing)| {
        let expires_at = DateTime::parse_from_rfc3339(&expires)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| StoreError::Corrupt(format!("leases.expires_at of {job_id}: {e}")))?;
        Ok(Lease {
            job_id: job_id.to_string(),
            owner,
            expires_at,
            fencing,
        })
    })
    .transpose()
}

fn job_exists(tx: &Transaction<'_>, op: &str, id: &str) -> Result<bool> {
    tx.query_row("SELECT 1 FROM jobs WHERE id = ?1", [id], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
        .map_err(db(op))
}

/// Runs a query and decodes every row with `decode`.
fn query_all<T>(
    conn: &Connection,
    op: &str,
    sql: &str,
    params: impl rusqlite::Params,
    decode: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare(sql).map_err(db(op))?;
    let mut rows = stmt.query(params).map_err(db(op))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db(op))? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// Reads the columns of one row, turning anything unreadable into
/// `StoreError::Corrupt` that names the table, column and row.
struct Cols<'a> {
    row: &'a Row<'a>,
    table: &'static str,
    key: String,
}

impl<'a> Cols<'a> {
    /// `key_col` names the row in error messages.
    fn new(row: &'a Row<'a>, table: &'static str, key_col: &'static str) -> Result<Self> {
        let key = row
            .get::<_, String>(key_col)
            .map_err(|e| StoreError::Corrupt(format!("{table}.{key_col}: {e}")))?;
        Ok(Self { row, table, key })
    }

    fn corrupt(&self, col: &str, why: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!("{}.{col} of {}: {why}", self.table, self.key))
    }

    fn get<T: FromSql>(&self, col: &str) -> Result<T> {
        self.row.get(col).map_err(|e| self.corrupt(col, e))
    }

    fn text(&self, col: &str) -> Result<String> {
        self.get(col)
    }

    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.get(col)
    }

    fn flag(&self, col: &str) -> Result<bool> {
        match self.get::<i64>(col)? {
            0 => Ok(false),
            1 => Ok(true),
            n => Err(self.corrupt(col, format!("{n} is not 0 or 1"))),
        }
    }

    fn parse_instant(&self, col: &str, raw: &str) -> Result<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| self.corrupt(col, format!("'{raw}' is not an RFC 3339 instant ({e})")))
    }

    fn instant(&self, col: &str) -> Result<DateTime<Utc>> {
        let raw = self.text(col)?;
        self.parse_instant(col, &raw)
    }

    fn opt_instant(&self, col: &str) -> Result<Option<DateTime<Utc>>> {
        self.opt_text(col)?
            .map(|raw| self.parse_instant(col, &raw))
            .transpose()
    }

    /// A column holding one of a closed set of names (`what` says which set).
    fn named<T>(&self, col: &str, what: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
        let raw = self.text(col)?;
        parse(&raw).ok_or_else(|| self.corrupt(col, format!("'{raw}' is not a {what}")))
    }

    fn opt_named<T>(
        &self,
        col: &str,
        what: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<Option<T>> {
        self.opt_text(col)?
            .map(|raw| {
                parse(&raw).ok_or_else(|| self.corrupt(col, format!("'{raw}' is not a {what}")))
            })
            .transpose()
    }
}

fn request_from_row(row: &Row<'_>) -> Result<RestoreRequest> {
    let c = Cols::new(row, "requests", "id")?;
    Ok(RestoreRequest {
        environment: c.text("environment")?,
        database: c.text("database")?,
        restore_point: c.instant("restore_point")?,
        window: Window {
            start: c.instant("window_start")?,
            end: c.instant("window_end")?,
        },
        acks: Acknowledgements {
            erase: c.flag("ack_erase")?,
            downtime: c.flag("ack_downtime")?,
            scope: c.flag("ack_scope")?,
            version_mismatch: c.flag("ack_version_mismatch")?,
        },
        requester: c.text("requester")?,
        reason: c.opt_text("reason")?,
        prestage: c.flag("prestage")?,
        emergency: c.opt_text("emergency")?,
        status: c.named("status", "request status", RequestStatus::parse)?,
        submitted_at: c.instant("submitted_at")?,
        updated_at: c.instant("updated_at")?,
        id: c.key,
    })
}

fn event_from_row(row: &Row<'_>) -> Result<RequestEvent> {
    let c = Cols::new(row, "request_events", "request_id")?;
    Ok(RequestEvent {
        at: c.instant("at")?,
        actor: c.text("actor")?,
        from: c.opt_named("from_status", "request status", RequestStatus::parse)?,
        to: c.named("to_status", "request status", RequestStatus::parse)?,
        note: c.opt_text("note")?,
        request_id: c.key,
    })
}

fn plan_text(plan: &[StepName]) -> String {
    plan.iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn job_from_row(row: &Row<'_>) -> Result<Job> {
    let c = Cols::new(row, "jobs", "id")?;
    let plan_raw = c.text("plan")?;
    let plan = plan_raw
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            StepName::parse(s).ok_or_else(|| c.corrupt("plan", format!("'{s}' is not a step")))
        })
        .collect::<Result<Vec<_>>>()?;
    let facts_raw = c.text("facts")?;
    let facts: JobFacts = serde_json::from_str(&facts_raw)
        .map_err(|e| c.corrupt("facts", format!("not the JSON of job facts ({e})")))?;
    Ok(Job {
        request_id: c.text("request_id")?,
        dry_run: c.flag("dry_run")?,
        status: c.named("status", "job status", JobStatus::parse)?,
        plan,
        created_at: c.instant("created_at")?,
        updated_at: c.instant("updated_at")?,
        finished_at: c.opt_instant("finished_at")?,
        facts,
        error: c.opt_text("error")?,
        id: c.key,
    })
}

fn step_from_row(row: &Row<'_>) -> Result<StepRecord> {
    let c = Cols::new(row, "job_steps", "job_id")?;
    let attempts = c.get::<i64>("attempts")?;
    Ok(StepRecord {
        step: c.named("step", "step", StepName::parse)?,
        status: c.named("status", "step status", StepStatus::parse)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| c.corrupt("attempts", format!("{attempts} is out of range")))?,
        external_ref: c.opt_text("external_ref")?,
        started_at: c.opt_instant("started_at")?,
        finished_at: c.opt_instant("finished_at")?,
        detail: c.opt_text("detail")?,
        error: c.opt_text("error")?,
    })
}

fn facts_json(op: &str, facts: &JobFacts) -> Result<String> {
    serde_json::to_string(facts)
        .map_err(|e| StoreError::Database(format!("{op}: encoding the job facts: {e}")))
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_request(&self, req: &RestoreRequest, event: &RequestEvent) -> Result<()> {
        const OP: &str = "insert_request";
        check_event(OP, req, event)?;
        self.write(OP, |tx| {
            // Oldest first, so the message names the request that has held
            // the environment longest (there is at most one anyway).
            let others = query_all(
                tx,
                OP,
                "SELECT id, status FROM requests WHERE environment = ?1 ORDER BY submitted_at",
                [&req.environment],
                |row| {
                    let c = Cols::new(row, "requests", "id")?;
                    let status = c.named("status", "request status", RequestStatus::parse)?;
                    Ok((c.key, status))
                },
            )?;
            if let Some((existing, _)) = others.into_iter().find(|(_, s)| s.is_active()) {
                return Err(StoreError::ActiveRequestExists {
                    environment: req.environment.clone(),
                    existing,
                });
            }
            tx.execute(
                &format!(
                    "INSERT INTO requests ({REQUEST_COLUMNS}) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
                ),
                params![
                    req.id,
                    req.environment,
                    req.database,
                    ts(&req.restore_point),
                    ts(&req.window.start),
                    ts(&req.window.end),
                    req.acks.erase,
                    req.acks.downtime,
                    req.acks.scope,
                    req.requester,
                    req.reason,
                    req.prestage,
                    req.status.as_str(),
                    ts(&req.submitted_at),
                    ts(&req.updated_at),
                    req.emergency,
                    req.acks.version_mismatch,
                ],
            )
            .map_err(db(OP))?;
            insert_event(tx, OP, event)
        })
    }

    async fn get_request(&self, id: &str) -> Result<Option<RestoreRequest>> {
        let conn = self.conn();
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = ?1");
        Ok(
            query_all(&conn, "get_request", &sql, [id], request_from_row)?
                .into_iter()
                .next(),
        )
    }

    async fn list_requests(&self) -> Result<Vec<RestoreRequest>> {
        let conn = self.conn();
        // Ties on submitted_at (a manual clock) go by insertion order: rowid
        // grows with every insert, and VACUUM keeps the relative order.
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests ORDER BY submitted_at DESC, rowid DESC"
        );
        query_all(&conn, "list_requests", &sql, [], request_from_row)
    }

    async fn transition_request(&self, event: &RequestEvent) -> Result<()> {
        const OP: &str = "transition_request";
        self.write(OP, |tx| {
            let actual = current_status(tx, OP, &event.request_id)?;
            check_status(&event.request_id, event.from, actual)?;
            tx.execute(
                "UPDATE requests SET status = ?2, updated_at = ?3 WHERE id = ?1",
                params![event.request_id, event.to.as_str(), ts(&event.at)],
            )
            .map_err(db(OP))?;
            insert_event(tx, OP, event)
        })
    }

    /// Writes the editable fields (restore point, window, reason, prestage)
    /// and sets the status to `event.to` (the same status for a reschedule),
    /// so the row always agrees with its audit trail; `updated_at` becomes
    /// `event.at`. Identity, environment, database, acknowledgements and
    /// requester are fixed at submission and not written.
    async fn update_request(&self, req: &RestoreRequest, event: &RequestEvent) -> Result<()> {
        const OP: &str = "update_request";
        check_event(OP, req, event)?;
        self.write(OP, |tx| {
            let actual = current_status(tx, OP, &req.id)?;
            check_status(&req.id, event.from, actual)?;
            tx.execute(
                "UPDATE requests SET restore_point = ?2, window_start = ?3, window_end = ?4,
                     reason = ?5, prestage = ?6, status = ?7, updated_at = ?8, emergency = ?9,
                     ack_version_mismatch = ?10
                 WHERE id = ?1",
                params![
                    req.id,
                    ts(&req.restore_point),
                    ts(&req.window.start),
                    ts(&req.window.end),
                    req.reason,
                    req.prestage,
                    event.to.as_str(),
                    ts(&event.at),
                    req.emergency,
                    req.acks.version_mismatch,
                ],
            )
            .map_err(db(OP))?;
            insert_event(tx, OP, event)
        })
    }

    async fn request_events(&self, id: &str) -> Result<Vec<RequestEvent>> {
        let conn = self.conn();
        query_all(
            &conn,
            "request_events",
            "SELECT request_id, at, actor, from_status, to_status, note
             FROM request_events WHERE request_id = ?1 ORDER BY id",
            [id],
            event_from_row,
        )
    }

    async fn insert_job(&self, job: &Job) -> Result<()> {
        const OP: &str = "insert_job";
        let facts = facts_json(OP, &job.facts)?;
        self.write(OP, |tx| {
            // Checked here to give RequestNotFound rather than a foreign key error.
            current_status(tx, OP, &job.request_id)?;
            tx.execute(
                &format!(
                    "INSERT INTO jobs ({JOB_COLUMNS}) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ),
                params![
                    job.id,
                    job.request_id,
                    job.dry_run,
                    job.status.as_str(),
                    plan_text(&job.plan),
                    ts(&job.created_at),
                    ts(&job.updated_at),
                    opt_ts(&job.finished_at),
                    facts,
                    job.error,
                ],
            )
            .map_err(db(OP))?;
            Ok(())
        })
    }

    async fn get_job(&self, id: &str) -> Result<Option<Job>> {
        let conn = self.conn();
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
        Ok(query_all(&conn, "get_job", &sql, [id], job_from_row)?
            .into_iter()
            .next())
    }

    async fn jobs_for_request(&self, request_id: &str) -> Result<Vec<Job>> {
        let conn = self.conn();
        // rowid breaks ties on created_at by insertion order (see list_requests).
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE request_id = ?1 ORDER BY created_at, rowid"
        );
        query_all(&conn, "jobs_for_request", &sql, [request_id], job_from_row)
    }

    /// Writes every field but the identity (`id`, `request_id`), which is
    /// fixed when the job is inserted.
    async fn update_job(&self, job: &Job, fence: Option<&Lease>) -> Result<()> {
        const OP: &str = "update_job";
        let facts = facts_json(OP, &job.facts)?;
        self.write(OP, |tx| {
            check_fence(tx, OP, fence)?;
            let changed = tx
                .execute(
                    "UPDATE jobs SET dry_run = ?2, status = ?3, plan = ?4, created_at = ?5,
                         updated_at = ?6, finished_at = ?7, facts = ?8, error = ?9
                     WHERE id = ?1",
                    params![
                        job.id,
                        job.dry_run,
                        job.status.as_str(),
                        plan_text(&job.plan),
                        ts(&job.created_at),
                        ts(&job.updated_at),
                        opt_ts(&job.finished_at),
                        facts,
                        job.error,
                    ],
                )
                .map_err(db(OP))?;
            if changed == 0 {
                return Err(StoreError::JobNotFound(job.id.clone()));
            }
            Ok(())
        })
    }

    async fn save_step(
        &self,
        job_id: &str,
        step: &StepRecord,
        fence: Option<&Lease>,
    ) -> Result<()> {
        const OP: &str = "save_step";
        self.write(OP, |tx| {
            check_fence(tx, OP, fence)?;
            if !job_exists(tx, OP, job_id)? {
                return Err(StoreError::JobNotFound(job_id.to_string()));
            }
            // A new step goes after the job's others; an existing one keeps
            // its place (seq is not in the update list).
            tx.execute(
                "INSERT INTO job_steps (job_id, step, seq, status, attempts, external_ref,
                     started_at, finished_at, detail, error)
                 VALUES (?1, ?2,
                     (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_steps WHERE job_id = ?1),
                     ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (job_id, step) DO UPDATE SET
                     status = excluded.status, attempts = excluded.attempts,
                     external_ref = excluded.external_ref, started_at = excluded.started_at,
                     finished_at = excluded.finished_at, detail = excluded.detail,
                     error = excluded.error",
                params![
                    job_id,
                    step.step.as_str(),
                    step.status.as_str(),
                    i64::from(step.attempts),
                    step.external_ref,
                    opt_ts(&step.started_at),
                    opt_ts(&step.finished_at),
                    step.detail,
                    step.error,
                ],
            )
            .map_err(db(OP))?;
            Ok(())
        })
    }

    async fn steps(&self, job_id: &str) -> Result<Vec<StepRecord>> {
        let conn = self.conn();
        let sql = format!("SELECT {STEP_COLUMNS} FROM job_steps WHERE job_id = ?1 ORDER BY seq");
        query_all(&conn, "steps", &sql, [job_id], step_from_row)
    }

    async fn acquire_lease(
        &self,
        job_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Lease> {
        const OP: &str = "acquire_lease";
        self.write(OP, |tx| {
            if !job_exists(tx, OP, job_id)? {
                return Err(StoreError::JobNotFound(job_id.to_string()));
            }
            let fencing = match read_lease(tx, OP, job_id)? {
                Some(l) if l.owner != owner && l.expires_at > now => {
                    return Err(StoreError::LeaseHeld {
                        job: job_id.to_string(),
                        owner: l.owner,
                        expires_at: l.expires_at,
                    })
                }
                Some(l) => l.fencing + 1,
                None => 1,
            };
            grant_lease(tx, OP, job_id, owner, now + ttl, fencing)
        })
    }

    async fn take_over_lease(
        &self,
        job_id: &str,
        from_owner: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Lease> {
        const OP: &str = "take_over_lease";
        self.write(OP, |tx| {
            let current = read_lease(tx, OP, job_id)?;
            let fencing = match current {
                Some(l) if l.owner == from_owner || l.expires_at <= now => l.fencing + 1,
                Some(l) => {
                    return Err(StoreError::LeaseHeld {
                        job: job_id.to_string(),
                        owner: l.owner,
                        expires_at: l.expires_at,
                    })
                }
                None => 1,
            };
            grant_lease(tx, OP, job_id, owner, now + ttl, fencing)
        })
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Lease> {
        const OP: &str = "renew_lease";
        self.write(OP, |tx| {
            check_fence(tx, OP, Some(lease))?;
            let renewed = Lease {
                expires_at: now + ttl,
                ..lease.clone()
            };
            tx.execute(
                "UPDATE leases SET expires_at = ?2 WHERE job_id = ?1 AND fencing = ?3",
                params![lease.job_id, ts(&renewed.expires_at), lease.fencing],
            )
            .map_err(db(OP))?;
            Ok(renewed)
        })
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        const OP: &str = "release_lease";
        self.write(OP, |tx| {
            // Expire rather than delete: the fencing token must keep growing,
            // or a stale owner's token could become valid again.
            tx.execute(
                "UPDATE leases SET expires_at = ?3 WHERE job_id = ?1 AND fencing = ?2",
                params![
                    lease.job_id,
                    lease.fencing,
                    ts(&DateTime::<Utc>::UNIX_EPOCH)
                ],
            )
            .map_err(db(OP))?;
            Ok(())
        })
    }

    async fn add_environment_event(&self, ev: &EnvironmentEvent) -> Result<()> {
        const OP: &str = "add_environment_event";
        self.write(OP, |tx| {
            tx.execute(
                "INSERT INTO environment_history (environment, kind, at, finished_at, version, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    ev.environment,
                    ev.kind.as_str(),
                    ts(&ev.at),
                    opt_ts(&ev.finished_at),
                    ev.version,
                    ev.detail,
                ],
            )
            .map_err(db(OP))?;
            Ok(())
        })
    }

    async fn environment_events(&self, environment: &str) -> Result<Vec<EnvironmentEvent>> {
        let conn = self.conn();
        query_all(
            &conn,
            "environment_history",
            "SELECT id, environment, kind, at, finished_at, version, detail
             FROM environment_history WHERE environment = ?1 ORDER BY at, id",
            [environment],
            |row| {
                let c = Cols::new(row, "environment_history", "environment")?;
                Ok(EnvironmentEvent {
                    environment: c.text("environment")?,
                    kind: c.named("kind", "history kind", EnvironmentEventKind::parse)?,
                    at: c.instant("at")?,
                    finished_at: c.opt_instant("finished_at")?,
                    version: c.opt_text("version")?,
                    detail: c.opt_text("detail")?,
                })
            },
        )
    }

    async fn get_lease(&self, job_id: &str) -> Result<Option<Lease>> {
        const OP: &str = "get_lease";
        self.write(OP, |tx| read_lease(tx, OP, job_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn temp_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pitr.db");
        let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
        (dir, store)
    }

    #[test]
    fn connection_settings() {
        let (_dir, store) = temp_store();
        let conn = store.conn();
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
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
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
        let conn = store.conn();
        let insert = |id: &str, status: RequestStatus| {
            let t = "2024-01-01T00:00:00.000000000Z";
            conn.execute(
                &format!(
                    "INSERT INTO requests ({REQUEST_COLUMNS}) VALUES \
                     (?1, ?2, 'db', ?3, ?3, ?3, 1, 1, 1, 'me', NULL, 0, ?4, ?3, ?3, NULL, 0)"
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
