//! Workload identity for endpoints on `azure`: the server reads its `azure_blob` store with a
//! user-assigned managed identity whose client ID is annotated on its ServiceAccount
//! (`azure.workload.identity/client-id`; its pods are labelled
//! `azure.workload.identity/use=true` for AKS's webhook), so no key is written anywhere. The
//! identity is the endpoint's `azure.client_id`, or one the provider creates
//! (`CLUSTER-ENDPOINT-serve` in the provider's resource group), federated with the cluster's
//! OIDC issuer for exactly this ServiceAccount and given `Storage Blob Data Reader` on exactly
//! the store's container. Both are recorded in the endpoint's `objects`
//! (`azure:identity/NAME`, `azure:role-assignment/ID`) and deleted with the endpoint.

use serde::{Deserialize, Serialize};
use tfplugin::{AttributePath, Config, Diagnostics};

use super::arm::ArmError;
use super::cluster::arm_error;
use super::Context;
use crate::platforms::PlatformError;

/// The annotation AKS's workload identity webhook reads.
pub const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";
/// The prefixes of what an endpoint's `objects` record.
pub const IDENTITY_ENTRY: &str = "azure:identity/";
pub const ROLE_ENTRY: &str = "azure:role-assignment/";
/// The built-in role `Storage Blob Data Reader`.
pub const BLOB_READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";
pub const IDENTITY_API_VERSION: &str = "2024-11-30";
pub const STORAGE_API_VERSION: &str = "2023-05-01";
/// The audience of Kubernetes service account tokens exchanged with Entra ID.
pub const AUDIENCE: &str = "api://AzureADTokenExchange";

/// The endpoint's `azure` block.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EndpointSettings {
    pub client_id: Option<String>,
    pub create_identity: Option<bool>,
}

impl EndpointSettings {
    pub fn create_identity(&self) -> bool {
        self.create_identity.unwrap_or(true)
    }
}

/// Plan-time checks of the endpoint's `azure` block.
pub fn validate(config: &Config, diags: &mut Diagnostics) {
    let Some(b) = config.elements("azure").into_iter().next() else {
        return;
    };
    if let tfplugin::Attr::Known(id) = b.get::<String>("client_id", diags) {
        let ok = id.len() == 36
            && id.split('-').map(str::len).eq([8usize, 4, 4, 4, 12])
            && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        if !ok {
            diags.error_at(
                AttributePath::attr("azure").then_attr("client_id"),
                "Invalid client ID",
                format!("{id:?} is not a client ID; give the managed identity's client ID, a GUID such as 00000000-0000-0000-0000-000000000000."),
            );
        }
    }
}

/// Refuses the endpoint's `azure` block on a platform other than `azure`.
pub fn refuse_block(config: &Config, here: &str, diags: &mut Diagnostics) {
    crate::platforms::not_used_here(
        config,
        "azure",
        here,
        "the azure block (the workload identity of the server) applies to endpoints on azure clusters; remove it.",
        diags,
    );
}

/// `az://ACCOUNT/CONTAINER[/PREFIX]` → (account, container). A store with its own `endpoint`
/// (an emulator, an on-prem gateway) is not Azure's: `None`.
pub fn blob_location(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("az://")?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if query.split('&').any(|kv| kv.starts_with("endpoint=")) {
        return None;
    }
    let mut parts = path.split('/');
    let account = parts.next().filter(|a| !a.is_empty())?;
    let container = parts.next().filter(|c| !c.is_empty())?;
    Some((account.to_string(), container.to_string()))
}

/// `CLUSTER-ENDPOINT-serve`, within the 128 characters of an identity's name.
pub fn identity_name(cluster: &str, endpoint: &str) -> String {
    let n = format!("{cluster}-{endpoint}-serve");
    n.chars().take(128).collect()
}

#[derive(Debug, Default, Deserialize)]
struct Identity {
    #[serde(default)]
    properties: IdentityProperties,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityProperties {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    principal_id: String,
}

/// What an identity is created with.
#[derive(Clone, Debug, Serialize)]
pub struct IdentityBody {
    pub location: String,
    pub tags: std::collections::BTreeMap<String, String>,
}

/// A federated credential.
#[derive(Clone, Debug, Serialize)]
pub struct FederatedCredential {
    pub properties: FederatedProperties,
}

#[derive(Clone, Debug, Serialize)]
pub struct FederatedProperties {
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
}

/// What [`ensure`] makes for one endpoint.
pub struct For<'a> {
    pub cluster: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    pub service_account: &'a str,
    pub account: &'a str,
    pub container: &'a str,
}

/// The identity, its federation and its role on the container; returns its client ID and
/// what to record.
pub async fn ensure(ctx: &Context, f: &For<'_>) -> Result<(String, Vec<String>), PlatformError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let cluster: serde_json::Value = ctx
        .arm
        .get(&ctx.cluster_path(f.cluster), super::aks::API_VERSION)
        .await
        .map_err(|e| arm_error(&format!("managed cluster {}", f.cluster), e))?
        .ok_or_else(|| PlatformError::Failed(format!("AKS cluster {:?} not found", f.cluster)))?;
    let issuer = cluster["properties"]["oidcIssuerProfile"]["issuerUrl"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| PlatformError::Failed(format!("AKS cluster {:?} has no OIDC issuer; turn it on (`az aks update --enable-oidc-issuer --enable-workload-identity`) or give the endpoint azure.client_id", f.cluster)))?
        .to_string();
    let account = find_account(ctx, f.account).await?;
    let location = ctx
        .location
        .clone()
        .or_else(|| cluster["location"].as_str().map(String::from))
        .unwrap_or_default();
    let name = identity_name(f.cluster, f.name);
    let path = format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
        ctx.arm.group_path(&ctx.resource_group)
    );
    let id: Identity = ctx
        .arm
        .put(
            &path,
            IDENTITY_API_VERSION,
            &IdentityBody {
                location,
                tags: [("managed-by".to_string(), "modelplane".to_string())].into(),
            },
            deadline,
        )
        .await
        .map_err(|e| arm_error(&format!("managed identity {name}"), e))?;
    let _: serde_json::Value = ctx
        .arm
        .put(
            &format!("{path}/federatedIdentityCredentials/kubernetes"),
            IDENTITY_API_VERSION,
            &FederatedCredential {
                properties: FederatedProperties {
                    issuer,
                    subject: format!(
                        "system:serviceaccount:{}:{}",
                        f.namespace, f.service_account
                    ),
                    audiences: vec![AUDIENCE.into()],
                },
            },
            deadline,
        )
        .await
        .map_err(|e| arm_error(&format!("federated credential of {name}"), e))?;
    let scope = format!("{account}/blobServices/default/containers/{}", f.container);
    let role = format!(
        "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{BLOB_READER}",
        ctx.arm.subscription
    );
    let assignment = format!(
        "{scope}/providers/Microsoft.Authorization/roleAssignments/{}",
        super::acr::assignment_name(&scope, &id.properties.principal_id, BLOB_READER)
    );
    let body = super::acr::RoleAssignment {
        properties: super::acr::RoleAssignmentProperties {
            role_definition_id: role,
            principal_id: id.properties.principal_id.clone(),
            principal_type: "ServicePrincipal".into(),
        },
    };
    let r: Result<serde_json::Value, _> = ctx
        .arm
        .put(&assignment, super::acr::ROLES_API_VERSION, &body, deadline)
        .await;
    match r {
        Ok(_) => {}
        Err(ArmError::Failed { code, .. }) if code == "RoleAssignmentExists" => {}
        Err(e) => {
            return Err(arm_error(
                &format!("Storage Blob Data Reader for {name}"),
                e,
            ))
        }
    }
    Ok((
        id.properties.client_id,
        vec![
            format!("{IDENTITY_ENTRY}{name}"),
            format!("{ROLE_ENTRY}{assignment}"),
        ],
    ))
}

/// The storage account's resource ID, found by name in the subscription.
async fn find_account(ctx: &Context, account: &str) -> Result<String, PlatformError> {
    let list: Option<super::aks::List<serde_json::Value>> = ctx
        .arm
        .get(
            &format!(
                "/subscriptions/{}/providers/Microsoft.Storage/storageAccounts",
                ctx.arm.subscription
            ),
            STORAGE_API_VERSION,
        )
        .await
        .map_err(|e| arm_error("storage accounts", e))?;
    list.into_iter()
        .flat_map(|l| l.value)
        .find(|a| a["name"] == account)
        .and_then(|a| a["id"].as_str().map(String::from))
        .ok_or_else(|| PlatformError::Failed(format!("the storage account {account:?} of the store is not in subscription {}; give the endpoint azure.client_id of an identity that can read it, or set create_identity = false and use kubernetes.env_from_secret", ctx.arm.subscription)))
}

/// The client ID of the identity `name` in the provider's resource group.
pub async fn client_id(ctx: &Context, name: &str) -> Result<String, PlatformError> {
    let path = format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
        ctx.arm.group_path(&ctx.resource_group)
    );
    let id: Option<Identity> = ctx
        .arm
        .get(&path, IDENTITY_API_VERSION)
        .await
        .map_err(|e| arm_error(&format!("managed identity {name}"), e))?;
    id.map(|i| i.properties.client_id)
        .ok_or_else(|| PlatformError::Failed(format!("managed identity {name} not found")))
}

/// Deletes what `objects` records of identities and role assignments (an identity's
/// federated credential goes with it); what is gone already is not an error.
pub async fn delete(ctx: &Context, objects: &[String]) -> Result<(), PlatformError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    for o in objects {
        if let Some(id) = o.strip_prefix(ROLE_ENTRY) {
            ctx.arm
                .delete(id, super::acr::ROLES_API_VERSION, deadline)
                .await
                .map_err(|e| arm_error("deleting a role assignment", e))?;
        }
    }
    for o in objects {
        if let Some(name) = o.strip_prefix(IDENTITY_ENTRY) {
            let path = format!(
                "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
                ctx.arm.group_path(&ctx.resource_group)
            );
            ctx.arm
                .delete(&path, IDENTITY_API_VERSION, deadline)
                .await
                .map_err(|e| arm_error(&format!("deleting managed identity {name}"), e))?;
        }
    }
    Ok(())
}
