# Unit tests of blueprints/on-prem-kubernetes with a mocked provider only: a real run needs a
# Kubernetes cluster, an S3-compatible store and a registry (provider/tests/
# kubernetes_terraform.rs applies against one when KUBECONFIG names it). Here: every
# variable's validation, and the wiring of a mocked apply: the partitions, the store, the
# pushed image, one endpoint per entry in the inference partition, outputs shaped as
# documented.
#
#   terraform init && terraform test

# The provider checks references at validation, mocked or not: the mocked ids and the image
# reference look like real ones.
mock_provider "modelplane" {
  mock_resource "modelplane_serving_image" {
    defaults = {
      reference = "registry.ml.internal/modelplane/serve@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    }
  }

  mock_resource "modelplane_gpu_cluster" {
    defaults = {
      id = "kubernetes/gpu"
    }
  }

  mock_resource "modelplane_model_store" {
    defaults = {
      id = "s3://models?endpoint=http%3A%2F%2Fminio.ml.internal%3A9000&region=us-east-1"
    }
  }

  mock_resource "modelplane_model" {
    defaults = {
      id = "s3://models?endpoint=http%3A%2F%2Fminio.ml.internal%3A9000&region=us-east-1/iris/1"
    }
  }

  mock_resource "modelplane_endpoint" {
    defaults = {
      id           = "kubernetes/gpu/iris"
      url          = "http://iris.gpu-inference.svc.cluster.local:8080"
      grpc_address = "iris.gpu-inference.svc.cluster.local:9000"
    }
  }
}

variables {
  name = "gpu"
  partitions = {
    inference = { gpus = 2, namespace = "gpu-inference", cpu = "16", memory = "64Gi", max_gpus_per_pod = 1 }
    training  = { gpus = 4, namespace = "gpu-training", spot = true, node_selector = { "nvidia.com/gpu.product" = "NVIDIA-A100-SXM4-80GB" } }
  }
  store                    = { bucket = "models", endpoint = "http://minio.ml.internal:9000" }
  store_credentials_secret = "minio-credentials"
  image_source             = "../../target/image/modelplane-serve"
  registry                 = "registry.ml.internal/modelplane/serve"
  # Terraform 1.11's test runner loses an ephemeral variable left at its default (null)
  # between plan and apply ("was not set during the plan phase"): set, it is kept.
  registry_username = "ci"
  registry_password = "not-a-secret"
  endpoints = {
    iris = {
      versions = {
        "1" = { source = "../../examples/quickstart/model/iris-v1.onnx", weight = 100 }
      }
      monitoring = { p99_ms_above = 50 }
      kubernetes = { cpu = "500m", memory = "512Mi", expose = { kind = "ingress", host = "iris.ml.internal" } }
    }
  }
}

run "lab" {
  command = apply

  assert {
    condition     = modelplane_gpu_cluster.this.platform == "kubernetes" && modelplane_gpu_cluster.this.name == "gpu" && modelplane_gpu_cluster.this.budget == null
    error_message = "the cluster is the existing Kubernetes one, without a budget unless given"
  }

  assert {
    condition     = [for p in modelplane_gpu_cluster.this.partition : p.purpose] == ["inference", "training"]
    error_message = "one partition per entry of partitions"
  }

  assert {
    condition     = modelplane_gpu_cluster.this.partition[0].gpus == 2 && modelplane_gpu_cluster.this.partition[0].max_gpus_per_pod == 1 && modelplane_gpu_cluster.this.partition[0].spot == false
    error_message = "the inference partition's quota reaches the cluster; spot defaults to false"
  }

  assert {
    condition     = modelplane_gpu_cluster.this.partition[1].spot && modelplane_gpu_cluster.this.partition[1].node_selector["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    error_message = "the training partition tolerates spot and selects its nodes"
  }

  assert {
    condition     = modelplane_model_store.this.backend == "s3_compatible" && modelplane_model_store.this.name == "models" && modelplane_model_store.this.endpoint == "http://minio.ml.internal:9000" && modelplane_model_store.this.region == "us-east-1" && modelplane_model_store.this.create
    error_message = "the store is the bucket at the endpoint given, created, us-east-1 by default"
  }

  assert {
    condition     = modelplane_serving_image.this.repository == "registry.ml.internal/modelplane/serve" && modelplane_serving_image.this.insecure == false
    error_message = "the image is pushed to the registry given"
  }

  assert {
    condition     = output.cluster_id == "kubernetes/gpu" && output.store_id == modelplane_model_store.this.id && output.image == modelplane_serving_image.this.reference
    error_message = "cluster_id, store_id and image are the ids"
  }

  assert {
    condition     = output.namespaces == { inference = "gpu-inference", training = "gpu-training" }
    error_message = "namespaces is purpose => namespace"
  }

  assert {
    condition     = output.endpoints == { iris = { url = "http://iris.gpu-inference.svc.cluster.local:8080", grpc_address = "iris.gpu-inference.svc.cluster.local:9000", id = "kubernetes/gpu/iris" } }
    error_message = "endpoints is name => { url, grpc_address, id }"
  }

  assert {
    condition     = keys(output.estimated_cost) == ["cluster", "endpoints"] && keys(output.estimated_cost.endpoints) == ["iris"]
    error_message = "estimated_cost is { cluster, endpoints = name => estimate }"
  }

  assert {
    condition     = keys(module.endpoint["iris"].model_ids) == ["1"] && module.endpoint["iris"].prometheus_url != null
    error_message = "one model per version; a monitor with monitoring"
  }
}

run "budget_and_no_endpoints" {
  command = apply

  variables {
    endpoints = {}
    budget    = { monthly = 500 }
    store     = { bucket = "ml.models-2", endpoint = "https://rgw.ml.internal", region = "eu-1", create = false }
  }

  assert {
    condition     = modelplane_gpu_cluster.this.budget.monthly == 500 && modelplane_gpu_cluster.this.budget.action == "error"
    error_message = "the cluster's budget fails the plan by default"
  }

  assert {
    condition     = modelplane_model_store.this.create == false && modelplane_model_store.this.region == "eu-1"
    error_message = "an existing bucket is adopted"
  }

  assert {
    condition     = output.endpoints == {} && output.estimated_cost.endpoints == {}
    error_message = "no endpoints: empty maps"
  }
}

run "name_refused" {
  command = plan
  variables {
    name = "GPU"
  }
  expect_failures = [var.name]
}

run "name_too_long_refused" {
  command = plan
  variables {
    name = "a234567890123456789012345678901234567890123"
  }
  expect_failures = [var.name]
}

run "partition_purpose_refused" {
  command = plan
  variables {
    partitions = {
      inference = { gpus = 1 }
      serving   = { gpus = 1 }
    }
  }
  expect_failures = [var.partitions]
}

run "partitions_without_inference_refused" {
  command = plan
  variables {
    partitions = {
      training = { gpus = 1 }
    }
    endpoints = {}
  }
  expect_failures = [var.partitions]
}

run "partition_gpus_refused" {
  command = plan
  variables {
    partitions = {
      inference = { gpus = -1 }
    }
  }
  expect_failures = [var.partitions]
}

run "store_endpoint_refused" {
  command = plan
  variables {
    store = { bucket = "models", endpoint = "minio.ml.internal:9000" }
  }
  expect_failures = [var.store]
}

run "store_bucket_refused" {
  command = plan
  variables {
    store = { bucket = "Models_1", endpoint = "http://minio.ml.internal:9000" }
  }
  expect_failures = [var.store]
}

run "registry_refused" {
  command = plan
  variables {
    registry = "registry.ml.internal/modelplane/serve@sha256:0123"
  }
  expect_failures = [var.registry]
}

run "weights_not_100_refused" {
  command = plan
  variables {
    endpoints = {
      iris = {
        versions = {
          "1" = { source = "a.onnx", weight = 90 }
          "2" = { source = "b.onnx", weight = 20 }
        }
      }
    }
  }
  expect_failures = [var.endpoints]
}

run "replicas_refused" {
  command = plan
  variables {
    endpoints = {
      iris = {
        versions = {
          "1" = { source = "a.onnx", weight = 100 }
        }
        kubernetes = { min_replicas = 3, max_replicas = 2 }
      }
    }
  }
  expect_failures = [var.endpoints]
}

run "default_replicas_refused" {
  command = plan
  variables {
    endpoints = {
      iris = {
        versions = {
          "1" = { source = "a.onnx", weight = 100 }
        }
        kubernetes = { min_replicas = 5 }
      }
    }
  }
  expect_failures = [var.endpoints]
}
