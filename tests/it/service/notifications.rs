//! Signed notifications: a local receiver gets every event of every
//! request, in order, signed; exactly once while it is up (deliveries are
//! counted, never de-duplicated); while it is down nothing is lost, and a
//! retried event keeps its delivery id.
use super::*;
use axum::http::HeaderMap;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};

const KEY: &str = "test-only-notification-key";

#[derive(Clone, Default)]
struct Got {
    /// Every call answered 204, in arrival order.
    calls: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    /// Every call answered 503 while down.
    refused: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    down: Arc<AtomicBool>,
}

/// A receiver on `addr`; while `down`, it answers 503 (and, stopped, it
/// refuses connections).
async fn receiver(
    addr: std::net::SocketAddr,
    got: Got,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let got = got.clone();
            async move {
                if got.down.load(Ordering::SeqCst) {
                    got.refused.lock().unwrap().push((headers, body));
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                got.calls.lock().unwrap().push((headers, body));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

async fn wait_status(svc: &Service, token: &str, id: &str, want: &str) {
    let mut last = Value::Null;
    for _ in 0..600 {
        let (_, r) = svc
            .call("GET", &format!("/api/v1/requests/{id}"), Some(token), None)
            .await;
        if r["status"] == want {
            return;
        }
        last = r;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("request {id} never became {want}: {last}");
}

async fn submit(svc: &Service, token: &str) -> String {
    // After the last restore's end (backup history restarts at a restore).
    let mut body = Service::new_request(false);
    body["restore_point"] = json!(chrono::Utc::now().to_rfc3339());
    let (s, r) = svc
        .call("POST", "/api/v1/requests", Some(token), Some(body))
        .await;
    assert_eq!(s, 201, "{r}");
    r["id"].as_str().unwrap().to_string()
}

async fn post(svc: &Service, token: &str, path: String, body: Option<Value>) {
    let (s, r) = svc.call("POST", &path, Some(token), body).await;
    assert!(s == 200 || s == 202, "POST {path}: {s} {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_gets_every_event_in_order_signed_even_after_an_outage_sqlite() {
    notifications(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_gets_every_event_in_order_signed_even_after_an_outage_postgres() {
    notifications(Backend::Postgres(PgDatabase::create().await)).await;
}

async fn notifications(backend: Backend) {
    let got = Got::default();
    let (addr, task) = receiver("127.0.0.1:0".parse().unwrap(), got.clone()).await;
    let extra = format!(
        "[[notifications]]\nurl = \"http://{addr}/hook\"\nsecret_env = \"PITR_TEST_NOTIFY_KEY\"\n"
    );
    let svc = Service::start(backend, &extra, &[("PITR_TEST_NOTIFY_KEY", KEY)]).await;
    let rita = svc.token("requester").await;
    let olga = svc.token("operator").await;
    let later = (chrono::Utc::now() + chrono::Duration::days(2) + chrono::Duration::minutes(30))
        .to_rfc3339();

    // A: submitted, rescheduled, accepted, run (started, succeeded), rolled back.
    let a = submit(&svc, &rita).await;
    post(
        &svc,
        &rita,
        format!("/api/v1/requests/{a}/reschedule"),
        Some(json!({"window_start": later})),
    )
    .await;
    post(&svc, &olga, format!("/api/v1/requests/{a}/accept"), None).await;
    post(&svc, &olga, format!("/api/v1/requests/{a}/run"), None).await;
    wait_status(&svc, &olga, &a, "succeeded").await;
    post(
        &svc,
        &olga,
        format!("/api/v1/requests/{a}/rollback"),
        Some(json!({"reason": "not wanted"})),
    )
    .await;
    wait_status(&svc, &olga, &a, "rolled_back").await;

    // Every event of A delivered before the receiver goes down.
    let mut delivered = 0;
    for _ in 0..600 {
        let list = svc.cli_json(&["notifications", "list", "--json"]);
        delivered = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["request_id"] == a.as_str() && d["status"] == "delivered")
            .count();
        if delivered == 7 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(delivered, 7, "A's seven events delivered");

    // The receiver goes down (503): B is rejected, C cancelled meanwhile.
    got.down.store(true, Ordering::SeqCst);
    let b = submit(&svc, &rita).await;
    post(
        &svc,
        &olga,
        format!("/api/v1/requests/{b}/reject"),
        Some(json!({"reason": "no"})),
    )
    .await;
    let c = submit(&svc, &rita).await;
    post(&svc, &rita, format!("/api/v1/requests/{c}/cancel"), None).await;
    // Until the worker has tried (and failed) more than once.
    let mut retried = false;
    for _ in 0..300 {
        let list = svc.cli_json(&["notifications", "list", "--json"]);
        retried = list
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["status"] == "pending" && d["attempts"].as_u64().unwrap_or(0) >= 2);
        if retried {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        retried,
        "deliveries were retried while the receiver was down"
    );
    // Then stopped: connections refused.
    task.abort();
    let _ = task.await;

    // Back up, on the same address; D's restore fails.
    got.down.store(false, Ordering::SeqCst);
    let (_, task) = receiver(addr, got.clone()).await;
    let d = submit(&svc, &rita).await;
    post(&svc, &olga, format!("/api/v1/requests/{d}/accept"), None).await;
    svc.env
        .post(
            "/_mock/faults",
            json!({"operation": "restore", "outcome": "fail", "error_code": "OperationFailed", "message": "injected"}),
        )
        .await;
    post(&svc, &olga, format!("/api/v1/requests/{d}/run"), None).await;
    wait_status(&svc, &olga, &d, "failed").await;

    let expected: BTreeMap<&str, Vec<&str>> = [
        (
            a.as_str(),
            vec![
                "submitted",
                "rescheduled",
                "accepted",
                "started",
                "succeeded",
                "rollback_started",
                "rolled_back",
            ],
        ),
        (b.as_str(), vec!["submitted", "rejected"]),
        (c.as_str(), vec!["submitted", "cancelled"]),
        (
            d.as_str(),
            vec!["submitted", "accepted", "started", "step_failed", "failed"],
        ),
    ]
    .into_iter()
    .collect();
    let total: usize = expected.values().map(Vec::len).sum();
    let mut by_request: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for _ in 0..600 {
        // The first delivery of each delivery id, in arrival order.
        let calls = got.calls.lock().unwrap().clone();
        let mut seen_ids = std::collections::HashSet::new();
        by_request.clear();
        for (h, body) in &calls {
            let id = h["x-pitr-delivery"].to_str().unwrap().to_string();
            if !seen_ids.insert(id) {
                continue;
            }
            let v: Value = serde_json::from_str(body).unwrap();
            by_request
                .entry(v["request_id"].as_str().unwrap().to_string())
                .or_default()
                .push(v["event"].as_str().unwrap().to_string());
        }
        if by_request.values().map(Vec::len).sum::<usize>() >= total {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for (id, want) in &expected {
        assert_eq!(
            by_request.get(*id).cloned().unwrap_or_default(),
            *want,
            "events of {id}"
        );
    }

    let calls = got.calls.lock().unwrap().clone();
    let mut ids_of_body: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
    for (h, body) in &calls {
        // Signed with the key, over the exact body.
        let want = pitr::engine::steps::signature(KEY.as_bytes(), body.as_bytes());
        assert_eq!(h["x-pitr-signature"].to_str().unwrap(), want, "{body}");
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            h["x-pitr-event"].to_str().unwrap(),
            v["event"].as_str().unwrap()
        );
        for k in [
            "event",
            "request_id",
            "environment",
            "status",
            "at",
            "actor",
            "detail",
        ] {
            assert!(v.get(k).is_some(), "{k} in {v}");
        }
        ids_of_body
            .entry(body.clone())
            .or_default()
            .insert(h["x-pitr-delivery"].to_str().unwrap().to_string());
    }
    for (body, ids) in &ids_of_body {
        assert_eq!(ids.len(), 1, "one delivery id per event: {body}");
    }
    // Counted, not de-duplicated: while the receiver was up (A, D) each
    // event reached it exactly once; through the outage (B, C) at least
    // once, every attempt under the event's one delivery id.
    let refused = got.refused.lock().unwrap().clone();
    let key = |h: &HeaderMap, body: &str| {
        let v: Value = serde_json::from_str(body).unwrap();
        (
            v["request_id"].as_str().unwrap().to_string(),
            v["event"].as_str().unwrap().to_string(),
            h["x-pitr-delivery"].to_str().unwrap().to_string(),
        )
    };
    let mut answered: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (h, body) in &calls {
        let (r, e, id) = key(h, body);
        answered.entry((r, e)).or_default().push(id);
    }
    for (id, events) in &expected {
        for event in events {
            let ids = answered
                .get(&(id.to_string(), event.to_string()))
                .cloned()
                .unwrap_or_default();
            if *id == b.as_str() || *id == c.as_str() {
                assert!(!ids.is_empty(), "{event} of {id} delivered");
            } else {
                assert_eq!(
                    ids.len(),
                    1,
                    "{event} of {id}: delivered exactly once: {ids:?}"
                );
            }
        }
    }
    assert!(!refused.is_empty(), "the outage was seen by the receiver");
    for (h, body) in &refused {
        let (r, e, id) = key(h, body);
        assert!(r == b || r == c, "only B and C met the outage: {r} {e}");
        assert_eq!(
            answered
                .get(&(r.clone(), e.clone()))
                .cloned()
                .unwrap_or_default(),
            vec![id.clone()],
            "{e} of {r}: refused under {id}, then delivered once under the same id"
        );
    }
    // Who did it is in the notification.
    let actors: Vec<String> = calls
        .iter()
        .map(|(_, b)| serde_json::from_str::<Value>(b).unwrap())
        .filter(|v| v["request_id"] == a.as_str())
        .map(|v| v["actor"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actors[0], "rita@contoso.com");
    assert_eq!(actors[2], "olga@contoso.com");

    // `pitr notifications list` shows every delivery as delivered.
    let list = svc.cli_json(&["notifications", "list", "--json"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), total, "{list:?}");
    assert!(list.iter().all(|d| d["status"] == "delivered"), "{list:?}");
    assert!(list.iter().any(|d| d["attempts"].as_u64().unwrap() > 1));
    task.abort();
}
