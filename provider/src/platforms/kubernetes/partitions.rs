//! GPU partitions of a Kubernetes cluster: one per purpose (`dev`, `training`, `inference`),
//! each a namespace with a ResourceQuota on `nvidia.com/gpu` (and CPU and memory), a
//! LimitRange, a PriorityClass, and the node selection and tolerations its pods get.
//!
//! The scheduling of a partition is written on its namespace (annotation
//! `modelplane.io/scheduling`), so endpoints find it from the cluster itself, wherever
//! Terraform runs.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{quantity, Rendered, GPU_RESOURCE, LABEL_CLUSTER, LABEL_PURPOSE};

/// The annotation on a partition namespace with its [`Scheduling`].
pub const SCHEDULING_ANNOTATION: &str = "modelplane.io/scheduling";

/// Taints that spot capacity carries on the managed platforms, tolerated by `spot = true`.
pub const SPOT_TAINTS: &[(&str, &str)] = &[
    ("kubernetes.azure.com/scalesetpriority", "spot"),
    ("eks.amazonaws.com/capacityType", "SPOT"),
    ("cloud.google.com/gke-spot", "true"),
    ("modelplane.io/spot", "true"),
];

/// A toleration, as Kubernetes has it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Toleration {
    pub key: String,
    /// `Exists` (default when `value` is empty) or `Equal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule`, `NoExecute`, or empty for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
}

/// The purposes a partition (and a node pool) can have.
pub const PURPOSES: &[&str] = &["dev", "training", "inference"];

/// A partition as the configuration declares it.
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    pub purpose: String,
    pub namespace: String,
    pub gpus: i64,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub max_gpus_per_pod: Option<i64>,
    pub priority: i64,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    pub spot: bool,
}

/// What pods in a partition get: written on the namespace, read by endpoints.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Scheduling {
    pub priority_class: String,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
}

/// The default priority of a purpose: inference preempts training preempts dev.
pub fn default_priority(purpose: &str) -> i64 {
    match purpose {
        "inference" => 100_000,
        "training" => 10_000,
        _ => 1_000,
    }
}

/// The PriorityClass of a cluster's partition.
pub fn priority_class_name(cluster: &str, purpose: &str) -> String {
    super::dns_label(&format!("modelplane-{cluster}-{purpose}"))
}

impl Partition {
    /// The tolerations its pods get: the GPU taint GPU node pools carry, spot taints when
    /// `spot`, then the declared ones.
    pub fn all_tolerations(&self) -> Vec<Toleration> {
        let mut out = vec![Toleration {
            key: GPU_RESOURCE.into(),
            operator: Some("Exists".into()),
            value: None,
            effect: Some("NoSchedule".into()),
        }];
        if self.spot {
            for (k, v) in SPOT_TAINTS {
                out.push(Toleration {
                    key: k.to_string(),
                    operator: Some("Equal".into()),
                    value: Some(v.to_string()),
                    effect: Some("NoSchedule".into()),
                });
            }
        }
        for t in &self.tolerations {
            if !out.contains(t) {
                out.push(t.clone());
            }
        }
        out
    }

    pub fn scheduling(&self, cluster: &str) -> Scheduling {
        Scheduling {
            priority_class: priority_class_name(cluster, &self.purpose),
            node_selector: self.node_selector.clone(),
            tolerations: self.all_tolerations(),
        }
    }

    /// The objects of the partition: PriorityClass, Namespace, ResourceQuota, LimitRange.
    pub fn render(&self, cluster: &str) -> Vec<Rendered> {
        let labels = json!({ LABEL_CLUSTER: cluster, LABEL_PURPOSE: self.purpose });
        let sched = self.scheduling(cluster);
        let mut hard = serde_json::Map::new();
        hard.insert(
            format!("requests.{GPU_RESOURCE}"),
            json!(self.gpus.to_string()),
        );
        if let Some(c) = &self.cpu {
            hard.insert("requests.cpu".into(), json!(c));
            hard.insert("limits.cpu".into(), json!(c));
        }
        if let Some(m) = &self.memory {
            hard.insert("requests.memory".into(), json!(m));
            hard.insert("limits.memory".into(), json!(m));
        }
        let mut max = serde_json::Map::new();
        let per_pod = self.max_gpus_per_pod.unwrap_or(self.gpus);
        max.insert(GPU_RESOURCE.into(), json!(per_pod.to_string()));
        let description = format!("Modelplane {} partition of cluster {cluster}", self.purpose);
        vec![
            json!({
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": { "name": sched.priority_class, "labels": labels },
                "value": self.priority,
                "globalDefault": false,
                // Dev work waits for room; training and inference may preempt lower priorities.
                "preemptionPolicy": if self.purpose == "dev" { "Never" } else { "PreemptLowerPriority" },
                "description": description,
            }),
            json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": self.namespace,
                    "labels": {
                        LABEL_CLUSTER: cluster,
                        LABEL_PURPOSE: self.purpose,
                        // Pod Security admission: what endpoints run passes "restricted".
                        "pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/enforce-version": "latest",
                    },
                    "annotations": {
                        SCHEDULING_ANNOTATION: serde_json::to_string(&sched).unwrap_or_default(),
                        "openshift.io/node-selector": selector_string(&self.node_selector),
                    },
                },
            }),
            json!({
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": { "name": "gpu-quota", "namespace": self.namespace, "labels": labels },
                "spec": { "hard": hard },
            }),
            json!({
                "apiVersion": "v1",
                "kind": "LimitRange",
                "metadata": { "name": "defaults", "namespace": self.namespace, "labels": labels },
                "spec": { "limits": [{
                    "type": "Container",
                    // Containers that declare nothing still count against the quota.
                    "defaultRequest": { "cpu": "100m", "memory": "128Mi" },
                    "default": { "cpu": "1", "memory": "1Gi" },
                    "max": max,
                }]},
            }),
        ]
    }
}

fn selector_string(s: &BTreeMap<String, String>) -> String {
    s.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The partition namespace of `cluster` for `purpose`, and its scheduling.
pub async fn find(
    client: &kube::Client,
    cluster: &str,
    purpose: &str,
) -> Result<(String, Scheduling), String> {
    let api: Api<Namespace> = Api::all(client.clone());
    let lp = ListParams::default().labels(&format!(
        "{LABEL_CLUSTER}={cluster},{LABEL_PURPOSE}={purpose}"
    ));
    let list = api
        .list(&lp)
        .await
        .map_err(|e| format!("cannot list namespaces: {e}"))?;
    let ns = list.items.into_iter().next().ok_or_else(|| {
        format!("cluster {cluster:?} has no {purpose} partition; add partition {{ purpose = \"{purpose}\" }} to its modelplane_gpu_cluster, or set kubernetes.partition to one it has")
    })?;
    let name = ns.metadata.name.clone().unwrap_or_default();
    let sched = ns
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SCHEDULING_ANNOTATION))
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    Ok((name, sched))
}

/// What the cluster has now of a declared partition; `None` when its namespace is gone.
pub async fn observe(client: &kube::Client, p: &Partition) -> Result<Option<Partition>, String> {
    use k8s_openapi::api::core::v1::ResourceQuota;
    let ns: Api<Namespace> = Api::all(client.clone());
    match ns.get_opt(&p.namespace).await {
        Ok(Some(_)) => {}
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("cannot read namespace {}: {e}", p.namespace)),
    }
    let mut out = p.clone();
    let rq: Api<ResourceQuota> = Api::namespaced(client.clone(), &p.namespace);
    match rq.get_opt("gpu-quota").await {
        Ok(Some(q)) => {
            let hard = q.spec.and_then(|s| s.hard).unwrap_or_default();
            let get = |k: &str| hard.get(k).map(|q| q.0.clone());
            out.gpus = get(&format!("requests.{GPU_RESOURCE}"))
                .and_then(|g| g.parse().ok())
                .unwrap_or(-1);
            out.cpu = get("requests.cpu");
            out.memory = get("requests.memory");
        }
        // A deleted quota shows as a partition without GPUs, which the plan puts back.
        Ok(None) => out.gpus = -1,
        Err(e) => return Err(format!("cannot read the quota of {}: {e}", p.namespace)),
    }
    Ok(Some(out))
}

/// One node's GPUs, from what the device plugin advertises and the GPU feature discovery
/// labels (`nvidia.com/gpu.product`, `nvidia.com/gpu.memory`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NodeInventory {
    pub name: String,
    pub gpus: i64,
    pub product: Option<String>,
    pub memory_mib: Option<i64>,
    pub ready: bool,
    pub spot: bool,
    /// The node's labels, for matching partition node selectors.
    #[serde(skip)]
    pub labels: BTreeMap<String, String>,
}

/// The cluster's nodes and their totals: CPUs (allocatable cores, rounded down) and memory.
pub struct Inventory {
    pub nodes: Vec<NodeInventory>,
    pub cpus: i64,
    pub memory_bytes: i64,
}

impl Inventory {
    pub fn gpus(&self) -> i64 {
        self.nodes.iter().map(|n| n.gpus).sum()
    }
}

/// Lists nodes and reads their GPUs.
pub async fn inventory(client: &kube::Client) -> Result<Inventory, String> {
    let api: Api<Node> = Api::all(client.clone());
    let list = api.list(&ListParams::default()).await.map_err(|e| {
        format!("cannot list nodes: {e}. The credentials need get/list on nodes (a ClusterRole) for the inventory")
    })?;
    let mut inv = Inventory {
        nodes: Vec::new(),
        cpus: 0,
        memory_bytes: 0,
    };
    let mut cpus = 0.0;
    for n in list.items {
        let labels = n.metadata.labels.clone().unwrap_or_default();
        let status = n.status.unwrap_or_default();
        let alloc = status.allocatable.unwrap_or_default();
        let q = |k: &str| alloc.get(k).and_then(|v| quantity(&v.0));
        cpus += q("cpu").unwrap_or(0.0);
        inv.memory_bytes += q("memory").unwrap_or(0.0) as i64;
        let ready = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let spot = SPOT_TAINTS
            .iter()
            .any(|(k, v)| labels.get(*k).is_some_and(|l| l.eq_ignore_ascii_case(v)))
            || labels
                .get("karpenter.sh/capacity-type")
                .is_some_and(|v| v == "spot");
        inv.nodes.push(NodeInventory {
            name: n.metadata.name.unwrap_or_default(),
            gpus: q(GPU_RESOURCE).unwrap_or(0.0) as i64,
            product: labels.get("nvidia.com/gpu.product").cloned(),
            memory_mib: labels
                .get("nvidia.com/gpu.memory")
                .and_then(|m| m.parse().ok()),
            ready,
            spot,
            labels: labels.into_iter().collect(),
        });
    }
    inv.cpus = cpus.floor() as i64;
    inv.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(inv)
}

/// Warnings about partitions the nodes cannot hold.
pub fn capacity_warnings(inv: &Inventory, partitions: &[Partition]) -> Vec<String> {
    let mut out = Vec::new();
    let wanted: i64 = partitions.iter().map(|p| p.gpus).sum();
    let have = inv.gpus();
    if wanted > 0 && have == 0 {
        out.push(format!(
            "no node advertises {GPU_RESOURCE}: the partitions ask for {wanted} GPU(s), but pods that request GPUs will not schedule. Install the NVIDIA GPU operator or device plugin (it advertises {GPU_RESOURCE} on GPU nodes)."
        ));
    } else if wanted > have {
        out.push(format!(
            "the partitions ask for {wanted} GPU(s) in all, but the nodes advertise {have}; quotas beyond that cannot be used until nodes are added."
        ));
    }
    for p in partitions {
        if p.node_selector.is_empty() || p.gpus == 0 || have == 0 {
            continue;
        }
        let matching: i64 = inv
            .nodes
            .iter()
            .filter(|n| {
                p.node_selector
                    .iter()
                    .all(|(k, v)| n.labels.get(k) == Some(v))
            })
            .map(|n| n.gpus)
            .sum();
        if p.gpus > matching {
            out.push(format!(
                "partition {:?} asks for {} GPU(s), but the nodes its node_selector ({}) picks advertise {matching}.",
                p.purpose,
                p.gpus,
                selector_string(&p.node_selector)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inference() -> Partition {
        Partition {
            purpose: "inference".into(),
            namespace: "gpu-inference".into(),
            gpus: 4,
            cpu: Some("32".into()),
            memory: Some("128Gi".into()),
            max_gpus_per_pod: Some(1),
            priority: default_priority("inference"),
            node_selector: [(
                "nvidia.com/gpu.product".to_string(),
                "NVIDIA-L4".to_string(),
            )]
            .into(),
            tolerations: vec![],
            spot: true,
        }
    }

    #[test]
    fn a_partition_renders_quota_limits_priority_and_scheduling() {
        let objs = inference().render("gpu");
        let kinds: Vec<&str> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["PriorityClass", "Namespace", "ResourceQuota", "LimitRange"]
        );
        assert_eq!(objs[2]["spec"]["hard"]["requests.nvidia.com/gpu"], "4");
        assert_eq!(objs[2]["spec"]["hard"]["limits.memory"], "128Gi");
        assert_eq!(objs[3]["spec"]["limits"][0]["max"]["nvidia.com/gpu"], "1");
        assert_eq!(objs[0]["value"], 100_000);
        assert_eq!(objs[1]["metadata"]["labels"][LABEL_PURPOSE], "inference");
        let sched: Scheduling = serde_json::from_str(
            objs[1]["metadata"]["annotations"][SCHEDULING_ANNOTATION]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(sched.priority_class, "modelplane-gpu-inference");
        assert!(sched
            .tolerations
            .iter()
            .any(|t| t.key == "kubernetes.azure.com/scalesetpriority"));
        assert!(sched.tolerations.iter().any(|t| t.key == GPU_RESOURCE));
        assert_eq!(sched.node_selector["nvidia.com/gpu.product"], "NVIDIA-L4");
    }

    #[test]
    fn warnings_name_the_missing_device_plugin_and_the_shortfall() {
        let none = Inventory {
            nodes: vec![],
            cpus: 0,
            memory_bytes: 0,
        };
        let w = capacity_warnings(&none, &[inference()]);
        assert!(w[0].contains("no node advertises nvidia.com/gpu"), "{w:?}");
        let two = Inventory {
            nodes: vec![NodeInventory {
                name: "n1".into(),
                gpus: 2,
                product: None,
                memory_mib: None,
                ready: true,
                spot: false,
                labels: [(
                    "nvidia.com/gpu.product".to_string(),
                    "NVIDIA-L4".to_string(),
                )]
                .into(),
            }],
            cpus: 8,
            memory_bytes: 0,
        };
        let w = capacity_warnings(&two, &[inference()]);
        assert!(
            w[0].contains("ask for 4 GPU(s) in all, but the nodes advertise 2"),
            "{w:?}"
        );
        let mut small = inference();
        small.gpus = 2;
        assert!(capacity_warnings(&two, &[small.clone()]).is_empty());
        small.node_selector = [(
            "nvidia.com/gpu.product".to_string(),
            "NVIDIA-H100".to_string(),
        )]
        .into();
        let w = capacity_warnings(&two, &[small]);
        assert!(
            w[0].contains("node_selector (nvidia.com/gpu.product=NVIDIA-H100) picks advertise 0"),
            "{w:?}"
        );
    }
}
