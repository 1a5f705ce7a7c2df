//! Which `azure_identity` credential signs the ARM requests. The secret of a
//! client-secret credential is read from an environment variable named in the
//! config, never from the config file itself, and is never printed.
use super::error::AzureError;
use crate::config::{AzureConfig, CredentialKind};
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::http::ClientOptions;
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};
use std::sync::{Arc, Mutex};

pub fn build(
    cfg: &AzureConfig,
    options: &ClientOptions,
    secret_override: Option<&str>,
) -> Result<Arc<dyn TokenCredential>, AzureError> {
    let setup =
        |what: &str, e: azure_core::Error| AzureError::Setup(format!("{what} credential: {e}"));
    match cfg.credential {
        CredentialKind::ClientSecret => client_secret(cfg, options, secret_override)?.ok_or_else(|| {
            AzureError::Setup(format!(
                "credential = \"client_secret\" needs tenant_id, client_id and the secret in the environment variable {}",
                cfg.client_secret_env
            ))
        }),
        CredentialKind::ManagedIdentity => managed_identity(cfg, options)
            .map_err(|e| setup("managed identity", e)),
        CredentialKind::WorkloadIdentity => workload_identity(cfg, options)
            .map_err(|e| setup("workload identity", e)),
        CredentialKind::AzureCli => azure_cli(cfg).map_err(|e| setup("Azure CLI", e)),
        CredentialKind::Default => {
            // The usual order: explicit secret, then workload identity (AKS),
            // then managed identity (Azure hosts), then a developer's CLI login.
            let mut chain: Vec<(&'static str, Arc<dyn TokenCredential>)> = Vec::new();
            if let Some(c) = client_secret(cfg, options, secret_override)? {
                chain.push(("client_secret", c));
            }
            if std::env::var_os("AZURE_FEDERATED_TOKEN_FILE").is_some() {
                if let Ok(c) = workload_identity(cfg, options) {
                    chain.push(("workload_identity", c));
                }
            }
            if let Ok(c) = managed_identity(cfg, options) {
                chain.push(("managed_identity", c));
            }
            if let Ok(c) = azure_cli(cfg) {
                chain.push(("azure_cli", c));
            }
            Ok(Arc::new(ChainedCredential {
                chain,
                chosen: Mutex::new(None),
            }))
        }
    }
}

fn client_secret(
    cfg: &AzureConfig,
    options: &ClientOptions,
    secret_override: Option<&str>,
) -> Result<Option<Arc<dyn TokenCredential>>, AzureError> {
    let (Some(tenant), Some(client)) = (&cfg.tenant_id, &cfg.client_id) else {
        return Ok(None);
    };
    let secret = match secret_override {
        Some(s) => s.to_string(),
        None => match std::env::var(&cfg.client_secret_env) {
            Ok(s) => s,
            Err(_) => return Ok(None),
        },
    };
    let c = ClientSecretCredential::new(
        tenant,
        client.clone(),
        Secret::new(secret),
        Some(ClientSecretCredentialOptions {
            client_options: options.clone(),
        }),
    )
    .map_err(|e| AzureError::Setup(format!("client secret credential: {e}")))?;
    Ok(Some(c))
}

fn managed_identity(
    cfg: &AzureConfig,
    options: &ClientOptions,
) -> azure_core::Result<Arc<dyn TokenCredential>> {
    let c = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        user_assigned_id: cfg.client_id.clone().map(UserAssignedId::ClientId),
        client_options: options.clone(),
    }))?;
    Ok(c)
}

fn workload_identity(
    cfg: &AzureConfig,
    options: &ClientOptions,
) -> azure_core::Result<Arc<dyn TokenCredential>> {
    let c = WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
        credential_options: ClientAssertionCredentialOptions {
            client_options: options.clone(),
        },
        client_id: cfg.client_id.clone(),
        tenant_id: cfg.tenant_id.clone(),
        ..Default::default()
    }))?;
    Ok(c)
}

fn azure_cli(cfg: &AzureConfig) -> azure_core::Result<Arc<dyn TokenCredential>> {
    let c = AzureCliCredential::new(Some(AzureCliCredentialOptions {
        tenant_id: cfg.tenant_id.clone(),
        ..Default::default()
    }))?;
    Ok(c)
}

/// Tries each credential in turn and sticks to the first that works.
#[derive(Debug)]
struct ChainedCredential {
    chain: Vec<(&'static str, Arc<dyn TokenCredential>)>,
    chosen: Mutex<Option<usize>>,
}

#[async_trait::async_trait]
impl TokenCredential for ChainedCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let chosen = *self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = chosen {
            return self.chain[i].1.get_token(scopes, options).await;
        }
        let mut failures = Vec::new();
        for (i, (name, cred)) in self.chain.iter().enumerate() {
            match cred.get_token(scopes, options.clone()).await {
                Ok(t) => {
                    *self.chosen.lock().unwrap_or_else(|e| e.into_inner()) = Some(i);
                    tracing::info!(credential = name, "authenticated to Azure");
                    return Ok(t);
                }
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
        Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            format!(
                "no credential worked (tried in order: {}); set [azure] credential explicitly",
                if failures.is_empty() {
                    "none available".to_string()
                } else {
                    failures.join("; ")
                }
            ),
        ))
    }
}
