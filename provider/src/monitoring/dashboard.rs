//! The Grafana dashboard of a monitored endpoint: latency, throughput, errors, batch size,
//! drift per feature and accuracy per variant. Its data source is a dashboard variable, so
//! the JSON imports into any Grafana with a Prometheus data source.

use serde_json::{json, Value};

use super::Spec;

/// A panel: `(title, unit, [(PromQL, legend)])`.
pub type Panel = (&'static str, &'static str, Vec<(String, String)>);

/// Every panel, for the endpoint `endpoint`.
pub fn panels(endpoint: &str) -> Vec<Panel> {
    let sel = format!("endpoint={}", super::quote(endpoint));
    let by = "model, version, variant";
    let lat = |q: &str| {
        format!("histogram_quantile({q}, sum by (le, {by}) (rate(modelplane_request_duration_seconds_bucket{{{sel}}}[$__rate_interval])))")
    };
    let legend = "{{model}} {{version}} ({{variant}})".to_string();
    vec![
        ("Latency", "s", vec![(lat("0.5"), format!("p50 {legend}")), (lat("0.99"), format!("p99 {legend}"))]),
        ("Throughput", "reqps", vec![(format!("sum by ({by}) (rate(modelplane_requests_total{{{sel}}}[$__rate_interval]))"), legend.clone())]),
        (
            "Error rate",
            "percentunit",
            vec![(
                format!("sum by ({by}) (rate(modelplane_requests_total{{{sel},status!=\"ok\"}}[$__rate_interval])) / sum by ({by}) (rate(modelplane_requests_total{{{sel}}}[$__rate_interval]))"),
                legend.clone(),
            )],
        ),
        (
            "Rows per batch",
            "short",
            vec![(
                format!("sum by (model, version) (rate(modelplane_batch_size_sum{{{sel}}}[$__rate_interval])) / sum by (model, version) (rate(modelplane_batch_size_count{{{sel}}}[$__rate_interval]))"),
                "{{model}} {{version}}".into(),
            )],
        ),
        (
            "Drift (PSI) per feature",
            "short",
            vec![
                (format!("modelplane_drift_psi{{{sel}}}"), "{{model}} {{version}} {{feature}}".into()),
                (format!("modelplane_prediction_drift_psi{{{sel}}}"), "{{model}} {{version}} predictions".into()),
            ],
        ),
        ("Accuracy (feedback)", "percentunit", vec![(format!("modelplane_feedback_accuracy{{{sel}}}"), legend)]),
    ]
}

/// The dashboard JSON.
pub fn render(spec: &Spec) -> Value {
    let panels: Vec<Value> = panels(&spec.endpoint)
        .into_iter()
        .enumerate()
        .map(|(i, (title, unit, queries))| {
            json!({
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "datasource": { "type": "prometheus", "uid": "${datasource}" },
                "gridPos": { "h": 8, "w": 12, "x": (i % 2) * 12, "y": (i / 2) * 8 },
                "fieldConfig": { "defaults": { "unit": unit }, "overrides": [] },
                "targets": queries.into_iter().enumerate().map(|(j, (expr, legend))| json!({
                    "refId": ((b'A' + j as u8) as char).to_string(),
                    "datasource": { "type": "prometheus", "uid": "${datasource}" },
                    "expr": expr,
                    "legendFormat": legend,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "title": format!("Modelplane: {}", spec.endpoint),
        "uid": format!("modelplane-{}", spec.endpoint).chars().take(40).collect::<String>(),
        "tags": ["modelplane"],
        "timezone": "browser",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": { "from": "now-1h", "to": "now" },
        "templating": { "list": [{ "name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus" }] },
        "panels": panels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_panel_query_is_promql_and_selects_the_endpoint() {
        for (title, _, queries) in panels("iris") {
            for (q, _) in queries {
                // `$__rate_interval` is Grafana's; Prometheus sees a duration in its place.
                let q = q.replace("$__rate_interval", "1m");
                super::super::check_promql(&q).unwrap_or_else(|e| panic!("{title}: {q}: {e}"));
                assert!(q.contains("endpoint=\"iris\""), "{title}: {q}");
            }
        }
    }
}
