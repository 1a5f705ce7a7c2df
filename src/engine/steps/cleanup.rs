//! `cleanup`: after a successful run has kept the original database for
//! `keep_original_hours`, drop `<db>_before_<job8>`. Only that database, and
//! only if it is still the original (same `databaseId`) while the restored one
//! is live under the environment's name; anything else is left for a person.
//! Not part of a run: the scheduler starts it (see `engine/cleanup.rs`).
use super::{StepCx, StepDef, Timeout, TimeoutClass};
use crate::domain::step::Phase;
use crate::domain::StepName;
use crate::engine::{Engine, StepError};

pub(super) const DEF: StepDef = StepDef {
    name: StepName::Cleanup,
    phase: Phase::Later,
    window_guard: false,
    estimate_secs: 600,
    timeout: Timeout {
        class: TimeoutClass::Step,
        default_secs: 3600,
    },
    crash_points: &[],
};

impl Engine {
    pub(super) async fn drop_original(&self, cx: &mut StepCx<'_>) -> Result<String, StepError> {
        let (env, job) = (cx.env, &*cx.job);
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
        self.confirm_lease(&job.id).await?;
        self.drop_database(&id, StepName::Cleanup).await?;
        let summary = format!(
            "dropped {name} (the original, kept {} h)",
            self.config.keep_original_hours
        );
        // Kept in the checkpoint: nobody watches the scheduler's progress.
        cx.rec.detail = Some(summary.clone());
        Ok(summary)
    }
}
