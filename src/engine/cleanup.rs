//! When and how the `cleanup` step runs: the scheduler's plan
//! (`domain::tick`) finds it due among the jobs the store keeps awaiting a
//! cleanup, by the same rule as [`Engine::cleanup_due`], and the scheduler
//! runs [`Engine::cleanup`] in the background, under the job's lease (so
//! that no rollback starts meanwhile). The step itself is `steps/cleanup.rs`.
use super::drive::StepEnd;
use super::{Engine, EngineError};
use crate::domain::schedule::cleanup_due;
use crate::domain::{Job, StepName, StepRecord};

impl Engine {
    /// True when the job's original database is due to be dropped.
    pub async fn cleanup_due(&self, job: &Job) -> Result<bool, EngineError> {
        // A rollback job drops nothing; a restore being rolled back keeps
        // its original (the rollback puts it back).
        if job.is_rollback() || self.rollback_running(job).await? {
            return Ok(false);
        }
        let steps = self.store.steps(&job.id).await?;
        let keep = chrono::Duration::hours(self.config.keep_original_hours as i64);
        Ok(cleanup_due(job, &steps, keep, self.clock.now()))
    }

    /// A rollback of `job` is running (the rollback needs its original).
    async fn rollback_running(&self, job: &Job) -> Result<bool, EngineError> {
        Ok(self
            .store
            .jobs_for_request(&job.request_id)
            .await?
            .iter()
            .any(|j| {
                j.status == crate::domain::JobStatus::Running
                    && j.facts.rollback.as_ref().is_some_and(|of| of.job == job.id)
            }))
    }

    /// Drops the job's original database (checkpointed as the `cleanup` step).
    pub async fn cleanup(&self, job: &Job) -> Result<String, EngineError> {
        let req = self.request(&job.request_id).await?;
        let env = self.environment(&req.spec.environment)?.clone();
        let rec = self
            .store
            .steps(&job.id)
            .await?
            .into_iter()
            .find(|s| s.step == StepName::Cleanup)
            .unwrap_or_else(|| StepRecord::pending(StepName::Cleanup));
        let mut job = job.clone();
        let end = self
            .with_lease(&job.id.clone(), &req.id, false, async {
                // Checked again under the lease a rollback takes to start.
                if self.rollback_running(&job).await? {
                    return Ok(StepEnd::Failed(format!(
                        "a rollback of job {} is running; its original is kept",
                        job.id
                    )));
                }
                self.execute_step(StepName::Cleanup, &req, &env, &mut job, rec)
                    .await
            })
            .await?;
        match end {
            StepEnd::Succeeded(summary) => Ok(summary),
            StepEnd::Failed(cause) | StepEnd::Waiting(cause) => Err(EngineError::Stuck {
                job: job.id.to_string(),
                status: "cleanup failed",
                cause,
            }),
        }
    }
}
