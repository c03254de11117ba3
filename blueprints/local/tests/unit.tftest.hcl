# Unit tests of blueprints/local with a mocked provider (nothing created): the variables'
# validations, and the wiring of a mocked apply: the cluster and the store named after the
# platform, one endpoint (modules/endpoint) per entry of `endpoints` with its versions and
# weights, outputs shaped as documented.
#
#   terraform init && terraform test -filter=tests/unit.tftest.hcl

# The provider checks references at validation, mocked or not (an endpoint's cluster must be
# PLATFORM/NAME, a model's store a store URI, a variant's model a model id): the mocked ids
# look like real ones.
mock_provider "modelplane" {
  mock_resource "modelplane_gpu_cluster" {
    defaults = {
      id           = "local/lab"
      cpus         = 8
      memory_bytes = 17179869184
    }
  }

  mock_resource "modelplane_model_store" {
    defaults = {
      id = "file:///var/lib/modelplane/stores/lab"
    }
  }

  mock_resource "modelplane_model" {
    defaults = {
      id = "file:///var/lib/modelplane/stores/lab/iris/1"
    }
  }

  mock_resource "modelplane_endpoint" {
    defaults = {
      id           = "local/lab/iris"
      url          = "http://127.0.0.1:18080"
      grpc_address = "127.0.0.1:18081"
      token_file   = "/var/lib/modelplane/endpoints/iris/token"
    }
  }
}

variables {
  name = "lab"
  endpoints = {
    iris = {
      versions = {
        "1" = { source = "../../examples/quickstart/model/iris-v1.onnx", weight = 80 }
        "2" = { source = "../../examples/quickstart/model/iris-v2.onnx", weight = 20 }
      }
      validation = { dataset = "../../examples/quickstart/data/holdout.csv", target = "species", metric = "accuracy", min = 0.9 }
      benchmark  = { payload = file("../../examples/quickstart/data/request.json"), duration = "1s" }
    }
    flowers = {
      versions = {
        "2" = { source = "../../examples/quickstart/model/iris-v2.onnx", weight = 100 }
      }
      port = 18090
    }
  }
}

run "two_endpoints" {
  command = apply

  assert {
    condition     = modelplane_gpu_cluster.this.name == "lab" && modelplane_gpu_cluster.this.platform == "local"
    error_message = "the cluster is this machine, named after the platform"
  }

  assert {
    condition     = modelplane_model_store.this.name == "lab" && modelplane_model_store.this.backend == "local" && modelplane_model_store.this.path == null && modelplane_model_store.this.force_destroy == false
    error_message = "the store is on disk, named after the platform, kept on destroy by default"
  }

  assert {
    condition     = output.cluster_id == "local/lab" && output.store_id == "file:///var/lib/modelplane/stores/lab"
    error_message = "cluster_id and store_id are the ids"
  }

  assert {
    condition     = keys(output.endpoints) == ["flowers", "iris"]
    error_message = "one endpoint per entry of endpoints"
  }

  assert {
    condition     = alltrue([for e in values(output.endpoints) : keys(e) == ["benchmark", "grpc_address", "infer_url", "token_file"]])
    error_message = "each endpoint's output is { infer_url, grpc_address, token_file, benchmark }"
  }

  assert {
    condition     = output.endpoints["iris"].infer_url == "http://127.0.0.1:18080/v2/models/iris/infer" && output.endpoints["flowers"].infer_url == "http://127.0.0.1:18080/v2/models/flowers/infer"
    error_message = "infer_url is URL/v2/models/NAME/infer, NAME the entry's key"
  }

  assert {
    condition     = output.endpoints["iris"].grpc_address == "127.0.0.1:18081" && output.endpoints["iris"].token_file == "/var/lib/modelplane/endpoints/iris/token"
    error_message = "grpc_address and token_file come from the endpoint"
  }

  assert {
    condition     = output.machine.cpus == 8 && output.machine.memory_bytes == 17179869184 && keys(output.machine) == ["cpus", "gpus", "memory_bytes"]
    error_message = "machine is the cluster's inventory"
  }

  # Through modules/endpoint's documented outputs: one registered model per version.
  assert {
    condition     = keys(module.endpoint["iris"].model_ids) == ["1", "2"] && keys(module.endpoint["flowers"].model_ids) == ["2"]
    error_message = "one model per version of each endpoint"
  }

  assert {
    condition     = module.endpoint["iris"].endpoint_id == "local/lab/iris" && keys(module.endpoint["iris"].validation) == ["1", "2"]
    error_message = "the endpoints are created on the cluster with their validation"
  }
}

run "settings_reach_the_cluster_and_store" {
  command = apply

  variables {
    name          = "site_1.a"
    store_path    = "/srv/models"
    force_destroy = true
  }

  assert {
    condition     = modelplane_gpu_cluster.this.name == "site_1.a" && modelplane_model_store.this.name == "site_1.a"
    error_message = "the name is accepted and names both"
  }

  assert {
    condition     = modelplane_model_store.this.path == "/srv/models" && modelplane_model_store.this.force_destroy
    error_message = "store_path and force_destroy reach the store"
  }
}

run "no_endpoints" {
  command = apply

  variables {
    endpoints = {}
  }

  assert {
    condition     = output.endpoints == {}
    error_message = "no endpoints: an empty map"
  }
}

run "name_refused" {
  command = plan
  variables {
    name = "_lab"
  }
  expect_failures = [var.name]
}

run "weights_not_100_refused" {
  command = plan
  variables {
    endpoints = {
      iris = {
        versions = {
          "1" = { source = "a.onnx", weight = 80 }
          "2" = { source = "b.onnx", weight = 10 }
        }
      }
    }
  }
  expect_failures = [var.endpoints]
}
