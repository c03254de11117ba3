# This machine as a cluster. Its inventory is computed.
resource "modelplane_gpu_cluster" "inference" {
  name     = "inference"
  platform = "local"

  node_pool {
    name      = "gpu"
    purpose   = "inference"
    gpu_count = 0 # NVML must find at least this many GPUs here
  }
}

output "gpus" {
  value = [for g in modelplane_gpu_cluster.inference.gpus : "${g.name} ${g.memory_bytes / 1073741824} GiB (driver ${g.driver_version}, CUDA ${g.cuda_version})"]
}
