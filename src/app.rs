//! One way to put `pitr` together, used by every command, `pitr demo`,
//! `--dry-run`, `pitr bench` and the tests (zero-to-production's
//! `Application::build`): config -> store -> Azure client (real ARM, or a
//! mock Azure) -> engine.
//!
//! The engine is built on first use, so read-only commands (`request list`,
//! `env show`) need neither Azure credentials nor a reachable Azure.
use crate::azure::{ArmClient, AzureError};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{parse_vm_id, Config};
use crate::domain::{DatabaseKind, Environment};
use crate::engine::actions::FNO_SERVICES;
use crate::engine::progress::{Progress, Silent};
use crate::engine::Engine;
use crate::mock::{
    AosSpec, DatabaseSpec, HistoryEntry, MockAzure, MockError, Scenario, ServerSpec, SkuSpec,
    TimeSpec, VmSpec,
};
use crate::store::{SharedStore, StoreError};
use chrono::TimeDelta;
use std::sync::{Arc, Mutex};

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
}

/// Which Azure the engine talks to.
#[derive(Debug, Clone)]
pub enum Azure {
    /// The ARM endpoint and credential in `[azure]`.
    Real,
    /// A mock Azure started in this process with this scenario; it lives as
    /// long as the [`App`].
    Embedded(Scenario),
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
                    scenario,
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
        Ok(App {
            config: self.config,
            store,
            clock: self.clock,
            mock,
            azure,
            progress: self.progress,
            actor: self.actor,
            secrets: self.secrets,
            shutdown: self.shutdown,
            engine: Mutex::new(None),
        })
    }
}

pub struct App {
    pub config: Config,
    pub store: SharedStore,
    pub clock: SharedClock,
    mock: Option<MockAzure>,
    azure: Azure,
    progress: Arc<dyn Progress>,
    actor: String,
    secrets: Vec<(String, String)>,
    shutdown: Option<tokio::sync::watch::Receiver<bool>>,
    engine: Mutex<Option<Arc<Engine>>>,
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
        let mut slot = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(engine) = slot.as_ref() {
            return Ok(engine.clone());
        }
        let azure = match &self.azure {
            Azure::Mock { url, ca_pem } => ArmClient::for_mock(&self.config.azure, url, ca_pem)?,
            _ => ArmClient::new(&self.config.azure, None)?,
        };
        let mut engine = Engine::new(
            &self.config,
            self.store.clone(),
            azure,
            self.clock.clone(),
            self.progress.clone(),
            self.actor.clone(),
        );
        for (var, value) in &self.secrets {
            engine = engine.with_secret(var, value);
        }
        if let Some(stop) = &self.shutdown {
            engine = engine.with_shutdown(stop.clone());
        }
        let engine = Arc::new(engine);
        *slot = Some(engine.clone());
        Ok(engine)
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

// ---- Rehearsals: a mock Azure seeded from environments ----

/// The content history given to a seeded F&O database: what a restore to an
/// instant should bring back.
pub const SEEDED_HISTORY: [(i64, &str); 4] = [
    (30 * 24, "state 30 days ago"),
    (7 * 24, "state 7 days ago"),
    (24, "state 1 day ago"),
    (1, "state 1 hour ago (after destructive tests)"),
];

/// A scenario holding every Azure SQL environment's server, databases and VMs.
pub fn rehearsal_scenario(envs: &[Environment]) -> Scenario {
    let mut scenario = Scenario::default();
    for env in envs
        .iter()
        .filter(|e| e.database_kind == DatabaseKind::AzureSql)
    {
        let pos = scenario.servers.iter().position(|s| {
            s.subscription_id == env.subscription_id
                && s.resource_group == env.resource_group
                && s.name == env.server
        });
        let server = match pos {
            Some(i) => &mut scenario.servers[i],
            None => {
                scenario.servers.push(ServerSpec {
                    subscription_id: env.subscription_id.clone(),
                    resource_group: env.resource_group.clone(),
                    name: env.server.clone(),
                    location: env.location.clone(),
                    ..Default::default()
                });
                scenario.servers.last_mut().expect("just pushed")
            }
        };
        // Two environments may name the same server and database: seed it once.
        if !server.databases.iter().any(|d| d.name == env.database) {
            let history = SEEDED_HISTORY
                .iter()
                .map(|(hours, what)| HistoryEntry {
                    at: TimeSpec::ago(TimeDelta::hours(*hours)),
                    content: format!("{}/{}: {what}", env.name, env.database),
                })
                .collect();
            server.databases.push(DatabaseSpec {
                name: env.database.clone(),
                sku: Some(SkuSpec {
                    name: "GP_Gen5".into(),
                    tier: Some("GeneralPurpose".into()),
                    family: Some("Gen5".into()),
                    capacity: Some(4),
                }),
                // earliestRestoreDate follows: the later of the creation
                // and retention_days ago.
                retention_days: Some(env.retention_days.clamp(1, 35)),
                created: Some(TimeSpec::ago(TimeDelta::days(90))),
                history,
                ..Default::default()
            });
        }
        for other in env.entity_store_database.iter().chain(&env.mr_database) {
            if server.databases.iter().any(|d| &d.name == other) {
                continue;
            }
            server.databases.push(DatabaseSpec {
                name: other.clone(),
                history: vec![HistoryEntry {
                    at: TimeSpec::ago(TimeDelta::days(90)),
                    content: format!("{}/{other}", env.name),
                }],
                ..Default::default()
            });
        }
        // The AOS configuration an AOS (and the sync VM) reads its own
        // database access from; the password exists only in the mock.
        let aos = AosSpec {
            server: format!("{}.database.windows.net", env.server),
            database: env.database.clone(),
            sql_user: env.sql_user.clone(),
            sql_password: format!("mock-{}", uuid::Uuid::new_v4().simple()),
        };
        for vm in env.aos_vms.iter().chain(&env.sync_vm).chain(&env.mr_vm) {
            let Some((sub, rg, name)) = parse_vm_id(vm) else {
                continue;
            };
            let is_aos = env.aos_vms.contains(vm) || env.sync_vm.as_ref() == Some(vm);
            if scenario
                .vms
                .iter()
                .any(|v| v.subscription_id == sub && v.resource_group == rg && v.name == name)
            {
                continue;
            }
            scenario.vms.push(VmSpec {
                subscription_id: sub.to_string(),
                resource_group: rg.to_string(),
                name: name.to_string(),
                location: env.location.clone(),
                services: FNO_SERVICES.iter().map(|s| s.to_string()).collect(),
                aos: is_aos.then(|| aos.clone()),
            });
        }
    }
    scenario
}

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
    fn every_azure_sql_environment_is_seeded_once() {
        let config = Config::from_toml(
            &std::fs::read_to_string("config/pitr.toml").unwrap(),
            "config/pitr.toml",
            [],
        )
        .unwrap();
        let s = rehearsal_scenario(&config.environments);
        // contoso-uat and contoso-prod are Azure SQL; the one-box is not.
        assert_eq!(s.servers.len(), 2);
        let uat = s
            .servers
            .iter()
            .find(|s| s.name == "sql-contoso-uat")
            .unwrap();
        let names: Vec<_> = uat.databases.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["AxDB", "AxDW", "MRDB"]);
        assert_eq!(uat.databases[0].history.len(), SEEDED_HISTORY.len());
        // aos1 is both an AOS and the sync VM: one VM.
        assert_eq!(s.vms.len(), 3);
        let uat_env = config
            .environments
            .iter()
            .find(|e| e.server == "sql-contoso-uat")
            .unwrap();
        assert_eq!(
            uat.databases[0].retention_days,
            Some(uat_env.retention_days.min(35))
        );
        for vm in &s.vms {
            let id = format!(
                "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/{}",
                vm.subscription_id, vm.resource_group, vm.name
            );
            let env = config
                .environments
                .iter()
                .find(|e| {
                    e.aos_vms.contains(&id)
                        || e.sync_vm.as_ref() == Some(&id)
                        || e.mr_vm.as_ref() == Some(&id)
                })
                .unwrap();
            let aos_or_sync = env.aos_vms.contains(&id) || env.sync_vm.as_ref() == Some(&id);
            assert_eq!(vm.aos.is_some(), aos_or_sync, "{id}");
            if let Some(a) = &vm.aos {
                assert_eq!(a.server, format!("{}.database.windows.net", env.server));
                assert_eq!(a.database, env.database);
                assert_eq!(a.sql_user, env.sql_user);
                assert!(!a.sql_password.is_empty());
            }
        }
    }

    #[test]
    fn the_sample_environment_is_valid_config() {
        let env = sample_environment("demo-uat", "00000000-0000-0000-0000-0000000000de");
        let text = format!("[[environments]]\n{}", toml::to_string(&env).unwrap());
        let config = Config::from_toml(&text, "sample", []).unwrap();
        assert_eq!(config.environments, vec![env]);
    }
}
