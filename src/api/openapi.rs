//! The OpenAPI 3.1 document of the API, generated from the handlers and
//! the views (`GET /api/v1/openapi.json`).
use super::problem::Problem;
use super::routes::*;
use super::{ApiState, Caller};
use crate::service::views::*;
use crate::service::Permission;
use axum::extract::State;
use axum::Json;
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An Entra ID access token for the API's audience, with an app role: Pitr.Viewer, Pitr.Requester or Pitr.Operator",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pitr",
        description = "Point-in-time restores of Azure SQL databases for Dynamics 365 F&O non-production environments. Errors are RFC 9457 problem details (application/problem+json).",
    ),
    paths(
        document,
        list_environments, show_environment, add_deployment,
        list_requests, submit, show_request, history,
        super::sse::events,
        accept, reject, cancel, reschedule, run, resume, rollback, confirm,
        webhook_callback,
        healthz, readyz, metrics,
    ),
    components(schemas(
        Problem, RequestView, RequestDetail, EventView, JobView, StepView, StatusView,
        AcknowledgementsView, EnvironmentDetail, RestoreView, RollbackView, DeploymentView,
        NewRequest, AcknowledgementsBody, ReasonBody, RescheduleBody, RunBody,
        ConfirmBody, DeploymentBody,
        super::sse::StreamEvent,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses(
        (status = 200, description = "This document", body = Object),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No role allows it", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn document(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<utoipa::openapi::OpenApi>, Problem> {
    st.service.may(&caller.0, &Permission::Read)?;
    Ok(Json(ApiDoc::openapi()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_names_every_route() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1"),
            "{}",
            doc["openapi"]
        );
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/api/v1/environments",
            "/api/v1/environments/{name}",
            "/api/v1/requests",
            "/api/v1/requests/{id}",
            "/api/v1/requests/{id}/history",
            "/api/v1/requests/{id}/events",
            "/api/v1/requests/{id}/accept",
            "/api/v1/requests/{id}/reject",
            "/api/v1/requests/{id}/cancel",
            "/api/v1/requests/{id}/reschedule",
            "/api/v1/requests/{id}/run",
            "/api/v1/requests/{id}/resume",
            "/api/v1/requests/{id}/rollback",
            "/api/v1/webhooks/callback",
            "/api/v1/environments/{name}/deployments",
            "/api/v1/jobs/{id}/confirm",
            "/api/v1/openapi.json",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(paths.contains_key(p), "{p}");
        }
        assert_eq!(paths.len(), 20);
    }
}
