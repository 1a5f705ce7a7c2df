//! Short-term retention, earliest restore dates, tags and backup redundancy.

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use super::*;

/// A server with databases that exercise retention, tags and redundancy.
const EXTRA: &str = r#"
[[servers]]
subscription_id = "00000000-0000-0000-0000-000000000001"
resource_group = "rg-test"
name = "sql-ret"
location = "westeurope"

[[servers.databases]]
name = "Kept"
created = "-100d"
retention_days = 10
tags = { env = "uat", owner = "fno-team" }
zone_redundant = true
backup_storage_redundancy = "Zone"
max_size_bytes = 107374182400
license_type = "BasePrice"
high_availability_replica_count = 2
history = [{ at = "-50d", content = "kept" }]

[[servers.databases]]
name = "Young"
created = "-2d"
history = [{ at = "-2d", content = "young" }]
"#;

fn ret_path(db: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Sql/servers/sql-ret/databases/{db}")
}

fn days_between(a: &Value, b: chrono::DateTime<Utc>) -> f64 {
    let a: chrono::DateTime<Utc> = a.as_str().unwrap().parse().unwrap();
    (b - a).num_seconds() as f64 / 86_400.0
}

#[tokio::test]
async fn short_term_retention_and_earliest_restore() {
    let env = start(&format!("{SCENARIO}{EXTRA}")).await;
    let policy = |db: &str, v: &str| {
        format!(
            "{}/backupShortTermRetentionPolicies/default?api-version={v}",
            ret_path(db)
        )
    };
    let r = env.arm("GET", &policy("Kept", "2023-08-01"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({
            "id": format!("{}/backupShortTermRetentionPolicies/default", ret_path("Kept")),
            "name": "default",
            "type": "Microsoft.Sql/servers/databases/backupShortTermRetentionPolicies",
            "properties": {"retentionDays": 10, "diffBackupIntervalInHours": 12},
        })
    );
    for v in ["2021-11-01", "2025-01-01", "2024-11-01-preview"] {
        assert_eq!(
            env.arm("GET", &policy("Kept", v), None).await.status,
            200,
            "{v}"
        );
    }
    let r = env
        .arm("GET", &policy("Kept", "2017-03-01-preview"), None)
        .await;
    assert_eq!(r.code(), "NoRegisteredProviderFound");
    assert!(r
        .text
        .contains("for type 'servers/databases/backupShortTermRetentionPolicies'"));
    let r = env.arm("GET", &policy("Nope", "2023-08-01"), None).await;
    assert_eq!((r.status, r.code().as_str()), (404, "ResourceNotFound"));
    let r = env
        .arm(
            "GET",
            &policy("Kept", "2023-08-01").replace("/default?", "/other?"),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    let young = env
        .arm("GET", &policy("Young", "2023-08-01"), None)
        .await
        .json();
    assert_eq!(young["properties"]["retentionDays"], 7, "Azure's default");

    // earliestRestoreDate = max(creation, now - retention).
    let get = |db: &'static str| {
        let env = &env;
        async move {
            env.arm("GET", &format!("{}?{SQL}", ret_path(db)), None)
                .await
                .json()
        }
    };
    let kept = get("Kept").await;
    let d = days_between(&kept["properties"]["earliestRestoreDate"], Utc::now());
    assert!((9.99..10.01).contains(&d), "{d}");
    let young = get("Young").await;
    assert_eq!(
        young["properties"]["earliestRestoreDate"],
        young["properties"]["creationDate"]
    );

    // Changed at run time: the earliest restore date follows.
    let v = env
        .mock_post(
            "/_mock/retention",
            json!({"server": "sql-ret", "database": "Kept", "days": 3}),
        )
        .await;
    assert_eq!(v["retention_days"], 3);
    let kept = get("Kept").await;
    let d = days_between(&kept["properties"]["earliestRestoreDate"], Utc::now());
    assert!((2.99..3.01).contains(&d), "{d}");
    assert_eq!(
        env.arm("GET", &policy("Kept", "2023-08-01"), None)
            .await
            .json()["properties"]["retentionDays"],
        3
    );
    // Raised again: backups already purged do not come back.
    env.mock_post(
        "/_mock/retention",
        json!({"server": "sql-ret", "database": "Kept", "days": 20}),
    )
    .await;
    let d = days_between(
        &get("Kept").await["properties"]["earliestRestoreDate"],
        Utc::now(),
    );
    assert!((2.99..3.01).contains(&d), "{d}");
    for bad in [
        json!({"server": "sql-ret", "database": "Kept", "days": 0}),
        json!({"server": "sql-ret", "database": "Kept", "days": 36}),
        json!({"server": "sql-ret", "database": "Kept"}),
    ] {
        let r = env
            .send(
                "POST",
                "/_mock/retention",
                None,
                Some(("application/json", bad.to_string())),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}");
    }
    let r = env
        .send(
            "POST",
            "/_mock/retention",
            None,
            Some((
                "application/json",
                json!({"server": "sql-ret", "database": "Ghost", "days": 5}).to_string(),
            )),
        )
        .await;
    assert_eq!(r.status, 404);

    // A restore gets Azure's default retention, not its source's; its URLs
    // carry the request's api-version.
    let r = env
        .arm(
            "PUT",
            &format!("{}?api-version=2025-01-01", ret_path("Kept_pitr")),
            Some(json!({"location": "westeurope", "properties": {"createMode": "PointInTimeRestore", "sourceDatabaseId": ret_path("Kept"), "restorePointInTime": ago(Duration::days(1))}})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let op = r.header("azure-asyncoperation").unwrap();
    assert!(op.ends_with("?api-version=2025-01-01"), "{op}");
    assert!(r
        .header("location")
        .unwrap()
        .ends_with("?api-version=2025-01-01"));
    for _ in 0..3 {
        env.arm("GET", &op, None).await;
    }
    let p = env
        .arm("GET", &policy("Kept_pitr", "2025-01-01"), None)
        .await
        .json();
    assert_eq!(
        p["properties"],
        json!({"retentionDays": 7, "diffBackupIntervalInHours": 12}),
        "Azure's defaults, not the source's 20 days"
    );
    let ltr = env.arm("GET", &long_term("Kept_pitr"), None).await.json();
    assert_eq!(
        ltr["properties"],
        json!({"weeklyRetention": "PT0S", "monthlyRetention": "PT0S", "yearlyRetention": "PT0S", "weekOfYear": 0}),
        "no long-term copies"
    );
    // Nor the source's max size, license type, maintenance window or
    // replicas: Azure's defaults unless the PUT names them.
    let db = env
        .arm("GET", &format!("{}?{SQL}", ret_path("Kept_pitr")), None)
        .await
        .json();
    let p = &db["properties"];
    assert_eq!(p["maxSizeBytes"], 34359738368u64, "{p}");
    assert_eq!(p["licenseType"], "LicenseIncluded");
    assert_eq!(p["highAvailabilityReplicaCount"], 0);
    assert!(p["maintenanceConfigurationId"]
        .as_str()
        .unwrap()
        .ends_with("/publicMaintenanceConfigurations/SQL_Default"));
}

fn short_term(db: &str) -> String {
    format!(
        "{}/backupShortTermRetentionPolicies/default?{SQL}",
        ret_path(db)
    )
}

fn long_term(db: &str) -> String {
    format!(
        "{}/backupLongTermRetentionPolicies/default?{SQL}",
        ret_path(db)
    )
}

#[tokio::test]
async fn retention_policies_are_set_with_azures_validation() {
    let env = start(&format!("{SCENARIO}{EXTRA}")).await;
    // Short-term: PUT states the policy; PATCH changes what it names.
    let r = env
        .arm(
            "PUT",
            &short_term("Kept"),
            Some(json!({"properties": {"retentionDays": 21, "diffBackupIntervalInHours": 24}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["properties"],
        json!({"retentionDays": 21, "diffBackupIntervalInHours": 24})
    );
    let r = env
        .arm(
            "PATCH",
            &short_term("Kept"),
            Some(json!({"properties": {"retentionDays": 14}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let now = env.arm("GET", &short_term("Kept"), None).await.json();
    assert_eq!(
        now["properties"],
        json!({"retentionDays": 14, "diffBackupIntervalInHours": 24})
    );
    for (body, code) in [
        (json!({"retentionDays": 0}), "InvalidBackupRetentionPeriod"),
        (json!({"retentionDays": 36}), "InvalidBackupRetentionPeriod"),
        (
            json!({"retentionDays": "7"}),
            "InvalidBackupRetentionPeriod",
        ),
        (
            json!({"diffBackupIntervalInHours": 6}),
            "InvalidDiffBackupIntervalHours",
        ),
    ] {
        let r = env
            .arm(
                "PUT",
                &short_term("Kept"),
                Some(json!({ "properties": body })),
            )
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, code),
            "{body}: {}",
            r.text
        );
    }
    let r = env
        .arm("PUT", &short_term("Kept"), Some(json!({"retention": 7})))
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "InvalidResourceRequestBody")
    );
    // A refused PUT changed nothing.
    assert_eq!(
        env.arm("GET", &short_term("Kept"), None).await.json()["properties"],
        now["properties"]
    );
    let r = env
        .arm(
            "PUT",
            &short_term("Ghost"),
            Some(json!({"properties": {"retentionDays": 7}})),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "ResourceNotFound"));

    // Long-term: durations up to 10 years, a week of the year with a
    // yearly copy.
    let policy = json!({"weeklyRetention": "P12W", "monthlyRetention": "P12M", "yearlyRetention": "P5Y", "weekOfYear": 16});
    let r = env
        .arm(
            "PUT",
            &long_term("Kept"),
            Some(json!({ "properties": policy })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        env.arm("GET", &long_term("Kept"), None).await.json()["properties"],
        policy
    );
    for (body, code) in [
        (
            json!({"yearlyRetention": "P5Y"}),
            "LongTermRetentionMissingWeekOfYear",
        ),
        (
            json!({"yearlyRetention": "P5Y", "weekOfYear": 53}),
            "LongTermRetentionMissingWeekOfYear",
        ),
        (
            json!({"weeklyRetention": "12 weeks"}),
            "LongTermRetentionPolicyInvalid",
        ),
        (
            json!({"weeklyRetention": "P521W"}),
            "LongTermRetentionPolicyInvalid",
        ),
        (
            json!({"monthlyRetention": "P0M"}),
            "LongTermRetentionPolicyInvalid",
        ),
        (
            json!({"yearlyRetention": "P11Y", "weekOfYear": 1}),
            "LongTermRetentionPolicyInvalid",
        ),
        (
            json!({"weeklyRetention": 12}),
            "LongTermRetentionPolicyInvalid",
        ),
    ] {
        let r = env
            .arm(
                "PUT",
                &long_term("Kept"),
                Some(json!({ "properties": body })),
            )
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, code),
            "{body}: {}",
            r.text
        );
    }
    assert_eq!(
        env.arm("GET", &long_term("Kept"), None).await.json()["properties"],
        policy,
        "a refused PUT changed nothing"
    );
    // Azure has no PATCH for long-term retention.
    let r = env
        .arm(
            "PATCH",
            &long_term("Kept"),
            Some(json!({ "properties": policy })),
        )
        .await;
    assert!(r.status >= 400, "{}", r.status);
    // Clearing it: every duration PT0S.
    let none = json!({"weeklyRetention": "PT0S", "monthlyRetention": "PT0S", "yearlyRetention": "PT0S", "weekOfYear": 0});
    let r = env
        .arm(
            "PUT",
            &long_term("Kept"),
            Some(json!({ "properties": none })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn tags_and_backup_redundancy() {
    let env = start(&format!("{SCENARIO}{EXTRA}")).await;
    let kept = env
        .arm("GET", &format!("{}?{SQL}", ret_path("Kept")), None)
        .await
        .json();
    assert_eq!(kept["tags"], json!({"env": "uat", "owner": "fno-team"}));
    assert_eq!(kept["properties"]["zoneRedundant"], true);
    assert_eq!(kept["properties"]["currentBackupStorageRedundancy"], "Zone");
    assert_eq!(
        kept["properties"]["requestedBackupStorageRedundancy"],
        "Zone"
    );
    let young = env
        .arm("GET", &format!("{}?{SQL}", ret_path("Young")), None)
        .await
        .json();
    assert!(young.get("tags").is_none(), "no tags, no member: {young}");
    assert_eq!(young["properties"]["zoneRedundant"], false);
    assert_eq!(young["properties"]["currentBackupStorageRedundancy"], "Geo");

    let body = |extra: Value| {
        let mut b = json!({"location": "westeurope", "properties": {"createMode": "PointInTimeRestore", "sourceDatabaseId": ret_path("Kept"), "restorePointInTime": ago(Duration::days(1))}});
        if let Some(t) = extra.get("tags") {
            b["tags"] = t.clone();
        }
        if let Some(p) = extra.get("properties").and_then(Value::as_object) {
            for (k, v) in p {
                b["properties"][k] = v.clone();
            }
        }
        b
    };
    // Nothing inherited: only what the PUT says, with Azure's defaults.
    let r = env
        .arm(
            "PUT",
            &format!("{}?{SQL}", ret_path("Plain")),
            Some(body(json!({}))),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let plain = env
        .arm("GET", &format!("{}?{SQL}", ret_path("Plain")), None)
        .await
        .json();
    assert!(plain.get("tags").is_none(), "{plain}");
    assert_eq!(plain["properties"]["zoneRedundant"], false);
    assert_eq!(plain["properties"]["currentBackupStorageRedundancy"], "Geo");
    let r = env
        .arm(
            "PUT",
            &format!("{}?{SQL}", ret_path("Tagged")),
            Some(body(json!({"tags": {"pitr-job": "b33834ee"}, "properties": {"zoneRedundant": true, "requestedBackupStorageRedundancy": "local"}}))),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let tagged = env
        .arm("GET", &format!("{}?{SQL}", ret_path("Tagged")), None)
        .await
        .json();
    assert_eq!(tagged["tags"], json!({"pitr-job": "b33834ee"}));
    assert_eq!(tagged["properties"]["zoneRedundant"], true);
    assert_eq!(
        tagged["properties"]["requestedBackupStorageRedundancy"],
        "Local"
    );
    for bad in [
        json!({"properties": {"requestedBackupStorageRedundancy": "Triple"}}),
        json!({"properties": {"zoneRedundant": "yes"}}),
        json!({"tags": {"n": 1}}),
        json!({"tags": ["a"]}),
    ] {
        let r = env
            .arm(
                "PUT",
                &format!("{}?{SQL}", ret_path("Bad")),
                Some(body(bad.clone())),
            )
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "InvalidRequestContent"),
            "{bad}"
        );
    }
    // A rename keeps all of it.
    let r = env
        .arm(
            "POST",
            &format!("{}/move?{SQL}", ret_path("Kept")),
            Some(json!({"id": ret_path("Kept_before")})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let moved = env
        .arm("GET", &format!("{}?{SQL}", ret_path("Kept_before")), None)
        .await
        .json();
    assert_eq!(moved["tags"], kept["tags"]);
    assert_eq!(
        moved["properties"]["currentBackupStorageRedundancy"],
        "Zone"
    );
    assert!(moved["properties"]["earliestRestoreDate"].is_string());
}

#[tokio::test]
async fn a_replicated_database_lists_its_links_and_is_not_renamed() {
    let extra = r#"
[[servers]]
subscription_id = "00000000-0000-0000-0000-000000000001"
resource_group = "rg-test"
name = "sql-ret"
location = "westeurope"

[[servers.databases]]
name = "Linked"
replication_links = [{ partner_server = "sql-dr", role = "Primary" }]
history = [{ at = "-5d", content = "linked" }]

[[servers.databases]]
name = "Grouped"
failover_group_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/sql-ret/failoverGroups/fog"
history = [{ at = "-5d", content = "grouped" }]

[[servers.databases]]
name = "Alone"
history = [{ at = "-5d", content = "alone" }]
"#;
    let env = start(&format!("{SCENARIO}{extra}")).await;
    let links = |db: &str| format!("{}/replicationLinks?{SQL}", ret_path(db));
    let r = env.arm("GET", &links("Linked"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    let link = &v["value"][0];
    assert_eq!(
        link["type"],
        "Microsoft.Sql/servers/databases/replicationLinks"
    );
    assert_eq!(link["properties"]["partnerServer"], "sql-dr");
    assert_eq!(
        link["properties"]["partnerDatabase"], "Linked",
        "same name by default"
    );
    assert_eq!(link["properties"]["role"], "Primary");
    assert_eq!(link["properties"]["partnerRole"], "Secondary");
    assert_eq!(link["properties"]["linkType"], "GEO");
    assert_eq!(
        env.arm("GET", &links("Alone"), None).await.json(),
        json!({"value": []})
    );
    assert_eq!(env.arm("GET", &links("Ghost"), None).await.status, 404);
    let grouped = env
        .arm("GET", &format!("{}?{SQL}", ret_path("Grouped")), None)
        .await
        .json();
    assert!(grouped["properties"]["failoverGroupId"]
        .as_str()
        .unwrap()
        .ends_with("/failoverGroups/fog"));
    assert!(env
        .arm("GET", &format!("{}?{SQL}", ret_path("Alone")), None)
        .await
        .json()["properties"]
        .get("failoverGroupId")
        .is_none());
    // Azure does not rename a database in a replication relationship.
    for db in ["Linked", "Grouped"] {
        let r = env
            .arm(
                "POST",
                &format!("{}/move?{SQL}", ret_path(db)),
                Some(json!({"id": ret_path(&format!("{db}_renamed"))})),
            )
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (409, "InvalidOperationForDatabaseInReplicationRelationship"),
            "{db}: {}",
            r.text
        );
    }
    let r = env
        .arm(
            "POST",
            &format!("{}/move?{SQL}", ret_path("Alone")),
            Some(json!({"id": ret_path("Alone_renamed")})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn threat_protection_and_read_scale_are_set_as_azure_allows() {
    let env = start(&format!("{SCENARIO}{EXTRA}")).await;
    let atp = |db: &str| {
        format!(
            "{}/advancedThreatProtectionSettings/Default?{SQL}",
            ret_path(db)
        )
    };
    let r = env.arm("GET", &atp("Kept"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["properties"]["state"],
        "New",
        "never set on the database"
    );
    let r = env
        .arm(
            "PUT",
            &atp("Kept"),
            Some(json!({"properties": {"state": "Enabled"}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = env
        .arm(
            "PUT",
            &atp("Kept"),
            Some(json!({"properties": {"state": "Disabled"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["properties"]["state"], "Disabled");
    let r = env
        .arm(
            "PUT",
            &atp("Kept"),
            Some(json!({"properties": {"state": "On"}})),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "AdvancedThreatProtectionInvalidUserSuppliedParameter")
    );
    // Read scale-out: a PATCH of the database; not on General Purpose.
    let db = format!("{}?{SQL}", ret_path("Kept"));
    assert_eq!(
        env.arm("GET", &db, None).await.json()["properties"]["readScale"],
        "Disabled"
    );
    let r = env
        .arm(
            "PATCH",
            &db,
            Some(json!({"properties": {"readScale": "Enabled"}})),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "InvalidReadScaleEdition"),
        "{}",
        r.text
    );
    let r = env
        .arm(
            "PATCH",
            &db,
            Some(json!({"properties": {"readScale": "Disabled"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["properties"]["readScale"], "Disabled");
}
