use super::*;
use chrono::TimeZone;

fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
}

fn lease(owner: &str, expires: i64, fencing: i64) -> Lease {
    Lease {
        job_id: "j".into(),
        owner: owner.into(),
        expires_at: t(expires),
        fencing,
    }
}

#[test]
fn acquire_grants_free_expired_or_own_leases_with_a_growing_token() {
    let j = JobId::from("j");
    let ttl = Duration::seconds(60);
    let a = acquire(&j, None, "a", t(0), ttl).unwrap();
    assert_eq!((a.fencing, a.expires_at), (1, t(60)));
    // Held by another until it expires.
    assert!(matches!(
        acquire(&j, Some(lease("a", 60, 1)), "b", t(59), ttl),
        Err(StoreError::LeaseHeld { owner, .. }) if owner == "a"
    ));
    assert_eq!(
        acquire(&j, Some(lease("a", 60, 1)), "b", t(60), ttl)
            .unwrap()
            .fencing,
        2
    );
    // The owner may take it again (a new token).
    assert_eq!(
        acquire(&j, Some(lease("a", 60, 1)), "a", t(10), ttl)
            .unwrap()
            .fencing,
        2
    );
    // A released lease is free.
    let released = Lease {
        expires_at: RELEASED_AT,
        ..lease("a", 0, 4)
    };
    assert_eq!(
        acquire(&j, Some(released), "b", t(0), ttl).unwrap().fencing,
        5
    );
}

#[test]
fn take_over_only_from_the_named_owner_or_after_expiry() {
    let j = JobId::from("j");
    let ttl = Duration::seconds(60);
    assert!(matches!(
        take_over(&j, Some(lease("a", 60, 3)), "x", "b", t(0), ttl),
        Err(StoreError::LeaseHeld { .. })
    ));
    let b = take_over(&j, Some(lease("a", 60, 3)), "a", "b", t(0), ttl).unwrap();
    assert_eq!((b.owner.as_str(), b.fencing), ("b", 4));
    assert_eq!(
        take_over(&j, Some(lease("c", 60, 3)), "x", "b", t(60), ttl)
            .unwrap()
            .fencing,
        4
    );
    assert_eq!(take_over(&j, None, "x", "b", t(0), ttl).unwrap().fencing, 1);
}

#[test]
fn fencing_refuses_stale_or_missing_tokens() {
    let ours = lease("a", 60, 2);
    assert!(fence(None, None).is_ok());
    assert!(fence(Some(&ours), Some(2)).is_ok());
    assert!(matches!(
        fence(Some(&ours), Some(3)),
        Err(StoreError::LeaseLost {
            ours: 2,
            current: 3,
            ..
        })
    ));
    assert!(matches!(
        fence(Some(&ours), None),
        Err(StoreError::LeaseLost { current: 0, .. })
    ));
    assert_eq!(
        renewed(&ours, t(100), Duration::seconds(60)).expires_at,
        t(160)
    );
    assert_eq!(renewed(&ours, t(100), Duration::seconds(60)).fencing, 2);
}

#[test]
fn notifications_follow_the_lifecycle() {
    use crate::domain::StepStatus as St;
    use RequestStatus as S;
    let cases = [
        (None, S::Submitted, None, Some("submitted")),
        (
            Some(S::Submitted),
            S::Submitted,
            Some("rescheduled: x"),
            Some("rescheduled"),
        ),
        (
            Some(S::Accepted),
            S::Accepted,
            Some("rescheduled: x"),
            Some("rescheduled"),
        ),
        (
            Some(S::Accepted),
            S::Accepted,
            Some("flagged: x"),
            Some("flagged"),
        ),
        (
            Some(S::Accepted),
            S::Accepted,
            Some("warning cleared: x"),
            None,
        ),
        (Some(S::Submitted), S::Accepted, None, Some("accepted")),
        (Some(S::Submitted), S::Rejected, None, Some("rejected")),
        (Some(S::Accepted), S::Cancelled, None, Some("cancelled")),
        (Some(S::Accepted), S::Running, None, Some("started")),
        (Some(S::Running), S::Succeeded, None, Some("succeeded")),
        (Some(S::Running), S::Failed, None, Some("failed")),
        (
            Some(S::Succeeded),
            S::Succeeded,
            Some("rollback started: x"),
            Some("rollback_started"),
        ),
        (
            Some(S::Failed),
            S::Failed,
            Some("rollback failed: x"),
            Some("rollback_failed"),
        ),
        (
            Some(S::Succeeded),
            S::Succeeded,
            Some("anything else"),
            None,
        ),
        (Some(S::Succeeded), S::RolledBack, None, Some("rolled_back")),
        (Some(S::Accepted), S::Missed, None, Some("missed")),
        (
            Some(S::Running),
            S::Running,
            Some("sync confirmed done"),
            None,
        ),
        (Some(S::Running), S::Accepted, None, None),
    ];
    for (from, to, note, want) in cases {
        assert_eq!(
            notification_event(from, to, note),
            want,
            "{from:?} -> {to:?} ({note:?})"
        );
    }
    assert!(step_failed(Some(St::Running), St::Failed, false));
    assert!(step_failed(None, St::Failed, false));
    assert!(!step_failed(Some(St::Failed), St::Failed, false));
    assert!(!step_failed(Some(St::Running), St::Failed, true));
    assert!(!step_failed(Some(St::Running), St::Succeeded, false));
}

#[test]
fn deliveries_back_off_then_give_up_after_24_hours() {
    use crate::store::outbox::DeliveryOutcome as O;
    assert_eq!(backoff(1), Duration::seconds(1));
    assert_eq!(backoff(2), Duration::seconds(2));
    assert_eq!(backoff(4), Duration::seconds(8));
    assert_eq!(backoff(30), Duration::seconds(300));
    match after_failure(3, t(0), t(10), "down".into()) {
        O::Retry { next, .. } => assert_eq!(next, t(14)),
        other => panic!("{other:?}"),
    }
    let day = 24 * 3600;
    match after_failure(99, t(0), t(day - 10), "down".into()) {
        O::Retry { next, .. } => assert_eq!(next, t(day)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        after_failure(100, t(0), t(day), "down".into()),
        O::Failed { .. }
    ));
}

#[test]
fn status_compare_and_set_and_one_active_request() {
    use RequestStatus as S;
    let id = RequestId::from("r");
    assert!(status_is(&id, Some(S::Accepted), Some(S::Accepted)).is_ok());
    assert!(status_is(&id, None, Some(S::Running)).is_ok());
    assert!(matches!(
        status_is(&id, Some(S::Accepted), Some(S::Running)),
        Err(StoreError::StatusConflict {
            expected: S::Accepted,
            actual: S::Running,
            ..
        })
    ));
    assert!(matches!(
        status_is(&id, None, None),
        Err(StoreError::RequestNotFound(_))
    ));
    assert!(one_active("e", [("a".into(), S::Succeeded), ("b".into(), S::Failed)]).is_ok());
    for active in [S::Submitted, S::Accepted, S::Running] {
        assert!(matches!(
            one_active("e", [("a".into(), S::Cancelled), ("b".into(), active)]),
            Err(StoreError::ActiveRequestExists { existing, .. }) if existing == "b"
        ));
    }
    assert!(matches!(
        job_exists(&JobId::from("j"), false),
        Err(StoreError::JobNotFound(_))
    ));
    assert!(no_run_in_progress(&id, None).is_ok());
    assert!(empty_target("t", RowCounts::default()).is_ok());
    assert!(matches!(
        empty_target("t", RowCounts { jobs: 1, ..RowCounts::default() }),
        Err(StoreError::TargetNotEmpty { found, .. }) if found.jobs == 1
    ));
    assert!(matches!(
        no_run_in_progress(&id, Some("j".into())),
        Err(StoreError::RunInProgress { job, .. }) if job == "j"
    ));
}
