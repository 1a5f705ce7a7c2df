//! `POST /_mock/database` and `POST /_mock/remove-vm`: what someone else
//! (an operator in the portal, another tool, Azure itself) does to the
//! world while a run goes on, so that a test or an engineer can rehearse
//! what pitr finds when it looks again.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::http::Reply;
use super::model::{complete_sku, default_sku, Database};
use super::scenario::{backup_redundancy, SkuSpec, BACKUP_REDUNDANCIES};
use super::state::{State, DEFAULT_RETENTION_DAYS};

const DATABASE_BODY: &str = "{\"server\": \"sql-x\", \"name\": \"AxDB\", and any of \"status\", \"content\", \"sku\", \"elastic_pool_id\" (\"\" for none), \"zone_redundant\", \"backup_storage_redundancy\", \"tags\", \"license_type\", \"rename_to\", \"remove\": true}";

/// A database to create (when no database has the name) or alter; only the
/// fields given change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseBody {
    server: String,
    name: String,
    status: Option<String>,
    /// The content from now on (a new database: its only content).
    content: Option<String>,
    sku: Option<SkuSpec>,
    elastic_pool_id: Option<String>,
    zone_redundant: Option<bool>,
    backup_storage_redundancy: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    /// `properties.licenseType`: `LicenseIncluded` or `BasePrice`.
    license_type: Option<String>,
    /// A rename, as `POST .../move` would do, without its checks (the
    /// database may be in any status).
    rename_to: Option<String>,
    /// Drop the database at once (no operation).
    #[serde(default)]
    remove: bool,
}

fn bad(message: impl Into<String>) -> Reply {
    Reply::arm_error(400, "InvalidMockRequest", message)
}

pub(crate) fn database(st: &mut State, body: &[u8], now: DateTime<Utc>) -> Reply {
    let b: DatabaseBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => return bad(format!("expected {DATABASE_BODY}: {e}")),
    };
    let redundancy = match b.backup_storage_redundancy.as_deref() {
        None => None,
        Some(r) => match backup_redundancy(r) {
            Some(r) => Some(r),
            None => {
                return bad(format!(
                    "backup_storage_redundancy '{r}': use one of {}",
                    BACKUP_REDUNDANCIES.join(", ")
                ))
            }
        },
    };
    let srv = match super::sql::server_named(st, &b.server) {
        Ok(srv) => srv,
        Err(reply) => return reply,
    };
    let found = srv.find_db(&b.name);
    if b.remove {
        let Some(i) = found else {
            return Reply::arm_error(
                404,
                "NotFound",
                format!("no database '{}' on server '{}'", b.name, srv.name),
            );
        };
        let gone = srv.databases.remove(i);
        return Reply::json(
            200,
            json!({"removed": gone.name, "database_id": gone.database_id.to_string()}),
        );
    }
    if let Some(to) = &b.rename_to {
        if found.is_none() {
            return Reply::arm_error(
                404,
                "NotFound",
                format!(
                    "no database '{}' on server '{}' to rename",
                    b.name, srv.name
                ),
            );
        }
        if srv.find_db(to).is_some() {
            return Reply::arm_error(
                409,
                "DatabaseNameInUse",
                format!("database '{to}' already exists on server '{}'", srv.name),
            );
        }
    }
    let i = match found {
        Some(i) => i,
        None => {
            srv.databases.push(Database {
                name: b.name.clone(),
                database_id: Uuid::new_v4(),
                status: "Online".into(),
                history: vec![(now, b.content.clone().unwrap_or_default())],
                creation_date: now,
                earliest_fixed: None,
                backup_floor: None,
                retention_days: DEFAULT_RETENTION_DAYS,
                diff_backup_hours: super::backup::DEFAULT_DIFF_BACKUP_HOURS,
                ltr: Default::default(),
                replication_links: Vec::new(),
                failover_group_id: None,
                auditing: None,
                license_type: "LicenseIncluded".into(),
                maintenance_configuration_id: None,
                ha_replicas: 0,
                encryption_protector: None,
                atp_state: "New".into(),
                read_scale: "Disabled".into(),
                sku: default_sku(),
                elastic_pool_id: None,
                max_size_bytes: 268_435_456_000,
                tags: BTreeMap::new(),
                zone_redundant: false,
                backup_redundancy: "Geo",
            });
            srv.databases.len() - 1
        }
    };
    let d = &mut srv.databases[i];
    if let Some(s) = b.status {
        d.status = s;
    }
    if let Some(c) = b.content {
        if found.is_some() {
            d.history.push((now, c));
        }
    }
    if let Some(l) = b.license_type {
        if !matches!(l.as_str(), "LicenseIncluded" | "BasePrice") {
            return bad(format!(
                "license_type '{l}': use LicenseIncluded or BasePrice"
            ));
        }
        d.license_type = l;
    }
    if let Some(sku) = b.sku {
        d.sku = complete_sku(sku);
    }
    if let Some(pool) = b.elastic_pool_id {
        d.elastic_pool_id = Some(pool).filter(|p| !p.is_empty());
    }
    if let Some(z) = b.zone_redundant {
        d.zone_redundant = z;
    }
    if let Some(r) = redundancy {
        d.backup_redundancy = r;
    }
    if let Some(tags) = b.tags {
        d.tags = tags;
    }
    if let Some(to) = b.rename_to {
        d.name = to;
    }
    Reply::json(
        200,
        json!({
            "name": d.name,
            "database_id": d.database_id.to_string(),
            "status": d.status,
            "created": found.is_none(),
        }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveVmBody {
    /// The VM's full resource id, or its name when that is unique.
    vm: String,
}

pub(crate) fn remove_vm(st: &mut State, body: &[u8]) -> Reply {
    let b: RemoveVmBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => {
            return bad(format!(
                "expected {{\"vm\": \"<resource id or name>\"}}: {e}"
            ))
        }
    };
    let matches: Vec<usize> = st
        .vms
        .iter()
        .enumerate()
        .filter(|(_, v)| {
            !v.removed && (v.id().eq_ignore_ascii_case(&b.vm) || v.name.eq_ignore_ascii_case(&b.vm))
        })
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [i] => {
            st.vms[*i].removed = true;
            Reply::json(200, json!({"removed": st.vms[*i].id()}))
        }
        [] => Reply::arm_error(404, "NotFound", format!("no VM '{}' in the mock", b.vm)),
        _ => bad(format!(
            "{} VMs are named '{}': give the full resource id",
            matches.len(),
            b.vm
        )),
    }
}
