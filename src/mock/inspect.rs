//! `GET /_mock/state`: the mock's world as JSON, for tests and engineers.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::state::{params_json, ts, State};

impl State {
    pub fn state_json(&self, now: DateTime<Utc>) -> Value {
        let servers: Vec<Value> = self
            .servers
            .iter()
            .map(|s| {
                let dbs: Vec<Value> = s
                    .databases
                    .iter()
                    .map(|d| {
                        json!({
                            "name": d.name,
                            "id": s.db_id(&d.name),
                            "database_id": d.database_id.to_string(),
                            "status": d.status,
                            "content": d.content_now(now),
                            "creation_date": ts(d.creation_date),
                            "earliest_restore_date": d.earliest_restore(now).map(ts),
                            "retention_days": d.retention_days,
                            "diff_backup_hours": d.diff_backup_hours,
                            "max_size_bytes": d.max_size_bytes,
                            "license_type": d.license_type,
                            "maintenance_configuration_id": d.maintenance_configuration_id,
                            "high_availability_replica_count": d.ha_replicas,
                            "advanced_threat_protection": d.atp_state,
                            "read_scale": d.read_scale,
                            "long_term_retention": {
                                "weekly": d.ltr.weekly,
                                "monthly": d.ltr.monthly,
                                "yearly": d.ltr.yearly,
                                "week_of_year": d.ltr.week_of_year,
                            },
                            "sku": d.sku,
                            "elastic_pool_id": d.elastic_pool_id,
                            "tags": d.tags,
                            "zone_redundant": d.zone_redundant,
                            "backup_storage_redundancy": d.backup_redundancy,
                        })
                    })
                    .collect();
                json!({
                    "subscription_id": s.subscription_id,
                    "resource_group": s.resource_group,
                    "name": s.name,
                    "location": s.location,
                    "databases": dbs,
                })
            })
            .collect();
        let vms: Vec<Value> = self
            .vms
            .iter()
            .map(|v| {
                let services: serde_json::Map<String, Value> = v
                    .services
                    .iter()
                    .map(|(n, st)| (n.clone(), json!(st)))
                    .collect();
                let rcs: Vec<Value> = v
                    .run_commands
                    .iter()
                    .map(|r| {
                        json!({
                            "seq": r.seq,
                            "operation_id": r.operation_id.to_string(),
                            "status": r.status,
                            "completed_seq": r.completed_seq,
                            "kind": r.kind.as_str(),
                            "services": r.services,
                            "parameters": params_json(&r.parameters),
                            "exit_code": r.exit_code,
                            "synced_database_id": r.synced_database_id.map(|u| u.to_string()),
                        })
                    })
                    .collect();
                let managed: Vec<Value> = v.managed.iter().map(|m| m.state_json()).collect();
                json!({
                    "id": v.id(),
                    "name": v.name,
                    "location": v.location,
                    "vm_id": v.vm_id.to_string(),
                    "removed": v.removed,
                    "aos": v.aos.as_ref().map(|a| json!({"server": a.server, "database": a.database, "sql_user": a.sql_user})),
                    "services": services,
                    "run_commands": rcs,
                    "managed_run_commands": managed,
                })
            })
            .collect();
        let ops: Vec<Value> = self
            .operations
            .iter()
            .map(|o| {
                json!({
                    "id": o.id.to_string(),
                    "kind": o.kind.as_str(),
                    "status": o.status.as_str(),
                    "polls": o.polls,
                    "target": o.target,
                    "start_time": ts(o.start),
                    "end_time": o.end.map(ts),
                    "completed_seq": o.completed_seq,
                    "api_version": o.api_version,
                    "error": o.error.as_ref().map(|e| json!({"code": e.code, "message": e.message})),
                })
            })
            .collect();
        let held: Vec<&str> = self.held.iter().map(|k| k.as_str()).collect();
        json!({
            "now": ts(now),
            "servers": servers,
            "vms": vms,
            "operations": ops,
            "held": held,
            "held_scripts": self.held_scripts,
        })
    }
}
