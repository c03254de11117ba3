//! Endpoints on `kubernetes` clusters: the lifecycle of the objects that [`workload`]
//! renders. Every change is a rolling update (`maxUnavailable: 0`), waited for; what comes
//! back from a deploy can put the previous objects back (or delete what was written, on
//! create), and [`crate::platforms::rollout`] decides when.
//!
//! The benchmark hook reaches the endpoint at its Service address
//! (`NAME.NAMESPACE.svc.cluster.local`), so it runs where Terraform runs inside the cluster
//! (a CI runner pod, Atlantis); elsewhere leave `benchmark` unset or expose the endpoint.

use std::time::Duration;

use modelplane_serve::config::{AuthConfig, ServeConfig};
use tfplugin::{Attr, AttributePath, Config, Ctx, Diagnostics};

use super::{self as k8s, objects, partitions, workload, Kubernetes};
use crate::platforms::rollout::{NoUndo, Rollout, Undo};
use crate::platforms::{
    Deployment, EndpointPlan, EndpointSpec, Imported, Observed, PlatformError, Previous, Running,
};

fn at(x: &str) -> AttributePath {
    AttributePath::attr("kubernetes").then_attr(x)
}

/// Refuses the `kubernetes` block on endpoints of other platforms.
pub fn refuse_block(config: &Config, diags: &mut Diagnostics) {
    if !config.elements("kubernetes").is_empty() {
        diags.error_at(
            AttributePath::attr("kubernetes"),
            "Not used on this platform",
            "the kubernetes block applies to endpoints on kubernetes clusters; remove it, or set cluster to a kubernetes cluster's id.",
        );
    }
}

/// Plan-time checks of the `kubernetes` block.
pub(crate) fn validate(config: &Config, diags: &mut Diagnostics) {
    if config.get::<String>("image", diags).is_null() {
        diags.error_at(AttributePath::attr("image"), "Missing image", "endpoints on a kubernetes cluster run an image: set image = modelplane_serving_image.NAME.reference (a registry the nodes can pull from).");
    }
    crate::platforms::not_used_here(config, "container", "kubernetes", "the container block applies to container clusters; on kubernetes, set resources in the kubernetes block (cpu, memory, gpus).", diags);
    let Some(k) = config.elements("kubernetes").into_iter().next() else {
        return;
    };
    let min = k.get::<i64>("min_replicas", diags);
    if let (Attr::Known(lo), Attr::Known(hi)) = (min, k.get::<i64>("max_replicas", diags)) {
        if hi < lo {
            diags.error_at(
                at("max_replicas"),
                "Invalid replicas",
                format!("max_replicas ({hi}) is below min_replicas ({lo})."),
            );
        }
    }
    for f in ["cpu", "memory"] {
        if let Attr::Known(q) = k.get::<String>(f, diags) {
            if let Err(e) = k8s::check_quantity(&q) {
                diags.error_at(at(f), "Invalid quantity", e);
            }
        }
    }
    if let Attr::Known(t) = k.get::<String>("rollout_timeout", diags) {
        match modelplane_serve::cli::parse_duration(&t) {
            Ok(d) if d >= Duration::from_secs(1) => {}
            Ok(_) => diags.error_at(
                at("rollout_timeout"),
                "Invalid duration",
                "rollout_timeout must be at least 1s.",
            ),
            Err(e) => diags.error_at(
                at("rollout_timeout"),
                "Invalid duration",
                format!("{e}; e.g. \"10m\"."),
            ),
        }
    }
    for f in ["env_from_secret", "image_pull_secret"] {
        if let Attr::Known(n) = k.get::<String>(f, diags) {
            if !n.split('.').all(k8s::is_dns_label) {
                diags.error_at(
                    at(f),
                    "Invalid Secret name",
                    format!(
                        "{f} {n:?} is not a Secret name (lower-case letters, digits, '-' and '.')."
                    ),
                );
            }
        }
    }
    if let Some(e) = k.elements("expose").first() {
        let eat = |x: &str| at("expose").then_attr(x);
        if let Attr::Known(kind) = e.get::<String>("kind", diags) {
            if kind == "http_route" && e.get::<String>("gateway", diags).is_null() {
                diags.error_at(eat("gateway"), "Missing gateway", "an http_route attaches to a Gateway: set gateway = \"NAME\" or \"NAMESPACE/NAME\".");
            }
        }
        if let Attr::Known(h) = e.get::<String>("host", diags) {
            if h.is_empty() || h.contains('/') || h.contains(':') {
                diags.error_at(
                    eat("host"),
                    "Invalid host",
                    format!("host {h:?} must be a bare host name, e.g. \"fraud.ml.example.com\"."),
                );
            }
        }
    }
}

/// Plan changes on kubernetes: fixed default ports, addresses known after apply.
pub(super) fn plan(
    prior: Option<&EndpointPlan>,
    plan: &mut EndpointPlan,
    config: &Config,
    diags: &mut Diagnostics,
) {
    // Ports left unset are the image's, known now.
    if config.get::<i64>("port", diags).is_null() {
        plan.port = Attr::Known(i64::from(workload::HTTP_PORT));
    }
    if config.get::<i64>("grpc_port", diags).is_null() {
        plan.grpc_port = Attr::Known(i64::from(workload::GRPC_PORT));
    }
    plan.state_path = Attr::Null;
    plan.token_file = Attr::Null;
    let changed = prior.is_none_or(|p| {
        p.port != plan.port
            || p.grpc_port != plan.grpc_port
            || p.kubernetes.as_ref().map(|k| k.partition())
                != plan.kubernetes.as_ref().map(|k| k.partition())
    });
    if changed {
        plan.url = Attr::Unknown;
        plan.grpc_address = Attr::Unknown;
    }
    if prior.is_none_or(|p| {
        p.image != plan.image
            || p.kubernetes != plan.kubernetes
            || !p.serving
            || p.served != plan.served
    }) {
        plan.objects = Attr::Unknown;
        plan.running_image = Attr::Unknown;
    }
}

/// The namespace of an endpoint's recorded objects.
fn namespace_of(refs: &[objects::ObjectRef]) -> Option<String> {
    refs.iter()
        .find(|r| r.kind == "Deployment")
        .or_else(|| refs.first())
        .and_then(|r| r.namespace.clone())
}

fn recorded_refs(d: &Deployment) -> Vec<objects::ObjectRef> {
    objects::parse_all(d.objects.as_deref().unwrap_or(&[]))
}

fn refused(attribute: AttributePath, summary: &str, message: String) -> PlatformError {
    PlatformError::Refused {
        attribute: Some(attribute),
        summary: summary.into(),
        message,
    }
}

impl Kubernetes {
    /// The workload of a spec: its partition, the server's configuration, the token.
    async fn workload(
        &self,
        client: &kube::Client,
        spec: &EndpointSpec,
        token: &str,
        diags: &mut Diagnostics,
    ) -> Result<workload::Workload, PlatformError> {
        let settings = spec.kubernetes.clone().unwrap_or_default();
        let (namespace, scheduling) =
            partitions::find(client, &self.cluster.name, settings.partition())
                .await
                .map_err(|e| refused(at("partition"), "No such partition", e))?;
        let mut cfg: ServeConfig = spec.serve.clone();
        if !cfg.repository.contains("://") {
            return Err(refused(
                AttributePath::attr("variant"),
                "Store not reachable from the cluster",
                format!("the models come from {}, a folder on this machine, which pods cannot read. Serve models from an s3, s3_compatible or azure_blob modelplane_model_store.", cfg.repository),
            ));
        }
        cfg.http = ([0, 0, 0, 0], workload::HTTP_PORT).into();
        cfg.grpc = Some(([0, 0, 0, 0], workload::GRPC_PORT).into());
        cfg.cache_dir = Some(workload::CACHE_DIR.into());
        cfg.auth = AuthConfig {
            token_env: None,
            token_file: Some(format!("{}/token", workload::TOKEN_DIR)),
            none: false,
        };
        cfg.reuse_port = false;
        crate::platforms::point_remote_tokens(&mut cfg, &spec.remote_tokens, workload::TOKEN_DIR);
        let custom_metrics =
            settings.target_inflight.is_some() && workload::has_custom_metrics(client).await;
        if settings.target_inflight.is_some() && !custom_metrics {
            diags.warning_at(
                at("target_inflight"),
                "No custom metrics API",
                "the cluster serves no custom.metrics.k8s.io, so the autoscaler scales on CPU only. Install prometheus-adapter (exposing modelplane_inflight_requests) to scale on requests in flight.",
            );
        }
        Ok(workload::Workload {
            name: spec.name.clone(),
            namespace,
            scheduling,
            image: spec.image.clone().unwrap_or_default(),
            config: serde_json::to_string_pretty(&cfg).unwrap_or_default(),
            token: token.to_string(),
            remote_tokens: spec.remote_tokens.clone(),
            http_port: spec.port.unwrap_or(workload::HTTP_PORT),
            grpc_port: spec.grpc_port.unwrap_or(workload::GRPC_PORT),
            settings,
            custom_metrics,
        })
    }

    fn deployment(w: &workload::Workload, objs: &[objects::ObjectRef]) -> Deployment {
        Deployment {
            port: w.http_port,
            grpc_port: w.grpc_port,
            url: format!("http://{}:{}", w.service_host(), w.http_port),
            grpc_address: format!("{}:{}", w.service_host(), w.grpc_port),
            running_image: Some(w.image.clone()),
            objects: Some(objs.iter().map(|r| r.to_string()).collect()),
            state_path: None,
            token_file: None,
        }
    }

    /// The namespace and ServiceAccount an endpoint's pods run in and as (its partition's
    /// namespace, its name).
    pub async fn endpoint_identity(
        &self,
        spec: &EndpointSpec,
    ) -> Result<(String, String), PlatformError> {
        let (client, _) = self.connect().await?;
        let settings = spec.kubernetes.clone().unwrap_or_default();
        let (namespace, _) = partitions::find(&client, &self.cluster.name, settings.partition())
            .await
            .map_err(|e| refused(at("partition"), "No such partition", e))?;
        Ok((namespace, k8s::dns_label(&spec.name)))
    }

    pub(super) async fn token_of(&self, name: &str, recorded: &Deployment) -> Option<String> {
        let ns = namespace_of(&recorded_refs(recorded))?;
        let (client, _) = self.connect().await.ok()?;
        workload::token(&client, &ns, name).await
    }

    pub(super) async fn deploy_endpoint(
        &self,
        spec: &EndpointSpec,
        previous: Option<&Previous>,
        ctx: &mut Ctx,
    ) -> Rollout {
        let nothing = |e: PlatformError| Rollout {
            deployment: None,
            result: Err(e),
            undo: Box::new(NoUndo),
        };
        let client = match self.connect().await {
            Ok((c, _)) => c,
            Err(e) => return nothing(e),
        };
        let w = match self
            .workload(&client, spec, &spec.token, &mut ctx.diags)
            .await
        {
            Ok(w) => w,
            Err(e) => return nothing(e),
        };
        let before = previous.map_or_else(Vec::new, |p| recorded_refs(&p.deployment));
        let wait = workload::Wait {
            timeout: w.settings.rollout_timeout(),
            poll: Duration::from_secs(2),
        };
        let (written, r) = workload::deploy(&client, &w, &before, wait).await;
        let undo: Box<dyn Undo> = match previous {
            None => Box::new(DeleteWritten {
                client: client.clone(),
                written: written.clone(),
            }),
            Some(p) => {
                // The previous objects, rendered again with the token they had (the
                // previous spec carries it: the Secret already holds the new one).
                let mut diags = Diagnostics::default();
                let old = match &p.spec {
                    Some(s) => self.workload(&client, s, &s.token, &mut diags).await.ok(),
                    None => None,
                };
                Box::new(Redeploy {
                    client: client.clone(),
                    old,
                    written: written.clone(),
                    wait,
                })
            }
        };
        Rollout {
            deployment: Some(Self::deployment(&w, &written)),
            result: r.map_err(PlatformError::Failed),
            undo,
        }
    }

    pub(super) async fn observe_endpoint(
        &self,
        name: &str,
        recorded: &Deployment,
    ) -> Result<Observed, PlatformError> {
        let refs = recorded_refs(recorded);
        let Some(ns) = namespace_of(&refs) else {
            return Ok(Observed::Gone);
        };
        let (client, _) = self.connect().await?;
        match workload::observe(&client, &ns, name, &refs).await {
            Ok(None) => Ok(Observed::Missing),
            Ok(Some(o)) => Ok(Observed::Running(Box::new(Running {
                serves: o
                    .config
                    .as_deref()
                    .and_then(|c| serde_json::from_str::<ServeConfig>(c).ok()),
                running_image: o.image,
                drifted: !o.missing.is_empty(),
                token: o.token,
            }))),
            Err(e) => Err(PlatformError::Failed(e)),
        }
    }

    /// Imports `kubernetes/CLUSTER/NAME`: the endpoint's objects in its partition, the split
    /// its configuration serves, its image, replicas and resources. What cannot be read back
    /// (ServiceAccount annotations, exposure) shows as a change in the next plan.
    pub(super) async fn import_endpoint(&self, name: &str) -> Result<Imported, PlatformError> {
        let (client, _) = self.connect().await?;
        let cluster = &self.cluster.name;
        let (ns, o, (settings, ports, refs)) = async {
            let ns = workload::locate(&client, cluster, name).await?;
            let o = workload::observe(&client, &ns, name, &[])
                .await?
                .ok_or_else(|| format!("the Deployment of {name} is gone"))?;
            let seen = workload::settings_of(&client, &ns, name).await?;
            Ok::<_, String>((ns, o, seen))
        }
        .await
        .map_err(PlatformError::Failed)?;
        let Some(cfg) = o
            .config
            .as_deref()
            .and_then(|c| serde_json::from_str::<ServeConfig>(c).ok())
        else {
            return Err(PlatformError::Failed(format!(
                "ConfigMap {ns}/{} holds no server configuration; is this a Modelplane endpoint?",
                workload::config_map_name(&k8s::dns_label(name))
            )));
        };
        let host = workload::service_host(&ns, name);
        Ok(Imported {
            serves: cfg,
            deployment: Deployment {
                port: ports.0,
                grpc_port: ports.1,
                url: format!("http://{host}:{}", ports.0),
                grpc_address: format!("{host}:{}", ports.1),
                running_image: o.image.clone(),
                objects: Some(refs.iter().map(|r| r.to_string()).collect()),
                state_path: None,
                token_file: None,
            },
            image: o.image,
            kubernetes: Some(settings),
            token: o.token,
            record: None,
        })
    }
}

/// Undoes a create: deletes what was written.
struct DeleteWritten {
    client: kube::Client,
    written: Vec<objects::ObjectRef>,
}

#[tfplugin::async_trait]
impl Undo for DeleteWritten {
    async fn undo(self: Box<Self>) -> Result<(), PlatformError> {
        objects::delete(&self.client, &self.written)
            .await
            .map_err(PlatformError::Failed)
    }
}

/// Undoes an update: the previous objects, deployed over what was written.
struct Redeploy {
    client: kube::Client,
    old: Option<workload::Workload>,
    written: Vec<objects::ObjectRef>,
    wait: workload::Wait,
}

#[tfplugin::async_trait]
impl Undo for Redeploy {
    async fn undo(self: Box<Self>) -> Result<(), PlatformError> {
        let Some(old) = &self.old else {
            return Err(PlatformError::Failed(
                "the previous configuration cannot be rendered again".into(),
            ));
        };
        let (_, r) = workload::deploy(&self.client, old, &self.written, self.wait).await;
        r.map_err(PlatformError::Failed)
    }
}
