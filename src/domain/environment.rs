//! What the engine knows of an environment: where its databases and VMs are,
//! and how its offline/online/sync/mr_reset actions are carried out.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Sandbox,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseKind {
    AzureSql,
    SqlServer,
}

/// How an environment action (offline, online, sync, mr_reset) is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// Managed Run Commands on the environment's VMs.
    #[default]
    VmRunCommand,
    /// A person does the action; the job waits for `pitr job confirm`.
    Manual,
    /// A signed POST to `[environments.webhook] url`, then its status.
    Webhook,
    /// Nothing to do (the environment's services are handled elsewhere).
    None,
}

/// Where a `webhook` environment sends its actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookAction {
    /// Receives a signed POST per action.
    pub url: String,
    /// The environment variable holding the HMAC key of the signatures.
    pub secret_env: String,
}

fn default_retention() -> u32 {
    35
}
fn default_package_dir() -> String {
    r"K:\AosService\PackagesLocalDirectory".to_string()
}
fn default_mr_dir() -> String {
    r"C:\Program Files\Microsoft Dynamics 365 for Operations - Financial Reporting".to_string()
}
fn default_sql_user() -> String {
    "axdbadmin".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub name: String,
    pub tier: Tier,
    pub database_kind: DatabaseKind,
    pub subscription_id: String,
    pub resource_group: String,
    pub server: String,
    pub location: String,
    /// The F&O (AX) database: the only one that may be restored.
    pub database: String,
    /// Entity store database name, refused as a restore target.
    #[serde(default)]
    pub entity_store_database: Option<String>,
    /// Management Reporter database name, refused as a restore target.
    #[serde(default)]
    pub mr_database: Option<String>,
    /// VM resource ids where the services are stopped and started.
    #[serde(default)]
    pub aos_vms: Vec<String>,
    /// VM resource id where database synchronization runs.
    #[serde(default)]
    pub sync_vm: Option<String>,
    /// VM resource id where the Management Reporter reset runs.
    #[serde(default)]
    pub mr_vm: Option<String>,
    #[serde(default)]
    pub actions: ActionKind,
    /// With `actions = "webhook"`: where the actions go.
    #[serde(default)]
    pub webhook: Option<WebhookAction>,
    #[serde(default = "default_retention")]
    pub retention_days: u32,
    #[serde(default = "default_package_dir")]
    pub package_dir: String,
    #[serde(default = "default_mr_dir")]
    pub mr_install_dir: String,
    #[serde(default = "default_sql_user")]
    pub sql_user: String,
    /// Name of the environment variable holding the SQL password used by sync.
    #[serde(default)]
    pub sql_password_env: Option<String>,
    /// Run `restore` before `offline` (pre-staging) for this environment's requests.
    #[serde(default)]
    pub prestage: bool,
    /// Keep a restored database whose run failed before `swap` (for diagnosis)
    /// instead of dropping it.
    #[serde(default)]
    pub keep_failed_restore: bool,
    /// Entra group object ids: when set, a requester must carry one of them
    /// in the token's `groups` claim to submit for this environment
    /// (operators always may).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requester_groups: Vec<String>,
}

impl Environment {
    /// A sandbox Azure SQL environment with every optional key at its default
    /// (no VMs: add them, or set `actions` to none).
    pub fn sandbox(name: &str, subscription_id: &str, resource_group: &str, server: &str) -> Self {
        Self {
            name: name.to_string(),
            tier: Tier::Sandbox,
            database_kind: DatabaseKind::AzureSql,
            subscription_id: subscription_id.to_string(),
            resource_group: resource_group.to_string(),
            server: server.to_string(),
            location: "westeurope".into(),
            database: "AxDB".into(),
            entity_store_database: None,
            mr_database: None,
            aos_vms: Vec::new(),
            sync_vm: None,
            mr_vm: None,
            actions: ActionKind::default(),
            webhook: None,
            retention_days: default_retention(),
            package_dir: default_package_dir(),
            mr_install_dir: default_mr_dir(),
            sql_user: default_sql_user(),
            sql_password_env: None,
            prestage: false,
            keep_failed_restore: false,
            requester_groups: Vec::new(),
        }
    }

    /// ARM resource id of a database of this environment's server.
    pub fn database_id(&self, name: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Sql/servers/{}/databases/{}",
            self.subscription_id, self.resource_group, self.server, name
        )
    }
}
