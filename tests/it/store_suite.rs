//! The contract of the `Store` trait, told as one story that every
//! implementation must pass: [`store_suite`] is called once per backend.
//! It only creates rows with fresh random ids and environment names, and only
//! looks at those, so it can also run against a shared database (PostgreSQL).
//! Instants are whole microseconds, the precision every backend keeps.
//!
//! SQLite-specific behaviour (schema versions, reopening, corrupt values) is
//! tested after the suite; PostgreSQL's in `store_postgres.rs`, which uses
//! the builders here.
use chrono::{DateTime, Duration, TimeZone, Utc};
use pitr::domain::{
    Acknowledgements, Job, JobFacts, JobId, JobStatus, RequestEvent, RequestId, RequestSpec,
    RequestStatus, RestoreRequest, StepName, StepRecord, StepStatus, Window,
};
use pitr::store::sqlite::SCHEMA_VERSION;
use pitr::store::{Lease, SharedStore, StoreError};
use serde_json::json;

pub(crate) fn t(minutes: i64) -> DateTime<Utc> {
    // A fixed origin with a microsecond fraction, so precision is exercised.
    Utc.timestamp_opt(1_714_600_000, 123_456_000).unwrap() + Duration::minutes(minutes)
}

pub(crate) fn fresh(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub(crate) fn request(id: &str, environment: &str, submitted_at: DateTime<Utc>) -> RestoreRequest {
    RestoreRequest {
        id: id.into(),
        spec: RequestSpec {
            environment: environment.to_string(),
            database: "db_fno_main".to_string(),
            restore_point: submitted_at - Duration::hours(3),
            window: Window {
                start: submitted_at + Duration::hours(2),
                end: submitted_at + Duration::hours(4),
            },
            acks: Acknowledgements {
                erase: true,
                downtime: true,
                scope: false,
                version_mismatch: true,
            },
            requester: "ana@contoso.com".to_string(),
            reason: Some("regression in posting; back to Tuesday's data".to_string()),
            prestage: false,
            emergency: Some("go-live rehearsal blocked".to_string()),
        },
        status: RequestStatus::Submitted,
        warning: None,
        submitted_at,
        updated_at: submitted_at,
    }
}

pub(crate) fn submitted(req: &RestoreRequest) -> RequestEvent {
    RequestEvent {
        request_id: req.id.clone(),
        at: req.submitted_at,
        actor: req.spec.requester.clone(),
        from: None,
        to: RequestStatus::Submitted,
        note: req.spec.reason.clone(),
    }
}

pub(crate) fn event(
    id: &RequestId,
    from: Option<RequestStatus>,
    to: RequestStatus,
    at: DateTime<Utc>,
) -> RequestEvent {
    RequestEvent {
        request_id: id.clone(),
        at,
        actor: "ops@contoso.com".to_string(),
        from,
        to,
        note: None,
    }
}

pub(crate) fn job(id: &str, request_id: &RequestId, created_at: DateTime<Utc>) -> Job {
    Job {
        id: id.into(),
        request_id: request_id.clone(),
        dry_run: false,
        status: JobStatus::Running,
        plan: pitr::engine::steps::default_plan(false),
        created_at,
        updated_at: created_at,
        finished_at: None,
        facts: JobFacts::default(),
        error: None,
    }
}

/// The whole contract, in the order a request lives through it.
pub async fn store_suite(store: SharedStore) {
    use RequestStatus as S;
    let env_a = fresh("env-a");
    let env_b = fresh("env-b");

    // Unknown ids: absent, not errors.
    let nobody = fresh("nobody");
    let (nobody_req, nobody_job) = (
        RequestId::from(nobody.as_str()),
        JobId::from(nobody.as_str()),
    );
    assert_eq!(store.get_request(&nobody_req).await.unwrap(), None);
    assert!(store.request_events(&nobody_req).await.unwrap().is_empty());
    assert_eq!(store.get_job(&nobody_job).await.unwrap(), None);
    assert!(store
        .jobs_for_request(&nobody_req)
        .await
        .unwrap()
        .is_empty());
    assert!(store.steps(&nobody_job).await.unwrap().is_empty());

    // A request and its first event round-trip exactly.
    let mut first = request(&fresh("req1"), &env_a, t(0));
    let first_submitted = submitted(&first);
    store
        .insert_request(&first, &first_submitted)
        .await
        .unwrap();
    assert_eq!(
        store.get_request(&first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.request_events(&first.id).await.unwrap(),
        vec![first_submitted.clone()]
    );

    // The environment is held: a second request is refused, naming the
    // first, and nothing of it is written.
    let second = request(&fresh("req2"), &env_a, t(1));
    match store.insert_request(&second, &submitted(&second)).await {
        Err(StoreError::ActiveRequestExists {
            environment,
            existing,
        }) => {
            assert_eq!(environment, env_a);
            assert_eq!(existing, first.id);
        }
        other => panic!("expected ActiveRequestExists, got {other:?}"),
    }
    assert_eq!(store.get_request(&second.id).await.unwrap(), None);
    assert!(store.request_events(&second.id).await.unwrap().is_empty());

    // Another environment is free. A request without a reason and with
    // other flags round-trips too.
    let mut other = request(&fresh("req3"), &env_b, t(2));
    other.spec.reason = None;
    other.spec.prestage = true;
    other.spec.acks = Acknowledgements::default();
    store
        .insert_request(&other, &submitted(&other))
        .await
        .unwrap();
    assert_eq!(
        store.get_request(&other.id).await.unwrap(),
        Some(other.clone())
    );

    // A warning is set once (a second identical one changes nothing) and
    // cleared; an unknown request is an error.
    assert!(store
        .set_warning(&other.id, Some("falls out"))
        .await
        .unwrap());
    assert!(!store
        .set_warning(&other.id, Some("falls out"))
        .await
        .unwrap());
    other.warning = Some("falls out".into());
    assert_eq!(
        store.get_request(&other.id).await.unwrap(),
        Some(other.clone())
    );
    assert!(store.set_warning(&other.id, None).await.unwrap());
    other.warning = None;
    assert_eq!(
        store.get_request(&other.id).await.unwrap(),
        Some(other.clone())
    );
    assert!(matches!(
        store.set_warning(&nobody_req, None).await,
        Err(StoreError::RequestNotFound(_))
    ));

    // A transition is a compare-and-set with its audit event.
    let accepted = RequestEvent {
        note: Some("approved by the change board".into()),
        ..event(&first.id, Some(S::Submitted), S::Accepted, t(10))
    };
    store.transition_request(&accepted).await.unwrap();
    first.status = S::Accepted;
    first.updated_at = t(10);
    assert_eq!(
        store.get_request(&first.id).await.unwrap(),
        Some(first.clone())
    );

    // A stale expectation is refused and changes nothing.
    let stale = event(&first.id, Some(S::Submitted), S::Rejected, t(11));
    match store.transition_request(&stale).await {
        Err(StoreError::StatusConflict {
            id,
            expected,
            actual,
        }) => {
            assert_eq!(
                (id, expected, actual),
                (first.id.clone(), S::Submitted, S::Accepted)
            );
        }
        other => panic!("expected StatusConflict, got {other:?}"),
    }
    assert_eq!(
        store.get_request(&first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.request_events(&first.id).await.unwrap(),
        vec![first_submitted.clone(), accepted.clone()]
    );
    let missing = event(&nobody_req, Some(S::Submitted), S::Accepted, t(11));
    assert!(matches!(
        store.transition_request(&missing).await,
        Err(StoreError::RequestNotFound(id)) if id == nobody_req
    ));

    // Reschedule: the editable fields change, with an event, under the same CAS.
    let mut moved = first.clone();
    moved.spec.restore_point = t(-600);
    moved.spec.window = Window {
        start: t(1440),
        end: t(1500),
    };
    moved.spec.reason = Some("moved to Thursday".into());
    moved.spec.prestage = true;
    let rescheduled = event(&first.id, Some(S::Accepted), S::Accepted, t(20));
    store.update_request(&moved, &rescheduled).await.unwrap();
    moved.updated_at = t(20);
    assert_eq!(
        store.get_request(&first.id).await.unwrap(),
        Some(moved.clone())
    );
    first = moved;

    let mut stale_edit = first.clone();
    stale_edit.spec.reason = Some("should not land".into());
    let stale = event(&first.id, Some(S::Submitted), S::Submitted, t(21));
    assert!(matches!(
        store.update_request(&stale_edit, &stale).await,
        Err(StoreError::StatusConflict {
            actual: S::Accepted,
            expected: S::Submitted,
            ..
        })
    ));
    assert_eq!(
        store.get_request(&first.id).await.unwrap(),
        Some(first.clone())
    );
    let ghost = request(&nobody, &env_a, t(0));
    assert!(matches!(
        store
            .update_request(
                &ghost,
                &event(&nobody_req, Some(S::Submitted), S::Submitted, t(21))
            )
            .await,
        Err(StoreError::RequestNotFound(_))
    ));

    // A run starts as one claim: the job, the request's start and the
    // lease, together.
    let ttl = Duration::seconds(60);
    let running = event(&first.id, Some(S::Accepted), S::Running, t(1440));
    let mut job1 = job(&fresh("job1"), &first.id, t(1440));
    let claimed = store
        .claim_run(&job1, Some(&running), "runner-0", t(1440), ttl, None)
        .await
        .unwrap();
    assert_eq!((claimed.owner.as_str(), claimed.fencing), ("runner-0", 1));
    assert_eq!(store.get_job(&job1.id).await.unwrap(), Some(job1.clone()));
    assert_eq!(store.get_lease(&job1.id).await.unwrap(), Some(claimed));
    first.status = S::Running;
    first.updated_at = t(1440);
    assert_eq!(
        store.get_request(&first.id).await.unwrap(),
        Some(first.clone())
    );
    // A second claim of the request is refused, naming the run, whether it
    // states a start or not (a rehearsal); nothing of it is written.
    let again = job(&fresh("job1b"), &first.id, t(1440));
    for start in [Some(&running), None] {
        assert!(matches!(
            store.claim_run(&again, start, "runner-1", t(1440), ttl, None).await,
            Err(StoreError::RunInProgress { job, .. }) if job == job1.id
        ));
    }
    assert_eq!(store.get_job(&again.id).await.unwrap(), None);
    // A start that expects another status is refused, nothing written.
    let early = job(&fresh("early"), &other.id, t(1440));
    let wrong = event(&other.id, Some(S::Accepted), S::Running, t(1440));
    assert!(matches!(
        store
            .claim_run(&early, Some(&wrong), "runner-1", t(1440), ttl, None)
            .await,
        Err(StoreError::StatusConflict { .. })
    ));
    assert_eq!(store.get_job(&early.id).await.unwrap(), None);
    assert_eq!(
        store.get_request(&other.id).await.unwrap(),
        Some(other.clone())
    );
    // A job needs its request.
    assert!(matches!(
        store
            .claim_run(
                &job(&fresh("orphan"), &nobody_req, t(0)),
                None,
                "x",
                t(0),
                ttl,
                None
            )
            .await,
        Err(StoreError::RequestNotFound(_))
    ));

    // Accepted and running still hold the environment.
    assert!(matches!(
        store.insert_request(&second, &submitted(&second)).await,
        Err(StoreError::ActiveRequestExists { .. })
    ));

    // Step checkpoints: upserted by step, listed in first-saved order.
    let mut preflight = StepRecord::pending(StepName::Preflight);
    preflight.status = StepStatus::Running;
    preflight.attempts = 1;
    preflight.started_at = Some(t(1441));
    store.save_step(&job1.id, &preflight, None).await.unwrap();
    let offline = StepRecord {
        step: StepName::Offline,
        status: StepStatus::Failed,
        attempts: 3,
        external_ref: Some("https://management.azure.com/ops/1?api-version=2023-08-01".into()),
        started_at: Some(t(1442)),
        finished_at: Some(t(1443)),
        detail: Some("renamed db -> db_before_1234".into()),
        error: Some("throttled (429)".into()),
    };
    store.save_step(&job1.id, &offline, None).await.unwrap();
    assert_eq!(
        store.steps(&job1.id).await.unwrap(),
        vec![preflight.clone(), offline.clone()]
    );
    // Updating the first step keeps its place and replaces every field,
    // including clearing optional ones.
    preflight.status = StepStatus::Succeeded;
    preflight.attempts = 2;
    preflight.finished_at = Some(t(1444));
    preflight.detail = Some("all checks passed".into());
    store.save_step(&job1.id, &preflight, None).await.unwrap();
    let offline_retried = StepRecord {
        status: StepStatus::Succeeded,
        error: None,
        external_ref: None,
        ..offline.clone()
    };
    store
        .save_step(&job1.id, &offline_retried, None)
        .await
        .unwrap();
    let restore = StepRecord::pending(StepName::Restore);
    store.save_step(&job1.id, &restore, None).await.unwrap();
    assert_eq!(
        store.steps(&job1.id).await.unwrap(),
        vec![preflight.clone(), offline_retried.clone(), restore.clone()]
    );
    assert!(matches!(
        store.save_step(&nobody_job, &restore, None).await,
        Err(StoreError::JobNotFound(id)) if id == nobody_job
    ));

    // The whole job row is rewritten, facts included (with a JSON sku).
    job1.status = JobStatus::Failed;
    job1.updated_at = t(1450);
    job1.finished_at = Some(t(1451));
    job1.error = Some("restore did not finish in time".into());
    job1.facts = JobFacts {
        original_database_id: Some("1b2c3d4e-0000-4000-8000-000000000001".into()),
        restored_database_id: Some("1b2c3d4e-0000-4000-8000-000000000002".into()),
        source_resource_id: Some(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/srv/databases/db"
                .into(),
        ),
        source_sku: Some(json!({
            "name": "GP_Gen5", "tier": "GeneralPurpose", "family": "Gen5",
            "capacity": 8, "ratio": 0.75, "zoneRedundant": null, "tags": ["a", "b"]
        })),
        source_elastic_pool_id: None,
        source_tags: [("owner".to_string(), "ana".to_string())].into(),
        source_zone_redundant: Some(false),
        source_backup_redundancy: Some("Geo".into()),
        source_short_term: Some(pitr::domain::retention::ShortTerm {
            days: 21,
            diff_hours: Some(24),
        }),
        source_long_term: Some(pitr::domain::retention::LongTerm::new(
            Some("P12W"),
            None,
            Some("P5Y"),
            Some(16),
        )),
        not_carried: vec!["database-level auditing was on; set it again".into()],
        source_properties: [
            ("maxSizeBytes".to_string(), json!(107374182400u64)),
            ("minCapacity".to_string(), json!(0.5)),
        ]
        .into(),
        source_threat_protection: Some("Enabled".into()),
        source_read_scale: Some("Disabled".into()),
        offline_at: Some(t(1443)),
        online_at: None,
        recovering: Some("restore step failed: timeout".into()),
        rollback: Some(pitr::domain::job::RollbackOf {
            job: "0123456789abcdef0123456789abcdef".into(),
            by: "ops".into(),
            reason: Some("wrong point".into()),
        }),
    };
    store.update_job(&job1, None).await.unwrap();
    assert_eq!(store.get_job(&job1.id).await.unwrap(), Some(job1.clone()));
    assert!(matches!(
        store.update_job(&job(&nobody, &first.id, t(0)), None).await,
        Err(StoreError::JobNotFound(id)) if id == nobody_job
    ));

    // A second job of the same request (same instant: insertion order
    // decides), a dry run with another plan; jobs come oldest first.
    let mut job2 = job(&fresh("job2"), &first.id, t(1450));
    job2.dry_run = true;
    job2.plan = pitr::engine::steps::default_plan(true);
    let mut job3 = job(&fresh("job3"), &first.id, t(1450));
    job3.plan = vec![];
    store
        .claim_run(&job2, None, "runner-0", t(1450), ttl, None)
        .await
        .unwrap();
    store
        .claim_run(&job3, None, "runner-0", t(1450), ttl, None)
        .await
        .unwrap();
    assert_eq!(
        store.jobs_for_request(&first.id).await.unwrap(),
        vec![job1.clone(), job2.clone(), job3.clone()]
    );
    assert!(store.jobs_for_request(&other.id).await.unwrap().is_empty());
    // Steps belong to their job.
    assert!(store.steps(&job2.id).await.unwrap().is_empty());
    store.save_step(&job2.id, &restore, None).await.unwrap();
    assert_eq!(store.steps(&job2.id).await.unwrap(), vec![restore.clone()]);
    assert_eq!(store.steps(&job1.id).await.unwrap().len(), 3);

    // A finished request frees its environment. (A `None` expectation skips
    // the compare-and-set; the engine always states one.)
    let failed = event(&first.id, None, S::Failed, t(1452));
    store.transition_request(&failed).await.unwrap();
    first.status = S::Failed;
    first.updated_at = t(1452);
    assert_eq!(
        store.get_request(&first.id).await.unwrap(),
        Some(first.clone())
    );
    store
        .insert_request(&second, &submitted(&second))
        .await
        .unwrap();

    // The audit trail, oldest first, exactly as written.
    assert_eq!(
        store.request_events(&first.id).await.unwrap(),
        vec![first_submitted, accepted, rescheduled, running, failed]
    );

    // Newest first by submission; equal instants by insertion, latest first.
    let mut twin = request(&fresh("req4"), &fresh("env-c"), t(2));
    twin.status = S::Cancelled;
    store
        .insert_request(
            &twin,
            &RequestEvent {
                to: S::Cancelled,
                ..submitted(&twin)
            },
        )
        .await
        .unwrap();
    let ours = [&first.id, &second.id, &other.id, &twin.id];
    let listed: Vec<RequestId> = store
        .list_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| ours.contains(&&r.id))
        .map(|r| r.id)
        .collect();
    assert_eq!(
        listed,
        vec![
            twin.id.clone(),
            other.id.clone(),
            second.id.clone(),
            first.id.clone()
        ]
    );

    lease_story(&store, &job1.id).await;
    history_story(&store).await;
    crate::store_outbox::outbox_story(&store).await;
    web_story(&store).await;
    limit_story(&store).await;
    crate::store_in_play::in_play_story(&store).await;
}

/// The web page's sign-ins (taken once, until they expire) and sessions
/// (live until they expire or are deleted), at fixed instants.
async fn web_story(store: &SharedStore) {
    use pitr::store::{WebLogin, WebSession};
    let t: chrono::DateTime<Utc> = "2026-11-24T08:00:00Z".parse().unwrap();
    let login = WebLogin {
        id_hash: fresh("login"),
        state: "st".into(),
        nonce: "no".into(),
        verifier: "ve".into(),
        return_to: "/requests/1".into(),
        expires_at: t + chrono::Duration::minutes(10),
    };
    store.insert_web_login(&login, t).await.unwrap();
    assert_eq!(
        store.take_web_login(&login.id_hash, t).await.unwrap(),
        Some(login.clone())
    );
    assert_eq!(
        store.take_web_login(&login.id_hash, t).await.unwrap(),
        None,
        "once"
    );
    let late = WebLogin {
        id_hash: fresh("late"),
        ..login.clone()
    };
    store.insert_web_login(&late, t).await.unwrap();
    let after = t + chrono::Duration::minutes(11);
    assert_eq!(
        store.take_web_login(&late.id_hash, after).await.unwrap(),
        None,
        "expired"
    );

    let session = WebSession {
        id_hash: fresh("session"),
        actor: "olga@contoso.com".into(),
        name: Some("Olga".into()),
        roles: vec!["Pitr.Operator".into()],
        groups: vec!["g1".into(), "g2".into()],
        csrf: "csrf".into(),
        created_at: t,
        expires_at: t + chrono::Duration::hours(8),
    };
    store.insert_web_session(&session, t).await.unwrap();
    assert_eq!(
        store.web_session(&session.id_hash, t).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(
        store
            .web_session(&session.id_hash, t + chrono::Duration::hours(9))
            .await
            .unwrap(),
        None,
        "expired"
    );
    assert!(store.delete_web_session(&session.id_hash).await.unwrap());
    assert_eq!(store.web_session(&session.id_hash, t).await.unwrap(), None);
    assert!(!store.delete_web_session(&session.id_hash).await.unwrap());
}

/// The limit on runs at once (`max_concurrent_runs`) holds across runners:
/// a limited claim counts the real runs driven now (running jobs whose lease
/// is live, whoever holds it) in its own transaction, and is refused at the
/// limit with nothing written. Two limited claims racing for the last place:
/// exactly one wins. Runs far after the other stories' instants, and leaves
/// no live lease behind, so the suite can run twice on one database.
async fn limit_story(store: &SharedStore) {
    use RequestStatus as S;
    let at = t(5_000_000);
    let ttl = Duration::seconds(60);
    let mut accepted = Vec::new();
    for _ in 0..6 {
        let req = request(&fresh("lim"), &fresh("env-lim"), at - Duration::days(2));
        store.insert_request(&req, &submitted(&req)).await.unwrap();
        store
            .transition_request(&event(&req.id, Some(S::Submitted), S::Accepted, at))
            .await
            .unwrap();
        accepted.push(req);
    }
    let claim = |req: &RestoreRequest, owner: &'static str, now: DateTime<Utc>| {
        let job = job(&fresh("limjob"), &req.id, now);
        let start = event(&req.id, Some(S::Accepted), S::Running, now);
        let store = store.clone();
        async move {
            store
                .claim_run(&job, Some(&start), owner, now, ttl, Some(2))
                .await
                .map(|lease| (job, lease))
        }
    };
    // Two runners take the two places.
    let (job_a, lease_a) = claim(&accepted[0], "host-a:1.1:aa", at).await.unwrap();
    let (_job_b, lease_b) = claim(&accepted[1], "host-b:2.2:bb", at).await.unwrap();
    // A rehearsal holding a live lease is not a run: it counts for nothing.
    let rehearsal = Job {
        dry_run: true,
        ..job(&fresh("limdry"), &accepted[5].id, at)
    };
    let dry_lease = store
        .claim_run(&rehearsal, None, "host-c:3.3:cc", at, ttl, None)
        .await
        .unwrap();
    // A third runner is refused at the limit, whatever its request; nothing
    // of its claim is written.
    let refused = claim(&accepted[2], "host-c:3.3:cc", at).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::LimitReached {
                running: 2,
                limit: 2
            })
        ),
        "{refused:?}"
    );
    let e = refused.unwrap_err().to_string();
    assert!(e.contains("max-concurrent-runs"), "{e}");
    assert!(store
        .jobs_for_request(&accepted[2].id)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .get_request(&accepted[2].id)
            .await
            .unwrap()
            .unwrap()
            .status,
        S::Accepted
    );
    // A released lease frees its place at once.
    store.release_lease(&lease_a).await.unwrap();
    let (_job_c, lease_c) = claim(&accepted[2], "host-c:3.3:cc", at).await.unwrap();
    assert!(matches!(
        claim(&accepted[3], "host-a:1.1:aa", at).await,
        Err(StoreError::LimitReached { .. })
    ));
    // A lease that expired (its runner died) frees its place too, though
    // its job still reads `running`.
    let later = at + ttl + Duration::seconds(1);
    assert_eq!(
        store.get_job(&job_a.id).await.unwrap().unwrap().status,
        JobStatus::Running
    );
    let (_job_d, lease_d) = claim(&accepted[3], "host-a:1.1:aa", later).await.unwrap();
    // Two runners racing for the last place at once: exactly one gets it.
    let (x, y) = tokio::join!(
        claim(&accepted[4], "host-b:2.2:bb", later),
        claim(&accepted[5], "host-c:3.3:cc", later)
    );
    let won: Vec<Lease> = [&x, &y]
        .into_iter()
        .filter_map(|r| r.as_ref().ok().map(|(_, l)| l.clone()))
        .collect();
    assert_eq!(won.len(), 1, "{x:?} {y:?}");
    assert!(
        [&x, &y].into_iter().any(|r| matches!(
            r,
            Err(StoreError::LimitReached {
                running: 2,
                limit: 2
            })
        )),
        "{x:?} {y:?}"
    );
    // Leave no live lease behind.
    for lease in [lease_b, lease_c, lease_d, dry_lease].iter().chain(&won) {
        store.release_lease(lease).await.unwrap();
    }
}

/// Environment history: restores and deployments, oldest first, per environment.
async fn history_story(store: &SharedStore) {
    use pitr::domain::{EnvironmentEvent, HistoryEntry, RestoreRecord};
    let env = fresh("env-h");
    let deployment = EnvironmentEvent {
        environment: env.clone(),
        at: t(3000),
        entry: HistoryEntry::Deployment {
            version: "10.0.38".into(),
            note: None,
        },
    };
    let restore = EnvironmentEvent {
        environment: env.clone(),
        at: t(2990),
        entry: HistoryEntry::Restore(RestoreRecord {
            job: fresh("job").into(),
            request: fresh("req").into(),
            restore_point: t(-100),
            finished_at: Some(t(3050)),
            restore_secs: Some(12.5),
            downtime_secs: None,
            prestaged: true,
        }),
    };
    let rollback = EnvironmentEvent {
        environment: env.clone(),
        at: t(3100),
        entry: HistoryEntry::Rollback(pitr::domain::RollbackRecord {
            job: fresh("job").into(),
            rolled_back: fresh("job").into(),
            request: fresh("req").into(),
            finished_at: Some(t(3110)),
            downtime_secs: Some(600.5),
            reason: Some("the data was wrong".into()),
        }),
    };
    assert!(store.environment_events(&env).await.unwrap().is_empty());
    store.add_environment_event(&deployment).await.unwrap();
    store.add_environment_event(&restore).await.unwrap();
    store.add_environment_event(&rollback).await.unwrap();
    assert_eq!(
        store.environment_events(&env).await.unwrap(),
        vec![restore, deployment, rollback]
    );
    assert!(store
        .environment_events(&fresh("other"))
        .await
        .unwrap()
        .is_empty());
}

/// Leases: one owner at a time, takeover after expiry, stale writes refused.
async fn lease_story(store: &SharedStore, job_id: &JobId) {
    use pitr::store::StoreError;
    let ttl = chrono::Duration::seconds(60);
    // Claimed long ago by runner-0, whose lease has expired.
    let claimed = store.get_lease(job_id).await.unwrap().unwrap();
    assert_eq!((claimed.owner.as_str(), claimed.fencing), ("runner-0", 1));
    let a = store
        .acquire_lease(job_id, "runner-a", t(2000), ttl)
        .await
        .unwrap();
    assert_eq!(a.fencing, 2);
    assert_eq!(store.get_lease(job_id).await.unwrap(), Some(a.clone()));
    // Held: another runner is told who holds it and until when.
    match store.acquire_lease(job_id, "runner-b", t(2000), ttl).await {
        Err(StoreError::LeaseHeld {
            owner, expires_at, ..
        }) => {
            assert_eq!(owner, "runner-a");
            assert_eq!(expires_at, t(2001));
        }
        other => panic!("expected LeaseHeld, got {other:?}"),
    }
    // The owner writes under its lease and renews it.
    let step = StepRecord::pending(StepName::Verify);
    store.save_step(job_id, &step, Some(&a)).await.unwrap();
    let a = store
        .renew_lease(&a, t(2000) + chrono::Duration::seconds(30), ttl)
        .await
        .unwrap();
    assert_eq!(a.fencing, 2);
    // After expiry another runner takes over, with a larger fencing token.
    let b = store
        .acquire_lease(job_id, "runner-b", t(2005), ttl)
        .await
        .unwrap();
    assert_eq!(b.fencing, 3);
    // The stale owner's writes and renewals are refused.
    assert!(matches!(
        store.save_step(job_id, &step, Some(&a)).await,
        Err(StoreError::LeaseLost {
            ours: 2,
            current: 3,
            ..
        })
    ));
    let job = store.get_job(job_id).await.unwrap().unwrap();
    assert!(matches!(
        store.update_job(&job, Some(&a)).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        store.renew_lease(&a, t(2005), ttl).await,
        Err(StoreError::LeaseLost { .. })
    ));
    store.update_job(&job, Some(&b)).await.unwrap();
    // Releasing frees it at once, and the token keeps growing.
    store.release_lease(&a).await.unwrap(); // stale: no effect
    assert!(store
        .acquire_lease(job_id, "runner-c", t(2005), ttl)
        .await
        .is_err());
    store.release_lease(&b).await.unwrap();
    let c = store
        .acquire_lease(job_id, "runner-c", t(2005), ttl)
        .await
        .unwrap();
    assert_eq!(c.fencing, 4);
    assert!(matches!(
        store.save_step(job_id, &step, Some(&b)).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        store
            .acquire_lease(&"no-such-job".into(), "x", t(2005), ttl)
            .await,
        Err(StoreError::JobNotFound(_))
    ));
    // A dead owner's lease is taken over before it expires, but only from
    // the owner named (a compare-and-swap).
    assert!(matches!(
        store
            .take_over_lease(job_id, "someone-else", "runner-d", t(2005), ttl)
            .await,
        Err(StoreError::LeaseHeld { .. })
    ));
    let d = store
        .take_over_lease(job_id, "runner-c", "runner-d", t(2005), ttl)
        .await
        .unwrap();
    assert_eq!((d.owner.as_str(), d.fencing), ("runner-d", 5));
    assert!(matches!(
        store.save_step(job_id, &step, Some(&c)).await,
        Err(StoreError::LeaseLost { .. })
    ));
}

fn sqlite_url(dir: &tempfile::TempDir, rel: &str) -> (String, std::path::PathBuf) {
    let path = dir.path().join(rel);
    (format!("sqlite://{}", path.display()), path)
}

fn file_version(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn sqlite_passes_the_store_suite() {
    let dir = tempfile::tempdir().unwrap();
    // Parent directories are created on open.
    let (url, path) = sqlite_url(&dir, "var/nested/pitr.db");
    let store = pitr::store::open(&url).await.unwrap();
    assert!(path.exists());
    store_suite(store).await;
}

/// Each run gets a database of its own (`helpers::PgDatabase`); PostgreSQL
/// must be reachable (the test fails, never skips, otherwise).
#[tokio::test]
async fn postgres_passes_the_store_suite() {
    let db = crate::helpers::PgDatabase::create().await;
    let store = pitr::store::open(&db.url).await.unwrap();
    store_suite(store.clone()).await;
    // The same story again on the same database: it only looks at its own
    // rows, as on a database shared with other runners.
    store_suite(store).await;
}

#[tokio::test]
async fn sqlite_reopen_keeps_data_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let (url, path) = sqlite_url(&dir, "pitr.db");
    let store = pitr::store::open(&url).await.unwrap();
    let req = request("r1", "env", t(0));
    store.insert_request(&req, &submitted(&req)).await.unwrap();
    let j = job("j1", &"r1".into(), t(5));
    store
        .claim_run(&j, None, "runner", t(5), Duration::seconds(60), None)
        .await
        .unwrap();
    store
        .save_step(
            &"j1".into(),
            &StepRecord::pending(StepName::Preflight),
            None,
        )
        .await
        .unwrap();

    // A second store on the same file at the same time (another process).
    let again = pitr::store::open(&url).await.unwrap();
    assert_eq!(
        again.get_request(&"r1".into()).await.unwrap(),
        Some(req.clone())
    );
    drop((store, again));

    let reopened = pitr::store::open(&url).await.unwrap();
    assert_eq!(
        reopened.get_request(&"r1".into()).await.unwrap(),
        Some(req.clone())
    );
    assert_eq!(
        reopened.request_events(&"r1".into()).await.unwrap(),
        vec![submitted(&req)]
    );
    assert_eq!(reopened.get_job(&"j1".into()).await.unwrap(), Some(j));
    assert_eq!(reopened.steps(&"j1".into()).await.unwrap().len(), 1);
    drop(reopened);
    assert_eq!(file_version(&path), SCHEMA_VERSION);
}

#[tokio::test]
async fn sqlite_keeps_nanoseconds() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _) = sqlite_url(&dir, "pitr.db");
    let store = pitr::store::open(&url).await.unwrap();
    let at = Utc.timestamp_opt(1_714_600_000, 987_654_321).unwrap();
    let req = request("r1", "env", at);
    store.insert_request(&req, &submitted(&req)).await.unwrap();
    assert_eq!(store.get_request(&"r1".into()).await.unwrap(), Some(req));
}

#[tokio::test]
async fn sqlite_refuses_a_newer_schema_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (url, path) = sqlite_url(&dir, "pitr.db");
    drop(pitr::store::open(&url).await.unwrap());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    match pitr::store::open(&url).await {
        Err(StoreError::SchemaTooNew {
            path: p,
            found,
            supported,
        }) => {
            assert_eq!(p, path.display().to_string());
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert_eq!(file_version(&path), SCHEMA_VERSION + 1);
}

#[tokio::test]
async fn sqlite_reports_unreadable_values_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (url, path) = sqlite_url(&dir, "pitr.db");
    let store = pitr::store::open(&url).await.unwrap();
    let req = request("r1", "env", t(0));
    store.insert_request(&req, &submitted(&req)).await.unwrap();
    store
        .claim_run(
            &job("j1", &"r1".into(), t(1)),
            None,
            "runner",
            t(1),
            Duration::seconds(60),
            None,
        )
        .await
        .unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "UPDATE requests SET status = 'paused', window_end = 'tomorrow';
             UPDATE jobs SET facts = '{\"source_sku\": ', plan = 'preflight,teleport'",
        )
        .unwrap();
    }
    for result in [
        store.get_request(&"r1".into()).await.map(|_| ()),
        store.list_requests().await.map(|_| ()),
        store.get_job(&"j1".into()).await.map(|_| ()),
        store.jobs_for_request(&"r1".into()).await.map(|_| ()),
    ] {
        match result {
            Err(e @ StoreError::Corrupt(_)) => {
                let msg = e.to_string();
                assert!(msg.contains("requests.") || msg.contains("jobs."), "{msg}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    // The status is also read under the compare-and-set.
    assert!(matches!(
        store
            .transition_request(&event(&"r1".into(), None, RequestStatus::Accepted, t(2)))
            .await,
        Err(StoreError::Corrupt(msg)) if msg.contains("requests.status")
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_one_active_request_across_processes() {
    // Two stores on one file race to submit for the same environment: the
    // immediate transactions serialize them, exactly one wins.
    let dir = tempfile::tempdir().unwrap();
    let (url, _) = sqlite_url(&dir, "pitr.db");
    let a = pitr::store::open(&url).await.unwrap();
    let b = pitr::store::open(&url).await.unwrap();
    let mut tasks = Vec::new();
    for (i, store) in [
        a.clone(),
        b,
        a.clone(),
        pitr::store::open(&url).await.unwrap(),
    ]
    .into_iter()
    .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let req = request(&format!("r{i}"), "env", t(i as i64));
            store.insert_request(&req, &submitted(&req)).await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::ActiveRequestExists { .. }) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(a.list_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    for url in [
        "mysql://localhost/pitr",
        "pitr.db",
        "sqlite:pitr.db",
        "postgres:/x",
    ] {
        match pitr::store::open(url).await {
            Err(e @ StoreError::UnsupportedUrl(_)) => {
                let msg = e.to_string();
                assert!(msg.contains(url), "{msg}");
                // Both forms are named.
                assert!(msg.contains("sqlite://PATH"), "{msg}");
                assert!(msg.contains("postgres://USER@HOST:5432/DATABASE"), "{msg}");
            }
            other => panic!("{url}: expected UnsupportedUrl, got {other:?}"),
        }
    }
    assert!(matches!(
        pitr::store::open("sqlite://").await,
        Err(StoreError::Open { .. })
    ));
}
