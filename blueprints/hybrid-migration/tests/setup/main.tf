# For tests/local.tftest.hcl: two sites on this machine, created first and destroyed last by
# `terraform test`: an "onprem" and a "cloud" local cluster with a store each, and the
# version the on-prem site serves today (the quickstart's iris, validated on its hold-out
# set). Paths are relative to the blueprint's folder, where `terraform test` runs.

terraform {
  required_providers {
    modelplane = {
      source = "modelplane/modelplane"
    }
  }
}

locals {
  qs = "${path.module}/../../../../examples/quickstart"
}

resource "modelplane_gpu_cluster" "onprem" {
  name     = "tftest-onprem"
  platform = "local"
}

resource "modelplane_gpu_cluster" "cloud" {
  name     = "tftest-cloud"
  platform = "local"
}

resource "modelplane_model_store" "onprem" {
  name          = "tftest-onprem"
  backend       = "local"
  force_destroy = true
}

resource "modelplane_model_store" "cloud" {
  name          = "tftest-cloud"
  backend       = "local"
  force_destroy = true
}

resource "modelplane_model" "iris" {
  store   = modelplane_model_store.onprem.id
  name    = "iris"
  version = "1"
  source  = "${local.qs}/model/iris-v1.onnx"

  validation {
    dataset = "${local.qs}/data/holdout.csv"
    target  = "species"
    metric  = "accuracy"
    min     = 0.9
  }
}

output "onprem_cluster_id" {
  value = modelplane_gpu_cluster.onprem.id
}

output "cloud_cluster_id" {
  value = modelplane_gpu_cluster.cloud.id
}

output "cloud_store_id" {
  value = modelplane_model_store.cloud.id
}

output "onprem_version" {
  value = {
    id      = modelplane_model.iris.id
    name    = modelplane_model.iris.name
    version = modelplane_model.iris.version
    sha256  = modelplane_model.iris.sha256
  }
}

output "request" {
  description = "The quickstart's prediction request (iris): the benchmark's payload."
  value       = file("${local.qs}/data/request.json")
}
