//! The `container` platform: this host's engine as a cluster; endpoints through the host
//! lifecycle of `local`, as containers.

use std::path::Path;

use tfplugin::{Attr, AttributePath, Config, Diagnostics};

use crate::ids::ClusterId;
use crate::platforms::local::{endpoint::Runs, Host};
use crate::platforms::{ClusterFacts, ClusterSpec, PlatformError};
use crate::ProviderConfig;

use super::{write_record, ClusterRecord, Engine, ENGINES};

/// The `container` platform of a cluster.
pub fn host(cluster: ClusterId, config: &ProviderConfig) -> Host {
    Host {
        cluster,
        state_dir: config.state_dir(),
        runs: Runs::Container,
        server_env: Vec::new(),
    }
}

pub(crate) fn validate_cluster(host: &Host, config: &Config, diags: &mut Diagnostics) {
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
pub(crate) async fn converge(host: &Host, spec: &ClusterSpec) -> Result<ClusterFacts, PlatformError> {
    let refused = |summary: &str, message: String| PlatformError::Refused {
        attribute: Some(AttributePath::attr("engine")),
        summary: summary.into(),
        message,
    };
    let engine = Engine::find(spec.engine.as_deref()).map_err(|e| refused("No container engine", e))?;
    let version = engine
        .version()
        .await
        .map_err(|e| refused("The container engine does not answer", e))?;
    let program = engine.program.clone();
    write_record(&host.state_dir, &host.cluster.name, &ClusterRecord { engine }).map_err(|e| {
        PlatformError::Refused {
            attribute: None,
            summary: "Cannot record the cluster".into(),
            message: e.to_string(),
        }
    })?;
    Ok(ClusterFacts {
        engine: Some(program),
        engine_version: Some(version),
        ..Default::default()
    })
}

/// The engine and its version as refresh finds them (warnings when it does not answer).
pub(crate) async fn observe(
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
            let _ = write_record(&host.state_dir, &host.cluster.name, &ClusterRecord { engine });
            Some((program, version))
        }
        Err(e) => {
            diags.warning("No container engine", e);
            None
        }
    }
}

pub(crate) fn validate_endpoint(config: &Config, diags: &mut Diagnostics) {
    if config.get::<String>("image", diags).is_null() {
        diags.error_at(AttributePath::attr("image"), "Missing image", "endpoints on a container cluster run an image: set image = modelplane_serving_image.NAME.reference (or another reference to the modelplane-serve image).");
    }
    crate::platforms::kubernetes::endpoint::refuse_block(config, diags);
}
