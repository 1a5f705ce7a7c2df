//! The HTTP service of `pitr serve`: the API under `/api/v1` (JSON, the
//! views of [`crate::service::views`], RFC 9457 problems, OpenAPI 3.1 at
//! `/api/v1/openapi.json`), `/healthz` and `/readyz`.
//!
//! - `routes/`: one file per resource; every handler authenticates
//!   ([`Caller`], through [`crate::auth`]), reads its input and calls the
//!   use case of [`crate::service`], which decides the roles; its errors
//!   become problems once ([`problem`]).
//! - `sse.rs`: a request's events as Server-Sent Events.
//!
//! The listener is [`crate::http`]'s, which mounts this router beside the
//! page's.
pub mod openapi;
pub mod problem;
pub(crate) mod routes;
pub(crate) mod sse;

pub use routes::{router, BODY_LIMIT, CALL_TIMEOUT};

use crate::auth::Authenticator;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::engine::Engine;
use crate::service::{Actor, Service};
use crate::store::SharedStore;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use problem::Problem;
use std::sync::Arc;

/// What every handler shares: the service, and who is calling.
pub struct ApiState {
    pub service: Arc<Service>,
    pub auth: Arc<Authenticator>,
    pub config: Arc<Config>,
    pub store: SharedStore,
    pub clock: SharedClock,
    /// The service's engine (real Azure), for the webhook callbacks and
    /// the metrics of its Azure client.
    pub engine: Arc<Engine>,
}

impl ApiState {
    pub fn new(service: Arc<Service>, auth: Arc<Authenticator>, engine: Arc<Engine>) -> ApiState {
        ApiState {
            config: service.config.clone(),
            store: service.store.clone(),
            clock: service.clock.clone(),
            service,
            auth,
            engine,
        }
    }
}

/// The authenticated caller of a request (401 otherwise). Every API route
/// takes one, so no route answers an anonymous caller.
pub struct Caller(pub Actor);

impl FromRequestParts<Arc<ApiState>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        match state.auth.authenticate(&parts.headers).await {
            Ok(p) => Ok(Caller(p)),
            Err(e) => {
                tracing::warn!(method = %parts.method, path = %parts.uri.path(), reason = %e, "API call refused: not authenticated");
                Err(Problem::unauthorized(e.to_string()))
            }
        }
    }
}
