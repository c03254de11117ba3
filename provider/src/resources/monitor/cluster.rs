//! Monitors in a cluster: objects its platform writes next to the endpoint
//! ([`crate::platforms::Platform::apply_monitor`]).

use super::*;

/// On kubernetes, `scrape_config` is a job for a Prometheus without the operator: the
/// endpoint's pods, found through the Kubernetes API.
pub(super) fn kube_scrape_config(m: &mut Model) {
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
pub(super) fn in_cluster(m: &Model) -> bool {
    platform_of(m).is_some_and(|p| p.monitor_host() == MonitorHost::Cluster)
}

/// The platform of the monitor's endpoint (connected lazily, so cheap to ask).
pub(super) fn platform_of(m: &Model) -> Option<Box<dyn Platform>> {
    platform_with(m, &ProviderConfig::default())
}

pub(super) fn platform_with(m: &Model, config: &ProviderConfig) -> Option<Box<dyn Platform>> {
    let id = m.endpoint.known()?.parse::<EndpointId>().ok()?;
    platforms::resolve(&id.cluster, config).ok()
}

impl Monitor {
    pub(super) fn provider(&self) -> ProviderConfig {
        ProviderConfig::of(&self.config)
    }

    pub(super) fn conn(&self) -> stores::Connection {
        self.provider().stores()
    }

    /// Writes the monitor's objects next to its endpoint, through its platform.
    pub(super) async fn apply_kubernetes(
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
        let recorded = match platform
            .apply_monitor(&objects, before, &mut ctx.diags)
            .await
        {
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

    pub(super) async fn read_kubernetes(&self, mut state: Model, ctx: &mut Ctx) -> Model {
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
