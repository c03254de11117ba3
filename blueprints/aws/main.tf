# AWS: an EKS cluster with a GPU node group for inference (on demand or spot) and a CPU node
# group for dev, the NVIDIA device plugin, GPU partitions per purpose, models in S3, the
# bundled image in ECR, and each model an endpoint (modules/endpoint) in the inference
# partition, reading S3 through its own IRSA role, with a monitor beside it.
#
# Compared with blueprints/on-prem-kubernetes, the cluster is created here (platform "aws",
# node pools), the store is S3 and the registry ECR; the endpoints object is the same, so a
# model moves between them by moving its entry. Credentials and region come from the
# provider's `aws` block and the AWS default chain; nothing secret enters the state.

locals {
  gpu_pool = var.inference_pool
}

resource "modelplane_serving_image" "this" {
  source     = var.image_source
  repository = var.ecr_repository
  insecure   = var.registry_insecure

  ecr {
    keep_images  = var.ecr_keep_images
    force_delete = var.force_destroy
  }
}

resource "modelplane_gpu_cluster" "this" {
  name     = var.name
  platform = "aws"

  dynamic "budget" {
    for_each = var.budget == null ? [] : [var.budget]
    content {
      monthly = budget.value.monthly
      action  = budget.value.action
    }
  }

  aws {
    kubernetes_version = var.kubernetes_version
    subnet_ids         = var.subnet_ids
    security_group_ids = var.security_group_ids
    adopt              = var.adopt
  }

  node_pool {
    name           = "gpu"
    purpose        = "inference"
    instance_types = local.gpu_pool.instance_types
    gpu_count      = local.gpu_pool.gpu_count
    min_size       = local.gpu_pool.min_size
    max_size       = local.gpu_pool.max_size
    desired_size   = local.gpu_pool.desired_size
    spot           = local.gpu_pool.spot

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
      instance_type = node_pool.value.instance_type
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

resource "modelplane_model_store" "this" {
  name          = var.store.bucket
  backend       = "s3"
  region        = var.store.region
  create        = var.store.create
  force_destroy = var.force_destroy
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
  pricing          = coalesce(each.value.pricing, { instance_type = local.gpu_pool.instance_types[0], spot = local.gpu_pool.spot, gpu_product = null })
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
