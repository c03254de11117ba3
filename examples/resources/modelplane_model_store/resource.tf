resource "modelplane_model_store" "models" {
  name    = "acme-models"
  backend = "local"
  path    = "/var/lib/modelplane/models" # default: STATE_DIR/stores/acme-models

  # Destroy refuses a store that still holds versions unless this is set.
  force_destroy = false
}
