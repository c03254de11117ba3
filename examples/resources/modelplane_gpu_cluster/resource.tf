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

# An edge box: its podman (or docker) runs the endpoints as containers.
resource "modelplane_gpu_cluster" "line" {
  name     = "line-1"
  platform = "container"
  engine   = "podman" # default: the first of podman and docker on PATH
}

output "engine" {
  value = "${modelplane_gpu_cluster.line.engine} ${modelplane_gpu_cluster.line.engine_version}"
}
