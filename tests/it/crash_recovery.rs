//! Crash walks off the default run (see `crash_points.rs` for the walk of
//! a run): a run is aborted at a named point (`PITR_CRASH_AT`, like
//! `kill -9`) while it recovers after a failure (before or after the swap),
//! while `pitr rollback` undoes a finished run, or while a pre-staged run
//! restores ahead of its downtime; `pitr resume` must then finish it, with
//! one restore PUT, each rename sent once, no database lost and the
//! environment online. Each list of walked points is checked against the
//! library's own list, so that a new point cannot go unwalked.
use crate::crash_points::{holders, ORIGINAL, RESTORED};
use crate::helpers::*;
use chrono::{Duration, Utc};
use pitr::engine::crash::{points, RECOVERY_POINTS};
use serde_json::Value;

fn crash(t: &TestEnv, args: &[&str], point: &str) {
    let out = t
        .command(args)
        .env("PITR_CRASH_AT", point)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{point}: not aborted");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("PITR_CRASH_AT={point}")),
        "{point}: never reached: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The invariant at a crash: the original content under exactly one name
/// (with its databaseId), the restored one under at most one.
async fn invariant(t: &TestEnv, point: &str, original_id: &str) {
    let state = t.state().await;
    let orig = holders(&state, ORIGINAL);
    assert_eq!(orig.len(), 1, "{point}: original lost or doubled: {orig:?}");
    assert_eq!(orig[0].1, original_id, "{point}");
    assert!(
        holders(&state, RESTORED).len() <= 1,
        "{point}: two restores"
    );
}

fn resume(t: &TestEnv, id: &str, point: &str) -> (Option<i32>, String) {
    let out = t.pitr(&["resume", id]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), format!("{point}: {err}"))
}

/// The end of a run or rollback: services up, one restore PUT, every
/// rename answered 200 and sent once per move (`renames` in all).
async fn settled(t: &TestEnv, point: &str, renames: usize) -> Value {
    let state = t.state().await;
    assert!(
        all_running(&state),
        "{point}: services down: {}",
        state["vms"]
    );
    let journal = t.journal().await;
    assert_eq!(restore_puts(&journal), 1, "{point}: restore PUTs");
    let moves = requests(&journal, "POST", "/move");
    assert_eq!(moves.len(), renames, "{point}: renames {moves:?}");
    assert!(
        moves.iter().all(|r| r["status"] == 200),
        "{point}: {moves:?}"
    );
    state
}

async fn original_id(t: &TestEnv) -> String {
    databases(&t.state().await)["AxDB"]["database_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A sync that fails for good makes the run roll the swap back; a crash
/// anywhere in that rollback is finished by `pitr resume`.
async fn after_swap(point: &str) {
    let t = TestEnv::start(&format!(
        "{}\n[[faults]]\noperation = \"run_command\"\noutcome = \"exit_code\"\nscript_contains = \"Deployment.Setup.exe\"\nexit_code = 1\nmessage = \"sync failed\"\ntimes = 1\n",
        scenario("restore_polls = 2")
    ));
    let oid = original_id(&t).await;
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    crash(&t, &["run", &id], point);
    invariant(&t, point, &oid).await;
    assert_eq!(holders(&t.state().await, RESTORED).len(), 1, "{point}");
    let (code, err) = resume(&t, &id, point);
    assert_eq!(code, Some(1), "{err}");
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "rolled_back", "{point}");
    let tag = &show["job"]["id"].as_str().unwrap()[..8];
    let state = settled(&t, point, 4).await;
    let dbs = databases(&state);
    assert_eq!(dbs["AxDB"]["content"], ORIGINAL, "{point}");
    assert_eq!(dbs["AxDB"]["database_id"], oid.as_str(), "{point}");
    assert_eq!(
        dbs[&format!("AxDB_pitr_{tag}")]["content"],
        RESTORED,
        "{point}"
    );
}

/// A restore that fails after the environment went offline: the recovery
/// drops the partial restore and brings the environment back; a crash in
/// it is finished by `pitr resume`.
async fn before_swap(point: &str) {
    let t = TestEnv::start(&format!(
        "{}\n[[faults]]\noperation = \"restore\"\noutcome = \"fail\"\nerror_code = \"RestoreSourceUnavailable\"\nmessage = \"backups unavailable\"\n",
        scenario("restore_polls = 2")
    ));
    let oid = original_id(&t).await;
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    crash(&t, &["run", &id], point);
    invariant(&t, point, &oid).await;
    let (code, err) = resume(&t, &id, point);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("RestoreSourceUnavailable"), "{err}");
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "failed", "{point}");
    assert!(show["job"]["online_at"].is_string(), "{point}");
    let state = settled(&t, point, 0).await;
    let dbs = databases(&state);
    assert_eq!(
        dbs.len(),
        1,
        "{point}: the partial restore is dropped: {dbs:?}"
    );
    assert_eq!(dbs["AxDB"]["database_id"], oid.as_str(), "{point}");
}

/// `pitr rollback` of a finished run, aborted at `point`, then resumed.
async fn rollback(point: &str) {
    let t = TestEnv::start(&scenario("restore_polls = 1"));
    let oid = original_id(&t).await;
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    t.ok(&["run", &id]);
    crash(&t, &["rollback", &id, "--reason", "wrong point"], point);
    invariant(&t, point, &oid).await;
    assert_eq!(holders(&t.state().await, RESTORED).len(), 1, "{point}");
    // The request keeps its status while its rollback runs.
    assert_eq!(
        t.json(&["request", "show", &id, "--json"])["status"],
        "succeeded",
        "{point}"
    );
    let (code, err) = resume(&t, &id, point);
    assert_eq!(code, Some(0), "{err}");
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "rolled_back", "{point}");
    // One rollback job, working on the names of the restore it undoes.
    let jobs = show["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{point}: one rollback job");
    assert_eq!(show["job"]["rollback_of"]["job"], jobs[0]["id"], "{point}");
    let tag = &jobs[0]["id"].as_str().unwrap()[..8];
    let state = settled(&t, point, 4).await;
    let dbs = databases(&state);
    assert_eq!(dbs["AxDB"]["content"], ORIGINAL, "{point}");
    assert_eq!(dbs["AxDB"]["database_id"], oid.as_str(), "{point}");
    assert_eq!(
        dbs[&format!("AxDB_pitr_{tag}")]["content"],
        RESTORED,
        "{point}"
    );
    // Done once: a second rollback is refused.
    assert_eq!(t.pitr(&["rollback", &id]).status.code(), Some(2), "{point}");
}

/// A pre-staged run (restore before offline) inside an open window,
/// aborted at `point`, then resumed.
async fn prestaged(point: &str) {
    let t = TestEnv::start(&scenario("restore_polls = 2"));
    let oid = original_id(&t).await;
    let (ws, we) = (
        (Utc::now() - Duration::minutes(1)).to_rfc3339(),
        (Utc::now() + Duration::hours(3)).to_rfc3339(),
    );
    let point_in_time = rfc3339_ago(Duration::days(1));
    let mut args = submit_args(&point_in_time, &ws, &we);
    args.extend(["--prestage", "--emergency-reason", "crash walk"]);
    let id = t.ok(&args).trim().to_string();
    t.ok(&["request", "accept", &id]);
    crash(&t, &["run", &id], point);
    invariant(&t, point, &oid).await;
    let (code, err) = resume(&t, &id, point);
    assert_eq!(code, Some(0), "{err}");
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "succeeded", "{point}");
    let state = settled(&t, point, 2).await;
    assert_eq!(databases(&state)["AxDB"]["content"], RESTORED, "{point}");
    // Pre-staged: the restore was asked for before the first service stopped.
    let journal = t.journal().await;
    let seq = |e: &Value| e["seq"].as_u64().unwrap();
    let put = journal
        .iter()
        .find(|e| e["body"]["properties"]["createMode"] == "PointInTimeRestore")
        .map(seq);
    let first_stop = journal
        .iter()
        .filter(|e| e["method"] == "PUT" && e["path"].as_str().unwrap().contains("/runCommands/"))
        .find(|e| e["body"].to_string().contains("Stop-Service"))
        .map(seq);
    assert!(
        put < first_stop,
        "{point}: restore {put:?}, offline {first_stop:?}"
    );
}

macro_rules! walks_of {
    ($walker:ident, $every:ident, $expected:expr, [$($name:ident => $point:literal,)*]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $walker($point).await;
            }
        )*

        #[test]
        fn $every() {
            let walked: Vec<String> = vec![$($point.to_string()),*];
            let expected: Vec<String> = $expected;
            assert_eq!(walked, expected);
        }
    };
}

walks_of!(after_swap, every_recovery_point_is_walked_after_the_swap, RECOVERY_POINTS.iter().map(|p| p.to_string()).collect(), [
    after_swap_recovery_started => "recovery.started",
    after_swap_recovery_after_unswap_rename => "recovery.after_unswap_rename",
    after_swap_recovery_before_online => "recovery.before_online",
]);

// Before the swap nothing is renamed back.
walks_of!(before_swap, every_recovery_point_is_walked_before_the_swap, RECOVERY_POINTS.iter().filter(|p| **p != "recovery.after_unswap_rename").map(|p| p.to_string()).collect(), [
    before_swap_recovery_started => "recovery.started",
    before_swap_recovery_before_online => "recovery.before_online",
]);

// A rollback is a job of its own: every point of its steps (its swap is
// the reverse one, whose point is the recovery's rename).
walks_of!(rollback, every_point_of_a_rollback_is_walked, {
    let all = points();
    pitr::engine::steps::rollback_plan()
        .iter()
        .flat_map(|s| match s.as_str() {
            "swap" => vec![
                "swap.started".to_string(),
                "recovery.after_unswap_rename".to_string(),
                "swap.done".to_string(),
            ],
            s => all.iter().filter(|p| p.starts_with(&format!("{s}."))).cloned().collect(),
        })
        .collect()
}, [
    rollback_offline_started => "offline.started",
    rollback_offline_after_checkpoint => "offline.after_checkpoint",
    rollback_offline_after_run_command_accepted => "offline.after_run_command_accepted",
    rollback_offline_after_wait => "offline.after_wait",
    rollback_offline_done => "offline.done",
    rollback_swap_started => "swap.started",
    rollback_after_unswap_rename => "recovery.after_unswap_rename",
    rollback_swap_done => "swap.done",
    rollback_online_started => "online.started",
    rollback_online_after_checkpoint => "online.after_checkpoint",
    rollback_online_after_run_command_accepted => "online.after_run_command_accepted",
    rollback_online_after_wait => "online.after_wait",
    rollback_online_done => "online.done",
    rollback_verify_started => "verify.started",
    rollback_verify_done => "verify.done",
]);

// The two steps whose order pre-staging changes, every point of each.
walks_of!(prestaged, every_point_of_a_prestaged_restore_and_offline_is_walked, {
    let all = points();
    let of = |s: &str| all.iter().filter(|p| p.starts_with(s)).cloned().collect::<Vec<_>>();
    [of("restore."), of("offline.")].concat()
}, [
    prestaged_restore_started => "restore.started",
    prestaged_restore_after_put_accepted => "restore.after_put_accepted",
    prestaged_restore_after_checkpoint => "restore.after_checkpoint",
    prestaged_restore_after_wait => "restore.after_wait",
    prestaged_restore_after_short_term => "restore.after_short_term",
    prestaged_restore_done => "restore.done",
    prestaged_offline_started => "offline.started",
    prestaged_offline_after_checkpoint => "offline.after_checkpoint",
    prestaged_offline_after_run_command_accepted => "offline.after_run_command_accepted",
    prestaged_offline_after_wait => "offline.after_wait",
    prestaged_offline_done => "offline.done",
]);
