# A 90/10 canary of two iris classifiers on this machine.

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

provider "modelplane" {
  local {
    state_dir = var.state_dir
  }
}

locals {
  quickstart = "${path.module}/../../../../examples/quickstart"
}

resource "modelplane_gpu_cluster" "here" {
  name     = "here"
  platform = "local"
}

resource "modelplane_model_store" "models" {
  name          = "canary-example"
  backend       = "local"
  force_destroy = true
}

module "iris" {
  source = "../.."

  name       = "iris"
  cluster_id = modelplane_gpu_cluster.here.id
  store_id   = modelplane_model_store.models.id

  versions = {
    "1" = { source = "${local.quickstart}/model/iris-v1.onnx", weight = 90 }
    "2" = { source = "${local.quickstart}/model/iris-v2.onnx", weight = 10, description = "canary" }
  }

  validation = {
    dataset = "${local.quickstart}/data/holdout.csv"
    target  = "species"
    metric  = "accuracy"
    min     = 0.9
  }

  baseline = {
    dataset = "${local.quickstart}/data/train.csv"
    target  = "species"
  }

  benchmark = {
    payload  = file("${local.quickstart}/data/request.json")
    duration = "1s"
    slo      = { p99_ms = 250 }
  }
}

output "infer_url" {
  value = module.iris.infer_url
}

output "token_file" {
  value = module.iris.token_file
}
