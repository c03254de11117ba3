//! What an endpoint's audit record says about a change: the split before and after, and the
//! settings that changed (values only for settings that cannot hold a secret).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tfplugin::Attr;

use super::Model;
use crate::governance::audit::Record;

/// Settings whose values may hold secrets (environment values, registry credentials): the
/// record names them when they change, never their values.
const OPAQUE: &[&str] = &["kubernetes", "container", "aws", "azure", "token"];

fn v<T: serde::Serialize>(x: T) -> Value {
    serde_json::to_value(x).unwrap_or(Value::Null)
}

fn settings(m: &Model) -> BTreeMap<&'static str, Value> {
    let variants: Vec<Value> = m
        .variant
        .iter()
        .map(|v| {
            json!({
                "name": v.name,
                "model": v.model.known(),
                "endpoint": v.endpoint.known(),
                "url": v.url,
                "weight": v.weight.known(),
                "fallback": v.fallback,
            })
        })
        .collect();
    BTreeMap::from([
        ("variant", Value::Array(variants)),
        (
            "shadow",
            v(m.shadow.as_ref().map(|s| s.model.known().cloned())),
        ),
        ("shared", v(&m.shared)),
        ("sticky_header", v(&m.sticky_header)),
        ("batching", v(&m.batching)),
        ("limits", v(&m.limits)),
        ("monitoring", v(&m.monitoring)),
        ("benchmark", v(&m.benchmark)),
        ("image", v(&m.image)),
        ("pricing", v(&m.pricing)),
        ("budget", v(&m.budget)),
        ("kubernetes", v(&m.kubernetes)),
        ("container", v(&m.container)),
        ("aws", v(&m.aws)),
        ("azure", v(&m.azure)),
        ("token", v(m.token_fingerprint.known())),
    ])
}

fn split(m: &Model) -> BTreeMap<String, i64> {
    m.variant
        .iter()
        .filter_map(|v| Some((v.name.clone(), *v.weight.known()?)))
        .collect()
}

fn models(m: &Model) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = m
        .variant
        .iter()
        .filter_map(|v| match (&v.model, &v.endpoint) {
            (Attr::Known(id), _) => Some((v.name.clone(), id.clone())),
            (_, Attr::Known(e)) => Some((v.name.clone(), e.clone())),
            _ => None,
        })
        .collect();
    if let Some(Attr::Known(id)) = m.shadow.as_ref().map(|s| &s.model) {
        out.insert("shadow".into(), id.clone());
    }
    out
}

/// The record of a change from `before` (none on create) to `after` (none on delete).
pub fn record(before: Option<&Model>, after: Option<&Model>) -> Record {
    let (changed, change) = crate::governance::audit::diff(
        before.map(settings).as_ref(),
        after.map(settings).as_ref(),
        OPAQUE,
    );
    let named = after.or(before);
    Record {
        resource: "modelplane_endpoint".into(),
        endpoint: named.and_then(|m| m.id.known().cloned()),
        models: named.map(models).unwrap_or_default(),
        split_before: before.map(split).unwrap_or_default(),
        split_after: after.map(split).unwrap_or_default(),
        changed,
        change,
        ..Default::default()
    }
}
