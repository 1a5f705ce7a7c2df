//! Requests as users handle them through the CLI: every rule that needs the
//! store or Azure, and the lifecycle commands with their audit trail.
use crate::helpers::*;
use chrono::{Duration, Utc};
use serde_json::Value;

fn window(in_hours: i64) -> (String, String) {
    let start = Utc::now() + Duration::hours(in_hours);
    (
        start.to_rfc3339(),
        (start + Duration::hours(2)).to_rfc3339(),
    )
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_sooner_than_24_hours_needs_an_operators_emergency_reason() {
    let t = TestEnv::start(&scenario(""));
    let point = rfc3339_ago(Duration::days(1));
    let (ws, we) = window(2);
    let out = t.pitr(&submit_args(&point, &ws, &we));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("rule notice-24h"), "{}", stderr(&out));
    let mut args = submit_args(&point, &ws, &we);
    args.extend([
        "--emergency-reason",
        "payroll test data corrupted before go-live",
    ]);
    let id = t.ok(&args).trim().to_string();
    let history = t.json(&["request", "history", &id, "--json"]);
    let note = history[0]["note"].as_str().unwrap();
    assert!(
        note.contains("emergency: payroll test data corrupted"),
        "{note}"
    );
    assert_eq!(history[0]["actor"], "tester");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_active_request_per_environment() {
    let t = TestEnv::start(&scenario(""));
    let first = t.submit(&rfc3339_ago(Duration::days(1)));
    let point = rfc3339_ago(Duration::days(2));
    let (ws, we) = window(72);
    let out = t.pitr(&submit_args(&point, &ws, &we));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("rule one-active-request"));
    assert!(stderr(&out).contains(&first));
    // Once the first is cancelled, the environment is free again.
    t.ok(&["request", "cancel", &first, "--reason", "wrong point"]);
    t.ok(&submit_args(&point, &ws, &we));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the engine on managed run commands"]
async fn a_restore_point_before_the_end_of_the_last_restore_is_refused() {
    let t = TestEnv::start(&scenario("restore_polls = 1"));
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    t.ok(&["run", &id]);
    let env = t.json(&["env", "show", "uat", "--json"]);
    let restores = env["restores"].as_array().unwrap();
    assert_eq!(restores.len(), 1);
    assert!(restores[0]["restore_secs"].as_f64().is_some());
    assert!(restores[0]["downtime_secs"].as_f64().is_some());
    // A point between the restore point and the end of that restore.
    let point = rfc3339_ago(Duration::hours(12));
    let (ws, we) = window(48);
    let out = t.pitr(&submit_args(&point, &ws, &we));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("rule after-last-restore"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_point_under_another_major_version_needs_its_acknowledgement() {
    let t = TestEnv::start(&scenario(""));
    t.ok(&[
        "env",
        "deployment",
        "add",
        "--env",
        "uat",
        "--version",
        "9.4.12",
        "--at",
        &rfc3339_ago(Duration::days(20)),
    ]);
    t.ok(&[
        "env",
        "deployment",
        "add",
        "--env",
        "uat",
        "--version",
        "10.0.38",
        "--at",
        &rfc3339_ago(Duration::days(2)),
    ]);
    let point = rfc3339_ago(Duration::days(3));
    let (ws, we) = window(48);
    let out = t.pitr(&submit_args(&point, &ws, &we));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("rule code-version"), "{err}");
    assert!(err.contains("9.4.12") && err.contains("10.0.38"), "{err}");
    let mut args = submit_args(&point, &ws, &we);
    args.push("--ack-version-mismatch");
    let out = t.pitr(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning: code version"));
    // After the 10.0 deployment, no acknowledgement is needed.
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    t.ok(&["request", "cancel", &id]);
    t.ok(&submit_args(&rfc3339_ago(Duration::days(1)), &ws, &we));
    let env = t.json(&["env", "show", "uat", "--json"]);
    assert_eq!(env["deployments"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reschedule_is_revalidated_and_recorded() {
    let t = TestEnv::start(&scenario(""));
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    // A window shorter than an hour is refused, and nothing changes.
    let before = t.json(&["request", "show", &id, "--json"]);
    let (ws, _) = window(30);
    let short_end = (Utc::now() + Duration::hours(30) + Duration::minutes(30)).to_rfc3339();
    let out = t.pitr(&[
        "request",
        "reschedule",
        &id,
        "--window-start",
        &ws,
        "--window-end",
        &short_end,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("rule window-length"));
    assert_eq!(
        t.json(&["request", "show", &id, "--json"])["window_start"],
        before["window_start"]
    );
    // A valid change keeps the status and is in the history.
    let (ws, we) = window(50);
    let point = rfc3339_ago(Duration::hours(30));
    t.ok(&[
        "request",
        "reschedule",
        &id,
        "--window-start",
        &ws,
        "--window-end",
        &we,
        "--restore-point",
        &point,
    ]);
    let after = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(after["status"], "accepted");
    assert_ne!(after["window_start"], before["window_start"]);
    let history = t.json(&["request", "history", &id, "--json"]);
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["from"].clone(), last["to"].clone()),
        (Value::from("accepted"), Value::from("accepted"))
    );
    assert!(last["note"].as_str().unwrap().starts_with("rescheduled"));
    let out = t.pitr(&["request", "reschedule", &id]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_cancel_and_invalid_transitions() {
    let t = TestEnv::start(&scenario(""));
    let id = t.submit(&rfc3339_ago(Duration::days(1)));
    let out = t.pitr(&["request", "reject", &id]);
    assert_eq!(out.status.code(), Some(2), "--reason is required");
    t.ok(&[
        "request",
        "reject",
        &id,
        "--reason",
        "no capacity that week",
    ]);
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "rejected");
    for args in [
        vec!["request", "accept", &id],
        vec!["request", "cancel", &id],
    ] {
        let out = t.pitr(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("cannot be"), "{}", stderr(&out));
    }
    let history = t.json(&["request", "history", &id, "--json"]);
    let to: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(to, ["submitted", "rejected"]);
    assert_eq!(history[1]["note"], "no capacity that week");

    let id = t.submit(&rfc3339_ago(Duration::days(1)));
    t.ok(&["request", "accept", &id]);
    t.ok(&["request", "cancel", &id]);
    let out = t.pitr(&["run", &id]);
    assert_eq!(out.status.code(), Some(2));
    let history = t.json(&["request", "history", &id, "--json"]);
    let to: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(to, ["submitted", "accepted", "cancelled"]);
}
