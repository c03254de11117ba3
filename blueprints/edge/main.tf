# The edge platform: one box by the production line with podman or docker. The bundled image
# is pushed into the site's registry (air-gapped is fine: nothing is pulled from the
# internet), the box is a `container` cluster, models live in a store on its disk, and each
# model is an endpoint (modules/endpoint) running the image by digest. Compared with
# blueprints/local, only the cluster's platform and the image differ: the endpoints are the
# same module with the same inputs.

resource "modelplane_serving_image" "this" {
  source      = var.image_source
  repository  = var.registry
  insecure    = var.registry_insecure
  username    = var.registry_username
  password_wo = var.registry_password
}

resource "modelplane_gpu_cluster" "this" {
  name     = var.name
  platform = "container"
  engine   = var.engine

  node_pool {
    name      = "line"
    purpose   = "inference"
    gpu_count = var.gpus
  }
}

resource "modelplane_model_store" "this" {
  name          = var.name
  backend       = "local"
  path          = var.store_path
  force_destroy = var.force_destroy
}

module "endpoint" {
  source   = "../../modules/endpoint"
  for_each = var.endpoints

  name             = each.key
  cluster_id       = modelplane_gpu_cluster.this.id
  store_id         = modelplane_model_store.this.id
  image            = modelplane_serving_image.this.reference
  container        = merge(var.container, { gpus = each.value.gpus })
  versions         = each.value.versions
  validation       = each.value.validation
  baseline         = each.value.baseline
  benchmark        = each.value.benchmark
  port             = each.value.port
  monitoring       = each.value.monitoring
  require_approval = each.value.require_approval
  approvals        = each.value.approvals
}
