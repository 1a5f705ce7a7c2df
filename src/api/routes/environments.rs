//! `GET /environments`, `GET /environments/{name}`: the configured
//! environments, and one with its history (as `pitr env list|show --json`).
use super::path;
use crate::api::problem::Problem;
use crate::api::roles::Action;
use crate::api::{ApiState, Caller};
use crate::domain::Environment;
use crate::views::EnvironmentDetail;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use std::sync::Arc;

/// The configured environments.
#[utoipa::path(get, path = "/api/v1/environments", tag = "environments",
    responses(
        (status = 200, description = "The environments, as configured", body = [Object]),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No role allows it", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_environments(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<Vec<Environment>>, Problem> {
    caller.may(&Action::Read)?;
    Ok(Json(st.config.environments.clone()))
}

/// An environment with its restores, rollbacks and deployments.
#[utoipa::path(get, path = "/api/v1/environments/{name}", tag = "environments",
    params(("name" = String, Path, description = "The environment's name")),
    responses(
        (status = 200, description = "The environment and its history", body = EnvironmentDetail),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No role allows it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such environment", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn show_environment(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<EnvironmentDetail>, Problem> {
    caller.may(&Action::Read)?;
    let name = path(name)?;
    let env = st
        .config
        .environment(&name)
        .ok_or_else(|| Problem::not_found(format!("environment '{name}' is not configured")))?;
    let history = st
        .store
        .environment_events(&name)
        .await
        .map_err(Problem::from_store)?;
    Ok(Json(EnvironmentDetail::new(env, &history)))
}
