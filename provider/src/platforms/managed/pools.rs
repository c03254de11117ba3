//! Node pools on the clouds that make them (EKS node groups, AKS agent pools): the labels and
//! taints the provider gives a pool's nodes, their sizes, what the state records, and the wait
//! until GPU nodes advertise their GPUs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use tfplugin::{Attr, AttributePath, Config, Diagnostics};

use crate::platforms::kubernetes::{Kubernetes, GPU_RESOURCE};
use crate::platforms::{NodeGroupSeen, NodePoolSpec, PlatformError, Taint};

/// The label every node of a pool carries: the pool's name.
pub const LABEL_POOL: &str = "modelplane.io/node-pool";
/// The label every node of a pool carries: the pool's purpose.
pub const LABEL_PURPOSE: &str = "modelplane.io/purpose";
/// The label of a GPU node (as GPU feature discovery sets it); the device plugin runs there.
pub const LABEL_GPU_PRESENT: &str = "nvidia.com/gpu.present";
/// The label of a GPU node whose GPUs are time-sliced: how many pods share one GPU.
pub const LABEL_GPU_SHARING: &str = "modelplane.io/gpu-sharing";

/// The taint GPU pools get unless they declare their own: only pods that ask for GPUs land
/// there.
pub fn gpu_taint() -> Taint {
    Taint {
        key: "nvidia.com/gpu".into(),
        value: Some("true".into()),
        effect: "NoSchedule".into(),
    }
}

/// The labels a pool's nodes carry: the declared ones, and the provider's.
pub fn labels(pool: &NodePoolSpec, gpu: bool) -> BTreeMap<String, String> {
    let mut l = pool.labels.clone();
    l.insert(LABEL_POOL.into(), pool.name.clone());
    l.insert(LABEL_PURPOSE.into(), pool.purpose.clone());
    if gpu {
        l.insert(LABEL_GPU_PRESENT.into(), "true".into());
        if let Some(n) = pool.gpu_sharing.filter(|n| *n > 1) {
            l.insert(LABEL_GPU_SHARING.into(), n.to_string());
        }
    }
    l
}

/// The taints a pool's nodes carry: the declared ones; a GPU pool that declares none gets
/// `nvidia.com/gpu=true:NoSchedule`.
pub fn taints(pool: &NodePoolSpec, gpu: bool) -> Vec<Taint> {
    if pool.taints.is_empty() && gpu {
        vec![gpu_taint()]
    } else {
        let mut t = pool.taints.clone();
        t.sort();
        t
    }
}

/// A pool's sizes `(min, max, desired)` for a create (`current` is `None`) or an
/// update (`current` is the node group's desired size now). A declared desired size is
/// honoured; an undeclared one starts at `min` and afterwards stays where the autoscaler left
/// it; either is clamped into `[min, max]`.
pub fn scaling(pool: &NodePoolSpec, current: Option<i64>) -> (i64, i64, i64) {
    let min = pool.min_size.unwrap_or(1).max(0);
    let max = pool.max_size.unwrap_or(min.max(1)).max(min).max(1);
    let desired = pool.desired_size.or(current).unwrap_or(min).clamp(min, max);
    (min, max, desired)
}

/// What a cluster's state records: the cloud objects created (`PREFIX:KIND/NAME`), and the
/// Kubernetes objects written.
#[derive(Clone, Debug, Default)]
pub struct Record {
    pub cloud: Vec<String>,
    pub kube: Vec<String>,
}

impl Record {
    /// Splits `objects` into the cloud's (those starting with `prefix`, e.g. `aws:`) and the
    /// Kubernetes ones.
    pub fn of(objects: &[String], prefix: &str) -> Self {
        let (cloud, kube) = objects.iter().cloned().partition(|o| o.starts_with(prefix));
        Record { cloud, kube }
    }
    pub fn push(&mut self, entry: String) {
        if !self.cloud.contains(&entry) {
            self.cloud.push(entry);
        }
    }
    pub fn remove(&mut self, entry: &str) {
        self.cloud.retain(|e| e != entry);
    }
    pub fn has(&self, entry: &str) -> bool {
        self.cloud.iter().any(|e| e == entry)
    }
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.cloud
            .iter()
            .filter_map(move |e| e.strip_prefix(prefix))
    }
    pub fn all(&self) -> Vec<String> {
        self.cloud.iter().chain(&self.kube).cloned().collect()
    }
}

/// A GPU pool to wait for: its name, how many nodes it wants, and why it may lack GPUs (for
/// the error: the AMI type, the VM size).
pub struct GpuPool {
    pub name: String,
    pub want: i64,
    pub hint: String,
}

/// Waits until each GPU pool has as many nodes (labelled [`LABEL_POOL`]) advertising
/// `nvidia.com/gpu` as it wants; after `deadline`, fails naming each pool's shortfall.
pub async fn wait_gpus(
    kube: &Kubernetes,
    pools: &[GpuPool],
    deadline: Instant,
    poll: Duration,
) -> Result<(), PlatformError> {
    let (client, _) = kube.connect().await?;
    let nodes: Api<Node> = Api::all(client);
    loop {
        let mut waiting = Vec::new();
        for pool in pools {
            if pool.want == 0 {
                continue;
            }
            let list = nodes
                .list(&ListParams::default().labels(&format!("{LABEL_POOL}={}", pool.name)))
                .await
                .map_err(|e| {
                    PlatformError::Failed(format!(
                        "cannot list the nodes of node pool {:?}: {e}",
                        pool.name
                    ))
                })?;
            let joined = list.items.len() as i64;
            let with_gpus = list
                .items
                .iter()
                .filter(|n| {
                    n.status
                        .as_ref()
                        .and_then(|s| s.allocatable.as_ref())
                        .and_then(|a| a.get(GPU_RESOURCE))
                        .and_then(|q| q.0.parse::<i64>().ok())
                        .is_some_and(|g| g > 0)
                })
                .count() as i64;
            if with_gpus < pool.want {
                waiting.push((pool, joined, with_gpus));
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let why: Vec<String> = waiting
                .iter()
                .map(|(pool, joined, gpus)| {
                    let (name, want) = (&pool.name, pool.want);
                    if *joined < want && gpus == joined {
                        format!("node pool {name:?}: {joined} of {want} node(s) have joined the cluster; {}", pool.hint)
                    } else {
                        format!("node pool {name:?}: {joined} node(s) joined, {gpus} advertise {GPU_RESOURCE} (wanted {want}); the NVIDIA device plugin is not running there or the driver is missing: check the device plugin's pods in {} and {}", super::device_plugin::NAMESPACE, pool.hint)
                    }
                })
                .collect();
            return Err(PlatformError::Failed(format!(
                "the GPU nodes are not schedulable after the timeout: {}",
                why.join("; ")
            )));
        }
        tokio::time::sleep(poll).await;
    }
}

/// The node pools of a cluster as its node groups (or agent pools) are, for the state after an
/// import.
pub fn pools_of(groups: &[NodeGroupSeen]) -> Vec<NodePoolSpec> {
    groups
        .iter()
        .map(|g| {
            let mut labels: BTreeMap<String, String> = g.labels.clone();
            let purpose = labels
                .remove(LABEL_PURPOSE)
                .unwrap_or_else(|| "inference".into());
            labels.remove(LABEL_POOL);
            let gpu = labels.remove(LABEL_GPU_PRESENT).is_some();
            let sharing = labels
                .remove(LABEL_GPU_SHARING)
                .and_then(|n| n.parse().ok());
            let taints = if gpu && g.taints == vec![gpu_taint()] {
                Vec::new()
            } else {
                g.taints.clone()
            };
            NodePoolSpec {
                name: g.name.clone(),
                purpose,
                instance_types: g.instance_types.clone(),
                gpu_count: None,
                gpu_type: None,
                min_size: Some(g.min_size),
                max_size: Some(g.max_size),
                desired_size: Some(g.desired_size),
                // EKS says `SPOT`, AKS `Spot`.
                spot: g.capacity_type.eq_ignore_ascii_case("spot"),
                labels,
                taints,
                gpu_sharing: sharing,
                gpu_instance: None,
                gpu_driver: None,
                spot_max_price: None,
            }
        })
        .collect()
}

/// Plan-time check of a `node_pool`'s `desired_size` against its `min_size` and `max_size`
/// (`at` names an attribute of the pool).
pub fn validate_desired(
    pool: &Config,
    at: &dyn Fn(&str) -> AttributePath,
    diags: &mut Diagnostics,
) {
    if let (Attr::Known(d), min, max) = (
        pool.get::<i64>("desired_size", diags),
        pool.get::<i64>("min_size", diags),
        pool.get::<i64>("max_size", diags),
    ) {
        let min = min.known().copied().unwrap_or(1);
        let max = max.known().copied().unwrap_or(min.max(1));
        if d < min || d > max {
            diags.error_at(
                at("desired_size"),
                "Invalid node pool size",
                format!(
                    "desired_size ({d}) must be between min_size ({min}) and max_size ({max})."
                ),
            );
        }
    }
}
