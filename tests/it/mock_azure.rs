//! The mock Azure over real HTTPS: a reqwest client that trusts only the CA
//! the mock wrote, and the real `azure_identity` credential for the token.
//! Completion is count-based (polls), so nothing here sleeps to win a race,
//! and every test has its own port and temp dir so they run in parallel.

use std::sync::Arc;

use chrono::{Duration, SecondsFormat, Utc};
use pitr::mock::{MockAzure, Scenario};
use serde_json::{json, Value};

const SUB: &str = "00000000-0000-0000-0000-000000000001";
const RG: &str = "rg-test";
const SERVER: &str = "sql-test";
const SQL: &str = "api-version=2023-08-01";
const COMPUTE: &str = "api-version=2024-07-01";

const SCENARIO: &str = r#"
[settings]
# A GET of a restoring database and a refused run command count as
# polls too (see src/mock/arm.rs `observe`).
restore_polls = 3
delete_polls = 1
run_command_polls = 3

[[servers]]
subscription_id = "00000000-0000-0000-0000-000000000001"
resource_group = "rg-test"
name = "sql-test"
location = "westeurope"

[[servers.databases]]
name = "AxDB"
sku = { name = "GP_Gen5", tier = "GeneralPurpose", family = "Gen5", capacity = 8 }
earliest_restore = "-30d"
created = "-100d"
history = [
  { at = "-20d", content = "orders=1200" },
  { at = "-6d", content = "orders=1350" },
  { at = "-2h", content = "orders=1410" },
]

[[servers.databases]]
name = "AxDW"
earliest_restore = "-30d"
history = [{ at = "-30d", content = "dw" }]

[[servers]]
subscription_id = "00000000-0000-0000-0000-000000000001"
resource_group = "rg-test"
name = "sql-other"
location = "westeurope"

[[servers.databases]]
name = "Elsewhere"

[[vms]]
subscription_id = "00000000-0000-0000-0000-000000000001"
resource_group = "rg-test"
name = "vm-aos1"
location = "westeurope"
services = ["W3SVC", "DynamicsAxBatch"]

[[vms]]
subscription_id = "00000000-0000-0000-0000-000000000001"
resource_group = "rg-test"
name = "vm-aos2"
location = "westeurope"
services = ["W3SVC"]
"#;

struct Env {
    mock: MockAzure,
    http: reqwest::Client,
    base: String,
    token: String,
    _dir: tempfile::TempDir,
}

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

async fn start(toml: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario::from_toml_str(toml).unwrap();
    let mock = MockAzure::start(scenario, "127.0.0.1:0".parse().unwrap(), Some(dir.path()))
        .await
        .unwrap();
    let ca_path = mock.ca_path().expect("CA written").to_path_buf();
    let pem = std::fs::read(&ca_path).unwrap();
    assert_eq!(pem, mock.ca_pem().as_bytes());
    let cert = reqwest::Certificate::from_pem(&pem).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([cert])
        .build()
        .unwrap();
    let base = mock.url();
    let mut env = Env {
        mock,
        http,
        base,
        token: String::new(),
        _dir: dir,
    };
    env.token = env.fetch_token().await;
    env
}

impl Env {
    async fn fetch_token(&self) -> String {
        let r = self
            .send(
                "POST",
                "/tenant-1/oauth2/v2.0/token",
                None,
                Some((
                    "application/x-www-form-urlencoded",
                    "grant_type=client_credentials&client_id=app&client_secret=s3cr3t-value&scope=https%3A%2F%2Fmanagement.azure.com%2F.default".to_string(),
                )),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["access_token"].as_str().unwrap().to_string()
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, String)>,
    ) -> Resp {
        let url = if path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        };
        let mut rb = self
            .http
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
        if let Some(t) = token {
            rb = rb.header("Authorization", format!("Bearer {t}"));
        }
        if let Some((ct, b)) = body {
            rb = rb.header("Content-Type", ct).body(b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        Resp {
            status,
            headers,
            text,
        }
    }

    async fn arm(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.send(
            method,
            path,
            Some(&self.token),
            body.map(|b| ("application/json", b.to_string())),
        )
        .await
    }

    /// POST to a `/_mock/` endpoint, expecting 200.
    async fn mock_post(&self, path: &str, body: Value) -> Value {
        let r = self
            .send(
                "POST",
                path,
                None,
                Some(("application/json", body.to_string())),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    }

    async fn get_json(&self, path: &str) -> Value {
        self.send("GET", path, None, None).await.json()
    }
}

fn db_path(db: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Sql/servers/{SERVER}/databases/{db}")
}

fn db_url(db: &str) -> String {
    format!("{}?{SQL}", db_path(db))
}

fn vm_url(vm: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/{vm}/runCommand?{COMPUTE}")
}

fn ago(d: Duration) -> String {
    (Utc::now() - d).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn restore_body(point: &str) -> Value {
    json!({
        "location": "westeurope",
        "sku": {"name": "GP_Gen5", "tier": "GeneralPurpose", "capacity": 8},
        "properties": {
            "createMode": "PointInTimeRestore",
            "sourceDatabaseId": db_path("AxDB"),
            "restorePointInTime": point,
        }
    })
}

fn run_body(lines: &[&str], params: Value) -> Value {
    json!({"commandId": "RunPowerShellScript", "script": lines, "parameters": params})
}

fn state_db<'a>(state: &'a Value, server: &str, db: &str) -> Option<&'a Value> {
    state["servers"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == server)?["databases"]
        .as_array()?
        .iter()
        .find(|d| d["name"] == db)
}

fn vm_state<'a>(state: &'a Value, vm: &str) -> &'a Value {
    state["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == vm)
        .unwrap()
}

#[tokio::test]
async fn get_database_and_not_found() {
    let env = start(SCENARIO).await;
    let r = env.arm("GET", &db_url("AxDB"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let v = r.json();
    assert_eq!(v["id"], db_path("AxDB"));
    assert_eq!(v["name"], "AxDB");
    assert_eq!(v["type"], "Microsoft.Sql/servers/databases");
    assert_eq!(v["location"], "westeurope");
    assert_eq!(v["kind"], "v12.0,user,vcore");
    assert_eq!(
        v["sku"],
        json!({"name": "GP_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 8})
    );
    let p = &v["properties"];
    assert_eq!(p["status"], "Online");
    assert!(uuid::Uuid::parse_str(p["databaseId"].as_str().unwrap()).is_ok());
    assert!(p["creationDate"].as_str().unwrap().ends_with('Z'));
    assert!(p["earliestRestoreDate"].is_string());
    assert_eq!(p["currentServiceObjectiveName"], "GP_Gen5_8");
    assert!(p["elasticPoolId"].is_null());
    assert_eq!(p["maxSizeBytes"], 268435456000u64);
    assert_eq!(p["zoneRedundant"], false);
    assert_eq!(p["currentBackupStorageRedundancy"], "Geo");

    // Canonical casing is not required for the fixed segments.
    let lower = format!("/subscriptions/{SUB}/resourcegroups/{RG}/providers/microsoft.sql/servers/{SERVER}/databases/AxDB?{SQL}");
    assert_eq!(env.arm("GET", &lower, None).await.status, 200);

    let r = env.arm("GET", &db_url("Nope"), None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "ResourceNotFound");
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("'Microsoft.Sql/servers/sql-test/databases/Nope' under resource group 'rg-test' was not found"), "{msg}");

    let list = env.arm("GET", &format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Sql/servers/{SERVER}/databases?{SQL}"), None).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["value"].as_array().unwrap().len(), 2);

    // In-process inspection matches the HTTP one.
    let st = env.mock.state_json();
    let http_state = env.get_json("/_mock/state").await;
    assert_eq!(st["servers"], http_state["servers"]);
    env.mock.shutdown().await;
}

#[tokio::test]
async fn point_in_time_restore_end_to_end() {
    let env = start(SCENARIO).await;
    let source_id =
        env.arm("GET", &db_url("AxDB"), None).await.json()["properties"]["databaseId"].clone();

    let r = env
        .arm(
            "PUT",
            &db_url("AxDB_pitr_1"),
            Some(restore_body(&ago(Duration::days(3)))),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let async_url = r.header("azure-asyncoperation").unwrap();
    let location = r.header("location").unwrap();
    assert_eq!(r.header("retry-after").as_deref(), Some("0"));
    assert!(async_url.starts_with(&format!("{}/subscriptions/{SUB}/providers/Microsoft.Sql/locations/westeurope/databaseAzureAsyncOperation/", env.base)), "{async_url}");
    assert!(async_url.ends_with("?api-version=2023-08-01"));
    assert!(
        location
            .contains("/providers/Microsoft.Sql/locations/westeurope/databaseOperationResults/"),
        "{location}"
    );
    assert_eq!(r.json()["operation"], "CreateLogicalDatabase");
    assert!(r.json()["startTime"].is_string());

    // Visible at once, restoring, with a new databaseId.
    let t = env.arm("GET", &db_url("AxDB_pitr_1"), None).await.json();
    assert_eq!(t["properties"]["status"], "Restoring");
    assert_ne!(t["properties"]["databaseId"], source_id);

    let p1 = env.arm("GET", &async_url, None).await;
    assert_eq!(p1.status, 200);
    assert_eq!(p1.json()["status"], "InProgress");
    assert!(p1.json()["endTime"].is_null());
    let p2 = env.arm("GET", &async_url, None).await;
    assert_eq!(p2.status, 200);
    assert_eq!(p2.json()["status"], "Succeeded", "{}", p2.text);
    assert!(p2.json()["endTime"].is_string());
    assert_eq!(
        p2.json()["name"],
        async_url
            .split('/')
            .next_back()
            .unwrap()
            .split('?')
            .next()
            .unwrap()
    );

    let done = env.arm("GET", &db_url("AxDB_pitr_1"), None).await.json();
    assert_eq!(done["properties"]["status"], "Online");
    assert_eq!(
        done["properties"]["databaseId"],
        t["properties"]["databaseId"]
    );
    assert_eq!(
        done["properties"]["earliestRestoreDate"],
        done["properties"]["creationDate"]
    );
    assert_eq!(done["sku"]["capacity"], 8);

    // The Location URL of a finished restore answers the database.
    let loc = env.arm("GET", &location, None).await;
    assert_eq!(loc.status, 200);
    assert_eq!(loc.json()["name"], "AxDB_pitr_1");

    let st = env.mock.state_json();
    assert_eq!(
        state_db(&st, SERVER, "AxDB_pitr_1").unwrap()["content"],
        "orders=1350"
    );
    assert_eq!(
        state_db(&st, SERVER, "AxDB").unwrap()["content"],
        "orders=1410"
    );
    let op = &st["operations"][0];
    assert_eq!(op["kind"], "restore");
    assert_eq!(op["status"], "Succeeded");
    assert_eq!(
        op["polls"], 4,
        "one GET of the restoring database, two status polls and one Location GET"
    );

    // Before the first history entry there is no content yet.
    let r = env
        .arm(
            "PUT",
            &db_url("AxDB_pitr_2"),
            Some(restore_body(&ago(Duration::days(25)))),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let loc2 = r.header("location").unwrap();
    assert_eq!(env.arm("GET", &loc2, None).await.status, 202);
    assert_eq!(env.arm("GET", &loc2, None).await.status, 202);
    assert_eq!(env.arm("GET", &loc2, None).await.status, 200);
    let st = env.mock.state_json();
    assert_eq!(state_db(&st, SERVER, "AxDB_pitr_2").unwrap()["content"], "");
}

#[tokio::test]
async fn restore_validations() {
    let env = start(SCENARIO).await;
    let put = |db: &'static str, body: Value| {
        let env = &env;
        async move { env.arm("PUT", &db_url(db), Some(body)).await }
    };

    let r = put("T1", restore_body(&ago(Duration::days(40)))).await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidPointInTime"));
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("earliest restore point"), "{msg}");

    let future = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let r = put("T1", restore_body(&future)).await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidPointInTime"));

    let mut b = restore_body(&ago(Duration::days(1)));
    b["properties"]
        .as_object_mut()
        .unwrap()
        .remove("restorePointInTime");
    assert_eq!(put("T1", b).await.code(), "MissingRestorePointInTime");

    let mut b = restore_body(&ago(Duration::days(1)));
    b["properties"]
        .as_object_mut()
        .unwrap()
        .remove("sourceDatabaseId");
    assert_eq!(put("T1", b).await.code(), "MissingSourceDatabaseId");

    let mut b = restore_body(&ago(Duration::days(1)));
    b["properties"]["sourceDatabaseId"] = json!(db_path("Ghost"));
    let r = put("T1", b).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (404, "SourceDatabaseNotFound")
    );

    // A source on another server is not found either: restores stay on one server.
    let mut b = restore_body(&ago(Duration::days(1)));
    b["properties"]["sourceDatabaseId"] = json!(format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Sql/servers/sql-other/databases/Elsewhere"));
    assert_eq!(put("T1", b).await.code(), "SourceDatabaseNotFound");

    let mut b = restore_body(&ago(Duration::days(1)));
    b["properties"]["elasticPoolId"] = json!(
        "/subscriptions/x/resourceGroups/y/providers/Microsoft.Sql/servers/sql-test/elasticPools/p"
    );
    assert_eq!(
        put("T1", b).await.code(),
        "CannotSpecifyEditionOrSloWhenRestoringToPool"
    );

    let r = put("AxDW", restore_body(&ago(Duration::days(1)))).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "DatabaseAlreadyExists")
    );

    let mut b = restore_body(&ago(Duration::days(1)));
    b["properties"]["createMode"] = json!("Copy");
    assert_eq!(put("T1", b).await.code(), "InvalidCreateMode");

    let r = env
        .send(
            "PUT",
            &db_url("T1"),
            Some(&env.token),
            Some(("application/json", "{not json".into())),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "InvalidRequestContent")
    );

    // Nothing was created by the refused requests.
    assert_eq!(env.arm("GET", &db_url("T1"), None).await.status, 404);

    // Into a pool, without sku: accepted and reported in the pool.
    let mut b = restore_body(&ago(Duration::days(1)));
    b.as_object_mut().unwrap().remove("sku");
    b["properties"]["elasticPoolId"] = json!(
        "/subscriptions/x/resourceGroups/y/providers/Microsoft.Sql/servers/sql-test/elasticPools/p"
    );
    let r = put("InPool", b).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let v = env.arm("GET", &db_url("InPool"), None).await.json();
    assert_eq!(v["sku"]["name"], "ElasticPool");
    assert!(v["properties"]["elasticPoolId"]
        .as_str()
        .unwrap()
        .ends_with("/elasticPools/p"));
}

#[tokio::test]
async fn restore_headers_setting() {
    let env = start(&SCENARIO.replace(
        "restore_polls = 3",
        "restore_polls = 1\nrestore_headers = \"location_only\"",
    ))
    .await;
    let r = env
        .arm(
            "PUT",
            &db_url("AxDB_x"),
            Some(restore_body(&ago(Duration::days(1)))),
        )
        .await;
    assert_eq!(r.status, 202);
    assert!(r.header("azure-asyncoperation").is_none());
    let loc = r.header("location").unwrap();
    let done = env.arm("GET", &loc, None).await;
    assert_eq!(done.status, 200);
    assert_eq!(done.json()["properties"]["status"], "Online");
}

#[tokio::test]
async fn rename_and_name_in_use() {
    let env = start(SCENARIO).await;
    let id = env.arm("GET", &db_url("AxDB"), None).await.json()["properties"]["databaseId"].clone();
    let mv = |from: &'static str, target: String| {
        let env = &env;
        async move {
            env.arm(
                "POST",
                &format!("{}/move?{SQL}", db_path(from)),
                Some(json!({"id": target})),
            )
            .await
        }
    };

    let r = mv("AxDB", db_path("AxDB_before_1")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.is_empty());
    assert_eq!(env.arm("GET", &db_url("AxDB"), None).await.status, 404);
    let moved = env.arm("GET", &db_url("AxDB_before_1"), None).await.json();
    assert_eq!(moved["properties"]["databaseId"], id);
    assert_eq!(moved["id"], db_path("AxDB_before_1"));
    let st = env.mock.state_json();
    assert_eq!(
        state_db(&st, SERVER, "AxDB_before_1").unwrap()["content"],
        "orders=1410"
    );

    let r = mv("AxDW", db_path("AxDB_before_1")).await;
    assert_eq!((r.status, r.code().as_str()), (400, "DatabaseNameInUse"));
    let r = mv("Ghost", db_path("X")).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (404, "SourceDatabaseNotFound")
    );
    let r = mv("AxDW", "not-an-id".into()).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "InvalidMoveTargetResourceId")
    );
    let other = format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Sql/servers/sql-other/databases/X");
    let r = mv("AxDW", other).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "MismatchingServerNameWithUrl")
    );

    // A database still restoring cannot be renamed.
    let r = env.arm("PUT", &db_url("AxDB_pitr_1"), Some(json!({
        "location": "westeurope",
        "properties": {"createMode": "PointInTimeRestore", "sourceDatabaseId": db_path("AxDB_before_1"), "restorePointInTime": ago(Duration::days(1))}
    }))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let r = mv("AxDB_pitr_1", db_path("AxDB")).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "ConflictingDatabaseOperation")
    );
}

#[tokio::test]
async fn delete_database() {
    let env = start(SCENARIO).await;
    let r = env.arm("DELETE", &db_url("AxDW"), None).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert!(r.header("azure-asyncoperation").is_some());
    let loc = r.header("location").unwrap();
    assert_eq!(r.header("retry-after").as_deref(), Some("0"));
    // Still visible until the operation completes.
    assert_eq!(env.arm("GET", &db_url("AxDW"), None).await.status, 200);
    let done = env.arm("GET", &loc, None).await;
    assert_eq!(done.status, 200);
    assert!(done.text.is_empty());
    assert_eq!(env.arm("GET", &db_url("AxDW"), None).await.status, 404);
    assert_eq!(env.arm("DELETE", &db_url("AxDW"), None).await.status, 204);

    // Deleting a database that is still restoring cancels the restore.
    let r = env
        .arm(
            "PUT",
            &db_url("AxDB_pitr"),
            Some(restore_body(&ago(Duration::days(1)))),
        )
        .await;
    let restore_async = r.header("azure-asyncoperation").unwrap();
    let d = env.arm("DELETE", &db_url("AxDB_pitr"), None).await;
    assert_eq!(d.status, 202);
    let s = env.arm("GET", &restore_async, None).await.json();
    assert_eq!(s["status"], "Canceled", "{s}");
    assert_eq!(s["error"]["code"], "OperationCanceled");
    let del_async = d.header("azure-asyncoperation").unwrap();
    assert_eq!(
        env.arm("GET", &del_async, None).await.json()["status"],
        "Succeeded"
    );
    assert_eq!(env.arm("GET", &db_url("AxDB_pitr"), None).await.status, 404);
}

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
    assert!(stdout.trim_end().ends_with("pitr-exit-code: 0"), "{stdout}");

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
async fn run_command_sync_and_secret_redaction() {
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
    assert!(done.json()["value"][0]["message"]
        .as_str()
        .unwrap()
        .ends_with("pitr-exit-code: 0\n"));

    let db_id =
        env.arm("GET", &db_url("AxDB"), None).await.json()["properties"]["databaseId"].clone();
    let st = env.mock.state_json();
    let rc = &vm_state(&st, "vm-aos1")["run_commands"][0];
    assert_eq!(rc["kind"], "sync");
    assert_eq!(rc["synced_database_id"], db_id);
    assert_eq!(
        rc["parameters"][2],
        json!({"name": "SqlPwd", "value": "***"})
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
    assert!(v["value"][0]["message"]
        .as_str()
        .unwrap()
        .ends_with("pitr-exit-code: 1\n"));
    assert!(v["value"][1]["message"]
        .as_str()
        .unwrap()
        .contains("Cannot open database \"AxDB_gone\" requested by the login."));

    // Secrets never reach the journal: not the client secret, not the password.
    let journal = env.get_json("/_mock/requests").await.to_string();
    assert!(!journal.contains("hunter2"), "{journal}");
    assert!(!journal.contains("s3cr3t"), "{journal}");
    assert!(journal.contains("\"client_id\":\"app\""));
    let state = env.get_json("/_mock/state").await.to_string();
    assert!(!state.contains("hunter2"));
}

#[tokio::test]
async fn request_fault_429_once() {
    let env = start(SCENARIO).await;
    let faults = env
        .mock_post("/_mock/faults", json!({"method": "GET", "path_contains": "/databases/AxDB?", "status": 429, "retry_after": 7}))
        .await;
    assert_eq!(faults.as_array().unwrap().len(), 1);
    assert_eq!(faults[0]["remaining"], 1);

    let r = env.arm("GET", &db_url("AxDB"), None).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after").as_deref(), Some("7"));
    assert_eq!(r.code(), "TooManyRequests");
    let r = env.arm("GET", &db_url("AxDB"), None).await;
    assert_eq!(r.status, 200);

    let journal = env.get_json("/_mock/requests").await;
    let statuses: Vec<u64> = journal
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![200, 429, 200], "token, fault, retry");
    assert!(env
        .get_json("/_mock/faults")
        .await
        .as_array()
        .unwrap()
        .is_empty());

    // A dropped connection is an I/O error for the client, then things recover.
    env.mock_post(
        "/_mock/faults",
        json!({"path_contains": "AxDW", "drop_connection": true}),
    )
    .await;
    let err = env
        .http
        .get(format!("{}{}", env.base, db_url("AxDW")))
        .header("Authorization", format!("Bearer {}", env.token))
        .send()
        .await;
    assert!(err.is_err(), "expected a connection error");
    assert_eq!(env.arm("GET", &db_url("AxDW"), None).await.status, 200);

    // Clearing faults.
    env.mock_post("/_mock/faults", json!([{"status": 503, "times": 0}]))
        .await;
    assert_eq!(env.arm("GET", &db_url("AxDW"), None).await.status, 503);
    let r = env.send("DELETE", "/_mock/faults", None, None).await;
    assert_eq!(r.json(), json!([]));
    assert_eq!(env.arm("GET", &db_url("AxDW"), None).await.status, 200);

    // An invalid fault is refused with a reason.
    let r = env
        .send(
            "POST",
            "/_mock/faults",
            None,
            Some((
                "application/json",
                json!({"operation": "restore"}).to_string(),
            )),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("outcome"));
}

#[tokio::test]
async fn operation_fault_fails_restore() {
    let scenario = SCENARIO
        .replace("restore_polls = 3", "restore_polls = 2")
        .replace("run_command_polls = 3", "run_command_polls = 2");
    let env = start(&format!(
        "{scenario}\n[[faults]]\noperation = \"restore\"\noutcome = \"fail\"\nerror_code = \"RestoreFailedInTest\"\nmessage = \"The restore failed.\"\n"
    ))
    .await;
    let r = env
        .arm(
            "PUT",
            &db_url("AxDB_pitr"),
            Some(restore_body(&ago(Duration::days(1)))),
        )
        .await;
    assert_eq!(r.status, 202);
    let async_url = r.header("azure-asyncoperation").unwrap();
    let location = r.header("location").unwrap();
    assert_eq!(
        env.arm("GET", &async_url, None).await.json()["status"],
        "InProgress"
    );
    let s = env.arm("GET", &async_url, None).await;
    assert_eq!(
        s.status, 200,
        "status reads succeed even for a failed operation"
    );
    assert_eq!(s.json()["status"], "Failed");
    assert_eq!(
        s.json()["error"],
        json!({"code": "RestoreFailedInTest", "message": "The restore failed."})
    );
    let l = env.arm("GET", &location, None).await;
    assert_eq!((l.status, l.code().as_str()), (400, "RestoreFailedInTest"));
    assert_eq!(env.arm("GET", &db_url("AxDB_pitr"), None).await.status, 404);

    // Only once: the next restore succeeds.
    let r = env
        .arm(
            "PUT",
            &db_url("AxDB_pitr"),
            Some(restore_body(&ago(Duration::days(1)))),
        )
        .await;
    let a = r.header("azure-asyncoperation").unwrap();
    env.arm("GET", &a, None).await;
    assert_eq!(env.arm("GET", &a, None).await.json()["status"], "Succeeded");

    // A run command whose script exits non-zero.
    env.mock_post("/_mock/faults", json!({"operation": "run_command", "outcome": "exit_code", "exit_code": 3, "message": "boom", "script_contains": "Stop-Service"})).await;
    let r = env
        .arm(
            "POST",
            &vm_url("vm-aos2"),
            Some(run_body(&["Stop-Service -Name W3SVC"], json!([]))),
        )
        .await;
    let loc = r.header("location").unwrap();
    env.arm("GET", &loc, None).await;
    let v = env.arm("GET", &loc, None).await.json();
    assert!(v["value"][0]["message"]
        .as_str()
        .unwrap()
        .ends_with("pitr-exit-code: 3\n"));
    assert!(v["value"][1]["message"].as_str().unwrap().contains("boom"));
    let st = env.mock.state_json();
    let vm = vm_state(&st, "vm-aos2");
    assert_eq!(
        vm["services"]["W3SVC"], "Running",
        "a failed script changes nothing"
    );
    assert_eq!(vm["run_commands"][0]["exit_code"], 3);
}

#[tokio::test]
async fn hold_keeps_operations_in_progress() {
    let env = start(SCENARIO).await;
    assert_eq!(
        env.mock_post("/_mock/hold", json!({"operation": "restore", "hold": true}))
            .await,
        json!({"held": ["restore"]})
    );
    let r = env
        .arm(
            "PUT",
            &db_url("AxDB_pitr"),
            Some(restore_body(&ago(Duration::days(1)))),
        )
        .await;
    let a = r.header("azure-asyncoperation").unwrap();
    for _ in 0..5 {
        assert_eq!(
            env.arm("GET", &a, None).await.json()["status"],
            "InProgress"
        );
    }
    env.mock_post(
        "/_mock/hold",
        json!({"operation": "restore", "hold": false}),
    )
    .await;
    assert_eq!(env.arm("GET", &a, None).await.json()["status"], "Succeeded");
    assert_eq!(env.mock.state_json()["operations"][0]["polls"], 6);
}

#[tokio::test]
async fn authentication() {
    let env = start(SCENARIO).await;
    let r = env.send("GET", &db_url("AxDB"), None, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "AuthenticationFailed");
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer "));
    let r = env
        .send("GET", &db_url("AxDB"), Some("made-up"), None)
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "InvalidAuthenticationToken")
    );

    // The token endpoint speaks Entra's error shape.
    let r = env
        .send(
            "POST",
            "/t/oauth2/v2.0/token",
            None,
            Some((
                "application/x-www-form-urlencoded",
                "grant_type=client_credentials&client_secret=x&scope=s".into(),
            )),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_request");
    assert!(r.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("client_id"));

    let oidc = env
        .get_json("/my-tenant/v2.0/.well-known/openid-configuration")
        .await;
    assert_eq!(
        oidc["token_endpoint"],
        format!("{}/my-tenant/oauth2/v2.0/token", env.base)
    );
    assert_eq!(oidc["issuer"], format!("{}/my-tenant/v2.0", env.base));
    assert!(oidc["jwks_uri"].is_string());
    assert!(oidc["authorization_endpoint"].is_string());

    // Expired tokens.
    let short =
        start(&SCENARIO.replace("[settings]", "[settings]\ntoken_expires_in_secs = 0")).await;
    let r = short.arm("GET", &db_url("AxDB"), None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "ExpiredAuthenticationToken")
    );
}

#[tokio::test]
async fn api_version_is_required() {
    let env = start(SCENARIO).await;
    let r = env.arm("GET", &db_path("AxDB"), None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "MissingApiVersionParameter")
    );
    let r = env
        .arm(
            "GET",
            &format!("{}?api-version=2021-11-01", db_path("AxDB")),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "InvalidApiVersionParameter")
    );
    let r = env
        .arm(
            "POST",
            &vm_url("vm-aos1").replace(COMPUTE, SQL),
            Some(run_body(&["x"], json!([]))),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "InvalidApiVersionParameter")
    );
}

#[tokio::test]
async fn azure_identity_credential_gets_a_token() {
    use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
    use azure_core::credentials::{Secret, TokenCredential};
    use azure_core::http::{ClientOptions, Transport};
    use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};

    let env = start(SCENARIO).await;
    let mut custom = CustomConfiguration::default();
    custom.authority_host = env.base.clone();
    let options = ClientSecretCredentialOptions {
        client_options: ClientOptions {
            transport: Some(Transport::new(Arc::new(env.http.clone()))),
            cloud: Some(Arc::new(CloudConfiguration::Custom(custom))),
            ..Default::default()
        },
    };
    let cred = ClientSecretCredential::new(
        "tenant-1",
        "app-id".into(),
        Secret::new("shh-secret"),
        Some(options),
    )
    .unwrap();
    let token = cred
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .unwrap();
    let r = env
        .send("GET", &db_url("AxDB"), Some(token.token.secret()), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!env
        .get_json("/_mock/requests")
        .await
        .to_string()
        .contains("shh-secret"));
}
