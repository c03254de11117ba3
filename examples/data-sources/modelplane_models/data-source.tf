data "modelplane_models" "iris" {
  store = modelplane_model_store.models.id
  name  = "iris"
}

# Serve the newest validated version.
locals {
  validated = [for v in data.modelplane_models.iris.versions : v if v.validated]
  newest    = local.validated[length(local.validated) - 1].id
}

output "versions" {
  value = [for v in data.modelplane_models.iris.versions : "${v.version}: ${v.validation_metric} ${v.validation_value}, ${v.created_at}"]
}
