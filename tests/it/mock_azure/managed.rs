//! Managed run commands (`{VM}/runCommands/{name}`): lifecycle, validation,
//! timeouts, failures, cancellation, the VM's command layer and pitr's
//! encoded arguments, the AOS configuration.

use chrono::Utc;
use pitr::mock::b64url_encode;
use serde_json::{json, Value};

use super::*;

const AOS: &str = r#"
[vms.aos]
server = "sql-test.database.windows.net"
database = "AxDB"
sql_user = "axdbadmin"
sql_password = "aos-secret"
"#;

/// SCENARIO with polls lowered to `polls`, an AOS configuration on vm-aos1
/// (not on vm-aos2) and `extra` settings lines.
pub(super) fn scenario(polls: u32, extra_settings: &str) -> String {
    // The [vms.aos] table must follow vm-aos1's [[vms]] table.
    let s = SCENARIO
        .replace(
            "run_command_polls = 3",
            &format!("run_command_polls = {polls}\n{extra_settings}"),
        )
        .replace(
            "services = [\"W3SVC\", \"DynamicsAxBatch\"]\n",
            &format!("services = [\"W3SVC\", \"DynamicsAxBatch\"]\n{AOS}"),
        );
    assert!(s.contains("aos-secret"));
    s
}

pub(super) fn rc_url(vm: &str, name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/{vm}/runCommands/{name}?{COMPUTE}")
}

pub(super) fn rc_view(vm: &str, name: &str) -> String {
    format!("{}&$expand=instanceView", rc_url(vm, name))
}

pub(super) fn managed_body(script: &str, params: Value, protected: Value) -> Value {
    json!({
        "location": "westeurope",
        "properties": {
            "source": {"script": script},
            "parameters": params,
            "protectedParameters": protected,
            "timeoutInSeconds": 3600,
            "asyncExecution": false,
            "treatFailureAsDeploymentFailure": false,
        }
    })
}

pub(super) const SYNC_ENCODED: &str = "param([string]$PitrArgs, [string]$PitrSecrets)\n\
$a = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String(($PitrArgs.Replace('-','+').Replace('_','/')))) | ConvertFrom-Json\n\
$s = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String(($PitrSecrets.Replace('-','+').Replace('_','/')))) | ConvertFrom-Json\n\
& (Join-Path $a.PackageDir 'bin\\Microsoft.Dynamics.AX.Deployment.Setup.exe') -sqlserver $a.Server -sqldatabase $a.Database -sqluser $a.SqlUser -sqlpwd $s.SqlPwd -setupmode sync -syncmode fullall -isazuresql true\n\
exit $LASTEXITCODE";

pub(super) const SYNC_AOS: &str = "Add-Type -Path 'K:\\AOSService\\webroot\\bin\\Microsoft.Dynamics.ApplicationPlatform.Environment.dll'\n\
$e = [Microsoft.Dynamics.ApplicationPlatform.Environment.EnvironmentFactory]::GetApplicationEnvironment()\n\
$d = $e.DataAccess\n\
& K:\\AOSService\\PackagesLocalDirectory\\bin\\Microsoft.Dynamics.AX.Deployment.Setup.exe -sqlserver $d.DbServer -sqldatabase $d.Database -sqluser $d.SqlUser -sqlpwd $d.SqlPwd -setupmode sync -syncmode fullall -isazuresql true\n\
exit $LASTEXITCODE";

pub(super) fn encoded(v: Value) -> String {
    b64url_encode(v.to_string().as_bytes())
}

impl Env {
    /// PUTs a managed run command, expecting 201, and returns its
    /// Azure-AsyncOperation URL.
    pub(super) async fn put_rc(&self, vm: &str, name: &str, body: Value) -> String {
        let r = self.arm("PUT", &rc_url(vm, name), Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.header("azure-asyncoperation").unwrap()
    }

    /// Polls the operation until it is terminal; returns its status body.
    pub(super) async fn settle(&self, op: &str) -> Value {
        for _ in 0..20 {
            let v = self.arm("GET", op, None).await.json();
            if v["status"] != "InProgress" {
                return v;
            }
        }
        panic!("operation {op} did not finish");
    }

    pub(super) async fn view(&self, vm: &str, name: &str) -> Value {
        let r = self.arm("GET", &rc_view(vm, name), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    }
}

#[tokio::test]
async fn managed_run_command_lifecycle() {
    let env = start(&scenario(2, "")).await;
    let body = managed_body(
        "param([string]$Job)\nStop-Service -Name W3SVC -Force",
        json!([{"name": "Job", "value": "b33834ee"}]),
        json!([{"name": "Secret", "value": "s3"}]),
    );
    let r = env
        .arm(
            "PUT",
            &rc_url("vm-aos1", "pitr-offline-1"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let v = r.json();
    let vm_id = format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/vm-aos1");
    assert_eq!(v["id"], format!("{vm_id}/runCommands/pitr-offline-1"));
    assert_eq!(v["name"], "pitr-offline-1");
    assert_eq!(v["type"], "Microsoft.Compute/virtualMachines/runCommands");
    assert_eq!(v["location"], "westeurope");
    let p = &v["properties"];
    assert_eq!(p["provisioningState"], "Creating");
    assert_eq!(
        p["source"]["script"],
        body["properties"]["source"]["script"]
    );
    assert_eq!(
        p["parameters"],
        json!([{"name": "Job", "value": "b33834ee"}])
    );
    assert!(p.get("protectedParameters").is_none(), "{p}");
    assert!(!r.text.contains("s3\""), "{}", r.text);
    assert_eq!(p["timeoutInSeconds"], 3600);
    assert_eq!(p["asyncExecution"], false);
    assert!(p.get("instanceView").is_none());
    let op = r.header("azure-asyncoperation").unwrap();
    let loc = r.header("location").unwrap();
    let prefix = format!(
        "{}/subscriptions/{SUB}/providers/Microsoft.Compute/locations/westeurope/operations/",
        env.base
    );
    assert!(
        op.starts_with(&prefix) && op.ends_with("?api-version=2024-07-01"),
        "{op}"
    );
    assert!(
        loc.starts_with(&prefix) && loc.ends_with("?monitor=true&api-version=2024-07-01"),
        "{loc}"
    );
    assert_eq!(op.split('?').next(), loc.split('?').next());
    assert_eq!(r.header("retry-after").as_deref(), Some("0"));

    // Running: a second PUT of the name is refused; the VM still serves others.
    let again = env
        .arm(
            "PUT",
            &rc_url("vm-aos1", "pitr-offline-1"),
            Some(body.clone()),
        )
        .await;
    assert_eq!((again.status, again.code().as_str()), (409, "Conflict"));
    assert!(again
        .text
        .contains("Run command extension execution is in progress"));
    let iv = env.view("vm-aos1", "pitr-offline-1").await;
    assert_eq!(
        iv["properties"]["instanceView"]["executionState"],
        "Running"
    );
    assert!(iv["properties"]["instanceView"]["exitCode"].is_null());
    assert!(iv["properties"]["instanceView"]["endTime"].is_null());
    // Without $expand, no instance view.
    let plain = env
        .arm("GET", &rc_url("vm-aos1", "pitr-offline-1"), None)
        .await
        .json();
    assert!(plain["properties"].get("instanceView").is_none());

    let status = env.settle(&op).await;
    assert_eq!(status["status"], "Succeeded", "{status}");
    let iv = env.view("vm-aos1", "pitr-offline-1").await;
    let p = &iv["properties"];
    assert_eq!(p["provisioningState"], "Succeeded");
    let view = &p["instanceView"];
    assert_eq!(view["executionState"], "Succeeded");
    assert_eq!(view["exitCode"], 0);
    assert_eq!(view["executionMessage"], "");
    assert_eq!(view["output"], "Stopped service W3SVC.\n");
    assert_eq!(view["error"], "");
    assert!(view["startTime"].as_str().unwrap().ends_with('Z'));
    assert!(view["endTime"].as_str().unwrap().ends_with('Z'));
    assert_eq!(view["statuses"], json!([]));
    // The Location form ends with the resource.
    let done = env.arm("GET", &loc, None).await;
    assert_eq!(done.status, 200);
    assert_eq!(done.json()["properties"]["provisioningState"], "Succeeded");

    let st = env.mock.state_json();
    let vm = vm_state(&st, "vm-aos1");
    assert_eq!(vm["services"]["W3SVC"], "Stopped");
    let m = &vm["managed_run_commands"][0];
    assert_eq!(m["name"], "pitr-offline-1");
    assert_eq!(m["execution_state"], "Succeeded");
    assert_eq!(m["exit_code"], 0);
    assert_eq!(m["kind"], "stop_services");
    assert_eq!(
        m["parameters"],
        json!([{"name": "Job", "value": "b33834ee"}])
    );
    assert_eq!(
        m["protected_parameters"],
        json!([{"name": "Secret", "value": "s3"}])
    );

    // A finished command of that name is replaced (200) and runs again.
    let r = env
        .arm("PUT", &rc_url("vm-aos1", "PITR-OFFLINE-1"), Some(body))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["properties"]["provisioningState"], "Updating");
    env.settle(&r.header("azure-asyncoperation").unwrap()).await;
    let view = env.view("vm-aos1", "pitr-offline-1").await;
    assert_eq!(
        view["properties"]["instanceView"]["output"],
        "Service W3SVC is already stopped.\n"
    );

    // A long-running delete, as Azure answers it: 202 and the operation,
    // already done.
    let d = env
        .arm("DELETE", &rc_url("vm-aos1", "pitr-offline-1"), None)
        .await;
    assert_eq!(d.status, 202, "{}", d.text);
    let async_op = d
        .header("Azure-AsyncOperation")
        .expect("Azure-AsyncOperation");
    assert!(
        async_op.contains("/providers/Microsoft.Compute/locations/"),
        "{async_op}"
    );
    assert_eq!(
        env.arm("GET", &async_op, None).await.json()["status"],
        "Succeeded"
    );
    let location = d.header("Location").expect("Location");
    assert!(location.contains("monitor=true"), "{location}");
    assert_eq!(env.arm("GET", &location, None).await.status, 200);
    let g = env
        .arm("GET", &rc_view("vm-aos1", "pitr-offline-1"), None)
        .await;
    assert_eq!((g.status, g.code().as_str()), (404, "ResourceNotFound"));
    assert_eq!(
        env.arm("DELETE", &rc_url("vm-aos1", "pitr-offline-1"), None)
            .await
            .status,
        204
    );
    let st = env.mock.state_json();
    let list = vm_state(&st, "vm-aos1")["managed_run_commands"]
        .as_array()
        .unwrap()
        .clone();
    let resources: Vec<&str> = list
        .iter()
        .map(|m| m["resource"].as_str().unwrap())
        .collect();
    assert_eq!(resources, ["replaced", "deleted"]);

    // The journal has the PUT as sent, protected parameters included.
    let journal = env.get_json("/_mock/requests").await;
    let put = journal
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["method"] == "PUT")
        .unwrap();
    assert_eq!(
        put["body"]["properties"]["protectedParameters"][0]["value"],
        "s3"
    );
}

#[tokio::test]
async fn managed_run_command_validation() {
    let env = start(&scenario(1, "")).await;
    let ok = managed_body("Write-Output hi", json!([]), json!([]));
    let put = |vm: &'static str, name: String, body: Value| {
        let env = &env;
        async move { env.arm("PUT", &rc_url(vm, &name), Some(body)).await }
    };
    let r = put("vm-ghost", "x".into(), ok.clone()).await;
    assert_eq!((r.status, r.code().as_str()), (404, "ResourceNotFound"));
    for bad in ["a*b".to_string(), "x".repeat(81), "a,b".to_string()] {
        let r = put("vm-aos1", bad.clone(), ok.clone()).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "InvalidResourceName"),
            "{bad}: {}",
            r.text
        );
    }
    assert_eq!(
        put("vm-aos1", "a.b-c_D9".into(), ok.clone()).await.status,
        201
    );
    let mut b = ok.clone();
    b.as_object_mut().unwrap().remove("location");
    assert_eq!(
        put("vm-aos1", "n1".into(), b).await.code(),
        "LocationRequired"
    );
    let mut b = ok.clone();
    b["properties"]["source"] = json!({"scriptUri": "https://example.invalid/s.ps1"});
    let r = put("vm-aos1", "n1".into(), b).await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidParameter"));
    assert!(r.text.contains("not supported by the mock"), "{}", r.text);
    let mut b = ok.clone();
    b["properties"]["source"] = json!({"commandId": "RunPowerShellScript"});
    assert_eq!(
        put("vm-aos1", "n1".into(), b).await.code(),
        "InvalidParameter"
    );
    let mut b = ok.clone();
    b["properties"]["source"] = json!({"script": ["array", "of lines"]});
    assert_eq!(
        put("vm-aos1", "n1".into(), b).await.code(),
        "InvalidParameter"
    );
    for t in [json!(-1), json!(86_401), json!("60"), json!(1.5)] {
        let mut b = ok.clone();
        b["properties"]["timeoutInSeconds"] = t.clone();
        let r = put("vm-aos1", "n1".into(), b).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "InvalidParameter"),
            "{t}"
        );
    }
    for t in [json!(0), json!(86_400)] {
        let mut b = ok.clone();
        b["properties"]["timeoutInSeconds"] = t;
        assert_eq!(
            put("vm-aos1", format!("t{}", Utc::now().timestamp_micros()), b)
                .await
                .status,
            201
        );
    }
    let mut b = ok.clone();
    b["properties"]["asyncExecution"] = json!("yes");
    assert_eq!(
        put("vm-aos1", "n1".into(), b).await.code(),
        "InvalidParameter"
    );
    let mut b = ok.clone();
    b["properties"]["parameters"] = json!({"name": "x"});
    assert_eq!(
        put("vm-aos1", "n1".into(), b).await.code(),
        "InvalidParameter"
    );
    assert_eq!(
        env.arm("GET", &rc_url("vm-aos1", "n1"), None).await.status,
        404,
        "nothing was created"
    );

    // api-versions: runCommands exist from 2020-06-01.
    let r = env
        .arm(
            "PUT",
            &rc_url("vm-aos2", "n2").replace(COMPUTE, "api-version=2019-12-01"),
            Some(ok.clone()),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "NoRegisteredProviderFound")
    );
    assert!(
        r.text.contains("for type 'virtualMachines/runCommands'"),
        "{}",
        r.text
    );
    assert!(r.text.contains("'2020-06-01, 2020-12-01,"), "{}", r.text);
    for v in ["2020-06-01", "2025-04-01", "2025-11-01", "2026-04-01"] {
        let name = format!("v{}", v.replace('-', ""));
        let r = env
            .arm(
                "PUT",
                &rc_url("vm-aos2", &name).replace(COMPUTE, &format!("api-version={v}")),
                Some(ok.clone()),
            )
            .await;
        assert_eq!(r.status, 201, "{v}: {}", r.text);
        let op = r.header("azure-asyncoperation").unwrap();
        assert!(op.ends_with(&format!("?api-version={v}")), "{op}");
        assert!(r
            .header("location")
            .unwrap()
            .ends_with(&format!("monitor=true&api-version={v}")));
    }
}

#[tokio::test]
async fn durations_timeouts_and_failures() {
    // A full sync takes 4 hours: past the action run command's 90 minutes.
    let env = start(&scenario(1, "script_seconds = { sync = 14400 }")).await;
    let args = encoded(
        json!({"Server": "sql-test", "Database": "AxDB", "PackageDir": "K:\\AosService\\PackagesLocalDirectory", "SqlUser": "axdbadmin"}),
    );
    let secrets = encoded(json!({"SqlPwd": "p@ss w&rd"}));
    let sync = |timeout: i64| {
        let mut b = managed_body(
            SYNC_ENCODED,
            json!([{"name": "PitrArgs", "value": args}]),
            json!([{"name": "PitrSecrets", "value": secrets}]),
        );
        b["properties"]["timeoutInSeconds"] = json!(timeout);
        b
    };
    let op = env.put_rc("vm-aos1", "sync-long", sync(21_600)).await;
    assert_eq!(env.settle(&op).await["status"], "Succeeded");
    let v = env.view("vm-aos1", "sync-long").await;
    assert_eq!(
        v["properties"]["instanceView"]["executionState"],
        "Succeeded"
    );
    assert_eq!(v["properties"]["instanceView"]["exitCode"], 0);

    // timeoutInSeconds 0 is Azure's default, 90 minutes: TimedOut.
    let op = env.put_rc("vm-aos1", "sync-short", sync(0)).await;
    assert_eq!(env.settle(&op).await["status"], "Succeeded");
    let v = env.view("vm-aos1", "sync-short").await;
    let iv = &v["properties"]["instanceView"];
    assert_eq!(iv["executionState"], "TimedOut");
    assert!(iv["exitCode"].is_null());
    assert_eq!(
        iv["executionMessage"],
        "The script execution timed out after 5400 seconds."
    );
    assert_eq!(v["properties"]["provisioningState"], "Succeeded");
    assert_eq!(v["properties"]["timeoutInSeconds"], 0);

    // The action run command cannot run it at all.
    let r = env
        .arm(
            "POST",
            &vm_url("vm-aos2"),
            Some(run_body(
                &["& K:\\bin\\Microsoft.Dynamics.AX.Deployment.Setup.exe -sqlserver sql-test -sqldatabase AxDB -setupmode sync"],
                json!([]),
            )),
        )
        .await;
    let l = env.arm("GET", &r.header("location").unwrap(), None).await;
    assert_eq!(
        (l.status, l.code().as_str()),
        (500, "VMExtensionProvisioningTimeout"),
        "{}",
        l.text
    );

    // A failing script with treatFailureAsDeploymentFailure: the operation fails.
    env.mock_post("/_mock/faults", json!({"operation": "run_command", "outcome": "exit_code", "exit_code": 3, "message": "boom", "times": 2})).await;
    let mut b = managed_body("Stop-Service -Name W3SVC", json!([]), json!([]));
    b["properties"]["treatFailureAsDeploymentFailure"] = json!(true);
    let op = env.put_rc("vm-aos1", "strict", b).await;
    let s = env.settle(&op).await;
    assert_eq!(s["status"], "Failed", "{s}");
    assert!(s["error"]["code"].is_string());
    let v = env.view("vm-aos1", "strict").await;
    assert_eq!(v["properties"]["provisioningState"], "Failed");
    assert_eq!(v["properties"]["instanceView"]["executionState"], "Failed");
    assert_eq!(v["properties"]["instanceView"]["exitCode"], 3);
    assert!(v["properties"]["instanceView"]["error"]
        .as_str()
        .unwrap()
        .contains("boom"));
    // Without it: the deployment succeeds, the execution failed.
    let op = env
        .put_rc(
            "vm-aos1",
            "lenient",
            managed_body("Stop-Service -Name W3SVC", json!([]), json!([])),
        )
        .await;
    assert_eq!(env.settle(&op).await["status"], "Succeeded");
    let v = env.view("vm-aos1", "lenient").await;
    assert_eq!(v["properties"]["provisioningState"], "Succeeded");
    assert_eq!(v["properties"]["instanceView"]["executionState"], "Failed");
    assert_eq!(v["properties"]["instanceView"]["exitCode"], 3);
    assert_eq!(
        vm_state(&env.mock.state_json(), "vm-aos1")["services"]["W3SVC"],
        "Running"
    );

    // An operation fault `fail`: the operation fails with its code.
    env.mock_post("/_mock/faults", json!({"operation": "run_command", "outcome": "fail", "error_code": "VMAgentStatusCommunicationError", "message": "agent gone"})).await;
    let op = env
        .put_rc(
            "vm-aos1",
            "agentless",
            managed_body("Write-Output x", json!([]), json!([])),
        )
        .await;
    let s = env.settle(&op).await;
    assert_eq!(s["error"]["code"], "VMAgentStatusCommunicationError", "{s}");
    let v = env.view("vm-aos1", "agentless").await;
    assert_eq!(v["properties"]["instanceView"]["executionState"], "Failed");
    assert_eq!(
        v["properties"]["instanceView"]["executionMessage"],
        "agent gone"
    );

    // never_finish, then DELETE: Canceled.
    env.mock_post("/_mock/faults", json!({"operation": "run_command", "outcome": "never_finish", "script_contains": "Start-Service"})).await;
    let op = env
        .put_rc(
            "vm-aos2",
            "stuck",
            managed_body("Start-Service -Name W3SVC", json!([]), json!([])),
        )
        .await;
    for _ in 0..3 {
        assert_eq!(
            env.arm("GET", &op, None).await.json()["status"],
            "InProgress"
        );
    }
    assert_eq!(
        env.arm("DELETE", &rc_url("vm-aos2", "stuck"), None)
            .await
            .status,
        202
    );
    let s = env.arm("GET", &op, None).await.json();
    assert_eq!(s["status"], "Canceled", "{s}");
    let st = env.mock.state_json();
    let m = &vm_state(&st, "vm-aos2")["managed_run_commands"][0];
    assert_eq!(m["execution_state"], "Canceled");
    assert_eq!(m["resource"], "deleted");
}

#[tokio::test]
async fn async_execution_completes_at_once() {
    let env = start(&scenario(3, "")).await;
    let mut b = managed_body("Stop-Service -Name DynamicsAxBatch", json!([]), json!([]));
    b["properties"]["asyncExecution"] = json!(true);
    let r = env.arm("PUT", &rc_url("vm-aos1", "bg"), Some(b)).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["properties"]["provisioningState"], "Creating");
    let op = r.header("azure-asyncoperation").unwrap();
    assert_eq!(
        env.arm("GET", &op, None).await.json()["status"],
        "Succeeded"
    );
    let v = env.view("vm-aos1", "bg").await;
    assert_eq!(v["properties"]["provisioningState"], "Succeeded");
    assert_eq!(v["properties"]["instanceView"]["executionState"], "Running");
    // Each GET of the command counts as a poll of its script.
    env.view("vm-aos1", "bg").await;
    let v = env.view("vm-aos1", "bg").await;
    assert_eq!(
        v["properties"]["instanceView"]["executionState"],
        "Succeeded"
    );
    assert_eq!(
        vm_state(&env.mock.state_json(), "vm-aos1")["services"]["DynamicsAxBatch"],
        "Stopped"
    );
}
