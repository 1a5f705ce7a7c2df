//! The callback of a `webhook` environment action: no bearer token (the
//! receiver is an automation, not a person), but a signature with the
//! environment's webhook key over the raw body, checked before anything is
//! read or written. Only the delivery the step waits on can be answered.
use crate::api::problem::Problem;
use crate::api::ApiState;
use crate::engine::steps::CallbackRefused;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// A receiver reports the end of an action it was handed: `{"delivery",
/// "job", "action", "status": "succeeded"|"failed", "message"}`, signed
/// `X-Pitr-Signature: sha256=<hex HMAC-SHA256 of the body>`. The step's
/// end is recorded (audited like `pitr job confirm`) and a runner
/// continues the job on its next pass.
#[utoipa::path(post, path = "/api/v1/webhooks/callback", tag = "webhooks", security(()),
    request_body(content = Object, description = "delivery, job, action, status, message", content_type = "application/json"),
    responses(
        (status = 202, description = "Recorded; the run continues"),
        (status = 400, description = "Not the JSON expected", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The signature does not verify", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The step does not wait on this delivery", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn webhook_callback(
    State(st): State<Arc<ApiState>>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let bytes = bytes.map_err(|e| Problem::new(e.status(), "bad-body", e.body_text()))?;
    let signature = headers
        .get("x-pitr-signature")
        .and_then(|v| v.to_str().ok());
    let engine = st.engine.as_actor("webhook");
    match engine.webhook_callback(&bytes, signature).await {
        Ok((job, step)) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"job": job, "step": step.as_str(), "status": "recorded"})),
        )),
        Err(CallbackRefused::Signature) => {
            tracing::warn!("webhook callback refused: bad signature");
            Err(Problem::unauthorized(
                "the callback's signature does not verify with the environment's webhook key",
            ))
        }
        Err(CallbackRefused::Malformed(m)) => Err(Problem::bad_request(m)),
        Err(CallbackRefused::NotWaiting(m)) => Err(Problem::conflict(m)),
        Err(CallbackRefused::Engine(e)) => {
            Err(crate::service::ServiceError::from_engine(e, crate::service::Kind::Conflict).into())
        }
    }
}
