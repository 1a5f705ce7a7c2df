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

/// A sku as a person reads it: `GP_Gen5 (GeneralPurpose, capacity 4)`.
fn show_sku(sku: &serde_json::Value) -> String {
    if !sku.is_object() {
        return "none".into();
    }
    let field = |k: &str| sku.get(k).filter(|v| !v.is_null());
    let mut detail = Vec::new();
    if let Some(t) = field("tier").and_then(|t| t.as_str()) {
        detail.push(t.to_string());
    }
    if let Some(c) = field("capacity") {
        detail.push(format!("capacity {c}"));
    }
    let name = field("name").and_then(|n| n.as_str()).unwrap_or("unnamed");
    if detail.is_empty() {
        name.to_string()
    } else {
        format!("{name} ({})", detail.join(", "))
    }
}

/// The restored database has the original's sku: the same name, and the
/// same tier and capacity where the original's are known (a sku name such
/// as `GP_Gen5` says nothing of the vCores).
fn same_sku(original: &serde_json::Value, restored: &serde_json::Value) -> bool {
    let text = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(str::to_ascii_lowercase)
    };
    ["name", "tier"]
        .iter()
        .all(|k| text(original, k).is_none() || text(original, k) == text(restored, k))
        && match original.get("capacity").filter(|c| !c.is_null()) {
            None => true,
            Some(c) => restored.get("capacity") == Some(c),
        }
}

impl Engine {
    pub(super) async fn verify(&self, cx: &mut StepCx<'_>) -> Result<String, StepError> {
        let env = cx.env;
        let (_, restored) = job_ids(cx.job)?;
        let kept = cx.job.restored_name(&env.database);
        // What the refusal leads to (`domain::recovery`): this step runs
        // after the swap, so a refusal rolls the run back.
        let (back, rollback) = if cx.job.is_rollback() {
            (String::new(), String::new())
        } else {
            let back = format!(
                "; the run rolls back: the original goes back under {}",
                env.database
            );
            let rollback = format!("{back}, the restored database is kept as {kept}");
            (back, rollback)
        };
        let db = self
            .azure
            .get_database(&env.database_id(&env.database))
            .await?
            .ok_or_else(|| {
                StepError::Failed(format!(
                    "{} does not exist on server '{}': it was renamed or dropped after the swap (the restored database has databaseId {restored}){back}; look for the restored database on the server",
                    env.database, env.server
                ))
            })?;
        if !db.is_online() {
            return Err(StepError::Failed(format!(
                "{} is {}, not Online (databaseId {}){rollback}; inspect it in the Azure portal",
                env.database,
                db.status(),
                db.database_id().unwrap_or("none")
            )));
        }
        if cx.job.is_rollback() {
            // A rollback puts the original itself back: its id is the check.
            let (original, _) = job_ids(cx.job)?;
            if db.database_id() != Some(original.as_str()) {
                return Err(StepError::Failed(format!(
                    "{} has databaseId {}, not the original {original}; inspect the server: the original should be under {} or {}",
                    env.database,
                    db.database_id().unwrap_or("none"),
                    env.database,
                    cx.job.before_name(&env.database)
                )));
            }
            return Ok(format!(
                "{} is Online with the original databaseId {original}",
                env.database
            ));
        }
        if db.database_id() != Some(restored.as_str()) {
            let (original, _) = job_ids(cx.job)?;
            let found = db.database_id().unwrap_or("none");
            let whose = if found == original {
                " (the original's: someone put it back under the name)"
            } else {
                " (a database this run does not know)"
            };
            return Err(StepError::Failed(format!(
                "{} has databaseId {found}{whose}, not the restored {restored}: the names changed after the swap; the run rolls back where it finds the original and the restored database under names it knows, and touches no other database; inspect the server",
                env.database
            )));
        }
        // Azure does not carry these over from the source by itself.
        let f = &cx.job.facts;
        if let Some(original) = &f.source_sku {
            let now = db.sku.clone().unwrap_or(serde_json::Value::Null);
            if !same_sku(original, &now) {
                return Err(differs(
                    &env.database,
                    "service objective (sku)",
                    &show_sku(original),
                    &show_sku(&now),
                    &rollback,
                ));
            }
        }
        let checks = [
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
                return Err(differs(
                    &env.database,
                    what,
                    original.as_deref().unwrap_or("none"),
                    restored.as_deref().unwrap_or("none"),
                    &rollback,
                ));
            }
        }
        let expected = super::restore::restored_tags(cx.job);
        let missing: Vec<String> = expected
            .iter()
            .filter(|(k, v)| db.tags.get(*k) != Some(*v))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !missing.is_empty() {
            return Err(StepError::Failed(format!(
                "{} lacks the tags {} that its restore asked for (the original's, and pitr-job naming this run); it has {}: Azure did not keep them{rollback}; find what removes tags from new databases (a policy) before submitting again",
                env.database,
                missing.join(", "),
                if db.tags.is_empty() {
                    "none".to_string()
                } else {
                    db.tags
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )));
        }
        if let Some(orig) = &f.source_read_scale {
            let live = db.text_property("readScale");
            if !live.is_some_and(|l| l.eq_ignore_ascii_case(orig)) {
                return Err(differs(
                    &env.database,
                    "read scale-out",
                    orig,
                    live.unwrap_or("none"),
                    &rollback,
                ));
            }
        }
        if let Some((what, original, live)) =
            crate::domain::retention::first_difference(&f.source_properties, &db.properties.other)
        {
            return Err(differs(&env.database, what, &original, &live, &rollback));
        }
        self.check_retention(
            cx.job,
            &env.database_id(&env.database),
            &env.database,
            &rollback,
        )
        .await?;
        Ok(format!(
            "{} is Online with the restored databaseId {restored}, the original's sku, pool, redundancy, tags and backup retention",
            env.database
        ))
    }
}

fn differs(
    database: &str,
    what: &str,
    original: &str,
    restored: &str,
    rollback: &str,
) -> StepError {
    StepError::Failed(format!(
        "{database} differs from the original in {what}: the original had {original}, the restored database has {restored}; Azure did not carry it over{rollback}; find why Azure gave {restored} (a quota, the pool, the region) before submitting again"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_sku_is_the_same_by_name_tier_and_capacity_where_the_original_says() {
        let original = json!({"name": "GP_Gen5", "tier": "GeneralPurpose", "capacity": 4});
        assert!(same_sku(&original, &original.clone()));
        assert!(same_sku(
            &original,
            &json!({"name": "gp_gen5", "tier": "generalpurpose", "capacity": 4, "family": "Gen5"})
        ));
        for other in [
            json!({"name": "GP_Gen5", "tier": "GeneralPurpose", "capacity": 2}),
            json!({"name": "GP_Gen5", "tier": "GeneralPurpose"}),
            json!({"name": "BC_Gen5", "tier": "BusinessCritical", "capacity": 4}),
            json!({"name": "GP_Gen5", "tier": "Hyperscale", "capacity": 4}),
            json!(null),
        ] {
            assert!(!same_sku(&original, &other), "{other}");
        }
        // What the original does not say is not compared.
        assert!(same_sku(
            &json!({"name": "S3"}),
            &json!({"name": "S3", "tier": "Standard", "capacity": 100})
        ));
    }

    #[test]
    fn a_sku_reads_with_its_tier_and_capacity() {
        assert_eq!(
            show_sku(&json!({"name": "GP_Gen5", "tier": "GeneralPurpose", "capacity": 4})),
            "GP_Gen5 (GeneralPurpose, capacity 4)"
        );
        assert_eq!(show_sku(&json!({"name": "S3"})), "S3");
        assert_eq!(show_sku(&json!(null)), "none");
    }
}
