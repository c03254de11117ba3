# Hybrid migration: one model moved from an on-prem site to a cloud site by a sequence of
# small, measured, reversible applies. The on-prem endpoint stays the entry point; its split
# sends `cloud_share` percent of the requests to the cloud endpoint (a remote variant), and
# each step is benchmarked through it and rolled back on an SLO miss. See README.md.

locals {
  cloud_name = coalesce(var.cloud_name, var.name)
}

# Stage 1: the version, copied into the cloud store (streamed, sha256 checked end to end).
resource "modelplane_model" "cloud" {
  store   = var.cloud_store_id
  name    = var.onprem_version.name
  version = var.onprem_version.version
  source  = var.onprem_version.id
}

# Stage 2: the cloud endpoint, serving the copy; gated by the same SLO on its own.
resource "modelplane_endpoint" "cloud" {
  name    = local.cloud_name
  cluster = var.cloud_cluster_id
  image   = var.cloud_image

  variant {
    name   = "stable"
    model  = modelplane_model.cloud.id
    weight = 100
  }

  benchmark {
    payload     = var.benchmark.payload
    concurrency = var.benchmark.concurrency
    duration    = var.benchmark.duration

    slo {
      p50_ms         = var.slo.p50_ms
      p99_ms         = var.slo.p99_ms
      min_rps        = var.slo.min_rps
      max_error_rate = var.slo.max_error_rate
    }
  }

  dynamic "kubernetes" {
    for_each = var.cloud_kubernetes == null ? [] : [var.cloud_kubernetes]
    content {
      partition    = kubernetes.value.partition
      min_replicas = kubernetes.value.min_replicas
      max_replicas = kubernetes.value.max_replicas
      cpu          = kubernetes.value.cpu
      memory       = kubernetes.value.memory
      gpus         = kubernetes.value.gpus
      service_type = kubernetes.value.service_type

      dynamic "expose" {
        for_each = kubernetes.value.expose == null ? [] : [kubernetes.value.expose]
        content {
          kind       = expose.value.kind
          host       = expose.value.host
          class_name = expose.value.class_name
          tls_secret = expose.value.tls_secret
        }
      }
    }
  }
}

# Stages 3 to 5: the on-prem entry point, its split moved by cloud_share; removed by
# retire_onprem once clients call the cloud address.
resource "modelplane_endpoint" "onprem" {
  count = var.retire_onprem ? 0 : 1

  name    = var.name
  cluster = var.onprem_cluster_id
  image   = var.onprem_image

  variant {
    name   = "onprem"
    model  = var.onprem_version.id
    weight = 100 - var.cloud_share
  }

  variant {
    name     = "cloud"
    endpoint = modelplane_endpoint.cloud.id
    url      = var.cloud_url
    ca_file  = var.cloud_url == null ? null : var.cloud_ca_file
    fallback = var.fallback
    weight   = var.cloud_share
  }

  benchmark {
    payload     = var.benchmark.payload
    concurrency = var.benchmark.concurrency
    duration    = var.benchmark.duration

    slo {
      p50_ms         = var.slo.p50_ms
      p99_ms         = var.slo.p99_ms
      min_rps        = var.slo.min_rps
      max_error_rate = var.slo.max_error_rate
    }
  }

  dynamic "kubernetes" {
    for_each = var.onprem_kubernetes == null ? [] : [var.onprem_kubernetes]
    content {
      partition    = kubernetes.value.partition
      min_replicas = kubernetes.value.min_replicas
      max_replicas = kubernetes.value.max_replicas
      cpu          = kubernetes.value.cpu
      memory       = kubernetes.value.memory
      gpus         = kubernetes.value.gpus
    }
  }
}
