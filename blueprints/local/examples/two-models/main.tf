# Two models on this machine: iris with a canary, and a second endpoint on version 2 alone.

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
  qs = "${path.module}/../../../../examples/quickstart"
}

module "platform" {
  source = "../.."

  name          = "blueprint-example"
  force_destroy = true

  endpoints = {
    iris = {
      versions = {
        "1" = { source = "${local.qs}/model/iris-v1.onnx", weight = 80 }
        "2" = { source = "${local.qs}/model/iris-v2.onnx", weight = 20 }
      }
      validation = { dataset = "${local.qs}/data/holdout.csv", target = "species", metric = "accuracy", min = 0.9 }
      benchmark  = { payload = file("${local.qs}/data/request.json"), duration = "1s", slo = { p99_ms = 250 } }
    }
    flowers = {
      versions = {
        "2" = { source = "${local.qs}/model/iris-v2.onnx", weight = 100 }
      }
    }
  }
}

output "endpoints" {
  value = module.platform.endpoints
}
