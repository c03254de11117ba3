//! Monitors on Kubernetes. Where the prometheus-operator's CRDs exist (found at apply, never
//! at plan), a ServiceMonitor scrapes the endpoint's Service and a PrometheusRule carries the
//! alert rules; elsewhere the endpoint's pods carry `prometheus.io/*` scrape annotations (set
//! by [`super::workload`]) and the rules go into a ConfigMap for the cluster's Prometheus to
//! mount. The Alertmanager configuration goes into a Secret (`alertmanager.yaml`), the form
//! both a plain Alertmanager and the operator's `alertmanagerConfigSecret` read.

use serde_json::{json, Value};

use tfplugin::{AttributePath, Diagnostics};

use super::{objects, workload, Kubernetes, Rendered, LABEL_ENDPOINT};
use crate::platforms::PlatformError;

impl Kubernetes {
    /// Writes a monitor's objects next to its endpoint: ServiceMonitor and PrometheusRule
    /// where the prometheus-operator's CRDs exist (asked now, at apply), else a ConfigMap of
    /// rules; a Secret with the Alertmanager configuration when alerts are routed.
    pub(super) async fn apply_monitor_objects(
        &self,
        spec: &crate::platforms::MonitorObjects,
        before: &[String],
        diags: &mut Diagnostics,
    ) -> Result<Vec<String>, (PlatformError, Vec<String>)> {
        let (client, _) = self.connect().await.map_err(|e| (e, Vec::new()))?;
        let namespace = workload::locate(&client, &self.cluster.name, &spec.endpoint)
            .await
            .map_err(|e| {
                (
                    PlatformError::Refused {
                        attribute: Some(AttributePath::attr("endpoint")),
                        summary: "Unknown endpoint".into(),
                        message: e,
                    },
                    Vec::new(),
                )
            })?;
        let operator = has_operator(&client).await;
        let endpoint_object = super::dns_label(&spec.endpoint);
        if !operator {
            diags.warning(
                "No prometheus-operator",
                format!("the cluster has no ServiceMonitor and PrometheusRule CRDs, so the rules go into ConfigMap {endpoint_object}-rules in namespace {namespace} and the endpoint's pods carry prometheus.io/scrape annotations; mount the ConfigMap into the cluster's Prometheus as a rule file."),
            );
        }
        let objs = MonitorObjects {
            name: &spec.endpoint,
            namespace: &namespace,
            endpoint: &endpoint_object,
            rules: &spec.rules,
            alertmanager: spec.alertmanager.as_deref(),
            operator,
            scrape_interval: &spec.scrape_interval,
        }
        .render();
        let before = objects::parse_all(before);
        let (recorded, r) = objects::converge(&client, &before, &objs).await;
        let recorded: Vec<String> = recorded.iter().map(|r| r.to_string()).collect();
        match r {
            Ok(()) => Ok(recorded),
            Err(e) => Err((
                PlatformError::Refused {
                    attribute: None,
                    summary: "Cannot write the monitor".into(),
                    message: e,
                },
                recorded,
            )),
        }
    }
}

/// Whether the prometheus-operator serves ServiceMonitor and PrometheusRule.
pub async fn has_operator(client: &kube::Client) -> bool {
    objects::has_crd(client, "servicemonitors.monitoring.coreos.com").await
        && objects::has_crd(client, "prometheusrules.monitoring.coreos.com").await
}

/// What a monitor writes next to its endpoint.
pub struct MonitorObjects<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    /// The endpoint's object name (its Service's name).
    pub endpoint: &'a str,
    /// Prometheus rule groups (`{"groups": [...]}`).
    pub rules: &'a Value,
    /// The Alertmanager configuration (YAML), if the monitor routes alerts.
    pub alertmanager: Option<&'a str>,
    pub operator: bool,
    pub scrape_interval: &'a str,
}

impl MonitorObjects<'_> {
    pub fn render(&self) -> Vec<Rendered> {
        let n = super::dns_label(self.name);
        let labels = json!({
            LABEL_ENDPOINT: self.endpoint,
            "app.kubernetes.io/component": "monitor",
        });
        let meta =
            |name: String| json!({ "name": name, "namespace": self.namespace, "labels": labels });
        let mut out = Vec::new();
        if self.operator {
            out.push(json!({
                "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                "metadata": meta(n.clone()),
                "spec": {
                    "selector": { "matchLabels": {
                        "app.kubernetes.io/name": "modelplane-serve",
                        "app.kubernetes.io/instance": self.endpoint,
                    }},
                    "endpoints": [{ "port": "http", "path": "/metrics", "interval": self.scrape_interval }],
                },
            }));
            out.push(json!({
                "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
                "metadata": meta(n.clone()),
                "spec": { "groups": self.rules.get("groups").cloned().unwrap_or(json!([])) },
            }));
        } else {
            let yaml = serde_yaml_ng::to_string(self.rules).unwrap_or_default();
            out.push(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": meta(format!("{n}-rules")),
                "data": { format!("{n}.rules.yaml"): yaml },
            }));
        }
        if let Some(am) = self.alertmanager {
            use base64::Engine as _;
            out.push(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": meta(format!("{n}-alertmanager")),
                "type": "Opaque",
                "data": { "alertmanager.yaml": base64::engine::general_purpose::STANDARD.encode(am) },
            }));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_or_plain_objects() {
        let rules =
            json!({"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0"}]}]});
        let m = MonitorObjects {
            name: "digits",
            namespace: "ml",
            endpoint: "digits",
            rules: &rules,
            alertmanager: Some("route: {receiver: x}\nreceivers: [{name: x}]\n"),
            operator: true,
            scrape_interval: "15s",
        };
        let kinds: Vec<String> = m
            .render()
            .iter()
            .map(|o| o["kind"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(kinds, ["ServiceMonitor", "PrometheusRule", "Secret"]);
        assert_eq!(m.render()[1]["spec"]["groups"][0]["rules"][0]["alert"], "A");
        let plain = MonitorObjects {
            operator: false,
            alertmanager: None,
            ..m
        };
        let objs = plain.render();
        assert_eq!(objs.len(), 1);
        assert!(objs[0]["data"]["digits.rules.yaml"]
            .as_str()
            .unwrap()
            .contains("up == 0"));
    }
}
