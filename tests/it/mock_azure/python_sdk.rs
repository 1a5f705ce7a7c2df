//! `pitr mock-azure` answers Microsoft's own Python SDK (azure-identity,
//! azure-mgmt-sql, azure-mgmt-compute, pinned in
//! tests/python/requirements-sdk.txt) at its default api-versions: a token,
//! a point-in-time restore, a rename, a delete, an action and a managed run
//! command. `.ci/run` makes the virtual environment (`target/sdk-venv`); the
//! test fails, never skips, without it. `PITR_TEST_SDK_PYTHON` names
//! another interpreter.
use crate::helpers::*;
use serde_json::Value;
use std::collections::HashMap;

fn python() -> std::path::PathBuf {
    match std::env::var_os("PITR_TEST_SDK_PYTHON") {
        Some(p) => p.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/sdk-venv/bin/python"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsofts_python_sdk_drives_the_mock_at_its_default_api_versions() {
    let python = python();
    assert!(
        python.exists(),
        "{} is missing: run .ci/run (it makes the SDK's virtual environment), or set PITR_TEST_SDK_PYTHON",
        python.display()
    );
    let t = TestEnv::start(&scenario(""));
    let ca = t.path("ca.pem");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/drive_mock.py");
    let out = std::process::Command::new(&python)
        .arg(script)
        .env("ARM_URL", &t.url)
        .env("CA", &ca)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("SUBSCRIPTION", SUB)
        .env("RESOURCE_GROUP", RG)
        .env("SQL_SERVER", SERVER)
        .env("DATABASE", "AxDB")
        .env("VM", "aos1")
        .env("RESTORE_POINT", rfc3339_ago(chrono::Duration::days(1)))
        .env("RESTORED_NAME", "AxDB_sdk")
        .env("RENAMED_NAME", "AxDB_sdk_renamed")
        .output()
        .expect("run the Python SDK driver");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let steps: HashMap<String, Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            (
                v["step"].as_str().unwrap_or("").to_string(),
                v["result"].clone(),
            )
        })
        .collect();
    assert_eq!(steps.len(), 8, "{stdout}");
    assert_eq!(steps["get"]["status"], "Online");
    assert_eq!(steps["retention"]["retention_days"], 7);
    assert_eq!(steps["restore"]["poller"], "Succeeded");
    assert_eq!(steps["restore"]["status"], "Online");
    assert_eq!(steps["rename"]["name"], "AxDB_sdk_renamed");
    assert_eq!(
        steps["rename"]["database_id"],
        steps["restore"]["database_id"]
    );
    assert_eq!(steps["managed_run_command"]["execution_state"], "Succeeded");
    assert_eq!(steps["managed_run_command"]["exit_code"], 0);

    // What Azure would hold now: the restore was made, renamed and deleted.
    let state = t.state().await;
    let dbs = databases(&state);
    assert!(!dbs.contains_key("AxDB_sdk") && !dbs.contains_key("AxDB_sdk_renamed"));
    let journal = t.journal().await;
    // The SDK's own api-versions were accepted, not refused.
    for (fragment, version) in [
        ("/databases/AxDB_sdk", "api-version=2025-01-01"),
        ("/virtualMachines/aos1/runCommand", "api-version=2026-04-01"),
    ] {
        let calls: Vec<&Value> = journal
            .iter()
            .filter(|e| e["path"].as_str().unwrap_or("").contains(fragment))
            .collect();
        assert!(!calls.is_empty(), "{fragment}");
        assert!(
            calls
                .iter()
                .all(|e| e["path"].as_str().unwrap().contains(version)),
            "{fragment} at {version}: {calls:?}"
        );
        for e in calls {
            assert!(e["status"].as_u64().unwrap() < 400, "refused: {e}");
        }
    }
}
