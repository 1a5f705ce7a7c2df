//! The HTTP service of `pitr serve`: the API under `/api/v1` (JSON, the
//! views of [`crate::views`], RFC 9457 problems, OpenAPI 3.1 at
//! `/api/v1/openapi.json`), `/healthz` and `/readyz`.
//!
//! - `auth.rs`: who is calling (Entra ID bearer tokens, checked against the
//!   tenant's JWKS), `roles.rs`: what they may do (pure decisions).
//! - `routes/`: one file per resource; every handler authenticates
//!   ([`Caller`]) and asks [`roles::decide`] before it touches anything.
//! - `hub.rs` + `sse.rs`: the events of a request as Server-Sent Events.
//! - `server.rs`: the listener (plain or TLS), timeouts, body limit and the
//!   graceful shutdown on the same signal as the scheduler.
pub mod auth;
pub mod hub;
pub mod openapi;
pub mod problem;
pub mod roles;
pub(crate) mod routes;
mod server;
pub(crate) mod sse;

pub use hub::Hub;
pub use routes::CALL_TIMEOUT;
pub use server::{serve, Listening};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::engine::Engine;
use crate::store::SharedStore;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use problem::Problem;
use roles::{Action, Principal};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// What every handler shares.
pub struct ApiState {
    pub config: Arc<Config>,
    pub store: SharedStore,
    pub clock: SharedClock,
    /// The service's engine (real Azure); each call acts through a view of
    /// it for the caller ([`Engine::as_actor`]).
    pub engine: Arc<Engine>,
    pub auth: auth::Authenticator,
    pub hub: Hub,
    /// Becomes true on SIGINT/SIGTERM: runs stop at a safe point, streams end.
    pub stop: tokio::sync::watch::Receiver<bool>,
    /// Runs started through the API, awaited at shutdown.
    pub runs: Mutex<Vec<JoinHandle<()>>>,
    /// Wakes the notification worker after a change.
    pub outbox: Arc<tokio::sync::Notify>,
    /// The web page's sign-in settings.
    pub web: crate::web::Web,
}

impl ApiState {
    /// Keeps a background run to await at shutdown.
    fn keep(&self, handle: JoinHandle<()>) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.retain(|h| !h.is_finished());
        runs.push(handle);
    }

    /// Waits for the runs started through the API (they stop at a safe
    /// point once `stop` is true).
    pub async fn wait_runs(&self) {
        loop {
            let handles: Vec<JoinHandle<()>> = {
                let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
                runs.drain(..).collect()
            };
            if handles.is_empty() {
                return;
            }
            for h in handles {
                let _ = h.await;
            }
        }
    }
}

/// The authenticated caller of a request (401 otherwise). Every API route
/// takes one, so no route answers an anonymous caller.
pub struct Caller(pub Principal);

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

impl Caller {
    /// [`roles::decide`], with the denial logged (a refused call changes
    /// nothing and leaves no audit record; the log says who and why).
    pub fn may(&self, action: &Action<'_>) -> Result<(), Problem> {
        roles::decide(&self.0, action).map_err(|d| {
            tracing::warn!(actor = %self.0.actor, action = action.verb(), reason = %d, "API call refused: not allowed");
            Problem::forbidden(d.0)
        })
    }
}

/// Resolves once `stop` is true (or its sender is gone for good).
pub(crate) async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}
