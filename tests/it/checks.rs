//! The run's first check (`preflight`) and its last (`verify`), each
//! refusal reached end to end against the mock.
//!
//! A preflight refusal leaves Azure as it was: nothing but reads were sent,
//! the environment never went offline, the original is under its name and
//! the request is accepted again. A verify refusal comes after the swap, so
//! the run rolls back (`domain::recovery`): the original goes back under its
//! name, the restored database stays beside it, the environment comes back
//! online — unless the names are not what the run left, in which case it
//! touches nothing it does not recognise and stays offline for a person.
use crate::helpers::*;
use chrono::Duration;
use serde_json::{json, Value};

/// What one `pitr run` left behind.
struct Ran {
    code: Option<i32>,
    stderr: String,
    show: Value,
    state: Value,
    journal: Vec<Value>,
}

impl Ran {
    fn error(&self, s: &str) -> String {
        step(&self.show, s)["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{s} has an error: {}", self.show))
            .to_string()
    }

    fn tag(&self) -> String {
        self.show["job"]["id"].as_str().unwrap()[..8].to_string()
    }
}

async fn ran(t: &TestEnv, id: &str, out: std::process::Output) -> Ran {
    Ran {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        show: t.json(&["request", "show", id, "--json"]),
        state: t.state().await,
        journal: t.journal().await,
    }
}

async fn run(t: &TestEnv, id: &str) -> Ran {
    let out = t.pitr(&["run", id]);
    ran(t, id, out).await
}

/// `pitr run` in the background, for a test that acts while it goes on.
fn run_in_background(t: &TestEnv, id: &str) -> tokio::task::JoinHandle<std::process::Output> {
    let mut cmd = t.command(&["run", id]);
    tokio::task::spawn_blocking(move || cmd.output().expect("run pitr"))
}

/// Waits (bounded) for a journal entry that `pred` accepts; returns it.
async fn wait_for(t: &TestEnv, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if let Some(e) = t.journal().await.into_iter().find(|e| pred(e)) {
            return e;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("never saw {what} in the journal");
}

async fn alter(t: &TestEnv, body: Value) -> Value {
    let mut body = body;
    body["server"] = json!(SERVER);
    t.post("/_mock/database", body).await
}

fn original_id(state: &Value) -> String {
    databases(state)["AxDB"]["database_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A preflight refusal: the step failed with an error holding every one of
/// `says`, only reads were sent to Azure, the environment never went
/// offline, the request can run again.
fn refused_at_preflight(r: &Ran, says: &[&str]) -> String {
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let error = r.error("preflight");
    for s in says {
        assert!(error.contains(s), "{s:?} in {error}");
    }
    assert_eq!(step(&r.show, "preflight")["status"], "failed");
    assert_eq!(
        r.show["steps"].as_array().unwrap().len(),
        1,
        "no step after preflight started: {}",
        r.show["steps"]
    );
    assert_eq!(r.show["job"]["status"], "failed");
    assert_eq!(r.show["status"], "accepted", "runnable again");
    let job_error = r.show["job"]["error"].as_str().unwrap();
    assert!(
        job_error.contains("nothing was changed in Azure"),
        "{job_error}"
    );
    let writes: Vec<String> = r
        .journal
        .iter()
        .filter(|e| e["method"] != "GET" && !e["path"].as_str().unwrap().contains("oauth2"))
        .map(|e| format!("{} {}", e["method"], e["path"]))
        .collect();
    assert!(writes.is_empty(), "only reads: {writes:?}");
    assert!(all_running(&r.state), "{}", r.state["vms"]);
    error
}

/// The original is under its name with its content.
fn original_in_place(state: &Value, id: &str) {
    let dbs = databases(state);
    assert_eq!(dbs["AxDB"]["database_id"], id, "{dbs:?}");
    assert_eq!(dbs["AxDB"]["content"], "v3 after destructive tests");
}

/// Accepted requests restoring to a day ago, on a mock whose restores take
/// one poll.
fn env_with(settings: &str) -> (TestEnv, String) {
    let t = TestEnv::start(&scenario(&format!("restore_polls = 1\n{settings}")));
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    (t, id)
}

// ---- preflight ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_a_source_that_is_not_online() {
    let (t, id) = env_with("");
    let original = original_id(&t.state().await);
    alter(&t, json!({"name": "AxDB", "status": "Scaling"})).await;
    let r = run(&t, &id).await;
    let error = refused_at_preflight(&r, &["'AxDB'", "is Scaling, not Online", "wait"]);
    assert!(error.contains("run the request again"), "{error}");
    assert_eq!(
        databases(&r.state)["AxDB"]["database_id"],
        original.as_str()
    );
    assert_eq!(databases(&r.state).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_a_source_that_is_gone() {
    let (t, id) = env_with("");
    alter(&t, json!({"name": "AxDB", "remove": true})).await;
    let r = run(&t, &id).await;
    let error = refused_at_preflight(&r, &["'AxDB'", "not found on server 'sql-uat'"]);
    assert!(
        error.contains("database = "),
        "the fix names the setting: {error}"
    );
    assert!(databases(&r.state).is_empty(), "nothing created");
}

/// A database under one of the job's target names (the name is the job's:
/// it is known only once the run has started, so the test makes it while
/// preflight's look at that name is answered 503 and retried).
async fn target_name_taken(prefix: &str) {
    let (t, id) = env_with("");
    let original = original_id(&t.state().await);
    t.post(
        "/_mock/faults",
        json!({"method": "GET", "path_contains": format!("/databases/{prefix}"), "status": 503, "retry_after": 2, "times": 0}),
    )
    .await;
    let running = run_in_background(&t, &id);
    let refused = wait_for(&t, "a 503 on the target name", |e| {
        e["status"] == 503 && e["path"].as_str().unwrap().contains(prefix)
    })
    .await;
    let path = refused["path"].as_str().unwrap();
    let name = path
        .split("/databases/")
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    let squatter = alter(&t, json!({"name": name, "content": "someone else's"})).await;
    let r = reqwest_delete_faults(&t).await;
    assert!(r.is_success());
    let r = ran(&t, &id, running.await.unwrap()).await;
    let error = refused_at_preflight(
        &r,
        &[
            &format!("'{name}' is already taken"),
            squatter["database_id"].as_str().unwrap(),
            "remove it",
        ],
    );
    assert!(name.ends_with(&r.tag()), "{name} is the job's");
    assert!(error.contains("run the request again"), "{error}");
    original_in_place(&r.state, &original);
    let dbs = databases(&r.state);
    assert_eq!(dbs[name]["content"], "someone else's", "left alone");
    assert_eq!(dbs.len(), 2);
}

async fn reqwest_delete_faults(t: &TestEnv) -> reqwest::StatusCode {
    let pem = std::fs::read(t.path("ca.pem")).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
        .delete(format!("{}/_mock/faults", t.url))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_when_the_restored_name_is_taken() {
    target_name_taken("AxDB_pitr_").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_when_the_before_name_is_taken() {
    target_name_taken("AxDB_before_").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_when_a_vm_of_the_environment_is_gone() {
    let (t, id) = env_with("");
    let original = original_id(&t.state().await);
    t.post("/_mock/remove-vm", json!({"vm": "bi"})).await;
    let r = run(&t, &id).await;
    refused_at_preflight(
        &r,
        &[
            &vm("bi"),
            "environment 'uat'",
            "check aos_vms, sync_vm and mr_vm",
        ],
    );
    original_in_place(&r.state, &original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_a_named_sql_password_variable_that_is_unset() {
    let t = TestEnv::start_custom(
        &scenario("restore_polls = 1"),
        "",
        "sql_password_env = \"PITR_TEST_UNSET_PASSWORD\"",
    );
    let original = original_id(&t.state().await);
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    let r = run(&t, &id).await;
    refused_at_preflight(
        &r,
        &[
            "environment 'uat'",
            "sql_password_env = PITR_TEST_UNSET_PASSWORD",
            "export it",
        ],
    );
    original_in_place(&r.state, &original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_a_restore_point_azure_no_longer_has() {
    let t = TestEnv::start(&scenario("restore_polls = 1"));
    let original = original_id(&t.state().await);
    // Two days ago was restorable when the request was accepted...
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(2)));
    // ... and no longer is once the retention is cut to one day.
    t.post(
        "/_mock/retention",
        json!({"server": SERVER, "database": "AxDB", "days": 1}),
    )
    .await;
    let r = run(&t, &id).await;
    refused_at_preflight(
        &r,
        &[
            "rule earliest-restore-date",
            "earliest restore date",
            "reschedule with a restore point of",
        ],
    );
    original_in_place(&r.state, &original);
}

// ---- verify: what Azure did not carry over ----

/// A verify refusal after a whole run: rolled back, the original back under
/// its name, the restored database kept as `AxDB_pitr_<job8>`, the
/// environment up, and nothing written to Azure but the run's own restore,
/// renames and Run Commands (no database changed or dropped).
async fn refused_at_verify(r: &Ran, original: &str, says: &[&str]) -> String {
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let error = r.error("verify");
    for s in says {
        assert!(error.contains(s), "{s:?} in {error}");
    }
    for s in ["sync", "mr_reset", "online"] {
        assert_eq!(step(&r.show, s)["status"], "succeeded", "{s}");
    }
    assert_eq!(step(&r.show, "verify")["status"], "failed");
    assert_eq!(r.show["status"], "rolled_back", "{}", r.show);
    original_in_place(&r.state, original);
    let dbs = databases(&r.state);
    let kept = &dbs[&format!("AxDB_pitr_{}", r.tag())];
    assert_eq!(kept["content"], "v2 after test cycle 1");
    assert_eq!(kept["database_id"], r.show["job"]["restored_database_id"]);
    assert_eq!(dbs.len(), 2, "{:?}", dbs.keys());
    assert!(all_running(&r.state), "{}", r.state["vms"]);
    assert_eq!(restore_puts(&r.journal), 1);
    let db_writes: Vec<String> = r
        .journal
        .iter()
        .filter(|e| {
            let p = e["path"].as_str().unwrap();
            e["method"] != "GET"
                && p.contains("/databases/")
                && !p.contains("/move")
                // The original's retention, set on the restored database.
                && !p.contains("RetentionPolicies/")
                && !p.contains("advancedThreatProtectionSettings/")
                && e["body"]["properties"]["createMode"] != "PointInTimeRestore"
        })
        .map(|e| format!("{} {}", e["method"], e["path"]))
        .collect();
    assert!(db_writes.is_empty(), "{db_writes:?}");
    assert_eq!(requests(&r.journal, "POST", "/move").len(), 4);
    error
}

/// `source`: lines added to the source database's scenario entry.
async fn verify_refuses(settings: &str, source: &str, says: &[&str]) -> (Ran, String) {
    let mut scen = scenario(&format!("restore_polls = 1\n{settings}")).replace(
        "earliest_restore = \"-7d\"",
        &format!("earliest_restore = \"-7d\"\n{source}"),
    );
    if source.contains("elastic_pool_id") {
        // A database in a pool has the pool's sku.
        let sku = scen
            .lines()
            .find(|l| l.starts_with("sku = "))
            .unwrap()
            .to_string();
        scen = scen.replace(&sku, "");
    }
    let t = TestEnv::start(&scen);
    let original = original_id(&t.state().await);
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    let r = run(&t, &id).await;
    let error = refused_at_verify(&r, &original, says).await;
    (r, error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_a_restored_database_with_another_service_objective() {
    // Same sku name, half the vCores: the name alone does not tell.
    let (_, error) = verify_refuses(
        "restored_sku = { name = \"GP_Gen5\", capacity = 2 }",
        "",
        &["AxDB", "service objective", "capacity 4", "capacity 2"],
    )
    .await;
    assert!(
        error.contains("AxDB_pitr_"),
        "names where it is kept: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_a_restored_database_in_another_elastic_pool() {
    let pool = |p: &str| {
        format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Sql/servers/{SERVER}/elasticPools/{p}")
    };
    let (_, error) = verify_refuses(
        &format!("restored_elastic_pool_id = \"{}\"", pool("other")),
        &format!("elastic_pool_id = \"{}\"", pool("fno")),
        &["AxDB", "elastic pool", &pool("fno"), &pool("other")],
    )
    .await;
    assert!(error.contains("AxDB_pitr_"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_a_restored_database_with_other_zone_redundancy() {
    verify_refuses(
        "restored_zone_redundant = true",
        "",
        &["AxDB", "zone redundancy", "false", "true"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_a_restored_database_with_other_backup_redundancy() {
    verify_refuses(
        "restored_backup_storage_redundancy = \"Local\"",
        "backup_storage_redundancy = \"Zone\"",
        &["AxDB", "backup storage redundancy", "Zone", "Local"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_a_restored_database_without_the_originals_tags() {
    let (_, error) = verify_refuses(
        "restored_tags = { owner = \"fno-team\" }",
        "tags = { owner = \"fno-team\", costcenter = \"4711\" }",
        &[
            "AxDB",
            "lacks the tags costcenter=4711, pitr-job=",
            "it has owner=fno-team",
        ],
    )
    .await;
    assert_eq!(
        error.matches("owner").count(),
        1,
        "owner is not missing: {error}"
    );
}

// ---- verify: what is under the name when the run looks ----

/// A run whose online step is held until `meanwhile` has changed the world
/// (as someone in the portal would while the services start).
async fn verify_after(meanwhile: impl AsyncFnOnce(&TestEnv, &str)) -> (TestEnv, String, Ran) {
    let (t, id) = env_with("");
    let original = original_id(&t.state().await);
    t.post(
        "/_mock/hold",
        json!({"operation": "run_command", "hold": true, "script_contains": "Start-Service"}),
    )
    .await;
    let running = run_in_background(&t, &id);
    wait_for(&t, "the online step's Run Command", |e| {
        e["method"] == "PUT"
            && e["path"].as_str().unwrap().contains("/runCommands/")
            && e["body"]["properties"]["source"]["script"]
                .to_string()
                .contains("Start-Service")
    })
    .await;
    let show = t.json(&["request", "show", &id, "--json"]);
    let tag = &show["job"]["id"].as_str().unwrap()[..8];
    meanwhile(&t, tag).await;
    t.post(
        "/_mock/hold",
        json!({"operation": "run_command", "hold": false, "script_contains": "Start-Service"}),
    )
    .await;
    let r = ran(&t, &id, running.await.unwrap()).await;
    (t, original, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_the_original_back_under_the_name() {
    // Someone put the original back by hand.
    let (_, original, r) = verify_after(async |t, tag| {
        alter(t, json!({"name": "AxDB", "rename_to": "AxDB_aside"})).await;
        alter(
            t,
            json!({"name": format!("AxDB_before_{tag}"), "rename_to": "AxDB"}),
        )
        .await;
    })
    .await;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let error = r.error("verify");
    let restored = r.show["job"]["restored_database_id"].as_str().unwrap();
    for s in ["AxDB", original.as_str(), restored, "the original"] {
        assert!(error.contains(s), "{s:?} in {error}");
    }
    // The rollback finds the original in place and only brings the
    // environment back.
    assert_eq!(r.show["status"], "rolled_back", "{}", r.show);
    original_in_place(&r.state, &original);
    assert_eq!(databases(&r.state)["AxDB_aside"]["database_id"], restored);
    assert!(all_running(&r.state));
    assert_eq!(
        requests(&r.journal, "POST", "/move").len(),
        2,
        "the swap only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_when_no_database_has_the_name() {
    let (_, original, r) = verify_after(async |t, _| {
        alter(t, json!({"name": "AxDB", "rename_to": "AxDB_aside"})).await;
    })
    .await;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let error = r.error("verify");
    for s in [
        "AxDB does not exist on server 'sql-uat'",
        r.show["job"]["restored_database_id"].as_str().unwrap(),
        "the original goes back under AxDB",
        "look for the restored database",
    ] {
        assert!(error.contains(s), "{s:?} in {error}");
    }
    assert!(
        !error.contains("kept as"),
        "it is not where the run left it: {error}"
    );
    // The rollback puts the original back under the free name.
    assert_eq!(r.show["status"], "rolled_back", "{}", r.show);
    original_in_place(&r.state, &original);
    assert!(all_running(&r.state));
}

/// The rollback could not rename: the environment stays offline, nothing
/// is dropped, the original is kept under its `_before_` name, and the
/// error says what to do; once a person has done it, `pitr resume`
/// finishes the rollback.
fn stuck_offline(r: &Ran, original: &str, says: &[&str]) {
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let error = r.show["job"]["error"].as_str().unwrap();
    for s in says
        .iter()
        .chain(&["the environment stays offline", "pitr resume"])
    {
        assert!(error.contains(s), "{s:?} in {error}");
    }
    assert_eq!(r.show["status"], "running", "{}", r.show);
    let dbs = databases(&r.state);
    let before = &dbs[&format!("AxDB_before_{}", r.tag())];
    assert_eq!(before["database_id"], original);
    assert_eq!(before["content"], "v3 after destructive tests");
    assert!(!all_running(&r.state), "offline for the rollback");
    let aos = r.state["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "aos1")
        .unwrap();
    assert_eq!(aos["services"]["W3SVC"], "Stopped", "{aos}");
    let deletes = requests(&r.journal, "DELETE", "/databases/");
    assert!(deletes.is_empty(), "{deletes:?}");
}

async fn resumed(t: &TestEnv, id: &str, original: &str) -> Ran {
    let r = {
        let out = t.pitr(&["resume", id]);
        ran(t, id, out).await
    };
    assert_eq!(r.show["status"], "rolled_back", "{}: {}", r.stderr, r.show);
    original_in_place(&r.state, original);
    assert!(all_running(&r.state), "{}", r.state["vms"]);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_a_restored_database_that_is_not_online() {
    let (t, original, r) = verify_after(async |t, _| {
        alter(t, json!({"name": "AxDB", "status": "Paused"})).await;
    })
    .await;
    let error = r.error("verify");
    assert!(error.contains("AxDB is Paused, not Online"), "{error}");
    assert!(error.contains(r.show["job"]["restored_database_id"].as_str().unwrap()));
    assert!(error.contains("inspect it in the Azure portal"), "{error}");
    // Azure renames only an Online database: the rollback waits for one.
    stuck_offline(
        &r,
        &original,
        &["rename AxDB -> AxDB_pitr_", "ConflictingDatabaseOperation"],
    );
    alter(&t, json!({"name": "AxDB", "status": "Online"})).await;
    let id = r.show["id"].as_str().unwrap().to_string();
    let r = resumed(&t, &id, &original).await;
    assert!(databases(&r.state).contains_key(&format!("AxDB_pitr_{}", r.tag())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_another_database_under_the_name() {
    let (t, original, r) = verify_after(async |t, _| {
        alter(t, json!({"name": "AxDB", "rename_to": "AxDB_aside"})).await;
        alter(t, json!({"name": "AxDB", "content": "someone else's"})).await;
    })
    .await;
    let error = r.error("verify");
    let restored = r.show["job"]["restored_database_id"].as_str().unwrap();
    let foreign = databases(&r.state)["AxDB"]["database_id"]
        .as_str()
        .unwrap()
        .to_string();
    for s in [
        restored,
        foreign.as_str(),
        "a database this run does not know",
        "inspect the server",
    ] {
        assert!(error.contains(s), "{s:?} in {error}");
    }
    // The rollback does not rename a database it does not know.
    stuck_offline(
        &r,
        &original,
        &["not in a state the swap recognises", "nothing was renamed"],
    );
    let dbs = databases(&r.state);
    assert_eq!(dbs["AxDB"]["content"], "someone else's", "left alone");
    assert_eq!(
        requests(&r.journal, "POST", "/move").len(),
        2,
        "the swap only"
    );
    // A person moves it aside; the rollback then finishes.
    alter(&t, json!({"name": "AxDB", "rename_to": "AxDB_someone"})).await;
    let id = r.show["id"].as_str().unwrap().to_string();
    resumed(&t, &id, &original).await;
}
