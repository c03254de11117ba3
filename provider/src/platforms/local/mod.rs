//! The `local` platform: this machine. Inventory comes from the OS and NVML (loaded at run
//! time: no driver means no GPUs, not an error); endpoints run as supervised server
//! processes ([`process`], [`server`], [`endpoint`]). The `container` platform runs its
//! endpoints through the same lifecycle, as containers.

pub mod endpoint;
pub mod inventory;
pub mod process;
pub mod server;

use tfplugin::{Attr, AttributePath, Config, Diagnostics, PathStep};

pub use endpoint::Host;
pub use inventory::{inventory, inventory_attributes, Gpu, Inventory};

use crate::ids::ClusterId;
use crate::platforms::{
    ClusterFacts, ClusterPlan, ClusterSpec, EndpointPlan, MonitorHost, PartitionSeen, PlatformError,
};
use crate::ProviderConfig;

/// The `local` platform of one cluster: this machine, endpoints as processes.
pub struct Local {
    pub host: Host,
}

/// The `local` platform of a cluster.
pub fn host(cluster: ClusterId, config: &ProviderConfig) -> Local {
    Local {
        host: Host {
            cluster,
            state_dir: config.state_dir(),
            runs: endpoint::Runs::Process,
            server_env: config.server_env(),
            server_program: None,
        },
    }
}

/// Reads the inventory off the async runtime (NVML initialisation takes a moment).
pub async fn inventory_async() -> Inventory {
    tokio::task::spawn_blocking(inventory)
        .await
        .unwrap_or_else(|_| Inventory {
            hostname: String::new(),
            cpus: 1,
            memory_bytes: 0,
            gpus: Vec::new(),
        })
}

impl Host {
    fn here(&self) -> &'static str {
        self.cluster.platform.as_str()
    }

    /// This machine's inventory, checked against the GPUs the node pools ask for.
    pub(crate) async fn this_machine(
        &self,
        spec: &ClusterSpec,
    ) -> Result<ClusterFacts, PlatformError> {
        let inv = inventory_async().await;
        for (i, pool) in spec.pools.iter().enumerate() {
            if let Some(want) = &pool.gpu_count {
                if *want as usize > inv.gpus.len() {
                    return Err(PlatformError::Refused {
                        attribute: Some(AttributePath(vec![
                            PathStep::Attr("node_pool".into()),
                            PathStep::Index(i as i64),
                            PathStep::Attr("gpu_count".into()),
                        ])),
                        summary: "Not enough GPUs".into(),
                        message: format!(
                            "node_pool {:?} asks for {want} GPU(s), but NVML finds {} on this machine{}. Lower gpu_count or run on a machine with GPUs.",
                            pool.name,
                            inv.gpus.len(),
                            if inv.gpus.is_empty() { " (no NVIDIA driver or no GPU)" } else { "" }
                        ),
                    });
                }
            }
        }
        Ok(crate::platforms::this_machine(inv))
    }

    /// Checks shared by the platforms of this one machine.
    pub(crate) fn validate_host_cluster(&self, config: &Config, diags: &mut Diagnostics) {
        let p = self.here();
        crate::platforms::not_used_here(
            config,
            "partition",
            "this platform",
            &format!("partition blocks divide a Kubernetes cluster; the {p} platform has none. Remove them, or set platform = \"kubernetes\"."),
            diags,
        );
        crate::platforms::cloud_blocks_not_used(config, p, diags);
        let pools = config.elements("node_pool");
        if pools.len() > 1 {
            diags.error_at(
                AttributePath::attr("node_pool"),
                "Too many node pools",
                format!("the {p} platform is this one machine and takes at most one node_pool; {} are declared.", pools.len()),
            );
        }
    }

    pub(crate) fn plan_host_endpoint(&self, prior: Option<&EndpointPlan>, plan: &mut EndpointPlan) {
        let containers = self.runs == endpoint::Runs::Container;
        plan.objects = Attr::Null;
        match prior {
            None => {
                plan.running_image = if containers {
                    Attr::Unknown
                } else {
                    Attr::Null
                };
                let dir = self.dir(&plan.name);
                plan.state_path = Attr::Known(dir.0.display().to_string());
                plan.token_file = Attr::Known(dir.path("token").display().to_string());
                if let Attr::Known(p) = plan.port {
                    plan.url = Attr::Known(endpoint::url_of(p));
                }
                if let Attr::Known(p) = plan.grpc_port {
                    plan.grpc_address = Attr::Known(format!("127.0.0.1:{p}"));
                }
            }
            Some(prior) => {
                if plan.port != prior.port {
                    plan.url = plan.port.clone().map(endpoint::url_of);
                }
                if plan.grpc_port != prior.grpc_port {
                    plan.grpc_address = plan.grpc_port.clone().map(|p| format!("127.0.0.1:{p}"));
                }
                if containers && (plan.image != prior.image || !prior.serving) {
                    plan.running_image = Attr::Unknown;
                }
            }
        }
    }
}

/// The endpoint side of the `Platform` trait for a platform whose endpoints run on this host
/// through [`Host`]; `local` and `container` differ in how servers start, not in this.
macro_rules! host_platform {
    ($ty:ty, { $($items:tt)* }) => {
    #[tfplugin::async_trait]
    impl crate::platforms::Platform for $ty {
        $($items)*

        fn cluster(&self) -> &crate::ids::ClusterId {
            &self.host.cluster
        }

        fn plan_endpoint(
            &self,
            prior: Option<&crate::platforms::EndpointPlan>,
            plan: &mut crate::platforms::EndpointPlan,
            _config: &tfplugin::Config,
            _diags: &mut tfplugin::Diagnostics,
        ) {
            self.host.plan_host_endpoint(prior, plan)
        }

        async fn claimed(&self, name: &str) -> Option<String> {
            self.host.claimed(name).await
        }

        async fn endpoint_token(
            &self,
            name: &str,
            _recorded: &crate::platforms::Deployment,
        ) -> Option<String> {
            self.host.token(name)
        }

        async fn deploy(
            &self,
            spec: &crate::platforms::EndpointSpec,
            previous: Option<&crate::platforms::Previous>,
            ctx: &mut tfplugin::Ctx,
        ) -> crate::platforms::rollout::Rollout {
            self.host.deploy(spec, previous, ctx).await
        }

        async fn record(&self, name: &str, record: &serde_json::Value) {
            self.host.record(name, record).await
        }

        async fn observe_endpoint(
            &self,
            name: &str,
            recorded: &crate::platforms::Deployment,
        ) -> Result<crate::platforms::Observed, crate::platforms::PlatformError> {
            self.host.observe(name, recorded).await
        }

        async fn remove_endpoint(
            &self,
            name: &str,
            _recorded: &crate::platforms::Deployment,
        ) -> Result<(), crate::platforms::PlatformError> {
            self.host.remove(name).await
        }

        async fn import_endpoint(
            &self,
            name: &str,
        ) -> Result<crate::platforms::Imported, crate::platforms::PlatformError> {
            self.host.import(name).await
        }
    }
    };
}
pub(crate) use host_platform;

host_platform!(Local, {
    fn validate_cluster(&self, config: &Config, diags: &mut Diagnostics) {
        if !config.get::<String>("engine", diags).is_null() {
            diags.error_at(
                AttributePath::attr("engine"),
                "Not used on local",
                "engine applies to container clusters; remove it, or set platform = \"container\".",
            );
        }
        self.host.validate_host_cluster(config, diags);
    }

    fn plan_cluster(&self, plan: ClusterPlan<'_>) {
        *plan.nodes = Attr::Null;
        *plan.objects = Attr::Null;
        *plan.engine = Attr::Null;
        *plan.engine_version = Attr::Null;
    }

    async fn converge_cluster(
        &self,
        spec: &ClusterSpec,
        _before: &[String],
        _diags: &mut Diagnostics,
    ) -> Result<ClusterFacts, (PlatformError, Option<ClusterFacts>)> {
        self.host.this_machine(spec).await.map_err(|e| (e, None))
    }

    async fn observe_cluster(
        &self,
        _spec: &ClusterSpec,
        _diags: &mut Diagnostics,
    ) -> Result<(Option<ClusterFacts>, Vec<PartitionSeen>), PlatformError> {
        let machine = crate::platforms::this_machine(inventory_async().await);
        Ok((Some(machine), Vec::new()))
    }

    fn validate_endpoint(&self, config: &Config, diags: &mut Diagnostics) {
        if !config.get::<String>("image", diags).is_null() {
            diags.error_at(AttributePath::attr("image"), "Not used on local", "a local cluster runs the server the provider carries; image applies to container clusters. Remove it, or run the endpoint on a container cluster.");
        }
        crate::platforms::not_used_here(
            config,
            "container",
            "local",
            "the container block applies to container clusters; remove it for a local cluster.",
            diags,
        );
        crate::platforms::kubernetes::endpoint::refuse_block(config, diags);
        crate::platforms::aws::irsa::refuse_block(config, "local", diags);
        crate::platforms::azure::identity::refuse_block(config, "local", diags);
    }

    fn monitor_host(&self) -> MonitorHost {
        MonitorHost::ThisMachine
    }
});
