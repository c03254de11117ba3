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

variable "slice_min_accuracy" {
  description = "Accuracy every site of the hold-out set must reach (a fairness gate; null: not judged per site). Version 1 reaches 0.87 on its worst site, version 2 0.93."
  type        = number
  default     = null
}

variable "max_disparity" {
  description = "Largest accuracy gap allowed between the hold-out set's sites (null: not judged). Version 1's gap is 0.13, version 2's 0.07."
  type        = number
  default     = null
}

variable "require_approval" {
  description = "Serve only approved versions: the endpoint refuses at plan a variant whose version has no approval in var.approvals."
  type        = bool
  default     = false
}

variable "approvals" {
  description = "Approvals to record, version => reference (a ticket), e.g. { \"1\" = \"CHG-1\", \"2\" = \"CHG-2\" }."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for v in keys(var.approvals) : contains(["1", "2"], v)])
    error_message = "approvals are keyed by version: \"1\" or \"2\"."
  }
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
