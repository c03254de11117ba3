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
}
