# For tests/local.tftest.hcl: what the module serves on, created first and destroyed last by
# `terraform test`: this machine as a local cluster and a model store on disk, plus the
# quickstart's files the test serves (paths relative to the module's folder, where
# `terraform test` runs).

terraform {
  required_providers {
    modelplane = {
      source = "modelplane/modelplane"
    }
  }
}

locals {
  quickstart = "${path.module}/../../../../examples/quickstart"
}

resource "modelplane_gpu_cluster" "here" {
  name     = "tftest"
  platform = "local"
}

resource "modelplane_model_store" "models" {
  name          = "tftest"
  backend       = "local"
  force_destroy = true
}

output "cluster_id" {
  value = modelplane_gpu_cluster.here.id
}

output "store_id" {
  value = modelplane_model_store.models.id
}

output "quickstart" {
  description = "The quickstart's folder: model/iris-v1.onnx, model/iris-v2.onnx, data/*.csv."
  value       = local.quickstart
}

output "request" {
  description = "The quickstart's prediction request (iris), the benchmark's payload."
  value       = file("${local.quickstart}/data/request.json")
}
