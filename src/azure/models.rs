//! The shapes of the ARM requests and answers used (Microsoft.Sql 2023-08-01,
//! Microsoft.Compute 2024-07-01), written from the public REST specification.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SQL_API_VERSION: &str = "2023-08-01";
pub const COMPUTE_API_VERSION: &str = "2024-07-01";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Database {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub sku: Option<serde_json::Value>,
    /// Azure does not copy tags to a restored database: pitr does.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub properties: DatabaseProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseProperties {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub database_id: Option<String>,
    #[serde(default)]
    pub creation_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub earliest_restore_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub elastic_pool_id: Option<String>,
    #[serde(default)]
    pub current_service_objective_name: Option<String>,
    #[serde(default)]
    pub zone_redundant: Option<bool>,
    #[serde(default)]
    pub current_backup_storage_redundancy: Option<String>,
    #[serde(default)]
    pub requested_backup_storage_redundancy: Option<String>,
    /// Set when the database is in a failover group.
    #[serde(default)]
    pub failover_group_id: Option<String>,
    /// Every other property, as Azure sent it.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Database {
    pub fn status(&self) -> &str {
        self.properties.status.as_deref().unwrap_or("Unknown")
    }
    pub fn is_online(&self) -> bool {
        self.phase() == super::states::Phase::Done
    }
    /// Where its `status` stands ([`super::states::DATABASE_STATUSES`]).
    pub fn phase(&self) -> super::states::Phase {
        super::states::database_status(self.status())
    }
    pub fn database_id(&self) -> Option<&str> {
        self.properties.database_id.as_deref()
    }
    /// A text property pitr has no field for (`readScale`,
    /// `encryptionProtector`, ...), as Azure sent it.
    pub fn text_property(&self, key: &str) -> Option<&str> {
        self.properties.other.get(key).and_then(|v| v.as_str())
    }
}

impl Database {
    /// The backup storage redundancy the database has (or was asked for).
    pub fn backup_redundancy(&self) -> Option<&str> {
        self.properties
            .current_backup_storage_redundancy
            .as_deref()
            .or(self
                .properties
                .requested_backup_storage_redundancy
                .as_deref())
    }
}

/// A point-in-time restore into a new database.
#[derive(Debug, Clone)]
pub struct RestoreSpec {
    pub location: String,
    pub source_database_id: String,
    pub restore_point: DateTime<Utc>,
    /// Ignored when `elastic_pool_id` is set: Azure refuses a sku for a pool
    /// restore (`CannotSpecifyEditionOrSloWhenRestoringToPool`).
    pub sku: Option<serde_json::Value>,
    pub elastic_pool_id: Option<String>,
    /// What Azure would not copy from the source by itself.
    pub tags: BTreeMap<String, String>,
    pub zone_redundant: Option<bool>,
    pub backup_storage_redundancy: Option<String>,
    /// More `properties` to send as they are (the original's max size,
    /// license type, maintenance window, ...).
    pub properties: BTreeMap<String, serde_json::Value>,
}

impl RestoreSpec {
    pub fn body(&self) -> serde_json::Value {
        let mut props = serde_json::json!({
            "createMode": "PointInTimeRestore",
            "sourceDatabaseId": self.source_database_id,
            "restorePointInTime": self.restore_point.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        });
        let mut body = serde_json::json!({ "location": self.location });
        if !self.tags.is_empty() {
            body["tags"] = serde_json::json!(self.tags);
        }
        if let Some(z) = self.zone_redundant {
            props["zoneRedundant"] = serde_json::Value::Bool(z);
        }
        if let Some(r) = &self.backup_storage_redundancy {
            props["requestedBackupStorageRedundancy"] = serde_json::Value::String(r.clone());
        }
        for (k, v) in &self.properties {
            props[k.as_str()] = v.clone();
        }
        if let Some(pool) = &self.elastic_pool_id {
            props["elasticPoolId"] = serde_json::Value::String(pool.clone());
        } else if let Some(sku) = &self.sku {
            // Only the fields a request may carry.
            let mut s = serde_json::Map::new();
            for k in ["name", "tier", "family", "capacity"] {
                if let Some(v) = sku.get(k) {
                    s.insert(k.to_string(), v.clone());
                }
            }
            body["sku"] = serde_json::Value::Object(s);
        }
        body["properties"] = props;
        body
    }
}

/// A managed Run Command to create (`PUT {VM}/runCommands/{name}`).
#[derive(Debug, Clone)]
pub struct RunCommandSpec {
    pub location: String,
    pub script: String,
    /// Reach the script as parameters; visible in the resource.
    pub parameters: Vec<(String, String)>,
    /// Reach the script as parameters; never returned by Azure.
    pub protected_parameters: Vec<(String, String)>,
    pub timeout_secs: u64,
}

impl RunCommandSpec {
    pub fn body(&self) -> serde_json::Value {
        let pairs = |ps: &[(String, String)]| {
            ps.iter()
                .map(|(n, v)| serde_json::json!({"name": n, "value": v}))
                .collect::<Vec<_>>()
        };
        let mut props = serde_json::json!({
            "source": {"script": self.script},
            "parameters": pairs(&self.parameters),
            "timeoutInSeconds": self.timeout_secs,
            "asyncExecution": false,
            "treatFailureAsDeploymentFailure": false,
        });
        if !self.protected_parameters.is_empty() {
            props["protectedParameters"] = serde_json::json!(pairs(&self.protected_parameters));
        }
        serde_json::json!({"location": self.location, "properties": props})
    }
}

/// A managed Run Command as `GET ...?$expand=instanceView` shows it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RunCommand {
    pub name: String,
    #[serde(default)]
    pub properties: RunCommandProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCommandProperties {
    #[serde(default)]
    pub provisioning_state: Option<String>,
    #[serde(default)]
    pub instance_view: Option<RunCommandInstanceView>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCommandInstanceView {
    #[serde(default)]
    pub execution_state: Option<String>,
    #[serde(default)]
    pub execution_message: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_time: Option<DateTime<Utc>>,
}

impl RunCommand {
    /// `executionState`: Unknown, Pending, Running, Failed, Succeeded,
    /// TimedOut or Canceled ("Unknown" when Azure gave none).
    pub fn execution_state(&self) -> &str {
        self.instance_view()
            .and_then(|v| v.execution_state.as_deref())
            .unwrap_or("Unknown")
    }

    pub fn instance_view(&self) -> Option<&RunCommandInstanceView> {
        self.properties.instance_view.as_ref()
    }

    /// The script has ended (whatever the outcome).
    pub fn is_finished(&self) -> bool {
        super::states::execution_state(self.execution_state()) == super::states::Phase::Done
    }
}

/// A virtual machine, as far as pitr needs it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VirtualMachine {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub location: String,
}

/// `{DB}/backupShortTermRetentionPolicies/default`: how far back a
/// point-in-time restore can go, and how often differentials are taken.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShortTermRetention {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_backup_interval_in_hours: Option<u32>,
}

/// `{DB}/backupLongTermRetentionPolicies/default`: ISO 8601 durations
/// (`PT0S`: none) and the week of the year the yearly copy is taken.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LongTermRetention {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly_retention: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_retention: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yearly_retention: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub week_of_year: Option<u32>,
}

/// One of a database's geo-replication links (`{DB}/replicationLinks`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationLink {
    #[serde(default)]
    pub partner_server: Option<String>,
    #[serde(default)]
    pub partner_database: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub link_type: Option<String>,
}

/// Database-level auditing (`{DB}/auditingSettings/default`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Auditing {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub storage_endpoint: Option<String>,
    #[serde(default)]
    pub is_azure_monitor_target_enabled: Option<bool>,
}

impl Auditing {
    pub fn is_enabled(&self) -> bool {
        self.state
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("Enabled"))
    }
}

/// A policy resource as ARM sends it: its settings under `properties`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct PolicyResource<P> {
    pub properties: P,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_body_follows_the_contract() {
        let spec = RestoreSpec {
            location: "westeurope".into(),
            source_database_id: "/subscriptions/s/x".into(),
            restore_point: "2026-11-20T08:30:00Z".parse().unwrap(),
            sku: Some(
                serde_json::json!({"name":"GP_Gen5","tier":"GeneralPurpose","capacity":4,"size":"x"}),
            ),
            elastic_pool_id: None,
            tags: BTreeMap::from([("cost-center".to_string(), "qa".to_string())]),
            zone_redundant: Some(false),
            backup_storage_redundancy: Some("Local".into()),
            properties: BTreeMap::from([
                (
                    "maxSizeBytes".to_string(),
                    serde_json::json!(107374182400u64),
                ),
                ("licenseType".to_string(), serde_json::json!("BasePrice")),
            ]),
        };
        let b = spec.body();
        assert_eq!(b["properties"]["maxSizeBytes"], 107374182400u64);
        assert_eq!(b["properties"]["licenseType"], "BasePrice");
        assert_eq!(b["tags"]["cost-center"], "qa");
        assert_eq!(b["properties"]["zoneRedundant"], false);
        assert_eq!(b["properties"]["requestedBackupStorageRedundancy"], "Local");
        assert_eq!(b["properties"]["createMode"], "PointInTimeRestore");
        assert_eq!(
            b["properties"]["restorePointInTime"],
            "2026-11-20T08:30:00Z"
        );
        // Never truncated: a point checked against earliestRestoreDate must
        // not move earlier on the wire.
        let precise = RestoreSpec {
            restore_point: "2026-11-20T08:30:00.123456Z".parse().unwrap(),
            ..spec.clone()
        };
        assert_eq!(
            precise.body()["properties"]["restorePointInTime"],
            "2026-11-20T08:30:00.123456Z"
        );
        assert_eq!(b["sku"]["capacity"], 4);
        assert!(b["sku"].get("size").is_none());
        let pooled = RestoreSpec {
            elastic_pool_id: Some("/pool".into()),
            ..spec
        };
        let b = pooled.body();
        assert!(b.get("sku").is_none());
        assert_eq!(b["properties"]["elasticPoolId"], "/pool");
    }

    #[test]
    fn a_managed_run_command_body_follows_the_contract() {
        let spec = RunCommandSpec {
            location: "westeurope".into(),
            script: "param([string]$PitrArgs)\nexit 0".into(),
            parameters: vec![("PitrArgs".into(), "e30".into())],
            protected_parameters: vec![],
            timeout_secs: 21600,
        };
        let b = spec.body();
        assert_eq!(b["properties"]["source"]["script"], spec.script);
        assert_eq!(b["properties"]["timeoutInSeconds"], 21600);
        assert_eq!(b["properties"]["asyncExecution"], false);
        assert_eq!(b["properties"]["parameters"][0]["name"], "PitrArgs");
        assert!(b["properties"].get("protectedParameters").is_none());
        let secret = RunCommandSpec {
            protected_parameters: vec![("PitrSecrets".into(), "x".into())],
            ..spec
        };
        assert_eq!(
            secret.body()["properties"]["protectedParameters"][0]["value"],
            "x"
        );
        // A stored instance view as Azure returns it.
        let rc: RunCommand = serde_json::from_str(
            r#"{"name":"c","properties":{"provisioningState":"Succeeded","instanceView":{"executionState":"Failed","exitCode":3,"output":"o","error":"e","startTime":"2026-11-26T04:10:29Z","endTime":"2026-11-26T06:40:02Z","statuses":[]}}}"#,
        )
        .unwrap();
        assert_eq!(rc.execution_state(), "Failed");
        assert!(rc.is_finished());
        assert_eq!(rc.instance_view().unwrap().exit_code, Some(3));
    }
}
