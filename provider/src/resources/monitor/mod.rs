//! `modelplane_monitor`: alerts on an endpoint's latency, errors, drift, accuracy and
//! traffic, routed through Alertmanager to webhooks (the retrain trigger), Slack, email or
//! PagerDuty, with a Grafana dashboard. The rules, routes and dashboard are rendered by
//! [`crate::monitoring`]; on the `local` platform the monitor either runs Prometheus and
//! Alertmanager itself ([`crate::monitoring::managed`]) or drops its rule and target files
//! into an existing Prometheus and reloads it.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use tfplugin::{
    Attr, Attribute, AttributePath, Block, Config, Ctx, Diagnostics, NestedBlock, Nesting,
    PathStep, Schema, Type,
};

use crate::ids::{EndpointId, IdError};
use crate::monitoring::{self, managed, Condition, DriftStat, Receiver, Spec};
use crate::platforms::local::process::Dir;
use crate::platforms::{self, MonitorHost, Platform};
use crate::{stores, ProviderConfig};

pub struct Monitor {
    pub config: Arc<OnceLock<ProviderConfig>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AlertBlock {
    pub name: String,
    pub p99_ms_above: Option<f64>,
    pub error_rate_above: Option<f64>,
    pub psi_above: Option<f64>,
    pub ks_above: Option<f64>,
    pub features: Option<Vec<String>>,
    pub prediction_psi_above: Option<f64>,
    pub prediction_ks_above: Option<f64>,
    pub accuracy_below: Option<f64>,
    pub min_samples: Option<i64>,
    pub no_traffic_for: Option<String>,
    pub expr: Option<String>,
    #[serde(rename = "for")]
    pub for_: Option<String>,
    pub window: Option<String>,
    pub severity: Option<String>,
    pub summary: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SlackBlock {
    pub channel: String,
    pub api_url_file: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EmailBlock {
    pub to: String,
    pub from: String,
    pub smarthost: String,
    pub auth_username: Option<String>,
    pub auth_password_file: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PagerDutyBlock {
    pub routing_key_file: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OnAlert {
    pub webhook: Attr<String>,
    pub severities: Option<Vec<String>>,
    pub alerts: Option<Vec<String>>,
    pub send_resolved: Option<bool>,
    pub group_wait: Option<String>,
    pub group_interval: Option<String>,
    pub repeat_interval: Option<String>,
    pub slack: Option<SlackBlock>,
    pub email: Option<EmailBlock>,
    pub pagerduty: Option<PagerDutyBlock>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ExistingPrometheus {
    pub url: String,
    pub rules_dir: String,
    pub targets_dir: String,
}

impl ExistingPrometheus {
    fn base_url(&self) -> String {
        self.url.trim_end_matches('/').to_string()
    }
    /// The folders the monitor writes into, as `Dir`s (atomic writes).
    fn rules_dir(&self) -> Dir {
        Dir(crate::absolute(&self.rules_dir).into())
    }
    fn targets_dir(&self) -> Dir {
        Dir(crate::absolute(&self.targets_dir).into())
    }
    /// The file names the monitor of `endpoint` uses in them.
    fn rules_name(endpoint: &str) -> String {
        format!("modelplane-{endpoint}.yml")
    }
    fn targets_name(endpoint: &str) -> String {
        format!("modelplane-{endpoint}.json")
    }
    /// Takes the monitor's files out of the folders (Prometheus drops them on its next reload).
    fn remove_files(&self, endpoint: &str) {
        let _ = std::fs::remove_file(self.rules_dir().path(&Self::rules_name(endpoint)));
        let _ = std::fs::remove_file(self.targets_dir().path(&Self::targets_name(endpoint)));
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Model {
    pub id: Attr<String>,
    pub endpoint: Attr<String>,
    pub alert: Vec<AlertBlock>,
    pub on_alert: Vec<OnAlert>,
    pub existing_prometheus: Option<ExistingPrometheus>,
    pub scrape_interval: Option<String>,
    pub evaluation_interval: Option<String>,
    pub prometheus_url: Attr<String>,
    pub alertmanager_url: Attr<String>,
    pub rules: Attr<String>,
    pub scrape_config: Attr<String>,
    pub alertmanager_config: Attr<String>,
    pub grafana_dashboard: Attr<String>,
    pub state_path: Attr<String>,
    pub status: Attr<String>,
    /// Absent from the `monitor.json` of monitors made before Kubernetes.
    #[serde(default)]
    pub objects: Attr<Vec<String>>,
}

/// The conditions of an `alert` block: exactly one is set.
const CONDITIONS: &[&str] = &[
    "p99_ms_above",
    "error_rate_above",
    "psi_above",
    "ks_above",
    "prediction_psi_above",
    "prediction_ks_above",
    "accuracy_below",
    "no_traffic_for",
    "expr",
];

const DEFAULT_FOR: &str = "5m";
const DEFAULT_WINDOW: &str = "5m";
const DEFAULT_SEVERITY: &str = "warning";
const DRIFT_MIN_SAMPLES: u64 = 100;
const ACCURACY_MIN_SAMPLES: u64 = 30;
const DEFAULT_INTERVAL: &str = "15s";

fn path(steps: &[PathStep]) -> AttributePath {
    AttributePath(steps.to_vec())
}
fn a(s: &str) -> PathStep {
    PathStep::Attr(s.into())
}
fn at(block: &str, i: usize, attr: &str) -> AttributePath {
    path(&[a(block), PathStep::Index(i as i64), a(attr)])
}

fn schema() -> Schema {
    let alert = Block::new()
        .description("One alerting rule. Set exactly one condition: `p99_ms_above`, `error_rate_above`, `psi_above`, `ks_above`, `prediction_psi_above`, `prediction_ks_above`, `accuracy_below`, `no_traffic_for` or `expr`.")
        .attribute(Attribute::new("name", Type::String).required().description("The alert's name (`alertname`), unique in the monitor: letters, digits and underscores, e.g. `drift`."))
        .attribute(Attribute::new("p99_ms_above", Type::Number).optional().description("Fires when the 99th percentile latency of a variant, over `window`, is above this many milliseconds."))
        .attribute(Attribute::new("error_rate_above", Type::Number).optional().description("Fires when the share of failed requests of a variant, over `window`, is above this (0–1)."))
        .attribute(Attribute::new("psi_above", Type::Number).optional().description("Fires when the population stability index of an input feature against the model's training baseline is above this (0.1 is a moderate shift, 0.25 a large one). Needs a `baseline` on the `modelplane_model`."))
        .attribute(Attribute::new("ks_above", Type::Number).optional().description("Like `psi_above`, with the Kolmogorov–Smirnov distance (0–1)."))
        .attribute(Attribute::new("features", Type::list(Type::String)).optional().description("With `psi_above` or `ks_above`: only these features (default: every feature of the baseline). Checked against the served models' baselines at plan."))
        .attribute(Attribute::new("prediction_psi_above", Type::Number).optional().description("Fires when the PSI of the model's predictions against the baseline's is above this."))
        .attribute(Attribute::new("prediction_ks_above", Type::Number).optional().description("Like `prediction_psi_above`, with the KS distance (0–1)."))
        .attribute(Attribute::new("accuracy_below", Type::Number).optional().description("Fires when a variant's accuracy from ground-truth feedback (`POST /v2/models/NAME/feedback`) is below this (0–1), over the endpoint's `monitoring.feedback_window`."))
        .attribute(Attribute::new("min_samples", Type::Number).optional().description("With drift and accuracy conditions: rows the server's window must hold before the alert may fire (default 100 for drift, 30 for accuracy)."))
        .attribute(Attribute::new("no_traffic_for", Type::String).optional().description("Fires when the endpoint served no request for this long, e.g. `10m`."))
        .attribute(Attribute::new("expr", Type::String).optional().description("A PromQL expression of your own; it fires for every series it returns. Checked with Prometheus's grammar at plan."))
        .attribute(Attribute::new("for", Type::String).optional().description("How long the condition must hold before the alert fires, e.g. `15m` (default `5m`; `0s` fires at once)."))
        .attribute(Attribute::new("window", Type::String).optional().description("With `p99_ms_above` and `error_rate_above`: the rate window, e.g. `5m` (default `5m`)."))
        .attribute(Attribute::new("severity", Type::String).optional().description("The `severity` label: `critical`, `warning` (default) or `info`; receivers can pick by it."))
        .attribute(Attribute::new("summary", Type::String).optional().description("The `summary` annotation (Prometheus template syntax); a sentence naming model, version and value by default."));
    let on_alert = Block::new()
        .description("Where alerts go: one Alertmanager route and receiver. Give at least one of `webhook`, `slack`, `email`, `pagerduty`.")
        .attribute(Attribute::new("webhook", Type::String).optional().description("URL that receives Alertmanager's webhook payload (the retrain trigger): JSON with `status` and `alerts[]`, each with `labels` (`alertname`, `endpoint`, `model`, `version`, `variant` or `feature` where they apply, `severity`) and `annotations` (`summary`, `value`, `threshold`). `examples/monitoring` has the full field list and a receiver that starts retraining jobs."))
        .attribute(Attribute::new("severities", Type::list(Type::String)).optional().description("Only alerts with these `severity` labels (default: all)."))
        .attribute(Attribute::new("alerts", Type::list(Type::String)).optional().description("Only these alerts, by `name` (default: all)."))
        .attribute(Attribute::new("send_resolved", Type::Bool).optional().description("Also notify when an alert resolves (default true)."))
        .attribute(Attribute::new("group_wait", Type::String).optional().description("Wait before the first notification of a new group (default `30s`)."))
        .attribute(Attribute::new("group_interval", Type::String).optional().description("Wait before notifying about changes in a group (default `5m`)."))
        .attribute(Attribute::new("repeat_interval", Type::String).optional().description("Wait before repeating a notification that still holds (default `4h`)."))
        .block(NestedBlock::new(
            "slack",
            Nesting::Single,
            Block::new()
                .description("A Slack channel, through an incoming webhook.")
                .attribute(Attribute::new("channel", Type::String).required().description("Channel, e.g. `#ml-alerts`."))
                .attribute(Attribute::new("api_url_file", Type::String).required().description("File holding the incoming-webhook URL (a secret: only its path is in state and configuration).")),
        ))
        .block(NestedBlock::new(
            "email",
            Nesting::Single,
            Block::new()
                .description("Email through an SMTP server.")
                .attribute(Attribute::new("to", Type::String).required().description("Recipient address."))
                .attribute(Attribute::new("from", Type::String).required().description("Sender address."))
                .attribute(Attribute::new("smarthost", Type::String).required().description("SMTP server, `HOST:PORT`."))
                .attribute(Attribute::new("auth_username", Type::String).optional().description("SMTP user name."))
                .attribute(Attribute::new("auth_password_file", Type::String).optional().description("File holding the SMTP password.")),
        ))
        .block(NestedBlock::new(
            "pagerduty",
            Nesting::Single,
            Block::new()
                .description("A PagerDuty service (Events API v2).")
                .attribute(Attribute::new("routing_key_file", Type::String).required().description("File holding the integration's routing key.")),
        ));
    Schema::new(
        Block::new()
            .description(
                "Monitoring of a `modelplane_endpoint`: typed alerts on latency, errors, input and prediction drift against \
                 the training baseline, accuracy from ground-truth feedback and missing traffic, plus raw PromQL; routed \
                 through Alertmanager to webhooks (a retraining trigger), Slack, email or PagerDuty; with a Grafana \
                 dashboard.\n\n\
                 On a `local` cluster the monitor runs its own Prometheus and Alertmanager (binaries from `PATH`; Debian \
                 packages `prometheus` and `prometheus-alertmanager`) as detached processes on loopback ports, or, with an \
                 `existing_prometheus` block, writes a rule file and a `file_sd` targets file into that Prometheus's folders \
                 and reloads it.\n\n\
                 * **Plan** checks every threshold, duration and PromQL expression, and the `features` of drift alerts \
                 against the baselines of the models the endpoint serves.\n\
                 * **Update** rewrites the files and reloads Prometheus and Alertmanager (`POST /-/reload`); the time series \
                 are kept. A stopped Prometheus or Alertmanager is started again.\n\
                 * **Refresh** reports `status = \"stopped\"` when a managed process died, and plans to start it.\n\
                 * The rendered rules, scrape job, Alertmanager configuration and dashboard are attributes too, for a \
                 Prometheus, Alertmanager or Grafana managed elsewhere.\n\n\
                 The webhook payload is Alertmanager's (version 4); `examples/monitoring/README.md` lists its fields \
                 and shows a receiver that starts one retraining job per alert.\n\n\
                 Import with the endpoint's id: `terraform import modelplane_monitor.NAME local/CLUSTER/ENDPOINT`.",
            )
            .attribute(Attribute::new("id", Type::String).computed().stable().description("The endpoint's id: one monitor per endpoint."))
            .attribute(Attribute::new("endpoint", Type::String).required().requires_replace().description("The `id` of the `modelplane_endpoint` to watch."))
            .attribute(Attribute::new("scrape_interval", Type::String).optional().description("How often the endpoint's metrics are scraped (default `15s`)."))
            .attribute(Attribute::new("evaluation_interval", Type::String).optional().description("How often the alerting rules are evaluated (default `15s`)."))
            .attribute(Attribute::new("prometheus_url", Type::String).computed().stable().description("URL of the Prometheus that evaluates the rules (managed, or `existing_prometheus.url`)."))
            .attribute(Attribute::new("alertmanager_url", Type::String).computed().stable().description("URL of the managed Alertmanager; null with `existing_prometheus`."))
            .attribute(Attribute::new("rules", Type::String).computed().description("The Prometheus rule file (YAML); `promtool check rules` accepts it."))
            .attribute(Attribute::new("scrape_config", Type::String).computed().description("The scrape job (YAML, one `scrape_configs` entry) that discovers the endpoint's servers from the targets file."))
            .attribute(Attribute::new("alertmanager_config", Type::String).computed().description("The Alertmanager configuration (YAML); `amtool check-config` accepts it. Secrets are referenced by file, never included."))
            .attribute(Attribute::new("grafana_dashboard", Type::String).computed().description("A Grafana dashboard (JSON): latency, throughput, errors, batch size, drift per feature, accuracy per variant. Its data source is the `datasource` variable."))
            .attribute(Attribute::new("state_path", Type::String).computed().stable().description("The monitor's state folder (configuration, logs, data of the managed processes)."))
            .attribute(Attribute::new("status", Type::String).computed().description("`running`, or `stopped` when refresh found a managed process dead (the plan then starts it again); on `kubernetes`, `drifted` when an object it wrote is gone."))
            .attribute(Attribute::new("objects", Type::list(Type::String)).computed().description("On `kubernetes`: the objects written next to the endpoint (ServiceMonitor and PrometheusRule when the prometheus-operator's CRDs exist, else a ConfigMap of rules; a Secret with `alertmanager.yaml` when `on_alert` routes alerts); null elsewhere."))
            .block(NestedBlock::new("alert", Nesting::List, alert).min_items(1))
            .block(NestedBlock::new("on_alert", Nesting::List, on_alert))
            .block(NestedBlock::new(
                "existing_prometheus",
                Nesting::Single,
                Block::new()
                    .description("Use this Prometheus instead of running one. It must read rule files from `rules_dir` (`rule_files: [\"RULES_DIR/*.yml\"]`), discover targets from `targets_dir` (the `scrape_config` attribute shows the job) and run with `--web.enable-lifecycle`. Notifications follow its own Alertmanager configuration; the `alertmanager_config` attribute shows the routes to add.")
                    .attribute(Attribute::new("url", Type::String).required().description("Base URL, e.g. `http://prometheus:9090`."))
                    .attribute(Attribute::new("rules_dir", Type::String).required().description("Folder Prometheus reads rule files from; the monitor writes `modelplane-ENDPOINT.yml` there."))
                    .attribute(Attribute::new("targets_dir", Type::String).required().description("Folder of `file_sd` targets; the monitor writes `modelplane-ENDPOINT.json` there.")),
            )),
    )
}

/// Reads an alert's number and reports it with the attribute's path when `ok` refuses it.
fn check_range(
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

fn check_duration_at(
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

impl AlertBlock {
    fn condition(&self) -> Option<Condition> {
        let window = || self.window.clone().unwrap_or_else(|| DEFAULT_WINDOW.into());
        let samples = |d: u64| self.min_samples.map_or(d, |v| v.max(0) as u64);
        let features = || self.features.clone().unwrap_or_default();
        Some(if let Some(ms) = self.p99_ms_above {
            Condition::LatencyP99 {
                ms,
                window: window(),
            }
        } else if let Some(rate) = self.error_rate_above {
            Condition::ErrorRate {
                rate,
                window: window(),
            }
        } else if let Some(above) = self.psi_above {
            Condition::FeatureDrift {
                stat: DriftStat::Psi,
                above,
                features: features(),
                min_samples: samples(DRIFT_MIN_SAMPLES),
            }
        } else if let Some(above) = self.ks_above {
            Condition::FeatureDrift {
                stat: DriftStat::Ks,
                above,
                features: features(),
                min_samples: samples(DRIFT_MIN_SAMPLES),
            }
        } else if let Some(above) = self.prediction_psi_above {
            Condition::PredictionDrift {
                stat: DriftStat::Psi,
                above,
                min_samples: samples(DRIFT_MIN_SAMPLES),
            }
        } else if let Some(above) = self.prediction_ks_above {
            Condition::PredictionDrift {
                stat: DriftStat::Ks,
                above,
                min_samples: samples(DRIFT_MIN_SAMPLES),
            }
        } else if let Some(below) = self.accuracy_below {
            Condition::Accuracy {
                below,
                min_samples: samples(ACCURACY_MIN_SAMPLES),
            }
        } else if let Some(d) = &self.no_traffic_for {
            Condition::NoTraffic {
                duration: d.clone(),
            }
        } else {
            Condition::Raw {
                expr: self.expr.clone()?,
            }
        })
    }
}

/// The endpoint's name from its id (`PLATFORM/CLUSTER/NAME`).
fn endpoint_name(id: &str) -> Option<String> {
    id.parse::<EndpointId>().ok().map(|e| e.name)
}

/// The `(store id, model, version)`s the endpoint serves, from its state folder; `None`
/// when there is no such endpoint on this machine.
fn served_models(
    state_dir: &std::path::Path,
    endpoint: &str,
) -> Option<Vec<(String, String, String)>> {
    let cfg: modelplane_serve::config::ServeConfig =
        Dir::new(state_dir, endpoint).read_json("config.json")?;
    let store = stores::id_of_repository(&cfg.repository);
    Some(
        cfg.models
            .iter()
            .map(|m| {
                (
                    store.clone(),
                    m.name.clone(),
                    m.version.clone().unwrap_or_default(),
                )
            })
            .collect(),
    )
}

/// Feature names of the baselines of the served models (`None` when no model has one).
async fn baseline_features(
    models: &[(String, String, String)],
    conn: &stores::Connection,
) -> Option<BTreeSet<String>> {
    let mut out: Option<BTreeSet<String>> = None;
    for (store, name, version) in models {
        let Ok(st) = stores::open(store, conn) else {
            continue;
        };
        let Ok(Some(bytes)) = st.get(name, version, "baseline.json").await else {
            continue;
        };
        let Ok(b) = serde_json::from_slice::<modelplane_serve::drift::Baseline>(&bytes) else {
            continue;
        };
        out.get_or_insert_with(BTreeSet::new)
            .extend(b.features.into_iter().map(|f| f.name));
    }
    out
}

/// Reports drift `features` missing from the baselines of the served `models` (errors), and
/// drift alerts that cannot fire because no served model has a baseline (warnings).
async fn check_features(
    alerts: &[AlertBlock],
    endpoint: &str,
    models: &[(String, String, String)],
    conn: &stores::Connection,
    diags: &mut Diagnostics,
) {
    let known = baseline_features(models, conn).await;
    for (i, b) in alerts.iter().enumerate() {
        let drift = b.psi_above.is_some()
            || b.ks_above.is_some()
            || b.prediction_psi_above.is_some()
            || b.prediction_ks_above.is_some();
        match &known {
            None if drift => diags.warning_at(
                at("alert", i, "name"),
                "No baseline to drift from",
                format!("alert {:?} watches drift, but no model that {endpoint} serves has a baseline, so it cannot fire. Give the modelplane_model a baseline block.", b.name),
            ),
            Some(k) => {
                for f in b.features.iter().flatten().filter(|f| !k.contains(*f)) {
                    diags.error_at(
                        at("alert", i, "features"),
                        "Unknown feature",
                        format!(
                            "alert {:?}: feature {f:?} is not in the baselines of the models {endpoint} serves (features: {}).",
                            b.name,
                            k.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
            }
            None => {}
        }
    }
}

impl Monitor {
    fn state_dir(&self) -> std::path::PathBuf {
        self.config.get().cloned().unwrap_or_default().state_dir()
    }

    fn dir(&self, endpoint: &str) -> Dir {
        Dir(self.state_dir().join("monitors").join(endpoint))
    }

    /// The monitor's spec, when everything it needs is known.
    fn spec(m: &Model) -> Option<Spec> {
        let endpoint_id = m.endpoint.known()?.clone();
        let endpoint = endpoint_name(&endpoint_id)?;
        let alerts = m
            .alert
            .iter()
            .map(|b| {
                Some(monitoring::Alert {
                    name: b.name.clone(),
                    condition: b.condition()?,
                    for_: b.for_.clone().unwrap_or_else(|| DEFAULT_FOR.into()),
                    severity: b
                        .severity
                        .clone()
                        .unwrap_or_else(|| DEFAULT_SEVERITY.into()),
                    summary: b.summary.clone(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let receivers = m
            .on_alert
            .iter()
            .map(|o| {
                Some(Receiver {
                    severities: o.severities.clone().unwrap_or_default(),
                    alerts: o.alerts.clone().unwrap_or_default(),
                    webhook: match &o.webhook {
                        Attr::Known(w) => Some(w.clone()),
                        Attr::Null => None,
                        Attr::Unknown => return None,
                    },
                    slack: o.slack.as_ref().map(|s| monitoring::Slack {
                        channel: s.channel.clone(),
                        api_url_file: crate::absolute(&s.api_url_file),
                    }),
                    email: o.email.as_ref().map(|e| monitoring::Email {
                        to: e.to.clone(),
                        from: e.from.clone(),
                        smarthost: e.smarthost.clone(),
                        auth_username: e.auth_username.clone(),
                        auth_password_file: e.auth_password_file.as_deref().map(crate::absolute),
                    }),
                    pagerduty: o.pagerduty.as_ref().map(|p| monitoring::PagerDuty {
                        routing_key_file: crate::absolute(&p.routing_key_file),
                    }),
                    send_resolved: o.send_resolved.unwrap_or(true),
                    group_wait: o.group_wait.clone().unwrap_or_else(|| "30s".into()),
                    group_interval: o.group_interval.clone().unwrap_or_else(|| "5m".into()),
                    repeat_interval: o.repeat_interval.clone().unwrap_or_else(|| "4h".into()),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Spec {
            endpoint,
            endpoint_id,
            alerts,
            receivers,
            scrape_interval: m
                .scrape_interval
                .clone()
                .unwrap_or_else(|| DEFAULT_INTERVAL.into()),
            evaluation_interval: m
                .evaluation_interval
                .clone()
                .unwrap_or_else(|| DEFAULT_INTERVAL.into()),
        })
    }

    /// The `file_sd` file the scrape job reads: the endpoint's own `targets.json`, or a link
    /// to it in an existing Prometheus's `targets_dir`.
    fn targets_file(&self, m: &Model, spec: &Spec) -> String {
        match &m.existing_prometheus {
            Some(e) => e
                .targets_dir()
                .path(&ExistingPrometheus::targets_name(&spec.endpoint))
                .display()
                .to_string(),
            None => Dir::new(&self.state_dir(), &spec.endpoint)
                .path("targets.json")
                .display()
                .to_string(),
        }
    }

    /// Fills in the rendered attributes.
    fn render(&self, m: &mut Model) {
        let Some(spec) = Self::spec(m) else {
            for f in [
                &mut m.rules,
                &mut m.scrape_config,
                &mut m.alertmanager_config,
                &mut m.grafana_dashboard,
            ] {
                *f = Attr::Unknown;
            }
            return;
        };
        m.rules = Attr::Known(monitoring::yaml(&spec.rules()));
        m.scrape_config = Attr::Known(monitoring::yaml(
            &spec.scrape_job(&self.targets_file(m, &spec)),
        ));
        m.alertmanager_config = Attr::Known(monitoring::yaml(&spec.alertmanager()));
        m.grafana_dashboard = Attr::Known(
            serde_json::to_string_pretty(&monitoring::dashboard::render(&spec)).unwrap_or_default(),
        );
    }

    /// Writes the files and starts or reloads what evaluates them; a managed monitor keeps
    /// `prior_ports`, or gets free ones.
    async fn apply(
        &self,
        plan: &mut Model,
        prior_ports: Option<managed::Ports>,
    ) -> Result<(), String> {
        let spec = Self::spec(plan).ok_or("the monitor's configuration is not fully known")?;
        let dir = self.dir(&spec.endpoint);
        dir.create()
            .map_err(|e| format!("cannot create {}: {e}", dir.0.display()))?;
        // The endpoint keeps its targets file current; one written before it did is made now.
        let endpoint_dir = Dir::new(&self.state_dir(), &spec.endpoint);
        if !endpoint_dir.path("targets.json").is_file() {
            if let Some(cfg) = endpoint_dir.read_json("config.json") {
                crate::platforms::local::process::write_targets(&endpoint_dir, &cfg)
                    .map_err(|e| format!("cannot write the endpoint's targets file: {e}"))?;
            }
        }
        match &plan.existing_prometheus {
            Some(e) => {
                let (rules_dir, targets_dir) = (e.rules_dir(), e.targets_dir());
                for (d, f) in [(&rules_dir, "rules_dir"), (&targets_dir, "targets_dir")] {
                    if !d.exists() {
                        return Err(format!(
                            "existing_prometheus.{f} {} is not a folder",
                            d.0.display()
                        ));
                    }
                }
                let rules_name = ExistingPrometheus::rules_name(&spec.endpoint);
                let targets_file =
                    targets_dir.path(&ExistingPrometheus::targets_name(&spec.endpoint));
                let write_rules = |content: &[u8]| {
                    rules_dir.write(&rules_name, content).map_err(|err| {
                        format!(
                            "cannot write {}: {err}",
                            rules_dir.path(&rules_name).display()
                        )
                    })
                };
                let old_rules = std::fs::read(rules_dir.path(&rules_name)).ok();
                write_rules(monitoring::yaml(&spec.rules()).as_bytes())?;
                // A link to the endpoint's own file, which follows the endpoint when it moves.
                let had_link = targets_file.symlink_metadata().is_ok();
                let _ = std::fs::remove_file(&targets_file);
                std::os::unix::fs::symlink(endpoint_dir.path("targets.json"), &targets_file)
                    .map_err(|err| format!("cannot link {}: {err}", targets_file.display()))?;
                if let Err(err) = managed::reload(&e.base_url()).await {
                    // Leave the Prometheus as it was.
                    match old_rules {
                        Some(old) => {
                            let _ = write_rules(&old);
                        }
                        None => {
                            let _ = std::fs::remove_file(rules_dir.path(&rules_name));
                        }
                    }
                    if !had_link {
                        let _ = std::fs::remove_file(&targets_file);
                    }
                    return Err(err);
                }
                plan.prometheus_url = Attr::Known(e.base_url());
                plan.alertmanager_url = Attr::Null;
                dir.write_json("monitor.json", &*plan)
                    .map_err(|e| e.to_string())?;
            }
            None => {
                let ports = match prior_ports {
                    Some(p) => p,
                    None => managed::Ports::free().map_err(|e| format!("no free port: {e}"))?,
                };
                managed::write_files(&dir, &spec, &endpoint_dir.path("targets.json"), ports)
                    .map_err(|e| {
                        format!(
                            "cannot write the monitor's files in {}: {e}",
                            dir.0.display()
                        )
                    })?;
                dir.write_json("ports.json", &ports)
                    .map_err(|e| e.to_string())?;
                let (p, a) = managed::processes(&dir);
                if a.is_some() {
                    managed::reload(&ports.alertmanager_url())
                        .await
                        .map_err(|e| format!("Alertmanager refused the new configuration: {e}"))?;
                }
                if p.is_some() {
                    managed::reload(&ports.prometheus_url())
                        .await
                        .map_err(|e| format!("Prometheus refused the new configuration: {e}"))?;
                }
                managed::ensure_running(&dir, &spec, ports).await?;
                plan.prometheus_url = Attr::Known(ports.prometheus_url());
                plan.alertmanager_url = Attr::Known(ports.alertmanager_url());
                dir.write_json("monitor.json", &*plan)
                    .map_err(|e| e.to_string())?;
            }
        }
        plan.status = Attr::Known("running".into());
        plan.state_path = Attr::Known(dir.0.display().to_string());
        self.render(plan);
        Ok(())
    }
}

#[tfplugin::async_trait]
impl tfplugin::Resource for Monitor {
    type Model = Model;

    fn type_name(&self) -> &'static str {
        "modelplane_monitor"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(&self, config: &Config, diags: &mut Diagnostics) {
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
                        format!(
                            "url {u:?} is not an http(s) URL, e.g. \"http://prometheus:9090\"."
                        ),
                    );
                }
            }
        }
    }

    async fn modify_plan(
        &self,
        prior: Option<&Model>,
        plan: &mut Model,
        _config: &Config,
        ctx: &mut Ctx,
    ) {
        plan.id = plan.endpoint.clone();
        if in_cluster(plan) {
            self.render(plan);
            kube_scrape_config(plan);
            plan.status = Attr::Known("running".into());
            plan.prometheus_url = Attr::Null;
            plan.alertmanager_url = Attr::Null;
            plan.state_path = Attr::Null;
            if prior.is_none_or(|p| {
                p.alert != plan.alert
                    || p.on_alert != plan.on_alert
                    || p.scrape_interval != plan.scrape_interval
                    || p.status != plan.status
            }) {
                plan.objects = Attr::Unknown;
            }
            return;
        }
        plan.objects = Attr::Null;
        let Some(endpoint) = plan.endpoint.known().and_then(|e| endpoint_name(e)) else {
            self.render(plan);
            return;
        };
        plan.state_path = Attr::Known(self.dir(&endpoint).0.display().to_string());
        // Drift features must exist in the baselines of what the endpoint serves. An endpoint
        // created in the same apply is checked at apply.
        if let Some(models) = served_models(&self.state_dir(), &endpoint) {
            check_features(&plan.alert, &endpoint, &models, &self.conn(), &mut ctx.diags).await;
        }
        if plan.existing_prometheus.is_none() {
            if let Err(e) = managed::binaries() {
                ctx.diags
                    .error("Prometheus or Alertmanager not installed", e);
            }
        }
        self.render(plan);
        match prior {
            None => {
                plan.status = Attr::Known("running".into());
                if let Some(e) = &plan.existing_prometheus {
                    plan.prometheus_url = Attr::Known(e.base_url());
                    plan.alertmanager_url = Attr::Null;
                } else {
                    plan.prometheus_url = Attr::Unknown;
                    plan.alertmanager_url = Attr::Unknown;
                }
            }
            Some(prior) => {
                plan.status = Attr::Known("running".into());
                let same_mode =
                    prior.existing_prometheus.is_some() == plan.existing_prometheus.is_some();
                match &plan.existing_prometheus {
                    Some(e) => {
                        plan.prometheus_url = Attr::Known(e.base_url());
                        plan.alertmanager_url = Attr::Null;
                    }
                    None if same_mode => {
                        plan.prometheus_url = prior.prometheus_url.clone();
                        plan.alertmanager_url = prior.alertmanager_url.clone();
                    }
                    None => {
                        plan.prometheus_url = Attr::Unknown;
                        plan.alertmanager_url = Attr::Unknown;
                    }
                }
            }
        }
    }

    async fn create(&self, mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
        if in_cluster(&plan) {
            return self.apply_kubernetes(&[], plan, ctx).await;
        }
        let spec = Self::spec(&plan)?;
        let dir = self.dir(&spec.endpoint);
        if dir.read_json::<serde_json::Value>("monitor.json").is_some()
            && (managed::processes(&dir) != (None, None))
        {
            ctx.diags.error_at(
                AttributePath::attr("endpoint"),
                "Monitor already exists",
                format!("the endpoint {} already has a monitor (state in {}). Import it: terraform import ADDRESS {}", spec.endpoint, dir.0.display(), spec.endpoint_id),
            );
            return None;
        }
        let Some(models) = served_models(&self.state_dir(), &spec.endpoint) else {
            ctx.diags.error_at(
                AttributePath::attr("endpoint"),
                "Unknown endpoint",
                format!(
                    "no endpoint {:?} runs on this machine; create the modelplane_endpoint first.",
                    spec.endpoint
                ),
            );
            return None;
        };
        // An endpoint created in the same apply has its features checked now.
        check_features(&plan.alert, &spec.endpoint, &models, &self.conn(), &mut ctx.diags).await;
        if ctx.diags.has_errors() {
            return None;
        }
        if let Err(e) = self.apply(&mut plan, None).await {
            // Nothing is left behind: no process, no folder, no file in another Prometheus.
            managed::stop(&dir).await;
            if let Some(ex) = &plan.existing_prometheus {
                ex.remove_files(&spec.endpoint);
            }
            let _ = dir.remove();
            ctx.diags.error("The monitor did not start", e);
            return None;
        }
        Some(plan)
    }

    async fn read(&self, mut state: Model, ctx: &mut Ctx) -> Option<Model> {
        if in_cluster(&state) {
            return Some(self.read_kubernetes(state, ctx).await);
        }
        let spec = Self::spec(&state)?;
        let dir = self.dir(&spec.endpoint);
        dir.read_json::<serde_json::Value>("monitor.json")?;
        match &state.existing_prometheus {
            None => {
                let (p, a) = managed::processes(&dir);
                state.status = Attr::Known(
                    if p.is_some() && a.is_some() {
                        "running"
                    } else {
                        "stopped"
                    }
                    .into(),
                );
                let rules = std::fs::read_to_string(dir.path("rules.yml")).unwrap_or_default();
                state.rules = Attr::Known(rules);
            }
            Some(e) => {
                let file = e
                    .rules_dir()
                    .path(&ExistingPrometheus::rules_name(&spec.endpoint));
                match std::fs::read_to_string(&file) {
                    Ok(r) => state.rules = Attr::Known(r),
                    Err(_) => {
                        ctx.diags.warning(
                            "Rule file missing",
                            format!("{} is gone; the plan writes it again.", file.display()),
                        );
                        state.rules = Attr::Known(String::new());
                    }
                }
                state.status = Attr::Known("running".into());
            }
        }
        Some(state)
    }

    async fn update(&self, prior: Model, mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
        if in_cluster(&plan) {
            let before = prior.objects.known().cloned().unwrap_or_default();
            return self.apply_kubernetes(&before, plan, ctx).await;
        }
        let Some(spec) = Self::spec(&plan) else {
            return Some(prior);
        };
        let dir = self.dir(&spec.endpoint);
        let switched = prior.existing_prometheus.is_some() != plan.existing_prometheus.is_some();
        if switched {
            // From managed to an existing Prometheus or back: the old side goes.
            self.teardown(&prior, ctx).await;
        } else if let (Some(old), Some(new)) =
            (&prior.existing_prometheus, &plan.existing_prometheus)
        {
            if old.rules_dir != new.rules_dir || old.targets_dir != new.targets_dir {
                old.remove_files(&spec.endpoint);
            }
        }
        let ports = if plan.existing_prometheus.is_none() && !switched {
            dir.read_json::<managed::Ports>("ports.json")
        } else {
            None
        };
        if let Err(e) = self.apply(&mut plan, ports).await {
            ctx.diags.error(
                "The monitor change failed",
                format!("{e}\nRun terraform apply again after fixing the cause."),
            );
            return Some(prior);
        }
        Some(plan)
    }

    async fn delete(&self, state: Model, ctx: &mut Ctx) {
        if in_cluster(&state) {
            if let Some(p) = platform_with(&state, &self.provider()) {
                if let Err(e) = p.remove_objects(state.objects.known()).await {
                    e.report("Cannot delete the monitor", &mut ctx.diags);
                }
            }
            return;
        }
        self.teardown(&state, ctx).await;
        if let Some(endpoint) = state.endpoint.known().and_then(|e| endpoint_name(e)) {
            if let Err(e) = self.dir(&endpoint).remove() {
                ctx.diags
                    .error("Cannot remove the monitor's state folder", e.to_string());
            }
        }
    }

    async fn import(&self, id: &str, ctx: &mut Ctx) -> Option<Model> {
        let Some(endpoint) = endpoint_name(id) else {
            ctx.diags.error(
                "Invalid import ID",
                format!(
                    "{id:?} is not an endpoint id (PLATFORM/CLUSTER/NAME, e.g. local/dev/iris)."
                ),
            );
            return None;
        };
        let dir = self.dir(&endpoint);
        let Some(m) = dir.read_json::<Model>("monitor.json") else {
            ctx.diags.error(
                "Cannot import the monitor",
                format!(
                    "no monitor of endpoint {endpoint:?} on this machine (looked in {}).",
                    dir.0.display()
                ),
            );
            return None;
        };
        Some(m)
    }
}

impl Monitor {
    /// Stops the managed processes, or takes the files out of an existing Prometheus.
    async fn teardown(&self, m: &Model, ctx: &mut Ctx) {
        let Some(endpoint) = m.endpoint.known().and_then(|e| endpoint_name(e)) else {
            return;
        };
        let dir = self.dir(&endpoint);
        match &m.existing_prometheus {
            None => managed::stop(&dir).await,
            Some(e) => {
                e.remove_files(&endpoint);
                if let Err(err) = managed::reload(&e.base_url()).await {
                    ctx.diags.warning("Prometheus not reloaded", format!("the monitor's files were removed, but {err}; Prometheus keeps the rules until its next reload."));
                }
            }
        }
    }
}

/// On kubernetes, `scrape_config` is a job for a Prometheus without the operator: the
/// endpoint's pods, found through the Kubernetes API.
fn kube_scrape_config(m: &mut Model) {
    let Some(spec) = Monitor::spec(m) else {
        return;
    };
    let instance = crate::platforms::kubernetes::dns_label(&spec.endpoint);
    let job = serde_json::json!({
        "job_name": format!("modelplane-{instance}"),
        "scrape_interval": spec.scrape_interval,
        "kubernetes_sd_configs": [{ "role": "pod" }],
        "relabel_configs": [
            { "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_instance"], "regex": instance, "action": "keep" },
            { "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], "regex": "true", "action": "keep" },
            { "source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": "http", "action": "keep" },
        ],
    });
    m.scrape_config = Attr::Known(monitoring::yaml(&job));
}

/// Whether the monitor's endpoint is on a platform whose monitors run in the cluster.
fn in_cluster(m: &Model) -> bool {
    platform_of(m).is_some_and(|p| p.monitor_host() == MonitorHost::Cluster)
}

/// The platform of the monitor's endpoint (connected lazily, so cheap to ask).
fn platform_of(m: &Model) -> Option<Box<dyn Platform>> {
    platform_with(m, &ProviderConfig::default())
}

fn platform_with(m: &Model, config: &ProviderConfig) -> Option<Box<dyn Platform>> {
    let id = m.endpoint.known()?.parse::<EndpointId>().ok()?;
    platforms::resolve(&id.cluster, config).ok()
}

impl Monitor {
    fn provider(&self) -> ProviderConfig {
        ProviderConfig::of(&self.config)
    }

    fn conn(&self) -> stores::Connection {
        self.provider().stores()
    }

    /// Writes the monitor's objects next to its endpoint, through its platform.
    async fn apply_kubernetes(
        &self,
        before: &[String],
        mut plan: Model,
        ctx: &mut Ctx,
    ) -> Option<Model> {
        let spec = Self::spec(&plan)?;
        let platform = platform_with(&plan, &self.provider())?;
        let objects = platforms::MonitorObjects {
            endpoint: spec.endpoint.clone(),
            rules: spec.rules(),
            alertmanager: (!spec.receivers.is_empty())
                .then(|| monitoring::yaml(&spec.alertmanager())),
            scrape_interval: spec.scrape_interval.clone(),
        };
        let recorded = match platform.apply_monitor(&objects, before, &mut ctx.diags).await {
            Ok(r) => r,
            Err((e, r)) => {
                e.report("Cannot write the monitor", &mut ctx.diags);
                if r.is_empty() {
                    return None;
                }
                r
            }
        };
        self.render(&mut plan);
        kube_scrape_config(&mut plan);
        plan.objects = Attr::Known(recorded);
        plan.status = Attr::Known("running".into());
        Some(plan)
    }

    async fn read_kubernetes(&self, mut state: Model, ctx: &mut Ctx) -> Model {
        let Some(platform) = platform_with(&state, &self.provider()) else {
            return state;
        };
        let recorded = state.objects.known().cloned().unwrap_or_default();
        match platform.monitor_intact(&recorded).await {
            Ok(true) => {}
            Ok(false) => state.status = Attr::Known("drifted".into()),
            Err(e @ platforms::PlatformError::Unreachable(_)) => ctx.diags.warning(
                "Cannot reach the cluster",
                format!("{e}. The state is kept as it was."),
            ),
            Err(e) => ctx.diags.warning("Cannot read the monitor", e.to_string()),
        }
        state
    }
}
