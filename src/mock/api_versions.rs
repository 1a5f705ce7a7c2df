//! The api-versions the mock accepts, per provider and resource type, and
//! ARM's answer to any other.
//!
//! Sources:
//! - Microsoft.Sql: `azure-rest-api-specs`,
//!   `specification/sql/resource-manager/Microsoft.Sql/{stable,preview}/<ver>/`.
//!   `Databases.json` (databases GET/PUT/DELETE/list and `move`) and
//!   `BackupShortTermRetentionPolicies.json` are in the stable 2021-11-01,
//!   2023-08-01 and 2025-01-01 folders (/work/notes/python-sdk.md section 8);
//!   `Databases.json` was found in each preview folder listed below, and
//!   `BackupShortTermRetentionPolicies.json` in 2022-02-01-preview,
//!   2022-11-01-preview, 2023-05-01-preview and 2024-05-01-preview; the
//!   order of the previews follows Learn's API change log for
//!   Microsoft.Sql/servers/databases. Microsoft's Python SDK
//!   (azure-mgmt-sql 4.0.0) sends 2025-01-01.
//! - Microsoft.Compute: `virtualMachines/{vm}/runCommand` (POST) exists from
//!   2017-03-30 in every later Compute version; `runCommands/{name}` from
//!   2020-06-01 (`stable/2020-06-01/runCommands.json`), later in
//!   `ComputeRP/stable/<ver>/runCommand.json` (verified for 2024-07-01,
//!   2024-11-01, 2025-04-01), 2025-11-01 in the TypeSpec `Versions` enum, and
//!   2026-04-01 is azure-mgmt-compute 39.0.0's default (notes section 8).
//!   `GET {VM}` and the operation URLs take the same versions as the POST.

use super::http::{Reply, Req};

/// Microsoft.Sql: stable versions and the previews between them.
const SQL: &[&str] = &[
    "2021-11-01",
    "2022-02-01-preview",
    "2022-05-01-preview",
    "2022-08-01-preview",
    "2022-11-01-preview",
    "2023-02-01-preview",
    "2023-05-01-preview",
    "2023-08-01",
    "2023-08-01-preview",
    "2024-05-01-preview",
    "2024-11-01-preview",
    "2025-01-01",
];

/// Microsoft.Compute from 2017-03-30 (virtual machines, the action run
/// command, operations).
const COMPUTE: &[&str] = &[
    "2017-03-30",
    "2017-12-01",
    "2018-04-01",
    "2018-06-01",
    "2018-10-01",
    "2019-03-01",
    "2019-07-01",
    "2019-12-01",
    "2020-06-01",
    "2020-12-01",
    "2021-03-01",
    "2021-04-01",
    "2021-07-01",
    "2021-11-01",
    "2022-03-01",
    "2022-08-01",
    "2022-11-01",
    "2023-03-01",
    "2023-07-01",
    "2023-09-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
    "2025-04-01",
    "2025-11-01",
    "2026-04-01",
];

/// The index in [`COMPUTE`] of 2020-06-01, the first with managed run
/// commands.
const RUN_COMMANDS_FROM: usize = 8;

/// What a request addresses, for its api-version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiType {
    SqlDatabases,
    SqlRetention,
    SqlLongTermRetention,
    SqlReplicationLinks,
    SqlAuditing,
    SqlThreatProtection,
    SqlAsyncOperation,
    SqlOperationResults,
    ComputeVm,
    ComputeRunCommands,
    ComputeOperations,
}

/// One row of the table: the type (as ARM names it in its error, without
/// the provider namespace) and the versions accepted.
pub(crate) struct ApiRow {
    pub type_name: &'static str,
    pub versions: &'static [&'static str],
}

/// The table of accepted api-versions.
pub(crate) fn row(t: ApiType) -> ApiRow {
    // Microsoft.Sql, then Microsoft.Compute.
    let (type_name, versions) = match t {
        ApiType::SqlDatabases => ("servers/databases", SQL),
        ApiType::SqlRetention => ("servers/databases/backupShortTermRetentionPolicies", SQL),
        ApiType::SqlLongTermRetention => ("servers/databases/backupLongTermRetentionPolicies", SQL),
        ApiType::SqlReplicationLinks => ("servers/databases/replicationLinks", SQL),
        ApiType::SqlAuditing => ("servers/databases/auditingSettings", SQL),
        ApiType::SqlThreatProtection => ("servers/databases/advancedThreatProtectionSettings", SQL),
        ApiType::SqlAsyncOperation => ("locations/databaseAzureAsyncOperation", SQL),
        ApiType::SqlOperationResults => ("locations/databaseOperationResults", SQL),
        ApiType::ComputeVm => ("virtualMachines", COMPUTE),
        ApiType::ComputeRunCommands => {
            ("virtualMachines/runCommands", &COMPUTE[RUN_COMMANDS_FROM..])
        }
        ApiType::ComputeOperations => ("locations/operations", COMPUTE),
    };
    ApiRow {
        type_name,
        versions,
    }
}

/// The request's api-version if this type accepts it; else ARM's 400.
/// `location` is the resource's region, `locations` every region the mock
/// knows (for the message).
pub(crate) fn check(
    req: &Req,
    t: ApiType,
    location: &str,
    // Only asked for the error message (it lists every region: not per request).
    locations: impl FnOnce() -> Vec<String>,
) -> Result<String, Reply> {
    let Some(v) = req.param("api-version") else {
        return Err(Reply::arm_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    let r = row(t);
    if r.versions.contains(&v) {
        return Ok(v.to_string());
    }
    // ARM's resource-provider answer (e.g. pulumi/pulumi-azure-native#905):
    // versions joined with ", ", the type without its namespace.
    Err(Reply::arm_error(
        400,
        "NoRegisteredProviderFound",
        format!(
            "No registered resource provider found for location '{location}' and API version '{v}' for type '{}'. The supported api-versions are '{}'. The supported locations are '{}'.",
            r.type_name,
            r.versions.join(", "),
            locations().join(", "),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert!(row(ApiType::SqlDatabases).versions.contains(&"2025-01-01"));
        assert!(row(ApiType::SqlRetention).versions.contains(&"2021-11-01"));
        let rc = row(ApiType::ComputeRunCommands);
        assert_eq!(rc.versions.first(), Some(&"2020-06-01"));
        assert!(rc.versions.contains(&"2026-04-01"));
        assert!(!rc.versions.contains(&"2019-12-01"));
        let vm = row(ApiType::ComputeVm);
        assert_eq!(vm.versions.first(), Some(&"2017-03-30"));
        for versions in [SQL, COMPUTE] {
            let mut sorted = versions.to_vec();
            sorted.sort_unstable();
            assert_eq!(sorted, versions, "kept in order");
        }
    }
}
