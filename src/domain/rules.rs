//! The request rules of the original process, each a named violation whose
//! message says what to change.
use super::environment::{DatabaseKind, Environment, Tier};
use super::request::RequestSpec;
use super::time::{ahead, at_or_after, at_or_before, show};
use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleViolation {
    #[error("rule unknown-environment: environment '{0}' is not in the config")]
    UnknownEnvironment(String),
    #[error("rule azure-sql-only: environment '{0}' runs on SQL Server (one-box); only Azure SQL Database environments can be restored point-in-time")]
    NotAzureSql(String),
    #[error("rule non-production-only: environment '{0}' is production; production restores go through Microsoft support, not pitr")]
    Production(String),
    #[error("rule fno-database-only: '{database}' is not the F&O database of '{environment}'{which}; only '{fno}' can be restored")]
    NotFnoDatabase {
        environment: String,
        database: String,
        fno: String,
        which: String,
    },
    #[error("rule restore-point-not-future: restore point {point_} is in the future (now {now_}); choose an instant in the past", point_ = show(*point), now_ = at_or_before(*now))]
    RestorePointInFuture {
        point: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    #[error("rule retention: restore point {point_} is older than the {days}-day retention of '{environment}' (oldest allowed now: {oldest_}); choose a later instant", point_ = show(*point), oldest_ = ahead(*oldest))]
    OutsideRetention {
        environment: String,
        point: DateTime<Utc>,
        days: u32,
        oldest: DateTime<Utc>,
    },
    #[error("rule retention-at-window: restore point {point_} will be older than the {days}-day retention when the window opens at {window_start_}; move the window to start no later than {latest_start_}, or choose a later restore point", point_ = show(*point), window_start_ = show(*window_start), latest_start_ = at_or_before(*latest_start))]
    OutsideRetentionAtWindow {
        point: DateTime<Utc>,
        days: u32,
        window_start: DateTime<Utc>,
        latest_start: DateTime<Utc>,
    },
    #[error("rule earliest-restore-date: restore point {point_} is before Azure's earliest restore date {earliest_} for database '{database}'; choose {earliest_} or later", point_ = show(*point), earliest_ = ahead(*earliest))]
    BeforeEarliestRestore {
        database: String,
        point: DateTime<Utc>,
        earliest: DateTime<Utc>,
    },
    #[error("rule window-length: the window {start_} .. {end_} is shorter than 1 hour", start_ = show(*start), end_ = show(*end))]
    WindowTooShort {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    #[error("rule window-length: the window ends ({end_}) before it starts ({start_})", end_ = show(*end), start_ = show(*start))]
    WindowReversed {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    #[error("rule window-in-past: the window {start_} .. {end_} has already ended (now {now_}); choose a window in the future", start_ = show(*start), end_ = show(*end), now_ = at_or_before(*now))]
    WindowInPast {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    #[error("rule acknowledgement: {0} not acknowledged")]
    MissingAcknowledgement(Statements),
    #[error("rule notice-24h: the window starts at {start_}, less than 24 hours after the request ({now_}); start it at {earliest_} or later", start_ = show(*start), now_ = at_or_before(*now), earliest_ = ahead(*earliest))]
    WindowTooSoon {
        start: DateTime<Utc>,
        now: DateTime<Utc>,
        earliest: DateTime<Utc>,
    },
    #[error("rule after-last-restore: restore point {point_} is before the end of the last restore of '{environment}' ({last_end_}); a restore creates a new database and backup history restarts then; choose {last_end_} or later", point_ = show(*point), last_end_ = at_or_after(*last_end))]
    BeforeLastRestore {
        environment: String,
        point: DateTime<Utc>,
        last_end: DateTime<Utc>,
    },
    #[error("rule code-version: '{environment}' ran version {at_point} at the restore point and runs {current} now, a different major version; the restored database may not work with today's code; read \"Code versions\" in the README, consult the developers")]
    VersionMismatch {
        environment: String,
        at_point: String,
        current: String,
    },
}

/// The statements of a request that were not acknowledged, all at once (so
/// that one correction fixes them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Statements {
    pub erase: bool,
    pub downtime: bool,
    pub scope: bool,
}

impl Statements {
    /// The names set, in the form's order (`erase`, `downtime`, `scope`).
    pub fn names(self) -> Vec<&'static str> {
        [
            (self.erase, "erase"),
            (self.downtime, "downtime"),
            (self.scope, "scope"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
    }

    pub fn is_empty(self) -> bool {
        self.names().is_empty()
    }
}

/// "the statement 'erase' was", "the statements 'erase' and 'scope' were".
impl std::fmt::Display for Statements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.names().iter().map(|n| format!("'{n}'")).collect();
        match names.as_slice() {
            [one] => write!(f, "the statement {one} was"),
            [init @ .., last] => write!(f, "the statements {} and {last} were", init.join(", ")),
            [] => write!(f, "no statement was"),
        }
    }
}

pub use super::fix::Fix;

impl RuleViolation {
    /// Every request rule's name, in the order of the README's table (the
    /// last, `one-active-request`, is checked by the store when the request
    /// is written).
    pub const NAMES: [&'static str; 15] = [
        "unknown-environment",
        "azure-sql-only",
        "non-production-only",
        "fno-database-only",
        "restore-point-not-future",
        "retention",
        "retention-at-window",
        "earliest-restore-date",
        "window-length",
        "window-in-past",
        "acknowledgement",
        "notice-24h",
        "after-last-restore",
        "code-version",
        "one-active-request",
    ];

    /// The rule's name (`notice-24h`), as the API's `rule` field and the
    /// README's table give it.
    pub fn rule(&self) -> &'static str {
        use RuleViolation as V;
        match self {
            V::UnknownEnvironment(_) => "unknown-environment",
            V::NotAzureSql(_) => "azure-sql-only",
            V::Production(_) => "non-production-only",
            V::NotFnoDatabase { .. } => "fno-database-only",
            V::RestorePointInFuture { .. } => "restore-point-not-future",
            V::OutsideRetention { .. } => "retention",
            V::OutsideRetentionAtWindow { .. } => "retention-at-window",
            V::BeforeEarliestRestore { .. } => "earliest-restore-date",
            V::WindowTooShort { .. } | V::WindowReversed { .. } => "window-length",
            V::WindowInPast { .. } => "window-in-past",
            V::MissingAcknowledgement(_) => "acknowledgement",
            V::WindowTooSoon { .. } => "notice-24h",
            V::BeforeLastRestore { .. } => "after-last-restore",
            V::VersionMismatch { .. } => "code-version",
        }
    }

    /// The message without its `rule NAME: ` prefix (for a page that shows
    /// the rule's name apart).
    pub fn text(&self) -> String {
        let full = self.to_string();
        let prefix = format!("rule {}: ", self.rule());
        full.strip_prefix(&prefix)
            .map(str::to_string)
            .unwrap_or(full)
    }

    /// What to change beyond what the message says, for a front end to word.
    pub fn fix(&self) -> Option<Fix> {
        use RuleViolation as V;
        match self {
            V::UnknownEnvironment(_) => Some(Fix::ChooseEnvironment),
            V::MissingAcknowledgement(which) => Some(Fix::Acknowledge(*which)),
            V::WindowTooShort { .. } | V::WindowReversed { .. } => Some(Fix::LengthenWindow),
            V::WindowTooSoon { .. } => Some(Fix::EmergencyReason),
            V::VersionMismatch { .. } => Some(Fix::AckVersionMismatch),
            _ => None,
        }
    }
}

/// What is known of the database and the environment when a request is
/// checked: Azure's earliest restore date and the environment's history.
#[derive(Debug, Clone, Default)]
pub struct AzureFacts {
    pub earliest_restore_date: Option<DateTime<Utc>>,
    /// The database's short-term backup retention in Azure, in days.
    pub retention_days: Option<u32>,
    /// When the environment's last restore ended (back online).
    pub last_restore_end: Option<DateTime<Utc>>,
    /// Deployments of code versions, any order.
    pub deployments: Vec<(DateTime<Utc>, String)>,
}

/// The major part of a version: its first dot-separated component
/// ("10.0.38" -> "10", "9" -> "9").
pub fn major(version: &str) -> &str {
    version.trim().split('.').next().unwrap_or("")
}

/// The version deployed at `t`: the latest deployment at or before it.
pub fn version_at(deployments: &[(DateTime<Utc>, String)], t: DateTime<Utc>) -> Option<&str> {
    deployments
        .iter()
        .filter(|(at, _)| *at <= t)
        .max_by_key(|(at, _)| *at)
        .map(|(_, v)| v.as_str())
}

/// Rules that need only the catalog: checked before anything asks Azure.
pub fn check_catalog(env: Option<&Environment>, req: &RequestSpec) -> Result<(), RuleViolation> {
    let env = env.ok_or_else(|| RuleViolation::UnknownEnvironment(req.environment.clone()))?;
    if env.database_kind == DatabaseKind::SqlServer {
        return Err(RuleViolation::NotAzureSql(env.name.clone()));
    }
    if env.tier == Tier::Production {
        return Err(RuleViolation::Production(env.name.clone()));
    }
    if !req.database.eq_ignore_ascii_case(&env.database) {
        let which = if env.entity_store_database.as_deref() == Some(req.database.as_str()) {
            " (it is the entity store database)"
        } else if env.mr_database.as_deref() == Some(req.database.as_str()) {
            " (it is the Management Reporter database)"
        } else {
            ""
        };
        return Err(RuleViolation::NotFnoDatabase {
            environment: env.name.clone(),
            database: req.database.clone(),
            fno: env.database.clone(),
            which: which.to_string(),
        });
    }
    let missing = Statements {
        erase: !req.acks.erase,
        downtime: !req.acks.downtime,
        scope: !req.acks.scope,
    };
    if !missing.is_empty() {
        return Err(RuleViolation::MissingAcknowledgement(missing));
    }
    Ok(())
}

/// The retention that applies: Azure's for the database when known, never
/// more than the environment's configured `retention_days`.
pub fn retention_days(env: &Environment, facts: &AzureFacts) -> u32 {
    facts
        .retention_days
        .map_or(env.retention_days, |azure| azure.min(env.retention_days))
}

/// Azure's earliest restore date moves forward with the retention: the
/// restore point must still be restorable when the window opens. Checked at
/// submit, reschedule and accept, and on every scheduler pass while a
/// request waits for its window.
pub fn check_retention_at_window(
    env: &Environment,
    req: &RequestSpec,
    facts: &AzureFacts,
) -> Result<(), RuleViolation> {
    let days = retention_days(env, facts);
    let latest_start = req.restore_point + Duration::days(i64::from(days));
    if req.window.start > latest_start {
        return Err(RuleViolation::OutsideRetentionAtWindow {
            point: req.restore_point,
            days,
            window_start: req.window.start,
            latest_start,
        });
    }
    Ok(())
}

/// Rules on instants and history; `now` comes from the injectable clock.
/// Returns the warnings the requester acknowledged (code version).
pub fn check_times(
    env: &Environment,
    req: &RequestSpec,
    facts: &AzureFacts,
    now: DateTime<Utc>,
) -> Result<Vec<String>, RuleViolation> {
    let point = req.restore_point;
    if point > now {
        return Err(RuleViolation::RestorePointInFuture { point, now });
    }
    if let Some(last_end) = facts.last_restore_end {
        if point < last_end {
            return Err(RuleViolation::BeforeLastRestore {
                environment: env.name.clone(),
                point,
                last_end,
            });
        }
    }
    if let Some(earliest) = facts.earliest_restore_date {
        if point < earliest {
            return Err(RuleViolation::BeforeEarliestRestore {
                database: req.database.clone(),
                point,
                earliest,
            });
        }
    }
    let days = retention_days(env, facts);
    let oldest = now - Duration::days(i64::from(days));
    if point < oldest {
        return Err(RuleViolation::OutsideRetention {
            environment: env.name.clone(),
            point,
            days,
            oldest,
        });
    }
    let w = req.window;
    if w.end <= w.start {
        return Err(RuleViolation::WindowReversed {
            start: w.start,
            end: w.end,
        });
    }
    if w.end <= now {
        return Err(RuleViolation::WindowInPast {
            start: w.start,
            end: w.end,
            now,
        });
    }
    if w.end < w.start + Duration::hours(1) {
        return Err(RuleViolation::WindowTooShort {
            start: w.start,
            end: w.end,
        });
    }
    let emergency = req
        .emergency
        .as_deref()
        .is_some_and(|r| !r.trim().is_empty());
    if w.start < now + Duration::hours(24) && !emergency {
        return Err(RuleViolation::WindowTooSoon {
            start: w.start,
            now,
            earliest: now + Duration::hours(24),
        });
    }
    check_retention_at_window(env, req, facts)?;
    let mut warnings = Vec::new();
    if let (Some(then), Some(current)) = (
        version_at(&facts.deployments, point),
        version_at(&facts.deployments, now),
    ) {
        if major(then) != major(current) {
            if !req.acks.version_mismatch {
                return Err(RuleViolation::VersionMismatch {
                    environment: env.name.clone(),
                    at_point: then.to_string(),
                    current: current.to_string(),
                });
            }
            warnings.push(format!(
                "code version: the environment ran {then} at the restore point and runs {current} now (different major versions); acknowledged"
            ));
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests;
