//! Endpoints on Kubernetes: a Deployment of the bundled image (by digest) with its ConfigMap
//! (the server's configuration), Secret (the token), ServiceAccount, Service (HTTP and gRPC),
//! HorizontalPodAutoscaler, PodDisruptionBudget and, optionally, an Ingress, a Gateway API
//! HTTPRoute or an OpenShift Route; the rollout wait and its diagnostics.
//!
//! The pod passes Pod Security "restricted" and OpenShift's `restricted-v2` SCC: it runs as a
//! non-root user whatever UID the platform assigns (no `runAsUser`), with a read-only root file
//! system (the model cache and `/tmp` are `emptyDir`s), no privilege escalation, every
//! capability dropped and the runtime's default seccomp profile.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod, Secret};
use kube::api::{Api, ListParams, LogParams};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Digest;

use super::objects::{self, ObjectRef};
use super::partitions::Scheduling;
use super::{Rendered, GPU_RESOURCE, LABEL_ENDPOINT};

/// The ports the server listens on inside the pod (the image's `EXPOSE`).
pub const HTTP_PORT: u16 = 8080;
pub const GRPC_PORT: u16 = 8081;
/// Where the pod has its configuration, token and cache.
pub const CONFIG_DIR: &str = "/etc/modelplane";
pub const TOKEN_DIR: &str = "/var/run/secrets/modelplane";
pub const CACHE_DIR: &str = "/var/cache/modelplane";
/// The pod label with the hash of the configuration and token a pod runs.
pub const LABEL_REVISION: &str = "modelplane.io/revision";

/// The endpoint's `kubernetes` block.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub partition: Option<String>,
    pub min_replicas: Option<i64>,
    pub max_replicas: Option<i64>,
    pub target_cpu_percent: Option<i64>,
    pub target_inflight: Option<i64>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub gpus: Option<i64>,
    pub service_account_annotations: Option<BTreeMap<String, String>>,
    pub env_from_secret: Option<String>,
    pub image_pull_secret: Option<String>,
    pub service_type: Option<String>,
    pub rollout_timeout: Option<String>,
    pub expose: Option<Expose>,
}

/// How the endpoint is reached from outside the cluster.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Expose {
    /// `ingress`, `http_route` or `route`.
    pub kind: String,
    pub host: String,
    pub class_name: Option<String>,
    /// For `http_route`: the Gateway, `NAME` or `NAMESPACE/NAME`.
    pub gateway: Option<String>,
    pub tls_secret: Option<String>,
}

pub const EXPOSE_KINDS: &[&str] = &["ingress", "http_route", "route"];
pub const SERVICE_TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer"];

impl Settings {
    pub fn partition(&self) -> &str {
        self.partition.as_deref().unwrap_or("inference")
    }
    pub fn min_replicas(&self) -> i64 {
        self.min_replicas.unwrap_or(1)
    }
    pub fn max_replicas(&self) -> i64 {
        self.max_replicas.unwrap_or_else(|| self.min_replicas())
    }
    pub fn rollout_timeout(&self) -> Duration {
        self.rollout_timeout
            .as_deref()
            .and_then(|t| modelplane_serve::cli::parse_duration(t).ok())
            .unwrap_or(Duration::from_secs(600))
    }
}

/// The ConfigMap with the server's configuration, for an endpoint's objects named `n`.
pub fn config_map_name(n: &str) -> String {
    format!("{n}-config")
}

/// The Secret with the token, for an endpoint's objects named `n`.
fn token_secret_name(n: &str) -> String {
    format!("{n}-token")
}

/// Everything an endpoint's objects are made from.
#[derive(Clone, Debug)]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    pub scheduling: Scheduling,
    pub image: String,
    /// The server's configuration (JSON).
    pub config: String,
    pub token: String,
    /// Remote variants' tokens, by variant name: more keys of the token's Secret.
    pub remote_tokens: std::collections::BTreeMap<String, String>,
    /// The Service's ports.
    pub http_port: u16,
    pub grpc_port: u16,
    pub settings: Settings,
    /// Whether the cluster serves custom metrics (`custom.metrics.k8s.io`), for scaling on
    /// requests in flight.
    pub custom_metrics: bool,
}

impl Workload {
    /// The Kubernetes name of the endpoint's objects.
    pub fn object_name(&self) -> String {
        super::dns_label(&self.name)
    }

    /// A short hash of what a restart must pick up: configuration and token.
    pub fn revision(&self) -> String {
        let mut h = sha2::Sha256::new();
        h.update(self.config.as_bytes());
        h.update([0]);
        h.update(self.token.as_bytes());
        for (v, t) in &self.remote_tokens {
            h.update([0]);
            h.update(v.as_bytes());
            h.update([0]);
            h.update(t.as_bytes());
        }
        hex::encode(&h.finalize()[..8])
    }

    fn selector(&self) -> Value {
        json!({
            "app.kubernetes.io/name": "modelplane-serve",
            "app.kubernetes.io/instance": self.object_name(),
        })
    }

    fn labels(&self) -> Value {
        let mut l = self.selector();
        l[LABEL_ENDPOINT] = json!(self.object_name());
        l["app.kubernetes.io/component"] = json!("endpoint");
        l
    }

    fn meta(&self, name: &str) -> Value {
        json!({ "name": name, "namespace": self.namespace, "labels": self.labels() })
    }

    /// The token's Secret: the endpoint's token and its remote variants' tokens.
    fn secret_data(&self) -> Value {
        let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        let mut data = json!({ "token": b64(&self.token) });
        for (v, t) in &self.remote_tokens {
            data[crate::platforms::remote_token_file(v)] = json!(b64(t));
        }
        data
    }

    /// Whether a HorizontalPodAutoscaler manages the replica count.
    pub fn autoscaled(&self) -> bool {
        self.settings.max_replicas() > self.settings.min_replicas()
    }

    /// The objects in the order they are applied.
    pub fn render(&self) -> Vec<Rendered> {
        let n = self.object_name();
        let s = &self.settings;
        let mut out = vec![
            json!({
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {
                    "name": n, "namespace": self.namespace, "labels": self.labels(),
                    "annotations": s.service_account_annotations.clone().unwrap_or_default(),
                },
                "automountServiceAccountToken": false,
            }),
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": self.meta(&config_map_name(&n)),
                "data": { "config.json": self.config },
            }),
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": self.meta(&token_secret_name(&n)),
                "type": "Opaque",
                "data": self.secret_data(),
            }),
            self.deployment(),
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": self.meta(&n),
                "spec": {
                    "type": s.service_type.clone().unwrap_or_else(|| "ClusterIP".into()),
                    "selector": self.selector(),
                    "ports": [
                        { "name": "http", "port": self.http_port, "targetPort": "http", "protocol": "TCP", "appProtocol": "http" },
                        { "name": "grpc", "port": self.grpc_port, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "kubernetes.io/h2c" },
                    ],
                },
            }),
            json!({
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": self.meta(&n),
                "spec": {
                    // One pod at a time: drains go on, and with two replicas or more the
                    // endpoint keeps serving through them.
                    "maxUnavailable": 1,
                    "selector": { "matchLabels": self.selector() },
                },
            }),
        ];
        if self.autoscaled() {
            let mut metrics = vec![json!({
                "type": "Resource",
                "resource": { "name": "cpu", "target": {
                    "type": "Utilization",
                    "averageUtilization": s.target_cpu_percent.unwrap_or(70),
                }},
            })];
            if let (Some(t), true) = (s.target_inflight, self.custom_metrics) {
                metrics.push(json!({
                    "type": "Pods",
                    "pods": {
                        "metric": { "name": "modelplane_inflight_requests" },
                        "target": { "type": "AverageValue", "averageValue": t.to_string() },
                    },
                }));
            }
            out.push(json!({
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": self.meta(&n),
                "spec": {
                    "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": n },
                    "minReplicas": s.min_replicas(),
                    "maxReplicas": s.max_replicas(),
                    "metrics": metrics,
                },
            }));
        }
        if let Some(e) = &s.expose {
            out.push(self.exposure(e));
        }
        out
    }

    fn deployment(&self) -> Value {
        let n = self.object_name();
        let s = &self.settings;
        let gpus = s.gpus.unwrap_or(0);
        let memory = s.memory.clone().unwrap_or_else(|| "1Gi".into());
        let mut requests =
            json!({ "cpu": s.cpu.clone().unwrap_or_else(|| "500m".into()), "memory": memory });
        let mut limits = json!({ "memory": memory });
        if gpus > 0 {
            requests[GPU_RESOURCE] = json!(gpus.to_string());
            limits[GPU_RESOURCE] = json!(gpus.to_string());
        }
        let mut pod_labels = self.labels();
        pod_labels[LABEL_REVISION] = json!(self.revision());
        // AKS's workload identity webhook mounts the token only into pods labelled for it.
        if s.service_account_annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("azure.workload.identity/client-id"))
        {
            pod_labels["azure.workload.identity/use"] = json!("true");
        }
        let probe = |path: &str, period: i64, failures: i64| {
            json!({
                "httpGet": { "path": path, "port": "http" },
                "periodSeconds": period,
                "failureThreshold": failures,
                "timeoutSeconds": 2,
            })
        };
        let mut container = json!({
            "name": "server",
            "image": self.image,
            "imagePullPolicy": "IfNotPresent",
            "args": ["serve", "--config", format!("{CONFIG_DIR}/config.json")],
            "ports": [
                { "name": "http", "containerPort": HTTP_PORT, "protocol": "TCP" },
                { "name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP" },
            ],
            "env": [{ "name": "MODELPLANE_CACHE_DIR", "value": CACHE_DIR }],
            "resources": { "requests": requests, "limits": limits },
            // Loading models may take minutes; readiness gates traffic, liveness restarts
            // a server that stopped answering.
            "startupProbe": probe("/v2/health/live", 5, 120),
            "readinessProbe": probe("/v2/health/ready", 5, 3),
            "livenessProbe": probe("/v2/health/live", 10, 3),
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "runAsNonRoot": true,
                "capabilities": { "drop": ["ALL"] },
                "seccompProfile": { "type": "RuntimeDefault" },
            },
            "volumeMounts": [
                { "name": "config", "mountPath": CONFIG_DIR, "readOnly": true },
                { "name": "token", "mountPath": TOKEN_DIR, "readOnly": true },
                { "name": "cache", "mountPath": CACHE_DIR },
                { "name": "tmp", "mountPath": "/tmp" },
            ],
        });
        if let Some(secret) = &s.env_from_secret {
            container["envFrom"] = json!([{ "secretRef": { "name": secret } }]);
        }
        let mut pod_spec = json!({
            "serviceAccountName": n,
            "automountServiceAccountToken": false,
            "priorityClassName": self.scheduling.priority_class,
            "terminationGracePeriodSeconds": 30,
            "securityContext": {
                "runAsNonRoot": true,
                "seccompProfile": { "type": "RuntimeDefault" },
            },
            "containers": [container],
            "volumes": [
                { "name": "config", "configMap": { "name": config_map_name(&n) } },
                // `optional` is the default, said out loud for podman's `kube play`, which needs it.
                { "name": "token", "secret": { "secretName": token_secret_name(&n), "defaultMode": 0o444, "optional": false } },
                { "name": "cache", "emptyDir": {} },
                { "name": "tmp", "emptyDir": { "medium": "Memory", "sizeLimit": "64Mi" } },
            ],
        });
        if !self.scheduling.node_selector.is_empty() {
            pod_spec["nodeSelector"] = json!(self.scheduling.node_selector);
        }
        if !self.scheduling.tolerations.is_empty() {
            pod_spec["tolerations"] = json!(self.scheduling.tolerations);
        }
        if let Some(p) = &s.image_pull_secret {
            pod_spec["imagePullSecrets"] = json!([{ "name": p }]);
        }
        let mut spec = json!({
            "selector": { "matchLabels": self.selector() },
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": self.settings.rollout_timeout().as_secs().max(60),
            "strategy": {
                "type": "RollingUpdate",
                // A new pod is ready before an old one goes: no gap in serving.
                "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 },
            },
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": HTTP_PORT.to_string(),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": pod_spec,
            },
        });
        // With an autoscaler the replica count is its to set: applying it would fight it.
        if !self.autoscaled() {
            spec["replicas"] = json!(self.settings.min_replicas());
        }
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": self.meta(&n),
            "spec": spec,
        })
    }

    fn exposure(&self, e: &Expose) -> Value {
        let n = self.object_name();
        match e.kind.as_str() {
            "http_route" => {
                let gw = e.gateway.clone().unwrap_or_default();
                let parent = match gw.split_once('/') {
                    Some((ns, name)) => json!({ "name": name, "namespace": ns }),
                    None => json!({ "name": gw }),
                };
                json!({
                    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                    "metadata": self.meta(&n),
                    "spec": {
                        "parentRefs": [parent],
                        "hostnames": [e.host],
                        "rules": [{
                            "matches": [{ "path": { "type": "PathPrefix", "value": "/" } }],
                            "backendRefs": [{ "name": n, "port": self.http_port }],
                        }],
                    },
                })
            }
            "route" => {
                let mut spec = json!({
                    "host": e.host,
                    "to": { "kind": "Service", "name": n, "weight": 100 },
                    "port": { "targetPort": "http" },
                });
                if e.tls_secret.is_some() {
                    spec["tls"] = json!({ "termination": "edge", "insecureEdgeTerminationPolicy": "Redirect" });
                }
                json!({
                    "apiVersion": "route.openshift.io/v1", "kind": "Route",
                    "metadata": self.meta(&n),
                    "spec": spec,
                })
            }
            _ => {
                let mut spec = json!({
                    "rules": [{
                        "host": e.host,
                        "http": { "paths": [{
                            "path": "/", "pathType": "Prefix",
                            "backend": { "service": { "name": n, "port": { "name": "http" } } },
                        }]},
                    }],
                });
                if let Some(c) = &e.class_name {
                    spec["ingressClassName"] = json!(c);
                }
                if let Some(t) = &e.tls_secret {
                    spec["tls"] = json!([{ "hosts": [e.host], "secretName": t }]);
                }
                json!({
                    "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                    "metadata": self.meta(&n),
                    "spec": spec,
                })
            }
        }
    }

    /// The address clients in the cluster use.
    pub fn service_host(&self) -> String {
        service_host(&self.namespace, &self.name)
    }
}

/// The in-cluster address of the Service of endpoint `name` in `namespace`.
pub fn service_host(namespace: &str, name: &str) -> String {
    format!("{}.{namespace}.svc.cluster.local", super::dns_label(name))
}

/// Whether the cluster serves the custom metrics API (for instance prometheus-adapter).
pub async fn has_custom_metrics(client: &kube::Client) -> bool {
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
    let api: Api<APIService> = Api::all(client.clone());
    for v in [
        "v1beta2.custom.metrics.k8s.io",
        "v1beta1.custom.metrics.k8s.io",
    ] {
        if let Ok(Some(_)) = api.get_opt(v).await {
            return true;
        }
    }
    false
}

/// What a rollout wait checks, how often.
#[derive(Clone, Copy, Debug)]
pub struct Wait {
    pub timeout: Duration,
    pub poll: Duration,
}

/// Applies an endpoint's objects, waits for the rollout, then deletes what `prior` recorded
/// and the new objects do not include. Returns what is now written; on error, what was
/// written before the failure (the caller undoes or rolls back).
pub async fn deploy(
    client: &kube::Client,
    w: &Workload,
    prior: &[ObjectRef],
    wait: Wait,
) -> (Vec<ObjectRef>, Result<(), String>) {
    let objs = w.render();
    let (recorded, r) = objects::write(client, prior, &objs).await;
    if let Err(e) = r {
        return (recorded, Err(e));
    }
    // The old objects go only once the new revision serves.
    if let Err(e) = wait_rollout(client, w, wait).await {
        return (recorded, Err(e));
    }
    objects::settle(client, prior, &objs, recorded).await
}

/// Waits until the Deployment runs the current revision everywhere: the controller saw the
/// change (`observedGeneration`), and every replica is updated and available. Fails early on
/// causes that do not heal (an image that cannot be pulled, a crash loop), and at the
/// timeout with what the pods and events say.
pub async fn wait_rollout(client: &kube::Client, w: &Workload, wait: Wait) -> Result<(), String> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), &w.namespace);
    let name = w.object_name();
    let deadline = tokio::time::Instant::now() + wait.timeout;
    loop {
        let d = api
            .get(&name)
            .await
            .map_err(|e| format!("cannot read Deployment {}/{name}: {e}", w.namespace))?;
        if rolled_out(&d) {
            return Ok(());
        }
        let causes = diagnose(client, w).await;
        let fatal: Vec<&Cause> = causes.iter().filter(|c| c.fatal).collect();
        let deadline_exceeded = d
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.type_ == "Progressing"
                        && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
                })
            });
        if !fatal.is_empty() || deadline_exceeded || tokio::time::Instant::now() >= deadline {
            let mut msg = format!(
                "Deployment {}/{name} did not roll out{}",
                w.namespace,
                if fatal.is_empty() {
                    format!(" within {}s", wait.timeout.as_secs())
                } else {
                    String::new()
                }
            );
            msg.push_str(&progress(&d));
            if causes.is_empty() {
                msg.push_str("\nNo pod reports a cause yet; look at `kubectl describe deployment` and the cluster's events, or raise kubernetes.rollout_timeout.");
            }
            for c in &causes {
                msg.push_str("\n- ");
                msg.push_str(&c.text);
            }
            return Err(msg);
        }
        tokio::time::sleep(wait.poll).await;
    }
}

fn rolled_out(d: &Deployment) -> bool {
    let generation = d.metadata.generation.unwrap_or(0);
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(s) = &d.status else {
        return false;
    };
    s.observed_generation.unwrap_or(0) >= generation
        && s.updated_replicas.unwrap_or(0) >= desired
        && s.available_replicas.unwrap_or(0) >= desired
        && s.replicas.unwrap_or(0) <= s.updated_replicas.unwrap_or(0)
}

fn progress(d: &Deployment) -> String {
    let s = d.status.clone().unwrap_or_default();
    format!(
        " ({} of {} replicas updated, {} available)",
        s.updated_replicas.unwrap_or(0),
        d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        s.available_replicas.unwrap_or(0)
    )
}

/// A reason a rollout does not finish.
#[derive(Clone, Debug, PartialEq)]
pub struct Cause {
    pub text: String,
    /// Whether waiting longer cannot help.
    pub fatal: bool,
}

/// What the pods of the current revision and the namespace's events say.
pub async fn diagnose(client: &kube::Client, w: &Workload) -> Vec<Cause> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &w.namespace);
    let lp = ListParams::default().labels(&format!(
        "app.kubernetes.io/instance={},{LABEL_REVISION}={}",
        w.object_name(),
        w.revision()
    ));
    let mut out: Vec<Cause> = Vec::new();
    let mut push = |c: Cause| {
        if !out.contains(&c) {
            out.push(c);
        }
    };
    let list = pods.list(&lp).await.map(|l| l.items).unwrap_or_default();
    for pod in &list {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        for c in status.conditions.unwrap_or_default() {
            if c.type_ == "PodScheduled" && c.status == "False" {
                let m = c.message.unwrap_or_default();
                let text = if m.contains(GPU_RESOURCE) {
                    format!("Unschedulable: insufficient {GPU_RESOURCE} for pod {pod_name} ({m}). Lower kubernetes.gpus, free GPUs in the partition, or add GPU nodes.")
                } else {
                    format!("Unschedulable: pod {pod_name} fits no node ({m}).")
                };
                push(Cause { text, fatal: false });
            }
        }
        for cs in status.container_statuses.unwrap_or_default() {
            if let Some(t) = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
                if t.reason.as_deref() == Some("OOMKilled") {
                    push(Cause {
                        text: format!("OOMKilled: the server in pod {pod_name} was killed for using more memory than its limit ({}); raise kubernetes.memory.", w.settings.memory.as_deref().unwrap_or("1Gi")),
                        fatal: true,
                    });
                }
            }
            let Some(waiting) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
                continue;
            };
            let reason = waiting.reason.clone().unwrap_or_default();
            let message = waiting.message.clone().unwrap_or_default();
            match reason.as_str() {
                "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" => push(Cause {
                    text: format!("{reason}: pod {pod_name} cannot pull {} ({message}). Check the image reference, that the registry is reachable from the nodes, and kubernetes.image_pull_secret for a private registry.", cs.image),
                    fatal: true,
                }),
                "CrashLoopBackOff" => {
                    let logs = pods
                        .logs(
                            &pod_name,
                            &LogParams {
                                previous: true,
                                tail_lines: Some(20),
                                container: Some(cs.name.clone()),
                                ..Default::default()
                            },
                        )
                        .await
                        .map(|l| {
                            if l.trim().is_empty() {
                                "(no log lines)".to_string()
                            } else {
                                l.trim_end().to_string()
                            }
                        })
                        .unwrap_or_else(|e| format!("(its log cannot be read: {e})"));
                    push(Cause {
                        text: format!("CrashLoopBackOff: the server in pod {pod_name} keeps exiting. Its last log lines:\n{logs}"),
                        fatal: true,
                    });
                }
                "CreateContainerConfigError" | "CreateContainerError" => push(Cause {
                    text: format!("{reason}: pod {pod_name}: {message}. A Secret in kubernetes.env_from_secret must exist in namespace {}.", w.namespace),
                    fatal: true,
                }),
                _ => {}
            }
        }
    }
    // Pods never created (quota) or not scheduled say so in events.
    let events: Api<Event> = Api::namespaced(client.clone(), &w.namespace);
    let name = w.object_name();
    // Only warnings: the API server filters them, and a busy namespace has many more events.
    for e in events
        .list(&ListParams::default().fields("type=Warning"))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
    {
        // The Deployment's ReplicaSets and pods are named after it.
        let involved = e.involved_object.name.clone().unwrap_or_default();
        if !involved.starts_with(&name) {
            continue;
        }
        let reason = e.reason.clone().unwrap_or_default();
        let m = e.message.clone().unwrap_or_default();
        if reason == "FailedCreate" && m.contains("exceeded quota") {
            push(Cause {
                text: format!("the partition's quota refuses new pods: {m}. Raise the partition's gpus (or cpu, memory), or lower kubernetes.gpus or max_replicas."),
                fatal: false,
            });
        } else if reason == "FailedScheduling" && list.is_empty() {
            push(Cause {
                text: format!("Unschedulable: {m}"),
                fatal: false,
            });
        }
    }
    out
}

/// What the cluster runs of an endpoint.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub image: Option<String>,
    pub config: Option<String>,
    pub token: Option<String>,
    /// Recorded objects that no longer exist.
    pub missing: Vec<ObjectRef>,
}

/// The endpoint's token, from its Secret (none when the Secret or the key is missing).
pub async fn token(client: &kube::Client, namespace: &str, name: &str) -> Option<String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let n = super::dns_label(name);
    let s = secrets.get_opt(&token_secret_name(&n)).await.ok()??;
    s.data?
        .get("token")
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}

/// Reads an endpoint back: its Deployment's image, its configuration and token, and which of
/// the recorded objects are gone. `None` when the Deployment is gone.
pub async fn observe(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    recorded: &[ObjectRef],
) -> Result<Option<Observed>, String> {
    let n = super::dns_label(name);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let Some(d) = deployments
        .get_opt(&n)
        .await
        .map_err(|e| format!("cannot read Deployment {namespace}/{n}: {e}"))?
    else {
        return Ok(None);
    };
    let mut o = Observed {
        image: d
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers.first())
            .and_then(|c| c.image.clone()),
        ..Default::default()
    };
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), namespace);
    if let Ok(Some(cm)) = cms.get_opt(&config_map_name(&n)).await {
        o.config = cm.data.and_then(|d| d.get("config.json").cloned());
    }
    o.token = token(client, namespace, name).await;
    for r in recorded {
        if let Ok(None) = r.get(client).await {
            o.missing.push(r.clone());
        }
    }
    Ok(Some(o))
}

/// The namespace an endpoint of `cluster` runs in: the partition namespace that has its
/// Deployment.
pub async fn locate(client: &kube::Client, cluster: &str, name: &str) -> Result<String, String> {
    use k8s_openapi::api::core::v1::Namespace;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let lp = ListParams::default().labels(&format!("{}={cluster}", super::LABEL_CLUSTER));
    let list = namespaces
        .list(&lp)
        .await
        .map_err(|e| format!("cannot list the partitions of cluster {cluster}: {e}"))?;
    let n = super::dns_label(name);
    for ns in list.items {
        let ns = ns.metadata.name.unwrap_or_default();
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        if let Ok(Some(_)) = deployments.get_opt(&n).await {
            return Ok(ns);
        }
    }
    Err(format!(
        "no endpoint {name:?} runs in the partitions of cluster {cluster:?}; create the modelplane_endpoint first"
    ))
}

/// What an endpoint's objects say of its settings, its Service ports and which of its objects
/// exist (for import).
pub async fn settings_of(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(Settings, (u16, u16), Vec<ObjectRef>), String> {
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use k8s_openapi::api::core::v1::{Namespace, Service};
    let n = super::dns_label(name);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let d = deployments
        .get(&n)
        .await
        .map_err(|e| format!("cannot read Deployment {namespace}/{n}: {e}"))?;
    let mut s = Settings::default();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if let Ok(ns) = namespaces.get(namespace).await {
        s.partition = ns
            .metadata
            .labels
            .and_then(|l| l.get(super::LABEL_PURPOSE).cloned());
    }
    let spec = d.spec.clone().unwrap_or_default();
    if let Some(c) = spec
        .template
        .spec
        .as_ref()
        .and_then(|p| p.containers.first())
    {
        let res = c.resources.clone().unwrap_or_default();
        let req = res.requests.unwrap_or_default();
        s.cpu = req.get("cpu").map(|q| q.0.clone());
        s.memory = req.get("memory").map(|q| q.0.clone());
        s.gpus = req.get(GPU_RESOURCE).and_then(|q| q.0.parse().ok());
        s.env_from_secret = c
            .env_from
            .as_ref()
            .and_then(|e| e.first())
            .and_then(|e| e.secret_ref.as_ref())
            .map(|r| r.name.clone());
    }
    s.image_pull_secret = spec
        .template
        .spec
        .as_ref()
        .and_then(|p| p.image_pull_secrets.as_ref())
        .and_then(|p| p.first())
        .map(|p| p.name.clone());
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), namespace);
    match hpas.get_opt(&n).await {
        Ok(Some(h)) => {
            let hs = h.spec.unwrap_or_default();
            s.min_replicas = hs.min_replicas.map(i64::from);
            s.max_replicas = Some(i64::from(hs.max_replicas));
        }
        _ => s.min_replicas = spec.replicas.map(i64::from),
    }
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let mut ports = (HTTP_PORT, GRPC_PORT);
    if let Ok(Some(svc)) = services.get_opt(&n).await {
        for p in svc.spec.unwrap_or_default().ports.unwrap_or_default() {
            match p.name.as_deref() {
                Some("http") => ports.0 = p.port as u16,
                Some("grpc") => ports.1 = p.port as u16,
                _ => {}
            }
        }
    }
    let mut refs = Vec::new();
    for r in possible_objects(namespace, name) {
        if let Ok(Some(_)) = r.get(client).await {
            refs.push(r);
        }
    }
    Ok((s, ports, refs))
}

/// Every object an endpoint may have, whatever its settings: what [`Workload::render`] writes
/// with an autoscaler and each way of exposing it.
fn possible_objects(namespace: &str, name: &str) -> Vec<ObjectRef> {
    let mut out: Vec<ObjectRef> = Vec::new();
    for kind in EXPOSE_KINDS {
        let w = Workload {
            name: name.into(),
            namespace: namespace.into(),
            scheduling: Scheduling::default(),
            image: String::new(),
            config: String::new(),
            token: String::new(),
            remote_tokens: Default::default(),
            http_port: HTTP_PORT,
            grpc_port: GRPC_PORT,
            settings: Settings {
                min_replicas: Some(1),
                max_replicas: Some(2),
                expose: Some(Expose {
                    kind: kind.to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            custom_metrics: false,
        };
        for r in objects::refs(&w.render()) {
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_looks_for_every_object_an_endpoint_may_have() {
        let kinds: Vec<String> = possible_objects("ml", "Fraud")
            .iter()
            .map(|r| format!("{}/{}", r.kind, r.name))
            .collect();
        for want in [
            "ServiceAccount/fraud",
            "ConfigMap/fraud-config",
            "Secret/fraud-token",
            "Deployment/fraud",
            "Service/fraud",
            "PodDisruptionBudget/fraud",
            "HorizontalPodAutoscaler/fraud",
            "Ingress/fraud",
            "HTTPRoute/fraud",
            "Route/fraud",
        ] {
            assert!(kinds.contains(&want.to_string()), "{want} in {kinds:?}");
        }
        assert_eq!(kinds.len(), 10, "{kinds:?}");
    }
}
