//! A restore request carried end to end through the CLI, against the mock
//! Azure over HTTPS and a real SQLite store.
use crate::helpers::*;
use chrono::Duration;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_runs_through_every_step_and_swaps_the_databases() {
    let t = TestEnv::start(&scenario("restore_polls = 2"));
    let before = databases(&t.state().await);
    let original_id = before["AxDB"]["database_id"].as_str().unwrap().to_string();

    // Between "v2" (-3d) and "v3" (-1h): the restored content must be v2.
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    let out = t.pitr(&["run", &id]);
    assert!(
        out.status.success(),
        "run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Live progress names the steps as they go.
    let progress = String::from_utf8_lossy(&out.stderr);
    for s in [
        "preflight",
        "offline",
        "restore",
        "swap",
        "sync",
        "mr_reset",
        "online",
        "verify",
    ] {
        assert!(progress.contains(s), "progress shows {s}: {progress}");
    }

    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "succeeded");
    for s in [
        "preflight",
        "offline",
        "restore",
        "swap",
        "sync",
        "mr_reset",
        "online",
        "verify",
    ] {
        assert_eq!(step(&show, s)["status"], "succeeded", "{s}");
        assert_eq!(step(&show, s)["attempts"], 1, "{s}");
        assert!(step(&show, s)["error"].is_null());
    }
    let job = show["job"]["id"].as_str().unwrap();
    let tag = &job[..8];

    let state = t.state().await;
    let dbs = databases(&state);
    let live = &dbs["AxDB"];
    let kept = &dbs[&format!("AxDB_before_{tag}")];
    assert_eq!(live["content"], "v2 after test cycle 1");
    assert_eq!(live["status"], "Online");
    assert_ne!(live["database_id"], original_id.as_str());
    assert_eq!(show["job"]["restored_database_id"], live["database_id"]);
    assert_eq!(kept["content"], "v3 after destructive tests");
    assert_eq!(kept["database_id"], original_id.as_str());
    assert!(!dbs.contains_key(&format!("AxDB_pitr_{tag}")));

    // Run commands in order: offline on both AOS VMs, then sync, then
    // mr_reset, then online; sync after the swap's renames. Each one was
    // deleted once its outcome was read.
    let mut cmds: Vec<(u64, String, String)> = Vec::new();
    for vm in state["vms"].as_array().unwrap() {
        for rc in vm["managed_run_commands"].as_array().unwrap() {
            assert_eq!(rc["resource"], "deleted", "{rc}");
            assert_eq!(rc["exit_code"], 0, "{rc}");
            cmds.push((
                rc["seq"].as_u64().unwrap(),
                vm["name"].as_str().unwrap().to_string(),
                rc["kind"].as_str().unwrap().to_string(),
            ));
        }
        assert!(
            vm["run_commands"].as_array().unwrap().is_empty(),
            "no action Run Command"
        );
    }
    cmds.sort();
    let kinds: Vec<&str> = cmds.iter().map(|c| c.2.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "stop_services",
            "stop_services",
            "sync",
            "mr_reset",
            "start_services",
            "start_services"
        ],
        "{cmds:?}"
    );
    let sync_vm = state["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "aos1")
        .unwrap();
    let sync = sync_vm["managed_run_commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "sync")
        .unwrap();
    assert_eq!(
        sync["synced_database_id"], live["database_id"],
        "sync ran on the restored database"
    );
    for vm in state["vms"].as_array().unwrap() {
        for (svc, st) in vm["services"].as_object().unwrap() {
            assert_eq!(st, "Running", "{} {svc}", vm["name"]);
        }
    }
    let journal = t.journal().await;
    assert_eq!(restore_puts(&journal), 1);
    let renames = requests(&journal, "POST", "/move");
    assert_eq!(renames.len(), 2);
    assert!(renames.iter().all(|r| r["status"] == 200));
    let sync_put = journal
        .iter()
        .find(|e| {
            e["method"] == "PUT"
                && e["path"].as_str().unwrap().contains("aos1/runCommands/")
                && e["body"]["properties"]["source"]["script"]
                    .to_string()
                    .contains("Deployment.Setup.exe")
        })
        .unwrap();
    assert!(sync_put["seq"].as_u64() > renames[1]["seq"].as_u64());
    assert_eq!(
        sync_put["body"]["properties"]["timeoutInSeconds"], 21600,
        "sync may run six hours"
    );
    // The journal is what was on the wire: the client secret went to the
    // token endpoint only, and no SQL password went anywhere (the AOS VM
    // reads its own).
    let secret_paths = wire_holders(&journal, "test-only-not-a-secret");
    assert!(!secret_paths.is_empty());
    assert!(
        secret_paths
            .iter()
            .all(|p| p.contains("/oauth2/v2.0/token")),
        "{secret_paths:?}"
    );
    assert!(wire_holders(&journal, "sql-test-only-value").is_empty());
    assert!(sync_put["body"]["properties"]
        .get("protectedParameters")
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_point_before_the_earliest_restore_date_is_refused_at_submit() {
    let t = TestEnv::start(&scenario(""));
    let now = chrono::Utc::now();
    let (point, ws, we) = (
        rfc3339_ago(Duration::days(8)),
        (now + Duration::days(2)).to_rfc3339(),
        (now + Duration::days(2) + Duration::hours(1)).to_rfc3339(),
    );
    let out = t.pitr(&submit_args(&point, &ws, &we));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("earliest-restore-date"), "{err}");
    assert!(err.contains("choose"), "{err}");
    let list = t.json(&["request", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 0);
    let journal = t.journal().await;
    assert!(
        journal
            .iter()
            .all(|e| e["method"] == "GET" || e["path"].as_str().unwrap().contains("oauth2")),
        "{journal:?}"
    );
    assert_eq!(databases(&t.state().await).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_request_rules_are_refused_with_exit_code_2() {
    let t = TestEnv::start(&scenario(""));
    let now = chrono::Utc::now();
    let ws = (now + Duration::days(2)).to_rfc3339();
    let we = (now + Duration::days(2) + Duration::hours(2)).to_rfc3339();
    let point = rfc3339_ago(Duration::days(1));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--env", "prod", "--database", "AxDB"],
            "non-production-only",
        ),
        (
            vec!["--env", "nope", "--database", "AxDB"],
            "unknown-environment",
        ),
        (
            vec!["--env", "uat", "--database", "AxDW"],
            "fno-database-only",
        ),
    ];
    for (args, rule) in cases {
        let mut full = vec!["request", "submit"];
        full.extend(args);
        full.extend([
            "--restore-point",
            &point,
            "--window-start",
            &ws,
            "--window-end",
            &we,
            "--ack-erase",
            "--ack-downtime",
            "--ack-scope",
        ]);
        let out = t.pitr(&full);
        assert_eq!(out.status.code(), Some(2), "{rule}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(rule),
            "{rule}"
        );
    }
    let mut without_scope = submit_args(&point, &ws, &we);
    without_scope.retain(|a| *a != "--ack-scope");
    let out = t.pitr(&without_scope);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ack-scope"));
    // All that are missing are named at once: one correction fixes them.
    let mut without_any = submit_args(&point, &ws, &we);
    without_any.retain(|a| !a.starts_with("--ack-"));
    let out = t.pitr(&without_any);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the statements 'erase', 'downtime' and 'scope' were not acknowledged")
            && err.contains("pass --ack-erase --ack-downtime --ack-scope"),
        "{err}"
    );
    let out = t.pitr(&submit_args("yesterday", &ws, &we));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
    assert_eq!(
        t.json(&["request", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_restore_operation_fails_the_job_with_azures_code_and_brings_the_environment_back()
{
    let t = TestEnv::start(&format!(
        "{}\n[[faults]]\noperation = \"restore\"\noutcome = \"fail\"\nerror_code = \"RestoreSourceUnavailable\"\nmessage = \"The source database backups are unavailable.\"\n",
        scenario("restore_polls = 2")
    ));
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    let out = t.pitr(&["run", &id]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("RestoreSourceUnavailable"), "{err}");

    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "failed");
    let restore = step(&show, "restore");
    assert_eq!(restore["status"], "failed");
    let msg = restore["error"].as_str().unwrap();
    assert!(msg.contains("RestoreSourceUnavailable"), "{msg}");
    assert!(
        msg.contains("The source database backups are unavailable."),
        "{msg}"
    );
    assert!(show["job"]["online_at"].is_string());

    let state = t.state().await;
    for vm in state["vms"].as_array().unwrap() {
        for (svc, st) in vm["services"].as_object().unwrap() {
            assert_eq!(st, "Running", "{} {svc} back online", vm["name"]);
        }
    }
    let dbs = databases(&state);
    assert_eq!(dbs["AxDB"]["content"], "v3 after destructive tests");
    assert_eq!(dbs.len(), 1, "no database left behind: {dbs:?}");
    assert_eq!(restore_puts(&t.journal().await), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_during_the_restore_is_finished_by_resume_with_one_restore_put() {
    let t = TestEnv::start(&scenario("restore_polls = 2"));
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    t.post("/_mock/hold", json!({"operation": "restore", "hold": true}))
        .await;

    let mut child = t
        .command(&["run", &id])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Once the restore operation is polled, its URL has been checkpointed
    // (the engine writes it before the first poll).
    t.wait_for_restore_poll().await;
    child.kill().unwrap();
    child.wait().unwrap();

    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "running");
    assert_eq!(step(&show, "restore")["status"], "running");

    t.post(
        "/_mock/hold",
        json!({"operation": "restore", "hold": false}),
    )
    .await;
    t.ok(&["resume", &id]);

    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "succeeded");
    assert_eq!(step(&show, "restore")["attempts"], 2);
    let journal = t.journal().await;
    assert_eq!(restore_puts(&journal), 1, "exactly one restore PUT");
    let dbs = databases(&t.state().await);
    assert_eq!(dbs["AxDB"]["content"], "v2 after test cycle 1");
}

/// The restore answers only `Location` and `Retry-After: 0`; it is held
/// in Azure until the poller has been told 202 at least once, so that the
/// test does not depend on how fast the machine polls. The configured
/// floor (300 ms) spaces every poll, however long the restore takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_follows_a_location_only_202_and_retry_after_zero_respects_the_floor() {
    let t = TestEnv::start_with(
        &scenario("restore_headers = \"location_only\"\nrestore_polls = 1\nretry_after_secs = 0"),
        "",
    );
    std::fs::write(
        &t.config,
        std::fs::read_to_string(&t.config)
            .unwrap()
            .replace("min_poll_interval_ms = 50", "min_poll_interval_ms = 300")
            .replace("max_poll_interval_ms = 200", "max_poll_interval_ms = 1000"),
    )
    .unwrap();
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    t.hold("restore", true).await;
    let mut child = t
        .command(&["run", &id])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut told_202 = false;
    for _ in 0..600 {
        let j = t.journal().await;
        if requests(&j, "GET", "databaseOperationResults")
            .iter()
            .filter(|p| p["status"] == 202)
            .count()
            >= 2
        {
            told_202 = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    t.hold("restore", false).await;
    assert!(told_202, "the restore was never polled");
    assert!(child.wait().unwrap().success());
    let journal = t.journal().await;
    assert!(requests(&journal, "GET", "databaseAzureAsyncOperation").is_empty());
    let polls = requests(&journal, "GET", "databaseOperationResults");
    assert_eq!(polls.last().unwrap()["status"], 200);
    let at = |e: &Value| chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap();
    for pair in polls.windows(2) {
        let gap = at(pair[1]) - at(pair[0]);
        assert!(
            gap >= chrono::Duration::milliseconds(290),
            "polls {gap} apart despite a 300 ms floor: {polls:?}"
        );
    }
    let dbs = databases(&t.state().await);
    assert_eq!(dbs["AxDB"]["content"], "v2 after test cycle 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_rehearses_on_an_embedded_mock_and_leaves_the_request_as_it_was() {
    let t = TestEnv::start(&scenario(""));
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    let out = t.pitr(&["run", &id, "--dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("embedded mock Azure"));
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "accepted", "a rehearsal changes no status");
    assert_eq!(show["job"]["dry_run"], true);
    assert_eq!(show["job"]["status"], "succeeded");
    assert!(show["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "succeeded"));
    // The configured Azure (here the external mock) saw no change at all.
    let journal = t.journal().await;
    assert!(journal
        .iter()
        .all(|e| e["method"] == "GET" || e["path"].as_str().unwrap().contains("oauth2")));
    // The real run can follow.
    t.ok(&["run", &id]);
    assert_eq!(
        t.json(&["request", "show", &id, "--json"])["status"],
        "succeeded"
    );
}

/// The demo's claims are checked here from the mock's state it prints, not
/// taken from its own verdict.
#[test]
fn the_demo_runs_self_contained_and_verifies_the_restore() {
    let dir = tempfile::tempdir().unwrap();
    let started = chrono::Utc::now();
    let out = std::process::Command::new(PITR)
        .args(["demo", "--json"])
        .current_dir(dir.path())
        .env_remove("PITR_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Restored to three hours ago: after "1 day ago", before the
    // destructive tests of an hour ago.
    let point = chrono::DateTime::parse_from_rfc3339(v["restore_point"].as_str().unwrap()).unwrap();
    let hours = (started - point.with_timezone(&chrono::Utc)).num_minutes();
    assert!((179..=181).contains(&hours), "{hours} minutes ago");
    // Instants are shown as RFC 3339, as everywhere else (and pasteable).
    let shown = point
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!(" to {shown})")), "{err}");
    let steps: Vec<(&str, &str, u64)> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["status"].as_str().unwrap(),
                s["attempts"].as_u64().unwrap(),
            )
        })
        .collect();
    let names = [
        "preflight",
        "offline",
        "restore",
        "swap",
        "sync",
        "mr_reset",
        "online",
        "verify",
    ];
    assert_eq!(steps, names.map(|n| (n, "succeeded", 1)).to_vec());
    let job8 = &v["job_id"].as_str().unwrap()[..8];
    let dbs: Vec<&Value> = v["mock"]["databases"].as_array().unwrap().iter().collect();
    let by_name = |n: &str| {
        dbs.iter()
            .find(|d| d["name"] == n)
            .unwrap_or_else(|| panic!("{n} in {dbs:?}"))
    };
    let live = by_name("AxDB");
    let kept = by_name(&format!("AxDB_before_{job8}"));
    let mut names: Vec<&str> = dbs.iter().map(|d| d["name"].as_str().unwrap()).collect();
    names.sort();
    let before = format!("AxDB_before_{job8}");
    assert_eq!(
        names,
        ["AxDB", before.as_str(), "AxDW", "MRDB"],
        "no restore left over"
    );
    assert_eq!(by_name("AxDW")["content"], "demo-uat/AxDW", "not touched");
    assert_eq!(by_name("MRDB")["content"], "demo-uat/MRDB", "not touched");
    assert_eq!(live["tags"]["pitr-job"], v["job_id"]);
    assert_eq!(live["content"], "demo-uat/AxDB: state 1 day ago");
    assert_eq!(live["status"], "Online");
    assert_eq!(
        kept["content"],
        "demo-uat/AxDB: state 1 hour ago (after destructive tests)"
    );
    assert_ne!(live["database_id"], kept["database_id"]);
    assert_eq!(v["database"]["database_id"], live["database_id"]);
    let vms = v["mock"]["vms"].as_array().unwrap();
    assert_eq!(vms.len(), 3);
    for vm in vms {
        let services = vm["services"].as_object().unwrap();
        assert!(!services.is_empty());
        assert!(services.values().all(|s| s == "Running"), "{vm}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "the demo leaves nothing behind"
    );
}

/// `pitr bench` measures both orders against its own mock and counts what a
/// job asks of Azure: managed Run Commands (one PUT each) and ARM requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_reports_downtime_and_the_azure_calls_per_job() {
    let t = TestEnv::start(&scenario(""));
    let out = t.ok(&[
        "bench",
        "--runs",
        "1",
        "--restore-ms",
        "100",
        "--run-command-ms",
        "20",
        "--poll-ms",
        "10",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let results = v["results"].as_array().unwrap();
    let modes: Vec<&str> = results
        .iter()
        .map(|r| r["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["default", "prestaged"]);
    for r in results {
        // offline and online on the AOS VM, sync, mr_reset: one each.
        assert_eq!(r["run_commands_per_job"], 4.0 + 2.0, "{r}");
        assert!(r["arm_requests_per_job"].as_f64().unwrap() > 20.0, "{r}");
        assert!(r["downtime_secs"].as_f64().unwrap() > 0.0, "{r}");
    }
}
