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

# An on-prem Kubernetes or OpenShift cluster (the provider's kubernetes block, or KUBECONFIG,
# says which), adopted and divided into GPU partitions: a namespace per purpose with its GPU
# quota, limits, priority, node selection and tolerations.
resource "modelplane_gpu_cluster" "shared" {
  name     = "gpu"
  platform = "kubernetes"

  partition {
    purpose          = "inference" # namespace gpu-inference
    gpus             = 4
    cpu              = "32"
    memory           = "128Gi"
    max_gpus_per_pod = 1
    node_selector    = { "nvidia.com/gpu.product" = "NVIDIA-L4" }
  }

  partition {
    purpose       = "training"
    gpus          = 8
    spot          = true # tolerate the spot taints of AKS, EKS and GKE
    node_selector = { "nvidia.com/gpu.product" = "NVIDIA-A100-SXM4-80GB" }

    toleration {
      key    = "dedicated"
      value  = "training"
      effect = "NoSchedule"
    }
  }

  partition {
    purpose   = "dev"
    namespace = "ml-sandbox"
    gpus      = 1
  }
}

output "gpu_nodes" {
  value = [for n in modelplane_gpu_cluster.shared.nodes : "${n.name}: ${n.gpus} x ${coalesce(n.product, "?")}" if n.gpus > 0]
}
