//! Short-term backup retention: `GET {DB}/backupShortTermRetentionPolicies/default`
//! and the `/_mock/retention` control that changes it at run time.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::arm::{eq, NOT_FOUND_HINT};
use super::http::Reply;
use super::sql::{db_not_found, find_server};
use super::state::State;

/// Differential backups every 12 hours: Azure's default, fixed here.
const DIFF_BACKUP_INTERVAL_HOURS: u32 = 12;

pub(crate) fn get_policy(
    st: &State,
    sub: &str,
    rg: &str,
    server: &str,
    db: &str,
    policy: &str,
) -> Reply {
    let Some(si) = find_server(st, sub, rg, server) else {
        return db_not_found(rg, server, db);
    };
    let srv = &st.servers[si];
    let Some(di) = srv.find_db(db) else {
        return db_not_found(rg, server, db);
    };
    // The only policy a database has is `default`.
    if !eq(policy, "default") {
        return Reply::arm_error(
            404,
            "ResourceNotFound",
            format!("The Resource 'Microsoft.Sql/servers/{server}/databases/{db}/backupShortTermRetentionPolicies/{policy}' under resource group '{rg}' was not found. {NOT_FOUND_HINT}"),
        );
    }
    let d = &srv.databases[di];
    Reply::json(
        200,
        json!({
            "id": format!("{}/backupShortTermRetentionPolicies/default", srv.db_id(&d.name)),
            "name": "default",
            "type": "Microsoft.Sql/servers/databases/backupShortTermRetentionPolicies",
            "properties": {
                "retentionDays": d.retention_days,
                "diffBackupIntervalInHours": DIFF_BACKUP_INTERVAL_HOURS,
            }
        }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetentionBody {
    server: String,
    database: String,
    days: i64,
}

/// `POST /_mock/retention {"server", "database", "days"}`: the database's
/// retention becomes `days` (1-35) and its earliest restore date follows.
pub(crate) fn set_retention(st: &mut State, body: &[u8], now: DateTime<Utc>) -> Reply {
    let bad = |m: String| Reply::arm_error(400, "InvalidMockRequest", m);
    let b: RetentionBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => {
            return bad(format!(
                "expected {{\"server\": \"sql-x\", \"database\": \"AxDB\", \"days\": 1-35}}: {e}"
            ))
        }
    };
    let days = match u32::try_from(b.days) {
        Ok(d) if (1..=35).contains(&d) => d,
        _ => {
            return bad(format!(
                "days {} is out of range: Azure keeps point-in-time backups 1 to 35 days",
                b.days
            ))
        }
    };
    let Some(srv) = st
        .servers
        .iter_mut()
        .find(|s| s.name.eq_ignore_ascii_case(&b.server))
    else {
        return Reply::arm_error(
            404,
            "NotFound",
            format!("no server '{}' in the mock", b.server),
        );
    };
    let Some(di) = srv.find_db(&b.database) else {
        return Reply::arm_error(
            404,
            "NotFound",
            format!("no database '{}' on server '{}'", b.database, srv.name),
        );
    };
    let srv_ref = &*srv;
    let id = srv_ref.db_id(&srv_ref.databases[di].name);
    let d = &mut srv.databases[di];
    d.set_retention(days, now);
    Reply::json(
        200,
        json!({
            "id": id,
            "retention_days": d.retention_days,
            "earliest_restore_date": d.earliest_restore(now).map(super::state::ts),
        }),
    )
}
