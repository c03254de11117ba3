resource "modelplane_monitor" "iris" {
  endpoint = modelplane_endpoint.iris.id

  # Latency and errors of what clients see (the shadow is left out).
  alert {
    name         = "latency"
    p99_ms_above = 50
    for          = "5m"
  }

  alert {
    name             = "errors"
    error_rate_above = 0.01
    for              = "5m"
    severity         = "critical"
  }

  # Inputs drifting away from the training data (needs a baseline on the model).
  alert {
    name      = "drift"
    psi_above = 0.25
    features  = ["petal_length", "petal_width"]
    for       = "15m"
    severity  = "critical"
  }

  # Accuracy from ground truth sent to /v2/models/iris/feedback.
  alert {
    name           = "quality"
    accuracy_below = 0.9
    min_samples    = 50
    for            = "10m"
    severity       = "critical"
  }

  alert {
    name           = "silent"
    no_traffic_for = "30m"
    severity       = "info"
  }

  # Anything PromQL can say.
  alert {
    name = "canary_slower"
    expr = "histogram_quantile(0.9, sum by (le) (rate(modelplane_request_duration_seconds_bucket{endpoint=\"iris\",variant=\"canary\"}[10m]))) > 2 * histogram_quantile(0.9, sum by (le) (rate(modelplane_request_duration_seconds_bucket{endpoint=\"iris\",variant=\"stable\"}[10m])))"
    for  = "10m"
  }

  # The retraining trigger: critical drift or quality alerts go to CI.
  on_alert {
    webhook    = "https://ci.example.com/hooks/retrain"
    alerts     = ["drift", "quality"]
    severities = ["critical"]
  }

  # Everything else goes to the team's channel.
  on_alert {
    slack {
      channel      = "#ml-alerts"
      api_url_file = "/etc/modelplane/slack-webhook-url"
    }
  }
}

# Import the dashboard into Grafana, e.g. with the Grafana provider:
#   resource "grafana_dashboard" "iris" { config_json = modelplane_monitor.iris.grafana_dashboard }
output "prometheus" {
  value = modelplane_monitor.iris.prometheus_url
}

# On Kubernetes: a ServiceMonitor and a PrometheusRule next to the endpoint where the
# prometheus-operator runs (found at apply), else a ConfigMap of rules; routes go into a
# Secret holding alertmanager.yaml.
resource "modelplane_monitor" "iris_k8s" {
  endpoint = modelplane_endpoint.iris_k8s.id

  alert {
    name         = "slow"
    p99_ms_above = 50
  }

  on_alert {
    webhook = "https://retrain.ml.example.com/hooks/iris"
  }
}
