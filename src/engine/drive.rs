//! The step loop of one job, run under its lease (see `lease.rs`): the next
//! step from the checkpoints, the window's say on it, the step itself with
//! its timeout and checkpoints, and how the job ends.
use super::progress::ProgressEvent;
use super::{crash, steps, Engine, EngineError, Outcome, StepError};
use crate::domain::lifecycle::{transition, LifecycleEvent};
use crate::domain::step::next_step;
use crate::domain::window::{window_decision, RunFacts, WindowDecision};
use crate::domain::{
    Environment, Job, JobStatus, RestoreRequest, StepName, StepRecord, StepStatus,
};
use crate::store::StoreError;
use std::time::Duration;

/// The environment is down: taken offline by this job and not yet back.
fn is_down(job: &Job) -> bool {
    job.facts.offline_at.is_some() && job.facts.online_at.is_none()
}

/// What one attempt of a step came to.
pub(super) enum StepEnd {
    Succeeded(String),
    Failed(String),
    /// Waits for a person or a callback.
    Waiting(String),
}

impl Engine {
    /// Runs the job's remaining steps, then its recovery if a step failed.
    pub(super) async fn drive_leased(&self, mut job: Job) -> Result<Outcome, EngineError> {
        let req = self.request(&job.request_id).await?;
        let env = self.environment(&req.spec.environment)?.clone();
        let est = self.estimates(&env).await?;
        // A store that fails mid-run stops it; the person is told where the
        // environment stands and how to continue.
        let stopped = |job: Option<&Job>, e: EngineError| match e {
            EngineError::Store(cause) if cause.is_failure() => EngineError::StoreFailed {
                request: req.id.clone(),
                environment: job.map(is_down),
                cause,
            },
            other => other,
        };
        loop {
            if let Some(cause) = job.facts.recovering.clone() {
                return self
                    .recover(&req, &env, job, cause)
                    .await
                    .map_err(|e| stopped(None, e));
            }
            let records = self
                .store
                .steps(&job.id)
                .await
                .map_err(|e| stopped(Some(&job), e.into()))?;
            let Some(step) = next_step(&job.plan, &records) else {
                let up = job.clone();
                return self
                    .finish(&req, job, JobStatus::Succeeded, None)
                    .await
                    .map_err(|e| stopped(Some(&up), e));
            };
            let run = RunFacts {
                window: req.spec.window,
                plan: &job.plan,
                dry_run: job.dry_run,
                prestaged: job.is_prestaged(),
            };
            // A rollback is asked for when it is needed: no window holds it.
            let decision = if job.is_rollback() {
                WindowDecision::Go
            } else {
                window_decision(run, step, &est, self.clock.now())
            };
            match decision {
                WindowDecision::Go => {}
                WindowDecision::Park => {
                    self.progress.event(ProgressEvent::Note(format!(
                        "restore staged ahead of the window; the environment goes offline when the window opens at {}: `pitr serve` continues then (or `pitr resume {}`)",
                        crate::domain::time::show(req.spec.window.start), req.id
                    )));
                    return Ok(Outcome::Staged(job));
                }
                WindowDecision::Stop(why) => {
                    self.progress.event(ProgressEvent::StepFailed {
                        step,
                        error: why.clone(),
                    });
                    job.facts.recovering = Some(format!("{step}: {why}"));
                    self.save_job(&mut job)
                        .await
                        .map_err(|e| stopped(Some(&job), e.into()))?;
                    continue;
                }
            }
            let rec = records
                .into_iter()
                .find(|r| r.step == step)
                .unwrap_or_else(|| StepRecord::pending(step));
            let end = self.execute_step(step, &req, &env, &mut job, rec).await;
            match end.map_err(|e| stopped(Some(&job), e))? {
                StepEnd::Succeeded(_) => {}
                StepEnd::Waiting(message) => return Ok(Outcome::Waiting { job, message }),
                StepEnd::Failed(error) => {
                    job.facts.recovering = Some(format!("{step}: {error}"));
                    self.save_job(&mut job)
                        .await
                        .map_err(|e| stopped(Some(&job), e.into()))?;
                }
            }
        }
    }

    /// One attempt of a step: checkpointed as running, performed within its
    /// timeout, checkpointed with its end. Losing the lease is not the
    /// step's failure: it stops the job (nothing more may be written).
    pub(super) async fn execute_step(
        &self,
        step: StepName,
        req: &RestoreRequest,
        env: &Environment,
        job: &mut Job,
        mut rec: StepRecord,
    ) -> Result<StepEnd, EngineError> {
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
        if step == StepName::Offline && rec.attempts == 1 && !job.is_rollback() {
            // Scheduler lag: the window opened, the environment goes down now.
            let lag = self.clock.now() - req.spec.window.start;
            if lag >= chrono::Duration::zero() {
                self.azure
                    .metrics()
                    .scheduler_lag
                    .observe(lag.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6);
            }
        }
        let limit = self.step_timeout(step);
        let span = tracing::info_span!("step", step = %step, attempt = rec.attempts);
        tracing::info!(parent: &span, "step started");
        let mut cx = steps::StepCx {
            req,
            env,
            job,
            rec: &mut rec,
        };
        let outcome = tokio::time::timeout(
            limit + Duration::from_secs(60),
            tracing::Instrument::instrument(self.perform(step, &mut cx), span.clone()),
        )
        .await
        .unwrap_or_else(|_| {
            Err(StepError::Failed(format!(
                "step {step} did not finish within its timeout of {}s",
                limit.as_secs()
            )))
        });
        rec.finished_at = Some(self.clock.now());
        let metrics = self.azure.metrics();
        let took = started.elapsed().as_secs_f64();
        match &outcome {
            Ok(_) => metrics.step_finished(step.as_str(), "succeeded", took),
            Err(StepError::Waiting(_)) => {}
            Err(_) => metrics.step_finished(step.as_str(), "failed", took),
        }
        match outcome {
            Ok(summary) => {
                tracing::info!(parent: &span, %summary, "step succeeded");
                rec.status = StepStatus::Succeeded;
                self.checkpoint(&job.id, &rec).await?;
                crash::at(step, "done");
                self.progress.event(ProgressEvent::StepDone {
                    step,
                    elapsed: started.elapsed(),
                    summary: summary.clone(),
                });
                Ok(StepEnd::Succeeded(summary))
            }
            // Neither a lost lease nor a failing store is the step's
            // failure: the run stops where it is and resumes later.
            Err(StepError::Store(e))
                if e.is_failure() || matches!(e, StoreError::LeaseLost { .. }) =>
            {
                Err(e.into())
            }
            Err(StepError::Waiting(message)) => {
                rec.status = StepStatus::Waiting;
                rec.finished_at = None;
                self.checkpoint(&job.id, &rec).await?;
                self.progress.event(ProgressEvent::Note(message.clone()));
                Ok(StepEnd::Waiting(message))
            }
            Err(e) => {
                let error = e.to_string();
                tracing::warn!(parent: &span, %error, "step failed");
                rec.status = StepStatus::Failed;
                rec.error = Some(error.clone());
                self.checkpoint(&job.id, &rec).await?;
                self.progress.event(ProgressEvent::StepFailed {
                    step,
                    error: error.clone(),
                });
                Ok(StepEnd::Failed(error))
            }
        }
    }

    /// The deadline of a step, from the `[engine]` key its definition names.
    pub(crate) fn step_timeout(&self, step: StepName) -> Duration {
        steps::def(step).timeout.of(step, &self.config)
    }

    /// Ends the job and, unless it was a rehearsal, its request.
    pub(super) async fn finish(
        &self,
        req: &RestoreRequest,
        job: Job,
        status: JobStatus,
        cause: Option<String>,
    ) -> Result<Outcome, EngineError> {
        let event = match status {
            JobStatus::Succeeded => LifecycleEvent::Succeed,
            JobStatus::RolledBack => LifecycleEvent::RollBack,
            _ => LifecycleEvent::Fail,
        };
        self.finish_with(req, job, status, event, cause).await
    }

    /// Ends the job with `status` and moves its request with `event`.
    pub(super) async fn finish_with(
        &self,
        req: &RestoreRequest,
        mut job: Job,
        status: JobStatus,
        event: LifecycleEvent,
        cause: Option<String>,
    ) -> Result<Outcome, EngineError> {
        if job.is_rollback() {
            let back = status == JobStatus::Succeeded;
            return self
                .finish_rollback(req, job, status, back, cause, false)
                .await;
        }
        job.status = status;
        job.error = cause.clone();
        job.finished_at = Some(self.clock.now());
        // A restore that left something of the original behind says so in
        // its request's history and notification.
        let cause = match (&cause, status) {
            (None, JobStatus::Succeeded) if !job.facts.not_carried.is_empty() => Some(format!(
                "not carried over: {}",
                job.facts.not_carried.join("; ")
            )),
            _ => cause,
        };
        self.save_job(&mut job).await?;
        let metrics = self.azure.metrics();
        metrics.job_finished(status.as_str());
        if let (Some(off), Some(on)) = (job.facts.offline_at, job.facts.online_at) {
            metrics
                .downtime
                .observe((on - off).num_milliseconds().max(0) as f64 / 1000.0);
        }
        if status == JobStatus::Succeeded && !job.dry_run {
            self.record_restore(req, &job).await?;
        }
        if !job.dry_run {
            let current = self.request(&req.id).await?;
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
        Ok(Outcome::of(job, cause, false))
    }
}
