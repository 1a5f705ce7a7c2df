//! Backup retention: `GET`/`PUT`/`PATCH {DB}/backupShortTermRetentionPolicies/default`,
//! `GET`/`PUT {DB}/backupLongTermRetentionPolicies/default`, and the
//! `/_mock/retention` control that changes the short-term one at run time.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::Reply;
use super::model::{Database, Ltr};
use super::scenario::LtrSpec;
use super::sql::{locate_db, only_default};
use super::state::State;

/// Differential backups every 12 hours: Azure's default (vCore).
pub(crate) const DEFAULT_DIFF_BACKUP_HOURS: u32 = 12;

/// Which of a database's two backup retention policies a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// `backupShortTermRetentionPolicies`: point-in-time restore.
    ShortTerm,
    /// `backupLongTermRetentionPolicies`: weekly, monthly, yearly copies.
    LongTerm,
}

impl Policy {
    fn collection(self) -> &'static str {
        match self {
            Self::ShortTerm => "backupShortTermRetentionPolicies",
            Self::LongTerm => "backupLongTermRetentionPolicies",
        }
    }
}

/// The database a policy request addresses, or the 404 Azure gives.
fn find<'a>(
    st: &'a mut State,
    path: (&str, &str, &str, &str),
    kind: Policy,
    policy: &str,
) -> Result<(String, &'a mut Database), Reply> {
    let (si, di) = locate_db(st, path)?;
    only_default(path, kind.collection(), policy)?;
    let srv = &mut st.servers[si];
    let id = format!(
        "{}/{}/default",
        srv.db_id(&srv.databases[di].name),
        kind.collection()
    );
    Ok((id, &mut srv.databases[di]))
}

fn policy_json(id: String, kind: Policy, d: &Database) -> Value {
    let properties = match kind {
        Policy::ShortTerm => json!({
            "retentionDays": d.retention_days,
            "diffBackupIntervalInHours": d.diff_backup_hours,
        }),
        Policy::LongTerm => json!({
            "weeklyRetention": d.ltr.weekly,
            "monthlyRetention": d.ltr.monthly,
            "yearlyRetention": d.ltr.yearly,
            "weekOfYear": d.ltr.week_of_year,
        }),
    };
    json!({
        "id": id,
        "name": "default",
        "type": format!("Microsoft.Sql/servers/databases/{}", kind.collection()),
        "properties": properties,
    })
}

/// `GET {DB}/backupShortTermRetentionPolicies/default` or
/// `GET {DB}/backupLongTermRetentionPolicies/default`.
pub(crate) fn get_policy(
    st: &mut State,
    path: (&str, &str, &str, &str),
    kind: Policy,
    policy: &str,
) -> Reply {
    match find(st, path, kind, policy) {
        Ok((id, d)) => Reply::json(200, policy_json(id, kind, d)),
        Err(reply) => reply,
    }
}

/// `PUT` (either policy) or `PATCH` (short-term only) of a policy, with
/// Azure's validation and error codes. Answered at once (200): the spec
/// allows 200 as well as 202 for these long-running operations.
pub(crate) fn put_policy(
    st: &mut State,
    path: (&str, &str, &str, &str),
    kind: Policy,
    policy: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Reply {
    let props = match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.get("properties").is_some_and(Value::is_object) => v["properties"].clone(),
        Ok(_) | Err(_) => {
            return Reply::arm_error(
                400,
                "InvalidResourceRequestBody",
                "The request body must be a JSON object with a 'properties' object.",
            )
        }
    };
    let (id, d) = match find(st, path, kind, policy) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    if d.status == "Restoring" {
        return Reply::arm_error(
            409,
            "ConflictingDatabaseOperation",
            format!(
                "An operation is in progress on database '{}'; retry once it has finished.",
                d.name
            ),
        );
    }
    match kind {
        Policy::ShortTerm => {
            let days = match props.get("retentionDays") {
                None | Some(Value::Null) => d.retention_days,
                Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                    Some(n) if (1..=35).contains(&n) => n,
                    _ => {
                        return Reply::arm_error(
                            400,
                            "InvalidBackupRetentionPeriod",
                            format!("Specified backup retention period {v} is not valid. Valid backup retention in days must be between 1 and 35."),
                        )
                    }
                },
            };
            let hours = match props.get("diffBackupIntervalInHours") {
                None | Some(Value::Null) => d.diff_backup_hours,
                Some(v) => match v.as_u64() {
                    Some(12) => 12,
                    Some(24) => 24,
                    _ => {
                        return Reply::arm_error(
                            400,
                            "InvalidDiffBackupIntervalHours",
                            format!("Specified differential backup interval {v} is not valid. Valid differential backup interval must be 12 or 24 hours."),
                        )
                    }
                },
            };
            if days != d.retention_days {
                d.set_retention(days, now);
            }
            d.diff_backup_hours = hours;
        }
        Policy::LongTerm => {
            let text = |key: &str| match props.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!("{key} {other} is not an ISO 8601 duration")),
            };
            let spec = (|| {
                Ok::<_, String>(LtrSpec {
                    weekly: text("weeklyRetention")?,
                    monthly: text("monthlyRetention")?,
                    yearly: text("yearlyRetention")?,
                    week_of_year: match props.get("weekOfYear") {
                        None | Some(Value::Null) => None,
                        Some(v) => Some(
                            v.as_u64()
                                .and_then(|n| u32::try_from(n).ok())
                                .ok_or_else(|| format!("weekOfYear {v} is not a week number"))?,
                        ),
                    },
                })
            })();
            match spec.and_then(|s| ltr_from_spec(&s)) {
                Ok(ltr) => d.ltr = ltr,
                Err(why) if why.starts_with(MISSING_WEEK) => {
                    return Reply::arm_error(400, "LongTermRetentionMissingWeekOfYear", why)
                }
                Err(why) => return Reply::arm_error(400, "LongTermRetentionPolicyInvalid", why),
            }
        }
    }
    Reply::json(200, policy_json(id, kind, d))
}

const MISSING_WEEK: &str = "WeekOfYear is required";

/// A long-term retention policy from its parts, validated as Azure does:
/// ISO 8601 durations of whole days, weeks, months or years (`PT0S` or
/// absent: none), at most 10 years, and a week of the year 1-52 with a
/// yearly retention.
pub(crate) fn ltr_from_spec(spec: &LtrSpec) -> Result<Ltr, String> {
    let one = |what: &str, v: &Option<String>| -> Result<(String, bool), String> {
        let Some(v) = v.as_deref() else {
            return Ok(("PT0S".into(), false));
        };
        if v == "PT0S" {
            return Ok((v.into(), false));
        }
        let bad = || {
            format!("{what} '{v}' is not valid: use an ISO 8601 duration such as P12W, P6M or P5Y, of at most 10 years, or PT0S for none")
        };
        let body = v.strip_prefix('P').ok_or_else(bad)?;
        let (n, unit) = body.split_at(body.len().saturating_sub(1));
        let n: u32 = n.parse().map_err(|_| bad())?;
        let max = match unit {
            "D" => 3650,
            "W" => 520,
            "M" => 120,
            "Y" => 10,
            _ => return Err(bad()),
        };
        if n == 0 || n > max {
            return Err(bad());
        }
        Ok((v.into(), true))
    };
    let (weekly, _) = one("weeklyRetention", &spec.weekly)?;
    let (monthly, _) = one("monthlyRetention", &spec.monthly)?;
    let (yearly, yearly_set) = one("yearlyRetention", &spec.yearly)?;
    let week_of_year = spec.week_of_year.unwrap_or(0);
    if yearly_set && !(1..=52).contains(&week_of_year) {
        return Err(format!(
            "{MISSING_WEEK} to be set between 1 and 52 in order to set yearly retention"
        ));
    }
    if week_of_year > 52 {
        return Err(format!(
            "weekOfYear {week_of_year} is not valid: use 1 to 52"
        ));
    }
    Ok(Ltr {
        weekly,
        monthly,
        yearly,
        week_of_year,
    })
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
    let srv = match super::sql::server_named(st, &b.server) {
        Ok(srv) => srv,
        Err(reply) => return reply,
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
