//! The one JSON representation of requests, their runs and audit trail, and
//! environments with their history: what `pitr request show --json`,
//! `request list --json`, `request history --json`, `env show --json` and
//! the HTTP API (`/api/v1`) all print. Built here from the domain, once;
//! the OpenAPI document describes these same types.
//!
//! Instants are RFC 3339 in UTC to the second (`2026-11-24T08:30:00Z`),
//! except the restore points inside an environment's history, which keep
//! the precision they were stored with.
use crate::config::{Config, EngineConfig};
use crate::domain::schedule::Estimates;
use crate::domain::{
    Acknowledgements, Environment, EnvironmentEvent, Job, JobStatus, RequestEvent, RequestId,
    RequestStatus, RestoreRequest, StepRecord,
};
use crate::store::{Lease, SharedStore, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The acknowledgements a request carries.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AcknowledgementsView {
    /// The current database is erased and replaced.
    pub erase: bool,
    /// The environment is unavailable during the window.
    pub downtime: bool,
    /// Only the F&O database is restored.
    pub scope: bool,
    /// The code version at the restore point differs from today's.
    pub version_mismatch: bool,
}

impl From<Acknowledgements> for AcknowledgementsView {
    fn from(a: Acknowledgements) -> Self {
        Self {
            erase: a.erase,
            downtime: a.downtime,
            scope: a.scope,
            version_mismatch: a.version_mismatch,
        }
    }
}

/// A request's lifecycle status.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusView {
    Submitted,
    Accepted,
    Rejected,
    Running,
    Succeeded,
    Failed,
    RolledBack,
    Cancelled,
    Missed,
}

impl From<RequestStatus> for StatusView {
    fn from(s: RequestStatus) -> Self {
        use RequestStatus as S;
        match s {
            S::Submitted => Self::Submitted,
            S::Accepted => Self::Accepted,
            S::Rejected => Self::Rejected,
            S::Running => Self::Running,
            S::Succeeded => Self::Succeeded,
            S::Failed => Self::Failed,
            S::RolledBack => Self::RolledBack,
            S::Cancelled => Self::Cancelled,
            S::Missed => Self::Missed,
        }
    }
}

/// A request as listed (`request list --json`, `GET /requests`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RequestView {
    pub id: String,
    pub status: StatusView,
    pub environment: String,
    pub database: String,
    /// RFC 3339.
    pub restore_point: String,
    pub window_start: String,
    pub window_end: String,
    pub acknowledgements: AcknowledgementsView,
    /// Who submitted it.
    pub requester: String,
    pub reason: Option<String>,
    pub prestage: bool,
    /// An operator's reason for a window sooner than 24 hours ahead.
    pub emergency: Option<String>,
    /// Something that will make the run fail unless the request changes
    /// (a restore point out of retention at the window), found after it was
    /// accepted.
    pub warning: Option<String>,
    pub submitted_at: String,
    pub updated_at: String,
}

impl From<&RestoreRequest> for RequestView {
    fn from(r: &RestoreRequest) -> Self {
        Self {
            id: r.id.to_string(),
            status: r.status.into(),
            environment: r.spec.environment.clone(),
            database: r.spec.database.clone(),
            restore_point: ts(&r.spec.restore_point),
            window_start: ts(&r.spec.window.start),
            window_end: ts(&r.spec.window.end),
            acknowledgements: r.spec.acks.into(),
            requester: r.spec.requester.clone(),
            reason: r.spec.reason.clone(),
            prestage: r.spec.prestage,
            emergency: r.spec.emergency.clone(),
            warning: r.warning.clone(),
            submitted_at: ts(&r.submitted_at),
            updated_at: ts(&r.updated_at),
        }
    }
}

/// One entry of the audit trail.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    pub at: String,
    /// Who: the signed-in person (or application), or the CLI's `--actor`.
    pub actor: String,
    pub from: Option<StatusView>,
    pub to: StatusView,
    pub note: Option<String>,
}

impl From<&RequestEvent> for EventView {
    fn from(e: &RequestEvent) -> Self {
        Self {
            at: ts(&e.at),
            actor: e.actor.clone(),
            from: e.from.map(Into::into),
            to: e.to.into(),
            note: e.note.clone(),
        }
    }
}

/// A run (job) of a request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub id: String,
    /// `running`, `succeeded`, `failed` or `rolled_back`.
    pub status: String,
    pub dry_run: bool,
    /// Step names in order.
    pub plan: Vec<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    pub original_database_id: Option<String>,
    pub restored_database_id: Option<String>,
    pub offline_at: Option<String>,
    pub online_at: Option<String>,
    /// Seconds from offline to online, when both happened.
    pub downtime_secs: Option<f64>,
    /// On a rollback job: the restore it undoes, who asked and why.
    pub rollback_of: Option<RollbackOfView>,
    /// What the original had that the run did not carry over to the
    /// restored database, each said as what to do.
    pub not_carried: Vec<String>,
}

/// What a rollback job undoes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RollbackOfView {
    /// The restore's job.
    pub job: String,
    pub by: String,
    pub reason: Option<String>,
}

impl From<&Job> for JobView {
    fn from(j: &Job) -> Self {
        Self {
            id: j.id.to_string(),
            status: j.status.as_str().to_string(),
            dry_run: j.dry_run,
            plan: j.plan.iter().map(|s| s.as_str().to_string()).collect(),
            created_at: ts(&j.created_at),
            finished_at: j.finished_at.as_ref().map(ts),
            error: j.error.clone(),
            original_database_id: j.facts.original_database_id.clone(),
            restored_database_id: j.facts.restored_database_id.clone(),
            offline_at: j.facts.offline_at.as_ref().map(ts),
            online_at: j.facts.online_at.as_ref().map(ts),
            downtime_secs: j.downtime_secs(),
            rollback_of: j.facts.rollback.as_ref().map(|of| RollbackOfView {
                job: of.job.to_string(),
                by: of.by.clone(),
                reason: of.reason.clone(),
            }),
            not_carried: j.facts.not_carried.clone(),
        }
    }
}

/// The checkpoint of one step of a run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StepView {
    pub name: String,
    /// `pending`, `running`, `waiting`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub error: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub detail: Option<String>,
}

impl From<&StepRecord> for StepView {
    fn from(s: &StepRecord) -> Self {
        Self {
            name: s.step.as_str().to_string(),
            status: s.status.as_str().to_string(),
            attempts: s.attempts,
            error: s.error.clone(),
            started_at: s.started_at.as_ref().map(ts),
            finished_at: s.finished_at.as_ref().map(ts),
            detail: s.detail.clone(),
        }
    }
}

/// A request with its audit trail, its runs, the latest run's steps and
/// the downtime (`request show --json`, `GET /requests/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RequestDetail {
    #[serde(flatten)]
    pub request: RequestView,
    pub events: Vec<EventView>,
    pub jobs: Vec<JobView>,
    /// The latest run.
    pub job: Option<JobView>,
    /// The latest run's steps, in the order they started.
    pub steps: Vec<StepView>,
    pub downtime_secs: Option<f64>,
    pub estimated_downtime_secs: Option<i64>,
    /// Why a run waits (a staged restore, a person's confirmation).
    pub waiting: Option<String>,
    /// The runner (`HOST:PID.START`, the id `pitr serve` prints) holding
    /// the lease of the latest run while it runs; none when no live runner
    /// holds it (not started, finished, parked, or its runner gone and its
    /// lease expired).
    pub runner: Option<String>,
    /// RFC 3339: when that lease expires unless its runner renews it (it
    /// renews every third of the lease's lifetime).
    pub runner_lease_until: Option<String>,
}

impl RequestDetail {
    pub fn new(
        r: &RestoreRequest,
        events: &[RequestEvent],
        jobs: &[Job],
        steps: &[StepRecord],
        estimate: Option<Estimates>,
        waiting: Option<String>,
    ) -> Self {
        let prestage = r.spec.prestage || jobs.last().is_some_and(|j| j.is_prestaged());
        let downtime_secs = jobs.last().and_then(Job::downtime_secs);
        // A rollback has its own, short plan: the run's estimate says nothing of it.
        let estimate = estimate.filter(|_| !jobs.last().is_some_and(Job::is_rollback));
        Self {
            request: r.into(),
            events: events.iter().map(Into::into).collect(),
            jobs: jobs.iter().map(Into::into).collect(),
            job: jobs.last().map(Into::into),
            steps: steps.iter().map(Into::into).collect(),
            downtime_secs,
            estimated_downtime_secs: estimate.map(|e| e.downtime(prestage).num_seconds()),
            waiting,
            runner: None,
            runner_lease_until: None,
        }
    }

    /// With the runner holding the latest run (`lease`, as
    /// [`runner_lease`] reads it).
    pub fn with_runner(mut self, lease: Option<&Lease>) -> Self {
        if let Some(l) = lease {
            self.runner = Some(crate::engine::runner_of(&l.owner).to_string());
            self.runner_lease_until = Some(ts(&l.expires_at));
        }
        self
    }

    /// Reads everything `request show` gives about request `id` (`None`:
    /// no such request).
    pub async fn load(
        store: &SharedStore,
        config: &Config,
        now: DateTime<Utc>,
        id: &RequestId,
    ) -> Result<Option<RequestDetail>, StoreError> {
        let Some(req) = store.get_request(id).await? else {
            return Ok(None);
        };
        let events = store.request_events(id).await?;
        let jobs = store.jobs_for_request(id).await?;
        let steps = match jobs.last() {
            Some(j) => store.steps(&j.id).await?,
            None => Vec::new(),
        };
        let estimate = match config.environment(&req.spec.environment) {
            Some(env) => Some(estimates(store, &config.engine, env).await?),
            None => None,
        };
        let waiting = jobs
            .last()
            .and_then(|j| crate::domain::schedule::waiting_reason(&req, j, &steps, now));
        let lease = runner_lease(store, &jobs, now).await?;
        Ok(Some(
            Self::new(&req, &events, &jobs, &steps, estimate, waiting).with_runner(lease.as_ref()),
        ))
    }
}

/// The live lease of a request's latest run while it runs: whose runner
/// drives it now. `None` when the run is not running or no lease is live.
pub async fn runner_lease(
    store: &SharedStore,
    jobs: &[Job],
    now: DateTime<Utc>,
) -> Result<Option<Lease>, StoreError> {
    let Some(job) = jobs.last().filter(|j| j.status == JobStatus::Running) else {
        return Ok(None);
    };
    Ok(store
        .get_lease(&job.id)
        .await?
        .filter(|l| l.expires_at > now))
}

async fn estimates(
    store: &SharedStore,
    config: &EngineConfig,
    env: &Environment,
) -> Result<Estimates, StoreError> {
    crate::engine::estimates(store, config, env).await
}

/// A finished restore of an environment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RestoreView {
    pub started_at: String,
    pub finished_at: Option<String>,
    pub job: String,
    pub request: String,
    /// RFC 3339, as stored.
    #[schema(value_type = String)]
    pub restore_point: DateTime<Utc>,
    pub restore_secs: Option<f64>,
    pub downtime_secs: Option<f64>,
    pub prestaged: bool,
    /// The rollback job that undid it, if one did.
    pub rolled_back_by: Option<String>,
}

/// A restore undone on request (the original database is live again).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RollbackView {
    pub started_at: String,
    pub finished_at: Option<String>,
    pub job: String,
    /// The restore's job, now undone.
    pub rolled_back: String,
    pub request: String,
    pub downtime_secs: Option<f64>,
    pub reason: Option<String>,
}

/// A deployment of a code version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeploymentView {
    pub at: String,
    pub version: String,
}

/// An environment with its history (`env show --json`,
/// `GET /environments/{name}`): the configured keys, and its restores,
/// rollbacks and deployments, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentDetail {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub environment: Environment,
    pub restores: Vec<RestoreView>,
    pub rollbacks: Vec<RollbackView>,
    pub deployments: Vec<DeploymentView>,
}

impl EnvironmentDetail {
    pub fn new(e: &Environment, history: &[EnvironmentEvent]) -> Self {
        let restores = history
            .iter()
            .filter_map(|h| h.restore().map(|r| (h, r)))
            .map(|(h, r)| RestoreView {
                started_at: ts(&h.at),
                finished_at: r.finished_at.as_ref().map(ts),
                job: r.job.to_string(),
                request: r.request.to_string(),
                restore_point: r.restore_point,
                restore_secs: r.restore_secs,
                downtime_secs: r.downtime_secs,
                prestaged: r.prestaged,
                rolled_back_by: history
                    .iter()
                    .filter_map(|h| h.rollback())
                    .find(|b| b.rolled_back == r.job)
                    .map(|b| b.job.to_string()),
            })
            .collect();
        let rollbacks = history
            .iter()
            .filter_map(|h| h.rollback().map(|r| (h, r)))
            .map(|(h, r)| RollbackView {
                started_at: ts(&h.at),
                finished_at: r.finished_at.as_ref().map(ts),
                job: r.job.to_string(),
                rolled_back: r.rolled_back.to_string(),
                request: r.request.to_string(),
                downtime_secs: r.downtime_secs,
                reason: r.reason.clone(),
            })
            .collect();
        let deployments = history
            .iter()
            .filter_map(|h| {
                h.version().map(|v| DeploymentView {
                    at: ts(&h.at),
                    version: v.to_string(),
                })
            })
            .collect();
        Self {
            environment: e.clone(),
            restores,
            rollbacks,
            deployments,
        }
    }
}

#[cfg(test)]
mod tests;
