//! `GET /requests`, `POST /requests`, `GET /requests/{id}`,
//! `GET /requests/{id}/history`.
use super::{body, path};
use crate::api::problem::Problem;
use crate::api::{ApiState, Caller};
use crate::domain::{Acknowledgements, RequestId, Window};
use crate::service::views::{EventView, RequestDetail, RequestView};
use crate::service::{Permission, RequestFilter};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// The three acknowledgements a requester gives.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgementsBody {
    /// The current database is erased and replaced.
    #[serde(default)]
    pub erase: bool,
    /// The environment is unavailable during the window.
    #[serde(default)]
    pub downtime: bool,
    /// Only the F&O database is restored (document blobs and the
    /// Management Reporter database keep their state; versions may differ).
    #[serde(default)]
    pub scope: bool,
}

/// A new request (as `pitr request submit`); the requester is the caller.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub environment: String,
    pub database: String,
    /// RFC 3339 with an offset, e.g. `2026-11-24T08:30:00Z`.
    #[schema(format = DateTime)]
    pub restore_point: String,
    #[schema(format = DateTime)]
    pub window_start: String,
    #[schema(format = DateTime)]
    pub window_end: String,
    pub acknowledgements: AcknowledgementsBody,
    #[serde(default)]
    pub reason: Option<String>,
    /// Restore ahead of the window so that the downtime is shorter.
    #[serde(default)]
    pub prestage: bool,
    /// The code version at the restore point differs from today's.
    #[serde(default)]
    pub ack_version_mismatch: bool,
    /// Operators only: allow a window less than 24 hours ahead.
    #[serde(default)]
    pub emergency_reason: Option<String>,
}

pub(crate) fn instant(field: &str, s: &str) -> Result<DateTime<Utc>, Problem> {
    crate::domain::time::parse_instant(s).map_err(|e| Problem::bad_request(format!("{field} {e}")))
}

/// Every request, newest first.
#[utoipa::path(get, path = "/api/v1/requests", tag = "requests",
    responses(
        (status = 200, description = "Every request, newest first", body = [RequestView]),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No role allows it", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_requests(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<Vec<RequestView>>, Problem> {
    let all = st
        .service
        .requests(&caller.0, &RequestFilter::default())
        .await?;
    Ok(Json(all.iter().map(Into::into).collect()))
}

/// Submits a request: every rule is checked (Azure is asked for the
/// database's earliest restore date) before anything is written.
#[utoipa::path(post, path = "/api/v1/requests", tag = "requests",
    request_body = NewRequest,
    responses(
        (status = 201, description = "Submitted", body = RequestView),
        (status = 400, description = "The body is not a request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No role or group allows it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The environment has an active request", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A request rule is broken (`rule` names it)", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Azure refused or did not answer", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn submit(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    // The coarse check first, so that a viewer learns nothing from the body.
    st.service.may(
        &caller.0,
        &Permission::Submit {
            environment_groups: &[],
            emergency: false,
        },
    )?;
    let b: NewRequest = body(bytes, None)?;
    let new = crate::service::NewRequest {
        environment: b.environment,
        database: b.database,
        restore_point: instant("restore_point", &b.restore_point)?,
        window: Window {
            start: instant("window_start", &b.window_start)?,
            end: instant("window_end", &b.window_end)?,
        },
        acks: Acknowledgements {
            erase: b.acknowledgements.erase,
            downtime: b.acknowledgements.downtime,
            scope: b.acknowledgements.scope,
            version_mismatch: b.ack_version_mismatch,
        },
        reason: b.reason,
        prestage: b.prestage,
        emergency: b.emergency_reason,
    };
    let (req, _warnings) = st.service.submit(&caller.0, new).await?;
    let location = format!("/api/v1/requests/{}", req.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(RequestView::from(&req)),
    )
        .into_response())
}

/// The request, its audit trail, its runs, the latest run's steps and the
/// downtime (as `pitr request show --json`).
#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "requests",
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request in full", body = RequestDetail),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No role allows it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn show_request(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<RequestDetail>, Problem> {
    let id = RequestId::from(path(id)?);
    Ok(Json(st.service.request_detail(&caller.0, &id).await?))
}

/// The audit trail: every transition with who, when, from, to and why.
#[utoipa::path(get, path = "/api/v1/requests/{id}/history", tag = "requests",
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The audit trail, oldest first", body = [EventView]),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No role allows it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn history(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<EventView>>, Problem> {
    let id = RequestId::from(path(id)?);
    let events = st.service.history(&caller.0, &id).await?;
    Ok(Json(events.iter().map(Into::into).collect()))
}
