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
    PathStep, Schema, Type,
};

use crate::platforms::kubernetes::{self as k8s, objects, partitions};
use crate::platforms::{self, container, local::Gpu};

pub struct GpuCluster {
    pub config: std::sync::Arc<std::sync::OnceLock<crate::ProviderConfig>>,
}

pub const PURPOSES: &[&str] = &["dev", "training", "inference"];

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
            .attribute(Attribute::new("purpose", Type::String).required().description("`dev`, `training` or `inference`; one partition per purpose. Endpoints run in `inference` unless their `kubernetes.partition` says otherwise."))
            .attribute(Attribute::new("namespace", Type::String).optional_computed().requires_replace().description("The namespace. Default: `CLUSTER-PURPOSE`. Created and owned by the provider: destroying the partition deletes the namespace and what runs in it."))
            .attribute(Attribute::new("gpus", Type::Number).required().description("ResourceQuota on `requests.nvidia.com/gpu`: the most GPUs the partition's pods may request together."))
            .attribute(Attribute::new("cpu", Type::String).optional().description("ResourceQuota on CPU requests and limits, e.g. `\"64\"`."))
            .attribute(Attribute::new("memory", Type::String).optional().description("ResourceQuota on memory requests and limits, e.g. `\"256Gi\"`."))
            .attribute(Attribute::new("max_gpus_per_pod", Type::Number).optional().description("LimitRange: the most GPUs one container may take. Default: `gpus`."))
            .attribute(Attribute::new("priority", Type::Number).optional_computed().description("Value of the partition's PriorityClass. Default: inference 100000, training 10000, dev 1000 (dev never preempts)."))
            .attribute(Attribute::new("node_selector", Type::map(Type::String)).optional().description("Node labels the partition's pods are placed on, e.g. `{ \"nvidia.com/gpu.product\" = \"NVIDIA-A100-SXM4-80GB\" }` or a node pool label."))
            .attribute(Attribute::new("spot", Type::Bool).optional().description("Tolerate the taints of spot capacity (AKS `kubernetes.azure.com/scalesetpriority=spot`, EKS `eks.amazonaws.com/capacityType=SPOT`, GKE `cloud.google.com/gke-spot`, and `modelplane.io/spot`)."))
            .block(NestedBlock::new(
                "toleration",
                Nesting::List,
                Block::new()
                    .description("A further taint the partition's pods tolerate (the `nvidia.com/gpu` taint of GPU node pools always is).")
                    .attribute(Attribute::new("key", Type::String).required().description("Taint key."))
                    .attribute(Attribute::new("operator", Type::String).optional().description("`Exists` or `Equal` (default `Equal` with a value, else `Exists`)."))
                    .attribute(Attribute::new("value", Type::String).optional().description("Taint value, with `Equal`."))
                    .attribute(Attribute::new("effect", Type::String).optional().description("`NoSchedule`, `PreferNoSchedule` or `NoExecute`; unset tolerates all.")),
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
            .attribute(Attribute::new("purpose", Type::String).required().description("What the pool is for: `dev`, `training` or `inference`."))
            .attribute(Attribute::new("instance_type", Type::String).optional().description("Machine type (EC2 instance type on AWS, VM size on Azure); ignored locally."))
            .attribute(Attribute::new("gpu_count", Type::Number).optional().description("GPUs per node. Locally, a count above what NVML finds is an error."))
            .attribute(Attribute::new("gpu_type", Type::String).optional().description("GPU model, e.g. `nvidia-a10g`; informational locally."))
            .attribute(Attribute::new("min_size", Type::Number).optional().description("Fewest nodes; ignored locally."))
            .attribute(Attribute::new("max_size", Type::Number).optional().description("Most nodes; ignored locally."))
            .attribute(Attribute::new("spot", Type::Bool).optional().description("Use spot/preemptible capacity; ignored locally.")),
    )
}

fn fill(mut m: Model, inv: platforms::local::Inventory) -> Model {
    m.id = Attr::Known(format!("{}/{}", m.platform, m.name));
    m.nodes = Attr::Null;
    m.objects = Attr::Null;
    m.hostname = Attr::Known(inv.hostname);
    m.cpus = Attr::Known(inv.cpus);
    m.memory_bytes = Attr::Known(inv.memory_bytes);
    m.gpus = Attr::Known(inv.gpus);
    m
}

async fn inventory() -> platforms::local::Inventory {
    tokio::task::spawn_blocking(platforms::local::inventory)
        .await
        .unwrap_or_else(|_| platforms::local::Inventory {
            hostname: String::new(),
            cpus: 1,
            memory_bytes: 0,
            gpus: Vec::new(),
        })
}

impl GpuCluster {
    fn state_dir(&self) -> std::path::PathBuf {
        self.config.get().cloned().unwrap_or_default().state_dir()
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
                 ask for more than the nodes have or no node runs the NVIDIA device plugin. Endpoints name the \
                 cluster by its `id` (`PLATFORM/NAME`).",
            )
            .attribute(Attribute::new("id", Type::String).computed().stable().description("`PLATFORM/NAME`, e.g. `local/inference`."))
            .attribute(Attribute::new("name", Type::String).required().requires_replace().description("Cluster name: letters, digits, `.`, `_`, `-`."))
            .attribute(
                Attribute::new("platform", Type::String)
                    .required()
                    .requires_replace()
                    .description("Where the cluster is: `local` (this machine), `container` (this host's podman or docker) or `kubernetes` (an existing cluster, reached through the provider's `kubernetes` block); `aws` and `azure` are refused by this version."),
            )
            .attribute(Attribute::new("engine", Type::String).optional_computed().requires_replace().description("On `container`: the engine, `podman` or `docker` (a name on PATH or a path). Default: the first of them on PATH. Null on `local`."))
            .attribute(Attribute::new("engine_version", Type::String).computed().description("On `container`: the engine's version (docker's daemon version: a stopped daemon is an error)."))
            .attribute(Attribute::new("nodes", node_type()).computed().description("On `kubernetes`: every node with the GPUs it advertises (`nvidia.com/gpu` allocatable), its GPU product and memory (GPU feature discovery labels), readiness and whether it is spot capacity."))
            .attribute(Attribute::new("objects", Type::list(Type::String)).computed().description("On `kubernetes`: every object the provider wrote, as `APIVERSION/KIND/[NAMESPACE/]NAME`."))
            .block(node_pool_block())
            .block(partition_block());
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
        if let Attr::Known(p) = config.get::<String>("platform", diags) {
            if let Some(why) = platforms::unavailable(&p) {
                diags.error_at(AttributePath::attr("platform"), "Unsupported platform", why);
            }
        }
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
            if let Attr::Known(p) = pool.get::<String>("purpose", diags) {
                if !PURPOSES.contains(&p.as_str()) {
                    diags.error_at(
                        at("purpose"),
                        "Invalid node pool purpose",
                        format!(
                            "purpose {p:?} must be one of \"dev\", \"training\" or \"inference\"."
                        ),
                    );
                }
            }
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
            if let Attr::Known(n) = pool.get::<i64>("gpu_count", diags) {
                if n < 0 {
                    diags.error_at(
                        at("gpu_count"),
                        "Invalid GPU count",
                        "gpu_count must be 0 or more.",
                    );
                }
            }
        }
        if let Attr::Known(p) = config.get::<String>("platform", diags) {
            if p == "local" && !config.get::<String>("engine", diags).is_null() {
                diags.error_at(
                    AttributePath::attr("engine"),
                    "Not used on local",
                    "engine applies to container clusters; remove it, or set platform = \"container\".",
                );
            }
            if p == "container" {
                if let Attr::Known(e) = config.get::<String>("engine", diags) {
                    let name = std::path::Path::new(&e)
                        .file_name()
                        .and_then(|f| f.to_str())
                        .unwrap_or("");
                    if !container::ENGINES.iter().any(|k| name.contains(k)) {
                        diags.error_at(
                            AttributePath::attr("engine"),
                            "Unknown container engine",
                            format!("engine {e:?} is neither podman nor docker; use \"podman\" or \"docker\" (or a path to one)."),
                        );
                    }
                }
            }
            let parts = config.elements("partition");
            if p != "kubernetes" && !parts.is_empty() {
                diags.error_at(
                    AttributePath::attr("partition"),
                    "Not used on this platform",
                    format!("partition blocks divide a Kubernetes cluster; the {p} platform has none. Remove them, or set platform = \"kubernetes\"."),
                );
            }
            if p == "kubernetes" {
                if !pools.is_empty() {
                    diags.error_at(
                        AttributePath::attr("node_pool"),
                        "Not used on kubernetes",
                        "an adopted Kubernetes cluster keeps the node pools it has; select their nodes with partition.node_selector instead of node_pool.",
                    );
                }
                if !config.get::<String>("engine", diags).is_null() {
                    diags.error_at(
                        AttributePath::attr("engine"),
                        "Not used on kubernetes",
                        "engine applies to container clusters; remove it.",
                    );
                }
                validate_partitions(&parts, diags);
            }
            if (p == "local" || p == "container") && pools.len() > 1 {
                diags.error_at(
                    AttributePath::attr("node_pool"),
                    "Too many node pools",
                    format!("the {p} platform is this one machine and takes at most one node_pool; {} are declared.", pools.len()),
                );
            }
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
        if plan.platform == "kubernetes" {
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
            let changed = prior.is_none_or(|pr| pr.partition != plan.partition);
            if changed {
                plan.objects = Attr::Unknown;
            }
        } else {
            plan.nodes = Attr::Null;
            plan.objects = Attr::Null;
        }
        if plan.platform != "container" {
            plan.engine = Attr::Null;
            plan.engine_version = Attr::Null;
        }
    }

    async fn create(&self, mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
        if plan.platform == "kubernetes" {
            return self.apply_kubernetes(&[], plan, ctx).await;
        }
        if plan.platform == "container" {
            let engine = match container::Engine::find(plan.engine.known().map(String::as_str)) {
                Ok(e) => e,
                Err(e) => {
                    ctx.diags
                        .error_at(AttributePath::attr("engine"), "No container engine", e);
                    return None;
                }
            };
            match engine.version().await {
                Ok(v) => plan.engine_version = Attr::Known(v),
                Err(e) => {
                    ctx.diags.error_at(
                        AttributePath::attr("engine"),
                        "The container engine does not answer",
                        e,
                    );
                    return None;
                }
            }
            plan.engine = Attr::Known(engine.program.clone());
            if let Err(e) = container::write_record(
                &self.state_dir(),
                &plan.name,
                &container::ClusterRecord { engine },
            ) {
                ctx.diags.error("Cannot record the cluster", e.to_string());
                return None;
            }
        } else {
            plan.engine = Attr::Null;
            plan.engine_version = Attr::Null;
        }
        let inv = inventory().await;
        for (i, pool) in plan.node_pool.iter().enumerate() {
            if let Some(want) = pool.gpu_count {
                if want as usize > inv.gpus.len() {
                    ctx.diags.error_at(
                        AttributePath(vec![PathStep::Attr("node_pool".into()), PathStep::Index(i as i64), PathStep::Attr("gpu_count".into())]),
                        "Not enough GPUs",
                        format!(
                            "node_pool {:?} asks for {want} GPU(s), but NVML finds {} on this machine{}. Lower gpu_count or run on a machine with GPUs.",
                            pool.name,
                            inv.gpus.len(),
                            if inv.gpus.is_empty() { " (no NVIDIA driver or no GPU)" } else { "" }
                        ),
                    );
                    return None;
                }
            }
        }
        Some(fill(plan, inv))
    }

    async fn read(&self, mut state: Model, ctx: &mut Ctx) -> Option<Model> {
        if state.platform == "kubernetes" {
            return Some(self.read_kubernetes(state, ctx).await);
        }
        if state.platform == "container" {
            let engine = container::Engine::find(state.engine.known().map(String::as_str));
            match engine {
                Ok(engine) => {
                    match engine.version().await {
                        Ok(v) => state.engine_version = Attr::Known(v),
                        Err(e) => ctx.diags.warning("The container engine does not answer", e),
                    }
                    state.engine = Attr::Known(engine.program.clone());
                    let _ = container::write_record(
                        &self.state_dir(),
                        &state.name,
                        &container::ClusterRecord { engine },
                    );
                }
                Err(e) => ctx.diags.warning("No container engine", e),
            }
        }
        Some(fill(state, inventory().await))
    }

    async fn update(&self, prior: Model, plan: Model, ctx: &mut Ctx) -> Option<Model> {
        if plan.platform == "kubernetes" {
            let before = objects::parse_all(prior.objects.known().map_or(&[][..], |v| v));
            return self.apply_kubernetes(&before, plan, ctx).await;
        }
        self.create(plan, ctx).await
    }

    async fn delete(&self, state: Model, ctx: &mut Ctx) {
        if state.platform == "kubernetes" {
            crate::kube_delete_recorded(
                &self.config,
                state.objects.known(),
                "Cannot delete the partitions",
                &mut ctx.diags,
            )
            .await;
            return;
        }
        if state.platform == "container" {
            container::remove_record(&self.state_dir(), &state.name);
        }
    }

    async fn import(&self, id: &str, ctx: &mut Ctx) -> Option<Model> {
        let (platform, name) = match platforms::parse_cluster_id(id) {
            Ok(p) => p,
            Err(e) => {
                ctx.diags.error("Invalid import ID", e);
                return None;
            }
        };
        if let Some(why) = platforms::unavailable(&platform) {
            ctx.diags.error("Invalid import ID", why);
            return None;
        }
        let mut m = Model {
            id: Attr::Null,
            name,
            platform,
            node_pool: Vec::new(),
            hostname: Attr::Null,
            cpus: Attr::Null,
            memory_bytes: Attr::Null,
            gpus: Attr::Null,
            engine: Attr::Null,
            engine_version: Attr::Null,
            partition: Vec::new(),
            nodes: Attr::Null,
            objects: Attr::Null,
        };
        if m.platform == "kubernetes" {
            let client =
                crate::kube_client(&self.config, crate::Reach::Change, &mut ctx.diags).await?;
            match import_partitions(&client, &m.name).await {
                Ok(parts) => {
                    m.objects = Attr::Known(
                        parts
                            .iter()
                            .flat_map(|p| objects::refs(&p.spec(&m.name).render(&m.name)))
                            .map(|r| r.to_string())
                            .collect(),
                    );
                    m.partition = parts;
                }
                Err(e) => {
                    ctx.diags.error("Cannot import the cluster", e);
                    return None;
                }
            }
        }
        Some(m)
    }
}

fn validate_partitions(parts: &[Config], diags: &mut Diagnostics) {
    let mut seen = std::collections::BTreeSet::new();
    for (i, part) in parts.iter().enumerate() {
        let at = |a: &str| {
            AttributePath(vec![
                PathStep::Attr("partition".into()),
                PathStep::Index(i as i64),
                PathStep::Attr(a.into()),
            ])
        };
        if let Attr::Known(p) = part.get::<String>("purpose", diags) {
            if !PURPOSES.contains(&p.as_str()) {
                diags.error_at(
                    at("purpose"),
                    "Invalid partition purpose",
                    format!("purpose {p:?} must be one of \"dev\", \"training\" or \"inference\"."),
                );
            } else if !seen.insert(p.clone()) {
                diags.error_at(
                    at("purpose"),
                    "Duplicate partition",
                    format!(
                        "the {p} partition is declared twice; declare one partition per purpose."
                    ),
                );
            }
        }
        if let Attr::Known(n) = part.get::<String>("namespace", diags) {
            if !k8s::is_dns_label(&n) {
                diags.error_at(at("namespace"), "Invalid namespace", format!("namespace {n:?} must be a DNS label: lower-case letters, digits and '-', at most 63 characters, e.g. \"ml-inference\"."));
            }
        }
        if let Attr::Known(g) = part.get::<i64>("gpus", diags) {
            if g < 0 {
                diags.error_at(at("gpus"), "Invalid GPU quota", "gpus must be 0 or more.");
            }
        }
        if let Attr::Known(g) = part.get::<i64>("max_gpus_per_pod", diags) {
            if g < 0 {
                diags.error_at(
                    at("max_gpus_per_pod"),
                    "Invalid GPU limit",
                    "max_gpus_per_pod must be 0 or more.",
                );
            }
        }
        if let Attr::Known(p) = part.get::<i64>("priority", diags) {
            if !(0..=1_000_000_000).contains(&p) {
                diags.error_at(at("priority"), "Invalid priority", format!("priority {p} must be between 0 and 1000000000 (higher values are reserved for the system)."));
            }
        }
        for f in ["cpu", "memory"] {
            if let Attr::Known(q) = part.get::<String>(f, diags) {
                if let Err(e) = k8s::check_quantity(&q) {
                    diags.error_at(at(f), "Invalid quantity", e);
                }
            }
        }
        for (j, t) in part.elements("toleration").iter().enumerate() {
            let tat = |a: &str| {
                AttributePath(vec![
                    PathStep::Attr("partition".into()),
                    PathStep::Index(i as i64),
                    PathStep::Attr("toleration".into()),
                    PathStep::Index(j as i64),
                    PathStep::Attr(a.into()),
                ])
            };
            if let Attr::Known(o) = t.get::<String>("operator", diags) {
                if o != "Exists" && o != "Equal" {
                    diags.error_at(
                        tat("operator"),
                        "Invalid toleration",
                        format!("operator {o:?} must be \"Exists\" or \"Equal\"."),
                    );
                }
                if o == "Exists" && !t.get::<String>("value", diags).is_null() {
                    diags.error_at(tat("value"), "Invalid toleration", "a toleration with operator \"Exists\" takes no value; remove value or use \"Equal\".");
                }
            }
            if let Attr::Known(e) = t.get::<String>("effect", diags) {
                if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&e.as_str()) {
                    diags.error_at(tat("effect"), "Invalid toleration", format!("effect {e:?} must be \"NoSchedule\", \"PreferNoSchedule\" or \"NoExecute\"."));
                }
            }
        }
    }
}

/// Partitions as the cluster has them: namespaces labelled for the cluster, with their quota.
async fn import_partitions(
    client: &kube::Client,
    cluster: &str,
) -> Result<Vec<PartitionBlock>, String> {
    let mut out = Vec::new();
    for purpose in PURPOSES {
        let (namespace, sched) = match partitions::find(client, cluster, purpose).await {
            Ok(f) => f,
            Err(_) => continue,
        };
        let probe = partitions::Partition {
            purpose: purpose.to_string(),
            namespace: namespace.clone(),
            gpus: 0,
            cpu: None,
            memory: None,
            max_gpus_per_pod: None,
            priority: partitions::default_priority(purpose),
            node_selector: sched.node_selector.clone(),
            tolerations: Vec::new(),
            spot: false,
        };
        let Some(seen) = partitions::observe(client, &probe).await? else {
            continue;
        };
        let spot = sched
            .tolerations
            .iter()
            .any(|t| t.key == partitions::SPOT_TAINTS[0].0);
        let base = partitions::Partition {
            spot,
            ..probe.clone()
        }
        .all_tolerations();
        out.push(PartitionBlock {
            purpose: purpose.to_string(),
            namespace: Attr::Known(namespace),
            gpus: seen.gpus.max(0),
            cpu: seen.cpu,
            memory: seen.memory,
            max_gpus_per_pod: None,
            priority: Attr::Known(partitions::default_priority(purpose)),
            node_selector: (!sched.node_selector.is_empty()).then_some(sched.node_selector),
            spot: spot.then_some(true),
            toleration: sched
                .tolerations
                .into_iter()
                .filter(|t| !base.contains(t))
                .collect(),
        });
    }
    if out.is_empty() {
        return Err(format!(
            "no namespace carries the label {}={cluster}; nothing to import",
            k8s::LABEL_CLUSTER
        ));
    }
    Ok(out)
}

impl GpuCluster {
    /// Writes the partitions, prunes what `before` had and the plan drops, and reads the
    /// inventory.
    async fn apply_kubernetes(
        &self,
        before: &[objects::ObjectRef],
        mut plan: Model,
        ctx: &mut Ctx,
    ) -> Option<Model> {
        let (client, api_server) =
            crate::kube_connect(&self.config, crate::Reach::Change, &mut ctx.diags).await?;
        plan.engine = Attr::Null;
        plan.engine_version = Attr::Null;
        let specs: Vec<partitions::Partition> =
            plan.partition.iter().map(|p| p.spec(&plan.name)).collect();
        for (p, s) in plan.partition.iter_mut().zip(&specs) {
            p.namespace = Attr::Known(s.namespace.clone());
            p.priority = Attr::Known(s.priority);
        }
        let rendered: Vec<_> = specs.iter().flat_map(|p| p.render(&plan.name)).collect();
        let (recorded, r) = objects::converge(&client, before, &rendered).await;
        plan.objects = Attr::Known(recorded.iter().map(|r| r.to_string()).collect());
        match partitions::inventory(&client).await {
            Ok(inv) => {
                for w in partitions::capacity_warnings(&inv, &specs) {
                    ctx.diags.warning("GPU capacity", w);
                }
                fill_kubernetes(&mut plan, inv, api_server);
            }
            Err(e) => {
                ctx.diags.warning("No node inventory", e);
                let none = partitions::Inventory {
                    nodes: vec![],
                    cpus: 0,
                    memory_bytes: 0,
                };
                fill_kubernetes(&mut plan, none, api_server);
            }
        }
        if let Err(e) = r {
            // What was written is in the state returned with the error, so nothing is lost.
            ctx.diags.error("Cannot write the partitions", e);
        }
        Some(plan)
    }

    async fn read_kubernetes(&self, mut state: Model, ctx: &mut Ctx) -> Model {
        let Some((client, api_server)) =
            crate::kube_connect(&self.config, crate::Reach::Refresh, &mut ctx.diags).await
        else {
            return state;
        };
        let mut kept = Vec::new();
        for p in std::mem::take(&mut state.partition) {
            match partitions::observe(&client, &p.spec(&state.name)).await {
                // A deleted namespace drops the partition from state: the plan creates it again.
                Ok(None) => {}
                Ok(Some(seen)) => kept.push(PartitionBlock {
                    gpus: seen.gpus,
                    cpu: same_quantity(p.cpu.clone(), seen.cpu),
                    memory: same_quantity(p.memory.clone(), seen.memory),
                    ..p
                }),
                Err(e) => {
                    ctx.diags.warning("Cannot read a partition", e);
                    kept.push(p);
                }
            }
        }
        state.partition = kept;
        match partitions::inventory(&client).await {
            Ok(inv) => fill_kubernetes(&mut state, inv, api_server),
            Err(e) => ctx.diags.warning("No node inventory", e),
        }
        state
    }
}

/// The API server writes quantities its own way (`0.5` comes back as `500m`): the declared
/// text is kept while the values are equal, so only a real change shows in the plan.
fn same_quantity(declared: Option<String>, seen: Option<String>) -> Option<String> {
    match (&declared, &seen) {
        (Some(d), Some(s))
            if k8s::quantity(d).is_some() && k8s::quantity(d) == k8s::quantity(s) =>
        {
            declared
        }
        _ => seen,
    }
}

fn fill_kubernetes(m: &mut Model, inv: partitions::Inventory, api_server: String) {
    m.id = Attr::Known(format!("{}/{}", m.platform, m.name));
    m.hostname = Attr::Known(api_server);
    m.cpus = Attr::Known(inv.cpus);
    m.memory_bytes = Attr::Known(inv.memory_bytes);
    m.gpus = Attr::Known(Vec::new());
    m.nodes = Attr::Known(inv.nodes);
}

#[cfg(test)]
mod tests {
    use super::same_quantity;

    #[test]
    fn quantities_written_differently_are_not_drift() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(same_quantity(s("0.5"), s("500m")), s("0.5"));
        assert_eq!(same_quantity(s("64Gi"), s("64Gi")), s("64Gi"));
        assert_eq!(same_quantity(s("1Gi"), s("1024Mi")), s("1Gi"));
        assert_eq!(same_quantity(s("2"), s("4")), s("4"));
        assert_eq!(same_quantity(None, s("4")), s("4"));
        assert_eq!(same_quantity(s("4"), None), None);
    }
}
