//! What others do to the world while a run goes on: the scenario's
//! `restored_*` settings (a restore Azure did not carry over as asked),
//! `POST /_mock/database`, `POST /_mock/remove-vm`, and a hold on the run
//! commands of one script.

use chrono::Duration;
use serde_json::{json, Value};

use super::*;

async fn restored(env: &Env) -> Value {
    let r = env
        .arm(
            "PUT",
            &db_url("AxDB_pitr_1"),
            Some(restore_body(&ago(Duration::days(3)))),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let op = r.header("azure-asyncoperation").unwrap();
    for _ in 0..5 {
        if env.arm("GET", &op, None).await.json()["status"] == "Succeeded" {
            return env.arm("GET", &db_url("AxDB_pitr_1"), None).await.json();
        }
    }
    panic!("the restore did not succeed");
}

#[tokio::test]
async fn restored_settings_change_what_a_restore_ends_with_and_only_that() {
    let plain = start(SCENARIO).await;
    let db = restored(&plain).await;
    assert_eq!(db["sku"]["capacity"], 8, "as the PUT asked");
    assert_eq!(db["properties"]["zoneRedundant"], false);
    assert_eq!(db["properties"]["currentBackupStorageRedundancy"], "Geo");
    assert!(db["properties"]["elasticPoolId"].is_null());
    assert!(db.get("tags").is_none() || db["tags"] == json!({}), "{db}");

    let pool = format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Sql/servers/{SERVER}/elasticPools/other");
    let env = start(&SCENARIO.replace(
        "restore_polls = 3",
        &format!(
            "restore_polls = 1\nrestored_sku = {{ name = \"GP_Gen5\", capacity = 2 }}\nrestored_elastic_pool_id = \"{pool}\"\nrestored_zone_redundant = true\nrestored_backup_storage_redundancy = \"local\"\nrestored_tags = {{ owner = \"someone-else\" }}"
        ),
    ))
    .await;
    let db = restored(&env).await;
    assert_eq!(db["properties"]["status"], "Online");
    assert_eq!(
        db["sku"],
        json!({"name": "GP_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 2})
    );
    assert_eq!(db["properties"]["elasticPoolId"], pool.as_str());
    assert_eq!(db["properties"]["zoneRedundant"], true);
    assert_eq!(db["properties"]["currentBackupStorageRedundancy"], "Local");
    assert_eq!(db["tags"], json!({"owner": "someone-else"}));
    // The source keeps its own.
    let src = env.arm("GET", &db_url("AxDB"), None).await.json();
    assert_eq!(src["sku"]["capacity"], 8);
    assert!(src["properties"]["elasticPoolId"].is_null());

    // A value Azure would not show is refused when the scenario is read.
    let bad = pitr::mock::Scenario::from_toml_str(&SCENARIO.replace(
        "restore_polls = 3",
        "restored_backup_storage_redundancy = \"Nowhere\"",
    ))
    .unwrap_err()
    .to_string();
    assert!(bad.contains("restored_backup_storage_redundancy"), "{bad}");
    assert!(bad.contains("GeoZone"), "{bad}");
}

#[tokio::test]
async fn mock_database_alters_creates_renames_and_removes_databases() {
    let env = start(SCENARIO).await;
    let id = |v: &Value| v["properties"]["databaseId"].as_str().unwrap().to_string();
    let before = env.arm("GET", &db_url("AxDB"), None).await.json();

    let r = env
        .mock_post(
            "/_mock/database",
            json!({"server": SERVER, "name": "AxDB", "status": "Paused", "sku": {"name": "GP_Gen5", "capacity": 2}, "tags": {"a": "b"}, "zone_redundant": true, "backup_storage_redundancy": "Zone"}),
        )
        .await;
    assert_eq!(r["created"], false);
    let now = env.arm("GET", &db_url("AxDB"), None).await.json();
    assert_eq!(id(&now), id(&before), "the same database");
    assert_eq!(now["properties"]["status"], "Paused");
    assert_eq!(now["sku"]["capacity"], 2);
    assert_eq!(now["tags"], json!({"a": "b"}));
    assert_eq!(now["properties"]["zoneRedundant"], true);
    assert_eq!(now["properties"]["currentBackupStorageRedundancy"], "Zone");

    // A rename takes the database (and its id) to the new name, in any status.
    env.mock_post(
        "/_mock/database",
        json!({"server": SERVER, "name": "AxDB", "rename_to": "AxDB_moved"}),
    )
    .await;
    assert_eq!(env.arm("GET", &db_url("AxDB"), None).await.status, 404);
    let moved = env.arm("GET", &db_url("AxDB_moved"), None).await.json();
    assert_eq!(id(&moved), id(&before));

    // A name nobody has: a new database with its own id.
    let r = env
        .mock_post(
            "/_mock/database",
            json!({"server": SERVER, "name": "AxDB", "content": "someone else's"}),
        )
        .await;
    assert_eq!(r["created"], true);
    let other = env.arm("GET", &db_url("AxDB"), None).await.json();
    assert_eq!(other["properties"]["status"], "Online");
    assert_ne!(id(&other), id(&before));
    assert_eq!(
        state_db(&env.mock.state_json(), SERVER, "AxDB").unwrap()["content"],
        "someone else's"
    );

    // Renaming onto a name in use is refused, as Azure does.
    let r = env
        .send(
            "POST",
            "/_mock/database",
            None,
            Some((
                "application/json",
                json!({"server": SERVER, "name": "AxDB_moved", "rename_to": "AxDB"}).to_string(),
            )),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "DatabaseNameInUse"));

    env.mock_post(
        "/_mock/database",
        json!({"server": SERVER, "name": "AxDB", "remove": true}),
    )
    .await;
    assert_eq!(env.arm("GET", &db_url("AxDB"), None).await.status, 404);

    for (body, status) in [
        (json!({"server": SERVER}), 400),
        (json!({"server": SERVER, "name": "X", "colour": "red"}), 400),
        (
            json!({"server": SERVER, "name": "X", "backup_storage_redundancy": "Mars"}),
            400,
        ),
        (json!({"server": "nope", "name": "AxDB"}), 404),
        (
            json!({"server": SERVER, "name": "Nope", "remove": true}),
            404,
        ),
    ] {
        let r = env
            .send(
                "POST",
                "/_mock/database",
                None,
                Some(("application/json", body.to_string())),
            )
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
    }
}

#[tokio::test]
async fn mock_remove_vm_makes_arm_no_longer_find_it() {
    let env = start(SCENARIO).await;
    let vm = |name: &str| {
        format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/{name}?{COMPUTE}")
    };
    assert_eq!(env.arm("GET", &vm("vm-aos2"), None).await.status, 200);
    let r = env
        .mock_post("/_mock/remove-vm", json!({"vm": "vm-aos2"}))
        .await;
    assert!(r["removed"].as_str().unwrap().ends_with("/vm-aos2"), "{r}");
    let gone = env.arm("GET", &vm("vm-aos2"), None).await;
    assert_eq!(
        (gone.status, gone.code().as_str()),
        (404, "ResourceNotFound")
    );
    let rc = env
        .arm(
            "POST",
            &vm_url("vm-aos2"),
            Some(run_body(&["Stop-Service -Name W3SVC"], json!([]))),
        )
        .await;
    assert_eq!(rc.status, 404, "{}", rc.text);
    assert_eq!(env.arm("GET", &vm("vm-aos1"), None).await.status, 200);
    assert_eq!(vm_state(&env.mock.state_json(), "vm-aos2")["removed"], true);
    // Gone is gone.
    let again = env
        .send(
            "POST",
            "/_mock/remove-vm",
            None,
            Some(("application/json", json!({"vm": "vm-aos2"}).to_string())),
        )
        .await;
    assert_eq!(again.status, 404);
}

#[tokio::test]
async fn a_hold_on_a_script_holds_only_the_run_commands_of_that_script() {
    let env = start(SCENARIO).await;
    let r = env
        .mock_post(
            "/_mock/hold",
            json!({"operation": "run_command", "hold": true, "script_contains": "start-service"}),
        )
        .await;
    assert_eq!(r["held_scripts"], json!(["start-service"]));
    let run = |vm: &'static str, line: &'static str| {
        let env = &env;
        async move {
            let r = env
                .arm("POST", &vm_url(vm), Some(run_body(&[line], json!([]))))
                .await;
            assert_eq!(r.status, 202, "{}", r.text);
            r.header("location").unwrap()
        }
    };
    let start_op = run("vm-aos1", "Start-Service -Name W3SVC").await;
    let stop_op = run("vm-aos2", "Stop-Service -Name W3SVC").await;
    for _ in 0..5 {
        env.arm("GET", &start_op, None).await;
        env.arm("GET", &stop_op, None).await;
    }
    assert_eq!(env.arm("GET", &stop_op, None).await.status, 200, "not held");
    assert_eq!(env.arm("GET", &start_op, None).await.status, 202, "held");
    env.mock_post(
        "/_mock/hold",
        json!({"operation": "run_command", "hold": false, "script_contains": "Start-Service"}),
    )
    .await;
    assert_eq!(env.arm("GET", &start_op, None).await.status, 200);
    let r = env
        .send(
            "POST",
            "/_mock/hold",
            None,
            Some((
                "application/json",
                json!({"operation": "restore", "hold": true, "script_contains": "x"}).to_string(),
            )),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
}
