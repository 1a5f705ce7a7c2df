//! What happens beside a run: an operator changing the request or Azure
//! while it runs, and `cleanup` meeting databases that are no longer what
//! the run left. Driven through the library with the test's clock, against
//! the in-process mock Azure.
use crate::helpers::*;
use chrono::Duration;
use pitr::azure::{Begun, RestoreSpec};
use pitr::domain::{JobStatus, RequestId, RequestStatus, StepName, StepStatus};
use pitr::engine::scheduler::Scheduler;
use pitr::engine::{Engine, EngineError, Outcome};
use serde_json::{json, Value};
use std::sync::Arc;

fn config(engine: &str) -> String {
    let vm = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-uat/providers/Microsoft.Compute/virtualMachines/aos1"
    );
    format!(
        r#"
[azure]
min_poll_interval_ms = 20
[engine]
{engine}

[[environments]]
name = "uat"
tier = "sandbox"
database_kind = "azure_sql"
subscription_id = "{SUB}"
resource_group = "rg-uat"
server = "sql-uat"
location = "westeurope"
database = "AxDB"
sql_password_env = "PITR_TEST_SQL_PASSWORD"
aos_vms = ["{vm}"]
sync_vm = "{vm}"
mr_vm = "{vm}"
"#
    )
}

fn db_id(h: &InProcess, name: &str) -> String {
    h.engine.environment("uat").unwrap().database_id(name)
}

fn dbs(h: &InProcess) -> std::collections::HashMap<String, Value> {
    h.mock().state_json()["servers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["databases"].as_array().unwrap().clone())
        .map(|d| (d["name"].as_str().unwrap().to_string(), d))
        .collect()
}

/// A run started in its window with the restore held in Azure; returns
/// once the restore is being polled.
async fn running_with_restore_held(
    h: &InProcess,
) -> (
    RequestId,
    tokio::task::JoinHandle<Result<Outcome, EngineError>>,
) {
    let (id, window) = h.accepted("uat", false).await;
    h.clock.set(window.start);
    h.mock_hold(true).await;
    let engine: Arc<Engine> = h.engine.clone();
    let run = tokio::spawn({
        let id = id.clone();
        async move { engine.run(&id, false).await }
    });
    h.wait_for_restore_poll().await;
    (id, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_canceled_in_azure_fails_the_run_and_brings_the_environment_back() {
    let h = InProcess::start(&config("")).await;
    let original = dbs(&h)["AxDB"]["database_id"].clone();
    let (id, run) = running_with_restore_held(&h).await;
    // Someone deletes the database being restored: Azure cancels the restore.
    let job = h.job(&id).await;
    let target = db_id(&h, &job.restored_name("AxDB"));
    let op = h.operator().begin_delete_database(&target).await.unwrap();
    assert!(op.is_some(), "deleted in the background");
    let outcome = run.await.unwrap().unwrap();
    let cause = outcome.describe();
    assert!(!outcome.is_success(), "{cause}");
    assert!(cause.contains("ended Canceled"), "{cause}");
    assert!(
        cause.contains("was deleted while it was being restored"),
        "{cause}"
    );
    assert_eq!(h.status(&id).await, RequestStatus::Failed);
    let job = h.job(&id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(
        h.step(&job, StepName::Restore).await,
        Some(StepStatus::Failed)
    );
    assert!(job.facts.online_at.is_some());
    assert!(all_running(&h.mock().state_json()));
    let dbs = dbs(&h);
    assert_eq!(dbs["AxDB"]["database_id"], original);
    assert!(dbs.keys().all(|n| n == "AxDB"), "{:?}", dbs.keys());
    assert_eq!(h.restore_puts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_reschedule_are_refused_while_the_run_goes_on() {
    let h = InProcess::start(&config("")).await;
    let (id, run) = running_with_restore_held(&h).await;
    let before = h.engine.request(&id).await.unwrap();
    let events = h.engine.store().request_events(&id).await.unwrap().len();
    for args in [
        vec![
            "request",
            "cancel",
            id.as_str(),
            "--reason",
            "changed my mind",
        ],
        vec![
            "request",
            "reschedule",
            id.as_str(),
            "--window-start",
            "2099-01-01T20:00:00Z",
            "--window-end",
            "2099-01-01T23:00:00Z",
        ],
    ] {
        let out = h.cli(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("a request that is running cannot be"),
            "{args:?}: {err}"
        );
        assert!(err.contains("pitr rollback"), "{err}");
    }
    // Nothing was written.
    assert_eq!(h.engine.request(&id).await.unwrap(), before);
    assert_eq!(
        h.engine.store().request_events(&id).await.unwrap().len(),
        events
    );
    h.mock_hold(false).await;
    assert!(run.await.unwrap().unwrap().is_success());
    assert_eq!(h.status(&id).await, RequestStatus::Succeeded);
}

/// A finished run, and the scheduler with the clock at the end of the
/// original's retention.
async fn finished(h: &InProcess) -> (pitr::domain::Job, Scheduler) {
    let (id, window) = h.accepted("uat", false).await;
    h.clock.set(window.start);
    assert!(h.engine.run(&id, false).await.unwrap().is_success());
    let job = h.job(&id).await;
    h.clock.set(job.finished_at.unwrap() + Duration::hours(24));
    (job, Scheduler::new(h.engine.clone(), 2))
}

/// Runs the due cleanup; returns its checkpoint's status and error.
async fn clean(h: &InProcess, job: &pitr::domain::Job, sched: &Scheduler) -> (StepStatus, String) {
    assert_eq!(sched.tick().await.unwrap().cleaned, vec![job.id.clone()]);
    sched.wait_idle().await;
    let rec = h
        .engine
        .store()
        .steps(&job.id)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.step == StepName::Cleanup)
        .unwrap();
    (rec.status, rec.error.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_leaves_a_before_database_that_is_no_longer_the_original() {
    let h = InProcess::start(&config("")).await;
    let (job, sched) = finished(&h).await;
    let before = job.before_name("AxDB");
    // An operator moved the original aside and restored something else
    // under its name.
    let az = h.operator();
    az.rename_database(&db_id(&h, &before), &db_id(&h, "AxDB_original"))
        .await
        .unwrap();
    let spec = RestoreSpec {
        location: "westeurope".into(),
        source_database_id: db_id(&h, "AxDB_original"),
        restore_point: chrono::Utc::now() - Duration::hours(2),
        sku: None,
        elastic_pool_id: None,
        tags: Default::default(),
        zone_redundant: None,
        backup_storage_redundancy: None,
        properties: Default::default(),
    };
    if let Begun::Polling(op) = az.begin_restore(&db_id(&h, &before), &spec).await.unwrap() {
        az.wait(&op, std::time::Duration::from_secs(60), &mut |_| {})
            .await
            .unwrap();
    }
    let impostor = dbs(&h)[&before]["database_id"].clone();
    assert_ne!(impostor.as_str(), job.facts.original_database_id.as_deref());

    let (status, error) = clean(&h, &job, &sched).await;
    assert_eq!(status, StepStatus::Failed);
    assert!(error.contains("is not this job's original"), "{error}");
    assert!(error.contains(impostor.as_str().unwrap()), "{error}");
    let dbs = dbs(&h);
    assert_eq!(dbs[&before]["database_id"], impostor, "left in place");
    assert!(dbs.contains_key("AxDB_original"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_keeps_the_original_when_the_restored_database_is_not_live() {
    let h = InProcess::start(&config("")).await;
    let (job, sched) = finished(&h).await;
    let before = job.before_name("AxDB");
    // The restored database was moved away from the environment's name.
    h.operator()
        .rename_database(&db_id(&h, "AxDB"), &db_id(&h, "AxDB_aside"))
        .await
        .unwrap();
    let (status, error) = clean(&h, &job, &sched).await;
    assert_eq!(status, StepStatus::Failed);
    assert!(
        error.contains("no longer holds the restored database"),
        "{error}"
    );
    let dbs = dbs(&h);
    assert_eq!(
        dbs[&before]["database_id"].as_str(),
        job.facts.original_database_id.as_deref(),
        "the original is kept"
    );
}

/// `step_timeout_secs` bounds the steps outside the run's classes (here
/// cleanup, whose delete never finishes in Azure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_timeout_secs_bounds_cleanup() {
    let h = InProcess::start(&config("step_timeout_secs = 2")).await;
    let (job, sched) = finished(&h).await;
    h.mock_post(
        "/_mock/faults",
        json!({"operation": "delete", "outcome": "never_finish"}),
    )
    .await;
    // Without the key the cleanup would wait an hour: the test does not.
    let (status, error) =
        tokio::time::timeout(std::time::Duration::from_secs(60), clean(&h, &job, &sched))
            .await
            .expect("cleanup ended within a minute");
    assert_eq!(status, StepStatus::Failed);
    assert!(error.contains("did not finish within 2s"), "{error}");
}
