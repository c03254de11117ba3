//! `modelplane_endpoint` on `kubernetes` clusters: the lifecycle of the objects that
//! [`workload`] renders. Every change is a rolling update (`maxUnavailable: 0`), waited for;
//! a failed rollout or a missed SLO puts the previous objects back.
//!
//! The benchmark hook reaches the endpoint at its Service address
//! (`NAME.NAMESPACE.svc.cluster.local`), so it runs where Terraform runs inside the cluster
//! (a CI runner pod, Atlantis); elsewhere leave `benchmark` unset or expose the endpoint.

use std::time::Duration;

use modelplane_serve::config::{AuthConfig, ServeConfig};
use tfplugin::{Attr, AttributePath, Config, Ctx, Diagnostics};

use super::{digests, fingerprint, measure, Endpoint, Model};
use crate::local_endpoint::{self as le, Dir};
use crate::platforms::kubernetes::{self as k8s, objects, partitions, workload};
use crate::{platforms, resources::gpu_cluster::PURPOSES};

fn at(x: &str) -> AttributePath {
    AttributePath::attr("kubernetes").then_attr(x)
}

/// Plan-time checks of the `kubernetes` block.
pub(super) fn validate(config: &Config, on_kubernetes: bool, diags: &mut Diagnostics) {
    let Some(k) = config.elements("kubernetes").into_iter().next() else {
        return;
    };
    if !on_kubernetes {
        diags.error_at(
            AttributePath::attr("kubernetes"),
            "Not used on this platform",
            "the kubernetes block applies to endpoints on kubernetes clusters; remove it, or set cluster to a kubernetes cluster's id.",
        );
        return;
    }
    if let Attr::Known(p) = k.get::<String>("partition", diags) {
        if !PURPOSES.contains(&p.as_str()) {
            diags.error_at(
                at("partition"),
                "Invalid partition",
                format!("partition {p:?} must be one of \"dev\", \"training\" or \"inference\"."),
            );
        }
    }
    let min = k.get::<i64>("min_replicas", diags);
    if let Attr::Known(m) = min {
        if m < 1 {
            diags.error_at(
                at("min_replicas"),
                "Invalid replicas",
                "min_replicas must be 1 or more.",
            );
        }
    }
    if let (Attr::Known(lo), Attr::Known(hi)) = (min, k.get::<i64>("max_replicas", diags)) {
        if hi < lo {
            diags.error_at(
                at("max_replicas"),
                "Invalid replicas",
                format!("max_replicas ({hi}) is below min_replicas ({lo})."),
            );
        }
    }
    if let Attr::Known(t) = k.get::<i64>("target_cpu_percent", diags) {
        if !(1..=1000).contains(&t) {
            diags.error_at(
                at("target_cpu_percent"),
                "Invalid target",
                format!("target_cpu_percent {t} must be between 1 and 1000."),
            );
        }
    }
    if let Attr::Known(t) = k.get::<i64>("target_inflight", diags) {
        if t < 1 {
            diags.error_at(
                at("target_inflight"),
                "Invalid target",
                "target_inflight must be 1 or more.",
            );
        }
    }
    if let Attr::Known(g) = k.get::<i64>("gpus", diags) {
        if g < 0 {
            diags.error_at(at("gpus"), "Invalid GPU count", "gpus must be 0 or more.");
        }
    }
    for f in ["cpu", "memory"] {
        if let Attr::Known(q) = k.get::<String>(f, diags) {
            if let Err(e) = k8s::check_quantity(&q) {
                diags.error_at(at(f), "Invalid quantity", e);
            }
        }
    }
    if let Attr::Known(t) = k.get::<String>("service_type", diags) {
        if !workload::SERVICE_TYPES.contains(&t.as_str()) {
            diags.error_at(
                at("service_type"),
                "Invalid Service type",
                format!(
                    "service_type {t:?} must be \"ClusterIP\", \"NodePort\" or \"LoadBalancer\"."
                ),
            );
        }
    }
    if let Attr::Known(t) = k.get::<String>("rollout_timeout", diags) {
        match super::parse_duration(&t) {
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
            if !workload::EXPOSE_KINDS.contains(&kind.as_str()) {
                diags.error_at(
                    eat("kind"),
                    "Invalid exposure",
                    format!("kind {kind:?} must be \"ingress\", \"http_route\" or \"route\"."),
                );
            }
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
    prior: Option<&Model>,
    plan: &mut Model,
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
            || p.status.known().map(String::as_str) != Some("running")
            || p.variant != plan.variant
            || p.shadow != plan.shadow
            || p.token_fingerprint != plan.token_fingerprint
    }) {
        plan.objects = Attr::Unknown;
        plan.running_image = Attr::Unknown;
    }
}

impl Endpoint {
    /// The workload of a plan: its partition, the server's configuration, the token.
    async fn workload(
        &self,
        client: &kube::Client,
        m: &Model,
        token: &str,
        diags: &mut Diagnostics,
    ) -> Option<workload::Workload> {
        let settings = m.kubernetes.clone().unwrap_or_default();
        let cluster = m.cluster.known().cloned().unwrap_or_default();
        let (_, cluster_name) = platforms::parse_cluster_id(&cluster).ok()?;
        let (namespace, scheduling) =
            match partitions::find(client, &cluster_name, settings.partition()).await {
                Ok(f) => f,
                Err(e) => {
                    diags.error_at(at("partition"), "No such partition", e);
                    return None;
                }
            };
        let dir = Dir::new(&self.state_dir(), &m.name);
        let mut cfg: ServeConfig = self.serve_config(m, &dir, diags)?;
        if !cfg.repository.contains("://") {
            diags.error_at(
                AttributePath::attr("variant"),
                "Store not reachable from the cluster",
                format!("the models come from {}, a folder on this machine, which pods cannot read. Serve models from an s3, s3_compatible or azure_blob modelplane_model_store.", cfg.repository),
            );
            return None;
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
        let custom_metrics =
            settings.target_inflight.is_some() && workload::has_custom_metrics(client).await;
        if settings.target_inflight.is_some() && !custom_metrics {
            diags.warning_at(
                at("target_inflight"),
                "No custom metrics API",
                "the cluster serves no custom.metrics.k8s.io, so the autoscaler scales on CPU only. Install prometheus-adapter (exposing modelplane_inflight_requests) to scale on requests in flight.",
            );
        }
        Some(workload::Workload {
            name: m.name.clone(),
            namespace,
            scheduling,
            image: m.image.clone().unwrap_or_default(),
            config: serde_json::to_string_pretty(&cfg).unwrap_or_default(),
            token: token.to_string(),
            http_port: m.port.known().map_or(workload::HTTP_PORT, |p| *p as u16),
            grpc_port: m
                .grpc_port
                .known()
                .map_or(workload::GRPC_PORT, |p| *p as u16),
            settings,
            custom_metrics,
        })
    }

    /// Deploys `w` over `before`, waits for the rollout and runs the benchmark hook; returns
    /// what is written and, on failure, the summary (`summaries`: rollout, benchmark) and why.
    #[allow(clippy::too_many_arguments)]
    async fn roll_out(
        &self,
        client: &kube::Client,
        w: &workload::Workload,
        before: &[objects::ObjectRef],
        plan: &mut Model,
        token: &str,
        ctx: &mut Ctx,
        summaries: (&'static str, &'static str),
    ) -> (
        Vec<objects::ObjectRef>,
        Option<(&'static str, String)>,
        workload::Wait,
    ) {
        let wait = workload::Wait {
            timeout: w.settings.rollout_timeout(),
            poll: Duration::from_secs(2),
        };
        let (written, r) = workload::deploy(client, w, before, wait).await;
        Self::fill(w, &written, plan);
        let failure = match r {
            Err(e) => Some((summaries.0, e)),
            Ok(()) => match measure(plan, token, ctx).await {
                Ok(b) => {
                    plan.benchmark_result = b.into();
                    None
                }
                Err(e) => Some((summaries.1, e)),
            },
        };
        (written, failure, wait)
    }

    fn fill(w: &workload::Workload, objs: &[objects::ObjectRef], m: &mut Model) {
        m.url = Attr::Known(format!("http://{}:{}", w.service_host(), w.http_port));
        m.grpc_address = Attr::Known(format!("{}:{}", w.service_host(), w.grpc_port));
        m.running_image = Attr::Known(w.image.clone());
        m.objects = Attr::Known(objs.iter().map(|r| r.to_string()).collect());
        m.state_path = Attr::Null;
        m.token_file = Attr::Null;
        m.status = Attr::Known("running".into());
    }

    pub(super) async fn create_kubernetes(&self, mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
        let client = crate::kube_client(&self.config, crate::Reach::Change, &mut ctx.diags).await?;
        let token = plan.token_wo.known().cloned().unwrap_or_else(le::new_token);
        plan.token_wo = Attr::Null;
        let w = self
            .workload(&client, &plan, &token, &mut ctx.diags)
            .await?;
        let (written, failure, _) = self
            .roll_out(
                &client,
                &w,
                &[],
                &mut plan,
                &token,
                ctx,
                (
                    "The endpoint did not roll out",
                    "Benchmark failed: the endpoint was not created",
                ),
            )
            .await;
        if let Some((summary, e)) = failure {
            // Undo: nothing stays that the state would not record.
            return match objects::delete(&client, &written).await {
                Ok(()) => {
                    ctx.diags
                        .error(summary, format!("{e}\nWhat was written was deleted again."));
                    None
                }
                Err(d) => {
                    ctx.diags.error(summary, format!("{e}\nDeleting what was written failed too ({d}); it is recorded in state, and the next apply replaces it."));
                    plan.status = Attr::Known("failed".into());
                    plan.benchmark_result = Attr::Null;
                    Some(plan)
                }
            };
        }
        plan.model_digests = digests(&plan).await;
        Some(plan)
    }

    pub(super) async fn update_kubernetes(
        &self,
        prior: Model,
        mut plan: Model,
        ctx: &mut Ctx,
    ) -> Option<Model> {
        // On an error the prior state stays (the framework keeps it when nothing comes back).
        let client = crate::kube_client(&self.config, crate::Reach::Change, &mut ctx.diags).await?;
        let before = objects::parse_all(prior.objects.known().map_or(&[][..], |v| v));
        let namespace = namespace_of(&before);
        let old_token = match &namespace {
            Some(ns) => workload::token(&client, ns, &prior.name).await,
            None => None,
        };
        let token = match (plan.token_wo.known(), &old_token) {
            (Some(t), _) => t.clone(),
            (None, Some(t)) if plan.token_fingerprint == prior.token_fingerprint => t.clone(),
            _ => le::new_token(),
        };
        plan.token_wo = Attr::Null;
        let w = self
            .workload(&client, &plan, &token, &mut ctx.diags)
            .await?;
        let (written, failure, wait) = self
            .roll_out(
                &client,
                &w,
                &before,
                &mut plan,
                &token,
                ctx,
                (
                    "The endpoint change failed",
                    "Benchmark failed: the change was rolled back",
                ),
            )
            .await;
        if let Some((summary, e)) = failure {
            let old_token = old_token.unwrap_or(token);
            let mut diags = Diagnostics::default();
            let back = match self.workload(&client, &prior, &old_token, &mut diags).await {
                Some(old) => {
                    let (_, r) = workload::deploy(&client, &old, &written, wait).await;
                    r
                }
                None => Err("the previous configuration cannot be rendered again".into()),
            };
            ctx.diags.error(
                summary,
                format!(
                    "{e}\n{}",
                    match back {
                        Ok(()) =>
                            "The previous configuration serves again; the state is unchanged."
                                .to_string(),
                        Err(b) =>
                            format!("Rolling back failed too: {b}. Run terraform apply again."),
                    }
                ),
            );
            return Some(prior);
        }
        plan.model_digests = digests(&plan).await;
        Some(plan)
    }

    pub(super) async fn read_kubernetes(&self, mut state: Model, ctx: &mut Ctx) -> Option<Model> {
        let Some(client) =
            crate::kube_client(&self.config, crate::Reach::Refresh, &mut ctx.diags).await
        else {
            return Some(state);
        };
        let recorded = objects::parse_all(state.objects.known().map_or(&[][..], |v| v));
        let ns = namespace_of(&recorded)?;
        match workload::observe(&client, &ns, &state.name, &recorded).await {
            Ok(None) => {
                state.status = Attr::Known("missing".into());
            }
            Ok(Some(o)) => {
                state.running_image = o.image.clone().into();
                state.status = Attr::Known(
                    if o.missing.is_empty() {
                        "running"
                    } else {
                        "drifted"
                    }
                    .into(),
                );
                if let Some(cfg) = o
                    .config
                    .as_deref()
                    .and_then(|c| serde_json::from_str::<ServeConfig>(c).ok())
                {
                    super::reflect_served(&mut state, &cfg, &cfg.repository);
                }
                if let Some(t) = &o.token {
                    // A token changed in the cluster shows as a changed fingerprint.
                    if state.token_fingerprint.known().map(String::as_str) != Some("generated")
                        && state.token_fingerprint.known() != Some(&fingerprint(&state.name, t))
                    {
                        state.status = Attr::Known("drifted".into());
                    }
                }
            }
            Err(e) => ctx.diags.warning("Cannot read the endpoint", e),
        }
        Some(state)
    }

    /// Imports `kubernetes/CLUSTER/NAME`: the endpoint's objects in its partition, the split
    /// its configuration serves, its image, replicas and resources. What cannot be read back
    /// (ServiceAccount annotations, exposure) shows as a change in the next plan.
    pub(super) async fn import_kubernetes(
        &self,
        cluster_id: &str,
        name: &str,
        ctx: &mut Ctx,
    ) -> Option<Model> {
        let client = crate::kube_client(&self.config, crate::Reach::Change, &mut ctx.diags).await?;
        let (_, cluster) = platforms::parse_cluster_id(cluster_id).ok()?;
        let found = async {
            let ns = workload::locate(&client, &cluster, name).await?;
            let o = workload::observe(&client, &ns, name, &[])
                .await?
                .ok_or_else(|| format!("the Deployment of {name} is gone"))?;
            let seen = workload::settings_of(&client, &ns, name).await?;
            Ok::<_, String>((ns, o, seen))
        }
        .await;
        let (ns, o, (settings, ports, refs)) = match found {
            Ok(f) => f,
            Err(e) => {
                ctx.diags.error("Cannot import the endpoint", e);
                return None;
            }
        };
        let cfg: Option<ServeConfig> = o
            .config
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok());
        let Some(cfg) = cfg else {
            ctx.diags.error(
                "Cannot import the endpoint",
                format!("ConfigMap {ns}/{} holds no server configuration; is this a Modelplane endpoint?", workload::config_map_name(&k8s::dns_label(name))),
            );
            return None;
        };
        let mut m = Model {
            id: Attr::Known(format!("{cluster_id}/{name}")),
            name: name.to_string(),
            cluster: Attr::Known(cluster_id.to_string()),
            variant: Vec::new(),
            shadow: None,
            sticky_header: None,
            batching: None,
            limits: None,
            monitoring: None,
            benchmark: None,
            image: o.image.clone(),
            container: None,
            port: Attr::Known(i64::from(ports.0)),
            grpc_port: Attr::Known(i64::from(ports.1)),
            token_wo: Attr::Null,
            token_fingerprint: Attr::Known(
                o.token
                    .as_deref()
                    .map_or_else(|| "generated".to_string(), |t| fingerprint(name, t)),
            ),
            url: Attr::Known(format!(
                "http://{}:{}",
                workload::service_host(&ns, name),
                ports.0
            )),
            grpc_address: Attr::Known(format!("{}:{}", workload::service_host(&ns, name), ports.1)),
            status: Attr::Known("running".into()),
            token_file: Attr::Null,
            state_path: Attr::Null,
            benchmark_result: Attr::Null,
            model_digests: Attr::Null,
            running_image: o.image.clone().into(),
            objects: Attr::Known(refs.iter().map(|r| r.to_string()).collect()),
            kubernetes: Some(settings),
        };
        super::reflect_served(&mut m, &cfg, &cfg.repository);
        m.model_digests = digests(&m).await;
        Some(m)
    }

    pub(super) async fn delete_kubernetes(&self, state: Model, ctx: &mut Ctx) {
        crate::kube_delete_recorded(
            &self.config,
            state.objects.known(),
            "Cannot delete the endpoint",
            &mut ctx.diags,
        )
        .await;
    }
}

/// The namespace of an endpoint's recorded objects.
fn namespace_of(refs: &[objects::ObjectRef]) -> Option<String> {
    refs.iter()
        .find(|r| r.kind == "Deployment")
        .or_else(|| refs.first())
        .and_then(|r| r.namespace.clone())
}
