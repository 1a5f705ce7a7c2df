//! Probes, without authentication: `/healthz` (the process answers) and
//! `/readyz` (the store answers and its schema is this pitr's).
use crate::api::problem::Problem;
use crate::api::ApiState;
use crate::store::migrations::SCHEMA_VERSION;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// Always 200 while the process serves.
#[utoipa::path(get, path = "/healthz", tag = "probes", security(()),
    responses((status = 200, description = "The process is alive")))]
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 200 when the store answers with this pitr's schema version, else 503.
#[utoipa::path(get, path = "/readyz", tag = "probes", security(()),
    responses(
        (status = 200, description = "The store answers and its schema is current"),
        (status = 503, description = "The store is unreachable or its schema is not this pitr's", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn readyz(State(st): State<Arc<ApiState>>) -> Result<Json<Value>, Problem> {
    match st.store.schema_version().await {
        Ok(v) if v == SCHEMA_VERSION => Ok(Json(json!({"status": "ready", "schema_version": v}))),
        Ok(v) => Err(Problem::unavailable(format!(
            "the store has schema version {v}; this pitr needs {SCHEMA_VERSION}"
        ))),
        Err(e) => Err(Problem::unavailable(format!(
            "the store does not answer: {e}"
        ))),
    }
}
