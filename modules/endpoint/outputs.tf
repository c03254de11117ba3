output "url" {
  description = "Base URL of the endpoint's REST listener. Infer at URL/v2/models/NAME/infer."
  value       = modelplane_endpoint.this.url
}

output "infer_url" {
  description = "The inference URL."
  value       = "${modelplane_endpoint.this.url}/v2/models/${var.name}/infer"
}

output "grpc_address" {
  description = "HOST:PORT of the gRPC listener."
  value       = modelplane_endpoint.this.grpc_address
}

output "token_file" {
  description = "File holding the bearer token clients send."
  value       = modelplane_endpoint.this.token_file
}

output "endpoint_id" {
  description = "The endpoint's id."
  value       = modelplane_endpoint.this.id
}

output "model_ids" {
  description = "version => id of each registered model version."
  value       = { for v, m in modelplane_model.this : v => m.id }
}

output "validation" {
  description = "version => validation summary (null without validation)."
  value       = { for v, m in modelplane_model.this : v => try(m.validation_report.summary, null) }
}

output "benchmark" {
  description = "What the benchmark hook measured after the last change (null without a benchmark)."
  value       = modelplane_endpoint.this.benchmark_result
}

output "prometheus_url" {
  description = "The Prometheus evaluating the endpoint's alerts (null without monitoring)."
  value       = try(modelplane_monitor.this[0].prometheus_url, null)
}

output "alertmanager_url" {
  description = "The managed Alertmanager (null without monitoring or with an existing Prometheus)."
  value       = try(modelplane_monitor.this[0].alertmanager_url, null)
}

output "grafana_dashboard" {
  description = "The endpoint's Grafana dashboard, JSON (null without monitoring)."
  value       = try(modelplane_monitor.this[0].grafana_dashboard, null)
}

output "running_image" {
  description = "On container clusters, the digest-pinned image the endpoint runs (null on local)."
  value       = modelplane_endpoint.this.running_image
}

output "estimated_cost" {
  description = "What the endpoint costs (hourly and monthly at its fewest and most replicas, each variant's share), known at plan; null without prices."
  value       = modelplane_endpoint.this.estimated_cost
}

output "approval_ids" {
  description = "version => id of each approval this module recorded."
  value       = { for v, a in modelplane_model_approval.this : v => a.id }
}
