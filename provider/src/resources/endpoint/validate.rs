//! Plan-time checks of `modelplane_endpoint` that its schema's validators do not cover; the
//! platform checks its own attributes and blocks ([`crate::platforms::Platform::validate_endpoint`]).

use std::time::Duration;

use tfplugin::{Attr, AttributePath, Config, Diagnostics, PathStep};

use super::schema::{a, path};
use super::spec::parse_duration;
use crate::ids::{ClusterId, EndpointId, IdError, VersionId};
use crate::platforms::{self, container};
use crate::ProviderConfig;

pub(super) fn validate(config: &Config, diags: &mut Diagnostics) {
    crate::check_name(config, diags);
    if let Attr::Known(c) = config.get::<String>("cluster", diags) {
        match c.parse::<ClusterId>() {
            Err(e @ IdError::UnknownPlatform(_)) => diags.error_at(
                AttributePath::attr("cluster"),
                "Unsupported platform",
                e.to_string(),
            ),
            Err(e) => diags.error_at(
                AttributePath::attr("cluster"),
                "Invalid cluster",
                e.to_string(),
            ),
            Ok(id) => match platforms::resolve(&id, &ProviderConfig::default()) {
                Ok(p) => p.validate_endpoint(config, diags),
                Err(e) => diags.error_at(
                    AttributePath::attr("cluster"),
                    "Unsupported platform",
                    e.to_string(),
                ),
            },
        }
    }
    if let Some(c) = config.elements("container").first() {
        let at = |x: &str| path(&[a("container"), a(x)]);
        if let Attr::Known(m) = c.get::<String>("memory", diags) {
            if let Err(e) = container::check_memory(&m) {
                diags.error_at(at("memory"), "Invalid memory limit", e);
            }
        }
        if let Attr::Known(n) = c.get::<f64>("cpus", diags) {
            if n <= 0.0 {
                diags.error_at(
                    at("cpus"),
                    "Invalid CPU limit",
                    format!("cpus {n} must be more than 0, e.g. 1.5."),
                );
            }
        }
    }
    let variants = config.elements("variant");
    match config.elements("shared").first() {
        Some(sh) => {
            for block in ["variant", "shadow", "benchmark"] {
                if !config.elements(block).is_empty() {
                    diags.error_at(
                        AttributePath::attr(block),
                        "Not on a shared endpoint",
                        format!("a shared endpoint serves the models attached to it by modelplane_endpoint_model resources, each with its own variants, shadow and benchmark; move this `{block}` block into one."),
                    );
                }
            }
            if let Attr::Known(m) = sh.get::<String>("memory_budget", diags) {
                if let Err(e) = super::spec::parse_bytes(&m) {
                    diags.error_at(path(&[a("shared"), a("memory_budget")]), "Invalid memory budget", e);
                }
            }
            if let Attr::Known(d) = sh.get::<String>("poll_interval", diags) {
                match parse_duration(&d) {
                    Ok(v) if v >= Duration::from_millis(100) => {}
                    Ok(_) => diags.error_at(path(&[a("shared"), a("poll_interval")]), "Invalid duration", "poll_interval must be at least 100ms.".to_string()),
                    Err(e) => diags.error_at(path(&[a("shared"), a("poll_interval")]), "Invalid duration", format!("{e}; e.g. \"2s\".")),
                }
            }
        }
        // Blocks from a `dynamic` block whose `for_each` is not known yet are unknown here.
        None if variants.is_empty()
            && !["variant", "shared"]
                .iter()
                .any(|b| config.value().get_attr(b).is_some_and(|v| v.is_unknown())) =>
        {
            diags.error_at(
            AttributePath::attr("variant"),
            "No variant",
            "an endpoint serves at least one `variant` block (a model version and its weight); or give it a `shared` block to attach models with modelplane_endpoint_model.".to_string(),
            )
        }
        None => {}
    }
    let mut total = Some(0i64);
    let mut parts = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, v) in variants.iter().enumerate() {
        let at = |x: &str| path(&[a("variant"), PathStep::Index(i as i64), a(x)]);
        let name = v.get::<String>("name", diags);
        if let Attr::Known(n) = &name {
            if !names.insert(n.clone()) {
                diags.error_at(
                    at("name"),
                    "Duplicate variant",
                    format!("variant {n:?} is declared twice; variant names must be unique."),
                );
            }
        }
        match v.get::<i64>("weight", diags) {
            Attr::Known(w) => {
                total = total.map(|t| t + w);
                parts.push(format!(
                    "{} {w}",
                    name.known().cloned().unwrap_or_else(|| format!("#{i}"))
                ));
            }
            _ => total = None,
        }
        let model = v.get::<String>("model", diags);
        if let Attr::Known(id) = &model {
            if let Err(e) = id.parse::<VersionId>() {
                diags.error_at(at("model"), "Invalid model reference", format!("{e}."));
            }
        }
        let endpoint = v.get::<String>("endpoint", diags);
        match (&model, &endpoint) {
            (Attr::Null, Attr::Null) => diags.error_at(
                at("model"),
                "Variant without a model",
                "give the variant a `model` (the id of a modelplane_model) or an `endpoint` (another modelplane_endpoint's id or URL).",
            ),
            (Attr::Known(_), Attr::Known(_)) => diags.error_at(
                at("endpoint"),
                "Variant with a model and an endpoint",
                "a variant is served by a model here or by another endpoint: give `model` or `endpoint`, not both.",
            ),
            _ => {}
        }
        if let Attr::Known(e) = &endpoint {
            if let Err(e) = super::spec::Remote::parse(e) {
                diags.error_at(at("endpoint"), "Invalid endpoint", e);
            }
        }
        if endpoint.is_null() {
            for f in ["url", "token_file", "ca_file", "timeout_ms", "fallback"] {
                if !v.is_null(f) {
                    diags.error_at(
                        at(f),
                        "Setting of a remote variant",
                        format!("{f} applies to a variant with an `endpoint`; this variant serves a model here."),
                    );
                }
            }
        } else if let Attr::Known(e) = &endpoint {
            if e.parse::<EndpointId>().is_err() && !v.is_null("url") {
                diags.error_at(
                    at("url"),
                    "Setting of an endpoint id",
                    "url overrides the address of an `endpoint` given as a modelplane_endpoint's id; this endpoint is a URL already.",
                );
            }
            if let Attr::Known(u) = v.get::<String>("url", diags) {
                let ok = url::Url::parse(&u).is_ok_and(|x| {
                    matches!(x.scheme(), "http" | "https" | "grpc" | "grpcs")
                        && x.host_str().is_some()
                });
                if !ok {
                    diags.error_at(at("url"), "Invalid URL", format!("{u:?} is not a base URL; use https://HOST[:PORT] or grpcs://HOST:PORT."));
                }
            }
            if e.parse::<EndpointId>().is_ok() {
                for f in ["token_file", "ca_file"] {
                    // A CA goes with an address given here.
                    if !v.is_null(f) && (f != "ca_file" || v.is_null("url")) {
                        diags.error_at(
                            at(f),
                            "Setting of a URL remote",
                            format!("{f} applies to an `endpoint` given as a URL; the endpoint {e:?} is a modelplane_endpoint, whose token and address are read from it."),
                        );
                    }
                }
            }
        }
    }
    if let Some(t) = total {
        if t != 100 && !variants.is_empty() {
            diags.error_at(
                AttributePath::attr("variant"),
                "Variant weights must total 100",
                format!(
                    "the weights add up to {t} ({}); adjust them so that they total 100.",
                    parts.join(" + ")
                ),
            );
        }
    }
    if let Some(mo) = config.elements("monitoring").first() {
        for (f, def) in [("drift_window", "5m"), ("feedback_window", "1h")] {
            if let Attr::Known(d) = mo.get::<String>(f, diags) {
                match parse_duration(&d) {
                    Err(e) => diags.error_at(
                        path(&[a("monitoring"), a(f)]),
                        "Invalid duration",
                        format!("{e}; e.g. {def:?}."),
                    ),
                    Ok(v) if v < Duration::from_secs(1) => diags.error_at(
                        path(&[a("monitoring"), a(f)]),
                        "Invalid duration",
                        format!("{f} must be at least 1s."),
                    ),
                    Ok(_) => {}
                }
            }
        }
    }
    if let Some(b) = config.elements("benchmark").first() {
        for (f, def) in [("duration", "3s"), ("warmup", "500ms")] {
            if let Attr::Known(d) = b.get::<String>(f, diags) {
                if let Err(e) = parse_duration(&d) {
                    diags.error_at(
                        path(&[a("benchmark"), a(f)]),
                        "Invalid duration",
                        format!("{e}; e.g. {def:?}."),
                    );
                }
            }
        }
        if let Attr::Known(p) = b.get::<String>("payload", diags) {
            match serde_json::from_str::<serde_json::Value>(&p) {
                Err(e) => diags.error_at(path(&[a("benchmark"), a("payload")]), "Invalid payload", format!("payload is not JSON ({e}); give an Open Inference Protocol request such as {{\"inputs\": [{{\"name\": \"input\", \"shape\": [1, 4], \"datatype\": \"FP32\", \"data\": [5.1, 3.5, 1.4, 0.2]}}]}}.")),
                Ok(j) if !j["inputs"].is_array() => diags.error_at(path(&[a("benchmark"), a("payload")]), "Invalid payload", "payload has no \"inputs\" array; it must be an Open Inference Protocol inference request."),
                Ok(_) => {}
            }
        }
    }
    if let (Attr::Known(p), Attr::Known(g)) = (
        config.get::<i64>("port", diags),
        config.get::<i64>("grpc_port", diags),
    ) {
        if p == g {
            diags.error_at(
                AttributePath::attr("grpc_port"),
                "Port clash",
                "port and grpc_port must differ.",
            );
        }
    }
}
