//! The schema of `modelplane_endpoint`.

use tfplugin::{
    Attribute, AttributePath, Block, NestedBlock, Nesting, PathStep, Schema, Type, Validator,
};

use crate::platforms::container::RESTART_POLICIES;
use crate::platforms::kubernetes::{partitions::PURPOSES, workload};

pub(super) fn path(steps: &[PathStep]) -> AttributePath {
    AttributePath(steps.to_vec())
}
pub(super) fn a(s: &str) -> PathStep {
    PathStep::Attr(s.into())
}

pub(super) fn schema() -> Schema {
    let result = bench_result();
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
            .attribute(Attribute::new("require_approval", Type::Bool).optional().description("Every variant with traffic (weight above 0, or `fallback`) must serve a version with a valid `modelplane_model_approval`: not expired, made for the version's sha256, and (with the provider's `governance.separation_of_duties`) from another identity than the one that registered it. Checked at plan, naming the version and what is missing; a revoked approval fails the endpoint's next plan. Default: the provider's `governance.require_approval`. The shadow needs none: its answers are never returned."))
            .attribute(Attribute::new("sticky_header", Type::String).optional().description("A request header whose value keeps a client on one variant (e.g. `x-user-id`)."))
            .attribute(Attribute::new("port", Type::Number).optional_computed().stable().validate(Validator::between(1.0, 65535.0).summary("Invalid port")).description("REST port on 127.0.0.1; a free one is chosen when not given."))
            .attribute(Attribute::new("grpc_port", Type::Number).optional_computed().stable().validate(Validator::between(1.0, 65535.0).summary("Invalid port")).description("gRPC port on 127.0.0.1; a free one is chosen when not given."))
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
            .block(crate::cost::endpoint::block())
            .block(crate::cost::budget_block("endpoint"))
            .attribute(crate::cost::endpoint::attribute())
            .block(aws_block())
            .block(azure_block())
            .block(
                NestedBlock::new(
                    "variant",
                    Nesting::List,
                    Block::new()
                        .description("A model version that serves a share of the traffic, or another endpoint that does (a remote variant: another site, another cloud). Weights must total 100. Clients can pin a variant with the header `x-modelplane-variant: NAME`.")
                        .attribute(Attribute::new("name", Type::String).required().description("Variant name, e.g. `stable` or `canary`."))
                        .attribute(Attribute::new("model", Type::String).optional().description("The `id` of a `modelplane_model`. Every model variant and the shadow must come from the same store. Give `model` or `endpoint`."))
                        .attribute(Attribute::new("endpoint", Type::String).optional().description("Another endpoint that serves this share: the `id` of a `modelplane_endpoint` (its URL and token are read from it at apply, the token never written to configuration or state), or its URL with the model, `https://HOST[:PORT]/v2/models/NAME` (REST) or `grpc[s]://HOST:PORT/NAME` (gRPC). Apply checks that it answers; refresh reports a remote that stopped answering (status `degraded`). Its requests are in the endpoint's metrics with `variant` and `site` (the remote cluster's ID, or its host) labels. A server in a container (`container` clusters) reaches `127.0.0.1` only on the host's network (`container.extra_args = [\"--network\", \"host\"]`); elsewhere give `url`."))
                        .attribute(Attribute::new("url", Type::String).optional().description("With an `endpoint` id: the base URL this site reaches that endpoint at (`https://HOST[:PORT]` or `grpc[s]://HOST:PORT`), e.g. its ingress host in another cloud, instead of the `url` it reports; its token still comes from it."))
                        .attribute(Attribute::new("token_file", Type::String).optional().description("With an `endpoint` URL: a file on this machine holding the remote's bearer token. It is copied into the endpoint's own token folder (mode 0600), never into configuration or state."))
                        .attribute(Attribute::new("ca_file", Type::String).optional().description("With an `endpoint` URL over TLS: the PEM file of the CA that signed the remote's certificate (else the system's roots)."))
                        .attribute(Attribute::new("timeout_ms", Type::Number).optional().validate(Validator::at_least(1.0).summary("Invalid timeout")).description("With `endpoint`: longest a request to the remote may take; past it the request answers 504 naming the variant (default: `limits.request_timeout_ms`)."))
                        .attribute(Attribute::new("fallback", Type::Bool).optional().description("With `endpoint`: when the remote fails, times out or its circuit is open (5 consecutive failures; probed again after 5 s), answer the request with this endpoint's own model variants instead of a 502/504."))
                        .attribute(Attribute::new("weight", Type::Number).required().validate(Validator::between(0.0, 100.0).summary("Invalid weight")).description("Share of requests, 0–100; the weights of all variants total 100.")),
                ),
            )
            .block(NestedBlock::new(
                "shared",
                Nesting::Single,
                Block::new()
                    .description("Makes this a shared endpoint: a pool of servers (replicas, resources, batching limits and token as for any endpoint) that serves many models, each attached by a `modelplane_endpoint_model` under its own route (`/v2/models/MODEL`). Attached models load on their first request (unless pinned) and the least recently used are unloaded when `memory_budget` would be exceeded. A shared endpoint has no `variant`, `shadow` or `benchmark` of its own.")
                    .attribute(Attribute::new("store", Type::String).required().description("The `id` of the `modelplane_model_store` its models come from; attachments are registered in it too (under `.endpoints/`), so that every replica on every platform reads the same list."))
                    .attribute(Attribute::new("memory_budget", Type::String).optional().description("Memory the loaded models of one server may take together, counted by their planned weights, e.g. `512Mi` or `4Gi` (binary units; `k`, `m`, `g` too). Unlimited when unset. A model that cannot fit even alone answers 503 with `Retry-After`."))
                    .attribute(Attribute::new("poll_interval", Type::String).optional().description("How often each server reads the registry for attachments (default `2s`). On `local` and `container`, applies also tell the server at once and wait until the change is live.")),
            ))
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
                    .attribute(Attribute::new("restart", Type::String).optional().validate(Validator::one_of(RESTART_POLICIES).summary("Invalid restart policy")).description("Restart policy: `no`, `on-failure`, `always` or `unless-stopped` (default). Rootless podman restarts after a reboot only through systemd."))
                    .attribute(Attribute::new("gpus", Type::Number).optional().validate(Validator::at_least(0.0).summary("Invalid GPU count")).description("GPUs for the container: CDI devices `nvidia.com/gpu=0..N-1` on podman, `--gpus N` on docker (needs the NVIDIA Container Toolkit)."))
                    .attribute(Attribute::new("extra_args", Type::list(Type::String)).optional().description("More arguments for the engine's `run`, before the image, e.g. `[\"--network\", \"host\"]`. On the host's network nothing is published and restarts start the new container before the old one stops.")),
            ))
            .block(benchmark_block("the endpoint itself"))
    )
}

fn aws_block() -> NestedBlock {
    NestedBlock::new(
        "aws",
        Nesting::Single,
        Block::new()
            .description("On an `aws` cluster, the IAM role the server reads its `s3` store with (IRSA: the role's ARN is annotated on the endpoint's ServiceAccount, and no key is written anywhere). Without this block, an endpoint whose models are in an `s3` store gets a role `CLUSTER-NAME-serve`, trusted by the cluster's OIDC provider for this ServiceAccount only and allowed to read the store's bucket and prefix only; it is recorded in `objects` and deleted with the endpoint. A `kubernetes.service_account_annotations` entry `eks.amazonaws.com/role-arn` takes precedence.")
            .attribute(Attribute::new("role_arn", Type::String).optional().description("Use this IAM role (its trust policy must allow the cluster's OIDC provider and the ServiceAccount `system:serviceaccount:NAMESPACE:NAME`) instead of creating one."))
            .attribute(Attribute::new("create_role", Type::Bool).optional().description("Create the role when `role_arn` is unset and the store is on S3. Default true; false leaves the server to the node role or `kubernetes.env_from_secret`.")),
    )
}

fn azure_block() -> NestedBlock {
    NestedBlock::new(
        "azure",
        Nesting::Single,
        Block::new()
            .description("On an `azure` cluster, the workload identity the server reads its `azure_blob` store with (the identity's client ID is annotated on the endpoint's ServiceAccount and its pods are labelled `azure.workload.identity/use=true`; no key is written anywhere). Without this block, an endpoint whose models are in an `azure_blob` store (on Azure, not an emulator's `endpoint`) gets a user-assigned managed identity `CLUSTER-NAME-serve` in the provider's resource group, federated with the cluster's OIDC issuer for this ServiceAccount only and given `Storage Blob Data Reader` on the store's container only; both are recorded in `objects` and deleted with the endpoint. A `kubernetes.service_account_annotations` entry `azure.workload.identity/client-id` takes precedence.")
            .attribute(Attribute::new("client_id", Type::String).optional().description("Use this managed identity (its federated credential must trust the cluster's OIDC issuer for `system:serviceaccount:NAMESPACE:NAME`) instead of creating one."))
            .attribute(Attribute::new("create_identity", Type::Bool).optional().description("Create the identity when `client_id` is unset and the store is Azure Blob Storage. Default true; false leaves the server to `kubernetes.env_from_secret` (an account key) or the node's identity.")),
    )
}

fn kubernetes_block() -> NestedBlock {
    NestedBlock::new(
        "kubernetes",
        Nesting::Single,
        Block::new()
            .description("How the endpoint runs on a `kubernetes` cluster: a Deployment of `image` in a GPU partition's namespace, with a Service (HTTP and gRPC), a PodDisruptionBudget, a ServiceAccount, a HorizontalPodAutoscaler when `max_replicas` > `min_replicas`, and optional exposure. Models are fetched by the server from the store (an `s3`, `s3_compatible` or `azure_blob` store: pods cannot read this machine's folders).")
            .attribute(Attribute::new("partition", Type::String).optional().validate(Validator::one_of(PURPOSES).summary("Invalid partition")).description("The cluster partition (purpose) to run in. Default `inference`."))
            .attribute(Attribute::new("min_replicas", Type::Number).optional().validate(Validator::at_least(1.0).summary("Invalid replicas")).description("Replicas, or the autoscaler's minimum. Default 1."))
            .attribute(Attribute::new("max_replicas", Type::Number).optional().description("The autoscaler's maximum; above `min_replicas`, a HorizontalPodAutoscaler scales on CPU. Default: `min_replicas` (no autoscaler)."))
            .attribute(Attribute::new("target_cpu_percent", Type::Number).optional().validate(Validator::between(1.0, 1000.0).summary("Invalid target")).description("Average CPU utilisation (of the request) the autoscaler aims at. Default 70."))
            .attribute(Attribute::new("target_inflight", Type::Number).optional().validate(Validator::at_least(1.0).summary("Invalid target")).description("Also scale on requests in flight per pod (`modelplane_inflight_requests`), when the cluster serves the custom metrics API (e.g. prometheus-adapter); checked at apply, with a warning when absent."))
            .attribute(Attribute::new("cpu", Type::String).optional().description("CPU request per pod. Default `500m`."))
            .attribute(Attribute::new("memory", Type::String).optional().description("Memory request and limit per pod. Default `1Gi`."))
            .attribute(Attribute::new("gpus", Type::Number).optional().validate(Validator::at_least(0.0).summary("Invalid GPU count")).description("`nvidia.com/gpu` per pod. Default 0."))
            .attribute(Attribute::new("service_account_annotations", Type::map(Type::String)).optional().description("Annotations of the endpoint's ServiceAccount, for IRSA (`eks.amazonaws.com/role-arn`) or Azure workload identity (`azure.workload.identity/client-id`), through which the server reads the store."))
            .attribute(Attribute::new("env_from_secret", Type::String).optional().description("An existing Secret in the partition's namespace whose keys become the server's environment, e.g. `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` for an S3-compatible store. Its values never pass through Terraform."))
            .attribute(Attribute::new("image_pull_secret", Type::String).optional().description("An existing Secret of type `kubernetes.io/dockerconfigjson` for a private registry."))
            .attribute(Attribute::new("service_type", Type::String).optional().validate(Validator::one_of(workload::SERVICE_TYPES).summary("Invalid Service type")).description("`ClusterIP` (default), `NodePort` or `LoadBalancer`."))
            .attribute(Attribute::new("rollout_timeout", Type::String).optional().description("How long apply waits for the rollout before it fails with what the pods and events say. Default `10m`."))
            .block(NestedBlock::new(
                "expose",
                Nesting::Single,
                Block::new()
                    .description("Exposure outside the cluster.")
                    .attribute(Attribute::new("kind", Type::String).required().validate(Validator::one_of(workload::EXPOSE_KINDS).summary("Invalid exposure")).description("`ingress` (networking.k8s.io Ingress), `http_route` (Gateway API HTTPRoute) or `route` (OpenShift Route)."))
                    .attribute(Attribute::new("host", Type::String).required().description("Host name clients use, e.g. `fraud.ml.example.com`."))
                    .attribute(Attribute::new("class_name", Type::String).optional().description("`ingress`: the IngressClass."))
                    .attribute(Attribute::new("gateway", Type::String).optional().description("`http_route` (required): the Gateway, `NAME` or `NAMESPACE/NAME`."))
                    .attribute(Attribute::new("tls_secret", Type::String).optional().description("`ingress`: the TLS Secret for `host`; `route`: set to anything for edge TLS with the router's certificate.")),
            )),
    )
}

/// The attributes of `benchmark_result`.
pub(crate) fn bench_result() -> Vec<Attribute> {
    vec![
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
    ]
}

/// The `benchmark` block: a load test after every create and update, against `target`.
pub(crate) fn benchmark_block(target: &str) -> NestedBlock {
    NestedBlock::new(
                "benchmark",
                Nesting::Single,
                Block::new()
                    .description(format!("The benchmark hook: a load test after every create and update, against {target}."))
                    .attribute(Attribute::new("payload", Type::String).required().description("An Open Inference Protocol JSON inference request, e.g. `file(\"${path.module}/request.json\")`."))
                    .attribute(Attribute::new("concurrency", Type::Number).optional().validate(Validator::at_least(1.0).summary("Invalid concurrency")).description("Requests in flight (default 4)."))
                    .attribute(Attribute::new("duration", Type::String).optional().description("How long to measure, e.g. `5s` (default `3s`)."))
                    .attribute(Attribute::new("warmup", Type::String).optional().description("Load before measuring, e.g. `1s` (default `500ms`)."))
                    .attribute(Attribute::new("protocol", Type::String).optional().validate(Validator::one_of(&["rest", "grpc"]).summary("Invalid protocol")).description("`rest` (default) or `grpc`."))
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
            )
}
