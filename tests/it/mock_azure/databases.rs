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
