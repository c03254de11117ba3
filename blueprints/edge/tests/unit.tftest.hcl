# Unit tests of blueprints/edge with a mocked provider only: a real run needs podman or docker
# and a registry to push the bundled image to (provider/tests/modules.rs
# `blueprint_edge_example` applies the example against real ones). Here: every variable's
# validation, and the wiring of a mocked apply: the image pushed to the registry given, the
# box a `container` cluster, one endpoint per entry running the pushed image, outputs shaped
# as documented.
#
#   terraform init && terraform test

# The provider checks references at validation, mocked or not: the mocked ids and the image
# reference look like real ones.
mock_provider "modelplane" {
  mock_resource "modelplane_serving_image" {
    defaults = {
      reference        = "registry.plant.local/ml/modelplane-serve@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
      tagged_reference = "registry.plant.local/ml/modelplane-serve:0.1.0"
      version          = "0.1.0"
    }
  }

  mock_resource "modelplane_gpu_cluster" {
    defaults = {
      id             = "container/line-1"
      engine         = "podman"
      engine_version = "5.0.0"
      cpus           = 4
      memory_bytes   = 8589934592
    }
  }

  mock_resource "modelplane_model_store" {
    defaults = {
      id = "file:///var/lib/modelplane/stores/line-1"
    }
  }

  mock_resource "modelplane_model" {
    defaults = {
      id = "file:///var/lib/modelplane/stores/line-1/iris/2"
    }
  }

  mock_resource "modelplane_endpoint" {
    defaults = {
      id            = "container/line-1/iris"
      url           = "http://127.0.0.1:18080"
      grpc_address  = "127.0.0.1:18081"
      token_file    = "/var/lib/modelplane/endpoints/iris/token"
      running_image = "registry.plant.local/ml/modelplane-serve@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    }
  }
}

variables {
  name         = "line-1"
  image_source = "../../target/image/modelplane-serve"
  registry     = "registry.plant.local/ml/modelplane-serve"
  # Terraform 1.11's test runner loses an ephemeral variable left at its default (null)
  # between plan and apply ("was not set during the plan phase"): set, it is kept.
  registry_username = "line"
  registry_password = "not-a-secret"
  endpoints = {
    iris = {
      versions = {
        "2" = { source = "../../examples/quickstart/model/iris-v2.onnx", weight = 100 }
      }
      validation = { dataset = "../../examples/quickstart/data/holdout.csv", target = "species", metric = "accuracy", min = 0.9 }
    }
  }
}

run "defaults" {
  command = apply

  assert {
    condition     = modelplane_gpu_cluster.this.engine == "podman" && modelplane_gpu_cluster.this.node_pool[0].gpu_count == 0
    error_message = "by default: the engine found (mocked: podman), no GPUs required"
  }

  assert {
    condition     = modelplane_serving_image.this.insecure == false && modelplane_model_store.this.force_destroy == false && modelplane_model_store.this.path == null
    error_message = "by default: TLS to the registry, versions kept on destroy, the store under the state folder"
  }
}

run "one_box" {
  command = apply

  variables {
    registry_insecure = true
    gpus              = 1
    engine            = "/usr/bin/podman"
    container         = { memory = "1g", extra_args = ["--network", "host"] }
    force_destroy     = true
  }

  assert {
    condition     = modelplane_serving_image.this.source == "../../target/image/modelplane-serve" && modelplane_serving_image.this.repository == "registry.plant.local/ml/modelplane-serve" && modelplane_serving_image.this.insecure
    error_message = "the bundled image is pushed to the registry given"
  }

  assert {
    condition     = modelplane_gpu_cluster.this.platform == "container" && modelplane_gpu_cluster.this.name == "line-1" && modelplane_gpu_cluster.this.engine == "/usr/bin/podman"
    error_message = "the box is a container cluster with the engine given"
  }

  assert {
    condition     = modelplane_gpu_cluster.this.node_pool[0].gpu_count == 1 && modelplane_gpu_cluster.this.node_pool[0].purpose == "inference"
    error_message = "the box must have the GPUs given"
  }

  assert {
    condition     = modelplane_model_store.this.backend == "local" && modelplane_model_store.this.name == "line-1" && modelplane_model_store.this.force_destroy
    error_message = "models live on the box's disk"
  }

  assert {
    condition     = output.cluster_id == "container/line-1" && output.store_id == "file:///var/lib/modelplane/stores/line-1"
    error_message = "cluster_id and store_id are the ids"
  }

  assert {
    condition     = output.image == { reference = modelplane_serving_image.this.reference, tagged_reference = "registry.plant.local/ml/modelplane-serve:0.1.0", version = "0.1.0" }
    error_message = "image is { reference, tagged_reference, version } of the pushed image"
  }

  assert {
    condition     = output.box.engine == "/usr/bin/podman" && output.box.engine_version == "5.0.0" && output.box.cpus == 4 && output.box.memory_bytes == 8589934592
    error_message = "box is the engine and the inventory"
  }

  assert {
    condition     = keys(output.endpoints) == ["iris"] && keys(output.endpoints["iris"]) == ["benchmark", "grpc_address", "infer_url", "running_image", "token_file"]
    error_message = "endpoints is name => { infer_url, grpc_address, token_file, running_image, benchmark }"
  }

  assert {
    condition     = output.endpoints["iris"].infer_url == "http://127.0.0.1:18080/v2/models/iris/infer" && output.endpoints["iris"].running_image == modelplane_serving_image.this.reference
    error_message = "the endpoint serves iris from the pushed image"
  }

  assert {
    condition     = keys(module.endpoint["iris"].model_ids) == ["2"]
    error_message = "one model per version"
  }
}

run "good_values_plan" {
  command = plan

  variables {
    name      = "Plant_2.line-b"
    registry  = "registry.plant.local:5000/ml/serve"
    engine    = "docker"
    gpus      = 0
    container = { restart = "on-failure", memory = "512M", cpus = 2 }
  }

  assert {
    condition     = modelplane_gpu_cluster.this.name == "Plant_2.line-b" && modelplane_serving_image.this.repository == "registry.plant.local:5000/ml/serve"
    error_message = "good values are accepted"
  }
}

run "name_refused" {
  command = plan
  variables {
    name = ".line"
  }
  expect_failures = [var.name]
}

run "registry_with_tag_refused" {
  command = plan
  variables {
    registry = "registry.plant.local/ml/modelplane-serve:latest"
  }
  expect_failures = [var.registry]
}

run "registry_upper_case_path_refused" {
  command = plan
  variables {
    registry = "registry.plant.local/ML/Serve"
  }
  expect_failures = [var.registry]
}

run "registry_without_path_refused" {
  command = plan
  variables {
    registry = "registry.plant.local"
  }
  expect_failures = [var.registry]
}

run "engine_refused" {
  command = plan
  variables {
    engine = "containerd"
  }
  expect_failures = [var.engine]
}

run "gpus_refused" {
  command = plan
  variables {
    gpus = -1
  }
  expect_failures = [var.gpus]
}

run "container_restart_refused" {
  command = plan
  variables {
    container = { restart = "sometimes" }
  }
  expect_failures = [var.container]
}

run "container_memory_refused" {
  command = plan
  variables {
    container = { memory = "2 GB" }
  }
  expect_failures = [var.container]
}

run "weights_not_100_refused" {
  command = plan
  variables {
    endpoints = {
      iris = {
        versions = {
          "1" = { source = "a.onnx", weight = 50 }
          "2" = { source = "b.onnx", weight = 49 }
        }
      }
    }
  }
  expect_failures = [var.endpoints]
}
