//! `modelplane_gpu_cluster`: the compute endpoints run on. On `local` it is this machine:
//! its inventory (CPUs, memory, GPUs through NVML) is computed, and one `node_pool` is
//! accepted for parity with the cloud platforms. On `container` it is this host's container
//! engine (podman or docker), with the same inventory plus the engine and its version. On
//! `kubernetes` it is an existing cluster, adopted: the provider manages its GPU partitions
//! (see [`crate::platforms::kubernetes::partitions`]) and reads its nodes' GPUs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tfplugin::{
    Attr, Attribute, AttributePath, Block, Config, Ctx, Diagnostics, NestedBlock, Nesting,
    PathStep, Schema, Type, Validator,
};

use crate::cost::cluster as cost;
use crate::ids::{ClusterId, PlatformKind};
use crate::platforms::kubernetes::{self as k8s, partitions};
use crate::platforms::{
    self, local::Gpu, ClusterFacts, ClusterPlan, ClusterSpec, PartitionSeen, Platform,
};

pub struct GpuCluster {
    pub config: std::sync::Arc<std::sync::OnceLock<crate::ProviderConfig>>,
}

pub use partitions::PURPOSES;

/// Private-state flag: price the cluster at the next read (the one that follows an import).
const PRICE_ON_READ: &str = "price_on_read";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NodePool {
    pub name: String,
    pub purpose: String,
    pub instance_type: Option<String>,
    pub gpu_count: Option<i64>,
    pub gpu_type: Option<String>,
    pub min_size: Option<i64>,
    pub max_size: Option<i64>,
    pub spot: Option<bool>,
    pub instance_types: Option<Vec<String>>,
    pub desired_size: Option<i64>,
    pub labels: Option<BTreeMap<String, String>>,
    pub taint: Vec<TaintBlock>,
    pub gpu_sharing: Option<GpuSharing>,
    pub gpu_instance: Option<String>,
    pub gpu_driver: Option<String>,
    pub spot_max_price: Option<f64>,
}

/// A node pool's taint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TaintBlock {
    pub key: String,
    pub value: Option<String>,
    pub effect: String,
}

/// Time-slicing of a GPU pool's GPUs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GpuSharing {
    pub replicas: i64,
}

/// The `aws` block.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AwsBlock {
    pub kubernetes_version: Option<String>,
    pub subnet_ids: Option<Vec<String>>,
    pub security_group_ids: Option<Vec<String>>,
    pub adopt: Option<bool>,
    pub cluster_role_arn: Option<String>,
    pub node_role_arn: Option<String>,
}

/// The `azure` block.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AzureBlock {
    pub kubernetes_version: Option<String>,
    pub create_resource_group: Option<bool>,
    pub adopt: Option<bool>,
    pub system_vm_size: Option<String>,
}

/// The `timeouts` block.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TimeoutsBlock {
    pub create: Option<String>,
    pub update: Option<String>,
    pub delete: Option<String>,
}

impl NodePool {
    pub(crate) fn spec(&self) -> platforms::NodePoolSpec {
        platforms::NodePoolSpec {
            name: self.name.clone(),
            purpose: self.purpose.clone(),
            instance_types: match (&self.instance_type, &self.instance_types) {
                (Some(t), _) => vec![t.clone()],
                (None, Some(v)) => v.clone(),
                (None, None) => Vec::new(),
            },
            gpu_count: self.gpu_count,
            gpu_type: self.gpu_type.clone(),
            min_size: self.min_size,
            max_size: self.max_size,
            desired_size: self.desired_size,
            spot: self.spot.unwrap_or(false),
            labels: self.labels.clone().unwrap_or_default(),
            taints: self
                .taint
                .iter()
                .map(|t| platforms::Taint {
                    key: t.key.clone(),
                    value: t.value.clone(),
                    effect: t.effect.clone(),
                })
                .collect(),
            gpu_sharing: self.gpu_sharing.as_ref().map(|g| g.replicas),
            gpu_instance: self.gpu_instance.clone(),
            gpu_driver: self.gpu_driver.clone(),
            spot_max_price: self.spot_max_price,
        }
    }

    fn from_spec(p: platforms::NodePoolSpec) -> Self {
        let (instance_type, instance_types) = match p.instance_types.len() {
            1 => (p.instance_types.into_iter().next(), None),
            _ => (None, Some(p.instance_types)),
        };
        NodePool {
            name: p.name,
            purpose: p.purpose,
            instance_type,
            gpu_count: p.gpu_count,
            gpu_type: p.gpu_type,
            min_size: p.min_size,
            max_size: p.max_size,
            spot: p.spot.then_some(true),
            instance_types,
            desired_size: p.desired_size,
            labels: (!p.labels.is_empty()).then_some(p.labels),
            taint: p
                .taints
                .into_iter()
                .map(|t| TaintBlock {
                    key: t.key,
                    value: t.value,
                    effect: t.effect,
                })
                .collect(),
            gpu_sharing: p.gpu_sharing.map(|replicas| GpuSharing { replicas }),
            gpu_instance: p.gpu_instance,
            gpu_driver: p.gpu_driver,
            spot_max_price: p.spot_max_price,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Model {
    pub id: Attr<String>,
    pub name: String,
    pub platform: String,
    pub node_pool: Vec<NodePool>,
    pub hostname: Attr<String>,
    pub cpus: Attr<i64>,
    pub memory_bytes: Attr<i64>,
    pub gpus: Attr<Vec<Gpu>>,
    pub engine: Attr<String>,
    pub engine_version: Attr<String>,
    pub partition: Vec<PartitionBlock>,
    pub nodes: Attr<Vec<partitions::NodeInventory>>,
    pub objects: Attr<Vec<String>>,
    pub aws: Option<AwsBlock>,
    pub azure: Option<AzureBlock>,
    pub timeouts: Option<TimeoutsBlock>,
    pub resource_id: Attr<String>,
    pub oidc_issuer: Attr<String>,
    pub kubeconfig: Attr<String>,
    pub node_groups: Attr<Vec<platforms::NodeGroupSeen>>,
    pub device_plugin_version: Attr<String>,
    pub budget: Option<crate::cost::Budget>,
    pub estimated_cost: Attr<cost::Estimate>,
}

/// A GPU partition (`kubernetes` only).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PartitionBlock {
    pub purpose: String,
    pub namespace: Attr<String>,
    pub gpus: i64,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub max_gpus_per_pod: Option<i64>,
    pub priority: Attr<i64>,
    pub node_selector: Option<BTreeMap<String, String>>,
    pub spot: Option<bool>,
    pub toleration: Vec<partitions::Toleration>,
}

impl PartitionBlock {
    fn spec(&self, cluster: &str) -> partitions::Partition {
        partitions::Partition {
            purpose: self.purpose.clone(),
            namespace: self
                .namespace
                .known()
                .cloned()
                .unwrap_or_else(|| default_namespace(cluster, &self.purpose)),
            gpus: self.gpus,
            cpu: self.cpu.clone(),
            memory: self.memory.clone(),
            max_gpus_per_pod: self.max_gpus_per_pod,
            priority: self
                .priority
                .known()
                .copied()
                .unwrap_or_else(|| partitions::default_priority(&self.purpose)),
            node_selector: self.node_selector.clone().unwrap_or_default(),
            tolerations: self.toleration.clone(),
            spot: self.spot.unwrap_or(false),
        }
    }
}

/// The namespace of a partition when none is given: `CLUSTER-PURPOSE`.
pub fn default_namespace(cluster: &str, purpose: &str) -> String {
    k8s::dns_label(&format!("{cluster}-{purpose}"))
}

fn partition_block() -> NestedBlock {
    NestedBlock::new(
        "partition",
        Nesting::List,
        Block::new()
            .description("A GPU partition of a `kubernetes` cluster, one per purpose: a namespace with a ResourceQuota on `nvidia.com/gpu` (and CPU, memory), a LimitRange, a PriorityClass, and the node selection and tolerations that its pods get.")
            .attribute(Attribute::new("purpose", Type::String).required().validate(Validator::one_of(PURPOSES).summary("Invalid partition purpose")).description("`dev`, `training` or `inference`; one partition per purpose. Endpoints run in `inference` unless their `kubernetes.partition` says otherwise."))
            .attribute(Attribute::new("namespace", Type::String).optional_computed().requires_replace().description("The namespace. Default: `CLUSTER-PURPOSE`. Created and owned by the provider: destroying the partition deletes the namespace and what runs in it."))
            .attribute(Attribute::new("gpus", Type::Number).required().validate(Validator::at_least(0.0).summary("Invalid GPU quota")).description("ResourceQuota on `requests.nvidia.com/gpu`: the most GPUs the partition's pods may request together."))
            .attribute(Attribute::new("cpu", Type::String).optional().description("ResourceQuota on CPU requests and limits, e.g. `\"64\"`."))
            .attribute(Attribute::new("memory", Type::String).optional().description("ResourceQuota on memory requests and limits, e.g. `\"256Gi\"`."))
            .attribute(Attribute::new("max_gpus_per_pod", Type::Number).optional().validate(Validator::at_least(0.0).summary("Invalid GPU limit")).description("LimitRange: the most GPUs one container may take. Default: `gpus`."))
            .attribute(Attribute::new("priority", Type::Number).optional_computed().validate(Validator::between(0.0, 1_000_000_000.0).summary("Invalid priority")).description("Value of the partition's PriorityClass. Default: inference 100000, training 10000, dev 1000 (dev never preempts)."))
            .attribute(Attribute::new("node_selector", Type::map(Type::String)).optional().description("Node labels the partition's pods are placed on, e.g. `{ \"nvidia.com/gpu.product\" = \"NVIDIA-A100-SXM4-80GB\" }` or a node pool label."))
            .attribute(Attribute::new("spot", Type::Bool).optional().description("Tolerate the taints of spot capacity (AKS `kubernetes.azure.com/scalesetpriority=spot`, EKS `eks.amazonaws.com/capacityType=SPOT`, GKE `cloud.google.com/gke-spot`, and `modelplane.io/spot`)."))
            .block(NestedBlock::new(
                "toleration",
                Nesting::List,
                Block::new()
                    .description("A further taint the partition's pods tolerate (the `nvidia.com/gpu` taint of GPU node pools always is).")
                    .attribute(Attribute::new("key", Type::String).required().description("Taint key."))
                    .attribute(Attribute::new("operator", Type::String).optional().validate(Validator::one_of(&["Exists", "Equal"]).summary("Invalid toleration")).description("`Exists` or `Equal` (default `Equal` with a value, else `Exists`)."))
                    .attribute(Attribute::new("value", Type::String).optional().description("Taint value, with `Equal`."))
                    .attribute(Attribute::new("effect", Type::String).optional().validate(Validator::one_of(&["NoSchedule", "PreferNoSchedule", "NoExecute"]).summary("Invalid toleration")).description("`NoSchedule`, `PreferNoSchedule` or `NoExecute`; unset tolerates all.")),
            )),
    )
}

fn node_type() -> Type {
    Type::list(Type::object([
        ("name", Type::String),
        ("gpus", Type::Number),
        ("product", Type::String),
        ("memory_mib", Type::Number),
        ("ready", Type::Bool),
        ("spot", Type::Bool),
    ]))
}

fn node_pool_block() -> NestedBlock {
    NestedBlock::new(
        "node_pool",
        Nesting::List,
        Block::new()
            .description("A group of nodes. The `local` platform takes at most one (this machine); cloud platforms map it to node groups or pools.")
            .attribute(Attribute::new("name", Type::String).required().description("Pool name, unique in the cluster."))
            .attribute(Attribute::new("purpose", Type::String).required().validate(Validator::one_of(PURPOSES).summary("Invalid node pool purpose")).description("What the pool is for: `dev`, `training` or `inference`."))
            .attribute(Attribute::new("instance_type", Type::String).optional().description("Machine type (EC2 instance type on AWS, VM size on Azure); ignored locally."))
            .attribute(Attribute::new("gpu_count", Type::Number).optional().validate(Validator::at_least(0.0).summary("Invalid GPU count")).description("GPUs per node. Locally, a count above what NVML finds is an error."))
            .attribute(Attribute::new("gpu_type", Type::String).optional().description("GPU model, e.g. `nvidia-a10g`; informational locally."))
            .attribute(Attribute::new("min_size", Type::Number).optional().description("Fewest nodes; ignored locally."))
            .attribute(Attribute::new("max_size", Type::Number).optional().description("Most nodes; ignored locally."))
            .attribute(Attribute::new("spot", Type::Bool).optional().description("Use spot/preemptible capacity; ignored locally. On `aws` the node group's capacity type (`SPOT`); it cannot change in place: rename the pool to move."))
            .attribute(Attribute::new("instance_types", Type::list(Type::String)).optional().description("On `aws`: several instance types of one kind (they must share an AMI), instead of `instance_type`; spot pools are more likely to get capacity with several."))
            .attribute(Attribute::new("desired_size", Type::Number).optional().validate(Validator::at_least(0.0).summary("Invalid node pool size")).description("On `aws`: nodes to run now, between `min_size` and `max_size`. Honoured on create and on every change of it; left unset, it starts at `min_size` and then stays where the cluster autoscaler puts it (clamped into `[min_size, max_size]` when those change)."))
            .attribute(Attribute::new("gpu_instance", Type::String).optional().validate(Validator::one_of(&["MIG1g", "MIG2g", "MIG3g", "MIG4g", "MIG7g"]).summary("Invalid GPU instance profile")).description("On `azure`: MIG, each GPU split into instances of this profile (`MIG1g`, `MIG2g`, `MIG3g`, `MIG4g`, `MIG7g`), on VM sizes with A100 or H100 GPUs. It cannot change in place: rename the pool to move."))
            .attribute(Attribute::new("gpu_driver", Type::String).optional().validate(Validator::one_of(&["Install", "None"]).summary("Invalid GPU driver")).description("On `azure`: `Install` (default: AKS installs the NVIDIA driver) or `None` (the NVIDIA GPU operator does). It cannot change in place."))
            .attribute(Attribute::new("spot_max_price", Type::Number).optional().description("On `azure`, with `spot`: the most a node may cost an hour, in US dollars; `-1` (default) pays up to the on-demand price and is never evicted for price."))
            .attribute(Attribute::new("labels", Type::map(Type::String)).optional().description("On `aws`: Kubernetes labels of the pool's nodes. The provider adds `modelplane.io/node-pool`, `modelplane.io/purpose`, and on GPU pools `nvidia.com/gpu.present=true`."))
            .block(NestedBlock::new(
                "taint",
                Nesting::List,
                Block::new()
                    .description("On `aws`: a taint of the pool's nodes. A GPU pool with no taint gets `nvidia.com/gpu=true:NoSchedule`; partitions and the device plugin tolerate it.")
                    .attribute(Attribute::new("key", Type::String).required().description("Taint key."))
                    .attribute(Attribute::new("value", Type::String).optional().description("Taint value."))
                    .attribute(Attribute::new("effect", Type::String).required().validate(Validator::one_of(&["NoSchedule", "PreferNoSchedule", "NoExecute"]).summary("Invalid taint")).description("`NoSchedule`, `PreferNoSchedule` or `NoExecute`.")),
            ))
            .block(NestedBlock::new(
                "gpu_sharing",
                Nesting::Single,
                Block::new()
                    .description("On `aws`: time-slicing, so several small models share one GPU. The NVIDIA device plugin advertises each GPU as `replicas` units of `nvidia.com/gpu`; there is no memory isolation between them.")
                    .attribute(Attribute::new("replicas", Type::Number).required().validate(Validator::between(2.0, 64.0).summary("Invalid GPU sharing")).description("Pods per GPU, 2 to 64.")),
            )),
    )
}

fn aws_block() -> NestedBlock {
    NestedBlock::new(
        "aws",
        Nesting::Single,
        Block::new()
            .description("The EKS cluster of `platform = \"aws\"`: created with its IAM roles (or given ones), creator access as cluster admin, and an IAM OIDC provider for IRSA; or, with `adopt`, an existing cluster in which only node groups and partitions are created. Credentials and region come from the provider's `aws` block and the AWS default chain.")
            .attribute(Attribute::new("kubernetes_version", Type::String).optional().requires_replace().validate(Validator::regex(r"^1\.[0-9]{2}$", "a Kubernetes minor version such as \"1.33\"").summary("Invalid Kubernetes version")).description("Kubernetes version of a new cluster, e.g. `\"1.33\"`. Default: EKS's default."))
            .attribute(Attribute::new("subnet_ids", Type::list(Type::String)).optional().requires_replace().description("Subnets of the cluster and its node groups (at least two, in different availability zones). The VPC is the network team's: give its subnets. Required unless `adopt`; with `adopt`, node groups use the cluster's subnets when unset."))
            .attribute(Attribute::new("security_group_ids", Type::list(Type::String)).optional().requires_replace().description("Further security groups of the control plane's network interfaces."))
            .attribute(Attribute::new("adopt", Type::Bool).optional().requires_replace().description("Use the existing EKS cluster of this `name`: node groups and partitions are created in it, and destroy removes only those."))
            .attribute(Attribute::new("cluster_role_arn", Type::String).optional().requires_replace().description("The control plane's IAM role, instead of creating `NAME-eks-cluster` with `AmazonEKSClusterPolicy`."))
            .attribute(Attribute::new("node_role_arn", Type::String).optional().description("The nodes' IAM role, instead of creating `NAME-eks-node` with `AmazonEKSWorkerNodePolicy`, `AmazonEKS_CNI_Policy` and `AmazonEC2ContainerRegistryReadOnly`.")),
    )
}

fn azure_block() -> NestedBlock {
    NestedBlock::new(
        "azure",
        Nesting::Single,
        Block::new()
            .description("The AKS cluster of `platform = \"azure\"`, in the provider's `azure.resource_group` and `azure.location`: created with a small system pool, a system-assigned managed identity, Entra ID users with Azure RBAC and no local accounts (so no kubeconfig holds a secret), the OIDC issuer and workload identity, and you (the credential chain's identity) as its Kubernetes admin (`Azure Kubernetes Service RBAC Cluster Admin`; Azure RBAC gives the creator nothing otherwise); or, with `adopt`, an existing cluster in which only agent pools and partitions are created. Credentials come from the Azure identity chain.")
            .attribute(Attribute::new("kubernetes_version", Type::String).optional().requires_replace().validate(Validator::regex(r"^1\.[0-9]{2}(\.[0-9]+)?$", "a Kubernetes version such as \"1.33\"").summary("Invalid Kubernetes version")).description("Kubernetes version of a new cluster, e.g. `\"1.33\"`. Default: AKS's default."))
            .attribute(Attribute::new("create_resource_group", Type::Bool).optional().requires_replace().description("Create the provider's `azure.resource_group` (in `azure.location`) if it does not exist; destroy deletes it again only if it created it and it is empty of everything else."))
            .attribute(Attribute::new("adopt", Type::Bool).optional().requires_replace().description("Use the existing AKS cluster of this `name`: agent pools and partitions are created in it, and destroy removes only those."))
            .attribute(Attribute::new("system_vm_size", Type::String).optional().requires_replace().description("VM size of the system pool of a new cluster (1 to 3 nodes, autoscaled). Default: `Standard_D4s_v5`.")),
    )
}

fn timeouts_block() -> NestedBlock {
    let d = |name: &str, default: &str| {
        Attribute::new(name, Type::String)
            .optional()
            .validate(
                Validator::custom("a duration such as `90m`, `1h` or `45s`", |v| {
                    match v.as_str() {
                        Some(s) => modelplane_serve::cli::parse_duration(s).map(|_| ()),
                        None => Ok(()),
                    }
                })
                .summary("Invalid timeout"),
            )
            .description(format!(
                "How long {name} may wait for the cloud, e.g. `\"90m\"`. Default: `{default}`."
            ))
    };
    NestedBlock::new(
        "timeouts",
        Nesting::Single,
        Block::new()
            .description("How long the cloud may take (on `aws` and `azure`: the cluster and node pools to be ready, and the GPU nodes to advertise their GPUs).")
            .attribute(d("create", "60m"))
            .attribute(d("update", "60m"))
            .attribute(d("delete", "30m")),
    )
}

fn node_group_type() -> Type {
    Type::list(Type::object([
        ("name", Type::String),
        ("instance_types", Type::list(Type::String)),
        ("capacity_type", Type::String),
        ("ami_type", Type::String),
        ("min_size", Type::Number),
        ("max_size", Type::Number),
        ("desired_size", Type::Number),
        ("status", Type::String),
        ("labels", Type::map(Type::String)),
        (
            "taints",
            Type::list(Type::object([
                ("key", Type::String),
                ("value", Type::String),
                ("effect", Type::String),
            ])),
        ),
    ]))
}

/// Writes what the platform reports into the state.
fn fill(m: &mut Model, f: ClusterFacts) {
    m.id = Attr::Known(format!("{}/{}", m.platform, m.name));
    m.hostname = Attr::Known(f.hostname);
    m.cpus = Attr::Known(f.cpus);
    m.memory_bytes = Attr::Known(f.memory_bytes);
    m.gpus = Attr::Known(f.gpus);
    if let Some(e) = f.engine {
        m.engine = Attr::Known(e);
    }
    if let Some(v) = f.engine_version {
        m.engine_version = Attr::Known(v);
    }
    m.nodes = f.nodes.into();
    m.objects = f.objects.into();
    match f.cloud {
        Some(c) => {
            m.resource_id = Attr::Known(c.resource_id);
            m.oidc_issuer = c.oidc_issuer.into();
            m.kubeconfig = Attr::Known(c.kubeconfig);
            m.node_groups = Attr::Known(c.node_groups);
            m.device_plugin_version = c.device_plugin_version.into();
        }
        None => {
            m.resource_id = Attr::Null;
            m.oidc_issuer = Attr::Null;
            m.kubeconfig = Attr::Null;
            m.node_groups = Attr::Null;
            m.device_plugin_version = Attr::Null;
        }
    }
}

impl PartitionBlock {
    fn from_spec(p: partitions::Partition) -> Self {
        PartitionBlock {
            purpose: p.purpose,
            namespace: Attr::Known(p.namespace),
            gpus: p.gpus,
            cpu: p.cpu,
            memory: p.memory,
            max_gpus_per_pod: p.max_gpus_per_pod,
            priority: Attr::Known(p.priority),
            node_selector: (!p.node_selector.is_empty()).then_some(p.node_selector),
            spot: p.spot.then_some(true),
            toleration: p.tolerations,
        }
    }
}

/// The platform named by `platform` for the cluster `name`; `None`, with an error at
/// `platform`, when there is none.
fn resolve(
    platform: &str,
    name: &str,
    config: &crate::ProviderConfig,
    diags: &mut Diagnostics,
) -> Option<Box<dyn Platform>> {
    let found = platform
        .parse::<PlatformKind>()
        .map_err(|e| e.to_string())
        .and_then(|kind| {
            platforms::resolve(&ClusterId::new(kind, name), config).map_err(|e| e.to_string())
        });
    match found {
        Ok(p) => Some(p),
        Err(e) => {
            diags.error_at(AttributePath::attr("platform"), "Unsupported platform", e);
            None
        }
    }
}

/// Node pools as refresh finds their node groups: a deleted one leaves the state (the plan
/// creates it again), a resized one shows its sizes (the plan sizes it back). After an import
/// (no pools in the state), the pools are the cluster's node groups.
fn refresh_pools(state: &mut Model, groups: &[platforms::NodeGroupSeen]) {
    if state.node_pool.is_empty() {
        state.node_pool = platforms::managed::pools::pools_of(groups)
            .into_iter()
            .map(NodePool::from_spec)
            .collect();
        return;
    }
    state
        .node_pool
        .retain(|p| groups.iter().any(|g| g.name == p.name));
    for p in &mut state.node_pool {
        let Some(g) = groups.iter().find(|g| g.name == p.name) else {
            continue;
        };
        // Only what the configuration sets is compared; an unset desired size is the
        // autoscaler's.
        if p.min_size.is_some() {
            p.min_size = Some(g.min_size);
        }
        if p.max_size.is_some() {
            p.max_size = Some(g.max_size);
        }
        if p.desired_size.is_some() {
            p.desired_size = Some(g.desired_size);
        }
    }
}

impl GpuCluster {
    fn provider(&self) -> crate::ProviderConfig {
        crate::ProviderConfig::of(&self.config)
    }

    /// The platform of a model; `None` (with diagnostics at `platform`) when there is none.
    fn platform(&self, m: &Model, diags: &mut Diagnostics) -> Option<Box<dyn Platform>> {
        resolve(&m.platform, &m.name, &self.provider(), diags)
    }

    fn spec(m: &Model) -> ClusterSpec {
        let t = m.timeouts.as_ref();
        let d = platforms::Timeouts::default();
        let dur = |v: Option<&String>, default| {
            v.and_then(|v| modelplane_serve::cli::parse_duration(v).ok())
                .unwrap_or(default)
        };
        ClusterSpec {
            engine: m.engine.known().cloned(),
            partitions: m.partition.iter().map(|p| p.spec(&m.name)).collect(),
            pools: m.node_pool.iter().map(NodePool::spec).collect(),
            aws: m.aws.as_ref().map(|a| platforms::aws::ClusterSettings {
                kubernetes_version: a.kubernetes_version.clone(),
                subnet_ids: a.subnet_ids.clone().unwrap_or_default(),
                security_group_ids: a.security_group_ids.clone().unwrap_or_default(),
                adopt: a.adopt.unwrap_or(false),
                cluster_role_arn: a.cluster_role_arn.clone(),
                node_role_arn: a.node_role_arn.clone(),
            }),
            azure: m.azure.as_ref().map(|a| platforms::azure::ClusterSettings {
                kubernetes_version: a.kubernetes_version.clone(),
                create_resource_group: a.create_resource_group.unwrap_or(false),
                adopt: a.adopt.unwrap_or(false),
                system_vm_size: a.system_vm_size.clone(),
            }),
            timeouts: platforms::Timeouts {
                create: dur(t.and_then(|t| t.create.as_ref()), d.create),
                update: dur(t.and_then(|t| t.update.as_ref()), d.update),
                delete: dur(t.and_then(|t| t.delete.as_ref()), d.delete),
            },
        }
    }

    /// Plans `estimated_cost` and checks the budget. The estimate is computed when the
    /// cluster changes (or has none yet) and kept otherwise, so a new price table or
    /// different rates never plan a change on their own.
    fn plan_cost(&self, prior: Option<&Model>, plan: &mut Model, ctx: &mut Ctx) {
        let inputs = |m: &Model| {
            serde_json::to_value((
                &m.platform,
                &m.node_pool,
                &m.partition,
                &m.aws,
                &m.azure,
                &m.budget,
                &m.cpus,
                &m.memory_bytes,
                &m.gpus,
            ))
            .ok()
        };
        plan.estimated_cost = match prior {
            Some(pr) if inputs(pr) == inputs(plan) => pr.estimated_cost.clone(),
            _ => cost::estimate(plan, &self.provider(), &mut ctx.diags),
        };
        crate::cost::check(
            &format!("modelplane_gpu_cluster {:?}", plan.name),
            plan.budget.as_ref(),
            &plan.estimated_cost,
            "set the provider's pricing rates (on-prem) or see the warnings above.",
            &mut ctx.diags,
        );
    }

    async fn converge(&self, before: &[String], mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
        let platform = self.platform(&plan, &mut ctx.diags)?;
        let spec = Self::spec(&plan);
        for (p, s) in plan.partition.iter_mut().zip(&spec.partitions) {
            p.namespace = Attr::Known(s.namespace.clone());
            p.priority = Attr::Known(s.priority);
        }
        match platform
            .converge_cluster(&spec, before, &mut ctx.diags)
            .await
        {
            Ok(f) => {
                fill(&mut plan, f);
                if plan.estimated_cost.is_unknown() {
                    // What it depended on (this machine's inventory) is known now.
                    plan.estimated_cost = cost::estimate(&plan, &self.provider(), &mut ctx.diags);
                }
                Some(plan)
            }
            Err((e, partial)) => {
                e.report("Cannot create the cluster", &mut ctx.diags);
                // What was written is in the state returned with the error, so nothing is lost.
                let f = partial?;
                fill(&mut plan, f);
                Some(plan)
            }
        }
    }
}

#[tfplugin::async_trait]
impl tfplugin::Resource for GpuCluster {
    type Model = Model;

    fn type_name(&self) -> &'static str {
        "modelplane_gpu_cluster"
    }

    fn schema(&self) -> Schema {
        let mut b = Block::new()
            .description(
                "A GPU cluster: the compute that endpoints run on. With `platform = \"local\"` it is this machine, \
                 and its inventory (CPUs, memory, and NVIDIA GPUs through NVML, with driver, CUDA version and MIG \
                 mode) is computed; a machine without a driver has an empty `gpus` list. With \
                 `platform = \"container\"` it is this host's container engine (edge boxes, single nodes): the same \
                 inventory, plus `engine` and `engine_version`; endpoints on it are containers of the bundled image, \
                 GPUs given through CDI (podman) or `--gpus` (docker). With `platform = \"kubernetes\"` it adopts an \
                 existing cluster (on-prem, OpenShift, or the cluster of EKS and AKS) and manages its GPU \
                 `partition`s; `nodes` lists the GPUs each node advertises, and a warning says when the partitions \
                 ask for more than the nodes have or no node runs the NVIDIA device plugin. With `platform = \"aws\"` \
                 or `\"azure\"` the cluster is made (EKS with managed node groups, AKS with agent pools; see the \
                 `aws` and `azure` blocks), the NVIDIA device plugin runs on its GPU pools, and create waits until \
                 the GPUs are allocatable. Endpoints name the cluster by its `id` (`PLATFORM/NAME`).",
            )
            .attribute(Attribute::new("id", Type::String).computed().stable().description("`PLATFORM/NAME`, e.g. `local/inference`."))
            .attribute(Attribute::new("name", Type::String).required().requires_replace().description("Cluster name: letters, digits, `.`, `_`, `-`."))
            .attribute(
                Attribute::new("platform", Type::String)
                    .required()
                    .requires_replace()
                    .description("Where the cluster is: `local` (this machine), `container` (this host's podman or docker) `kubernetes` (an existing cluster, reached through the provider's `kubernetes` block), `aws` (an EKS cluster with managed node groups, see the `aws` block) or `azure` (an AKS cluster with agent pools, see the `azure` block)."),
            )
            .attribute(Attribute::new("engine", Type::String).optional_computed().requires_replace().description("On `container`: the engine, `podman` or `docker` (a name on PATH or a path). Default: the first of them on PATH. Null on `local`."))
            .attribute(Attribute::new("engine_version", Type::String).computed().description("On `container`: the engine's version (docker's daemon version: a stopped daemon is an error)."))
            .attribute(Attribute::new("nodes", node_type()).computed().description("On `kubernetes`: every node with the GPUs it advertises (`nvidia.com/gpu` allocatable), its GPU product and memory (GPU feature discovery labels), readiness and whether it is spot capacity."))
            .attribute(Attribute::new("objects", Type::list(Type::String)).computed().description("On `kubernetes`: every object the provider wrote, as `APIVERSION/KIND/[NAMESPACE/]NAME`."))
            .attribute(Attribute::new("resource_id", Type::String).computed().stable().description("On `aws`: the EKS cluster's ARN. On `azure`: the managed cluster's resource ID."))
            .attribute(Attribute::new("oidc_issuer", Type::String).computed().stable().description("On `aws` and `azure`: the cluster's OIDC issuer URL (for IRSA trust policies and workload identity federation)."))
            .attribute(Attribute::new("kubeconfig", Type::String).computed().stable().description("On `aws` and `azure`: a kubeconfig for the cluster. It holds no secret: its user runs `aws eks get-token` (the AWS CLI), or on `azure` `kubelogin` with the Azure CLI's login, for a token."))
            .attribute(Attribute::new("node_groups", node_group_type()).computed().description("On `aws`: each node group as EKS reports it: instance types, capacity type (`ON_DEMAND`, `SPOT`), AMI type, sizes, status, labels and taints. On `azure`: each user agent pool as AKS reports it, in its terms: VM size, priority (`Regular`, `Spot`), node OS, sizes, provisioning state, labels and taints (without the spot taint AKS adds). Refresh shows a pool scaled or deleted outside Terraform."))
            .attribute(Attribute::new("device_plugin_version", Type::String).computed().stable().description("On `aws` and `azure`: the version of the NVIDIA device plugin the provider installed on the GPU pools (null without GPU pools)."))
            .block(node_pool_block())
            .block(partition_block())
            .block(aws_block())
            .block(azure_block())
            .block(timeouts_block())
            .block(crate::cost::budget_block("cluster"))
            .attribute(cost::attribute());
        for a in platforms::local::inventory_attributes() {
            let on_kubernetes = match a.name.as_str() {
                "hostname" => Some("On `kubernetes`: the API server's URL."),
                "cpus" => {
                    Some("On `kubernetes`: allocatable CPU cores of all nodes, rounded down.")
                }
                "memory_bytes" => Some("On `kubernetes`: allocatable memory of all nodes."),
                "gpus" => Some("On `kubernetes`: empty; see `nodes`."),
                _ => None,
            };
            let a = match on_kubernetes {
                Some(k) => {
                    let d = format!("{} {k}", a.description);
                    a.description(d)
                }
                None => a,
            };
            b = b.attribute(a.stable());
        }
        Schema::new(b)
    }

    async fn validate(&self, config: &Config, diags: &mut Diagnostics) {
        crate::check_name(config, diags);
        let platform = match config.get::<String>("platform", diags) {
            Attr::Known(p) => resolve(&p, "-", &crate::ProviderConfig::default(), diags),
            _ => None,
        };
        let pools = config.elements("node_pool");
        let mut names = std::collections::BTreeSet::new();
        for (i, pool) in pools.iter().enumerate() {
            let at = |a: &str| {
                AttributePath(vec![
                    PathStep::Attr("node_pool".into()),
                    PathStep::Index(i as i64),
                    PathStep::Attr(a.into()),
                ])
            };
            if let Attr::Known(n) = pool.get::<String>("name", diags) {
                if !names.insert(n.clone()) {
                    diags.error_at(
                        at("name"),
                        "Duplicate node pool",
                        format!("node_pool {n:?} is declared twice; pool names must be unique."),
                    );
                }
            }
            if let (Attr::Known(min), Attr::Known(max)) = (
                pool.get::<i64>("min_size", diags),
                pool.get::<i64>("max_size", diags),
            ) {
                if min > max {
                    diags.error_at(
                        at("min_size"),
                        "Invalid node pool size",
                        format!("min_size ({min}) is larger than max_size ({max})."),
                    );
                }
            }
        }
        if let Some(p) = platform {
            p.validate_cluster(config, diags);
        }
    }

    async fn modify_plan(
        &self,
        prior: Option<&Model>,
        plan: &mut Model,
        config: &Config,
        ctx: &mut Ctx,
    ) {
        // Known at plan time, so endpoints can be planned against a new cluster.
        plan.id = Attr::Known(format!("{}/{}", plan.platform, plan.name));
        let name = plan.name.clone();
        let configured = config.elements("partition");
        for (i, p) in plan.partition.iter_mut().enumerate() {
            // Unset in the configuration: the default, known now.
            let unset = |attr: &str, diags: &mut Diagnostics| {
                configured
                    .get(i)
                    .is_some_and(|c| c.get::<serde_json::Value>(attr, diags).is_null())
            };
            if unset("namespace", &mut ctx.diags) {
                p.namespace = Attr::Known(default_namespace(&name, &p.purpose));
            }
            if unset("priority", &mut ctx.diags) {
                p.priority = Attr::Known(partitions::default_priority(&p.purpose));
            }
        }
        let partitions_changed = prior.is_none_or(|pr| pr.partition != plan.partition);
        let pools_changed = prior.is_none_or(|pr| pr.node_pool != plan.node_pool);
        // Cloud facts: none until a cloud platform plans them; kept across an update.
        match prior {
            None => {
                plan.resource_id = Attr::Null;
                plan.oidc_issuer = Attr::Null;
                plan.kubeconfig = Attr::Null;
                plan.node_groups = Attr::Null;
                plan.device_plugin_version = Attr::Null;
            }
            Some(pr) => plan.node_groups = pr.node_groups.clone(),
        }
        let Some(platform) = self.platform(plan, &mut ctx.diags) else {
            return;
        };
        platform.plan_cluster(ClusterPlan {
            engine: &mut plan.engine,
            engine_version: &mut plan.engine_version,
            nodes: &mut plan.nodes,
            objects: &mut plan.objects,
            resource_id: &mut plan.resource_id,
            oidc_issuer: &mut plan.oidc_issuer,
            kubeconfig: &mut plan.kubeconfig,
            node_groups: &mut plan.node_groups,
            device_plugin_version: &mut plan.device_plugin_version,
            partitions_changed,
            pools_changed,
            creating: prior.is_none(),
        });
        self.plan_cost(prior, plan, ctx);
    }

    async fn create(&self, plan: Model, ctx: &mut Ctx) -> Option<Model> {
        self.converge(&[], plan, ctx).await
    }

    async fn read(&self, mut state: Model, ctx: &mut Ctx) -> Option<Model> {
        let Some(platform) = self.platform(&state, &mut ctx.diags) else {
            return Some(state);
        };
        match platform
            .observe_cluster(&Self::spec(&state), &mut ctx.diags)
            .await
        {
            Err(platforms::PlatformError::Gone(e)) => {
                ctx.diags.warning(
                    "Cluster deleted outside Terraform",
                    format!("{e}; it leaves the state, and the next plan creates it again."),
                );
                return None;
            }
            Err(e) => ctx.diags.warning(
                "Cannot reach the cluster",
                format!("{e}. The state is kept as it was."),
            ),
            Ok((facts, seen)) => {
                if !seen.is_empty() {
                    let mut kept = Vec::new();
                    for (p, s) in std::mem::take(&mut state.partition).into_iter().zip(seen) {
                        match s {
                            PartitionSeen::Gone => {}
                            PartitionSeen::Unknown => kept.push(p),
                            PartitionSeen::Seen(s) => kept.push(PartitionBlock {
                                gpus: s.gpus,
                                cpu: s.cpu,
                                memory: s.memory,
                                ..p
                            }),
                        }
                    }
                    state.partition = kept;
                }
                if let Some(groups) = facts
                    .as_ref()
                    .and_then(|f| f.cloud.as_ref())
                    .map(|c| &c.node_groups)
                {
                    refresh_pools(&mut state, groups);
                }
                if let Some(f) = facts {
                    let objects = state.objects.clone();
                    fill(&mut state, f);
                    if state.objects.is_null() {
                        // Refresh reads the inventory; the record of what was written stays.
                        state.objects = objects;
                    }
                }
            }
        }
        if ctx.private.get::<bool>(PRICE_ON_READ) == Some(true) {
            ctx.private.remove(PRICE_ON_READ);
            state.estimated_cost = cost::estimate(&state, &self.provider(), &mut ctx.diags);
        }
        Some(state)
    }

    async fn update(&self, prior: Model, plan: Model, ctx: &mut Ctx) -> Option<Model> {
        let before = prior.objects.known().cloned().unwrap_or_default();
        self.converge(&before, plan, ctx).await
    }

    async fn delete(&self, state: Model, ctx: &mut Ctx) {
        let Some(platform) = self.platform(&state, &mut ctx.diags) else {
            return;
        };
        let timeout = Self::spec(&state).timeouts.delete;
        if let Err(e) = platform
            .remove_cluster(state.objects.known(), timeout)
            .await
        {
            e.report("Cannot delete the partitions", &mut ctx.diags);
        }
    }

    async fn import(&self, id: &str, ctx: &mut Ctx) -> Option<Model> {
        let id: ClusterId = match id.parse() {
            Ok(p) => p,
            Err(e) => {
                ctx.diags.error("Invalid import ID", e.to_string());
                return None;
            }
        };
        let platform = match platforms::resolve(&id, &self.provider()) {
            Ok(p) => p,
            Err(e) => {
                ctx.diags.error("Invalid import ID", e.to_string());
                return None;
            }
        };
        // The estimate is computed by the read that follows, once the pools are known.
        ctx.private.set(PRICE_ON_READ, &true);
        let (parts, objects) = match platform.import_cluster().await {
            Ok(found) => found,
            Err(e) => {
                e.report("Cannot import the cluster", &mut ctx.diags);
                return None;
            }
        };
        Some(Model {
            id: Attr::Null,
            name: id.name,
            platform: id.platform.to_string(),
            node_pool: Vec::new(),
            hostname: Attr::Null,
            cpus: Attr::Null,
            memory_bytes: Attr::Null,
            gpus: Attr::Null,
            engine: Attr::Null,
            engine_version: Attr::Null,
            partition: parts.into_iter().map(PartitionBlock::from_spec).collect(),
            nodes: Attr::Null,
            objects: objects.into(),
            aws: None,
            azure: None,
            timeouts: None,
            resource_id: Attr::Null,
            oidc_issuer: Attr::Null,
            kubeconfig: Attr::Null,
            node_groups: Attr::Null,
            device_plugin_version: Attr::Null,
            budget: None,
            estimated_cost: Attr::Null,
        })
    }
}
