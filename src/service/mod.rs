//! The use cases, once, under every front end: the CLI (its local mode is a
//! caller too: the local operator), the API and the page call the same
//! functions, each taking the caller ([`Actor`]) and deciding its roles
//! ([`roles::decide`]) before it reads or changes anything, and each failing
//! with one typed [`ServiceError`] that the front end words.
//!
//! - `requests.rs`: submit, reschedule, accept, reject, cancel, deployments.
//! - `runs.rs`: run (real or a rehearsal against a mock Azure), resume,
//!   rollback, confirm a step; the service owns the runs it starts in the
//!   background.
//! - `queries.rs`: a request in full, lists, the audit trail, environments,
//!   deliveries: the one representation of [`views`].
//! - `events.rs`: a request's events as they happen (the API's stream and
//!   the page's live timeline).
//! - `roles.rs`: who may do what; `error.rs`: what went wrong;
//!   `hub.rs`: the progress of runs fanned out per request;
//!   `rehearsal.rs`: a mock Azure seeded from the configured environments.
pub mod error;
pub mod events;
pub mod hub;
mod queries;
pub mod rehearsal;
mod requests;
pub mod roles;
mod runs;
pub mod views;

pub use error::{Kind, ServiceError};
pub use hub::{Hub, ProgressLine};
pub use queries::RequestFilter;
pub use requests::{NewRequest, Reschedule};
pub use roles::{Actor, Permission, Role};
pub use runs::Started;

use crate::azure::ArmClient;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::{Environment, RequestId, RestoreRequest};
use crate::engine::Engine;
use crate::store::{SharedStore, StoreError};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// Which Azure the service's runs talk to.
#[derive(Debug, Clone)]
pub enum AzureTarget {
    /// The ARM endpoint and credential in `[azure]`.
    Real,
    /// A mock Azure (its URL and CA certificate PEM).
    Mock { url: String, ca_pem: String },
}

pub struct Service {
    pub config: Arc<Config>,
    pub store: SharedStore,
    pub clock: SharedClock,
    hub: Hub,
    azure: AzureTarget,
    /// The engine's actor for runs nobody in particular starts (the
    /// scheduler's): `pitr` or the CLI's `--actor`.
    actor: String,
    secrets: Vec<(String, String)>,
    /// Becomes true on SIGINT/SIGTERM: runs stop at a safe point, streams end.
    stop: tokio::sync::watch::Receiver<bool>,
    /// Built the first time a use case needs Azure, so that reading needs
    /// neither credentials nor a reachable Azure.
    engine: Mutex<Option<Arc<Engine>>>,
    /// Runs started in the background, awaited at shutdown.
    runs: Mutex<Vec<JoinHandle<()>>>,
    /// Wakes the notification worker after a change.
    changed: Arc<tokio::sync::Notify>,
}

/// What [`Service::new`] takes beyond the store and the config.
pub struct Parts {
    pub clock: SharedClock,
    pub hub: Hub,
    pub azure: AzureTarget,
    pub actor: String,
    pub secrets: Vec<(String, String)>,
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Service {
    pub fn new(config: Config, store: SharedStore, parts: Parts) -> Service {
        Service {
            config: Arc::new(config),
            store,
            clock: parts.clock,
            hub: parts.hub,
            azure: parts.azure,
            actor: parts.actor,
            secrets: parts.secrets,
            // A receiver whose sender is gone never becomes true.
            stop: parts
                .stop
                .unwrap_or_else(|| tokio::sync::watch::channel(false).1),
            engine: Mutex::new(None),
            runs: Mutex::new(Vec::new()),
            changed: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// The engine (the runner), with its Azure client built the first time
    /// it is asked for.
    pub fn engine(&self) -> Result<Arc<Engine>, ServiceError> {
        let mut slot = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(engine) = slot.as_ref() {
            return Ok(engine.clone());
        }
        let azure = match &self.azure {
            AzureTarget::Mock { url, ca_pem } => {
                ArmClient::for_mock(&self.config.azure, url, ca_pem)
            }
            AzureTarget::Real => ArmClient::new(&self.config.azure, None),
        }
        // The client cannot be set up from the config: nothing was sent.
        .map_err(|e| ServiceError::new(Kind::Setup, e.to_string()))?;
        let engine = Arc::new(self.engine_on(azure, &self.actor));
        *slot = Some(engine.clone());
        Ok(engine)
    }

    /// An engine of this service's store, clock and progress against `azure`.
    fn engine_on(&self, azure: ArmClient, actor: &str) -> Engine {
        let mut engine = Engine::new(
            &self.config,
            self.store.clone(),
            azure,
            self.clock.clone(),
            Arc::new(self.hub.clone()),
            actor.to_string(),
        )
        .with_shutdown(self.stop.clone());
        for (var, value) in &self.secrets {
            engine = engine.with_secret(var, value);
        }
        engine
    }

    /// The progress of runs in this process, per request.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Notified after every change a notification may be due for.
    pub fn changes(&self) -> Arc<tokio::sync::Notify> {
        self.changed.clone()
    }

    /// The stop signal runs and streams end on.
    pub fn stop_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stop.clone()
    }

    fn changed(&self) {
        self.changed.notify_one();
    }

    /// Keeps a background run to await at shutdown.
    fn keep(&self, handle: JoinHandle<()>) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.retain(|h| !h.is_finished());
        runs.push(handle);
    }

    /// Waits for the runs started in the background (they stop at a safe
    /// point once the stop signal is given).
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

    fn environment(&self, name: &str) -> Result<&Environment, ServiceError> {
        self.config
            .environment(name)
            .ok_or_else(|| crate::domain::RuleViolation::UnknownEnvironment(name.into()).into())
    }

    async fn load(&self, id: &RequestId) -> Result<RestoreRequest, ServiceError> {
        self.store
            .get_request(id)
            .await?
            .ok_or_else(|| StoreError::RequestNotFound(id.clone()).into())
    }
}

/// Asks the roles; a refusal is logged (it changes nothing and leaves no
/// audit record, so the log says who and why).
pub(crate) fn may(who: &Actor, what: &Permission<'_>) -> Result<(), ServiceError> {
    roles::decide(who, what).map_err(|d| {
        tracing::warn!(actor = %who.actor, action = what.verb(), reason = %d, "call refused: not allowed (deny by default)");
        d.into()
    })
}

/// Resolves once `stop` is true (or its sender is gone for good).
pub async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}
