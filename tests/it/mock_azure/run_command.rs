//! The action run command (`POST {VM}/runCommand`).

use serde_json::json;

use super::*;

#[tokio::test]
async fn run_command_stops_services() {
    let env = start(SCENARIO).await;
    let body = run_body(
        &[
            "$ErrorActionPreference = 'Stop'",
            "Stop-Service -Name W3SVC -Force",
            "Write-Output 'pitr-exit-code: 0'",
        ],
        json!([]),
    );
    let r = env.arm("POST", &vm_url("vm-aos1"), Some(body)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert!(r.header("azure-asyncoperation").is_none(), "Location only");
    assert_eq!(r.header("retry-after").as_deref(), Some("0"));
    let loc = r.header("location").unwrap();
    assert!(
        loc.starts_with(&format!(
            "{}/subscriptions/{SUB}/providers/Microsoft.Compute/locations/westeurope/operations/",
            env.base
        )),
        "{loc}"
    );
    assert!(
        loc.ends_with("?monitor=true&api-version=2024-07-01"),
        "{loc}"
    );

    // Another command on the same VM while this one runs: 409. Other VMs are free.
    let again = env
        .arm(
            "POST",
            &vm_url("vm-aos1"),
            Some(run_body(&["Start-Service -Name W3SVC"], json!([]))),
        )
        .await;
    assert_eq!((again.status, again.code().as_str()), (409, "Conflict"));
    assert!(again
        .text
        .contains("Run command extension execution is in progress"));

    let p1 = env.arm("GET", &loc, None).await;
    assert_eq!(p1.status, 202);
    assert!(p1.text.is_empty());
    // Not executed yet: effects happen at completion.
    assert_eq!(
        vm_state(&env.mock.state_json(), "vm-aos1")["services"]["W3SVC"],
        "Running"
    );

    let p2 = env.arm("GET", &loc, None).await;
    assert_eq!(p2.status, 200, "{}", p2.text);
    let v = p2.json();
    assert_eq!(v["value"][0]["code"], "ComponentStatus/StdOut/succeeded");
    assert_eq!(v["value"][0]["level"], "Info");
    assert_eq!(v["value"][0]["displayStatus"], "Provisioning succeeded");
    assert_eq!(v["value"][1]["code"], "ComponentStatus/StdErr/succeeded");
    let stdout = v["value"][0]["message"].as_str().unwrap();
    // The output is the script's: the mock adds no exit-code line.
    assert_eq!(stdout, "Stopped service W3SVC.\n");
    assert!(!stdout.contains("pitr-exit-code"), "{stdout}");

    let st = env.mock.state_json();
    let vm = vm_state(&st, "vm-aos1");
    assert_eq!(vm["services"]["W3SVC"], "Stopped");
    assert_eq!(vm["services"]["DynamicsAxBatch"], "Running");
    let rc = &vm["run_commands"][0];
    assert_eq!(rc["kind"], "stop_services");
    assert_eq!(rc["services"], json!(["W3SVC"]));
    assert_eq!(rc["exit_code"], 0);
    // `seq` is the journal number of the POST.
    let journal = env.get_json("/_mock/requests").await;
    let post = journal
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["seq"] == rc["seq"])
        .unwrap();
    assert_eq!(post["method"], "POST");
    assert!(post["path"]
        .as_str()
        .unwrap()
        .ends_with("/virtualMachines/vm-aos1/runCommand?api-version=2024-07-01"));

    // Now the VM is free again.
    let r = env
        .arm(
            "POST",
            &vm_url("vm-aos1"),
            Some(run_body(
                &["Start-Service -Name 'W3SVC','DynamicsAxBatch'"],
                json!([]),
            )),
        )
        .await;
    assert_eq!(r.status, 202);
    let loc = r.header("location").unwrap();
    env.arm("GET", &loc, None).await;
    env.arm("GET", &loc, None).await;
    assert_eq!(env.arm("GET", &loc, None).await.status, 200);
    let st = env.mock.state_json();
    let vm = vm_state(&st, "vm-aos1");
    assert_eq!(vm["services"]["W3SVC"], "Running");
    assert_eq!(vm["run_commands"][1]["kind"], "start_services");
    assert!(
        vm["run_commands"][1]["completed_seq"].as_u64()
            > vm["run_commands"][0]["completed_seq"].as_u64()
    );

    let r = env
        .arm(
            "POST",
            &vm_url("vm-ghost"),
            Some(run_body(&["x"], json!([]))),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "ResourceNotFound"));
    let r = env
        .arm(
            "POST",
            &vm_url("vm-aos2"),
            Some(json!({"commandId": "RunShellScript", "script": ["ls"]})),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidParameter"));
}

#[tokio::test]
async fn run_command_sync_and_faithful_journal() {
    let env = start(&SCENARIO.replace("run_command_polls = 3", "run_command_polls = 1")).await;
    let script = [
        "param([string]$Server, [string]$Database, [string]$SqlPwd)",
        "& K:\\AosService\\PackagesLocalDirectory\\bin\\Microsoft.Dynamics.AX.Deployment.Setup.exe -sqlserver $Server -sqldatabase $Database -sqluser axadmin -sqlpwd $SqlPwd -setupmode sync -syncmode fullall -isazuresql true",
    ];
    let params = json!([
        {"name": "Server", "value": "sql-test.database.windows.net"},
        {"name": "Database", "value": "AxDB"},
        {"name": "SqlPwd", "value": "hunter2-secret"},
    ]);
    let r = env
        .arm("POST", &vm_url("vm-aos1"), Some(run_body(&script, params)))
        .await;
    let done = env.arm("GET", &r.header("location").unwrap(), None).await;
    assert_eq!(done.status, 200);
    let stdout = done.json()["value"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        stdout.starts_with("Database synchronization of 'AxDB' on 'sql-test'"),
        "{stdout}"
    );
    assert!(!stdout.contains("pitr-exit-code"), "{stdout}");

    let db_id =
        env.arm("GET", &db_url("AxDB"), None).await.json()["properties"]["databaseId"].clone();
    let st = env.mock.state_json();
    let rc = &vm_state(&st, "vm-aos1")["run_commands"][0];
    assert_eq!(rc["kind"], "sync");
    assert_eq!(rc["synced_database_id"], db_id);
    assert_eq!(rc["exit_code"], 0);
    // Parameters as received.
    assert_eq!(
        rc["parameters"][2],
        json!({"name": "SqlPwd", "value": "hunter2-secret"})
    );

    // A database that does not exist: the script exits 1 with SQL's message.
    let params = json!([{"name": "Server", "value": "sql-test"}, {"name": "Database", "value": "AxDB_gone"}]);
    let r = env
        .arm("POST", &vm_url("vm-aos1"), Some(run_body(&script, params)))
        .await;
    let v = env
        .arm("GET", &r.header("location").unwrap(), None)
        .await
        .json();
    assert_eq!(v["value"][0]["message"], "");
    assert!(v["value"][1]["message"]
        .as_str()
        .unwrap()
        .contains("Cannot open database \"AxDB_gone\" requested by the login."));
    let st = env.mock.state_json();
    assert_eq!(vm_state(&st, "vm-aos1")["run_commands"][1]["exit_code"], 1);

    // The journal is what was on the wire, secrets included: it is how a
    // test checks which secret went where.
    let journal = env.get_json("/_mock/requests").await;
    let token = &journal[0];
    assert_eq!(token["body"]["client_id"], "app");
    assert_eq!(token["body"]["client_secret"], "s3cr3t-value");
    let post = journal
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["method"] == "POST" && e["path"].as_str().unwrap().contains("/runCommand?"))
        .unwrap();
    assert_eq!(post["body"]["parameters"][2]["value"], "hunter2-secret");
    assert_eq!(post["body"]["script"][1], script[1]);
}
