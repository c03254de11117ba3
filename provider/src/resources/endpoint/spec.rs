//! What a `modelplane_endpoint` plan means for its server, in no platform's terms: the
//! models, the split and the shadow, batching, limits and statistics windows
//! ([`serve_config`]); and what its model references hold ([`digests`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use sha2::Digest;
use tfplugin::{Attr, AttributePath, Diagnostics};

use modelplane_serve::batch::BatchConfig;
use modelplane_serve::config::{
    AuthConfig, EndpointConfig, ModelConfig, RemoteConfig, ServeConfig, ShadowConfig, VariantConfig,
};

use super::{Batching, Model, Shadow, Variant};
use crate::ids::{EndpointId, VersionId};
use crate::stores;

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    modelplane_serve::cli::parse_duration(s)
}

/// A memory size: bytes, or a number with a binary unit (`512Mi`, `4Gi`, `2g`, `300k`).
pub(crate) fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let at = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(at);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "ki" | "kb" | "kib" => 10,
        "m" | "mi" | "mb" | "mib" => 20,
        "g" | "gi" | "gb" | "gib" => 30,
        "t" | "ti" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "{s:?} has an unknown unit; write e.g. \"512Mi\" or \"4Gi\""
            ))
        }
    };
    match num.parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok((n * (1u64 << shift) as f64) as u64),
        _ => Err(format!(
            "{s:?} is not a memory size; write e.g. \"512Mi\" or \"4Gi\""
        )),
    }
}

/// The registry folder of a shared endpoint in its store, `.endpoints/ENDPOINT_ID`: one per
/// endpoint ID, so that two clusters' endpoints of the same name never share attachments.
pub(crate) fn registry_of(endpoint: &EndpointId) -> String {
    format!(".endpoints/{}", registry_segment(endpoint))
}

/// The registry folder below `.endpoints/`: the endpoint's ID, `PLATFORM/CLUSTER/NAME`.
pub(crate) fn registry_segment(endpoint: &EndpointId) -> String {
    endpoint.to_string()
}

pub(super) fn fingerprint(name: &str, token: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(b"modelplane-endpoint-token\0");
    h.update(name.as_bytes());
    h.update(b"\0");
    h.update(token.as_bytes());
    hex::encode(&h.finalize()[..12])
}

/// What a variant's `endpoint` names: another modelplane_endpoint, or a server by URL.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Remote {
    Endpoint(EndpointId),
    /// `base` is what the server's remote `url` takes: scheme, host, port (and a path
    /// prefix before `/v2` for REST).
    Url {
        base: String,
        model: String,
    },
}

impl Remote {
    pub(crate) fn parse(s: &str) -> Result<Remote, String> {
        if !s.contains("://") {
            return s.parse::<EndpointId>().map(Remote::Endpoint).map_err(|e| {
                format!("{e}; or give the remote's URL, https://HOST[:PORT]/v2/models/NAME or grpc[s]://HOST:PORT/NAME")
            });
        }
        let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{s:?} has no host"))?;
        let hostport = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let path = url.path().trim_end_matches('/');
        match url.scheme() {
            "http" | "https" => {
                let Some((prefix, model)) = path.rsplit_once("/v2/models/").filter(|(_, m)| !m.is_empty() && !m.contains('/')) else {
                    return Err(format!("{s:?} names no model: give the endpoint's URL with the model, e.g. https://{hostport}/v2/models/NAME"));
                };
                Ok(Remote::Url { base: format!("{}://{hostport}{prefix}", url.scheme()), model: model.to_string() })
            }
            "grpc" | "grpcs" => {
                let model = path.trim_start_matches('/');
                if model.is_empty() || model.contains('/') {
                    return Err(format!("{s:?} names no model: give grpc[s]://{hostport}/NAME"));
                }
                Ok(Remote::Url { base: format!("{}://{hostport}", url.scheme()), model: model.to_string() })
            }
            other => Err(format!("{s:?} has scheme {other:?}; use https:// or http:// (REST), grpcs:// or grpc:// (gRPC), or a modelplane_endpoint's id")),
        }
    }
}

/// A remote variant, resolved at apply: where it answers and its token (never in state).
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub url: String,
    pub model: String,
    pub token: Option<String>,
    /// The `site` label: the remote endpoint's cluster ID; `None` for URLs (the host).
    pub site: Option<String>,
}

/// Remote variants of a plan, by variant name.
pub(crate) type Remotes = BTreeMap<String, Resolved>;

/// Whether a resolved remote answers ready (`GET URL/v2/models/NAME/ready`, 200) within five
/// seconds, with its token; gRPC remotes by their REST twin are not probed.
pub(crate) async fn remote_answers(r: &Resolved, ca_file: Option<&str>) -> Result<(), String> {
    if r.url.starts_with("grpc") {
        return Ok(());
    }
    let mut b = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .no_proxy();
    if let Some(f) = ca_file {
        let pem = std::fs::read(f).map_err(|e| format!("ca_file {f}: {e}"))?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("ca_file {f}: {e}"))?;
        b = b.add_root_certificate(cert);
    }
    let client = b.build().map_err(|e| e.to_string())?;
    let url = format!(
        "{}/v2/models/{}/ready",
        r.url.trim_end_matches('/'),
        r.model
    );
    let mut req = client.get(&url);
    if let Some(t) = &r.token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("{url} answered {}", resp.status())),
        Err(e) => Err(format!("{url} does not answer: {e}")),
    }
}

/// Model references of a plan: `(variant name or "shadow", id)`; remote variants have none.
pub(super) fn references(m: &Model) -> Vec<(String, Attr<String>)> {
    let mut out: Vec<(String, Attr<String>)> = m
        .variant
        .iter()
        .filter(|v| v.endpoint.is_null())
        .map(|v| (v.name.clone(), v.model.clone()))
        .collect();
    if let Some(s) = &m.shadow {
        out.push(("shadow".into(), s.model.clone()));
    }
    out
}

/// The server configuration for a plan: `None` (with diagnostics) when it cannot be made.
pub(super) fn serve_config(
    m: &Model,
    conn: &stores::Connection,
    remotes: &Remotes,
    diags: &mut Diagnostics,
) -> Option<ServeConfig> {
    let mut repository: Option<String> = None;
    let mut shared = None;
    if let Some(sh) = &m.shared {
        let store = sh.store.known()?;
        match stores::open(store, conn) {
            Ok(s) => repository = Some(s.repository()),
            Err(e) => {
                diags.error_at(
                    AttributePath(vec![
                        tfplugin::PathStep::Attr("shared".into()),
                        tfplugin::PathStep::Attr("store".into()),
                    ]),
                    "Invalid store",
                    e.to_string(),
                );
                return None;
            }
        }
        let cluster = m.cluster.known()?;
        let id: EndpointId = format!("{cluster}/{}", m.name).parse().ok()?;
        shared = Some(modelplane_serve::config::SharedConfig {
            registry: registry_of(&id),
            poll_ms: sh
                .poll_interval
                .as_deref()
                .and_then(|d| parse_duration(d).ok())
                .map_or(2_000, |d| d.as_millis().max(100) as u64),
        });
    }
    let mut refs = Vec::new();
    for (who, id) in references(m) {
        let id = id.known()?.clone();
        let Ok(VersionId {
            store,
            name,
            version,
        }) = id.parse::<VersionId>()
        else {
            diags.error_at(
                AttributePath::attr("variant"),
                "Invalid model reference",
                format!(
                    "{who}: {id:?} is not the id of a modelplane_model (STORE_ID/NAME/VERSION)."
                ),
            );
            return None;
        };
        let repo = match stores::open(&store, conn) {
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
    let mut limits = modelplane_serve::config::Limits {
        memory_budget_bytes: m
            .shared
            .as_ref()
            .and_then(|sh| sh.memory_budget.as_deref())
            .and_then(|b| parse_bytes(b).ok()),
        ..Default::default()
    };
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
    let mut variants = Vec::new();
    for v in &m.variant {
        let weight = v.weight.known().copied().unwrap_or(0) as u32;
        if v.endpoint.is_null() {
            let (_, name, version) = refs.iter().find(|(who, _, _)| who == &v.name)?;
            variants.push(VariantConfig {
                name: v.name.clone(),
                model: name.clone(),
                version: Some(version.clone()),
                weight,
                remote: None,
            });
            continue;
        }
        let Some(r) = remotes.get(&v.name) else {
            diags.error_at(
                AttributePath::attr("variant"),
                "Remote variant not resolved",
                format!("variant {}: its endpoint could not be resolved.", v.name),
            );
            return None;
        };
        variants.push(VariantConfig {
            name: v.name.clone(),
            model: r.model.clone(),
            version: None,
            weight,
            remote: Some(Box::new(RemoteConfig {
                // The platform writes the token where its server reads it.
                token_file: None,
                ca_file: v.ca_file.clone().map(Into::into),
                timeout_ms: v.timeout_ms.map(|t| t as u64),
                site: r.site.clone(),
                fallback: v.fallback.unwrap_or(false),
                ..RemoteConfig::at(r.url.clone())
            })),
        });
    }
    let shadow = m
        .shadow
        .as_ref()
        .and_then(|_| refs.last())
        .map(|(_, name, version)| ShadowConfig {
            model: name.clone(),
            version: Some(version.clone()),
            remote: None,
        });
    Some(ServeConfig {
        // Where it listens, where its token and cache are: the platform's to say.
        http: SocketAddr::from(([127, 0, 0, 1], 0)),
        grpc: None,
        cache_dir: None,
        repository: repository.unwrap_or_default(),
        models,
        endpoints: if shared.is_some() {
            Vec::new()
        } else {
            vec![EndpointConfig {
                name: m.name.clone(),
                variants,
                shadow,
                sticky_header: m.sticky_header.clone(),
            }]
        },
        limits,
        auth: AuthConfig::default(),
        monitoring,
        tls: None,
        site: None,
        shared,
        // An endpoint whose model does not load is an apply that fails, with the model's
        // reason, not a server that serves part of what was declared.
        strict: true,
        reuse_port: true,
    })
}

/// sha256 of every referenced model version, from the store's model.json; unknown while a
/// reference is.
pub(super) async fn digests(
    m: &Model,
    conn: &stores::Connection,
) -> Attr<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (_, id) in references(m) {
        let Attr::Known(id) = id else {
            return Attr::Unknown;
        };
        let Ok(VersionId {
            store,
            name,
            version,
        }) = id.parse::<VersionId>()
        else {
            return Attr::Unknown;
        };
        let Ok(s) = stores::open(&store, conn) else {
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
pub(crate) async fn recorded_sha256(
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

/// What a served remote variant's `endpoint` reads back as: the endpoint ID (its cluster is
/// the `site`), or the URL with the model.
fn remote_of(v: &VariantConfig, r: &RemoteConfig, before: Option<&Variant>) -> String {
    if let Some(site) = &r.site {
        let id = format!("{site}/{}", v.model);
        if id.parse::<EndpointId>().is_ok() {
            return id;
        }
    }
    let as_url = if r.url.starts_with("grpc") {
        format!("{}/{}", r.url.trim_end_matches('/'), v.model)
    } else {
        format!("{}/v2/models/{}", r.url.trim_end_matches('/'), v.model)
    };
    // The same remote written another way (a trailing slash) reads back as written.
    match before.and_then(|b| b.endpoint.known()) {
        Some(e) if Remote::parse(e).ok() == Remote::parse(&as_url).ok() => e.clone(),
        _ => as_url,
    }
}

/// Replaces the recorded split with what the server's configuration serves, so that drift
/// shows in the plan. `repository` is the store as this machine names it.
pub(super) fn reflect_served(state: &mut Model, cfg: &ServeConfig, repository: &str) {
    if let Some(sh) = &cfg.shared {
        // Settings as written stay as written when they mean what the server runs with.
        let before = state.shared.take();
        let budget = cfg.limits.memory_budget_bytes;
        let memory_budget = match before.as_ref().and_then(|b| b.memory_budget.clone()) {
            Some(w) if parse_bytes(&w).ok() == budget => Some(w),
            _ => budget.map(|n| n.to_string()),
        };
        let written = before.as_ref().and_then(|b| b.poll_interval.clone());
        let poll_interval = match written {
            Some(w)
                if parse_duration(&w)
                    .ok()
                    .map(|d| d.as_millis().max(100) as u64)
                    == Some(sh.poll_ms) =>
            {
                Some(w)
            }
            _ if sh.poll_ms == 2_000 => None,
            _ => Some(format!("{}ms", sh.poll_ms)),
        };
        state.shared = Some(super::Shared {
            store: Attr::Known(stores::id_of_repository(repository)),
            memory_budget,
            poll_interval,
        });
        return;
    }
    let Some(ep) = cfg.endpoints.iter().find(|e| e.name == state.name) else {
        return;
    };
    let store = stores::id_of_repository(repository);
    let id = |model: &str, version: &Option<String>| {
        VersionId::new(&store, model, version.as_deref().unwrap_or("")).to_string()
    };
    let recorded = std::mem::take(&mut state.variant);
    state.variant = ep
        .variants
        .iter()
        .map(|v| {
            let before = recorded.iter().find(|r| r.name == v.name);
            match &v.remote {
                None => Variant {
                    name: v.name.clone(),
                    model: Attr::Known(id(&v.model, &v.version)),
                    endpoint: Attr::Null,
                    url: None,
                    token_file: None,
                    ca_file: None,
                    timeout_ms: None,
                    fallback: None,
                    weight: Attr::Known(i64::from(v.weight)),
                },
                Some(r) => Variant {
                    name: v.name.clone(),
                    model: Attr::Null,
                    endpoint: Attr::Known(remote_of(v, r, before)),
                    url: before.and_then(|b| b.url.clone()),
                    token_file: before.and_then(|b| b.token_file.clone()),
                    ca_file: r.ca_file.as_ref().map(|p| p.display().to_string()),
                    timeout_ms: r.timeout_ms.map(|t| t as i64),
                    fallback: r.fallback.then_some(true),
                    weight: Attr::Known(i64::from(v.weight)),
                },
            }
        })
        .collect();
    state.shadow = ep.shadow.as_ref().map(|s| Shadow {
        model: Attr::Known(id(&s.model, &s.version)),
    });
    state.sticky_header = ep.sticky_header.clone();
}
