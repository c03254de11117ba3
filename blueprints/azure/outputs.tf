output "cluster_id" {
  description = "The cluster's id (azure/NAME), for more endpoints."
  value       = modelplane_gpu_cluster.this.id
}

output "cluster_resource_id" {
  description = "The managed cluster's Azure resource ID."
  value       = modelplane_gpu_cluster.this.resource_id
}

output "kubeconfig" {
  description = "A kubeconfig for the cluster (exec form, `kubelogin` with the Azure CLI's login: it holds no secret)."
  value       = modelplane_gpu_cluster.this.kubeconfig
}

output "oidc_issuer" {
  description = "The cluster's OIDC issuer, for federated credentials of your own."
  value       = modelplane_gpu_cluster.this.oidc_issuer
}

output "node_pools" {
  description = "The AKS agent pools: name, VM size, priority, sizes, provisioning state."
  value       = modelplane_gpu_cluster.this.node_groups
}

output "namespaces" {
  description = "purpose => namespace of each partition."
  value       = { for p in modelplane_gpu_cluster.this.partition : p.purpose => p.namespace }
}

output "store_id" {
  description = "The model store's id (its URI)."
  value       = modelplane_model_store.this.id
}

output "image" {
  description = "The bundled image in ACR, by digest, that every endpoint runs."
  value       = modelplane_serving_image.this.reference
}

output "registry_id" {
  description = "The registry's Azure resource ID."
  value       = modelplane_serving_image.this.registry_id
}

output "endpoints" {
  description = "name => in-cluster URL (http://NAME.NAMESPACE.svc.cluster.local:8080) and gRPC address of each endpoint."
  value = {
    for name, e in module.endpoint : name => {
      url          = e.url
      grpc_address = e.grpc_address
      id           = e.endpoint_id
    }
  }
}

output "estimated_cost" {
  description = "What the cluster and each endpoint cost, known at plan: the cluster's and each endpoint's `estimated_cost` (hourly and monthly at the smallest, desired and largest sizes). Null where nothing is priced."
  value = {
    cluster   = modelplane_gpu_cluster.this.estimated_cost
    endpoints = { for name, e in module.endpoint : name => e.estimated_cost }
  }
}
