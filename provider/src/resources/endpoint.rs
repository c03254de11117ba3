//! `modelplane_endpoint`: a served endpoint with a traffic split between model versions, an
//! optional shadow, and the benchmark hook (measure after every change; roll back on an SLO
//! miss). On the `local` platform the server is a supervised process (see
//! [`crate::local_endpoint`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::Digest;
use tfplugin::{
    Attr, Attribute, AttributePath, Block, Config, Ctx, Diagnostics, NestedBlock, Nesting,
    PathStep, Schema, Type,
};

use modelplane_serve::batch::BatchConfig;
use modelplane_serve::config::{
    AuthConfig, EndpointConfig, ModelConfig, ServeConfig, ShadowConfig, VariantConfig,
};

#[path = "endpoint_kubernetes.rs"]
mod kubernetes;

use crate::local_endpoint::{self as le, Dir};
use crate::platforms::container;
use crate::platforms::kubernetes::workload;
use crate::servers::{self, Launcher, Server};
use crate::{platforms, stores, ProviderConfig};

pub struct Endpoint {
    pub config: Arc<OnceLock<ProviderConfig>>,
}

/// Seconds a server gets to drain on stop.
const DRAIN_SECONDS: u64 = 10;
/// How long a new server may take to load its models and report ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Variant {
    pub name: String,
    pub model: Attr<String>,
    pub weight: Attr<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Shadow {
    pub model: Attr<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Batching {
    pub max_batch_size: Option<i64>,
    pub max_delay_ms: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Limits {
    pub max_body_bytes: Option<i64>,
    pub request_timeout_ms: Option<i64>,
    pub workers: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Monitoring {
    pub drift_window: Option<String>,
    pub feedback_window: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Slo {
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub min_rps: Option<f64>,
    pub max_error_rate: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Benchmark {
    pub concurrency: Option<i64>,
    pub duration: Option<String>,
    pub warmup: Option<String>,
    pub protocol: Option<String>,
    pub payload: String,
    pub slo: Option<Slo>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BenchResult {
    pub requests: i64,
    pub errors: i64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Model {
    pub id: Attr<String>,
    pub name: String,
    pub cluster: Attr<String>,
    pub variant: Vec<Variant>,
    pub shadow: Option<Shadow>,
    pub sticky_header: Option<String>,
    pub batching: Option<Batching>,
    pub limits: Option<Limits>,
    pub monitoring: Option<Monitoring>,
    pub benchmark: Option<Benchmark>,
    pub image: Option<String>,
    pub container: Option<container::Settings>,
    pub port: Attr<i64>,
    pub grpc_port: Attr<i64>,
    pub token_wo: Attr<String>,
    pub token_fingerprint: Attr<String>,
    pub url: Attr<String>,
    pub grpc_address: Attr<String>,
    pub status: Attr<String>,
    pub token_file: Attr<String>,
    pub state_path: Attr<String>,
    pub benchmark_result: Attr<BenchResult>,
    pub model_digests: Attr<BTreeMap<String, String>>,
    pub running_image: Attr<String>,
    pub objects: Attr<Vec<String>>,
    pub kubernetes: Option<workload::Settings>,
}

/// What the state folder keeps besides the server's configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Meta {
    cluster: String,
    ready: bool,
    token_fingerprint: String,
    sticky_header: Option<String>,
    batching: Option<Batching>,
    limits: Option<Limits>,
    #[serde(default)]
    monitoring: Option<Monitoring>,
    benchmark: Option<Benchmark>,
    benchmark_result: Option<BenchResult>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    container: Option<container::Settings>,
}

fn path(steps: &[PathStep]) -> AttributePath {
    AttributePath(steps.to_vec())
}
fn a(s: &str) -> PathStep {
    PathStep::Attr(s.into())
}

fn schema() -> Schema {
    let result = vec![
        Attribute::new("requests", Type::Number)
            .computed()
            .description("Requests completed in the measured window."),
        Attribute::new("errors", Type::Number)
            .computed()
            .description("Requests that failed."),
        Attribute::new("rps", Type::Number)
            .computed()
            .description("Throughput, requests per second."),
        Attribute::new("p50_ms", Type::Number)
            .computed()
            .description("Median latency, milliseconds."),
        Attribute::new("p90_ms", Type::Number)
            .computed()
            .description("90th percentile latency, milliseconds."),
        Attribute::new("p99_ms", Type::Number)
            .computed()
            .description("99th percentile latency, milliseconds."),
        Attribute::new("max_ms", Type::Number)
            .computed()
            .description("Slowest request, milliseconds."),
    ];
    Schema::new(
        Block::new()
            .description(
                "A serving endpoint: Modelplane's inference server (Open Inference Protocol v2 over REST and gRPC) \
                 splitting traffic between model versions by weight (A/B, canary), with an optional shadow that \
                 receives a copy of every request.\n\n\
                 On a `local` cluster the server runs as a detached, supervised process that outlives Terraform \
                 (the provider binary carries the server, so nothing else is installed). Its state folder holds \
                 the configuration, the log, the token and the pid with its start time.\n\n\
                 On a `container` cluster the server is a container of `image` (the bundled image, best pinned by \
                 digest) run by the host's podman or docker, with the configuration and token mounted read-only at \
                 `/etc/modelplane`, a local store at `/models` and the artifact cache at `/var/cache/modelplane`, \
                 as the image's non-root user; ports are published on the host (or shared, on the host's network); \
                 `container` sets limits, restart policy, GPUs and extra engine arguments. The same lifecycle \
                 applies; a restart replaces the container, and with published ports the old container stops \
                 before the new one starts (a gap of the new container's start), while on the host's network the \
                 new one starts first.\n\n\
                 * **Create** starts the server and waits until it is ready; a failure shows the last log lines.\n\
                 * **Update**: a change of variants, weights or shadow is a hot reload that drops no request; a \
                 change that needs a restart (ports, batching, limits, token) starts a new server on the same ports, \
                 waits for it, then drains the old one. The URL stays the same.\n\
                 * **Refresh** notices a dead server (`status = \"stopped\"`, and the plan starts it again) and a \
                 server whose traffic split differs from the configuration.\n\
                 * **Benchmark hook**: with a `benchmark` block, every create and update is followed by a load test \
                 whose figures land in `benchmark_result`. With `slo` thresholds, a miss rolls the endpoint back to \
                 its previous configuration (on create: removes it) and fails the apply with measured against \
                 required.\n\nImport with `CLUSTER_ID/NAME`, e.g. `local/inference/digits`.",
            )
            .attribute(Attribute::new("id", Type::String).computed().stable().description("`CLUSTER_ID/NAME`."))
            .attribute(Attribute::new("name", Type::String).required().requires_replace().description("Endpoint name, the model name clients call (`/v2/models/NAME/infer`). Unique on the cluster."))
            .attribute(Attribute::new("cluster", Type::String).required().requires_replace().description("The `id` of the `modelplane_gpu_cluster` to run on."))
            .attribute(Attribute::new("sticky_header", Type::String).optional().description("A request header whose value keeps a client on one variant (e.g. `x-user-id`)."))
            .attribute(Attribute::new("port", Type::Number).optional_computed().stable().description("REST port on 127.0.0.1; a free one is chosen when not given."))
            .attribute(Attribute::new("grpc_port", Type::Number).optional_computed().stable().description("gRPC port on 127.0.0.1; a free one is chosen when not given."))
            .attribute(
                Attribute::new("token_wo", Type::String)
                    .optional()
                    .sensitive()
                    .write_only()
                    .description("Bearer token clients must send (write-only: never stored in state; Terraform 1.11 or later). A random 256-bit token is generated when not given. Either way it is kept in `token_file`, readable only by you."),
            )
            .attribute(Attribute::new("token_fingerprint", Type::String).computed().stable().description("A salted digest of the token, so a changed `token_wo` is noticed without the token being in state; `generated` for a generated token."))
            .attribute(Attribute::new("url", Type::String).computed().stable().description("Base URL of the REST listener, e.g. `http://127.0.0.1:8080`. Infer at `URL/v2/models/NAME/infer`."))
            .attribute(Attribute::new("grpc_address", Type::String).computed().stable().description("`HOST:PORT` of the gRPC listener (`inference.GRPCInferenceService`)."))
            .attribute(Attribute::new("status", Type::String).computed().stable().description("`running`, or `stopped` when refresh found the server dead (the plan then starts it again)."))
            .attribute(Attribute::new("token_file", Type::String).computed().stable().description("File (mode 0600) holding the bearer token: `curl -H \"Authorization: Bearer $(cat TOKEN_FILE)\" …`."))
            .attribute(Attribute::new("state_path", Type::String).computed().stable().description("The endpoint's state folder (configuration, `server.log`, pid)."))
            .attribute(
                Attribute::new("model_digests", Type::map(Type::String))
                    .computed()
                    .stable()
                    .description("sha256 of every model version served, by model `id`. When a version is replaced with new bytes, this changes and the endpoint reloads them."),
            )
            .attribute(Attribute::nested("benchmark_result", Nesting::Single, result).computed().description("Figures of the last benchmark; null without a `benchmark` block."))
            .attribute(Attribute::new("image", Type::String).optional().description("The serving image, on `container` clusters (required there; not used by `local`): best `modelplane_serving_image.NAME.reference`, which is pinned by digest. A reference by tag is pinned when the container starts: later restarts run the same digest until `image` changes."))
            .attribute(Attribute::new("running_image", Type::String).computed().stable().description("On `container` clusters, the digest-pinned image the container runs; on `kubernetes`, the image of the Deployment; null on `local`."))
            .attribute(Attribute::new("objects", Type::list(Type::String)).computed().description("On `kubernetes`: every object the provider wrote for the endpoint, as `APIVERSION/KIND/NAMESPACE/NAME`; null elsewhere."))
            .block(kubernetes_block())
            .block(
                NestedBlock::new(
                    "variant",
                    Nesting::List,
                    Block::new()
                        .description("A model version that serves a share of the traffic. Weights must total 100. Clients can pin a variant with the header `x-modelplane-variant: NAME`.")
                        .attribute(Attribute::new("name", Type::String).required().description("Variant name, e.g. `stable` or `canary`."))
                        .attribute(Attribute::new("model", Type::String).required().description("The `id` of a `modelplane_model`. Every variant and the shadow must come from the same store."))
                        .attribute(Attribute::new("weight", Type::Number).required().description("Share of requests, 0–100; the weights of all variants total 100.")),
                )
                .min_items(1),
            )
            .block(NestedBlock::new(
                "shadow",
                Nesting::Single,
                Block::new()
                    .description("A model version that receives a copy of every request; its answers are discarded, its metrics kept.")
                    .attribute(Attribute::new("model", Type::String).required().description("The `id` of a `modelplane_model`.")),
            ))
            .block(NestedBlock::new(
                "batching",
                Nesting::Single,
                Block::new()
                    .description("Dynamic batching of concurrent requests. Changing it restarts the server (without downtime).")
                    .attribute(Attribute::new("max_batch_size", Type::Number).optional().description("Most rows per batch (default 32)."))
                    .attribute(Attribute::new("max_delay_ms", Type::Number).optional().description("Longest a partial batch waits for more requests while a worker is free (default 0).")),
            ))
            .block(NestedBlock::new(
                "limits",
                Nesting::Single,
                Block::new()
                    .description("Request limits. Changing them restarts the server (without downtime).")
                    .attribute(Attribute::new("max_body_bytes", Type::Number).optional().description("Largest request body (default 64 MiB)."))
                    .attribute(Attribute::new("request_timeout_ms", Type::Number).optional().description("Longest a request may take (default 30000)."))
                    .attribute(Attribute::new("workers", Type::Number).optional().description("Concurrent model computations (default: the CPUs).")),
            ))
            .block(NestedBlock::new(
                "monitoring",
                Nesting::Single,
                Block::new()
                    .description(
                        "Windows of the statistics the server exports for a `modelplane_monitor`. Changing them restarts the \
                         server (without downtime); the statistics start again from empty.",
                    )
                    .attribute(Attribute::new("drift_window", Type::String).optional().description(
                        "Sliding window of the drift statistics (PSI and KS per feature and of the predictions against the \
                         model's baseline), e.g. `15m` (default `5m`).",
                    ))
                    .attribute(Attribute::new("feedback_window", Type::String).optional().description(
                        "Window of the rolling accuracy and mean absolute error from ground-truth feedback, e.g. `1h` (default `1h`).",
                    )),
            ))
            .block(NestedBlock::new(
                "container",
                Nesting::Single,
                Block::new()
                    .description(
                        "How the container runs, on `container` clusters. A change replaces the container (see the update notes). \
                         Object-store credentials reach the container from the host's instance or workload identity, or through \
                         `extra_args` (`--env-file`): the provider does not copy keys into engine metadata.",
                    )
                    .attribute(Attribute::new("cpus", Type::Number).optional().description("CPU limit, e.g. `1.5`."))
                    .attribute(Attribute::new("memory", Type::String).optional().description("Memory limit, e.g. `512m` or `2g`."))
                    .attribute(Attribute::new("restart", Type::String).optional().description("Restart policy: `no`, `on-failure`, `always` or `unless-stopped` (default). Rootless podman restarts after a reboot only through systemd."))
                    .attribute(Attribute::new("gpus", Type::Number).optional().description("GPUs for the container: CDI devices `nvidia.com/gpu=0..N-1` on podman, `--gpus N` on docker (needs the NVIDIA Container Toolkit)."))
                    .attribute(Attribute::new("extra_args", Type::list(Type::String)).optional().description("More arguments for the engine's `run`, before the image, e.g. `[\"--network\", \"host\"]`. On the host's network nothing is published and restarts start the new container before the old one stops.")),
            ))
            .block(NestedBlock::new(
                "benchmark",
                Nesting::Single,
                Block::new()
                    .description("The benchmark hook: a load test after every create and update, against the endpoint itself.")
                    .attribute(Attribute::new("payload", Type::String).required().description("An Open Inference Protocol JSON inference request, e.g. `file(\"${path.module}/request.json\")`."))
                    .attribute(Attribute::new("concurrency", Type::Number).optional().description("Requests in flight (default 4)."))
                    .attribute(Attribute::new("duration", Type::String).optional().description("How long to measure, e.g. `5s` (default `3s`)."))
                    .attribute(Attribute::new("warmup", Type::String).optional().description("Load before measuring, e.g. `1s` (default `500ms`)."))
                    .attribute(Attribute::new("protocol", Type::String).optional().description("`rest` (default) or `grpc`."))
                    .block(NestedBlock::new(
                        "slo",
                        Nesting::Single,
                        Block::new()
                            .description("Thresholds the endpoint must meet; a miss rolls the change back and fails the apply.")
                            .attribute(Attribute::new("p50_ms", Type::Number).optional().description("Highest acceptable median latency, ms."))
                            .attribute(Attribute::new("p99_ms", Type::Number).optional().description("Highest acceptable 99th percentile latency, ms."))
                            .attribute(Attribute::new("min_rps", Type::Number).optional().description("Lowest acceptable throughput, requests per second."))
                            .attribute(Attribute::new("max_error_rate", Type::Number).optional().description("Highest acceptable share of failed requests, 0–1 (default 0).")),
                    )),
            )),
    )
}

fn kubernetes_block() -> NestedBlock {
    NestedBlock::new(
        "kubernetes",
        Nesting::Single,
        Block::new()
            .description("How the endpoint runs on a `kubernetes` cluster: a Deployment of `image` in a GPU partition's namespace, with a Service (HTTP and gRPC), a PodDisruptionBudget, a ServiceAccount, a HorizontalPodAutoscaler when `max_replicas` > `min_replicas`, and optional exposure. Models are fetched by the server from the store (an `s3`, `s3_compatible` or `azure_blob` store: pods cannot read this machine's folders).")
            .attribute(Attribute::new("partition", Type::String).optional().description("The cluster partition (purpose) to run in. Default `inference`."))
            .attribute(Attribute::new("min_replicas", Type::Number).optional().description("Replicas, or the autoscaler's minimum. Default 1."))
            .attribute(Attribute::new("max_replicas", Type::Number).optional().description("The autoscaler's maximum; above `min_replicas`, a HorizontalPodAutoscaler scales on CPU. Default: `min_replicas` (no autoscaler)."))
            .attribute(Attribute::new("target_cpu_percent", Type::Number).optional().description("Average CPU utilisation (of the request) the autoscaler aims at. Default 70."))
            .attribute(Attribute::new("target_inflight", Type::Number).optional().description("Also scale on requests in flight per pod (`modelplane_inflight_requests`), when the cluster serves the custom metrics API (e.g. prometheus-adapter); checked at apply, with a warning when absent."))
            .attribute(Attribute::new("cpu", Type::String).optional().description("CPU request per pod. Default `500m`."))
            .attribute(Attribute::new("memory", Type::String).optional().description("Memory request and limit per pod. Default `1Gi`."))
            .attribute(Attribute::new("gpus", Type::Number).optional().description("`nvidia.com/gpu` per pod. Default 0."))
            .attribute(Attribute::new("service_account_annotations", Type::map(Type::String)).optional().description("Annotations of the endpoint's ServiceAccount, for IRSA (`eks.amazonaws.com/role-arn`) or Azure workload identity (`azure.workload.identity/client-id`), through which the server reads the store."))
            .attribute(Attribute::new("env_from_secret", Type::String).optional().description("An existing Secret in the partition's namespace whose keys become the server's environment, e.g. `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` for an S3-compatible store. Its values never pass through Terraform."))
            .attribute(Attribute::new("image_pull_secret", Type::String).optional().description("An existing Secret of type `kubernetes.io/dockerconfigjson` for a private registry."))
            .attribute(Attribute::new("service_type", Type::String).optional().description("`ClusterIP` (default), `NodePort` or `LoadBalancer`."))
            .attribute(Attribute::new("rollout_timeout", Type::String).optional().description("How long apply waits for the rollout before it fails with what the pods and events say. Default `10m`."))
            .block(NestedBlock::new(
                "expose",
                Nesting::Single,
                Block::new()
                    .description("Exposure outside the cluster.")
                    .attribute(Attribute::new("kind", Type::String).required().description("`ingress` (networking.k8s.io Ingress), `http_route` (Gateway API HTTPRoute) or `route` (OpenShift Route)."))
                    .attribute(Attribute::new("host", Type::String).required().description("Host name clients use, e.g. `fraud.ml.example.com`."))
                    .attribute(Attribute::new("class_name", Type::String).optional().description("`ingress`: the IngressClass."))
                    .attribute(Attribute::new("gateway", Type::String).optional().description("`http_route` (required): the Gateway, `NAME` or `NAMESPACE/NAME`."))
                    .attribute(Attribute::new("tls_secret", Type::String).optional().description("`ingress`: the TLS Secret for `host`; `route`: set to anything for edge TLS with the router's certificate.")),
            )),
    )
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    modelplane_serve::cli::parse_duration(s)
}

fn fingerprint(name: &str, token: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(b"modelplane-endpoint-token\0");
    h.update(name.as_bytes());
    h.update(b"\0");
    h.update(token.as_bytes());
    hex::encode(&h.finalize()[..12])
}

/// Model references of a plan: `(variant name or "shadow", id)`.
fn references(m: &Model) -> Vec<(String, Attr<String>)> {
    let mut out: Vec<(String, Attr<String>)> = m
        .variant
        .iter()
        .map(|v| (v.name.clone(), v.model.clone()))
        .collect();
    if let Some(s) = &m.shadow {
        out.push(("shadow".into(), s.model.clone()));
    }
    out
}

impl Endpoint {
    fn state_dir(&self) -> std::path::PathBuf {
        self.config.get().cloned().unwrap_or_default().state_dir()
    }

    /// The server configuration for a plan: `None` (with diagnostics) when it cannot be made.
    fn serve_config(&self, m: &Model, dir: &Dir, diags: &mut Diagnostics) -> Option<ServeConfig> {
        let mut repository: Option<String> = None;
        let mut refs = Vec::new();
        for (who, id) in references(m) {
            let id = id.known()?.clone();
            let Some((store, name, version)) = stores::parse_version_id(&id) else {
                diags.error_at(AttributePath::attr("variant"), "Invalid model reference", format!("{who}: {id:?} is not the id of a modelplane_model (STORE_ID/NAME/VERSION)."));
                return None;
            };
            let repo = match stores::open(&store) {
                Ok(s) => s.repository(),
                Err(e) => {
                    diags.error_at(
                        AttributePath::attr("variant"),
                        "Invalid model reference",
                        format!("{who}: {e}"),
                    );
                    return None;
                }
            };
            if repository.as_ref().is_some_and(|r| r != &repo) {
                diags.error_at(AttributePath::attr("variant"), "Models from different stores", format!("{who} comes from {store}, but earlier variants from another store; an endpoint serves from one store."));
                return None;
            }
            repository = Some(repo);
            refs.push((who, name, version));
        }
        let batching = {
            let d = BatchConfig::default();
            let b = m.batching.clone().unwrap_or(Batching {
                max_batch_size: None,
                max_delay_ms: None,
            });
            BatchConfig {
                max_batch_size: b.max_batch_size.map_or(d.max_batch_size, |v| v as usize),
                max_delay_ms: b.max_delay_ms.map_or(d.max_delay_ms, |v| v as u64),
                ..d
            }
        };
        let mut limits = modelplane_serve::config::Limits::default();
        if let Some(l) = &m.limits {
            if let Some(v) = l.max_body_bytes {
                limits.max_body_bytes = v as usize;
            }
            if let Some(v) = l.request_timeout_ms {
                limits.request_timeout_ms = v as u64;
            }
            limits.workers = l.workers.map(|v| v as usize);
        }
        let mut monitoring = modelplane_serve::config::MonitoringConfig::default();
        if let Some(mo) = &m.monitoring {
            let secs = |d: &Option<String>| {
                d.as_deref()
                    .and_then(|d| parse_duration(d).ok())
                    .map(|d| d.as_secs().max(1))
            };
            if let Some(s) = secs(&mo.drift_window) {
                monitoring.drift_window_seconds = s;
            }
            if let Some(s) = secs(&mo.feedback_window) {
                monitoring.feedback_window_seconds = s;
            }
        }
        let (port, grpc_port) = (*m.port.known()? as u16, *m.grpc_port.known()? as u16);
        let mut models: Vec<ModelConfig> = Vec::new();
        for (_, name, version) in &refs {
            if !models
                .iter()
                .any(|mc| &mc.name == name && mc.version.as_deref() == Some(version))
            {
                models.push(ModelConfig {
                    batching: batching.clone(),
                    ..ModelConfig::named(name.clone(), Some(version.clone()))
                });
            }
        }
        let variants = m
            .variant
            .iter()
            .zip(&refs)
            .map(|(v, (_, name, version))| VariantConfig {
                name: v.name.clone(),
                model: name.clone(),
                version: Some(version.clone()),
                weight: v.weight.known().copied().unwrap_or(0) as u32,
            })
            .collect();
        let shadow = m
            .shadow
            .as_ref()
            .and_then(|_| refs.last())
            .map(|(_, name, version)| ShadowConfig {
                model: name.clone(),
                version: Some(version.clone()),
            });
        Some(ServeConfig {
            http: SocketAddr::from(([127, 0, 0, 1], port)),
            grpc: Some(SocketAddr::from(([127, 0, 0, 1], grpc_port))),
            // Artifacts of remote stores are downloaded once per sha256 and shared by endpoints.
            cache_dir: repository
                .as_deref()
                .is_some_and(|r| r.contains("://"))
                .then(|| self.state_dir().join("cache")),
            repository: repository.unwrap_or_default(),
            models,
            endpoints: vec![EndpointConfig {
                name: m.name.clone(),
                variants,
                shadow,
                sticky_header: m.sticky_header.clone(),
            }],
            limits,
            auth: AuthConfig {
                token_env: None,
                token_file: Some(dir.path("token").display().to_string()),
                none: false,
            },
            monitoring,
            tls: None,
            // An endpoint whose model does not load is an apply that fails, with the model's
            // reason, not a server that serves part of what was declared.
            strict: true,
            reuse_port: true,
        })
    }

    /// How this plan's servers start: a local process, or a container of `image` (or of
    /// `pinned`, the digest a running container of the same `image` already runs).
    fn launcher(
        &self,
        m: &Model,
        cfg: &ServeConfig,
        pinned: Option<&str>,
    ) -> Result<Launcher, String> {
        let cluster = m.cluster.known().cloned().unwrap_or_default();
        let (platform, name) = platforms::parse_cluster_id(&cluster)?;
        if platform != "container" {
            return Ok(Launcher::Local);
        }
        let engine = container::engine_of(&self.state_dir(), &name)?;
        let (_, models, cache) = servers::container_view(cfg);
        let image = pinned
            .map(String::from)
            .or_else(|| m.image.clone())
            .ok_or("image is required on container clusters")?;
        Ok(Launcher::Container(Box::new(container::Launch {
            engine,
            endpoint: m.name.clone(),
            image,
            settings: m.container.clone().unwrap_or_default(),
            ports: [cfg.http.port()]
                .into_iter()
                .chain(cfg.grpc.map(|g| g.port()))
                .collect(),
            models,
            cache,
        })))
    }

    fn meta(m: &Model, ready: bool) -> Meta {
        Meta {
            cluster: m.cluster.known().cloned().unwrap_or_default(),
            ready,
            token_fingerprint: m.token_fingerprint.known().cloned().unwrap_or_default(),
            sticky_header: m.sticky_header.clone(),
            batching: m.batching.clone(),
            limits: m.limits.clone(),
            monitoring: m.monitoring.clone(),
            benchmark: m.benchmark.clone(),
            benchmark_result: m.benchmark_result.known().cloned(),
            image: m.image.clone(),
            container: m.container.clone(),
        }
    }
}

/// Whether two configurations differ in what a reload cannot change.
fn needs_restart(old: &ServeConfig, new: &ServeConfig) -> bool {
    let batching = |c: &ServeConfig| c.models.first().map(|m| m.batching.clone());
    old.http != new.http
        || old.grpc != new.grpc
        || old.limits != new.limits
        || old.auth != new.auth
        || batching(old) != batching(new)
        || old.monitoring != new.monitoring
}

fn url_of(port: i64) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Writes the server's configuration, and the `file_sd` targets file that monitors'
/// Prometheus reads, so that a moved endpoint is scraped at its new address at once.
fn write_config(dir: &Dir, cfg: &ServeConfig) -> std::io::Result<()> {
    dir.write_json("config.json", cfg)?;
    servers::publish(dir, cfg)?;
    le::write_targets(dir, cfg)
}

/// Starts a server on the folder's configuration and waits for it; on failure it is
/// stopped and the error says why, with its last log lines.
async fn start(launcher: &Launcher, dir: &Dir, url: &str, ctx: &mut Ctx) -> Result<Server, String> {
    let server = launcher.spawn(dir, DRAIN_SECONDS).await?;
    let r = servers::wait_ready(url, &server, READY_TIMEOUT, ctx.stopped()).await;
    match r {
        Ok(()) => Ok(server),
        Err(why) => {
            let log = server.log_tail(dir, 20).await;
            let log_name = server.log_name(dir);
            server.stop(Duration::from_secs(2)).await;
            let what = match why {
                le::NotReady::Exited => "the server exited before it was ready".to_string(),
                le::NotReady::Timeout => format!(
                    "the server was not ready after {}s",
                    READY_TIMEOUT.as_secs()
                ),
                le::NotReady::Interrupted => {
                    "interrupted (Terraform was asked to stop) while the server was starting"
                        .to_string()
                }
            };
            let hint = if log.contains("Address already in use")
                || log.contains("address already in use")
            {
                "\nA port of the endpoint is in use on this host: choose other port and grpc_port, or stop what holds them."
            } else {
                ""
            };
            Err(format!("{what}. Last lines of {log_name}:\n{log}{hint}"))
        }
    }
}

/// Runs the benchmark hook; `Err` holds the SLO verdict (measured against required).
async fn benchmark(m: &Model, token: &str) -> Result<Option<BenchResult>, String> {
    let Some(b) = &m.benchmark else {
        return Ok(None);
    };
    let payload: serde_json::Value = serde_json::from_str(&b.payload)
        .map_err(|e| format!("benchmark.payload is not JSON: {e}"))?;
    let protocol = match b.protocol.as_deref() {
        Some("grpc") => modelplane_serve::bench::Protocol::Grpc,
        _ => modelplane_serve::bench::Protocol::Rest,
    };
    let url = match protocol {
        modelplane_serve::bench::Protocol::Grpc => format!(
            "http://{}",
            m.grpc_address.known().cloned().unwrap_or_default()
        ),
        _ => m.url.known().cloned().unwrap_or_default(),
    };
    let spec = modelplane_serve::bench::Spec {
        url,
        model: m.name.clone(),
        version: None,
        protocol,
        payload,
        concurrency: b.concurrency.unwrap_or(4).max(1) as usize,
        duration: Some(parse_duration(b.duration.as_deref().unwrap_or("3s"))?),
        requests: None,
        warmup: parse_duration(b.warmup.as_deref().unwrap_or("500ms"))?,
        token: Some(token.to_string()),
        headers: Vec::new(),
        progress: false,
    };
    let r = modelplane_serve::bench::run(&spec)
        .await
        .map_err(|e| format!("the benchmark could not run: {e}"))?;
    let result = BenchResult {
        requests: r.requests as i64,
        errors: r.errors as i64,
        rps: round3(r.rps),
        p50_ms: round3(r.p50_ms),
        p90_ms: round3(r.p90_ms),
        p99_ms: round3(r.p99_ms),
        max_ms: round3(r.max_ms),
    };
    let mut misses = Vec::new();
    let total = (r.requests + r.errors).max(1) as f64;
    let error_rate = r.errors as f64 / total;
    let slo = b.slo.clone().unwrap_or(Slo {
        p50_ms: None,
        p99_ms: None,
        min_rps: None,
        max_error_rate: None,
    });
    if let Some(x) = slo.p50_ms {
        if r.p50_ms > x {
            misses.push(format!("p50 {:.3} ms > required {x} ms", r.p50_ms));
        }
    }
    if let Some(x) = slo.p99_ms {
        if r.p99_ms > x {
            misses.push(format!("p99 {:.3} ms > required {x} ms", r.p99_ms));
        }
    }
    if let Some(x) = slo.min_rps {
        if r.rps < x {
            misses.push(format!(
                "throughput {:.1} req/s < required {x} req/s",
                r.rps
            ));
        }
    }
    let max_err = slo.max_error_rate.unwrap_or(0.0);
    if error_rate > max_err {
        misses.push(format!(
            "error rate {:.4} ({} of {} requests) > allowed {max_err}{}",
            error_rate,
            r.errors,
            r.requests + r.errors,
            r.first_error
                .as_ref()
                .map(|e| format!("; first error: {e}"))
                .unwrap_or_default()
        ));
    }
    if misses.is_empty() {
        Ok(Some(result))
    } else {
        Err(format!(
            "SLO missed: {}.\nMeasured: {}",
            misses.join("; "),
            r.summary()
        ))
    }
}

/// The benchmark hook, cut short when Terraform asks the provider to stop.
async fn measure(m: &Model, token: &str, ctx: &mut Ctx) -> Result<Option<BenchResult>, String> {
    tokio::select! {
        r = benchmark(m, token) => r,
        _ = ctx.stopped() => Err("interrupted: Terraform was asked to stop during the benchmark".to_string()),
    }
}

/// What it takes to put an endpoint's previous configuration back, after a failed change
/// or a missed SLO.
struct Rollback {
    dir: Dir,
    old_cfg: Option<ServeConfig>,
    old_token: String,
    url: String,
    restart: bool,
    old_server: Option<Server>,
    started: Option<Server>,
    /// How the previous servers were started.
    launcher: Launcher,
}

impl Rollback {
    async fn run(self) -> Result<(), String> {
        let Some(old) = &self.old_cfg else {
            return Err("no previous configuration to go back to".to_string());
        };
        self.dir
            .write_secret("token", &self.old_token)
            .map_err(|e| e.to_string())?;
        write_config(&self.dir, old).map_err(|e| e.to_string())?;
        let old_alive = match &self.old_server {
            Some(s) => s.alive().await,
            None => false,
        };
        match (self.restart, self.old_server) {
            (false, _) => le::admin(
                &self.url,
                &self.old_token,
                reqwest::Method::POST,
                "/v2/admin/reload",
            )
            .await
            .map(|_| ()),
            (true, Some(olds)) if old_alive => {
                // The old server still runs (the new one failed before it was stopped).
                if let Some(news) = self.started {
                    news.stop(Duration::from_secs(DRAIN_SECONDS)).await;
                }
                self.dir
                    .write_json("process.json", &olds)
                    .map_err(|e| e.to_string())
            }
            (true, _) => {
                // Servers that cannot share the ports: the new one goes first.
                let mut started = self.started;
                if !self.launcher.overlaps() {
                    if let Some(news) = started.take() {
                        news.stop(Duration::from_secs(DRAIN_SECONDS)).await;
                    }
                }
                let s = self.launcher.spawn(&self.dir, DRAIN_SECONDS).await?;
                if let Err(e) =
                    servers::wait_ready(&self.url, &s, READY_TIMEOUT, std::future::pending()).await
                {
                    let log = s.log_tail(&self.dir, 20).await;
                    return Err(format!(
                        "the previous configuration did not start: {e:?}\n{log}"
                    ));
                }
                if let Some(news) = started {
                    news.stop(Duration::from_secs(DRAIN_SECONDS)).await;
                }
                Ok(())
            }
        }
    }
}

/// sha256 of every referenced model version, from the store's model.json; unknown while a
/// reference is.
async fn digests(m: &Model) -> Attr<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (_, id) in references(m) {
        let Attr::Known(id) = id else {
            return Attr::Unknown;
        };
        let Some((store, name, version)) = stores::parse_version_id(&id) else {
            return Attr::Unknown;
        };
        let Ok(s) = stores::open(&store) else {
            return Attr::Unknown;
        };
        let sha = recorded_sha256(s.as_ref(), &name, &version)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        out.insert(id, sha);
    }
    Attr::Known(out)
}

/// The sha256 a version's model.json records; `None` when the version is not in the store.
async fn recorded_sha256(
    s: &dyn stores::Store,
    name: &str,
    version: &str,
) -> Result<Option<String>, stores::StoreError> {
    Ok(s.get(name, version, "model.json").await?.map(|b| {
        serde_json::from_slice::<serde_json::Value>(&b)
            .ok()
            .and_then(|j| j["sha256"].as_str().map(String::from))
            .unwrap_or_default()
    }))
}

/// Replaces the recorded split with what the server's configuration serves, so that drift
/// shows in the plan. `repository` is the store as this machine names it.
fn reflect_served(state: &mut Model, cfg: &ServeConfig, repository: &str) {
    let Some(ep) = cfg.endpoints.iter().find(|e| e.name == state.name) else {
        return;
    };
    let store = stores::id_of_repository(repository);
    let id = |model: &str, version: &Option<String>| {
        stores::version_id(&store, model, version.as_deref().unwrap_or(""))
    };
    state.variant = ep
        .variants
        .iter()
        .map(|v| Variant {
            name: v.name.clone(),
            model: Attr::Known(id(&v.model, &v.version)),
            weight: Attr::Known(i64::from(v.weight)),
        })
        .collect();
    state.shadow = ep.shadow.as_ref().map(|s| Shadow {
        model: Attr::Known(id(&s.model, &s.version)),
    });
    state.sticky_header = ep.sticky_header.clone();
}

fn on_kubernetes(m: &Model) -> bool {
    m.cluster
        .known()
        .is_some_and(|c| c.starts_with("kubernetes/"))
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[tfplugin::async_trait]
impl tfplugin::Resource for Endpoint {
    type Model = Model;

    fn type_name(&self) -> &'static str {
        "modelplane_endpoint"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(&self, config: &Config, diags: &mut Diagnostics) {
        crate::check_name(config, diags);
        if let Attr::Known(c) = config.get::<String>("cluster", diags) {
            match platforms::parse_cluster_id(&c) {
                Err(e) => diags.error_at(AttributePath::attr("cluster"), "Invalid cluster", e),
                Ok((p, _)) => {
                    if let Some(why) = platforms::unavailable(&p) {
                        diags.error_at(AttributePath::attr("cluster"), "Unsupported platform", why);
                    }
                    let image = config.get::<String>("image", diags);
                    let has_container = !config.elements("container").is_empty();
                    if p == "kubernetes" && image.is_null() {
                        diags.error_at(AttributePath::attr("image"), "Missing image", "endpoints on a kubernetes cluster run an image: set image = modelplane_serving_image.NAME.reference (a registry the nodes can pull from).");
                    }
                    if p == "kubernetes" && has_container {
                        diags.error_at(AttributePath::attr("container"), "Not used on kubernetes", "the container block applies to container clusters; on kubernetes, set resources in the kubernetes block (cpu, memory, gpus).");
                    }
                    kubernetes::validate(config, p == "kubernetes", diags);
                    if p == "container" && image.is_null() {
                        diags.error_at(AttributePath::attr("image"), "Missing image", "endpoints on a container cluster run an image: set image = modelplane_serving_image.NAME.reference (or another reference to the modelplane-serve image).");
                    }
                    if p == "local" && !image.is_null() {
                        diags.error_at(AttributePath::attr("image"), "Not used on local", "a local cluster runs the server the provider carries; image applies to container clusters. Remove it, or run the endpoint on a container cluster.");
                    }
                    if p == "local" && has_container {
                        diags.error_at(AttributePath::attr("container"), "Not used on local", "the container block applies to container clusters; remove it for a local cluster.");
                    }
                }
            }
        }
        if let Some(c) = config.elements("container").first() {
            let at = |x: &str| path(&[a("container"), a(x)]);
            if let Attr::Known(r) = c.get::<String>("restart", diags) {
                if !container::RESTART_POLICIES.contains(&r.as_str()) {
                    diags.error_at(at("restart"), "Invalid restart policy", format!("restart {r:?} must be one of \"no\", \"on-failure\", \"always\" or \"unless-stopped\"."));
                }
            }
            if let Attr::Known(m) = c.get::<String>("memory", diags) {
                if let Err(e) = container::check_memory(&m) {
                    diags.error_at(at("memory"), "Invalid memory limit", e);
                }
            }
            if let Attr::Known(n) = c.get::<f64>("cpus", diags) {
                if n <= 0.0 {
                    diags.error_at(
                        at("cpus"),
                        "Invalid CPU limit",
                        format!("cpus {n} must be more than 0, e.g. 1.5."),
                    );
                }
            }
            if let Attr::Known(n) = c.get::<i64>("gpus", diags) {
                if n < 0 {
                    diags.error_at(at("gpus"), "Invalid GPU count", "gpus must be 0 or more.");
                }
            }
        }
        let variants = config.elements("variant");
        let mut total = Some(0i64);
        let mut parts = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, v) in variants.iter().enumerate() {
            let at = |x: &str| path(&[a("variant"), PathStep::Index(i as i64), a(x)]);
            let name = v.get::<String>("name", diags);
            if let Attr::Known(n) = &name {
                if !names.insert(n.clone()) {
                    diags.error_at(
                        at("name"),
                        "Duplicate variant",
                        format!("variant {n:?} is declared twice; variant names must be unique."),
                    );
                }
            }
            match v.get::<i64>("weight", diags) {
                Attr::Known(w) => {
                    if !(0..=100).contains(&w) {
                        diags.error_at(
                            at("weight"),
                            "Invalid weight",
                            format!("weight {w} must be between 0 and 100."),
                        );
                    }
                    total = total.map(|t| t + w);
                    parts.push(format!(
                        "{} {w}",
                        name.known().cloned().unwrap_or_else(|| format!("#{i}"))
                    ));
                }
                _ => total = None,
            }
            if let Attr::Known(id) = v.get::<String>("model", diags) {
                if stores::parse_version_id(&id).is_none() {
                    diags.error_at(at("model"), "Invalid model reference", format!("{id:?} is not the id of a modelplane_model (STORE_ID/NAME/VERSION); use modelplane_model.NAME.id."));
                }
            }
        }
        if let Some(t) = total {
            if t != 100 && !variants.is_empty() {
                diags.error_at(
                    AttributePath::attr("variant"),
                    "Variant weights must total 100",
                    format!(
                        "the weights add up to {t} ({}); adjust them so that they total 100.",
                        parts.join(" + ")
                    ),
                );
            }
        }
        if let Some(mo) = config.elements("monitoring").first() {
            for (f, def) in [("drift_window", "5m"), ("feedback_window", "1h")] {
                if let Attr::Known(d) = mo.get::<String>(f, diags) {
                    match parse_duration(&d) {
                        Err(e) => diags.error_at(
                            path(&[a("monitoring"), a(f)]),
                            "Invalid duration",
                            format!("{e}; e.g. {def:?}."),
                        ),
                        Ok(v) if v < Duration::from_secs(1) => diags.error_at(
                            path(&[a("monitoring"), a(f)]),
                            "Invalid duration",
                            format!("{f} must be at least 1s."),
                        ),
                        Ok(_) => {}
                    }
                }
            }
        }
        if let Some(b) = config.elements("benchmark").first() {
            for (f, def) in [("duration", "3s"), ("warmup", "500ms")] {
                if let Attr::Known(d) = b.get::<String>(f, diags) {
                    if let Err(e) = parse_duration(&d) {
                        diags.error_at(
                            path(&[a("benchmark"), a(f)]),
                            "Invalid duration",
                            format!("{e}; e.g. {def:?}."),
                        );
                    }
                }
            }
            if let Attr::Known(p) = b.get::<String>("protocol", diags) {
                if p != "rest" && p != "grpc" {
                    diags.error_at(
                        path(&[a("benchmark"), a("protocol")]),
                        "Invalid protocol",
                        format!("protocol {p:?} must be \"rest\" or \"grpc\"."),
                    );
                }
            }
            if let Attr::Known(c) = b.get::<i64>("concurrency", diags) {
                if c < 1 {
                    diags.error_at(
                        path(&[a("benchmark"), a("concurrency")]),
                        "Invalid concurrency",
                        "concurrency must be 1 or more.",
                    );
                }
            }
            if let Attr::Known(p) = b.get::<String>("payload", diags) {
                match serde_json::from_str::<serde_json::Value>(&p) {
                    Err(e) => diags.error_at(path(&[a("benchmark"), a("payload")]), "Invalid payload", format!("payload is not JSON ({e}); give an Open Inference Protocol request such as {{\"inputs\": [{{\"name\": \"input\", \"shape\": [1, 4], \"datatype\": \"FP32\", \"data\": [5.1, 3.5, 1.4, 0.2]}}]}}.")),
                    Ok(j) if !j["inputs"].is_array() => diags.error_at(path(&[a("benchmark"), a("payload")]), "Invalid payload", "payload has no \"inputs\" array; it must be an Open Inference Protocol inference request."),
                    Ok(_) => {}
                }
            }
        }
        for (f, lo, hi) in [("port", 1, 65535), ("grpc_port", 1, 65535)] {
            if let Attr::Known(p) = config.get::<i64>(f, diags) {
                if p < lo || p > hi {
                    diags.error_at(
                        AttributePath::attr(f),
                        "Invalid port",
                        format!("{f} {p} must be between {lo} and {hi}."),
                    );
                }
            }
        }
        if let (Attr::Known(p), Attr::Known(g)) = (
            config.get::<i64>("port", diags),
            config.get::<i64>("grpc_port", diags),
        ) {
            if p == g {
                diags.error_at(
                    AttributePath::attr("grpc_port"),
                    "Port clash",
                    "port and grpc_port must differ.",
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
        // Model references that are known must exist: a typo is caught before anything runs.
        // Their digests are planned too: a version replaced under the same id is a change.
        let mut store_seen: Option<String> = None;
        let mut digests = Some(BTreeMap::new());
        for (i, (who, id)) in references(plan).into_iter().enumerate() {
            let Attr::Known(id) = id else {
                digests = None;
                continue;
            };
            let Some((store, name, version)) = stores::parse_version_id(&id) else {
                digests = None;
                continue;
            };
            let at = if who == "shadow" && i == plan.variant.len() {
                path(&[a("shadow"), a("model")])
            } else {
                path(&[a("variant"), PathStep::Index(i as i64), a("model")])
            };
            if store_seen.as_ref().is_some_and(|s| s != &store) {
                ctx.diags.error_at(at, "Models from different stores", format!("{who} serves {id}, from another store than the variants before it; an endpoint serves from one store."));
                return;
            }
            store_seen = Some(store.clone());
            let s = match stores::open(&store) {
                Ok(s) => s,
                Err(e) => {
                    ctx.diags
                        .error_at(at, "Invalid model reference", e.to_string());
                    return;
                }
            };
            match recorded_sha256(s.as_ref(), &name, &version).await {
                Ok(None) => {
                    ctx.diags.error_at(
                        at,
                        "Unknown model",
                        format!("{who}: model {name} version {version} is not in the store {store}. Register it with a modelplane_model resource and refer to its id."),
                    );
                    return;
                }
                Ok(Some(sha)) => {
                    if let Some(d) = digests.as_mut() {
                        d.insert(id, sha);
                    }
                }
                Err(_) => digests = None,
            }
        }
        plan.model_digests = digests.map_or(Attr::Unknown, Attr::Known);
        // The token: only its fingerprint is planned.
        let fp = match config.get::<String>("token_wo", &mut ctx.diags) {
            Attr::Known(t) => Attr::Known(fingerprint(&plan.name, &t)),
            Attr::Null => Attr::Known("generated".to_string()),
            Attr::Unknown => Attr::Unknown,
        };
        let on_container = plan
            .cluster
            .known()
            .is_some_and(|c| c.starts_with("container/"));
        match prior {
            None => {
                plan.running_image = if on_container {
                    Attr::Unknown
                } else {
                    Attr::Null
                };
                plan.status = Attr::Known("running".into());
                plan.token_fingerprint = fp;
                plan.id = plan.cluster.clone().map(|c| format!("{c}/{}", plan.name));
                plan.state_path = Attr::Known(
                    Dir::new(&self.state_dir(), &plan.name)
                        .0
                        .display()
                        .to_string(),
                );
                plan.token_file = Attr::Known(
                    Dir::new(&self.state_dir(), &plan.name)
                        .path("token")
                        .display()
                        .to_string(),
                );
                if let Attr::Known(p) = plan.port {
                    plan.url = Attr::Known(url_of(p));
                }
                if let Attr::Known(p) = plan.grpc_port {
                    plan.grpc_address = Attr::Known(format!("127.0.0.1:{p}"));
                }
            }
            Some(prior) => {
                // Changes the framework cannot see in the configuration: a server to start
                // again, a new token. They are updates too, so the benchmark runs again.
                if prior.status.known().map(String::as_str) != Some("running") {
                    plan.status = Attr::Known("running".into());
                    plan.benchmark_result = Attr::Unknown;
                }
                if fp != prior.token_fingerprint {
                    plan.token_fingerprint = fp;
                    plan.benchmark_result = Attr::Unknown;
                }
                if plan.port != prior.port {
                    plan.url = plan.port.clone().map(url_of);
                }
                if on_container
                    && (plan.image != prior.image
                        || prior.status.known().map(String::as_str) != Some("running"))
                {
                    plan.running_image = Attr::Unknown;
                }
                if plan.grpc_port != prior.grpc_port {
                    plan.grpc_address = plan.grpc_port.clone().map(|p| format!("127.0.0.1:{p}"));
                }
            }
        }
        if plan.benchmark.is_none() {
            plan.benchmark_result = Attr::Null;
        }
        if on_kubernetes(plan) {
            kubernetes::plan(prior, plan, config, &mut ctx.diags);
        } else {
            plan.objects = Attr::Null;
        }
    }

    async fn create(&self, mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
        if on_kubernetes(&plan) {
            return self.create_kubernetes(plan, ctx).await;
        }
        let dir = Dir::new(&self.state_dir(), &plan.name);
        // A folder left by an interrupted create is cleaned up; a finished endpoint is not ours to take.
        if dir.exists() {
            let meta: Option<Meta> = dir.read_json("meta.json");
            let live = servers::live(&dir).await;
            if meta.as_ref().is_some_and(|m| m.ready) && live.is_some() {
                ctx.diags.error_at(
                    AttributePath::attr("name"),
                    "Endpoint already exists",
                    format!(
                        "an endpoint named {:?} already runs on this machine (state in {}). Choose another name, or import it: terraform import ADDRESS {}/{}",
                        plan.name,
                        dir.0.display(),
                        plan.cluster.known().cloned().unwrap_or_default(),
                        plan.name
                    ),
                );
                return None;
            }
            if let Some(s) = live {
                s.stop(Duration::from_secs(DRAIN_SECONDS)).await;
            }
            let _ = dir.remove();
        }
        if let Err(e) = dir.create() {
            ctx.diags.error(
                "Cannot create the endpoint's state folder",
                format!("{}: {e}", dir.0.display()),
            );
            return None;
        }
        let cleanup = |dir: Dir| async move {
            if let Some(s) = servers::recorded(&dir) {
                s.stop(Duration::from_secs(DRAIN_SECONDS)).await;
            }
            let _ = dir.remove();
        };
        let token = match plan.token_wo.known() {
            Some(t) => t.clone(),
            None => le::new_token(),
        };
        plan.token_wo = Attr::Null;
        if let Err(e) = dir.write_secret("token", &token) {
            ctx.diags.error("Cannot write the token", e.to_string());
            cleanup(dir).await;
            return None;
        }
        for (port, name) in [(&mut plan.port, "port"), (&mut plan.grpc_port, "grpc_port")] {
            if !port.is_known() {
                match le::free_port() {
                    Ok(p) => *port = Attr::Known(i64::from(p)),
                    Err(e) => {
                        ctx.diags.error_at(
                            AttributePath::attr(name),
                            "No free port",
                            e.to_string(),
                        );
                        cleanup(dir).await;
                        return None;
                    }
                }
            }
        }
        let port = *plan.port.known().expect("set above");
        plan.url = Attr::Known(url_of(port));
        plan.grpc_address = Attr::Known(format!(
            "127.0.0.1:{}",
            plan.grpc_port.known().expect("set above")
        ));
        let Some(cfg) = self.serve_config(&plan, &dir, &mut ctx.diags) else {
            cleanup(dir).await;
            return None;
        };
        let launcher = match self.launcher(&plan, &cfg, None) {
            Ok(l) => l,
            Err(e) => {
                ctx.diags
                    .error_at(AttributePath::attr("cluster"), "Cannot run the endpoint", e);
                cleanup(dir).await;
                return None;
            }
        };
        if let Launcher::Container(_) = launcher {
            if let Err(e) = std::fs::create_dir_all(servers::etc(&dir)) {
                ctx.diags
                    .error("Cannot create the endpoint's state folder", e.to_string());
                cleanup(dir).await;
                return None;
            }
        }
        if let Err(e) = write_config(&dir, &cfg)
            .and_then(|_| dir.write_json("meta.json", &Self::meta(&plan, false)))
        {
            ctx.diags
                .error("Cannot write the server configuration", e.to_string());
            cleanup(dir).await;
            return None;
        }
        match start(&launcher, &dir, &url_of(port), ctx).await {
            Ok(server) => plan.running_image = server.image().map(String::from).into(),
            Err(e) => {
                ctx.diags.error("The endpoint did not start", e);
                cleanup(dir).await;
                return None;
            }
        }
        match measure(&plan, &token, ctx).await {
            Ok(r) => plan.benchmark_result = r.into(),
            Err(e) => {
                ctx.diags.error(
                    "Benchmark failed: the endpoint was not created",
                    format!("{e}\nThe server was stopped and nothing was recorded. Relax the slo block or give the endpoint more resources."),
                );
                cleanup(dir).await;
                return None;
            }
        }
        plan.status = Attr::Known("running".into());
        plan.model_digests = digests(&plan).await;
        let _ = dir.write_json("meta.json", &Self::meta(&plan, true));
        Some(plan)
    }

    async fn read(&self, mut state: Model, ctx: &mut Ctx) -> Option<Model> {
        if on_kubernetes(&state) {
            return self.read_kubernetes(state, ctx).await;
        }
        let dir = Dir::new(&self.state_dir(), &state.name);
        if !dir.exists() {
            return None;
        }
        let Some(server) = servers::live(&dir).await else {
            state.status = Attr::Known("stopped".into());
            return Some(state);
        };
        state.running_image = server.image().map(String::from).into();
        let token = std::fs::read_to_string(dir.path("token")).unwrap_or_default();
        let url = state.url.known().cloned().unwrap_or_default();
        let served =
            match le::admin(&url, token.trim(), reqwest::Method::GET, "/v2/admin/config").await {
                Ok(j) => j,
                Err(e) => {
                    ctx.diags.warning(
                        "Endpoint not answering",
                        format!("{url}: {e}. The plan will restart it."),
                    );
                    state.status = Attr::Known("unreachable".into());
                    return Some(state);
                }
            };
        state.status = Attr::Known("running".into());
        if state.model_digests.is_null() {
            // Just imported: what the store holds is what was loaded.
            state.model_digests = digests(&state).await;
        }
        // What the server really serves replaces the recorded split, so drift shows in the plan.
        if let Ok(cfg) = serde_json::from_value::<ServeConfig>(served) {
            // A container sees its store at a mount: the host's configuration names it.
            let repository = dir
                .read_json::<ServeConfig>("config.json")
                .map_or(cfg.repository.clone(), |c| c.repository);
            reflect_served(&mut state, &cfg, &repository);
        }
        Some(state)
    }

    async fn update(&self, prior: Model, mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
        if on_kubernetes(&plan) {
            return self.update_kubernetes(prior, plan, ctx).await;
        }
        let dir = Dir::new(&self.state_dir(), &plan.name);
        if !dir.exists() {
            if let Err(e) = dir.create() {
                ctx.diags.error(
                    "Cannot create the endpoint's state folder",
                    format!("{}: {e}", dir.0.display()),
                );
                return Some(prior);
            }
        }
        let old_token = std::fs::read_to_string(dir.path("token")).unwrap_or_default();
        let token = match plan.token_wo.known() {
            Some(t) => t.clone(),
            None if plan.token_fingerprint == prior.token_fingerprint
                && !old_token.trim().is_empty() =>
            {
                old_token.trim().to_string()
            }
            None => le::new_token(),
        };
        plan.token_wo = Attr::Null;
        let old_cfg: Option<ServeConfig> = dir.read_json("config.json");
        let Some(new_cfg) = self.serve_config(&plan, &dir, &mut ctx.diags) else {
            return Some(prior);
        };
        let url = url_of(*plan.port.known().unwrap_or(&0));
        let old_server = servers::live(&dir).await;
        // A container keeps the digest it runs while `image` stays the same.
        let running = old_server
            .as_ref()
            .and_then(Server::image)
            .map(String::from)
            .or_else(|| prior.running_image.known().cloned());
        let same_image = plan.image == prior.image;
        let launchers = self
            .launcher(&plan, &new_cfg, running.as_deref().filter(|_| same_image))
            .and_then(|new| {
                let old = match &old_cfg {
                    Some(c) => self.launcher(&prior, c, running.as_deref())?,
                    None => new.clone(),
                };
                Ok((new, old))
            });
        let (launcher, old_launcher) = match launchers {
            Ok(l) => l,
            Err(e) => {
                ctx.diags
                    .error_at(AttributePath::attr("cluster"), "Cannot run the endpoint", e);
                return Some(prior);
            }
        };
        if let Launcher::Container(_) = launcher {
            if let Err(e) = std::fs::create_dir_all(servers::etc(&dir)) {
                ctx.diags
                    .error("Cannot create the endpoint's state folder", e.to_string());
                return Some(prior);
            }
        }
        let token_changed = token != old_token.trim();
        // A server that refresh found unreachable is replaced, not asked to reload.
        let unreachable = prior.status.known().map(String::as_str) == Some("unreachable");
        let container_changed = !same_image || plan.container != prior.container;
        let restart = match (&old_cfg, &old_server) {
            (Some(old), Some(_)) => {
                unreachable || token_changed || container_changed || needs_restart(old, &new_cfg)
            }
            _ => true,
        };
        // Apply the change.
        let applied: Result<Option<Server>, String> = async {
            if token_changed {
                dir.write_secret("token", &token)
                    .map_err(|e| format!("cannot write the token: {e}"))?;
            }
            write_config(&dir, &new_cfg)
                .map_err(|e| format!("cannot write the configuration: {e}"))?;
            if restart {
                // The new server starts before the old one stops where both can hold the
                // ports; otherwise the old one goes first.
                if !launcher.overlaps() {
                    if let Some(old) = &old_server {
                        old.stop(Duration::from_secs(DRAIN_SECONDS)).await;
                    }
                }
                let news = start(&launcher, &dir, &url, ctx).await?;
                if launcher.overlaps() {
                    if let Some(old) = &old_server {
                        old.stop(Duration::from_secs(DRAIN_SECONDS)).await;
                    }
                }
                // start() recorded it in process.json.
                Ok(Some(news))
            } else {
                le::admin(&url, &token, reqwest::Method::POST, "/v2/admin/reload")
                    .await
                    .map_err(|e| format!("the server refused the new configuration: {e}"))?;
                Ok(None)
            }
        }
        .await;
        let started = applied.as_ref().ok().cloned().flatten();
        if let Some(s) = &started {
            plan.running_image = s.image().map(String::from).into();
        } else {
            plan.running_image = running.filter(|_| same_image).into();
        }
        let back = Rollback {
            dir: dir.clone(),
            old_cfg: old_cfg.clone(),
            old_token: old_token.trim().to_string(),
            url: url_of(*prior.port.known().unwrap_or(&0)),
            restart,
            old_server: old_server.clone(),
            started,
            launcher: old_launcher,
        };
        if let Err(e) = &applied {
            let back = back.run().await;
            ctx.diags.error(
                "The endpoint change failed",
                format!(
                    "{e}\n{}",
                    match back {
                        Ok(()) => "The previous configuration serves again.".to_string(),
                        Err(b) =>
                            format!("Going back to the previous configuration failed too: {b}"),
                    }
                ),
            );
            return Some(prior);
        }
        match measure(&plan, &token, ctx).await {
            Ok(r) => plan.benchmark_result = r.into(),
            Err(e) => {
                let back = back.run().await;
                ctx.diags.error(
                    "Benchmark failed: the change was rolled back",
                    format!("{e}\n{}", match back {
                        Ok(()) => "The endpoint serves its previous configuration again; the state is unchanged.".to_string(),
                        Err(b) => format!("Rolling back failed: {b}. Run terraform apply again."),
                    }),
                );
                let _ = dir.write_json("meta.json", &Self::meta(&prior, true));
                return Some(prior);
            }
        }
        plan.status = Attr::Known("running".into());
        plan.model_digests = digests(&plan).await;
        let _ = dir.write_json("meta.json", &Self::meta(&plan, true));
        Some(plan)
    }

    async fn delete(&self, state: Model, ctx: &mut Ctx) {
        if on_kubernetes(&state) {
            return self.delete_kubernetes(state, ctx).await;
        }
        let dir = Dir::new(&self.state_dir(), &state.name);
        if let Some(s) = servers::recorded(&dir) {
            s.stop(Duration::from_secs(DRAIN_SECONDS + 5)).await;
        }
        // Containers a crash left unrecorded go too.
        if let Some((platform, cluster)) = state
            .cluster
            .known()
            .and_then(|c| platforms::parse_cluster_id(c).ok())
        {
            if platform == "container" {
                if let Ok(engine) = container::engine_of(&self.state_dir(), &cluster) {
                    for c in servers::containers_of(&engine, &state.name).await {
                        engine.remove(&c, Duration::from_secs(2)).await;
                    }
                }
            }
        }
        if let Err(e) = dir.remove() {
            ctx.diags.error(
                "Cannot remove the endpoint's state folder",
                format!("{}: {e}", dir.0.display()),
            );
        }
    }

    async fn import(&self, id: &str, ctx: &mut Ctx) -> Option<Model> {
        let Some((cluster, name)) = id.rsplit_once('/') else {
            ctx.diags.error(
                "Invalid import ID",
                format!("{id:?} is not CLUSTER_ID/NAME (e.g. local/inference/digits)."),
            );
            return None;
        };
        if let Err(e) = platforms::parse_cluster_id(cluster) {
            ctx.diags.error("Invalid import ID", e);
            return None;
        }
        if cluster.starts_with("kubernetes/") {
            return self.import_kubernetes(cluster, name, ctx).await;
        }
        let dir = Dir::new(&self.state_dir(), name);
        let (Some(meta), Some(cfg)) = (
            dir.read_json::<Meta>("meta.json"),
            dir.read_json::<ServeConfig>("config.json"),
        ) else {
            ctx.diags.error(
                "Cannot import the endpoint",
                format!(
                    "no endpoint {name:?} on this machine (looked in {}).",
                    dir.0.display()
                ),
            );
            return None;
        };
        let store = stores::id_of_repository(&cfg.repository);
        let ep = cfg.endpoints.iter().find(|e| e.name == name)?;
        let vid = |model: &str, version: &Option<String>| {
            stores::version_id(&store, model, version.as_deref().unwrap_or(""))
        };
        let port = i64::from(cfg.http.port());
        let grpc = cfg.grpc.map(|g| i64::from(g.port()));
        Some(Model {
            id: Attr::Known(format!("{cluster}/{name}")),
            name: name.to_string(),
            cluster: Attr::Known(meta.cluster.clone()),
            variant: ep
                .variants
                .iter()
                .map(|v| Variant {
                    name: v.name.clone(),
                    model: Attr::Known(vid(&v.model, &v.version)),
                    weight: Attr::Known(i64::from(v.weight)),
                })
                .collect(),
            shadow: ep.shadow.as_ref().map(|s| Shadow {
                model: Attr::Known(vid(&s.model, &s.version)),
            }),
            sticky_header: meta.sticky_header.clone(),
            batching: meta.batching.clone(),
            limits: meta.limits.clone(),
            monitoring: meta.monitoring.clone(),
            benchmark: meta.benchmark.clone(),
            image: meta.image.clone(),
            container: meta.container.clone(),
            running_image: servers::recorded(&dir)
                .and_then(|s| s.image().map(String::from))
                .into(),
            objects: Attr::Null,
            kubernetes: None,
            port: Attr::Known(port),
            grpc_port: grpc.into(),
            token_wo: Attr::Null,
            token_fingerprint: Attr::Known(meta.token_fingerprint.clone()),
            url: Attr::Known(url_of(port)),
            grpc_address: grpc.map(|g| format!("127.0.0.1:{g}")).into(),
            status: Attr::Known("running".into()),
            token_file: Attr::Known(dir.path("token").display().to_string()),
            state_path: Attr::Known(dir.0.display().to_string()),
            benchmark_result: meta.benchmark_result.clone().into(),
            model_digests: Attr::Null,
        })
    }
}
