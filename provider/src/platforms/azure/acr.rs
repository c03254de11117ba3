//! Azure Container Registry for `modelplane_serving_image`: the registry (created in the
//! provider's resource group, or taken when it exists), `AcrPull` for the kubelet identity of
//! the AKS clusters that run the image, and the login: ACR's token exchange
//! (`/oauth2/exchange`) turns the ARM token of the credential chain into a registry refresh
//! token, used as the password of the null user, as `az acr login` does. No admin user, no
//! secret in state.

use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::arm::ArmError;
use super::cluster::arm_error;
use super::Context;
use crate::platforms::PlatformError;

/// The api-version of `Microsoft.ContainerRegistry`.
pub const API_VERSION: &str = "2025-11-01";
/// The api-version of role assignments.
pub const ROLES_API_VERSION: &str = "2022-04-01";
/// The built-in role `AcrPull`.
pub const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
/// The user ACR's refresh tokens go with.
pub const TOKEN_USER: &str = "00000000-0000-0000-0000-000000000000";

/// A registry, as sent and as read.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Registry {
    #[serde(default, skip_serializing)]
    pub id: Option<String>,
    pub location: String,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
    pub sku: Sku,
    #[serde(default)]
    pub properties: RegistryProperties,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Sku {
    /// `Basic`, `Standard` or `Premium`.
    pub name: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegistryProperties {
    /// Never: the login is the token exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_user_enabled: Option<bool>,
    /// Read-only: `NAME.azurecr.io`.
    #[serde(default, skip_serializing)]
    pub login_server: Option<String>,
    /// Read-only.
    #[serde(default, skip_serializing)]
    pub provisioning_state: Option<String>,
}

/// A role assignment, as sent.
#[derive(Clone, Debug, Serialize)]
pub struct RoleAssignment {
    pub properties: RoleAssignmentProperties,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentProperties {
    pub role_definition_id: String,
    pub principal_id: String,
    pub principal_type: String,
}

/// What the `acr` block asks.
#[derive(Clone, Debug, PartialEq)]
pub struct RegistrySpec {
    pub name: String,
    pub sku: String,
    /// AKS clusters (by name, in the provider's resource group) whose kubelet pulls.
    pub attach: Vec<String>,
}

/// ACR's rule for registry names.
pub fn valid_name(n: &str) -> bool {
    (5..=50).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric())
}

pub fn path(ctx: &Context, name: &str) -> String {
    format!(
        "{}/providers/Microsoft.ContainerRegistry/registries/{name}",
        ctx.arm.group_path(&ctx.resource_group)
    )
}

/// The registry, created when missing; then `AcrPull` for each attached cluster's kubelet.
pub async fn ensure(ctx: &Context, spec: &RegistrySpec) -> Result<Registry, PlatformError> {
    let p = path(ctx, &spec.name);
    let found: Option<Registry> = ctx
        .arm
        .get(&p, API_VERSION)
        .await
        .map_err(|e| arm_error(&format!("registry {}", spec.name), e))?;
    let reg = match found {
        Some(r) => r,
        None => {
            let location = ctx.location.clone().ok_or_else(|| {
                PlatformError::Unreachable(
                    "no Azure location: set the provider's azure.location (e.g. \"westeurope\")"
                        .into(),
                )
            })?;
            let body = Registry {
                id: None,
                location,
                tags: [("managed-by".to_string(), "modelplane".to_string())].into(),
                sku: Sku {
                    name: spec.sku.clone(),
                },
                properties: RegistryProperties {
                    admin_user_enabled: Some(false),
                    ..Default::default()
                },
            };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
            ctx.arm
                .put(&p, API_VERSION, &body, deadline)
                .await
                .map_err(|e| match e {
                    ArmError::Failed { code, .. } if code == "AlreadyInUse" || code == "RegistryNameNotAvailable" => PlatformError::Failed(format!("the registry name {:?} is taken (ACR names are global); choose another", spec.name)),
                    e => arm_error(&format!("creating registry {}", spec.name), e),
                })?
        }
    };
    let id = reg.id.clone().unwrap_or_else(|| p.clone());
    for cluster in &spec.attach {
        attach(ctx, &id, cluster).await?;
    }
    Ok(reg)
}

/// A role assignment's name: a UUID made from what it assigns, so applying again finds it.
pub fn assignment_name(scope: &str, principal: &str, role: &str) -> String {
    let h = sha2::Sha256::digest(format!("{scope}|{principal}|{role}").as_bytes());
    let x = hex::encode(&h[..16]);
    format!(
        "{}-{}-4{}-8{}-{}",
        &x[0..8],
        &x[8..12],
        &x[13..16],
        &x[17..20],
        &x[20..32]
    )
}

/// `AcrPull` on the registry for the kubelet identity of the AKS cluster `cluster`.
async fn attach(ctx: &Context, registry_id: &str, cluster: &str) -> Result<(), PlatformError> {
    let c: Option<serde_json::Value> = ctx
        .arm
        .get(&ctx.cluster_path(cluster), super::aks::API_VERSION)
        .await
        .map_err(|e| arm_error(&format!("managed cluster {cluster}"), e))?;
    let Some(c) = c else {
        return Err(PlatformError::Failed(format!(
            "acr.attach_clusters names AKS cluster {cluster:?}, which is not in resource group {}",
            ctx.resource_group
        )));
    };
    let Some(principal) =
        c["properties"]["identityProfile"]["kubeletidentity"]["objectId"].as_str()
    else {
        return Err(PlatformError::Failed(format!(
            "AKS cluster {cluster:?} reports no kubelet identity (identityProfile.kubeletidentity); it cannot be given AcrPull"
        )));
    };
    let role = format!(
        "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}",
        ctx.arm.subscription
    );
    let name = assignment_name(registry_id, principal, ACR_PULL);
    let body = RoleAssignment {
        properties: RoleAssignmentProperties {
            role_definition_id: role,
            principal_id: principal.to_string(),
            principal_type: "ServicePrincipal".into(),
        },
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let r: Result<serde_json::Value, _> = ctx
        .arm
        .put(
            &format!("{registry_id}/providers/Microsoft.Authorization/roleAssignments/{name}"),
            ROLES_API_VERSION,
            &body,
            deadline,
        )
        .await;
    match r {
        Ok(_) => Ok(()),
        Err(ArmError::Failed { code, .. }) if code == "RoleAssignmentExists" => Ok(()),
        Err(e) => Err(arm_error(
            &format!("AcrPull for the kubelet of {cluster}"),
            e,
        )),
    }
}

/// The registry's login: the null user and a refresh token from `/oauth2/exchange` for the
/// credential chain's ARM token.
pub async fn login(ctx: &Context, login_server: &str) -> Result<(String, String), PlatformError> {
    let token = ctx
        .credential
        .get_token(&[super::arm::SCOPE], None)
        .await
        .map_err(|e| {
            PlatformError::Unreachable(format!("no Azure token for the registry login: {e}"))
        })?;
    let tenant = ctx.tenant.clone().unwrap_or_default();
    let mut form = vec![
        ("grant_type", "access_token"),
        ("service", login_server),
        ("access_token", token.token.secret()),
    ];
    if !tenant.is_empty() {
        form.push(("tenant", tenant.as_str()));
    }
    let answer = ctx
        .arm
        .post_form(&format!("https://{login_server}/oauth2/exchange"), &form)
        .await
        .map_err(|e| PlatformError::Failed(format!("ACR token exchange at {login_server}: {e}")))?;
    let refresh = answer["refresh_token"].as_str().ok_or_else(|| {
        PlatformError::Failed(format!(
            "ACR token exchange at {login_server}: no refresh_token in the answer"
        ))
    })?;
    Ok((TOKEN_USER.to_string(), refresh.to_string()))
}

/// Deletes the registry and every image in it.
pub async fn delete(ctx: &Context, name: &str) -> Result<(), PlatformError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    ctx.arm
        .delete(&path(ctx, name), API_VERSION, deadline)
        .await
        .map_err(|e| arm_error(&format!("deleting registry {name}"), e))
}

/// The registry at `name`, if it exists.
pub async fn describe(ctx: &Context, name: &str) -> Result<Option<Registry>, PlatformError> {
    ctx.arm
        .get(&path(ctx, name), API_VERSION)
        .await
        .map_err(|e| arm_error(&format!("registry {name}"), e))
}
