//! A requester and an operator, each signed in: a request is submitted,
//! refused while it breaks a rule, accepted and rehearsed; the history
//! names both people and the event stream shows every step.
use super::*;

async fn story(backend: Backend) {
    let svc = Service::start(backend, "", &[]).await;
    let rita = svc.token("requester").await;
    let olga = svc.token("operator").await;

    // A window sooner than 24 hours breaks a rule, named in the problem.
    let (s, p) = svc
        .call(
            "POST",
            "/api/v1/requests",
            Some(&rita),
            Some(Service::new_request(true)),
        )
        .await;
    assert_eq!((s, p["rule"].as_str()), (422, Some("notice-24h")), "{p}");
    // Only an operator may give an emergency reason.
    let mut urgent = Service::new_request(true);
    urgent["emergency_reason"] = json!("go-live tomorrow");
    let (s, p) = svc
        .call("POST", "/api/v1/requests", Some(&rita), Some(urgent))
        .await;
    assert_eq!(s, 403, "{p}");

    let resp = svc
        .http
        .post(svc.url("/api/v1/requests"))
        .bearer_auth(&rita)
        .json(&Service::new_request(false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/api/v1/requests/{id}"));
    assert_eq!(created["status"], "submitted");
    assert_eq!(created["requester"], "rita@contoso.com");

    let (s, accepted) = svc
        .call(
            "POST",
            &format!("/api/v1/requests/{id}/accept"),
            Some(&olga),
            None,
        )
        .await;
    assert_eq!(
        (s, accepted["status"].as_str()),
        (200, Some("accepted")),
        "{accepted}"
    );

    // Follow the request, then rehearse it.
    let stream = svc
        .http
        .get(svc.url(&format!("/api/v1/requests/{id}/events")))
        .bearer_auth(&olga)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let (s, ran) = svc
        .call(
            "POST",
            &format!("/api/v1/requests/{id}/run"),
            Some(&olga),
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(s, 202, "{ran}");
    let events = read_events(stream, std::time::Duration::from_secs(120)).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.last(), Some(&"end"), "{names:?}");
    assert_eq!(names.first(), Some(&"status"), "{names:?}");
    let job = events
        .iter()
        .rev()
        .find(|(n, _)| n == "job")
        .map(|(_, v)| v.clone())
        .expect("a job event");
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["dry_run"], true);
    for step in job["plan"].as_array().unwrap() {
        let last = events
            .iter()
            .rfind(|(n, v)| n == "step" && v["name"] == *step)
            .unwrap_or_else(|| panic!("no event for step {step}: {names:?}"));
        assert_eq!(last.1["status"], "succeeded", "{step}: {}", last.1);
    }
    assert!(
        events.iter().any(|(n, _)| n == "progress"),
        "progress lines of the run"
    );

    // The audit trail names both people.
    let (_, history) = svc
        .call(
            "GET",
            &format!("/api/v1/requests/{id}/history"),
            Some(&olga),
            None,
        )
        .await;
    let actors: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(
        actors,
        ["rita@contoso.com", "olga@contoso.com"],
        "{history}"
    );

    // One representation: the API and the CLI show the same request.
    let (_, shown) = svc
        .call("GET", &format!("/api/v1/requests/{id}"), Some(&olga), None)
        .await;
    assert_eq!(shown["status"], "accepted", "a rehearsal leaves the status");
    assert_eq!(shown, svc.cli_json(&["request", "show", &id, "--json"]));
    let (_, env) = svc
        .call("GET", "/api/v1/environments/uat", Some(&olga), None)
        .await;
    assert_eq!(env, svc.cli_json(&["env", "show", "uat", "--json"]));
    let (_, list) = svc.call("GET", "/api/v1/requests", Some(&olga), None).await;
    assert_eq!(list, svc.cli_json(&["request", "list", "--json"]));

    // The requester may still cancel their own request; a viewer may not.
    let vera = svc.token("viewer").await;
    assert_eq!(
        svc.call(
            "POST",
            &format!("/api/v1/requests/{id}/cancel"),
            Some(&vera),
            None
        )
        .await
        .0,
        403
    );
    let (s, c) = svc
        .call(
            "POST",
            &format!("/api/v1/requests/{id}/cancel"),
            Some(&rita),
            Some(json!({"reason": "done"})),
        )
        .await;
    assert_eq!((s, c["status"].as_str()), (200, Some("cancelled")), "{c}");
    // SIGTERM: the service stops cleanly.
    let mut svc = svc;
    assert!(svc.stop(), "pitr serve exits 0 on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_submits_and_an_operator_rehearses_sqlite() {
    story(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_submits_and_an_operator_rehearses_postgres() {
    story(Backend::Postgres(PgDatabase::create().await)).await;
}

/// `auth.mode = "none"` is refused unless the listener is loopback.
#[test]
fn mode_none_only_on_loopback() {
    let env = TestEnv::start_with(
        &scenario(""),
        "[serve]\nlisten = \"0.0.0.0:0\"\n[auth]\nmode = \"none\"\n",
    );
    let out = env.pitr(&["serve"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
    // And entra without its tenant and audience.
    let env = TestEnv::start_with(&scenario(""), "[serve]\nlisten = \"127.0.0.1:0\"\n");
    let out = env.pitr(&["serve"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("audience"));
}

/// A run in another process (the CLI, sharing the store) is followed too:
/// its steps come from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_follow_a_run_of_another_process() {
    let svc = Service::start(Backend::Sqlite, "", &[]).await;
    let olga = svc.token("operator").await;
    let (s, r) = svc
        .call(
            "POST",
            "/api/v1/requests",
            Some(&olga),
            Some(Service::new_request(false)),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    let (s, _) = svc
        .call(
            "POST",
            &format!("/api/v1/requests/{id}/accept"),
            Some(&olga),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let stream = svc
        .http
        .get(svc.url(&format!("/api/v1/requests/{id}/events")))
        .bearer_auth(&olga)
        .send()
        .await
        .unwrap();
    let run = svc.env.command(&["run", &id]).output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let events = read_events(stream, std::time::Duration::from_secs(60)).await;
    let (last, data) = events.last().expect("events");
    assert_eq!(
        (last.as_str(), &data["status"]),
        ("end", &json!("succeeded")),
        "{events:?}"
    );
    let job = events
        .iter()
        .rev()
        .find(|(n, _)| n == "job")
        .unwrap()
        .1
        .clone();
    for step in job["plan"].as_array().unwrap() {
        let seen = events
            .iter()
            .rfind(|(n, v)| n == "step" && v["name"] == *step)
            .unwrap_or_else(|| panic!("step {step}"));
        assert_eq!(seen.1["status"], "succeeded");
    }
    let (_, history) = svc
        .call(
            "GET",
            &format!("/api/v1/requests/{id}/history"),
            Some(&olga),
            None,
        )
        .await;
    let actors: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    // Submitted and accepted through the API, run by the CLI's --actor.
    assert_eq!(actors[..2], ["olga@contoso.com", "olga@contoso.com"]);
    assert!(actors[2..].iter().all(|a| *a == "tester"), "{actors:?}");
}

/// With `[serve] tls_cert`/`tls_key`, the service speaks HTTPS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_speaks_tls_with_its_own_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("tls.pem"), dir.path().join("tls.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let mut svc = Service::start(
        Backend::Sqlite,
        "",
        &[
            ("PITR_SERVE_TLS_CERT", cert.to_str().unwrap()),
            ("PITR_SERVE_TLS_KEY", key.to_str().unwrap()),
        ],
    )
    .await;
    assert!(svc.base.starts_with("https://"), "{}", svc.base);
    svc.http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ck.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    assert_eq!(svc.call("GET", "/healthz", None, None).await.0, 200);
    let viewer = svc.token("viewer").await;
    assert_eq!(
        svc.call("GET", "/api/v1/requests", Some(&viewer), None)
            .await
            .0,
        200
    );
    // Plain HTTP on the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(svc.base.replace("https://", "http://") + "/healthz")
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| !r.status().is_success()));
}
