//! Platforms whose clusters a cloud makes (`aws`, `azure`): the cloud half — the cluster, its
//! node pools, its identities — is the platform's own ([`ManagedCluster`]); everything in the
//! cluster (partitions, endpoints, monitors) is the [`Kubernetes`] platform's, reached through
//! the cloud's connection. Every `ManagedCluster` is a [`Platform`] through the one
//! implementation here, so a new cloud writes only what differs.

pub mod device_plugin;
pub mod pools;

use std::time::Duration;

use tfplugin::{Attr, Config, Ctx, Diagnostics};

use super::kubernetes::{self, Kubernetes};
use super::rollout::Rollout;
use super::{
    ClusterFacts, ClusterPlan, ClusterSpec, Deployment, EndpointPlan, EndpointSpec, Imported,
    MonitorHost, MonitorObjects, Observed, PartitionSeen, Platform, PlatformError, Previous,
};
use crate::ids::ClusterId;

/// Annotates the server's ServiceAccount with `key = value` (the cloud identity it reads its
/// store with).
pub fn annotate(spec: &mut EndpointSpec, key: &str, value: &str) {
    spec.kubernetes
        .get_or_insert_with(Default::default)
        .service_account_annotations
        .get_or_insert_with(Default::default)
        .insert(key.to_string(), value.to_string());
}

/// Whether the endpoint's ServiceAccount annotations set `key` already (the user's own
/// identity wins).
pub fn annotated(spec: &EndpointSpec, key: &str) -> bool {
    spec.kubernetes
        .as_ref()
        .and_then(|k| k.service_account_annotations.as_ref())
        .is_some_and(|a| a.contains_key(key))
}

/// The cloud half of a platform whose clusters a cloud makes; see the module.
#[tfplugin::async_trait]
pub trait ManagedCluster: Send + Sync {
    fn id(&self) -> &ClusterId;
    /// The cluster's Kubernetes side.
    fn kube(&self) -> &Kubernetes;

    /// Plan-time checks of the cluster's cloud blocks and node pools.
    fn validate(&self, config: &Config, diags: &mut Diagnostics);
    /// Plans the computed attributes: what the cloud assigns is unknown on create, the pools
    /// and nodes when the pools change, the objects when anything written changes.
    fn plan(&self, plan: ClusterPlan<'_>) {
        *plan.engine = Attr::Null;
        *plan.engine_version = Attr::Null;
        if plan.creating {
            *plan.resource_id = Attr::Unknown;
            *plan.oidc_issuer = Attr::Unknown;
            *plan.kubeconfig = Attr::Unknown;
            *plan.device_plugin_version = Attr::Unknown;
        }
        if plan.creating || plan.pools_changed {
            *plan.node_groups = Attr::Unknown;
            *plan.nodes = Attr::Unknown;
            *plan.objects = Attr::Unknown;
        }
        if plan.partitions_changed {
            *plan.objects = Attr::Unknown;
        }
    }
    async fn converge(
        &self,
        spec: &ClusterSpec,
        before: &[String],
        diags: &mut Diagnostics,
    ) -> Result<ClusterFacts, (PlatformError, Option<ClusterFacts>)>;
    async fn observe(
        &self,
        spec: &ClusterSpec,
        diags: &mut Diagnostics,
    ) -> Result<(Option<ClusterFacts>, Vec<PartitionSeen>), PlatformError>;
    async fn remove(&self, objects: &[String], timeout: Duration) -> Result<(), PlatformError>;
    async fn import(
        &self,
    ) -> Result<(Vec<kubernetes::partitions::Partition>, Option<Vec<String>>), PlatformError>;

    /// Plan-time checks of an endpoint's cloud block, beyond the Kubernetes ones.
    fn validate_endpoint_cloud(&self, config: &Config, diags: &mut Diagnostics);
    /// The Kubernetes deploy, with what the cloud adds (the server's identity).
    async fn deploy_endpoint(
        &self,
        spec: &EndpointSpec,
        previous: Option<&Previous>,
        ctx: &mut Ctx,
    ) -> Rollout {
        self.kube().deploy(spec, previous, ctx).await
    }
    /// Removes what the cloud made for an endpoint, after its Kubernetes objects are gone.
    async fn endpoint_removed(&self, _recorded: &Deployment) -> Result<(), PlatformError> {
        Ok(())
    }
}

#[tfplugin::async_trait]
impl<T: ManagedCluster> Platform for T {
    fn cluster(&self) -> &ClusterId {
        self.id()
    }

    fn validate_cluster(&self, config: &Config, diags: &mut Diagnostics) {
        self.validate(config, diags)
    }

    fn plan_cluster(&self, plan: ClusterPlan<'_>) {
        self.plan(plan)
    }

    async fn converge_cluster(
        &self,
        spec: &ClusterSpec,
        before: &[String],
        diags: &mut Diagnostics,
    ) -> Result<ClusterFacts, (PlatformError, Option<ClusterFacts>)> {
        self.converge(spec, before, diags).await
    }

    async fn observe_cluster(
        &self,
        spec: &ClusterSpec,
        diags: &mut Diagnostics,
    ) -> Result<(Option<ClusterFacts>, Vec<PartitionSeen>), PlatformError> {
        self.observe(spec, diags).await
    }

    async fn remove_cluster(
        &self,
        objects: Option<&Vec<String>>,
        timeout: Duration,
    ) -> Result<(), PlatformError> {
        self.remove(objects.map_or(&[][..], |v| v), timeout).await
    }

    async fn import_cluster(
        &self,
    ) -> Result<(Vec<kubernetes::partitions::Partition>, Option<Vec<String>>), PlatformError> {
        self.import().await
    }

    fn validate_endpoint(&self, config: &Config, diags: &mut Diagnostics) {
        kubernetes::endpoint::validate(config, diags);
        self.validate_endpoint_cloud(config, diags);
    }

    fn plan_endpoint(
        &self,
        prior: Option<&EndpointPlan>,
        plan: &mut EndpointPlan,
        config: &Config,
        diags: &mut Diagnostics,
    ) {
        self.kube().plan_endpoint(prior, plan, config, diags)
    }

    async fn endpoint_token(&self, name: &str, recorded: &Deployment) -> Option<String> {
        self.kube().endpoint_token(name, recorded).await
    }

    async fn deploy(
        &self,
        spec: &EndpointSpec,
        previous: Option<&Previous>,
        ctx: &mut Ctx,
    ) -> Rollout {
        self.deploy_endpoint(spec, previous, ctx).await
    }

    async fn observe_endpoint(
        &self,
        name: &str,
        recorded: &Deployment,
    ) -> Result<Observed, PlatformError> {
        self.kube().observe_endpoint(name, recorded).await
    }

    async fn remove_endpoint(
        &self,
        name: &str,
        recorded: &Deployment,
    ) -> Result<(), PlatformError> {
        self.kube().remove_endpoint(name, recorded).await?;
        self.endpoint_removed(recorded).await
    }

    async fn import_endpoint(&self, name: &str) -> Result<Imported, PlatformError> {
        self.kube().import_endpoint(name).await
    }

    fn monitor_host(&self) -> MonitorHost {
        MonitorHost::Cluster
    }

    fn validate_monitor(&self, config: &Config, diags: &mut Diagnostics) {
        self.kube().validate_monitor(config, diags)
    }

    async fn apply_monitor(
        &self,
        spec: &MonitorObjects,
        before: &[String],
        diags: &mut Diagnostics,
    ) -> Result<Vec<String>, (PlatformError, Vec<String>)> {
        self.kube().apply_monitor(spec, before, diags).await
    }

    async fn monitor_intact(&self, recorded: &[String]) -> Result<bool, PlatformError> {
        self.kube().monitor_intact(recorded).await
    }

    async fn remove_objects(&self, recorded: Option<&Vec<String>>) -> Result<(), PlatformError> {
        self.kube().remove_objects(recorded).await
    }
}

/// What a cloud hands the Kubernetes side of a create or update: its GPU pools (with how
/// many GPU nodes each wants and what to check when they do not come), their time-slicing
/// factors, the facts it found, and how long it may wait.
pub struct KubeSide {
    pub gpu_pools: Vec<pools::GpuPool>,
    pub sharing: Vec<i64>,
    pub hostname: String,
    pub cloud: super::CloudFacts,
    pub deadline: std::time::Instant,
    pub poll: Duration,
}

/// The Kubernetes side of a create or update: the device plugin when there are GPU pools, the
/// partitions, then the wait until the GPU nodes advertise their GPUs and the node inventory.
/// What is written is recorded in `rec` (also on an error).
pub async fn converge_kube(
    kube: &Kubernetes,
    spec: &ClusterSpec,
    side: KubeSide,
    rec: &mut pools::Record,
    diags: &mut Diagnostics,
) -> Result<ClusterFacts, (PlatformError, Option<ClusterFacts>)> {
    let gpu = !side.gpu_pools.is_empty();
    let extra = if gpu {
        device_plugin::render(&side.sharing)
    } else {
        Vec::new()
    };
    let needs_kube = gpu || !spec.partitions.is_empty() || !rec.kube.is_empty();
    let mut facts = if needs_kube {
        match kube.converge_with(spec, &extra, &rec.kube, diags).await {
            Ok(f) => {
                rec.kube = f.objects.clone().unwrap_or_default();
                f
            }
            Err((e, f)) => {
                if let Some(f) = f {
                    rec.kube = f.objects.unwrap_or_default();
                }
                return Err((
                    e,
                    Some(ClusterFacts {
                        objects: Some(rec.all()),
                        cloud: Some(side.cloud),
                        ..Default::default()
                    }),
                ));
            }
        }
    } else {
        ClusterFacts::default()
    };
    facts.hostname = side.hostname;
    facts.objects = Some(rec.all());
    facts.cloud = Some(side.cloud);
    // Ready only when every GPU pool's nodes advertise their GPUs.
    if gpu {
        if let Err(e) = pools::wait_gpus(kube, &side.gpu_pools, side.deadline, side.poll).await {
            return Err((e, Some(facts)));
        }
        if let Ok((client, _)) = kube.connect().await {
            if let Ok(inv) = kubernetes::partitions::inventory(&client).await {
                facts.cpus = inv.cpus;
                facts.memory_bytes = inv.memory_bytes;
                facts.nodes = Some(inv.nodes);
            }
        }
    }
    Ok(facts)
}

/// The Kubernetes side of a refresh: partitions and nodes where there are any or GPU pools;
/// an unreachable API keeps them as they were (with a warning). The record of what was made
/// stays as it is (`objects` is `None`).
pub async fn observe_kube(
    kube: &Kubernetes,
    spec: &ClusterSpec,
    gpu: bool,
    hostname: String,
    cloud: super::CloudFacts,
    diags: &mut Diagnostics,
) -> (Option<ClusterFacts>, Vec<PartitionSeen>) {
    let (facts, seen) = if spec.partitions.is_empty() && !gpu {
        (None, Vec::new())
    } else {
        match kube.observe(spec, diags).await {
            Ok(found) => found,
            Err(e) => {
                diags.warning(
                    "Cannot reach the cluster's Kubernetes API",
                    format!("{e}. Partitions and nodes are kept as they were."),
                );
                (
                    None,
                    spec.partitions
                        .iter()
                        .map(|_| PartitionSeen::Unknown)
                        .collect(),
                )
            }
        }
    };
    let mut facts = facts.unwrap_or_default();
    facts.hostname = hostname;
    facts.cloud = Some(cloud);
    facts.objects = None;
    (Some(facts), seen)
}
