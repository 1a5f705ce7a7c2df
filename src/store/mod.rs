//! The state store: requests, their audit trail, jobs and step checkpoints.
//! One [`Store`] trait; the engine never knows which database is behind it.
//! The URL scheme picks the implementation (`sqlite://PATH`).
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

pub mod rules;
pub mod sqlite;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "store URL '{0}' is not supported; use sqlite://PATH (for example sqlite://var/pitr.db)"
    )]
    UnsupportedUrl(String),
    #[error("cannot open the store at {path}: {cause}")]
    Open { path: String, cause: String },
    #[error("the store at {path} has schema version {found}, newer than this pitr binary understands ({supported}); upgrade pitr, or point [store] url at another store")]
    SchemaTooNew {
        path: String,
        found: i64,
        supported: i64,
    },
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
    #[error("request {request} already has a run in progress (job {job}); continue it with `pitr resume {request}`")]
    RunInProgress { request: RequestId, job: JobId },
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

    /// Starts a run as one atomic claim: inserts `job`, grants its lease to
    /// `owner`, and with `start` moves the request (a compare-and-set with
    /// its audit event, `Accepted -> Running`), all in one transaction.
    /// Refused with `RunInProgress` while another real job of the request is
    /// running, so two runners can never both start it.
    async fn claim_run(
        &self,
        job: &Job,
        start: Option<&RequestEvent>,
        owner: &str,
        now: chrono::DateTime<chrono::Utc>,
        ttl: chrono::Duration,
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
}

pub type SharedStore = Arc<dyn Store>;

/// Opens the store named by a URL, creating and migrating it as needed.
pub async fn open(url: &str) -> Result<SharedStore> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Arc::new(sqlite::SqliteStore::open(path).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_string()))
    }
}
