output "cluster_id" {
  description = "The cluster's id."
  value       = modelplane_gpu_cluster.this.id
}

output "store_id" {
  description = "The model store's id."
  value       = modelplane_model_store.this.id
}

output "machine" {
  description = "This machine's CPUs, memory and GPUs."
  value = {
    cpus         = modelplane_gpu_cluster.this.cpus
    memory_bytes = modelplane_gpu_cluster.this.memory_bytes
    gpus         = modelplane_gpu_cluster.this.gpus
  }
}

output "endpoints" {
  description = "name => { infer_url, grpc_address, token_file, benchmark }."
  value = {
    for n, e in module.endpoint : n => {
      infer_url    = e.infer_url
      grpc_address = e.grpc_address
      token_file   = e.token_file
      benchmark    = e.benchmark
    }
  }
}
