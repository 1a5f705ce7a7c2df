//! `preflight`: the source database is Online and restorable to the
//! requested instant, the job's target names are free, and what the restore
//! copies from the source (sku, elastic pool, ids) is recorded. Read-only.
use super::{StepCx, StepDef, Timeout, TimeoutClass};
use crate::domain::step::Phase;
use crate::domain::time::{ahead, show};
use crate::domain::StepName;
use crate::engine::{crash, Engine, StepError};

pub(super) const DEF: StepDef = StepDef {
    name: StepName::Preflight,
    phase: Phase::Setup,
    window_guard: true,
    estimate_secs: 30,
    timeout: Timeout {
        class: TimeoutClass::Step,
        default_secs: 900,
    },
    crash_points: &["after_get"],
};

impl Engine {
    pub(super) async fn preflight(&self, cx: &mut StepCx<'_>) -> Result<String, StepError> {
        let (req, env) = (cx.req, cx.env);
        let id = env.database_id(&env.database);
        let db = self.azure.get_database(&id).await?.ok_or_else(|| {
            StepError::Failed(format!(
                "database '{}' not found on server '{}': check the environment's database = and server = in the config, or whether the database was renamed or dropped",
                env.database, env.server
            ))
        })?;
        crash::point("preflight.after_get");
        if !db.is_online() {
            return Err(StepError::Failed(format!(
                "database '{}' is {}, not Online; wait until it is Online again (an operation on it, a pause) and run the request again",
                env.database,
                db.status()
            )));
        }
        // What would make the swap or the restore fail, found before the
        // environment goes offline.
        if let Some(fog) = &db.properties.failover_group_id {
            return Err(StepError::Failed(format!(
                "database '{}' is in failover group {fog}: Azure does not rename a replicated database, so the swap would fail; remove it from the failover group, run the restore, then add it again",
                env.database
            )));
        }
        if let Some(link) = self.azure.list_replication_links(&id).await?.first() {
            return Err(StepError::Failed(format!(
                "database '{}' has a {} replication link (role {}) with '{}' on server '{}': Azure does not rename a database in a replication relationship, so the swap would fail; remove the link, run the restore, then set up geo-replication again",
                env.database,
                link.link_type.as_deref().unwrap_or("geo"),
                link.role.as_deref().unwrap_or("unknown"),
                link.partner_database.as_deref().unwrap_or("?"),
                link.partner_server.as_deref().unwrap_or("?"),
            )));
        }
        let tier = db
            .sku
            .as_ref()
            .and_then(|s| s.get("tier"))
            .and_then(|t| t.as_str());
        if tier.is_some_and(|t| t.eq_ignore_ascii_case("Hyperscale")) {
            return Err(StepError::Failed(format!(
                "database '{}' is Hyperscale: pitr does not restore Hyperscale databases (their backup settings, retention and restore differ and are not rehearsed); restore it in the Azure portal",
                env.database
            )));
        }
        if let Some(earliest) = db.properties.earliest_restore_date {
            if req.spec.restore_point < earliest {
                return Err(StepError::Failed(format!(
                    "rule earliest-restore-date: restore point {} is now before Azure's earliest restore date {}; reschedule with a restore point of {} or later",
                    show(req.spec.restore_point),
                    show(earliest),
                    ahead(earliest)
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
                    "target name '{name}' is already taken (databaseId {}); remove it, or run the request again (a new run has new names)",
                    existing.database_id().unwrap_or("unknown")
                )));
            }
        }
        // The VMs the actions run on exist: found now, not after the
        // environment went offline.
        if env.actions == crate::domain::ActionKind::VmRunCommand {
            for vm in env.aos_vms.iter().chain(&env.sync_vm).chain(&env.mr_vm) {
                if self.azure.get_vm(vm).await?.is_none() {
                    return Err(StepError::Failed(format!(
                        "VM {vm} of environment '{}' was not found; check aos_vms, sync_vm and mr_vm",
                        env.name
                    )));
                }
            }
            if let Some(var) = &env.sql_password_env {
                if self.sql_password(env).is_none() {
                    return Err(StepError::Failed(format!(
                        "environment '{}' names sql_password_env = {var}, which is not set: export it, or remove sql_password_env so that sync uses the AOS VM's own database access",
                        env.name
                    )));
                }
            }
        }
        // What Azure does not give a restored database, read now (the
        // original is renamed by the swap).
        let retention = self.read_retention(&id).await?;
        let mut not_carried = Vec::new();
        if let Some(a) = self.azure.get_auditing(&id).await? {
            if a.is_enabled() {
                let to = match (&a.storage_endpoint, a.is_azure_monitor_target_enabled) {
                    (Some(s), _) if !s.is_empty() => format!(" to {s}"),
                    (_, Some(true)) => " to Azure Monitor".to_string(),
                    _ => String::new(),
                };
                not_carried.push(format!(
                    "database-level auditing was on for the original{to}; set it again on {} after the restore (Azure does not keep it, and pitr cannot: its storage key cannot be read back)",
                    env.database
                ));
            }
        }
        if let Some(key) = db
            .text_property("encryptionProtector")
            .filter(|k| !k.is_empty())
        {
            not_carried.push(format!(
                "the original was encrypted with its own customer-managed key {key}; the restored {} uses the server's encryption: set the key again (identity, keys and encryptionProtector) after the restore",
                env.database
            ));
        }
        let threat_protection =
            self.azure.get_threat_protection(&id).await?.filter(|s| {
                s.eq_ignore_ascii_case("Enabled") || s.eq_ignore_ascii_case("Disabled")
            });
        let job = &mut *cx.job;
        job.facts.not_carried = not_carried;
        job.facts.source_threat_protection = threat_protection;
        job.facts.source_read_scale = db.text_property("readScale").map(str::to_string);
        job.facts.source_properties = crate::domain::retention::CARRIED_PROPERTIES
            .iter()
            .filter_map(|(k, _)| {
                let v = db.properties.other.get(*k).filter(|v| !v.is_null())?;
                Some((k.to_string(), v.clone()))
            })
            .collect();
        job.facts.source_short_term = retention.short_term;
        job.facts.source_long_term = retention.long_term;
        job.facts.original_database_id = Some(original.to_string());
        job.facts.source_resource_id = Some(db.id.clone());
        job.facts.source_sku = db.sku.clone();
        job.facts.source_elastic_pool_id = db.properties.elastic_pool_id.clone();
        job.facts.source_tags = db.tags.clone();
        job.facts.source_zone_redundant = db.properties.zone_redundant;
        job.facts.source_backup_redundancy = db.backup_redundancy().map(str::to_string);
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
