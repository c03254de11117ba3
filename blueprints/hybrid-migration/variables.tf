variable "name" {
  description = "The endpoint's name on the on-prem site: the model name clients call (`/v2/models/NAME/infer`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.name))
    error_message = "name must be a DNS label: lower-case letters, digits and '-', at most 63 characters."
  }
}

variable "cloud_name" {
  description = "The endpoint's name on the cloud site (null: the same as `name`). Two sites on one machine need two names."
  type        = string
  default     = null
}

variable "onprem_cluster_id" {
  description = "The on-prem site's cluster: the `id` of a `modelplane_gpu_cluster` (e.g. `module.onprem.cluster_id` of blueprints/on-prem-kubernetes)."
  type        = string
}

variable "cloud_cluster_id" {
  description = "The cloud site's cluster (e.g. `module.aws.cluster_id` of blueprints/aws or blueprints/azure)."
  type        = string
}

variable "cloud_store_id" {
  description = "The cloud site's model store: the on-prem version is copied there (stage 1)."
  type        = string
}

variable "onprem_version" {
  description = "The on-prem `modelplane_model` being served (pass the resource: `onprem_version = modelplane_model.fraud`). Its copy in the cloud store is the same version: same sha256, signature, lineage, baseline."
  type = object({
    id      = string
    name    = string
    version = string
  })
}

variable "cloud_share" {
  description = "Percent of the on-prem entry point's requests served by the cloud site: move it in steps (0 → 10 → 50 → 100), one apply each. Each step is benchmarked through the on-prem entry point and rolled back when it misses `slo`."
  type        = number
  default     = 0

  validation {
    condition     = var.cloud_share >= 0 && var.cloud_share <= 100 && floor(var.cloud_share) == var.cloud_share
    error_message = "cloud_share is a whole percentage, 0 to 100."
  }
}

variable "retire_onprem" {
  description = "The last stage: remove the on-prem endpoint (after clients moved to the cloud address). Needs cloud_share = 100."
  type        = bool
  default     = false

  validation {
    condition     = !var.retire_onprem || var.cloud_share == 100
    error_message = "retire_onprem needs cloud_share = 100: move all traffic to the cloud site first."
  }
}

variable "fallback" {
  description = "While the on-prem site still runs its model, a request the cloud site fails (error, timeout, open circuit) is answered on-prem instead."
  type        = bool
  default     = true
}

variable "cloud_url" {
  description = "The address the on-prem site reaches the cloud endpoint at (its ingress or load balancer, `https://HOST`); null when the cloud endpoint's own `url` is reachable (one machine, one network)."
  type        = string
  default     = null
}

variable "cloud_ca_file" {
  description = "With cloud_url over TLS: the PEM file of the CA that signed its certificate (null: the system's roots)."
  type        = string
  default     = null
}

variable "benchmark" {
  description = "The request each step is measured with (an Open Inference Protocol JSON body), its load and length."
  type = object({
    payload     = string
    concurrency = optional(number, 4)
    duration    = optional(string, "2s")
  })
}

variable "slo" {
  description = "What every step must meet, measured through the on-prem entry point; a miss rolls the step back."
  type = object({
    p50_ms         = optional(number)
    p99_ms         = optional(number)
    min_rps        = optional(number)
    max_error_rate = optional(number, 0)
  })
  default = { p99_ms = 250 }
}

variable "onprem_image" {
  description = "The serving image on a `container` or Kubernetes on-prem site (null on `local`)."
  type        = string
  default     = null
}

variable "cloud_image" {
  description = "The serving image on a `container`, Kubernetes or cloud site (null on `local`)."
  type        = string
  default     = null
}

variable "onprem_kubernetes" {
  description = "The on-prem endpoint's `kubernetes` settings on a Kubernetes site (null elsewhere)."
  type = object({
    partition    = optional(string)
    min_replicas = optional(number)
    max_replicas = optional(number)
    cpu          = optional(string)
    memory       = optional(string)
    gpus         = optional(number)
  })
  default = null
}

variable "cloud_kubernetes" {
  description = "The cloud endpoint's `kubernetes` settings on a Kubernetes, EKS or AKS site, with how the on-prem site reaches it (`expose`)."
  type = object({
    partition    = optional(string)
    min_replicas = optional(number)
    max_replicas = optional(number)
    cpu          = optional(string)
    memory       = optional(string)
    gpus         = optional(number)
    service_type = optional(string)
    expose = optional(object({
      kind       = string
      host       = string
      class_name = optional(string)
      tls_secret = optional(string)
    }))
  })
  default = null
}
