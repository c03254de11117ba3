resource "modelplane_endpoint" "iris" {
  name    = "iris"
  cluster = modelplane_gpu_cluster.inference.id
  port    = 8080

  # A canary: 10% of requests go to version 2.
  variant {
    name   = "stable"
    model  = modelplane_model.iris_v1.id
    weight = 90
  }

  variant {
    name   = "canary"
    model  = modelplane_model.iris_v2.id
    weight = 10
  }

  # Version 3 sees every request; its answers are discarded, its metrics kept.
  shadow {
    model = modelplane_model.iris_v3.id
  }

  batching {
    max_batch_size = 32
    max_delay_ms   = 2
  }

  # After every change: a load test. Missing the SLO rolls the change back.
  benchmark {
    payload     = file("${path.module}/data/request.json")
    concurrency = 8
    duration    = "5s"

    slo {
      p99_ms  = 20
      min_rps = 500
    }
  }
}

output "predict" {
  value = "curl -H \"Authorization: Bearer $(cat ${modelplane_endpoint.iris.token_file})\" -d @request.json ${modelplane_endpoint.iris.url}/v2/models/iris/infer"
}

# The same model on an edge box: a container of the bundled image, pinned by digest.
resource "modelplane_endpoint" "iris_edge" {
  name    = "iris-edge"
  cluster = modelplane_gpu_cluster.line.id
  image   = modelplane_serving_image.serve.reference
  port    = 8080

  variant {
    name   = "stable"
    model  = modelplane_model.iris_v1.id
    weight = 100
  }

  container {
    cpus    = 2
    memory  = "1g"
    restart = "unless-stopped"
    gpus    = 0 # CDI devices on podman, --gpus on docker
  }
}

# The same model on Kubernetes: a Deployment in the cluster's inference partition, fetching
# the model from an object store (here a MinIO store), two to six replicas, exposed through
# an Ingress. Its in-cluster URL is http://iris.gpu-inference.svc.cluster.local:8080.
resource "modelplane_endpoint" "iris_k8s" {
  name    = "iris"
  cluster = modelplane_gpu_cluster.shared.id
  image   = modelplane_serving_image.serve.reference

  variant {
    name   = "stable"
    model  = modelplane_model.iris_minio.id
    weight = 100
  }

  kubernetes {
    min_replicas    = 2
    max_replicas    = 6
    cpu             = "500m"
    memory          = "1Gi"
    env_from_secret = "minio-credentials" # AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
    rollout_timeout = "5m"

    expose {
      kind       = "ingress"
      host       = "iris.ml.example.com"
      class_name = "nginx"
    }
  }
}

# On EKS: the same Kubernetes workload on the GPU node group (its taint tolerated, one GPU
# requested). The model is in an S3 store; the server reads it with an IAM role made for this
# endpoint alone (IRSA: trusted for its ServiceAccount, reading the store's prefix), so no
# key exists anywhere. Give aws.role_arn to use a role of yours instead.
resource "modelplane_endpoint" "fraud_eks" {
  name    = "fraud"
  cluster = modelplane_gpu_cluster.eks.id
  image   = modelplane_serving_image.ecr.reference

  variant {
    name   = "stable"
    model  = modelplane_model.fraud_s3.id
    weight = 100
  }

  kubernetes {
    min_replicas = 2
    max_replicas = 8
    gpus         = 1
    memory       = "4Gi"
  }

  aws {
    # role_arn  = "arn:aws:iam::111122223333:role/fraud-reader"
    create_role = true # the default
  }

  # Each replica takes one GPU: a whole g6.xlarge node of the spot pool. estimated_cost
  # shows 2 to 8 of them a month, and each variant's share by weight.
  pricing {
    instance_type = "g6.xlarge"
    spot          = true
  }

  budget {
    monthly = 3000
    action  = "warn"
  }
}

# Hybrid: the on-prem entry point sends 10% of its requests to the same model served in a
# cloud (a remote variant); the cloud's token is read from that endpoint at apply and never
# lands in configuration or state. See blueprints/hybrid-migration.
resource "modelplane_endpoint" "iris_hybrid" {
  name    = "iris-hybrid"
  cluster = modelplane_gpu_cluster.inference.id

  variant {
    name   = "onprem"
    model  = modelplane_model.iris_v1.id
    weight = 90
  }

  variant {
    name     = "cloud"
    endpoint = modelplane_endpoint.fraud_eks.id
    url      = "https://fraud.eu-west-1.ml.example.com" # how this site reaches it
    fallback = true                                     # the cloud fails: answer here
    weight   = 10
  }
}
