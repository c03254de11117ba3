//! `modelplane_monitor`: alerts on an endpoint's latency, errors, drift, accuracy and
//! traffic, routed through Alertmanager to webhooks (the retrain trigger), Slack, email or
//! PagerDuty, with a Grafana dashboard. The rules, routes and dashboard are rendered by
//! [`crate::monitoring`]; on the `local` platform the monitor either runs Prometheus and
//! Alertmanager itself ([`crate::monitoring::managed`]) or drops its rule and target files
//! into an existing Prometheus and reloads it.

mod cluster;
mod local;
mod schema;
mod spec;
mod validate;

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
use cluster::*;
use schema::*;
use spec::*;

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
pub(super) const CONDITIONS: &[&str] = &[
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

pub(super) const DEFAULT_FOR: &str = "5m";
pub(super) const DEFAULT_WINDOW: &str = "5m";
pub(super) const DEFAULT_SEVERITY: &str = "warning";
pub(super) const DRIFT_MIN_SAMPLES: u64 = 100;
pub(super) const ACCURACY_MIN_SAMPLES: u64 = 30;
pub(super) const DEFAULT_INTERVAL: &str = "15s";

#[tfplugin::async_trait]
impl tfplugin::Resource for Monitor {
    type Model = Model;

    fn type_name(&self) -> &'static str {
        "modelplane_monitor"
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    async fn validate(&self, config: &Config, diags: &mut Diagnostics) {
        validate::validate(config, diags)
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
            check_features(
                &plan.alert,
                &endpoint,
                &models,
                &self.conn(),
                &mut ctx.diags,
            )
            .await;
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
        check_features(
            &plan.alert,
            &spec.endpoint,
            &models,
            &self.conn(),
            &mut ctx.diags,
        )
        .await;
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
