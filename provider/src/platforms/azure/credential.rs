//! Azure credentials from the standard chain, in the order Azure's own tools use, so that what
//! works for `az` and for the Azure SDKs works here: nothing secret is in the configuration
//! or in state.
//!
//! 1. **environment**: a service principal's secret (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
//!    `AZURE_CLIENT_SECRET`; `AZURE_AUTHORITY_HOST` for sovereign clouds);
//! 2. **workload identity**: a federated token file (`AZURE_FEDERATED_TOKEN_FILE`, as AKS
//!    workload identity and GitHub's OIDC set up);
//! 3. **managed identity**: on Azure compute (App Service sets `IDENTITY_ENDPOINT`; a VM's
//!    IMDS is used when the provider's `azure.use_managed_identity` is set, as azurerm's
//!    `use_msi`, so a laptop never waits on an unreachable IMDS);
//! 4. **Azure CLI**: the account of `az login`.
//!
//! `azure_identity` 1.0 has each credential but no chain of them (its `DefaultAzureCredential`
//! is gone), so the chain is here: the first source that is configured and gives a token is
//! used from then on; when none does, the error lists each one's reason. Tokens are kept
//! until two minutes before they expire (the Azure CLI credential would run `az` for each).

use std::sync::{Arc, Mutex};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientSecretCredential,
    ManagedIdentityCredential, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

use crate::AzureSettings;

/// The chain: the sources this environment configures, tried in order.
pub struct Chain {
    sources: Vec<(&'static str, Arc<dyn TokenCredential>)>,
    /// The source that gave the last token.
    chosen: Mutex<Option<usize>>,
    /// Tokens by scopes.
    tokens: Mutex<std::collections::HashMap<String, AccessToken>>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field(
                "sources",
                &self.sources.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Chain {
    /// The sources `settings` and the environment configure.
    pub fn new(settings: &AzureSettings) -> Chain {
        let mut sources: Vec<(&'static str, Arc<dyn TokenCredential>)> = Vec::new();
        let tenant = settings
            .tenant_id
            .clone()
            .or_else(|| var("AZURE_TENANT_ID"));
        if let (Some(tenant), Some(client), Some(secret)) = (
            tenant.as_deref(),
            var("AZURE_CLIENT_ID"),
            var("AZURE_CLIENT_SECRET"),
        ) {
            if let Ok(c) = ClientSecretCredential::new(tenant, client, secret.into(), None) {
                sources.push(("environment (AZURE_CLIENT_SECRET)", c));
            }
        }
        if var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
            let options = WorkloadIdentityCredentialOptions {
                tenant_id: tenant.clone(),
                ..Default::default()
            };
            if let Ok(c) = WorkloadIdentityCredential::new(Some(options)) {
                sources.push(("workload identity (AZURE_FEDERATED_TOKEN_FILE)", c));
            }
        }
        if settings.use_managed_identity || var("IDENTITY_ENDPOINT").is_some() {
            if let Ok(c) = ManagedIdentityCredential::new(None) {
                sources.push(("managed identity", c));
            }
        }
        let cli = AzureCliCredentialOptions {
            tenant_id: settings.tenant_id.clone(),
            ..Default::default()
        };
        if let Ok(c) = AzureCliCredential::new(Some(cli)) {
            sources.push(("Azure CLI", c));
        }
        Chain {
            sources,
            chosen: Mutex::new(None),
            tokens: Mutex::default(),
        }
    }

    /// The names of the sources, in the order they are tried.
    pub fn sources(&self) -> Vec<&'static str> {
        self.sources.iter().map(|(n, _)| *n).collect()
    }
}

#[tfplugin::async_trait]
impl TokenCredential for Chain {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let key = scopes.join(" ");
        let fresh =
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::minutes(2);
        if let Some(t) = self.tokens.lock().unwrap().get(&key) {
            if t.expires_on > fresh {
                return Ok(t.clone());
            }
        }
        let t = self.fetch(scopes, options).await?;
        self.tokens.lock().unwrap().insert(key, t.clone());
        Ok(t)
    }
}

impl Chain {
    async fn fetch(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let chosen = *self.chosen.lock().unwrap();
        if let Some(i) = chosen {
            return self.sources[i].1.get_token(scopes, options).await;
        }
        let mut failures = Vec::new();
        for (i, (name, c)) in self.sources.iter().enumerate() {
            match c.get_token(scopes, options.clone()).await {
                Ok(t) => {
                    *self.chosen.lock().unwrap() = Some(i);
                    return Ok(t);
                }
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
        Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            format!(
                "no Azure credentials: {}. Set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, run `az login`, or run where workload identity or a managed identity is available (azure.use_managed_identity = true on a VM)",
                failures.join("; ")
            ),
        ))
    }
}
