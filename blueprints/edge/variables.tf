variable "name" {
  description = "Name of the site: the cluster and the model store are named after it."
  type        = string
  default     = "edge"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", var.name))
    error_message = "name must be 1 to 128 letters, digits, '.', '_' or '-'."
  }
}

variable "image_source" {
  description = "The bundled image as an OCI image layout folder (`cargo xtask image` writes target/image/modelplane-serve; each release ships one)."
  type        = string
}

variable "registry" {
  description = "Repository to push the image to: HOST[:PORT]/PATH in the site's registry, e.g. \"registry.plant.local/ml/modelplane-serve\"."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+$", var.registry))
    error_message = "registry must be HOST[:PORT]/PATH with a lower-case path, e.g. \"registry.plant.local/ml/modelplane-serve\"; no tag or digest."
  }
}

variable "registry_insecure" {
  description = "The registry speaks plain HTTP (a lab registry). The engine must trust it too (registries.conf, or --tls-verify=false in container.extra_args on podman)."
  type        = bool
  default     = false
}

variable "registry_username" {
  description = "Registry user. Null: the login `podman login` / `docker login` stored on this machine, else anonymous."
  type        = string
  default     = null
}

variable "registry_password" {
  description = "Password or token for registry_username; sent only (write-only), never kept in state."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "engine" {
  description = "podman or docker (a name on PATH or a path). Null: the first of them found."
  type        = string
  default     = null

  validation {
    condition     = var.engine == null || can(regex("(podman|docker)$", var.engine))
    error_message = "engine must be podman or docker, or a path to one."
  }
}

variable "gpus" {
  description = "GPUs the box must have (NVML counts them at apply)."
  type        = number
  default     = 0

  validation {
    condition     = var.gpus >= 0
    error_message = "gpus must be 0 or more."
  }
}

variable "container" {
  description = "How every endpoint's container runs: cpus, memory (e.g. \"2g\"), restart policy, extra_args for the engine's run."
  type = object({
    cpus       = optional(number)
    memory     = optional(string)
    restart    = optional(string, "unless-stopped")
    extra_args = optional(list(string), [])
  })
  default = {}

  validation {
    condition     = contains(["no", "on-failure", "always", "unless-stopped"], var.container.restart)
    error_message = "container.restart must be no, on-failure, always or unless-stopped."
  }

  validation {
    condition     = var.container.memory == null || can(regex("^[0-9]+[bkmgBKMG]?$", var.container.memory))
    error_message = "container.memory must be a number with b, k, m or g, e.g. \"2g\"."
  }
}

variable "store_path" {
  description = "Directory of the model store on the box. Null: STATE_DIR/stores/NAME."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let destroy delete model versions with the store."
  type        = bool
  default     = false
}

variable "endpoints" {
  description = "Models to serve: name => the inputs of modules/endpoint (versions, validation, baseline, benchmark, port, monitoring), plus gpus for the container."
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
    gpus = optional(number)
  }))

  validation {
    condition     = alltrue([for e in values(var.endpoints) : sum(concat([0], [for v in values(e.versions) : v.weight])) == 100])
    error_message = "In every endpoint, the weights of the versions must total 100."
  }
}
