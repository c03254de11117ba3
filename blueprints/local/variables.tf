variable "name" {
  description = "Name of the platform: the cluster and the model store are named after it."
  type        = string
  default     = "local"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", var.name))
    error_message = "name must be 1 to 128 letters, digits, '.', '_' or '-'."
  }
}

variable "store_path" {
  description = "Directory of the model store. Null: STATE_DIR/stores/NAME."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let destroy delete model versions with the store."
  type        = bool
  default     = false
}

variable "endpoints" {
  description = "Models to serve: name => the inputs of modules/endpoint (versions, validation, baseline, benchmark, port, monitoring)."
  type = map(object({
    # The fields of modules/endpoint's variables of the same names, with their types: written
    # by `cargo xtask modules` from modules/endpoint/variables.tf (change them there).
    # BEGIN fields of modules/endpoint: versions validation baseline benchmark port monitoring require_approval approvals
    versions = map(object({
      source      = string
      weight      = number
      description = optional(string)
    }))
    validation = optional(object({
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
    }))
    baseline = optional(object({
      dataset = string
      target  = optional(string)
    }))
    benchmark = optional(object({
      payload     = string
      concurrency = optional(number, 4)
      duration    = optional(string, "3s")
      slo = optional(object({
        p50_ms         = optional(number)
        p99_ms         = optional(number)
        min_rps        = optional(number)
        max_error_rate = optional(number)
      }))
    }))
    port = optional(number)
    monitoring = optional(object({
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
    }))
    require_approval = optional(bool)
    approvals        = optional(map(string), {})
    # END fields of modules/endpoint
  }))

  validation {
    condition     = alltrue([for e in values(var.endpoints) : sum(concat([0], [for v in values(e.versions) : v.weight])) == 100])
    error_message = "In every endpoint, the weights of the versions must total 100."
  }
}
