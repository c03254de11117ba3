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
