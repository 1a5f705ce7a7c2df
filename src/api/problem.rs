//! Errors as RFC 9457 problem details (`application/problem+json`): `type`,
//! `title`, `status`, `detail`, and `rule` when a request rule is broken.
//! Texts come from the service's errors, which never hold a secret; a
//! token is never echoed; the `rule` is the error's value, never parsed.
use crate::domain::rules::Fix;
use crate::service::{Kind, ServiceError};
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

    /// A use case's error, with the API's own wording of what to change.
    pub fn from_service(e: ServiceError) -> Problem {
        let status =
            StatusCode::from_u16(e.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let kind = match e.kind {
            Kind::BadInput => "bad-request",
            Kind::Rule => "rule",
            Kind::Invalid => "not-possible",
            Kind::Conflict | Kind::Contended => "conflict",
            Kind::NotFound => "not-found",
            Kind::Forbidden => "forbidden",
            Kind::Azure => "azure",
            Kind::Stuck => "stuck",
            Kind::Failed => "failed",
            Kind::Setup | Kind::Store | Kind::Unavailable => "unavailable",
        };
        let mut detail = e.to_string();
        if matches!(e.kind, Kind::Setup | Kind::Store) {
            detail = format!("the store failed: {detail}");
        }
        if let Some(fix) = e.fix() {
            detail.push_str(&hint(fix, e.request().unwrap_or("{id}")));
        }
        Problem {
            rule: e.rule().map(str::to_string),
            ..Self::new(status, kind, detail)
        }
    }
}

/// What to change, in the API's terms (its body fields and calls).
fn hint(fix: Fix, id: &str) -> String {
    match fix {
        Fix::ChooseEnvironment => {
            "; GET /api/v1/environments lists the configured environments".into()
        }
        Fix::Acknowledge(which) => {
            let fields: Vec<String> = which
                .names()
                .iter()
                .map(|n| format!("acknowledgements.{n}"))
                .collect();
            let it = if fields.len() == 1 { "it" } else { "them" };
            format!("; read {it} and set {}", fields.join(" and "))
        }
        Fix::LengthenWindow => "; set window_end at least 1 hour after window_start".into(),
        Fix::EmergencyReason => {
            ", or, as an operator in an emergency, give an emergency_reason".into()
        }
        Fix::AckVersionMismatch => ", then set ack_version_mismatch".into(),
        Fix::AcceptFirst => format!("; POST /api/v1/requests/{id}/accept accepts it"),
        Fix::RollBackAfterwards => {
            format!("; POST /api/v1/requests/{id}/rollback undoes it once it has finished")
        }
        Fix::SubmitNew => "; POST /api/v1/requests files a new one".into(),
        Fix::LookAtStatus => format!("; GET /api/v1/requests/{id} shows where it is"),
        Fix::StartRun => format!("; POST /api/v1/requests/{id}/run starts it"),
        Fix::RollBackOrSubmitNew => format!(
            "; POST /api/v1/requests/{id}/rollback undoes it, POST /api/v1/requests files a new request"
        ),
    }
}

impl From<ServiceError> for Problem {
    fn from(e: ServiceError) -> Problem {
        Problem::from_service(e)
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
        let p = Problem::from(ServiceError::from(
            crate::domain::RuleViolation::MissingAcknowledgement(
                crate::domain::rules::Statements {
                    erase: true,
                    ..Default::default()
                },
            ),
        ));
        assert_eq!(
            (p.status, p.rule.as_deref()),
            (422, Some("acknowledgement"))
        );
        assert!(
            p.detail.ends_with("set acknowledgements.erase"),
            "{}",
            p.detail
        );
        let p = Problem::from(ServiceError::from(
            crate::store::StoreError::ActiveRequestExists {
                environment: "e".into(),
                existing: "r".into(),
            },
        ));
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
