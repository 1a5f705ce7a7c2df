//! The routes, one file per resource, and what they share: the body and
//! path extractors that answer with problems, the limits.
mod environments;
mod health;
mod jobs;
mod lifecycle;
mod metrics;
mod requests;
mod webhooks;

pub(crate) use environments::*;
pub(crate) use health::*;
pub(crate) use jobs::*;
pub(crate) use lifecycle::*;
pub(crate) use metrics::*;
pub(crate) use requests::*;
pub(crate) use webhooks::*;

use super::problem::Problem;
use super::ApiState;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use std::sync::Arc;

pub use crate::http::limits::{BODY_LIMIT, CALL_TIMEOUT};

pub fn router(state: Arc<ApiState>) -> Router {
    let api = Router::new()
        .route("/api/v1/openapi.json", get(super::openapi::document))
        .route("/api/v1/environments", get(list_environments))
        .route("/api/v1/environments/{name}", get(show_environment))
        .route(
            "/api/v1/environments/{name}/deployments",
            post(add_deployment),
        )
        .route("/api/v1/jobs/{id}/confirm", post(confirm))
        .route("/api/v1/requests", get(list_requests).post(submit))
        .route("/api/v1/requests/{id}", get(show_request))
        .route("/api/v1/requests/{id}/history", get(history))
        .route("/api/v1/requests/{id}/accept", post(accept))
        .route("/api/v1/requests/{id}/reject", post(reject))
        .route("/api/v1/requests/{id}/cancel", post(cancel))
        .route("/api/v1/requests/{id}/reschedule", post(reschedule))
        .route("/api/v1/requests/{id}/run", post(run))
        .route("/api/v1/requests/{id}/resume", post(resume))
        .route("/api/v1/requests/{id}/rollback", post(rollback))
        .route("/api/v1/webhooks/callback", post(webhook_callback))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            CALL_TIMEOUT,
        ))
        // Outside the timeout, so that it sees the timeout's answer.
        .layer(axum::middleware::map_response(timed_out));
    // Streams live longer than a call: they end on their own.
    let streams = Router::new().route("/api/v1/requests/{id}/events", get(super::sse::events));
    api.merge(streams)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// The timeout layer's bare answer as a problem (a call that took too long
/// is the service's, not the caller's: 503).
async fn timed_out(r: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse;
    if r.status() == StatusCode::REQUEST_TIMEOUT
        && !r.headers().contains_key(axum::http::header::CONTENT_TYPE)
    {
        return Problem::unavailable(format!(
            "the call did not finish within {} s; try again",
            CALL_TIMEOUT.as_secs()
        ))
        .into_response();
    }
    r
}

/// A path under `/api` that no route serves ([`crate::http`] answers
/// every other unserved path with the page's own 404).
pub async fn not_found() -> axum::response::Response {
    use axum::response::IntoResponse;
    Problem::not_found("no such resource; the API is described at /api/v1/openapi.json")
        .into_response()
}

/// A path parameter, or a problem.
pub(crate) fn path(p: Result<Path<String>, PathRejection>) -> Result<String, Problem> {
    p.map(|Path(v)| v)
        .map_err(|e| Problem::bad_request(format!("the path is not valid: {e}")))
}

/// A JSON body: required (`T` with no default) or optional (empty body ->
/// `T::default()` when `empty` is given).
pub(crate) fn body<T: DeserializeOwned>(
    bytes: Result<Bytes, BytesRejection>,
    empty: Option<T>,
) -> Result<T, Problem> {
    let bytes = bytes.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                status,
                "too-large",
                format!("the body is larger than {BODY_LIMIT} bytes"),
            )
        } else {
            Problem::bad_request(format!("the body could not be read: {e}"))
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        if let Some(v) = empty {
            return Ok(v);
        }
        return Err(Problem::bad_request("a JSON body is required"));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Problem::bad_request(format!("the body is not the JSON expected: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    #[tokio::test]
    async fn a_call_that_timed_out_is_a_problem() {
        let bare = StatusCode::REQUEST_TIMEOUT.into_response();
        let r = timed_out(bare).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            r.headers()[axum::http::header::CONTENT_TYPE],
            "application/problem+json"
        );
        // Anything else passes unchanged.
        let ok = timed_out(StatusCode::OK.into_response()).await;
        assert_eq!(ok.status(), StatusCode::OK);
    }

    #[test]
    fn bodies_empty_too_large_or_not_json_are_problems() {
        let empty: Result<Bytes, BytesRejection> = Ok(Bytes::new());
        assert_eq!(
            body::<serde_json::Value>(empty, None).unwrap_err().status,
            400
        );
        let dflt: Result<Bytes, BytesRejection> = Ok(Bytes::from_static(b"  "));
        assert_eq!(body(dflt, Some(1u8)).unwrap(), 1);
        let bad: Result<Bytes, BytesRejection> = Ok(Bytes::from_static(b"{"));
        assert_eq!(
            body::<serde_json::Value>(bad, None).unwrap_err().status,
            400
        );
    }
}
