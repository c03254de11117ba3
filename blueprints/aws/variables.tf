variable "name" {
  description = "Name of the cluster as Modelplane knows it: partition namespaces default to NAME-PURPOSE."
  type        = string
  default     = "gpu"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$", var.name))
    error_message = "name must be lower-case letters, digits and '-' (at most 42), as it prefixes namespace names."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes version of the EKS cluster, e.g. \"1.33\"."
  type        = string
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must be a minor version such as \"1.33\"."
  }
}

variable "subnet_ids" {
  description = "Subnets of the cluster and its node groups, in at least two availability zones. The VPC is the network team's; private subnets with a NAT or VPC endpoints for ECR, S3 and STS."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-z]+$", s))])
    error_message = "subnet_ids must be at least two subnet ids (subnet-...), in different availability zones."
  }
}

variable "security_group_ids" {
  description = "Further security groups of the control plane."
  type        = list(string)
  default     = []
}

variable "adopt" {
  description = "Use an existing EKS cluster named `name`: only node groups, the device plugin and partitions are created in it."
  type        = bool
  default     = false
}

variable "inference_pool" {
  description = "The GPU node group the endpoints run on: instance types (one GPU family: they share an AMI), GPUs per node, sizes (desired is honoured and kept within [min, max]), spot capacity, and optional time-slicing (several small models per GPU)."
  type = object({
    instance_types       = optional(list(string), ["g5.xlarge"])
    gpu_count            = optional(number, 1)
    min_size             = optional(number, 1)
    max_size             = optional(number, 4)
    desired_size         = optional(number)
    spot                 = optional(bool, false)
    gpu_sharing_replicas = optional(number)
  })
  default = {}

  validation {
    condition     = var.inference_pool.min_size >= 0 && var.inference_pool.max_size >= var.inference_pool.min_size && var.inference_pool.max_size >= 1
    error_message = "inference_pool needs 0 <= min_size <= max_size and max_size >= 1."
  }

  validation {
    condition     = var.inference_pool.desired_size == null || (try(var.inference_pool.desired_size >= var.inference_pool.min_size && var.inference_pool.desired_size <= var.inference_pool.max_size, false))
    error_message = "inference_pool.desired_size must be between min_size and max_size."
  }

  validation {
    condition     = length(var.inference_pool.instance_types) >= 1
    error_message = "inference_pool.instance_types needs at least one instance type, e.g. [\"g5.xlarge\"]."
  }
}

variable "dev_pool" {
  description = "A CPU node group for notebooks and system pods; null: none."
  type = object({
    instance_type = optional(string, "m7i.large")
    min_size      = optional(number, 1)
    max_size      = optional(number, 2)
  })
  default = {}
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
  description = "The S3 bucket the models live in and the servers read (through their IRSA roles): bucket, region (null: the provider's), and whether to create it (false adopts an existing one)."
  type = object({
    bucket = string
    region = optional(string)
    create = optional(bool, true)
  })

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.store.bucket))
    error_message = "store.bucket must be a bucket name: 3 to 63 lower-case letters, digits, '.' and '-'."
  }
}

variable "image_source" {
  description = "The bundled image as an OCI image layout folder (`cargo xtask image` writes target/image/modelplane-serve; each release ships one)."
  type        = string
}

variable "ecr_repository" {
  description = "The ECR repository name the image goes to (created with immutable tags, scan on push and a lifecycle policy). HOST/NAME pushes to that host with the ECR login instead (a registry that mirrors ECR)."
  type        = string
  default     = "modelplane-serve"

  validation {
    condition     = can(regex("^([a-z0-9]+([._-][a-z0-9]+)*/)*[a-z0-9]+([._-][a-z0-9]+)*$", var.ecr_repository)) || can(regex("^[A-Za-z0-9.-]+(:[0-9]+)?/", var.ecr_repository))
    error_message = "ecr_repository must be an ECR repository name such as \"ml/modelplane-serve\" (lower-case, '/', '.', '_', '-')."
  }
}

variable "registry_insecure" {
  description = "Plain HTTP to a HOST/NAME ecr_repository (a loopback mirror); never for ECR itself."
  type        = bool
  default     = false
}

variable "ecr_keep_images" {
  description = "The ECR lifecycle policy keeps the newest this many images."
  type        = number
  default     = 30
}

variable "create_timeout" {
  description = "How long the cluster's create may take, GPU nodes allocatable included (EKS takes 10 to 15 minutes, GPU node groups a few more)."
  type        = string
  default     = "60m"
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
  description = "Let destroy delete model versions with the store, and the ECR repository with its images."
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
