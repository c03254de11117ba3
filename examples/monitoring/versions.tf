terraform {
  required_version = ">= 1.6"
  required_providers {
    modelplane = {
      source = "modelplane/modelplane"
    }
  }
}
