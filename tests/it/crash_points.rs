//! The crash-point walk: for every named point, a run is aborted there (like
//! `kill -9`), then `pitr resume` must finish it with exactly one restore PUT,
//! the restored content under the original name, the original content kept
//! under `<db>_before_<job8>`, and the environment online. The invariant
//! (the pre-run content exists under some name; a restored database, once
//! created, survives) is checked at the crash and at the end.
use crate::helpers::*;
use chrono::Duration;
use serde_json::Value;

pub const ORIGINAL: &str = "v3 after destructive tests";
pub const RESTORED: &str = "v2 after test cycle 1";

/// (name, databaseId) of every database holding `content`.
pub fn holders(state: &Value, content: &str) -> Vec<(String, String)> {
    databases(state)
        .into_iter()
        .filter(|(_, d)| d["content"] == content)
        .map(|(n, d)| (n, d["database_id"].as_str().unwrap_or("").to_string()))
        .collect()
}

async fn walk(point: &str) {
    let t = TestEnv::start(&scenario("restore_polls = 2"));
    let original_id = databases(&t.state().await)["AxDB"]["database_id"]
        .as_str()
        .unwrap()
        .to_string();
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));

    let out = t
        .command(&["run", &id])
        .env("PITR_CRASH_AT", point)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{point}: the run was not aborted");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("PITR_CRASH_AT={point}")),
        "{point}: never reached: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Invariant at the crash.
    let state = t.state().await;
    let orig = holders(&state, ORIGINAL);
    assert_eq!(
        orig.len(),
        1,
        "{point}: original content lost or doubled: {orig:?}"
    );
    assert_eq!(orig[0].1, original_id, "{point}");
    let restored_at_crash = holders(&state, RESTORED);
    assert!(
        restored_at_crash.len() <= 1,
        "{point}: two restores: {restored_at_crash:?}"
    );

    let resumed = t.pitr(&["resume", &id]);
    assert!(
        resumed.status.success(),
        "{point}: resume failed: {}",
        String::from_utf8_lossy(&resumed.stderr)
    );

    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "succeeded", "{point}");
    let tag = &show["job"]["id"].as_str().unwrap()[..8];
    let state = t.state().await;
    let dbs = databases(&state);
    assert_eq!(dbs["AxDB"]["content"], RESTORED, "{point}");
    assert_eq!(dbs["AxDB"]["status"], "Online", "{point}");
    // The original's retention, carried over before the swap.
    assert_eq!(dbs["AxDB"]["diff_backup_hours"], 24, "{point}");
    assert_eq!(
        dbs["AxDB"]["long_term_retention"]["weekly"], "P4W",
        "{point}"
    );
    let before = &dbs[&format!("AxDB_before_{tag}")];
    assert_eq!(before["content"], ORIGINAL, "{point}");
    assert_eq!(before["database_id"], original_id.as_str(), "{point}");
    assert_eq!(dbs.len(), 2, "{point}: {dbs:?}");
    if let Some((_, rid)) = restored_at_crash.first() {
        assert_eq!(
            dbs["AxDB"]["database_id"],
            rid.as_str(),
            "{point}: the restored database was replaced"
        );
    }
    for vm in state["vms"].as_array().unwrap() {
        for (svc, st) in vm["services"].as_object().unwrap() {
            assert_eq!(st, "Running", "{point}: {} {svc}", vm["name"]);
        }
    }
    let journal = t.journal().await;
    assert_eq!(restore_puts(&journal), 1, "{point}: restore PUTs");
    for r in requests(&journal, "POST", "/move") {
        assert_eq!(r["status"], 200, "{point}: a rename failed: {r}");
    }
    // Every Run Command was started once, even when the crash came while
    // it ran: the resumed step found it by its name.
    let mut started = std::collections::BTreeMap::<String, usize>::new();
    for r in requests(&journal, "PUT", "/runCommands/") {
        if r["status"]
            .as_u64()
            .is_some_and(|s| (200..300).contains(&s))
        {
            let path = r["path"].as_str().unwrap();
            *started
                .entry(path.split('?').next().unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(started.len(), 6, "{point}: {started:?}");
    assert!(started.values().all(|n| *n == 1), "{point}: {started:?}");
}

macro_rules! walks {
    ($($name:ident => $point:literal,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                walk($point).await;
            }
        )*

        #[test]
        fn every_crash_point_is_walked() {
            let walked: Vec<&str> = vec![$($point),*];
            assert_eq!(walked, pitr::engine::crash::points());
        }
    };
}

walks! {
    preflight_started => "preflight.started",
    preflight_after_get => "preflight.after_get",
    preflight_done => "preflight.done",
    offline_started => "offline.started",
    offline_after_checkpoint => "offline.after_checkpoint",
    offline_after_run_command_accepted => "offline.after_run_command_accepted",
    offline_after_wait => "offline.after_wait",
    offline_done => "offline.done",
    restore_started => "restore.started",
    restore_after_put_accepted => "restore.after_put_accepted",
    restore_after_checkpoint => "restore.after_checkpoint",
    restore_after_wait => "restore.after_wait",
    restore_after_short_term => "restore.after_short_term",
    restore_done => "restore.done",
    swap_started => "swap.started",
    swap_after_first_rename => "swap.after_first_rename",
    swap_after_first_checkpoint => "swap.after_first_checkpoint",
    swap_after_second_rename => "swap.after_second_rename",
    swap_done => "swap.done",
    sync_started => "sync.started",
    sync_after_checkpoint => "sync.after_checkpoint",
    sync_after_run_command_accepted => "sync.after_run_command_accepted",
    sync_after_wait => "sync.after_wait",
    sync_done => "sync.done",
    mr_reset_started => "mr_reset.started",
    mr_reset_after_checkpoint => "mr_reset.after_checkpoint",
    mr_reset_after_run_command_accepted => "mr_reset.after_run_command_accepted",
    mr_reset_after_wait => "mr_reset.after_wait",
    mr_reset_done => "mr_reset.done",
    online_started => "online.started",
    online_after_checkpoint => "online.after_checkpoint",
    online_after_run_command_accepted => "online.after_run_command_accepted",
    online_after_wait => "online.after_wait",
    online_done => "online.done",
    verify_started => "verify.started",
    verify_done => "verify.done",
}

/// The F&O services, written out here rather than taken from the templates
/// (a service dropped from the templates must fail this test).
const FNO_SERVICES: [&str; 4] = [
    "W3SVC",
    "DynamicsAxBatch",
    "MR2012ProcessService",
    "Microsoft.Dynamics.AX.Framework.Tools.DMF.SSISHelperService.exe",
];

/// Each AOS VM's services, by name.
fn aos_services(state: &Value) -> Vec<(String, serde_json::Map<String, Value>)> {
    state["vms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|vm| vm["name"] == "aos1" || vm["name"] == "aos2")
        .map(|vm| {
            (
                vm["name"].as_str().unwrap().to_string(),
                vm["services"].as_object().unwrap().clone(),
            )
        })
        .collect()
}

/// With all four services on both AOS VMs, each is stopped once `offline`
/// is done and running again once `online` is; the MR VM is not touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_stops_and_online_starts_every_fno_service_on_every_aos_vm() {
    let all = format!("services = {FNO_SERVICES:?}");
    let scen = scenario("restore_polls = 1")
        .replace(
            r#"services = ["W3SVC", "DynamicsAxBatch", "Microsoft.Dynamics.AX.Framework.Tools.DMF.SSISHelperService.exe"]"#,
            &all,
        )
        .replace(r#"services = ["W3SVC", "DynamicsAxBatch"]"#, &all);
    let t = TestEnv::start(&scen);
    let state = t.state().await;
    let before = aos_services(&state);
    assert_eq!(before.len(), 2);
    for (vm, services) in &before {
        let mut names: Vec<&str> = services.keys().map(String::as_str).collect();
        names.sort();
        let mut want = FNO_SERVICES.to_vec();
        want.sort();
        assert_eq!(names, want, "{vm}");
        assert!(services.values().all(|s| s == "Running"), "{vm}");
    }
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    let at = |point: &str, cmd: &str| {
        let out = t
            .command(&[cmd, &id])
            .env("PITR_CRASH_AT", point)
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!("PITR_CRASH_AT={point}")),
            "{point} not reached: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let states = |state: &Value, want: &str| {
        for (vm, services) in aos_services(state) {
            for s in FNO_SERVICES {
                assert_eq!(services[s], want, "{vm} {s}");
            }
        }
        let bi = state["vms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "bi")
            .unwrap();
        assert_eq!(bi["services"]["MR2012ProcessService"], "Running");
    };
    at("offline.done", "run");
    states(&t.state().await, "Stopped");
    at("online.done", "resume");
    states(&t.state().await, "Running");
    t.ok(&["resume", &id]);
}
