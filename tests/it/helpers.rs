//! Shared start-up for the integration tests, in two forms:
//! - [`TestEnv`]: a real `pitr mock-azure` process on an ephemeral port with
//!   its own CA, a fresh SQLite store and a config pointing at both, and the
//!   `pitr` binary driven as a user would;
//! - [`InProcess`] (`in_process.rs`): the library's `App` with an embedded
//!   mock Azure, a fresh store and a manual clock, for stories that move time.
pub use crate::in_process::InProcess;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

pub const PITR: &str = env!("CARGO_BIN_EXE_pitr");
pub const SUB: &str = "00000000-0000-0000-0000-00000000aaaa";
pub const RG: &str = "rg-uat";
pub const SERVER: &str = "sql-uat";

/// The scenario every test starts from; `settings` and `faults` TOML is
/// appended by the test.
pub fn scenario(settings: &str) -> String {
    format!(
        r#"
[settings]
{settings}

[[servers]]
subscription_id = "{SUB}"
resource_group = "{RG}"
name = "{SERVER}"
location = "westeurope"

[[servers.databases]]
name = "AxDB"
earliest_restore = "-7d"
created = "-60d"
sku = {{ name = "GP_Gen5", tier = "GeneralPurpose", family = "Gen5", capacity = 4 }}
# Not Azure's defaults for a restored database (12 hours, no long-term
# copies): every run carries them over.
diff_backup_hours = 24
long_term_retention = {{ weekly = "P4W", monthly = "P6M" }}
advanced_threat_protection = "Enabled"
history = [
  {{ at = "-30d", content = "v1 before test cycle" }},
  {{ at = "-3d", content = "v2 after test cycle 1" }},
  {{ at = "-1h", content = "v3 after destructive tests" }},
]

[[vms]]
subscription_id = "{SUB}"
resource_group = "{RG}"
name = "aos1"
location = "westeurope"
services = ["W3SVC", "DynamicsAxBatch", "Microsoft.Dynamics.AX.Framework.Tools.DMF.SSISHelperService.exe"]
aos = {{ server = "{SERVER}.database.windows.net", database = "AxDB", sql_user = "axdbadmin", sql_password = "aos-own-test-value" }}

[[vms]]
subscription_id = "{SUB}"
resource_group = "{RG}"
name = "aos2"
location = "westeurope"
services = ["W3SVC", "DynamicsAxBatch"]
aos = {{ server = "{SERVER}.database.windows.net", database = "AxDB", sql_user = "axdbadmin", sql_password = "aos-own-test-value" }}

[[vms]]
subscription_id = "{SUB}"
resource_group = "{RG}"
name = "bi"
location = "westeurope"
services = ["MR2012ProcessService"]
"#
    )
}

/// An `[[environments]]` entry for the in-process tests: a sandbox `name` in
/// subscription `sub`, its own resource group, server and one AOS VM.
pub fn sandbox_environment(name: &str, sub: &str) -> String {
    let vm = format!("/subscriptions/{sub}/resourceGroups/rg-{name}/providers/Microsoft.Compute/virtualMachines/aos-{name}");
    format!(
        r#"
[[environments]]
name = "{name}"
tier = "sandbox"
database_kind = "azure_sql"
subscription_id = "{sub}"
resource_group = "rg-{name}"
server = "sql-{name}"
location = "westeurope"
database = "AxDB"
sql_password_env = "PITR_TEST_SQL_PASSWORD"
aos_vms = ["{vm}"]
sync_vm = "{vm}"
mr_vm = "{vm}"
"#
    )
}

pub fn vm(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/{name}")
}

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub config: PathBuf,
    mock: Child,
    http: reqwest::Client,
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let _ = self.mock.kill();
        let _ = self.mock.wait();
    }
}

impl TestEnv {
    /// Starts `pitr mock-azure` with `scenario_toml` and writes a config.
    pub fn start(scenario_toml: &str) -> TestEnv {
        Self::start_with(scenario_toml, "")
    }

    pub fn start_with(scenario_toml: &str, extra_config: &str) -> TestEnv {
        Self::start_custom(scenario_toml, extra_config, "")
    }

    /// Also with `uat_extra` lines in the `uat` environment.
    pub fn start_custom(scenario_toml: &str, extra_config: &str, uat_extra: &str) -> TestEnv {
        Self::start_config(scenario_toml, |url, ca, store| {
            let extra_config = bounded(extra_config);
            format!(
                r#"
[store]
url = "sqlite://{store}"

[azure]
arm_endpoint = "{url}"
authority_host = "{url}"
ca_file = "{ca}"
credential = "client_secret"
tenant_id = "test-tenant"
client_id = "test-client"
client_secret_env = "PITR_TEST_CLIENT_SECRET"
min_poll_interval_ms = 50
max_poll_interval_ms = 200
retry_min_delay_ms = 10
retry_max_delay_ms = 100
request_timeout_secs = 10

{extra_config}

[[environments]]
name = "uat"
tier = "sandbox"
database_kind = "azure_sql"
subscription_id = "{SUB}"
resource_group = "{RG}"
server = "{SERVER}"
location = "westeurope"
database = "AxDB"
entity_store_database = "AxDW"
mr_database = "MRDB"
{uat_extra}
aos_vms = ["{aos1}", "{aos2}"]
sync_vm = "{aos1}"
mr_vm = "{bi}"

[[environments]]
name = "prod"
tier = "production"
database_kind = "azure_sql"
subscription_id = "{SUB}"
resource_group = "{RG}"
server = "{SERVER}"
location = "westeurope"
database = "AxDB"
actions = "none"
"#,
                store = store.display(),
                ca = ca.display(),
                aos1 = vm("aos1"),
                aos2 = vm("aos2"),
                bi = vm("bi"),
            )
        })
    }

    /// Starts `pitr mock-azure` with `scenario_toml`; `config(url, ca, store)`
    /// writes the whole config (the mock's URL, its CA file, a SQLite path).
    pub fn start_config(
        scenario_toml: &str,
        config: impl FnOnce(&str, &std::path::Path, &std::path::Path) -> String,
    ) -> TestEnv {
        let dir = tempfile::tempdir().expect("tempdir");
        let scen = dir.path().join("scenario.toml");
        std::fs::write(&scen, scenario_toml).expect("write scenario");
        let ca = dir.path().join("ca.pem");
        let mut mock = Command::new(PITR)
            .args(["mock-azure", "--listen", "127.0.0.1:0", "--scenario"])
            .arg(&scen)
            .arg("--ca-out")
            .arg(&ca)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn mock-azure");
        let stdout = mock.stdout.take().expect("mock stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut url = None;
        for line in lines.by_ref() {
            let line = line.expect("read mock output");
            if let Some(rest) = line.strip_prefix("mock Azure listening on ") {
                url = Some(rest.trim().to_string());
                break;
            }
        }
        let url = url.expect("mock-azure printed its URL");
        // Keep draining so the mock never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let config_path = dir.path().join("pitr.toml");
        let store = dir.path().join("pitr.db");
        std::fs::write(&config_path, config(&url, &ca, &store)).expect("write config");

        let pem = std::fs::read(&ca).expect("mock wrote its CA");
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA pem"))
            .build()
            .expect("http client");
        let env = TestEnv {
            dir,
            url,
            config: config_path,
            mock,
            http,
        };
        // The store is made on purpose, as an operator does once.
        env.ok(&["store", "init"]);
        env
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(PITR);
        c.args(args)
            .env("PITR_CONFIG", &self.config)
            .env("PITR_TEST_CLIENT_SECRET", "test-only-not-a-secret")
            .env("PITR_TEST_SQL_PASSWORD", "sql-test-only-value")
            .env("PITR_ACTOR", "tester")
            .env_remove("PITR_LOG")
            .current_dir(self.dir.path());
        c
    }

    /// Runs `pitr ARGS` to completion.
    pub fn pitr(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run pitr")
    }

    /// Runs `pitr ARGS`, asserting exit code 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.pitr(args);
        assert!(
            out.status.success(),
            "pitr {args:?} failed ({:?}):\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let s = self.ok(args);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("pitr {args:?}: not JSON ({e}): {s}"))
    }

    /// Submits and accepts a request restoring AxDB of `uat` to `point`.
    pub fn submit_accepted(&self, point: &str) -> String {
        let id = self.submit(point);
        self.ok(&["request", "accept", &id]);
        id
    }

    pub fn submit(&self, point: &str) -> String {
        let now = chrono::Utc::now();
        let start = (now + chrono::Duration::days(2)).to_rfc3339();
        let end = (now + chrono::Duration::days(2) + chrono::Duration::hours(2)).to_rfc3339();
        let mut args = submit_args(point, &start, &end);
        args.extend(["--reason", "retest after fixes"]);
        self.ok(&args).trim().to_string()
    }

    pub async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("mock answers")
            .json()
            .await
            .expect("mock JSON")
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .expect("mock answers");
        assert!(r.status().is_success(), "POST {path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    pub async fn state(&self) -> Value {
        self.get("/_mock/state").await
    }

    pub async fn journal(&self) -> Vec<Value> {
        self.get("/_mock/requests")
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until a client has polled the restore operation once.
    pub async fn wait_for_restore_poll(&self) {
        // Bounded, and wide enough for a loaded machine.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if !requests(&self.journal().await, "GET", "databaseAzureAsyncOperation").is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the restore was never polled");
    }

    /// Holds (or releases) the mock's operations of a kind in progress.
    pub async fn hold(&self, operation: &str, hold: bool) {
        self.post(
            "/_mock/hold",
            serde_json::json!({"operation": operation, "hold": hold}),
        )
        .await;
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
}

/// The test's `[engine]` keys with a restore bounded to five minutes unless
/// the test sets its own: a test whose mock holds a restore never waits for
/// the 12-hour default.
fn bounded(extra_config: &str) -> String {
    if extra_config.contains("restore_timeout_secs") {
        return extra_config.to_string();
    }
    let bound = "restore_timeout_secs = 300\n";
    match extra_config.find("[engine]\n") {
        Some(at) => {
            let at = at + "[engine]\n".len();
            format!("{}{bound}{}", &extra_config[..at], &extra_config[at..])
        }
        None => format!("[engine]\n{bound}{extra_config}"),
    }
}

/// `pitr request submit` of AxDB for `uat` with the three acknowledgements;
/// a test appends what it needs (or removes an acknowledgement).
pub fn submit_args<'a>(point: &'a str, window_start: &'a str, window_end: &'a str) -> Vec<&'a str> {
    vec![
        "request",
        "submit",
        "--env",
        "uat",
        "--database",
        "AxDB",
        "--restore-point",
        point,
        "--window-start",
        window_start,
        "--window-end",
        window_end,
        "--ack-erase",
        "--ack-downtime",
        "--ack-scope",
    ]
}

/// A step of `request show --json` by name.
pub fn step<'a>(show: &'a Value, name: &str) -> &'a Value {
    show["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["name"] == name))
        .unwrap_or_else(|| panic!("step {name} in {show}"))
}

/// Every service on every VM of the mock is running.
pub fn all_running(state: &Value) -> bool {
    state["vms"].as_array().is_some_and(|vms| {
        vms.iter().all(|vm| {
            vm["services"]
                .as_object()
                .is_some_and(|s| s.values().all(|v| v == "Running"))
        })
    })
}

/// The databases of the test server, by name.
pub fn databases(state: &Value) -> std::collections::HashMap<String, Value> {
    state["servers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["name"] == SERVER)
        .flat_map(|s| s["databases"].as_array().cloned().unwrap_or_default())
        .map(|d| (d["name"].as_str().unwrap_or_default().to_string(), d))
        .collect()
}

/// The journal paths whose bodies carry `secret`, as sent or inside an
/// encoded `PitrArgs`/`PitrSecrets` parameter.
pub fn wire_holders(journal: &[Value], secret: &str) -> Vec<String> {
    journal
        .iter()
        .filter(|e| {
            let body = e["body"].to_string();
            body.contains(secret)
                || decoded_parameters(&e["body"])
                    .iter()
                    .any(|v| v.contains(secret))
        })
        .map(|e| e["path"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The decoded values of a Run Command body's encoded parameters, plain
/// and protected.
pub fn decoded_parameters(body: &Value) -> Vec<String> {
    let props = &body["properties"];
    ["parameters", "protectedParameters"]
        .iter()
        .flat_map(|k| props[*k].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["value"].as_str().map(str::to_string))
        .filter_map(|v| pitr::engine::actions::decode(&v))
        .flat_map(|m| m.into_values())
        .collect()
}

/// Journal entries matching a method and a path fragment.
pub fn requests<'a>(journal: &'a [Value], method: &str, fragment: &str) -> Vec<&'a Value> {
    journal
        .iter()
        .filter(|e| e["method"] == method && e["path"].as_str().unwrap_or("").contains(fragment))
        .collect()
}

/// Every point-in-time restore PUT, whatever its answer.
pub fn restore_put_requests(journal: &[Value]) -> Vec<&Value> {
    journal
        .iter()
        .filter(|e| {
            e["method"] == "PUT" && e["body"]["properties"]["createMode"] == "PointInTimeRestore"
        })
        .collect()
}

pub fn restore_puts(journal: &[Value]) -> usize {
    restore_put_requests(journal).len()
}

/// Restore PUTs that Azure accepted (a throttled attempt created nothing).
pub fn accepted_restore_puts(journal: &[Value]) -> usize {
    journal
        .iter()
        .filter(|e| {
            e["method"] == "PUT"
                && e["body"]["properties"]["createMode"] == "PointInTimeRestore"
                && e["status"]
                    .as_u64()
                    .is_some_and(|s| (200..300).contains(&s))
        })
        .count()
}

pub fn rfc3339_ago(d: chrono::Duration) -> String {
    (chrono::Utc::now() - d).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Where the PostgreSQL tests connect to create their databases:
/// `PITR_TEST_POSTGRES_URL`, by default the local server (trust auth).
pub fn postgres_base_url() -> String {
    std::env::var("PITR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A database of its own for one test (`pitr_test_<random>`), dropped with
/// the guard, so that runs never see each other. PostgreSQL must be
/// reachable: a test fails, never skips, when it is not.
pub struct PgDatabase {
    /// The database's URL (the base URL with the database replaced).
    pub url: String,
    pub name: String,
}

impl PgDatabase {
    pub async fn create() -> PgDatabase {
        let name = format!(
            "pitr_test_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        );
        let admin = pg_admin().await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("creating the test database {name}: {e}"));
        let mut url = url::Url::parse(&postgres_base_url()).expect("PITR_TEST_POSTGRES_URL");
        url.set_path(&name);
        PgDatabase {
            url: url.to_string(),
            name,
        }
    }

    /// A plain client on this database, for what the `Store` trait cannot
    /// do (corrupt a value, read the schema version).
    pub async fn client(&self) -> tokio_postgres::Client {
        pg_connect(&self.url).await
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop cannot await: a thread with its own runtime does the DROP
        // (WITH (FORCE) ends the stores' pooled connections first).
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            rt.block_on(async {
                pg_admin()
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

async fn pg_admin() -> tokio_postgres::Client {
    pg_connect(&postgres_base_url()).await
}

async fn pg_connect(url: &str) -> tokio_postgres::Client {
    let shown = pitr::store::redact_url(url);
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {shown}: {e}. The PostgreSQL store tests need it: \
                 start it (`.ci/run` does: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) \
                 or point PITR_TEST_POSTGRES_URL at a server where this user may create databases"
            )
        });
    tokio::spawn(connection);
    client
}
