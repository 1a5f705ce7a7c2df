//! `cleanup`: after a successful run has kept the original database for
//! `keep_original_hours`, drop `<db>_before_<job8>`. Only that database, and
//! only if it is still the original (same `databaseId`) while the restored one
//! is live under the environment's name; anything else is left for a person.
use super::progress::ProgressEvent;
use super::{Engine, EngineError, StepError};
use crate::domain::{Job, JobStatus, StepName, StepRecord, StepStatus};

impl Engine {
    /// True when the job's original database is due to be dropped.
    pub async fn cleanup_due(&self, job: &Job) -> Result<bool, EngineError> {
        if job.dry_run || job.status != JobStatus::Succeeded {
            return Ok(false);
        }
        let Some(finished) = job.finished_at else {
            return Ok(false);
        };
        let keep = chrono::Duration::hours(self.config.keep_original_hours as i64);
        if self.clock.now() < finished + keep {
            return Ok(false);
        }
        // Three failed attempts need a person (the message says why).
        let steps = self.store.steps(&job.id).await?;
        Ok(!steps.iter().any(|s| {
            s.step == StepName::Cleanup
                && (s.status == StepStatus::Succeeded
                    || (s.status == StepStatus::Failed && s.attempts >= 3))
        }))
    }

    /// Drops the job's original database (checkpointed as the `cleanup` step).
    pub async fn cleanup(&self, job: &Job) -> Result<String, EngineError> {
        let req = self.request(&job.request_id).await?;
        let env = self.environment(&req.environment)?.clone();
        let ttl = self.lease_ttl();
        let lease = self
            .store
            .acquire_lease(&job.id, &self.owner, self.clock.now(), ttl)
            .await?;
        // Renewed while the DELETE runs, so that no rollback starts meanwhile.
        self.set_lease(lease.clone());
        let mut rec = self
            .store
            .steps(&job.id)
            .await?
            .into_iter()
            .find(|s| s.step == StepName::Cleanup)
            .unwrap_or_else(|| StepRecord::pending(StepName::Cleanup));
        rec.status = StepStatus::Running;
        rec.attempts += 1;
        rec.started_at.get_or_insert(self.clock.now());
        let work = async {
            self.store.save_step(&job.id, &rec, Some(&lease)).await?;
            self.drop_original(&env, job).await
        };
        let outcome = tokio::select! {
            r = work => r,
            lost = self.heartbeat(&job.id, ttl) => Err(StepError::Failed(lost.to_string())),
        };
        let lease = self.take_lease(&job.id).unwrap_or(lease);
        rec.finished_at = Some(self.clock.now());
        let result = match outcome {
            Ok(summary) => {
                rec.status = StepStatus::Succeeded;
                rec.detail = Some(summary.clone());
                Ok(summary)
            }
            Err(e) => {
                rec.status = StepStatus::Failed;
                rec.error = Some(e.to_string());
                Err(EngineError::RunFailed {
                    job: job.id.clone(),
                    status: "cleanup failed",
                    cause: e.to_string(),
                })
            }
        };
        self.store.save_step(&job.id, &rec, Some(&lease)).await?;
        let _ = self.store.release_lease(&lease).await;
        if let Ok(s) = &result {
            self.progress.event(ProgressEvent::StepDone {
                step: StepName::Cleanup,
                elapsed: std::time::Duration::ZERO,
                summary: s.clone(),
            });
        }
        result
    }

    async fn drop_original(
        &self,
        env: &crate::domain::Environment,
        job: &Job,
    ) -> Result<String, StepError> {
        let name = job.before_name(&env.database);
        let id = env.database_id(&name);
        let (Some(original), Some(restored)) = (
            job.facts.original_database_id.as_deref(),
            job.facts.restored_database_id.as_deref(),
        ) else {
            return Err(StepError::Failed(
                "the job does not know its databaseIds; nothing dropped".into(),
            ));
        };
        let Some(before) = self.azure.get_database(&id).await? else {
            return Ok(format!("{name} is already gone"));
        };
        if before.database_id() != Some(original) {
            return Err(StepError::Failed(format!(
                "{name} is not this job's original (databaseId {}); left in place",
                before.database_id().unwrap_or("unknown")
            )));
        }
        let live = self
            .azure
            .get_database(&env.database_id(&env.database))
            .await?;
        if live.as_ref().and_then(|d| d.database_id()) != Some(restored) {
            return Err(StepError::Failed(format!(
                "{} no longer holds the restored database; {name} is kept",
                env.database
            )));
        }
        if let Some(op) = self.azure.begin_delete_database(&id).await? {
            self.azure
                .wait(
                    &op,
                    self.step_timeout(StepName::Cleanup),
                    &mut self.poll_reporter(StepName::Cleanup),
                )
                .await?;
        }
        Ok(format!(
            "dropped {name} (the original, kept {} h)",
            self.config.keep_original_hours
        ))
    }
}
