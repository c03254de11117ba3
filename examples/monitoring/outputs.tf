output "url" {
  description = "The endpoint's REST URL."
  value       = modelplane_endpoint.iris.url
}

output "token_file" {
  description = "File holding the endpoint's bearer token."
  value       = modelplane_endpoint.iris.token_file
}

output "prometheus_url" {
  description = "The managed Prometheus (alerts at /alerts)."
  value       = modelplane_monitor.iris.prometheus_url
}

output "alertmanager_url" {
  description = "The managed Alertmanager."
  value       = modelplane_monitor.iris.alertmanager_url
}

output "dashboard_file" {
  description = "The Grafana dashboard, ready to import."
  value       = "${modelplane_monitor.iris.state_path}/dashboard.json"
}
