variable "name" {
  description = "Name of the cluster as Modelplane knows it: partition namespaces default to NAME-PURPOSE."
  type        = string
  default     = "gpu"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$", var.name))
    error_message = "name must be lower-case letters, digits and '-' (at most 42), as it prefixes namespace names."
  }
}

variable "partitions" {
  description = "GPU partitions by purpose (dev, training, inference): the GPU quota, optional CPU and memory quotas, the most GPUs per pod, node labels to place pods on, and whether to tolerate spot capacity. Endpoints run in `inference`, which must be declared."
  type = map(object({
    gpus             = number
    namespace        = optional(string)
    cpu              = optional(string)
    memory           = optional(string)
    max_gpus_per_pod = optional(number)
    node_selector    = optional(map(string))
    spot             = optional(bool, false)
  }))

  validation {
    condition     = alltrue([for k in keys(var.partitions) : contains(["dev", "training", "inference"], k)])
    error_message = "partitions keys must be dev, training or inference."
  }

  validation {
    condition     = contains(keys(var.partitions), "inference")
    error_message = "partitions must include \"inference\": the endpoints run there."
  }

  validation {
    condition     = alltrue([for p in values(var.partitions) : p.gpus >= 0])
    error_message = "partitions[*].gpus must be 0 or more."
  }
}

variable "store" {
  description = "The S3-compatible store (MinIO, Ceph RGW) the models live in and the servers fetch from: bucket, endpoint URL reachable from Terraform and from the pods, region, and whether to create the bucket (false adopts an existing one)."
  type = object({
    bucket   = string
    endpoint = string
    region   = optional(string, "us-east-1")
    create   = optional(bool, true)
  })

  validation {
    condition     = can(regex("^https?://", var.store.endpoint))
    error_message = "store.endpoint must be an http(s) URL, e.g. \"https://minio.ml.internal:9000\"."
  }

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.store.bucket))
    error_message = "store.bucket must be a bucket name: 3 to 63 lower-case letters, digits, '.' and '-'."
  }
}

variable "store_credentials_secret" {
  description = "An existing Secret in the inference namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the store; its values never pass through Terraform. Null: the pods use their ServiceAccount's identity (set service_account_annotations)."
  type        = string
  default     = null
}

variable "image_source" {
  description = "The bundled image as an OCI image layout folder (`cargo xtask image` writes target/image/modelplane-serve; each release ships one)."
  type        = string
}

variable "registry" {
  description = "Repository the nodes pull from: HOST[:PORT]/PATH, e.g. \"registry.ml.internal/modelplane/serve\" or OpenShift's \"image-registry.openshift-image-registry.svc:5000/ml/serve\"."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+$", var.registry))
    error_message = "registry must be HOST[:PORT]/PATH with a lower-case path; no tag or digest."
  }
}

variable "registry_insecure" {
  description = "The registry speaks plain HTTP (a lab registry); the nodes must trust it too."
  type        = bool
  default     = false
}

variable "registry_username" {
  description = "Registry user. Null: the login stored on this machine (podman login, docker login), else anonymous."
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

variable "image_pull_secret" {
  description = "An existing kubernetes.io/dockerconfigjson Secret in the inference namespace for a private registry. Null: the nodes pull anonymously or with their own credentials."
  type        = string
  default     = null
}

variable "endpoints" {
  description = "Endpoints by model name: versions (ONNX source and weight), hold-out validation, drift baseline, benchmark SLO, monitoring thresholds, kubernetes settings (replicas, autoscaling, cpu, memory, gpus, exposure), and how the endpoint is priced (`pricing`) with its monthly `budget`."
  type = map(object({
    # The fields of modules/endpoint's variables of the same names, with their types: written
    # by `cargo xtask modules` from modules/endpoint/variables.tf (change them there).
    # BEGIN fields of modules/endpoint: versions validation baseline benchmark monitoring require_approval approvals kubernetes pricing budget
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
    kubernetes = optional(object({
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
    }))
    pricing = optional(object({
      instance_type = optional(string)
      spot          = optional(bool)
      gpu_product   = optional(string)
    }))
    budget = optional(object({
      monthly = number
      action  = optional(string, "error")
    }))
    # END fields of modules/endpoint
  }))
  default = {}

  validation {
    condition     = alltrue([for e in values(var.endpoints) : sum(concat([0], [for v in values(e.versions) : v.weight])) == 100])
    error_message = "the version weights of each endpoint must total 100."
  }

  validation {
    condition     = alltrue([for e in values(var.endpoints) : coalesce(try(e.kubernetes.max_replicas, null), 4) >= coalesce(try(e.kubernetes.min_replicas, null), 2)])
    error_message = "endpoints[*].kubernetes.max_replicas (default 4) must be at least min_replicas (default 2)."
  }
}

variable "force_destroy" {
  description = "Let destroy delete model versions with the store."
  type        = bool
  default     = false
}

variable "budget" {
  description = "A monthly budget for the cluster, checked at plan against its estimate at the largest sizes (`estimated_cost.monthly_max`); `action` is `error` (fail the plan) or `warn`. Endpoints take their own in `endpoints[*].budget`."
  type = object({
    monthly = number
    action  = optional(string, "error")
  })
  default = null
}
