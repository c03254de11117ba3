variable "state_dir" {
  description = "Folder for the local platform's state (endpoint, monitor, model store). Null: `~/.local/state/modelplane`."
  type        = string
  default     = null
}

variable "retrain_webhook" {
  description = "URL of the retraining trigger: where drift and quality alerts are sent (`retrain_receiver.py` listens on 127.0.0.1:9095 by default)."
  type        = string
  default     = "http://127.0.0.1:9095/retrain"

  validation {
    condition     = can(regex("^https?://", var.retrain_webhook))
    error_message = "retrain_webhook must be an http(s) URL."
  }
}

variable "drift_psi" {
  description = "PSI of an input feature against the training data above which the model is retrained (0.1 is a moderate shift, 0.25 a large one)."
  type        = number
  default     = 0.25

  validation {
    condition     = var.drift_psi > 0
    error_message = "drift_psi must be above 0."
  }
}

variable "min_accuracy" {
  description = "Accuracy from ground-truth feedback under which the model is retrained."
  type        = number
  default     = 0.9

  validation {
    condition     = var.min_accuracy > 0 && var.min_accuracy <= 1
    error_message = "min_accuracy is a share: above 0, at most 1."
  }
}

variable "alert_after" {
  description = "How long a condition must hold before its alert fires (`for`), e.g. `15m`."
  type        = string
  default     = "10m"
}

variable "drift_window" {
  description = "The server's window for drift statistics."
  type        = string
  default     = "15m"
}

variable "feedback_window" {
  description = "The server's window for accuracy from feedback."
  type        = string
  default     = "1h"
}

variable "interval" {
  description = "Scrape and rule evaluation interval of the managed Prometheus."
  type        = string
  default     = "15s"
}
