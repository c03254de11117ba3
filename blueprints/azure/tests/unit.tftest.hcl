# Unit tests of blueprints/azure with a mocked provider only: a real run needs an Azure
# subscription (AKS, Blob Storage, ACR; provider/tests/azure.rs runs against emulators).
# Here: every variable's validation, and the wiring of a mocked apply: the AKS cluster with
# its GPU and dev agent pools and partitions, the Blob store, the image in ACR attached to
# the cluster, one endpoint per entry in the inference partition, outputs shaped as
# documented.
#
#   terraform init && terraform test

# The provider checks references at validation, mocked or not: the mocked ids and the image
# reference look like real ones.
mock_provider "modelplane" {
  mock_resource "modelplane_serving_image" {
    defaults = {
      reference   = "mlregistry01.azurecr.io/modelplane-serve@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
      registry_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ml/providers/Microsoft.ContainerRegistry/registries/mlregistry01"
    }
  }

  mock_resource "modelplane_gpu_cluster" {
    defaults = {
      id          = "azure/gpu"
      resource_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ml/providers/Microsoft.ContainerService/managedClusters/gpu"
      oidc_issuer = "https://eastus.oic.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/EXAMPLE/"
    }
  }

  mock_resource "modelplane_model_store" {
    defaults = {
      id = "az://mlmodels01/models"
    }
  }

  mock_resource "modelplane_model" {
    defaults = {
      id = "az://mlmodels01/models/iris/1"
    }
  }

  mock_resource "modelplane_endpoint" {
    defaults = {
      id           = "azure/gpu/iris"
      url          = "http://iris.gpu-inference.svc.cluster.local:8080"
      grpc_address = "iris.gpu-inference.svc.cluster.local:9000"
    }
  }
}

variables {
  name = "gpu"
  partitions = {
    inference = { gpus = 2, namespace = "gpu-inference", max_gpus_per_pod = 1 }
    dev       = { gpus = 0, namespace = "gpu-dev" }
  }
  store        = { account = "mlmodels01", container = "models" }
  image_source = "../../target/image/modelplane-serve"
  acr_name     = "mlregistry01"
  endpoints = {
    iris = {
      versions = {
        "1" = { source = "../../examples/quickstart/model/iris-v1.onnx", weight = 100 }
      }
      monitoring = { drift_psi_above = 0.2 }
      kubernetes = { cpu = "500m", memory = "512Mi" }
    }
  }
}

run "aks" {
  command = apply

  variables {
    inference_pool = { vm_size = "Standard_NC24ads_A100_v4", min_size = 0, max_size = 2, desired_size = 1, spot = true, spot_max_price = 1.5, gpu_instance = "MIG1g", gpu_sharing_replicas = 2 }
    force_destroy  = true
  }

  assert {
    condition     = modelplane_gpu_cluster.this.platform == "azure" && modelplane_gpu_cluster.this.name == "gpu"
    error_message = "the cluster is an AKS cluster named name"
  }

  assert {
    condition     = modelplane_gpu_cluster.this.azure.kubernetes_version == "1.33" && modelplane_gpu_cluster.this.azure.create_resource_group && modelplane_gpu_cluster.this.azure.adopt == false && modelplane_gpu_cluster.this.azure.system_vm_size == "Standard_D4s_v5"
    error_message = "Kubernetes 1.33, the resource group created, not adopted, D4s_v5 system nodes by default"
  }

  assert {
    condition     = [for p in modelplane_gpu_cluster.this.node_pool : p.name] == ["gpu", "dev"]
    error_message = "a GPU agent pool and, by default, a dev agent pool"
  }

  assert {
    condition     = modelplane_gpu_cluster.this.node_pool[0].purpose == "inference" && modelplane_gpu_cluster.this.node_pool[0].instance_type == "Standard_NC24ads_A100_v4" && modelplane_gpu_cluster.this.node_pool[0].gpu_count == 1
    error_message = "the GPU pool runs inference on the VM size given"
  }

  assert {
    condition     = modelplane_gpu_cluster.this.node_pool[0].spot && modelplane_gpu_cluster.this.node_pool[0].spot_max_price == 1.5 && modelplane_gpu_cluster.this.node_pool[0].gpu_instance == "MIG1g"
    error_message = "spot with its price cap, MIG"
  }

  assert {
    condition     = modelplane_gpu_cluster.this.node_pool[0].min_size == 0 && modelplane_gpu_cluster.this.node_pool[0].max_size == 2 && modelplane_gpu_cluster.this.node_pool[0].desired_size == 1 && modelplane_gpu_cluster.this.node_pool[0].gpu_sharing.replicas == 2
    error_message = "the GPU pool's sizes and time-slicing"
  }

  assert {
    condition     = modelplane_gpu_cluster.this.node_pool[1].purpose == "dev" && modelplane_gpu_cluster.this.node_pool[1].instance_type == "Standard_D4s_v5" && modelplane_gpu_cluster.this.node_pool[1].max_size == 2
    error_message = "the dev pool's defaults"
  }

  assert {
    condition     = [for p in modelplane_gpu_cluster.this.partition : p.purpose] == ["dev", "inference"] && modelplane_gpu_cluster.this.timeouts.create == "60m"
    error_message = "one partition per entry; a 60m create timeout"
  }

  assert {
    condition     = modelplane_model_store.this.backend == "azure_blob" && modelplane_model_store.this.storage_account == "mlmodels01" && modelplane_model_store.this.name == "models" && modelplane_model_store.this.endpoint == null && modelplane_model_store.this.create && modelplane_model_store.this.force_destroy
    error_message = "the store is the Blob container given, in the account given"
  }

  assert {
    condition     = modelplane_serving_image.this.repository == "modelplane-serve" && modelplane_serving_image.this.acr.registry == "mlregistry01" && modelplane_serving_image.this.acr.attach_clusters == tolist(["azure/gpu"]) && modelplane_serving_image.this.acr.force_delete
    error_message = "the image goes to the ACR given, attached to the cluster"
  }

  assert {
    condition     = output.cluster_id == "azure/gpu" && output.cluster_resource_id == modelplane_gpu_cluster.this.resource_id && output.oidc_issuer == modelplane_gpu_cluster.this.oidc_issuer
    error_message = "cluster_id, cluster_resource_id and oidc_issuer come from the cluster"
  }

  assert {
    condition     = output.store_id == "az://mlmodels01/models" && output.image == modelplane_serving_image.this.reference && output.registry_id == modelplane_serving_image.this.registry_id
    error_message = "store_id, image and registry_id are the ids"
  }

  assert {
    condition     = output.namespaces == { dev = "gpu-dev", inference = "gpu-inference" }
    error_message = "namespaces is purpose => namespace"
  }

  assert {
    condition     = output.endpoints == { iris = { url = "http://iris.gpu-inference.svc.cluster.local:8080", grpc_address = "iris.gpu-inference.svc.cluster.local:9000", id = "azure/gpu/iris" } }
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

run "adopt_without_dev_pool" {
  command = apply

  variables {
    adopt                 = true
    create_resource_group = false
    dev_pool              = null
    kubernetes_version    = "1.32"
    system_vm_size        = "Standard_D2s_v5"
    budget                = { monthly = 2000 }
    store                 = { account = "mlmodels01", container = "models-2", create = false, endpoint = "http://127.0.0.1:10000/mlmodels01" }
    image_repository      = "ml/modelplane-serve"
    endpoints             = {}
  }

  assert {
    condition     = modelplane_gpu_cluster.this.azure.adopt && modelplane_gpu_cluster.this.azure.create_resource_group == false && modelplane_gpu_cluster.this.azure.kubernetes_version == "1.32" && modelplane_gpu_cluster.this.azure.system_vm_size == "Standard_D2s_v5"
    error_message = "an adopted cluster with the settings given"
  }

  assert {
    condition     = length(modelplane_gpu_cluster.this.node_pool) == 1 && modelplane_gpu_cluster.this.node_pool[0].instance_type == "Standard_NC4as_T4_v3" && modelplane_gpu_cluster.this.node_pool[0].spot == false && modelplane_gpu_cluster.this.node_pool[0].spot_max_price == null && modelplane_gpu_cluster.this.node_pool[0].gpu_sharing == null
    error_message = "no dev pool; the GPU pool's defaults: NC4as_T4_v3, on demand, no time-slicing"
  }

  assert {
    condition     = modelplane_gpu_cluster.this.budget.monthly == 2000 && modelplane_gpu_cluster.this.budget.action == "error"
    error_message = "the budget fails the plan by default"
  }

  assert {
    condition     = modelplane_model_store.this.create == false && modelplane_model_store.this.endpoint == "http://127.0.0.1:10000/mlmodels01" && modelplane_serving_image.this.repository == "ml/modelplane-serve"
    error_message = "an existing container at the endpoint given; the repository given"
  }

  assert {
    condition     = output.endpoints == {}
    error_message = "no endpoints: an empty map"
  }
}

run "spot_price_only_with_spot" {
  command = plan

  variables {
    inference_pool = { spot = false, spot_max_price = 1.5 }
  }

  assert {
    condition     = modelplane_gpu_cluster.this.node_pool[0].spot_max_price == null
    error_message = "spot_max_price applies only to spot pools"
  }
}

run "name_refused" {
  command = plan
  variables {
    name = "gpu_1"
  }
  expect_failures = [var.name]
}

run "kubernetes_version_refused" {
  command = plan
  variables {
    kubernetes_version = "v1.33"
  }
  expect_failures = [var.kubernetes_version]
}

run "pool_sizes_refused" {
  command = plan
  variables {
    inference_pool = { min_size = -1 }
  }
  expect_failures = [var.inference_pool]
}

run "pool_desired_refused" {
  command = plan
  variables {
    inference_pool = { min_size = 2, max_size = 4, desired_size = 1 }
  }
  expect_failures = [var.inference_pool]
}

run "pool_vm_size_refused" {
  command = plan
  variables {
    inference_pool = { vm_size = "Standard_D4s_v5" }
  }
  expect_failures = [var.inference_pool]
}

run "partition_purpose_refused" {
  command = plan
  variables {
    partitions = {
      inference = { gpus = 1 }
      research  = { gpus = 1 }
    }
  }
  expect_failures = [var.partitions]
}

run "partitions_without_inference_refused" {
  command = plan
  variables {
    partitions = {
      training = { gpus = 2 }
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

run "store_account_refused" {
  command = plan
  variables {
    store = { account = "ML-Models", container = "models" }
  }
  expect_failures = [var.store]
}

run "store_container_refused" {
  command = plan
  variables {
    store = { account = "mlmodels01", container = "models--v1" }
  }
  expect_failures = [var.store]
}

run "acr_name_refused" {
  command = plan
  variables {
    acr_name = "ml-registry"
  }
  expect_failures = [var.acr_name]
}

run "weights_not_100_refused" {
  command = plan
  variables {
    endpoints = {
      iris = {
        versions = {
          "1" = { source = "a.onnx", weight = 70 }
          "2" = { source = "b.onnx", weight = 70 }
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
        kubernetes = { min_replicas = 4, max_replicas = 3 }
      }
    }
  }
  expect_failures = [var.endpoints]
}
