//! Errors as RFC 9457 problem details (`application/problem+json`): `type`,
//! `title`, `status`, `detail`, and `rule` when a request rule is broken.
//! Texts come from the engine's errors, which never hold a secret; a token
//! is never echoed.
use crate::engine::EngineError;
use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An RFC 9457 problem.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`urn:pitr:problem:<kind>`).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request rule that was broken (e.g. `notice-24h`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rule: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("urn:pitr:problem:{kind}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            rule: None,
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Problem {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }
    pub fn unavailable(detail: impl Into<String>) -> Problem {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// A broken request rule (422), named from the rule's message
    /// (`rule NAME: ...`).
    pub fn rule(message: String) -> Problem {
        let rule = message
            .strip_prefix("rule ")
            .and_then(|r| r.split(':').next())
            .map(str::to_string);
        Problem {
            rule,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "rule", message)
        }
    }

    /// An engine error; `bad_input` is the status of the engine's plain
    /// bad-input answers on this route (a state that forbids the call: 409;
    /// a value that cannot be used: 422).
    pub fn from_engine(e: EngineError, bad_input: StatusCode) -> Problem {
        let text = e.to_string();
        match e {
            EngineError::Rule(_) => Self::rule(text),
            EngineError::Lifecycle(_) | EngineError::Rollback(_) => Self::conflict(text),
            EngineError::BadInput(_) => Self::new(bad_input, "not-possible", text),
            EngineError::Store(s) => Self::from_store(s),
            EngineError::Azure(_) => Self::new(StatusCode::BAD_GATEWAY, "azure", text),
            EngineError::Interrupted { .. } | EngineError::StoreFailed { .. } => {
                Self::unavailable(text)
            }
            EngineError::Stuck { .. } => Self::new(StatusCode::BAD_GATEWAY, "stuck", text),
        }
    }

    pub fn from_store(e: StoreError) -> Problem {
        let text = e.to_string();
        match e {
            StoreError::RequestNotFound(_) | StoreError::JobNotFound(_) => Self::not_found(text),
            StoreError::ActiveRequestExists { .. } => Problem {
                rule: Some("one-active-request".into()),
                ..Self::conflict(text)
            },
            StoreError::StatusConflict { .. }
            | StoreError::RunInProgress { .. }
            | StoreError::LeaseHeld { .. }
            | StoreError::LeaseLost { .. } => Self::conflict(text),
            StoreError::LimitReached { .. } => Problem {
                rule: Some("max-concurrent-runs".into()),
                ..Self::conflict(text)
            },
            _ => Self::unavailable(format!("the store failed: {text}")),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut r = (status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"pitr\", error=\"invalid_token\""),
            );
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_named_and_statuses_mapped() {
        let p = Problem::rule("rule notice-24h: the window starts too soon".into());
        assert_eq!((p.status, p.rule.as_deref()), (422, Some("notice-24h")));
        let p = Problem::from_store(StoreError::ActiveRequestExists {
            environment: "e".into(),
            existing: "r".into(),
        });
        assert_eq!(
            (p.status, p.rule.as_deref()),
            (409, Some("one-active-request"))
        );
        let r = Problem::unauthorized("no token").into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}
