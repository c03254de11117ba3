terraform {
  required_version = ">= 1.11" # write-only registry_password

  required_providers {
    modelplane = {
      source  = "modelplane/modelplane"
      version = ">= 0.1.0"
    }
  }
}
