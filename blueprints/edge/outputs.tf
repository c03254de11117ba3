output "cluster_id" {
  description = "The cluster's id."
  value       = modelplane_gpu_cluster.this.id
}

output "store_id" {
  description = "The model store's id."
  value       = modelplane_model_store.this.id
}

output "image" {
  description = "The pushed image: digest-pinned reference, tag and server version."
  value = {
    reference        = modelplane_serving_image.this.reference
    tagged_reference = modelplane_serving_image.this.tagged_reference
    version          = modelplane_serving_image.this.version
  }
}

output "box" {
  description = "The box: engine and version, CPUs, memory and GPUs."
  value = {
    engine         = modelplane_gpu_cluster.this.engine
    engine_version = modelplane_gpu_cluster.this.engine_version
    cpus           = modelplane_gpu_cluster.this.cpus
    memory_bytes   = modelplane_gpu_cluster.this.memory_bytes
    gpus           = modelplane_gpu_cluster.this.gpus
  }
}

output "endpoints" {
  description = "name => { infer_url, grpc_address, token_file, running_image, benchmark }."
  value = {
    for n, e in module.endpoint : n => {
      infer_url     = e.infer_url
      grpc_address  = e.grpc_address
      token_file    = e.token_file
      running_image = e.running_image
      benchmark     = e.benchmark
    }
  }
}
