# On-prem Kubernetes or OpenShift: an existing cluster is divided into GPU partitions (one
# namespace per purpose with its GPU quota, limits, priority and node selection), models live
# in an S3-compatible store (MinIO, Ceph RGW), the bundled image is pushed to the cluster's
# registry, and each model is an endpoint (modules/endpoint) running as a Deployment in the
# inference partition, with a monitor as PrometheusRule and ServiceMonitor where the
# prometheus-operator runs. Compared with blueprints/edge, the cluster's platform, the store's
# backend and the endpoints' `kubernetes` settings differ; the endpoints are the same module.
#
# The provider's `kubernetes` block (or KUBECONFIG) says which cluster; the store's
# credentials come from the AWS chain on the machine that runs Terraform, and from
# `store_credentials_secret` in the cluster.

resource "modelplane_serving_image" "this" {
  source      = var.image_source
  repository  = var.registry
  insecure    = var.registry_insecure
  username    = var.registry_username
  password_wo = var.registry_password
}

resource "modelplane_gpu_cluster" "this" {
  name     = var.name
  platform = "kubernetes"

  dynamic "budget" {
    for_each = var.budget == null ? [] : [var.budget]
    content {
      monthly = budget.value.monthly
      action  = budget.value.action
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
}

resource "modelplane_model_store" "this" {
  name          = var.store.bucket
  backend       = "s3_compatible"
  endpoint      = var.store.endpoint
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
  pricing          = each.value.pricing
  budget           = each.value.budget
  # Two replicas at least and up to four unless the endpoint says otherwise: a rolling update
  # or a lost node never takes the model down.
  kubernetes = merge(each.value.kubernetes, {
    min_replicas      = coalesce(try(each.value.kubernetes.min_replicas, null), 2)
    max_replicas      = coalesce(try(each.value.kubernetes.max_replicas, null), 4)
    partition         = "inference"
    env_from_secret   = var.store_credentials_secret
    image_pull_secret = var.image_pull_secret
  })

  depends_on = [modelplane_gpu_cluster.this]
}
