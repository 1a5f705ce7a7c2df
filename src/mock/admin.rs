//! `/_mock/*`: inspection and control endpoints for tests and engineers.
//! They need no token and are not journaled, so that watching the mock does
//! not change what it records.

use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{Reply, Req};
use super::scenario::FaultSpec;
use super::state::{OpKind, State};

pub(crate) fn is_admin_path(path: &str) -> bool {
    let l = path.to_ascii_lowercase();
    l == "/_mock" || l.starts_with("/_mock/")
}

const ENDPOINTS: &str = "GET /_mock/state, GET /_mock/requests, GET /_mock/throttle, GET|POST|DELETE /_mock/faults, POST /_mock/hold, POST /_mock/retention, POST /_mock/database, POST /_mock/remove-vm, POST /_mock/token, POST /_mock/rotate-key";

fn bad(message: impl Into<String>) -> Reply {
    Reply::arm_error(400, "InvalidMockRequest", message)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    operation: String,
    hold: bool,
    /// Only run commands whose script contains this text (case-insensitive).
    #[serde(default)]
    script_contains: Option<String>,
}

/// `POST /_mock/token`: a signed access token for a scenario user, no
/// credential asked (tests only).
fn mint(st: &mut State, req: &Req, base: &str, now: chrono::DateTime<Utc>) -> Reply {
    let body: super::entra::MintRequest = match serde_json::from_slice(&req.body) {
        Ok(b) => b,
        Err(e) => {
            return bad(format!(
                "expected {{\"user\": NAME, \"audience\": AUD, \"tenant\"?, \"expires_in\"?, \"not_before_in\"?}}: {e}"
            ))
        }
    };
    let Some(user) = st.users.iter().find(|u| u.name == body.user).cloned() else {
        let known: Vec<&str> = st.users.iter().map(|u| u.name.as_str()).collect();
        return bad(format!(
            "user '{}' is not in the scenario's [[users]] ({})",
            body.user,
            known.join(", ")
        ));
    };
    let expires_in = body.expires_in.unwrap_or(3600);
    let claims = super::entra::claims(
        base,
        &user,
        &body.audience,
        body.tenant
            .as_deref()
            .unwrap_or(super::entra::DEFAULT_TENANT),
        now,
        expires_in,
        body.not_before_in.unwrap_or(0),
    );
    match st.signing.sign(&claims) {
        Ok(token) => Reply::json(
            200,
            json!({"token_type": "Bearer", "access_token": token, "expires_in": expires_in}),
        ),
        Err(e) => Reply::arm_error(500, "InternalServerError", e),
    }
}

pub(crate) fn handle(st: &mut State, req: &Req, base: &str, now: chrono::DateTime<Utc>) -> Reply {
    st.tick(now);
    let what = req
        .segments
        .get(1)
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_default();
    if req.segments.len() > 2 {
        return not_found(req);
    }
    match (req.method.as_str(), what.as_str()) {
        ("GET", "state") => Reply::json(200, st.state_json(now)),
        ("GET", "requests") => Reply::json(200, st.journal_json()),
        ("GET", "throttle") => Reply::json(200, st.throttle.to_json()),
        ("GET", "faults") => Reply::json(200, st.faults_json()),
        ("DELETE", "faults") => {
            st.request_faults.clear();
            st.operation_faults.clear();
            Reply::json(200, st.faults_json())
        }
        ("POST", "faults") => {
            let v: Value = match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(e) => return bad(format!("the body is not JSON: {e}")),
            };
            let items = match v {
                Value::Array(a) => a,
                other => vec![other],
            };
            let mut specs = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                let spec: FaultSpec = match serde_json::from_value(item) {
                    Ok(s) => s,
                    Err(e) => return bad(format!("fault {i}: {e}")),
                };
                if let Err(hint) = spec.check() {
                    return bad(format!("fault {i}: {hint}"));
                }
                specs.push(spec);
            }
            // All or nothing: a bad fault in a list adds none of them.
            for s in specs {
                st.add_fault(s);
            }
            Reply::json(200, st.faults_json())
        }
        ("POST", "hold") => {
            let body: HoldBody = match serde_json::from_slice(&req.body) {
                Ok(b) => b,
                Err(e) => {
                    return bad(format!(
                        "expected {{\"operation\": \"restore\"|\"delete\"|\"run_command\", \"hold\": true|false}}: {e}"
                    ))
                }
            };
            let Some(kind) = OpKind::parse(&body.operation) else {
                return bad(format!(
                    "operation '{}' is unknown: use restore, delete or run_command",
                    body.operation
                ));
            };
            match body.script_contains.map(|s| s.to_ascii_lowercase()) {
                Some(_) if kind != OpKind::RunCommand => {
                    return bad("script_contains only applies to operation run_command")
                }
                Some(s) if s.trim().is_empty() => return bad("script_contains must not be empty"),
                Some(s) if body.hold => {
                    st.held_scripts.insert(s);
                }
                Some(s) => {
                    st.held_scripts.remove(&s);
                }
                None if body.hold => {
                    st.held.insert(kind);
                }
                None => {
                    st.held.remove(&kind);
                }
            }
            if !body.hold {
                st.tick(now);
            }
            let held: Vec<&str> = st.held.iter().map(|k| k.as_str()).collect();
            Reply::json(
                200,
                json!({ "held": held, "held_scripts": st.held_scripts }),
            )
        }
        ("POST", "database") => super::alter::database(st, &req.body, now),
        ("POST", "remove-vm") => super::alter::remove_vm(st, &req.body),
        ("POST", "retention") => super::backup::set_retention(st, &req.body, now),
        ("POST", "token") => mint(st, req, base, now),
        ("POST", "rotate-key") => match st.signing.rotate() {
            Ok(kid) => Reply::json(200, json!({ "kid": kid })),
            Err(e) => Reply::arm_error(500, "InternalServerError", e),
        },
        _ => not_found(req),
    }
}

fn not_found(req: &Req) -> Reply {
    Reply::arm_error(
        404,
        "NotFound",
        format!(
            "'{} {}' is not a mock endpoint; use {ENDPOINTS}.",
            req.method, req.path
        ),
    )
}
