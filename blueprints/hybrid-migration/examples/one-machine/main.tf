# Two sites on this machine: "onprem" and "cloud" are two local clusters with a store each.
# Apply it stage by stage (README.md):
#   terraform apply                                        # on-prem serves; the copy and the cloud endpoint stand by
#   terraform apply -var cloud_share=10                    # 10% through the cloud site, benchmarked
#   terraform apply -var cloud_share=50
#   terraform apply -var cloud_share=100
#   terraform apply -var cloud_share=100 -var retire_onprem=true   # after clients moved to cloud_url

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

variable "cloud_share" {
  description = "Percent of the on-prem entry point's requests served by the cloud site."
  type        = number
  default     = 0
}

variable "retire_onprem" {
  description = "Remove the on-prem endpoint (needs cloud_share = 100)."
  type        = bool
  default     = false
}

variable "slo_p99_ms" {
  description = "The 99th percentile latency every step must meet, through the on-prem entry point."
  type        = number
  default     = 500
}

provider "modelplane" {
  local {
    state_dir = var.state_dir
  }
}

locals {
  qs = "${path.module}/../../../../examples/quickstart"
}

resource "modelplane_gpu_cluster" "onprem" {
  name     = "onprem"
  platform = "local"
}

resource "modelplane_gpu_cluster" "cloud" {
  name     = "cloud"
  platform = "local"
}

resource "modelplane_model_store" "onprem" {
  name          = "onprem"
  backend       = "local"
  force_destroy = true
}

resource "modelplane_model_store" "cloud" {
  name          = "cloud"
  backend       = "local"
  force_destroy = true
}

# The version the on-prem site serves today.
resource "modelplane_model" "iris" {
  store   = modelplane_model_store.onprem.id
  name    = "iris"
  version = "1"
  source  = "${local.qs}/model/iris-v1.onnx"

  lineage {
    code_commit = "abc123"
    description = "iris classifier, trained on-prem"
  }

  baseline {
    dataset = "${local.qs}/data/train.csv"
    target  = "species"
  }

  validation {
    dataset = "${local.qs}/data/holdout.csv"
    target  = "species"
    metric  = "accuracy"
    min     = 0.9
  }
}

module "migration" {
  source = "../.."

  name              = "iris"
  cloud_name        = "iris-cloud"
  onprem_cluster_id = modelplane_gpu_cluster.onprem.id
  cloud_cluster_id  = modelplane_gpu_cluster.cloud.id
  cloud_store_id    = modelplane_model_store.cloud.id
  onprem_version    = modelplane_model.iris
  cloud_share       = var.cloud_share
  retire_onprem     = var.retire_onprem

  benchmark = {
    payload  = file("${local.qs}/data/request.json")
    duration = "1s"
  }
  slo = { p99_ms = var.slo_p99_ms }
}

output "split" {
  value = module.migration.split
}

output "onprem_url" {
  value = module.migration.onprem_url
}

output "cloud_url" {
  value = module.migration.cloud_url
}
