variable "state_dir" {
  description = "Folder for the local platform's state (endpoint configs, logs, the model store). Null: `~/.local/state/modelplane`."
  type        = string
  default     = null
}

variable "port" {
  description = "REST port of the endpoint on 127.0.0.1. Null: a free port is chosen."
  type        = number
  default     = null
}

variable "canary_weight" {
  description = "Share of requests (percent) sent to version 2."
  type        = number
  default     = 10

  validation {
    condition     = var.canary_weight >= 0 && var.canary_weight <= 100
    error_message = "canary_weight is a percentage: 0 to 100."
  }
}

variable "min_accuracy" {
  description = "Hold-out accuracy a version must reach to be registered."
  type        = number
  default     = 0.9
}

variable "slo_p99_ms" {
  description = "Highest acceptable p99 latency of the endpoint, in milliseconds."
  type        = number
  default     = 100
}

variable "slo_min_rps" {
  description = "Lowest acceptable throughput of the endpoint, in requests per second."
  type        = number
  default     = 50
}

variable "code_commit" {
  description = "Commit of the training code, recorded in each version's lineage."
  type        = string
  default     = "unknown"
}
