# One model served with a traffic split: every version is registered (validated, with its
# drift baseline) and the endpoint splits requests between them by weight.

resource "modelplane_model" "this" {
  for_each = merge(
    { for v, m in var.versions : v => { source = m.source, description = m.description } },
    var.shadow == null ? {} : { (var.shadow.version) = { source = var.shadow.source, description = "shadow" } },
  )

  store   = var.store_id
  name    = var.name
  version = each.key
  source  = each.value.source

  lineage {
    code_commit    = var.lineage.code_commit
    dataset_digest = var.lineage.dataset_digest
    tags           = var.lineage.tags
    description    = each.value.description
  }

  dynamic "baseline" {
    for_each = var.baseline == null ? [] : [var.baseline]
    content {
      dataset = baseline.value.dataset
      target  = baseline.value.target
    }
  }

  dynamic "validation" {
    for_each = var.validation == null ? [] : [var.validation]
    content {
      dataset = validation.value.dataset
      target  = validation.value.target
      metric  = validation.value.metric
      min     = validation.value.min
      max     = validation.value.max

      slice_by         = validation.value.slice_by
      slice_min        = validation.value.slice_min
      slice_max        = validation.value.slice_max
      slice_thresholds = validation.value.slice_thresholds
      max_disparity    = validation.value.max_disparity
      min_slice_rows   = validation.value.min_slice_rows
    }
  }
}

# Approvals recorded here (var.approvals). The variants serve the approval's
# `approved_model`, so the endpoint waits for an approval made in the same apply.
resource "modelplane_model_approval" "this" {
  for_each = var.approvals

  model     = modelplane_model.this[each.key].id
  reference = each.value
}

resource "modelplane_endpoint" "this" {
  name             = var.name
  cluster          = var.cluster_id
  port             = var.port
  image            = var.image
  require_approval = var.require_approval

  dynamic "container" {
    for_each = var.container == null ? [] : [var.container]
    content {
      cpus       = container.value.cpus
      memory     = container.value.memory
      restart    = container.value.restart
      gpus       = container.value.gpus
      extra_args = container.value.extra_args
    }
  }

  dynamic "pricing" {
    for_each = var.pricing == null ? [] : [var.pricing]
    content {
      instance_type = pricing.value.instance_type
      spot          = pricing.value.spot
      gpu_product   = pricing.value.gpu_product
    }
  }

  dynamic "budget" {
    for_each = var.budget == null ? [] : [var.budget]
    content {
      monthly = budget.value.monthly
      action  = budget.value.action
    }
  }

  dynamic "kubernetes" {
    for_each = var.kubernetes == null ? [] : [var.kubernetes]
    content {
      partition                   = kubernetes.value.partition
      min_replicas                = kubernetes.value.min_replicas
      max_replicas                = kubernetes.value.max_replicas
      target_cpu_percent          = kubernetes.value.target_cpu_percent
      target_inflight             = kubernetes.value.target_inflight
      cpu                         = kubernetes.value.cpu
      memory                      = kubernetes.value.memory
      gpus                        = kubernetes.value.gpus
      service_account_annotations = kubernetes.value.service_account_annotations
      env_from_secret             = kubernetes.value.env_from_secret
      image_pull_secret           = kubernetes.value.image_pull_secret
      service_type                = kubernetes.value.service_type
      rollout_timeout             = kubernetes.value.rollout_timeout

      dynamic "expose" {
        for_each = kubernetes.value.expose == null ? [] : [kubernetes.value.expose]
        content {
          kind       = expose.value.kind
          host       = expose.value.host
          class_name = expose.value.class_name
          gateway    = expose.value.gateway
          tls_secret = expose.value.tls_secret
        }
      }
    }
  }

  dynamic "variant" {
    for_each = var.versions
    content {
      name   = "v${variant.key}"
      model  = try(modelplane_model_approval.this[variant.key].approved_model, modelplane_model.this[variant.key].id)
      weight = variant.value.weight
    }
  }

  dynamic "shadow" {
    for_each = var.shadow == null ? [] : [var.shadow]
    content {
      model = modelplane_model.this[shadow.value.version].id
    }
  }

  dynamic "monitoring" {
    for_each = var.monitoring == null ? [] : [var.monitoring]
    content {
      drift_window    = monitoring.value.drift_window
      feedback_window = monitoring.value.feedback_window
    }
  }

  batching {
    max_batch_size = var.batching.max_batch_size
    max_delay_ms   = var.batching.max_delay_ms
  }

  dynamic "benchmark" {
    for_each = var.benchmark == null ? [] : [var.benchmark]
    content {
      payload     = benchmark.value.payload
      concurrency = benchmark.value.concurrency
      duration    = benchmark.value.duration

      dynamic "slo" {
        for_each = benchmark.value.slo == null ? [] : [benchmark.value.slo]
        content {
          p50_ms         = slo.value.p50_ms
          p99_ms         = slo.value.p99_ms
          min_rps        = slo.value.min_rps
          max_error_rate = slo.value.max_error_rate
        }
      }
    }
  }
}

# Alerts: one per threshold given, sent to the webhook (e.g. a retraining trigger).
locals {
  alerts = var.monitoring == null ? {} : {
    for name, a in {
      latency  = { threshold = var.monitoring.p99_ms_above, severity = "warning" }
      errors   = { threshold = var.monitoring.error_rate_above, severity = "critical" }
      drift    = { threshold = var.monitoring.drift_psi_above, severity = "critical" }
      accuracy = { threshold = var.monitoring.accuracy_below, severity = "critical" }
    } : name => a if a.threshold != null
  }
}

resource "modelplane_monitor" "this" {
  count = var.monitoring == null ? 0 : 1

  endpoint            = modelplane_endpoint.this.id
  scrape_interval     = var.monitoring.interval
  evaluation_interval = var.monitoring.interval

  dynamic "alert" {
    for_each = local.alerts
    content {
      name             = alert.key
      p99_ms_above     = alert.key == "latency" ? alert.value.threshold : null
      error_rate_above = alert.key == "errors" ? alert.value.threshold : null
      psi_above        = alert.key == "drift" ? alert.value.threshold : null
      accuracy_below   = alert.key == "accuracy" ? alert.value.threshold : null
      min_samples      = contains(["drift", "accuracy"], alert.key) ? var.monitoring.min_samples : null
      for              = var.monitoring.for
      severity         = alert.value.severity
    }
  }

  dynamic "on_alert" {
    for_each = var.monitoring.webhook == null ? [] : [var.monitoring.webhook]
    content {
      webhook = on_alert.value
    }
  }

  # On kubernetes the cluster's Prometheus finds the endpoint by itself.
  dynamic "existing_prometheus" {
    for_each = var.monitoring.existing_prometheus == null ? [] : [var.monitoring.existing_prometheus]
    content {
      url         = existing_prometheus.value.url
      rules_dir   = existing_prometheus.value.rules_dir
      targets_dir = existing_prometheus.value.targets_dir
    }
  }
}
