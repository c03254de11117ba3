//! `modelplane_gpu_cluster`: the compute endpoints run on. On `local` it is this machine:
//! its inventory (CPUs, memory, GPUs through NVML) is computed, and one `node_pool` is
//! accepted for parity with the cloud platforms. On `container` it is this host's container
//! engine (podman or docker), with the same inventory plus the engine and its version.

use serde::{Deserialize, Serialize};
use tfplugin::{
    Attr, Attribute, AttributePath, Block, Config, Ctx, Diagnostics, NestedBlock, Nesting,
    PathStep, Schema, Type,
};

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
                 GPUs given through CDI (podman) or `--gpus` (docker). Endpoints name the cluster by its `id` \
                 (`PLATFORM/NAME`).",
            )
            .attribute(Attribute::new("id", Type::String).computed().stable().description("`PLATFORM/NAME`, e.g. `local/inference`."))
            .attribute(Attribute::new("name", Type::String).required().requires_replace().description("Cluster name: letters, digits, `.`, `_`, `-`."))
            .attribute(
                Attribute::new("platform", Type::String)
                    .required()
                    .requires_replace()
                    .description("Where the cluster is: `local` (this machine) or `container` (this host's podman or docker); `kubernetes`, `aws` and `azure` are refused by this version."),
            )
            .attribute(Attribute::new("engine", Type::String).optional_computed().requires_replace().description("On `container`: the engine, `podman` or `docker` (a name on PATH or a path). Default: the first of them on PATH. Null on `local`."))
            .attribute(Attribute::new("engine_version", Type::String).computed().description("On `container`: the engine's version (docker's daemon version: a stopped daemon is an error)."))
            .block(node_pool_block());
        for a in platforms::local::inventory_attributes() {
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
        _prior: Option<&Model>,
        plan: &mut Model,
        _config: &Config,
        _ctx: &mut Ctx,
    ) {
        // Known at plan time, so endpoints can be planned against a new cluster.
        plan.id = Attr::Known(format!("{}/{}", plan.platform, plan.name));
        if plan.platform != "container" {
            plan.engine = Attr::Null;
            plan.engine_version = Attr::Null;
        }
    }

    async fn create(&self, mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
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

    async fn update(&self, _prior: Model, plan: Model, ctx: &mut Ctx) -> Option<Model> {
        self.create(plan, ctx).await
    }

    async fn delete(&self, state: Model, _ctx: &mut Ctx) {
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
        Some(Model {
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
        })
    }
}
