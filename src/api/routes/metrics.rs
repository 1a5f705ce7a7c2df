//! `GET /metrics`: the process's metrics in the Prometheus text format
//! (OpenMetrics), for a Viewer. Deny-by-default like every API route: a
//! scraper gets a token for an app registration holding the Viewer role
//! (Prometheus: `authorization: { credentials_file: ... }`), so the figures
//! (environment names never appear in them, but request counts and timing
//! do) are not open to anyone who can reach the port.
use crate::api::problem::Problem;
use crate::api::{ApiState, Caller};
use crate::domain::RequestStatus;
use crate::metrics::StatusLabel;
use crate::service::Permission;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::collections::HashSet;
use std::sync::Arc;

/// The content type Prometheus asks for and the encoder writes.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Prometheus metrics (counters, gauges and histograms of this process).
#[utoipa::path(get, path = "/metrics", tag = "probes",
    responses(
        (status = 200, description = "The metrics, OpenMetrics text format", body = String, content_type = "application/openmetrics-text"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No role allows it", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn metrics(
    State(st): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Response, Problem> {
    st.service.may(&caller.0, &Permission::Read)?;
    let m = st.engine.azure.metrics();
    let unavailable = |e: crate::store::StoreError| {
        Problem::unavailable(format!("the store does not answer: {e}"))
    };
    // Read from the store when scraped: requests by status, outbox backlog.
    let requests = st.store.list_requests().await.map_err(unavailable)?;
    for status in RequestStatus::ALL {
        let n = requests.iter().filter(|r| r.status == status).count();
        m.requests
            .get_or_create(&StatusLabel {
                status: status.as_str().into(),
            })
            .set(n as i64);
    }
    m.outbox_backlog
        .set(outbox_backlog(&st).await.map_err(unavailable)? as i64);
    Ok(([(header::CONTENT_TYPE, OPENMETRICS)], m.encode()).into_response())
}

/// Deliveries owed: each outbox event once per receiver that takes it,
/// less those delivered or given up.
async fn outbox_backlog(st: &ApiState) -> Result<usize, crate::store::StoreError> {
    let receivers = &st.config.notifications;
    if receivers.is_empty() {
        return Ok(0);
    }
    let events = st.store.outbox(None).await?;
    let owed = events
        .iter()
        .map(|e| {
            receivers
                .iter()
                .filter(|r| r.events.contains(&e.event))
                .count()
        })
        .sum::<usize>();
    let done: HashSet<(String, i64)> = st
        .store
        .deliveries(false, usize::MAX / 2)
        .await?
        .into_iter()
        .filter(|d| d.status == "delivered" || d.status == "failed")
        .map(|d| (d.receiver, d.seq))
        .collect();
    Ok(owed.saturating_sub(done.len()))
}
