# One iris classifier with alerts on latency, drift and accuracy, sent to a webhook (e.g. a
# retraining trigger). Needs Prometheus and Alertmanager on PATH.

terraform {
  required_providers {
    modelplane = {
      source = "modelplane/modelplane"
    }
  }
}

variable "state_dir" {
  description = "The provider's local state folder (null: the default)."
  type        = string
  default     = null
}

variable "webhook" {
  description = "Where alerts go (null: nowhere; they still show in Prometheus and Alertmanager)."
  type        = string
  default     = null
}

provider "modelplane" {
  local {
    state_dir = var.state_dir
  }
}

locals {
  quickstart = "${path.module}/../../../../examples/quickstart"
}

resource "modelplane_gpu_cluster" "here" {
  name     = "monitored"
  platform = "local"
}

resource "modelplane_model_store" "models" {
  name          = "monitored-example"
  backend       = "local"
  force_destroy = true
}

module "iris" {
  source = "../.."

  name       = "iris"
  cluster_id = modelplane_gpu_cluster.here.id
  store_id   = modelplane_model_store.models.id

  versions = {
    "1" = { source = "${local.quickstart}/model/iris-v1.onnx", weight = 100 }
  }

  baseline = {
    dataset = "${local.quickstart}/data/train.csv"
    target  = "species"
  }

  monitoring = {
    p99_ms_above    = 100
    drift_psi_above = 0.25
    accuracy_below  = 0.9
    min_samples     = 20
    for             = "5m"
    webhook         = var.webhook
  }
}

output "infer_url" {
  value = module.iris.infer_url
}

output "prometheus_url" {
  value = module.iris.prometheus_url
}
