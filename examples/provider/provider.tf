terraform {
  required_providers {
    modelplane = {
      source = "modelplane/modelplane"
    }
  }
}

# Every block is optional. Credentials come from each platform's standard chain and never
# land in state.
provider "modelplane" {
  local {
    state_dir = "/var/lib/modelplane"
  }

  # s3 and s3_compatible stores: the AWS chain (environment, profiles, SSO, web identity,
  # instance and pod roles). `profile` picks a named profile.
  aws {
    region  = "eu-west-1"
    profile = "ml-platform"
  }

  # azure_blob stores, azure clusters and ACR: the Azure identity chain (a service principal
  # from the environment, workload identity, a managed identity, the Azure CLI). An account
  # key is only for emulators and accounts without Entra ID: prefer AZURE_STORAGE_KEY in the
  # environment to a literal.
  azure {
    subscription_id = "00000000-0000-0000-0000-000000000000" # or AZURE_SUBSCRIPTION_ID
    resource_group  = "ml-prod"                              # of azure clusters and registries
    location        = "westeurope"
  }

  # estimated_cost of clusters and endpoints: the shipped price table (AWS and Azure list
  # prices, each with its source and date), your negotiated prices over it, and what your own
  # hardware costs an hour for local, container and kubernetes clusters.
  pricing {
    currency        = "USD"
    instance_hour   = { "g5.xlarge" = 0.82 } # an enterprise discount
    gpu_hour        = { "nvidia-a100" = 1.10, "*" = 0.45 }
    cpu_hour        = 0.02
    memory_gib_hour = 0.004
  }
}
