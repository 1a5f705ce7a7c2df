//! Commands and options a user types, checked for what they say and do:
//! `env list`, `--actor`, `--prestage`, `bench`, and the exit code when the
//! store cannot be reached.
use crate::helpers::*;
use chrono::Duration;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_list_shows_the_configured_environments_in_config_names() {
    let t = TestEnv::start(&scenario(""));
    let envs = t.json(&["env", "list", "--json"]);
    let row = |e: &Value| {
        [
            "name",
            "tier",
            "database_kind",
            "actions",
            "server",
            "database",
        ]
        .map(|k| e[k].as_str().unwrap_or("?").to_string())
    };
    let rows: Vec<[String; 6]> = envs.as_array().unwrap().iter().map(row).collect();
    assert_eq!(
        rows,
        [
            [
                "uat",
                "sandbox",
                "azure_sql",
                "vm-run-command",
                "sql-uat",
                "AxDB"
            ],
            ["prod", "production", "azure_sql", "none", "sql-uat", "AxDB"],
        ]
        .map(|r| r.map(String::from))
    );
    assert_eq!(
        envs[0]["aos_vms"],
        serde_json::json!([vm("aos1"), vm("aos2")])
    );
    assert_eq!(envs[0]["retention_days"], 35);
    // The table says the same, in the same words.
    let text = t.ok(&["env", "list"]);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec!["NAME", "TIER", "KIND", "ACTIONS", "SERVER", "DATABASE"],
            vec![
                "uat",
                "sandbox",
                "azure_sql",
                "vm-run-command",
                "sql-uat",
                "AxDB"
            ],
            vec!["prod", "production", "azure_sql", "none", "sql-uat", "AxDB"],
        ]
    );
}

/// `--actor` names who acted in the audit trail, over `PITR_ACTOR`, which
/// is used over `$USER`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actor_is_recorded_from_the_option_the_variable_or_the_user() {
    let t = TestEnv::start(&scenario(""));
    let id = t.submit(&rfc3339_ago(Duration::days(1)));
    t.ok(&["--actor", "alice", "request", "accept", &id]);
    let out = t
        .command(&["request", "cancel", &id, "--reason", "not needed"])
        .env_remove("PITR_ACTOR")
        .env("USER", "bob")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let history = t.json(&["request", "history", &id, "--json"]);
    let who: Vec<(&str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["to"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        who,
        [
            ("submitted", "tester"),
            ("accepted", "alice"),
            ("cancelled", "bob")
        ]
    );
}

/// `--prestage`: the run restores ahead of the window and stops there with
/// the environment up; a resume before the window changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prestage_restores_ahead_and_leaves_the_environment_up_until_the_window() {
    let t = TestEnv::start(&scenario("restore_polls = 1"));
    let now = chrono::Utc::now();
    let (ws, we) = (
        (now + Duration::days(2)).to_rfc3339(),
        (now + Duration::days(2) + Duration::hours(2)).to_rfc3339(),
    );
    let point = rfc3339_ago(Duration::days(1));
    let mut args = submit_args(&point, &ws, &we);
    args.push("--prestage");
    let id = t.ok(&args).trim().to_string();
    t.ok(&["request", "accept", &id]);
    let staged = |out: String, show: &Value| {
        assert!(out.contains("staged"), "{out}");
        assert_eq!(show["status"], "running");
        assert_eq!(show["prestage"], true);
        assert_eq!(step(show, "restore")["status"], "succeeded");
        assert!(
            show["steps"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["name"] != "offline"),
            "{show}"
        );
        assert!(show["job"]["offline_at"].is_null());
        assert!(
            show["waiting"].as_str().unwrap().contains("window"),
            "{show}"
        );
    };
    let out = t.ok(&["run", &id]);
    let show = t.json(&["request", "show", &id, "--json"]);
    staged(out, &show);
    let plan: Vec<&str> = show["job"]["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        plan,
        [
            "preflight",
            "restore",
            "offline",
            "swap",
            "sync",
            "mr_reset",
            "online",
            "verify"
        ]
    );
    let state = t.state().await;
    assert!(all_running(&state));
    let tag = &show["job"]["id"].as_str().unwrap()[..8];
    assert_eq!(
        databases(&state)[&format!("AxDB_pitr_{tag}")]["content"],
        "v2 after test cycle 1"
    );
    // A resume before the window: the same job stays staged, no second
    // restore, the environment still up.
    let out = t.ok(&["resume", &id]);
    let again = t.json(&["request", "show", &id, "--json"]);
    staged(out, &again);
    assert_eq!(again["job"]["id"], show["job"]["id"]);
    assert_eq!(restore_puts(&t.journal().await), 1);
    assert!(all_running(&t.state().await));
}

/// `pitr bench --json`: both orders measured, with figures that agree with
/// each other and with what the mock was told.
#[test]
fn bench_measures_both_orders_with_consistent_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(PITR)
        .args([
            "bench",
            "--runs",
            "1",
            "--restore-ms",
            "2000",
            "--run-command-ms",
            "100",
            "--poll-ms",
            "20",
            "--json",
        ])
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
    assert_eq!(
        v["settings"],
        serde_json::json!({"restore_ms": 2000, "run_command_ms": 100, "min_poll_interval_ms": 20, "runs_per_mode": 1})
    );
    let results = v["results"].as_array().unwrap();
    let modes: Vec<&str> = results
        .iter()
        .map(|r| r["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["default", "prestaged"]);
    for r in results {
        let f = |k: &str| r[k].as_f64().unwrap();
        assert_eq!(r["runs"], 1);
        // One run: its downtime is the mean, the minimum and the maximum.
        assert_eq!(f("downtime_min_secs"), f("downtime_secs"));
        assert_eq!(f("downtime_max_secs"), f("downtime_secs"));
        // Azure's time is counted inside the downtime only.
        assert!(f("azure_secs_in_downtime") <= f("downtime_secs"), "{r}");
        let ratio = f("downtime_secs") / f("azure_secs_in_downtime");
        assert!((f("overhead_ratio") - ratio).abs() < 0.01, "{r}");
        // offline and online on two AOS VMs, sync, mr_reset.
        assert_eq!(f("run_commands_per_job"), 6.0, "{r}");
        assert!(f("arm_requests_per_job") > 6.0, "{r}");
    }
    // In the default order the 2-second restore is part of the downtime.
    assert!(results[0]["azure_secs_in_downtime"].as_f64().unwrap() >= 2.0);
    assert!(results[0]["downtime_secs"].as_f64().unwrap() >= 2.0);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing left behind"
    );
}

#[test]
fn an_unreachable_store_is_exit_code_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pitr.toml");
    // Nothing listens on port 1.
    std::fs::write(
        &config,
        "[store]\nurl = \"postgres://pitr@127.0.0.1:1/pitr?connect_timeout=5\"\n",
    )
    .unwrap();
    for args in [vec!["request", "list"], vec!["request", "show", "abc"]] {
        let out = std::process::Command::new(PITR)
            .args(&args)
            .env("PITR_CONFIG", &config)
            .env_remove("PITR_STORE_URL")
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("127.0.0.1:1"), "{args:?}: {err}");
    }
}
