//! What the engine does under each fault the mock Azure can inject, asserting
//! the end state, not only the exit code.
use crate::helpers::*;
use chrono::Duration;
use serde_json::{json, Value};

/// Runs a request to the end and returns (exit code, request show JSON, mock state, journal).
async fn run_with(t: &TestEnv) -> (Option<i32>, Value, Value, Vec<Value>, String) {
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    let out = t.pitr(&["run", &id]);
    let show = t.json(&["request", "show", &id, "--json"]);
    (
        out.status.code(),
        show,
        t.state().await,
        t.journal().await,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn succeeds_despite(fault: Value) -> (Value, Vec<Value>) {
    let t = TestEnv::start(&scenario("restore_polls = 2"));
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    t.post("/_mock/faults", fault).await;
    let out = t.pitr(&["run", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "succeeded");
    let journal = t.journal().await;
    assert_eq!(accepted_restore_puts(&journal), 1);
    let dbs = databases(&t.state().await);
    assert_eq!(dbs["AxDB"]["content"], "v2 after test cycle 1");
    (show, journal)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_429_is_retried_after_retry_after() {
    let (_, journal) = succeeds_despite(json!({
        "method": "PUT", "path_contains": "/databases/AxDB_pitr_", "times": 2,
        "status": 429, "error_code": "SubscriptionTooManyCreateUpdateRequests",
        "message": "too many requests", "retry_after": 1
    }))
    .await;
    let puts = restore_put_requests(&journal);
    assert_eq!(puts.len(), 3, "two throttled, one accepted");
    assert_eq!(puts[0]["status"], 429);
    assert_eq!(puts[2]["status"], 202);
    // Retry-After: 1 was honoured between the attempts.
    let at = |e: &Value| chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap();
    assert!(at(puts[1]) - at(puts[0]) >= chrono::Duration::milliseconds(950));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried() {
    for status in [500, 503] {
        let (_, journal) = succeeds_despite(json!({
            "method": "GET", "path_contains": "databaseAzureAsyncOperation", "times": 2,
            "status": status, "error_code": "InternalServerError", "message": "try again"
        }))
        .await;
        let polls = requests(&journal, "GET", "databaseAzureAsyncOperation");
        assert_eq!(polls.iter().filter(|p| p["status"] == status).count(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_retried() {
    succeeds_despite(json!({
        "method": "POST", "path_contains": "/move", "times": 1, "drop_connection": true
    }))
    .await;
}

/// A status poll whose answer takes 60 s, with a 1 s request timeout: the
/// slow attempt is abandoned and the poll sent again, so the run ends long
/// before the slow answer could have arrived (without a timeout it simply
/// arrives, 60 s later, and the run takes that long).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_slower_than_the_client_timeout_is_abandoned_and_retried() {
    let t = TestEnv::start(&scenario("restore_polls = 2"));
    std::fs::write(
        &t.config,
        std::fs::read_to_string(&t.config)
            .unwrap()
            .replace("request_timeout_secs = 10", "request_timeout_secs = 1"),
    )
    .unwrap();
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    t.post(
        "/_mock/faults",
        json!({"method": "GET", "path_contains": "databaseAzureAsyncOperation", "times": 1, "delay_ms": 60000}),
    )
    .await;
    let started = std::time::Instant::now();
    t.ok(&["run", &id]);
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(40),
        "the run took {took:?}: the slow answer was waited for"
    );
    assert_eq!(
        t.json(&["request", "show", &id, "--json"])["status"],
        "succeeded"
    );
    let journal = t.journal().await;
    assert_eq!(restore_puts(&journal), 1);
    // The poll that answered is another attempt than the slow one, which
    // the mock has not even answered yet.
    let polls = requests(&journal, "GET", "databaseAzureAsyncOperation");
    assert!(!polls.is_empty());
    assert!(polls.iter().all(|p| p["status"] == 200), "{polls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_failing_once_is_retried() {
    let (_, journal) = succeeds_despite(json!({
        "method": "POST", "path_contains": "oauth2/v2.0/token", "times": 1,
        "status": 500, "error_code": "temporarily_unavailable", "message": "try again"
    }))
    .await;
    let tokens = requests(&journal, "POST", "oauth2/v2.0/token");
    let failed = tokens
        .iter()
        .position(|t| t["status"] == 500)
        .expect("the fault fired");
    assert!(
        tokens[failed + 1..].iter().any(|t| t["status"] == 200),
        "a new token after the failure"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_stops_the_step_at_once_with_azures_code() {
    let t = TestEnv::start(&scenario("restore_polls = 2"));
    t.post(
        "/_mock/faults",
        json!({"method": "PUT", "path_contains": "/databases/AxDB_pitr_", "times": 1,
               "status": 409, "error_code": "SubscriptionVcoreQuotaExceeded",
               "message": "The subscription vCore quota is exceeded."}),
    )
    .await;
    let (code, show, state, journal, _) = run_with(&t).await;
    assert_eq!(code, Some(1));
    assert_eq!(show["status"], "failed");
    let err = step(&show, "restore")["error"].as_str().unwrap();
    assert!(err.contains("SubscriptionVcoreQuotaExceeded"), "{err}");
    assert!(
        err.contains("The subscription vCore quota is exceeded."),
        "{err}"
    );
    assert_eq!(restore_put_requests(&journal).len(), 1, "not retried");
    assert!(all_running(&state));
    assert_eq!(
        databases(&state)["AxDB"]["content"],
        "v3 after destructive tests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_that_never_finishes_hits_the_step_timeout() {
    let t = TestEnv::start_with(
        &format!(
            "{}\n[[faults]]\noperation = \"restore\"\noutcome = \"never_finish\"\n",
            scenario("")
        ),
        "[engine]\nrestore_timeout_secs = 2\n",
    );
    let (code, show, state, _, _) = run_with(&t).await;
    assert_eq!(code, Some(1));
    assert_eq!(show["status"], "failed");
    let err = step(&show, "restore")["error"].as_str().unwrap();
    assert!(err.contains("did not finish within"), "{err}");
    assert!(all_running(&state), "environment back online");
    // The unfinished restore was dropped; the original is untouched.
    let dbs = databases(&state);
    assert_eq!(dbs.len(), 1, "{dbs:?}");
    assert_eq!(dbs["AxDB"]["content"], "v3 after destructive tests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sync_script_rolls_the_swap_back() {
    let t = TestEnv::start(&format!(
        "{}\n[[faults]]\noperation = \"run_command\"\noutcome = \"exit_code\"\nscript_contains = \"Deployment.Setup.exe\"\nexit_code = 3\nmessage = \"Synchronize failed: table XYZ\"\ntimes = 0\n",
        scenario("restore_polls = 2")
    ));
    let (code, show, state, journal, stderr) = run_with(&t).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(show["status"], "rolled_back");
    assert_eq!(show["job"]["status"], "rolled_back");
    let err = step(&show, "sync")["error"].as_str().unwrap();
    assert!(err.contains("exited with code 3"), "{err}");
    assert!(err.contains("Synchronize failed"), "{err}");
    let tag = &show["job"]["id"].as_str().unwrap()[..8];
    let dbs = databases(&state);
    assert_eq!(
        dbs["AxDB"]["content"], "v3 after destructive tests",
        "original back"
    );
    assert_eq!(
        dbs[&format!("AxDB_pitr_{tag}")]["content"],
        "v2 after test cycle 1",
        "restored kept"
    );
    assert!(all_running(&state));
    assert_eq!(
        requests(&journal, "POST", "/move").len(),
        4,
        "two renames and two back"
    );
}

/// A rollback is its own job: its own steps and downtime, its own line in
/// the environment's history, a history that reads right, and the rules see
/// the database that is live again (issue 10.3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_on_request_undoes_a_finished_run() {
    let t = TestEnv::start(&scenario("restore_polls = 1"));
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    t.ok(&["run", &id]);
    // While the restore stands, a restore point before it ended is refused.
    let hour_ago = rfc3339_ago(Duration::hours(1));
    let (start, end) = (
        rfc3339_ago(-Duration::hours(26)),
        rfc3339_ago(-Duration::hours(28)),
    );
    let refused = t.pitr(&submit_args(&hour_ago, &start, &end));
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("after-last-restore"));

    let out = t.ok(&["rollback", &id, "--reason", "wrong restore point"]);
    assert!(!out.contains("recovering"), "{out}");
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "rolled_back");
    let jobs = show["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "the rollback is a job of its own");
    let (restore, rollback) = (&jobs[0], &jobs[1]);
    assert_eq!(restore["status"], "rolled_back");
    assert_eq!(restore["error"], Value::Null);
    assert_eq!(rollback["status"], "succeeded");
    assert_eq!(rollback["error"], Value::Null, "the reason is not an error");
    assert_eq!(rollback["rollback_of"]["job"], restore["id"]);
    assert_eq!(rollback["rollback_of"]["reason"], "wrong restore point");
    assert!(out.contains(&format!(
        "job {} rolled back by job {}",
        restore["id"].as_str().unwrap(),
        rollback["id"].as_str().unwrap()
    )));
    // Its own steps, each with its times and one attempt.
    let steps: Vec<_> = show["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["status"], "succeeded", "{s}");
            assert_eq!(s["attempts"], 1, "{s}");
            assert!(
                s["started_at"].is_string() && s["finished_at"].is_string(),
                "{s}"
            );
            s["name"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(steps, ["offline", "swap", "online", "verify"]);
    // Its own downtime: it starts after the restored environment was back.
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert!(at(&rollback["offline_at"]) >= at(&restore["online_at"]));
    let down = show["downtime_secs"].as_f64().unwrap();
    let own = (at(&rollback["online_at"]) - at(&rollback["offline_at"])).num_milliseconds() as f64
        / 1000.0;
    assert!((down - own).abs() < 1.5, "{down} vs {own}");
    assert_eq!(
        show["estimated_downtime_secs"],
        Value::Null,
        "not the run's estimate"
    );
    // The audit trail reads right: one start, one end, no doubled actor.
    let events = show["events"].as_array().unwrap();
    let notes: Vec<&str> = events.iter().filter_map(|e| e["note"].as_str()).collect();
    assert!(
        notes.iter().all(|n| !n.contains("rollback requested by")),
        "{notes:?}"
    );
    let last = events.last().unwrap();
    assert_eq!(last["to"], "rolled_back");
    assert!(
        last["note"]
            .as_str()
            .unwrap()
            .contains("wrong restore point"),
        "{last}"
    );
    let text = t.ok(&["request", "show", &id]);
    assert!(!text.contains("error "), "{text}");
    assert!(text.contains("rollback    of job"), "{text}");
    assert!(!text.contains("pending"), "{text}");

    // The environment's history has the rollback as its own line.
    let env = t.json(&["env", "show", "uat", "--json"]);
    let rollbacks = env["rollbacks"].as_array().unwrap();
    assert_eq!(rollbacks.len(), 1);
    assert_eq!(rollbacks[0]["rolled_back"], restore["id"]);
    assert_eq!(rollbacks[0]["job"], rollback["id"]);
    assert!(rollbacks[0]["downtime_secs"].as_f64().is_some());
    assert_eq!(env["restores"][0]["rolled_back_by"], rollback["id"]);
    assert!(t.ok(&["env", "show", "uat"]).contains("rolled back job"));

    let state = t.state().await;
    let dbs = databases(&state);
    assert_eq!(dbs["AxDB"]["content"], "v3 after destructive tests");
    assert!(all_running(&state));
    // A second rollback is refused: nothing to undo.
    let again = t.pitr(&["rollback", &id]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already rolled back"));

    // The original database, with its whole backup history, is live again:
    // the restore point refused above is accepted now.
    let accepted = t.pitr(&submit_args(&hour_ago, &start, &end));
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
}

/// A rollback that fails before the original is back changes nothing: the
/// environment comes back online with the restored database, the request
/// keeps its status (its audit trail says why), and the rollback can be
/// asked for again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_that_fails_before_the_swap_leaves_the_restore_standing() {
    let t = TestEnv::start(&scenario("restore_polls = 1"));
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    t.ok(&["run", &id]);
    t.post(
        "/_mock/faults",
        json!({"operation": "run_command", "outcome": "exit_code", "script_contains": "Stop-Service",
               "exit_code": 1, "message": "a service would not stop", "times": 1}),
    )
    .await;
    let out = t.pitr(&["rollback", &id]);
    assert_eq!(out.status.code(), Some(1));
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "succeeded");
    assert_eq!(show["job"]["status"], "failed");
    assert_eq!(show["jobs"][0]["status"], "succeeded");
    let note = show["events"].as_array().unwrap().last().unwrap()["note"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        note.contains("the restored database is still live"),
        "{note}"
    );
    let state = t.state().await;
    assert_eq!(
        databases(&state)["AxDB"]["content"],
        "v2 after test cycle 1"
    );
    assert!(all_running(&state));
    assert!(
        requests(&t.journal().await, "POST", "/move").len() == 2,
        "no rename"
    );

    t.ok(&["rollback", &id]);
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "rolled_back");
    assert_eq!(show["jobs"].as_array().unwrap().len(), 3);
    assert_eq!(show["job"]["rollback_of"]["job"], show["jobs"][0]["id"]);
    let state = t.state().await;
    assert_eq!(
        databases(&state)["AxDB"]["content"],
        "v3 after destructive tests"
    );
    assert!(all_running(&state));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_back_a_run_that_a_later_restore_replaced_is_refused_untouched() {
    let t = TestEnv::start(&scenario("restore_polls = 1"));
    let first = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    t.ok(&["run", &first]);
    // A second restore, to a point after the first one ended.
    let second = t.submit_accepted(&chrono::Utc::now().to_rfc3339());
    t.ok(&["run", &second]);
    let before = t.state().await;
    let calls = t.journal().await.len();
    let out = t.pitr(&["rollback", &first]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a later restore replaced"));
    let after = t.state().await;
    assert_eq!(databases(&after), databases(&before), "no database touched");
    assert!(all_running(&after), "the environment stays up");
    let journal = t.journal().await;
    assert!(journal[calls..]
        .iter()
        .all(|e| e["method"] == "GET" || e["path"].as_str().unwrap().contains("oauth2")));
    assert_eq!(
        t.json(&["request", "show", &first, "--json"])["status"],
        "succeeded"
    );
}

/// A run stopped by `signal` while its restore is held: it stops at a safe
/// point, says how to continue, and releases its lease (a resume goes at
/// once although the lease would live ten minutes).
async fn a_signal_stops_at_a_safe_point_and_releases_the_lease(signal: &str) {
    let t = TestEnv::start_with(
        &scenario("restore_polls = 2"),
        "[engine]\nlease_ttl_secs = 600\n",
    );
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    t.post("/_mock/hold", json!({"operation": "restore", "hold": true}))
        .await;
    let child = t
        .command(&["run", &id])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    t.wait_for_restore_poll().await;
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "SIG{signal}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stopped by a signal"), "SIG{signal}: {err}");
    assert!(
        err.contains(&format!("pitr resume {id}")),
        "SIG{signal}: {err}"
    );
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "running");

    t.post(
        "/_mock/hold",
        json!({"operation": "restore", "hold": false}),
    )
    .await;
    t.ok(&["resume", &id]);
    assert_eq!(
        t.json(&["request", "show", &id, "--json"])["status"],
        "succeeded"
    );
    assert_eq!(restore_puts(&t.journal().await), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_at_a_safe_point_and_releases_the_lease() {
    a_signal_stops_at_a_safe_point_and_releases_the_lease("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_at_a_safe_point_and_releases_the_lease() {
    a_signal_stops_at_a_safe_point_and_releases_the_lease("INT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_the_restore_put_is_not_answered_with_a_second_put() {
    // Azure carries the PUT out, but its answer never arrives.
    let (show, journal) = succeeds_despite(json!({
        "method": "PUT", "path_contains": "/databases/AxDB_pitr_", "times": 1,
        "drop_connection": true, "after_processing": true
    }))
    .await;
    assert_eq!(
        restore_puts(&journal),
        1,
        "the target was read, not PUT again"
    );
    assert_eq!(step(&show, "restore")["status"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_a_rename_is_settled_by_looking_at_the_names() {
    let (show, journal) = succeeds_despite(json!({
        "method": "POST", "path_contains": "/move", "times": 1,
        "drop_connection": true, "after_processing": true
    }))
    .await;
    let renames = requests(&journal, "POST", "/move");
    assert_eq!(renames.len(), 2, "each rename sent once: {renames:?}");
    assert!(renames.iter().all(|r| r["status"] == 200));
    assert_eq!(step(&show, "swap")["status"], "succeeded");
}

/// A failure that stays transient outlives the retries: the request is sent
/// `retry_max_times` + 1 times, then the step fails saying how often, and
/// nothing in Azure was changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_that_persists_fails_once_the_retries_are_spent() {
    let t = TestEnv::start(&scenario("restore_polls = 2"));
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    t.post(
        "/_mock/faults",
        json!({"method": "GET", "path_contains": "/databases/AxDB?", "times": 50,
               "status": 503, "error_code": "ServiceUnavailable", "message": "try later"}),
    )
    .await;
    let out = t
        .command(&["run", &id])
        .env("PITR_AZURE_RETRY_MAX_TIMES", "3")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("after 4 attempts"), "{err}");
    assert!(err.contains("ServiceUnavailable"), "{err}");
    let journal = t.journal().await;
    let gets = requests(&journal, "GET", "/databases/AxDB?");
    let during_run: Vec<_> = gets.iter().filter(|g| g["status"] == 503).collect();
    assert_eq!(during_run.len(), 4, "1 + retry_max_times: {gets:?}");
    // Preflight failed: nothing changed, the request can be run again.
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "accepted");
    assert_eq!(step(&show, "preflight")["status"], "failed");
    assert_eq!(restore_puts(&journal), 0);
    assert!(all_running(&t.state().await));
}

/// 408 Request Timeout is transient too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_408_is_retried() {
    let (_, journal) = succeeds_despite(json!({
        "method": "GET", "path_contains": "/databases/AxDB?", "times": 2,
        "status": 408, "error_code": "RequestTimeout", "message": "slow"
    }))
    .await;
    let statuses: Vec<u64> = requests(&journal, "GET", "/databases/AxDB?")
        .iter()
        .map(|g| g["status"].as_u64().unwrap())
        .collect();
    assert!(
        statuses.windows(3).any(|w| w == [408, 408, 200]),
        "two timeouts, then the answer: {statuses:?}"
    );
}

/// A restored database that Azure shows in a failed state (one of
/// `DatabaseStatus`'s, classified in `azure::states`) fails the restore at
/// once with Azure's own value, instead of waiting until the step's
/// timeout (hours); the environment is brought back online, the original
/// untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_database_azure_shows_inaccessible_fails_the_restore_with_that_status() {
    let t = TestEnv::start(&scenario(
        "restore_polls = 1\nrestored_status = \"Inaccessible\"",
    ));
    let (code, show, state, _, stderr) = run_with(&t).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(show["status"], "failed", "{show}");
    let err = step(&show, "restore")["error"].as_str().unwrap();
    assert!(err.contains("is Inaccessible in Azure"), "{err}");
    assert!(all_running(&state), "environment back online");
    assert_eq!(
        databases(&state)["AxDB"]["content"],
        "v3 after destructive tests"
    );
}
