variable "name" {
  description = "Model name: the name clients call (`/v2/models/NAME/infer`) and under which versions are stored."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", var.name))
    error_message = "name must be 1 to 128 letters, digits, '.', '_' or '-', not starting with '.', '_' or '-'."
  }
}

variable "cluster_id" {
  description = "The `id` of the modelplane_gpu_cluster to serve on (PLATFORM/NAME)."
  type        = string
}

variable "store_id" {
  description = "The `id` of the modelplane_model_store that holds the versions."
  type        = string
}

variable "versions" {
  description = "Model versions to register and serve: version => { source = path to the .onnx file, weight = share of traffic (0-100; weights total 100), description = optional }."
  type = map(object({
    source      = string
    weight      = number
    description = optional(string)
  }))

  validation {
    condition     = length(var.versions) > 0
    error_message = "Give at least one version."
  }

  validation {
    condition     = length(var.versions) == 0 || sum(concat([0], [for v in values(var.versions) : v.weight])) == 100
    error_message = "The weights of the versions must total 100."
  }

  validation {
    condition     = alltrue([for v in values(var.versions) : v.weight >= 0 && v.weight <= 100])
    error_message = "Every weight is a percentage: 0 to 100."
  }
}

variable "require_approval" {
  description = "Serve only approved versions: the endpoint refuses at plan a version with traffic and no valid modelplane_model_approval (from `approvals`, or made in another workspace). Null: the provider's governance.require_approval."
  type        = bool
  default     = null
}

variable "approvals" {
  description = "Approvals this module records, version => reference (a ticket, a change request). Approvals the approving team makes in its own workspace count as well."
  type        = map(string)
  default     = {}
}

variable "shadow" {
  description = "A version (registered from its source) that receives a copy of every request; its answers are discarded. Null: none."
  type = object({
    version = string
    source  = string
  })
  default = null
}

variable "validation" {
  description = "The validation hook: every version must reach `min` (accuracy, f1, precision, recall) or stay under `max` (mae, rmse, max_abs_diff) on the hold-out `dataset` before it is registered; with `slice_by`, every slice of the rows too (`slice_min`/`slice_max`, `slice_thresholds` per slice, `max_disparity` between slices, `min_slice_rows`). Null: no validation."
  type = object({
    dataset          = string
    target           = string
    metric           = string
    min              = optional(number)
    max              = optional(number)
    slice_by         = optional(list(string))
    slice_min        = optional(number)
    slice_max        = optional(number)
    slice_thresholds = optional(map(number))
    max_disparity    = optional(number)
    min_slice_rows   = optional(number)
  })
  default = null

  validation {
    condition     = var.validation == null || contains(["accuracy", "f1", "precision", "recall", "mae", "rmse", "max_abs_diff"], try(var.validation.metric, ""))
    error_message = "validation.metric must be one of accuracy, f1, precision, recall, mae, rmse, max_abs_diff."
  }

  validation {
    condition     = var.validation == null || try(var.validation.min != null || var.validation.max != null, false)
    error_message = "validation needs a threshold: min or max."
  }
}

variable "baseline" {
  description = "Training data for drift statistics, stored with every version. Null: no drift baseline."
  type = object({
    dataset = string
    target  = optional(string)
  })
  default = null
}

variable "lineage" {
  description = "Lineage recorded with every version."
  type = object({
    code_commit    = optional(string)
    dataset_digest = optional(string)
    tags           = optional(map(string), {})
  })
  default = {}
}

variable "image" {
  description = "The serving image, for container clusters (e.g. modelplane_serving_image.NAME.reference). Null on local clusters."
  type        = string
  default     = null
}

variable "container" {
  description = "How the container runs on a container cluster: cpus, memory (e.g. \"2g\"), restart policy, gpus, extra_args for the engine's run. Null: the defaults (or a local cluster)."
  type = object({
    cpus       = optional(number)
    memory     = optional(string)
    restart    = optional(string)
    gpus       = optional(number)
    extra_args = optional(list(string))
  })
  default = null

  validation {
    condition     = try(var.container.restart == null || contains(["no", "on-failure", "always", "unless-stopped"], var.container.restart), true)
    error_message = "container.restart must be no, on-failure, always or unless-stopped."
  }
}

variable "kubernetes" {
  description = "How the endpoint runs on a kubernetes cluster (the endpoint's `kubernetes` block): partition, replicas and autoscaling, resources, ServiceAccount annotations (IRSA, workload identity), the Secret with the store's credentials, exposure. Null: the defaults (or not a kubernetes cluster)."
  type = object({
    partition                   = optional(string)
    min_replicas                = optional(number)
    max_replicas                = optional(number)
    target_cpu_percent          = optional(number)
    target_inflight             = optional(number)
    cpu                         = optional(string)
    memory                      = optional(string)
    gpus                        = optional(number)
    service_account_annotations = optional(map(string))
    env_from_secret             = optional(string)
    image_pull_secret           = optional(string)
    service_type                = optional(string)
    rollout_timeout             = optional(string)
    expose = optional(object({
      kind       = string
      host       = string
      class_name = optional(string)
      gateway    = optional(string)
      tls_secret = optional(string)
    }))
  })
  default = null

  validation {
    condition     = try(var.kubernetes.partition == null || contains(["dev", "training", "inference"], var.kubernetes.partition), true)
    error_message = "kubernetes.partition must be dev, training or inference."
  }
}

variable "port" {
  description = "REST port of the endpoint. Null: a free port is chosen."
  type        = number
  default     = null
}

variable "batching" {
  description = "Dynamic batching: most rows per batch and the longest wait for more, in ms."
  type = object({
    max_batch_size = optional(number, 32)
    max_delay_ms   = optional(number, 0)
  })
  default = {}
}

variable "benchmark" {
  description = "The benchmark hook: a load test after every change, with an optional SLO whose miss rolls the change back. Null: no benchmark."
  type = object({
    payload     = string
    concurrency = optional(number, 4)
    duration    = optional(string, "3s")
    slo = optional(object({
      p50_ms         = optional(number)
      p99_ms         = optional(number)
      min_rps        = optional(number)
      max_error_rate = optional(number)
    }))
  })
  default = null
}

variable "monitoring" {
  description = "Alerts on the endpoint (a `modelplane_monitor`): thresholds left null are not watched. The monitor runs Prometheus and Alertmanager from PATH, or uses `existing_prometheus`. Null: no monitor."
  type = object({
    p99_ms_above     = optional(number)
    error_rate_above = optional(number)
    drift_psi_above  = optional(number)
    accuracy_below   = optional(number)
    min_samples      = optional(number)
    for              = optional(string, "10m")
    interval         = optional(string, "15s")
    drift_window     = optional(string, "15m")
    feedback_window  = optional(string, "1h")
    webhook          = optional(string)
    existing_prometheus = optional(object({
      url         = string
      rules_dir   = string
      targets_dir = string
    }))
  })
  default = null

  validation {
    condition = var.monitoring == null || anytrue([
      for t in ["p99_ms_above", "error_rate_above", "drift_psi_above", "accuracy_below"] : try(var.monitoring[t] != null, false)
    ])
    error_message = "monitoring needs at least one threshold: p99_ms_above, error_rate_above, drift_psi_above or accuracy_below."
  }

  validation {
    condition     = var.monitoring == null || try(var.monitoring.webhook == null || can(regex("^https?://", var.monitoring.webhook)), false)
    error_message = "monitoring.webhook must be an http(s) URL."
  }
}

variable "pricing" {
  description = "How the endpoint is priced in `estimated_cost`: the instance type (or VM size) its replicas run on, spot or not, or the GPU product whose rate the provider's `pricing.gpu_hour` gives. Null: at the provider's `pricing` rates."
  type = object({
    instance_type = optional(string)
    spot          = optional(bool)
    gpu_product   = optional(string)
  })
  default = null
}

variable "budget" {
  description = "A monthly budget checked at plan against the endpoint's estimate at its most replicas; `action` is `error` (fail the plan) or `warn`."
  type = object({
    monthly = number
    action  = optional(string, "error")
  })
  default = null

  validation {
    condition     = var.budget == null || try(contains(["error", "warn"], var.budget.action), false)
    error_message = "budget.action must be \"error\" or \"warn\"."
  }
}
