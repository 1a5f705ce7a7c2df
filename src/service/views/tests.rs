use super::*;

/// The CLI's JSON before the views existed, for one request: the views
/// must give the same object, field for field.
#[test]
fn a_request_is_shown_as_before() {
    let t: DateTime<Utc> = "2026-11-24T08:30:00.5Z".parse().unwrap();
    let r = RestoreRequest::new(
        "abc".into(),
        crate::domain::RequestSpec {
            environment: "uat".into(),
            database: "AxDB".into(),
            restore_point: t,
            window: crate::domain::Window { start: t, end: t },
            acks: Acknowledgements {
                erase: true,
                downtime: true,
                scope: true,
                version_mismatch: false,
            },
            requester: "ana".into(),
            reason: None,
            prestage: false,
            emergency: Some("e".into()),
        },
        t,
    );
    let v = serde_json::to_value(RequestView::from(&r)).unwrap();
    let before = serde_json::json!({
        "id": "abc", "status": "submitted", "environment": "uat", "database": "AxDB",
        "restore_point": "2026-11-24T08:30:00Z", "window_start": "2026-11-24T08:30:00Z",
        "window_end": "2026-11-24T08:30:00Z",
        "acknowledgements": {"erase": true, "downtime": true, "scope": true, "version_mismatch": false},
        "requester": "ana", "reason": null, "prestage": false, "emergency": "e", "warning": null,
        "submitted_at": "2026-11-24T08:30:00Z", "updated_at": "2026-11-24T08:30:00Z",
    });
    assert_eq!(v, before);
    let d = serde_json::to_value(RequestDetail::new(&r, &[], &[], &[], None, None)).unwrap();
    for k in [
        "events",
        "jobs",
        "job",
        "steps",
        "downtime_secs",
        "estimated_downtime_secs",
        "waiting",
        "runner",
        "runner_lease_until",
        "id",
    ] {
        assert!(d.get(k).is_some(), "{k}");
    }
}
