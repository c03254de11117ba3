//! What a monitor means: its alerts as conditions, the models its endpoint serves and their
//! baselines, and the rules, routes and dashboard rendered from them ([`crate::monitoring`]).

use super::*;

impl AlertBlock {
    pub(super) fn condition(&self) -> Option<Condition> {
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
pub(super) fn endpoint_name(id: &str) -> Option<String> {
    id.parse::<EndpointId>().ok().map(|e| e.name)
}

/// The `(store id, model, version)`s the endpoint serves, from its state folder; `None`
/// when there is no such endpoint on this machine.
pub(super) fn served_models(
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
pub(super) async fn baseline_features(
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
pub(super) async fn check_features(
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
    pub(super) fn state_dir(&self) -> std::path::PathBuf {
        self.config.get().cloned().unwrap_or_default().state_dir()
    }

    pub(super) fn dir(&self, endpoint: &str) -> Dir {
        Dir(self.state_dir().join("monitors").join(endpoint))
    }

    /// The monitor's spec, when everything it needs is known.
    pub(super) fn spec(m: &Model) -> Option<Spec> {
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
    pub(super) fn targets_file(&self, m: &Model, spec: &Spec) -> String {
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
    pub(super) fn render(&self, m: &mut Model) {
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
}
