//! The `container` platform: this host's engine as a cluster; endpoints through the host
//! lifecycle of `local`, as containers.

use std::path::Path;

use tfplugin::{Attr, AttributePath, Config, Diagnostics};

use crate::ids::ClusterId;
use crate::platforms::local::{endpoint::Runs, host_platform, inventory_async, Host};
use crate::platforms::{
    ClusterFacts, ClusterPlan, ClusterSpec, MonitorHost, PartitionSeen, PlatformError,
};
use crate::ProviderConfig;

use super::{write_record, ClusterRecord, Engine, ENGINES};

/// The `container` platform of one cluster: this host's engine, endpoints as containers.
pub struct Container {
    pub host: Host,
}

/// The `container` platform of a cluster.
pub fn host(cluster: ClusterId, config: &ProviderConfig) -> Container {
    Container {
        host: Host {
            cluster,
            state_dir: config.state_dir(),
            runs: Runs::Container,
            server_env: Vec::new(),
            server_program: None,
        },
    }
}

fn validate_cluster(host: &Host, config: &Config, diags: &mut Diagnostics) {
    if let Attr::Known(e) = config.get::<String>("engine", diags) {
        let name = Path::new(&e)
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("");
        if !ENGINES.iter().any(|k| name.contains(k)) {
            diags.error_at(
                AttributePath::attr("engine"),
                "Unknown container engine",
                format!("engine {e:?} is neither podman nor docker; use \"podman\" or \"docker\" (or a path to one)."),
            );
        }
    }
    host.validate_host_cluster(config, diags);
}

/// Finds the engine, asks its version and records it for the cluster's endpoints.
async fn converge(host: &Host, spec: &ClusterSpec) -> Result<ClusterFacts, PlatformError> {
    let refused = |summary: &str, message: String| PlatformError::Refused {
        attribute: Some(AttributePath::attr("engine")),
        summary: summary.into(),
        message,
    };
    let engine =
        Engine::find(spec.engine.as_deref()).map_err(|e| refused("No container engine", e))?;
    let version = engine
        .version()
        .await
        .map_err(|e| refused("The container engine does not answer", e))?;
    let program = engine.program.clone();
    write_record(
        &host.state_dir,
        &host.cluster.name,
        &ClusterRecord { engine },
    )
    .map_err(|e| PlatformError::Refused {
        attribute: None,
        summary: "Cannot record the cluster".into(),
        message: e.to_string(),
    })?;
    Ok(ClusterFacts {
        engine: Some(program),
        engine_version: Some(version),
        ..Default::default()
    })
}

/// The engine and its version as refresh finds them (warnings when it does not answer).
async fn observe(
    host: &Host,
    spec: &ClusterSpec,
    diags: &mut Diagnostics,
) -> Option<(String, Option<String>)> {
    match Engine::find(spec.engine.as_deref()) {
        Ok(engine) => {
            let version = match engine.version().await {
                Ok(v) => Some(v),
                Err(e) => {
                    diags.warning("The container engine does not answer", e);
                    None
                }
            };
            let program = engine.program.clone();
            let _ = write_record(
                &host.state_dir,
                &host.cluster.name,
                &ClusterRecord { engine },
            );
            Some((program, version))
        }
        Err(e) => {
            diags.warning("No container engine", e);
            None
        }
    }
}

fn validate_endpoint(config: &Config, diags: &mut Diagnostics) {
    if config.get::<String>("image", diags).is_null() {
        diags.error_at(AttributePath::attr("image"), "Missing image", "endpoints on a container cluster run an image: set image = modelplane_serving_image.NAME.reference (or another reference to the modelplane-serve image).");
    }
    crate::platforms::kubernetes::endpoint::refuse_block(config, diags);
    crate::platforms::aws::irsa::refuse_block(config, "container", diags);
    crate::platforms::azure::identity::refuse_block(config, "container", diags);
}

host_platform!(Container, {
    fn validate_cluster(&self, config: &Config, diags: &mut Diagnostics) {
        validate_cluster(&self.host, config, diags)
    }

    fn plan_cluster(&self, plan: ClusterPlan<'_>) {
        *plan.nodes = Attr::Null;
        *plan.objects = Attr::Null;
    }

    async fn converge_cluster(
        &self,
        spec: &ClusterSpec,
        _before: &[String],
        _diags: &mut Diagnostics,
    ) -> Result<ClusterFacts, (PlatformError, Option<ClusterFacts>)> {
        let engine = converge(&self.host, spec).await.map_err(|e| (e, None))?;
        let machine = self.host.this_machine(spec).await.map_err(|e| (e, None))?;
        Ok(ClusterFacts {
            engine: engine.engine,
            engine_version: engine.engine_version,
            ..machine
        })
    }

    async fn observe_cluster(
        &self,
        spec: &ClusterSpec,
        diags: &mut Diagnostics,
    ) -> Result<(Option<ClusterFacts>, Vec<PartitionSeen>), PlatformError> {
        let engine = observe(&self.host, spec, diags).await;
        let machine = crate::platforms::this_machine(inventory_async().await);
        let facts = match engine {
            Some((program, version)) => ClusterFacts {
                engine: Some(program),
                engine_version: version,
                ..machine
            },
            None => machine,
        };
        Ok((Some(facts), Vec::new()))
    }

    async fn remove_cluster(
        &self,
        _objects: Option<&Vec<String>>,
        _timeout: std::time::Duration,
    ) -> Result<(), PlatformError> {
        super::remove_record(&self.host.state_dir, &self.host.cluster.name);
        Ok(())
    }

    fn validate_endpoint(&self, config: &Config, diags: &mut Diagnostics) {
        validate_endpoint(config, diags)
    }

    fn monitor_host(&self) -> MonitorHost {
        MonitorHost::Unsupported
    }
});
