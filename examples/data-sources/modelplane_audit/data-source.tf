# Everything that happened to the fraud endpoint in December, and who did it.
data "modelplane_audit" "fraud" {
  store    = modelplane_model_store.models.id
  endpoint = "fraud"
  since    = "2026-12-01T00:00:00Z"
}

output "fraud_history" {
  value = [for r in data.modelplane_audit.fraud.records :
    "${r.time} ${r.action} by ${r.actor}: ${jsonencode(r.split_before)} -> ${jsonencode(r.split_after)} (${r.outcome})"
  ]
}

# Every approval and revocation of one model's versions.
data "modelplane_audit" "approvals" {
  store = modelplane_model_store.models.id
  model = "fraud-scorer"
}
