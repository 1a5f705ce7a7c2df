//! The use cases that set a job going: `run` starts one, `resume` continues
//! an interrupted one (`rollback.rs` undoes a finished one), `confirm` records a
//! person's word on a step that waits for one. Each checks what it
//! may do before changing anything, then hands the job to the step loop.
use super::progress::ProgressEvent;
use super::steps::action::Confirmation;
use super::{steps, Engine, EngineError, Outcome};
use crate::domain::job;
use crate::domain::lifecycle::{transition, LifecycleEvent};
use crate::domain::{
    Job, JobId, JobStatus, RequestId, RequestStatus, RestoreRequest, StepName, StepStatus,
};

impl Engine {
    /// Starts a run of an accepted request. A dry run rehearses the request
    /// without changing its status. The start is one atomic claim in the
    /// store (job, request status and lease together): of two runners
    /// starting the same request, exactly one gets it.
    pub async fn run(&self, request_id: &RequestId, dry_run: bool) -> Result<Outcome, EngineError> {
        let job = self.start(request_id, dry_run).await?;
        self.drive(job).await
    }

    /// The first half of [`Engine::run`]: checks, claims the run and its
    /// lease, and returns the job to drive with [`Engine::drive_job`] (the
    /// service answers between the two).
    pub async fn start(&self, request_id: &RequestId, dry_run: bool) -> Result<Job, EngineError> {
        self.claim(request_id, dry_run, None).await
    }

    /// [`Engine::start`] of a real run by the scheduler, under its limit on
    /// runs at once: refused (`StoreError::LimitReached`, nothing changed)
    /// when `limit` runs are driven already by all the runners sharing the
    /// store.
    pub async fn start_within(
        &self,
        request_id: &RequestId,
        limit: usize,
    ) -> Result<Job, EngineError> {
        self.claim(request_id, false, Some(limit)).await
    }

    async fn claim(
        &self,
        request_id: &RequestId,
        dry_run: bool,
        limit: Option<usize>,
    ) -> Result<Job, EngineError> {
        let req = self.request(request_id).await?;
        let env = self.environment(&req.spec.environment)?.clone();
        let start = if dry_run {
            if !matches!(
                req.status,
                RequestStatus::Submitted | RequestStatus::Accepted
            ) {
                return Err(EngineError::BadInput(format!(
                    "request {} is {}; only a submitted or accepted request can be rehearsed",
                    req.id, req.status
                )));
            }
            None
        } else {
            let to = transition(req.status, LifecycleEvent::Start).map_err(|e| e.of(&req.id))?;
            Some(self.event(&req, to, Some("run started".into())))
        };
        self.close_stale_jobs(&req).await?;
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
        let lease = self
            .store
            .claim_run(
                &job,
                start.as_ref(),
                &self.owner,
                now,
                self.lease_ttl(),
                limit,
            )
            .await?;
        self.set_lease(lease);
        self.progress.event(ProgressEvent::Note(format!(
            "job {} for request {} on {} ({}){}",
            job.id,
            req.id,
            env.name,
            env.database,
            if dry_run { " [dry run]" } else { "" }
        )));
        Ok(job)
    }

    /// Drives a job this engine started or prepared, to its end.
    pub async fn drive_job(&self, job: Job) -> Result<Outcome, EngineError> {
        self.drive(job).await
    }

    /// Closes jobs that are running but that nothing will ever drive: a
    /// rehearsal whose process ended (its mock Azure lived only as long as
    /// it did), or a job whose start was never recorded and that never
    /// acted (before starts were atomic claims).
    async fn close_stale_jobs(&self, req: &RestoreRequest) -> Result<(), EngineError> {
        for mut stale in self.store.jobs_for_request(&req.id).await? {
            if stale.status != JobStatus::Running || !self.lease_is_free(&stale).await? {
                continue;
            }
            let why = if stale.dry_run {
                "dry run abandoned (its process ended before it finished)"
            } else if job::is_orphan(req, &stale, self.store.steps(&stale.id).await?.len()) {
                "abandoned: its start was never recorded and it never acted"
            } else {
                continue;
            };
            stale.status = JobStatus::Failed;
            stale.error = Some(why.into());
            stale.finished_at = Some(self.clock.now());
            self.save_job(&mut stale).await?;
        }
        Ok(())
    }

    /// Continues the unfinished run of a request where it stopped: only the
    /// request's current run, and only while the request is running.
    pub async fn resume(&self, request_id: &RequestId) -> Result<Outcome, EngineError> {
        let job = self.resumable(request_id).await?;
        self.progress
            .event(ProgressEvent::Note(format!("resuming job {}", job.id)));
        self.drive(job).await
    }

    /// The request's unfinished run that [`Engine::resume`] would continue.
    pub async fn resumable(&self, request_id: &RequestId) -> Result<Job, EngineError> {
        let req = self.request(request_id).await?;
        let jobs = self.store.jobs_for_request(&req.id).await?;
        Ok(job::resumable(&req, &jobs)?.clone())
    }
}

impl Engine {
    /// Records a person's word on a step that waits for one (a `manual`
    /// action, or a webhook whose callback did not come), in the audit trail
    /// too, then continues the run. `id` is the job's id or its request's.
    /// With `failure`, the step fails with that reason and the run recovers.
    pub async fn confirm(
        &self,
        id: &str,
        step: StepName,
        failure: Option<String>,
    ) -> Result<Outcome, EngineError> {
        let job = self.record_confirmation(id, step, failure, None).await?;
        self.progress.event(ProgressEvent::Note(format!(
            "{step} of job {} confirmed; continuing the run",
            job.id
        )));
        self.drive(job).await
    }

    /// The confirmation itself, checkpointed and audited, under the job's
    /// lease (kept: the caller continues the run or releases it). `via`
    /// says where the word came from when not from this engine's actor
    /// (a webhook's callback).
    pub async fn record_confirmation(
        &self,
        id: &str,
        step: StepName,
        failure: Option<String>,
        via: Option<String>,
    ) -> Result<Job, EngineError> {
        let job = match self.store.get_job(&JobId::from(id)).await? {
            Some(job) => job,
            None => {
                let req = self.request(&RequestId::from(id)).await?;
                let jobs = self.store.jobs_for_request(&req.id).await?;
                job::resumable(&req, &jobs)
                    .map_err(|e| EngineError::BadInput(e.to_string()))?
                    .clone()
            }
        };
        let req = self.request(&job.request_id).await?;
        let jobs = self.store.jobs_for_request(&req.id).await?;
        if job::resumable(&req, &jobs).map(|j| &j.id) != Ok(&job.id) {
            return Err(EngineError::BadInput(format!(
                "job {} is not the running run of request {} (request {}, job {}); nothing to confirm",
                job.id,
                req.id,
                req.status,
                job.status.as_str()
            )));
        }
        let mut rec = self
            .store
            .steps(&job.id)
            .await?
            .into_iter()
            .find(|r| r.step == step)
            .filter(|r| r.status == StepStatus::Waiting)
            .ok_or_else(|| {
                EngineError::BadInput(format!(
                    "step {step} of job {} (request {}) is not waiting for a confirmation; the request's steps show where the run is",
                    job.id, req.id
                ))
            })?;
        let lease = self
            .store
            .acquire_lease(&job.id, &self.owner, self.clock.now(), self.lease_ttl())
            .await?;
        self.set_lease(lease);
        let from = via
            .as_deref()
            .map(|v| format!(" ({v})"))
            .unwrap_or_default();
        let note = match &failure {
            Some(reason) => format!("{step} reported not done{from}: {reason}"),
            None => format!("{step} confirmed done{from}"),
        };
        rec.external_ref = Some(
            Confirmation {
                by: via.unwrap_or_else(|| self.actor.clone()),
                at: self.clock.now(),
                failed: failure.is_some(),
                reason: failure,
            }
            .into_checkpoint(),
        );
        rec.status = StepStatus::Running;
        self.checkpoint(&job.id, &rec).await?;
        self.store
            .transition_request(&self.event(&req, req.status, Some(note)))
            .await?;
        Ok(job)
    }
}
