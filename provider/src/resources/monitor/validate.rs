//! Plan-time checks of `modelplane_monitor` that its schema does not state; the platform
//! checks its own settings ([`crate::platforms::Platform::validate_monitor`]).

use super::*;

/// Reads an alert's number and reports it with the attribute's path when `ok` refuses it.
pub(super) fn check_range(
    b: &Config,
    i: usize,
    f: &str,
    ok: impl Fn(f64) -> bool,
    what: &str,
    diags: &mut Diagnostics,
) {
    if let Attr::Known(v) = b.get::<f64>(f, diags) {
        if !ok(v) {
            diags.error_at(
                at("alert", i, f),
                "Threshold out of range",
                format!("{f} = {v} is out of range: {what}."),
            );
        }
    }
}

pub(super) fn check_duration_at(
    b: &Config,
    i: usize,
    block: &str,
    f: &str,
    eg: &str,
    diags: &mut Diagnostics,
) {
    if let Attr::Known(d) = b.get::<String>(f, diags) {
        if let Err(e) = monitoring::check_duration(&d) {
            diags.error_at(
                at(block, i, f),
                "Invalid duration",
                format!("{f}: {e}; e.g. {eg:?}."),
            );
        }
    }
}

pub(super) fn validate(config: &Config, diags: &mut Diagnostics) {
    if let Attr::Known(e) = config.get::<String>("endpoint", diags) {
        match e.parse::<EndpointId>() {
            Err(why @ IdError::UnknownPlatform(_)) => diags.error_at(AttributePath::attr("endpoint"), "Invalid endpoint", format!("{e:?} is not the id of a modelplane_endpoint: {why}")),
            Err(_) => diags.error_at(AttributePath::attr("endpoint"), "Invalid endpoint", format!("{e:?} is not the id of a modelplane_endpoint (PLATFORM/CLUSTER/NAME); use modelplane_endpoint.NAME.id.")),
            Ok(id) => match platforms::resolve(&id.cluster, &ProviderConfig::default()) {
                Ok(p) if p.monitor_host() == MonitorHost::Unsupported => {
                    diags.error_at(AttributePath::attr("endpoint"), "Unsupported platform", format!("monitors run on the local and kubernetes platforms so far; {:?} endpoints are not supported yet.", id.cluster.platform.as_str()));
                }
                Ok(p) => p.validate_monitor(config, diags),
                Err(_) => diags.error_at(AttributePath::attr("endpoint"), "Unsupported platform", format!("monitors run on the local and kubernetes platforms so far; {:?} endpoints are not supported yet.", id.cluster.platform.as_str())),
            },
        }
    }
    for f in ["scrape_interval", "evaluation_interval"] {
        if let Attr::Known(d) = config.get::<String>(f, diags) {
            if let Err(e) = monitoring::check_duration(&d) {
                diags.error_at(
                    AttributePath::attr(f),
                    "Invalid duration",
                    format!("{f}: {e}."),
                );
            }
        }
    }
    let mut names = BTreeSet::new();
    for (i, b) in config.elements("alert").iter().enumerate() {
        if let Attr::Known(n) = b.get::<String>("name", diags) {
            if let Err(e) = monitoring::check_alert_name(&n) {
                diags.error_at(at("alert", i, "name"), "Invalid alert name", e);
            } else if !names.insert(n.clone()) {
                diags.error_at(
                    at("alert", i, "name"),
                    "Duplicate alert",
                    format!("alert {n:?} is declared twice; give each alert its own name."),
                );
            }
        }
        let set: Vec<&str> = CONDITIONS
            .iter()
            .copied()
            .filter(|c| !b.value().get_attr(c).is_none_or(|v| v.is_null()))
            .collect();
        let who = b
            .get::<String>("name", diags)
            .known()
            .cloned()
            .unwrap_or_else(|| format!("#{i}"));
        match set.len() {
            0 => diags.error_at(path(&[a("alert"), PathStep::Index(i as i64)]), "Alert without a condition", format!("alert {who:?}: set one of {}.", CONDITIONS.join(", "))),
            1 => {}
            _ => diags.error_at(
                at("alert", i, set[1]),
                "Conflicting conditions",
                format!("alert {who:?} sets {}; an alert has one condition: declare one alert block per condition.", set.join(" and ")),
            ),
        }
        check_range(
            b,
            i,
            "p99_ms_above",
            |v| v > 0.0 && v.is_finite(),
            "a latency above 0 ms",
            diags,
        );
        check_range(
            b,
            i,
            "error_rate_above",
            |v| (0.0..=1.0).contains(&v),
            "a share between 0 and 1 (0.01 is 1%)",
            diags,
        );
        check_range(
            b,
            i,
            "psi_above",
            |v| v > 0.0 && v <= 100.0,
            "a PSI above 0 (0.1 is a moderate shift, 0.25 a large one)",
            diags,
        );
        check_range(
            b,
            i,
            "prediction_psi_above",
            |v| v > 0.0 && v <= 100.0,
            "a PSI above 0 (0.1 is a moderate shift, 0.25 a large one)",
            diags,
        );
        check_range(
            b,
            i,
            "ks_above",
            |v| v > 0.0 && v <= 1.0,
            "a KS distance above 0 and at most 1",
            diags,
        );
        check_range(
            b,
            i,
            "prediction_ks_above",
            |v| v > 0.0 && v <= 1.0,
            "a KS distance above 0 and at most 1",
            diags,
        );
        check_range(
            b,
            i,
            "accuracy_below",
            |v| v > 0.0 && v <= 1.0,
            "an accuracy above 0 and at most 1 (0.9 is 90%)",
            diags,
        );
        check_range(
            b,
            i,
            "min_samples",
            |v| (1.0..=1e9).contains(&v) && v.fract() == 0.0,
            "a whole number of rows, 1 or more",
            diags,
        );
        check_duration_at(b, i, "alert", "for", "5m", diags);
        check_duration_at(b, i, "alert", "window", "5m", diags);
        check_duration_at(b, i, "alert", "no_traffic_for", "10m", diags);
        if let Attr::Known(d) = b.get::<String>("window", diags) {
            if monitoring::check_duration(&d).is_ok() && (d == "0s" || d == "0") {
                diags.error_at(
                    at("alert", i, "window"),
                    "Invalid duration",
                    "window must be longer than 0s; e.g. \"5m\".",
                );
            }
        }
        if let Attr::Known(e) = b.get::<String>("expr", diags) {
            if let Err(err) = monitoring::check_promql(&e) {
                diags.error_at(
                    at("alert", i, "expr"),
                    "Invalid PromQL",
                    format!("alert {who:?}: {err}"),
                );
            }
        }
        if !b.value().get_attr("features").is_none_or(|v| v.is_null())
            && set.iter().all(|c| *c != "psi_above" && *c != "ks_above")
        {
            diags.error_at(
                at("alert", i, "features"),
                "features without a drift condition",
                format!("alert {who:?}: features applies to psi_above and ks_above only."),
            );
        }
        if let Attr::Known(s) = b.get::<String>("severity", diags) {
            if !s.chars().all(|c| c.is_ascii_lowercase()) || s.is_empty() {
                diags.error_at(at("alert", i, "severity"), "Invalid severity", format!("severity {s:?}: use a lower-case word such as \"critical\", \"warning\" or \"info\"."));
            }
        }
    }
    for (i, o) in config.elements("on_alert").iter().enumerate() {
        let has = |f: &str| !o.value().get_attr(f).is_none_or(|v| v.is_null());
        if !["webhook", "slack", "email", "pagerduty"]
            .iter()
            .any(|f| has(f))
        {
            diags.error_at(
                path(&[a("on_alert"), PathStep::Index(i as i64)]),
                "Receiver without a destination",
                "on_alert: give a webhook, slack, email or pagerduty.",
            );
        }
        if let Attr::Known(w) = o.get::<String>("webhook", diags) {
            match reqwest::Url::parse(&w) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                _ => diags.error_at(at("on_alert", i, "webhook"), "Invalid webhook", format!("webhook {w:?} is not an http(s) URL, e.g. \"https://ci.example.com/hooks/retrain\".")),
            }
        }
        for f in ["group_wait", "group_interval", "repeat_interval"] {
            check_duration_at(o, i, "on_alert", f, "30s", diags);
        }
        if let Attr::Known(list) = o.get::<Vec<String>>("alerts", diags) {
            let declared: Option<BTreeSet<String>> = config
                .elements("alert")
                .iter()
                .map(|b| b.get::<String>("name", diags).into_known())
                .collect();
            if let Some(declared) = declared {
                for n in list.iter().filter(|n| !declared.contains(*n)) {
                    diags.error_at(at("on_alert", i, "alerts"), "Unknown alert", format!("on_alert.alerts names {n:?}, but no alert block has that name (declared: {}).", declared.iter().cloned().collect::<Vec<_>>().join(", ")));
                }
            }
        }
    }
    if let Some(e) = config.elements("existing_prometheus").first() {
        if let Attr::Known(u) = e.get::<String>("url", diags) {
            if !matches!(
                reqwest::Url::parse(&u)
                    .map(|u| u.scheme().to_string())
                    .as_deref(),
                Ok("http") | Ok("https")
            ) {
                diags.error_at(
                    path(&[a("existing_prometheus"), a("url")]),
                    "Invalid URL",
                    format!("url {u:?} is not an http(s) URL, e.g. \"http://prometheus:9090\"."),
                );
            }
        }
    }
}
