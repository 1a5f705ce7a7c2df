//! The downtime window bounds a run: no step is started that its estimate
//! says would end after the window closes. Driven through the library with
//! an injectable clock, against the in-process mock Azure and SQLite.
use chrono::{Duration, Utc};
use pitr::azure::ArmClient;
use pitr::clock::ManualClock;
use pitr::config::Config;
use pitr::domain::lifecycle::LifecycleEvent;
use pitr::domain::{Acknowledgements, JobStatus, NewRequest, RequestStatus, StepName, Window};
use pitr::engine::progress::Silent;
use pitr::engine::Engine;
use pitr::mock::MockAzure;
use std::sync::Arc;

const CONFIG: &str = r#"
[azure]
min_poll_interval_ms = 20
[engine.estimates]
restore_secs = 3600

[[environments]]
name = "uat"
tier = "sandbox"
database_kind = "azure_sql"
subscription_id = "00000000-0000-0000-0000-00000000aaaa"
resource_group = "rg-uat"
server = "sql-uat"
location = "westeurope"
database = "AxDB"
sql_password_env = "PITR_TEST_SQL_PASSWORD"
aos_vms = ["/subscriptions/00000000-0000-0000-0000-00000000aaaa/resourceGroups/rg-uat/providers/Microsoft.Compute/virtualMachines/aos1"]
sync_vm = "/subscriptions/00000000-0000-0000-0000-00000000aaaa/resourceGroups/rg-uat/providers/Microsoft.Compute/virtualMachines/aos1"
mr_vm = "/subscriptions/00000000-0000-0000-0000-00000000aaaa/resourceGroups/rg-uat/providers/Microsoft.Compute/virtualMachines/aos1"
"#;

async fn setup(minutes_left: i64) -> (tempfile::TempDir, MockAzure, Engine, ManualClock, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::from_toml(CONFIG, "test", []).unwrap();
    config.store.url = format!("sqlite://{}", dir.path().join("pitr.db").display());
    let scenario = pitr::cli::dry_run::scenario_for(&config.environments);
    let mock = MockAzure::start(scenario, "127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let azure = ArmClient::for_mock(&config.azure, &mock.url(), mock.ca_pem()).unwrap();
    let store = pitr::store::open(&config.store.url).await.unwrap();
    let t0 = Utc::now();
    let clock = ManualClock::new(t0);
    let engine = Engine::new(
        &config,
        store,
        azure,
        Arc::new(clock.clone()),
        Arc::new(Silent),
        "tester".into(),
    )
    .with_secret("PITR_TEST_SQL_PASSWORD", "x-test");
    let start = t0 + Duration::days(1);
    let req = engine
        .submit(NewRequest {
            environment: "uat".into(),
            database: "AxDB".into(),
            restore_point: t0 - Duration::hours(3),
            window: Window {
                start,
                end: start + Duration::hours(2),
            },
            acks: Acknowledgements {
                erase: true,
                downtime: true,
                scope: true,
                version_mismatch: false,
            },
            requester: "tester".into(),
            reason: None,
            prestage: false,
            emergency: None,
        })
        .await
        .unwrap()
        .0;
    engine
        .transition(&req.id, LifecycleEvent::Accept, None)
        .await
        .unwrap();
    // Inside the window, with `minutes_left` before it closes.
    clock.set(start + Duration::hours(2) - Duration::minutes(minutes_left));
    (dir, mock, engine, clock, req.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_cannot_finish_before_the_window_ends_is_not_started() {
    // 30 minutes left: the rest of the run (a 1-hour restore among it) does
    // not fit, so nothing starts and the environment is never taken down.
    let (_dir, mock, engine, _clock, id) = setup(30).await;
    let err = engine.run(&id, false).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("would end after the window closes"),
        "{err}"
    );
    let req = engine.request(&id).await.unwrap();
    assert_eq!(req.status, RequestStatus::Failed);
    let job = engine
        .store()
        .jobs_for_request(&id)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    let steps = engine.store().steps(&job.id).await.unwrap();
    let status = |s: StepName| steps.iter().find(|r| r.step == s).map(|r| r.status);
    assert_eq!(status(StepName::Preflight), None, "nothing started");
    assert_eq!(status(StepName::Offline), None);
    assert_eq!(status(StepName::Restore), None);
    assert!(mock.state_json()["vms"]
        .as_array()
        .unwrap()
        .iter()
        .all(|vm| vm["run_commands"].as_array().unwrap().is_empty()));
    // No restore was requested, and the environment is back online.
    let journal = mock.journal_json();
    assert!(!journal
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["method"] == "PUT"));
    let state = mock.state_json();
    for vm in state["vms"].as_array().unwrap() {
        assert!(vm["services"]
            .as_object()
            .unwrap()
            .values()
            .all(|s| s == "Running"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_enough_window_left_succeeds() {
    let (_dir, _mock, engine, _clock, id) = setup(119).await;
    engine.run(&id, false).await.unwrap();
    assert_eq!(
        engine.request(&id).await.unwrap().status,
        RequestStatus::Succeeded
    );
}
