//! `GET /environments`, `GET /environments/{name}`: the configured
//! environments, and one with its history (as `pitr env list|show --json`);
//! `POST /environments/{name}/deployments` (as `pitr env deployment add`).
use super::requests::instant;
use super::{body, path};
use crate::api::problem::Problem;
use crate::api::{ApiState, Caller};
use crate::domain::Environment;
use crate::service::views::{DeploymentView, EnvironmentDetail};
use crate::service::Permission;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::ToSchema;

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
    Ok(Json(st.service.environments(&caller.0)?.to_vec()))
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
    let name = path(name)?;
    Ok(Json(st.service.environment_detail(&caller.0, &name).await?))
}

/// A deployment of a code version (as `pitr env deployment add`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentBody {
    /// e.g. `10.0.40`.
    pub version: String,
    /// RFC 3339 with an offset: when it was deployed.
    #[schema(format = DateTime)]
    pub at: String,
}

/// Records that a code version was deployed to the environment at an
/// instant, for the code-version rule (operators).
#[utoipa::path(post, path = "/api/v1/environments/{name}/deployments", tag = "environments",
    params(("name" = String, Path, description = "The environment's name")),
    request_body = DeploymentBody,
    responses(
        (status = 201, description = "Recorded", body = DeploymentView),
        (status = 400, description = "Not the JSON expected, an instant that is not RFC 3339, or an empty version", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Operators only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such environment", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn add_deployment(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<DeploymentView>), Problem> {
    st.service.may(&caller.0, &Permission::RecordDeployment)?;
    let name = path(name)?;
    let b: DeploymentBody = body(bytes, None)?;
    let at = instant("at", &b.at)?;
    // A path naming no environment is not found (in a request body it
    // breaks a rule).
    st.service.environment_detail(&caller.0, &name).await?;
    st.service
        .add_deployment(&caller.0, &name, &b.version, at)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(DeploymentView {
            at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            version: b.version.trim().to_string(),
        }),
    ))
}
