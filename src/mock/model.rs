//! What the mock's world is made of: servers and their databases, VMs and
//! their run commands, long-running operations, faults and the journal, as
//! plain data with their ARM JSON. `State` (in `state.rs`) holds them.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

pub(crate) use super::model_rc::*;
use super::scenario::{FaultSpec, SkuSpec};

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(Debug, Clone)]
pub(crate) struct Database {
    pub name: String,
    pub database_id: Uuid,
    pub status: String,
    /// Sorted by time.
    pub history: Vec<(DateTime<Utc>, String)>,
    pub creation_date: DateTime<Utc>,
    /// A fixed earliest restore date (the scenario's `earliest_restore`),
    /// until the retention is changed at run time.
    pub earliest_fixed: Option<DateTime<Utc>>,
    /// Backups before this instant are gone (set when the retention is
    /// raised: a longer retention does not bring purged backups back).
    pub backup_floor: Option<DateTime<Utc>>,
    /// Short-term retention, 1-35 days.
    pub retention_days: u32,
    /// Differential backups every 12 or 24 hours.
    pub diff_backup_hours: u32,
    /// Long-term retention (`backupLongTermRetentionPolicies/default`).
    pub ltr: Ltr,
    /// Geo-replication links (`{DB}/replicationLinks`): Azure refuses to
    /// rename a database that has one.
    pub replication_links: Vec<super::scenario::ReplicationLinkSpec>,
    /// `properties.failoverGroupId` of a database in a failover group.
    pub failover_group_id: Option<String>,
    /// Database-level auditing (`None`: off).
    pub auditing: Option<super::scenario::AuditingSpec>,
    /// `properties.licenseType`: `LicenseIncluded` (default) or `BasePrice`.
    pub license_type: String,
    /// `properties.maintenanceConfigurationId` (`None`: `SQL_Default`).
    pub maintenance_configuration_id: Option<String>,
    /// `properties.highAvailabilityReplicaCount` (default 0).
    pub ha_replicas: u32,
    /// `properties.encryptionProtector` (database-level CMK).
    pub encryption_protector: Option<String>,
    /// Defender's `advancedThreatProtectionSettings/Default` state.
    pub atp_state: String,
    /// `properties.readScale`.
    pub read_scale: String,
    pub sku: SkuSpec,
    pub elastic_pool_id: Option<String>,
    pub max_size_bytes: u64,
    pub tags: BTreeMap<String, String>,
    pub zone_redundant: bool,
    /// Current (= requested) backup storage redundancy: Geo, Local, Zone, GeoZone.
    pub backup_redundancy: &'static str,
}

/// The read scale-out a new database of this sku gets: on for Premium and
/// Business Critical.
pub(crate) fn default_read_scale(sku: &SkuSpec) -> String {
    match sku.tier.as_deref() {
        Some("Premium") | Some("BusinessCritical") => "Enabled",
        _ => "Disabled",
    }
    .to_string()
}

/// Read scale-out can be on only where the tier has readable replicas.
pub(crate) fn allows_read_scale(sku: &SkuSpec) -> bool {
    matches!(
        sku.tier.as_deref(),
        Some("Premium") | Some("BusinessCritical") | Some("Hyperscale")
    )
}

/// A long-term retention policy: ISO 8601 durations, `PT0S` = none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ltr {
    pub weekly: String,
    pub monthly: String,
    pub yearly: String,
    pub week_of_year: u32,
}

impl Default for Ltr {
    /// What a new or restored database has: no long-term retention.
    fn default() -> Self {
        Self {
            weekly: "PT0S".into(),
            monthly: "PT0S".into(),
            yearly: "PT0S".into(),
            week_of_year: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Server {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub databases: Vec<Database>,
}

impl Server {
    pub fn db_id(&self, db: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Sql/servers/{}/databases/{}",
            self.subscription_id, self.resource_group, self.name, db
        )
    }

    pub fn find_db(&self, name: &str) -> Option<usize> {
        self.databases
            .iter()
            .position(|d| d.name.eq_ignore_ascii_case(name))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum OpKind {
    Restore,
    Delete,
    RunCommand,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Restore => "restore",
            OpKind::Delete => "delete",
            OpKind::RunCommand => "run_command",
        }
    }

    pub fn parse(s: &str) -> Option<OpKind> {
        match s {
            "restore" => Some(OpKind::Restore),
            "delete" => Some(OpKind::Delete),
            "run_command" => Some(OpKind::RunCommand),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpStatus {
    InProgress,
    Succeeded,
    Failed,
    Canceled,
}

impl OpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OpStatus::InProgress => "InProgress",
            OpStatus::Succeeded => "Succeeded",
            OpStatus::Failed => "Failed",
            OpStatus::Canceled => "Canceled",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct OpError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// How an operation fault makes the operation end.
#[derive(Debug, Clone)]
pub(crate) enum Planned {
    Fail(OpError),
    NeverFinish,
    ExitCode { code: i32, message: String },
}

#[derive(Debug, Clone)]
pub(crate) enum OpDetail {
    Restore {
        server: usize,
        database_id: Uuid,
        /// The source's content as of the restore point, fixed when the
        /// restore starts (the restore point is in the past).
        content: String,
    },
    Delete {
        server: usize,
        database_id: Uuid,
    },
    RunCommand {
        vm: usize,
        script: String,
        /// As received (before the VM's command layer).
        parameters: Vec<(String, String)>,
        /// Managed run commands' `protectedParameters`, as received.
        protected: Vec<(String, String)>,
        /// The managed run command's name; None for the action run command.
        managed: Option<String>,
        stdout: String,
        stderr: String,
    },
    /// The operation of a managed run command with `asyncExecution`: it
    /// completes at once while the script goes on.
    Ack {
        vm: usize,
        name: String,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub id: Uuid,
    pub kind: OpKind,
    pub status: OpStatus,
    pub polls: u32,
    pub start: DateTime<Utc>,
    pub started_at: Instant,
    pub end: Option<DateTime<Utc>>,
    pub subscription_id: String,
    pub location: String,
    pub target: String,
    pub error: Option<OpError>,
    pub planned: Option<Planned>,
    pub completed_seq: Option<u64>,
    /// The api-version of the request that started it, carried by its URLs.
    pub api_version: String,
    pub detail: OpDetail,
}

#[derive(Debug, Clone)]
pub(crate) struct ActiveFault {
    pub spec: FaultSpec,
    /// None = unlimited.
    pub remaining: Option<u32>,
}

impl ActiveFault {
    pub fn new(spec: FaultSpec) -> ActiveFault {
        let remaining = match spec.times {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(1),
        };
        ActiveFault { spec, remaining }
    }

    /// Counts one use; true when the fault is now exhausted.
    pub(crate) fn consume(&mut self) -> bool {
        match &mut self.remaining {
            None => false,
            Some(n) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
        }
    }

    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(&self.spec).unwrap_or_else(|_| json!({}));
        if let Some(obj) = v.as_object_mut() {
            obj.insert("remaining".into(), json!(self.remaining));
        }
        v
    }
}

#[derive(Debug, Clone)]
pub(crate) struct JournalEntry {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub body: Value,
}

/// Latest history entry at or before `t`; "" when there is none.
pub(crate) fn content_as_of(history: &[(DateTime<Utc>, String)], t: DateTime<Utc>) -> String {
    history
        .iter()
        .filter(|(at, _)| *at <= t)
        .max_by_key(|(at, _)| *at)
        .map(|(_, c)| c.clone())
        .unwrap_or_default()
}

pub(crate) fn default_sku() -> SkuSpec {
    SkuSpec {
        name: "GP_Gen5".into(),
        tier: Some("GeneralPurpose".into()),
        family: Some("Gen5".into()),
        capacity: Some(4),
    }
}

pub(crate) fn pool_sku() -> SkuSpec {
    SkuSpec {
        name: "ElasticPool".into(),
        tier: Some("GeneralPurpose".into()),
        family: None,
        capacity: Some(0),
    }
}

/// Fills tier and family the way Azure reports them for well-known names.
pub(crate) fn complete_sku(mut sku: SkuSpec) -> SkuSpec {
    let upper = sku.name.to_ascii_uppercase();
    if sku.tier.is_none() {
        sku.tier = Some(
            if upper.starts_with("GP_") {
                "GeneralPurpose"
            } else if upper.starts_with("BC_") {
                "BusinessCritical"
            } else if upper.starts_with("HS_") {
                "Hyperscale"
            } else if upper.starts_with('S') {
                "Standard"
            } else if upper.starts_with('P') {
                "Premium"
            } else if upper == "BASIC" {
                "Basic"
            } else {
                "GeneralPurpose"
            }
            .to_string(),
        );
    }
    if sku.family.is_none() {
        if let Some(fam) = sku.name.split('_').nth(1) {
            if !fam.is_empty() {
                sku.family = Some(fam.to_string());
            }
        }
    }
    sku
}

fn is_vcore(sku: &SkuSpec) -> bool {
    matches!(
        sku.tier.as_deref(),
        Some("GeneralPurpose") | Some("BusinessCritical") | Some("Hyperscale")
    )
}

impl Database {
    /// `earliestRestoreDate`: None while the database is being restored (no
    /// backups yet); the fixed date if the scenario gave one; else the
    /// creation or `retention_days` ago, whichever is later.
    pub fn earliest_restore(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.status == "Restoring" {
            return None;
        }
        if let Some(fixed) = self.earliest_fixed {
            return Some(fixed);
        }
        let kept = now
            .checked_sub_signed(TimeDelta::days(i64::from(self.retention_days)))
            .unwrap_or(now);
        let mut e = self.creation_date.max(kept);
        if let Some(floor) = self.backup_floor {
            e = e.max(floor);
        }
        Some(e.min(now))
    }

    /// Changes the retention; the earliest restore date follows (backups
    /// already purged stay gone when it is raised).
    pub fn set_retention(&mut self, days: u32, now: DateTime<Utc>) {
        // Backups before today's earliest restore date are gone (or never
        // existed): a longer retention does not bring them back.
        self.backup_floor = self.earliest_restore(now).max(self.backup_floor);
        self.earliest_fixed = None;
        self.retention_days = days;
    }

    pub fn content_now(&self, now: DateTime<Utc>) -> Option<String> {
        if self.status == "Restoring" {
            return None;
        }
        Some(content_as_of(&self.history, now))
    }

    /// The ARM representation (see the contract's "Get a database").
    pub fn to_arm(&self, server: &Server, now: DateTime<Utc>) -> Value {
        let mut sku = serde_json::Map::new();
        sku.insert("name".into(), json!(self.sku.name));
        if let Some(t) = &self.sku.tier {
            sku.insert("tier".into(), json!(t));
        }
        if let Some(f) = &self.sku.family {
            sku.insert("family".into(), json!(f));
        }
        if let Some(c) = self.sku.capacity {
            sku.insert("capacity".into(), json!(c));
        }
        let slo = match (self.sku.capacity, self.sku.name.contains('_')) {
            (Some(c), true) => format!("{}_{}", self.sku.name, c),
            _ => self.sku.name.clone(),
        };
        let mut kind = String::from("v12.0,user");
        if is_vcore(&self.sku) {
            kind.push_str(",vcore");
        }
        if self.elastic_pool_id.is_some() {
            kind.push_str(",pool");
        }
        let mut v = json!({
            "id": server.db_id(&self.name),
            "name": self.name,
            "type": "Microsoft.Sql/servers/databases",
            "location": server.location,
            "kind": kind,
            "sku": Value::Object(sku),
            "properties": {
                "status": self.status,
                "databaseId": self.database_id.to_string(),
                "creationDate": ts(self.creation_date),
                "earliestRestoreDate": self.earliest_restore(now).map(ts),
                "currentServiceObjectiveName": slo,
                "elasticPoolId": self.elastic_pool_id,
                "maxSizeBytes": self.max_size_bytes,
                "zoneRedundant": self.zone_redundant,
                "currentBackupStorageRedundancy": self.backup_redundancy,
                "requestedBackupStorageRedundancy": self.backup_redundancy,
            }
        });
        v["properties"]["licenseType"] = json!(self.license_type);
        v["properties"]["highAvailabilityReplicaCount"] = json!(self.ha_replicas);
        v["properties"]["maintenanceConfigurationId"] = json!(self
            .maintenance_configuration_id
            .clone()
            .unwrap_or_else(|| format!(
                "/subscriptions/{}/providers/Microsoft.Maintenance/publicMaintenanceConfigurations/SQL_Default",
                server.subscription_id
            )));
        if let Some(fog) = &self.failover_group_id {
            v["properties"]["failoverGroupId"] = json!(fog);
        }
        v["properties"]["readScale"] = json!(self.read_scale);
        if let Some(key) = &self.encryption_protector {
            v["properties"]["encryptionProtector"] = json!(key);
        }
        // Like ARM, a resource without tags has no `tags` member.
        if !self.tags.is_empty() {
            v["tags"] = json!(self.tags);
        }
        v
    }
}

impl Database {
    /// `GET {DB}/replicationLinks`: the links as ARM lists them.
    pub fn replication_links_arm(&self, server: &Server) -> Value {
        let value: Vec<Value> = self
            .replication_links
            .iter()
            .enumerate()
            .map(|(i, l)| {
                // A stable id per link: the database's id and the link's place.
                let id = Uuid::from_u128(self.database_id.as_u128() ^ (i as u128 + 1));
                json!({
                    "id": format!("{}/replicationLinks/{id}", server.db_id(&self.name)),
                    "name": id.to_string(),
                    "type": "Microsoft.Sql/servers/databases/replicationLinks",
                    "properties": {
                        "partnerServer": l.partner_server,
                        "partnerDatabase": l.partner_database,
                        "partnerLocation": l.partner_location,
                        "role": l.role,
                        "partnerRole": if l.role.eq_ignore_ascii_case("Primary") { "Secondary" } else { "Primary" },
                        "replicationMode": "Async",
                        "replicationState": "CATCH_UP",
                        "isTerminationAllowed": true,
                        "linkType": l.link_type,
                    }
                })
            })
            .collect();
        json!({ "value": value })
    }

    /// `GET {DB}/auditingSettings/default`.
    pub fn auditing_arm(&self, server: &Server) -> Value {
        let off = super::scenario::AuditingSpec {
            state: "Disabled".into(),
            ..Default::default()
        };
        let a = self.auditing.as_ref().unwrap_or(&off);
        json!({
            "id": format!("{}/auditingSettings/Default", server.db_id(&self.name)),
            "name": "Default",
            "type": "Microsoft.Sql/servers/databases/auditingSettings",
            "properties": {
                "state": a.state,
                "storageEndpoint": a.storage_endpoint.clone().unwrap_or_default(),
                "retentionDays": a.retention_days,
                "auditActionsAndGroups": [
                    "SUCCESSFUL_DATABASE_AUTHENTICATION_GROUP",
                    "FAILED_DATABASE_AUTHENTICATION_GROUP",
                    "BATCH_COMPLETED_GROUP"
                ],
                "isStorageSecondaryKeyInUse": false,
                "isAzureMonitorTargetEnabled": a.is_azure_monitor_target_enabled,
            }
        })
    }

    /// In a replication relationship (a link or a failover group).
    pub fn is_replicated(&self) -> bool {
        !self.replication_links.is_empty() || self.failover_group_id.is_some()
    }
}
