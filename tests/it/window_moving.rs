//! The window's guard is asked again before each step up to the swap, with
//! the time of that moment: here the clock jumps at exact points of a run
//! (when a step is done), so that the next step would end after the window
//! closes. The run stops there and recovers; a failed restore is dropped,
//! or kept with `keep_failed_restore`.
use crate::helpers::*;
use crate::in_process::after_step;
use chrono::Duration;
use pitr::domain::{JobStatus, RequestStatus, StepName, StepStatus};
use serde_json::Value;

fn config(keep_failed_restore: bool) -> String {
    let vm = |n: &str| {
        format!("/subscriptions/{SUB}/resourceGroups/rg-uat/providers/Microsoft.Compute/virtualMachines/{n}")
    };
    format!(
        r#"
[azure]
min_poll_interval_ms = 20

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
keep_failed_restore = {keep_failed_restore}
aos_vms = ["{aos}"]
sync_vm = "{aos}"
mr_vm = "{aos}"
"#,
        aos = vm("aos1")
    )
}

fn names(state: &Value) -> Vec<String> {
    let mut n: Vec<String> = state["servers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["databases"].as_array().unwrap().clone())
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

fn services_running(state: &Value) -> bool {
    all_running(state)
}

/// What a run came to when the clock jumped to 40 minutes before the
/// window's end once `after` was done (the run started as the window
/// opened, 2 hours long). The default estimates put the rest of the run
/// from offline at 78 min, from restore at 73, from swap at 43: each of
/// those steps no longer fits.
struct Stopped {
    h: InProcess,
    id: pitr::domain::RequestId,
    status: RequestStatus,
    cause: String,
    steps: Vec<(StepName, StepStatus)>,
}

async fn stopped_after(after: StepName, prestage: bool, keep: bool) -> Stopped {
    let h = InProcess::start(&config(keep)).await;
    let (id, window) = h.accepted("uat", prestage).await;
    h.clock.set(window.start);
    h.on_progress(after_step(after, window.end - Duration::minutes(40)));
    let outcome = h.engine.run(&id, false).await.unwrap();
    assert!(!outcome.is_success(), "{}", outcome.describe());
    let job = h.job(&id).await;
    assert_eq!(job.status, JobStatus::Failed);
    let steps = h
        .engine
        .store()
        .steps(&job.id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.step, r.status))
        .collect();
    Stopped {
        status: h.status(&id).await,
        cause: outcome.describe(),
        steps,
        h,
        id,
    }
}

fn not_started(s: &Stopped, step: StepName) {
    assert!(
        s.cause.contains(&format!("{step}: not started"))
            && s.cause.contains("would end after the window closes"),
        "{}",
        s.cause
    );
    assert!(
        s.steps
            .iter()
            .all(|(n, st)| *n != step || *st == StepStatus::Pending),
        "{step} was started: {:?}",
        s.steps
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_is_not_started_when_the_time_left_shrank_during_preflight() {
    let s = stopped_after(StepName::Preflight, false, false).await;
    not_started(&s, StepName::Offline);
    // Nothing changed in Azure: the request can be run again.
    assert_eq!(s.status, RequestStatus::Accepted);
    let state = s.h.mock().state_json();
    assert!(services_running(&state));
    assert_eq!(s.h.restore_puts(), 0);
    assert_eq!(names(&state), ["AxDB"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restore_is_not_started_when_the_time_left_shrank_during_offline() {
    let s = stopped_after(StepName::Offline, false, false).await;
    not_started(&s, StepName::Restore);
    assert_eq!(s.status, RequestStatus::Failed);
    // The environment was offline: it is brought back.
    let state = s.h.mock().state_json();
    assert!(services_running(&state), "{}", state["vms"]);
    assert_eq!(s.h.restore_puts(), 0);
    assert_eq!(names(&state), ["AxDB"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_swap_is_not_started_when_the_time_left_shrank_during_the_restore() {
    let s = stopped_after(StepName::Restore, false, false).await;
    not_started(&s, StepName::Swap);
    assert_eq!(s.status, RequestStatus::Failed);
    let state = s.h.mock().state_json();
    assert!(services_running(&state));
    assert_eq!(s.h.restore_puts(), 1);
    // The original stays; the restore that will not be used is dropped.
    assert_eq!(names(&state), ["AxDB"]);
    assert_eq!(
        databases_of(&state)["AxDB"]["content"],
        "uat/AxDB: state 1 hour ago (after destructive tests)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_failed_restore_keeps_the_restore_that_was_not_swapped_in() {
    let s = stopped_after(StepName::Restore, false, true).await;
    not_started(&s, StepName::Swap);
    let state = s.h.mock().state_json();
    let job = s.h.job(&s.id).await;
    let kept = format!("AxDB_pitr_{}", job.id.tag());
    assert_eq!(names(&state), ["AxDB".to_string(), kept.clone()]);
    let dbs = databases_of(&state);
    assert_eq!(dbs[&kept]["content"], "uat/AxDB: state 1 day ago");
    assert_eq!(
        dbs[&kept]["database_id"].as_str(),
        job.facts.restored_database_id.as_deref()
    );
    assert!(services_running(&state));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prestaged_offline_is_not_started_when_the_time_left_shrank_during_the_restore() {
    // Pre-staged: preflight, restore, then offline (rest: 77.5 min).
    let s = stopped_after(StepName::Restore, true, false).await;
    not_started(&s, StepName::Offline);
    let state = s.h.mock().state_json();
    assert!(services_running(&state));
    assert_eq!(s.h.restore_puts(), 1);
    assert_eq!(names(&state), ["AxDB"], "the staged restore is dropped");
}

/// The databases of the embedded mock, by name.
fn databases_of(state: &Value) -> std::collections::HashMap<String, Value> {
    state["servers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["databases"].as_array().unwrap().clone())
        .map(|d| (d["name"].as_str().unwrap().to_string(), d))
        .collect()
}
