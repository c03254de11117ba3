//! `modelplane_endpoint`: a served endpoint with a traffic split between model versions, an
//! optional shadow, and the benchmark hook (measure after every change; roll back on an SLO
//! miss). The resource keeps the Terraform surface: schema ([`schema`]), plan-time checks
//! ([`validate`]), and the server configuration a plan means ([`spec`]); where and how the
//! server runs is its cluster's [`Platform`]'s, and the rollout policy is
//! [`crate::platforms::rollout`]'s.

mod audit;
pub(crate) mod schema;
pub(crate) mod spec;
mod validate;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use tfplugin::{Attr, AttributePath, Config, Ctx, Diagnostics, PathStep, Schema};

use crate::ids::{ClusterId, EndpointId};
use crate::platforms::kubernetes::workload;
use crate::platforms::{
    self, container, rollout, Deployment, EndpointPlan, EndpointSpec, Observed, Platform, Previous,
};
use crate::ProviderConfig;
use schema::{a, path};
use spec::{
    digests, fingerprint, recorded_sha256, references, reflect_served, remote_answers,
    serve_config, Remote, Remotes, Resolved,
};

pub struct Endpoint {
    pub config: Arc<OnceLock<ProviderConfig>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Variant {
    pub name: String,
    pub model: Attr<String>,
    pub endpoint: Attr<String>,
    pub url: Option<String>,
    pub token_file: Option<String>,
    pub ca_file: Option<String>,
    pub timeout_ms: Option<i64>,
    pub fallback: Option<bool>,
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

/// The `shared` block: a pool of servers for many attached models.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Shared {
    pub store: Attr<String>,
    pub memory_budget: Option<String>,
    pub poll_interval: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Monitoring {
    pub drift_window: Option<String>,
    pub feedback_window: Option<String>,
}

pub use crate::platforms::rollout::{BenchResult, Benchmark, Slo};

#[derive(Debug, Serialize, Deserialize)]
pub struct Model {
    pub id: Attr<String>,
    pub name: String,
    pub cluster: Attr<String>,
    pub variant: Vec<Variant>,
    pub shadow: Option<Shadow>,
    pub shared: Option<Shared>,
    pub require_approval: Option<bool>,
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
    pub aws: Option<crate::platforms::aws::irsa::EndpointSettings>,
    pub azure: Option<crate::platforms::azure::identity::EndpointSettings>,
    pub pricing: Option<crate::cost::endpoint::PriceAs>,
    pub budget: Option<crate::cost::Budget>,
    pub estimated_cost: Attr<crate::cost::endpoint::Estimate>,
}

/// What the platform keeps beside the deployment for import: what the server's
/// configuration does not hold.
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

impl Endpoint {
    /// Plans `estimated_cost` and checks the budget: computed when the endpoint changes (or
    /// has none yet) and kept otherwise, so new prices never plan a change on their own.
    fn plan_cost(&self, prior: Option<&Model>, plan: &mut Model, ctx: &mut Ctx) {
        let inputs = |m: &Model| {
            let weights: Vec<_> = m.variant.iter().map(|v| (&v.name, &v.weight)).collect();
            serde_json::to_value((
                &m.cluster,
                weights,
                m.shadow.is_some(),
                &m.kubernetes,
                &m.container,
                &m.pricing,
                &m.budget,
            ))
            .ok()
        };
        plan.estimated_cost = match prior {
            Some(pr) if inputs(pr) == inputs(plan) => pr.estimated_cost.clone(),
            _ => crate::cost::endpoint::estimate(plan, &self.provider(), &mut ctx.diags),
        };
        crate::cost::check(
            &format!("modelplane_endpoint {:?}", plan.name),
            plan.budget.as_ref(),
            &plan.estimated_cost,
            "give it a pricing block or set the provider's pricing rates.",
            &mut ctx.diags,
        );
    }

    /// An estimate left unknown at plan (it depended on values known only now).
    fn finish_cost(&self, plan: &mut Model, ctx: &mut Ctx) {
        if plan.estimated_cost.is_unknown() {
            plan.estimated_cost =
                crate::cost::endpoint::estimate(plan, &self.provider(), &mut ctx.diags);
        }
    }

    fn provider(&self) -> ProviderConfig {
        ProviderConfig::of(&self.config)
    }

    /// With `require_approval` (or the provider's policy), every variant that takes traffic
    /// must serve a version with a valid approval. A change to the endpoint is refused without;
    /// an unchanged endpoint whose approvals lapsed (revoked, expired) is warned about on every
    /// plan but not stopped, so that neither unrelated plans nor `terraform destroy` (whose
    /// first step plans the configuration) are blocked by it.
    async fn check_approvals(&self, prior: Option<&Model>, plan: &Model, diags: &mut Diagnostics) {
        let policy = self.provider().governance;
        if !plan.require_approval.unwrap_or(policy.require_approval) {
            return;
        }
        let served: Vec<_> = plan
            .variant
            .iter()
            .enumerate()
            .filter(|(_, v)| v.weight.known() != Some(&0) || v.fallback == Some(true))
            .map(|(i, v)| {
                let at = path(&[a("variant"), PathStep::Index(i as i64), a("model")]);
                (at, v.name.as_str(), &v.model)
            })
            .collect();
        let mut found = Diagnostics::default();
        crate::governance::approval::require(
            &served,
            &self.conn(),
            policy.separation_of_duties,
            &mut found,
        )
        .await;
        let unchanged = prior.is_some_and(|p| {
            serving(p)
                && p.model_digests == plan.model_digests
                && audit::record(Some(p), Some(plan)).changed.is_empty()
        });
        for d in found.iter() {
            let at = d.attribute.clone().unwrap_or_default();
            if unchanged {
                diags.warning_at(
                    at,
                    "Served version no longer approved",
                    format!("{} The endpoint is unchanged, so it keeps serving; any change to it is refused until the version is approved again or taken out of the split (weight 0).", d.detail),
                );
            } else {
                diags.error_at(at, d.summary.clone(), d.detail.clone());
            }
        }
    }

    /// Appends the audit record of a change to the store the endpoint serves from (none for an
    /// endpoint with remote variants only).
    async fn audit(
        &self,
        action: &str,
        before: Option<&Model>,
        after: Option<&Model>,
        outcome: &str,
        detail: String,
    ) {
        if self.provider().governance.audit_off {
            return;
        }
        let Some(m) = after.or(before) else {
            return;
        };
        let store = m
            .variant
            .iter()
            .map(|v| &v.model)
            .chain(m.shadow.as_ref().map(|s| &s.model))
            .chain(m.shared.as_ref().map(|s| &s.store))
            .filter_map(|id| id.known())
            .find_map(|id| {
                id.parse::<crate::ids::VersionId>()
                    .map(|v| v.store)
                    .ok()
                    .or_else(|| {
                        crate::stores::open(id, &self.conn())
                            .ok()
                            .map(|_| id.clone())
                    })
            });
        let Some(store) = store.and_then(|s| crate::stores::open(&s, &self.conn()).ok()) else {
            return;
        };
        let mut r = audit::record(before, after);
        r.action = action.into();
        r.outcome = outcome.into();
        r.detail = detail;
        r.benchmark = after.and_then(|m| m.benchmark_result.known().cloned());
        crate::governance::audit::write(store.as_ref(), &self.conn(), r).await;
    }

    fn conn(&self) -> crate::stores::Connection {
        self.provider().stores()
    }

    /// The platform of a cluster ID; `None` (with diagnostics at `cluster`) when there is none.
    fn platform(
        &self,
        cluster: &Attr<String>,
        diags: &mut Diagnostics,
    ) -> Option<Box<dyn Platform>> {
        let c = cluster.known()?;
        match platforms::resolve_str(c, &self.provider()) {
            Ok(p) => Some(p),
            Err(e) => {
                e.report("Unsupported platform", diags);
                None
            }
        }
    }

    /// Resolves the remote variants of `m`: another endpoint's URL and token (from its
    /// platform), or a URL and the token in `token_file`. With `check`, each must answer
    /// ready, or nothing is changed.
    async fn resolve_remotes(
        &self,
        m: &Model,
        check: bool,
        diags: &mut Diagnostics,
    ) -> Option<Remotes> {
        let mut out = Remotes::new();
        for (i, v) in m.variant.iter().enumerate() {
            let Attr::Known(e) = &v.endpoint else {
                continue;
            };
            let at = path(&[a("variant"), PathStep::Index(i as i64), a("endpoint")]);
            let resolved = match Remote::parse(e) {
                Err(why) => Err(why),
                Ok(Remote::Endpoint(id)) => match platforms::resolve(&id.cluster, &self.provider())
                {
                    Err(why) => Err(why.to_string()),
                    Ok(p) => match p.import_endpoint(&id.name).await {
                        Ok(found) => {
                            let token = match &found.token {
                                Some(t) => Some(t.clone()),
                                None => p.endpoint_token(&id.name, &found.deployment).await,
                            };
                            Ok(Resolved {
                                // The address this site reaches it at, when it is not the
                                // one the endpoint reports (an ingress, a load balancer).
                                url: v.url.clone().unwrap_or(found.deployment.url.clone()),
                                model: id.name.clone(),
                                token,
                                site: Some(id.cluster.to_string()),
                            })
                        }
                        Err(why) => Err(format!("the endpoint {e} cannot be read: {why}")),
                    },
                },
                Ok(Remote::Url { base, model }) => {
                    let token = match &v.token_file {
                        None => Ok(None),
                        Some(f) => std::fs::read_to_string(f)
                            .map(|t| Some(t.trim().to_string()))
                            .map_err(|err| format!("token_file {f}: {err}")),
                    };
                    token.map(|token| Resolved {
                        url: base,
                        model,
                        token,
                        site: None,
                    })
                }
            };
            let r = match resolved {
                Ok(r) => r,
                Err(why) => {
                    diags.error_at(
                        at,
                        "Remote endpoint not found",
                        format!("variant {}: {why}", v.name),
                    );
                    return None;
                }
            };
            if check {
                if let Err(why) = remote_answers(&r, v.ca_file.as_deref()).await {
                    diags.error_at(
                        at,
                        "Remote endpoint not answering",
                        format!("variant {}: {why}. Nothing was changed: bring the remote up (or give it weight 0 with `fallback = true` only once it serves), then apply again.", v.name),
                    );
                    return None;
                }
            }
            out.insert(v.name.clone(), r);
        }
        Some(out)
    }

    /// After a successful create or update: the digests served, and the record kept beside
    /// the deployment.
    async fn finish(&self, platform: &dyn Platform, plan: &mut Model) {
        plan.model_digests = digests(plan, &self.conn()).await;
        let record = serde_json::to_value(Self::meta(plan, true)).unwrap_or_default();
        platform.record(&plan.name, &record).await;
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

    /// The platform-neutral spec of a plan, with `token`; `None` (with diagnostics) when its
    /// server configuration cannot be made.
    fn spec(
        &self,
        m: &Model,
        token: &str,
        remotes: &Remotes,
        diags: &mut Diagnostics,
    ) -> Option<EndpointSpec> {
        Some(EndpointSpec {
            name: m.name.clone(),
            serve: serve_config(m, &self.conn(), remotes, diags)?,
            remote_tokens: remotes
                .iter()
                .filter_map(|(v, r)| Some((v.clone(), r.token.clone()?)))
                .collect(),
            token: token.to_string(),
            port: m.port.known().map(|p| *p as u16),
            grpc_port: m.grpc_port.known().map(|p| *p as u16),
            image: m.image.clone(),
            container: m.container.clone(),
            kubernetes: m.kubernetes.clone(),
            aws: m.aws.clone(),
            azure: m.azure.clone(),
            record: serde_json::to_value(Self::meta(m, true)).unwrap_or_default(),
        })
    }
}

/// What the state records of a deployment.
fn recorded(m: &Model) -> Deployment {
    Deployment {
        port: m.port.known().map_or(0, |p| *p as u16),
        grpc_port: m.grpc_port.known().map_or(0, |p| *p as u16),
        url: m.url.known().cloned().unwrap_or_default(),
        grpc_address: m.grpc_address.known().cloned().unwrap_or_default(),
        running_image: m.running_image.known().cloned(),
        objects: m.objects.known().cloned(),
        state_path: m.state_path.known().cloned(),
        token_file: m.token_file.known().cloned(),
    }
}

/// Writes a deployment into the state.
fn fill(m: &mut Model, d: Deployment) {
    m.port = Attr::Known(i64::from(d.port));
    m.grpc_port = Attr::Known(i64::from(d.grpc_port));
    m.url = Attr::Known(d.url);
    m.grpc_address = Attr::Known(d.grpc_address);
    m.running_image = d.running_image.into();
    m.objects = d.objects.into();
    m.state_path = d.state_path.into();
    m.token_file = d.token_file.into();
}

fn serving(m: &Model) -> bool {
    m.status.known().map(String::as_str) == Some("running")
}

/// What a platform plans from, and writes its planned attributes into.
fn plan_view(m: &Model) -> EndpointPlan {
    EndpointPlan {
        name: m.name.clone(),
        port: m.port.clone(),
        grpc_port: m.grpc_port.clone(),
        url: m.url.clone(),
        grpc_address: m.grpc_address.clone(),
        state_path: m.state_path.clone(),
        token_file: m.token_file.clone(),
        running_image: m.running_image.clone(),
        objects: m.objects.clone(),
        image: m.image.clone(),
        container: m.container.clone(),
        kubernetes: m.kubernetes.clone(),
        serving: serving(m),
        served: serde_json::to_string(&(&m.variant, &m.shadow, &m.token_fingerprint, &m.shared))
            .unwrap_or_default(),
    }
}

fn unplan_view(m: &mut Model, v: EndpointPlan) {
    m.port = v.port;
    m.grpc_port = v.grpc_port;
    m.url = v.url;
    m.grpc_address = v.grpc_address;
    m.state_path = v.state_path;
    m.token_file = v.token_file;
    m.running_image = v.running_image;
    m.objects = v.objects;
}

#[tfplugin::async_trait]
impl tfplugin::Resource for Endpoint {
    type Model = Model;

    fn type_name(&self) -> &'static str {
        "modelplane_endpoint"
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    async fn validate(&self, config: &Config, diags: &mut Diagnostics) {
        validate::validate(config, diags)
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
        let conn = self.conn();
        let mut store_seen: Option<String> = None;
        let mut digests = Some(BTreeMap::new());
        for (i, (who, id)) in references(plan).into_iter().enumerate() {
            let Attr::Known(id) = id else {
                digests = None;
                continue;
            };
            let Ok(crate::ids::VersionId {
                store,
                name,
                version,
            }) = id.parse::<crate::ids::VersionId>()
            else {
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
            let s = match crate::stores::open(&store, &conn) {
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
        self.check_approvals(prior, plan, &mut ctx.diags).await;
        // The token: only its fingerprint is planned.
        let fp = match config.get::<String>("token_wo", &mut ctx.diags) {
            Attr::Known(t) => Attr::Known(fingerprint(&plan.name, &t)),
            Attr::Null => Attr::Known("generated".to_string()),
            Attr::Unknown => Attr::Unknown,
        };
        match prior {
            None => {
                plan.status = Attr::Known("running".into());
                plan.token_fingerprint = fp;
                plan.id = plan.cluster.clone().map(|c| format!("{c}/{}", plan.name));
            }
            Some(prior) => {
                // Changes the framework cannot see in the configuration: a server to start
                // again, a new token. They are updates too, so the benchmark runs again.
                if !serving(prior) {
                    plan.status = Attr::Known("running".into());
                    plan.benchmark_result = Attr::Unknown;
                }
                if fp != prior.token_fingerprint {
                    plan.token_fingerprint = fp;
                    plan.benchmark_result = Attr::Unknown;
                }
            }
        }
        if plan.benchmark.is_none() {
            plan.benchmark_result = Attr::Null;
        }
        self.plan_cost(prior, plan, ctx);
        let Some(platform) = self.platform(&plan.cluster, &mut ctx.diags) else {
            return;
        };
        let prior_view = prior.map(plan_view);
        let mut view = plan_view(plan);
        platform.plan_endpoint(prior_view.as_ref(), &mut view, config, &mut ctx.diags);
        unplan_view(plan, view);
    }

    async fn create(&self, mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
        let platform = self.platform(&plan.cluster, &mut ctx.diags)?;
        self.finish_cost(&mut plan, ctx);
        if let Some(why) = platform.claimed(&plan.name).await {
            ctx.diags
                .error_at(AttributePath::attr("name"), "Endpoint already exists", why);
            return None;
        }
        let token = plan
            .token_wo
            .known()
            .cloned()
            .unwrap_or_else(platforms::local::process::new_token);
        plan.token_wo = Attr::Null;
        plan.status = Attr::Known("running".into());
        let remotes = self.resolve_remotes(&plan, true, &mut ctx.diags).await?;
        let spec = self.spec(&plan, &token, &remotes, &mut ctx.diags)?;
        match rollout::apply(platform.as_ref(), &spec, None, plan.benchmark.as_ref(), ctx).await {
            Ok((d, bench)) => {
                fill(&mut plan, d);
                plan.benchmark_result = bench.into();
            }
            Err(f) => {
                f.report(false, &mut ctx.diags);
                self.audit("create", None, Some(&plan), "failed", f.error.to_string())
                    .await;
                // What could not be removed is recorded, and the next apply replaces it.
                let left = f.left?;
                fill(&mut plan, left);
                plan.status = Attr::Known("failed".into());
                plan.benchmark_result = Attr::Null;
                return Some(plan);
            }
        }
        self.finish(platform.as_ref(), &mut plan).await;
        self.audit("create", None, Some(&plan), "applied", String::new())
            .await;
        Some(plan)
    }

    async fn read(&self, mut state: Model, ctx: &mut Ctx) -> Option<Model> {
        let Some(platform) = self.platform(&state.cluster, &mut ctx.diags) else {
            return Some(state);
        };
        match platform
            .observe_endpoint(&state.name, &recorded(&state))
            .await
        {
            Err(e @ platforms::PlatformError::Unreachable(_)) => {
                ctx.diags.warning(
                    "Cannot reach the cluster",
                    format!("{e}. The state is kept as it was."),
                );
            }
            Err(e) => ctx.diags.warning("Cannot read the endpoint", e.to_string()),
            Ok(Observed::Gone) => return None,
            Ok(Observed::Missing) => state.status = Attr::Known("missing".into()),
            Ok(Observed::Stopped) => state.status = Attr::Known("stopped".into()),
            Ok(Observed::Unreachable(why)) => {
                ctx.diags.warning(
                    "Endpoint not answering",
                    format!("{why}. The plan will restart it."),
                );
                state.status = Attr::Known("unreachable".into());
            }
            Ok(Observed::Running(r)) => {
                state.running_image = r.running_image.clone().into();
                state.status = Attr::Known(if r.drifted { "drifted" } else { "running" }.into());
                if state.model_digests.is_null() {
                    // Just imported: what the store holds is what was loaded.
                    state.model_digests = digests(&state, &self.conn()).await;
                }
                // What the server really serves replaces the recorded split, so drift shows
                // in the plan.
                if let Some(cfg) = &r.serves {
                    reflect_served(&mut state, cfg, &cfg.repository);
                }
                // A remote variant that no longer answers shows in the plan.
                let mut probe = Diagnostics::default();
                match self.resolve_remotes(&state, true, &mut probe).await {
                    Some(_) => {}
                    None => {
                        for d in probe.iter() {
                            ctx.diags.warning(
                                "Remote variant not answering",
                                format!("{}. The endpoint is marked degraded; the plan applies it again, which checks the remote first.", d.detail),
                            );
                        }
                        state.status = Attr::Known("degraded".into());
                    }
                }
                if let Some(t) = &r.token {
                    // A token changed on the platform shows as a changed fingerprint.
                    if state.token_fingerprint.known().map(String::as_str) != Some("generated")
                        && state.token_fingerprint.known() != Some(&fingerprint(&state.name, t))
                    {
                        state.status = Attr::Known("drifted".into());
                    }
                }
            }
        }
        Some(state)
    }

    async fn update(&self, prior: Model, mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
        let Some(platform) = self.platform(&plan.cluster, &mut ctx.diags) else {
            return Some(prior);
        };
        self.finish_cost(&mut plan, ctx);
        let before = recorded(&prior);
        let old_token = platform.endpoint_token(&prior.name, &before).await;
        let token = match (plan.token_wo.known(), &old_token) {
            (Some(t), _) => t.clone(),
            (None, Some(t)) if plan.token_fingerprint == prior.token_fingerprint => t.clone(),
            _ => platforms::local::process::new_token(),
        };
        plan.token_wo = Attr::Null;
        let Some(remotes) = self.resolve_remotes(&plan, true, &mut ctx.diags).await else {
            return Some(prior);
        };
        let Some(spec) = self.spec(&plan, &token, &remotes, &mut ctx.diags) else {
            return Some(prior);
        };
        // The previous split's remotes, for a rollback (resolved without the readiness check:
        // going back must not depend on a remote that is being left).
        let prior_remotes = self
            .resolve_remotes(&prior, false, &mut Diagnostics::default())
            .await
            .unwrap_or_default();
        let previous = Previous {
            spec: self.spec(
                &prior,
                old_token.as_deref().unwrap_or(&token),
                &prior_remotes,
                &mut Diagnostics::default(),
            ),
            deployment: before,
            serving: serving(&prior),
        };
        match rollout::apply(
            platform.as_ref(),
            &spec,
            Some(&previous),
            plan.benchmark.as_ref(),
            ctx,
        )
        .await
        {
            Ok((d, bench)) => {
                fill(&mut plan, d);
                plan.benchmark_result = bench.into();
            }
            Err(f) => {
                f.report(true, &mut ctx.diags);
                let rolled_back = f.stage == rollout::Stage::Benchmark && f.restored.is_ok();
                let (action, outcome) = match rolled_back {
                    true => ("rollback", "rolled back"),
                    false => ("update", "failed"),
                };
                self.audit(
                    action,
                    Some(&prior),
                    Some(&plan),
                    outcome,
                    f.error.to_string(),
                )
                .await;
                return Some(prior);
            }
        }
        plan.status = Attr::Known("running".into());
        self.finish(platform.as_ref(), &mut plan).await;
        self.audit(
            "update",
            Some(&prior),
            Some(&plan),
            "applied",
            String::new(),
        )
        .await;
        Some(plan)
    }

    async fn delete(&self, state: Model, ctx: &mut Ctx) {
        let Some(platform) = self.platform(&state.cluster, &mut ctx.diags) else {
            return;
        };
        match platform
            .remove_endpoint(&state.name, &recorded(&state))
            .await
        {
            Ok(()) => {
                self.audit("delete", Some(&state), None, "applied", String::new())
                    .await
            }
            Err(e) => {
                e.report("Cannot delete the endpoint", &mut ctx.diags);
                self.audit("delete", Some(&state), None, "failed", e.to_string())
                    .await;
            }
        }
    }

    async fn import(&self, id: &str, ctx: &mut Ctx) -> Option<Model> {
        let id: EndpointId = match id.parse() {
            Ok(id) => id,
            Err(e) => {
                ctx.diags.error("Invalid import ID", e.to_string());
                return None;
            }
        };
        let platform = match platforms::resolve(&id.cluster, &self.provider()) {
            Ok(p) => p,
            Err(e) => {
                ctx.diags.error("Invalid import ID", e.to_string());
                return None;
            }
        };
        let found = match platform.import_endpoint(&id.name).await {
            Ok(f) => f,
            Err(e) => {
                e.report("Cannot import the endpoint", &mut ctx.diags);
                return None;
            }
        };
        let meta: Option<Meta> = found
            .record
            .clone()
            .and_then(|r| serde_json::from_value(r).ok());
        let name = id.name.clone();
        let cluster: ClusterId = meta
            .as_ref()
            .and_then(|m| m.cluster.parse().ok())
            .unwrap_or_else(|| id.cluster.clone());
        let token_fingerprint = match (&meta, &found.token) {
            (Some(m), _) => m.token_fingerprint.clone(),
            (None, Some(t)) => fingerprint(&name, t),
            (None, None) => "generated".to_string(),
        };
        let mut m = Model {
            id: Attr::Known(id.to_string()),
            name: name.clone(),
            cluster: Attr::Known(cluster.to_string()),
            variant: Vec::new(),
            shadow: None,
            shared: None,
            require_approval: None,
            sticky_header: None,
            batching: meta.as_ref().and_then(|m| m.batching.clone()),
            limits: meta.as_ref().and_then(|m| m.limits.clone()),
            monitoring: meta.as_ref().and_then(|m| m.monitoring.clone()),
            benchmark: meta.as_ref().and_then(|m| m.benchmark.clone()),
            image: meta
                .as_ref()
                .map_or(found.image.clone(), |m| m.image.clone()),
            container: meta.as_ref().and_then(|m| m.container.clone()),
            port: Attr::Null,
            grpc_port: Attr::Null,
            token_wo: Attr::Null,
            token_fingerprint: Attr::Known(token_fingerprint),
            url: Attr::Null,
            grpc_address: Attr::Null,
            status: Attr::Known("running".into()),
            token_file: Attr::Null,
            state_path: Attr::Null,
            benchmark_result: meta
                .as_ref()
                .and_then(|m| m.benchmark_result.clone())
                .into(),
            model_digests: Attr::Null,
            running_image: Attr::Null,
            objects: Attr::Null,
            kubernetes: found.kubernetes.clone(),
            aws: None,
            azure: None,
            pricing: None,
            budget: None,
            estimated_cost: Attr::Null,
        };
        fill(&mut m, found.deployment.clone());
        reflect_served(&mut m, &found.serves, &found.serves.repository);
        if let Some(meta) = &meta {
            // What the server's configuration holds of the split is exact; the rest is the
            // record's.
            m.sticky_header = meta.sticky_header.clone();
        }
        m.model_digests = digests(&m, &self.conn()).await;
        m.estimated_cost = crate::cost::endpoint::estimate(&m, &self.provider(), &mut ctx.diags);
        Some(m)
    }
}
