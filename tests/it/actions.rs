//! Environment actions as a real environment has them: managed Run
//! Commands that may run for hours and report their own exit code, no SQL
//! password in pitr, retention looked ahead, and the `manual` and `webhook`
//! kinds for environments where Run Command is not allowed.
use crate::helpers::*;
use chrono::Duration;
use serde_json::Value;

fn window(days: i64, hours: i64) -> (String, String) {
    let start = chrono::Utc::now() + Duration::days(days) + Duration::hours(hours);
    (
        start.to_rfc3339(),
        (start + Duration::hours(3)).to_rfc3339(),
    )
}

/// The sync's Run Command PUT in the journal.
fn sync_put(journal: &[Value]) -> Value {
    journal
        .iter()
        .find(|e| {
            e["method"] == "PUT"
                && e["path"].as_str().unwrap_or("").contains("/runCommands/")
                && e["body"]["properties"]["source"]["script"]
                    .to_string()
                    .contains("Deployment.Setup.exe")
        })
        .cloned()
        .expect("a sync run command")
}

/// A sync that runs four hours (simulated): the action Run Command would
/// fail at 90 minutes; the managed one, with the sync's six-hour timeout,
/// completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_longer_than_ninety_minutes_completes() {
    let t = TestEnv::start(&scenario(
        "restore_polls = 1\n[settings.script_seconds]\nsync = 14400",
    ));
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    t.ok(&["run", &id]);
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "succeeded");
    let put = sync_put(&t.journal().await);
    assert_eq!(put["body"]["properties"]["timeoutInSeconds"], 21600);
    assert_eq!(put["body"]["properties"]["asyncExecution"], false);
}

/// The exit code comes from the instance view: a sync that exits 3 fails
/// the step naming code 3, and the swap is rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_that_exits_3_fails_its_step_with_code_3() {
    let t = TestEnv::start(&format!(
        "{}\n[[faults]]\noperation = \"run_command\"\noutcome = \"exit_code\"\nscript_contains = \"Deployment.Setup.exe\"\nexit_code = 3\nmessage = \"table XYZ could not be synchronized\"\ntimes = 1\n",
        scenario("restore_polls = 1")
    ));
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    let out = t.pitr(&["run", &id]);
    assert_eq!(out.status.code(), Some(1));
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "rolled_back");
    let error = step(&show, "sync")["error"].as_str().unwrap().to_string();
    assert!(error.contains("exited with code 3"), "{error}");
    assert!(error.contains("table XYZ"), "{error}");
}

/// A script that outlives its `timeoutInSeconds` ends TimedOut in Azure,
/// and the step says which timeout and how to raise it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_script_fails_its_step_naming_the_timeout() {
    let t = TestEnv::start_with(
        &scenario("restore_polls = 1\n[settings.script_seconds]\nsync = 14400"),
        "[engine.timeouts]\nsync_secs = 3600\n",
    );
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    assert_eq!(t.pitr(&["run", &id]).status.code(), Some(1));
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "rolled_back");
    let error = step(&show, "sync")["error"].as_str().unwrap().to_string();
    assert!(error.contains("timeout of 3600s"), "{error}");
    assert!(error.contains("[engine.timeouts]"), "{error}");
}

/// An environment that still names `sql_password_env`: the password
/// travels only inside the protected parameters, nowhere else on the wire,
/// and never reaches the store or the logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_sql_password_travels_only_as_a_protected_parameter() {
    let t = TestEnv::start_custom(
        &scenario("restore_polls = 1"),
        "",
        "sql_password_env = \"PITR_TEST_SQL_PASSWORD\"",
    );
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    let out = t
        .command(&["run", &id])
        .env("PITR_LOG", "debug")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = "sql-test-only-value";
    let journal = t.journal().await;
    let put = sync_put(&journal);
    assert_eq!(
        wire_holders(&journal, secret),
        [put["path"].as_str().unwrap()]
    );
    let protected: Vec<String> = put["body"]["properties"]["protectedParameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| pitr::engine::actions::decode(p["value"].as_str()?))
        .flat_map(|m| m.into_values())
        .collect();
    assert!(protected.iter().any(|v| v == secret));
    assert!(!put["body"]["properties"]["parameters"]
        .to_string()
        .contains(secret));
    assert!(!put["body"]["properties"]["source"]
        .to_string()
        .contains(secret));
    let plain: Vec<String> = put["body"]["properties"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| pitr::engine::actions::decode(p["value"].as_str()?))
        .flat_map(|m| m.into_values())
        .collect();
    assert!(!plain.iter().any(|v| v.contains(secret)));
    // Neither in the logs nor in the store.
    assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(secret));
    for file in std::fs::read_dir(t.dir.path()).unwrap() {
        let path = file.unwrap().path();
        if path.to_string_lossy().contains("pitr.db") {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds the password",
                path.display()
            );
        }
    }
}

/// Retention is looked ahead with Azure's own policy (7 days here): a
/// restore point 6 days old cannot wait for a window in 2 days.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_point_that_falls_out_of_retention_before_its_window_is_refused() {
    let t = TestEnv::start(&scenario(""));
    // Six days old (less two hours): restorable until a day and two hours from now.
    let point = rfc3339_ago(Duration::days(6) - Duration::hours(2));
    let (ws, we) = window(2, 0);
    let out = t.pitr(&submit_args(&point, &ws, &we));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rule retention-at-window"), "{err}");
    assert!(err.contains("7-day retention"), "{err}");
    assert!(err.contains("no later than"), "{err}");
    let (ws, we) = window(1, 1);
    t.ok(&submit_args(&point, &ws, &we));
}

/// An accepted request whose restore point will be gone at its window
/// (retention shortened in Azure after acceptance) is flagged by the
/// scheduler's next pass, shown by `request show` and `list` and in the
/// audit trail, long before its window; a reschedule that fixes it clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shortening_retention_after_acceptance_flags_the_request() {
    let t = TestEnv::start_with(
        &scenario(""),
        "[serve]\nlisten = \"127.0.0.1:0\"\n[auth]\nmode = \"none\"\n[engine]\nscheduler_tick_secs = 1\n",
    );
    let point = rfc3339_ago(Duration::days(5) - Duration::hours(2));
    let (ws, we) = window(1, 1);
    let id = t.ok(&submit_args(&point, &ws, &we)).trim().to_string();
    t.ok(&["request", "accept", &id]);
    assert_eq!(
        t.json(&["request", "show", &id, "--json"])["warning"],
        Value::Null
    );
    // Five days of retention: the point is restorable now, not in 25 hours.
    t.post(
        "/_mock/retention",
        serde_json::json!({"server": "sql-uat", "database": "AxDB", "days": 5}),
    )
    .await;
    let serve = t.command(&["serve"]).spawn().unwrap();
    let mut warning = Value::Null;
    for _ in 0..200 {
        warning = t.json(&["request", "show", &id, "--json"])["warning"].clone();
        if !warning.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    std::process::Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    serve.wait_with_output().unwrap();
    let warning = warning.as_str().expect("flagged").to_string();
    assert!(warning.contains("rule retention-at-window"), "{warning}");
    assert!(warning.contains("reschedule"), "{warning}");
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "accepted", "flagged, not changed");
    assert!(t
        .ok(&["request", "show", &id])
        .contains("warning     rule retention-at-window"));
    assert!(t
        .ok(&["request", "list"])
        .contains("warning: rule retention-at-window"));
    let flagged = show["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(flagged["to"], "accepted");
    assert!(
        flagged["note"].as_str().unwrap().starts_with("flagged: "),
        "{flagged}"
    );

    // A newer restore point holds at the window: the warning is gone.
    t.ok(&[
        "request",
        "reschedule",
        &id,
        "--restore-point",
        &rfc3339_ago(Duration::days(1)),
    ]);
    assert_eq!(
        t.json(&["request", "show", &id, "--json"])["warning"],
        Value::Null
    );
}

/// `manual`: the run stops at each action with what to do; `pitr job
/// confirm` records who did it (in the audit trail) and continues; the
/// waiting survives the process that started it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_action_waits_for_a_person_and_job_confirm_continues() {
    let t = TestEnv::start_custom(&scenario("restore_polls = 1"), "", "actions = \"manual\"");
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    let out = t.ok(&["run", &id]);
    assert!(out.contains("waiting"), "{out}");
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "running");
    assert_eq!(step(&show, "offline")["status"], "waiting");
    let job = show["job"]["id"].as_str().unwrap().to_string();
    // A step that does not wait cannot be confirmed.
    let out = t.pitr(&["job", "confirm", &job, "--step", "sync"]);
    assert_eq!(out.status.code(), Some(2));
    for s in ["offline", "sync", "mr_reset"] {
        let out = t.ok(&["job", "confirm", &job, "--step", s]);
        assert!(out.contains("waiting"), "{s}: {out}");
    }
    t.ok(&["job", "confirm", &id, "--step", "online"]);
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "succeeded", "{show}");
    let history = t.json(&["request", "history", &id, "--json"]);
    let confirmations = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["note"].as_str().unwrap_or("").contains("confirmed done"))
        .count();
    assert_eq!(confirmations, 4);
    // No Run Command was sent: the environment does not allow them.
    assert!(requests(&t.journal().await, "PUT", "/runCommands/").is_empty());
    // A person who could not do it: the step fails and the run recovers.
    let id = t.submit_accepted(&chrono::Utc::now().to_rfc3339());
    t.ok(&["run", &id]);
    let out = t.ok(&[
        "job",
        "confirm",
        &id,
        "--step",
        "offline",
        "--failed",
        "--reason",
        "no access to the VMs",
    ]);
    // Recovering: the services may be down, so a person brings them up.
    assert!(out.contains("online waits for a person"), "{out}");
    let out = t.pitr(&["job", "confirm", &id, "--step", "online"]);
    assert_eq!(out.status.code(), Some(1), "the run failed");
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "failed");
    assert!(
        step(&show, "offline")["error"]
            .as_str()
            .unwrap()
            .contains("no access to the VMs"),
        "{show}"
    );
}

/// `webhook`: every action is a signed POST to the receiver, which says
/// it is done (or gives a status URL to poll); the run continues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_action_is_a_signed_call_and_the_run_continues_on_its_answer() {
    use std::sync::{Arc, Mutex};
    let key = "webhook-test-key";
    let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let record = seen.clone();
    let app = axum::Router::new()
        .route(
            "/actions",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let record = record.clone();
                    async move {
                        let header = |n: &str| {
                            headers
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_string()
                        };
                        let v: Value = serde_json::from_slice(&body).unwrap();
                        record.lock().unwrap().push((
                            v["action"].as_str().unwrap().to_string(),
                            header("x-pitr-signature"),
                            pitr::engine::steps::signature(key.as_bytes(), &body),
                        ));
                        // The sync is polled; the others are done at once.
                        if v["action"] == "sync" {
                            axum::Json(serde_json::json!({"status": "running", "status_url": format!("http://127.0.0.1:{port}/status")}))
                        } else {
                            axum::Json(serde_json::json!({"status": "succeeded"}))
                        }
                    }
                },
            ),
        )
        .route(
            "/status",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "succeeded", "message": "synced"})) }),
        );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let t = TestEnv::start_custom(
        &scenario("restore_polls = 1"),
        "",
        &format!(
            "actions = \"webhook\"\nwebhook = {{ url = \"http://127.0.0.1:{port}/actions\", secret_env = \"PITR_TEST_WEBHOOK_KEY\" }}"
        ),
    );
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    let out = t
        .command(&["run", &id])
        .env("PITR_TEST_WEBHOOK_KEY", key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        t.json(&["request", "show", &id, "--json"])["status"],
        "succeeded"
    );
    let calls = seen.lock().unwrap().clone();
    let actions: Vec<&str> = calls.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(actions, ["offline", "sync", "mr_reset", "online"]);
    assert!(
        calls.iter().all(|(_, got, expected)| got == expected),
        "{calls:?}"
    );
    server.abort();
}

/// `webhook` without a status URL: the job waits for the receiver's signed
/// callback, which `pitr serve` takes at `POST /api/v1/webhooks/callback`
/// (a bad signature or another delivery is refused and changes nothing);
/// the process that started the run may be long gone; serve continues it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_callback_to_the_service_continues_a_waiting_run() {
    use std::io::BufRead;
    use std::sync::{Arc, Mutex};
    let key = "webhook-test-key";
    // (action, delivery, job) of every call.
    let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/actions",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let record = record.clone();
                async move {
                    let v: Value = serde_json::from_slice(&body).unwrap();
                    let delivery = headers
                        .get("x-pitr-delivery")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    record.lock().unwrap().push((
                        v["action"].as_str().unwrap().to_string(),
                        delivery,
                        v["job"].as_str().unwrap().to_string(),
                    ));
                    // Offline is done later, and said so by a callback.
                    if v["action"] == "offline" {
                        axum::Json(serde_json::json!({"status": "running"}))
                    } else {
                        axum::Json(serde_json::json!({"status": "succeeded"}))
                    }
                }
            },
        ),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let t = TestEnv::start_custom(
        &scenario("restore_polls = 1"),
        "[serve]\nlisten = \"127.0.0.1:0\"\n[auth]\nmode = \"none\"\n[engine]\nscheduler_tick_secs = 1\n",
        &format!(
            "actions = \"webhook\"\nwebhook = {{ url = \"http://127.0.0.1:{port}/actions\", secret_env = \"PITR_TEST_WEBHOOK_KEY\" }}"
        ),
    );
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    let out = t
        .command(&["run", &id])
        .env("PITR_TEST_WEBHOOK_KEY", key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(step(&show, "offline")["status"], "waiting");
    let (_, delivery, job) = seen.lock().unwrap()[0].clone();

    let mut serve = t
        .command(&["serve"])
        .env("PITR_TEST_WEBHOOK_KEY", key)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(serve.stderr.take().unwrap()).lines();
    let base = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("pitr serve: API listening on ")
                .map(|r| r.split(';').next().unwrap().trim().to_string())
        })
        .expect("serve printed its address");
    std::thread::spawn(move || for _ in lines {});
    let http = reqwest::Client::new();
    let post = |body: Value, key: &str| {
        let bytes = serde_json::to_vec(&body).unwrap();
        let sig = pitr::engine::steps::signature(key.as_bytes(), &bytes);
        http.post(format!("{base}/api/v1/webhooks/callback"))
            .header("content-type", "application/json")
            .header("x-pitr-signature", sig)
            .body(bytes)
            .send()
    };
    let answer = |delivery: &str| serde_json::json!({"delivery": delivery, "job": job, "action": "offline", "status": "succeeded", "message": "services stopped"});
    // Signed with another key: refused, nothing recorded.
    let r = post(answer(&delivery), "not-the-key").await.unwrap();
    assert_eq!(r.status(), 401);
    // Signed, but for a delivery the step does not wait on.
    let r = post(answer("another-delivery"), key).await.unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(
        step(&t.json(&["request", "show", &id, "--json"]), "offline")["status"],
        "waiting"
    );
    let r = post(answer(&delivery), key).await.unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text().await);

    let mut status = String::new();
    for _ in 0..300 {
        status = t.json(&["request", "show", &id, "--json"])["status"]
            .as_str()
            .unwrap()
            .to_string();
        if status != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = serve.kill();
    let _ = serve.wait();
    server.abort();
    assert_eq!(status, "succeeded");
    let history = t.json(&["request", "history", &id, "--json"]);
    assert!(
        history.as_array().unwrap().iter().any(|e| e["note"]
            .as_str()
            .unwrap_or("")
            .contains("offline confirmed done (webhook callback")),
        "{history}"
    );
    // The callback answered the one call: offline was not handed over twice.
    let actions: Vec<String> = seen.lock().unwrap().iter().map(|c| c.0.clone()).collect();
    assert_eq!(actions, ["offline", "sync", "mr_reset", "online"]);
}
