//! Microsoft.Sql databases: get, restore, rename, delete.

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use super::*;

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

    // In-process inspection matches the HTTP one (but for the earliest
    // restore dates, which move with time).
    let without_dates = |mut v: Value| {
        for s in v["servers"].as_array_mut().unwrap() {
            for d in s["databases"].as_array_mut().unwrap() {
                d.as_object_mut().unwrap().remove("earliest_restore_date");
            }
        }
        v["servers"].take()
    };
    let st = env.mock.state_json();
    let http_state = env.get_json("/_mock/state").await;
    assert_eq!(without_dates(st), without_dates(http_state));
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

    // A restore gets its source's retention; its URLs carry the request's api-version.
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
    assert_eq!(p["properties"]["retentionDays"], 20, "the source's");
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
