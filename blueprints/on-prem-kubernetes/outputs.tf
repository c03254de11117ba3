output "cluster_id" {
  description = "The cluster's id (kubernetes/NAME), for more endpoints."
  value       = modelplane_gpu_cluster.this.id
}

output "namespaces" {
  description = "purpose => namespace of each partition."
  value       = { for p in modelplane_gpu_cluster.this.partition : p.purpose => p.namespace }
}

output "nodes" {
  description = "The cluster's nodes and the GPUs each advertises."
  value       = modelplane_gpu_cluster.this.nodes
}

output "store_id" {
  description = "The model store's id (its URI)."
  value       = modelplane_model_store.this.id
}

output "image" {
  description = "The bundled image, by digest, that every endpoint runs."
  value       = modelplane_serving_image.this.reference
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
