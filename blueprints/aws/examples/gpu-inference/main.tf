# Iris on EKS: a g5.xlarge node group (one A10G each, 1 to 4 nodes), a dev node group, the
# inference and dev partitions, models in S3, the image in ECR, and iris served by two
# replicas that scale to four, monitored. Give your VPC's subnets; the region and
# credentials come from the AWS default chain (AWS_PROFILE, SSO, an instance role).
#
# Cost while it runs (us-east-1, on demand): the EKS control plane USD 0.10/h, each
# g5.xlarge about USD 1.01/h, the m7i.large about USD 0.10/h.

terraform {
  required_providers {
    modelplane = {
      source = "modelplane/modelplane"
    }
  }
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "profile" {
  description = "AWS profile; null: the default chain (AWS_PROFILE, environment, SSO, instance role)."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Two or more private subnets of your VPC, in different availability zones."
  type        = list(string)
}

variable "bucket" {
  description = "The S3 bucket for the models (created)."
  type        = string
  default     = "modelplane-models-example"
}

variable "image_source" {
  description = "The image layout `cargo xtask image` wrote."
  type        = string
  default     = "../../../../target/image/modelplane-serve"
}

variable "ecr_repository" {
  description = "ECR repository name for the image."
  type        = string
  default     = "modelplane-serve"
}

variable "registry_insecure" {
  description = "Plain HTTP to a HOST/NAME ecr_repository (a loopback mirror)."
  type        = bool
  default     = false
}

variable "aws_endpoint_url" {
  description = "An endpoint for every AWS service instead of AWS's own (VPC endpoints, an emulator); null: AWS's."
  type        = string
  default     = null
}

variable "kubernetes_endpoint_url" {
  description = "The cluster's Kubernetes API through a tunnel (a private endpoint); null: the endpoint EKS reports."
  type        = string
  default     = null
}

variable "monthly_budget" {
  description = "A monthly budget (USD) for the cluster; a plan whose estimate is over it fails. Null: none."
  type        = number
  default     = null
}

provider "modelplane" {
  aws {
    region                  = var.region
    profile                 = var.profile
    endpoint_url            = var.aws_endpoint_url
    kubernetes_endpoint_url = var.kubernetes_endpoint_url
  }
}

locals {
  qs = "${path.module}/../../../../examples/quickstart"
}

module "eks" {
  source = "../.."

  budget = var.monthly_budget == null ? null : { monthly = var.monthly_budget }

  name       = "gpu"
  subnet_ids = var.subnet_ids
  inference_pool = {
    instance_types = ["g5.xlarge"]
    min_size       = 1
    max_size       = 4
    desired_size   = 1
  }
  partitions = {
    inference = { gpus = 4, max_gpus_per_pod = 1 }
    dev       = { gpus = 0 }
  }
  store             = { bucket = var.bucket, region = var.region }
  image_source      = var.image_source
  ecr_repository    = var.ecr_repository
  registry_insecure = var.registry_insecure
  force_destroy     = true

  # The same object as blueprints/on-prem-kubernetes takes.
  endpoints = {
    iris = {
      versions = {
        "1" = { source = "${local.qs}/model/iris-v1.onnx", weight = 100 }
      }
      baseline   = { dataset = "${local.qs}/data/train.csv", target = "species" }
      monitoring = { p99_ms_above = 50, drift_psi_above = 0.2 }
      kubernetes = {
        min_replicas = 2
        max_replicas = 4
        cpu          = "500m"
        memory       = "512Mi"
      }
    }
  }
}

output "endpoints" {
  value = module.eks.endpoints
}

output "node_groups" {
  value = module.eks.node_groups
}

output "image" {
  value = module.eks.image
}

output "kubeconfig" {
  value = module.eks.kubeconfig
}

output "estimated_cost" {
  value = module.eks.estimated_cost
}
