//! The downtime window bounds a run: no step is started that its estimate
//! says would end after the window closes. Driven through the library with
//! an injectable clock, against the in-process mock Azure and SQLite.
use crate::helpers::*;
use chrono::Duration;
use pitr::domain::{JobStatus, RequestId, RequestStatus, StepName};

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

/// An accepted request of `uat`, the clock inside its window with
/// `minutes_left` before it closes.
async fn setup(minutes_left: i64) -> (InProcess, RequestId) {
    let h = InProcess::start(CONFIG).await;
    let (id, window) = h.accepted("uat", false).await;
    h.clock.set(window.end - Duration::minutes(minutes_left));
    (h, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_cannot_finish_before_the_window_ends_is_not_started() {
    // 30 minutes left: the rest of the run (a 1-hour restore among it) does
    // not fit, so nothing starts and the environment is never taken down.
    let (h, id) = setup(30).await;
    let (engine, mock) = (&h.engine, h.mock());
    let outcome = engine.run(&id, false).await.unwrap();
    assert!(!outcome.is_success());
    assert!(
        outcome
            .describe()
            .contains("would end after the window closes"),
        "{outcome:?}"
    );
    // Nothing was changed in Azure: the request is accepted again.
    let req = engine.request(&id).await.unwrap();
    assert_eq!(req.status, RequestStatus::Accepted);
    assert!(outcome.describe().contains("nothing was changed in Azure"));
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
    let (h, id) = setup(119).await;
    let engine = &h.engine;
    assert!(engine.run(&id, false).await.unwrap().is_success());
    assert_eq!(
        engine.request(&id).await.unwrap().status,
        RequestStatus::Succeeded
    );
}
