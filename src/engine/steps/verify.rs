//! `verify`: the environment's database is Online and is the restored one
//! (its `databaseId`). Read-only.
use super::{job_ids, StepCx, StepDef, Timeout};
use crate::domain::step::Phase;
use crate::domain::StepName;
use crate::engine::{Engine, StepError};

pub(super) const DEF: StepDef = StepDef {
    name: StepName::Verify,
    phase: Phase::AfterDowntime,
    window_guard: false,
    estimate_secs: 30,
    timeout: Timeout::Step,
    crash_points: &[],
};

impl Engine {
    pub(super) async fn verify(&self, cx: &mut StepCx<'_>) -> Result<String, StepError> {
        let env = cx.env;
        let (_, restored) = job_ids(cx.job)?;
        let db = self
            .azure
            .get_database(&env.database_id(&env.database))
            .await?
            .ok_or_else(|| StepError::Failed(format!("{} does not exist", env.database)))?;
        if !db.is_online() {
            return Err(StepError::Failed(format!(
                "{} is {}, not Online",
                env.database,
                db.status()
            )));
        }
        if db.database_id() != Some(restored.as_str()) {
            return Err(StepError::Failed(format!(
                "{} has databaseId {}, not the restored {restored}",
                env.database,
                db.database_id().unwrap_or("none")
            )));
        }
        Ok(format!(
            "{} is Online with the restored databaseId {restored}",
            env.database
        ))
    }
}
