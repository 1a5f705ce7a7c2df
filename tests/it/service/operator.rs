//! What only the CLI could do before the service layer, through the API:
//! an operator records a deployment, and confirms the steps of a run whose
//! environment's actions are `manual`; a requester may do neither.
use super::*;

async fn request_of(svc: &Service, token: &str, id: &str) -> Value {
    let (s, r) = svc
        .call("GET", &format!("/api/v1/requests/{id}"), Some(token), None)
        .await;
    assert_eq!(s, 200, "{r}");
    r
}

/// The status of step `name` of the request's latest run.
fn step_status(r: &Value, name: &str) -> String {
    r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .map(|s| s["status"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// Reads the request until `done` holds (the run goes on in the service's
/// background), for at most a minute.
async fn until(svc: &Service, token: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = request_of(svc, token, id).await;
        if done(&r) {
            return r;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {r}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_records_deployments_and_confirms_manual_steps_over_the_api() {
    let svc = Service::start_full(
        Backend::Sqlite,
        "",
        "",
        "",
        "actions = \"manual\"",
        &[("PITR_TEST_SQL_PASSWORD", "x")],
    )
    .await;
    let rita = svc.token("requester").await;
    let olga = svc.token("operator").await;

    // A deployment: the operator's, recorded in the environment's history.
    let at = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let body = json!({"version": "10.0.40", "at": at});
    let path = "/api/v1/environments/uat/deployments";
    let (s, p) = svc
        .call("POST", path, Some(&rita), Some(body.clone()))
        .await;
    assert_eq!(s, 403, "{p}");
    let (s, d) = svc
        .call("POST", path, Some(&olga), Some(body.clone()))
        .await;
    assert_eq!(
        (s, &d["version"], &d["at"]),
        (201, &json!("10.0.40"), &json!(at))
    );
    let (_, env) = svc
        .call("GET", "/api/v1/environments/uat", Some(&olga), None)
        .await;
    assert_eq!(
        env["deployments"],
        json!([{"at": at, "version": "10.0.40"}])
    );
    let (s, _) = svc
        .call(
            "POST",
            "/api/v1/environments/nowhere/deployments",
            Some(&olga),
            Some(body),
        )
        .await;
    assert_eq!(s, 404);
    let (s, p) = svc
        .call(
            "POST",
            path,
            Some(&olga),
            Some(json!({"version": "10.0.41", "at": "yesterday"})),
        )
        .await;
    assert_eq!(s, 400, "{p}");

    // A run whose actions wait for a person.
    let (s, created) = svc
        .call(
            "POST",
            "/api/v1/requests",
            Some(&rita),
            Some(Service::new_request(false)),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let accept = format!("/api/v1/requests/{id}/accept");
    let run = format!("/api/v1/requests/{id}/run");
    // Not accepted yet: a 409 whose hint is the API's own call, for this
    // request, never a command line.
    let (s, p) = svc.call("POST", &run, Some(&olga), None).await;
    assert_eq!(s, 409, "{p}");
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("must be accepted first")
            && detail.ends_with(&format!("; POST {accept} accepts it"))
            && !detail.contains("pitr "),
        "{detail}"
    );
    assert_eq!(svc.call("POST", &accept, Some(&olga), None).await.0, 200);
    assert_eq!(svc.call("POST", &run, Some(&olga), None).await.0, 202);
    let confirm = format!("/api/v1/jobs/{id}/confirm");
    // Only an operator confirms; a step that does not wait is refused.
    let r = until(&svc, &olga, &id, |r| step_status(r, "offline") == "waiting").await;
    let job = r["job"]["id"].as_str().unwrap().to_string();
    let (s, p) = svc
        .call(
            "POST",
            &confirm,
            Some(&rita),
            Some(json!({"step": "offline"})),
        )
        .await;
    assert_eq!(s, 403, "{p}");
    let (s, p) = svc
        .call("POST", &confirm, Some(&olga), Some(json!({"step": "sync"})))
        .await;
    assert_eq!(s, 409, "{p}");
    assert!(!p["detail"].as_str().unwrap().contains("pitr "), "{p}");
    let (s, p) = svc
        .call("POST", &confirm, Some(&olga), Some(json!({"step": "nap"})))
        .await;
    assert_eq!(s, 400, "{p}");
    for step in ["offline", "sync", "mr_reset", "online"] {
        let r = until(&svc, &olga, &id, |r| step_status(r, step) == "waiting").await;
        assert_eq!(r["status"], "running", "{r}");
        // By the job's id or the request's: both name the same run.
        let by = if step == "sync" { &job } else { &id };
        let (s, p) = svc
            .call(
                "POST",
                &format!("/api/v1/jobs/{by}/confirm"),
                Some(&olga),
                Some(json!({"step": step})),
            )
            .await;
        assert_eq!(
            (s, p["id"].as_str()),
            (202, Some(id.as_str())),
            "{step}: {p}"
        );
    }
    let done = until(&svc, &olga, &id, |r| r["status"] != "running").await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let confirmed: Vec<&Value> = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["note"].as_str().unwrap_or("").contains("confirmed done"))
        .collect();
    assert_eq!(confirmed.len(), 4, "{done}");
    assert!(confirmed.iter().all(|e| e["actor"] == "olga@contoso.com"));
}
