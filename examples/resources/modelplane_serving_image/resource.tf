# The bundled inference image, pushed into the site's registry. `cargo xtask image` writes the
# layout; each release ships one. The digest is known at plan.
resource "modelplane_serving_image" "serve" {
  source     = "${path.module}/modelplane-serve.oci"
  repository = "registry.plant.local/ml/modelplane-serve"
  # tag defaults to the server version in the image.

  # Without username, the login `podman login` or `docker login` stored is used.
  username    = "ci-push"
  password_wo = var.registry_password # write-only: never in state
}

variable "registry_password" {
  type      = string
  sensitive = true
  ephemeral = true
}

output "image" {
  value = modelplane_serving_image.serve.reference # registry.plant.local/ml/modelplane-serve@sha256:…
}

# Into Amazon ECR: the repository is created (immutable tags, scan on push, a lifecycle
# policy) and the login comes from GetAuthorizationToken through the AWS default chain.
resource "modelplane_serving_image" "ecr" {
  source     = "${path.module}/modelplane-serve.oci"
  repository = "ml/modelplane-serve" # pushed to ACCOUNT.dkr.ecr.REGION.amazonaws.com/ml/modelplane-serve

  ecr {
    keep_images   = 50
    untagged_days = 3
  }
}

output "ecr_image" {
  value = modelplane_serving_image.ecr.reference
}

# Into Azure Container Registry: the registry is created (admin user off) in the provider's
# azure.resource_group, the login is ACR's token exchange of the Azure identity chain's token,
# and the AKS cluster's kubelet gets AcrPull, so its nodes pull with no secret.
resource "modelplane_serving_image" "acr" {
  source     = "${path.module}/modelplane-serve.oci"
  repository = "ml/modelplane-serve" # pushed to mlprodregistry.azurecr.io/ml/modelplane-serve

  acr {
    registry        = "mlprodregistry"
    attach_clusters = [modelplane_gpu_cluster.aks.id]
  }
}

output "acr_image" {
  value = modelplane_serving_image.acr.reference
}
