//! The use cases that set a job going: `run` starts one, `resume` continues
//! an interrupted one, `rollback` undoes a finished one. Each checks what it
//! may do before changing anything, then hands the job to the step loop.
use super::progress::ProgressEvent;
use super::{steps, Engine, EngineError, Outcome};
use crate::domain::lifecycle::{transition, LifecycleEvent};
use crate::domain::rollback;
use crate::domain::step::Checkpoints;
use crate::domain::{
    EnvironmentEventKind, Job, JobId, JobStatus, RequestId, RequestStatus, RestoreRequest, StepName,
};

impl Engine {
    /// Starts a run of an accepted request. A dry run rehearses the request
    /// without changing its status.
    pub async fn run(&self, request_id: &RequestId, dry_run: bool) -> Result<Outcome, EngineError> {
        let req = self.request(request_id).await?;
        let env = self.environment(&req.spec.environment)?.clone();
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
        let est = self.estimates(&env).await?;
        let job = Job {
            id: JobId::generate(),
            request_id: req.id.clone(),
            dry_run,
            status: JobStatus::Running,
            plan: steps::plan(&est, req.spec.prestage || env.prestage),
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

    /// Continues the unfinished run of a request where it stopped.
    pub async fn resume(&self, request_id: &RequestId) -> Result<Outcome, EngineError> {
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

    /// Undoes a finished run on request: the original database goes back
    /// under its name (the restored one is kept as `<db>_pitr_<job8>`) and the
    /// environment comes back online. Checked in full before anything
    /// changes; checkpointed like a run, so `pitr resume` finishes it.
    pub async fn rollback(
        &self,
        request_id: &RequestId,
        reason: Option<String>,
    ) -> Result<Outcome, EngineError> {
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
        let env = self.environment(&req.spec.environment)?.clone();
        let records = self.store.steps(&job.id).await?;
        let later_restore = self
            .store
            .environment_events(&env.name)
            .await?
            .iter()
            .any(|e| e.kind() == EnvironmentEventKind::Restore && e.at > job.created_at);
        rollback::check_job(
            &job,
            records.started(StepName::Swap),
            later_restore,
            &env.name,
        )?;
        let names = steps::swap_names(&env, &job);
        let seen = self
            .observe(&env, &names)
            .await
            .map_err(|e| EngineError::Stuck {
                job: job.id.to_string(),
                status: "not rolled back",
                cause: e.to_string(),
            })?;
        rollback::check_names(&job, &names, &seen)?;
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
}
