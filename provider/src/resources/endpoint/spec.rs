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
    AuthConfig, EndpointConfig, ModelConfig, ServeConfig, ShadowConfig, VariantConfig,
};

use super::{Batching, Model, Shadow, Variant};
use crate::ids::VersionId;
use crate::stores;

pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    modelplane_serve::cli::parse_duration(s)
}

pub(super) fn fingerprint(name: &str, token: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(b"modelplane-endpoint-token\0");
    h.update(name.as_bytes());
    h.update(b"\0");
    h.update(token.as_bytes());
    hex::encode(&h.finalize()[..12])
}

/// Model references of a plan: `(variant name or "shadow", id)`.
pub(super) fn references(m: &Model) -> Vec<(String, Attr<String>)> {
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

/// The server configuration for a plan: `None` (with diagnostics) when it cannot be made.
pub(super) fn serve_config(
    m: &Model,
    conn: &stores::Connection,
    diags: &mut Diagnostics,
) -> Option<ServeConfig> {
    let mut repository: Option<String> = None;
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
        // Where it listens, where its token and cache are: the platform's to say.
        http: SocketAddr::from(([127, 0, 0, 1], 0)),
        grpc: None,
        cache_dir: None,
        repository: repository.unwrap_or_default(),
        models,
        endpoints: vec![EndpointConfig {
            name: m.name.clone(),
            variants,
            shadow,
            sticky_header: m.sticky_header.clone(),
        }],
        limits,
        auth: AuthConfig::default(),
        monitoring,
        tls: None,
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
pub(super) async fn recorded_sha256(
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
pub(super) fn reflect_served(state: &mut Model, cfg: &ServeConfig, repository: &str) {
    let Some(ep) = cfg.endpoints.iter().find(|e| e.name == state.name) else {
        return;
    };
    let store = stores::id_of_repository(repository);
    let id = |model: &str, version: &Option<String>| {
        VersionId::new(&store, model, version.as_deref().unwrap_or("")).to_string()
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
