//! Every endpoint against every kind of caller: no token, bad tokens of
//! each kind, and each role. A refused call changes nothing and leaves no
//! audit record, only its line in the log.
use super::*;
use base64::Engine as _;

/// The callers of the matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    NoToken,
    Expired,
    WrongAudience,
    WrongIssuer,
    WrongSignature,
    AlgNone,
    Hmac,
    Viewer,
    Requester,
    Outsider,
    Operator,
}

const ALL: [Who; 11] = [
    Who::NoToken,
    Who::Expired,
    Who::WrongAudience,
    Who::WrongIssuer,
    Who::WrongSignature,
    Who::AlgNone,
    Who::Hmac,
    Who::Viewer,
    Who::Requester,
    Who::Outsider,
    Who::Operator,
];

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

async fn token_for(svc: &Service, who: Who) -> Option<String> {
    let good = |u: &str| json!({"user": u, "audience": AUDIENCE, "tenant": TENANT});
    Some(match who {
        Who::NoToken => return None,
        Who::Expired => {
            svc.token_with(json!({"user": "operator", "audience": AUDIENCE, "tenant": TENANT, "expires_in": -600}))
                .await
        }
        Who::WrongAudience => {
            svc.token_with(json!({"user": "operator", "audience": "api://other", "tenant": TENANT}))
                .await
        }
        Who::WrongIssuer => {
            svc.token_with(json!({"user": "operator", "audience": AUDIENCE, "tenant": "other-tenant"}))
                .await
        }
        Who::WrongSignature => {
            let t = svc.token_with(good("operator")).await;
            let (head_body, sig) = t.rsplit_once('.').unwrap();
            let mut sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(sig)
                .unwrap();
            sig[10] ^= 0x55;
            format!("{head_body}.{}", b64(&sig))
        }
        Who::AlgNone => {
            let t = svc.token_with(good("operator")).await;
            let body = t.split('.').nth(1).unwrap().to_string();
            format!("{}.{body}.", b64(br#"{"alg":"none","typ":"JWT"}"#))
        }
        Who::Hmac => {
            // An HMAC token keyed with what an attacker knows.
            let t = svc.token_with(good("operator")).await;
            let claims: Value = serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(t.split('.').nth(1).unwrap())
                    .unwrap(),
            )
            .unwrap();
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            header.kid = jsonwebtoken::decode_header(&t).unwrap().kid;
            jsonwebtoken::encode(
                &header,
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(b"public-key-bytes"),
            )
            .unwrap()
        }
        Who::Viewer => svc.token("viewer").await,
        Who::Requester => svc.token("requester").await,
        Who::Outsider => svc.token("outsider").await,
        Who::Operator => svc.token("operator").await,
    })
}

/// What a caller gets from an endpoint, in the matrix's state: `r` is an
/// active request of the requester, `c` a cancelled one of theirs.
fn expected(who: Who, endpoint: &str) -> u16 {
    use Who::*;
    if matches!(
        who,
        NoToken | Expired | WrongAudience | WrongIssuer | WrongSignature | AlgNone | Hmac
    ) {
        return 401;
    }
    let read = 200;
    match endpoint {
        "openapi" | "environments" | "environment" | "requests" | "request" | "history"
        | "events" | "metrics" => read,
        // `uat` has an active request: one-active-request.
        "submit" => match who {
            Requester | Operator => 409,
            _ => 403,
        },
        // `c` is theirs and cancelled: the lifecycle refuses.
        "cancel" | "reschedule" => match who {
            Requester | Operator => 409,
            _ => 403,
        },
        "accept" | "reject" | "run" | "resume" | "rollback" | "confirm" => match who {
            Operator => 409,
            _ => 403,
        },
        // An operator gets as far as the empty version.
        "deployment" => match who {
            Operator => 400,
            _ => 403,
        },
        other => panic!("{other}"),
    }
}

fn endpoints(r: &str, c: &str) -> Vec<(&'static str, &'static str, String, Option<Value>)> {
    let later = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    vec![
        ("openapi", "GET", "/api/v1/openapi.json".into(), None),
        ("metrics", "GET", "/metrics".into(), None),
        ("environments", "GET", "/api/v1/environments".into(), None),
        (
            "environment",
            "GET",
            "/api/v1/environments/uat".into(),
            None,
        ),
        ("requests", "GET", "/api/v1/requests".into(), None),
        (
            "submit",
            "POST",
            "/api/v1/requests".into(),
            Some(Service::new_request(false)),
        ),
        ("request", "GET", format!("/api/v1/requests/{r}"), None),
        (
            "history",
            "GET",
            format!("/api/v1/requests/{r}/history"),
            None,
        ),
        (
            "events",
            "GET",
            format!("/api/v1/requests/{c}/events"),
            None,
        ),
        (
            "accept",
            "POST",
            format!("/api/v1/requests/{c}/accept"),
            None,
        ),
        (
            "reject",
            "POST",
            format!("/api/v1/requests/{c}/reject"),
            Some(json!({"reason": "no"})),
        ),
        (
            "cancel",
            "POST",
            format!("/api/v1/requests/{c}/cancel"),
            Some(json!({"reason": "x"})),
        ),
        (
            "reschedule",
            "POST",
            format!("/api/v1/requests/{c}/reschedule"),
            Some(json!({"window_start": later})),
        ),
        (
            "run",
            "POST",
            format!("/api/v1/requests/{c}/run"),
            Some(json!({"dry_run": false})),
        ),
        (
            "resume",
            "POST",
            format!("/api/v1/requests/{c}/resume"),
            None,
        ),
        (
            "confirm",
            "POST",
            format!("/api/v1/jobs/{c}/confirm"),
            Some(json!({"step": "sync"})),
        ),
        (
            "deployment",
            "POST",
            "/api/v1/environments/uat/deployments".into(),
            Some(json!({"version": " ", "at": later})),
        ),
        (
            "rollback",
            "POST",
            format!("/api/v1/requests/{c}/rollback"),
            None,
        ),
    ]
}

/// What must not change: every request with its history, and the outbox.
async fn snapshot(svc: &Service, op: &str, ids: &[&str]) -> Value {
    let (_, list) = svc.call("GET", "/api/v1/requests", Some(op), None).await;
    let mut histories = Vec::new();
    for id in ids {
        histories.push(
            svc.call(
                "GET",
                &format!("/api/v1/requests/{id}/history"),
                Some(op),
                None,
            )
            .await
            .1,
        );
    }
    json!({"list": list, "histories": histories})
}

async fn matrix(backend: Backend) {
    let svc = Service::start(backend, "", &[]).await;
    let requester = svc.token("requester").await;
    let operator = svc.token("operator").await;
    // c: submitted, then cancelled by its requester; r: active.
    let (s, c) = svc
        .call(
            "POST",
            "/api/v1/requests",
            Some(&requester),
            Some(Service::new_request(false)),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let c = c["id"].as_str().unwrap().to_string();
    let (s, b) = svc
        .call(
            "POST",
            &format!("/api/v1/requests/{c}/cancel"),
            Some(&requester),
            None,
        )
        .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("cancelled")), "{b}");
    let (s, r) = svc
        .call(
            "POST",
            "/api/v1/requests",
            Some(&requester),
            Some(Service::new_request(false)),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let r = r["id"].as_str().unwrap().to_string();
    let before = snapshot(&svc, &operator, &[&r, &c]).await;

    let mut denied = 0;
    for who in ALL {
        let token = token_for(&svc, who).await;
        for (name, method, path, body) in endpoints(&r, &c) {
            let (status, answer) = svc.call(method, &path, token.as_deref(), body).await;
            let want = expected(who, name);
            assert_eq!(status, want, "{who:?} {method} {path}: {answer}");
            if status >= 400 {
                assert_eq!(answer["status"], json!(status), "a problem: {answer}");
                assert!(
                    answer["type"].is_string()
                        && answer["title"].is_string()
                        && answer["detail"].is_string(),
                    "{answer}"
                );
                let text = answer.to_string();
                if let Some(t) = &token {
                    assert!(!text.contains(t.as_str()), "a token is never echoed");
                }
            }
            if status == 401 || status == 403 {
                denied += 1;
            }
        }
        assert_eq!(
            snapshot(&svc, &operator, &[&r, &c]).await,
            before,
            "after {who:?}: nothing changed"
        );
    }
    // Every refusal is in the log, and nothing else was recorded.
    let refused = |log: &[String]| log.iter().filter(|l| l.contains("call refused")).count();
    let mut log = svc.log();
    for _ in 0..100 {
        if refused(&log) >= denied {
            break;
        }
        // The log is read by another thread: bounded wait.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        log = svc.log();
    }
    let refusals = refused(&log);
    assert!(
        refusals >= denied,
        "{refusals} refusals logged for {denied} denied calls"
    );
    assert!(
        log.iter().all(|l| !l.contains("eyJ")),
        "no token in the log"
    );

    // A missing or invalid token says how to authenticate.
    let r401 = svc
        .http
        .get(svc.url("/api/v1/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(r401.status(), 401);
    assert!(r401.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_eq!(r401.headers()["content-type"], "application/problem+json");
    // Probes need no token.
    assert_eq!(svc.call("GET", "/healthz", None, None).await.0, 200);
    let (s, ready) = svc.call("GET", "/readyz", None, None).await;
    assert_eq!((s, &ready["status"]), (200, &json!("ready")), "{ready}");
    // An application (app-only token) reads, and is named by its object id.
    let robot = svc.token("robot").await;
    assert_eq!(
        svc.call("GET", "/api/v1/requests", Some(&robot), None)
            .await
            .0,
        200
    );
    // An unknown route is a problem too; a large body is refused.
    assert_eq!(
        svc.call("GET", "/api/v1/nope", Some(&operator), None)
            .await
            .0,
        404
    );
    let big = json!({"reason": "x".repeat(100_000)});
    let (s, p) = svc
        .call(
            "POST",
            &format!("/api/v1/requests/{c}/reject"),
            Some(&operator),
            Some(big),
        )
        .await;
    assert_eq!(s, 413, "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_refuses_bad_tokens_and_wrong_roles_sqlite() {
    matrix(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_refuses_bad_tokens_and_wrong_roles_postgres() {
    matrix(Backend::Postgres(PgDatabase::create().await)).await;
}

/// The tenant's keys rotate: a token signed with the new key is accepted
/// once the service has fetched the keys again (an unknown kid triggers it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_signing_key_is_picked_up() {
    let svc = Service::start(Backend::Sqlite, "", &[]).await;
    let old = svc.token("viewer").await;
    assert_eq!(
        svc.call("GET", "/api/v1/requests", Some(&old), None)
            .await
            .0,
        200
    );
    svc.env.post("/_mock/rotate-key", json!({})).await;
    let new = svc.token("viewer").await;
    assert_ne!(
        jsonwebtoken::decode_header(&old).unwrap().kid,
        jsonwebtoken::decode_header(&new).unwrap().kid
    );
    let mut status = 0;
    for _ in 0..50 {
        status = svc
            .call("GET", "/api/v1/requests", Some(&new), None)
            .await
            .0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "the new key is fetched");
    // The previous key is still published: its tokens still work.
    assert_eq!(
        svc.call("GET", "/api/v1/requests", Some(&old), None)
            .await
            .0,
        200
    );
}
