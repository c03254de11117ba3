//! Server configuration: a JSON or YAML-free JSON file, overridable by flags and environment.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::batch::BatchConfig;

/// The whole configuration of a server.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// REST listen address.
    #[serde(default = "default_http")]
    pub http: SocketAddr,
    /// gRPC listen address; no gRPC when absent.
    #[serde(default)]
    pub grpc: Option<SocketAddr>,
    /// Model repository: a directory, `file://PATH`, `s3://BUCKET[/PREFIX][?…]` or
    /// `az://ACCOUNT/CONTAINER[/PREFIX][?…]`.
    pub repository: String,
    /// Where artifacts from a remote repository are cached (default
    /// `$XDG_CACHE_HOME/modelplane/models`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<std::path::PathBuf>,
    /// Models to load (versions default to the newest).
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    /// Endpoints that split traffic between model versions.
    #[serde(default)]
    pub endpoints: Vec<EndpointConfig>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub monitoring: MonitoringConfig,
    /// Serve REST and gRPC over TLS.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Refuse to start when any model fails to load (Triton's `--exit-on-error`). Off, the
    /// server starts and serves the others; a failed model answers not ready with its reason.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
    /// Bind with SO_REUSEPORT, so that a replacement server can take over the same ports
    /// before this one drains (a restart that keeps the URL and drops no connection).
    #[serde(default)]
    pub reuse_port: bool,
    /// The `site` label of local variants' metrics (default `local`); remote variants carry
    /// their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// A shared endpoint: more models are attached through a registry in the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<SharedConfig>,
}

/// A shared endpoint: many models on one server. Each model is attached by one JSON file
/// ([`Attachment`]) in the registry folder of the repository; the server reads the folder
/// every `poll_ms` and on `POST /v2/admin/reload`, and changes only what changed. Attached
/// models load on their first request (the others do not wait) unless pinned, and are
/// evicted least recently used when `limits.memory_budget_bytes` would be exceeded.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SharedConfig {
    /// The registry's folder in the repository, e.g. `.endpoints/pool`.
    pub registry: String,
    /// How often the registry is read for changes.
    #[serde(default = "default_poll")]
    pub poll_ms: u64,
}

fn default_poll() -> u64 {
    2_000
}

/// One model attached to a shared endpoint: its route (the endpoint's name), split and
/// shadow, and the settings of the versions it serves.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    pub endpoint: EndpointConfig,
    /// Settings (batching, device, shapes) of the versions the endpoint serves; versions not
    /// listed get the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelConfig>,
    /// Loaded when attached and never evicted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pinned: bool,
}

impl Attachment {
    /// Checks the attachment on its own: its endpoint, local variants at pinned versions.
    pub fn check(&self) -> Result<(), String> {
        self.endpoint.check()?;
        // An attachment is read from the store: whoever can write there must not make the
        // server send a token it can read to a server of their choosing.
        if self.endpoint.variants.iter().any(|v| v.remote.is_some())
            || self
                .endpoint
                .shadow
                .as_ref()
                .is_some_and(|s| s.remote.is_some())
        {
            return Err(format!(
                "endpoint {}: an attachment serves models of the repository only; a remote variant belongs in the server's own configuration",
                self.endpoint.name
            ));
        }
        for m in &self.models {
            check_input_shapes(&m.name, &m.inputs)?;
        }
        let e = &self.endpoint;
        for (who, model, version, remote) in e
            .variants
            .iter()
            .map(|v| (v.name.as_str(), &v.model, &v.version, v.remote.is_some()))
            .chain(
                e.shadow
                    .iter()
                    .map(|s| ("shadow", &s.model, &s.version, s.remote.is_some())),
            )
        {
            if !remote && version.is_none() {
                return Err(format!(
                    "endpoint {}: {who}: model {model} needs a version on a shared endpoint",
                    e.name
                ));
            }
        }
        Ok(())
    }

    /// The versions it serves locally, each with its settings.
    pub fn wanted_models(&self) -> Vec<ModelConfig> {
        let mut out: Vec<ModelConfig> = Vec::new();
        let e = &self.endpoint;
        let refs = e
            .variants
            .iter()
            .filter(|v| v.remote.is_none())
            .map(|v| (&v.model, &v.version))
            .chain(
                e.shadow
                    .iter()
                    .filter(|s| s.remote.is_none())
                    .map(|s| (&s.model, &s.version)),
            );
        for (model, version) in refs {
            if out
                .iter()
                .any(|m| &m.name == model && &m.version == version)
            {
                continue;
            }
            out.push(
                self.models
                    .iter()
                    .find(|m| &m.name == model && (m.version.is_none() || &m.version == version))
                    .map(|m| ModelConfig {
                        version: version.clone(),
                        ..m.clone()
                    })
                    .unwrap_or_else(|| ModelConfig::named(model.clone(), version.clone())),
            );
        }
        out
    }
}

/// PEM files for TLS.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: std::path::PathBuf,
    pub key_file: std::path::PathBuf,
}

/// Drift and feedback settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MonitoringConfig {
    /// Sliding window for drift statistics.
    #[serde(default = "default_drift_window")]
    pub drift_window_seconds: u64,
    /// Window for rolling accuracy and MAE from feedback.
    #[serde(default = "default_feedback_window")]
    pub feedback_window_seconds: u64,
    /// Predictions remembered for feedback, about 200 bytes each (the oldest are forgotten).
    #[serde(default = "default_feedback_capacity")]
    pub feedback_capacity: usize,
}

fn default_drift_window() -> u64 {
    300
}
fn default_feedback_window() -> u64 {
    3600
}
fn default_feedback_capacity() -> usize {
    10_000
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            drift_window_seconds: default_drift_window(),
            feedback_window_seconds: default_feedback_window(),
            feedback_capacity: default_feedback_capacity(),
        }
    }
}

fn default_http() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub batching: BatchConfig,
    /// `cpu` (default) or `cuda`.
    #[serde(default)]
    pub device: crate::model::Device,
    /// Shapes that pin what the model file leaves free, per input (like Triton's `dims`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<InputShape>,
    /// Optimise the model for each concrete input shape (cached, `limits.plan_cache_size`
    /// plans) instead of once with free dimensions. Models tract cannot optimise with free
    /// dimensions are planned this way anyway.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plan_per_shape: bool,
}

impl ModelConfig {
    /// A model by name, with default settings.
    pub fn named(name: impl Into<String>, version: Option<String>) -> ModelConfig {
        ModelConfig {
            name: name.into(),
            version,
            batching: BatchConfig::default(),
            device: Default::default(),
            inputs: Vec::new(),
            plan_per_shape: false,
        }
    }
}

/// Checks declared input shapes on their own (against the model when it loads): no input
/// twice, sizes positive or -1, names identifiers.
pub fn check_input_shapes(model: &str, inputs: &[InputShape]) -> Result<(), String> {
    let mut names = std::collections::BTreeSet::new();
    for i in inputs {
        if !names.insert(&i.name) {
            return Err(format!(
                "model {model}: inputs: {:?} is declared twice",
                i.name
            ));
        }
        for d in &i.shape {
            match d {
                Dim::Size(n) if *n < -1 || *n == 0 => {
                    return Err(format!(
                        "model {model}: inputs: {:?} has dimension {n}; use a positive size, -1 or a name",
                        i.name
                    ))
                }
                Dim::Named(s)
                    if s.is_empty()
                        || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        || s.starts_with(|c: char| c.is_ascii_digit()) =>
                {
                    return Err(format!(
                        "model {model}: inputs: {:?} has dimension name {s:?}; a name is letters, digits and _ (not starting with a digit)",
                        i.name
                    ))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The declared shape of one input: each dimension a size (`3`), a name (`"height"`: free,
/// and equal wherever the same name appears), or -1 (free, as the file says).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputShape {
    pub name: String,
    pub shape: Vec<Dim>,
}

/// One declared dimension.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(untagged)]
pub enum Dim {
    Size(i64),
    Named(String),
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    pub name: String,
    /// The model (a local one, or with `remote` the model's name on the remote server).
    pub model: String,
    #[serde(default)]
    pub version: Option<String>,
    pub weight: u32,
    /// Serve this variant from another Open Inference Protocol server instead of a local
    /// model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<Box<RemoteConfig>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShadowConfig {
    pub model: String,
    #[serde(default)]
    pub version: Option<String>,
    /// Mirror to another Open Inference Protocol server instead of a local model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<Box<RemoteConfig>>,
}

/// Another Open Inference Protocol server that serves a variant: Modelplane's own, Triton,
/// KServe, MLServer. The token is read from an environment variable or a file, never from
/// this configuration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// `http://` or `https://` (REST), `grpc://` or `grpcs://` (gRPC), host and port, e.g.
    /// `https://fraud.eu-west-1.example.com`.
    pub url: String,
    /// Environment variable holding the remote's bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// File holding the remote's bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    /// PEM file of the CA that signed the remote's certificate (else the system's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Longest a request to the remote may take (default: `limits.request_timeout_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// The `site` label of the variant's metrics (default: the URL's host and port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// When the remote fails, times out or its circuit is open, answer the request with the
    /// endpoint's local variants instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
    /// Consecutive failures that open the circuit (requests then fail fast, or fall back).
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open circuit waits before one request probes the remote again.
    #[serde(default = "default_breaker_probe")]
    pub breaker_probe_ms: u64,
}

fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_probe() -> u64 {
    5_000
}

impl RemoteConfig {
    /// A REST or gRPC remote at `url`, with default settings.
    pub fn at(url: impl Into<String>) -> RemoteConfig {
        RemoteConfig {
            url: url.into(),
            token_env: None,
            token_file: None,
            ca_file: None,
            timeout_ms: None,
            site: None,
            fallback: false,
            breaker_failures: default_breaker_failures(),
            breaker_probe_ms: default_breaker_probe(),
        }
    }

    /// Checks the URL and settings; `who` names the variant in the message.
    pub fn check(&self, who: &str) -> Result<(), String> {
        let url = url::Url::parse(&self.url).map_err(|e| {
            format!(
                "{who}: remote.url {:?} is not a URL ({e}); use http(s)://HOST:PORT or grpc(s)://HOST:PORT",
                self.url
            )
        })?;
        if !matches!(url.scheme(), "http" | "https" | "grpc" | "grpcs") {
            return Err(format!(
                "{who}: remote.url {:?} has scheme {:?}; use http:// or https:// (REST), grpc:// or grpcs:// (gRPC)",
                self.url,
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{who}: remote.url {:?} has no host", self.url));
        }
        if self.token_env.is_some() && self.token_file.is_some() {
            return Err(format!(
                "{who}: remote: give token_env or token_file, not both"
            ));
        }
        if self.breaker_failures == 0 || self.breaker_probe_ms == 0 {
            return Err(format!(
                "{who}: remote.breaker_failures and remote.breaker_probe_ms must be positive"
            ));
        }
        if self.timeout_ms == Some(0) {
            return Err(format!("{who}: remote.timeout_ms must be positive"));
        }
        Ok(())
    }

    /// The remote's token, when it has one.
    pub fn token(&self) -> Result<Option<String>, String> {
        AuthConfig {
            token_env: self.token_env.clone(),
            token_file: self.token_file.clone(),
            none: false,
        }
        .token()
        .map_err(|e| format!("remote {}: {e}", self.url))
    }
}

impl EndpointConfig {
    /// Checks weights, variant names and remotes.
    pub fn check(&self) -> Result<(), String> {
        let e = self;
        if e.variants.is_empty() {
            return Err(format!("endpoint {}: needs at least one variant", e.name));
        }
        let total: u64 = e.variants.iter().map(|v| u64::from(v.weight)).sum();
        if total == 0 {
            return Err(format!(
                "endpoint {}: variant weights add up to 0; give at least one variant a weight",
                e.name
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for v in &e.variants {
            if !names.insert(&v.name) {
                return Err(format!(
                    "endpoint {}: variant {} is declared twice",
                    e.name, v.name
                ));
            }
            if let Some(r) = &v.remote {
                r.check(&format!("endpoint {}: variant {}", e.name, v.name))?;
            }
        }
        if let Some(r) = e.shadow.as_ref().and_then(|s| s.remote.as_ref()) {
            r.check(&format!("endpoint {}: shadow", e.name))?;
        }
        Ok(())
    }
}

/// An endpoint may share its name with a model (`iris` splitting traffic between versions of
/// `iris`): requests by that name go to the endpoint, and `/versions/V` picks the variant
/// serving version V.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    pub name: String,
    pub variants: Vec<VariantConfig>,
    #[serde(default)]
    pub shadow: Option<ShadowConfig>,
    /// A header whose value keeps a client on one variant (e.g. `x-user-id`).
    #[serde(default)]
    pub sticky_header: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    #[serde(default = "default_timeout")]
    pub request_timeout_ms: u64,
    /// Concurrent model computations; defaults to the number of cores.
    #[serde(default)]
    pub workers: Option<usize>,
    /// Plans kept per model that tract can only optimise for concrete input shapes (one plan
    /// per distinct request shape, least recently used evicted).
    #[serde(default = "default_plan_cache")]
    pub plan_cache_size: usize,
    /// Memory the models attached to a shared endpoint may take together (their weights as
    /// planned); the least recently used are unloaded to make room. Unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_budget_bytes: Option<u64>,
}

fn default_plan_cache() -> usize {
    16
}

fn default_body() -> usize {
    64 << 20
}
fn default_timeout() -> u64 {
    30_000
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: default_body(),
            request_timeout_ms: default_timeout(),
            workers: None,
            plan_cache_size: default_plan_cache(),
            memory_budget_bytes: None,
        }
    }
}

/// Bearer-token authentication. The token is read from an environment variable or a file,
/// never from this configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding the token.
    #[serde(default)]
    pub token_file: Option<String>,
    /// Serve without a token on an address other than loopback: say so explicitly (the
    /// `--insecure` flag). Without a token the server listens only on loopback otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub none: bool,
}

impl AuthConfig {
    /// The token, when authentication is configured.
    pub fn token(&self) -> Result<Option<String>, String> {
        if let Some(var) = &self.token_env {
            return match std::env::var(var) {
                Ok(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_string())),
                _ => Err(format!("auth.token_env names {var}, which is not set")),
            };
        }
        if let Some(f) = &self.token_file {
            return std::fs::read_to_string(f)
                .map(|t| Some(t.trim().to_string()))
                .map_err(|e| format!("auth.token_file {f}: {e}"));
        }
        Ok(None)
    }
}

impl ServeConfig {
    /// Reads a JSON configuration file.
    pub fn from_file(path: &Path) -> Result<ServeConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let cfg: ServeConfig =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks what the types cannot: weights, names, references.
    pub fn check(&self) -> Result<(), String> {
        for e in &self.endpoints {
            e.check()?;
        }
        if let Some(sh) = &self.shared {
            if sh.registry.is_empty() || sh.registry.split('/').any(|p| p.is_empty() || p == "..") {
                return Err(format!(
                    "shared.registry {:?} must be a relative folder of the repository, e.g. .endpoints/pool",
                    sh.registry
                ));
            }
            if sh.poll_ms == 0 {
                return Err("shared.poll_ms must be positive".into());
            }
        }
        if self.limits.memory_budget_bytes == Some(0) {
            return Err("limits.memory_budget_bytes must be positive".into());
        }
        for m in &self.models {
            check_input_shapes(&m.name, &m.inputs)?;
        }
        if self.limits.plan_cache_size == 0 {
            return Err("limits.plan_cache_size must be at least 1".into());
        }
        if self.limits.max_body_bytes == 0 || self.limits.request_timeout_ms == 0 {
            return Err(
                "limits.max_body_bytes and limits.request_timeout_ms must be positive".into(),
            );
        }
        Ok(())
    }

    /// Without a token, only loopback addresses may be served, unless `auth.none` says
    /// explicitly that anyone who reaches the port may use it.
    pub fn check_exposure(&self, has_token: bool) -> Result<(), String> {
        if has_token || self.auth.none {
            return Ok(());
        }
        for (what, addr) in [("http", Some(self.http)), ("grpc", self.grpc)] {
            if let Some(a) = addr {
                if !a.ip().is_loopback() {
                    return Err(format!(
                        "{what} listens on {a}, beyond this machine, without authentication: set a token (auth.token_env or auth.token_file), or serve on 127.0.0.1, or pass --insecure (auth.none = true) to serve it open on purpose"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every (model, version) the configuration needs, with its batching settings.
    pub fn wanted_models(&self) -> Vec<ModelConfig> {
        let mut out: Vec<ModelConfig> = self.models.clone();
        let mut add = |model: &str, version: &Option<String>| {
            if !out
                .iter()
                .any(|m| m.name == model && (m.version == *version || version.is_none()))
            {
                out.push(ModelConfig::named(model, version.clone()));
            }
        };
        for e in &self.endpoints {
            for v in e.variants.iter().filter(|v| v.remote.is_none()) {
                add(&v.model, &v.version);
            }
            if let Some(s) = e.shadow.as_ref().filter(|s| s.remote.is_none()) {
                add(&s.model, &s.version);
            }
        }
        out
    }
}
