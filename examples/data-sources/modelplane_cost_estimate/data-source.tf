# What if the GPU pool were four g6e.xlarge (L40S) instead? Priced from the table shipped
# with the provider (and the provider's pricing overrides), offline.
data "modelplane_cost_estimate" "l40s" {
  instance_type = "g6e.xlarge"
  instances     = 4
  region        = "us-east-1"
}

# The cluster and its endpoints together, checked on every plan and apply.
data "modelplane_cost_estimate" "platform" {
  add = concat(
    [modelplane_gpu_cluster.eks.estimated_cost.monthly_max],
    [for e in [modelplane_endpoint.fraud_eks] : e.estimated_cost.monthly_max],
  )
}

check "platform_budget" {
  assert {
    condition     = data.modelplane_cost_estimate.platform.total_monthly <= 10000
    error_message = "The inference platform would cost USD ${data.modelplane_cost_estimate.platform.total_monthly} a month at its largest; the budget is USD 10000."
  }
}

output "l40s_monthly" {
  value = "${data.modelplane_cost_estimate.l40s.monthly} ${data.modelplane_cost_estimate.l40s.currency} a month (${data.modelplane_cost_estimate.l40s.basis} prices of ${data.modelplane_cost_estimate.l40s.prices_date})"
}
