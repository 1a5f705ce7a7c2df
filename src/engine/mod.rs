//! The job runner: takes a request through its steps, checkpointing each one
//! in the store before and after its Azure calls, so that a run killed at any
//! moment resumes where it stopped. What to do next is decided by the pure
//! functions in [`crate::domain`]; this module gathers the facts and performs
//! what they decide.
//!
//! Where things are:
//! - [`Engine`] (here): the facade the CLI, the scheduler and the service call.
//! - `run.rs`: the use cases `run`, `resume`, `rollback`.
//! - `drive.rs`: the step loop of one job and how a job ends.
//! - `steps/`: one file per step (its name, estimate, timeout, crash points
//!   and body); `steps/mod.rs` is the table of steps.
//! - `recovery.rs`: what a failed run does to leave the environment up.
//! - [`requests`]: submit, reschedule and lifecycle moves of requests.
//! - `history.rs`: the environment's restore history and the estimates.
//! - `lease.rs`: the lease a runner holds on each job it drives.
//! - [`scheduler`]: `pitr serve`'s ticks.
pub mod actions;
mod cleanup;
pub mod crash;
mod drive;
mod error;
mod history;
mod lease;
pub mod progress;
mod recovery;
pub mod requests;
mod rollback;
mod run;
pub mod scheduler;
pub mod steps;

pub(crate) use error::StepError;
pub use error::{EngineError, Outcome};
pub use history::estimates;

use crate::azure::ArmClient;
use crate::clock::SharedClock;
use crate::config::{Config, EngineConfig};
use crate::domain::{Environment, RequestEvent, RequestId, RequestStatus, RestoreRequest};
use crate::store::{Lease, SharedStore, StoreError};
use progress::Progress;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Engine {
    pub(crate) store: SharedStore,
    pub(crate) azure: ArmClient,
    pub(crate) clock: SharedClock,
    pub(crate) config: EngineConfig,
    /// Shared by every view (a view per job: a thousand jobs must not
    /// hold a thousand copies of a thousand environments).
    pub(crate) environments: Arc<Vec<Environment>>,
    pub(crate) progress: Arc<dyn Progress>,
    /// Who acts (recorded in the audit trail).
    pub actor: String,
    /// This runner's name in leases: host, process, and a random part.
    owner: String,
    /// Shared by every view of this engine ([`Engine::as_actor`]).
    leases: Arc<Mutex<HashMap<crate::domain::JobId, Lease>>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// Secrets given in code (demo, benchmarks, tests), by the name of the
    /// environment variable they stand for; otherwise the variable is read.
    secrets: HashMap<String, String>,
    /// For webhooks (never for ARM, which goes through the Azure pipeline).
    pub(crate) http: reqwest::Client,
}

/// This process's runner id, `HOST:PID.START` (START: the process's start
/// time in clock ticks since boot, from /proc, which tells a reused PID
/// apart). `pitr serve` prints it in its banner and on its log lines, and
/// `request show` names the runner holding a run by it.
pub fn runner_id() -> String {
    format!("{}:{}", lease::hostname(), lease::process_tag())
}

/// The runner id in a lease's owner (`HOST:PID.START:RANDOM`: one process
/// may hold leases under several owners, one per engine view).
pub fn runner_of(owner: &str) -> &str {
    match owner.rsplit_once(':') {
        Some((runner, _)) if runner.contains(':') => runner,
        _ => owner,
    }
}

/// This runner's name in leases: its runner id and a random part.
fn new_owner() -> String {
    format!(
        "{}:{}",
        runner_id(),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    )
}

impl Engine {
    pub fn new(
        config: &Config,
        store: SharedStore,
        azure: ArmClient,
        clock: SharedClock,
        progress: Arc<dyn Progress>,
        actor: String,
    ) -> Self {
        Self {
            store,
            azure,
            clock,
            config: config.engine.clone(),
            environments: Arc::new(config.environments.clone()),
            progress,
            actor,
            owner: new_owner(),
            leases: Arc::new(Mutex::new(HashMap::new())),
            shutdown: tokio::sync::watch::channel(false).1,
            secrets: HashMap::new(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(60))
                .build()
                .unwrap_or_default(),
        }
    }

    /// This engine acting for `actor` (recorded in the audit trail): the
    /// service's view for one signed-in caller. It shares the store, the
    /// Azure client and the leases, and is a runner of its own: a run it
    /// starts holds a lease that another view cannot take while it lives.
    pub fn as_actor(&self, actor: &str) -> Engine {
        Engine {
            actor: actor.to_string(),
            owner: new_owner(),
            ..self.view()
        }
    }

    /// This engine with its progress told about `request` (the service
    /// fans a run's progress out to that request's subscribers).
    pub fn scoped(&self, request: &RequestId) -> Engine {
        let mut e = self.view();
        if let Some(p) = self.progress.for_request(request) {
            e.progress = p;
        }
        e
    }

    fn view(&self) -> Engine {
        Engine {
            store: self.store.clone(),
            azure: self.azure.clone(),
            clock: self.clock.clone(),
            config: self.config.clone(),
            environments: self.environments.clone(),
            progress: self.progress.clone(),
            actor: self.actor.clone(),
            owner: self.owner.clone(),
            leases: self.leases.clone(),
            shutdown: self.shutdown.clone(),
            secrets: self.secrets.clone(),
            http: self.http.clone(),
        }
    }

    /// Uses `value` where the config names the environment variable `var`.
    pub fn with_secret(mut self, var: &str, value: &str) -> Self {
        self.secrets.insert(var.to_string(), value.to_string());
        self
    }

    /// Stops runs safely when `stop` becomes true (SIGINT/SIGTERM).
    pub fn with_shutdown(mut self, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        self.shutdown = stop;
        self
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    pub fn environment(&self, name: &str) -> Result<&Environment, EngineError> {
        self.environments
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| {
                crate::domain::RuleViolation::UnknownEnvironment(name.to_string()).into()
            })
    }

    pub async fn request(&self, id: &RequestId) -> Result<RestoreRequest, EngineError> {
        self.store
            .get_request(id)
            .await?
            .ok_or_else(|| StoreError::RequestNotFound(id.clone()).into())
    }

    /// An audit event moving `req` to `to`, by this engine's actor, now.
    fn event(&self, req: &RestoreRequest, to: RequestStatus, note: Option<String>) -> RequestEvent {
        RequestEvent {
            request_id: req.id.clone(),
            at: self.clock.now(),
            actor: self.actor.clone(),
            from: Some(req.status),
            to,
            note,
        }
    }

    /// The value of a secret named by an environment variable.
    pub(crate) fn secret(&self, var: &str) -> Option<String> {
        self.secrets
            .get(var)
            .cloned()
            .or_else(|| std::env::var(var).ok())
            .filter(|v| !v.is_empty())
    }
}
