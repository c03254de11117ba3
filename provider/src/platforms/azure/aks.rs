//! AKS's ARM resources, as far as the provider uses them: the managed cluster and its agent
//! pools (`Microsoft.ContainerService`, api-version [`API_VERSION`]). Only the fields we send or
//! read are here; the tests check every body against Microsoft's own models of this
//! api-version, so a misnamed field fails a test, not an apply.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::platforms::managed::pools;
use crate::platforms::{NodeGroupSeen, NodePoolSpec, Taint};

pub const API_VERSION: &str = "2026-08-01";

/// A managed cluster, as sent and as read.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManagedCluster {
    /// Read-only: the cluster's ARM ID.
    #[serde(default, skip_serializing)]
    pub id: Option<String>,
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
    /// Read-only: the pool's name (in a list).
    #[serde(default, skip_serializing)]
    pub name: String,
    pub properties: PoolProperties,
}

/// ARM's list answer.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct List<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
}

/// `listClusterUserCredential`'s answer: kubeconfigs, base64.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub kubeconfigs: Vec<NamedValue>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct NamedValue {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// A resource group.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ResourceGroup {
    pub location: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// The api-version of resource groups.
pub const RESOURCES_API_VERSION: &str = "2021-04-01";

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
    /// Read-only: the node OS (`Ubuntu`, `AzureLinux`).
    #[serde(rename = "osSKU", default, skip_serializing)]
    pub os_sku: Option<String>,
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

/// `KEY[=VALUE]:EFFECT` back into a taint.
pub fn parse_taint(s: &str) -> Option<Taint> {
    let (kv, effect) = s.rsplit_once(':')?;
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (kv, None),
    };
    Some(Taint {
        key: key.to_string(),
        value,
        effect: effect.to_string(),
    })
}

/// What a VM size's GPUs are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmGpus {
    None,
    Nvidia {
        /// A100 or H100: MIG works.
        mig: bool,
    },
    /// AMD (NVv4, NG): no NVIDIA driver or device plugin.
    Amd,
}

/// The GPUs of an Azure VM size, from its name (`Standard_NC24ads_A100_v4`): the N-series
/// families NC, ND and NV have NVIDIA GPUs, but NVv4 and NG are AMD.
pub fn vm_gpus(size: &str) -> VmGpus {
    let lower = size.to_ascii_lowercase();
    let name = lower.strip_prefix("standard_").unwrap_or(&lower);
    let family: String = name
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let upper = size.to_ascii_uppercase();
    let mig = upper.contains("A100")
        || upper.contains("H100")
        || upper.contains("H200")
        || name.starts_with("nd96asr_v4");
    if family.starts_with("ng") || (family.starts_with("nv") && name.ends_with("_v4")) {
        VmGpus::Amd
    } else if family.starts_with("nc") || family.starts_with("nd") || family.starts_with("nv") {
        VmGpus::Nvidia { mig }
    } else {
        VmGpus::None
    }
}

/// Whether a pool is a GPU pool: its VM size has NVIDIA GPUs.
pub fn is_gpu(p: &NodePoolSpec) -> bool {
    p.instance_types
        .first()
        .is_some_and(|s| matches!(vm_gpus(s), VmGpus::Nvidia { .. }))
}

/// A `node_pool` as a user agent pool: autoscaling between min and max (the node count from
/// [`pools::scaling`] with `current`, the pool's count now on an update), spot with eviction
/// Delete and the declared price cap (default -1, the on-demand price), GPU pools tainted
/// `nvidia.com/gpu=true:NoSchedule` unless taints are given, labels with the pool's name and
/// purpose, the driver AKS installs unless `gpu_driver = "None"`, MIG where asked.
pub fn agent_pool(p: &NodePoolSpec, current: Option<i64>) -> AgentPool {
    let gpu = is_gpu(p);
    let (min, max, count) = pools::scaling(p, current);
    let labels = pools::labels(p, gpu);
    let taints: Vec<String> = pools::taints(p, gpu).iter().map(taint).collect();
    AgentPool {
        name: p.name.clone(),
        properties: PoolProperties {
            vm_size: p.instance_types.first().cloned(),
            count: Some(count),
            os_type: Some("Linux".into()),
            mode: Some("User".into()),
            enable_auto_scaling: Some(true),
            min_count: Some(min),
            max_count: Some(max),
            scale_set_priority: Some(if p.spot { "Spot" } else { "Regular" }.into()),
            scale_set_eviction_policy: p.spot.then(|| "Delete".into()),
            spot_max_price: p.spot.then(|| p.spot_max_price.unwrap_or(-1.0)),
            node_labels: labels,
            node_taints: taints,
            gpu_instance_profile: p.gpu_instance.clone(),
            gpu_profile: gpu.then(|| GpuProfile {
                driver: p.gpu_driver.clone().unwrap_or_else(|| "Install".into()),
            }),
            provisioning_state: None,
            os_sku: None,
        },
    }
}

/// What of a pool cannot change in place (AKS refuses, or azurerm rebuilt the pool for it):
/// VM size, priority, MIG profile, driver. `None` when they match.
pub fn immutable_change(want: &PoolProperties, have: &PoolProperties) -> Option<String> {
    let driver = |p: &PoolProperties| p.gpu_profile.as_ref().map(|g| g.driver.clone());
    let priority = |p: &PoolProperties| {
        p.scale_set_priority
            .clone()
            .unwrap_or_else(|| "Regular".into())
    };
    let mut changed = Vec::new();
    if want.vm_size.as_deref().map(str::to_ascii_lowercase)
        != have.vm_size.as_deref().map(str::to_ascii_lowercase)
    {
        changed.push(format!(
            "VM size {:?} → {:?}",
            have.vm_size.as_deref().unwrap_or(""),
            want.vm_size.as_deref().unwrap_or("")
        ));
    }
    if priority(want) != priority(have) {
        changed.push(format!("priority {} → {}", priority(have), priority(want)));
    }
    if want.gpu_instance_profile != have.gpu_instance_profile {
        changed.push("gpu_instance".into());
    }
    // A pool AKS reports without a GPU profile installs the driver: that is not a change.
    if have.gpu_profile.is_some() && driver(want) != driver(have) {
        changed.push(format!(
            "gpu_driver {:?} → {:?}",
            driver(have).unwrap_or_default(),
            driver(want).unwrap_or_default()
        ));
    }
    (!changed.is_empty()).then(|| changed.join(", "))
}

/// Whether a pool as AKS reports it already is what `want` asks, in what can change in place
/// (sizes, labels, taints, spot price). The taint AKS adds to spot pools ([`SPOT_TAINT`]) is
/// not a difference.
pub fn in_place_matches(want: &PoolProperties, have: &PoolProperties) -> bool {
    let taints = |p: &PoolProperties| {
        let mut t: Vec<String> = p
            .node_taints
            .iter()
            .filter(|t| *t != SPOT_TAINT)
            .cloned()
            .collect();
        t.sort();
        t
    };
    want.count == have.count
        && want.min_count == have.min_count
        && want.max_count == have.max_count
        && want.enable_auto_scaling == have.enable_auto_scaling
        && want.node_labels == have.node_labels
        && taints(want) == taints(have)
        && (want.spot_max_price.is_none() || want.spot_max_price == have.spot_max_price)
}

/// A pool as the state shows it: AKS's terms (`Regular`, `Spot`), without the spot taint AKS
/// adds.
pub fn seen(p: &AgentPool) -> NodeGroupSeen {
    let q = &p.properties;
    NodeGroupSeen {
        name: p.name.clone(),
        instance_types: q.vm_size.iter().cloned().collect(),
        capacity_type: q
            .scale_set_priority
            .clone()
            .unwrap_or_else(|| "Regular".into()),
        ami_type: q.os_sku.clone().unwrap_or_default(),
        min_size: q.min_count.unwrap_or(0),
        max_size: q.max_count.unwrap_or(0),
        desired_size: q.count.unwrap_or(0),
        status: q.provisioning_state.clone().unwrap_or_default(),
        labels: q.node_labels.clone(),
        taints: q
            .node_taints
            .iter()
            .filter(|t| *t != SPOT_TAINT)
            .filter_map(|t| parse_taint(t))
            .collect(),
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
        id: None,
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
