//! The state store: requests, their audit trail, jobs and step checkpoints.
//! One [`Store`] trait; the engine never knows which database is behind it.
//! The URL scheme picks the implementation: `sqlite://PATH` (an embedded
//! file, the default) or `postgres://USER@HOST:PORT/DB` (several runners on
//! several machines). Both share one schema history ([`migrations`]) and one
//! test suite (`tests/it/store_suite.rs`).
//!
//! A backend is SQL, encoding, migrations and transactions only. The rules
//! that do not depend on SQL (lease grant, takeover and fencing, the status
//! compare-and-set, one active request per environment, not-found answers)
//! live once in [`rules`], as functions of the current rows and the inputs;
//! a backend reads the rows inside its transaction, asks the rule, and
//! writes what the rule returns.
use crate::domain::{
    EnvironmentEvent, Job, JobId, RequestEvent, RequestId, RequestStatus, RestoreRequest,
    StepRecord,
};
use async_trait::async_trait;
use std::sync::Arc;

pub mod copy;
pub mod in_play;
pub mod migrations;
pub mod outbox;
pub mod postgres;
mod rows;
pub mod rules;
pub mod sqlite;
pub mod web;

pub use copy::{RowCounts, StepRow, StoreRows};
pub use in_play::WorkInPlay;
pub use outbox::{Delivery, DeliveryOutcome, DeliveryRecord, OutboxEvent, ReceiverSpec};
pub use web::{WebLogin, WebSession};

/// The environment variable holding the PostgreSQL password (it wins over a
/// password in the URL, and keeps it out of config files).
pub const PASSWORD_ENV: &str = "PITR_STORE_PASSWORD";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is shown with any password replaced by `***`.
    #[error(
        "store URL '{0}' is not supported; use sqlite://PATH (for example sqlite://var/pitr.db) \
         or postgres://USER@HOST:5432/DATABASE (password in {PASSWORD_ENV})"
    )]
    UnsupportedUrl(String),
    /// A `postgres://` URL that cannot be used as written (shown redacted).
    #[error("store URL '{url}': {problem}")]
    BadUrl { url: String, problem: String },
    #[error("cannot open the store at {path}: {cause}")]
    Open { path: String, cause: String },
    #[error("the store at {path} has schema version {found}, newer than this pitr binary understands ({supported}); upgrade pitr, or point [store] url at another store")]
    SchemaTooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    /// Only for stores opened read-only (the source of a copy), which are
    /// never migrated.
    #[error("the store at {path} has schema version {found}, older than this pitr's ({supported}); it is opened read-only and not migrated: open it once with this pitr (for example `PITR_STORE_URL=<its URL> pitr request list`), then copy again")]
    SchemaTooOld {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("the target store {path} is not empty ({found}); copy into a new, empty store")]
    TargetNotEmpty { path: String, found: RowCounts },
    #[error("request {0} not found; `pitr request list` shows the known requests")]
    RequestNotFound(RequestId),
    #[error("job {0} not found")]
    JobNotFound(JobId),
    #[error("request {id} is {actual}, not {expected}: it changed meanwhile; look at `pitr request show {id}`")]
    StatusConflict {
        id: RequestId,
        expected: RequestStatus,
        actual: RequestStatus,
    },
    #[error("rule one-active-request: environment '{environment}' already has an active request ({existing}); cancel it or wait for it to finish")]
    ActiveRequestExists {
        environment: String,
        existing: RequestId,
    },
    #[error("job {job} is being run by {owner} (lease until {expires_at}); wait for it, or for the lease to expire if that runner died")]
    LeaseHeld {
        job: JobId,
        owner: String,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    #[error("lease of job {job} lost: another runner took it over (fencing token {current} > {ours}); this runner stops writing")]
    LeaseLost { job: JobId, ours: i64, current: i64 },
    /// `[scheduler] max_concurrent_runs`, counted over every runner.
    #[error("rule max-concurrent-runs: {running} runs are in progress across all runners, the limit is {limit}; the run starts when one ends")]
    LimitReached { running: usize, limit: usize },
    #[error("request {request} already has a run in progress (job {job}); continue it with `pitr resume {request}`")]
    RunInProgress { request: RequestId, job: JobId },
    /// The file is not a pitr store (missing, empty, damaged): nothing was
    /// changed.
    #[error("the store at {path} cannot be used: {why}")]
    NotAStore { path: String, why: String },
    #[error("store error: {0}")]
    Database(String),
    #[error("store holds an unreadable value in {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The store itself failed (locked, I/O, disk full, unreachable), as
    /// opposed to an answer about the data (not found, conflict, lease).
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Database(_) | Self::Open { .. })
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A runner's claim on a job. The fencing token grows with every takeover;
/// a checkpoint written with an older token is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job_id: JobId,
    pub owner: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub fencing: i64,
}

#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Inserts a new request and its first audit event atomically. Refused
    /// with `ActiveRequestExists` if the environment has an active request.
    async fn insert_request(&self, req: &RestoreRequest, event: &RequestEvent) -> Result<()>;
    async fn get_request(&self, id: &RequestId) -> Result<Option<RestoreRequest>>;
    /// All requests, newest first.
    async fn list_requests(&self) -> Result<Vec<RestoreRequest>>;
    /// Compare-and-set of a request's status with its audit event, atomically.
    /// `event.from` must be the expected current status.
    async fn transition_request(&self, event: &RequestEvent) -> Result<()>;
    /// Replaces the request's editable fields (window, restore point) with an
    /// audit event, atomically (reschedule).
    async fn update_request(&self, req: &RestoreRequest, event: &RequestEvent) -> Result<()>;
    /// The audit trail of a request, oldest first.
    async fn request_events(&self, id: &RequestId) -> Result<Vec<RequestEvent>>;
    /// Sets (or clears) a request's warning; true when it changed.
    async fn set_warning(&self, id: &RequestId, warning: Option<&str>) -> Result<bool>;

    /// Starts a run as one atomic claim: inserts `job`, grants its lease to
    /// `owner`, and with `start` moves the request (a compare-and-set with
    /// its audit event, `Accepted -> Running`), all in one transaction.
    /// Refused with `RunInProgress` while another real job of the request is
    /// running, so two runners can never both start it. With `limit`
    /// (the scheduler's `max_concurrent_runs`), refused with `LimitReached`
    /// when that many real runs are driven already (running jobs whose lease
    /// is live at `now`, whichever runner holds it): counted in the same
    /// transaction, serialized with every other limited claim, so the
    /// limit holds across runners.
    async fn claim_run(
        &self,
        job: &Job,
        start: Option<&RequestEvent>,
        owner: &str,
        now: chrono::DateTime<chrono::Utc>,
        ttl: chrono::Duration,
        limit: Option<usize>,
    ) -> Result<Lease>;
    async fn get_job(&self, id: &JobId) -> Result<Option<Job>>;
    /// Jobs of a request, oldest first.
    async fn jobs_for_request(&self, request_id: &RequestId) -> Result<Vec<Job>>;
    /// Writes the whole job row (status, facts, error, timestamps). With a
    /// lease, refused (`LeaseLost`) unless the lease is still the job's.
    async fn update_job(&self, job: &Job, fence: Option<&Lease>) -> Result<()>;
    /// Upserts the checkpoint of one step of a job, fenced like `update_job`.
    async fn save_step(
        &self,
        job_id: &JobId,
        step: &StepRecord,
        fence: Option<&Lease>,
    ) -> Result<()>;
    /// The checkpoints of a job, in the order they were first written.
    async fn steps(&self, job_id: &JobId) -> Result<Vec<StepRecord>>;
    /// The work in play, read in one consistent snapshot without finished
    /// history (see [`in_play`]): what a scheduler tick plans from.
    async fn work_in_play(&self) -> Result<WorkInPlay>;

    /// Takes the lease of a job: free, expired, or already `owner`'s. Each
    /// grant increments the fencing token. Held by another: `LeaseHeld`.
    async fn acquire_lease(
        &self,
        job_id: &JobId,
        owner: &str,
        now: chrono::DateTime<chrono::Utc>,
        ttl: chrono::Duration,
    ) -> Result<Lease>;
    /// Takes a lease from `from_owner` before it expires — only when the
    /// caller knows that owner is dead (same host, process gone). Refused with
    /// `LeaseHeld` if the owner changed meanwhile.
    async fn take_over_lease(
        &self,
        job_id: &JobId,
        from_owner: &str,
        owner: &str,
        now: chrono::DateTime<chrono::Utc>,
        ttl: chrono::Duration,
    ) -> Result<Lease>;
    /// Extends a lease still held (same fencing token), else `LeaseLost`.
    async fn renew_lease(
        &self,
        lease: &Lease,
        now: chrono::DateTime<chrono::Utc>,
        ttl: chrono::Duration,
    ) -> Result<Lease>;
    /// Gives the lease up (no-op if it was already taken over).
    async fn release_lease(&self, lease: &Lease) -> Result<()>;
    async fn get_lease(&self, job_id: &JobId) -> Result<Option<Lease>>;

    /// Records a restore or a deployment of an environment.
    async fn add_environment_event(&self, ev: &EnvironmentEvent) -> Result<()>;
    /// An environment's restores and deployments, oldest first.
    async fn environment_events(&self, environment: &str) -> Result<Vec<EnvironmentEvent>>;

    /// The outbox's events, oldest first: of one request, or all.
    async fn outbox(&self, request_id: Option<&RequestId>) -> Result<Vec<OutboxEvent>>;
    /// Claims up to `limit` deliveries due at `now` for `owner` until
    /// `now + ttl` (another runner skips them meanwhile), after creating the
    /// missing deliveries of events written since `since` for each
    /// receiver, and pruning events older than a week. Only the oldest
    /// undelivered event of a request is ever due for a receiver, so a
    /// receiver gets each request's events in order. Each claim counts as
    /// an attempt.
    async fn claim_deliveries(
        &self,
        receivers: &[ReceiverSpec],
        owner: &str,
        now: chrono::DateTime<chrono::Utc>,
        ttl: chrono::Duration,
        since: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>>;
    /// Records how an attempt ended (ignored when `owner`'s claim was taken
    /// over meanwhile).
    async fn finish_delivery(
        &self,
        delivery: &Delivery,
        owner: &str,
        outcome: &DeliveryOutcome,
    ) -> Result<()>;
    /// Deliveries, newest first (`failed_only`: those given up).
    async fn deliveries(&self, failed_only: bool, limit: usize) -> Result<Vec<DeliveryRecord>>;

    /// Records a sign-in in progress of the web page (and forgets those
    /// expired at `now`).
    async fn insert_web_login(
        &self,
        login: &WebLogin,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()>;
    /// Takes the sign-in in progress whose cookie hashes to `id_hash`, once:
    /// it is deleted in the same statement; `None` when unknown or expired.
    async fn take_web_login(
        &self,
        id_hash: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<WebLogin>>;
    /// Records a signed-in session (and forgets those expired at `now`).
    async fn insert_web_session(
        &self,
        session: &WebSession,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()>;
    /// The live session whose cookie hashes to `id_hash` (`None`: unknown,
    /// signed out or expired at `now`).
    async fn web_session(
        &self,
        id_hash: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<WebSession>>;
    /// Ends a session (sign-out); true when it existed.
    async fn delete_web_session(&self, id_hash: &str) -> Result<bool>;

    /// The schema version the store is at (a cheap query: `/readyz`).
    async fn schema_version(&self) -> Result<i64>;

    /// Every row, each table in the order it was written, read from one
    /// consistent snapshot (`pitr store copy`).
    async fn export(&self) -> Result<StoreRows>;
    /// Writes `rows` into this store, in their order, in one transaction.
    /// Refused with `TargetNotEmpty` (nothing written) unless the store is
    /// empty. Leases are not written: an imported store starts lease-free.
    async fn import(&self, rows: &StoreRows) -> Result<()>;
}

pub type SharedStore = Arc<dyn Store>;

/// Which engine a URL names.
enum Engine<'a> {
    Sqlite(&'a str),
    Postgres,
}

fn engine(url: &str) -> Result<Engine<'_>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Engine::Sqlite(path))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Engine::Postgres)
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// Checks a store URL without connecting (config validation): the scheme,
/// and for PostgreSQL every option.
pub fn check_url(url: &str) -> Result<()> {
    match engine(url)? {
        Engine::Sqlite(path) if path.trim().is_empty() => Err(StoreError::Open {
            path: url.to_string(),
            cause: "the path is empty; use sqlite://PATH (for example sqlite://var/pitr.db)".into(),
        }),
        Engine::Sqlite(_) => Ok(()),
        Engine::Postgres => postgres::ConnectOptions::parse(url, None).map(|_| ()),
    }
}

/// Opens the store named by a URL, creating and migrating it as needed (a
/// store made on purpose: `pitr store init`, the demo, tests). A PostgreSQL
/// password comes from [`PASSWORD_ENV`] when it is set.
pub async fn open(url: &str) -> Result<SharedStore> {
    open_with(url, true).await
}

/// Opens a store that must exist already (every command but `store init`):
/// a missing or empty SQLite file is refused, never silently created. A
/// PostgreSQL database is created by its operator; its schema is migrated.
pub async fn open_existing(url: &str) -> Result<SharedStore> {
    open_with(url, false).await
}

async fn open_with(url: &str, create: bool) -> Result<SharedStore> {
    match engine(url)? {
        Engine::Sqlite(path) => Ok(Arc::new(sqlite::SqliteStore::open(path, create).await?)),
        Engine::Postgres => Ok(Arc::new(
            postgres::PostgresStore::open(url, password_from_env()).await?,
        )),
    }
}

/// Opens an existing store without changing it: no file is created, no
/// migration runs, and writes are refused by the database itself. Its schema
/// must be exactly this binary's ([`StoreError::SchemaTooOld`] otherwise).
pub async fn open_read_only(url: &str) -> Result<SharedStore> {
    match engine(url)? {
        Engine::Sqlite(path) => Ok(Arc::new(sqlite::SqliteStore::open_read_only(path).await?)),
        Engine::Postgres => Ok(Arc::new(
            postgres::PostgresStore::open_read_only(url, password_from_env()).await?,
        )),
    }
}

fn password_from_env() -> Option<String> {
    std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty())
}

/// The URL with its password (`user:PASSWORD@`, `?password=`) replaced by
/// `***`, for messages. Works on text, so a malformed URL is redacted too.
pub fn redact_url(url: &str) -> String {
    // The password runs from the first ':' after the scheme to the last '@'
    // (an unencoded '/', '?' or '@' in it must not end it early).
    let mut out = match url.split_once("://") {
        Some((scheme, rest)) => match rest.rfind('@') {
            Some(at) => match rest[..at].split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{}", &rest[at + 1..]),
                None => url.to_string(),
            },
            None => url.to_string(),
        },
        None => url.to_string(),
    };
    if let Some((head, query)) = out.split_once('?') {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}?{}", pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_before_they_are_shown() {
        for (url, shown) in [
            (
                "postgres://u:s3cret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u:s3cret@h", "postgres://u:***@h"),
            (
                "postgres://u@h/db?sslmode=require&password=s3cret",
                "postgres://u@h/db?sslmode=require&password=***",
            ),
            ("postgress://u:p:w@h/db", "postgress://u:***@h/db"),
            ("postgres://u:a/b?c@d@h/db", "postgres://u:***@h/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("sqlite://var/pitr.db", "sqlite://var/pitr.db"),
            ("pitr.db", "pitr.db"),
        ] {
            assert_eq!(redact_url(url), shown);
        }
        let e = check_url("mysql://root:hunter22@db/pitr").unwrap_err();
        assert!(!e.to_string().contains("hunter22"), "{e}");
        assert!(e.to_string().contains("postgres://"), "{e}");
    }
}
