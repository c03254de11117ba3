# blueprints/local with the real provider: this machine as the cluster, a store on disk, and
# two endpoints serving the quickstart's iris classifiers: "iris" (two versions, 80/20,
# validated on the hold-out set) and "flowers" (one version). The benchmark hook sends real
# predictions through each endpoint after it starts. `terraform test` destroys everything
# at the end (servers, versions, store: force_destroy).
#
# The local platform keeps its state under $XDG_STATE_HOME/modelplane (else
# ~/.local/state/modelplane); provider/tests/terraform_test.rs points it at a temporary
# folder.

variables {
  name          = "tftest-local"
  force_destroy = true
  endpoints = {
    iris = {
      versions = {
        "1" = { source = "../../examples/quickstart/model/iris-v1.onnx", weight = 80 }
        "2" = { source = "../../examples/quickstart/model/iris-v2.onnx", weight = 20 }
      }
      validation = { dataset = "../../examples/quickstart/data/holdout.csv", target = "species", metric = "accuracy", min = 0.9 }
      baseline   = { dataset = "../../examples/quickstart/data/train.csv", target = "species" }
      benchmark  = { payload = file("../../examples/quickstart/data/request.json"), concurrency = 2, duration = "1s", slo = { max_error_rate = 0 } }
    }
    flowers = {
      versions = {
        "2" = { source = "../../examples/quickstart/model/iris-v2.onnx", weight = 100 }
      }
      benchmark = { payload = file("../../examples/quickstart/data/request.json"), concurrency = 2, duration = "1s", slo = { max_error_rate = 0 } }
    }
  }
}

run "two_endpoints" {
  command = apply

  assert {
    condition     = output.cluster_id == "local/tftest-local"
    error_message = "the cluster is local/NAME"
  }

  assert {
    condition     = startswith(output.store_id, "file://")
    error_message = "the store is a folder on this machine"
  }

  assert {
    condition     = output.machine.cpus > 0 && output.machine.memory_bytes > 0
    error_message = "the machine's inventory is read"
  }

  assert {
    condition     = keys(output.endpoints) == ["flowers", "iris"]
    error_message = "one endpoint per entry"
  }

  assert {
    condition     = alltrue([for n, e in output.endpoints : startswith(e.infer_url, "http://127.0.0.1:") && endswith(e.infer_url, "/v2/models/${n}/infer")])
    error_message = "each endpoint serves at http://127.0.0.1:PORT/v2/models/NAME/infer"
  }

  assert {
    condition     = output.endpoints["iris"].infer_url != output.endpoints["flowers"].infer_url
    error_message = "each endpoint has its own port"
  }

  assert {
    condition     = alltrue([for e in values(output.endpoints) : fileexists(e.token_file)])
    error_message = "each endpoint's token file exists"
  }

  # Served predictions: each endpoint answered every request of its benchmark.
  assert {
    condition     = alltrue([for e in values(output.endpoints) : e.benchmark.requests > 0 && e.benchmark.errors == 0])
    error_message = "both endpoints answered every benchmark request"
  }

  # Hold-out predictions: iris's versions were validated before they were registered.
  assert {
    condition     = length(module.endpoint["iris"].validation) == 2 && alltrue([for s in values(module.endpoint["iris"].validation) : s != null])
    error_message = "both iris versions were validated"
  }
}
