output "url" {
  description = "Base URL of the endpoint (Open Inference Protocol v2 over REST)."
  value       = modelplane_endpoint.iris.url
}

output "grpc_address" {
  description = "Address of the gRPC listener (inference.GRPCInferenceService)."
  value       = modelplane_endpoint.iris.grpc_address
}

output "curl" {
  description = "A ready-to-run prediction request."
  value       = "curl -s -H \"Authorization: Bearer $(cat ${modelplane_endpoint.iris.token_file})\" -H 'Content-Type: application/json' -d @${abspath(path.module)}/data/request.json ${modelplane_endpoint.iris.url}/v2/models/iris/infer"
}

output "token_file" {
  description = "File holding the endpoint's bearer token."
  value       = modelplane_endpoint.iris.token_file
}

output "benchmark" {
  description = "What the benchmark hook measured after the last change."
  value       = modelplane_endpoint.iris.benchmark_result
}

output "validation" {
  description = "Each version's validation report."
  value       = { for v, m in modelplane_model.iris : v => m.validation_report.summary }
}

output "catalogue" {
  description = "Every version in the store."
  value       = [for v in data.modelplane_models.catalogue.versions : "${v.name}/${v.version} sha256:${substr(v.sha256, 0, 12)} ${v.validation_metric}=${v.validation_value}"]
}

output "machine" {
  description = "This machine, as the cluster sees it."
  value = {
    cpus   = modelplane_gpu_cluster.here.cpus
    memory = "${floor(modelplane_gpu_cluster.here.memory_bytes / 1073741824)} GiB"
    gpus   = [for g in modelplane_gpu_cluster.here.gpus : "${g.name} (${g.uuid})"]
  }
}

output "history" {
  description = "The audit trail: every change of the endpoint and every approval, oldest first."
  value = [for r in data.modelplane_audit.history.records :
    r.resource == "modelplane_endpoint"
    ? "${r.time} ${r.action} ${r.endpoint} ${jsonencode(r.split_after)} by ${r.actor}: ${r.outcome}"
    : "${r.time} ${r.action} ${r.models["approved"]} ${r.approval} by ${r.actor}"
  ]
}
