//! The schema of `modelplane_monitor`.

use super::*;

pub(super) fn path(steps: &[PathStep]) -> AttributePath {
    AttributePath(steps.to_vec())
}
pub(super) fn a(s: &str) -> PathStep {
    PathStep::Attr(s.into())
}
pub(super) fn at(block: &str, i: usize, attr: &str) -> AttributePath {
    path(&[a(block), PathStep::Index(i as i64), a(attr)])
}

pub(super) fn schema() -> Schema {
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
