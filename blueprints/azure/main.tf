# Azure: an AKS cluster with a GPU agent pool for inference (on demand or spot, MIG or
# time-sliced) and a CPU pool for dev, the NVIDIA device plugin, GPU partitions per purpose,
# models in Blob Storage, the bundled image in ACR (pulled by the cluster's kubelet identity),
# and each model an endpoint (modules/endpoint) in the inference partition, with a monitor
# beside it.
#
# Compared with blueprints/on-prem-kubernetes, the cluster is created here (platform "azure",
# node pools), the store is Blob Storage and the registry ACR; the endpoints object is the
# same, so a model moves between them by moving its entry. Subscription, resource group and
# location come from the provider's `azure` block, credentials from the Azure identity chain
# (environment, workload identity, managed identity, Azure CLI); nothing secret enters the
# state.

locals {
  gpu_pool = var.inference_pool
}

resource "modelplane_gpu_cluster" "this" {
  name     = var.name
  platform = "azure"

  dynamic "budget" {
    for_each = var.budget == null ? [] : [var.budget]
    content {
      monthly = budget.value.monthly
      action  = budget.value.action
    }
  }

  azure {
    kubernetes_version    = var.kubernetes_version
    create_resource_group = var.create_resource_group
    adopt                 = var.adopt
    system_vm_size        = var.system_vm_size
  }

  node_pool {
    name           = "gpu"
    purpose        = "inference"
    instance_type  = local.gpu_pool.vm_size
    gpu_count      = local.gpu_pool.gpu_count
    min_size       = local.gpu_pool.min_size
    max_size       = local.gpu_pool.max_size
    desired_size   = local.gpu_pool.desired_size
    spot           = local.gpu_pool.spot
    spot_max_price = local.gpu_pool.spot ? local.gpu_pool.spot_max_price : null
    gpu_instance   = local.gpu_pool.gpu_instance

    dynamic "gpu_sharing" {
      for_each = local.gpu_pool.gpu_sharing_replicas == null ? [] : [local.gpu_pool.gpu_sharing_replicas]
      content {
        replicas = gpu_sharing.value
      }
    }
  }

  dynamic "node_pool" {
    for_each = var.dev_pool == null ? [] : [var.dev_pool]
    content {
      name          = "dev"
      purpose       = "dev"
      instance_type = node_pool.value.vm_size
      min_size      = node_pool.value.min_size
      max_size      = node_pool.value.max_size
    }
  }

  dynamic "partition" {
    for_each = var.partitions
    content {
      purpose          = partition.key
      namespace        = partition.value.namespace
      gpus             = partition.value.gpus
      cpu              = partition.value.cpu
      memory           = partition.value.memory
      max_gpus_per_pod = partition.value.max_gpus_per_pod
      node_selector    = partition.value.node_selector
      spot             = partition.value.spot
    }
  }

  timeouts {
    create = var.create_timeout
  }
}

resource "modelplane_serving_image" "this" {
  source     = var.image_source
  repository = var.image_repository
  insecure   = var.registry_insecure

  acr {
    registry        = var.acr_name
    attach_clusters = [modelplane_gpu_cluster.this.id]
    force_delete    = var.force_destroy
  }
}

resource "modelplane_model_store" "this" {
  name            = var.store.container
  backend         = "azure_blob"
  storage_account = var.store.account
  endpoint        = var.store.endpoint
  create          = var.store.create
  force_destroy   = var.force_destroy
}

module "endpoint" {
  source   = "../../modules/endpoint"
  for_each = var.endpoints

  # Endpoints find their partition's namespace in the cluster: it must exist first.
  name             = each.key
  cluster_id       = modelplane_gpu_cluster.this.id
  store_id         = modelplane_model_store.this.id
  image            = modelplane_serving_image.this.reference
  versions         = each.value.versions
  validation       = each.value.validation
  baseline         = each.value.baseline
  benchmark        = each.value.benchmark
  monitoring       = each.value.monitoring
  require_approval = each.value.require_approval
  approvals        = each.value.approvals
  pricing          = coalesce(each.value.pricing, { instance_type = local.gpu_pool.vm_size, spot = local.gpu_pool.spot, gpu_product = null })
  budget           = each.value.budget
  # Two replicas at least and up to four unless the endpoint says otherwise: a rolling update
  # or a lost node never takes the model down.
  kubernetes = merge(each.value.kubernetes, {
    min_replicas = coalesce(try(each.value.kubernetes.min_replicas, null), 2)
    max_replicas = coalesce(try(each.value.kubernetes.max_replicas, null), 4)
    partition    = "inference"
  })

  depends_on = [modelplane_gpu_cluster.this]
}
