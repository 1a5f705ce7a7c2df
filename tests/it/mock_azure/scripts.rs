//! What scripts see: the VM's command layer, pitr's encoded arguments, the
//! AOS configuration; and `GET {VM}`.

use pitr::mock::b64url_encode;
use serde_json::json;

use super::managed::{encoded, managed_body, scenario, SYNC_AOS, SYNC_ENCODED};
use super::*;

#[tokio::test]
async fn command_layer_and_encoded_arguments() {
    let env = start(&scenario(1, "")).await;
    let db_id =
        env.arm("GET", &db_url("AxDB"), None).await.json()["properties"]["databaseId"].clone();
    let args = encoded(
        json!({"Server": "sql-test.database.windows.net", "Database": "AxDB", "PackageDir": "K:\\AosService\\PackagesLocalDirectory", "SqlUser": "axdbadmin"}),
    );
    let secrets = encoded(json!({"SqlPwd": "p@ss w&rd \"quoted\" 100%"}));
    let run = |name: &'static str, script: &'static str, params: Value, protected: Value| {
        let env = &env;
        async move {
            let op = env
                .put_rc("vm-aos1", name, managed_body(script, params, protected))
                .await;
            env.settle(&op).await;
            env.view("vm-aos1", name).await["properties"]["instanceView"].clone()
        }
    };

    // Encoded: arguments and a password full of spaces and quotes get through.
    let iv = run(
        "enc",
        SYNC_ENCODED,
        json!([{"name": "PitrArgs", "value": args}]),
        json!([{"name": "PitrSecrets", "value": secrets}]),
    )
    .await;
    assert_eq!(iv["exitCode"], 0, "{iv}");
    let st = env.mock.state_json();
    assert_eq!(
        vm_state(&st, "vm-aos1")["managed_run_commands"][0]["synced_database_id"],
        db_id
    );

    // Unencoded: the command layer cuts "AxDB 2" at its space; the setup
    // tool cannot open "AxDB_pitr".
    let old = "param([string]$Server, [string]$Database, [string]$SqlPwd)\n& K:\\bin\\Microsoft.Dynamics.AX.Deployment.Setup.exe -sqlserver $Server -sqldatabase $Database -sqlpwd $SqlPwd -setupmode sync";
    let iv = run("plain", old, json!([{"name": "Server", "value": "sql-test"}, {"name": "Database", "value": "AxDB_pitr 2"}]), json!([{"name": "SqlPwd", "value": "x"}])).await;
    assert_eq!(iv["exitCode"], 1, "{iv}");
    assert_eq!(iv["executionState"], "Failed");
    assert!(
        iv["error"]
            .as_str()
            .unwrap()
            .contains("Cannot open database \"AxDB_pitr\""),
        "{iv}"
    );
    // And the consumed characters: "Ax^DB" reaches the script as "AxDB".
    let iv = run("caret", old, json!([{"name": "Server", "value": "sql-test"}, {"name": "Database", "value": "\"Ax^DB\""}]), json!([])).await;
    assert_eq!(iv["exitCode"], 0, "{iv}");

    // Invalid encodings fail like PowerShell, exit code 1.
    let iv = run(
        "pad",
        SYNC_ENCODED,
        json!([{"name": "PitrArgs", "value": format!("{args}=")}]),
        json!([{"name": "PitrSecrets", "value": secrets}]),
    )
    .await;
    assert_eq!(iv["exitCode"], 1);
    assert!(
        iv["error"].as_str().unwrap().contains("FromBase64String"),
        "{iv}"
    );
    let iv = run(
        "json",
        SYNC_ENCODED,
        json!([{"name": "PitrArgs", "value": b64url_encode(b"{\"Server\": 1}")}]),
        json!([{"name": "PitrSecrets", "value": secrets}]),
    )
    .await;
    assert_eq!(iv["exitCode"], 1);
    assert!(
        iv["error"].as_str().unwrap().contains("ConvertFrom-Json"),
        "{iv}"
    );
    let iv = run(
        "missing",
        SYNC_ENCODED,
        json!([{"name": "PitrArgs", "value": args}]),
        json!([]),
    )
    .await;
    assert_eq!(iv["exitCode"], 1);
    assert!(
        iv["error"].as_str().unwrap().contains("$PitrSecrets"),
        "{iv}"
    );
    assert!(
        !iv["error"].as_str().unwrap().contains("p@ss"),
        "a secret is never echoed"
    );

    // The AOS configuration: the environment's own database access.
    let iv = run("aos", SYNC_AOS, json!([]), json!([])).await;
    assert_eq!(iv["exitCode"], 0, "{iv}");
    assert!(
        iv["output"]
            .as_str()
            .unwrap()
            .contains("'AxDB' on 'sql-test'"),
        "{iv}"
    );
    // Its password is for AxDB only: another target fails to log in.
    let aos_other = "param([string]$PitrArgs)\n$a = $PitrArgs | Decode\n$e = [Microsoft.Dynamics.ApplicationPlatform.Environment.EnvironmentFactory]::GetApplicationEnvironment()\n& Microsoft.Dynamics.AX.Deployment.Setup.exe -sqlserver $a.Server -sqldatabase $a.Database -sqluser $e.DataAccess.SqlUser -sqlpwd $e.DataAccess.SqlPwd -setupmode sync";
    let other = encoded(json!({"Server": "sql-test", "Database": "AxDW"}));
    let iv = run(
        "aos-other",
        aos_other,
        json!([{"name": "PitrArgs", "value": other}]),
        json!([]),
    )
    .await;
    assert_eq!(iv["exitCode"], 1, "{iv}");
    assert!(
        iv["error"]
            .as_str()
            .unwrap()
            .contains("Login failed for user 'axdbadmin'"),
        "{iv}"
    );
    // A VM that is no AOS has no such configuration.
    let op = env
        .put_rc(
            "vm-aos2",
            "no-aos",
            managed_body(SYNC_AOS, json!([]), json!([])),
        )
        .await;
    env.settle(&op).await;
    let iv = &env.view("vm-aos2", "no-aos").await["properties"]["instanceView"];
    assert_eq!(iv["exitCode"], 1);
    assert!(
        iv["error"]
            .as_str()
            .unwrap()
            .contains("webroot bin folder was not found"),
        "{iv}"
    );

    // Both flavours go through the command layer: the action run command too.
    let r = env
        .arm(
            "POST",
            &vm_url("vm-aos2"),
            Some(json!({"commandId": "RunPowerShellScript", "script": old.lines().collect::<Vec<_>>(), "parameters": [{"name": "Server", "value": "sql-test"}, {"name": "Database", "value": "AxDB_pitr 2"}]})),
        )
        .await;
    let out = env
        .arm("GET", &r.header("location").unwrap(), None)
        .await
        .json();
    assert!(
        out["value"][1]["message"]
            .as_str()
            .unwrap()
            .contains("Cannot open database \"AxDB_pitr\""),
        "{out}"
    );
    let st = env.mock.state_json();
    assert_eq!(vm_state(&st, "vm-aos2")["run_commands"][0]["exit_code"], 1);
}

#[tokio::test]
async fn get_virtual_machine() {
    let env = start(SCENARIO).await;
    let url = |vm: &str, v: &str| {
        format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/{vm}?api-version={v}")
    };
    let r = env.arm("GET", &url("vm-aos1", "2024-07-01"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["id"], format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/vm-aos1"));
    assert_eq!(v["name"], "vm-aos1");
    assert_eq!(v["type"], "Microsoft.Compute/virtualMachines");
    assert_eq!(v["location"], "westeurope");
    assert_eq!(v["properties"]["provisioningState"], "Succeeded");
    let vm_id = v["properties"]["vmId"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&vm_id).is_ok());
    let again = env
        .arm("GET", &url("VM-AOS1", "2026-04-01"), None)
        .await
        .json();
    assert_eq!(again["properties"]["vmId"], vm_id.as_str(), "stable");
    let r = env.arm("GET", &url("vm-ghost", "2024-07-01"), None).await;
    assert_eq!((r.status, r.code().as_str()), (404, "ResourceNotFound"));
    let r = env.arm("GET", &url("vm-aos1", "2016-03-30"), None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "NoRegisteredProviderFound")
    );
}
