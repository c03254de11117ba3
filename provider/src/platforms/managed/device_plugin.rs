//! The NVIDIA device plugin, as pinned manifests written with server-side apply (no Helm):
//! it makes a node's GPUs schedulable (`nvidia.com/gpu` allocatable). It runs only on GPU
//! nodes (those labelled `nvidia.com/gpu.present=true`) and tolerates every taint, so that a
//! pool's own taints never keep it away (the trap eksctl #8550 and eks-blueprints #1238
//! describe). A pool with `gpu_sharing` gets its own DaemonSet whose config time-slices each
//! GPU into that many `nvidia.com/gpu` units.

use serde_json::json;

use super::pools::{LABEL_GPU_PRESENT, LABEL_GPU_SHARING};
use crate::platforms::kubernetes::{Rendered, MANAGED_BY};

/// The device plugin's version, pinned with the provider.
pub const VERSION: &str = "v0.17.4";
/// Its image, pinned by tag (NVIDIA publishes no digest with its release notes).
pub const IMAGE: &str = "nvcr.io/nvidia/k8s-device-plugin:v0.17.4";
/// Where it runs.
pub const NAMESPACE: &str = "kube-system";

/// The objects for a cluster whose GPU pools time-slice their GPUs by the given factors
/// (one DaemonSet for unshared GPUs, one per sharing factor).
pub fn render(sharing: &[i64]) -> Vec<Rendered> {
    let mut out = vec![daemonset("nvidia-device-plugin", None)];
    let mut factors: Vec<i64> = sharing.iter().copied().filter(|n| *n > 1).collect();
    factors.sort();
    factors.dedup();
    for n in factors {
        let name = format!("nvidia-device-plugin-shared-{n}");
        out.push(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": name, "namespace": NAMESPACE, "labels": labels() },
            "data": { "config.yaml": sharing_config(n) },
        }));
        out.push(daemonset(&name, Some(n)));
    }
    out
}

/// The device plugin's config file for time-slicing by `n`.
pub fn sharing_config(n: i64) -> String {
    format!(
        "version: v1\nflags:\n  migStrategy: none\nsharing:\n  timeSlicing:\n    renameByDefault: false\n    failRequestsGreaterThanOne: true\n    resources:\n      - name: nvidia.com/gpu\n        replicas: {n}\n"
    )
}

fn labels() -> serde_json::Value {
    json!({ MANAGED_BY: "modelplane", "app.kubernetes.io/name": "nvidia-device-plugin" })
}

fn daemonset(name: &str, sharing: Option<i64>) -> Rendered {
    // Unshared GPUs: GPU nodes without the sharing label. Shared: that factor's nodes.
    let selector = match sharing {
        None => json!([
            { "key": LABEL_GPU_PRESENT, "operator": "In", "values": ["true"] },
            { "key": LABEL_GPU_SHARING, "operator": "DoesNotExist" },
        ]),
        Some(n) => json!([
            { "key": LABEL_GPU_PRESENT, "operator": "In", "values": ["true"] },
            { "key": LABEL_GPU_SHARING, "operator": "In", "values": [n.to_string()] },
        ]),
    };
    let mut container = json!({
        "name": "nvidia-device-plugin-ctr",
        "image": IMAGE,
        "env": [{ "name": "FAIL_ON_INIT_ERROR", "value": "false" }],
        "securityContext": { "allowPrivilegeEscalation": false, "capabilities": { "drop": ["ALL"] } },
        "volumeMounts": [{ "name": "device-plugin", "mountPath": "/var/lib/kubelet/device-plugins" }],
    });
    let mut volumes = vec![
        json!({ "name": "device-plugin", "hostPath": { "path": "/var/lib/kubelet/device-plugins" } }),
    ];
    if sharing.is_some() {
        container["env"]
            .as_array_mut()
            .expect("env is a list")
            .push(json!({ "name": "CONFIG_FILE", "value": "/config/config.yaml" }));
        container["volumeMounts"]
            .as_array_mut()
            .expect("mounts are a list")
            .push(json!({ "name": "config", "mountPath": "/config" }));
        volumes.push(json!({ "name": "config", "configMap": { "name": name } }));
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": { "name": name, "namespace": NAMESPACE, "labels": labels() },
        "spec": {
            "selector": { "matchLabels": { "app.kubernetes.io/name": name } },
            "updateStrategy": { "type": "RollingUpdate" },
            "template": {
                "metadata": { "labels": { "app.kubernetes.io/name": name } },
                "spec": {
                    "priorityClassName": "system-node-critical",
                    "affinity": { "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{ "matchExpressions": selector }]
                    } } },
                    // Every taint: GPU pools carry their own (nvidia.com/gpu, spot, team taints).
                    "tolerations": [{ "operator": "Exists" }],
                    "containers": [container],
                    "volumes": volumes,
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_runs_on_gpu_nodes_only_and_tolerates_every_taint() {
        let objs = render(&[]);
        assert_eq!(objs.len(), 1);
        let ds = &objs[0];
        assert_eq!(ds["kind"], "DaemonSet");
        assert_eq!(
            ds["spec"]["template"]["spec"]["tolerations"],
            json!([{ "operator": "Exists" }])
        );
        let terms = &ds["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
            ["matchExpressions"];
        assert_eq!(terms[0]["key"], LABEL_GPU_PRESENT);
        assert_eq!(terms[1]["operator"], "DoesNotExist");
        assert_eq!(
            ds["spec"]["template"]["spec"]["containers"][0]["image"],
            IMAGE
        );
    }

    #[test]
    fn each_sharing_factor_gets_its_config_and_daemonset() {
        let objs = render(&[4, 1, 4, 2]);
        let names: Vec<_> = objs
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                "DaemonSet/nvidia-device-plugin",
                "ConfigMap/nvidia-device-plugin-shared-2",
                "DaemonSet/nvidia-device-plugin-shared-2",
                "ConfigMap/nvidia-device-plugin-shared-4",
                "DaemonSet/nvidia-device-plugin-shared-4",
            ]
        );
        let cfg: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(objs[3]["data"]["config.yaml"].as_str().unwrap()).unwrap();
        assert_eq!(
            cfg["sharing"]["timeSlicing"]["resources"][0]["replicas"],
            serde_yaml_ng::Value::from(4)
        );
        assert_eq!(
            cfg["sharing"]["timeSlicing"]["resources"][0]["name"],
            serde_yaml_ng::Value::from("nvidia.com/gpu")
        );
    }
}
