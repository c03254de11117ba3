# The Modelplane quickstart: a real model served on this machine with `terraform apply`.
#
#   store → two validated versions of an iris classifier (with drift baselines)
#         → an endpoint splitting traffic 90/10 between them (a canary),
#           benchmarked against an SLO after every change.
#
#   cargo xtask quickstart            # build the provider, apply, send one prediction
#   cargo xtask quickstart --destroy  # take it all down

provider "modelplane" {
  local {
    state_dir = var.state_dir
  }
}

# This machine. Its inventory (CPUs, memory, GPUs through NVML) is in the outputs.
resource "modelplane_gpu_cluster" "here" {
  name     = "quickstart"
  platform = "local"

  node_pool {
    name    = "default"
    purpose = "inference"
  }
}

# Where model versions live: a directory under the provider's state folder.
resource "modelplane_model_store" "models" {
  name          = "quickstart"
  backend       = "local"
  force_destroy = true
}

# Two versions of the classifier. Each is validated on the hold-out set before it is
# registered (a model under the accuracy threshold never reaches the store), and gets a
# drift baseline from its training data.
resource "modelplane_model" "iris" {
  for_each = local.versions

  store   = modelplane_model_store.models.id
  name    = "iris"
  version = each.key
  source  = "${path.module}/model/${each.value.file}"

  lineage {
    code_commit    = var.code_commit
    dataset_digest = filesha256("${path.module}/data/train.csv")
    description    = each.value.description
    tags           = { dataset = "iris", framework = "scikit-learn" }
  }

  baseline {
    dataset = "${path.module}/data/train.csv"
    target  = "species"
  }

  # With slice_min_accuracy or max_disparity set, the hold-out set is judged per site too
  # (holdout_sites.csv: the same rows from three sites): a version good on average but not
  # for one site is refused, naming the site.
  validation {
    dataset        = local.fairness ? "${path.module}/data/holdout_sites.csv" : "${path.module}/data/holdout.csv"
    target         = "species"
    features       = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    metric         = "accuracy"
    min            = var.min_accuracy
    slice_by       = local.fairness ? ["site"] : null
    slice_min      = var.slice_min_accuracy
    max_disparity  = var.max_disparity
    min_slice_rows = local.fairness ? 15 : null
  }
}

# Approvals of versions (var.approvals: version => ticket). With var.require_approval, the
# endpoint refuses at plan a variant whose version has none. The variants serve the
# approval's `approved_model`, so the endpoint waits for an approval made in the same apply.
resource "modelplane_model_approval" "iris" {
  for_each = var.approvals

  model     = modelplane_model.iris[each.key].id
  reference = each.value
}

# The endpoint: 90% of requests to version 1, 10% to the canary. After every change a
# short load test runs; missing the SLO rolls the change back.
resource "modelplane_endpoint" "iris" {
  name             = "iris"
  cluster          = modelplane_gpu_cluster.here.id
  port             = var.port
  require_approval = var.require_approval

  variant {
    name   = "stable"
    model  = try(modelplane_model_approval.iris["1"].approved_model, modelplane_model.iris["1"].id)
    weight = 100 - var.canary_weight
  }

  variant {
    name   = "canary"
    model  = try(modelplane_model_approval.iris["2"].approved_model, modelplane_model.iris["2"].id)
    weight = var.canary_weight
  }

  batching {
    max_batch_size = 32
    max_delay_ms   = 1
  }

  benchmark {
    payload     = file("${path.module}/data/request.json")
    concurrency = 4
    duration    = "2s"

    slo {
      p99_ms  = var.slo_p99_ms
      min_rps = var.slo_min_rps
    }
  }
}

locals {
  fairness = var.slice_min_accuracy != null || var.max_disparity != null
  versions = {
    "1" = { file = "iris-v1.onnx", description = "Logistic regression on raw features" }
    "2" = { file = "iris-v2.onnx", description = "A neural network with one hidden layer of 16" }
  }
}

data "modelplane_models" "catalogue" {
  store      = modelplane_model_store.models.id
  depends_on = [modelplane_model.iris]
}

# What happened, by whom: every change of the endpoint and every approval, oldest first.
data "modelplane_audit" "history" {
  store      = modelplane_model_store.models.id
  depends_on = [modelplane_endpoint.iris, modelplane_model_approval.iris]
}
