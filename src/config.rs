//! One typed configuration, layered: built-in defaults, then the TOML file,
//! then `PITR_<SECTION>_<KEY>` environment variables. Validated at start-up
//! so that a bad value is reported before anything is changed.
use crate::domain::Environment;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {cause}; pass --config FILE or set PITR_CONFIG")]
    Read { path: String, cause: String },
    #[error("config file {path} is not valid: {cause}")]
    Parse { path: String, cause: String },
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
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Deadline of the restore operation (Microsoft: most finish within 12 h).
    pub restore_timeout_secs: u64,
    /// Deadline of one environment action (offline, online, sync, mr_reset).
    pub action_timeout_secs: u64,
    /// Deadline of the other steps (preflight, swap, verify, deletes).
    pub step_timeout_secs: u64,
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
    pub estimates: StepEstimates,
}

/// `[engine.estimates]`: `<step>_secs` for any step, overriding the
/// estimate the step declares (`engine/steps/<step>.rs`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepEstimates(std::collections::BTreeMap<String, u64>);

impl StepEstimates {
    pub fn secs(&self, step: crate::domain::StepName) -> Option<u64> {
        self.0.get(&format!("{step}_secs")).copied()
    }

    /// The keys that name a step; anything else is a typo.
    fn check(&self) -> Result<(), String> {
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
                    "[engine.estimates] {key} is not a step estimate; use one of {}",
                    known.join(", ")
                ));
            }
            if *value > WEEK_SECS {
                return Err(format!(
                    "[engine.estimates] {key} = {value} is above its limit of {WEEK_SECS}"
                ));
            }
        }
        Ok(())
    }
}

const WEEK_SECS: u64 = 7 * 24 * 3600;

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            restore_timeout_secs: 12 * 3600,
            action_timeout_secs: 2 * 3600,
            step_timeout_secs: 15 * 60,
            keep_original_hours: 24,
            lease_ttl_secs: 60,
            scheduler_tick_secs: 15,
            max_concurrent_runs: 2,
            estimates: StepEstimates::default(),
        }
    }
}

/// The sections a `PITR_<SECTION>_<KEY>` variable can set. Other `PITR_*`
/// variables (PITR_CONFIG, PITR_LOG, a secret named by `client_secret_env`)
/// are not config keys and are left alone.
const SECTIONS: &[&str] = &["store", "azure", "engine"];

impl Config {
    /// Reads `path`, applies `PITR_*` overrides from `vars`, validates.
    pub fn load(
        path: &Path,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: p.clone(),
            cause: e.to_string(),
        })?;
        Self::from_toml(&text, &p, vars)
    }

    pub fn from_toml(
        text: &str,
        origin: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let parse_err = |cause: String| ConfigError::Parse {
            path: origin.to_string(),
            cause,
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        for (name, value) in vars {
            apply_override(&mut table, &name, &value).map_err(&parse_err)?;
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| parse_err(e.to_string()))?;
        config.validate(origin)?;
        Ok(config)
    }

    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |problem: String| ConfigError::Invalid {
            path: origin.to_string(),
            problem,
        };
        if let Err(e) = crate::store::check_url(&self.store.url) {
            return Err(invalid(format!("[store] url: {e}")));
        }
        for (key, value) in [
            ("arm_endpoint", &self.azure.arm_endpoint),
            ("authority_host", &self.azure.authority_host),
        ] {
            match url::Url::parse(value) {
                Ok(u) if u.scheme() == "https" => {}
                _ => {
                    return Err(invalid(format!(
                        "[azure] {key} '{value}' must be an https URL"
                    )))
                }
            }
        }
        if self.azure.min_poll_interval_ms == 0 {
            return Err(invalid(
                "[azure] min_poll_interval_ms must be at least 1; it keeps a Retry-After of 0 from becoming a tight loop".into(),
            ));
        }
        if self.azure.max_poll_interval_ms < self.azure.min_poll_interval_ms {
            return Err(invalid(
                "[azure] max_poll_interval_ms must not be below min_poll_interval_ms".into(),
            ));
        }
        // Bounds keep date arithmetic from overflowing (and catch typos).
        let e = &self.engine;
        let week = WEEK_SECS;
        e.estimates.check().map_err(invalid)?;
        for (key, value, max) in [
            (
                "[engine] restore_timeout_secs",
                e.restore_timeout_secs,
                week,
            ),
            ("[engine] action_timeout_secs", e.action_timeout_secs, week),
            ("[engine] step_timeout_secs", e.step_timeout_secs, week),
            ("[engine] lease_ttl_secs", e.lease_ttl_secs, 24 * 3600),
            (
                "[engine] keep_original_hours",
                e.keep_original_hours,
                24 * 365,
            ),
            ("[engine] scheduler_tick_secs", e.scheduler_tick_secs, 3600),
            (
                "[azure] request_timeout_secs",
                self.azure.request_timeout_secs,
                3600,
            ),
            (
                "[azure] max_poll_interval_ms",
                self.azure.max_poll_interval_ms,
                3_600_000,
            ),
            (
                "[azure] retry_max_delay_ms",
                self.azure.retry_max_delay_ms,
                3_600_000,
            ),
        ] {
            if value > max {
                return Err(invalid(format!(
                    "{key} = {value} is above its limit of {max}"
                )));
            }
        }
        for env in &self.environments {
            if env.retention_days == 0 || env.retention_days > 3650 {
                return Err(invalid(format!(
                    "environment '{}': retention_days must be between 1 and 3650",
                    env.name
                )));
            }
        }
        if self.azure.credential == CredentialKind::ClientSecret
            && (self.azure.tenant_id.is_none() || self.azure.client_id.is_none())
        {
            return Err(invalid(
                "[azure] credential = \"client_secret\" needs tenant_id and client_id".into(),
            ));
        }
        let mut seen = HashSet::new();
        for env in &self.environments {
            if !seen.insert(env.name.as_str()) {
                return Err(invalid(format!(
                    "environment '{}' is declared twice; names must be unique",
                    env.name
                )));
            }
            for vm in env.aos_vms.iter().chain(&env.sync_vm).chain(&env.mr_vm) {
                if parse_vm_id(vm).is_none() {
                    return Err(invalid(format!(
                        "environment '{}': '{vm}' is not a VM resource id (/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/NAME)",
                        env.name
                    )));
                }
            }
            if env.actions == crate::domain::ActionKind::VmRunCommand
                && (env.aos_vms.is_empty() || env.sync_vm.is_none() || env.mr_vm.is_none())
            {
                return Err(invalid(format!(
                    "environment '{}': actions = \"vm-run-command\" needs aos_vms, sync_vm and mr_vm",
                    env.name
                )));
            }
        }
        Ok(())
    }
}

/// `PITR_AZURE_MIN_POLL_INTERVAL_MS=500` sets `[azure] min_poll_interval_ms`.
fn apply_override(table: &mut toml::Table, name: &str, value: &str) -> Result<(), String> {
    let Some(rest) = name.strip_prefix("PITR_") else {
        return Ok(());
    };
    let rest = rest.to_ascii_lowercase();
    let Some((section, key)) = rest.split_once('_') else {
        return Ok(());
    };
    if !SECTIONS.contains(&section) {
        return Ok(());
    }
    if section == "azure" && key == "client_secret" {
        return Err(format!(
            "{name}: secrets are not config keys; put the secret in the variable named by [azure] client_secret_env"
        ));
    }
    let parsed = if let Ok(i) = value.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(b) = value.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(value.to_string())
    };
    // A key of a nested table (`PITR_ENGINE_ESTIMATES_RESTORE_SECS` sets
    // `[engine.estimates] restore_secs`).
    let mut path = vec![section.to_string()];
    let mut key = key.to_string();
    for (parent, sub) in SUBTABLES {
        if section == *parent {
            if let Some(k) = key.strip_prefix(&format!("{sub}_")) {
                path.push(sub.to_string());
                key = k.to_string();
                break;
            }
        }
    }
    let mut t = table;
    for name in &path {
        let entry = t
            .entry(name.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry
            .as_table_mut()
            .ok_or_else(|| format!("[{}] is not a table", path.join(".")))?;
    }
    t.insert(key, parsed);
    Ok(())
}

/// Nested tables a `PITR_*` variable can reach: (section, table).
const SUBTABLES: &[(&str, &str)] = &[("engine", "estimates")];

/// Splits a VM resource id into (subscription, resource group, name).
pub fn parse_vm_id(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["subscriptions", sub, "resourceGroups", rg, "providers", prov, "virtualMachines", name]
            if prov.eq_ignore_ascii_case("Microsoft.Compute") && !name.is_empty() =>
        {
            Some((sub, rg, name))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn vm_ids() {
        assert_eq!(
            parse_vm_id("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"),
            Some(("s", "rg", "vm1"))
        );
        assert_eq!(parse_vm_id("vm1"), None);
    }
}
