//! Carries out the recovery that [`crate::domain::recovery`] decides after a
//! step failed for good (or a rollback was asked for). Every action observes
//! first, so a crash during recovery is resumed by running it again.
use super::crash;
use super::{steps, Engine, EngineError, Outcome, StepError};
use crate::domain::lifecycle::LifecycleEvent;
use crate::domain::recovery::{plan_recovery, RecoveryFacts};
use crate::domain::swap::next_unswap_action;
use crate::domain::{
    Environment, Job, JobStatus, RestoreRequest, StepName, StepRecord, StepStatus,
};

/// Crash points of the recovery (rollback) path, met after a step failed
/// for good from `swap` on.
pub const RECOVERY_POINTS: &[&str] = &[
    "recovery.started",
    "recovery.after_unswap_rename",
    "recovery.before_online",
];

impl Engine {
    pub(super) async fn recover(
        &self,
        req: &RestoreRequest,
        env: &Environment,
        mut job: Job,
        cause: String,
    ) -> Result<Outcome, EngineError> {
        if job.is_rollback() {
            return self.recover_rollback(req, env, job, cause).await;
        }
        crash::point("recovery.started");
        let records = self.store.steps(&job.id).await?;
        let plan = plan_recovery(RecoveryFacts::from_checkpoints(
            &records,
            env.keep_failed_restore,
        ));
        if plan.nothing_changed {
            // Nothing in Azure was touched: no recovery, and the request is
            // runnable again as it was.
            let cause = format!(
                "{cause}; nothing was changed in Azure{}",
                if job.dry_run {
                    String::new()
                } else {
                    format!(
                        ": the request is accepted again; fix the cause and run `pitr run {}`",
                        req.id
                    )
                }
            );
            return self
                .finish_with(
                    req,
                    job,
                    JobStatus::Failed,
                    LifecycleEvent::Release,
                    Some(cause),
                )
                .await;
        }
        self.note(
            StepName::Online,
            format!("recovering after failure: {cause}"),
        );
        let mut problems = Vec::new();
        if plan.take_offline {
            // A finished run being rolled back: the environment is up and
            // must go offline before its database is renamed.
            match self
                .recovery_action(StepName::Offline, env, &mut job, &records)
                .await
            {
                Ok(_) => {}
                Err(StepError::Waiting(message)) => return Ok(Outcome::Waiting { job, message }),
                Err(e) => return Err(EngineError::Stuck {
                    job: job.id.to_string(),
                    status: "running",
                    cause: format!("{cause}; taking the environment offline for the rollback failed: {e}; run `pitr resume {}` to try again", req.id),
                }),
            }
        }
        if plan.unswap {
            self.unswap_or_stay_offline(req, env, &mut job, &cause, "rolling back the swap")
                .await?;
        }
        if plan.drop_partial_restore {
            if let Err(e) = self.drop_partial_restore(env, &job).await {
                problems.push(format!(
                    "the partial restored database was not dropped: {e}"
                ));
            }
        }
        crash::point("recovery.before_online");
        if plan.bring_online {
            match self
                .recovery_action(StepName::Online, env, &mut job, &records)
                .await
            {
                Ok(_) => {
                    job.facts.online_at = Some(self.clock.now());
                }
                Err(StepError::Waiting(message)) => return Ok(Outcome::Waiting { job, message }),
                Err(e) => problems.push(format!(
                    "bringing the environment online failed: {e}; start the services by hand"
                )),
            }
        }
        let mut cause = cause;
        if !problems.is_empty() {
            cause = format!("{cause}; {}", problems.join("; "));
        }
        let outcome = self.finish(req, job, plan.ends, Some(cause)).await?;
        // A recovery that left something undone is a failure to report.
        Ok(match outcome {
            Outcome::Ended { job, cause, .. } => Outcome::Ended {
                job,
                cause,
                problems: !problems.is_empty(),
            },
            other => other,
        })
    }

    /// Stops (`Offline`) or starts (`Online`) the services as part of a
    /// recovery, as a new attempt of that step with its own checkpoint: an
    /// attempt a crash interrupted (still `running`, or confirmed) is
    /// continued, anything else starts afresh.
    pub(super) async fn recovery_action(
        &self,
        step: StepName,
        env: &Environment,
        job: &mut Job,
        records: &[StepRecord],
    ) -> Result<String, StepError> {
        let mut rec = records
            .iter()
            .find(|r| r.step == step)
            .cloned()
            .unwrap_or_else(|| StepRecord::pending(step));
        if rec.status != StepStatus::Running {
            rec.attempts += 1;
            rec.external_ref = None;
            rec.status = StepStatus::Running;
            rec.error = None;
            rec.started_at = Some(self.clock.now());
            rec.finished_at = None;
            self.checkpoint(&job.id, &rec).await?;
        }
        let outcome = self
            .services(step, env, job, &mut rec, step == StepName::Online)
            .await;
        match &outcome {
            Err(StepError::Waiting(_)) => rec.status = StepStatus::Waiting,
            Err(e) => {
                rec.status = StepStatus::Failed;
                rec.error = Some(e.to_string());
                rec.finished_at = Some(self.clock.now());
            }
            Ok(_) => {
                rec.status = StepStatus::Succeeded;
                rec.finished_at = Some(self.clock.now());
            }
        }
        self.checkpoint(&job.id, &rec).await?;
        outcome
    }

    /// The reverse swap in a recovery. If it fails, the original is not
    /// under its name, so the environment must not come back online: the
    /// job stops (`Stuck`) with what to do, and `pitr resume` tries again.
    pub(super) async fn unswap_or_stay_offline(
        &self,
        req: &RestoreRequest,
        env: &Environment,
        job: &mut Job,
        cause: &str,
        what: &str,
    ) -> Result<(), EngineError> {
        let Err(e) = self.unswap(env, job).await else {
            return Ok(());
        };
        let msg = format!(
            "{cause}; {what} also failed: {e}; the environment stays offline, inspect the server and run `pitr resume {}`",
            req.id
        );
        job.error = Some(msg.clone());
        self.save_job(job).await?;
        Err(EngineError::Stuck {
            job: job.id.to_string(),
            status: "failed",
            cause: msg,
        })
    }

    /// Puts the original database back under the environment's name.
    pub(super) async fn unswap(&self, env: &Environment, job: &Job) -> Result<(), StepError> {
        let names = steps::swap_names(env, job);
        let original = job
            .facts
            .original_database_id
            .clone()
            .ok_or_else(|| StepError::Failed("the original databaseId is unknown".into()))?;
        let restored = job.facts.restored_database_id.clone();
        for _ in 0..steps::MAX_RENAMES {
            let next = self
                .rename_next(env, job, &names, StepName::Swap, "rolling back: ", |seen| {
                    next_unswap_action(&names, seen, &original, restored.as_deref())
                })
                .await?;
            match next {
                steps::Renamed::Settled => return Ok(()),
                steps::Renamed::Moved { .. } => crash::point("recovery.after_unswap_rename"),
                steps::Renamed::Unclear => {}
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
        self.drop_database(&id, StepName::Restore).await?;
        self.note(
            StepName::Restore,
            format!("dropped the partial restore {name}"),
        );
        Ok(())
    }
}
