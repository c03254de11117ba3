# The local platform: this machine as a cluster, a model store on disk, and one endpoint per
# model (modules/endpoint). Moving to Kubernetes or a cloud changes the cluster and store
# blocks, not the endpoints.

resource "modelplane_gpu_cluster" "this" {
  name     = var.name
  platform = "local"

  node_pool {
    name    = "default"
    purpose = "inference"
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
  versions         = each.value.versions
  validation       = each.value.validation
  baseline         = each.value.baseline
  benchmark        = each.value.benchmark
  port             = each.value.port
  monitoring       = each.value.monitoring
  require_approval = each.value.require_approval
  approvals        = each.value.approvals
}
