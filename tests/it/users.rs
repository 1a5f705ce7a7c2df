//! What a new user trips on: each story is a place where a user stopped,
//! guessed, or was told something untrue, and what they see now.
use crate::helpers::*;
use std::time::{Duration, Instant};

fn window() -> (String, String) {
    let now = chrono::Utc::now();
    (
        (now + chrono::Duration::days(2)).to_rfc3339(),
        (now + chrono::Duration::days(2) + chrono::Duration::hours(2)).to_rfc3339(),
    )
}

/// With nothing listening at the ARM endpoint, a command ends within
/// seconds with one error naming the endpoint, the cause and the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_azure_is_named_quickly_with_what_to_check() {
    let t = TestEnv::start(&scenario(""));
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dead = format!("https://127.0.0.1:{port}");
    let (ws, we) = window();
    let point = rfc3339_ago(chrono::Duration::days(1));
    let started = Instant::now();
    let out = t
        .command(&submit_args(&point, &ws, &we))
        .env("PITR_AZURE_ARM_ENDPOINT", &dead)
        .env("PITR_AZURE_AUTHORITY_HOST", &dead)
        .output()
        .unwrap();
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(err.contains(&dead), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert!(err.contains("pitr mock-azure"), "{err}");
    assert!(!err.contains("WARN"), "one error, no retry noise: {err}");
}

/// A run that could not reach Azure changed nothing: the request stays
/// accepted and runnable, the user is told so, and nothing claims a
/// recovery that did not happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_changed_nothing_leaves_the_request_accepted() {
    let t = TestEnv::start(&scenario(""));
    let id = t.submit_accepted(&rfc3339_ago(chrono::Duration::days(1)));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("https://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let out = t
        .command(&["run", &id])
        .env("PITR_AZURE_ARM_ENDPOINT", &dead)
        .env("PITR_AZURE_AUTHORITY_HOST", &dead)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nothing was changed in Azure"), "{err}");
    assert!(err.contains(&format!("pitr run {id}")), "{err}");
    assert!(!err.contains("recovering"), "{err}");
    assert!(!err.contains("online"), "nothing went offline: {err}");
    let show = t.json(&["request", "show", &id, "--json"]);
    assert_eq!(show["status"], "accepted");
    // And it runs for real once Azure is back.
    t.ok(&["run", &id]);
    assert_eq!(
        t.json(&["request", "show", &id, "--json"])["status"],
        "succeeded"
    );
}

/// Entra ID refusing the credential (AADSTS...) is final: no minute of
/// retries, and the message names the client, the tenant and the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_credential_is_final_and_names_what_to_fix() {
    let t = TestEnv::start(&format!(
        "{}\n[[faults]]\npath_contains = \"oauth2/v2.0/token\"\nstatus = 401\nerror_code = \"invalid_client\"\nmessage = \"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.\"\ntimes = 0\n",
        scenario("")
    ));
    let (ws, we) = window();
    let started = Instant::now();
    let out = t.pitr(&submit_args(
        &rfc3339_ago(chrono::Duration::days(1)),
        &ws,
        &we,
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "{err}");
    assert!(err.contains("AADSTS7000215"), "{err}");
    assert!(
        err.contains("test-client") && err.contains("test-tenant"),
        "{err}"
    );
    assert!(err.contains("client_secret_env"), "{err}");
    let tokens = requests(&t.journal().await, "POST", "oauth2/v2.0/token").len();
    assert_eq!(tokens, 1, "asked once, not retried");
}
