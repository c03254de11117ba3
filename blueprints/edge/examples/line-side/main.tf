# One box by the line: iris served from the bundled image, pushed into the site's registry and
# run by podman (or docker). Version 2 is validated on the hold-out set before it serves.

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

variable "registry" {
  description = "Where to push the image, HOST[:PORT]/PATH."
  type        = string
  default     = "127.0.0.1:5000/modelplane/serve"
}

variable "image_source" {
  description = "The image layout `cargo xtask image` wrote."
  type        = string
  default     = "../../../../target/image/modelplane-serve"
}

variable "extra_args" {
  description = "More arguments for the engine's run (e.g. [\"--network\", \"host\"])."
  type        = list(string)
  default     = []
}

provider "modelplane" {
  local {
    state_dir = var.state_dir
  }
}

locals {
  qs = "${path.module}/../../../../examples/quickstart"
}

module "site" {
  source = "../.."

  name              = "line-1"
  image_source      = var.image_source
  registry          = var.registry
  registry_insecure = true
  force_destroy     = true
  container = {
    memory     = "1g"
    extra_args = var.extra_args
  }

  endpoints = {
    iris = {
      versions = {
        "2" = { source = "${local.qs}/model/iris-v2.onnx", weight = 100 }
      }
      validation = { dataset = "${local.qs}/data/holdout.csv", target = "species", metric = "accuracy", min = 0.9 }
      benchmark  = { payload = file("${local.qs}/data/request.json"), duration = "1s", slo = { p99_ms = 250 } }
    }
  }
}

output "endpoints" {
  value = module.site.endpoints
}
