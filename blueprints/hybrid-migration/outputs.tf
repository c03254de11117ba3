output "split" {
  description = "Where the on-prem entry point's requests go, in percent; null once the on-prem endpoint is retired."
  value       = var.retire_onprem ? null : { onprem = 100 - var.cloud_share, cloud = var.cloud_share }
}

output "onprem_url" {
  description = "The on-prem entry point's URL (null once retired)."
  value       = one(modelplane_endpoint.onprem[*].url)
}

output "onprem_endpoint_id" {
  description = "The on-prem endpoint's id (null once retired)."
  value       = one(modelplane_endpoint.onprem[*].id)
}

output "cloud_url" {
  description = "The cloud endpoint's URL as it reports it; clients move to its public address before the on-prem endpoint is retired."
  value       = modelplane_endpoint.cloud.url
}

output "cloud_endpoint_id" {
  description = "The cloud endpoint's id."
  value       = modelplane_endpoint.cloud.id
}

output "cloud_version_id" {
  description = "The copy of the version in the cloud store (same sha256 as the on-prem one)."
  value       = modelplane_model.cloud.id
}

output "cloud_version_sha256" {
  description = "sha256 of the copied version: the on-prem version's."
  value       = modelplane_model.cloud.sha256
}

output "onprem_benchmark" {
  description = "The last step's benchmark through the on-prem entry point (null once retired)."
  value       = one(modelplane_endpoint.onprem[*].benchmark_result)
}
