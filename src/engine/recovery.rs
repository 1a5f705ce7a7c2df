//! What a run does after a step failed for good. Before `swap` the original
//! database was never touched: bring the environment online and end `Failed`.
//! From `swap` on: put the original back under its name (the restored one
//! stays as `<db>_pitr_<job8>` for diagnosis), bring the environment online
//! and end `RolledBack`. Every action observes first, so a crash during
//! recovery is resumed by running it again.
use super::{Engine, EngineError, StepError};
use crate::domain::swap::{next_unswap_action, SwapAction};
use crate::domain::{Environment, Job, JobStatus, RestoreRequest, StepName, StepRecord};

impl Engine {
    pub(super) async fn recover(
        &self,
        req: &RestoreRequest,
        env: &Environment,
        mut job: Job,
        cause: String,
    ) -> Result<Job, EngineError> {
        super::crash::point("recovery.started");
        let records = self.store.steps(&job.id).await?;
        let started = |s: StepName| records.iter().any(|r| r.step == s && r.attempts > 0);
        self.note(
            StepName::Online,
            format!("recovering after failure: {cause}"),
        );
        let mut problems = Vec::new();
        let swapped = started(StepName::Swap);
        let online_done = records.iter().any(|r| {
            r.step == StepName::Online && r.status == crate::domain::StepStatus::Succeeded
        });
        if swapped && online_done {
            // A finished run being rolled back: the environment is up and
            // must go offline before its database is renamed.
            let mut rec = StepRecord::pending(StepName::Offline);
            rec.attempts = 1;
            if let Err(e) = self
                .services(StepName::Offline, env, &mut job, &mut rec, false)
                .await
            {
                let msg = format!("{cause}; taking the environment offline for the rollback failed: {e}; run `pitr resume {}` to try again", req.id);
                return Err(EngineError::RunFailed {
                    job: job.id.clone(),
                    status: "running",
                    cause: msg,
                });
            }
        }
        if swapped {
            if let Err(e) = self.unswap(env, &job).await {
                // Without the original under its name the environment must
                // not come back online; the operator has to look.
                let msg = format!(
                    "{cause}; rolling back the swap also failed: {e}; the environment stays offline, inspect the server and run `pitr resume {}`",
                    req.id
                );
                job.error = Some(msg.clone());
                self.save_job(&mut job).await?;
                return Err(EngineError::RunFailed {
                    job: job.id.clone(),
                    status: "failed",
                    cause: msg,
                });
            }
        } else if started(StepName::Restore) && !env.keep_failed_restore {
            if let Err(e) = self.drop_partial_restore(env, &job).await {
                problems.push(format!(
                    "the partial restored database was not dropped: {e}"
                ));
            }
        }
        super::crash::point("recovery.before_online");
        if started(StepName::Offline) || started(StepName::Online) {
            let mut rec = records
                .iter()
                .find(|r| r.step == StepName::Online)
                .cloned()
                .unwrap_or_else(|| StepRecord::pending(StepName::Online));
            rec.attempts += 1;
            match self
                .services(StepName::Online, env, &mut job, &mut rec, true)
                .await
            {
                Ok(_) => {
                    job.facts.online_at = Some(self.clock.now());
                }
                Err(e) => problems.push(format!(
                    "bringing the environment online failed: {e}; start the services by hand"
                )),
            }
        }
        let status = if swapped {
            JobStatus::RolledBack
        } else {
            JobStatus::Failed
        };
        let mut cause = cause;
        if !problems.is_empty() {
            cause = format!("{cause}; {}", problems.join("; "));
        }
        let done = self.finish(req, job, status, Some(cause)).await;
        match done {
            // A rollback that left something undone is a failure to report.
            Err(EngineError::RunFailed { job, cause, .. }) if !problems.is_empty() => {
                Err(EngineError::RunFailed {
                    job,
                    status: "ended with problems",
                    cause,
                })
            }
            other => other,
        }
    }

    /// Puts the original database back under the environment's name.
    async fn unswap(&self, env: &Environment, job: &Job) -> Result<(), StepError> {
        let names = Self::swap_names(env, job);
        let original = job
            .facts
            .original_database_id
            .clone()
            .ok_or_else(|| StepError::Failed("the original databaseId is unknown".into()))?;
        let restored = job.facts.restored_database_id.clone();
        for _ in 0..8 {
            let seen = self.observe(env, &names).await?;
            match next_unswap_action(&names, &seen, &original, restored.as_deref())
                .map_err(|e| StepError::Failed(e.to_string()))?
            {
                SwapAction::Done => return Ok(()),
                SwapAction::Rename { from, to } => {
                    self.note(
                        StepName::Swap,
                        format!("rolling back: renaming {from} -> {to}"),
                    );
                    self.confirm_lease(&job.id).await?;
                    if let Err(e) = self
                        .azure
                        .rename_database(&env.database_id(&from), &env.database_id(&to))
                        .await
                    {
                        if !e.is_transient() {
                            return Err(e.into());
                        }
                        tokio::time::sleep(self.azure.poll.interval(None)).await;
                        continue;
                    }
                    super::crash::point("recovery.after_unswap_rename");
                }
            }
        }
        Err(StepError::Failed(
            "the rollback renames did not settle".into(),
        ))
    }

    /// Drops `<db>_pitr_<job8>`, but only if it is not the original.
    async fn drop_partial_restore(&self, env: &Environment, job: &Job) -> Result<(), StepError> {
        let name = job.restored_name(&env.database);
        let id = env.database_id(&name);
        let Some(db) = self.azure.get_database(&id).await? else {
            return Ok(());
        };
        let original = job.facts.original_database_id.as_deref();
        if db.database_id().is_none() || db.database_id() == original {
            return Err(StepError::Failed(format!(
                "{name} does not look like this job's restore; left in place"
            )));
        }
        if let Some(op) = self.azure.begin_delete_database(&id).await? {
            self.azure
                .wait(
                    &op,
                    self.step_timeout(StepName::Cleanup),
                    &mut self.poll_reporter(StepName::Restore),
                )
                .await?;
        }
        self.note(
            StepName::Restore,
            format!("dropped the partial restore {name}"),
        );
        Ok(())
    }
}
