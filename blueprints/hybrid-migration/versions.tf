terraform {
  required_version = ">= 1.6"

  required_providers {
    modelplane = {
      source  = "modelplane/modelplane"
      version = ">= 0.1.0"
    }
  }
}
