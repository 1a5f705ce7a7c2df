//! The numbers people plan with, checked to the second: the downtime and
//! its estimate (`request show`), the restore and downtime durations of the
//! environment's history (`env show`), and the restore estimate taken from
//! that history. Each step of the run takes a fixed time on the test's
//! clock, so every value is known in advance.
use crate::helpers::*;
use crate::in_process::steps_take;
use chrono::Duration;
use pitr::domain::StepName;

const CONFIG: &str = r#"
[azure]
min_poll_interval_ms = 20
[engine.estimates]
sync_secs = 1200

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

/// Minutes each step takes.
fn minutes(step: StepName) -> i64 {
    match step {
        StepName::Preflight => 1,
        StepName::Offline => 4,
        StepName::Restore => 40,
        StepName::Swap => 2,
        StepName::Sync => 25,
        StepName::MrReset => 6,
        StepName::Online => 3,
        StepName::Verify => 1,
        StepName::Cleanup => 10,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downtime_estimates_and_history_durations_have_their_values() {
    let h = InProcess::start(CONFIG).await;
    let (id, window) = h.accepted("uat", false).await;
    // Before any restore: the estimate is the configured one (defaults,
    // sync overridden): offline 300 + restore 1800 + swap 120 + sync 1200
    // + mr_reset 300 + online 300.
    let show = h.cli_json(&["request", "show", id.as_str()]);
    assert_eq!(show["estimated_downtime_secs"], 4020);
    assert!(show["downtime_secs"].is_null(), "no run yet");

    h.clock.set(window.start);
    h.on_progress(steps_take(minutes));
    assert!(h.engine.run(&id, false).await.unwrap().is_success());
    let job = h.job(&id).await;
    let at = |m: i64| window.start + Duration::minutes(m);
    // Offline from the end of its own step's start (1 + 4 min), online
    // once the online step has run (1 + 4 + 40 + 2 + 25 + 6 + 3 min).
    assert_eq!(job.facts.offline_at, Some(at(5)));
    assert_eq!(job.facts.online_at, Some(at(81)));

    // Down for restore + swap + sync + mr_reset + online: 76 minutes.
    let show = h.cli_json(&["request", "show", id.as_str()]);
    assert_eq!(show["downtime_secs"], 4560.0);
    // The restore estimate is now the history's longest (40 min) + 25%.
    let est = h
        .engine
        .estimates(h.engine.environment("uat").unwrap())
        .await
        .unwrap();
    assert_eq!(est.of(StepName::Restore), Duration::seconds(3000));
    assert_eq!(
        show["estimated_downtime_secs"],
        300 + 3000 + 120 + 1200 + 300 + 300
    );

    let env = h.cli_json(&["env", "show", "uat"]);
    let restores = env["restores"].as_array().unwrap();
    assert_eq!(restores.len(), 1);
    let r = &restores[0];
    assert_eq!(r["restore_secs"], 2400.0);
    assert_eq!(r["downtime_secs"], 4560.0);
    assert_eq!(r["prestaged"], false);
    assert_eq!(r["job"], job.id.as_str());
    assert_eq!(r["request"], id.as_str());
    let instant = |v: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    // Shown to the second.
    let near = |shown: chrono::DateTime<chrono::Utc>, want: chrono::DateTime<chrono::Utc>| {
        assert!(
            (shown - want).num_milliseconds().abs() < 1000,
            "{shown} vs {want}"
        );
    };
    near(instant(&r["started_at"]), window.start);
    near(instant(&r["finished_at"]), at(81));
    // The step durations as recorded.
    let steps = h.engine.store().steps(&job.id).await.unwrap();
    for rec in steps {
        let took = rec.finished_at.unwrap() - rec.started_at.unwrap();
        assert_eq!(took, Duration::minutes(minutes(rec.step)), "{}", rec.step);
    }
}
