//! One way to put `pitr` together, used by every command, `pitr demo`,
//! `--dry-run`, `pitr bench` and the tests (zero-to-production's
//! `Application::build`): config -> store -> Azure (real ARM, or a mock
//! Azure) -> the service (its use cases and engine).
//!
//! The engine is built on first use, so read-only commands (`request list`,
//! `env show`) need neither Azure credentials nor a reachable Azure.
use crate::azure::AzureError;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::domain::Environment;
use crate::engine::progress::{Progress, Silent};
use crate::engine::Engine;
use crate::mock::{MockAzure, MockError, Scenario};
use crate::service::{AzureTarget, Hub, Parts, Service, ServiceError};
use crate::store::{SharedStore, StoreError};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The Azure client cannot be set up from the config (credential, CA):
    /// bad input, nothing was sent.
    #[error("{0}")]
    Azure(#[from] AzureError),
    #[error("{0}")]
    Mock(#[from] MockError),
    #[error("{0}")]
    Service(#[from] ServiceError),
    /// A setting the service cannot start with (bad input: nothing runs).
    #[error("{0}")]
    Config(String),
    /// The listener could not be served.
    #[error("{0}")]
    Listen(String),
}

/// How `pitr serve` runs its scheduler.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Between two looks at the schedule.
    pub every: std::time::Duration,
    /// Runs at once, over every runner sharing the store.
    pub max_concurrent: usize,
}

/// What `pitr serve` needs beyond the app, each checked against the config
/// (the serve settings, the notification receivers' secrets, the auth, the
/// web app): made before anything is opened, so that a setting the service
/// cannot start with is refused before anything listens, runs or is created.
pub struct ServeParts {
    secrets: crate::notify::Receivers,
    auth: crate::auth::Authenticator,
    web: crate::web::Web,
}

impl ServeParts {
    pub fn from_config(config: &Config, actor: &str) -> Result<ServeParts, AppError> {
        config.check_serve().map_err(AppError::Config)?;
        Ok(ServeParts {
            secrets: crate::notify::Receivers::from_config(&config.notifications)
                .map_err(AppError::Config)?,
            auth: crate::auth::Authenticator::new(config, actor).map_err(AppError::Config)?,
            web: crate::web::Web::from_config(config).map_err(AppError::Config)?,
        })
    }
}

/// The service running: the API and the pages on their listener, the
/// scheduler and the notification worker, until the app's stop signal.
pub struct Running {
    /// `http(s)://ADDR` of the API.
    pub url: String,
    /// Where people reach the pages.
    pub public_url: String,
    task: tokio::task::JoinHandle<Result<(), crate::engine::EngineError>>,
}

impl Running {
    /// Waits until everything has stopped (after the stop signal): the
    /// scheduler, the runs it and the API started, the listener, the
    /// notification worker.
    pub async fn stopped(self) -> Result<(), crate::engine::EngineError> {
        self.task.await.unwrap_or(Ok(()))
    }
}

/// Which Azure the engine talks to.
#[derive(Debug, Clone)]
pub enum Azure {
    /// The ARM endpoint and credential in `[azure]`.
    Real,
    /// A mock Azure started in this process with this scenario; it lives as
    /// long as the [`App`].
    /// Boxed: a scenario is large and the other variants are not.
    Embedded(Box<Scenario>),
    /// A mock Azure already running (its URL and CA certificate PEM).
    Mock { url: String, ca_pem: String },
}

pub struct AppBuilder {
    config: Config,
    create_store: bool,
    azure: Azure,
    clock: SharedClock,
    progress: Arc<dyn Progress>,
    actor: String,
    secrets: Vec<(String, String)>,
    shutdown: Option<tokio::sync::watch::Receiver<bool>>,
}

impl AppBuilder {
    /// Creates the store when it does not exist (a store made on purpose:
    /// `pitr store init`, the demo, the benchmark, tests). Otherwise a
    /// missing store is an error, so that a mistyped path is noticed.
    pub fn create_store(mut self, create: bool) -> Self {
        self.create_store = create;
        self
    }

    pub fn azure(mut self, azure: Azure) -> Self {
        self.azure = azure;
        self
    }
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
    pub fn progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }
    /// Who acts, for the audit trail.
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }
    /// Uses `value` where the config names the environment variable `var`.
    pub fn secret(mut self, var: &str, value: &str) -> Self {
        self.secrets.push((var.to_string(), value.to_string()));
        self
    }
    /// Runs stop at a safe point when `stop` becomes true.
    pub fn shutdown(mut self, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        self.shutdown = Some(stop);
        self
    }

    /// Opens the store (creating and migrating it as needed) and starts the
    /// embedded mock Azure if one was asked for.
    pub async fn build(self) -> Result<App, AppError> {
        let store = if self.create_store {
            crate::store::open(&self.config.store.url).await?
        } else {
            crate::store::open_existing(&self.config.store.url).await?
        };
        let (mock, azure) = match self.azure {
            Azure::Embedded(scenario) => {
                let mock = MockAzure::start(
                    *scenario,
                    std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                    None,
                )
                .await?;
                let at = Azure::Mock {
                    url: mock.url(),
                    ca_pem: mock.ca_pem().to_string(),
                };
                (Some(mock), at)
            }
            other => (None, other),
        };
        let target = match azure {
            Azure::Mock { url, ca_pem } => AzureTarget::Mock { url, ca_pem },
            _ => AzureTarget::Real,
        };
        let service = Service::new(
            self.config.clone(),
            store.clone(),
            Parts {
                clock: self.clock.clone(),
                hub: Hub::new(self.progress),
                azure: target,
                actor: self.actor,
                secrets: self.secrets,
                stop: self.shutdown,
            },
        );
        Ok(App {
            config: self.config,
            store,
            clock: self.clock,
            mock,
            service: Arc::new(service),
        })
    }
}

pub struct App {
    pub config: Config,
    pub store: SharedStore,
    pub clock: SharedClock,
    mock: Option<MockAzure>,
    /// The use cases over this store and Azure, for every front end.
    pub service: Arc<Service>,
}

impl App {
    /// Real Azure, the system clock, no progress output, actor "pitr".
    pub fn builder(config: Config) -> AppBuilder {
        AppBuilder {
            config,
            create_store: false,
            azure: Azure::Real,
            clock: Arc::new(SystemClock),
            progress: Arc::new(Silent),
            actor: "pitr".into(),
            secrets: Vec::new(),
            shutdown: None,
        }
    }

    /// The engine, with its Azure client built the first time it is asked for.
    pub fn engine(&self) -> Result<Arc<Engine>, AppError> {
        Ok(self.service.engine()?)
    }

    /// `pitr serve` on `listener` (zero-to-production's `Application`): the
    /// HTTP side, the notification worker and the scheduler, all stopped by
    /// the stop signal given to the builder.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        parts: ServeParts,
        opts: ServeOptions,
    ) -> Result<Running, AppError> {
        let ServeParts { secrets, auth, web } = parts;
        let service = self.service.clone();
        let engine = service.engine()?;
        let listening = crate::http::serve(listener, service.clone(), Arc::new(auth), web)
            .await
            .map_err(AppError::Listen)?;
        let (url, public_url) = (listening.url(), listening.public_url.clone());
        let stop = service.stop_signal();
        let worker = crate::notify::Worker::new(
            self.store.clone(),
            self.clock.clone(),
            secrets,
            service.changes(),
        );
        let task = tokio::spawn(tracing::Instrument::in_current_span(async move {
            let worker = tokio::spawn(tracing::Instrument::in_current_span(
                worker.run(stop.clone()),
            ));
            let scheduled = crate::engine::scheduler::Scheduler::new(engine, opts.max_concurrent)
                .serve(opts.every, stop)
                .await;
            service.wait_runs().await;
            listening.stopped().await;
            let _ = worker.await;
            scheduled
        }));
        Ok(Running {
            url,
            public_url,
            task,
        })
    }

    /// The embedded mock Azure, if this app started one.
    pub fn mock(&self) -> Option<&MockAzure> {
        self.mock.as_ref()
    }

    /// Stops the embedded mock Azure (if any) and waits for it.
    pub async fn shutdown(self) {
        if let Some(mock) = self.mock {
            mock.shutdown().await;
        }
    }
}

pub use crate::service::rehearsal::{rehearsal_scenario, SEEDED_HISTORY};

/// A sandbox environment with two AOS VMs (the first also runs sync) and a
/// BI VM for Management Reporter, in resource group `rg-NAME` on server
/// `sql-NAME` (the demo's and the benchmark's environment).
pub fn sample_environment(name: &str, subscription_id: &str) -> Environment {
    let vm = |n: &str| {
        format!("/subscriptions/{subscription_id}/resourceGroups/rg-{name}/providers/Microsoft.Compute/virtualMachines/{name}-{n}")
    };
    Environment {
        entity_store_database: Some("AxDW".into()),
        mr_database: Some("MRDB".into()),
        aos_vms: vec![vm("aos1"), vm("aos2")],
        sync_vm: Some(vm("aos1")),
        mr_vm: Some(vm("bi")),
        sql_password_env: Some(SAMPLE_SQL_PASSWORD_ENV.into()),
        ..Environment::sandbox(
            name,
            subscription_id,
            &format!("rg-{name}"),
            &format!("sql-{name}"),
        )
    }
}

/// The variable [`sample_environment`] names for its SQL password; the demo
/// and the benchmark give a placeholder in code.
pub const SAMPLE_SQL_PASSWORD_ENV: &str = "PITR_SAMPLE_SQL_PASSWORD";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_environment_is_valid_config() {
        let env = sample_environment("demo-uat", "00000000-0000-0000-0000-0000000000de");
        let text = format!("[[environments]]\n{}", toml::to_string(&env).unwrap());
        let config = Config::from_toml(&text, "sample", []).unwrap();
        assert_eq!(config.environments, vec![env]);
    }
}
