# Iris on AKS: a Standard_NC4as_T4_v3 agent pool (one T4 each, 1 to 4 nodes), a dev pool, the
# inference and dev partitions, models in Blob Storage, the image in ACR, and iris served by
# two replicas that scale to four, monitored. Give your subscription, resource group (created
# when missing), an existing storage account and a registry name; credentials come from the
# Azure identity chain (AZURE_CLIENT_ID/AZURE_CLIENT_SECRET/AZURE_TENANT_ID, workload
# identity, a managed identity, or `az login`).
#
# Cost while it runs (westeurope, pay as you go, about): the AKS control plane free tier
# USD 0, each Standard_NC4as_T4_v3 USD 0.53/h, each Standard_D4s_v5 (system and dev pools)
# USD 0.19/h, ACR Standard USD 0.67/day.

terraform {
  required_providers {
    modelplane = {
      source = "modelplane/modelplane"
    }
  }
}

variable "subscription_id" {
  description = "Azure subscription ID; null: AZURE_SUBSCRIPTION_ID."
  type        = string
  default     = null
}

variable "resource_group" {
  description = "Resource group of the cluster and the registry (created when missing)."
  type        = string
  default     = "modelplane-example"
}

variable "location" {
  description = "Azure region."
  type        = string
  default     = "westeurope"
}

variable "storage_account" {
  description = "An existing storage account for the models."
  type        = string
}

variable "container" {
  description = "The Blob container for the models (created)."
  type        = string
  default     = "models"
}

variable "blob_endpoint" {
  description = "The blob endpoint with the account (an emulator, a sovereign cloud); null: https://ACCOUNT.blob.core.windows.net."
  type        = string
  default     = null
}

variable "acr_name" {
  description = "Name of the registry (unique in Azure, 5 to 50 letters and digits)."
  type        = string
}

variable "image_source" {
  description = "The image layout `cargo xtask image` wrote."
  type        = string
  default     = "../../../../target/image/modelplane-serve"
}

variable "image_repository" {
  description = "Repository for the image in the registry; HOST/NAME pushes to that host with the ACR login (a mirror)."
  type        = string
  default     = "modelplane-serve"
}

variable "registry_insecure" {
  description = "Plain HTTP to a HOST/NAME image_repository (a loopback mirror)."
  type        = bool
  default     = false
}

variable "arm_endpoint" {
  description = "Azure Resource Manager's URL (a sovereign cloud, an emulator); null: https://management.azure.com."
  type        = string
  default     = null
}

variable "kubernetes_endpoint_url" {
  description = "The cluster's Kubernetes API through a tunnel (a private cluster); null: the server AKS reports."
  type        = string
  default     = null
}

provider "modelplane" {
  azure {
    subscription_id         = var.subscription_id
    resource_group          = var.resource_group
    location                = var.location
    arm_endpoint            = var.arm_endpoint
    kubernetes_endpoint_url = var.kubernetes_endpoint_url
  }
}

locals {
  qs = "${path.module}/../../../../examples/quickstart"
}

module "aks" {
  source = "../.."

  name = "gpu"
  inference_pool = {
    vm_size      = "Standard_NC4as_T4_v3"
    min_size     = 1
    max_size     = 4
    desired_size = 1
  }
  partitions = {
    inference = { gpus = 4, max_gpus_per_pod = 1 }
    dev       = { gpus = 0 }
  }
  store = {
    account   = var.storage_account
    container = var.container
    endpoint  = var.blob_endpoint
  }
  image_source      = var.image_source
  acr_name          = var.acr_name
  image_repository  = var.image_repository
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
  value = module.aks.endpoints
}

output "node_pools" {
  value = module.aks.node_pools
}

output "image" {
  value = module.aks.image
}

output "kubeconfig" {
  value = module.aks.kubeconfig
}
