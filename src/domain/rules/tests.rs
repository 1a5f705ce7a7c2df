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
        RuleViolation::MissingAcknowledgement(Statements {
            erase: true,
            ..Statements::default()
        }),
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
    // Each of the environment's other databases is named for what it is.
    for (db, says) in [
        ("AxDW", Some("(it is the entity store database)")),
        ("MRDB", Some("(it is the Management Reporter database)")),
        ("Other", None),
    ] {
        let mut r = req();
        r.database = db.into();
        let text = check(&env(), &r).unwrap_err().to_string();
        match says {
            Some(s) => assert!(text.contains(s), "{db}: {text}"),
            None => assert!(!text.contains("(it is"), "{db}: {text}"),
        }
    }
}

/// The fix each rule offers a front end to word (found missing by
/// cargo-mutants: deleting an arm broke no test).
#[test]
fn rules_offer_their_fix() {
    let t = now();
    assert_eq!(
        RuleViolation::UnknownEnvironment("x".into()).fix(),
        Some(Fix::ChooseEnvironment)
    );
    for v in [
        RuleViolation::WindowTooShort { start: t, end: t },
        RuleViolation::WindowReversed { start: t, end: t },
    ] {
        assert_eq!(v.fix(), Some(Fix::LengthenWindow), "{v}");
    }
    assert_eq!(RuleViolation::Production("x".into()).fix(), None);
}

/// Every combination of missing acknowledgements is named at once, so
/// that one correction fixes them all.
#[test]
fn acknowledgements_are_required_and_all_missing_are_named_at_once() {
    for bits in 1u8..8 {
        let missing = Statements {
            erase: bits & 1 != 0,
            downtime: bits & 2 != 0,
            scope: bits & 4 != 0,
        };
        let mut r = req();
        r.acks.erase = !missing.erase;
        r.acks.downtime = !missing.downtime;
        r.acks.scope = !missing.scope;
        let err = check(&env(), &r).unwrap_err();
        assert_eq!(
            err,
            RuleViolation::MissingAcknowledgement(missing),
            "{bits}"
        );
        assert_eq!(err.fix(), Some(Fix::Acknowledge(missing)));
    }
    let all = RuleViolation::MissingAcknowledgement(Statements {
        erase: true,
        downtime: true,
        scope: true,
    });
    assert_eq!(
        all.text(),
        "the statements 'erase', 'downtime' and 'scope' were not acknowledged"
    );
    let two = RuleViolation::MissingAcknowledgement(Statements {
        erase: true,
        scope: true,
        ..Statements::default()
    });
    assert_eq!(
        two.text(),
        "the statements 'erase' and 'scope' were not acknowledged"
    );
    assert!(check(&env(), &req()).is_ok());
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
    // The earliest start it names is 24 hours after now.
    assert!(
        matches!(err, RuleViolation::WindowTooSoon { earliest, .. } if earliest == now() + Duration::hours(24)),
        "{err}"
    );
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

/// Every rule with a limit, one second on each side of it and at it
/// (`Ok` = allowed): the limit itself is allowed unless the rule says
/// "at least" the other way (a window that has ended at `now`).
mod exact_limits {
    use super::*;

    const S: Duration = Duration::seconds(1);

    /// The rule `check_times` reports for `r` (None when it passes).
    fn verdict(r: &RequestSpec, f: &AzureFacts) -> Option<&'static str> {
        check_times(&env(), r, f, now()).err().map(|v| v.rule())
    }

    /// `make(limit + d)` for d = -1 s, 0, +1 s, with the rule expected at each.
    fn at_the_limit(
        limit: DateTime<Utc>,
        f: &AzureFacts,
        make: impl Fn(DateTime<Utc>) -> RequestSpec,
        want: [Option<&'static str>; 3],
    ) {
        for (d, want) in [-S, Duration::zero(), S].into_iter().zip(want) {
            assert_eq!(verdict(&make(limit + d), f), want, "at limit {d:+?}");
        }
    }

    fn no_azure_facts() -> AzureFacts {
        AzureFacts::default()
    }

    /// An emergency window that opens now (so notice and the retention at
    /// the window are out of the way).
    fn open_now(mut r: RequestSpec) -> RequestSpec {
        r.emergency = Some("limit test".into());
        r.window.start = now();
        r.window.end = now() + Duration::hours(2);
        r
    }

    #[test]
    fn notice_is_24_hours_to_the_second() {
        at_the_limit(
            now() + Duration::hours(24),
            &facts(),
            |start| RequestSpec {
                window: Window {
                    start,
                    end: start + Duration::hours(2),
                },
                ..req()
            },
            [Some("notice-24h"), None, None],
        );
    }

    #[test]
    fn the_window_is_at_least_one_hour_to_the_second() {
        let start = req().window.start;
        at_the_limit(
            start + Duration::hours(1),
            &facts(),
            |end| RequestSpec {
                window: Window { start, end },
                ..req()
            },
            [Some("window-length"), None, None],
        );
    }

    #[test]
    fn the_window_must_not_have_ended() {
        at_the_limit(
            now(),
            &facts(),
            |end| {
                let mut r = open_now(req());
                r.window = Window {
                    start: end - Duration::hours(2),
                    end,
                };
                r
            },
            [Some("window-in-past"), Some("window-in-past"), None],
        );
    }

    #[test]
    fn the_restore_point_is_not_in_the_future() {
        at_the_limit(
            now(),
            &facts(),
            |restore_point| RequestSpec {
                restore_point,
                ..open_now(req())
            },
            [None, None, Some("restore-point-not-future")],
        );
    }

    #[test]
    fn retention_is_the_configured_days_to_the_second() {
        let days = env().retention_days;
        at_the_limit(
            now() - Duration::days(i64::from(days)),
            &no_azure_facts(),
            |restore_point| RequestSpec {
                restore_point,
                ..open_now(req())
            },
            [Some("retention"), None, None],
        );
        // Azure's shorter retention is the limit when it is known.
        at_the_limit(
            now() - Duration::days(7),
            &AzureFacts {
                retention_days: Some(7),
                ..no_azure_facts()
            },
            |restore_point| RequestSpec {
                restore_point,
                ..open_now(req())
            },
            [Some("retention"), None, None],
        );
    }

    #[test]
    fn the_retention_still_holds_when_the_window_opens_to_the_second() {
        // 7 days in Azure, a point 5 days old: restorable until now + 2 days.
        let f = AzureFacts {
            retention_days: Some(7),
            ..no_azure_facts()
        };
        let point = now() - Duration::days(5);
        at_the_limit(
            now() + Duration::days(2),
            &f,
            |start| RequestSpec {
                restore_point: point,
                window: Window {
                    start,
                    end: start + Duration::hours(2),
                },
                ..req()
            },
            [None, None, Some("retention-at-window")],
        );
    }

    #[test]
    fn the_earliest_restore_date_is_allowed_and_a_second_before_is_not() {
        let earliest = now() - Duration::days(3);
        at_the_limit(
            earliest,
            &AzureFacts {
                earliest_restore_date: Some(earliest),
                ..no_azure_facts()
            },
            |restore_point| RequestSpec {
                restore_point,
                ..open_now(req())
            },
            [Some("earliest-restore-date"), None, None],
        );
    }

    #[test]
    fn the_end_of_the_last_restore_is_allowed_and_a_second_before_is_not() {
        let last_end = now() - Duration::days(3);
        at_the_limit(
            last_end,
            &AzureFacts {
                last_restore_end: Some(last_end),
                ..no_azure_facts()
            },
            |restore_point| RequestSpec {
                restore_point,
                ..open_now(req())
            },
            [Some("after-last-restore"), None, None],
        );
    }
}
