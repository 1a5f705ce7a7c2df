//! The service as its users meet it: the real `pitr serve` on an ephemeral
//! port, the real `pitr mock-azure` standing in for Azure and for Entra ID
//! (it issues the signed access tokens), on SQLite or PostgreSQL.
mod bench;
mod matrix;
mod notifications;
mod openapi;
mod operator;
mod story;

use crate::helpers::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};

pub const AUDIENCE: &str = "api://pitr";
pub const TENANT: &str = "test-tenant";

/// The people (and an application) of the mock tenant.
pub const USERS: &str = r#"
[[users]]
name = "viewer"
preferred_username = "vera@contoso.com"
roles = ["Pitr.Viewer"]

[[users]]
name = "requester"
preferred_username = "rita@contoso.com"
roles = ["Pitr.Requester"]
groups = ["g-uat-testers"]

[[users]]
name = "outsider"
preferred_username = "omar@contoso.com"
roles = ["Pitr.Requester"]
groups = ["g-other"]

[[users]]
name = "operator"
preferred_username = "olga@contoso.com"
roles = ["Pitr.Operator"]

[[users]]
name = "robot"
oid = "11111111-2222-3333-4444-555555555555"
app_id = "99999999-0000-0000-0000-000000000001"
roles = ["Pitr.Viewer"]
"#;

/// A second `pitr serve` process; killed when dropped.
pub struct Runner {
    child: Child,
    pub base: String,
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which store the service uses.
pub enum Backend {
    Sqlite,
    Postgres(PgDatabase),
}

pub struct Service {
    pub env: TestEnv,
    pub base: String,
    pub http: reqwest::Client,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    store_url: Option<String>,
    /// Dropped after the service has stopped (fields drop after `drop`).
    _backend: Backend,
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Service {
    /// `pitr serve` with Entra auth against the mock's tenant; `extra` adds
    /// config (e.g. `[[notifications]]`), `envs` environment variables.
    pub async fn start(backend: Backend, extra: &str, envs: &[(&str, &str)]) -> Service {
        Self::start_with(backend, "", "", extra, envs).await
    }

    /// As [`Service::start`], with more `[serve]` keys and `[auth]` keys
    /// (the web page's `client_id`, ...).
    pub async fn start_with(
        backend: Backend,
        serve: &str,
        auth: &str,
        extra: &str,
        envs: &[(&str, &str)],
    ) -> Service {
        Self::start_full(backend, serve, auth, extra, "", envs).await
    }

    /// As [`Service::start_with`], with more keys on the `uat` environment.
    pub async fn start_full(
        backend: Backend,
        serve: &str,
        auth: &str,
        extra: &str,
        environment: &str,
        envs: &[(&str, &str)],
    ) -> Service {
        // `auth` may name another mode; else Entra ID with the mock's tenant.
        let auth = if auth.contains("mode = ") {
            auth.to_string()
        } else {
            format!("mode = \"entra\"\ntenant_id = \"{TENANT}\"\naudience = \"{AUDIENCE}\"\n{auth}")
        };
        let env = TestEnv::start_custom(
            &format!("{}\n{USERS}", scenario("restore_polls = 1")),
            &format!(
                "[serve]\nlisten = \"127.0.0.1:0\"\n{serve}\n\n[auth]\n{auth}\n\n[engine]\nscheduler_tick_secs = 3600\n\n{extra}"
            ),
            &format!("requester_groups = [\"g-uat-testers\"]\nsql_password_env = \"PITR_TEST_SQL_PASSWORD\"\n{environment}"),
        );
        let store_url = match &backend {
            Backend::Sqlite => None,
            Backend::Postgres(db) => Some(db.url.clone()),
        };
        let mut svc = Service {
            env,
            base: String::new(),
            http: reqwest::Client::new(),
            child: None,
            log: Arc::new(Mutex::new(Vec::new())),
            store_url,
            _backend: backend,
        };
        svc.spawn(envs);
        svc
    }

    fn spawn(&mut self, envs: &[(&str, &str)]) {
        let (child, base) = self.spawn_process(envs, self.log.clone());
        self.base = base;
        self.child = Some(child);
    }

    /// Another `pitr serve` on the same config and store (runners sharing
    /// a PostgreSQL store): the process and its base URL.
    pub fn another_runner(&self, envs: &[(&str, &str)]) -> Runner {
        let (child, base) = self.spawn_process(envs, Arc::new(Mutex::new(Vec::new())));
        Runner { child, base }
    }

    fn spawn_process(
        &self,
        envs: &[(&str, &str)],
        log: Arc<Mutex<Vec<String>>>,
    ) -> (Child, String) {
        let mut cmd = self.env.command(&["serve"]);
        if let Some(url) = &self.store_url {
            cmd.env("PITR_STORE_URL", url);
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn pitr serve");
        let stderr = child.stderr.take().expect("serve stderr");
        let mut lines = BufReader::new(stderr).lines();
        let mut base = None;
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            let line = line.expect("read serve output");
            seen.push(line.clone());
            if let Some(rest) = line.strip_prefix("pitr serve: API listening on ") {
                base = rest.split(';').next().map(|s| s.trim().to_string());
                break;
            }
        }
        let base =
            base.unwrap_or_else(|| panic!("pitr serve printed no address:\n{}", seen.join("\n")));
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                log.lock().unwrap().push(line);
            }
        });
        (child, base)
    }

    /// `pitr ARGS` on the service's store (as an operator's CLI would be).
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut cmd = self.env.command(args);
        if let Some(url) = &self.store_url {
            cmd.env("PITR_STORE_URL", url);
        }
        let out = cmd.output().expect("run pitr");
        assert!(
            out.status.success(),
            "pitr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    /// The process id of `pitr serve`.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The lines `pitr serve` logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Stops the service with SIGTERM and waits for it; true when it
    /// exited 0.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// A signed access token of a scenario user, minted by the mock.
    pub async fn token(&self, user: &str) -> String {
        self.token_with(json!({"user": user, "audience": AUDIENCE, "tenant": TENANT}))
            .await
    }

    pub async fn token_with(&self, body: Value) -> String {
        self.env.post("/_mock/token", body).await["access_token"]
            .as_str()
            .expect("a token")
            .to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A call with an optional bearer token and JSON body: (status, body).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut rb = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            self.url(path),
        );
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("the service answers");
        let status = r.status().as_u16();
        let is_stream = r
            .headers()
            .get("content-type")
            .is_some_and(|c| c.to_str().unwrap_or("").starts_with("text/event-stream"));
        if is_stream {
            return (status, Value::Null);
        }
        let text = r.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A request body for `uat`, restoring to 3 hours ago, with a window two
    /// days ahead (or `soon`: in an hour).
    pub fn new_request(soon: bool) -> Value {
        let now = chrono::Utc::now();
        let start = if soon {
            now + chrono::Duration::minutes(10)
        } else {
            now + chrono::Duration::days(2)
        };
        json!({
            "environment": "uat",
            "database": "AxDB",
            "restore_point": (now - chrono::Duration::hours(3)).to_rfc3339(),
            "window_start": start.to_rfc3339(),
            "window_end": (start + chrono::Duration::hours(2)).to_rfc3339(),
            "acknowledgements": {"erase": true, "downtime": true, "scope": true},
            "reason": "retest after fixes",
        })
    }
}

/// Reads Server-Sent Events from a response until `until` says stop or
/// the stream ends (bounded by `limit`): (event, data) pairs.
pub async fn read_events(
    resp: reqwest::Response,
    limit: std::time::Duration,
) -> Vec<(String, Value)> {
    let mut resp = resp;
    let mut out = Vec::new();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let next = tokio::time::timeout_at(deadline, resp.chunk()).await;
        let Ok(Ok(Some(chunk))) = next else { break };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut name = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if data.is_empty() {
                continue;
            }
            out.push((
                name,
                serde_json::from_str(&data).unwrap_or(Value::String(data)),
            ));
        }
    }
    out
}
