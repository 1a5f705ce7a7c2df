//! One typed configuration, layered: built-in defaults, then the TOML file,
//! then `PITR_<SECTION>_<KEY>` environment variables. Validated at start-up
//! so that a bad value is reported before anything is changed.
use crate::domain::Environment;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

mod load;
mod validate;

pub use load::env_overrides;
pub use validate::parse_vm_id;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {cause}; pass --config FILE or set PITR_CONFIG")]
    Read { path: String, cause: String },
    #[error("config file {path} is not valid: {cause}")]
    Parse { path: String, cause: String },
    /// A `PITR_*` environment variable that cannot be used: named, its
    /// value never shown (it may be a secret in the wrong place).
    #[error("environment variable {var}: {problem}")]
    Override { var: String, problem: String },
    #[error("config {path}: {problem}")]
    Invalid { path: String, problem: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub azure: AzureConfig,
    #[serde(default)]
    pub engine: EngineConfig,
    #[serde(default)]
    pub environments: Vec<Environment>,
    /// `pitr serve`'s HTTP listener.
    #[serde(default)]
    pub serve: ServeConfig,
    /// Who may call the API (Entra ID bearer tokens, or nobody but loopback).
    #[serde(default)]
    pub auth: AuthConfig,
    /// Signed webhooks of request events, delivered from the outbox.
    #[serde(default)]
    pub notifications: Vec<NotificationConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Where the API, `/healthz` and `/readyz` listen (port 0: any free port).
    pub listen: String,
    /// TLS certificate chain (PEM); with `tls_key`, `pitr serve` speaks HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// The URL people use to reach the service (the web page's links and
    /// sign-in redirect); default `http://{listen}`.
    pub public_url: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            tls_cert: None,
            tls_key: None,
            public_url: None,
        }
    }
}

impl ServeConfig {
    /// `public_url`, or `http(s)://{listen}`.
    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| {
            let scheme = if self.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{}", self.listen)
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Bearer JWTs issued by the Entra ID tenant.
    #[default]
    Entra,
    /// No authentication: only on a loopback listener; every call acts as
    /// a local operator named by the process's actor.
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    pub tenant_id: Option<String>,
    /// Default: `[azure] authority_host`.
    pub authority_host: Option<String>,
    /// The API's application ID URI (`api://pitr`): the tokens' `aud`.
    pub audience: Option<String>,
    /// An extra CA (PEM) to trust when fetching the tenant's keys.
    pub ca_file: Option<PathBuf>,
    /// The web page's application (client) id: the ID tokens' audience.
    pub client_id: Option<String>,
    /// The variable holding the web page's client secret (a confidential
    /// web app); read at start-up, never logged.
    pub client_secret_env: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mode: AuthMode::Entra,
            tenant_id: None,
            authority_host: None,
            audience: None,
            ca_file: None,
            client_id: None,
            client_secret_env: None,
        }
    }
}

/// The request events a receiver can subscribe to.
pub const NOTIFICATION_EVENTS: [&str; 14] = [
    "submitted",
    "accepted",
    "rejected",
    "rescheduled",
    "flagged",
    "cancelled",
    "started",
    "step_failed",
    "succeeded",
    "failed",
    "rollback_started",
    "rollback_failed",
    "rolled_back",
    "missed",
];

/// One `[[notifications]]` receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationConfig {
    /// Receives a signed POST per event.
    pub url: String,
    /// The environment variable holding the HMAC key of the signatures.
    pub secret_env: String,
    /// Which events (default: all of them).
    #[serde(default = "all_events")]
    pub events: Vec<String>,
}

fn all_events() -> Vec<String> {
    NOTIFICATION_EVENTS.iter().map(|e| e.to_string()).collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default = "default_store_url")]
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: default_store_url(),
        }
    }
}

fn default_store_url() -> String {
    "sqlite://var/pitr.db".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    #[default]
    Default,
    ClientSecret,
    ManagedIdentity,
    WorkloadIdentity,
    AzureCli,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AzureConfig {
    pub arm_endpoint: String,
    pub authority_host: String,
    /// An extra CA certificate (PEM) to trust, e.g. the mock Azure's.
    pub ca_file: Option<PathBuf>,
    pub credential: CredentialKind,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    /// Name of the environment variable that holds the client secret.
    pub client_secret_env: String,
    /// Floor of the interval between two polls of an operation: a
    /// `Retry-After: 0` never means a tight loop.
    pub min_poll_interval_ms: u64,
    /// Cap of the interval between two polls.
    pub max_poll_interval_ms: u64,
    /// Timeout of one HTTP request.
    pub request_timeout_secs: u64,
    /// Transient failures (408, 429, 5xx, connection errors) are retried this
    /// many times with exponential backoff and jitter.
    pub retry_max_times: usize,
    pub retry_min_delay_ms: u64,
    pub retry_max_delay_ms: u64,
    /// Point-in-time restores this runner starts at once in one
    /// subscription; more wait in a queue (Azure SQL refuses restores over
    /// the subscription's cap). 0: no queue.
    pub max_concurrent_restores_per_subscription: u32,
    /// ARM's throttling buckets, which every job and step of this process
    /// shares per subscription (`[azure.rate_limits]`).
    pub rate_limits: RateLimits,
}

/// `[azure.rate_limits]`: the token buckets ARM keeps per subscription and
/// service principal (documented: reads 250 refilled at 25/s, writes and
/// deletes 200 at 10/s), and how many runners share that principal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    pub reads: Bucket,
    pub writes: Bucket,
    pub deletes: Bucket,
    /// Runners (`pitr serve` processes) using the same service principal:
    /// each paces itself to 1/runners of every bucket and of
    /// `max_concurrent_restores_per_subscription` (fair share).
    pub runners: u32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    pub capacity: u32,
    pub per_second: f64,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            reads: Bucket {
                capacity: 250,
                per_second: 25.0,
            },
            writes: Bucket {
                capacity: 200,
                per_second: 10.0,
            },
            deletes: Bucket {
                capacity: 200,
                per_second: 10.0,
            },
            runners: 1,
        }
    }
}

impl Default for AzureConfig {
    fn default() -> Self {
        Self {
            arm_endpoint: "https://management.azure.com".into(),
            authority_host: "https://login.microsoftonline.com".into(),
            ca_file: None,
            credential: CredentialKind::Default,
            tenant_id: None,
            client_id: None,
            client_secret_env: "AZURE_CLIENT_SECRET".into(),
            min_poll_interval_ms: 5_000,
            max_poll_interval_ms: 60_000,
            request_timeout_secs: 60,
            retry_max_times: 6,
            retry_min_delay_ms: 1_000,
            retry_max_delay_ms: 60_000,
            max_concurrent_restores_per_subscription: 30,
            rate_limits: RateLimits::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Deadline of the restore step (its default: 12 h; Microsoft: most
    /// restores finish within 12 h). `[engine.timeouts] restore_secs` wins.
    pub restore_timeout_secs: Option<u64>,
    /// Deadline of every environment action (offline, online, sync,
    /// mr_reset) when set; each has its own default (sync: 6 h).
    pub action_timeout_secs: Option<u64>,
    /// Deadline of the other steps (preflight, swap, verify, cleanup) when set.
    pub step_timeout_secs: Option<u64>,
    /// How long the original database is kept after a successful run.
    pub keep_original_hours: u64,
    /// Lifetime of a runner's lease on a job; renewed every third of it.
    pub lease_ttl_secs: u64,
    /// How often `pitr serve` looks for due windows.
    pub scheduler_tick_secs: u64,
    /// Runs `pitr serve` carries at once (one per environment in any case).
    pub max_concurrent_runs: usize,
    /// Expected duration of each step, used to refuse starting a step that
    /// would end after the window closes.
    pub estimates: StepSecs,
    /// The deadline of each step, overriding the class keys above and the
    /// step's own default.
    pub timeouts: StepSecs,
}

/// `[engine.estimates]` or `[engine.timeouts]`: `<step>_secs` for any step,
/// overriding what the step declares (`engine/steps/<step>.rs`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepSecs(std::collections::BTreeMap<String, u64>);

impl StepSecs {
    pub fn secs(&self, step: crate::domain::StepName) -> Option<u64> {
        self.0.get(&format!("{step}_secs")).copied()
    }

    /// The keys that name a step (anything else is a typo) and values in
    /// `low..=WEEK_SECS`.
    pub(crate) fn check(&self, table: &str, low: u64) -> Result<(), String> {
        for (key, value) in &self.0 {
            let step = key
                .strip_suffix("_secs")
                .and_then(crate::domain::StepName::parse);
            if step.is_none() {
                let known: Vec<String> = crate::domain::StepName::ALL
                    .iter()
                    .map(|s| format!("{s}_secs"))
                    .collect();
                return Err(format!(
                    "[{table}] {key} does not name a step; use one of {}",
                    known.join(", ")
                ));
            }
            if *value < low || *value > WEEK_SECS {
                return Err(format!(
                    "[{table}] {key} = {value} is outside {low}..={WEEK_SECS}"
                ));
            }
        }
        Ok(())
    }
}

pub(crate) const WEEK_SECS: u64 = 7 * 24 * 3600;

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            restore_timeout_secs: None,
            action_timeout_secs: None,
            step_timeout_secs: None,
            keep_original_hours: 24,
            lease_ttl_secs: 60,
            scheduler_tick_secs: 15,
            max_concurrent_runs: 2,
            estimates: StepSecs::default(),
            timeouts: StepSecs::default(),
        }
    }
}

impl Config {
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }
}

/// True when `url`'s host is a loopback address (`localhost`, 127.0.0.0/8,
/// `::1`): the web page's cookies are `Secure` everywhere else.
pub fn is_loopback_url(url: &str) -> bool {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host().map(|h| match h {
                url::Host::Domain(d) => d == "localhost",
                url::Host::Ipv4(a) => a.is_loopback(),
                url::Host::Ipv6(a) => a.is_loopback(),
            })
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client paces itself to ARM's documented token buckets per
    /// subscription and service principal: reads 250 refilled at 25/s,
    /// writes and deletes 200 at 10/s ("Understand how Azure Resource
    /// Manager throttles requests", the table "Regional throttling and token
    /// bucket algorithm", https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling).
    /// Written out here, not read from the mock (whose file pins the same
    /// numbers on its own): a drift in either shows.
    #[test]
    fn rate_limits_default_to_arms_documented_buckets() {
        let r = RateLimits::default();
        let b = |b: Bucket| (b.capacity, b.per_second);
        assert_eq!(b(r.reads), (250, 25.0));
        assert_eq!(b(r.writes), (200, 10.0));
        assert_eq!(b(r.deletes), (200, 10.0));
        assert_eq!(r.runners, 1);
    }

    const MIN: &str = r#"
        [azure]
        arm_endpoint = "https://127.0.0.1:8443"
    "#;

    #[test]
    fn env_overrides_win() {
        let c = Config::from_toml(
            MIN,
            "t",
            [
                (
                    "PITR_AZURE_MIN_POLL_INTERVAL_MS".to_string(),
                    "250".to_string(),
                ),
                ("PITR_STORE_URL".to_string(), "sqlite://x.db".to_string()),
                ("PITR_CONFIG".to_string(), "ignored".to_string()),
            ],
        )
        .unwrap();
        assert_eq!(c.azure.min_poll_interval_ms, 250);
        assert_eq!(c.store.url, "sqlite://x.db");
    }

    #[test]
    fn bad_values_are_named() {
        let e = Config::from_toml("[azure]\nmin_poll_interval_ms = 0", "t", []).unwrap_err();
        assert!(e.to_string().contains("min_poll_interval_ms"));
        let e = Config::from_toml(
            "[engine.estimates]\nrestore_secs = 9000000000000000000",
            "t",
            [],
        )
        .unwrap_err();
        assert!(e.to_string().contains("restore_secs"), "{e}");
        let e = Config::from_toml("[azure]\nbogus = 1", "t", []).unwrap_err();
        assert!(e.to_string().contains("bogus"));
        let e = Config::from_toml("", "t", [("PITR_AZURE_NOPE".into(), "1".into())]).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        // Not config keys: left alone.
        Config::from_toml(
            "",
            "t",
            [
                ("PITR_ACTOR".into(), "x".into()),
                ("PITR_CLIENT_SECRET".into(), "x".into()),
            ],
        )
        .unwrap();
        let e = Config::from_toml("[azure]\narm_endpoint = \"http://x\"", "t", []).unwrap_err();
        assert!(e.to_string().contains("https"));
    }

    #[test]
    fn estimates_can_be_overridden_from_the_environment() {
        let c = Config::from_toml(
            "[engine.estimates]\nsync_secs = 60",
            "t",
            [(
                "PITR_ENGINE_ESTIMATES_RESTORE_SECS".to_string(),
                "900".to_string(),
            )],
        )
        .unwrap();
        assert_eq!(
            c.engine.estimates.secs(crate::domain::StepName::Restore),
            Some(900)
        );
        assert_eq!(
            c.engine.estimates.secs(crate::domain::StepName::Sync),
            Some(60)
        );
        let e = Config::from_toml("[engine.estimates]\nsink_secs = 1", "t", []).unwrap_err();
        assert!(e.to_string().contains("sink_secs"), "{e}");
    }
}
