# modules/endpoint with the real provider on the local platform: the quickstart's two iris
# versions are validated on the hold-out set, registered, and served with a 90/10 split;
# the benchmark hook sends real predictions after each change. Then the split moves to
# 50/50 (a hot reload on the same URL). `terraform test` destroys everything at the end:
# the endpoint's server, the versions, the store.
#
# The local platform keeps its state under $XDG_STATE_HOME/modelplane (else
# ~/.local/state/modelplane); provider/tests/terraform_test.rs points it at a temporary
# folder.

run "platform" {
  module {
    source = "./tests/setup"
  }
}

run "canary" {
  command = apply

  variables {
    name       = "iris"
    cluster_id = run.platform.cluster_id
    store_id   = run.platform.store_id
    versions = {
      "1" = { source = "${run.platform.quickstart}/model/iris-v1.onnx", weight = 90 }
      "2" = { source = "${run.platform.quickstart}/model/iris-v2.onnx", weight = 10, description = "canary" }
    }
    validation = {
      dataset = "${run.platform.quickstart}/data/holdout.csv"
      target  = "species"
      metric  = "accuracy"
      min     = 0.9
    }
    baseline = {
      dataset = "${run.platform.quickstart}/data/train.csv"
      target  = "species"
    }
    lineage = { code_commit = "tftest" }
    benchmark = {
      payload     = run.platform.request
      concurrency = 2
      duration    = "1s"
      slo         = { max_error_rate = 0 }
    }
  }

  assert {
    condition     = modelplane_endpoint.this.status == "running"
    error_message = "the endpoint's server runs"
  }

  assert {
    condition     = startswith(output.url, "http://127.0.0.1:") && output.infer_url == "${output.url}/v2/models/iris/infer"
    error_message = "the endpoint listens on this machine; infer_url is URL/v2/models/iris/infer"
  }

  assert {
    condition     = output.endpoint_id == "${run.platform.cluster_id}/iris"
    error_message = "the endpoint's id is CLUSTER_ID/NAME"
  }

  assert {
    condition     = fileexists(output.token_file)
    error_message = "the token file exists"
  }

  # Hold-out predictions: each version scored the quickstart's hold-out set.
  assert {
    condition     = alltrue([for m in modelplane_model.this : m.validation_report.passed && m.validation_report.metric == "accuracy" && m.validation_report.value >= 0.9 && m.validation_report.rows > 0])
    error_message = "both versions were validated (accuracy >= 0.9 on real predictions)"
  }

  assert {
    condition     = alltrue([for v, s in output.validation : s != null])
    error_message = "the validation output has each version's summary"
  }

  assert {
    condition     = output.model_ids == { for v, m in modelplane_model.this : v => m.id } && length(output.model_ids) == 2
    error_message = "model_ids maps both versions to their ids"
  }

  assert {
    condition     = [for v in modelplane_endpoint.this.variant : v.weight] == [90, 10]
    error_message = "the endpoint splits 90/10"
  }

  # Served predictions: the benchmark hook's load test through the endpoint.
  assert {
    condition     = output.benchmark.requests > 0 && output.benchmark.errors == 0
    error_message = "the benchmark got answers to every request"
  }

  assert {
    condition     = output.running_image == null && output.prometheus_url == null
    error_message = "no image on local, no monitor without monitoring"
  }
}

run "even_split" {
  command = apply

  variables {
    name       = "iris"
    cluster_id = run.platform.cluster_id
    store_id   = run.platform.store_id
    versions = {
      "1" = { source = "${run.platform.quickstart}/model/iris-v1.onnx", weight = 50 }
      "2" = { source = "${run.platform.quickstart}/model/iris-v2.onnx", weight = 50, description = "canary" }
    }
    validation = {
      dataset = "${run.platform.quickstart}/data/holdout.csv"
      target  = "species"
      metric  = "accuracy"
      min     = 0.9
    }
    baseline = {
      dataset = "${run.platform.quickstart}/data/train.csv"
      target  = "species"
    }
    lineage = { code_commit = "tftest" }
    benchmark = {
      payload     = run.platform.request
      concurrency = 2
      duration    = "1s"
      slo         = { max_error_rate = 0 }
    }
  }

  assert {
    condition     = [for v in modelplane_endpoint.this.variant : v.weight] == [50, 50] && modelplane_endpoint.this.status == "running"
    error_message = "the split moved to 50/50 and the endpoint runs"
  }

  assert {
    condition     = output.url == run.canary.url && output.model_ids == run.canary.model_ids
    error_message = "same URL, same versions: only the split changed"
  }

  assert {
    condition     = output.benchmark.requests > 0 && output.benchmark.errors == 0
    error_message = "the benchmark after the change got answers to every request"
  }
}
