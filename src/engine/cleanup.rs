//! When and how the `cleanup` step runs: the scheduler asks [`Engine::cleanup_due`]
//! for each successful job and runs [`Engine::cleanup`] in the background,
//! under the job's lease (so that no rollback starts meanwhile). The step
//! itself is `steps/cleanup.rs`.
use super::drive::StepEnd;
use super::{Engine, EngineError};
use crate::domain::schedule::cleanup_due;
use crate::domain::{Job, StepName, StepRecord};

impl Engine {
    /// True when the job's original database is due to be dropped.
    pub async fn cleanup_due(&self, job: &Job) -> Result<bool, EngineError> {
        let steps = self.store.steps(&job.id).await?;
        let keep = chrono::Duration::hours(self.config.keep_original_hours as i64);
        Ok(cleanup_due(job, &steps, keep, self.clock.now()))
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
