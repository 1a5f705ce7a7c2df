//! The scenario a mock Azure starts from: servers, databases with their content
//! history, VMs with their services, timing settings and injected faults.
//!
//! Everything here is a plain data type with public fields and `Default`, so
//! that code (the dry-run mode) can build a scenario without TOML.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use super::fault_spec::FaultSpec;
pub use super::time_spec::TimeSpec;
use super::MockError;

/// A whole scenario, as read from `config/mock-scenario.toml` or built in code.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    pub settings: Settings,
    pub servers: Vec<ServerSpec>,
    pub vms: Vec<VmSpec>,
    /// Request faults and operation faults active from the start.
    pub faults: Vec<FaultSpec>,
    /// People and applications the mock issues access tokens for.
    pub users: Vec<super::entra::UserSpec>,
}

/// Simulated timing. An operation completes once it has been polled at least
/// `*_polls` times AND `*_duration_ms` of wall time has passed AND its kind is
/// not held (see `POST /_mock/hold`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `Retry-After` sent on 202s. Azure really sends 0 for Microsoft.Sql.
    pub retry_after_secs: u64,
    pub restore_polls: u32,
    pub restore_duration_ms: u64,
    pub delete_polls: u32,
    pub delete_duration_ms: u64,
    pub run_command_polls: u32,
    pub run_command_duration_ms: u64,
    pub token_expires_in_secs: u64,
    /// How long a request may take to send the body it declared; after
    /// that the connection gets a 408 and is closed.
    pub body_timeout_ms: u64,
    /// Which LRO headers a restore PUT answers with.
    pub restore_headers: RestoreHeaders,
    /// The `status` a restored database has once its restore succeeded
    /// (default `Online`; e.g. `Inaccessible`, `Paused`, to rehearse a
    /// database that does not come Online).
    pub restored_status: Option<String>,
    /// What a restored database ends up with instead of what its restore
    /// PUT asked for, to rehearse a restore Azure did not carry over as
    /// asked (the run's `verify` refuses it). Each is applied when the
    /// restore succeeds and changes only its own field. `restored_sku`:
    /// e.g. `{ name = "GP_Gen5", capacity = 2 }` (tier and family inferred
    /// from the name when absent).
    pub restored_sku: Option<SkuSpec>,
    /// The pool's full resource id, or `""` for no pool.
    pub restored_elastic_pool_id: Option<String>,
    pub restored_zone_redundant: Option<bool>,
    /// `Geo`, `Local`, `Zone` or `GeoZone`.
    pub restored_backup_storage_redundancy: Option<String>,
    /// The restored database's whole `tags` (e.g. `{}`: none at all).
    pub restored_tags: Option<BTreeMap<String, String>>,
    /// Simulated script durations, in seconds, per kind of script. They
    /// decide timeouts only (a managed run command whose script takes longer
    /// than its `timeoutInSeconds` ends `TimedOut`; an action run command
    /// longer than Azure's 90 minutes fails); when a command really completes
    /// is still decided by `run_command_polls` / `run_command_duration_ms`.
    /// In TOML: `[settings.script_seconds]` or
    /// `script_seconds = { sync = 14400 }`.
    pub script_seconds: ScriptSeconds,
    /// ARM's request throttling and Azure SQL's cap on concurrent restores
    /// (`[settings.throttle]`; off unless `enabled = true`).
    /// Boxed: most scenarios leave it off, and `Scenario` travels by value.
    pub throttle: Box<super::throttle::ThrottleSpec>,
}

/// Simulated duration of each kind of script, in seconds (default 0 each).
/// The kind is recognised from the script text: `stop_services` /
/// `start_services` (only `Stop-Service` / only `Start-Service`), `sync`
/// (`Microsoft.Dynamics.AX.Deployment.Setup.exe`), `mr_reset`
/// (`Reset-DatamartIntegration`), and `other`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScriptSeconds {
    pub stop_services: u64,
    pub start_services: u64,
    pub sync: u64,
    pub mr_reset: u64,
    pub other: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            retry_after_secs: 0,
            restore_polls: 2,
            restore_duration_ms: 0,
            delete_polls: 1,
            delete_duration_ms: 0,
            run_command_polls: 1,
            run_command_duration_ms: 0,
            token_expires_in_secs: 3599,
            body_timeout_ms: 10_000,
            restore_headers: RestoreHeaders::Both,
            restored_status: None,
            restored_sku: None,
            restored_elastic_pool_id: None,
            restored_zone_redundant: None,
            restored_backup_storage_redundancy: None,
            restored_tags: None,
            script_seconds: ScriptSeconds::default(),
            throttle: Box::default(),
        }
    }
}

impl Settings {
    /// The `restored_*` knobs are values Azure could show.
    fn check_restored(&self) -> Result<(), (String, String)> {
        if let Some(sku) = &self.restored_sku {
            if sku.name.trim().is_empty() {
                return Err((
                    "settings.restored_sku".into(),
                    "sku.name is required, e.g. \"GP_Gen5\"".into(),
                ));
            }
        }
        if let Some(r) = &self.restored_backup_storage_redundancy {
            if backup_redundancy(r).is_none() {
                return Err((
                    format!("settings.restored_backup_storage_redundancy '{r}'"),
                    format!("use one of {}", BACKUP_REDUNDANCIES.join(", ")),
                ));
            }
        }
        if let Some(tags) = &self.restored_tags {
            if tags.keys().any(|k| k.trim().is_empty()) {
                return Err((
                    "settings.restored_tags".into(),
                    "tag names must not be empty".into(),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreHeaders {
    /// `Azure-AsyncOperation` and `Location` (what Microsoft.Sql sends).
    #[default]
    Both,
    LocationOnly,
    AsyncOnly,
}

/// A logical SQL server (`Microsoft.Sql/servers`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSpec {
    pub subscription_id: String,
    pub resource_group: String,
    /// Server names are globally unique in Azure; the mock enforces that too
    /// because a sync script names a server without its resource group.
    pub name: String,
    pub location: String,
    pub databases: Vec<DatabaseSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSpec {
    pub name: String,
    /// `properties.status`; default `Online`.
    pub status: Option<String>,
    /// Default: `GP_Gen5` (GeneralPurpose, Gen5, 4 vCores), or the elastic
    /// pool pseudo-sku when `elastic_pool_id` is set.
    pub sku: Option<SkuSpec>,
    pub elastic_pool_id: Option<String>,
    /// A fixed `earliestRestoreDate`. Default: the later of the creation
    /// and `retention_days` before now (it moves forward with time).
    pub earliest_restore: Option<TimeSpec>,
    /// Short-term backup retention (`backupShortTermRetentionPolicies/default`
    /// `retentionDays`), 1-35; default 7 (Azure's default). A restored
    /// database gets Azure's default, not its source's.
    pub retention_days: Option<u32>,
    /// `diffBackupIntervalInHours`: 12 (default) or 24.
    pub diff_backup_hours: Option<u32>,
    /// Long-term retention (`backupLongTermRetentionPolicies/default`);
    /// default none. A restored database has none.
    pub long_term_retention: Option<LtrSpec>,
    /// Geo-replication links (`GET {DB}/replicationLinks`); Azure refuses
    /// to rename a database that has one (409).
    pub replication_links: Vec<ReplicationLinkSpec>,
    /// `properties.failoverGroupId`: the database is in that failover group
    /// (and so replicated; renaming it is refused too).
    pub failover_group_id: Option<String>,
    /// Database-level auditing (`auditingSettings/default`); default off.
    /// A restored database has it off (Azure does not keep it).
    pub auditing: Option<AuditingSpec>,
    /// ARM tags of the database (`tags`), reported by GET when not empty.
    pub tags: BTreeMap<String, String>,
    /// `properties.zoneRedundant`; default false.
    pub zone_redundant: bool,
    /// `properties.currentBackupStorageRedundancy` and
    /// `requestedBackupStorageRedundancy`: `Geo` (default), `Local`, `Zone`
    /// or `GeoZone`.
    pub backup_storage_redundancy: Option<String>,
    /// Default: the earliest of the history entries, `earliest_restore` and
    /// 35 days before start.
    pub created: Option<TimeSpec>,
    pub max_size_bytes: Option<u64>,
    /// `properties.licenseType`: `LicenseIncluded` (default) or `BasePrice`.
    pub license_type: Option<String>,
    /// `properties.maintenanceConfigurationId`, e.g.
    /// `/subscriptions/S/providers/Microsoft.Maintenance/publicMaintenanceConfigurations/SQL_WestEurope_DB_1`;
    /// default `SQL_Default`.
    pub maintenance_configuration_id: Option<String>,
    /// `properties.highAvailabilityReplicaCount`, 0-4; default 0.
    pub high_availability_replica_count: Option<u32>,
    /// `advancedThreatProtectionSettings/Default` `state`: `Enabled`,
    /// `Disabled`, or `New` (default: never set on this database; a
    /// restored database starts `New`).
    pub advanced_threat_protection: Option<String>,
    /// `properties.readScale`: `Enabled` or `Disabled`. Default: Enabled on
    /// Premium and Business Critical, Disabled elsewhere (a restored database
    /// gets its sku's default; only a PATCH changes it).
    pub read_scale: Option<String>,
    /// `properties.encryptionProtector`: the Key Vault key of a database-level
    /// customer-managed key (a restore without it falls back to the
    /// server's encryption).
    pub encryption_protector: Option<String>,
    /// Content over time; the content as of T is the latest entry with `at <= T`.
    pub history: Vec<HistoryEntry>,
}

/// Database-level auditing, as `auditingSettings/default` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditingSpec {
    /// `Enabled` or `Disabled` (default).
    pub state: String,
    pub storage_endpoint: Option<String>,
    pub retention_days: u32,
    pub is_azure_monitor_target_enabled: bool,
}

/// A geo-replication link of a database, as `replicationLinks` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicationLinkSpec {
    pub partner_server: String,
    pub partner_database: String,
    pub partner_location: String,
    /// `Primary` (default) or `Secondary`.
    pub role: String,
    /// `GEO` (default), `NAMED` or `STANDBY`.
    pub link_type: String,
}

impl Default for ReplicationLinkSpec {
    fn default() -> Self {
        Self {
            partner_server: String::new(),
            partner_database: String::new(),
            partner_location: "northeurope".into(),
            role: "Primary".into(),
            link_type: "GEO".into(),
        }
    }
}

/// A long-term retention policy: ISO 8601 durations such as `P12W`, `P6M`,
/// `P5Y` (absent = `PT0S`, none); `week_of_year` 1-52 goes with `yearly`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LtrSpec {
    pub weekly: Option<String>,
    pub monthly: Option<String>,
    pub yearly: Option<String>,
    pub week_of_year: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SkuSpec {
    pub name: String,
    /// Inferred from the name when absent (`GP_` -> GeneralPurpose, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryEntry {
    pub at: TimeSpec,
    pub content: String,
}

/// A VM that accepts run commands (`Microsoft.Compute/virtualMachines`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VmSpec {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    /// Windows services installed on the VM; all start `Running`.
    pub services: Vec<String>,
    /// The AOS configuration under `%ServiceDrive%\AOSService\webroot\bin`
    /// (what d365fo.tools' `Get-D365DatabaseAccess` reads through
    /// `EnvironmentFactory::GetApplicationEnvironment()`): a script calling it
    /// gets `DataAccess` = {DbServer, Database, SqlUser, SqlPwd} from here.
    /// Absent: the VM is no AOS and such a script fails (exit code 1).
    pub aos: Option<AosSpec>,
}

/// An AOS's own database access (its `DataAccess` section).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AosSpec {
    /// `DataAccess.DbServer`: `sql-x.database.windows.net` or `sql-x`.
    pub server: String,
    /// `DataAccess.Database`.
    pub database: String,
    /// `DataAccess.SqlUser`.
    pub sql_user: String,
    /// `DataAccess.SqlPwd`. A sync that logs in with it succeeds only
    /// against this server and database.
    pub sql_password: String,
}

/// `properties.requestedBackupStorageRedundancy` values Azure accepts.
pub const BACKUP_REDUNDANCIES: [&str; 4] = ["Geo", "Local", "Zone", "GeoZone"];

/// The canonical spelling of a backup storage redundancy, if it is one.
pub fn backup_redundancy(s: &str) -> Option<&'static str> {
    BACKUP_REDUNDANCIES
        .iter()
        .find(|r| r.eq_ignore_ascii_case(s.trim()))
        .copied()
}

fn is_bad_name(s: &str) -> bool {
    s.trim().is_empty() || s.contains(['/', '?', '#', '\\'])
}

impl Scenario {
    pub fn from_toml_str(s: &str) -> Result<Scenario, MockError> {
        Self::parse(s, "(inline)")
    }

    pub fn from_file(path: &Path) -> Result<Scenario, MockError> {
        let text = std::fs::read_to_string(path).map_err(|source| MockError::ReadScenario {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    fn parse(s: &str, origin: &str) -> Result<Scenario, MockError> {
        let scenario: Scenario = toml::from_str(s).map_err(|e| MockError::ParseScenario {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        scenario.validate_as(origin)?;
        Ok(scenario)
    }

    /// Structural checks (names, duplicates, faults). Time ordering is checked
    /// when the times are resolved, at start.
    pub fn validate(&self) -> Result<(), MockError> {
        self.validate_as("(in code)")
    }

    pub(crate) fn validate_as(&self, origin: &str) -> Result<(), MockError> {
        let invalid = |what: String, hint: String| MockError::InvalidScenario {
            origin: origin.to_string(),
            what,
            hint,
        };
        if let Err(e) = self.settings.throttle.check() {
            return Err(invalid(
                e,
                "see [settings.throttle] in config/mock-scenario.toml".into(),
            ));
        }
        self.settings
            .check_restored()
            .map_err(|(what, hint)| invalid(what, hint))?;
        let mut server_names: Vec<String> = Vec::new();
        for (i, srv) in self.servers.iter().enumerate() {
            let at = format!("servers[{i}] ({})", srv.name);
            for (field, v) in [
                ("subscription_id", &srv.subscription_id),
                ("resource_group", &srv.resource_group),
                ("name", &srv.name),
                ("location", &srv.location),
            ] {
                if is_bad_name(v) {
                    return Err(invalid(
                        format!("{at}.{field} '{v}'"),
                        "give a non-empty value without '/', '?', '#' or '\\'".into(),
                    ));
                }
            }
            let lname = srv.name.to_ascii_lowercase();
            if server_names.contains(&lname) {
                return Err(invalid(
                    format!("{at}: server name '{}' appears twice", srv.name),
                    "SQL server names are globally unique: rename one of them".into(),
                ));
            }
            server_names.push(lname);
            let mut db_names: Vec<String> = Vec::new();
            for (j, db) in srv.databases.iter().enumerate() {
                let dat = format!("{at}.databases[{j}] ({})", db.name);
                if is_bad_name(&db.name) {
                    return Err(invalid(
                        format!("{dat}.name '{}'", db.name),
                        "give a non-empty name without '/', '?', '#' or '\\'".into(),
                    ));
                }
                let l = db.name.to_ascii_lowercase();
                if db_names.contains(&l) {
                    return Err(invalid(
                        format!("{dat}: database '{}' appears twice on the server", db.name),
                        "remove or rename the duplicate".into(),
                    ));
                }
                db_names.push(l);
                if let Some(sku) = &db.sku {
                    if sku.name.trim().is_empty() {
                        return Err(invalid(
                            format!("{dat}.sku"),
                            "sku.name is required, e.g. \"GP_Gen5\"".into(),
                        ));
                    }
                }
                if let Some(pool) = &db.elastic_pool_id {
                    if pool.trim().is_empty() {
                        return Err(invalid(
                            format!("{dat}.elastic_pool_id"),
                            "give the pool's full resource id or leave the key out".into(),
                        ));
                    }
                }
                if let Some(days) = db.retention_days {
                    if !(1..=35).contains(&days) {
                        return Err(invalid(
                            format!("{dat}.retention_days {days}"),
                            "Azure keeps point-in-time backups 1 to 35 days".into(),
                        ));
                    }
                }
                if let Some(h) = db.diff_backup_hours {
                    if h != 12 && h != 24 {
                        return Err(invalid(
                            format!("{dat}.diff_backup_hours {h}"),
                            "Azure takes differential backups every 12 or 24 hours".into(),
                        ));
                    }
                }
                if let Some(l) = &db.license_type {
                    if !matches!(l.as_str(), "LicenseIncluded" | "BasePrice") {
                        return Err(invalid(
                            format!("{dat}.license_type '{l}'"),
                            "use LicenseIncluded or BasePrice".into(),
                        ));
                    }
                }
                if db.high_availability_replica_count.is_some_and(|n| n > 4) {
                    return Err(invalid(
                        format!("{dat}.high_availability_replica_count"),
                        "Azure allows 0 to 4 high-availability replicas".into(),
                    ));
                }
                for (key, v, allowed) in [
                    (
                        "advanced_threat_protection",
                        &db.advanced_threat_protection,
                        &["Enabled", "Disabled", "New"][..],
                    ),
                    ("read_scale", &db.read_scale, &["Enabled", "Disabled"][..]),
                ] {
                    if let Some(v) = v {
                        if !allowed.contains(&v.as_str()) {
                            return Err(invalid(
                                format!("{dat}.{key} '{v}'"),
                                format!("use one of {}", allowed.join(", ")),
                            ));
                        }
                    }
                }
                if let Some(a) = &db.auditing {
                    if !matches!(a.state.as_str(), "Enabled" | "Disabled") {
                        return Err(invalid(
                            format!("{dat}.auditing.state '{}'", a.state),
                            "use Enabled or Disabled".into(),
                        ));
                    }
                }
                for link in &db.replication_links {
                    if link.partner_server.trim().is_empty() {
                        return Err(invalid(
                            format!("{dat}.replication_links"),
                            "each link names its partner_server (and partner_database)".into(),
                        ));
                    }
                }
                if let Some(ltr) = &db.long_term_retention {
                    if let Err(why) = super::backup::ltr_from_spec(ltr) {
                        return Err(invalid(format!("{dat}.long_term_retention"), why));
                    }
                }
                if let Some(r) = &db.backup_storage_redundancy {
                    if backup_redundancy(r).is_none() {
                        return Err(invalid(
                            format!("{dat}.backup_storage_redundancy '{r}'"),
                            format!("use one of {}", BACKUP_REDUNDANCIES.join(", ")),
                        ));
                    }
                }
                if db.tags.keys().any(|k| k.trim().is_empty()) {
                    return Err(invalid(
                        format!("{dat}.tags"),
                        "tag names must not be empty".into(),
                    ));
                }
            }
        }
        let mut vm_keys: Vec<String> = Vec::new();
        for (i, vm) in self.vms.iter().enumerate() {
            let at = format!("vms[{i}] ({})", vm.name);
            for (field, v) in [
                ("subscription_id", &vm.subscription_id),
                ("resource_group", &vm.resource_group),
                ("name", &vm.name),
                ("location", &vm.location),
            ] {
                if is_bad_name(v) {
                    return Err(invalid(
                        format!("{at}.{field} '{v}'"),
                        "give a non-empty value without '/', '?', '#' or '\\'".into(),
                    ));
                }
            }
            let key = format!("{}/{}/{}", vm.subscription_id, vm.resource_group, vm.name)
                .to_ascii_lowercase();
            if vm_keys.contains(&key) {
                return Err(invalid(
                    format!("{at}: VM appears twice in the same resource group"),
                    "remove or rename the duplicate".into(),
                ));
            }
            vm_keys.push(key);
            if vm.services.iter().any(|s| s.trim().is_empty()) {
                return Err(invalid(
                    format!("{at}.services"),
                    "service names must not be empty".into(),
                ));
            }
            if let Some(aos) = &vm.aos {
                for (field, v) in [
                    ("server", &aos.server),
                    ("database", &aos.database),
                    ("sql_user", &aos.sql_user),
                ] {
                    if v.trim().is_empty() {
                        return Err(invalid(
                            format!("{at}.aos.{field}"),
                            "give the AOS's DataAccess value (server, database and sql_user are required)".into(),
                        ));
                    }
                }
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            f.check()
                .map_err(|hint| invalid(format!("faults[{i}]"), hint))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
