//! `preflight`: the source database is Online and restorable to the
//! requested instant, the job's target names are free, and what the restore
//! copies from the source (sku, elastic pool, ids) is recorded. Read-only.
use super::{StepCx, StepDef, Timeout};
use crate::domain::step::Phase;
use crate::domain::StepName;
use crate::engine::{crash, Engine, StepError};

pub(super) const DEF: StepDef = StepDef {
    name: StepName::Preflight,
    phase: Phase::Setup,
    window_guard: true,
    estimate_secs: 30,
    timeout: Timeout::Step,
    crash_points: &["after_get"],
};

impl Engine {
    pub(super) async fn preflight(&self, cx: &mut StepCx<'_>) -> Result<String, StepError> {
        let (req, env) = (cx.req, cx.env);
        let id = env.database_id(&env.database);
        let db = self.azure.get_database(&id).await?.ok_or_else(|| {
            StepError::Failed(format!(
                "database '{}' not found on server '{}'",
                env.database, env.server
            ))
        })?;
        crash::point("preflight.after_get");
        if !db.is_online() {
            return Err(StepError::Failed(format!(
                "database '{}' is {}, not Online; wait for the operation on it to finish and resume",
                env.database,
                db.status()
            )));
        }
        if let Some(earliest) = db.properties.earliest_restore_date {
            if req.spec.restore_point < earliest {
                return Err(StepError::Failed(format!(
                    "rule earliest-restore-date: restore point {} is now before Azure's earliest restore date {earliest}; reschedule with a later restore point",
                    req.spec.restore_point
                )));
            }
        }
        let original = db.database_id().ok_or_else(|| {
            StepError::Failed("Azure reported no databaseId for the source database".into())
        })?;
        for name in [
            cx.job.restored_name(&env.database),
            cx.job.before_name(&env.database),
        ] {
            if let Some(existing) = self.azure.get_database(&env.database_id(&name)).await? {
                return Err(StepError::Failed(format!(
                    "target name '{name}' is already taken (databaseId {}); remove it or start a new job",
                    existing.database_id().unwrap_or("unknown")
                )));
            }
        }
        // Found now, not after the swap when sync needs it.
        if env.actions == crate::domain::ActionKind::VmRunCommand
            && self.sql_password(env, cx.job).is_none()
        {
            return Err(StepError::Failed(match &env.sql_password_env {
                Some(var) => format!(
                    "the SQL password for sync is not set: export {var} before running"
                ),
                None => format!(
                    "environment '{}' has no sql_password_env: name the variable that holds the SQL password sync uses, and export it",
                    env.name
                ),
            }));
        }
        let job = &mut *cx.job;
        job.facts.original_database_id = Some(original.to_string());
        job.facts.source_resource_id = Some(db.id.clone());
        job.facts.source_sku = db.sku.clone();
        job.facts.source_elastic_pool_id = db.properties.elastic_pool_id.clone();
        self.save_job(job).await?;
        Ok(format!(
            "{} is Online (databaseId {original}, earliest restore {})",
            env.database,
            db.properties
                .earliest_restore_date
                .map(|d| d.to_rfc3339())
                .unwrap_or_else(|| "unknown".into())
        ))
    }
}
