//! The mock Azure over real HTTPS: a reqwest client that trusts only the CA
//! the mock wrote, and the real `azure_identity` credential for the token.
//! Completion is count-based (polls), so nothing here sleeps to win a race,
//! and every test has its own port and temp dir so they run in parallel.

use chrono::{Duration, SecondsFormat, Utc};
use pitr::mock::{MockAzure, Scenario};
use serde_json::{json, Value};

mod alter;
mod backup;
mod databases;
mod managed;
mod misc;
mod python_sdk;
mod run_command;
mod scripts;

pub(super) const SUB: &str = "00000000-0000-0000-0000-000000000001";
pub(super) const RG: &str = "rg-test";
pub(super) const SERVER: &str = "sql-test";
pub(super) const SQL: &str = "api-version=2023-08-01";
pub(super) const COMPUTE: &str = "api-version=2024-07-01";

pub(super) const SCENARIO: &str = r#"
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

pub(super) struct Env {
    pub(super) mock: MockAzure,
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    pub(super) token: String,
    _dir: tempfile::TempDir,
}

pub(super) struct Resp {
    pub(super) status: u16,
    pub(super) headers: reqwest::header::HeaderMap,
    pub(super) text: String,
}

impl Resp {
    pub(super) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
    pub(super) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    pub(super) fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

pub(super) async fn start(toml: &str) -> Env {
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
    pub(super) async fn fetch_token(&self) -> String {
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

    pub(super) async fn send(
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

    pub(super) async fn arm(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.send(
            method,
            path,
            Some(&self.token),
            body.map(|b| ("application/json", b.to_string())),
        )
        .await
    }

    /// POST to a `/_mock/` endpoint, expecting 200.
    pub(super) async fn mock_post(&self, path: &str, body: Value) -> Value {
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

    pub(super) async fn get_json(&self, path: &str) -> Value {
        self.send("GET", path, None, None).await.json()
    }
}

pub(super) fn db_path(db: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Sql/servers/{SERVER}/databases/{db}")
}

pub(super) fn db_url(db: &str) -> String {
    format!("{}?{SQL}", db_path(db))
}

pub(super) fn vm_url(vm: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/{vm}/runCommand?{COMPUTE}")
}

pub(super) fn ago(d: Duration) -> String {
    (Utc::now() - d).to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(super) fn restore_body(point: &str) -> Value {
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

pub(super) fn run_body(lines: &[&str], params: Value) -> Value {
    json!({"commandId": "RunPowerShellScript", "script": lines, "parameters": params})
}

pub(super) fn state_db<'a>(state: &'a Value, server: &str, db: &str) -> Option<&'a Value> {
    state["servers"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == server)?["databases"]
        .as_array()?
        .iter()
        .find(|d| d["name"] == db)
}

pub(super) fn vm_state<'a>(state: &'a Value, vm: &str) -> &'a Value {
    state["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == vm)
        .unwrap()
}
