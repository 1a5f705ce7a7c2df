//! The request rules of the original process, each a named violation whose
//! message says what to change.
use super::environment::{DatabaseKind, Environment, Tier};
use super::request::RequestSpec;
use super::time::{ahead, at_or_after, at_or_before, show};
use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleViolation {
    #[error("rule unknown-environment: environment '{0}' is not in the catalog")]
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
    #[error("rule acknowledgement: the statement '{0}' was not acknowledged")]
    MissingAcknowledgement(&'static str),
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

/// What the person changes to satisfy a rule, beyond what its message says;
/// each front end words it in its own terms (a CLI flag, a form's field, an
/// API body field), so that no rule message names one front end's inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// Name one of the configured environments.
    ChooseEnvironment,
    /// Acknowledge this statement (`erase`, `downtime`, `scope`).
    Acknowledge(&'static str),
    /// End the window at least an hour after its start.
    LengthenWindow,
    /// An operator may give an emergency reason instead.
    EmergencyReason,
    /// Acknowledge the code-version difference.
    AckVersionMismatch,
}

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
            V::MissingAcknowledgement(which) => Some(Fix::Acknowledge(which)),
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
    for (given, name) in [
        (req.acks.erase, "erase"),
        (req.acks.downtime, "downtime"),
        (req.acks.scope, "scope"),
    ] {
        if !given {
            return Err(RuleViolation::MissingAcknowledgement(name));
        }
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
mod tests {
    use super::*;
    use crate::domain::request::{Acknowledgements, Window};
    use chrono::TimeZone;

    fn env() -> Environment {
        toml::from_str(
            r#"
            name = "uat"
            tier = "sandbox"
            database_kind = "azure_sql"
            subscription_id = "s"
            resource_group = "rg"
            server = "srv"
            location = "westeurope"
            database = "AxDB"
            entity_store_database = "AxDW"
            mr_database = "MRDB"
            "#,
        )
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    /// One of each violation: every message starts with `rule NAME: `
    /// where NAME is its [`RuleViolation::rule`], one of the names listed,
    /// and names no front end's inputs (flags, fields).
    #[test]
    fn every_violation_is_named_and_worded_for_any_front_end() {
        let t = now();
        let all = vec![
            RuleViolation::UnknownEnvironment("e".into()),
            RuleViolation::NotAzureSql("e".into()),
            RuleViolation::Production("e".into()),
            RuleViolation::NotFnoDatabase {
                environment: "e".into(),
                database: "d".into(),
                fno: "f".into(),
                which: String::new(),
            },
            RuleViolation::RestorePointInFuture { point: t, now: t },
            RuleViolation::OutsideRetention {
                environment: "e".into(),
                point: t,
                days: 1,
                oldest: t,
            },
            RuleViolation::OutsideRetentionAtWindow {
                point: t,
                days: 1,
                window_start: t,
                latest_start: t,
            },
            RuleViolation::BeforeEarliestRestore {
                database: "d".into(),
                point: t,
                earliest: t,
            },
            RuleViolation::WindowTooShort { start: t, end: t },
            RuleViolation::WindowReversed { start: t, end: t },
            RuleViolation::WindowInPast {
                start: t,
                end: t,
                now: t,
            },
            RuleViolation::MissingAcknowledgement("erase"),
            RuleViolation::WindowTooSoon {
                start: t,
                now: t,
                earliest: t,
            },
            RuleViolation::BeforeLastRestore {
                environment: "e".into(),
                point: t,
                last_end: t,
            },
            RuleViolation::VersionMismatch {
                environment: "e".into(),
                at_point: "9".into(),
                current: "10".into(),
            },
        ];
        let mut seen = std::collections::BTreeSet::new();
        for v in &all {
            let msg = v.to_string();
            assert!(msg.starts_with(&format!("rule {}: ", v.rule())), "{msg}");
            assert_eq!(format!("rule {}: {}", v.rule(), v.text()), msg);
            assert!(RuleViolation::NAMES.contains(&v.rule()), "{}", v.rule());
            assert!(!msg.contains("--") && !msg.contains("`pitr"), "{msg}");
            seen.insert(v.rule());
        }
        // Every name but the store's one-active-request has a violation.
        assert_eq!(seen.len(), RuleViolation::NAMES.len() - 1);
    }

    fn req() -> RequestSpec {
        RequestSpec {
            environment: "uat".into(),
            database: "AxDB".into(),
            restore_point: now() - Duration::days(2),
            window: Window {
                start: now() + Duration::days(1),
                end: now() + Duration::days(1) + Duration::hours(2),
            },
            acks: Acknowledgements {
                erase: true,
                downtime: true,
                scope: true,
                version_mismatch: false,
            },
            requester: "alice".into(),
            reason: None,
            prestage: false,
            emergency: None,
        }
    }

    fn facts() -> AzureFacts {
        AzureFacts {
            earliest_restore_date: Some(now() - Duration::days(10)),
            ..Default::default()
        }
    }

    fn check(e: &Environment, r: &RequestSpec) -> Result<(), RuleViolation> {
        check_catalog(Some(e), r)?;
        check_times(e, r, &facts(), now()).map(|_| ())
    }

    #[test]
    fn a_valid_request_passes() {
        check(&env(), &req()).unwrap();
    }

    #[test]
    fn unknown_environment() {
        assert!(matches!(
            check_catalog(None, &req()),
            Err(RuleViolation::UnknownEnvironment(_))
        ));
    }

    #[test]
    fn sql_server_and_production_are_refused() {
        let mut e = env();
        e.database_kind = DatabaseKind::SqlServer;
        assert!(matches!(
            check(&e, &req()),
            Err(RuleViolation::NotAzureSql(_))
        ));
        let mut e = env();
        e.tier = Tier::Production;
        assert!(matches!(
            check(&e, &req()),
            Err(RuleViolation::Production(_))
        ));
    }

    #[test]
    fn only_the_fno_database() {
        for db in ["AxDW", "MRDB", "Other"] {
            let mut r = req();
            r.database = db.into();
            let err = check(&env(), &r).unwrap_err();
            assert!(matches!(err, RuleViolation::NotFnoDatabase { .. }), "{db}");
        }
        let mut r = req();
        r.database = "AxDW".into();
        assert!(check(&env(), &r)
            .unwrap_err()
            .to_string()
            .contains("entity store"));
    }

    #[test]
    fn acknowledgements_are_required() {
        for i in 0..3 {
            let mut r = req();
            match i {
                0 => r.acks.erase = false,
                1 => r.acks.downtime = false,
                _ => r.acks.scope = false,
            }
            assert!(matches!(
                check(&env(), &r),
                Err(RuleViolation::MissingAcknowledgement(_))
            ));
        }
    }

    #[test]
    fn restore_point_rules() {
        let mut r = req();
        r.restore_point = now() + Duration::minutes(1);
        assert!(matches!(
            check(&env(), &r),
            Err(RuleViolation::RestorePointInFuture { .. })
        ));
        r.restore_point = now() - Duration::days(36);
        // Azure's earliest restore date is the firmer fact, checked first;
        // without it the configured retention decides.
        assert!(matches!(
            check(&env(), &r),
            Err(RuleViolation::BeforeEarliestRestore { .. })
        ));
        assert!(matches!(
            check_times(&env(), &r, &AzureFacts::default(), now()),
            Err(RuleViolation::OutsideRetention { .. })
        ));
        r.restore_point = now() - Duration::days(11);
        let err = check(&env(), &r).unwrap_err();
        assert!(matches!(err, RuleViolation::BeforeEarliestRestore { .. }));
        assert!(err.to_string().contains("earliest restore date"));
    }

    #[test]
    fn window_rules() {
        let mut r = req();
        r.window.end = r.window.start + Duration::minutes(59);
        assert!(matches!(
            check(&env(), &r),
            Err(RuleViolation::WindowTooShort { .. })
        ));
        let mut r = req();
        r.restore_point = now() - Duration::days(9);
        let mut e = env();
        e.retention_days = 10;
        r.window.start = now() + Duration::days(2);
        r.window.end = r.window.start + Duration::hours(2);
        let err = check_times(&e, &r, &facts(), now()).unwrap_err();
        assert!(matches!(
            err,
            RuleViolation::OutsideRetentionAtWindow { .. }
        ));
        assert!(err.to_string().contains("no later than"));
    }

    #[test]
    fn azures_retention_decides_when_it_is_shorter_than_the_configured_one() {
        // Retention 7 days in Azure: a point 6 days old with a window in 2
        // days falls out; with the window tomorrow it is kept.
        let f = AzureFacts {
            retention_days: Some(7),
            ..facts()
        };
        let mut r = req();
        r.restore_point = now() - Duration::days(6);
        r.window.start = now() + Duration::days(2);
        r.window.end = r.window.start + Duration::hours(2);
        let err = check_times(&env(), &r, &f, now()).unwrap_err();
        assert!(
            matches!(err, RuleViolation::OutsideRetentionAtWindow { days: 7, latest_start, .. } if latest_start == now() + Duration::days(1)),
            "{err}"
        );
        r.window.start = now() + Duration::days(1);
        r.window.end = r.window.start + Duration::hours(2);
        check_times(&env(), &r, &f, now()).unwrap();
        // A longer retention in Azure does not lift the configured one.
        let f = AzureFacts {
            retention_days: Some(35),
            ..facts()
        };
        let mut e = env();
        e.retention_days = 3;
        assert_eq!(retention_days(&e, &f), 3);
    }

    #[test]
    fn the_window_needs_24_hours_notice_unless_an_emergency() {
        let mut r = req();
        r.window.start = now() + Duration::hours(23);
        r.window.end = r.window.start + Duration::hours(2);
        let err = check(&env(), &r).unwrap_err();
        assert!(matches!(err, RuleViolation::WindowTooSoon { .. }));
        // The front end words the way out (the CLI: --emergency-reason).
        assert_eq!(err.fix(), Some(Fix::EmergencyReason));
        r.emergency = Some("  ".into());
        assert!(check(&env(), &r).is_err(), "a blank reason is no reason");
        r.emergency = Some("prod data leaked into UAT".into());
        check(&env(), &r).unwrap();
        // An emergency does not make a past window possible.
        r.window.start = now() - Duration::hours(3);
        r.window.end = now() - Duration::hours(1);
        assert!(matches!(
            check(&env(), &r),
            Err(RuleViolation::WindowInPast { .. })
        ));
    }

    #[test]
    fn a_window_that_ends_before_it_starts_is_called_so() {
        let mut r = req();
        r.window.end = r.window.start - Duration::hours(1);
        let err = check(&env(), &r).unwrap_err();
        assert!(matches!(err, RuleViolation::WindowReversed { .. }));
        assert!(err.to_string().contains("before it starts"), "{err}");
    }

    #[test]
    fn not_before_the_end_of_the_last_restore() {
        let r = req();
        let f = AzureFacts {
            last_restore_end: Some(r.restore_point + Duration::minutes(1)),
            ..facts()
        };
        let err = check_times(&env(), &r, &f, now()).unwrap_err();
        assert!(matches!(err, RuleViolation::BeforeLastRestore { .. }));
        let f = AzureFacts {
            last_restore_end: Some(r.restore_point - Duration::minutes(1)),
            ..facts()
        };
        check_times(&env(), &r, &f, now()).unwrap();
    }

    #[test]
    fn a_different_major_version_needs_its_acknowledgement() {
        let mut r = req();
        let f = AzureFacts {
            deployments: vec![
                (now() - Duration::days(20), "9.2.1".into()),
                (now() - Duration::days(1), "10.0.3".into()),
            ],
            ..facts()
        };
        let err = check_times(&env(), &r, &f, now()).unwrap_err();
        assert!(matches!(err, RuleViolation::VersionMismatch { .. }));
        assert_eq!(err.fix(), Some(Fix::AckVersionMismatch));
        r.acks.version_mismatch = true;
        let warnings = check_times(&env(), &r, &f, now()).unwrap();
        assert_eq!(warnings.len(), 1);
        // Same major: no acknowledgement needed.
        let f = AzureFacts {
            deployments: vec![
                (now() - Duration::days(20), "10.0.1".into()),
                (now() - Duration::days(1), "10.0.3".into()),
            ],
            ..facts()
        };
        assert!(check_times(&env(), &req(), &f, now()).unwrap().is_empty());
        assert_eq!(major("10.0.38"), "10");
        assert_eq!(version_at(&f.deployments, now() - Duration::days(30)), None);
    }
}
