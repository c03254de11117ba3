//! The server's shared core: loaded models, endpoints (traffic split), reload, and the one
//! inference path REST and gRPC both use.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::Semaphore;

use crate::batch::Batcher;
use crate::config::{ModelConfig, ServeConfig};
use crate::error::ServeError;
use crate::metrics::Metrics;
use crate::model::Model;
use crate::remote::Remote;
use crate::repository::{self, version_order, ModelRepository};
use crate::shared::{Residency, Slot};
use crate::tensor::NamedTensor;

/// Where a variant's (or a shadow's) requests go: a model loaded here, or another server.
#[derive(Clone)]
pub enum Target {
    Local(Arc<Batcher>),
    Remote(Arc<Remote>),
    /// A model of a shared endpoint, loaded on its first request.
    Lazy(Arc<Slot>),
}

impl Target {
    /// The version it serves: the loaded model's, or the remote's as configured.
    pub fn version(&self) -> Option<&str> {
        match self {
            Target::Local(b) => Some(b.model().version.as_str()),
            Target::Remote(r) => r.version.as_deref(),
            Target::Lazy(s) => Some(s.version()),
        }
    }
    /// The model it runs here, when it is loaded here.
    pub fn local(&self) -> Option<Arc<Batcher>> {
        match self {
            Target::Local(b) => Some(b.clone()),
            Target::Remote(_) => None,
            Target::Lazy(s) => s.resident(),
        }
    }
    fn is_local(&self) -> bool {
        !matches!(self, Target::Remote(_))
    }
}

/// One variant of an endpoint.
pub struct Variant {
    pub name: String,
    pub weight: u32,
    pub target: Target,
}

/// An endpoint: variants chosen by weight (or pinned, or sticky), and an optional shadow.
pub struct Endpoint {
    pub name: String,
    pub variants: Vec<Variant>,
    pub shadow: Option<Target>,
    pub sticky_header: Option<String>,
}

impl Endpoint {
    /// The local variant that answers a request its remote variant could not: chosen by
    /// weight among the local variants (by the sticky key when there is one), or the first
    /// local one when they all weigh 0 (a site whose traffic has moved away).
    pub fn fallback(&self, sticky: Option<&str>) -> Option<&Variant> {
        let local: Vec<&Variant> = self
            .variants
            .iter()
            .filter(|v| v.target.is_local())
            .collect();
        let total: u64 = local.iter().map(|v| u64::from(v.weight)).sum();
        if total == 0 {
            return local.first().copied();
        }
        let mut x = match sticky {
            Some(key) => {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                key.hash(&mut h);
                h.finish() % total
            }
            None => rand::rng().random_range(0..total),
        };
        for v in &local {
            if x < u64::from(v.weight) {
                return Some(v);
            }
            x -= u64::from(v.weight);
        }
        local.last().copied()
    }

    /// The model of the first local variant, which describes the endpoint.
    pub fn local_model(&self) -> Option<Arc<Model>> {
        self.variants
            .iter()
            .find_map(|v| v.target.local().map(|b| b.model().clone()))
    }

    fn total(&self) -> u64 {
        self.variants.iter().map(|v| u64::from(v.weight)).sum()
    }

    /// Chooses a variant: the pinned one, else by a stable hash of the sticky key, else at
    /// random by weight.
    pub fn pick(&self, pin: Option<&str>, sticky: Option<&str>) -> Result<&Variant, ServeError> {
        if let Some(p) = pin {
            return self.variants.iter().find(|v| v.name == p).ok_or_else(|| {
                let names: Vec<&str> = self.variants.iter().map(|v| v.name.as_str()).collect();
                ServeError::NotFound(format!(
                    "endpoint {} has no variant {p:?}; its variants are {names:?}",
                    self.name
                ))
            });
        }
        let total = self.total();
        let mut x = match sticky {
            Some(key) => {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                key.hash(&mut h);
                h.finish() % total
            }
            None => rand::rng().random_range(0..total),
        };
        for v in &self.variants {
            if x < u64::from(v.weight) {
                return Ok(v);
            }
            x -= u64::from(v.weight);
        }
        Ok(&self.variants[self.variants.len() - 1])
    }
}

/// What is being served: one immutable snapshot, swapped whole on reload.
#[derive(Default)]
pub struct Serving {
    /// name → version → batcher
    pub models: BTreeMap<String, BTreeMap<String, Arc<Batcher>>>,
    pub endpoints: HashMap<String, Arc<Endpoint>>,
    /// The models of a shared endpoint's attachments, by (name, version): loaded on demand.
    pub slots: HashMap<(String, String), Arc<Slot>>,
    /// The shared endpoint's attachments as read from its registry, by name.
    pub attached: HashMap<String, Arc<crate::config::Attachment>>,
    /// Models and endpoints that could not be loaded, by name, with the reason: they answer
    /// not ready (503) while the others serve.
    pub failed: BTreeMap<String, String>,
    /// The `site` label of local variants' metrics.
    pub site: String,
}

impl Serving {
    /// The newest version of `name`.
    pub fn latest(&self, name: &str) -> Option<&Arc<Batcher>> {
        self.models
            .get(name)?
            .iter()
            .max_by(|a, b| version_order(a.0, b.0))
            .map(|(_, b)| b)
    }
    fn model(&self, name: &str, version: Option<&str>) -> Option<&Arc<Batcher>> {
        match version {
            Some(v) => self.models.get(name)?.get(v),
            None => self.latest(name),
        }
    }
}

/// Where a request goes.
pub struct Route {
    pub target: Target,
    pub variant: String,
    pub shadow: Option<Target>,
}

/// A request in protocol-neutral form.
pub struct InferRequest {
    pub model: String,
    pub version: Option<String>,
    pub id: Option<String>,
    pub pin: Option<String>,
    pub sticky: Option<String>,
    pub inputs: Vec<NamedTensor>,
    /// Requested outputs (all when `None`).
    pub outputs: Option<Vec<String>>,
    pub protocol: &'static str,
}

pub struct InferResponse {
    pub model_name: String,
    pub model_version: String,
    pub id: String,
    pub variant: String,
    pub outputs: Vec<NamedTensor>,
}

/// One registry file as read: its attachment, or why it cannot be used.
type RegistryEntry = Result<Arc<crate::config::Attachment>, String>;

/// The server's state.
pub struct App {
    /// Itself, for background work that outlives a call (a shadow's model loading).
    me: std::sync::Weak<App>,
    serving: RwLock<Arc<Serving>>,
    config: RwLock<Arc<ServeConfig>>,
    config_path: Option<PathBuf>,
    repo: Box<dyn ModelRepository>,
    pool: Arc<Semaphore>,
    pub metrics: Metrics,
    ready: AtomicBool,
    draining: AtomicBool,
    reload_lock: tokio::sync::Mutex<()>,
    /// Reloads asked for, and the last one done with its outcome: callers that ask while
    /// a reload runs share the next one (see [`App::reload`]).
    reloads_asked: std::sync::atomic::AtomicU64,
    reload_done: std::sync::Mutex<(u64, Result<(), String>)>,
    /// The shared endpoint's registry as last read: file → (stamp, attachment or why not).
    registry: tokio::sync::Mutex<HashMap<String, (String, RegistryEntry)>>,
    /// The loaded models of a shared endpoint and the memory they take.
    pub residency: Residency,
    /// Model versions unloaded or detached since the last scrape, whose series go then.
    unlisted: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
    token: Option<String>,
    pub feedback: crate::feedback::Feedback,
    gpus: Option<crate::gpu::Gpus>,
}

async fn load_model(
    repo: &dyn ModelRepository,
    mc: &ModelConfig,
    drift_window: u64,
    plan_cache_size: usize,
) -> Result<Model, String> {
    let version = match &mc.version {
        Some(v) => v.clone(),
        None => repo
            .versions(&mc.name)
            .await
            .map_err(|e| e.to_string())?
            .pop()
            .ok_or_else(|| {
                format!(
                    "model {}: no versions in the repository at {}",
                    mc.name,
                    repo.location()
                )
            })?,
    };
    let meta = repo
        .metadata(&mc.name, &version)
        .await
        .map_err(|e| e.to_string())?;
    let path = repo
        .fetch(&mc.name, &version)
        .await
        .map_err(|e| e.to_string())?;
    let baseline = repo
        .baseline(&mc.name, &version)
        .await
        .map_err(|e| e.to_string())?;
    let (name, v2) = (mc.name.clone(), version.clone());
    // Declared shapes: the server's configuration, else what model.json records.
    let declared = if mc.inputs.is_empty() {
        match meta.extra.get("input_shapes").filter(|v| !v.is_null()) {
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
                format!(
                    "model {} v{version}: model.json: input_shapes: {e}",
                    mc.name
                )
            })?,
            None => Vec::new(),
        }
    } else {
        mc.inputs.clone()
    };
    let options = crate::model::LoadOptions {
        device: mc.device,
        inputs: declared,
        plan_cache_size,
        plan_per_shape: mc.plan_per_shape,
    };
    let mut m = tokio::task::spawn_blocking(move || {
        Model::load_with(&name, &v2, &path, Some(&meta.sha256), &options)
    })
    .await
    .map_err(|e| format!("loading model {}: {e}", mc.name))?
    .map_err(|e| format!("model {} v{version}: {e}", mc.name))?;
    m.drift = baseline.map(|b| crate::drift::DriftMonitor::new(b, drift_window));
    Ok(m)
}

impl App {
    /// Loads every model the configuration names; fails when one cannot be loaded.
    pub async fn start(
        config: ServeConfig,
        config_path: Option<PathBuf>,
    ) -> Result<Arc<App>, String> {
        config.check()?;
        let token = config.auth.token()?;
        config.check_exposure(token.is_some())?;
        let cache = config
            .cache_dir
            .clone()
            .unwrap_or_else(repository::default_cache_dir);
        let repo = repository::open(&config.repository, &cache)
            .await
            .map_err(|e| e.to_string())?;
        let workers = config.limits.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
        let app = Arc::new_cyclic(|me| App {
            me: me.clone(),
            serving: RwLock::new(Arc::new(Serving::default())),
            config: RwLock::new(Arc::new(config.clone())),
            config_path,
            repo,
            pool: Arc::new(Semaphore::new(workers.max(1))),
            metrics: Metrics::new(),
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            reload_lock: tokio::sync::Mutex::new(()),
            reloads_asked: std::sync::atomic::AtomicU64::new(0),
            reload_done: std::sync::Mutex::new((0, Ok(()))),
            registry: tokio::sync::Mutex::new(HashMap::new()),
            residency: Residency::new(config.limits.memory_budget_bytes),
            unlisted: Default::default(),
            token,
            feedback: crate::feedback::Feedback::new(
                config.monitoring.feedback_capacity,
                config.monitoring.feedback_window_seconds,
            ),
            gpus: crate::gpu::Gpus::open(),
        });
        let serving = app.build(&config, None, config.strict).await?;
        // One model's failure is that model's; but a server that could load none of what it
        // was asked to serve has nothing to serve, and says why instead of starting.
        if serving.models.is_empty() && config.shared.is_none() && !serving.failed.is_empty() {
            return Err(serving
                .failed
                .iter()
                .map(|(name, reason)| format!("{name}: {reason}"))
                .collect::<Vec<_>>()
                .join("; "));
        }
        *app.serving.write().expect("lock") = Arc::new(serving);
        app.ready.store(true, Ordering::SeqCst);
        app.metrics
            .shared
            .budget_bytes
            .set(config.limits.memory_budget_bytes.unwrap_or(0) as i64);
        if let Some(sh) = &config.shared {
            tokio::spawn(watch_registry(
                Arc::downgrade(&app),
                Duration::from_millis(sh.poll_ms),
            ));
        }
        Ok(app)
    }

    /// Starts the batcher of a freshly loaded model, with its metrics.
    fn start_batcher(&self, mut m: Model, batching: crate::batch::BatchConfig) -> Arc<Batcher> {
        if m.plans_per_shape() {
            let l = |r: &str| {
                self.metrics
                    .plan_cache
                    .with_label_values(&[&m.name, &m.version, r])
            };
            m.plan_cache_metrics = Some((l("hit"), l("miss")));
        }
        tracing::info!(model = %m.name, version = %m.version, load_ms = m.load_time.as_millis() as u64, "model loaded");
        self.metrics
            .model_load_seconds
            .with_label_values(&[&m.name, &m.version])
            .set(m.load_time.as_secs_f64());
        Arc::new(Batcher::start(
            Arc::new(m),
            batching,
            self.pool.clone(),
            self.metrics.clone(),
        ))
    }

    /// A shared endpoint's model, loaded: at once when it is, else loaded now within the
    /// memory budget (least recently used models unloaded to make room).
    pub async fn ensure_loaded(&self, slot: &Arc<Slot>) -> Result<Arc<Batcher>, ServeError> {
        if let Some(b) = slot.resident() {
            self.residency.touch(slot);
            return Ok(b);
        }
        let cfg = self.config();
        let (name, version) = (slot.name(), slot.version());
        let size = async {
            self.repo
                .metadata(name, version)
                .await
                .map(|m| m.size_bytes)
                .map_err(|e| e.to_string())
        };
        let load = async {
            let m = load_model(
                self.repo.as_ref(),
                &slot.config,
                cfg.monitoring.drift_window_seconds,
                cfg.limits.plan_cache_size,
            )
            .await?;
            let bytes = m.resident_bytes();
            Ok((self.start_batcher(m, slot.config.batching.clone()), bytes))
        };
        let sh = &self.metrics.shared;
        self.residency
            .ensure(slot, size, load, |x, event| match event {
                crate::shared::Event::Loaded { seconds } => {
                    sh.loads.inc();
                    sh.cold_start_seconds.observe(seconds);
                    sh.resident_bytes
                        .with_label_values(&[x.name(), x.version()])
                        .set(x.bytes() as f64);
                }
                crate::shared::Event::Evicted => {
                    tracing::info!(model = %x.name(), version = %x.version(), bytes = x.bytes(), "model unloaded to make room");
                    sh.evictions.inc();
                    self.unlisted
                        .lock()
                        .expect("lock")
                        .insert((x.name().to_string(), x.version().to_string()));
                }
            })
            .await
    }

    /// Reads the shared endpoint's registry: every attachment, reading again only the files
    /// that changed since the last read. Files that cannot be used come back with why.
    async fn read_registry(
        &self,
        shared: &crate::config::SharedConfig,
    ) -> Result<Vec<(String, RegistryEntry)>, String> {
        use futures::StreamExt;
        let listed = self
            .repo
            .list_registry(&shared.registry)
            .await
            .map_err(|e| format!("shared endpoint registry {}: {e}", shared.registry))?;
        let mut cache = self.registry.lock().await;
        let mut next = HashMap::with_capacity(listed.len());
        let mut changed = Vec::new();
        for (file, stamp) in listed {
            match cache.remove(&file) {
                Some((st, a)) if st == stamp => {
                    next.insert(file, (st, a));
                }
                _ => changed.push((file, stamp)),
            }
        }
        let repo = self.repo.as_ref();
        let folder = shared.registry.as_str();
        // Each file is parsed as it arrives, so that only the attachments stay in memory.
        let read: Vec<_> = futures::stream::iter(changed)
            .map(|(file, stamp)| async move {
                let bytes = match repo.read_registry(folder, &file).await {
                    Ok(Some(b)) => b,
                    Ok(None) => return Ok(None),
                    Err(e) => return Err(format!("shared endpoint registry {folder}: {e}")),
                };
                let name = file.trim_end_matches(".json");
                let parsed = serde_json::from_slice::<crate::config::Attachment>(&bytes)
                    .map_err(|e| format!("attachment {folder}/{file}: {e}"))
                    .and_then(|a| {
                        a.check()?;
                        if a.endpoint.name != name {
                            return Err(format!(
                                "attachment {folder}/{file} names endpoint {:?}; the file must be named after it",
                                a.endpoint.name
                            ));
                        }
                        Ok(Arc::new(a))
                    });
                Ok(Some((file, stamp, parsed)))
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for r in read {
            if let Some((file, stamp, parsed)) = r? {
                next.insert(file, (stamp, parsed));
            }
        }
        *cache = next;
        let mut out: Vec<_> = cache
            .iter()
            .map(|(f, (_, a))| (f.trim_end_matches(".json").to_string(), a.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Whether the registry lists other files or stamps than at its last read.
    async fn registry_changed(&self, shared: &crate::config::SharedConfig) -> bool {
        let Ok(listed) = self.repo.list_registry(&shared.registry).await else {
            return false;
        };
        let cache = self.registry.lock().await;
        listed.len() != cache.len()
            || listed
                .iter()
                .any(|(f, st)| cache.get(f).is_none_or(|(s, _)| s != st))
    }

    /// Builds a snapshot, reusing models already loaded in `previous`. With `strict`, the
    /// first model or endpoint that cannot be loaded fails the whole; without, it is recorded
    /// in `failed` and the others are served.
    async fn build(
        &self,
        config: &ServeConfig,
        previous: Option<&Serving>,
        strict: bool,
    ) -> Result<Serving, String> {
        let mut s = Serving {
            site: config.site.clone().unwrap_or_else(|| "local".into()),
            ..Serving::default()
        };
        let default_timeout = Duration::from_millis(config.limits.request_timeout_ms);
        for mc in config.wanted_models() {
            let reuse = match previous
                .and_then(|p| p.model(&mc.name, mc.version.as_deref()))
                .cloned()
            {
                // A version whose bytes were replaced in the repository is loaded again.
                Some(b) => match &mc.version {
                    Some(v) => match self.repo.metadata(&mc.name, v).await {
                        Ok(meta)
                            if meta
                                .sha256
                                .eq_ignore_ascii_case(&b.model().signature.sha256) =>
                        {
                            Some(b)
                        }
                        _ => None,
                    },
                    None => Some(b),
                },
                None => None,
            };
            let batcher = match reuse {
                Some(b) => b,
                None => {
                    let loaded = load_model(
                        self.repo.as_ref(),
                        &mc,
                        config.monitoring.drift_window_seconds,
                        config.limits.plan_cache_size,
                    )
                    .await;
                    let m = match loaded {
                        Ok(m) => m,
                        Err(reason) => {
                            let version = mc.version.as_deref().unwrap_or("");
                            self.metrics
                                .model_load_failures
                                .with_label_values(&[&mc.name, version])
                                .inc();
                            // On reload, a model that had already failed may fail again without
                            // failing the reload of the others.
                            let failed_before =
                                previous.is_some_and(|p| p.failed.contains_key(&mc.name));
                            if strict && !failed_before {
                                return Err(reason);
                            }
                            tracing::error!(model = %mc.name, version, reason = %reason, "model failed to load; serving the others");
                            s.failed.insert(mc.name.clone(), reason);
                            continue;
                        }
                    };
                    self.start_batcher(m, mc.batching.clone())
                }
            };
            let version = batcher.model().version.clone();
            s.models
                .entry(mc.name.clone())
                .or_default()
                .insert(version, batcher);
        }
        for ec in &config.endpoints {
            let find = |model: &str, version: &Option<String>| {
                s.model(model, version.as_deref()).cloned().ok_or_else(|| {
                    match s.failed.get(model) {
                        Some(reason) => format!(
                            "endpoint {}: model {model} failed to load: {reason}",
                            ec.name
                        ),
                        None => format!("endpoint {}: model {model} is not loaded", ec.name),
                    }
                })
            };
            let target = |model: &str, version: &Option<String>, remote: &Option<_>| {
                let local = match remote {
                    Some(_) => None,
                    None => Some(find(model, version)),
                };
                let remote: Option<Box<crate::config::RemoteConfig>> = remote.clone();
                let (model, version) = (model.to_string(), version.clone());
                async move {
                    match (local, remote) {
                        (Some(b), _) => Ok(Target::Local(b?)),
                        (None, Some(rc)) => {
                            Remote::connect(&model, version.as_deref(), &rc, default_timeout)
                                .await
                                .map(|r| Target::Remote(Arc::new(r)))
                        }
                        (None, None) => Err(format!("model {model} is not loaded")),
                    }
                }
            };
            let built = async {
                let mut variants = Vec::new();
                for v in &ec.variants {
                    variants.push(Variant {
                        name: v.name.clone(),
                        weight: v.weight,
                        target: target(&v.model, &v.version, &v.remote).await.map_err(|e| {
                            format!("endpoint {}: variant {}: {e}", ec.name, v.name)
                        })?,
                    });
                }
                let shadow = match &ec.shadow {
                    Some(sh) => Some(
                        target(&sh.model, &sh.version, &sh.remote)
                            .await
                            .map_err(|e| format!("endpoint {}: shadow: {e}", ec.name))?,
                    ),
                    None => None,
                };
                Ok::<_, String>((variants, shadow))
            }
            .await;
            let (variants, shadow) = match built {
                Ok(b) => b,
                Err(reason) if strict => return Err(reason),
                Err(reason) => {
                    tracing::error!(endpoint = %ec.name, reason = %reason, "endpoint not served");
                    s.failed.insert(ec.name.clone(), reason);
                    continue;
                }
            };
            s.endpoints.insert(
                ec.name.clone(),
                Arc::new(Endpoint {
                    name: ec.name.clone(),
                    variants,
                    shadow,
                    sticky_header: ec.sticky_header.clone(),
                }),
            );
        }
        if let Some(sh) = &config.shared {
            self.attach(&mut s, sh, previous).await?;
        }
        Ok(s)
    }

    /// Adds a shared endpoint's attachments to a snapshot. An unchanged attachment keeps its
    /// endpoint and models as they are (loaded or not); one that cannot be served is recorded
    /// in `failed` under its name, and the others are served.
    async fn attach(
        &self,
        s: &mut Serving,
        shared: &crate::config::SharedConfig,
        previous: Option<&Serving>,
    ) -> Result<(), String> {
        let registry = self.read_registry(shared).await?;
        // Sized once: no growth (and no freed old tables) with thousands of models.
        s.endpoints.reserve(registry.len());
        s.slots.reserve(registry.len());
        s.attached.reserve(registry.len());
        for (name, a) in registry {
            let a = match a {
                Ok(a) => a,
                Err(reason) => {
                    s.failed.insert(name, reason);
                    continue;
                }
            };
            if s.endpoints.contains_key(&name) || s.models.contains_key(&name) {
                s.failed.insert(
                    name.clone(),
                    format!("attachment {name}: the server already serves a model or endpoint of that name"),
                );
                continue;
            }
            let same = previous.and_then(|p| {
                p.attached
                    .get(&name)
                    .filter(|pa| ***pa == *a)
                    .and(p.endpoints.get(&name))
            });
            if let Some(ep) = same {
                for t in ep.variants.iter().map(|v| &v.target).chain(&ep.shadow) {
                    if let Target::Lazy(slot) = t {
                        s.slots
                            .entry((slot.name().to_string(), slot.version().to_string()))
                            .or_insert_with(|| slot.clone());
                    }
                }
                s.endpoints.insert(name.clone(), ep.clone());
                s.attached.insert(name, a);
                continue;
            }
            let wanted = a.wanted_models();
            let mut slot_of = |model: &str, version: &Option<String>| -> Arc<Slot> {
                let key = (model.to_string(), version.clone().unwrap_or_default());
                if let Some(x) = s.slots.get(&key) {
                    return x.clone();
                }
                let mc = wanted
                    .iter()
                    .find(|m| m.name == model && &m.version == version)
                    .cloned()
                    .unwrap_or_else(|| ModelConfig::named(model, version.clone()));
                let slot = previous
                    .and_then(|p| p.slots.get(&key))
                    .filter(|x| x.config == mc && x.pinned == a.pinned)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Slot::new(mc, a.pinned)));
                s.slots.insert(key, slot.clone());
                slot
            };
            // Attachments serve models of the repository only (remote variants are refused
            // when the file is read).
            let mut built: Vec<Target> = a
                .endpoint
                .variants
                .iter()
                .map(|v| (&v.model, &v.version))
                .chain(a.endpoint.shadow.iter().map(|x| (&x.model, &x.version)))
                .map(|(model, version)| Target::Lazy(slot_of(model, version)))
                .collect();
            let mut failure = None;
            if failure.is_none() && a.pinned {
                for t in &built {
                    if let Target::Lazy(slot) = t {
                        if let Err(e) = self.ensure_loaded(slot).await {
                            failure = Some(e.to_string());
                            break;
                        }
                    }
                }
            }
            if let Some(reason) = failure {
                tracing::error!(endpoint = %name, reason = %reason, "attachment not served");
                s.failed
                    .insert(name, format!("attachment {}: {reason}", a.endpoint.name));
                continue;
            }
            let shadow = a.endpoint.shadow.as_ref().and_then(|_| built.pop());
            let variants = a
                .endpoint
                .variants
                .iter()
                .zip(built)
                .map(|(v, target)| Variant {
                    name: v.name.clone(),
                    weight: v.weight,
                    target,
                })
                .collect();
            s.endpoints.insert(
                name.clone(),
                Arc::new(Endpoint {
                    name: name.clone(),
                    variants,
                    shadow,
                    sticky_header: a.endpoint.sticky_header.clone(),
                }),
            );
            s.attached.insert(name, a);
        }
        Ok(())
    }

    /// Re-reads the configuration file (when there is one) and the shared endpoint's
    /// registry, and swaps in the new snapshot: new models load and warm up first; in-flight
    /// requests finish on the old snapshot.
    ///
    /// Callers that ask while a reload runs share the next one: each is answered by a reload
    /// that began after it asked, so a change written before the call is live when it
    /// returns, and N callers at once cost two reloads, not N.
    pub async fn reload(&self, new_config: Option<ServeConfig>) -> Result<(), String> {
        if new_config.is_some() {
            let _guard = self.reload_lock.lock().await;
            return self.reload_now(new_config).await;
        }
        let ticket = self.reloads_asked.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = self.reload_lock.lock().await;
        {
            let done = self.reload_done.lock().expect("lock");
            if done.0 >= ticket {
                return done.1.clone();
            }
        }
        let upto = self.reloads_asked.load(Ordering::SeqCst);
        let r = self.reload_now(None).await;
        *self.reload_done.lock().expect("lock") = (upto, r.clone());
        r
    }

    /// One reload; the caller holds `reload_lock`.
    async fn reload_now(&self, new_config: Option<ServeConfig>) -> Result<(), String> {
        let config = match (new_config, &self.config_path) {
            (Some(c), _) => c,
            (None, Some(p)) => ServeConfig::from_file(p)?,
            (None, None) => (*self.config()).clone(),
        };
        config.check()?;
        let previous = self.snapshot();
        // A reload is all or nothing for the configuration's own models: the previous
        // configuration keeps serving when any of them fails. Attachments fail on their own.
        let next = self.build(&config, Some(&previous), true).await?;
        let gone = self
            .residency
            .retain(|k, x| next.slots.get(k).is_some_and(|n| Arc::ptr_eq(n, x)));
        self.unlisted.lock().expect("lock").extend(
            gone.iter()
                .map(|x| (x.name().to_string(), x.version().to_string())),
        );
        *self.serving.write().expect("lock") = Arc::new(next);
        *self.config.write().expect("lock") = Arc::new(config);
        self.metrics.shared.reloads.inc();
        tracing::info!("configuration reloaded");
        Ok(())
    }

    pub fn snapshot(&self) -> Arc<Serving> {
        self.serving.read().expect("lock").clone()
    }
    pub fn config(&self) -> Arc<ServeConfig> {
        self.config.read().expect("lock").clone()
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.draining.load(Ordering::SeqCst)
    }
    /// Stops reporting ready (for a graceful shutdown).
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.config().limits.request_timeout_ms)
    }
    pub fn max_body(&self) -> usize {
        self.config().limits.max_body_bytes
    }

    /// Checks a bearer token when authentication is configured.
    pub fn authorize(&self, header: Option<&str>) -> Result<(), ServeError> {
        let Some(want) = &self.token else {
            return Ok(());
        };
        let got = header.and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        });
        match got {
            Some(t) if constant_time_eq(t.trim().as_bytes(), want.as_bytes()) => Ok(()),
            Some(_) => Err(ServeError::Unauthorized("invalid bearer token".into())),
            None => Err(ServeError::Unauthorized(
                "this server needs `Authorization: Bearer <token>`".into(),
            )),
        }
    }
    /// Admin calls need the token; without one configured they are off.
    pub fn authorize_admin(&self, header: Option<&str>) -> Result<(), ServeError> {
        if self.token.is_none() {
            return Err(ServeError::Unauthorized(
                "the admin API is off: configure auth (token_env or token_file) to use it".into(),
            ));
        }
        self.authorize(header)
    }

    /// Resolves a model or endpoint name to the batcher that serves it.
    pub fn route(
        &self,
        s: &Serving,
        model: &str,
        version: Option<&str>,
        pin: Option<&str>,
        sticky: Option<&str>,
    ) -> Result<Route, ServeError> {
        if let Some(reason) = s.failed.get(model) {
            return Err(ServeError::Unavailable(format!(
                "{model} is not ready: {reason}"
            )));
        }
        if let Some(ep) = s.endpoints.get(model) {
            let v = match version {
                Some(ver) => ep
                    .variants
                    .iter()
                    .find(|v| v.target.version() == Some(ver))
                    .ok_or_else(|| {
                        ServeError::NotFound(format!("endpoint {model} serves no version {ver:?}"))
                    })?,
                None => ep.pick(pin, sticky)?,
            };
            return Ok(Route {
                target: v.target.clone(),
                variant: v.name.clone(),
                shadow: ep.shadow.clone(),
            });
        }
        match s.models.get(model) {
            None => Err(ServeError::NotFound(format!("unknown model {model:?}"))),
            Some(vs) => {
                let b = match version {
                    Some(v) => vs.get(v).ok_or_else(|| {
                        let have: Vec<&String> = vs.keys().collect();
                        ServeError::NotFound(format!(
                            "model {model} has no version {v:?}; loaded versions are {have:?}"
                        ))
                    })?,
                    None => s.latest(model).expect("non-empty"),
                };
                Ok(Route {
                    target: Target::Local(b.clone()),
                    variant: "default".into(),
                    shadow: None,
                })
            }
        }
    }

    /// Runs one inference request: routing, validation, batching, shadowing, metrics.
    pub async fn infer(&self, req: InferRequest) -> Result<InferResponse, ServeError> {
        if !self.is_ready() {
            return Err(ServeError::Unavailable("the server is not ready".into()));
        }
        let started = Instant::now();
        self.metrics.inflight.inc();
        let snapshot = self.snapshot();
        let route = self.route(
            &snapshot,
            &req.model,
            req.version.as_deref(),
            req.pin.as_deref(),
            req.sticky.as_deref(),
        );
        let result = match route {
            Err(e) => Err(e),
            Ok(route) => match &route.target {
                Target::Local(b) => {
                    self.run_routed(b, &route, &snapshot.site, req, started)
                        .await
                }
                Target::Remote(r) => self.run_remote(&snapshot, r, &route, req, started).await,
                Target::Lazy(slot) => match self.ensure_loaded(slot).await {
                    Ok(b) => {
                        self.run_routed(&b, &route, &snapshot.site, req, started)
                            .await
                    }
                    Err(e) => {
                        self.metrics
                            .requests
                            .with_label_values(&[
                                slot.name(),
                                slot.version(),
                                &route.variant,
                                req.protocol,
                                e.kind(),
                                &snapshot.site,
                            ])
                            .inc();
                        Err(e)
                    }
                },
            },
        };
        self.metrics.inflight.dec();
        result
    }

    /// Sends a request to a remote variant; when it fails and the remote may fall back, to
    /// a local variant instead.
    async fn run_remote(
        &self,
        s: &Serving,
        remote: &Arc<Remote>,
        route: &Route,
        req: InferRequest,
        started: Instant,
    ) -> Result<InferResponse, ServeError> {
        if let Some(shadow) = &route.shadow {
            self.shadow(shadow.clone(), req.inputs.clone(), req.protocol, &s.site);
        }
        let r = remote
            .infer(
                &route.variant,
                req.id.as_deref(),
                &req.inputs,
                req.outputs.as_deref(),
            )
            .await;
        let version = match &r {
            Ok(a) => a.model_version.clone(),
            Err(_) => remote.version.clone().unwrap_or_default(),
        };
        let status = r.as_ref().err().map_or("ok", |e| e.kind());
        self.metrics
            .requests
            .with_label_values(&[
                &remote.model,
                &version,
                &route.variant,
                req.protocol,
                status,
                &remote.site,
            ])
            .inc();
        self.metrics
            .request_seconds
            .with_label_values(&[
                &remote.model,
                &version,
                &route.variant,
                req.protocol,
                &remote.site,
            ])
            .observe(started.elapsed().as_secs_f64());
        match r {
            Ok(a) => Ok(InferResponse {
                model_name: req.model,
                model_version: a.model_version,
                id: req.id.unwrap_or_else(new_request_id),
                variant: route.variant.clone(),
                outputs: a.outputs,
            }),
            Err(e) if remote.fallback && Remote::is_remote_fault(&e) => {
                let local = s
                    .endpoints
                    .get(&req.model)
                    .and_then(|ep| ep.fallback(req.sticky.as_deref()));
                let Some(v) = local else {
                    return Err(e);
                };
                let b = match &v.target {
                    Target::Local(b) => b.clone(),
                    Target::Lazy(slot) => self.ensure_loaded(slot).await?,
                    Target::Remote(_) => return Err(e),
                };
                tracing::warn!(variant = %route.variant, fallback = %v.name, error = %e, "remote variant failed; answered locally");
                self.metrics
                    .remote_fallbacks
                    .with_label_values(&[&route.variant, &remote.site])
                    .inc();
                let local_route = Route {
                    target: v.target.clone(),
                    variant: v.name.clone(),
                    shadow: None,
                };
                self.run_routed(&b, &local_route, &s.site, req, Instant::now())
                    .await
            }
            Err(e) => Err(e),
        }
    }

    /// Mirrors a request to the shadow, in the background; its answer is only measured.
    fn shadow(&self, shadow: Target, inputs: Vec<NamedTensor>, protocol: &'static str, site: &str) {
        let (metrics, timeout, site) = (self.metrics.clone(), self.timeout(), site.to_string());
        let me = self.me.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            // A shadow on a shared endpoint loads like any of its models.
            let shadow = match shadow {
                Target::Lazy(slot) => {
                    let loaded = match me.upgrade() {
                        Some(app) => app.ensure_loaded(&slot).await,
                        None => return,
                    };
                    match loaded {
                        Ok(b) => Target::Local(b),
                        Err(e) => {
                            metrics
                                .requests
                                .with_label_values(&[
                                    slot.name(),
                                    slot.version(),
                                    "shadow",
                                    protocol,
                                    e.kind(),
                                    &site,
                                ])
                                .inc();
                            return;
                        }
                    }
                }
                t => t,
            };
            let (name, version, site, r) = match &shadow {
                Target::Lazy(_) => return,
                Target::Local(b) => {
                    let sm = b.model().clone();
                    let r = match sm.prepare(inputs) {
                        Ok(i) => b.infer(i, timeout).await.map(|_| ()),
                        Err(e) => Err(e),
                    };
                    (sm.name.clone(), sm.version.clone(), site, r)
                }
                Target::Remote(rm) => {
                    let r = rm.infer("shadow", None, &inputs, None).await;
                    let version = match &r {
                        Ok(a) => a.model_version.clone(),
                        Err(_) => rm.version.clone().unwrap_or_default(),
                    };
                    (rm.model.clone(), version, rm.site.clone(), r.map(|_| ()))
                }
            };
            let status = r.err().map_or("ok", |e| e.kind());
            metrics
                .requests
                .with_label_values(&[&name, &version, "shadow", protocol, status, &site])
                .inc();
            metrics
                .request_seconds
                .with_label_values(&[&name, &version, "shadow", protocol, &site])
                .observe(t.elapsed().as_secs_f64());
        });
    }

    async fn run_routed(
        &self,
        batcher: &Arc<Batcher>,
        route: &Route,
        site: &str,
        req: InferRequest,
        started: Instant,
    ) -> Result<InferResponse, ServeError> {
        let model = batcher.model().clone();
        let protocol = req.protocol;
        let count = |status: &str| {
            self.metrics
                .requests
                .with_label_values(&[
                    model.name.as_str(),
                    model.version.as_str(),
                    route.variant.as_str(),
                    protocol,
                    status,
                    site,
                ])
                .inc();
        };
        if let Some(wanted) = &req.outputs {
            for w in wanted {
                if !model.signature.outputs.iter().any(|o| &o.name == w) {
                    let have: Vec<&str> = model
                        .signature
                        .outputs
                        .iter()
                        .map(|o| o.name.as_str())
                        .collect();
                    let e = ServeError::BadRequest(format!(
                        "model {} has no output {w:?}; its outputs are {have:?}",
                        model.name
                    ));
                    count(e.kind());
                    return Err(e);
                }
            }
        }
        let shadow_inputs = route.shadow.as_ref().map(|_| req.inputs.clone());
        let prepared = model.prepare(req.inputs);
        let mut observed_input = None;
        let result = match prepared {
            Ok(inputs) => {
                if model.drift.is_some() {
                    observed_input = inputs.first().cloned();
                }
                batcher.infer(inputs, self.timeout()).await
            }
            Err(e) => Err(e),
        };
        let status = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        model.stats.finished(result.is_ok(), started.elapsed());
        count(status);
        self.metrics
            .request_seconds
            .with_label_values(&[
                &model.name,
                &model.version,
                &route.variant,
                req.protocol,
                site,
            ])
            .observe(started.elapsed().as_secs_f64());
        if let (Some(shadow), Some(inputs)) = (route.shadow.clone(), shadow_inputs) {
            self.shadow(shadow, inputs, req.protocol, site);
        }
        let outputs = result?;
        let id = req.id.unwrap_or_else(new_request_id);
        let predictions = model.predictions(&outputs);
        if let Some(x) = &observed_input {
            model.observe(x, predictions.as_deref());
        }
        if let Some(p) = predictions {
            self.feedback.remember(
                &id,
                &model.name,
                &model.version,
                &route.variant,
                p,
                model.is_classifier(),
            );
        }
        let outputs = model
            .signature
            .outputs
            .iter()
            .zip(outputs)
            .filter(|(spec, _)| req.outputs.as_ref().is_none_or(|w| w.contains(&spec.name)))
            .map(|(spec, t)| NamedTensor {
                name: spec.name.clone(),
                tensor: t,
            })
            .collect();
        Ok(InferResponse {
            model_name: req.model,
            model_version: model.version.clone(),
            id,
            variant: route.variant.clone(),
            outputs,
        })
    }
}

impl App {
    /// Brings drift, feedback and GPU gauges up to date (called before each scrape).
    pub fn refresh_gauges(&self) {
        if let (Some(gg), Some(gpus)) = (&self.metrics.gpu, &self.gpus) {
            for d in gpus.list() {
                let l = [d.index.to_string(), d.uuid.clone(), d.name.clone()];
                let l: [&str; 3] = [&l[0], &l[1], &l[2]];
                gg.utilization.with_label_values(&l).set(d.utilization);
                gg.memory_used
                    .with_label_values(&l)
                    .set(d.memory_used_bytes as f64);
                gg.memory_total
                    .with_label_values(&l)
                    .set(d.memory_total_bytes as f64);
            }
        }
        let s = self.snapshot();
        for ep in s.endpoints.values() {
            for v in &ep.variants {
                if let Target::Remote(r) = &v.target {
                    self.metrics
                        .remote_circuit
                        .with_label_values(&[&ep.name, &v.name, &r.site])
                        .set(r.breaker.state() as i32 as f64);
                }
            }
        }
        // Series of models unloaded or detached since the last scrape go, unless loaded again.
        let unlisted = std::mem::take(&mut *self.unlisted.lock().expect("lock"));
        if !unlisted.is_empty() {
            let loaded = |m: &str, v: &str| {
                s.models.get(m).is_some_and(|vs| vs.contains_key(v))
                    || s.slots
                        .get(&(m.to_string(), v.to_string()))
                        .is_some_and(|x| x.resident().is_some())
            };
            self.metrics.forget(&|m, v| {
                unlisted.contains(&(m.to_string(), v.to_string())) && !loaded(m, v)
            });
        }
        let (used, resident) = self.residency.used();
        let sh = &self.metrics.shared;
        sh.used_bytes.set(used as i64);
        sh.resident.set(resident as i64);
        sh.registered.set(s.slots.len() as i64);
        let lazy: Vec<Arc<Batcher>> = self
            .residency
            .resident_slots()
            .iter()
            .filter_map(|x| x.resident())
            .collect();
        for versions in s
            .models
            .values()
            .map(|v| v.values().collect::<Vec<_>>())
            .chain([lazy.iter().collect()])
        {
            for b in versions {
                let m = b.model();
                let Some(d) = &m.drift else { continue };
                let st = d.stats();
                let mv = [m.name.as_str(), m.version.as_str()];
                self.metrics
                    .drift_samples
                    .with_label_values(&mv)
                    .set(st.samples as f64);
                for (f, psi, ks) in &st.features {
                    self.metrics
                        .drift_psi
                        .with_label_values(&[&m.name, &m.version, f])
                        .set(*psi);
                    self.metrics
                        .drift_ks
                        .with_label_values(&[&m.name, &m.version, f])
                        .set(*ks);
                }
                if let Some((psi, ks)) = st.prediction {
                    self.metrics.prediction_psi.with_label_values(&mv).set(psi);
                    self.metrics.prediction_ks.with_label_values(&mv).set(ks);
                }
            }
        }
        for ((model, version, variant), q) in self.feedback.quality() {
            let l = [model.as_str(), version.as_str(), variant.as_str()];
            self.metrics
                .feedback_samples
                .with_label_values(&l)
                .set(q.n as f64);
            if let Some(a) = q.accuracy {
                self.metrics.feedback_accuracy.with_label_values(&l).set(a);
            }
            if let Some(e) = q.mae {
                self.metrics.feedback_mae.with_label_values(&l).set(e);
            }
        }
    }

    /// Matches ground-truth feedback to earlier predictions.
    pub fn submit_feedback(&self, items: &[crate::feedback::Item]) -> crate::feedback::Outcome {
        let o = self.feedback.submit(items);
        self.metrics
            .feedback_total
            .with_label_values(&["matched"])
            .inc_by(o.matched as u64);
        self.metrics
            .feedback_total
            .with_label_values(&["unknown_id"])
            .inc_by(o.unknown_ids.len() as u64);
        self.metrics
            .feedback_total
            .with_label_values(&["invalid"])
            .inc_by(o.invalid.len() as u64);
        o
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One entry of the repository index (Triton's repository extension).
pub struct IndexEntry {
    pub name: String,
    pub version: String,
    pub state: &'static str,
    pub reason: String,
}

impl App {
    /// Loaded models to report statistics for: all, one model's versions, or one version.
    pub fn stats_of(
        &self,
        name: Option<&str>,
        version: Option<&str>,
    ) -> Result<Vec<Arc<Model>>, ServeError> {
        let s = self.snapshot();
        let mut out = Vec::new();
        for (n, versions) in &s.models {
            if name.is_some_and(|w| w != n) {
                continue;
            }
            for (v, b) in versions {
                if version.is_some_and(|w| w != v) {
                    continue;
                }
                out.push(b.model().clone());
            }
        }
        if out.is_empty() {
            if let Some(n) = name {
                // An endpoint reports the models it routes to.
                if let Some(ep) = s.endpoints.get(n) {
                    return Ok(ep
                        .variants
                        .iter()
                        .filter_map(|v| v.target.local().map(|b| b.model().clone()))
                        .collect());
                }
                return Err(match version {
                    Some(v) => {
                        ServeError::NotFound(format!("model {n} has no loaded version {v:?}"))
                    }
                    None => ServeError::NotFound(format!("unknown model {n:?}")),
                });
            }
        }
        Ok(out)
    }

    /// The model that describes a model or endpoint (its metadata, its configuration): the
    /// one the route leads to, loading it when it is a shared endpoint's; for a remote
    /// route, the endpoint's first model here. `None` when it has none here.
    pub async fn describing_model(
        &self,
        s: &Serving,
        name: &str,
        target: &Target,
    ) -> Result<Option<Arc<Model>>, ServeError> {
        match target {
            Target::Local(b) => Ok(Some(b.model().clone())),
            Target::Lazy(slot) => Ok(Some(self.ensure_loaded(slot).await?.model().clone())),
            Target::Remote(_) => {
                let Some(ep) = s.endpoints.get(name) else {
                    return Ok(None);
                };
                if let Some(m) = ep.local_model() {
                    return Ok(Some(m));
                }
                match ep.variants.iter().find_map(|v| match &v.target {
                    Target::Lazy(slot) => Some(slot.clone()),
                    _ => None,
                }) {
                    Some(slot) => Ok(Some(self.ensure_loaded(&slot).await?.model().clone())),
                    None => Ok(None),
                }
            }
        }
    }

    /// Triton's model configuration of a model or endpoint: inputs and outputs with their
    /// dimensions (without the batch dimension when the model batches), the largest batch
    /// and the dynamic batching settings.
    pub async fn model_config(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<ModelConfigView, ServeError> {
        let s = self.snapshot();
        let route = self.route(&s, name, version, None, None)?;
        let m = self
            .describing_model(&s, name, &route.target)
            .await?
            .ok_or_else(|| {
                ServeError::NotFound(format!(
                    "endpoint {name} routes only to remote variants; ask the remote server for its configuration"
                ))
            })?;
        let cfg = self.config();
        let batching = match s.slots.get(&(m.name.clone(), m.version.clone())) {
            Some(slot) => slot.config.batching.clone(),
            None => cfg
                .models
                .iter()
                .find(|c| c.name == m.name && c.version.as_ref().is_none_or(|v| *v == m.version))
                .map(|c| c.batching.clone())
                .unwrap_or_default(),
        };
        let max_batch = if m.batchable {
            batching.max_batch_size
        } else {
            0
        };
        Ok(ModelConfigView {
            name: name.to_string(),
            model: m,
            max_batch_size: max_batch,
            max_queue_delay_us: batching.max_delay_ms * 1000,
        })
    }

    /// Every model the server was asked to serve, with its state; with `ready_only`, only
    /// those that serve.
    pub fn repository_index(&self, ready_only: bool) -> Vec<IndexEntry> {
        let s = self.snapshot();
        let mut out = Vec::new();
        for (n, versions) in &s.models {
            for v in versions.keys() {
                out.push(IndexEntry {
                    name: n.clone(),
                    version: v.clone(),
                    state: "READY",
                    reason: String::new(),
                });
            }
        }
        let mut slots: Vec<&Arc<Slot>> = s.slots.values().collect();
        slots.sort_by(|a, b| (a.name(), a.version()).cmp(&(b.name(), b.version())));
        for x in slots {
            let loaded = x.resident().is_some();
            if ready_only && !loaded {
                continue;
            }
            out.push(IndexEntry {
                name: x.name().to_string(),
                version: x.version().to_string(),
                state: if loaded { "READY" } else { "UNLOADED" },
                reason: if loaded {
                    String::new()
                } else {
                    "attached to this shared endpoint; loads on its first request".into()
                },
            });
        }
        if !ready_only {
            for (n, reason) in &s.failed {
                out.push(IndexEntry {
                    name: n.clone(),
                    version: String::new(),
                    state: "UNAVAILABLE",
                    reason: reason.clone(),
                });
            }
        }
        out
    }

    /// Loads (or reloads) `name`'s newest version, like Triton's explicit model control: a
    /// reload with the model added; on failure the previous configuration keeps serving.
    pub async fn load_named(&self, name: &str) -> Result<(), ServeError> {
        let mut cfg = (*self.config()).clone();
        if !cfg.models.iter().any(|m| m.name == name) {
            cfg.models.push(ModelConfig::named(name, None));
        }
        self.reload(Some(cfg))
            .await
            .map_err(|e| ServeError::BadRequest(format!("loading model {name}: {e}")))
    }

    /// Unloads `name` (every version); refused while an endpoint routes to it.
    pub async fn unload_named(&self, name: &str) -> Result<(), ServeError> {
        let mut cfg = (*self.config()).clone();
        if let Some(ep) = cfg.endpoints.iter().find(|e| {
            e.variants.iter().any(|v| v.model == name)
                || e.shadow.as_ref().is_some_and(|s| s.model == name)
        }) {
            return Err(ServeError::BadRequest(format!(
                "model {name} is served by endpoint {}; change the endpoint first",
                ep.name
            )));
        }
        let before = cfg.models.len();
        cfg.models.retain(|m| m.name != name);
        if before == cfg.models.len() && !self.snapshot().failed.contains_key(name) {
            return Err(ServeError::NotFound(format!("model {name} is not loaded")));
        }
        self.reload(Some(cfg))
            .await
            .map_err(|e| ServeError::BadRequest(format!("unloading model {name}: {e}")))
    }
}

/// What `GET /v2/models/{m}/config` and gRPC `ModelConfig` describe.
pub struct ModelConfigView {
    pub name: String,
    pub model: Arc<Model>,
    pub max_batch_size: usize,
    pub max_queue_delay_us: u64,
}

impl ModelConfigView {
    /// Dimensions as Triton writes them: without the batch dimension when the model batches.
    pub fn dims(&self, shape: &[i64]) -> Vec<i64> {
        if self.max_batch_size > 0 {
            shape.iter().skip(1).copied().collect()
        } else {
            shape.to_vec()
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let t = |specs: &[crate::signature::TensorSpec]| {
            specs
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "name": s.name,
                        "data_type": triton_type(&s.datatype),
                        "dims": self.dims(&s.shape),
                    })
                })
                .collect::<Vec<_>>()
        };
        let mut v = serde_json::json!({
            "name": self.name,
            "platform": "onnx_onnxv1",
            "backend": "tract",
            "versions": [self.model.version],
            "max_batch_size": self.max_batch_size,
            "input": t(&self.model.signature.inputs),
            "output": t(&self.model.signature.outputs),
        });
        if self.max_batch_size > 0 {
            v["dynamic_batching"] = serde_json::json!({
                "max_queue_delay_microseconds": self.max_queue_delay_us,
            });
        }
        v
    }
}

/// Triton's `DataType` name for an OIP datatype (`FP32` → `TYPE_FP32`, `BYTES` →
/// `TYPE_STRING`).
pub fn triton_type(oip: &str) -> String {
    match oip {
        "BYTES" => "TYPE_STRING".into(),
        other => format!("TYPE_{other}"),
    }
}

/// Reads the shared endpoint's registry every `every` and reloads when it changed, until
/// the server stops.
async fn watch_registry(app: std::sync::Weak<App>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(app) = app.upgrade() else { return };
        let cfg = app.config();
        let Some(sh) = &cfg.shared else { return };
        if app.registry_changed(sh).await {
            if let Err(e) = app.reload(None).await {
                tracing::error!(error = %e, "reading the shared endpoint's registry failed; still serving what was read before");
            }
        }
    }
}

/// A request ID for a request that brings none: a version-4 UUID made of a random number
/// drawn once per process and a counter, so that no request pays for a system call to the
/// random source (ids stay unique within the process, and across processes by the prefix).
pub fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&prefix.to_be_bytes());
    b[8..].copy_from_slice(&n.to_be_bytes());
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_distinct_version_4_uuids() {
        let ids: std::collections::BTreeSet<String> =
            (0..1000).map(|_| super::new_request_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in ids.iter().take(3) {
            let u = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(u.get_version_num(), 4, "{id}");
        }
    }
}
