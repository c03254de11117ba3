# Unit tests of blueprints/aws with a mocked provider only: a real run needs an AWS account
# (EKS, S3, ECR; provider/tests/aws.rs runs against emulators). Here: every variable's
# validation, and the wiring of a mocked apply: the EKS cluster with its GPU and dev node
# groups and partitions, the S3 store, the image in ECR, one endpoint per entry in the
# inference partition, outputs shaped as documented.
#
#   terraform init && terraform test

# The provider checks references at validation, mocked or not: the mocked ids and the image
# reference look like real ones.
mock_provider "modelplane" {
  mock_resource "modelplane_serving_image" {
    defaults = {
      reference      = "123456789012.dkr.ecr.us-east-1.amazonaws.com/modelplane-serve@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
      repository_arn = "arn:aws:ecr:us-east-1:123456789012:repository/modelplane-serve"
    }
  }

  mock_resource "modelplane_gpu_cluster" {
    defaults = {
      id          = "aws/gpu"
      resource_id = "arn:aws:eks:us-east-1:123456789012:cluster/gpu"
      oidc_issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
    }
  }

  mock_resource "modelplane_model_store" {
    defaults = {
      id = "s3://modelplane-models-test?region=us-east-1"
    }
  }

  mock_resource "modelplane_model" {
    defaults = {
      id = "s3://modelplane-models-test?region=us-east-1/iris/1"
    }
  }

  mock_resource "modelplane_endpoint" {
    defaults = {
      id           = "aws/gpu/iris"
      url          = "http://iris.gpu-inference.svc.cluster.local:8080"
      grpc_address = "iris.gpu-inference.svc.cluster.local:9000"
    }
  }
}

variables {
  name       = "gpu"
  subnet_ids = ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]
  partitions = {
    inference = { gpus = 4, namespace = "gpu-inference", max_gpus_per_pod = 1 }
    dev       = { gpus = 0, namespace = "gpu-dev" }
  }
  store        = { bucket = "modelplane-models-test", region = "us-east-1" }
  image_source = "../../target/image/modelplane-serve"
  endpoints = {
    iris = {
      versions = {
        "1" = { source = "../../examples/quickstart/model/iris-v1.onnx", weight = 100 }
      }
      monitoring = { p99_ms_above = 50 }
      kubernetes = { cpu = "500m", memory = "512Mi" }
    }
  }
}

run "eks" {
  command = apply

  variables {
    inference_pool = { instance_types = ["g5.xlarge", "g5.2xlarge"], min_size = 1, max_size = 4, desired_size = 2, spot = true, gpu_sharing_replicas = 4 }
    force_destroy  = true
  }

  assert {
    condition     = modelplane_gpu_cluster.this.platform == "aws" && modelplane_gpu_cluster.this.name == "gpu"
    error_message = "the cluster is an EKS cluster named name"
  }

  assert {
    condition     = modelplane_gpu_cluster.this.aws.kubernetes_version == "1.33" && modelplane_gpu_cluster.this.aws.subnet_ids == tolist(["subnet-0a1b2c3d", "subnet-4e5f6a7b"]) && modelplane_gpu_cluster.this.aws.adopt == false
    error_message = "Kubernetes 1.33 by default, in the subnets given, created (not adopted)"
  }

  assert {
    condition     = [for p in modelplane_gpu_cluster.this.node_pool : p.name] == ["gpu", "dev"]
    error_message = "a GPU node group and, by default, a dev node group"
  }

  assert {
    condition     = modelplane_gpu_cluster.this.node_pool[0].purpose == "inference" && modelplane_gpu_cluster.this.node_pool[0].instance_types == tolist(["g5.xlarge", "g5.2xlarge"]) && modelplane_gpu_cluster.this.node_pool[0].gpu_count == 1
    error_message = "the GPU node group runs inference on the instance types given"
  }

  assert {
    condition     = modelplane_gpu_cluster.this.node_pool[0].min_size == 1 && modelplane_gpu_cluster.this.node_pool[0].max_size == 4 && modelplane_gpu_cluster.this.node_pool[0].desired_size == 2 && modelplane_gpu_cluster.this.node_pool[0].spot
    error_message = "the GPU node group's sizes and spot capacity"
  }

  assert {
    condition     = modelplane_gpu_cluster.this.node_pool[0].gpu_sharing.replicas == 4
    error_message = "time-slicing when gpu_sharing_replicas is given"
  }

  assert {
    condition     = modelplane_gpu_cluster.this.node_pool[1].purpose == "dev" && modelplane_gpu_cluster.this.node_pool[1].instance_type == "m7i.large" && modelplane_gpu_cluster.this.node_pool[1].max_size == 2
    error_message = "the dev node group's defaults"
  }

  assert {
    condition     = [for p in modelplane_gpu_cluster.this.partition : p.purpose] == ["dev", "inference"] && modelplane_gpu_cluster.this.timeouts.create == "60m"
    error_message = "one partition per entry; a 60m create timeout"
  }

  assert {
    condition     = modelplane_model_store.this.backend == "s3" && modelplane_model_store.this.name == "modelplane-models-test" && modelplane_model_store.this.create && modelplane_model_store.this.force_destroy
    error_message = "the store is the S3 bucket given"
  }

  assert {
    condition     = modelplane_serving_image.this.repository == "modelplane-serve" && modelplane_serving_image.this.ecr.keep_images == 30 && modelplane_serving_image.this.ecr.force_delete
    error_message = "the image goes to ECR, 30 images kept, deleted with force_destroy"
  }

  assert {
    condition     = output.cluster_id == "aws/gpu" && output.cluster_arn == "arn:aws:eks:us-east-1:123456789012:cluster/gpu" && output.oidc_issuer == "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
    error_message = "cluster_id, cluster_arn and oidc_issuer come from the cluster"
  }

  assert {
    condition     = output.store_id == "s3://modelplane-models-test?region=us-east-1" && output.image == modelplane_serving_image.this.reference && output.ecr_repository_arn == "arn:aws:ecr:us-east-1:123456789012:repository/modelplane-serve"
    error_message = "store_id, image and ecr_repository_arn are the ids"
  }

  assert {
    condition     = output.namespaces == { dev = "gpu-dev", inference = "gpu-inference" }
    error_message = "namespaces is purpose => namespace"
  }

  assert {
    condition     = output.endpoints == { iris = { url = "http://iris.gpu-inference.svc.cluster.local:8080", grpc_address = "iris.gpu-inference.svc.cluster.local:9000", id = "aws/gpu/iris" } }
    error_message = "endpoints is name => { url, grpc_address, id }"
  }

  assert {
    condition     = keys(output.estimated_cost) == ["cluster", "endpoints"] && keys(output.estimated_cost.endpoints) == ["iris"]
    error_message = "estimated_cost is { cluster, endpoints = name => estimate }"
  }

  assert {
    condition     = keys(module.endpoint["iris"].model_ids) == ["1"] && module.endpoint["iris"].prometheus_url != null
    error_message = "one model per version; a monitor with monitoring"
  }
}

run "adopt_without_dev_pool" {
  command = apply

  variables {
    adopt              = true
    dev_pool           = null
    kubernetes_version = "1.32"
    budget             = { monthly = 2000, action = "warn" }
    ecr_repository     = "ml/modelplane-serve"
    ecr_keep_images    = 5
    create_timeout     = "90m"
    endpoints          = {}
  }

  assert {
    condition     = modelplane_gpu_cluster.this.aws.adopt && modelplane_gpu_cluster.this.aws.kubernetes_version == "1.32" && length(modelplane_gpu_cluster.this.node_pool) == 1
    error_message = "an adopted cluster, no dev node group"
  }

  assert {
    condition     = modelplane_gpu_cluster.this.node_pool[0].instance_types == tolist(["g5.xlarge"]) && modelplane_gpu_cluster.this.node_pool[0].spot == false && modelplane_gpu_cluster.this.node_pool[0].gpu_sharing == null
    error_message = "the GPU node group's defaults: g5.xlarge, on demand, no time-slicing"
  }

  assert {
    condition     = modelplane_gpu_cluster.this.budget.monthly == 2000 && modelplane_gpu_cluster.this.budget.action == "warn" && modelplane_gpu_cluster.this.timeouts.create == "90m"
    error_message = "budget and create_timeout reach the cluster"
  }

  assert {
    condition     = modelplane_serving_image.this.repository == "ml/modelplane-serve" && modelplane_serving_image.this.ecr.keep_images == 5 && modelplane_serving_image.this.ecr.force_delete == false
    error_message = "the ECR repository and lifecycle given; kept on destroy by default"
  }

  assert {
    condition     = output.endpoints == {}
    error_message = "no endpoints: an empty map"
  }
}

run "name_refused" {
  command = plan
  variables {
    name = "gpu-"
  }
  expect_failures = [var.name]
}

run "kubernetes_version_refused" {
  command = plan
  variables {
    kubernetes_version = "1.33.2"
  }
  expect_failures = [var.kubernetes_version]
}

run "one_subnet_refused" {
  command = plan
  variables {
    subnet_ids = ["subnet-0a1b2c3d"]
  }
  expect_failures = [var.subnet_ids]
}

run "subnet_id_refused" {
  command = plan
  variables {
    subnet_ids = ["subnet-0a1b2c3d", "sg-4e5f6a7b"]
  }
  expect_failures = [var.subnet_ids]
}

run "pool_sizes_refused" {
  command = plan
  variables {
    inference_pool = { min_size = 3, max_size = 2 }
  }
  expect_failures = [var.inference_pool]
}

run "pool_max_zero_refused" {
  command = plan
  variables {
    inference_pool = { min_size = 0, max_size = 0 }
  }
  expect_failures = [var.inference_pool]
}

run "pool_desired_refused" {
  command = plan
  variables {
    inference_pool = { min_size = 1, max_size = 2, desired_size = 3 }
  }
  expect_failures = [var.inference_pool]
}

run "pool_instance_types_refused" {
  command = plan
  variables {
    inference_pool = { instance_types = [] }
  }
  expect_failures = [var.inference_pool]
}

run "partition_purpose_refused" {
  command = plan
  variables {
    partitions = {
      inference = { gpus = 1 }
      batch     = { gpus = 1 }
    }
  }
  expect_failures = [var.partitions]
}

run "partitions_without_inference_refused" {
  command = plan
  variables {
    partitions = {
      dev = { gpus = 0 }
    }
    endpoints = {}
  }
  expect_failures = [var.partitions]
}

run "partition_gpus_refused" {
  command = plan
  variables {
    partitions = {
      inference = { gpus = -2 }
    }
  }
  expect_failures = [var.partitions]
}

run "store_bucket_refused" {
  command = plan
  variables {
    store = { bucket = "Models" }
  }
  expect_failures = [var.store]
}

run "ecr_repository_refused" {
  command = plan
  variables {
    ecr_repository = "modelplane-serve-"
  }
  expect_failures = [var.ecr_repository]
}

run "weights_not_100_refused" {
  command = plan
  variables {
    endpoints = {
      iris = {
        versions = {
          "1" = { source = "a.onnx", weight = 10 }
        }
      }
    }
  }
  expect_failures = [var.endpoints]
}

run "replicas_refused" {
  command = plan
  variables {
    endpoints = {
      iris = {
        versions = {
          "1" = { source = "a.onnx", weight = 100 }
        }
        kubernetes = { max_replicas = 1 }
      }
    }
  }
  expect_failures = [var.endpoints]
}
