//! What a restored database does not inherit (issue 20): Azure gives it
//! its defaults (7 days of point-in-time backups, differentials every 12
//! hours, no long-term copies), not its source's. A run gives it the
//! original's backup retention before the swap, and `verify` names a
//! policy that did not hold.
use crate::helpers::*;
use chrono::Duration;
use serde_json::json;

/// The shared scenario with an original that keeps 21 days, differentials
/// every 24 hours, and weekly, monthly and yearly long-term copies.
fn kept_long() -> String {
    scenario("restore_polls = 1").replacen(
        "diff_backup_hours = 24\nlong_term_retention = { weekly = \"P4W\", monthly = \"P6M\" }",
        "retention_days = 21\ndiff_backup_hours = 24\nlong_term_retention = { weekly = \"P12W\", monthly = \"P12M\", yearly = \"P5Y\", week_of_year = 16 }",
        1,
    )
}

/// A run of a new request killed right after its swap (the restored
/// database is live; `verify` has not run), for a test to change Azure
/// before `pitr resume`.
fn stopped_after_the_swap(scenario: &str) -> (TestEnv, String) {
    let t = TestEnv::start(scenario);
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    let out = t
        .command(&["run", &id])
        .env("PITR_CRASH_AT", "swap.done")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the run was not stopped after the swap"
    );
    (t, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_keeps_the_originals_retention_after_the_swap() {
    let scenario = kept_long();
    assert!(scenario.contains("retention_days = 21"), "scenario changed");
    let t = TestEnv::start(&scenario);
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    let run = t.pitr(&["run", &id]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );

    let state = t.state().await;
    let dbs = databases(&state);
    let live = &dbs["AxDB"];
    assert_eq!(live["content"], "v2 after test cycle 1");
    assert_eq!(live["retention_days"], 21, "{live}");
    assert_eq!(live["diff_backup_hours"], 24, "{live}");
    assert_eq!(
        live["long_term_retention"],
        json!({"weekly": "P12W", "monthly": "P12M", "yearly": "P5Y", "week_of_year": 16})
    );
    // Defender's state on the original (a restored database starts `New`).
    assert_eq!(live["advanced_threat_protection"], "Enabled", "{live}");

    // Each policy was set once, on the restored database, before the swap
    // renamed anything.
    let journal = t.journal().await;
    let index = |method: &str, fragment: &str| {
        journal
            .iter()
            .position(|e| {
                e["method"] == method && e["path"].as_str().unwrap_or("").contains(fragment)
            })
            .unwrap_or_else(|| panic!("no {method} {fragment}"))
    };
    let first_rename = index("POST", "/move");
    for policy in [
        "backupShortTermRetentionPolicies",
        "backupLongTermRetentionPolicies",
        "advancedThreatProtectionSettings",
    ] {
        let puts = requests(&journal, "PUT", policy);
        assert_eq!(puts.len(), 1, "{policy}: {puts:?}");
        assert!(
            puts[0]["path"].as_str().unwrap().contains("AxDB_pitr_"),
            "{policy} set on {}",
            puts[0]["path"]
        );
        assert!(
            puts[0]["status"] == 200 || puts[0]["status"] == 201,
            "{}",
            puts[0]
        );
        assert!(
            index("PUT", policy) < first_rename,
            "{policy} set after the swap"
        );
    }

    // The run says what it set, and verify what it checked.
    for part in [
        "short-term retention to the original's 21 days with differential backups every 24 hours (Azure gave it 7 days with differential backups every 12 hours)",
        "long-term retention to the original's: weekly P12W, monthly P12M, yearly P5Y (yearly from week 16)",
        "tags and backup retention",
    ] {
        assert!(printed.contains(part), "{part:?} not in {printed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_a_retention_that_did_not_hold() {
    // Stopped after the swap; meanwhile someone lowers the live
    // database's retention in Azure.
    let (t, id) = stopped_after_the_swap(&kept_long());
    t.post(
        "/_mock/retention",
        json!({"server": SERVER, "database": "AxDB", "days": 3}),
    )
    .await;

    let out = t.pitr(&["resume", &id]);
    assert!(!out.status.success(), "verify let 3 days pass");
    let show = t.json(&["request", "show", &id, "--json"]);
    let verify = step(&show, "verify");
    assert_eq!(verify["status"], "failed", "{verify}");
    let error = verify["error"].as_str().unwrap_or("");
    for part in [
        "AxDB differs from the original in short-term backup retention",
        "the original kept 21 days with differential backups every 24 hours",
        "the restored database keeps 3 days",
        "backupShortTermRetentionPolicies",
        "the run rolls back: the original goes back under AxDB",
    ] {
        assert!(error.contains(part), "{part:?} not in {error}");
    }
    // A failed verify rolls back: the original, with its own policy, is
    // back under its name and the environment is online.
    assert_eq!(show["status"], "rolled_back", "{show}");
    let state = t.state().await;
    assert!(all_running(&state));
    let live = &databases(&state)["AxDB"];
    assert_eq!(live["content"], "v3 after destructive tests");
    assert_eq!(live["retention_days"], 21, "{live}");
}

/// Preflight refuses, before the environment goes offline, what would make
/// the swap fail (Azure does not rename a replicated database) or what pitr
/// does not restore (Hyperscale).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_what_azure_would_refuse_late() {
    let base = scenario("restore_polls = 1");
    let sku =
        "sku = { name = \"GP_Gen5\", tier = \"GeneralPurpose\", family = \"Gen5\", capacity = 4 }";
    assert!(base.contains(sku), "scenario changed");
    let cases = [
        (
            "geo-replication link",
            base.replacen(
                "diff_backup_hours = 24\n",
                "diff_backup_hours = 24\nreplication_links = [{ partner_server = \"sql-uat-dr\", partner_database = \"AxDB\" }]\n",
                1,
            ),
            vec![
                "database 'AxDB' has a GEO replication link (role Primary) with 'AxDB' on server 'sql-uat-dr'",
                "Azure does not rename a database in a replication relationship",
                "remove the link, run the restore, then set up geo-replication again",
            ],
        ),
        (
            "failover group",
            base.replacen(
                "diff_backup_hours = 24\n",
                "diff_backup_hours = 24\nfailover_group_id = \"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/sql-uat/failoverGroups/fog-uat\"\n",
                1,
            ),
            vec![
                "database 'AxDB' is in failover group /subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/sql-uat/failoverGroups/fog-uat",
                "remove it from the failover group, run the restore, then add it again",
            ],
        ),
        (
            "Hyperscale",
            base.replacen(
                sku,
                "sku = { name = \"HS_Gen5\", tier = \"Hyperscale\", family = \"Gen5\", capacity = 4 }",
                1,
            ),
            vec![
                "database 'AxDB' is Hyperscale",
                "restore it in the Azure portal",
            ],
        ),
    ];
    for (case, scenario, parts) in cases {
        assert_ne!(scenario, base, "{case}: scenario unchanged");
        let t = TestEnv::start(&scenario);
        let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
        let out = t.pitr(&["run", &id]);
        assert!(!out.status.success(), "{case}: the run went on");
        let show = t.json(&["request", "show", &id, "--json"]);
        let preflight = step(&show, "preflight");
        assert_eq!(preflight["status"], "failed", "{case}: {preflight}");
        let error = preflight["error"].as_str().unwrap_or("");
        for part in parts {
            assert!(error.contains(part), "{case}: {part:?} not in {error}");
        }
        assert!(show["job"]["offline_at"].is_null(), "{case}: went offline");
        assert!(
            show["steps"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["name"] == "preflight"),
            "{case}: a step after preflight started"
        );
        // Nothing changed: the request can run again once the cause is gone.
        assert_eq!(show["status"], "accepted", "{case}");
        // Nothing was written to Azure: no script, no restore, no rename.
        let journal = t.journal().await;
        let writes: Vec<_> = journal
            .iter()
            .filter(|e| {
                e["method"] != "GET" && e["path"].as_str().unwrap_or("").contains("/subscriptions/")
            })
            .map(|e| format!("{} {}", e["method"], e["path"]))
            .collect();
        assert!(writes.is_empty(), "{case}: wrote {writes:?}");
        let state = t.state().await;
        assert!(all_running(&state), "{case}");
        assert_eq!(
            databases(&state)["AxDB"]["content"],
            "v3 after destructive tests",
            "{case}"
        );
    }
}

/// What pitr does not carry over is said, never silently dropped: in
/// `request show` (text and JSON), the request's history and the body of
/// the run's notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_it_cannot_carry_over_is_reported() {
    let scenario = scenario("restore_polls = 1").replacen(
        "diff_backup_hours = 24\n",
        "diff_backup_hours = 24\nauditing = { state = \"Enabled\", storage_endpoint = \"https://auditlogs.blob.core.windows.net/\", retention_days = 90 }\nencryption_protector = \"https://kv-uat.vault.azure.net/keys/axdb/0123abcd\"\n",
        1,
    );
    let t = TestEnv::start(&scenario);
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    t.ok(&["run", &id]);
    let said = "database-level auditing was on for the original to https://auditlogs.blob.core.windows.net/; set it again on AxDB after the restore";

    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "succeeded");
    let listed = show["job"]["not_carried"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed[0].as_str().unwrap().starts_with(said), "{listed:?}");
    assert!(
        listed[1].as_str().unwrap().starts_with("the original was encrypted with its own customer-managed key https://kv-uat.vault.azure.net/keys/axdb/0123abcd; the restored AxDB uses the server's encryption: set the key again"),
        "{listed:?}"
    );
    let text = t.ok(&["request", "show", &id]);
    assert!(text.contains(&format!("not carried {said}")), "{text}");
    let events = show["events"].as_array().unwrap();
    let done = events.last().unwrap();
    assert_eq!(done["to"], "succeeded");
    assert!(
        done["note"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("not carried over: {said}")),
        "{done}"
    );
    // The notification's body carries the same words.
    let store = rusqlite::Connection::open(t.path("pitr.db")).unwrap();
    let body: String = store
        .query_row(
            "SELECT payload FROM outbox WHERE request_id = ?1 AND event = 'succeeded'",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["detail"].as_str().unwrap_or("").contains(said),
        "{body}"
    );

    // A database without its own auditing has nothing to report.
    let t = TestEnv::start(&self::scenario("restore_polls = 1"));
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    t.ok(&["run", &id]);
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["job"]["not_carried"], json!([]));
    assert!(show["events"].as_array().unwrap().last().unwrap()["note"].is_null());
}

/// The database properties a restore takes only when its PUT names them
/// (max size, license type, maintenance window, high-availability replicas)
/// are the original's after a run; without them the mock, like Azure,
/// gives the restored database its defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_originals_database_properties_are_sent_with_the_restore() {
    let maintenance = "/subscriptions/00000000-0000-0000-0000-00000000aaaa/providers/Microsoft.Maintenance/publicMaintenanceConfigurations/SQL_WestEurope_DB_1";
    let scenario = scenario("restore_polls = 1").replacen(
        "diff_backup_hours = 24\n",
        &format!("diff_backup_hours = 24\nmax_size_bytes = 107374182400\nlicense_type = \"BasePrice\"\nmaintenance_configuration_id = \"{maintenance}\"\nhigh_availability_replica_count = 1\n"),
        1,
    );
    let t = TestEnv::start(&scenario);
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    t.ok(&["run", &id]);
    let journal = t.journal().await;
    let put = journal
        .iter()
        .find(|e| {
            e["method"] == "PUT" && e["body"]["properties"]["createMode"] == "PointInTimeRestore"
        })
        .expect("a restore PUT");
    let props = &put["body"]["properties"];
    assert_eq!(props["maxSizeBytes"], 107374182400u64, "{props}");
    assert_eq!(props["licenseType"], "BasePrice");
    assert_eq!(props["maintenanceConfigurationId"], maintenance);
    assert_eq!(props["highAvailabilityReplicaCount"], 1);
    let state = t.state().await;
    let live = &databases(&state)["AxDB"];
    assert_eq!(live["content"], "v2 after test cycle 1");
    assert_eq!(live["max_size_bytes"], 107374182400u64, "{live}");
    assert_eq!(live["license_type"], "BasePrice");
    assert_eq!(live["maintenance_configuration_id"], maintenance);
    assert_eq!(live["high_availability_replica_count"], 1);
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "succeeded");
}

/// `verify` names a carried property the live database does not keep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_a_database_property_that_did_not_hold() {
    let scenario = scenario("restore_polls = 1").replacen(
        "diff_backup_hours = 24\n",
        "diff_backup_hours = 24\nlicense_type = \"BasePrice\"\n",
        1,
    );
    let (t, id) = stopped_after_the_swap(&scenario);
    assert_eq!(
        databases(&t.state().await)["AxDB"]["license_type"],
        "BasePrice"
    );
    t.post(
        "/_mock/database",
        json!({"server": SERVER, "name": "AxDB", "license_type": "LicenseIncluded"}),
    )
    .await;
    assert!(!t.pitr(&["resume", &id]).status.success());
    let show = t.json(&["request", "show", &id, "--json"]);
    let error = step(&show, "verify")["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        error.contains("AxDB differs from the original in license type: the original had BasePrice, the restored database has LicenseIncluded"),
        "{error}"
    );
    assert_eq!(show["status"], "rolled_back");
}

/// Read scale-out cannot be set by a restore PUT: a Business Critical
/// original with it off gets a restored database with it on, which the
/// run PATCHes back before the swap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_scale_out_is_patched_back_before_the_swap() {
    let scenario = scenario("restore_polls = 1").replacen(
        "sku = { name = \"GP_Gen5\", tier = \"GeneralPurpose\", family = \"Gen5\", capacity = 4 }",
        "sku = { name = \"BC_Gen5\", tier = \"BusinessCritical\", family = \"Gen5\", capacity = 4 }\nread_scale = \"Disabled\"",
        1,
    );
    assert!(scenario.contains("BC_Gen5"), "scenario changed");
    let t = TestEnv::start(&scenario);
    let id = t.submit_accepted(&rfc3339_ago(Duration::days(1)));
    let run = t.pitr(&["run", &id]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        )
        .contains("read scale-out to the original's Disabled (Azure gave it Enabled)"),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    let journal = t.journal().await;
    let patches = requests(&journal, "PATCH", "/databases/AxDB_pitr_");
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(
        patches[0]["body"]["properties"],
        json!({"readScale": "Disabled"})
    );
    let patched = journal.iter().position(|e| e["method"] == "PATCH").unwrap();
    let renamed = journal
        .iter()
        .position(|e| e["method"] == "POST" && e["path"].as_str().unwrap_or("").contains("/move"))
        .unwrap();
    assert!(patched < renamed, "patched after the swap");
    let state = t.state().await;
    assert_eq!(databases(&state)["AxDB"]["read_scale"], "Disabled");
}
