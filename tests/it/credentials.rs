//! Each `[azure] credential` kind gets a token its own way, and pitr then
//! talks to Azure with it: a submit (which reads the database from ARM)
//! succeeds, and the mock's journal shows how the token was obtained.
//! `client_secret` is the other tests' kind.
use crate::helpers::*;
use chrono::Duration;
use serde_json::Value;

/// The environment configured with `credential = kind`.
fn with_credential(kind: &str) -> TestEnv {
    let t = TestEnv::start(&scenario(""));
    let text = std::fs::read_to_string(&t.config).unwrap();
    assert!(text.contains("credential = \"client_secret\""));
    std::fs::write(
        &t.config,
        text.replace(
            "credential = \"client_secret\"",
            &format!("credential = \"{kind}\""),
        ),
    )
    .unwrap();
    t
}

/// `pitr request submit` with these variables; returns the token
/// requests the mock saw from it.
async fn submit(t: &TestEnv, vars: &[(&str, &str)], remove: &[&str]) -> Vec<Value> {
    let before = t.journal().await.len();
    let now = chrono::Utc::now();
    let (point, ws, we) = (
        rfc3339_ago(Duration::days(1)),
        (now + Duration::days(2)).to_rfc3339(),
        (now + Duration::days(2) + Duration::hours(2)).to_rfc3339(),
    );
    let mut c = t.command(&submit_args(&point, &ws, &we));
    for (k, v) in vars {
        c.env(k, v);
    }
    for k in remove {
        c.env_remove(k);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let journal = t.journal().await;
    assert!(
        journal[before..]
            .iter()
            .any(|e| e["path"].as_str().unwrap().contains("/databases/AxDB?")),
        "ARM was read"
    );
    journal[before..]
        .iter()
        .filter(|e| e["path"].as_str().unwrap().contains("/oauth2/v2.0/token"))
        .cloned()
        .collect()
}

/// A token the mock issued, fetched as an outside token source would.
async fn mock_token(t: &TestEnv) -> String {
    let ca = std::fs::read(t.path("ca.pem")).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let v: Value = http
        .post(format!("{}/test-tenant/oauth2/v2.0/token", t.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("grant_type", "client_credentials"),
                    ("client_id", "outside"),
                    ("client_secret", "outside"),
                    ("scope", "https://management.azure.com/.default"),
                ])
                .finish(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_uses_the_client_secret_when_one_is_set() {
    let t = with_credential("default");
    let tokens = submit(
        &t,
        &[],
        &["AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT"],
    )
    .await;
    assert!(!tokens.is_empty());
    assert!(tokens
        .iter()
        .all(|e| e["body"].to_string().contains("test-only-not-a-secret")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_sends_the_federated_token_as_its_assertion() {
    let t = with_credential("workload_identity");
    let file = t.path("federated-token");
    std::fs::write(&file, "eyJ.federated.assertion").unwrap();
    let tokens = submit(
        &t,
        &[("AZURE_FEDERATED_TOKEN_FILE", file.to_str().unwrap())],
        &["PITR_TEST_CLIENT_SECRET"],
    )
    .await;
    assert!(!tokens.is_empty());
    for e in &tokens {
        let body = e["body"].to_string();
        assert!(body.contains("eyJ.federated.assertion"), "{body}");
        assert!(body.contains("client_assertion_type"), "{body}");
        assert!(!body.contains("client_secret="), "{body}");
        assert!(e["path"].as_str().unwrap().starts_with("/test-tenant/"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_cli_asks_az_for_a_token_of_arm() {
    let t = with_credential("azure_cli");
    let token = mock_token(&t).await;
    let bin = t.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let calls = t.path("az-calls");
    let expires = chrono::Utc::now() + Duration::minutes(50);
    let az = bin.join("az");
    std::fs::write(
        &az,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\necho '{{\"accessToken\":\"{token}\",\"expiresOn\":\"{}\",\"expires_on\":{},\"tokenType\":\"Bearer\",\"tenant\":\"test-tenant\"}}'\n",
            calls.display(),
            expires.format("%Y-%m-%d %H:%M:%S%.6f"),
            expires.timestamp()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let tokens = submit(&t, &[("PATH", &path)], &["PITR_TEST_CLIENT_SECRET"]).await;
    assert!(tokens.is_empty(), "no token endpoint call: {tokens:?}");
    let asked = std::fs::read_to_string(&calls).unwrap();
    assert!(asked.contains("account get-access-token"), "{asked}");
    assert!(
        asked.contains("--scope https://management.azure.com/.default"),
        "{asked}"
    );
    assert!(asked.contains("--tenant test-tenant"), "{asked}");
}

/// App Service's managed identity endpoint (`IDENTITY_ENDPOINT`), served
/// here: pitr asks it for ARM with the secret header and its client id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_asks_the_identity_endpoint() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = with_credential("managed_identity");
    let token = mock_token(&t).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let expires = (chrono::Utc::now() + Duration::minutes(50)).timestamp();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = seen_tx.send(String::from_utf8_lossy(&head).into_owned());
            let body = format!(
                r#"{{"access_token":"{token}","expires_on":"{expires}","resource":"https://management.azure.com","token_type":"Bearer"}}"#
            );
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(answer.as_bytes()).await;
        }
    });
    let endpoint = format!("http://127.0.0.1:{port}/msi/token");
    let tokens = submit(
        &t,
        &[
            ("IDENTITY_ENDPOINT", &endpoint),
            ("IDENTITY_HEADER", "identity-header-value"),
        ],
        &["PITR_TEST_CLIENT_SECRET"],
    )
    .await;
    server.abort();
    assert!(tokens.is_empty(), "no token endpoint call: {tokens:?}");
    let asked = seen_rx
        .recv()
        .await
        .expect("the identity endpoint was asked");
    let first = asked.lines().next().unwrap();
    assert!(first.starts_with("GET /msi/token?"), "{first}");
    assert!(first.contains("api-version=2019-08-01"), "{first}");
    assert!(
        first.contains("resource=https%3A%2F%2Fmanagement.azure.com"),
        "{first}"
    );
    assert!(first.contains("client_id=test-client"), "{first}");
    assert!(
        asked
            .to_ascii_lowercase()
            .contains("x-identity-header: identity-header-value"),
        "{asked}"
    );
}
