//! `verify`: the environment's database is Online and is the restored one
//! (its `databaseId`). Read-only.
use super::{job_ids, StepCx, StepDef, Timeout, TimeoutClass};
use crate::domain::step::Phase;
use crate::domain::StepName;
use crate::engine::{Engine, StepError};

pub(super) const DEF: StepDef = StepDef {
    name: StepName::Verify,
    phase: Phase::AfterDowntime,
    window_guard: false,
    estimate_secs: 30,
    timeout: Timeout {
        class: TimeoutClass::Step,
        default_secs: 900,
    },
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
        if cx.job.is_rollback() {
            // A rollback puts the original itself back: its id is the check.
            let (original, _) = job_ids(cx.job)?;
            if db.database_id() != Some(original.as_str()) {
                return Err(StepError::Failed(format!(
                    "{} has databaseId {}, not the original {original}",
                    env.database,
                    db.database_id().unwrap_or("none")
                )));
            }
            return Ok(format!(
                "{} is Online with the original databaseId {original}",
                env.database
            ));
        }
        if db.database_id() != Some(restored.as_str()) {
            return Err(StepError::Failed(format!(
                "{} has databaseId {}, not the restored {restored}",
                env.database,
                db.database_id().unwrap_or("none")
            )));
        }
        // Azure does not carry these over from the source by itself.
        let f = &cx.job.facts;
        let sku_name = |v: &Option<serde_json::Value>| {
            v.as_ref()
                .and_then(|s| s.get("name"))
                .and_then(|n| n.as_str())
                .map(str::to_string)
        };
        let checks = [
            (
                "service objective (sku)",
                sku_name(&f.source_sku),
                sku_name(&db.sku),
            ),
            (
                "elastic pool",
                f.source_elastic_pool_id.clone(),
                db.properties.elastic_pool_id.clone(),
            ),
            (
                "zone redundancy",
                f.source_zone_redundant.map(|z| z.to_string()),
                db.properties.zone_redundant.map(|z| z.to_string()),
            ),
            (
                "backup storage redundancy",
                f.source_backup_redundancy.clone(),
                db.backup_redundancy().map(str::to_string),
            ),
        ];
        for (what, original, restored) in checks {
            // Compared only where the original's value is known; a pool is
            // compared either way (in a pool or not).
            let same = original.as_deref().map(str::to_ascii_lowercase)
                == restored.as_deref().map(str::to_ascii_lowercase);
            if (original.is_some() || what == "elastic pool") && !same {
                return Err(StepError::Failed(format!(
                    "{} differs from the original in {what}: the original had {}, the restored database has {}; fix it in Azure (the restored database is live)",
                    env.database,
                    original.as_deref().unwrap_or("none"),
                    restored.as_deref().unwrap_or("none")
                )));
            }
        }
        let expected = super::restore::restored_tags(cx.job);
        let missing: Vec<&String> = expected
            .iter()
            .filter(|(k, v)| db.tags.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        if !missing.is_empty() {
            return Err(StepError::Failed(format!(
                "{} lacks the original's tags {missing:?} (Azure does not copy tags to a restored database); set them in Azure",
                env.database
            )));
        }
        if let Some((what, original, live)) =
            crate::domain::retention::first_difference(&f.source_properties, &db.properties.other)
        {
            return Err(StepError::Failed(format!(
                "{} differs from the original in {what}: the original had {original}, the restored database has {live}; the run puts the original back: find what changed it in Azure, then submit the restore again",
                env.database
            )));
        }
        self.check_retention(cx.job, &env.database_id(&env.database), &env.database)
            .await?;
        Ok(format!(
            "{} is Online with the restored databaseId {restored}, the original's sku, pool, redundancy, tags and backup retention",
            env.database
        ))
    }
}
