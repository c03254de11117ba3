# A lab cluster (kind, k3d, OpenShift Local, or an on-prem cluster with GPU nodes): inference
# and training partitions, MinIO as the store, and iris served by two replicas that scale
# to four. KUBECONFIG says which cluster; AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY the
# MinIO credentials here, and the Secret `minio-credentials` in gpu-inference in the cluster.

terraform {
  required_providers {
    modelplane = {
      source = "modelplane/modelplane"
    }
  }
}

variable "registry" {
  description = "Where to push the image, HOST[:PORT]/PATH; the nodes pull from it."
  type        = string
  default     = "registry.ml.internal/modelplane/serve"
}

variable "image_source" {
  description = "The image layout `cargo xtask image` wrote."
  type        = string
  default     = "../../../../target/image/modelplane-serve"
}

variable "minio" {
  description = "MinIO's URL, reachable from here and from the pods."
  type        = string
  default     = "http://minio.ml.internal:9000"
}

variable "monthly_budget" {
  description = "A monthly budget (USD) for the cluster; a plan whose estimate is over it fails. Null: none."
  type        = number
  default     = null
}

provider "modelplane" {
  kubernetes {}

  # What your own hardware costs, amortised: estimated_cost prices the partitions' quotas
  # and the endpoints' requests at these rates.
  pricing {
    cpu_hour        = 0.02
    memory_gib_hour = 0.004
    gpu_hour        = { "nvidia-a100" = 1.10, "*" = 0.45 }
  }
}

module "lab" {
  source = "../.."

  budget = var.monthly_budget == null ? null : { monthly = var.monthly_budget }

  name = "gpu"
  partitions = {
    inference = { gpus = 2, cpu = "16", memory = "64Gi", max_gpus_per_pod = 1 }
    training  = { gpus = 4, spot = true, node_selector = { "nvidia.com/gpu.product" = "NVIDIA-A100-SXM4-80GB" } }
    dev       = { gpus = 1 }
  }
  store                    = { bucket = "models", endpoint = var.minio }
  store_credentials_secret = "minio-credentials"
  image_source             = var.image_source
  registry                 = var.registry
  force_destroy            = true

  endpoints = {
    iris = {
      versions = {
        "1" = { source = "${path.module}/../../../../examples/quickstart/model/iris-v1.onnx", weight = 100 }
      }
      baseline   = { dataset = "${path.module}/../../../../examples/quickstart/data/train.csv", target = "species" }
      monitoring = { p99_ms_above = 50, drift_psi_above = 0.2 }
      kubernetes = {
        min_replicas = 2
        max_replicas = 4
        cpu          = "500m"
        memory       = "512Mi"
        expose       = { kind = "ingress", host = "iris.ml.internal" }
      }
    }
  }
}

output "endpoints" {
  value = module.lab.endpoints
}

output "nodes" {
  value = module.lab.nodes
}

output "estimated_cost" {
  value = module.lab.estimated_cost
}
