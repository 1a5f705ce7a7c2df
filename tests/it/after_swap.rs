//! Failures after the swap (the sync's is in `faults.rs`): a step that fails
//! for good from the swap on makes the run put the original back under its
//! name and bring the environment online; the job ends rolled back with
//! the step's cause. And the timeouts that bound those steps.
use crate::helpers::*;
use chrono::Duration;
use serde_json::Value;

/// A run whose scripts containing `script` exit 4 once.
async fn failing_once(script: &str) -> (TestEnv, String, Value) {
    let t = TestEnv::start(&format!(
        "{}\n[[faults]]\noperation = \"run_command\"\noutcome = \"exit_code\"\nscript_contains = \"{script}\"\nexit_code = 4\nmessage = \"{script} broke\"\ntimes = 1\n",
        scenario("restore_polls = 1")
    ));
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    let out = t.pitr(&["run", &id]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let show = t.json(&["request", "show", &id, "--json"]);
    (t, id, show)
}

/// The original is back under its name, the restore kept beside it, every
/// rename answered once, the environment up.
async fn rolled_back(t: &TestEnv, show: &Value) {
    assert_eq!(show["status"], "rolled_back");
    assert_eq!(show["job"]["status"], "rolled_back");
    let tag = &show["job"]["id"].as_str().unwrap()[..8];
    let state = t.state().await;
    let dbs = databases(&state);
    assert_eq!(dbs["AxDB"]["content"], "v3 after destructive tests");
    assert_eq!(
        dbs[&format!("AxDB_pitr_{tag}")]["content"],
        "v2 after test cycle 1"
    );
    assert_eq!(dbs.len(), 2, "{:?}", dbs.keys());
    assert!(all_running(&state), "{}", state["vms"]);
    let journal = t.journal().await;
    let moves = requests(&journal, "POST", "/move");
    assert_eq!(moves.len(), 4, "two renames and two back");
    assert!(moves.iter().all(|m| m["status"] == 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_mr_reset_rolls_the_swap_back() {
    let (t, _, show) = failing_once("Reset-DatamartIntegration").await;
    let error = step(&show, "mr_reset")["error"].as_str().unwrap();
    assert!(error.contains("exited with code 4"), "{error}");
    assert!(error.contains("Reset-DatamartIntegration broke"), "{error}");
    assert_eq!(step(&show, "sync")["status"], "succeeded");
    rolled_back(&t, &show).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_online_rolls_the_swap_back_and_starts_the_services_again() {
    let (t, _, show) = failing_once("Start-Service").await;
    let online = step(&show, "online");
    let error = online["error"].as_str().unwrap_or_default();
    // The failed attempt is the step's cause; the recovery's own start of
    // the services is a second attempt, which succeeded.
    assert!(
        show["job"]["error"]
            .as_str()
            .unwrap()
            .contains("exited with code 4"),
        "{show}"
    );
    assert_eq!(online["attempts"], 2, "{online}");
    assert_eq!(online["status"], "succeeded", "{error}");
    rolled_back(&t, &show).await;
}

/// `action_timeout_secs` is every action's deadline (and its Run
/// Command's `timeoutInSeconds`); `[engine.timeouts]` overrides it for one
/// step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_timeout_secs_bounds_every_action_unless_a_step_has_its_own() {
    let t = TestEnv::start_with(
        &scenario("restore_polls = 1\n[settings.script_seconds]\nmr_reset = 1500"),
        "[engine]\naction_timeout_secs = 1200\n[engine.timeouts]\nsync_secs = 5400\n",
    );
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    assert_eq!(t.pitr(&["run", &id]).status.code(), Some(1));
    let journal = t.journal().await;
    let mut timeouts: Vec<(String, u64)> = requests(&journal, "PUT", "/runCommands/")
        .iter()
        .map(|e| {
            let name = e["path"].as_str().unwrap().split('/').next_back().unwrap();
            let step = name.split('-').nth(2).unwrap().to_string();
            (
                step,
                e["body"]["properties"]["timeoutInSeconds"]
                    .as_u64()
                    .unwrap(),
            )
        })
        .collect();
    timeouts.dedup();
    assert_eq!(
        timeouts,
        [
            ("offline".to_string(), 1200),
            ("sync".to_string(), 5400),
            ("mr".to_string(), 1200),
            ("online".to_string(), 1200),
        ],
        "offline on both AOS VMs, then sync, mr_reset, and online in the recovery"
    );
    let show = t.json(&["request", "show", &id, "--json"]);
    let error = step(&show, "mr_reset")["error"].as_str().unwrap();
    assert!(error.contains("timeout of 1200s"), "{error}");
    rolled_back(&t, &show).await;
}
