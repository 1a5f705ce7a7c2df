//! The shapes of the ARM requests and answers used (Microsoft.Sql 2023-08-01,
//! Microsoft.Compute 2024-07-01), written from the public REST specification.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
}

impl Database {
    pub fn status(&self) -> &str {
        self.properties.status.as_deref().unwrap_or("Unknown")
    }
    pub fn is_online(&self) -> bool {
        self.status() == "Online"
    }
    pub fn database_id(&self) -> Option<&str> {
        self.properties.database_id.as_deref()
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
}

impl RestoreSpec {
    pub fn body(&self) -> serde_json::Value {
        let mut props = serde_json::json!({
            "createMode": "PointInTimeRestore",
            "sourceDatabaseId": self.source_database_id,
            "restorePointInTime": self.restore_point.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        });
        let mut body = serde_json::json!({ "location": self.location });
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

/// The output of a Run Command (last 4,096 bytes of each stream).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunCommandOutput {
    pub stdout: String,
    pub stderr: String,
}

impl RunCommandOutput {
    pub fn from_json(v: &serde_json::Value) -> Self {
        let mut out = Self::default();
        if let Some(items) = v.get("value").and_then(|x| x.as_array()) {
            for item in items {
                let code = item.get("code").and_then(|c| c.as_str()).unwrap_or("");
                let msg = item.get("message").and_then(|c| c.as_str()).unwrap_or("");
                if code.contains("StdOut") {
                    out.stdout.push_str(msg);
                } else if code.contains("StdErr") {
                    out.stderr.push_str(msg);
                }
            }
        }
        out
    }

    /// The script's exit code from its final `pitr-exit-code: N` line. The
    /// Run Command operation itself succeeds even when the script fails, so
    /// the scripts print this line and a missing one means "unknown".
    pub fn exit_code(&self) -> Option<i32> {
        self.stdout
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("pitr-exit-code:"))
            .and_then(|n| n.trim().parse().ok())
    }
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
        };
        let b = spec.body();
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
    fn exit_code_is_read_from_the_last_marker() {
        let v = serde_json::json!({"value":[
            {"code":"ComponentStatus/StdOut/succeeded","message":"a\npitr-exit-code: 0\nb\npitr-exit-code: 3\n"},
            {"code":"ComponentStatus/StdErr/succeeded","message":"boom"}]});
        let o = RunCommandOutput::from_json(&v);
        assert_eq!(o.exit_code(), Some(3));
        assert_eq!(o.stderr, "boom");
        assert_eq!(RunCommandOutput::default().exit_code(), None);
    }
}
