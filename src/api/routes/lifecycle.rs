//! `POST /requests/{id}/accept|reject|cancel|reschedule` (answered when
//! done) and `run|resume|rollback` (checked and claimed, then carried out in
//! the background: `202` with the request; follow it with
//! `GET /requests/{id}/events`).
use super::requests::instant;
use super::{body, path};
use crate::api::problem::Problem;
use crate::api::{ApiState, Caller};
use crate::domain::RequestId;
use crate::service::views::RequestView;
use crate::service::{Permission, Reschedule};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// A reason (required to reject; optional to cancel or roll back).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a reschedule changes (at least one of the instants).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleBody {
    #[serde(default)]
    #[schema(format = DateTime)]
    pub window_start: Option<String>,
    #[serde(default)]
    #[schema(format = DateTime)]
    pub window_end: Option<String>,
    #[serde(default)]
    #[schema(format = DateTime)]
    pub restore_point: Option<String>,
    #[serde(default)]
    pub ack_version_mismatch: bool,
    /// Operators only.
    #[serde(default)]
    pub emergency_reason: Option<String>,
}

/// How to run.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// Rehearse against a mock Azure seeded from the config; the request's
    /// status is not changed.
    #[serde(default)]
    pub dry_run: bool,
}

type Id = Result<Path<String>, PathRejection>;
type Body = Result<Bytes, BytesRejection>;

/// Accepts a submitted request (operators).
#[utoipa::path(post, path = "/api/v1/requests/{id}/accept", tag = "actions",
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "Accepted", body = RequestView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Operators only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Its status does not allow it", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "It could no longer be restored at its window", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Azure refused or did not answer", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn accept(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
    id: Id,
) -> Result<Json<RequestView>, Problem> {
    let id = RequestId::from(path(id)?);
    let r = st.service.accept(&caller.0, &id).await?;
    Ok(Json(RequestView::from(&r)))
}

/// Rejects a submitted request, with a reason (operators).
#[utoipa::path(post, path = "/api/v1/requests/{id}/reject", tag = "actions",
    params(("id" = String, Path, description = "The request's id")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "Rejected", body = RequestView),
        (status = 400, description = "No reason given", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Operators only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Its status does not allow it", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn reject(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
    id: Id,
    bytes: Body,
) -> Result<Json<RequestView>, Problem> {
    st.service.may(&caller.0, &Permission::Reject)?;
    let id = RequestId::from(path(id)?);
    let b: ReasonBody = body(bytes, None)?;
    if b.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(Problem::bad_request(
            "a rejection needs a reason: {\"reason\": \"...\"}",
        ));
    }
    let r = st.service.reject(&caller.0, &id, b.reason).await?;
    Ok(Json(RequestView::from(&r)))
}

/// Cancels a request before its run starts (its requester, or operators).
#[utoipa::path(post, path = "/api/v1/requests/{id}/cancel", tag = "actions",
    params(("id" = String, Path, description = "The request's id")),
    request_body(content = ReasonBody, description = "Optional"),
    responses(
        (status = 200, description = "Cancelled", body = RequestView),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not its requester, nor an operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Its run has started, or it is finished", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn cancel(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
    id: Id,
    bytes: Body,
) -> Result<Json<RequestView>, Problem> {
    st.service
        .may(&caller.0, &Permission::Cancel { own: true })?;
    let id = RequestId::from(path(id)?);
    let b: ReasonBody = body(bytes, Some(ReasonBody::default()))?;
    let r = st.service.cancel(&caller.0, &id, b.reason).await?;
    Ok(Json(RequestView::from(&r)))
}

/// Changes the window and/or the restore point before the run starts;
/// every rule is checked again (its requester, or operators).
#[utoipa::path(post, path = "/api/v1/requests/{id}/reschedule", tag = "actions",
    params(("id" = String, Path, description = "The request's id")),
    request_body = RescheduleBody,
    responses(
        (status = 200, description = "Rescheduled", body = RequestView),
        (status = 400, description = "Nothing to change, or not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not its requester, nor an operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Its run has started, or it is finished", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A request rule is broken (`rule` names it)", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Azure refused or did not answer", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn reschedule(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
    id: Id,
    bytes: Body,
) -> Result<Json<RequestView>, Problem> {
    st.service.may(
        &caller.0,
        &Permission::Reschedule {
            own: true,
            emergency: false,
        },
    )?;
    let id = RequestId::from(path(id)?);
    let b: RescheduleBody = body(bytes, None)?;
    let parse =
        |field: &str, v: &Option<String>| v.as_deref().map(|s| instant(field, s)).transpose();
    let change = Reschedule {
        window_start: parse("window_start", &b.window_start)?,
        window_end: parse("window_end", &b.window_end)?,
        restore_point: parse("restore_point", &b.restore_point)?,
        ack_version_mismatch: b.ack_version_mismatch,
        emergency: b.emergency_reason,
    };
    // The service says "nothing to reschedule" after the roles; the API
    // names its own fields.
    let (r, _) = match st.service.reschedule(&caller.0, &id, change).await {
        Err(e) if e.kind == crate::service::Kind::BadInput => {
            return Err(Problem::bad_request(
                "nothing to reschedule: give window_start, window_end and/or restore_point",
            ))
        }
        other => other?,
    };
    Ok(Json(RequestView::from(&r)))
}

/// Runs an accepted request now (or rehearses a submitted or accepted one
/// with `dry_run`), in the background (operators).
#[utoipa::path(post, path = "/api/v1/requests/{id}/run", tag = "actions",
    params(("id" = String, Path, description = "The request's id")),
    request_body(content = RunBody, description = "Optional"),
    responses(
        (status = 202, description = "Started; follow it with GET /requests/{id}/events", body = RequestView),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Operators only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not accepted, or a run is in progress", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The rehearsal's mock Azure could not start", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn run(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
    id: Id,
    bytes: Body,
) -> Result<(StatusCode, Json<RequestView>), Problem> {
    st.service.may(&caller.0, &Permission::Run)?;
    let id = RequestId::from(path(id)?);
    let b: RunBody = body(bytes, Some(RunBody::default()))?;
    st.service.run(&caller.0, &id, b.dry_run).await?;
    accepted(&st, &caller, &id).await
}

/// The request as it stands once its run is under way (`202`).
async fn accepted(
    st: &ApiState,
    caller: &Caller,
    id: &RequestId,
) -> Result<(StatusCode, Json<RequestView>), Problem> {
    let req = st.service.request(&caller.0, id).await?;
    Ok((StatusCode::ACCEPTED, Json(RequestView::from(&req))))
}

/// Continues an interrupted run where it stopped, in the background
/// (operators).
#[utoipa::path(post, path = "/api/v1/requests/{id}/resume", tag = "actions",
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 202, description = "Resumed; follow it with GET /requests/{id}/events", body = RequestView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Operators only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Nothing to resume, or a live runner holds it", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn resume(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
    id: Id,
) -> Result<(StatusCode, Json<RequestView>), Problem> {
    let id = RequestId::from(path(id)?);
    st.service.resume(&caller.0, &id).await?;
    accepted(&st, &caller, &id).await
}

/// Undoes a finished run: the original database back under its name, the
/// environment online; in the background (operators).
#[utoipa::path(post, path = "/api/v1/requests/{id}/rollback", tag = "actions",
    params(("id" = String, Path, description = "The request's id")),
    request_body(content = ReasonBody, description = "Optional"),
    responses(
        (status = 202, description = "Rolling back; follow it with GET /requests/{id}/events", body = RequestView),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Operators only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Nothing to roll back, or no longer possible", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Azure refused or did not answer", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn rollback(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
    id: Id,
    bytes: Body,
) -> Result<(StatusCode, Json<RequestView>), Problem> {
    st.service.may(&caller.0, &Permission::Rollback)?;
    let id = RequestId::from(path(id)?);
    let b: ReasonBody = body(bytes, Some(ReasonBody::default()))?;
    st.service.rollback(&caller.0, &id, b.reason).await?;
    accepted(&st, &caller, &id).await
}
