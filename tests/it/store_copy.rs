//! `pitr store copy`: a SQLite store that lived through real runs moves to
//! PostgreSQL, and the `pitr` binary tells the same story from either;
//! rows come back exact in both directions; the source is never changed.
use crate::helpers::{sandbox_environment, InProcess, PgDatabase, PITR};
use crate::store_suite::{event, job, request, store_suite, submitted};
use chrono::{Duration, Utc};
use pitr::clock::Clock;
use pitr::domain::lifecycle::LifecycleEvent;
use pitr::domain::{JobStatus, RequestId, RequestStatus, StepName, StepRecord, StepStatus};
use pitr::store::copy::{self, CopyError};
use pitr::store::{SharedStore, StoreError};
use std::path::Path;
use std::process::Output;

const SUB: &str = "00000000-0000-0000-0000-00000000cccc";

fn config() -> String {
    let mut c = String::from("[azure]\nmin_poll_interval_ms = 20\n");
    for name in ["uat", "qa", "dev"] {
        c.push_str(&sandbox_environment(name, SUB));
    }
    c
}

/// A request that ended through a run of its own (written straight to the
/// store): a job with steps, its lease released.
async fn ended_run(h: &InProcess, env: &str, end: RequestStatus) -> RequestId {
    let store = h.engine.store();
    let at = h.clock.now();
    let req = request(&uuid::Uuid::new_v4().to_string()[..12], env, at);
    store.insert_request(&req, &submitted(&req)).await.unwrap();
    let accepted = event(
        &req.id,
        Some(RequestStatus::Submitted),
        RequestStatus::Accepted,
        at,
    );
    store.transition_request(&accepted).await.unwrap();
    let mut j = job(&format!("{}-job", req.id), &req.id, at);
    let start = event(
        &req.id,
        Some(RequestStatus::Accepted),
        RequestStatus::Running,
        at,
    );
    let lease = store
        .claim_run(
            &j,
            Some(&start),
            "host:1:test",
            at,
            Duration::seconds(60),
            None,
        )
        .await
        .unwrap();
    let mut step = StepRecord::pending(StepName::Preflight);
    step.status = StepStatus::Failed;
    step.attempts = 2;
    step.error = Some("database not found (ResourceNotFound)".into());
    store.save_step(&j.id, &step, Some(&lease)).await.unwrap();
    store
        .save_step(&j.id, &StepRecord::pending(StepName::Offline), Some(&lease))
        .await
        .unwrap();
    j.status = if end == RequestStatus::Failed {
        JobStatus::Failed
    } else {
        JobStatus::RolledBack
    };
    j.finished_at = Some(at);
    j.error = step.error.clone();
    store.update_job(&j, Some(&lease)).await.unwrap();
    store.release_lease(&lease).await.unwrap();
    let ended = event(&req.id, Some(RequestStatus::Running), end, at);
    store.transition_request(&ended).await.unwrap();
    req.id
}

/// A store with a request in every status, as a user's would be after a
/// while: a real run (job, steps, facts, history), runs that failed or were
/// rolled back, one still marked running (its runner died, its lease long
/// expired), deployments.
async fn lived_in_store() -> (InProcess, Vec<RequestId>) {
    let h = InProcess::start(&config()).await;
    let e = &h.engine;
    let mut ids = Vec::new();
    e.add_deployment("uat", "10.0.38", h.t0 - Duration::days(10))
        .await
        .unwrap();
    // cancelled and missed (once accepted), rejected (while submitted).
    let (id, _) = h.accepted("uat", false).await;
    e.transition(&id, LifecycleEvent::Cancel, Some("superseded".into()))
        .await
        .unwrap();
    ids.push(id);
    let (id, _) = h.accepted("uat", false).await;
    e.transition(&id, LifecycleEvent::Miss, Some("window passed".into()))
        .await
        .unwrap();
    ids.push(id);
    let spec = e.request(&ids[0]).await.unwrap().spec;
    let (rejected, _) = e.submit(spec).await.unwrap();
    e.transition(
        &rejected.id,
        LifecycleEvent::Reject,
        Some("not this week".into()),
    )
    .await
    .unwrap();
    ids.push(rejected.id);
    // failed and rolled back, with jobs of their own.
    ids.push(ended_run(&h, "uat", RequestStatus::Failed).await);
    ids.push(ended_run(&h, "uat", RequestStatus::RolledBack).await);
    // running: its runner is gone, its lease expired long ago.
    let (running, _) = h.accepted("qa", true).await;
    let start = event(
        &running,
        Some(RequestStatus::Accepted),
        RequestStatus::Running,
        h.t0,
    );
    e.store()
        .claim_run(
            &job("qa-run", &running, h.t0),
            Some(&start),
            "host:2:dead",
            h.t0 - Duration::hours(1),
            Duration::seconds(60),
            None,
        )
        .await
        .unwrap();
    ids.push(running);
    // accepted, submitted.
    ids.push(h.accepted("dev", false).await.0);
    let req = request("submitted-1", "elsewhere", h.t0);
    e.store()
        .insert_request(&req, &submitted(&req))
        .await
        .unwrap();
    ids.push(req.id);
    // succeeded, through the engine against the embedded mock (last: it
    // moves the clock to the window).
    let (ok, window) = h.accepted("uat", false).await;
    h.clock.set(window.start);
    assert!(e.run(&ok, false).await.unwrap().is_success());
    ids.push(ok);
    (h, ids)
}

fn pitr(args: &[&str], config: &Path, store_url: &str) -> Output {
    std::process::Command::new(PITR)
        .args(args)
        .env("PITR_CONFIG", config)
        .env("PITR_STORE_URL", store_url)
        .env("PITR_ACTOR", "tester")
        .env_remove("PITR_STORE_PASSWORD")
        .env_remove("PITR_LOG")
        .output()
        .expect("run pitr")
}

fn stdout(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_copied_to_postgres_reads_the_same() {
    let (mut h, ids) = lived_in_store().await;
    let (statuses, running) = {
        let all = h.engine.store().list_requests().await.unwrap();
        let statuses: std::collections::BTreeSet<&str> =
            all.iter().map(|r| r.status.as_str()).collect();
        let mut running: Vec<String> = all
            .iter()
            .filter(|r| r.status == RequestStatus::Running)
            .map(|r| r.id.to_string())
            .collect();
        running.sort();
        (statuses, running)
    };
    assert_eq!(statuses.len(), RequestStatus::ALL.len(), "{statuses:?}");
    // Close the source (its last connection checkpoints the WAL), keeping
    // its directory.
    let dir = std::mem::replace(&mut h.dir, tempfile::tempdir().unwrap());
    drop(h);
    let file = dir.path().join("pitr.db");
    let sqlite = format!("sqlite://{}", file.display());
    let config = dir.path().join("pitr.toml");
    std::fs::write(&config, config_text()).unwrap();
    let (bytes, mtime) = (
        std::fs::read(&file).unwrap(),
        std::fs::metadata(&file).unwrap().modified().unwrap(),
    );

    let db = PgDatabase::create().await;
    let out = pitr(
        &[
            "store", "copy", "--from", &sqlite, "--to", &db.url, "--json",
        ],
        &config,
        "sqlite://unused.db",
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&out, "store copy")).unwrap();
    assert_eq!(report["copied"]["requests"], ids.len());
    assert!(report["copied"]["steps"].as_u64().unwrap() > 8, "{report}");
    assert!(
        report["copied"]["history"].as_u64().unwrap() >= 2,
        "{report}"
    );
    assert!(
        report["leases_not_copied"].as_u64().unwrap() >= 4,
        "{report}"
    );
    // The runs to resume are exactly the requests still running.
    assert_eq!(
        report["runs_to_resume"],
        serde_json::json!(running),
        "{report}"
    );

    // The binary tells the same story from either store.
    let same = |args: &[&str]| {
        let a = stdout(&pitr(args, &config, &sqlite), "on SQLite");
        let b = stdout(&pitr(args, &config, &db.url), "on PostgreSQL");
        assert_eq!(a, b, "pitr {args:?}");
        a
    };
    let list: serde_json::Value =
        serde_json::from_str(&same(&["request", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), ids.len());
    for id in &ids {
        same(&["request", "show", id.as_str(), "--json"]);
        same(&["request", "history", id.as_str(), "--json"]);
    }
    let env = same(&["env", "show", "uat", "--json"]);
    assert!(env.contains("10.0.38"), "{env}");

    // The target is not empty any more: a second copy is refused, exit 2.
    let again = pitr(
        &["store", "copy", "--from", &sqlite, "--to", &db.url],
        &config,
        "sqlite://unused.db",
    );
    assert_eq!(again.status.code(), Some(2));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("is not empty"), "{err}");

    // The source was only read.
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
    assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), mtime);
}

fn config_text() -> String {
    config()
}

async fn sqlite_store(dir: &tempfile::TempDir, name: &str) -> (String, SharedStore) {
    let url = format!("sqlite://{}", dir.path().join(name).display());
    let store = pitr::store::open(&url).await.unwrap();
    (url, store)
}

/// Rows come back exact after SQLite -> PostgreSQL -> SQLite (the store
/// suite's rows: whole microseconds, every kind of row), leases aside.
#[tokio::test]
async fn rows_survive_a_round_trip_through_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let (first_url, first) = sqlite_store(&dir, "first.db").await;
    store_suite(first.clone()).await;
    drop(first);
    let db = PgDatabase::create().await;
    let now = Utc::now();
    let report = copy::copy(&first_url, &db.url, now).await.unwrap();
    let (back_url, _) = sqlite_store(&dir, "back.db").await;
    let back_report = copy::copy(&db.url, &back_url, now).await.unwrap();
    assert_eq!(back_report.copied, report.copied);

    let mut expected = pitr::store::open(&first_url)
        .await
        .unwrap()
        .export()
        .await
        .unwrap();
    expected.leases.clear();
    let on_postgres = pitr::store::open(&db.url)
        .await
        .unwrap()
        .export()
        .await
        .unwrap();
    let back = pitr::store::open(&back_url)
        .await
        .unwrap()
        .export()
        .await
        .unwrap();
    assert_eq!(on_postgres, expected);
    assert_eq!(back, expected);
    assert_eq!(report.copied, expected.counts());
}

/// Refusals change nothing: a source in use, an older source, a source
/// that does not exist, a target that is not empty.
#[tokio::test]
async fn refused_copies_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (source_url, source) = sqlite_store(&dir, "source.db").await;
    let req = request("r1", "env", Utc::now());
    source.insert_request(&req, &submitted(&req)).await.unwrap();
    let now = Utc::now();
    source
        .claim_run(
            &job("j1", &req.id, now),
            None,
            "host:9:alive",
            now,
            Duration::seconds(60),
            None,
        )
        .await
        .unwrap();
    drop(source);

    // A runner holds a live lease: refused before the target is created.
    let target = dir.path().join("target.db");
    let target_url = format!("sqlite://{}", target.display());
    match copy::copy(&source_url, &target_url, now).await {
        Err(e @ CopyError::SourceInUse { .. }) => assert!(e.to_string().contains("host:9:alive")),
        other => panic!("expected SourceInUse, got {other:?}"),
    }
    assert!(!target.exists());

    // A source that does not exist is not created.
    let missing = dir.path().join("missing.db");
    assert!(matches!(
        copy::copy(&format!("sqlite://{}", missing.display()), &target_url, now).await,
        Err(CopyError::Store(StoreError::Open { .. }))
    ));
    assert!(!missing.exists());

    // A source of an older schema is not migrated: open it with this pitr first.
    let old = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&old).unwrap();
        conn.execute_batch(pitr::store::migrations::MIGRATIONS[0].sqlite)
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }
    let before = std::fs::read(&old).unwrap();
    match copy::copy(&format!("sqlite://{}", old.display()), &target_url, now).await {
        Err(CopyError::Store(e @ StoreError::SchemaTooOld { found: 1, .. })) => {
            assert!(e.to_string().contains("open it once with this pitr"), "{e}")
        }
        other => panic!("expected SchemaTooOld, got {other:?}"),
    }
    assert_eq!(std::fs::read(&old).unwrap(), before);

    // Later, the lease expired: copied; a second copy finds the target full.
    let later = now + Duration::minutes(5);
    let report = copy::copy(&source_url, &target_url, later).await.unwrap();
    assert_eq!(
        (
            report.copied.requests,
            report.copied.jobs,
            report.leases_not_copied
        ),
        (1, 1, 1)
    );
    // Its run was in progress when its runner stopped: named to resume.
    assert_eq!(report.runs_to_resume, vec!["r1".to_string()]);
    match copy::copy(&source_url, &target_url, later).await {
        Err(CopyError::Store(StoreError::TargetNotEmpty { found, .. })) => {
            assert_eq!(found, report.copied)
        }
        other => panic!("expected TargetNotEmpty, got {other:?}"),
    }
    // The copy starts lease-free.
    let copied = pitr::store::open(&target_url).await.unwrap();
    assert_eq!(copied.get_lease(&"j1".into()).await.unwrap(), None);
}
