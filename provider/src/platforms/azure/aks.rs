//! AKS's ARM resources, as far as the provider uses them: the managed cluster and its agent
//! pools (`Microsoft.ContainerService`, api-version [`API_VERSION`]). Only the fields we send or
//! read are here; the tests check every body against Microsoft's own models of this
//! api-version, so a misnamed field fails a test, not an apply.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::platforms::{NodePoolSpec, Taint};

pub const API_VERSION: &str = "2026-08-01";

/// A managed cluster, as sent and as read.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManagedCluster {
    pub location: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    pub properties: ClusterProperties,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Identity {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_pool_profiles: Vec<AgentPoolProfile>,
    #[serde(
        rename = "enableRBAC",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_rbac: Option<bool>,
    /// No local admin account: users come through Entra ID, so no secret kubeconfig exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_local_accounts: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aad_profile: Option<AadProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_issuer_profile: Option<OidcIssuerProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_profile: Option<SecurityProfile>,
    /// Read-only.
    #[serde(default, skip_serializing)]
    pub provisioning_state: Option<String>,
    /// Read-only.
    #[serde(default, skip_serializing)]
    pub fqdn: Option<String>,
    /// Read-only.
    #[serde(default, skip_serializing)]
    pub node_resource_group: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AadProfile {
    pub managed: bool,
    #[serde(rename = "enableAzureRBAC")]
    pub enable_azure_rbac: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OidcIssuerProfile {
    pub enabled: bool,
    /// Read-only.
    #[serde(default, skip_serializing)]
    pub issuer_url: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecurityProfile {
    pub workload_identity: Enabled,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Enabled {
    pub enabled: bool,
}

/// An agent pool inside a cluster's create (the system pool): the pool's fields and its name.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentPoolProfile {
    pub name: String,
    #[serde(flatten)]
    pub pool: PoolProperties,
}

/// An agent pool as its own resource (`…/agentPools/NAME`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct AgentPool {
    pub properties: PoolProperties,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PoolProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_type: Option<String>,
    /// `System` or `User`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_auto_scaling: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<i64>,
    /// `Regular` or `Spot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_set_priority: Option<String>,
    /// `Delete` (AKS forces it for spot pools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_set_eviction_policy: Option<String>,
    /// The most a spot node may cost an hour; -1: up to the on-demand price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_max_price: Option<f64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_labels: BTreeMap<String, String>,
    /// `KEY=VALUE:EFFECT`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_taints: Vec<String>,
    /// MIG: `MIG1g`, `MIG2g`, `MIG3g`, `MIG4g`, `MIG7g`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_instance_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_profile: Option<GpuProfile>,
    /// Read-only.
    #[serde(default, skip_serializing)]
    pub provisioning_state: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct GpuProfile {
    /// `Install` (AKS installs the NVIDIA driver) or `None` (the GPU operator does).
    pub driver: String,
}

/// The taint AKS puts on spot pools itself; workloads tolerate it and it is never drift.
pub const SPOT_TAINT: &str = "kubernetes.azure.com/scalesetpriority=spot:NoSchedule";

fn taint(t: &Taint) -> String {
    match &t.value {
        Some(v) => format!("{}={v}:{}", t.key, t.effect),
        None => format!("{}:{}", t.key, t.effect),
    }
}

/// A `node_pool` as a user agent pool: autoscaling between min and max (count starts at
/// `desired_size`, else `min_size`), spot with eviction Delete and the on-demand price as cap,
/// GPU pools tainted `nvidia.com/gpu=true:NoSchedule` unless taints are given, labels with the
/// pool's name and purpose.
pub fn agent_pool(p: &NodePoolSpec) -> AgentPool {
    let min = p.min_size.unwrap_or(1);
    let max = p.max_size.unwrap_or(min.max(1));
    let gpu = p.gpu_count.unwrap_or(0) > 0;
    let mut labels = p.labels.clone();
    labels.insert("modelplane.io/node-pool".into(), p.name.clone());
    labels.insert("modelplane.io/purpose".into(), p.purpose.clone());
    let mut taints: Vec<String> = p.taints.iter().map(taint).collect();
    if gpu {
        labels.insert("nvidia.com/gpu.present".into(), "true".into());
        if taints.is_empty() {
            taints.push("nvidia.com/gpu=true:NoSchedule".into());
        }
    }
    AgentPool {
        properties: PoolProperties {
            vm_size: p.instance_types.first().cloned(),
            count: Some(p.desired_size.unwrap_or(min).clamp(min, max)),
            os_type: Some("Linux".into()),
            mode: Some("User".into()),
            enable_auto_scaling: Some(true),
            min_count: Some(min),
            max_count: Some(max),
            scale_set_priority: Some(if p.spot { "Spot" } else { "Regular" }.into()),
            scale_set_eviction_policy: p.spot.then(|| "Delete".into()),
            spot_max_price: p.spot.then_some(-1.0),
            node_labels: labels,
            node_taints: taints,
            gpu_instance_profile: None,
            gpu_profile: gpu.then(|| GpuProfile {
                driver: "Install".into(),
            }),
            provisioning_state: None,
        },
    }
}

/// A new cluster: a small system pool, a system-assigned identity, Entra ID users with Azure
/// RBAC and no local accounts (so no kubeconfig with a secret exists), the OIDC issuer and
/// workload identity on (for endpoints reading Blob with no keys).
pub fn managed_cluster(
    name: &str,
    location: &str,
    kubernetes_version: Option<&str>,
    system_vm_size: &str,
) -> ManagedCluster {
    ManagedCluster {
        location: location.to_string(),
        tags: [("managed-by".to_string(), "modelplane".to_string())].into(),
        identity: Some(Identity {
            kind: "SystemAssigned".into(),
        }),
        properties: ClusterProperties {
            kubernetes_version: kubernetes_version.map(String::from),
            dns_prefix: Some(name.to_string()),
            agent_pool_profiles: vec![AgentPoolProfile {
                name: "system".into(),
                pool: PoolProperties {
                    vm_size: Some(system_vm_size.to_string()),
                    count: Some(1),
                    os_type: Some("Linux".into()),
                    mode: Some("System".into()),
                    enable_auto_scaling: Some(true),
                    min_count: Some(1),
                    max_count: Some(3),
                    ..Default::default()
                },
            }],
            enable_rbac: Some(true),
            disable_local_accounts: Some(true),
            aad_profile: Some(AadProfile {
                managed: true,
                enable_azure_rbac: true,
            }),
            oidc_issuer_profile: Some(OidcIssuerProfile {
                enabled: true,
                issuer_url: None,
            }),
            security_profile: Some(SecurityProfile {
                workload_identity: Enabled { enabled: true },
            }),
            ..Default::default()
        },
    }
}
