//! `modelplane_endpoint_model`: one model attached to a shared `modelplane_endpoint`, under
//! its own route, with its own variants, shadow, batching and benchmark hook.
//!
//! An attachment is one JSON file in the shared endpoint's registry, in its store
//! (`.endpoints/ENDPOINT_ID/NAME.json`): every replica of the
//! endpoint, on every platform, reads the same registry (every `poll_interval`, and at once
//! when told). Apply writes the file, tells the endpoint's server to read it (where this
//! machine reaches the server: `local`, `container`), which answers once the change is live
//! (concurrent applies share one reload), then checks that the model loads and runs the
//! benchmark hook. A failure puts the previous file back (on create: removes it).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use tfplugin::{
    Attr, Attribute, AttributePath, Block, Config, Ctx, Diagnostics, NestedBlock, Nesting,
    PathStep, Schema, Type, Validator,
};

use modelplane_serve::batch::BatchConfig;
use modelplane_serve::config::{
    Attachment, EndpointConfig, ModelConfig, ShadowConfig, VariantConfig,
};

use crate::ids::{EndpointId, VersionId};
use crate::platforms::rollout::{BenchResult, Benchmark};
use crate::platforms::{self, Deployment};
use crate::resources::endpoint::{schema as eschema, spec as espec, Batching};
use crate::{stores, ProviderConfig};

/// Where attachments live in a store: `REGISTRY/ENDPOINT_ID/NAME.json` is read and written as
/// the store's file `NAME.json` of "model" `REGISTRY`, "version" `ENDPOINT_ID` (the stores
/// join the parts with `/`).
const REGISTRY: &str = ".endpoints";

pub struct EndpointModel {
    pub config: Arc<OnceLock<ProviderConfig>>,
}

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

#[derive(Debug, Serialize, Deserialize)]
pub struct Model {
    pub id: Attr<String>,
    pub endpoint: Attr<String>,
    pub name: String,
    pub variant: Vec<Variant>,
    pub shadow: Option<Shadow>,
    pub sticky_header: Option<String>,
    pub pinned: Option<bool>,
    pub batching: Option<Batching>,
    pub benchmark: Option<Benchmark>,
    pub url: Attr<String>,
    pub model_digests: Attr<BTreeMap<String, String>>,
    pub benchmark_result: Attr<BenchResult>,
}

fn schema() -> Schema {
    Schema::new(
        Block::new()
            .description(
                "One model attached to a shared `modelplane_endpoint` (one with a `shared` block): its own route \
                 (`/v2/models/NAME`), variants and weights, shadow, batching and benchmark hook, served by the \
                 shared endpoint's servers beside every other attached model. Plans stay per model: attaching, \
                 changing or detaching one model touches this resource only, and the shared servers reload it \
                 without dropping a request to any other model.\n\n\
                 The attachment is a file in the shared endpoint's store (`.endpoints/…/NAME.json`), which every \
                 server of the endpoint reads every `shared.poll_interval`. On `local` and `container` clusters \
                 the apply also tells the server at once, and returns when the change is live; many attachments \
                 applied together (Terraform runs 10 at a time) share one reload. The model loads on its first \
                 request (apply makes that request, so a model that cannot load fails the apply), unless \
                 `pinned`.\n\n\
                 * **Benchmark hook**: as on `modelplane_endpoint`, against this model's route; an SLO miss puts the \
                 previous attachment back (on create: detaches it) and fails the apply.\n\
                 * **Refresh** reads the file back: a detached model (file deleted) is created again by the next \
                 plan, a changed one shows its drift.\n\n\
                 Import with `ENDPOINT_ID/NAME`, e.g. `local/inference/pool/fraud-eu`.",
            )
            .attribute(Attribute::new("id", Type::String).computed().stable().description("`ENDPOINT_ID/NAME`."))
            .attribute(Attribute::new("endpoint", Type::String).required().requires_replace().description("The `id` of the shared `modelplane_endpoint`."))
            .attribute(Attribute::new("name", Type::String).required().requires_replace().description("The route: clients call `/v2/models/NAME/infer` on the shared endpoint. Unique on it."))
            .attribute(Attribute::new("sticky_header", Type::String).optional().description("A request header whose value keeps a client on one variant (e.g. `x-user-id`)."))
            .attribute(Attribute::new("pinned", Type::Bool).optional().description("Load the model when attached and never unload it to make room (default false: loaded on its first request, unloaded when least recently used and the memory budget is short)."))
            .attribute(Attribute::new("url", Type::String).computed().stable().description("The model's base URL: `ENDPOINT_URL/v2/models/NAME` (infer at `URL/infer`)."))
            .attribute(Attribute::new("model_digests", Type::map(Type::String)).computed().description("sha256 of every served model version, by model `id`: a version replaced in the store under the same id shows as a change."))
            .attribute(Attribute::nested("benchmark_result", Nesting::Single, eschema::bench_result()).computed().description("Figures of the last benchmark; null without a `benchmark` block."))
            .block(
                NestedBlock::new(
                    "variant",
                    Nesting::List,
                    Block::new()
                        .description("A model version that serves a share of this model's traffic. Weights total 100. Clients can pin a variant with the header `x-modelplane-variant: NAME`.")
                        .attribute(Attribute::new("name", Type::String).required().description("Variant name, e.g. `stable` or `canary`."))
                        .attribute(Attribute::new("model", Type::String).required().description("The `id` of a `modelplane_model` in the shared endpoint's store."))
                        .attribute(Attribute::new("weight", Type::Number).required().validate(Validator::between(0.0, 100.0).summary("Invalid weight")).description("Share of requests, 0–100.")),
                )
                .min_items(1),
            )
            .block(NestedBlock::new(
                "shadow",
                Nesting::Single,
                Block::new()
                    .description("A model version that receives a copy of every request to this model; its answers are discarded, its metrics kept.")
                    .attribute(Attribute::new("model", Type::String).required().description("The `id` of a `modelplane_model`.")),
            ))
            .block(NestedBlock::new(
                "batching",
                Nesting::Single,
                Block::new()
                    .description("Dynamic batching of this model's concurrent requests.")
                    .attribute(Attribute::new("max_batch_size", Type::Number).optional().validate(Validator::at_least(1.0).summary("Invalid batch size")).description("Most rows per batch (default 32)."))
                    .attribute(Attribute::new("max_delay_ms", Type::Number).optional().validate(Validator::at_least(0.0).summary("Invalid delay")).description("Longest a partial batch waits for more requests while a worker is free (default 0).")),
            ))
            .block(eschema::benchmark_block("this model's route on the shared endpoint")),
    )
}

/// A shared endpoint, as an attachment needs it.
struct Shared {
    store: Box<dyn stores::Store>,
    store_id: String,
    segment: String,
    deployment: Deployment,
    token: Option<String>,
}

impl EndpointModel {
    fn provider(&self) -> ProviderConfig {
        ProviderConfig::of(&self.config)
    }

    /// Reads the shared endpoint: its store, registry and where it answers.
    async fn shared(&self, endpoint: &str) -> Result<Shared, String> {
        let id: EndpointId = endpoint.parse().map_err(|e| format!("{e}"))?;
        let p = platforms::resolve(&id.cluster, &self.provider()).map_err(|e| e.to_string())?;
        let found = p
            .import_endpoint(&id.name)
            .await
            .map_err(|e| format!("the endpoint {endpoint} cannot be read: {e}"))?;
        let Some(sh) = &found.serves.shared else {
            return Err(format!("the endpoint {endpoint} is not shared: give it a `shared` block to attach models to it"));
        };
        let segment = sh
            .registry
            .strip_prefix(&format!("{REGISTRY}/"))
            .ok_or_else(|| format!("the endpoint {endpoint} reads attachments from {:?}, not from a registry this provider writes", sh.registry))?
            .to_string();
        let store_id = stores::id_of_repository(&found.serves.repository);
        let store =
            stores::open(&store_id, &self.provider().stores()).map_err(|e| e.to_string())?;
        let token = match &found.token {
            Some(t) => Some(t.clone()),
            None => p.endpoint_token(&id.name, &found.deployment).await,
        };
        Ok(Shared {
            store,
            store_id,
            segment,
            deployment: found.deployment,
            token,
        })
    }

    async fn read_attachment(sh: &Shared, name: &str) -> Result<Option<Attachment>, String> {
        let file = format!("{name}.json");
        match sh.store.get(REGISTRY, &sh.segment, &file).await {
            Ok(None) => Ok(None),
            Ok(Some(b)) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| format!("{REGISTRY}/{}/{file}: {e}", sh.segment)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Writes (or with `None` removes) the attachment, then has the servers read it.
    async fn put(sh: &Shared, name: &str, a: Option<&Attachment>) -> Result<Told, String> {
        let file = format!("{name}.json");
        match a {
            Some(a) => {
                let bytes = serde_json::to_vec_pretty(a).map_err(|e| e.to_string())?;
                sh.store
                    .put_file(REGISTRY, &sh.segment, &file, bytes)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            None => sh
                .store
                .delete_file(REGISTRY, &sh.segment, &file)
                .await
                .map_err(|e| e.to_string())?,
        }
        tell(&sh.deployment.url, sh.token.as_deref()).await
    }
}

/// What became of asking the server to read the registry.
enum Told {
    /// The change is live.
    Live,
    /// The server is not reachable from here; it reads the registry on its own.
    Unreachable(String),
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .no_proxy()
        .build()
        .expect("client")
}

/// Asks the server to read its registry now; it answers once the change is live.
async fn tell(url: &str, token: Option<&str>) -> Result<Told, String> {
    let mut req = client().post(format!("{}/v2/admin/reload", url.trim_end_matches('/')));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => Ok(Told::Live),
        Ok(r) => {
            let code = r.status();
            Err(format!(
                "{url}: reading the registry failed ({code}): {}",
                r.text().await.unwrap_or_default()
            ))
        }
        Err(e) if e.is_connect() || e.is_timeout() => Ok(Told::Unreachable(e.to_string())),
        Err(e) => Err(format!("{url}: {e}")),
    }
}

/// Checks that the attached model serves: ready, and its metadata answered (which loads it).
async fn serves(url: &str, token: Option<&str>, name: &str) -> Result<(), String> {
    for path in ["/ready", ""] {
        let at = format!("{}/v2/models/{name}{path}", url.trim_end_matches('/'));
        let mut req = client().get(&at);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.map_err(|e| format!("{at}: {e}"))?;
        if !r.status().is_success() {
            let code = r.status();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            let why = body["error"]
                .as_str()
                .unwrap_or("no reason given")
                .to_string();
            return Err(format!("the model does not serve ({code}): {why}"));
        }
    }
    Ok(())
}

/// The attachment a plan means, with the store its models come from.
fn attachment(m: &Model) -> Result<(String, Attachment), (AttributePath, String)> {
    let mut store: Option<String> = None;
    let mut parse = |at: AttributePath,
                     id: &Attr<String>|
     -> Result<VersionId, (AttributePath, String)> {
        let id = id
            .known()
            .ok_or_else(|| (at.clone(), "unknown model id".to_string()))?;
        let v: VersionId = id.parse().map_err(|_| {
            (
                at.clone(),
                format!("{id:?} is not the id of a modelplane_model (STORE_ID/NAME/VERSION)"),
            )
        })?;
        if store.as_ref().is_some_and(|s| s != &v.store) {
            return Err((at, format!("{id} comes from another store than the variants before it; a model is served from its shared endpoint's store")));
        }
        store = Some(v.store.clone());
        Ok(v)
    };
    let mut variants = Vec::new();
    for (i, v) in m.variant.iter().enumerate() {
        let at = AttributePath(vec![
            PathStep::Attr("variant".into()),
            PathStep::Index(i as i64),
            PathStep::Attr("model".into()),
        ]);
        let id = parse(at, &v.model)?;
        variants.push(VariantConfig {
            name: v.name.clone(),
            model: id.name,
            version: Some(id.version),
            weight: v.weight.known().copied().unwrap_or(0) as u32,
            remote: None,
        });
    }
    let shadow = match &m.shadow {
        Some(s) => {
            let id = parse(
                AttributePath(vec![
                    PathStep::Attr("shadow".into()),
                    PathStep::Attr("model".into()),
                ]),
                &s.model,
            )?;
            Some(ShadowConfig {
                model: id.name,
                version: Some(id.version),
                remote: None,
            })
        }
        None => None,
    };
    let batching = m.batching.as_ref().map(|b| {
        let d = BatchConfig::default();
        BatchConfig {
            max_batch_size: b.max_batch_size.map_or(d.max_batch_size, |v| v as usize),
            max_delay_ms: b.max_delay_ms.map_or(d.max_delay_ms, |v| v as u64),
            ..d
        }
    });
    let mut models: Vec<ModelConfig> = Vec::new();
    if let Some(b) = batching {
        for (model, version) in variants
            .iter()
            .map(|v| (&v.model, &v.version))
            .chain(shadow.iter().map(|s| (&s.model, &s.version)))
        {
            if !models
                .iter()
                .any(|x| &x.name == model && &x.version == version)
            {
                models.push(ModelConfig {
                    batching: b.clone(),
                    ..ModelConfig::named(model.clone(), version.clone())
                });
            }
        }
    }
    Ok((
        store.unwrap_or_default(),
        Attachment {
            endpoint: EndpointConfig {
                name: m.name.clone(),
                variants,
                shadow,
                sticky_header: m.sticky_header.clone(),
            },
            models,
            pinned: m.pinned.unwrap_or(false),
        },
    ))
}

/// Replaces the state's split, shadow and settings with what the registry file says.
fn reflect(m: &mut Model, a: &Attachment, store: &str) {
    let id = |model: &str, version: &Option<String>| {
        Attr::Known(VersionId::new(store, model, version.as_deref().unwrap_or("")).to_string())
    };
    m.variant = a
        .endpoint
        .variants
        .iter()
        .map(|v| Variant {
            name: v.name.clone(),
            model: id(&v.model, &v.version),
            weight: Attr::Known(i64::from(v.weight)),
        })
        .collect();
    m.shadow = a.endpoint.shadow.as_ref().map(|s| Shadow {
        model: id(&s.model, &s.version),
    });
    m.sticky_header = a.endpoint.sticky_header.clone();
    m.pinned = match (m.pinned, a.pinned) {
        (None, false) => None,
        (_, p) => Some(p),
    };
    let d = BatchConfig::default();
    m.batching = a.models.first().map(|mc| Batching {
        max_batch_size: (mc.batching.max_batch_size != d.max_batch_size
            || m.batching
                .as_ref()
                .is_some_and(|b| b.max_batch_size.is_some()))
        .then_some(mc.batching.max_batch_size as i64),
        max_delay_ms: (mc.batching.max_delay_ms != d.max_delay_ms
            || m.batching
                .as_ref()
                .is_some_and(|b| b.max_delay_ms.is_some()))
        .then_some(mc.batching.max_delay_ms as i64),
    });
}

async fn digests(m: &Model, conn: &stores::Connection) -> Attr<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let ids = m
        .variant
        .iter()
        .map(|v| &v.model)
        .chain(m.shadow.iter().map(|s| &s.model));
    for id in ids {
        let Attr::Known(id) = id else {
            return Attr::Unknown;
        };
        let Ok(v) = id.parse::<VersionId>() else {
            return Attr::Unknown;
        };
        let Ok(s) = stores::open(&v.store, conn) else {
            return Attr::Unknown;
        };
        match espec::recorded_sha256(s.as_ref(), &v.name, &v.version).await {
            Ok(Some(sha)) => {
                out.insert(id.clone(), sha);
            }
            _ => return Attr::Unknown,
        }
    }
    Attr::Known(out)
}

impl EndpointModel {
    /// Create and update: writes the attachment, has it served, checks and benchmarks it;
    /// on a failure puts `before` back (or detaches, on create).
    /// Attaches `plan`; on failure, what the audit record says: whether the previous
    /// attachment serves again (a rollback), and why.
    async fn apply(
        &self,
        plan: &mut Model,
        before: Option<&Attachment>,
        ctx: &mut Ctx,
    ) -> Result<(), (bool, String)> {
        let endpoint = plan.endpoint.known().cloned().unwrap_or_default();
        let sh = match self.shared(&endpoint).await {
            Ok(s) => s,
            Err(e) => {
                ctx.diags.error_at(
                    AttributePath::attr("endpoint"),
                    "Shared endpoint not found",
                    e.clone(),
                );
                return Err((false, e));
            }
        };
        let (store, a) = match attachment(plan) {
            Ok(x) => x,
            Err((at, e)) => {
                ctx.diags.error_at(at, "Invalid model reference", e.clone());
                return Err((false, e));
            }
        };
        if store != sh.store_id {
            let why = format!("the models come from {store}, but the shared endpoint {endpoint} serves from {}; register the versions there (modelplane_model with `source` copies one between stores).", sh.store_id);
            ctx.diags.error_at(
                AttributePath::attr("variant"),
                "Model from another store",
                why.clone(),
            );
            return Err((false, why));
        }
        let fail = |ctx: &mut Ctx, summary: &str, e: String, restored: Result<(), String>| {
            let rolled_back = before.is_some() && restored.is_ok();
            let then = match (before.is_some(), restored) {
                (false, Ok(())) => "The model was detached again; nothing was recorded.".to_string(),
                (true, Ok(())) => "The previous attachment serves again; the state is unchanged.".to_string(),
                (_, Err(r)) => format!("Putting the previous attachment back failed too: {r}. Run terraform apply again."),
            };
            ctx.diags.error(summary, format!("{e}\n{then}"));
            (rolled_back, e)
        };
        let told = match Self::put(&sh, &plan.name, Some(&a)).await {
            Ok(t) => t,
            Err(e) => {
                let restored = Self::put(&sh, &plan.name, before).await.map(|_| ());
                return Err(fail(ctx, "Cannot attach the model", e, restored));
            }
        };
        plan.url = Attr::Known(format!(
            "{}/v2/models/{}",
            sh.deployment.url.trim_end_matches('/'),
            plan.name
        ));
        match told {
            Told::Unreachable(why) => {
                ctx.diags.warning(
                    "Shared endpoint not reachable from here",
                    format!("{} does not answer from this machine ({why}); its servers read the attachment within their poll_interval. Its loading and benchmark were not checked.", sh.deployment.url),
                );
                plan.benchmark_result = Attr::Null;
            }
            Told::Live => {
                let checked =
                    match serves(&sh.deployment.url, sh.token.as_deref(), &plan.name).await {
                        Err(e) => Err(("The model does not serve", e)),
                        Ok(()) => {
                            let token = sh.token.clone().unwrap_or_default();
                            crate::platforms::rollout::measure(
                                plan.benchmark.as_ref(),
                                &plan.name,
                                &sh.deployment,
                                &token,
                                ctx,
                            )
                            .await
                            .map_err(|e| ("Benchmark failed", e))
                        }
                    };
                match checked {
                    Ok(r) => plan.benchmark_result = r.into(),
                    Err((summary, e)) => {
                        let restored = Self::put(&sh, &plan.name, before).await.map(|_| ());
                        return Err(fail(ctx, summary, e, restored));
                    }
                }
            }
        }
        plan.model_digests = digests(plan, &self.provider().stores()).await;
        Ok(())
    }

    /// Appends the audit record of a change of an attachment to its models' store.
    async fn audit(
        &self,
        before: Option<&Model>,
        after: Option<&Model>,
        result: Result<(), (bool, String)>,
    ) {
        if self.provider().governance.audit_off {
            return;
        }
        let Some(m) = after.or(before) else { return };
        let Some(store) = m
            .variant
            .iter()
            .filter_map(|v| v.model.known()?.parse::<VersionId>().ok())
            .next()
            .and_then(|v| stores::open(&v.store, &self.provider().stores()).ok())
        else {
            return;
        };
        fn v<T: serde::Serialize>(x: &T) -> serde_json::Value {
            serde_json::to_value(x).unwrap_or_default()
        }
        let view = |m: &Model| {
            BTreeMap::from([
                ("variant", v(&m.variant)),
                ("shadow", v(&m.shadow)),
                ("sticky_header", v(&m.sticky_header)),
                ("pinned", v(&m.pinned)),
                ("batching", v(&m.batching)),
                ("benchmark", v(&m.benchmark)),
            ])
        };
        let (changed, change) = crate::governance::audit::diff(
            before.map(view).as_ref(),
            after.map(view).as_ref(),
            &[],
        );
        let split = |m: &Model| -> BTreeMap<String, i64> {
            m.variant
                .iter()
                .filter_map(|v| Some((v.name.clone(), *v.weight.known()?)))
                .collect()
        };
        let action = match (before, after, &result) {
            (_, None, _) => "delete",
            (None, _, _) => "create",
            (Some(_), Some(_), Err((true, _))) => "rollback",
            _ => "update",
        };
        let (outcome, detail) = match result {
            Ok(()) => ("applied", String::new()),
            Err((true, e)) => ("rolled back", e),
            Err((false, e)) => ("failed", e),
        };
        let mut models: BTreeMap<String, String> = m
            .variant
            .iter()
            .filter_map(|v| Some((v.name.clone(), v.model.known()?.clone())))
            .collect();
        if let Some(id) = m.shadow.as_ref().and_then(|s| s.model.known()) {
            models.insert("shadow".into(), id.clone());
        }
        let r = crate::governance::audit::Record {
            action: action.into(),
            resource: "modelplane_endpoint_model".into(),
            endpoint: m.endpoint.known().map(|e| format!("{e}/{}", m.name)),
            models,
            outcome: outcome.into(),
            split_before: before.map(split).unwrap_or_default(),
            split_after: after.map(split).unwrap_or_default(),
            changed,
            change,
            benchmark: after.and_then(|m| m.benchmark_result.known().cloned()),
            detail,
            ..Default::default()
        };
        crate::governance::audit::write(store.as_ref(), &self.provider().stores(), r).await;
    }
}

#[tfplugin::async_trait]
impl tfplugin::Resource for EndpointModel {
    type Model = Model;

    fn type_name(&self) -> &'static str {
        "modelplane_endpoint_model"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(&self, config: &Config, diags: &mut Diagnostics) {
        crate::check_name(config, diags);
        if let Attr::Known(e) = config.get::<String>("endpoint", diags) {
            if let Err(err) = e.parse::<EndpointId>() {
                diags.error_at(
                    AttributePath::attr("endpoint"),
                    "Invalid endpoint",
                    err.to_string(),
                );
            }
        }
        let mut names = std::collections::BTreeSet::new();
        let mut total = Some(0i64);
        let variants = config.elements("variant");
        for (i, v) in variants.iter().enumerate() {
            if let Attr::Known(n) = v.get::<String>("name", diags) {
                if !names.insert(n.clone()) {
                    diags.error_at(
                        AttributePath(vec![
                            PathStep::Attr("variant".into()),
                            PathStep::Index(i as i64),
                            PathStep::Attr("name".into()),
                        ]),
                        "Duplicate variant",
                        format!("variant {n:?} is declared twice; variant names must be unique."),
                    );
                }
            }
            match v.get::<f64>("weight", diags) {
                Attr::Known(w) => total = total.map(|t| t + w as i64),
                _ => total = None,
            }
        }
        if let Some(t) = total.filter(|t| *t != 100 && !variants.is_empty()) {
            diags.error_at(
                AttributePath::attr("variant"),
                "Variant weights must total 100",
                format!("the weights add up to {t}; adjust them so that they total 100."),
            );
        }
        if let Some(b) = config.elements("benchmark").first() {
            for f in ["duration", "warmup"] {
                if let Attr::Known(d) = b.get::<String>(f, diags) {
                    if let Err(e) = espec::parse_duration(&d) {
                        diags.error_at(
                            AttributePath(vec![
                                PathStep::Attr("benchmark".into()),
                                PathStep::Attr(f.into()),
                            ]),
                            "Invalid duration",
                            format!("{e}; e.g. \"3s\"."),
                        );
                    }
                }
            }
        }
    }

    async fn modify_plan(
        &self,
        prior: Option<&Model>,
        plan: &mut Model,
        _config: &Config,
        ctx: &mut Ctx,
    ) {
        // Referenced versions must exist: a typo is caught before anything runs.
        let conn = self.provider().stores();
        let ids: Vec<(AttributePath, Attr<String>)> = plan
            .variant
            .iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    AttributePath(vec![
                        PathStep::Attr("variant".into()),
                        PathStep::Index(i as i64),
                        PathStep::Attr("model".into()),
                    ]),
                    v.model.clone(),
                )
            })
            .chain(plan.shadow.iter().map(|s| {
                (
                    AttributePath(vec![
                        PathStep::Attr("shadow".into()),
                        PathStep::Attr("model".into()),
                    ]),
                    s.model.clone(),
                )
            }))
            .collect();
        for (at, id) in ids {
            let Attr::Known(id) = id else { continue };
            let v = match id.parse::<VersionId>() {
                Ok(v) => v,
                Err(_) => {
                    ctx.diags.error_at(
                        at,
                        "Invalid model reference",
                        format!(
                            "{id:?} is not the id of a modelplane_model (STORE_ID/NAME/VERSION)."
                        ),
                    );
                    return;
                }
            };
            let Ok(s) = stores::open(&v.store, &conn) else {
                continue;
            };
            if let Ok(None) = espec::recorded_sha256(s.as_ref(), &v.name, &v.version).await {
                ctx.diags.error_at(at, "Unknown model", format!("model {} version {} is not in the store {}. Register it with a modelplane_model resource and refer to its id.", v.name, v.version, v.store));
                return;
            }
        }
        plan.model_digests = digests(plan, &conn).await;
        let policy = self.provider().governance;
        if policy.require_approval {
            let served: Vec<_> = plan
                .variant
                .iter()
                .enumerate()
                .filter(|(_, v)| v.weight.known() != Some(&0))
                .map(|(i, v)| {
                    let at = AttributePath(vec![
                        PathStep::Attr("variant".into()),
                        PathStep::Index(i as i64),
                        PathStep::Attr("model".into()),
                    ]);
                    (at, v.name.as_str(), &v.model)
                })
                .collect();
            crate::governance::approval::require(
                &served,
                &conn,
                policy.separation_of_duties,
                &mut ctx.diags,
            )
            .await;
        }
        if plan.benchmark.is_none() {
            plan.benchmark_result = Attr::Null;
        }
        match prior {
            None => {
                plan.id = plan.endpoint.clone().map(|e| format!("{e}/{}", plan.name));
            }
            Some(prior) => {
                let same = plan.variant == prior.variant
                    && plan.shadow == prior.shadow
                    && plan.sticky_header == prior.sticky_header
                    && plan.pinned == prior.pinned
                    && plan.batching == prior.batching
                    && plan.benchmark == prior.benchmark
                    && plan.model_digests == prior.model_digests;
                if !same && plan.benchmark.is_some() {
                    plan.benchmark_result = Attr::Unknown;
                }
            }
        }
    }

    async fn create(&self, mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
        let result = self.apply(&mut plan, None, ctx).await;
        let ok = result.is_ok();
        self.audit(None, Some(&plan), result).await;
        ok.then_some(plan)
    }

    async fn read(&self, mut state: Model, ctx: &mut Ctx) -> Option<Model> {
        let Some(endpoint) = state.endpoint.known().cloned() else {
            return Some(state);
        };
        let sh = match self.shared(&endpoint).await {
            Ok(s) => s,
            Err(e) => {
                ctx.diags.warning(
                    "Cannot read the shared endpoint",
                    format!("{e}. The state is kept as it was."),
                );
                return Some(state);
            }
        };
        match Self::read_attachment(&sh, &state.name).await {
            // Detached out of band: the plan attaches it again.
            Ok(None) => None,
            Ok(Some(a)) => {
                reflect(&mut state, &a, &sh.store_id);
                Some(state)
            }
            Err(e) => {
                ctx.diags.warning(
                    "Cannot read the attachment",
                    format!("{e}. The state is kept as it was."),
                );
                Some(state)
            }
        }
    }

    async fn update(&self, prior: Model, mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
        let before = attachment(&prior).ok().map(|(_, a)| a);
        let result = self.apply(&mut plan, before.as_ref(), ctx).await;
        let ok = result.is_ok();
        self.audit(Some(&prior), Some(&plan), result).await;
        Some(if ok { plan } else { prior })
    }

    async fn delete(&self, state: Model, ctx: &mut Ctx) {
        let Some(endpoint) = state.endpoint.known().cloned() else {
            return;
        };
        match self.shared(&endpoint).await {
            Ok(sh) => match Self::put(&sh, &state.name, None).await {
                Ok(_) => self.audit(Some(&state), None, Ok(())).await,
                Err(e) => {
                    ctx.diags.error("Cannot detach the model", e.clone());
                    self.audit(Some(&state), None, Err((false, e))).await;
                }
            },
            // The endpoint is gone: so is what served the attachment. Its file goes too,
            // where the store is known from the models.
            Err(_) => {
                if let (Ok((store, _)), Ok(id)) =
                    (attachment(&state), endpoint.parse::<EndpointId>())
                {
                    if let Ok(s) = stores::open(&store, &self.provider().stores()) {
                        let _ = s
                            .delete_file(
                                REGISTRY,
                                &espec::registry_segment(&id),
                                &format!("{}.json", state.name),
                            )
                            .await;
                    }
                }
            }
        }
    }

    async fn import(&self, id: &str, ctx: &mut Ctx) -> Option<Model> {
        let Some((endpoint, name)) = id
            .rsplit_once('/')
            .filter(|(e, n)| !n.is_empty() && e.parse::<EndpointId>().is_ok())
        else {
            ctx.diags.error("Invalid import ID", format!("{id:?} is not an attachment ID: ENDPOINT_ID/NAME, e.g. \"local/inference/pool/fraud-eu\"."));
            return None;
        };
        let sh = match self.shared(endpoint).await {
            Ok(s) => s,
            Err(e) => {
                ctx.diags.error("Cannot import the attachment", e);
                return None;
            }
        };
        let a = match Self::read_attachment(&sh, name).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                ctx.diags.error(
                    "Cannot import the attachment",
                    format!("no model {name:?} is attached to {endpoint}."),
                );
                return None;
            }
            Err(e) => {
                ctx.diags.error("Cannot import the attachment", e);
                return None;
            }
        };
        let mut m = Model {
            id: Attr::Known(id.to_string()),
            endpoint: Attr::Known(endpoint.to_string()),
            name: name.to_string(),
            variant: Vec::new(),
            shadow: None,
            sticky_header: None,
            pinned: None,
            batching: None,
            benchmark: None,
            url: Attr::Known(format!(
                "{}/v2/models/{name}",
                sh.deployment.url.trim_end_matches('/')
            )),
            model_digests: Attr::Null,
            benchmark_result: Attr::Null,
        };
        reflect(&mut m, &a, &sh.store_id);
        m.model_digests = digests(&m, &self.provider().stores()).await;
        Some(m)
    }
}
