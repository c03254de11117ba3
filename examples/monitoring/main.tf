# Monitoring and continuous training on this machine: an iris classifier served with a drift
# baseline, a monitor that watches latency, errors, drift and accuracy, and a retraining
# trigger: drift or quality alerts reach `retrain_receiver.py` (or your CI) as a webhook.
#
#   python3 retrain_receiver.py &        # the trigger, on 127.0.0.1:9095
#   terraform init && terraform apply    # needs prometheus and alertmanager on PATH

provider "modelplane" {
  local {
    state_dir = var.state_dir
  }
}

locals {
  quickstart = "${path.module}/../quickstart"
}

resource "modelplane_gpu_cluster" "here" {
  name     = "monitoring"
  platform = "local"
}

resource "modelplane_model_store" "models" {
  name          = "monitoring"
  backend       = "local"
  force_destroy = true
}

resource "modelplane_model" "iris" {
  store   = modelplane_model_store.models.id
  name    = "iris"
  version = "1"
  source  = "${local.quickstart}/model/iris-v1.onnx"

  # What "normal" inputs look like: drift is measured against it.
  baseline {
    dataset = "${local.quickstart}/data/train.csv"
    target  = "species"
  }
}

resource "modelplane_endpoint" "iris" {
  name    = "iris"
  cluster = modelplane_gpu_cluster.here.id

  variant {
    name   = "stable"
    model  = modelplane_model.iris.id
    weight = 100
  }

  monitoring {
    drift_window    = var.drift_window
    feedback_window = var.feedback_window
  }
}

resource "modelplane_monitor" "iris" {
  endpoint            = modelplane_endpoint.iris.id
  scrape_interval     = var.interval
  evaluation_interval = var.interval

  alert {
    name         = "latency"
    p99_ms_above = 100
    for          = var.alert_after
  }

  alert {
    name             = "errors"
    error_rate_above = 0.05
    for              = var.alert_after
  }

  alert {
    name        = "drift"
    psi_above   = var.drift_psi
    min_samples = 20
    for         = var.alert_after
    severity    = "critical"
  }

  alert {
    name           = "quality"
    accuracy_below = var.min_accuracy
    min_samples    = 20
    for            = var.alert_after
    severity       = "critical"
  }

  # The retraining trigger.
  on_alert {
    webhook         = var.retrain_webhook
    alerts          = ["drift", "quality"]
    group_wait      = "0s"
    group_interval  = "30s"
    repeat_interval = "12h"
  }
}
