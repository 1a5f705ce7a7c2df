//! `POST /requests/{id}/accept|reject|cancel|reschedule` (answered when
//! done) and `run|resume|rollback` (checked and claimed, then carried out in
//! the background: `202` with the request; follow it with
//! `GET /requests/{id}/events`).
use super::requests::instant;
use super::{body, path};
use crate::api::problem::Problem;
use crate::api::roles::Action;
use crate::api::{ApiState, Caller};
use crate::domain::lifecycle::LifecycleEvent;
use crate::domain::{RequestId, RestoreRequest};
use crate::engine::requests::Reschedule;
use crate::engine::{Engine, EngineError, Outcome};
use crate::views::RequestView;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;
use tracing::Instrument;
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

async fn load(st: &ApiState, id: &RequestId) -> Result<RestoreRequest, Problem> {
    st.store
        .get_request(id)
        .await
        .map_err(Problem::from_store)?
        .ok_or_else(|| Problem::from_store(crate::store::StoreError::RequestNotFound(id.clone())))
}

async fn transition(
    st: &ApiState,
    caller: &Caller,
    id: &RequestId,
    event: LifecycleEvent,
    note: Option<String>,
) -> Result<RequestView, Problem> {
    let r = st
        .engine
        .as_actor(&caller.0.actor)
        .transition(id, event, note)
        .await
        .map_err(|e| Problem::from_engine(e, StatusCode::CONFLICT))?;
    st.outbox.notify_one();
    Ok(RequestView::from(&r))
}

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
    accept_as(&st, &caller, &id).await.map(Json)
}

/// Accepts `id` as `caller` (the API's and the web page's one way).
pub(crate) async fn accept_as(
    st: &ApiState,
    caller: &Caller,
    id: &RequestId,
) -> Result<RequestView, Problem> {
    caller.may(&Action::Accept)?;
    transition(st, caller, id, LifecycleEvent::Accept, None).await
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
    caller.may(&Action::Reject)?;
    let id = RequestId::from(path(id)?);
    let b: ReasonBody = body(bytes, None)?;
    reject_as(&st, &caller, &id, b).await.map(Json)
}

/// Rejects `id` as `caller`, with a reason.
pub(crate) async fn reject_as(
    st: &ApiState,
    caller: &Caller,
    id: &RequestId,
    b: ReasonBody,
) -> Result<RequestView, Problem> {
    caller.may(&Action::Reject)?;
    let reason = b
        .reason
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| Problem::bad_request("a rejection needs a reason: {\"reason\": \"...\"}"))?;
    transition(st, caller, id, LifecycleEvent::Reject, Some(reason)).await
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
    caller.may(&Action::Cancel { own: true })?;
    let id = RequestId::from(path(id)?);
    let b: ReasonBody = body(bytes, Some(ReasonBody::default()))?;
    cancel_as(&st, &caller, &id, b).await.map(Json)
}

/// Cancels `id` as `caller`.
pub(crate) async fn cancel_as(
    st: &ApiState,
    caller: &Caller,
    id: &RequestId,
    b: ReasonBody,
) -> Result<RequestView, Problem> {
    caller.may(&Action::Cancel { own: true })?;
    let req = load(st, id).await?;
    caller.may(&Action::Cancel {
        own: req.spec.requester == caller.0.actor,
    })?;
    transition(st, caller, id, LifecycleEvent::Cancel, b.reason).await
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
    caller.may(&Action::Reschedule {
        own: true,
        emergency: false,
    })?;
    let id = RequestId::from(path(id)?);
    let b: RescheduleBody = body(bytes, None)?;
    reschedule_as(&st, &caller, &id, b).await.map(Json)
}

/// Reschedules `id` as `caller`.
pub(crate) async fn reschedule_as(
    st: &ApiState,
    caller: &Caller,
    id: &RequestId,
    b: RescheduleBody,
) -> Result<RequestView, Problem> {
    caller.may(&Action::Reschedule {
        own: true,
        emergency: false,
    })?;
    let req = load(st, id).await?;
    let emergency = b.emergency_reason.filter(|r| !r.trim().is_empty());
    caller.may(&Action::Reschedule {
        own: req.spec.requester == caller.0.actor,
        emergency: emergency.is_some(),
    })?;
    let parse =
        |field: &str, v: &Option<String>| v.as_deref().map(|s| instant(field, s)).transpose();
    let change = Reschedule {
        window_start: parse("window_start", &b.window_start)?,
        window_end: parse("window_end", &b.window_end)?,
        restore_point: parse("restore_point", &b.restore_point)?,
        ack_version_mismatch: b.ack_version_mismatch,
        emergency,
    };
    if change.window_start.is_none()
        && change.window_end.is_none()
        && change.restore_point.is_none()
    {
        return Err(Problem::bad_request(
            "nothing to reschedule: give window_start, window_end and/or restore_point",
        ));
    }
    let (r, _) = st
        .engine
        .as_actor(&caller.0.actor)
        .reschedule(id, change)
        .await
        .map_err(|e| Problem::from_engine(e, StatusCode::CONFLICT))?;
    st.outbox.notify_one();
    Ok(RequestView::from(&r))
}

/// Carries a started or prepared job to its end in the background.
fn drive_in_background(
    st: &Arc<ApiState>,
    engine: Engine,
    job: crate::domain::Job,
    after: Option<crate::mock::MockAzure>,
) {
    let outbox = st.outbox.clone();
    let request = job.request_id.clone();
    let handle = tokio::spawn(
        async move {
            let outcome: Result<Outcome, EngineError> = engine.drive_job(job).await;
            match outcome {
                Ok(o) => tracing::info!(request = %request, outcome = %o.describe(), "run ended"),
                Err(e) => tracing::warn!(request = %request, error = %e, "run stopped"),
            }
            if let Some(mock) = after {
                mock.shutdown().await;
            }
            outbox.notify_one();
        }
        .in_current_span(),
    );
    st.keep(handle);
}

async fn accepted(st: &ApiState, id: &RequestId) -> Result<RequestView, Problem> {
    let req = load(st, id).await?;
    st.outbox.notify_one();
    Ok(RequestView::from(&req))
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
    caller.may(&Action::Run)?;
    let id = RequestId::from(path(id)?);
    let b: RunBody = body(bytes, Some(RunBody::default()))?;
    let view = run_as(&st, &caller, &id, b).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// Starts a run (or a rehearsal) of `id` as `caller`, in the background.
pub(crate) async fn run_as(
    st: &Arc<ApiState>,
    caller: &Caller,
    id: &RequestId,
    b: RunBody,
) -> Result<RequestView, Problem> {
    caller.may(&Action::Run)?;
    load(st, id).await?;
    let conflict = |e| Problem::from_engine(e, StatusCode::CONFLICT);
    if b.dry_run {
        // A rehearsal: the same engine against a mock Azure seeded from the
        // config, living as long as the run.
        let scenario = crate::app::rehearsal_scenario(&st.config.environments);
        let mock = crate::mock::MockAzure::start(
            scenario,
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            None,
        )
        .await
        .map_err(|e| Problem::new(StatusCode::BAD_GATEWAY, "mock", e.to_string()))?;
        let azure = crate::azure::ArmClient::for_mock(&st.config.azure, &mock.url(), mock.ca_pem())
            .map_err(|e| Problem::new(StatusCode::BAD_GATEWAY, "mock", e.to_string()))?;
        let engine = Engine::new(
            &st.config,
            st.store.clone(),
            azure,
            st.clock.clone(),
            Arc::new(st.hub.clone()),
            caller.0.actor.clone(),
        )
        .with_shutdown(st.stop.clone())
        .scoped(id);
        let job = engine.start(id, true).await.map_err(conflict)?;
        drive_in_background(st, engine, job, Some(mock));
    } else {
        let engine = st.engine.as_actor(&caller.0.actor).scoped(id);
        let job = engine.start(id, false).await.map_err(conflict)?;
        drive_in_background(st, engine, job, None);
    }
    accepted(st, id).await
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
    let view = resume_as(&st, &caller, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// Resumes `id`'s interrupted run as `caller`, in the background.
pub(crate) async fn resume_as(
    st: &Arc<ApiState>,
    caller: &Caller,
    id: &RequestId,
) -> Result<RequestView, Problem> {
    caller.may(&Action::Resume)?;
    let engine = st.engine.as_actor(&caller.0.actor).scoped(id);
    let job = engine
        .resumable(id)
        .await
        .map_err(|e| Problem::from_engine(e, StatusCode::CONFLICT))?;
    if !engine
        .lease_is_free(&job)
        .await
        .map_err(Problem::from_store)?
    {
        return Err(Problem::conflict(format!(
            "job {} is being run by a live runner; follow it with GET /api/v1/requests/{id}/events",
            job.id
        )));
    }
    drive_in_background(st, engine, job, None);
    accepted(st, id).await
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
    caller.may(&Action::Rollback)?;
    let id = RequestId::from(path(id)?);
    let b: ReasonBody = body(bytes, Some(ReasonBody::default()))?;
    let view = rollback_as(&st, &caller, &id, b).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// Rolls `id`'s finished run back as `caller`, in the background.
pub(crate) async fn rollback_as(
    st: &Arc<ApiState>,
    caller: &Caller,
    id: &RequestId,
    b: ReasonBody,
) -> Result<RequestView, Problem> {
    caller.may(&Action::Rollback)?;
    let engine = st.engine.as_actor(&caller.0.actor).scoped(id);
    let job = engine
        .prepare_rollback(id, b.reason)
        .await
        .map_err(|e| Problem::from_engine(e, StatusCode::CONFLICT))?;
    drive_in_background(st, engine, job, None);
    accepted(st, id).await
}
