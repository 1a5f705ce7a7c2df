//! Reading the optional parts of a database PUT body: `sku`, `tags`,
//! `properties.zoneRedundant` and `properties.requestedBackupStorageRedundancy`;
//! and database resource ids (`sourceDatabaseId`, a rename's target).

use std::collections::BTreeMap;

use serde_json::Value;

use super::arm::eq;
use super::http::Reply;
use super::scenario::{backup_redundancy, SkuSpec, BACKUP_REDUNDANCIES};
use super::state::complete_sku;

fn invalid(message: String) -> Reply {
    Reply::arm_error(400, "InvalidRequestContent", message)
}

pub(crate) fn parse_sku(v: &Value) -> Result<Option<SkuSpec>, Reply> {
    match v {
        Value::Null => Ok(None),
        Value::Object(m) => {
            let name = m.get("name").and_then(Value::as_str).unwrap_or("").trim();
            if name.is_empty() {
                return Err(invalid(
                    "The request content was invalid: 'sku.name' is required when 'sku' is given."
                        .into(),
                ));
            }
            let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
            let capacity = m
                .get("capacity")
                .and_then(Value::as_u64)
                .and_then(|c| u32::try_from(c).ok());
            Ok(Some(complete_sku(SkuSpec {
                name: name.to_string(),
                tier: s("tier"),
                family: s("family"),
                capacity,
            })))
        }
        _ => Err(invalid(
            "The request content was invalid: 'sku' must be an object.".into(),
        )),
    }
}

/// What a new database takes from the PUT besides its sku, with Azure's
/// defaults (no tags, not zone redundant, Geo backups).
pub(crate) struct DbExtras {
    pub tags: BTreeMap<String, String>,
    pub zone_redundant: bool,
    pub backup_redundancy: &'static str,
    /// `properties.maxSizeBytes` (absent: Azure's default for the sku).
    pub max_size_bytes: Option<u64>,
    pub license_type: String,
    pub maintenance_configuration_id: Option<String>,
    pub ha_replicas: u32,
}

/// Azure's default max size of a new vCore database, 32 GiB (the source's
/// is not copied by a restore that does not ask for it).
pub(crate) const DEFAULT_MAX_SIZE_BYTES: u64 = 34_359_738_368;

impl DbExtras {
    pub fn parse(body: &Value) -> Result<DbExtras, Reply> {
        let mut tags = BTreeMap::new();
        match body.get("tags") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let Some(s) = v.as_str() else {
                        return Err(invalid(format!(
                            "The request content was invalid: the value of tag '{k}' must be a string."
                        )));
                    };
                    tags.insert(k.clone(), s.to_string());
                }
            }
            Some(_) => {
                return Err(invalid(
                    "The request content was invalid: 'tags' must be an object of strings.".into(),
                ))
            }
        }
        let props = body.get("properties");
        let zone_redundant = match props.and_then(|p| p.get("zoneRedundant")) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(invalid(
                    "The request content was invalid: 'properties.zoneRedundant' must be true or false."
                        .into(),
                ))
            }
        };
        let backup_redundancy = match props.and_then(|p| p.get("requestedBackupStorageRedundancy")) {
            None | Some(Value::Null) => "Geo",
            Some(v) => match v.as_str().and_then(backup_redundancy) {
                Some(r) => r,
                None => {
                    return Err(invalid(format!(
                        "The request content was invalid: 'properties.requestedBackupStorageRedundancy' {v} is not one of {}.",
                        BACKUP_REDUNDANCIES.join(", ")
                    )))
                }
            },
        };
        let get = |k: &str| props.and_then(|p| p.get(k)).filter(|v| !v.is_null());
        let max_size_bytes = match get("maxSizeBytes") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Some(n),
                _ => {
                    return Err(Reply::arm_error(
                        400,
                        "InvalidMaxSizeTierCombination",
                        format!("The requested database size {v} is not a valid size for the database's service objective."),
                    ))
                }
            },
        };
        let license_type = match get("licenseType") {
            None => "LicenseIncluded".to_string(),
            Some(v) => match v.as_str() {
                Some(l @ ("LicenseIncluded" | "BasePrice")) => l.to_string(),
                _ => {
                    return Err(Reply::arm_error(
                        400,
                        "InvalidLicenseType",
                        format!("License type {v} is not valid: use LicenseIncluded or BasePrice."),
                    ))
                }
            },
        };
        let maintenance_configuration_id = match get("maintenanceConfigurationId") {
            None => None,
            Some(v) => match v.as_str() {
                Some(id) if id.contains("/providers/Microsoft.Maintenance/publicMaintenanceConfigurations/") => {
                    Some(id.to_string())
                }
                _ => {
                    return Err(Reply::arm_error(
                        400,
                        "InvalidPublicMaintenanceConfiguration",
                        format!("The maintenance configuration {v} is not a public maintenance configuration id."),
                    ))
                }
            },
        };
        let ha_replicas = match get("highAvailabilityReplicaCount") {
            None => 0,
            Some(v) => match v.as_u64() {
                Some(n) if n <= 4 => n as u32,
                _ => {
                    return Err(invalid(format!(
                        "The request content was invalid: 'properties.highAvailabilityReplicaCount' {v} must be 0 to 4."
                    )))
                }
            },
        };
        Ok(DbExtras {
            tags,
            zone_redundant,
            backup_redundancy,
            max_size_bytes,
            license_type,
            maintenance_configuration_id,
            ha_replicas,
        })
    }
}

/// A parsed `/subscriptions/../resourceGroups/../providers/Microsoft.Sql/servers/../databases/..` id.
pub(crate) struct DbRef {
    pub sub: String,
    pub rg: String,
    pub server: String,
    pub db: String,
}

pub(crate) fn parse_db_id(id: &str) -> Option<DbRef> {
    let path = id.split(['?', '#']).next().unwrap_or("");
    // Callers sometimes pass the full URL; only the path is the id.
    let path = match path.find("/subscriptions/") {
        Some(i) => &path[i..],
        None => path,
    };
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        [su, sub, rgs, rg, p, ms, srvs, server, dbs, db]
            if eq(su, "subscriptions")
                && eq(rgs, "resourcegroups")
                && eq(p, "providers")
                && eq(ms, "microsoft.sql")
                && eq(srvs, "servers")
                && eq(dbs, "databases") =>
        {
            Some(DbRef {
                sub: sub.to_string(),
                rg: rg.to_string(),
                server: server.to_string(),
                db: db.to_string(),
            })
        }
        _ => None,
    }
}
