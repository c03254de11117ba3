# On this machine: a directory.
resource "modelplane_model_store" "models" {
  name    = "acme-models"
  backend = "local"
  path    = "/var/lib/modelplane/models" # default: STATE_DIR/stores/acme-models

  # Destroy refuses a store that still holds versions unless this is set.
  force_destroy = false
}

# AWS S3: a new bucket with versioning, default encryption, public access blocked and a
# lifecycle rule for replaced versions. Credentials come from the AWS chain (environment,
# profiles, SSO, web identity, instance or pod role); `aws { region, profile }` in the
# provider block selects them.
resource "modelplane_model_store" "cloud" {
  name                    = "acme-models-prod"
  backend                 = "s3"
  region                  = "eu-west-1"
  kms_key_id              = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab" # default: SSE-S3
  noncurrent_version_days = 90
  tags                    = { team = "ml-platform" }
}

# On-prem MinIO or Ceph RGW: the same vocabulary at another endpoint. A feature the server
# lacks (e.g. lifecycle rules) is reported as a warning. Here an existing bucket is adopted:
# destroy leaves it in place.
resource "modelplane_model_store" "onprem" {
  name     = "models"
  backend  = "s3_compatible"
  endpoint = "https://minio.example.internal:9000"
  create   = false
}

# Azure Blob Storage: a container in an existing storage account. Blob versioning is an
# account setting; `versioning` reports it. Credentials come from the Azure identity chain
# (environment, workload or managed identity, Azure CLI), or an account key.
resource "modelplane_model_store" "azure" {
  name            = "models"
  backend         = "azure_blob"
  storage_account = "acmemodels"
}
