//! A rollback is a job of its own: it undoes a finished restore with its
//! own steps (offline, the reverse swap, online, verify), its own downtime
//! and its own line in the environment's history. The request keeps its
//! status until the rollback ends; then it is `rolled_back` if the original
//! database is back, and unchanged (with a line in its audit trail) if not.
use super::progress::ProgressEvent;
use super::{crash, steps, Engine, EngineError, Outcome, StepError};
use crate::domain::job::RollbackOf;
use crate::domain::lifecycle::{transition, LifecycleEvent};
use crate::domain::request::note;
use crate::domain::rollback;
use crate::domain::step::Checkpoints;
use crate::domain::{
    Environment, EnvironmentEvent, EnvironmentEventKind, HistoryEntry, Job, JobFacts, JobId,
    JobStatus, RequestId, RestoreRequest, RollbackRecord, StepName,
};

impl Engine {
    /// Undoes a finished run on request, as a job of its own (its own
    /// steps, downtime and line in the environment's history): the
    /// environment goes offline, the original database goes back under its
    /// name (the restored one is kept as `<db>_pitr_<job8>`) and the
    /// environment comes back online. Checked in full before anything
    /// changes; checkpointed like a run, so `pitr resume` finishes it.
    pub async fn rollback(
        &self,
        request_id: &RequestId,
        reason: Option<String>,
    ) -> Result<Outcome, EngineError> {
        let job = self.prepare_rollback(request_id, reason).await?;
        self.drive(job).await
    }

    /// The first half of [`Engine::rollback`]: every check, then the
    /// rollback job claimed with its lease; [`Engine::drive_job`] carries it
    /// out (the service answers between the two).
    pub async fn prepare_rollback(
        &self,
        request_id: &RequestId,
        reason: Option<String>,
    ) -> Result<Job, EngineError> {
        let req = self.request(request_id).await?;
        let jobs = self.store.jobs_for_request(&req.id).await?;
        let target = rollback::target(&req.id, &jobs)?.clone();
        let env = self.environment(&req.spec.environment)?.clone();
        // Held while the rollback is checked and claimed, so that the
        // cleanup of its original cannot start meanwhile.
        let target_lease = self
            .store
            .acquire_lease(&target.id, &self.owner, self.clock.now(), self.lease_ttl())
            .await?;
        let claimed = self.claim_rollback(&req, &env, &target, reason).await;
        if let Err(e) = self.store.release_lease(&target_lease).await {
            tracing::warn!(job = %target.id, error = %e, "could not release the lease of the rolled-back job");
        }
        let job = claimed?;
        self.progress.event(ProgressEvent::Note(format!(
            "job {} rolls back job {} of request {} on {} ({})",
            job.id, target.id, req.id, env.name, env.database
        )));
        Ok(job)
    }

    /// The checks of a rollback, then its job claimed with its start in the
    /// request's audit trail.
    async fn claim_rollback(
        &self,
        req: &RestoreRequest,
        env: &crate::domain::Environment,
        target: &Job,
        reason: Option<String>,
    ) -> Result<Job, EngineError> {
        let records = self.store.steps(&target.id).await?;
        let later_restore = self
            .store
            .environment_events(&env.name)
            .await?
            .iter()
            .any(|e| e.kind() == EnvironmentEventKind::Restore && e.at > target.created_at);
        rollback::check_job(
            target,
            records.started(StepName::Swap),
            later_restore,
            &env.name,
        )?;
        let names = steps::swap_names(env, target);
        let seen = self
            .observe(env, &names)
            .await
            .map_err(|e| EngineError::Stuck {
                job: target.id.to_string(),
                status: "not rolled back",
                cause: e.to_string(),
            })?;
        rollback::check_names(target, &names, &seen)?;
        let now = self.clock.now();
        let job = Job {
            id: JobId::generate(),
            request_id: req.id.clone(),
            dry_run: false,
            status: JobStatus::Running,
            plan: steps::rollback_plan(),
            created_at: now,
            updated_at: now,
            finished_at: None,
            facts: JobFacts {
                original_database_id: target.facts.original_database_id.clone(),
                restored_database_id: target.facts.restored_database_id.clone(),
                rollback: Some(RollbackOf {
                    job: target.id.clone(),
                    by: self.actor.clone(),
                    reason: reason.clone(),
                }),
                ..Default::default()
            },
            error: None,
        };
        // The request keeps its status until the rollback ends; the start
        // is in its audit trail.
        let start = self.event(
            req,
            req.status,
            Some(format!(
                "{}: job {} is rolled back by job {}{}",
                note::ROLLBACK_STARTED,
                target.id.tag(),
                job.id.tag(),
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            )),
        );
        let lease = self
            .store
            .claim_run(&job, Some(&start), &self.owner, now, self.lease_ttl(), None)
            .await?;
        self.set_lease(lease);
        Ok(job)
    }

    /// Ends a rollback job. `original_back`: the original database is under
    /// the environment's name again, so the restore is undone whatever else
    /// failed.
    pub(super) async fn finish_rollback(
        &self,
        req: &RestoreRequest,
        mut job: Job,
        status: JobStatus,
        original_back: bool,
        cause: Option<String>,
        problems: bool,
    ) -> Result<Outcome, EngineError> {
        let Some(of) = job.facts.rollback.clone() else {
            return Err(EngineError::BadInput(format!(
                "job {} is not a rollback",
                job.id
            )));
        };
        job.status = status;
        job.error = cause.clone();
        job.finished_at = Some(self.clock.now());
        self.save_job(&mut job).await?;
        let current = self.request(&req.id).await?;
        if original_back {
            if let Some(mut undone) = self.store.get_job(&of.job).await? {
                if undone.status != JobStatus::RolledBack {
                    undone.status = JobStatus::RolledBack;
                    self.save_job(&mut undone).await?;
                }
            }
            self.record_rollback(req, &job, &of).await?;
            if let Ok(to) = transition(current.status, LifecycleEvent::RollBack) {
                let note = format!(
                    "rolled back by job {}{}{}",
                    job.id.tag(),
                    of.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default(),
                    cause
                        .as_deref()
                        .map(|c| format!(" (with a problem: {c})"))
                        .unwrap_or_default()
                );
                self.store
                    .transition_request(&self.event(&current, to, Some(note)))
                    .await?;
            }
        } else {
            // Nothing was rolled back: the restore stands; the audit trail says so.
            let note = format!(
                "{}: job {}: {}; the restored database is still live",
                note::ROLLBACK_FAILED,
                job.id.tag(),
                cause.as_deref().unwrap_or("unknown cause")
            );
            self.store
                .transition_request(&self.event(&current, current.status, Some(note)))
                .await?;
        }
        self.progress.event(ProgressEvent::Note(format!(
            "job {} {}: {}{}",
            job.id,
            status.as_str(),
            if original_back {
                format!("job {} is rolled back", of.job)
            } else {
                format!("job {} is not rolled back", of.job)
            },
            cause
                .as_deref()
                .map(|c| format!("; {c}"))
                .unwrap_or_default()
        )));
        Ok(Outcome::of(job, cause, problems))
    }

    async fn record_rollback(
        &self,
        req: &RestoreRequest,
        job: &Job,
        of: &RollbackOf,
    ) -> Result<(), crate::store::StoreError> {
        self.store
            .add_environment_event(&EnvironmentEvent {
                environment: req.spec.environment.clone(),
                at: job.created_at,
                entry: HistoryEntry::Rollback(RollbackRecord {
                    job: job.id.clone(),
                    rolled_back: of.job.clone(),
                    request: req.id.clone(),
                    finished_at: job.facts.online_at.or(job.finished_at),
                    downtime_secs: job.downtime_secs(),
                    reason: of.reason.clone(),
                }),
            })
            .await
    }

    /// After a step of a rollback failed for good: a reverse swap that
    /// started is finished first (the environment must not come online
    /// between the renames; if it cannot be finished, the environment stays
    /// offline and the job waits for `pitr resume`), then the environment is
    /// brought back online.
    pub(super) async fn recover_rollback(
        &self,
        req: &RestoreRequest,
        env: &Environment,
        mut job: Job,
        cause: String,
    ) -> Result<Outcome, EngineError> {
        crash::point("recovery.started");
        let records = self.store.steps(&job.id).await?;
        let mut original_back = records.succeeded(StepName::Swap);
        self.note(StepName::Online, format!("rollback failed: {cause}"));
        if records.started(StepName::Swap) && !original_back {
            self.unswap_or_stay_offline(req, env, &mut job, &cause, "finishing the reverse swap")
                .await?;
            original_back = true;
        }
        let mut problems = Vec::new();
        crash::point("recovery.before_online");
        if records.started(StepName::Offline) {
            match self
                .recovery_action(StepName::Online, env, &mut job, &records)
                .await
            {
                Ok(_) => job.facts.online_at = Some(self.clock.now()),
                Err(StepError::Waiting(message)) => return Ok(Outcome::Waiting { job, message }),
                Err(e) => problems.push(format!(
                    "bringing the environment online failed: {e}; start the services by hand"
                )),
            }
        }
        let cause = if problems.is_empty() {
            cause
        } else {
            format!("{cause}; {}", problems.join("; "))
        };
        self.finish_rollback(
            req,
            job,
            JobStatus::Failed,
            original_back,
            Some(cause),
            !problems.is_empty(),
        )
        .await
    }
}
