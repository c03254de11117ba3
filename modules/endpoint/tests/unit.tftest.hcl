# Unit tests of modules/endpoint with a mocked provider: nothing is served, nothing is
# created. Every variable validation is tried with a bad value (expect_failures) and the
# wiring is checked on a mocked apply: one model per version (and per shadow), the weights
# and the models' ids reaching the endpoint's variants, the monitor's alerts, the outputs.
#
#   terraform init && terraform test -filter=tests/unit.tftest.hcl

# The provider checks references at validation (a variant's `model` must be a model's id,
# STORE_ID/NAME/VERSION), mocked or not: the models' ids are set to real-looking ones, one per
# version, so that the wiring of each variant to its own version shows.
mock_provider "modelplane" {
  mock_resource "modelplane_model" {
    defaults = {
      id = "file:///var/lib/models/iris/0"
    }
  }

  mock_resource "modelplane_endpoint" {
    defaults = {
      id           = "local/here/iris"
      url          = "http://127.0.0.1:18080"
      grpc_address = "127.0.0.1:18081"
      token_file   = "/state/endpoints/iris/token"
    }
  }

  mock_resource "modelplane_monitor" {
    defaults = {
      prometheus_url   = "http://127.0.0.1:19090"
      alertmanager_url = "http://127.0.0.1:19093"
    }
  }
}

override_resource {
  target = modelplane_model.this["1"]
  values = { id = "file:///var/lib/models/iris/1" }
}

override_resource {
  target = modelplane_model.this["2"]
  values = { id = "file:///var/lib/models/iris/2" }
}

override_resource {
  target = modelplane_model_approval.this["2"]
  values = { approved_model = "file:///var/lib/models/iris/2" }
}

override_resource {
  target = modelplane_model.this["3"]
  values = { id = "file:///var/lib/models/iris/3" }
}

variables {
  name       = "iris"
  cluster_id = "local/here"
  store_id   = "file:///var/lib/models"
  versions = {
    "1" = { source = "../../examples/quickstart/model/iris-v1.onnx", weight = 90 }
    "2" = { source = "../../examples/quickstart/model/iris-v2.onnx", weight = 10, description = "canary" }
  }
}

# --- wiring -------------------------------------------------------------------------------

run "approvals_wiring" {
  command = apply

  variables {
    require_approval = true
    approvals        = { "2" = "CHG-2" }
  }

  assert {
    condition     = length(modelplane_model_approval.this) == 1 && modelplane_model_approval.this["2"].model == "file:///var/lib/models/iris/2" && modelplane_model_approval.this["2"].reference == "CHG-2"
    error_message = "one approval, of version 2, under its reference"
  }

  assert {
    condition     = modelplane_endpoint.this.require_approval == true
    error_message = "require_approval reaches the endpoint"
  }

  assert {
    condition     = [for v in modelplane_endpoint.this.variant : v.model] == ["file:///var/lib/models/iris/1", "file:///var/lib/models/iris/2"]
    error_message = "the approved version is served through its approval, the other by its id"
  }
}

run "canary_wiring" {
  command = apply

  variables {
    lineage = { code_commit = "abc123", tags = { team = "ml" } }
  }

  assert {
    condition     = length(modelplane_model.this) == 2
    error_message = "one model per version"
  }

  assert {
    condition     = modelplane_model.this["1"].name == "iris" && modelplane_model.this["1"].version == "1" && modelplane_model.this["1"].store == "file:///var/lib/models"
    error_message = "version 1 is registered as iris/1 in the store given"
  }

  assert {
    condition     = modelplane_model.this["2"].source == "../../examples/quickstart/model/iris-v2.onnx"
    error_message = "each version is registered from its source"
  }

  assert {
    condition     = modelplane_model.this["2"].lineage.description == "canary" && modelplane_model.this["1"].lineage.description == null
    error_message = "a version's description lands in its lineage"
  }

  assert {
    condition     = modelplane_model.this["1"].lineage.code_commit == "abc123" && modelplane_model.this["2"].lineage.tags["team"] == "ml"
    error_message = "the lineage is recorded with every version"
  }

  assert {
    condition     = modelplane_model.this["1"].validation == null && modelplane_model.this["1"].baseline == null
    error_message = "no validation or baseline unless given"
  }

  assert {
    condition     = modelplane_endpoint.this.name == "iris" && modelplane_endpoint.this.cluster == "local/here"
    error_message = "the endpoint is named after the model, on the cluster given"
  }

  assert {
    condition     = [for v in modelplane_endpoint.this.variant : v.name] == ["v1", "v2"]
    error_message = "one variant per version, named vVERSION"
  }

  assert {
    condition     = [for v in modelplane_endpoint.this.variant : v.weight] == [90, 10]
    error_message = "the weights reach the variants"
  }

  assert {
    condition     = modelplane_endpoint.this.variant[0].model == modelplane_model.this["1"].id && modelplane_endpoint.this.variant[1].model == modelplane_model.this["2"].id
    error_message = "each variant serves its version's model"
  }

  assert {
    condition     = modelplane_endpoint.this.shadow == null
    error_message = "no shadow unless given"
  }

  assert {
    condition     = modelplane_endpoint.this.batching.max_batch_size == 32 && modelplane_endpoint.this.batching.max_delay_ms == 0
    error_message = "batching defaults to 32 rows, no wait"
  }

  assert {
    condition     = modelplane_endpoint.this.benchmark == null && modelplane_endpoint.this.container == null && modelplane_endpoint.this.kubernetes == null
    error_message = "no benchmark, container or kubernetes settings unless given"
  }

  assert {
    condition     = length(modelplane_monitor.this) == 0
    error_message = "no monitor without monitoring"
  }

  assert {
    condition     = output.url == "http://127.0.0.1:18080" && output.infer_url == "http://127.0.0.1:18080/v2/models/iris/infer"
    error_message = "infer_url is URL/v2/models/NAME/infer"
  }

  assert {
    condition     = output.grpc_address == "127.0.0.1:18081" && output.token_file == "/state/endpoints/iris/token"
    error_message = "grpc_address and token_file come from the endpoint"
  }

  assert {
    condition     = output.endpoint_id == "local/here/iris"
    error_message = "endpoint_id is the endpoint's id"
  }

  assert {
    condition     = output.model_ids == { "1" = modelplane_model.this["1"].id, "2" = modelplane_model.this["2"].id }
    error_message = "model_ids maps each version to its model's id"
  }

  assert {
    condition     = keys(output.validation) == ["1", "2"]
    error_message = "validation has one entry per version"
  }

  assert {
    condition     = output.prometheus_url == null && output.alertmanager_url == null && output.grafana_dashboard == null
    error_message = "monitoring outputs are null without monitoring"
  }
}

run "shadow_validation_baseline_benchmark" {
  command = apply

  variables {
    versions = {
      "1" = { source = "../../examples/quickstart/model/iris-v1.onnx", weight = 100 }
    }
    shadow     = { version = "3", source = "../../examples/quickstart/model/iris-v2.onnx" }
    validation = { dataset = "holdout.csv", target = "species", metric = "accuracy", min = 0.9 }
    baseline   = { dataset = "train.csv", target = "species" }
    batching   = { max_batch_size = 8, max_delay_ms = 2 }
    port       = 18080
    benchmark = {
      payload = "{\"inputs\":[]}"
      slo     = { p99_ms = 250 }
    }
  }

  assert {
    condition     = length(modelplane_model.this) == 2 && contains(keys(modelplane_model.this), "3")
    error_message = "the shadow version is registered besides the served one"
  }

  assert {
    condition     = modelplane_model.this["3"].lineage.description == "shadow"
    error_message = "the shadow version is described as such"
  }

  assert {
    condition     = length(modelplane_endpoint.this.variant) == 1 && modelplane_endpoint.this.variant[0].weight == 100
    error_message = "the shadow gets no variant"
  }

  assert {
    condition     = modelplane_endpoint.this.shadow.model == modelplane_model.this["3"].id
    error_message = "the shadow block serves the shadow version's model"
  }

  assert {
    condition     = alltrue([for m in modelplane_model.this : m.validation.metric == "accuracy" && m.validation.min == 0.9 && m.validation.max == null])
    error_message = "every version, the shadow included, is validated"
  }

  assert {
    condition     = alltrue([for m in modelplane_model.this : m.baseline.dataset == "train.csv" && m.baseline.target == "species"])
    error_message = "every version gets the drift baseline"
  }

  assert {
    condition     = modelplane_endpoint.this.batching.max_batch_size == 8 && modelplane_endpoint.this.batching.max_delay_ms == 2 && modelplane_endpoint.this.port == 18080
    error_message = "batching and port reach the endpoint"
  }

  assert {
    condition     = modelplane_endpoint.this.benchmark.concurrency == 4 && modelplane_endpoint.this.benchmark.duration == "3s" && modelplane_endpoint.this.benchmark.slo.p99_ms == 250
    error_message = "the benchmark gets its defaults (4 clients, 3s) and the SLO given"
  }

  assert {
    condition     = keys(output.model_ids) == ["1", "3"]
    error_message = "model_ids lists the shadow version too"
  }
}

run "monitoring_alerts" {
  command = apply

  variables {
    monitoring = {
      p99_ms_above    = 50
      drift_psi_above = 0.2
      min_samples     = 100
      webhook         = "https://hooks.example.com/retrain"
    }
  }

  assert {
    condition     = length(modelplane_monitor.this) == 1 && modelplane_monitor.this[0].endpoint == modelplane_endpoint.this.id
    error_message = "one monitor, on the endpoint"
  }

  assert {
    condition     = [for a in modelplane_monitor.this[0].alert : a.name] == ["drift", "latency"]
    error_message = "one alert per threshold given, no more"
  }

  assert {
    condition     = modelplane_monitor.this[0].alert[0].psi_above == 0.2 && modelplane_monitor.this[0].alert[0].min_samples == 100 && modelplane_monitor.this[0].alert[0].severity == "critical"
    error_message = "the drift alert: PSI threshold, min_samples, critical"
  }

  assert {
    condition     = modelplane_monitor.this[0].alert[1].p99_ms_above == 50 && modelplane_monitor.this[0].alert[1].min_samples == null && modelplane_monitor.this[0].alert[1].severity == "warning"
    error_message = "the latency alert: p99 threshold, no min_samples, warning"
  }

  assert {
    condition     = alltrue([for a in modelplane_monitor.this[0].alert : a.for == "10m"]) && modelplane_monitor.this[0].scrape_interval == "15s"
    error_message = "monitoring defaults: for 10m, every 15s"
  }

  assert {
    condition     = modelplane_monitor.this[0].on_alert[0].webhook == "https://hooks.example.com/retrain"
    error_message = "alerts go to the webhook"
  }

  assert {
    condition     = modelplane_endpoint.this.monitoring.drift_window == "15m" && modelplane_endpoint.this.monitoring.feedback_window == "1h"
    error_message = "the endpoint keeps the drift and feedback windows"
  }

  assert {
    condition     = output.prometheus_url == "http://127.0.0.1:19090" && output.alertmanager_url == "http://127.0.0.1:19093"
    error_message = "the monitor's URLs are output"
  }
}

# Every setting with a validation, at a good value: plans.
run "good_values_plan" {
  command = plan

  variables {
    name       = "iris.v2_b-1"
    cluster_id = "container/box"
    image      = "registry.local/modelplane/serve@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    validation = { dataset = "holdout.csv", target = "y", metric = "rmse", max = 0.5 }
    container  = { restart = "unless-stopped", memory = "1g" }
    monitoring = { error_rate_above = 0.01, webhook = "http://hooks.internal/x" }
    budget     = { monthly = 100, action = "warn" }
    pricing    = { gpu_product = "nvidia-a100" }
    versions = {
      "1" = { source = "a.onnx", weight = 0 }
      "2" = { source = "b.onnx", weight = 100 }
    }
  }

  assert {
    condition     = modelplane_endpoint.this.name == "iris.v2_b-1"
    error_message = "the name is accepted"
  }
}

run "good_kubernetes_plan" {
  command = plan

  variables {
    cluster_id = "kubernetes/gpu"
    image      = "registry.local/modelplane/serve@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    kubernetes = { partition = "inference", min_replicas = 2, max_replicas = 4 }
  }

  assert {
    condition     = modelplane_endpoint.this.kubernetes.partition == "inference" && modelplane_endpoint.this.kubernetes.max_replicas == 4
    error_message = "the kubernetes settings reach the endpoint"
  }
}

# --- validations: each refuses a bad value ------------------------------------------------

run "name_refused" {
  command = plan
  variables {
    name = "-iris"
  }
  expect_failures = [var.name]
}

run "name_too_long_refused" {
  command = plan
  variables {
    name = join("", [for i in range(129) : "a"])
  }
  expect_failures = [var.name]
}

run "no_versions_refused" {
  command = plan
  variables {
    versions = {}
  }
  expect_failures = [var.versions]
}

run "weights_not_100_refused" {
  command = plan
  variables {
    versions = {
      "1" = { source = "a.onnx", weight = 60 }
      "2" = { source = "b.onnx", weight = 30 }
    }
  }
  expect_failures = [var.versions]
}

run "weight_out_of_range_refused" {
  command = plan
  variables {
    versions = {
      "1" = { source = "a.onnx", weight = 150 }
      "2" = { source = "b.onnx", weight = -50 }
    }
  }
  expect_failures = [var.versions]
}

run "validation_metric_refused" {
  command = plan
  variables {
    validation = { dataset = "holdout.csv", target = "species", metric = "auc", min = 0.9 }
  }
  expect_failures = [var.validation]
}

run "validation_without_threshold_refused" {
  command = plan
  variables {
    validation = { dataset = "holdout.csv", target = "species", metric = "accuracy" }
  }
  expect_failures = [var.validation]
}

run "container_restart_refused" {
  command = plan
  variables {
    cluster_id = "container/box"
    container  = { restart = "sometimes" }
  }
  expect_failures = [var.container]
}

run "kubernetes_partition_refused" {
  command = plan
  variables {
    cluster_id = "kubernetes/gpu"
    kubernetes = { partition = "prod" }
  }
  expect_failures = [var.kubernetes]
}

run "monitoring_without_threshold_refused" {
  command = plan
  variables {
    monitoring = { webhook = "https://hooks.example.com/x" }
  }
  expect_failures = [var.monitoring]
}

run "monitoring_webhook_refused" {
  command = plan
  variables {
    monitoring = { p99_ms_above = 50, webhook = "ftp://hooks.example.com/x" }
  }
  expect_failures = [var.monitoring]
}

run "budget_action_refused" {
  command = plan
  variables {
    budget = { monthly = 100, action = "ignore" }
  }
  expect_failures = [var.budget]
}
