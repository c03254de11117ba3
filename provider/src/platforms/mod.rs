//! Platforms: where clusters and endpoints run. A cluster ID is `PLATFORM/NAME`, so every
//! resource that takes a `cluster` knows the platform from the ID alone.
//!
//! | platform | module | status |
//! |---|---|---|
//! | `local` | [`local`] | this machine: endpoints are supervised server processes |
//! | `container` | [`container`] | this host's podman or docker: endpoints are containers of the bundled image |
//! | `kubernetes` | [`kubernetes`] | an existing cluster: GPU partitions, endpoints as Deployments |
//! | `aws`, `azure` | — | not in this version; refused at plan with a clear error |

pub mod container;
pub mod kubernetes;
pub mod local;

/// Every platform name the schema accepts.
pub const ALL: &[&str] = &["local", "container", "kubernetes", "aws", "azure"];
/// The platforms this version can manage.
pub const AVAILABLE: &[&str] = &["local", "container", "kubernetes"];

/// Why a platform cannot be used, or `None` when it can.
pub fn unavailable(platform: &str) -> Option<String> {
    if AVAILABLE.contains(&platform) {
        return None;
    }
    if ALL.contains(&platform) {
        return Some(format!(
            "platform {platform:?} is not available in this version of the provider; available: {}",
            AVAILABLE
                .iter()
                .map(|p| format!("{p:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Some(format!(
        "unknown platform {platform:?}; use one of {}",
        ALL.iter()
            .map(|p| format!("{p:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Splits a cluster ID (`PLATFORM/NAME`).
pub fn parse_cluster_id(id: &str) -> Result<(String, String), String> {
    match id.split_once('/') {
        Some((p, n)) if !p.is_empty() && !n.is_empty() && !n.contains('/') => Ok((p.to_string(), n.to_string())),
        _ => Err(format!("{id:?} is not a cluster ID; use the `id` of a modelplane_gpu_cluster (PLATFORM/NAME, e.g. \"local/inference\")")),
    }
}
