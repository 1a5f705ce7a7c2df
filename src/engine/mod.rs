//! The job runner: takes a request through its steps, checkpointing each one
//! in the store before and after its Azure calls, so that a run killed at any
//! moment resumes where it stopped. What to do next is decided by the pure
//! functions in [`crate::domain`]; this module performs it.
pub mod actions;
mod cleanup;
pub mod crash;
mod lease;
pub mod progress;
mod recovery;
pub mod requests;
pub mod scheduler;
mod steps;

use crate::azure::{ArmClient, AzureError};
use crate::clock::SharedClock;
use crate::config::{Config, EngineConfig};
use crate::domain::lifecycle::{transition, InvalidTransition, LifecycleEvent};
use crate::domain::schedule::{self, Estimates};
use crate::domain::{
    job, Environment, Job, JobStatus, RequestEvent, RequestStatus, RestoreRequest, RuleViolation,
    StepName, StepRecord, StepStatus,
};
use crate::store::{SharedStore, StoreError};
use progress::{Progress, ProgressEvent};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Rule(#[from] RuleViolation),
    #[error("{0}")]
    Lifecycle(#[from] InvalidTransition),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Azure(#[from] AzureError),
    #[error("{0}")]
    BadInput(String),
    #[error("interrupted; every checkpoint is written; continue with `pitr resume {request}`")]
    Interrupted { request: String },
    #[error("job {job} {status}: {cause}")]
    RunFailed {
        job: String,
        status: &'static str,
        cause: String,
    },
}

impl EngineError {
    /// 2 for bad input (nothing was changed), 1 for an operation that failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Rule(_) | Self::Lifecycle(_) | Self::BadInput(_) => 2,
            Self::Store(
                StoreError::RequestNotFound(_)
                | StoreError::JobNotFound(_)
                | StoreError::ActiveRequestExists { .. }
                | StoreError::SchemaTooNew { .. }
                | StoreError::UnsupportedUrl(_),
            ) => 2,
            _ => 1,
        }
    }
}

/// A failure inside a step, with the text stored in its checkpoint.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StepError {
    #[error("{0}")]
    Azure(#[from] AzureError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Failed(String),
}

pub struct Engine {
    pub(crate) store: SharedStore,
    pub(crate) azure: ArmClient,
    pub(crate) clock: SharedClock,
    pub(crate) config: EngineConfig,
    pub(crate) environments: Vec<Environment>,
    pub(crate) progress: Arc<dyn Progress>,
    /// Who acts (recorded in the audit trail).
    pub actor: String,
    /// This runner's name in leases: host, process, and a random part.
    owner: String,
    leases: std::sync::Mutex<std::collections::HashMap<String, crate::store::Lease>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// Secrets given in code (demo, benchmarks, tests), by the name of the
    /// environment variable they stand for; otherwise the variable is read.
    secrets: std::collections::HashMap<String, String>,
}

impl Engine {
    pub fn new(
        config: &Config,
        store: SharedStore,
        azure: ArmClient,
        clock: SharedClock,
        progress: Arc<dyn Progress>,
        actor: String,
    ) -> Self {
        Self {
            store,
            azure,
            clock,
            config: config.engine.clone(),
            environments: config.environments.clone(),
            progress,
            actor,
            owner: format!(
                "{}:{}:{}",
                lease::hostname(),
                lease::process_tag(),
                &uuid::Uuid::new_v4().simple().to_string()[..6]
            ),
            leases: std::sync::Mutex::new(Default::default()),
            shutdown: tokio::sync::watch::channel(false).1,
            secrets: Default::default(),
        }
    }

    /// Uses `value` where the config names the environment variable `var`.
    pub fn with_secret(mut self, var: &str, value: &str) -> Self {
        self.secrets.insert(var.to_string(), value.to_string());
        self
    }

    /// Stops runs safely when `stop` becomes true (SIGINT/SIGTERM).
    pub fn with_shutdown(mut self, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        self.shutdown = stop;
        self
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    pub fn environment(&self, name: &str) -> Result<&Environment, EngineError> {
        self.environments
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| RuleViolation::UnknownEnvironment(name.to_string()).into())
    }

    fn event(&self, req: &RestoreRequest, to: RequestStatus, note: Option<String>) -> RequestEvent {
        RequestEvent {
            request_id: req.id.clone(),
            at: self.clock.now(),
            actor: self.actor.clone(),
            from: Some(req.status),
            to,
            note,
        }
    }

    pub async fn request(&self, id: &str) -> Result<RestoreRequest, EngineError> {
        self.store
            .get_request(id)
            .await?
            .ok_or_else(|| StoreError::RequestNotFound(id.to_string()).into())
    }

    /// Starts a run of an accepted request. A dry run rehearses the request
    /// without changing its status.
    pub async fn run(&self, request_id: &str, dry_run: bool) -> Result<Job, EngineError> {
        let req = self.request(request_id).await?;
        let env = self.environment(&req.environment)?.clone();
        let jobs = self.store.jobs_for_request(&req.id).await?;
        if let Some(active) = jobs
            .iter()
            .find(|j| !j.dry_run && j.status == JobStatus::Running)
        {
            return Err(EngineError::BadInput(format!(
                "request {} already has a run in progress (job {}); continue it with `pitr resume {}`",
                req.id, active.id, req.id
            )));
        }
        if dry_run {
            if !matches!(
                req.status,
                RequestStatus::Submitted | RequestStatus::Accepted
            ) {
                return Err(EngineError::BadInput(format!(
                    "request {} is {}; only a submitted or accepted request can be rehearsed",
                    req.id, req.status
                )));
            }
        } else {
            transition(req.status, LifecycleEvent::Start)?;
        }
        // A rehearsal's mock Azure lives only as long as its process: a dry
        // run that did not finish, and that no live process holds, is closed.
        for mut stale in jobs
            .into_iter()
            .filter(|j| j.dry_run && j.status == JobStatus::Running)
        {
            if self.lease_is_free(&stale).await? {
                stale.status = JobStatus::Failed;
                stale.error =
                    Some("dry run abandoned (its process ended before it finished)".into());
                stale.finished_at = Some(self.clock.now());
                self.save_job(&mut stale).await?;
            }
        }
        let now = self.clock.now();
        let job = Job {
            id: uuid::Uuid::new_v4().simple().to_string(),
            request_id: req.id.clone(),
            dry_run,
            status: JobStatus::Running,
            plan: job::plan(req.prestage || env.prestage),
            created_at: now,
            updated_at: now,
            finished_at: None,
            facts: Default::default(),
            error: None,
        };
        // The job first, then the request's status: a crash in between
        // leaves a job that `resume` (or the scheduler) picks up.
        self.store.insert_job(&job).await?;
        if !dry_run {
            self.start_request(&req).await?;
        }
        self.progress.event(ProgressEvent::Note(format!(
            "job {} for request {} on {} ({}){}",
            job.id,
            req.id,
            env.name,
            env.database,
            if dry_run { " [dry run]" } else { "" }
        )));
        self.drive(job).await
    }

    /// Accepted -> Running, recorded.
    async fn start_request(&self, req: &RestoreRequest) -> Result<(), EngineError> {
        let to = transition(req.status, LifecycleEvent::Start)?;
        self.store
            .transition_request(&self.event(req, to, Some("run started".into())))
            .await?;
        Ok(())
    }

    /// Undoes a finished run on request: the original database goes back
    /// under its name (the restored one is kept as `<db>_pitr_<job8>`) and the
    /// environment comes back online. Checkpointed like a run: if interrupted,
    /// `pitr resume` finishes it.
    pub async fn rollback(
        &self,
        request_id: &str,
        reason: Option<String>,
    ) -> Result<Job, EngineError> {
        let req = self.request(request_id).await?;
        let mut job = self
            .store
            .jobs_for_request(&req.id)
            .await?
            .into_iter()
            .rev()
            .find(|j| !j.dry_run)
            .ok_or_else(|| {
                EngineError::BadInput(format!("request {} has no run to roll back", req.id))
            })?;
        match job.status {
            JobStatus::Running => {
                return Err(EngineError::BadInput(format!(
                    "job {} is still running; let it finish, or continue it with `pitr resume {}`",
                    job.id, req.id
                )))
            }
            JobStatus::RolledBack => {
                return Err(EngineError::BadInput(format!(
                    "job {} is already rolled back",
                    job.id
                )))
            }
            JobStatus::Succeeded | JobStatus::Failed => {}
        }
        let steps = self.store.steps(&job.id).await?;
        if !steps
            .iter()
            .any(|s| s.step == StepName::Swap && s.attempts > 0)
        {
            return Err(EngineError::BadInput(format!(
                "job {} never reached the swap: the original database was not replaced, nothing to roll back",
                job.id
            )));
        }
        let env = self.environment(&req.environment)?.clone();
        let later_restore = self
            .store
            .environment_events(&env.name)
            .await?
            .into_iter()
            .any(|e| {
                e.kind == crate::domain::EnvironmentEventKind::Restore && e.at > job.created_at
            });
        if later_restore {
            return Err(EngineError::BadInput(format!(
                "a later restore replaced {}'s database since job {}; rolling this one back would undo it; nothing was changed",
                env.name, job.id
            )));
        }
        let before = job.before_name(&env.database);
        if self
            .azure
            .get_database(&env.database_id(&before))
            .await?
            .is_none()
            && self
                .azure
                .get_database(&env.database_id(&env.database))
                .await?
                .and_then(|d| d.database_id().map(str::to_string))
                != job.facts.original_database_id
        {
            return Err(EngineError::BadInput(format!(
                "the original database ({before}) no longer exists (cleaned up?); it cannot be rolled back"
            )));
        }
        // Check that the reverse swap is possible before touching anything.
        let names = Self::swap_names(&env, &job);
        let seen = self
            .observe(&env, &names)
            .await
            .map_err(|e| EngineError::RunFailed {
                job: job.id.clone(),
                status: "not rolled back",
                cause: e.to_string(),
            })?;
        if let Some(original) = job.facts.original_database_id.as_deref() {
            crate::domain::swap::next_unswap_action(
                &names,
                &seen,
                original,
                job.facts.restored_database_id.as_deref(),
            )
            .map_err(|e| EngineError::BadInput(format!("cannot roll back job {}: {e}", job.id)))?;
        }
        // Hold the job before writing to it (cleanup or another runner may).
        let lease = self
            .store
            .acquire_lease(&job.id, &self.owner, self.clock.now(), self.lease_ttl())
            .await?;
        self.set_lease(lease);
        job.status = JobStatus::Running;
        job.finished_at = None;
        job.facts.recovering = Some(format!(
            "rollback requested by {}{}",
            self.actor,
            reason.map(|r| format!(": {r}")).unwrap_or_default()
        ));
        self.save_job(&mut job).await?;
        self.drive(job).await
    }

    /// Continues the unfinished run of a request where it stopped.
    pub async fn resume(&self, request_id: &str) -> Result<Job, EngineError> {
        let req = self.request(request_id).await?;
        let job = self
            .store
            .jobs_for_request(&req.id)
            .await?
            .into_iter()
            .rev()
            .find(|j| j.status == JobStatus::Running && !j.dry_run)
            .ok_or_else(|| {
                EngineError::BadInput(format!(
                    "request {} has no unfinished run to resume (status {}); start one with `pitr run {}` (an interrupted dry run is started again with `pitr run {} --dry-run`)",
                    req.id, req.status, req.id, req.id
                ))
            })?;
        if req.status == RequestStatus::Accepted {
            // The run was created but its start not recorded (a crash).
            self.start_request(&req).await?;
        }
        self.progress
            .event(ProgressEvent::Note(format!("resuming job {}", job.id)));
        self.drive(job).await
    }

    /// Runs the job's remaining steps, then its recovery if a step failed.
    async fn drive_leased(&self, mut job: Job) -> Result<Job, EngineError> {
        let req = self.request(&job.request_id).await?;
        let env = self.environment(&req.environment)?.clone();
        let est = self.estimates(&env).await?;
        loop {
            if let Some(cause) = job.facts.recovering.clone() {
                return self.recover(&req, &env, job, cause).await;
            }
            let records = self.store.steps(&job.id).await?;
            let Some(step) = job::next_step(&job.plan, &records) else {
                return self.finish(&req, job, JobStatus::Succeeded, None).await;
            };
            if self.waits_for_window(&req, &job, step) {
                self.progress.event(ProgressEvent::Note(format!(
                    "restore staged ahead of the window; the environment goes offline when the window opens at {}: `pitr serve` continues then (or `pitr resume {}`)",
                    req.window.start, req.id
                )));
                return Ok(job);
            }
            if let Some(why) = self.window_forbids(&req, &job, step, &est) {
                self.progress.event(ProgressEvent::StepFailed {
                    step,
                    error: why.clone(),
                });
                job.facts.recovering = Some(format!("{step}: {why}"));
                self.save_job(&mut job).await?;
                continue;
            }
            let mut rec = records
                .into_iter()
                .find(|r| r.step == step)
                .unwrap_or_else(|| StepRecord::pending(step));
            rec.status = StepStatus::Running;
            rec.attempts += 1;
            rec.error = None;
            rec.started_at.get_or_insert(self.clock.now());
            self.checkpoint(&job.id, &rec).await?;
            crash::at(step, "started");
            self.progress.event(ProgressEvent::StepStarted {
                step,
                attempt: rec.attempts,
            });
            let started = std::time::Instant::now();
            let limit = self.step_timeout(step);
            let span = tracing::info_span!("step", step = %step, attempt = rec.attempts);
            tracing::info!(parent: &span, "step started");
            let outcome = tokio::time::timeout(
                limit + Duration::from_secs(60),
                tracing::Instrument::instrument(
                    self.perform(step, &req, &env, &mut job, &mut rec),
                    span.clone(),
                ),
            )
            .await
            .unwrap_or_else(|_| {
                Err(StepError::Failed(format!(
                    "step {step} did not finish within its timeout of {}s",
                    limit.as_secs()
                )))
            });
            match outcome {
                Ok(summary) => {
                    tracing::info!(parent: &span, %summary, "step succeeded");
                    rec.status = StepStatus::Succeeded;
                    rec.finished_at = Some(self.clock.now());
                    self.checkpoint(&job.id, &rec).await?;
                    crash::at(step, "done");
                    self.progress.event(ProgressEvent::StepDone {
                        step,
                        elapsed: started.elapsed(),
                        summary,
                    });
                }
                // Losing the lease is not the step's failure: stop writing.
                Err(StepError::Store(e @ StoreError::LeaseLost { .. })) => return Err(e.into()),
                Err(e) => {
                    let error = e.to_string();
                    tracing::warn!(parent: &span, %error, "step failed");
                    rec.status = StepStatus::Failed;
                    rec.finished_at = Some(self.clock.now());
                    rec.error = Some(error.clone());
                    self.checkpoint(&job.id, &rec).await?;
                    self.progress.event(ProgressEvent::StepFailed {
                        step,
                        error: error.clone(),
                    });
                    job.facts.recovering = Some(format!("{step}: {error}"));
                    self.save_job(&mut job).await?;
                }
            }
        }
    }

    /// A pre-staged run stops before its first downtime step until the
    /// window opens (the job stays running, its lease released).
    fn waits_for_window(&self, req: &RestoreRequest, job: &Job, step: StepName) -> bool {
        !job.dry_run
            && job.facts.recovering.is_none()
            && job.is_prestaged()
            && schedule::needs_window(step)
            && self.clock.now() < req.window.start
    }

    /// Expected step durations for an environment.
    pub async fn estimates(&self, env: &Environment) -> Result<Estimates, StoreError> {
        estimates(&self.store, &self.config, env).await
    }

    /// Until the swap, a step is not started if the rest of the run (this
    /// step and every later one, by their estimates) would end after the
    /// window: the run stops while the original is still in place. From the
    /// swap on the run is finished rather than undone. A run started by hand
    /// before its window opens is the operator's choice and is not held to it.
    fn window_forbids(
        &self,
        req: &RestoreRequest,
        job: &Job,
        step: StepName,
        est: &Estimates,
    ) -> Option<String> {
        if job.dry_run
            || !matches!(
                step,
                StepName::Preflight | StepName::Offline | StepName::Restore | StepName::Swap
            )
        {
            return None;
        }
        let now = self.clock.now();
        if now < req.window.start {
            return None;
        }
        let rest = job
            .plan
            .iter()
            .skip_while(|s| **s != step)
            .map(|s| est.of(*s))
            .fold(chrono::Duration::zero(), |a, b| a + b);
        (now + rest > req.window.end).then(|| {
            format!(
                "not started: the rest of the run ({} min by the estimates) would end after the window closes at {}; reschedule the request",
                rest.num_minutes(),
                req.window.end
            )
        })
    }

    /// A finished restore in the environment's history: it bounds later
    /// restore points and gives the durations that estimates are made from.
    async fn record_restore(&self, req: &RestoreRequest, job: &Job) -> Result<(), StoreError> {
        let steps = self.store.steps(&job.id).await?;
        let secs = |s: StepName| {
            steps.iter().find(|r| r.step == s).and_then(|r| {
                Some((r.finished_at? - r.started_at?).num_milliseconds() as f64 / 1000.0)
            })
        };
        let downtime = match (job.facts.offline_at, job.facts.online_at) {
            (Some(off), Some(on)) => Some((on - off).num_milliseconds() as f64 / 1000.0),
            _ => None,
        };
        let detail = serde_json::json!({
            "job": job.id,
            "request": req.id,
            "restore_point": req.restore_point,
            "restore_secs": secs(StepName::Restore),
            "downtime_secs": downtime,
            "prestaged": job.is_prestaged(),
        });
        self.store
            .add_environment_event(&crate::domain::EnvironmentEvent {
                environment: req.environment.clone(),
                kind: crate::domain::EnvironmentEventKind::Restore,
                at: job.created_at,
                finished_at: job.facts.online_at.or(job.finished_at),
                version: None,
                detail: Some(detail.to_string()),
            })
            .await
    }

    pub(crate) fn step_timeout(&self, step: StepName) -> Duration {
        Duration::from_secs(match step {
            StepName::Restore => self.config.restore_timeout_secs,
            StepName::Offline | StepName::Online | StepName::Sync | StepName::MrReset => {
                self.config.action_timeout_secs
            }
            _ => self.config.step_timeout_secs,
        })
    }

    /// Ends the job and, unless it was a rehearsal, its request.
    async fn finish(
        &self,
        req: &RestoreRequest,
        mut job: Job,
        status: JobStatus,
        cause: Option<String>,
    ) -> Result<Job, EngineError> {
        job.status = status;
        job.error = cause.clone();
        job.finished_at = Some(self.clock.now());
        self.save_job(&mut job).await?;
        if status == JobStatus::Succeeded && !job.dry_run {
            self.record_restore(req, &job).await?;
        }
        if !job.dry_run {
            let current = self.request(&req.id).await?;
            let event = match status {
                JobStatus::Succeeded => LifecycleEvent::Succeed,
                JobStatus::RolledBack => LifecycleEvent::RollBack,
                _ => LifecycleEvent::Fail,
            };
            if let Ok(to) = transition(current.status, event) {
                self.store
                    .transition_request(&self.event(&current, to, cause.clone()))
                    .await?;
            }
        }
        self.progress.event(ProgressEvent::Note(format!(
            "job {} {}{}",
            job.id,
            status.as_str(),
            cause
                .as_deref()
                .map(|c| format!(": {c}"))
                .unwrap_or_default()
        )));
        match status {
            JobStatus::Succeeded => Ok(job),
            _ => Err(EngineError::RunFailed {
                job: job.id.clone(),
                status: status.as_str(),
                cause: cause.unwrap_or_default(),
            }),
        }
    }
}

/// Expected step durations for an environment; the restore's from the
/// environment's own history of restores when there is one.
pub async fn estimates(
    store: &SharedStore,
    config: &EngineConfig,
    env: &Environment,
) -> Result<Estimates, StoreError> {
    let history = store.environment_events(&env.name).await?;
    let recent: Vec<f64> = history
        .iter()
        .filter(|e| e.kind == crate::domain::EnvironmentEventKind::Restore)
        .filter_map(|e| e.detail.as_deref())
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|v| v["restore_secs"].as_f64())
        .collect();
    let e = &config.estimates;
    let secs = |s: u64| chrono::Duration::seconds(s as i64);
    Ok(Estimates {
        preflight: secs(e.preflight_secs),
        offline: secs(e.offline_secs),
        restore: schedule::restore_estimate(&recent, secs(e.restore_secs)),
        swap: secs(e.swap_secs),
        sync: secs(e.sync_secs),
        mr_reset: secs(e.mr_reset_secs),
        online: secs(e.online_secs),
        verify: secs(e.verify_secs),
    })
}
