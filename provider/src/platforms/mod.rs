//! Platforms: where clusters and endpoints run. A cluster ID is `PLATFORM/NAME`
//! ([`crate::ids::ClusterId`]), and [`resolve`] turns it and the provider's configuration into
//! the [`Platform`] that serves it; resources only ever talk to the trait.
//!
//! | platform | module | what a cluster is | what an endpoint is |
//! |---|---|---|---|
//! | `local` | [`local`] | this machine | a supervised server process |
//! | `container` | [`container`] | this host's podman or docker | a container of the bundled image |
//! | `kubernetes` | [`kubernetes`] | an existing cluster, with GPU partitions | a Deployment, Service, … |
//! | `aws` | [`aws`] | an EKS cluster with managed GPU node groups, created or adopted | as on `kubernetes` |
//! | `azure` | [`azure`] | an AKS cluster with GPU agent pools, created or adopted | as on `kubernetes` |
//!
//! A new platform is one module here, one arm in [`resolve`], and one fixture in the
//! provider's scenario suite (`provider/tests/scenarios.rs`). What every platform shares —
//! deploy, wait until ready, benchmark, roll back on a miss — is written once, in
//! [`rollout`]. A cloud whose clusters it makes (`aws`, `azure`) implements
//! [`managed::ManagedCluster`] — its cluster, pools and identities — and is a `Platform`
//! through it, with endpoints and monitors as on `kubernetes`.

use std::collections::BTreeMap;

use modelplane_serve::config::ServeConfig;
use tfplugin::{Attr, AttributePath, Config, Ctx, Diagnostics};

use crate::ids::{ClusterId, PlatformKind};
use crate::ProviderConfig;

pub mod aws;
pub mod azure;
pub mod container;
pub mod kubernetes;
pub mod local;
pub mod managed;
pub mod rollout;

/// What went wrong on a platform, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The platform is not in this version of the provider.
    #[error("{0}")]
    Unavailable(String),
    /// The platform's control plane cannot be reached (no credentials, no network).
    #[error("{0}")]
    Unreachable(String),
    /// A value of the configuration the platform cannot use; `attribute` names it.
    #[error("{message}")]
    Invalid {
        attribute: AttributePath,
        message: String,
    },
    /// A refusal with its own summary, at an attribute where one is to blame.
    #[error("{message}")]
    Refused {
        attribute: Option<AttributePath>,
        summary: String,
        message: String,
    },
    /// What the state records no longer exists (deleted outside Terraform): it leaves the
    /// state, and the next plan creates it again.
    #[error("{0}")]
    Gone(String),
    /// Anything else the platform refused or failed at.
    #[error("{0}")]
    Failed(String),
}

impl PlatformError {
    /// The one conversion into diagnostics: an error under `summary`, at the attribute the
    /// error names.
    pub fn report(&self, summary: &str, diags: &mut Diagnostics) {
        match self {
            PlatformError::Invalid { attribute, message } => {
                diags.error_at(attribute.clone(), summary, message.clone())
            }
            PlatformError::Refused {
                attribute: Some(at),
                summary,
                message,
            } => diags.error_at(at.clone(), summary.clone(), message.clone()),
            PlatformError::Refused {
                attribute: None,
                summary,
                message,
            } => diags.error(summary.clone(), message.clone()),
            PlatformError::Unreachable(e) => diags.error("Cannot reach the cluster", e.clone()),
            other => diags.error(summary, other.to_string()),
        }
    }
}

impl From<String> for PlatformError {
    fn from(s: String) -> Self {
        PlatformError::Failed(s)
    }
}

impl From<std::io::Error> for PlatformError {
    fn from(e: std::io::Error) -> Self {
        PlatformError::Failed(e.to_string())
    }
}

/// The platforms this version can manage.
pub const AVAILABLE: &[PlatformKind] = &[
    PlatformKind::Local,
    PlatformKind::Container,
    PlatformKind::Kubernetes,
    PlatformKind::Aws,
    PlatformKind::Azure,
];

/// The platform of a cluster, connected through the provider's configuration. Nothing is
/// contacted until a method needs it, so resolving is cheap and works at validation, before
/// the provider is configured. This is the only place that matches on the platform kind.
pub fn resolve(
    cluster: &ClusterId,
    config: &ProviderConfig,
) -> Result<Box<dyn Platform>, PlatformError> {
    Ok(match cluster.platform {
        PlatformKind::Local => Box::new(local::host(cluster.clone(), config)),
        PlatformKind::Container => Box::new(container::host(cluster.clone(), config)),
        PlatformKind::Kubernetes => Box::new(kubernetes::Kubernetes::new(cluster.clone(), config)),
        PlatformKind::Aws => Box::new(aws::Aws::new(cluster.clone(), config)),
        PlatformKind::Azure => Box::new(azure::Azure::new(cluster.clone(), config)),
    })
}

/// [`resolve`] from the text of a cluster ID or a `platform` attribute.
pub fn resolve_str(
    cluster: &str,
    config: &ProviderConfig,
) -> Result<Box<dyn Platform>, PlatformError> {
    let id: ClusterId = cluster
        .parse()
        .map_err(|e: crate::ids::IdError| PlatformError::Unavailable(e.to_string()))?;
    resolve(&id, config)
}

// ---------------------------------------------------------------------------------------------
// Clusters

/// What a `modelplane_gpu_cluster` asks of its platform.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub engine: Option<String>,
    pub partitions: Vec<kubernetes::partitions::Partition>,
    /// The declared node pools, in order (local checks their GPUs; cloud platforms create them).
    pub pools: Vec<NodePoolSpec>,
    /// The `aws` block.
    pub aws: Option<aws::ClusterSettings>,
    /// The `azure` block.
    pub azure: Option<azure::ClusterSettings>,
    /// How long create, update and delete may wait for the platform (the `timeouts` block).
    pub timeouts: Timeouts,
}

/// How long a cluster's create, update and delete may wait for the platform.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timeouts {
    pub create: std::time::Duration,
    pub update: std::time::Duration,
    pub delete: std::time::Duration,
}

impl Default for Timeouts {
    /// EKS takes 10 to 15 minutes for a cluster and as long again for its node groups.
    fn default() -> Self {
        Timeouts {
            create: std::time::Duration::from_secs(60 * 60),
            update: std::time::Duration::from_secs(60 * 60),
            delete: std::time::Duration::from_secs(30 * 60),
        }
    }
}

/// A taint of a node pool's nodes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Taint {
    pub key: String,
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// A node pool as declared: a managed node group on `aws`.
#[derive(Clone, Debug, PartialEq)]
pub struct NodePoolSpec {
    pub name: String,
    pub purpose: String,
    /// Instance types, the first being the pool's type for its AMI and GPUs.
    pub instance_types: Vec<String>,
    pub gpu_count: Option<i64>,
    pub gpu_type: Option<String>,
    pub min_size: Option<i64>,
    pub max_size: Option<i64>,
    pub desired_size: Option<i64>,
    pub spot: bool,
    pub labels: std::collections::BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// Time-slicing: how many pods share one GPU.
    pub gpu_sharing: Option<i64>,
    /// On `azure`: the MIG profile of each GPU (`MIG1g` … `MIG7g`).
    pub gpu_instance: Option<String>,
    /// On `azure`: who installs the NVIDIA driver, `Install` (AKS) or `None` (the GPU
    /// operator).
    pub gpu_driver: Option<String>,
    /// On `azure`: the most a spot node may cost an hour (-1: up to the on-demand price).
    pub spot_max_price: Option<f64>,
}

/// A node group (or pool) as the cloud reports it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeGroupSeen {
    pub name: String,
    pub instance_types: Vec<String>,
    pub capacity_type: String,
    pub ami_type: String,
    pub min_size: i64,
    pub max_size: i64,
    pub desired_size: i64,
    pub status: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub taints: Vec<Taint>,
}

/// What a cloud platform reports of a cluster beyond its nodes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CloudFacts {
    /// The cloud's ID of the cluster (the EKS ARN).
    pub resource_id: String,
    pub oidc_issuer: Option<String>,
    /// A kubeconfig that holds no secret (an exec plugin fetches the token).
    pub kubeconfig: String,
    pub node_groups: Vec<NodeGroupSeen>,
    /// The NVIDIA device plugin's version, where the provider installed it.
    pub device_plugin_version: Option<String>,
}

/// What a platform reports of a cluster.
#[derive(Clone, Debug, Default)]
pub struct ClusterFacts {
    pub hostname: String,
    pub cpus: i64,
    pub memory_bytes: i64,
    pub gpus: Vec<local::Gpu>,
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    pub nodes: Option<Vec<kubernetes::partitions::NodeInventory>>,
    pub objects: Option<Vec<String>>,
    pub cloud: Option<CloudFacts>,
}

/// A recorded partition as refresh finds it.
#[derive(Clone, Debug)]
pub enum PartitionSeen {
    /// Its namespace is gone: the plan creates it again.
    Gone,
    Seen(kubernetes::partitions::Partition),
    /// It could not be read (a warning says why); the state keeps it.
    Unknown,
}

/// The computed attributes of a cluster that a platform plans.
pub struct ClusterPlan<'a> {
    pub engine: &'a mut Attr<String>,
    pub engine_version: &'a mut Attr<String>,
    pub nodes: &'a mut Attr<Vec<kubernetes::partitions::NodeInventory>>,
    pub objects: &'a mut Attr<Vec<String>>,
    pub resource_id: &'a mut Attr<String>,
    pub oidc_issuer: &'a mut Attr<String>,
    pub kubeconfig: &'a mut Attr<String>,
    pub node_groups: &'a mut Attr<Vec<NodeGroupSeen>>,
    pub device_plugin_version: &'a mut Attr<String>,
    /// Whether the declared partitions differ from the prior state's (always on create).
    pub partitions_changed: bool,
    /// Whether the declared node pools differ from the prior state's (always on create).
    pub pools_changed: bool,
    /// Whether this is a create.
    pub creating: bool,
}

// ---------------------------------------------------------------------------------------------
// Endpoints

/// What an endpoint asks of its platform, in no platform's terms.
#[derive(Clone, Debug)]
pub struct EndpointSpec {
    pub name: String,
    /// What the server serves: models, split, shadow, batching, limits, statistics windows.
    /// The platform sets where it listens, where its token and cache are.
    pub serve: ServeConfig,
    pub token: String,
    /// REST and gRPC ports: `None` lets the platform choose.
    pub port: Option<u16>,
    pub grpc_port: Option<u16>,
    pub image: Option<String>,
    pub container: Option<container::Settings>,
    pub kubernetes: Option<kubernetes::workload::Settings>,
    /// The `aws` block: the server's IRSA role.
    pub aws: Option<aws::irsa::EndpointSettings>,
    /// The `azure` block: the server's workload identity.
    pub azure: Option<azure::identity::EndpointSettings>,
    /// What the resource keeps beside the deployment for import (written with
    /// [`Platform::record`], read back by [`Platform::import_endpoint`]).
    pub record: serde_json::Value,
    /// The bearer tokens of remote variants, by variant name: the platform keeps each where
    /// the server reads it (as it keeps the endpoint's own token) and points the variant's
    /// `remote.token_file` at it. Never written to configuration or state.
    pub remote_tokens: BTreeMap<String, String>,
}

/// The file, in the folder of an endpoint's token, that holds a remote variant's token.
pub fn remote_token_file(variant: &str) -> String {
    let safe: String = variant
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("remote-{safe}.token")
}

/// Points every remote variant of `cfg` that has a token in `tokens` at its token file in
/// `dir` (a folder path as the server sees it).
pub fn point_remote_tokens(cfg: &mut ServeConfig, tokens: &BTreeMap<String, String>, dir: &str) {
    for e in &mut cfg.endpoints {
        for v in &mut e.variants {
            if let Some(r) = &mut v.remote {
                r.token_env = None;
                r.token_file = tokens.contains_key(&v.name).then(|| {
                    format!(
                        "{}/{}",
                        dir.trim_end_matches('/'),
                        remote_token_file(&v.name)
                    )
                });
            }
        }
    }
}

/// Where a deployed endpoint answers, and what it is made of.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Deployment {
    pub port: u16,
    pub grpc_port: u16,
    pub url: String,
    pub grpc_address: String,
    /// The digest-pinned image it runs, where it runs one.
    pub running_image: Option<String>,
    /// Every object written for it, where the platform writes objects.
    pub objects: Option<Vec<String>>,
    /// The state folder and token file, where they are on this machine.
    pub state_path: Option<String>,
    pub token_file: Option<String>,
}

/// What the previous apply left, for an update.
#[derive(Clone, Debug)]
pub struct Previous {
    /// The previous configuration, with the token it served with, when it can still be
    /// rendered.
    pub spec: Option<EndpointSpec>,
    pub deployment: Deployment,
    /// Refresh found it not serving (`stopped`, `unreachable`, `missing`, `drifted`): it is
    /// replaced, not reloaded.
    pub serving: bool,
}

/// An endpoint as refresh finds it.
#[derive(Clone, Debug, PartialEq)]
pub enum Observed {
    /// Nothing of it is left, nothing recorded: it leaves the state.
    Gone,
    /// Its server or Deployment is gone, the rest is there: the plan starts it again.
    Missing,
    /// Its server is dead: the plan starts it again.
    Stopped,
    /// Its server runs but does not answer (why); the plan replaces it.
    Unreachable(String),
    Running(Box<Running>),
}

/// A running endpoint, as observed.
#[derive(Clone, Debug, PartialEq)]
pub struct Running {
    /// The configuration it serves, with the store named as this machine names it.
    pub serves: Option<ServeConfig>,
    pub running_image: Option<String>,
    /// Some object written for it is gone or changed.
    pub drifted: bool,
    /// Its token, where the platform keeps it readable (to notice a changed token).
    pub token: Option<String>,
}

/// An endpoint found by import.
#[derive(Clone, Debug)]
pub struct Imported {
    pub serves: ServeConfig,
    pub deployment: Deployment,
    pub image: Option<String>,
    pub kubernetes: Option<kubernetes::workload::Settings>,
    pub token: Option<String>,
    /// What the resource recorded with [`Platform::record`], where the platform keeps it.
    pub record: Option<serde_json::Value>,
}

/// The computed attributes of an endpoint that a platform plans, and what they depend on.
#[derive(Clone, Debug)]
pub struct EndpointPlan {
    pub name: String,
    pub port: Attr<i64>,
    pub grpc_port: Attr<i64>,
    pub url: Attr<String>,
    pub grpc_address: Attr<String>,
    pub state_path: Attr<String>,
    pub token_file: Attr<String>,
    pub running_image: Attr<String>,
    pub objects: Attr<Vec<String>>,
    pub image: Option<String>,
    pub container: Option<container::Settings>,
    pub kubernetes: Option<kubernetes::workload::Settings>,
    /// Whether the endpoint serves (status `running`).
    pub serving: bool,
    /// What it serves: the split, the shadow and the token's fingerprint, as one value that
    /// changes when any of them does.
    pub served: String,
}

// ---------------------------------------------------------------------------------------------
// Monitors

/// Where a monitor of an endpoint on this platform runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorHost {
    /// On this machine: a managed Prometheus and Alertmanager, or files for an existing one.
    ThisMachine,
    /// In the cluster, as objects next to the endpoint ([`Platform::apply_monitor`]).
    Cluster,
    /// Monitors are not supported here yet.
    Unsupported,
}

/// What a monitor writes into a cluster.
#[derive(Clone, Debug)]
pub struct MonitorObjects {
    pub endpoint: String,
    /// Prometheus rule groups (`{"groups": [...]}`).
    pub rules: serde_json::Value,
    pub alertmanager: Option<String>,
    pub scrape_interval: String,
}

/// A platform: clusters, endpoints and monitors on it. Every method has the resource's
/// semantics: `converge_*` creates or updates to match, `observe_*` is refresh, `remove_*`
/// is destroy, `import_*` is import.
#[tfplugin::async_trait]
pub trait Platform: Send + Sync {
    fn cluster(&self) -> &ClusterId;

    // --- clusters

    /// Plan-time checks of a cluster's platform-specific attributes and blocks.
    fn validate_cluster(&self, config: &Config, diags: &mut Diagnostics);
    /// Plans the computed attributes of a cluster.
    fn plan_cluster(&self, plan: ClusterPlan<'_>);
    /// Creates or updates the cluster; `before` lists the objects the state records. On an
    /// error, what was written comes back with it, so the state records it.
    async fn converge_cluster(
        &self,
        spec: &ClusterSpec,
        before: &[String],
        diags: &mut Diagnostics,
    ) -> Result<ClusterFacts, (PlatformError, Option<ClusterFacts>)>;
    /// Refresh: the facts, and each recorded partition as found. `Err` means unreachable:
    /// the state stays as it was.
    async fn observe_cluster(
        &self,
        spec: &ClusterSpec,
        diags: &mut Diagnostics,
    ) -> Result<(Option<ClusterFacts>, Vec<PartitionSeen>), PlatformError>;
    /// Destroy: removes what `objects` records, waiting at most `timeout` (the resource's
    /// `timeouts.delete`) where it waits.
    async fn remove_cluster(
        &self,
        _objects: Option<&Vec<String>>,
        _timeout: std::time::Duration,
    ) -> Result<(), PlatformError> {
        Ok(())
    }
    /// The partitions an existing cluster has, and the objects that make them (none, where
    /// the platform has no partitions).
    async fn import_cluster(
        &self,
    ) -> Result<(Vec<kubernetes::partitions::Partition>, Option<Vec<String>>), PlatformError> {
        Ok((Vec::new(), None))
    }

    // --- endpoints

    /// Plan-time checks of an endpoint's platform-specific attributes and blocks (`image`,
    /// `container`, `kubernetes`).
    fn validate_endpoint(&self, config: &Config, diags: &mut Diagnostics);
    /// Plans the computed attributes of an endpoint. `config` is the endpoint's
    /// configuration (to tell unset ports from computed ones).
    fn plan_endpoint(
        &self,
        prior: Option<&EndpointPlan>,
        plan: &mut EndpointPlan,
        config: &Config,
        diags: &mut Diagnostics,
    );
    /// Whether an endpoint of this name exists on the platform that the state does not
    /// record, with what to do about it; called before a create.
    async fn claimed(&self, _name: &str) -> Option<String> {
        None
    }
    /// The token the deployed endpoint uses, to keep it across an update.
    async fn endpoint_token(&self, name: &str, recorded: &Deployment) -> Option<String>;
    /// Deploys `spec` (over `previous`, on an update) and waits until it is ready. What comes
    /// back can always put back what was there before; see [`rollout`].
    async fn deploy(
        &self,
        spec: &EndpointSpec,
        previous: Option<&Previous>,
        ctx: &mut Ctx,
    ) -> rollout::Rollout;
    /// Keeps the resource's record beside the deployment (for import); `ready` marks an
    /// endpoint whose create finished.
    async fn record(&self, _name: &str, _record: &serde_json::Value) {}
    async fn observe_endpoint(
        &self,
        name: &str,
        recorded: &Deployment,
    ) -> Result<Observed, PlatformError>;
    async fn remove_endpoint(&self, name: &str, recorded: &Deployment)
        -> Result<(), PlatformError>;
    async fn import_endpoint(&self, name: &str) -> Result<Imported, PlatformError>;

    // --- monitors

    fn monitor_host(&self) -> MonitorHost {
        MonitorHost::Unsupported
    }
    /// Plan-time checks of a monitor's platform-specific settings.
    fn validate_monitor(&self, _config: &Config, _diags: &mut Diagnostics) {}
    /// Writes a monitor's objects next to its endpoint ([`MonitorHost::Cluster`]); returns
    /// what is written, also on an error.
    async fn apply_monitor(
        &self,
        _spec: &MonitorObjects,
        _before: &[String],
        _diags: &mut Diagnostics,
    ) -> Result<Vec<String>, (PlatformError, Vec<String>)> {
        Err((
            PlatformError::Unavailable("monitors do not run in this platform's clusters".into()),
            Vec::new(),
        ))
    }
    /// Whether every recorded object of a monitor is still there.
    async fn monitor_intact(&self, _objects: &[String]) -> Result<bool, PlatformError> {
        Ok(true)
    }
    async fn remove_objects(&self, _objects: Option<&Vec<String>>) -> Result<(), PlatformError> {
        Ok(())
    }
}

/// Refuses a platform-specific block on a platform (`here`) it does not belong to.
pub(crate) fn not_used_here(
    config: &Config,
    block: &str,
    here: &str,
    why: &str,
    diags: &mut Diagnostics,
) {
    if !config.elements(block).is_empty() {
        diags.error_at(
            AttributePath::attr(block),
            format!("Not used on {here}"),
            why.to_string(),
        );
    }
}

/// Refuses the cluster blocks of the clouds other than `here` (`aws`, `azure`).
pub(crate) fn cloud_blocks_not_used(config: &Config, here: &str, diags: &mut Diagnostics) {
    for (block, what) in [("aws", "an EKS cluster"), ("azure", "an AKS cluster")] {
        if block != here {
            not_used_here(
                config,
                block,
                here,
                &format!(
                    "the {block} block describes {what}; remove it, or set platform = \"{block}\"."
                ),
                diags,
            );
        }
    }
}

/// The facts of a cluster that is this machine, from its inventory.
pub(crate) fn this_machine(inv: local::Inventory) -> ClusterFacts {
    ClusterFacts {
        hostname: inv.hostname,
        cpus: inv.cpus,
        memory_bytes: inv.memory_bytes,
        gpus: inv.gpus,
        ..Default::default()
    }
}
