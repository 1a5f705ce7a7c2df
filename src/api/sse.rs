//! `GET /requests/{id}/events`: a request's events ([`Service::events`])
//! as Server-Sent Events.
//!
//! [`Service::events`]: crate::service::Service::events
use super::problem::Problem;
use super::routes::path;
use super::{ApiState, Caller};
use crate::domain::RequestId;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use std::convert::Infallible;
use std::sync::Arc;

/// One Server-Sent Event of the stream.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct StreamEvent {
    /// `status`, `job`, `step`, `progress` or `end`.
    pub event: String,
    /// The event's JSON: `status`/`end` {request_id, status}; `job` a
    /// JobView; `step` a StepView with job_id and dry_run; `progress`
    /// {kind, step, message}.
    pub data: String,
}

/// The request's events as they happen.
#[utoipa::path(get, path = "/api/v1/requests/{id}/events", tag = "requests",
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "Server-Sent Events: status, job, step, progress, end", content_type = "text/event-stream", body = StreamEvent),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No role allows it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn events(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let id = RequestId::from(path(id)?);
    let events = st
        .service
        .events(&caller.0, id, futures_util::future::pending())
        .await?;
    Ok(sse(events))
}

/// A stream of the service's events as Server-Sent Events (the API's, and
/// the page's live timeline).
pub fn sse(
    events: impl Stream<Item = crate::service::events::Event> + Send + 'static,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    Sse::new(events.map(|e| Ok(Event::default().event(e.name).data(e.data.to_string()))))
        .keep_alive(KeepAlive::default())
}
