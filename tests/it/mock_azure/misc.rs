//! Faults, holds, authentication, api-versions.

use std::sync::Arc;

use chrono::Duration;
use serde_json::json;

use super::*;

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
    assert!(!v["value"][0]["message"]
        .as_str()
        .unwrap()
        .contains("pitr-exit-code"));
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
        json!({"held": ["restore"], "held_scripts": []})
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
            &format!("{}?api-version=2019-06-01-preview", db_path("AxDB")),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "NoRegisteredProviderFound")
    );
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.starts_with("No registered resource provider found for location 'westeurope' and API version '2019-06-01-preview' for type 'servers/databases'. The supported api-versions are '2021-11-01, 2022-02-01-preview, "), "{msg}");
    assert!(
        msg.ends_with(", 2025-01-01'. The supported locations are 'westeurope'."),
        "{msg}"
    );
    // Microsoft.Sql's version on a Microsoft.Compute path.
    let r = env
        .arm(
            "POST",
            &vm_url("vm-aos1").replace(COMPUTE, "api-version=2016-04-30-preview"),
            Some(run_body(&["x"], json!([]))),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "NoRegisteredProviderFound")
    );
    assert!(r.text.contains("for type 'virtualMachines'"), "{}", r.text);
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
    // The journal records the token request as it was sent.
    let journal = env.get_json("/_mock/requests").await;
    assert!(journal
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["body"]["client_secret"] == "shh-secret" && e["body"]["client_id"] == "app-id"));
}
