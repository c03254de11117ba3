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

# An EKS cluster created from nothing (the provider's aws block and the AWS default chain say
# where and as whom): its IAM roles, an OIDC provider for IRSA, a GPU node group whose AMI
# follows the instance type (AL2023 NVIDIA here), a CPU node group, the NVIDIA device plugin
# on the GPU nodes, and partitions as on kubernetes. Create waits until the GPUs are
# allocatable.
resource "modelplane_gpu_cluster" "eks" {
  name     = "ml-prod"
  platform = "aws"

  aws {
    kubernetes_version = "1.33"
    subnet_ids         = ["subnet-0a1b2c3d", "subnet-4e5f6a7b"] # the network team's VPC
  }

  node_pool {
    name           = "gpu"
    purpose        = "inference"
    instance_types = ["g6.xlarge", "g5.xlarge"] # one GPU family: they share an AMI
    gpu_count      = 1
    spot           = true
    min_size       = 1
    max_size       = 8
    desired_size   = 2 # honoured on create and on every change; clamped into [min, max]
    labels         = { team = "fraud" }
    # GPU pools get the taint nvidia.com/gpu=true:NoSchedule unless taints are given.

    gpu_sharing {
      replicas = 4 # time-slicing: four small models per GPU
    }
  }

  node_pool {
    name          = "system"
    purpose       = "dev"
    instance_type = "m7i.large"
    min_size      = 1
    max_size      = 2

    taint {
      key    = "dedicated"
      value  = "system"
      effect = "NoSchedule"
    }
  }

  partition {
    purpose          = "inference"
    gpus             = 32
    max_gpus_per_pod = 1
    spot             = true
  }

  timeouts {
    create = "45m"
  }

  # estimated_cost is in the plan (the EKS control plane and both pools, spot GPUs at the
  # table's spot price or their on-demand ceiling); over budget, the plan fails.
  budget {
    monthly = 6000
    action  = "error"
  }
}

output "eks_monthly_cost" {
  value = {
    at_desired = modelplane_gpu_cluster.eks.estimated_cost.monthly_desired
    at_most    = modelplane_gpu_cluster.eks.estimated_cost.monthly_max
    prices_of  = modelplane_gpu_cluster.eks.estimated_cost.prices_date
  }
}

output "eks" {
  value = {
    arn         = modelplane_gpu_cluster.eks.resource_id
    oidc_issuer = modelplane_gpu_cluster.eks.oidc_issuer
    node_groups = modelplane_gpu_cluster.eks.node_groups
    kubeconfig  = modelplane_gpu_cluster.eks.kubeconfig # exec form: no secret in it
  }
}

# An AKS cluster in the provider's azure.resource_group and azure.location (the Azure identity
# chain says as whom): a small system pool, Entra ID users with no local accounts, the OIDC
# issuer and workload identity; a T4 agent pool on spot capacity and an A100 pool split by
# MIG, the NVIDIA device plugin, and partitions as on kubernetes. AKS's own spot taint
# (kubernetes.azure.com/scalesetpriority=spot) is tolerated and never shows as drift.
resource "modelplane_gpu_cluster" "aks" {
  name     = "ml-prod"
  platform = "azure"

  azure {
    kubernetes_version    = "1.33"
    create_resource_group = true
  }

  node_pool {
    name           = "t4spot" # AKS: 1 to 12 lower-case letters and digits
    purpose        = "inference"
    instance_type  = "Standard_NC4as_T4_v3"
    gpu_count      = 1
    spot           = true
    spot_max_price = 0.3 # USD an hour; -1 (default): up to the on-demand price
    min_size       = 0
    max_size       = 6
  }

  node_pool {
    name          = "a100mig"
    purpose       = "inference"
    instance_type = "Standard_NC24ads_A100_v4"
    gpu_count     = 1
    gpu_instance  = "MIG3g" # each A100 as two 3g.40gb instances
    min_size      = 1
    max_size      = 2
  }

  partition {
    purpose          = "inference"
    gpus             = 8
    max_gpus_per_pod = 1
    spot             = true
  }
}

output "aks" {
  value = {
    id          = modelplane_gpu_cluster.aks.resource_id
    oidc_issuer = modelplane_gpu_cluster.aks.oidc_issuer
    pools       = modelplane_gpu_cluster.aks.node_groups
    kubeconfig  = modelplane_gpu_cluster.aks.kubeconfig # kubelogin exec form: no secret in it
  }
}
