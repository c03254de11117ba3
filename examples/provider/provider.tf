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

  # azure_blob stores: the Azure identity chain (workload identity, service principal from
  # the environment, managed identity, Azure CLI). An account key is only for emulators and
  # accounts without Entra ID: prefer AZURE_STORAGE_KEY in the environment to a literal.
  azure {}
}
