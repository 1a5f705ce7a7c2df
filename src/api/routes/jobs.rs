//! `POST /jobs/{id}/confirm`: a person's word on a step that waits for one
//! (as `pitr job confirm`); the run then continues in the background.
use super::{body, path};
use crate::api::problem::Problem;
use crate::api::{ApiState, Caller};
use crate::domain::StepName;
use crate::service::views::RequestView;
use crate::service::Permission;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// A confirmation of a step that waits for a person.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    /// The step that waits: `offline`, `online`, `sync` or `mr_reset`.
    pub step: String,
    /// It could not be done: the step fails and the run recovers (needs a
    /// reason).
    #[serde(default)]
    pub failed: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Confirms that a waiting step was done (or could not be), then continues
/// the run in the background (operators). `id` is the job's id or its
/// request's.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/confirm", tag = "actions",
    params(("id" = String, Path, description = "The job's id, or its request's")),
    request_body = ConfirmBody,
    responses(
        (status = 202, description = "Recorded; the run continues (follow it with GET /requests/{id}/events)", body = RequestView),
        (status = 400, description = "Not the JSON expected, an unknown step, or a failure without a reason", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Operators only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job or request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The step does not wait for a confirmation", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn confirm(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<RequestView>), Problem> {
    st.service.may(&caller.0, &Permission::Confirm)?;
    let id = path(id)?;
    let b: ConfirmBody = body(bytes, None)?;
    let step = StepName::parse(&b.step).ok_or_else(|| {
        Problem::bad_request(format!(
            "step '{}' is not a step; use offline, online, sync or mr_reset",
            b.step
        ))
    })?;
    let failure =
        match (b.failed, b.reason.filter(|r| !r.trim().is_empty())) {
            (true, None) => return Err(Problem::bad_request(
                "a step reported not done needs a reason: {\"failed\": true, \"reason\": \"...\"}",
            )),
            (true, reason) => reason,
            (false, _) => None,
        };
    let started = st.service.confirm(&caller.0, &id, step, failure).await?;
    let req = st
        .service
        .request(&caller.0, &started.job.request_id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(RequestView::from(&req))))
}
