//! Monitoring: what a `modelplane_monitor` declares ([`Spec`]) and how it is rendered for
//! Prometheus (alerting rules, a scrape job), Alertmanager (a route and receivers) and Grafana
//! (a dashboard). The renderers are pure: the local and container platforms write their
//! output to files ([`managed`] runs Prometheus and Alertmanager on them, or files are
//! dropped into an existing Prometheus's folders); the Kubernetes platform wraps the same
//! rule groups in a `PrometheusRule` and the same scrape job in a `ServiceMonitor`.
//!
//! Every series the server exports carries `model` and `version`; the endpoint's targets
//! add an `endpoint` label, which every rule selects on.

pub mod dashboard;
pub mod managed;

use serde_json::{json, Value};

/// One alert condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// 99th percentile latency above `ms`, over a rate window.
    LatencyP99 { ms: f64, window: String },
    /// Share of failed requests above `rate`, over a rate window.
    ErrorRate { rate: f64, window: String },
    /// PSI (or KS distance) of input features against the training baseline; all features
    /// when `features` is empty.
    FeatureDrift {
        stat: DriftStat,
        above: f64,
        features: Vec<String>,
        min_samples: u64,
    },
    /// PSI (or KS distance) of the predictions against the baseline's.
    PredictionDrift {
        stat: DriftStat,
        above: f64,
        min_samples: u64,
    },
    /// Rolling accuracy from ground-truth feedback below `below`.
    Accuracy { below: f64, min_samples: u64 },
    /// No request at all for `duration`.
    NoTraffic { duration: String },
    /// A PromQL expression of the user's.
    Raw { expr: String },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DriftStat {
    Psi,
    Ks,
}

impl DriftStat {
    fn feature_metric(self) -> &'static str {
        match self {
            DriftStat::Psi => "modelplane_drift_psi",
            DriftStat::Ks => "modelplane_drift_ks",
        }
    }
    fn prediction_metric(self) -> &'static str {
        match self {
            DriftStat::Psi => "modelplane_prediction_drift_psi",
            DriftStat::Ks => "modelplane_prediction_drift_ks",
        }
    }
    fn label(self) -> &'static str {
        match self {
            DriftStat::Psi => "PSI",
            DriftStat::Ks => "KS distance",
        }
    }
}

/// One alerting rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// The `alertname`.
    pub name: String,
    pub condition: Condition,
    /// How long the condition must hold (Prometheus duration).
    pub for_: String,
    pub severity: String,
    pub summary: Option<String>,
}

/// Where notifications go (one Alertmanager route and receiver).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Receiver {
    /// Only alerts of these severities (all when empty).
    pub severities: Vec<String>,
    /// Only these alerts, by name (all when empty).
    pub alerts: Vec<String>,
    pub webhook: Option<String>,
    pub slack: Option<Slack>,
    pub email: Option<Email>,
    pub pagerduty: Option<PagerDuty>,
    pub send_resolved: bool,
    pub group_wait: String,
    pub group_interval: String,
    pub repeat_interval: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Slack {
    pub channel: String,
    /// File holding the incoming-webhook URL (a secret: never in state).
    pub api_url_file: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Email {
    pub to: String,
    pub from: String,
    pub smarthost: String,
    pub auth_username: Option<String>,
    pub auth_password_file: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PagerDuty {
    /// File holding the Events API v2 routing key.
    pub routing_key_file: String,
}

/// Everything a monitor declares.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// The endpoint's name: the `endpoint` label of its series.
    pub endpoint: String,
    /// The endpoint's id, recorded as a label for receivers.
    pub endpoint_id: String,
    pub alerts: Vec<Alert>,
    pub receivers: Vec<Receiver>,
    pub scrape_interval: String,
    pub evaluation_interval: String,
}

/// The name of the rule group (and scrape job) of the monitor of `endpoint`.
pub fn group_name(endpoint: &str) -> String {
    format!("modelplane-{endpoint}")
}

/// A PromQL string literal.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A regular expression matching exactly these values (for `=~`).
fn alternatives(values: &[String]) -> String {
    values
        .iter()
        .map(|v| regex_escape(v))
        .collect::<Vec<_>>()
        .join("|")
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Formats a threshold without a trailing `.0`.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

impl Alert {
    /// The PromQL expression of the rule, for the endpoint `endpoint`.
    pub fn expr(&self, endpoint: &str) -> String {
        let sel = format!("endpoint={}", quote(endpoint));
        // Client-facing figures leave the shadow out: its failures never reach a client.
        let served = format!("{sel},variant!=\"shadow\"");
        match &self.condition {
            Condition::LatencyP99 { ms, window } => format!(
                "histogram_quantile(0.99, sum by (le, model, version, variant) (rate(modelplane_request_duration_seconds_bucket{{{served}}}[{window}]))) * 1000 > {}",
                num(*ms)
            ),
            Condition::ErrorRate { rate, window } => format!(
                "sum by (model, version, variant) (rate(modelplane_requests_total{{{served},status!=\"ok\"}}[{window}])) / sum by (model, version, variant) (rate(modelplane_requests_total{{{served}}}[{window}])) > {}",
                num(*rate)
            ),
            Condition::FeatureDrift { stat, above, features, min_samples } => {
                let f = if features.is_empty() { String::new() } else { format!(",feature=~{}", quote(&alternatives(features))) };
                format!(
                    "{}{{{sel}{f}}} > {} and on (model, version) modelplane_drift_window_rows{{{sel}}} >= {min_samples}",
                    stat.feature_metric(),
                    num(*above)
                )
            }
            Condition::PredictionDrift { stat, above, min_samples } => format!(
                "{}{{{sel}}} > {} and on (model, version) modelplane_drift_window_rows{{{sel}}} >= {min_samples}",
                stat.prediction_metric(),
                num(*above)
            ),
            Condition::Accuracy { below, min_samples } => format!(
                "modelplane_feedback_accuracy{{{sel}}} < {} and on (model, version, variant) modelplane_feedback_window_rows{{{sel}}} >= {min_samples}",
                num(*below)
            ),
            Condition::NoTraffic { duration } => format!(
                "sum by (endpoint) (increase(modelplane_requests_total{{{served}}}[{duration}])) == 0 or absent(modelplane_requests_total{{{served}}})"
            ),
            Condition::Raw { expr } => expr.clone(),
        }
    }

    /// What the alert's threshold is, for the `threshold` annotation.
    fn threshold(&self) -> Option<String> {
        match &self.condition {
            Condition::LatencyP99 { ms, .. } => Some(format!("{} ms", num(*ms))),
            Condition::ErrorRate { rate, .. } => Some(num(*rate)),
            Condition::FeatureDrift { above, .. } | Condition::PredictionDrift { above, .. } => {
                Some(num(*above))
            }
            Condition::Accuracy { below, .. } => Some(num(*below)),
            Condition::NoTraffic { duration } => Some(duration.clone()),
            Condition::Raw { .. } => None,
        }
    }

    fn kind(&self) -> &'static str {
        match &self.condition {
            Condition::LatencyP99 { .. } => "latency",
            Condition::ErrorRate { .. } => "error_rate",
            Condition::FeatureDrift { .. } => "drift",
            Condition::PredictionDrift { .. } => "prediction_drift",
            Condition::Accuracy { .. } => "accuracy",
            Condition::NoTraffic { .. } => "no_traffic",
            Condition::Raw { .. } => "custom",
        }
    }

    fn default_summary(&self, endpoint: &str) -> String {
        match &self.condition {
            Condition::LatencyP99 { ms, .. } => format!("{endpoint}: p99 latency of {{{{ $labels.model }}}} {{{{ $labels.version }}}} ({{{{ $labels.variant }}}}) is {{{{ $value | printf \"%.1f\" }}}} ms, above {} ms", num(*ms)),
            Condition::ErrorRate { rate, .. } => format!("{endpoint}: {{{{ $value | humanizePercentage }}}} of requests to {{{{ $labels.model }}}} {{{{ $labels.version }}}} ({{{{ $labels.variant }}}}) fail, above {}", num(*rate)),
            Condition::FeatureDrift { stat, above, .. } => format!("{endpoint}: feature {{{{ $labels.feature }}}} of {{{{ $labels.model }}}} {{{{ $labels.version }}}} drifted from its training baseline ({} {{{{ $value | printf \"%.3f\" }}}}, above {})", stat.label(), num(*above)),
            Condition::PredictionDrift { stat, above, .. } => format!("{endpoint}: predictions of {{{{ $labels.model }}}} {{{{ $labels.version }}}} drifted from the baseline ({} {{{{ $value | printf \"%.3f\" }}}}, above {})", stat.label(), num(*above)),
            Condition::Accuracy { below, .. } => format!("{endpoint}: accuracy of {{{{ $labels.model }}}} {{{{ $labels.version }}}} ({{{{ $labels.variant }}}}) from feedback is {{{{ $value | printf \"%.3f\" }}}}, below {}", num(*below)),
            Condition::NoTraffic { duration } => format!("{endpoint}: no requests for {duration}"),
            Condition::Raw { .. } => format!("{endpoint}: {}", self.name),
        }
    }

    /// The Prometheus alerting rule.
    pub fn rule(&self, spec: &Spec) -> Value {
        let mut annotations = serde_json::Map::new();
        annotations.insert(
            "summary".into(),
            json!(self
                .summary
                .clone()
                .unwrap_or_else(|| self.default_summary(&spec.endpoint))),
        );
        annotations.insert("value".into(), json!("{{ $value }}"));
        if let Some(t) = self.threshold() {
            annotations.insert("threshold".into(), json!(t));
        }
        json!({
            "alert": self.name,
            "expr": self.expr(&spec.endpoint),
            "for": self.for_,
            "labels": {
                "severity": self.severity,
                "endpoint": spec.endpoint,
                "endpoint_id": spec.endpoint_id,
                "modelplane_alert": self.kind(),
            },
            "annotations": annotations,
        })
    }
}

impl Spec {
    /// The Prometheus rule file: one group holding every alert.
    pub fn rules(&self) -> Value {
        json!({
            "groups": [{
                "name": group_name(&self.endpoint),
                "interval": self.evaluation_interval,
                "rules": self.alerts.iter().map(|a| a.rule(self)).collect::<Vec<_>>(),
            }]
        })
    }

    /// The scrape job for the endpoint's servers, discovered from the `file_sd` targets file
    /// the endpoint keeps up to date (it labels them with `endpoint`).
    pub fn scrape_job(&self, targets_file: &str) -> Value {
        json!({
            "job_name": group_name(&self.endpoint),
            "scrape_interval": self.scrape_interval,
            "metrics_path": "/metrics",
            "file_sd_configs": [{ "files": [targets_file], "refresh_interval": "5s" }],
        })
    }

    /// The Alertmanager configuration: a root route that drops what no receiver wants, and
    /// one child route and receiver per `on_alert`.
    pub fn alertmanager(&self) -> Value {
        let mut routes = Vec::new();
        let mut receivers = vec![json!({ "name": "modelplane-discard" })];
        for (i, r) in self.receivers.iter().enumerate() {
            let name = format!("{}-{i}", group_name(&self.endpoint));
            let mut matchers = vec![format!("endpoint={}", quote(&self.endpoint))];
            if !r.severities.is_empty() {
                matchers.push(format!("severity=~{}", quote(&alternatives(&r.severities))));
            }
            if !r.alerts.is_empty() {
                matchers.push(format!("alertname=~{}", quote(&alternatives(&r.alerts))));
            }
            routes.push(json!({
                "receiver": name,
                "matchers": matchers,
                "group_by": ["alertname", "endpoint", "model", "version", "variant", "feature"],
                "group_wait": r.group_wait,
                "group_interval": r.group_interval,
                "repeat_interval": r.repeat_interval,
                "continue": true,
            }));
            let mut rc = serde_json::Map::new();
            rc.insert("name".into(), json!(name));
            if let Some(url) = &r.webhook {
                rc.insert(
                    "webhook_configs".into(),
                    json!([{ "url": url, "send_resolved": r.send_resolved }]),
                );
            }
            if let Some(s) = &r.slack {
                rc.insert(
                    "slack_configs".into(),
                    json!([{
                        "api_url_file": s.api_url_file,
                        "channel": s.channel,
                        "send_resolved": r.send_resolved,
                        "title": "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} on {{ .CommonLabels.endpoint }}",
                        "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}",
                    }]),
                );
            }
            if let Some(e) = &r.email {
                let mut c = json!({ "to": e.to, "from": e.from, "smarthost": e.smarthost, "send_resolved": r.send_resolved });
                if let Some(u) = &e.auth_username {
                    c["auth_username"] = json!(u);
                }
                if let Some(p) = &e.auth_password_file {
                    c["auth_password_file"] = json!(p);
                }
                rc.insert("email_configs".into(), json!([c]));
            }
            if let Some(p) = &r.pagerduty {
                rc.insert("pagerduty_configs".into(), json!([{ "routing_key_file": p.routing_key_file, "send_resolved": r.send_resolved }]));
            }
            receivers.push(Value::Object(rc));
        }
        json!({
            "route": {
                "receiver": "modelplane-discard",
                "group_by": ["alertname", "endpoint"],
                "routes": routes,
            },
            "receivers": receivers,
        })
    }
}

/// YAML for a rendered artefact (Prometheus and Alertmanager read YAML).
pub fn yaml(v: &Value) -> String {
    serde_yaml_ng::to_string(v).unwrap_or_default()
}

/// Checks a PromQL expression with Prometheus's grammar.
pub fn check_promql(expr: &str) -> Result<(), String> {
    promql_parser::parser::parse(expr)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Checks a Prometheus duration such as `30s`, `5m` or `1h30m` (units `y w d h m s ms`,
/// largest first, each at most once; `0` alone is allowed), as Prometheus parses them.
pub fn check_duration(d: &str) -> Result<(), String> {
    let bad = || format!("{d:?} is not a Prometheus duration (e.g. \"30s\", \"5m\", \"1h30m\")");
    if d == "0" {
        return Ok(());
    }
    const UNITS: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    let mut rest = d;
    let mut next_unit = 0;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let pos = UNITS.iter().position(|u| *u == unit).ok_or_else(bad)?;
        if pos < next_unit {
            return Err(bad());
        }
        next_unit = pos + 1;
        rest = &rest[unit_len..];
    }
    Ok(())
}

/// Alert names become the `alertname` label and Grafana legends: an identifier, so that
/// matchers and templates never need quoting.
pub fn check_alert_name(n: &str) -> Result<(), String> {
    let ok = n
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!("{n:?} is not a valid alert name: use letters, digits and underscores, starting with a letter (e.g. \"drift\", \"LatencyHigh\")"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(alerts: Vec<Alert>) -> Spec {
        Spec {
            endpoint: "iris".into(),
            endpoint_id: "local/dev/iris".into(),
            alerts,
            receivers: vec![Receiver {
                webhook: Some("http://127.0.0.1:9/hook".into()),
                send_resolved: true,
                group_wait: "0s".into(),
                group_interval: "1s".into(),
                repeat_interval: "1h".into(),
                ..Default::default()
            }],
            scrape_interval: "15s".into(),
            evaluation_interval: "15s".into(),
        }
    }

    fn alert(name: &str, condition: Condition) -> Alert {
        Alert {
            name: name.into(),
            condition,
            for_: "5m".into(),
            severity: "warning".into(),
            summary: None,
        }
    }

    fn every_condition() -> Vec<Alert> {
        vec![
            alert(
                "latency",
                Condition::LatencyP99 {
                    ms: 50.0,
                    window: "5m".into(),
                },
            ),
            alert(
                "errors",
                Condition::ErrorRate {
                    rate: 0.01,
                    window: "5m".into(),
                },
            ),
            alert(
                "drift",
                Condition::FeatureDrift {
                    stat: DriftStat::Psi,
                    above: 0.2,
                    features: vec!["petal.length".into(), "sepal_width".into()],
                    min_samples: 50,
                },
            ),
            alert(
                "drift_all",
                Condition::FeatureDrift {
                    stat: DriftStat::Ks,
                    above: 0.3,
                    features: vec![],
                    min_samples: 50,
                },
            ),
            alert(
                "prediction_drift",
                Condition::PredictionDrift {
                    stat: DriftStat::Psi,
                    above: 0.25,
                    min_samples: 10,
                },
            ),
            alert(
                "quality",
                Condition::Accuracy {
                    below: 0.9,
                    min_samples: 20,
                },
            ),
            alert(
                "silent",
                Condition::NoTraffic {
                    duration: "10m".into(),
                },
            ),
            alert(
                "custom",
                Condition::Raw {
                    expr: "up == 0".into(),
                },
            ),
        ]
    }

    #[test]
    fn every_rendered_expression_is_valid_promql() {
        let s = spec(every_condition());
        for a in &s.alerts {
            let e = a.expr(&s.endpoint);
            check_promql(&e).unwrap_or_else(|err| panic!("{}: {e}: {err}", a.name));
            assert!(
                e.contains("endpoint=\"iris\"") || matches!(a.condition, Condition::Raw { .. }),
                "{e}"
            );
        }
    }

    #[test]
    fn thresholds_and_features_reach_the_expression() {
        let s = spec(every_condition());
        let e = s.alerts[2].expr("iris");
        assert!(e.starts_with("modelplane_drift_psi{endpoint=\"iris\",feature=~\"petal\\\\.length|sepal_width\"} > 0.2"), "{e}");
        assert!(s.alerts[3]
            .expr("iris")
            .starts_with("modelplane_drift_ks{endpoint=\"iris\"} > 0.3"));
        assert!(s.alerts[0].expr("iris").ends_with("* 1000 > 50"));
        assert!(s.alerts[5].expr("iris").contains("< 0.9 and on (model, version, variant) modelplane_feedback_window_rows{endpoint=\"iris\"} >= 20"));
    }

    #[test]
    fn rules_carry_labels_and_annotations() {
        let s = spec(every_condition());
        let r = s.rules();
        let rule = &r["groups"][0]["rules"][0];
        assert_eq!(rule["alert"], "latency");
        assert_eq!(rule["for"], "5m");
        assert_eq!(rule["labels"]["severity"], "warning");
        assert_eq!(rule["labels"]["endpoint"], "iris");
        assert_eq!(rule["annotations"]["threshold"], "50 ms");
        assert_eq!(r["groups"][0]["rules"].as_array().unwrap().len(), 8);
        assert!(r["groups"][0]["rules"][7]["annotations"]
            .get("threshold")
            .is_none());
    }

    #[test]
    fn receivers_route_by_endpoint_severity_and_alert() {
        let mut s = spec(vec![]);
        s.receivers[0].severities = vec!["critical".into()];
        s.receivers[0].alerts = vec!["drift".into(), "quality".into()];
        let am = s.alertmanager();
        let m = am["route"]["routes"][0]["matchers"].as_array().unwrap();
        assert_eq!(m[0], "endpoint=\"iris\"");
        assert_eq!(m[1], "severity=~\"critical\"");
        assert_eq!(m[2], "alertname=~\"drift|quality\"");
        assert_eq!(am["route"]["receiver"], "modelplane-discard");
        assert_eq!(
            am["receivers"][1]["webhook_configs"][0]["url"],
            "http://127.0.0.1:9/hook"
        );
        assert_eq!(
            am["receivers"][1]["webhook_configs"][0]["send_resolved"],
            true
        );
    }

    #[test]
    fn durations_names_and_promql_are_checked() {
        assert!(check_duration("1h30m").is_ok());
        assert!(check_duration("0s").is_ok());
        assert!(check_duration("5 minutes").is_err());
        assert!(check_duration("5m1h").is_err(), "largest unit first");
        assert!(check_duration("1.5h").is_err());
        assert!(check_duration("90s").is_ok());
        assert!(check_duration("1d12h").is_ok());
        assert!(check_duration("").is_err());
        assert!(check_promql("rate(x[5m]) > 1").is_ok());
        assert!(check_promql("rate(x[5m] > ").is_err());
        assert!(check_alert_name("LatencyHigh").is_ok());
        assert!(check_alert_name("9lives").is_err());
        assert!(check_alert_name("drift alert").is_err());
    }

    #[test]
    fn yaml_round_trips() {
        let s = spec(every_condition());
        let y = yaml(&s.rules());
        let back: Value = serde_yaml_ng::from_str(&y).unwrap();
        assert_eq!(back, s.rules());
    }
}
